"""The audit trail: an append-only, hash-chained event store — the truth of who did what.

Every governance decision (registration, gate and eval decisions, approvals,
rejections, promotions, canaries, rollbacks, waivers, objective approvals and
refusals) is one :class:`Event`, written only through :func:`record`. Each
event stores the SHA-256 of the previous event (``prev_hash``) and its own
hash over every stored column, so editing any byte of any event, removing one
or inserting one breaks the chain, and :func:`verify` names the first bad
event. Tables also carry append-only triggers; the chain is what detects an
administrator who drops them.

Storage is SQLAlchemy: ``GOVERN_AUDIT_URL`` when set (PostgreSQL in
production), otherwise ``audit.db`` beside the local MLflow SQLite store. The
trail reads only the *location* of that store from ``MLFLOW_TRACKING_URI``; it
imports nothing from MLflow — the registry mirrors the trail, never the
reverse.

Appends are serialised so the chain stays linear under concurrency: a
transaction-scoped advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite,
and unique constraints on ``seq`` and ``prev_hash`` behind both, with a retry
on conflict. :func:`record` takes an optional ``guard`` (run under the lock
with the subject's events; returning an existing event makes the call
idempotent, raising refuses) and ``before_commit`` (run after the insert and
before the commit; raising rolls the event back). Both may run more than once
when an append is retried, so they must be idempotent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import (
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from governance.errors import AuditError, ConfigError, TrailBroken

log = logging.getLogger(__name__)

AUDIT_URL_ENV = "GOVERN_AUDIT_URL"
EventType = Literal[
    "model_registered",
    "gate_decision",
    "eval_decision",
    "objective_approved",
    "approved",
    "rejected",
    "promoted",
    "canary_started",
    "rolled_back",
    "canary_ended",
    "waiver_granted",
    "permission_denied",
    "registry_reconciled",
    "monitoring_checked",
    "incident_opened",
    "incident_closed",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]
#: ``prev_hash`` of the first event.
GENESIS_HASH = "0" * 64
#: Key of the PostgreSQL advisory lock that serialises appends ("govaudit" in ASCII).
_PG_LOCK_KEY = 0x676F7661756469
_RETRIES = 8

_metadata = MetaData()
events_table = Table(
    "audit_events",
    _metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("event_type", String(40), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("role", String(200), nullable=False),
    Column("timestamp", String(40), nullable=False),
    Column("subject_model", String(300), nullable=False),
    Column("subject_version", String(40), nullable=False),
    Column("subject_objective", String(300), nullable=False),
    Column("subject_objective_hash", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False, unique=True),
    Column("hash", String(64), nullable=False, unique=True),
    Index("ix_audit_events_model_version", "subject_model", "subject_version"),
    Index("ix_audit_events_objective", "subject_objective"),
)
#: The stored columns, in the order the hash covers them.
COLUMNS: tuple[str, ...] = tuple(c.name for c in events_table.columns if c.name != "hash")

_APPEND_ONLY_SQLITE = [
    "CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
]
_APPEND_ONLY_POSTGRES = [
    "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_events is append-only'; END; $$ LANGUAGE plpgsql",
    "CREATE OR REPLACE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
]


class Subject(BaseModel):
    """What an event is about: a model version, or a stage's objective (``stage:name`` and its hash)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = ""
    version: str = ""
    objective: str = ""
    objective_hash: str = ""

    def label(self) -> str:
        if self.model:
            return f"{self.model} v{self.version}" if self.version else self.model
        if self.objective:
            return f"objective {self.objective} {self.objective_hash[:12]}"
        return "(no subject)"


