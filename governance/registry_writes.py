"""Write the governance view (version tags, aliases, model tags) to the embedded store without importing MLflow.

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
tables have the columns written (checked once per connection). Anything else
— and every other store — goes through :mod:`governance.registry`
(``MlflowClient``), which validates and migrates as MLflow does. The writes of
one call are one SQLite transaction.

Trust boundary: nothing here decides anything; it writes a view of the trail.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from governance import registry
from governance.errors import RegistryError
from governance.registry_view import DEFAULT_WORKSPACE, DELETED_STAGE, sqlite_path, store_kind

#: MLflow's tag-name rule (letters, digits, ``_ - . / :`` and spaces; no ``..`` or leading ``/``) and key size.
_TAG_KEY = re.compile(r"^[\w\-./: ]{1,250}$")
#: The smaller of MLflow's limits on the two tag tables (registered_model_tags.value is VARCHAR(5000)).
_MAX_VALUE = 5000
_ALIAS = re.compile(r"^[\w\-]{1,255}$")
#: The columns written, per table; a store without them (an older schema) is left to MLflow's own client.
_SCHEMA = {
    "model_versions": {"workspace", "name", "version", "current_stage"},
    "registered_models": {"workspace", "name"},
    "model_version_tags": {"workspace", "key", "value", "name", "version"},
    "registered_model_aliases": {"workspace", "alias", "version", "name"},
    "registered_model_tags": {"workspace", "key", "value", "name"},
}


def _writable_here(keys: Iterable[str] = (), aliases: Iterable[str] = (), values: Iterable[str] = ()) -> bool:
    """True when this call can take the direct path: the embedded store and inputs MLflow itself would accept."""
    if store_kind() != "sqlite":
        return False
    return (
        all(_TAG_KEY.match(k) and ".." not in k and not k.startswith("/") for k in keys)
        and all(_ALIAS.match(a) and a.lower() != "latest" and not re.match(r"^[vV]\d+$", a) for a in aliases)
        and all(len(v) <= _MAX_VALUE for v in values)
    )


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
    if _writable_here(keys=tags, values=tags.values()):
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
    if _writable_here(aliases=[alias]):
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
    if _writable_here(aliases=[alias]):
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
    if _writable_here(keys=[key], values=[value]):
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


def mirror_version_tags(name: str, version: str | int, tags: dict[str, str]) -> int:
    """Write the tags whose value differs from the version's current ones; returns how many changed."""
    from governance.registry_view import read_version

    current = read_version(name, version).tags
    changed = {key: value for key, value in tags.items() if current.get(key) != value}
    set_version_tags(name, version, changed)
    return len(changed)
