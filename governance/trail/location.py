"""Where a trail lives: its database URL and the files that belong to it (signing key, trusted keys, checkpoint).

``GOVERN_AUDIT_URL`` when set (PostgreSQL in production), otherwise
``audit.db`` beside the local MLflow SQLite store. The trail reads only the
*location* of that store from ``MLFLOW_TRACKING_URI``; it imports nothing from
MLflow. A SQLite trail keeps its files beside the database (``audit.key``,
``audit.key.pub``, ``audit.checkpoint.jsonl``); a server database has no
"beside", so its signing key (``GOVERN_TRAIL_KEY_FILE`` or ``GOVERN_TRAIL_KEY``)
and checkpoint file (``GOVERN_TRAIL_CHECKPOINT``) are configured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from governance.errors import ConfigError

AUDIT_URL_ENV = "GOVERN_AUDIT_URL"
#: A PEM (PKCS#8) Ed25519 private key file that signs the trail's events.
KEY_FILE_ENV = "GOVERN_TRAIL_KEY_FILE"
#: The same key given inline: PEM text, or the raw 32-byte seed in base64 (for a CI secret).
KEY_ENV = "GOVERN_TRAIL_KEY"
#: The append-only checkpoint file (one signed head per append).
CHECKPOINT_ENV = "GOVERN_TRAIL_CHECKPOINT"
#: Where the reviewed public keys live (shared with the other policy files).
POLICY_DIR_ENV = "GOVERN_POLICY_DIR"


@dataclass(frozen=True)
class TrailFiles:
    """The files of one trail; ``None`` where that trail has none (nothing beside a server database)."""

    #: the default private key, created on first use (None when the key is configured or there is no "beside")
    default_key: Path | None
    #: public halves of keys created here: trusted as "local key, not reviewed in git"
    local_public_keys: Path | None
    checkpoint: Path | None
    trail_keys_policy: Path

    @property
    def key_configured(self) -> bool:
        return bool(os.environ.get(KEY_ENV) or os.environ.get(KEY_FILE_ENV))


def normalize_url(url: str) -> str:
    """``postgresql://`` means psycopg2 here (installed with the project) whatever SQLAlchemy's default."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def audit_url() -> str:
    """The trail's database: ``GOVERN_AUDIT_URL``, else ``audit.db`` beside the local MLflow store.

    A remote MLflow server has no "beside": its trail must be the shared
    database, so the URL is then required rather than silently local.
    """
    url = os.environ.get(AUDIT_URL_ENV)
    if url:
        return normalize_url(url)
    tracking = os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    if tracking.startswith("sqlite:///"):
        store = Path(tracking.removeprefix("sqlite:///")).resolve()
        return f"sqlite:///{store.parent / 'audit.db'}"
    if tracking.startswith("file:") or "://" not in tracking:
        store = Path(tracking.removeprefix("file://").removeprefix("file:")).resolve()
        return f"sqlite:///{store.parent / 'audit.db'}"
    raise ConfigError(
        f"{AUDIT_URL_ENV} is not set: with MLflow at {tracking} the audit trail must be the shared database "
        f"(e.g. {AUDIT_URL_ENV}=postgresql://user@host/audit); a local audit.db would split the trail"
    )


def redacted(url: str) -> str:
    """The URL without a password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"
    return url


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for memory or another dialect)."""
    if not url.startswith("sqlite:"):
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    return Path(path) if path and path != ":memory:" else None


def trail_files(url: str) -> TrailFiles:
    """The key, trusted-keys and checkpoint files of the trail at ``url``."""
    database = sqlite_path(url)
    checkpoint_env = os.environ.get(CHECKPOINT_ENV)
    beside = (lambda suffix: database.with_name(database.stem + suffix)) if database is not None else None
    return TrailFiles(
        default_key=beside(".key") if beside else None,
        local_public_keys=beside(".key.pub") if beside else None,
        checkpoint=Path(checkpoint_env) if checkpoint_env else (beside(".checkpoint.jsonl") if beside else None),
        trail_keys_policy=Path(os.environ.get(POLICY_DIR_ENV) or "policies") / "trail_keys.yaml",
    )


def trail_file_role(path: Path, url: str, files: TrailFiles) -> str | None:
    """What ``path`` is to the trail at ``url`` ("its checkpoint file", …), or None when it is none of its files.

    The trail's files: the SQLite database and its journals, the embedded key
    (``audit.key`` and anything named ``audit.key*``), the local public keys,
    the checkpoint file (configured or beside the store, and ``audit.checkpoint*``)
    and its verified-prefix record. Symbolic and hard links to any of them
    count as that file. An export must never be written over one.
    """
    database = sqlite_path(url)
    named: list[tuple[Path, str]] = []
    if database is not None:
        named += [(database, "the trail database")]
        named += [
            (database.with_name(database.name + suffix), "the trail database's journal")
            for suffix in ("-journal", "-wal", "-shm")
        ]
    if files.default_key is not None:
        named += [
            (files.default_key, "the trail signing key"),
            (files.default_key.with_name(files.default_key.name + ".next"), "the staged trail signing key"),
        ]
    if files.local_public_keys is not None:
        named.append((files.local_public_keys, "the trail's local public keys"))
    if files.checkpoint is not None:
        named.append((files.checkpoint, "the trail's checkpoint file"))
        record = files.checkpoint.with_name(files.checkpoint.name.removesuffix(".jsonl") + ".verified.json")
        named.append((record, "the trail's verified-prefix record"))
    target = path.resolve()
    for known, role in named:
        if target == known.resolve() or (path.exists() and known.exists() and path.samefile(known)):
            return role
    if database is not None and target.parent == database.resolve().parent:
        for prefix, role in (
            (f"{database.stem}.key", "a trail key file"),
            (f"{database.stem}.checkpoint", "a trail checkpoint file"),
        ):
            if target.name.startswith(prefix):
                return role
    return None
