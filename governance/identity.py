"""Who is acting: the one identity every governance decision is recorded under.

* Local store (the embedded SQLite MLflow, a laptop or CI): ``GOVERN_USER``,
  else the operating-system user. There is no stronger claim to check here;
  the audit trail records the identity's ``source`` so a report can tell.
* A tracking server: the MLflow user authenticated by the server's basic-auth
  app (``mlflow server --app-name basic-auth``). The credentials are the ones
  MLflow itself uses (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``)
  and are verified against the server (``GET /api/2.0/mlflow/users/get`` answers
  only a user asking about themself), so the user named in the trail is the
  user the server let in. ``GOVERN_USER`` is ignored there, and no command has
  an ``--as`` flag.
"""

from __future__ import annotations

import getpass
import logging
import os
from dataclasses import dataclass
from typing import Literal

from governance.errors import ConfigError, PermissionDenied, RegistryError

log = logging.getLogger(__name__)

USER_ENV = "GOVERN_USER"
USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"
PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"
USERS_GET_PATH = "/api/2.0/mlflow/users/get"


@dataclass(frozen=True)
class Identity:
    """An acting user and how we know who they are."""

    user: str
    source: Literal["local", "mlflow-basic-auth"]
    server: str | None = None

    def describe(self) -> str:
        return f"{self.user} (authenticated by {self.server})" if self.server else f"{self.user} (local)"

    @property
    def method(self) -> str:
        """How the trail records this identity (its ``identity_method``)."""
        return "mlflow-basic-auth" if self.source == "mlflow-basic-auth" else "local-unverified"


#: How each recorded identity method (or the older ``identity`` detail) reads beside a decision.
IDENTITY_LABELS = {
    "local-unverified": "local, unverified",
    "local": "local, unverified",
    "mlflow-basic-auth": "authenticated by the MLflow server",
}


def identity_label(method: str | None) -> str:
    """``local, unverified`` / ``authenticated by the MLflow server`` for an event's identity method."""
    return IDENTITY_LABELS.get(method or "", "not recorded")


def local_identity() -> Identity:
    """``GOVERN_USER`` or the OS user, for a local store."""
    user = (os.environ.get(USER_ENV) or "").strip()
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            raise ConfigError(f"cannot tell who you are: set {USER_ENV}") from None
    return Identity(user=user, source="local")


def verify_server_user(server: str, username: str, password: str, *, timeout: float = 15) -> Identity:
    """Check ``username``/``password`` against the MLflow server's basic-auth user store."""
    import requests

    url = server.rstrip("/") + USERS_GET_PATH
    try:
        response = requests.get(url, params={"username": username}, auth=(username, password), timeout=timeout)
    except requests.RequestException as exc:
        raise RegistryError(f"cannot reach {server} to verify user {username!r} ({exc.__class__.__name__})") from None
    if response.status_code == 401:
        raise PermissionDenied(
            f"MLflow at {server} rejected the credentials of {username!r} "
            f"({USERNAME_ENV}/{PASSWORD_ENV}); check the password"
        )
    if response.status_code == 404:
        raise ConfigError(
            f"MLflow at {server} does not authenticate users (no basic-auth app); governance actions need "
            "`mlflow server --app-name basic-auth`"
        )
    if response.status_code != 200:
        raise RegistryError(f"verifying user {username!r} at {server} failed: HTTP {response.status_code}")
    try:
        confirmed = response.json()["user"]["username"]
    except (ValueError, KeyError, TypeError):
        raise RegistryError(f"verifying user {username!r} at {server}: unexpected answer from the server") from None
    if confirmed != username:
        raise PermissionDenied(f"MLflow at {server} confirmed user {confirmed!r}, not {username!r}")
    return Identity(user=confirmed, source="mlflow-basic-auth", server=server)


def current_identity() -> Identity:
    """The acting user: verified against the tracking server, or the local user for a local store."""
    from governance import registry

    uri = registry.tracking_uri()
    if registry.is_local_store(uri):
        return local_identity()
    username = os.environ.get(USERNAME_ENV)
    password = os.environ.get(PASSWORD_ENV)
    if not username or not password:
        raise ConfigError(
            f"MLflow at {uri} needs your credentials: set {USERNAME_ENV} and {PASSWORD_ENV} "
            "(governance actions are recorded under the user the server authenticates)"
        )
    claimed = os.environ.get(USER_ENV)
    if claimed and claimed != username:
        log.warning("%s=%s ignored: against %s you act as the authenticated user %s", USER_ENV, claimed, uri, username)
    return verify_server_user(uri, username, password)


def current_user() -> str:
    """The acting user's name (see :func:`current_identity`)."""
    return current_identity().user
