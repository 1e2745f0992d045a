"""Who is acting: the one identity every governance decision is recorded under.

* Local store (the embedded SQLite MLflow, a laptop or CI): ``GOVERN_USER``,
  else the operating-system user. There is no stronger claim to check here;
  the audit trail records the identity's ``source`` so a report can tell.
* A tracking server: the MLflow user authenticated by the server's basic-auth
  app (``mlflow server --app-name basic-auth``). The credentials are the ones
  MLflow itself uses (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``,
  else the server's entry in ``~/.netrc`` or ``$NETRC``, as MLflow's HTTP client
  reads it) and are verified against the server (``GET /api/2.0/mlflow/users/get`` answers
  only a user asking about themself), so the user named in the trail is the
  user the server let in. ``GOVERN_USER`` is ignored there, and no command has
  an ``--as`` flag.

Trust boundary: a basic-auth answer proves only that *some* server knows the
user, and anyone can start one on a copy of the store. So the server must be
the one ``policies/approvals.yaml`` pins (``authentication.server``; that file
is itself pinned by hash in the audit trail), and for ``https`` its TLS
certificate must have the pinned SHA-256 fingerprint, checked on the very
connection the credentials travel over. Any other server is refused before a
password is sent. The server (and fingerprint) is recorded with each event.
MLflow's own client calls are not pinned here; identity is.
"""

from __future__ import annotations

import getpass
import logging
import os
from dataclasses import dataclass
from typing import Any, Literal

from governance.errors import ConfigError, PermissionDenied, RegistryError
from governance.policy.approvals import Authentication, normalize_server
from governance.trail.chain import normalize_user

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
    tls_sha256_fingerprint: str | None = None

    def describe(self) -> str:
        return f"{self.user} (authenticated by {self.server})" if self.server else f"{self.user} (local)"

    def details(self) -> dict[str, str]:
        """What an event records about the identity: its source, and the server (and certificate) that vouched."""
        out = {"identity": self.source}
        if self.server:
            out["identity_server"] = self.server
        if self.tls_sha256_fingerprint:
            out["identity_server_tls_sha256"] = self.tls_sha256_fingerprint
        return out

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


def server_credentials(server: str) -> tuple[str | None, str | None]:
    """The credentials MLflow's client sends to ``server``: the environment's, else its ``netrc`` entry.

    ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` when both are set; otherwise the
    machine entry for the server's host in ``$NETRC`` or ``~/.netrc``, which
    MLflow's HTTP client (requests) uses when no credentials are configured, so
    the user verified here is the user MLflow acts as.
    """
    username, password = os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV)
    if username and password:
        return username, password
    from requests.utils import get_netrc_auth

    found = get_netrc_auth(server)
    return (found[0], found[1]) if found else (username, password)


def local_identity() -> Identity:
    """``GOVERN_USER`` or the OS user, for a local store."""
    user = (os.environ.get(USER_ENV) or "").strip()
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            raise ConfigError(f"cannot tell who you are: set {USER_ENV}") from None
    # A confusable name (Cyrillic 'а' in 'alice') is refused here, before anything is decided or recorded under it
    user = normalize_user(user, USER_ENV if os.environ.get(USER_ENV, "").strip() else "the OS user name")
    return Identity(user=user, source="local")


