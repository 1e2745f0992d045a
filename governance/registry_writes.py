"""Write the governance view (version tags, aliases, model tags) without importing MLflow.

Every governed action mirrors the trail onto MLflow: ``governance.*`` version
tags, the ``production``/``canary`` aliases and the ``governance.trail_head``
model tag. Through ``MlflowClient`` each action pays MLflow's import (~1.8 s
on the 2-core box) and its SQLite store start-up (~0.5 s of schema checks)
before the first write; benchmarks/cli_latency.py measures both. For the
embedded store (``sqlite:///…``) this module performs exactly the writes
MLflow's ``SqlAlchemyStore`` performs for these four calls, on the same
tables and in the same shape:

* ``set_model_version_tag`` — the version must exist (not ``Deleted_Internal``),
  then the row ``(workspace, key, name, version)`` is inserted or its value replaced;
* ``set_registered_model_alias`` — the version must exist, then
  ``(workspace, name, alias) -> version`` is inserted or replaced;
* ``delete_registered_model_alias`` — the model must exist; the alias row, if any, is deleted;
* ``set_registered_model_tag`` — the model must exist, then ``(workspace, key, name)`` is inserted or replaced.

MLflow touches no other column for these calls (no ``last_updated_time``),
so ``MlflowClient`` and the MLflow UI read back the same state (tests/governance/
test_registry_view.py compares both paths on real stores). It is narrow on
purpose: only the single-tenant ``default`` workspace, only tag keys MLflow
would accept and values within the column sizes, and only a store whose
tables have the columns written (checked once per connection). The writes of
one call are one SQLite transaction.

For a tracking server (``http(s)://…``, the team set-up) the same four calls
are the REST requests ``MlflowClient``'s ``RestStore`` sends (``model-versions/set-tag``,
``registered-models/alias`` POST and DELETE, ``registered-models/set-tag``),
with the credentials and certificate check of the registry reads
(:func:`governance.registry_view.rest_headers`, :func:`~governance.registry_view.tls_context`).
MLflow's client would first import MLflow (about 2 s of CPU, most of a
``govern approve``) and read the registered model before every write to check
it is not a prompt (a governed model is registered by the pipeline, never as a
prompt); the server decides and validates each write as it does for MLflow's
client, and its refusals read as MLflow's client words them
(tests/server/test_registry_rest.py compares both on a basic-auth
server). Inputs MLflow's client would refuse before sending, and every other
store, go through :mod:`governance.registry` (``MlflowClient``).

Trust boundary: nothing here decides anything; it writes a view of the trail.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from governance import registry
from governance.errors import PermissionDenied, RegistryError
from governance.registry_view import (
    DEFAULT_WORKSPACE,
    DELETED_STAGE,
    rest_headers,
    sqlite_path,
    store_kind,
    tls_context,
)

log = logging.getLogger(__name__)

#: MLflow's tag-name rule (letters, digits, ``_ - . / :`` and spaces; no ``..`` or leading ``/``) and key size.
_TAG_KEY = re.compile(r"^[\w\-./: ]{1,250}$")
#: The smaller of MLflow's limits on the two tag tables (registered_model_tags.value is VARCHAR(5000)).
_MAX_VALUE = 5000
_ALIAS = re.compile(r"^[\w\-]{1,255}$")
#: MLflow client settings this module does not reproduce (an auth plugin, a client certificate): with one set,
#: writes to a server go through MLflow's own client.
_CLIENT_ONLY_SETTINGS = ("MLFLOW_TRACKING_AUTH", "MLFLOW_TRACKING_CLIENT_CERT_PATH")
#: The columns written, per table; a store without them (an older schema) is left to MLflow's own client.
_SCHEMA = {
    "model_versions": {"workspace", "name", "version", "current_stage"},
    "registered_models": {"workspace", "name"},
    "model_version_tags": {"workspace", "key", "value", "name", "version"},
    "registered_model_aliases": {"workspace", "alias", "version", "name"},
    "registered_model_tags": {"workspace", "key", "value", "name"},
}


def _direct_path(keys: Iterable[str] = (), aliases: Iterable[str] = (), values: Iterable[str] = ()) -> str | None:
    """``sqlite`` or ``rest`` when this call can take a direct path (that store, and inputs MLflow itself would
    accept); None for MLflow's own client."""
    kind = store_kind()
    if kind not in ("sqlite", "rest"):
        return None
    if kind == "rest" and any(os.environ.get(name) for name in _CLIENT_ONLY_SETTINGS):
        return None
    accepted = (
        all(_TAG_KEY.match(k) and ".." not in k and not k.startswith("/") for k in keys)
        and all(_ALIAS.match(a) and a.lower() != "latest" and not re.match(r"^[vV]\d+$", a) for a in aliases)
        and all(len(v) <= _MAX_VALUE for v in values)
    )
    return kind if accepted else None