class Event(BaseModel):
    """One stored event. ``hash`` covers every other field; ``prev_hash`` links the chain."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int
    event_type: EventType
    actor: str
    role: str
    timestamp: str = Field(description="ISO 8601, UTC")
    subject: Subject
    reason: str
    evidence: dict[str, str] = Field(description="name -> hash (or id) of what the decision relied on")
    details: dict[str, Any] = {}
    prev_hash: str
    hash: str
    #: False when :func:`record` found an equivalent event and appended nothing (not stored, not hashed).
    created: bool = Field(default=True, exclude=True)

    @property
    def time(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.timestamp)

    def line(self) -> str:
        """One human-readable line: ``#12 2026-… approved govllm-sft v3 by bob (reviewer): reason``."""
        return (
            f"#{self.seq} {self.timestamp[:19]}Z {self.event_type} {self.subject.label()} "
            f"by {self.actor} ({self.role}): {self.reason}"
        )

    def stored_row(self) -> dict[str, Any]:
        """The row as stored (and hashed): flat subject, evidence and details as canonical JSON text."""
        return {
            "seq": self.seq,
            "event_type": self.event_type,
            "actor": self.actor,
            "role": self.role,
            "timestamp": self.timestamp,
            "subject_model": self.subject.model,
            "subject_version": self.subject.version,
            "subject_objective": self.subject.objective,
            "subject_objective_hash": self.subject.objective_hash,
            "reason": self.reason,
            "evidence": canonical_json(self.evidence),
            "details": canonical_json(self.details),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


class Verification(BaseModel):
    """The result of recomputing the chain."""

    ok: bool
    events: int
    head_hash: str | None
    first_bad_seq: int | None = None
    problem: str | None = None

    def line(self) -> str:
        if self.ok:
            return f"audit trail intact: {self.events} events, head {self.head_hash or GENESIS_HASH}"
        return f"audit trail BROKEN: {self.problem}"


def canonical_json(value: Any) -> str:
    """The one serialisation that is stored and hashed: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def row_hash(row: dict[str, Any]) -> str:
    """SHA-256 over the stored columns of a row (all but ``hash``), exactly as stored."""
    payload = canonical_json({name: row[name] for name in COLUMNS})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


# --------------------------------------------------------------------------- location


def _normalize_url(url: str) -> str:
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
        return _normalize_url(url)
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


# --------------------------------------------------------------------------- store


class Trail:
    """One audit-trail database. Use :func:`open_trail` to share engines within a process."""

    def __init__(self, url: str):
        self.url = _normalize_url(url)
        self.dialect = self.url.split(":", 1)[0].split("+", 1)[0]
        self._ready = False
        self._ready_lock = threading.Lock()
        self.engine = self._create_engine()

    def _create_engine(self) -> Engine:
        try:
            if self.dialect == "sqlite":
                path = self.url.removeprefix("sqlite:///")
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(self.url, connect_args={"timeout": 60, "check_same_thread": False})

                @event.listens_for(engine, "connect")
                def _no_driver_transactions(dbapi_connection, _record):  # pragma: no cover - driver hook
                    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves

                @event.listens_for(engine, "begin")
                def _begin(conn: Connection) -> None:
                    # Writers take the database write lock up front: no lost append, no upgrade deadlock.
                    immediate = conn.get_execution_options().get("audit_write", False)
                    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

                return engine
            return create_engine(self.url, pool_pre_ping=True, connect_args=_connect_args(self.dialect))
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise ConfigError(f"{AUDIT_URL_ENV}={redacted(self.url)}: not a usable database URL ({exc})") from None

    # -- schema -----------------------------------------------------------------

    def _ensure_schema(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            with self._errors("creating the audit tables"), self._write() as conn:
                if not inspect(conn).has_table(events_table.name):
                    _metadata.create_all(conn)
                    statements = _APPEND_ONLY_POSTGRES if self.dialect == "postgresql" else _APPEND_ONLY_SQLITE
                    if self.dialect in ("postgresql", "sqlite"):
                        for statement in statements:
                            conn.exec_driver_sql(statement)
            self._ready = True

    # -- plumbing ---------------------------------------------------------------

    def _write(self):
        """A transaction holding the trail's append lock until it commits or rolls back."""
        return _WriteTransaction(self)

    def _errors(self, action: str):
        return _AuditErrors(action, self.url)

    # -- writing ----------------------------------------------------------------

    def append(
        self,
        event_type: str,
        *,
        actor: str,
        role: str,
        subject: Subject,
        reason: str,
        evidence: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
        guard: Callable[[list[Event]], Event | None] | None = None,
        before_commit: Callable[[Event, list[Event]], None] | None = None,
    ) -> Event:
        """Append one event (see :func:`record`)."""
        if event_type not in EVENT_TYPES:
            raise AuditError(f"unknown audit event type {event_type!r} (known: {', '.join(EVENT_TYPES)})")
        evidence = {str(k): str(v) for k, v in (evidence or {}).items()}
        details = json.loads(canonical_json(details or {}))
        self._ensure_schema()
        for attempt in range(_RETRIES):
            try:
                with self._errors("appending to the audit trail"), self._write() as conn:
                    related = self._related(conn, subject)
                    if guard is not None:
                        existing = guard(related)
                        if existing is not None:
                            return existing.model_copy(update={"created": False})
                    head = conn.execute(
                        select(events_table.c.seq, events_table.c.hash).order_by(events_table.c.seq.desc()).limit(1)
                    ).first()
                    seq, prev_hash = (head.seq + 1, head.hash) if head is not None else (1, GENESIS_HASH)
                    row = {
                        "seq": seq,
                        "event_type": event_type,
                        "actor": actor,
                        "role": role,
                        "timestamp": now_utc(),
                        "subject_model": subject.model,
                        "subject_version": subject.version,
                        "subject_objective": subject.objective,
                        "subject_objective_hash": subject.objective_hash,
                        "reason": reason,
                        "evidence": canonical_json(evidence),
                        "details": canonical_json(details),
                        "prev_hash": prev_hash,
                    }
                    row["hash"] = row_hash(row)
                    conn.execute(events_table.insert().values(**row))
                    new = _event_from_row(row)
                    if before_commit is not None:
                        before_commit(new, related)
                    return new
            except _Conflict:
                # Another writer took this seq/prev_hash (a dialect without our lock) or the lock timed out.
                if attempt == _RETRIES - 1:
                    raise AuditError(
                        f"appending to the audit trail at {redacted(self.url)} failed: "
                        f"still conflicting after {_RETRIES} attempts"
                    ) from None
                time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _related(self, conn: Connection, subject: Subject) -> list[Event]:
        if subject.model:
            where = events_table.c.subject_model == subject.model
        elif subject.objective:
            where = events_table.c.subject_objective == subject.objective
        else:
            return []
        rows = conn.execute(select(events_table).where(where).order_by(events_table.c.seq)).mappings()
        return [_event_from_row(dict(r)) for r in rows]

    # -- reading ----------------------------------------------------------------

    def events(
        self,
        *,
        model: str | None = None,
        version: str | None = None,
        objective: str | None = None,
        event_types: Iterable[str] | None = None,
    ) -> list[Event]:
        """Stored events in chain order, filtered by subject and type."""
        self._ensure_schema()
        query = select(events_table).order_by(events_table.c.seq)
        if model is not None:
            query = query.where(events_table.c.subject_model == model)
        if version is not None:
            query = query.where(events_table.c.subject_version == str(version))
        if objective is not None:
            query = query.where(events_table.c.subject_objective == objective)
        if event_types is not None:
            query = query.where(events_table.c.event_type.in_(list(event_types)))
        with self._errors("reading the audit trail"), self.engine.connect() as conn:
            return [_event_from_row(dict(r)) for r in conn.execute(query).mappings()]

    def head(self) -> Event | None:
        """The last event (its ``hash`` is the head of the chain), or None for an empty trail."""
        self._ensure_schema()
        query = select(events_table).order_by(events_table.c.seq.desc()).limit(1)
        with self._errors("reading the audit trail"), self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _event_from_row(dict(row)) if row is not None else None

    def raw_rows(self) -> Iterator[dict[str, Any]]:
        """Stored rows exactly as the database holds them, in ``seq`` order (for verification)."""
        self._ensure_schema()
        with self._errors("reading the audit trail"), self.engine.connect() as conn:
            for row in conn.execute(select(events_table).order_by(events_table.c.seq)).mappings():
                yield dict(row)

    def verify(self, archive: str | Path | None = None) -> Verification:
        """Recompute the chain from the stored bytes; with ``archive``, also require it as a prefix."""
        result = verify_rows(self.raw_rows())
        if not result.ok or archive is None:
            return result
        archived = read_export(archive)
        archived_check = verify_rows(e.stored_row() for e in archived)
        if not archived_check.ok:
            return archived_check.model_copy(update={"problem": f"archive {archive}: {archived_check.problem}"})
        stored = {row["seq"]: row["hash"] for row in self.raw_rows()}
        for archived_event in archived:
            if stored.get(archived_event.seq) != archived_event.hash:
                what = "is missing from the trail" if archived_event.seq not in stored else "differs in the trail"
                return Verification(
                    ok=False,
                    events=result.events,
                    head_hash=result.head_hash,
                    first_bad_seq=archived_event.seq,
                    problem=f"event #{archived_event.seq} ({_describe(archived_event.stored_row())}) of archive "
                    f"{archive} {what}; it was truncated or rewritten since it was archived",
                )
        return result

    def export(self, handle: IO[str]) -> int:
        """Write every event as one JSON line (chain order); returns the count."""
        count = 0
        for row in self.raw_rows():
            handle.write(canonical_json(_event_from_row(row).model_dump(mode="json")) + "\n")
            count += 1
        return count


class _Conflict(Exception):
    """A retryable write conflict."""


class _WriteTransaction:
    def __init__(self, trail: Trail):
        self.trail = trail
        self.conn: Connection | None = None
        self.transaction = None

    def __enter__(self) -> Connection:
        conn = self.trail.engine.connect()
        self.conn = conn
        if self.trail.dialect == "sqlite":
            conn.execution_options(audit_write=True)
        self.transaction = conn.begin()
        if self.trail.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        return conn

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.conn is not None and self.transaction is not None
        try:
            if exc_type is None:
                self.transaction.commit()
            else:
                self.transaction.rollback()
        finally:
            self.conn.close()


class _AuditErrors:
    """Database failures as one :class:`AuditError` line; unique-key and lock conflicts as retryable."""

    def __init__(self, action: str, url: str):
        self.action, self.url = action, url

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or not isinstance(exc, SQLAlchemyError):
            return False
        message = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
        if isinstance(exc, IntegrityError) or (
            isinstance(exc, OperationalError | DBAPIError)
            and any(s in message.lower() for s in ("database is locked", "could not serialize", "deadlock"))
        ):
            raise _Conflict(message) from None
        if "append-only" in message:
            raise AuditError(f"{self.action}: the audit trail is append-only ({message})") from None
        raise AuditError(f"{self.action} failed at {redacted(self.url)}: {message}") from None


def _connect_args(dialect: str) -> dict[str, Any]:
    return {"connect_timeout": 10} if dialect == "postgresql" else {}


def _event_from_row(row: dict[str, Any]) -> Event:
    try:
        return Event(
            seq=row["seq"],
            event_type=row["event_type"],
            actor=row["actor"],
            role=row["role"],
            timestamp=row["timestamp"],
            subject=Subject(
                model=row["subject_model"],
                version=row["subject_version"],
                objective=row["subject_objective"],
                objective_hash=row["subject_objective_hash"],
            ),
            reason=row["reason"],
            evidence=json.loads(row["evidence"]),
            details=json.loads(row["details"]),
            prev_hash=row["prev_hash"],
            hash=row["hash"],
        )
    except (ValueError, ValidationError, TypeError, KeyError):
        raise AuditError(
            f"audit event #{row.get('seq')} is unreadable (edited in the database?); run `govern audit verify`"
        ) from None


def _describe(row: dict[str, Any]) -> str:
    subject = row.get("subject_model") or row.get("subject_objective") or "-"
    version = f" v{row['subject_version']}" if row.get("subject_version") else ""
    return f"{row.get('event_type')} {subject}{version} by {row.get('actor')}"


def verify_rows(rows: Iterable[dict[str, Any]]) -> Verification:
    """Recompute the chain over rows in ``seq`` order; the first bad event ends the check."""
    prev, count = GENESIS_HASH, 0
    for expected, row in enumerate(rows, start=1):
        count = expected
        seq = row.get("seq")
        problem = None
        if seq != expected:
            problem = f"event #{expected} is missing or renumbered (found #{seq}, {_describe(row)}, in its place)"
        elif row.get("prev_hash") != prev:
            problem = (
                f"event #{seq} ({_describe(row)}): prev_hash does not match the hash of event #{seq - 1}; "
                "an event before it was removed, inserted or edited"
            )
        else:
            try:
                recomputed = row_hash(row)
            except (KeyError, TypeError, ValueError):
                recomputed = None
            if recomputed != row.get("hash"):
                problem = f"event #{seq} ({_describe(row)}): stored content does not match its hash; it was edited"
        if problem is not None:
            return Verification(ok=False, events=expected - 1, head_hash=prev, first_bad_seq=expected, problem=problem)
        prev = row["hash"]
    return Verification(ok=True, events=count, head_hash=prev if count else None)


def read_export(path: str | Path) -> list[Event]:
    """Events from a ``govern audit export`` JSON Lines file; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: audit export not found")
    out = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                out.append(Event.model_validate_json(line))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "(line)"
                raise ConfigError(f"{path}:{number}: not an audit event ({where}: {first['msg']})") from None
    return out


# --------------------------------------------------------------------------- module API

_TRAILS: dict[str, Trail] = {}
_TRAILS_LOCK = threading.Lock()


def open_trail(url: str | None = None) -> Trail:
    """The trail at ``url`` (default :func:`audit_url`), one engine per URL per process."""
    url = _normalize_url(url) if url else audit_url()
    with _TRAILS_LOCK:
        if url not in _TRAILS:
            _TRAILS[url] = Trail(url)
        return _TRAILS[url]


def _after_fork_in_child() -> None:  # pragma: no cover - exercised by the multi-process tests
    # A forked child must not reuse the parent's pooled connections.
    for trail in _TRAILS.values():
        trail.engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)


def record(
    event_type: str,
    *,
    actor: str,
    role: str,
    subject: Subject,
    reason: str,
    evidence: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
    guard: Callable[[list[Event]], Event | None] | None = None,
    before_commit: Callable[[Event, list[Event]], None] | None = None,
    url: str | None = None,
) -> Event:
    """Append one event to the audit trail — the only way anything writes to it.

    ``guard(events)`` runs under the append lock with every stored event of
    the same model (or objective); return an existing event to append nothing
    (the result then has ``created`` False), raise to refuse.
    ``before_commit(event, events)`` runs after the insert, before the commit;
    if it raises, the event is rolled back and the exception propagates.
    """
    return open_trail(url).append(
        event_type,
        actor=actor,
        role=role,
        subject=subject,
        reason=reason,
        evidence=evidence,
        details=details,
        guard=guard,
        before_commit=before_commit,
    )


def events(
    *,
    model: str | None = None,
    version: str | None = None,
    objective: str | None = None,
    event_types: Iterable[str] | None = None,
    url: str | None = None,
) -> list[Event]:
    """Stored events in chain order, e.g. ``events(model="govllm-sft", version="3")``."""
    return open_trail(url).events(model=model, version=version, objective=objective, event_types=event_types)


def head(url: str | None = None) -> Event | None:
    """The newest event; ``head().hash`` is the chain head to archive or quote in a report."""
    return open_trail(url).head()


def verify(url: str | None = None, archive: str | Path | None = None) -> Verification:
    """Recompute the whole chain (and check an archived export is still its prefix)."""
    return open_trail(url).verify(archive)


def require_intact(url: str | None = None) -> Verification:
    """Verify the trail and raise :class:`TrailBroken` (exit 1) naming the first problem unless it is intact.

    Every governed action (approve, reject, promote, canary, rollback,
    approve-objective, registration) calls this first: nothing may be appended
    to, or decided from, a chain that does not verify.
    """
    result = verify(url)
    if not result.ok:
        raise TrailBroken(f"refusing to act on a broken audit trail: {result.problem} (see `govern audit verify`)")
    return result