def verify_server_user(
    server: str,
    username: str,
    password: str,
    *,
    timeout: float = 15,
    pin: Authentication | None = None,
    policy_source: str = "the approvals policy",
) -> Identity:
    """Check ``username``/``password`` against the MLflow server's basic-auth user store.

    With ``pin`` (the policy's ``authentication``), ``server`` must be the
    pinned one, and for https its certificate must match the pinned
    fingerprint on the connection that carries the password; anything else is
    refused before the credentials leave.
    """
    import requests

    fingerprint = require_pinned_server(server, pin, policy_source) if pin is not None else None
    url = server.rstrip("/") + USERS_GET_PATH
    session = _session(fingerprint)
    try:
        response = session.get(
            url,
            params={"username": username},
            auth=(username, password),
            timeout=timeout,
            # The pin replaces the CA check: the certificate is the one named in the policy, or nothing is sent
            **({"verify": False} if fingerprint is not None else {}),
        )
    except requests.exceptions.SSLError:
        if fingerprint is None:
            raise RegistryError(f"cannot verify the TLS certificate of {server} for user {username!r}") from None
        raise PermissionDenied(
            f"MLflow at {server}: its TLS certificate does not match the SHA-256 fingerprint {policy_source} "
            f"pins (authentication.tls_sha256_fingerprint: {fingerprint[:16]}…); no credentials were sent"
        ) from None
    except requests.RequestException as exc:
        raise RegistryError(f"cannot reach {server} to verify user {username!r} ({exc.__class__.__name__})") from None
    finally:
        session.close()
    if response.status_code == 401:
        raise PermissionDenied(
            f"MLflow at {server} rejected the credentials of {username!r} "
            f"({USERNAME_ENV}/{PASSWORD_ENV}); check the password"
        )
    if response.status_code == 404:
        raise ConfigError(unauthenticated_server_refusal(server, pin, policy_source))
    if response.status_code != 200:
        raise RegistryError(f"verifying user {username!r} at {server} failed: HTTP {response.status_code}")
    try:
        confirmed = response.json()["user"]["username"]
    except (ValueError, KeyError, TypeError):
        raise RegistryError(f"verifying user {username!r} at {server}: unexpected answer from the server") from None
    if confirmed != username:
        raise PermissionDenied(f"MLflow at {server} confirmed user {confirmed!r}, not {username!r}")
    return Identity(
        user=normalize_user(confirmed, f"the MLflow user at {server}"),
        source="mlflow-basic-auth",
        server=normalize_server(server) if pin is not None else server,
        tls_sha256_fingerprint=fingerprint,
    )


def require_pinned_server(server: str, pin: Authentication, policy_source: str) -> str | None:
    """Refuse (one line) a tracking server that is not the pinned one; its pinned certificate fingerprint, if any."""
    if pin.server is None:
        raise PermissionDenied(
            f"MLflow at {server} is not an authenticating server: {policy_source} pins none "
            "(authentication.server: null); name the server there before acting against it"
        )
    if not pin.pins(server):
        raise PermissionDenied(
            f"MLflow at {server} is not the authenticating server {policy_source} pins "
            f"(authentication.server: {pin.server}); an identity from any other server is refused"
        )
    return pin.tls_sha256_fingerprint