@contextmanager
def _store(action: str) -> Iterator[sqlite3.Connection | None]:
    """One write transaction on the embedded store; None when its schema is not the one this module writes."""
    uri = registry.tracking_uri()
    registry.require_existing_store(uri)
    path = sqlite_path(uri)
    db = None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=60, isolation_level=None)
        for table, columns in _SCHEMA.items():
            present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            if not columns <= present:
                yield None
                return
        db.execute("BEGIN IMMEDIATE")
        yield db
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        if db is not None and db.in_transaction:
            db.execute("ROLLBACK")
        raise RegistryError(f"{action} failed at {uri}: {exc}") from None
    except BaseException:
        if db is not None and db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        if db is not None:
            db.close()


def _require_version(db: sqlite3.Connection, name: str, version: int, action: str) -> None:
    found = db.execute(
        "SELECT 1 FROM model_versions WHERE workspace = ? AND name = ? AND version = ? AND current_stage IS NOT ?",
        (DEFAULT_WORKSPACE, name, version, DELETED_STAGE),
    ).fetchone()
    if found is None:
        raise RegistryError(
            f"{action} failed at {registry.tracking_uri()}: Model Version (name={name}, version={version}) not found"
        )


def _require_registered_model(db: sqlite3.Connection, name: str, action: str) -> None:
    found = db.execute(
        "SELECT 1 FROM registered_models WHERE workspace = ? AND name = ?", (DEFAULT_WORKSPACE, name)
    ).fetchone()
    if found is None:
        raise RegistryError(
            f"{action} failed at {registry.tracking_uri()}: Registered Model with name={name} not found"
        )


def set_version_tags(name: str, version: str | int, tags: dict[str, str]) -> None:
    """Set ``tags`` on one version (MLflow's ``set_model_version_tag``, once per tag, in one transaction)."""
    if not tags:
        return
    action = f"tagging {name} v{version}"
    path = _direct_path(keys=tags, values=tags.values())
    if path == "rest":
        for key, value in tags.items():
            body = {"name": name, "version": str(version), "key": key, "value": value}
            _rest_write("POST", "model-versions/set-tag", body, action)
        return
    if path == "sqlite":
        with _store(action) as db:
            if db is not None:
                _require_version(db, name, int(version), action)
                db.executemany(
                    "INSERT INTO model_version_tags (workspace, key, value, name, version) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (workspace, key, name, version) DO UPDATE SET value = excluded.value",
                    [(DEFAULT_WORKSPACE, key, value, name, int(version)) for key, value in tags.items()],
                )
                return
    registry.set_version_tags(name, version, tags)


def set_alias(name: str, alias: str, version: str | int) -> None:
    """Point ``alias`` of ``name`` at ``version`` (MLflow's ``set_registered_model_alias``)."""
    action = f"setting alias {alias!r} of {name} to v{version}"
    path = _direct_path(aliases=[alias])
    if path == "rest":
        _rest_write("POST", "registered-models/alias", {"name": name, "alias": alias, "version": str(version)}, action)
        return
    if path == "sqlite":
        with _store(action) as db:
            if db is not None:
                _require_version(db, name, int(version), action)
                db.execute(
                    "INSERT INTO registered_model_aliases (workspace, alias, version, name) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (workspace, name, alias) DO UPDATE SET version = excluded.version",
                    (DEFAULT_WORKSPACE, alias, int(version), name),
                )
                return
    registry.set_alias(name, alias, version)


def delete_alias(name: str, alias: str) -> None:
    """Remove ``alias`` from ``name``; an absent alias is a no-op (MLflow's ``delete_registered_model_alias``)."""
    action = f"removing alias {alias!r} of {name}"
    path = _direct_path(aliases=[alias])
    if path == "rest":
        body = {"name": name, "alias": alias}
        _rest_write("DELETE", "registered-models/alias", body, action, needs="MANAGE", missing_ok=True)
        return
    if path == "sqlite":
        with _store(action) as db:
            if db is not None:
                _require_registered_model(db, name, action)
                db.execute(
                    "DELETE FROM registered_model_aliases WHERE workspace = ? AND name = ? AND alias = ?",
                    (DEFAULT_WORKSPACE, name, alias),
                )
                return
    registry.delete_alias(name, alias)