def _session(fingerprint: str | None) -> Any:
    """A requests session; with ``fingerprint``, every https connection checks the certificate's SHA-256
    (urllib3's ``assert_fingerprint``, proxied connections included). Its callers pass ``verify=False`` on each
    request when pinned (the pin replaces the CA check): a session-wide ``verify = False`` loses to
    ``REQUESTS_CA_BUNDLE`` in requests' environment merge."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    if fingerprint is None:
        return session

    class PinnedCertificate(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["assert_fingerprint"] = fingerprint
            super().init_poolmanager(*args, **kwargs)

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            proxy_kwargs["assert_fingerprint"] = fingerprint
            return super().proxy_manager_for(proxy, **proxy_kwargs)

    session.mount("https://", PinnedCertificate())
    return session


def server_authenticates(server: str, pin: Authentication | None = None, *, timeout: float = 5) -> bool | None:
    """Whether the MLflow server at ``server`` authenticates users, asked without sending any credentials.

    True: it answers 401 (the basic-auth app); False: it has no user API
    (``users/get`` is 404: a plain ``mlflow server``); None: it could not be
    reached or answered something else. For the pinned https server the
    probe checks the pinned certificate, like every call that matters.
    """
    import requests

    fingerprint = pin.tls_sha256_fingerprint if pin is not None and pin.pins(server) else None
    session = _session(fingerprint)
    try:
        response = session.get(
            server.rstrip("/") + USERS_GET_PATH,
            params={"username": "-"},
            timeout=timeout,
            **({"verify": False} if fingerprint is not None else {}),
        )
    except requests.RequestException:
        return None
    finally:
        session.close()
    return {401: True, 404: False}.get(response.status_code)


def unauthenticated_server_refusal(
    server: str, pin: Authentication | None, policy_source: str, risk_tier: str | None = None
) -> str:
    """The one-line refusal of a tracking server that authenticates nobody: what it is, what the project wants."""
    allowed = list(pin.unauthenticated_server.risk_tiers) if pin is not None else []
    wanted = f"risk tier {risk_tier}" if risk_tier else "every risk tier" if not allowed else "the other risk tiers"
    return (
        f"MLflow at {server} authenticates nobody (no basic-auth app): the server needs no credentials, it is "
        f"this project that wants an authenticated identity for {wanted} ({policy_source}: "
        f"authentication.unauthenticated_server.risk_tiers: [{', '.join(allowed)}]); list a tier there to allow "
        "this server for it (identities then local, unverified), or start the server with "
        "`mlflow server --app-name basic-auth`"
    )


def current_identity(
    pin: Authentication | None = None, *, policy_source: str | None = None, risk_tier: str | None = None
) -> Identity:
    """The acting user: verified against the pinned tracking server, or the local user for a local store.

    ``pin`` is the ``authentication`` block of the approvals policy the caller
    decides by (so the server checked is the one that policy, pinned by hash
    in the trail, names); None reads it from the approvals policy in force.
    A server that authenticates nobody is used only where that block's
    ``unauthenticated_server.risk_tiers`` allows it (for ``risk_tier`` when
    given, else for any tier), under the local, unverified identity.
    """
    from governance import registry

    uri = registry.tracking_uri()
    if registry.is_local_store(uri):
        return local_identity()
    if pin is None:
        from governance.policy.approvals import approvals_policy_path, load_approvals_policy

        pin, policy_source = load_approvals_policy().authentication, str(approvals_policy_path())
    policy_source = policy_source or "the approvals policy"
    username, password = server_credentials(uri)
    # Asked first (without credentials) only when that can change the answer: no credentials to verify, or an
    # unpinned server the policy may allow unauthenticated; an unpinned server is otherwise never contacted
    allowed_somewhere = bool(pin.unauthenticated_server.risk_tiers) and not pin.pins(uri)
    if (not username or not password or allowed_somewhere) and server_authenticates(uri, pin) is False:
        allowed = pin.unauthenticated_server
        if (risk_tier is None and not allowed.risk_tiers) or (risk_tier is not None and not allowed.allows(risk_tier)):
            raise ConfigError(unauthenticated_server_refusal(uri, pin, policy_source, risk_tier))
        log.warning("MLflow at %s authenticates nobody; acting as the local, unverified user (%s)", uri, policy_source)
        return local_identity()
    if not username or not password:
        raise ConfigError(
            f"MLflow at {uri} needs your credentials: set {USERNAME_ENV} and {PASSWORD_ENV}, or add the server's "
            "host to ~/.netrc (governance actions are recorded under the user the server authenticates)"
        )
    claimed = os.environ.get(USER_ENV)
    if claimed and claimed != username:
        log.warning("%s=%s ignored: against %s you act as the authenticated user %s", USER_ENV, claimed, uri, username)
    return verify_server_user(uri, username, password, pin=pin, policy_source=policy_source)


def current_user() -> str:
    """The acting user's name (see :func:`current_identity`)."""
    return current_identity().user


def record_stage_event(event_type: str, *, role: str, subject: Any, reason: str, evidence: dict[str, str]) -> Any:
    """Sign a stage's own facts in the audit trail (``event_type``, a ``trail.Subject``) under the acting identity:
    the user the tracking server authenticated for the run, the local, unverified user on the embedded store."""
    from governance import trail

    who = current_identity()
    return trail.record(
        event_type,
        actor=who.user,
        role=role,
        identity_method=who.method,
        subject=subject,
        reason=reason,
        evidence=evidence,
    )