def set_model_tag(name: str, key: str, value: str) -> None:
    """Set one tag on the registered model ``name`` (MLflow's ``set_registered_model_tag``)."""
    action = f"tagging registered model {name}"
    path = _direct_path(keys=[key], values=[value])
    if path == "rest":
        _rest_write("POST", "registered-models/set-tag", {"name": name, "key": key, "value": value}, action)
        return
    if path == "sqlite":
        with _store(action) as db:
            if db is not None:
                _require_registered_model(db, name, action)
                db.execute(
                    "INSERT INTO registered_model_tags (workspace, key, value, name) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (workspace, key, name) DO UPDATE SET value = excluded.value",
                    (DEFAULT_WORKSPACE, key, value, name),
                )
                return
    registry.set_model_tag(name, key, value)


def mirror_version_tags(
    name: str, version: str | int, tags: dict[str, str], *, current: dict[str, dict[str, str]] | None = None
) -> int:
    """Write the tags whose value differs from the version's current ones; returns how many changed.

    ``current``: :func:`governance.registry_view.version_tags`' answer for ``name`` when the caller mirrors several
    versions (one read for all); else the version is read here.
    """
    from governance.registry_view import read_version, tags_of

    now = read_version(name, version).tags if current is None else tags_of(current, name, version)
    changed = {key: value for key, value in tags.items() if now.get(key) != value}
    set_version_tags(name, version, changed)
    return len(changed)


# --------------------------------------------------------------------------- a tracking server

#: The error code MLflow's client gives an answer that is not its JSON (basic-auth's 401 and 403 are plain text).
_HTTP_STATUS_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "ENDPOINT_NOT_FOUND"}


def _rest_write(
    method: str,
    endpoint: str,
    body: dict[str, Any],
    action: str,
    *,
    needs: str = "EDIT (or MANAGE)",
    missing_ok: bool = False,
    attempts: int = 5,
) -> None:
    """Send one write to ``/api/2.0/mlflow/<endpoint>`` as MLflow's ``RestStore`` does, and fail as
    :mod:`governance.registry` does through ``MlflowClient``.

    The server refusing the user is :class:`PermissionDenied` naming ``needs``; ``missing_ok``: a
    RESOURCE_DOES_NOT_EXIST answer is a no-op (an absent alias); the second of two writers inserting the
    same key is sent again (see :func:`governance.registry._upsert`); anything else is one
    :class:`RegistryError` line with MLflow's own message.
    """
    uri = registry.tracking_uri()
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/{endpoint}"
    headers = {**rest_headers(), "Content-Type": "application/json"}
    data = json.dumps(body).encode()
    timeout = float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "15"))
    for attempt in range(attempts):
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=tls_context()) as response:  # noqa: S310
                response.read()
            return
        except urllib.error.HTTPError as exc:
            code, message = _mlflow_error(exc, endpoint)
        except (OSError, ValueError) as exc:
            raise RegistryError(f"{action} failed: cannot reach {uri} ({exc.__class__.__name__})") from None
        if missing_ok and (code == "RESOURCE_DOES_NOT_EXIST" or "not found" in message):
            return
        if code in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
            user = os.environ.get("MLFLOW_TRACKING_USERNAME", "this user")
            raise PermissionDenied(
                f"MLflow at {uri} refused {user}: {action} needs {needs} permission on the registered model"
            )
        if attempt < attempts - 1 and any(marker in message for marker in registry.KEY_RACE):
            log.info("a concurrent writer set the same key first; writing again (attempt %d)", attempt + 2)
            time.sleep(0.05 * (attempt + 1))
            continue
        raise RegistryError(f"{action} failed at {uri}: {message.splitlines()[0][:300] if message else code}")


def _mlflow_error(exc: urllib.error.HTTPError, endpoint: str) -> tuple[str, str]:
    """The error code and message MLflow's client makes of a refused request (``RestException`` for its JSON,
    else the status and body, as ``verify_rest_response`` words it)."""
    text = exc.read().decode("utf-8", "replace")
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if isinstance(answer, dict):
        code = str(answer.get("error_code") or "INTERNAL_ERROR")
        detail = answer["message"] if "message" in answer else f"Response: {answer}"
        return code, f"{code}: {detail}"
    code = _HTTP_STATUS_CODES.get(exc.code, "INTERNAL_ERROR")
    return code, (
        f"API request to endpoint /api/2.0/mlflow/{endpoint} failed with error code {exc.code} != 200. "
        f"Response body: '{text}'"
    )
