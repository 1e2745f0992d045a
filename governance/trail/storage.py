"""Storage: the trail's database (SQLAlchemy, SQLite or PostgreSQL), appends under a lock, reads.

Appends are serialised so the chain stays linear under concurrency: a
transaction-scoped advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite,
and unique constraints on ``seq`` and ``prev_hash`` behind both, with a retry
on conflict. Each append hashes the row (:mod:`.chain`), signs the hash
(:mod:`.signing`) and, after the commit, appends the new head to the
checkpoint file (:mod:`.anchor`). Tables also carry append-only triggers;
the chain, the signatures and the anchors are what detect an administrator
who drops them.

Each store has an instance id (``audit_trail_meta.trail_id``, a random UUID)
minted when the store is created and written into every event's hash, so an
event copied in from another trail that shares the signing key is a finding.
A store from before trail ids gains the column (``""`` for its old events,
which stay verifiable as they were hashed) and an id for the events to come.
A byte-for-byte copy of a store is the same instance until the copies
diverge; off-box anchors are what tell such forks apart.

Trust boundary: rows read back are displayed as stored; only :meth:`Trail.verify`
says whether they can be believed.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError
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

from governance.errors import AuditError, ConfigError
from governance.trail import anchor as anchors_mod
from governance.trail import bulk, signing, verified
from governance.trail.chain import (
    COLUMNS,
    EVENT_TYPES,
    GENESIS_HASH,
    IDENTITY_METHODS,
    TEXT_FIELDS,
    Event,
    Subject,
    Verification,
    canonical_json,
    describe,
    now_utc,
    require_bounded,
    require_printable,
    require_user_name,
    row_hash,
    verify_rows,
)
from governance.trail.location import (
    AUDIT_URL_ENV,
    CHECKPOINT_ENV,
    KEY_ENV,
    KEY_FILE_ENV,
    normalize_url,
    redacted,
    trail_files,
)

#: Key of the PostgreSQL advisory lock that serialises appends ("govaudit" in ASCII).
_PG_LOCK_KEY = 0x676F7661756469
_RETRIES = 8
#: Rows fetched per round trip when a verification streams the trail.
_BATCH = 5000

_metadata = MetaData()
events_table = Table(
    "audit_events",
    _metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("event_type", String(40), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("role", String(200), nullable=False),
    Column("identity_method", String(40), nullable=False),
    Column("timestamp", String(40), nullable=False),
    Column("subject_model", String(300), nullable=False),
    Column("subject_version", String(40), nullable=False),
    Column("subject_objective", String(300), nullable=False),
    Column("subject_objective_hash", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False, unique=True),
    Column("key_id", String(40), nullable=False),
    Column("trail_id", String(40), nullable=False, server_default=""),
    Column("prev_signature", String(100), nullable=False, server_default=""),
    Column("hash", String(64), nullable=False, unique=True),
    Column("signature", String(100), nullable=False),
    Index("ix_audit_events_model_version", "subject_model", "subject_version"),
    Index("ix_audit_events_objective", "subject_objective"),
    Index("ix_audit_events_type", "event_type"),
)
if tuple(c.name for c in events_table.columns if c.name not in ("hash", "signature")) != COLUMNS:
    raise ImportError("audit_events columns and chain.COLUMNS disagree")  # pragma: no cover - a coding slip
#: One row per fact about the store itself; today only ``trail_id``, minted with the store.
meta_table = Table(
    "audit_trail_meta",
    _metadata,
    Column("name", String(40), primary_key=True),
    Column("value", String(200), nullable=False),
)
#: What a store from before trail ids gains (its old events keep ``""`` and their hashes).
_ADD_TRAIL_ID = "ALTER TABLE audit_events ADD COLUMN trail_id VARCHAR(40) NOT NULL DEFAULT ''"
#: What a store from before chained signatures gains (its old events keep ``""`` and their hashes).
_ADD_PREV_SIGNATURE = "ALTER TABLE audit_events ADD COLUMN prev_signature VARCHAR(100) NOT NULL DEFAULT ''"

_APPEND_ONLY_SQLITE = [
    "CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
]
_META_APPEND_ONLY_SQLITE = [
    "CREATE TRIGGER IF NOT EXISTS audit_trail_meta_no_update BEFORE UPDATE ON audit_trail_meta "
    "BEGIN SELECT RAISE(ABORT, 'audit_trail_meta is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_trail_meta_no_delete BEFORE DELETE ON audit_trail_meta "
    "BEGIN SELECT RAISE(ABORT, 'audit_trail_meta is append-only'); END",
]
_APPEND_ONLY_POSTGRES = [
    "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_events is append-only'; END; $$ LANGUAGE plpgsql",
    "CREATE OR REPLACE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
]
_META_APPEND_ONLY_POSTGRES = [
    "CREATE OR REPLACE FUNCTION audit_trail_meta_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_trail_meta is append-only'; END; $$ LANGUAGE plpgsql",
    "CREATE OR REPLACE TRIGGER audit_trail_meta_append_only BEFORE UPDATE OR DELETE ON audit_trail_meta "
    "FOR EACH ROW EXECUTE FUNCTION audit_trail_meta_append_only()",
]


class Trail:
    """One audit-trail database. Use :func:`open_trail` to share engines within a process."""

    def __init__(self, url: str):
        self.url = normalize_url(url)
        self.dialect = self.url.split(":", 1)[0].split("+", 1)[0]
        self.files = trail_files(self.url)
        self._ready = False
        self._ready_lock = threading.Lock()
        #: False only inside ``governance.trail._benchmark_unsigned`` (the benchmark's baseline); never configurable.
        self._signing = True
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
                    # what a full verification hashes rows with in the database (trail/bulk.py)
                    dbapi_connection.create_function(bulk.SQLITE_SHA256, 1, bulk.sqlite_sha256, deterministic=True)

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
                inspector = inspect(conn)
                if not inspector.has_table(events_table.name):
                    events_table.create(conn)
                    self._append_only(conn, _APPEND_ONLY_POSTGRES, _APPEND_ONLY_SQLITE)
                else:
                    columns = {c["name"] for c in inspector.get_columns(events_table.name)}
                    if "signature" not in columns:
                        raise AuditError(
                            f"the audit trail at {redacted(self.url)} was written by an older govern without event "
                            "signatures and cannot be verified by this one; archive it (`govern audit export` of "
                            "that release) and start a new trail"
                        )
                    if "trail_id" not in columns:
                        conn.exec_driver_sql(_ADD_TRAIL_ID)  # older events keep "" and verify as they were hashed
                    if "prev_signature" not in columns:
                        conn.exec_driver_sql(_ADD_PREV_SIGNATURE)  # likewise: chaining starts with the next event
                if not inspector.has_table(meta_table.name):
                    meta_table.create(conn)
                    self._append_only(conn, _META_APPEND_ONLY_POSTGRES, _META_APPEND_ONLY_SQLITE)
                if _stored_trail_id(conn) is None:
                    identified = conn.execute(
                        select(events_table.c.seq).where(events_table.c.trail_id != "").limit(1)
                    ).first()
                    if identified is None:  # a new store, or one from before trail ids: mint its id
                        conn.execute(meta_table.insert().values(name="trail_id", value=uuid.uuid4().hex))
                    # else the id was deleted: verify reports it and appends refuse (never re-minted silently)
            self._ready = True

    def _append_only(self, conn: Connection, postgres: list[str], sqlite: list[str]) -> None:
        if self.dialect in ("postgresql", "sqlite"):
            for statement in postgres if self.dialect == "postgresql" else sqlite:
                conn.exec_driver_sql(statement)

    def trail_id(self) -> str | None:
        """This store's instance id (None only when its record was deleted: see :meth:`verify`)."""
        self._ensure_schema()
        with self._errors("reading the audit trail"), self.engine.connect() as conn:
            return _stored_trail_id(conn)

    # -- plumbing ---------------------------------------------------------------

    def _write(self):
        """A transaction holding the trail's append lock until it commits or rolls back."""
        return _WriteTransaction(self)

    def _errors(self, action: str):
        return _AuditErrors(action, self.url)

    def signing_key(self) -> signing.SigningKey:
        """This trail's signing key (created beside a SQLite store on first use: a store with no events)."""
        return signing.load_signing_key(self.files, redacted(self.url), self.is_empty)

    def is_empty(self) -> bool:
        """Whether the store holds no events."""
        self._ensure_schema()
        with self._errors("reading the audit trail"), self.engine.connect() as conn:
            return conn.execute(select(events_table.c.seq).limit(1)).first() is None

    # -- writing ----------------------------------------------------------------

    def append(
        self,
        event_type: str,
        *,
        actor: str,
        role: str,
        subject: Subject,
        reason: str,
        identity_method: str = "local-unverified",
        evidence: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
        guard: Callable[[list[Event]], Event | None] | None = None,
        before_commit: Callable[[Event, list[Event]], None] | None = None,
        signer: signing.SigningKey | None = None,
    ) -> Event:
        """Append one signed event (see :func:`governance.trail.record`); ``signer`` overrides the trail key."""
        if event_type not in EVENT_TYPES:
            raise AuditError(f"unknown audit event type {event_type!r} (known: {', '.join(EVENT_TYPES)})")
        if identity_method not in IDENTITY_METHODS:
            raise AuditError(f"unknown identity method {identity_method!r} (known: {', '.join(IDENTITY_METHODS)})")
        texts = {"actor": actor, "role": role, "reason": reason}
        for name in TEXT_FIELDS:
            require_printable(name, texts[name])
            require_bounded(name, texts[name])
        require_user_name("actor", actor)
        for name, value in subject.model_dump().items():
            require_printable(f"subject {name}", value)
        evidence = {str(k): str(v) for k, v in (evidence or {}).items()}
        details = json.loads(canonical_json(details or {}))
        key = None
        if self._signing:
            key = signer or self.signing_key()
            if self.files.checkpoint is None:
                raise ConfigError(
                    f"the audit trail at {redacted(self.url)} needs a checkpoint file: set {CHECKPOINT_ENV} "
                    "(an append-only file outside the database; ship it off-box too)"
                )
        self._ensure_schema()
        for attempt in range(_RETRIES):
            try:
                with self._errors("appending to the audit trail"), self._write() as conn:
                    ring = self._require_usable_key(conn, key) if key is not None else None
                    # Only a guard or hook reads the subject's events: a plain append stays O(1) at a million events
                    related = self._related(conn, subject) if guard is not None or before_commit is not None else []
                    if guard is not None:
                        existing = guard(related)
                        if existing is not None:
                            return existing.model_copy(update={"created": False})
                    instance = _stored_trail_id(conn)
                    if instance is None:
                        raise AuditError(
                            f"the audit trail at {redacted(self.url)} has lost its instance id "
                            f"({meta_table.name}.trail_id was deleted); see `govern audit verify`"
                        )
                    head = conn.execute(select(events_table).order_by(events_table.c.seq.desc()).limit(1)).first()
                    seq, prev_hash = (head.seq + 1, head.hash) if head is not None else (1, GENESIS_HASH)
                    if head is not None and ring is not None:
                        _require_sound_head(dict(head._mapping), *ring, self.url)
                    row = {
                        "seq": seq,
                        "event_type": event_type,
                        "actor": actor,
                        "role": role,
                        "identity_method": identity_method,
                        "timestamp": now_utc(),
                        "subject_model": subject.model,
                        "subject_version": subject.version,
                        "subject_objective": subject.objective,
                        "subject_objective_hash": subject.objective_hash,
                        "reason": reason,
                        "evidence": canonical_json(evidence),
                        "details": canonical_json(details),
                        "prev_hash": prev_hash,
                        "key_id": key.key_id if key is not None else "",
                        "trail_id": instance,
                        # this event's hash covers the head's signature: see chain.verify_rows
                        "prev_signature": head.signature if head is not None and key is not None else "",
                    }
                    row["hash"] = row_hash(row)
                    row["signature"] = key.sign(row["hash"]) if key is not None else ""
                    conn.execute(events_table.insert().values(**row))
                    new = event_from_row(row)
                    if before_commit is not None:
                        before_commit(new, related)
                # Committed: anchor the new head outside the database (a crash here leaves it one head behind)
                if key is not None and self.files.checkpoint is not None:
                    anchors_mod.append_checkpoint(self.files.checkpoint, anchors_mod.Anchor.of(new))
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

    def _require_usable_key(self, conn: Connection, key: signing.SigningKey) -> tuple[signing.KeyRing, dict[str, str]]:
        """Refuse to sign with a key nobody trusts, one a recorded rotation retired, or one that replaced the key.

        Any key, reviewed in git or not, may sign only if it signed event #1 or
        a ``key_rotated`` event introduced it: keys change only through
        ``govern audit rotate-key``, signed by the key being replaced.
        Returns the key ring and the public keys rotations introduced (id -> base64).
        """
        rotations = conn.execute(
            select(events_table.c.seq, events_table.c.key_id, events_table.c.details)
            .where(events_table.c.event_type == "key_rotated")
            .order_by(events_table.c.seq)
        ).all()
        introduced: dict[str, str] = {}
        for rotation in rotations:
            details = json.loads(rotation.details)
            new_id = str(details.get("new_key_id", ""))
            if rotation.key_id == key.key_id:
                raise AuditError(
                    f"the trail signing key {key.key_id} was rotated out at #{rotation.seq} (new key {new_id}); "
                    "configure the new key"
                )
            introduced[new_id] = str(details.get("new_public_key", ""))
        ring = signing.load_keyring(self.files)
        trust, _ = ring.check(key.key_id, now_utc())
        first = conn.execute(select(events_table.c.key_id).where(events_table.c.seq == 1)).first()
        if (
            first is not None
            and key.key_id not in (first.key_id, *introduced)
            and (trust is not None or not self.files.key_configured)
        ):
            if trust is not None and (trust.startswith(signing.LISTED_TRUST) or signing.is_reviewed(trust)):
                raise AuditError(
                    f"the trail signing key {key.key_id} is {trust.rsplit(', owner', 1)[0]}; a key that did not sign "
                    f"event #1 ({first.key_id}) signs only once the trail's key rotated it in: `govern audit "
                    "rotate-key --new-key-file FILE` (a listing in policies, even reviewed, is not a rotation)"
                )
            held = KEY_FILE_ENV if os.environ.get(KEY_FILE_ENV) else KEY_ENV
            where = held if self.files.key_configured else str(self.files.default_key)
            raise AuditError(
                f"the trail signing key {key.key_id} ({where}) is not this trail's key: event #1 was signed by "
                f"{first.key_id} and no `govern audit rotate-key` introduced {key.key_id}; the key was replaced, "
                "restore the previous key"
            )
        if trust is None and key.key_id not in introduced:
            raise AuditError(
                f"the trail signing key {key.key_id} is not trusted: list it in {self.files.trail_keys_policy} "
                f"(id: {key.key_id}, public_key: {key.public_b64}, owner, valid_from)"
            )
        return ring, introduced

    def _related(self, conn: Connection, subject: Subject) -> list[Event]:
        if subject.model:
            where = events_table.c.subject_model == subject.model
        elif subject.objective:
            where = events_table.c.subject_objective == subject.objective
        else:
            return []
        rows = conn.execute(select(events_table).where(where).order_by(events_table.c.seq)).mappings()
        return [event_from_row(dict(r)) for r in rows]

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
            return [event_from_row(dict(r)) for r in conn.execute(query).mappings()]

    def head(self) -> Event | None:
        """The last event (its ``hash`` is the head of the chain), or None for an empty trail."""
        self._ensure_schema()
        query = select(events_table).order_by(events_table.c.seq.desc()).limit(1)
        with self._errors("reading the audit trail"), self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return event_from_row(dict(row)) if row is not None else None

    def raw_rows(self, since: int = 0) -> Iterator[dict[str, Any]]:
        """Stored rows exactly as the database holds them, in ``seq`` order from ``since`` (for verification).

        Streamed in batches (a server-side cursor on PostgreSQL): a million rows are never held at once.
        """
        self._ensure_schema()
        query = select(events_table).order_by(events_table.c.seq)
        if since:
            query = query.where(events_table.c.seq >= since)
        names = [column.name for column in events_table.columns]
        with self._errors("reading the audit trail"), self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=_BATCH).execute(query)
            for batch in result.partitions():
                for row in batch:
                    yield dict(zip(names, row, strict=True))

    def held_signing_key(self) -> signing.SigningKey | None:
        """The signing key when this process holds one already (configured, or the embedded default on disk).

        Never creates the embedded default: a verification is not a first use.
        """
        if not self._signing:
            return None
        default = self.files.default_key
        if not self.files.key_configured and (default is None or not default.is_file()):
            return None
        try:
            return self.signing_key()
        except (ConfigError, AuditError):  # unreadable, or missing for a trail with events: nothing held
            return None

    def verify(
        self,
        archive: str | Path | None = None,
        anchors: Iterable[anchors_mod.Anchor] = (),
        *,
        signer: signing.SigningKey | None = None,
        since_checkpoint: bool = False,
        every_signature: bool = False,
    ) -> Verification:
        """Recompute the chain, check the signatures and compare the chain with its anchors.

        Signatures: each key's last one and those no later event covers are
        checked, the chain vouches for the rest; ``every_signature`` checks
        each (:func:`governance.trail.chain.verify_rows`, same findings).

        Anchors are the checkpoint file's heads, ``anchors`` supplied by the
        caller (e.g. the registry's MLflow tags) and, with ``archive``, an
        earlier export that must still be the trail's prefix. With
        ``since_checkpoint`` (the check before a governed action) the
        verification starts from the signed verified checkpoint when there is
        one (:mod:`governance.trail.verified`): O(events since). With
        ``signer`` (the trail's key, when held) a clean verification moves
        that checkpoint forward.
        """
        anchors = list(anchors)
        instance = self.trail_id()
        keys = signing.load_keyring(self.files) if self._signing else None
        record = verified.record_path(self.files.checkpoint) if keys is not None else None
        if since_checkpoint and keys is not None and record is not None and archive is None:
            try:
                start = verified.load(record, keys, self._rotations())
            except verified.RecordRefused as refused:
                return _refused(str(refused))
            if start is not None:
                return self._verify_since(start, instance, keys, anchors, signer)
        if keys is not None and archive is None and not every_signature:
            # In the database first (trail/bulk.py); anything it does not find intact is read row by row below
            with self._errors("reading the audit trail"), self.engine.connect() as conn:
                checked = bulk.verify_stored(conn, self.dialect, keys, instance, self.files.checkpoint)
            if checked is not None:
                return self._finish_stored(checked, anchors, keys, signer, record)
        hashes: dict[int, str] = {}
        result = verify_rows(self.raw_rows, keys, trail_id=instance, hashes=hashes, every_signature=every_signature)
        end = max(hashes) if hashes else 0
        extra: list[tuple[int, str]] = []
        summary: list[str] = []
        if instance is None and result.trail_id is not None:
            extra.append(
                (
                    0,
                    f"the trail's instance id ({meta_table.name}.trail_id) is missing but its events belong to "
                    f"trail {result.trail_id}; it was deleted",
                )
            )
        heads = None
        if keys is not None:
            heads = self._read_heads(_Heads(), 0, 0, hashes, end, result)
            extra += self._check_checkpoint(heads, hashes, end, keys, result, summary)
            extra += self._check_given(anchors, hashes, end, keys, result, summary)
            extra += self._check_held_key(end, keys, result)
        if archive is not None:
            extra += _check_archive(archive, hashes, result)
        final = result.with_findings(extra).model_copy(update={"anchors": summary})
        if final.ok and signer is not None and keys is not None and result.state is not None and heads is not None:
            verified.write(record, result.state, heads.mark(), keys, signer)
        return final

    def _finish_stored(
        self,
        checked: bulk.Checked,
        anchors: list[anchors_mod.Anchor],
        keys: signing.KeyRing,
        signer: signing.SigningKey | None,
        record: Path | None,
    ) -> Verification:
        """The caller's anchors and the held key after an intact verification in the database; moves the record."""
        result, mark, end = checked.result, checked.mark, checked.result.events
        path = self.files.checkpoint
        summary = [
            f"checkpoint {path}: {mark.heads} heads, latest #{mark.latest}, matches"
            if path is not None and mark is not None
            else f"checkpoint: none configured (set {CHECKPOINT_ENV})"
        ]
        stored = self._heads_at({given.seq for given in anchors if given.seq <= end})
        hashes = {seq: head.hash for seq, head in stored.items()}
        # every stored signature verified (checked, or covered by the chain): anchors equal to them need no check
        result = result.model_copy(update={"verified_signatures": {s: h.signature for s, h in stored.items()}})
        extra = self._check_given(anchors, hashes, end, keys, result, summary)
        extra += self._check_held_key(end, keys, result)
        final = result.with_findings(extra).model_copy(update={"anchors": summary})
        if final.ok and signer is not None and mark is not None and result.state is not None:
            verified.write(record, result.state, mark, keys, signer)
        return final

    def _heads_at(self, seqs: set[int]) -> dict[int, Any]:
        """Stored hash and signature at a few seqs (the caller's anchors)."""
        if not seqs:
            return {}
        query = select(events_table.c.seq, events_table.c.hash, events_table.c.signature).where(
            events_table.c.seq.in_(sorted(seqs))
        )
        with self._errors("reading the audit trail"), self.engine.connect() as conn:
            return {int(row.seq): row for row in conn.execute(query)}

    def _rotations(self) -> dict[str, int]:
        """Key id -> seq of the stored ``key_rotated`` event it signed (read from the store, not a record)."""
        self._ensure_schema()
        query = select(events_table.c.seq, events_table.c.key_id).where(events_table.c.event_type == "key_rotated")
        with self._errors("reading the audit trail"), self.engine.connect() as conn:
            return {str(row.key_id): int(row.seq) for row in conn.execute(query)}

    def _verify_since(
        self,
        start: verified.VerifiedCheckpoint,
        instance: str | None,
        keys: signing.KeyRing,
        anchors: list[anchors_mod.Anchor],
        signer: signing.SigningKey | None,
    ) -> Verification:
        """Verify only what came after a verified checkpoint (see :mod:`governance.trail.verified`)."""
        state, where, mark = start.state, f"verified checkpoint {start.path}", start.mark
        n = state.events
        if state.trail_id is not None and instance != state.trail_id:
            return _refused(
                f"{where}: verified trail {state.trail_id}, but the store is trail {instance}; "
                "the trail's instance id was changed or the store replaced"
            )
        # The checkpoint file: no shorter than it was read, ending the read part with the same bytes
        path = self.files.checkpoint
        assert path is not None
        if mark.bytes:
            size = path.stat().st_size if path.is_file() else -1
            if size < mark.bytes:
                now = f"{size} bytes" if size >= 0 else "missing"
                return _refused(
                    f"checkpoint {path} is {now}, shorter than the {mark.bytes} bytes {where} read; "
                    "heads were removed from it (truncated or replaced)"
                )
            if anchors_mod.CheckpointScan(path, mark.bytes).tail_sha256() != mark.tail_sha256:
                return _refused(
                    f"checkpoint {path}: the heads {where} read (lines 1..{mark.lines}) were rewritten since"
                )
        # Event n must still hold the verified bytes; then every event after it is verified in full
        rows = self.raw_rows(since=n)
        first = next(rows, None)
        if first is None or first.get("seq") != n:
            rows.close()  # refused: release the reading connection now
            last = self.head()
            end = last.seq if last is not None else 0
            if end < n:
                removed = f"event #{n} was" if end == n - 1 else f"events #{end + 1}..#{n} were"
                return _refused(
                    f"the trail ends at #{end}, before #{n} that {where} verified; {removed} removed (truncated)", n
                )
            return _refused(f"event #{n}, verified by {where}, is missing; the trail was rewritten", n)
        if first.get("hash") != state.head_hash or row_hash(first) != state.head_hash:
            rows.close()
            return _refused(
                f"event #{n} ({describe(first)}) no longer holds the hash {state.head_hash[:16]} that {where} "
                f"verified; the trail was rewritten at or before #{n}",
                n,
            )
        rows.close()
        if state.head_signature and first.get("signature") != state.head_signature:
            return _refused(
                f"event #{n} ({describe(first)}) no longer holds the signature that {where} verified; it was replaced",
                n,
            )
        # the next event's prev_signature must be event n's signature (an older record did not keep it)
        state = state.model_copy(update={"head_signature": str(first.get("signature") or "")})
        hashes: dict[int, str] = {n: state.head_hash}
        result = verify_rows(lambda: self.raw_rows(since=n + 1), keys, trail_id=instance, start=state, hashes=hashes)
        end = max(hashes)
        heads = self._read_heads(_Heads(mark.heads, mark.latest), mark.bytes, mark.lines, hashes, end, result)
        # Heads or anchors before n name events this pass did not read: fetch just those hashes
        hashes.update(self._hashes_at({a.seq for a in [*heads.anchors, *anchors] if a.seq < n}))
        summary = [f"verified checkpoint: #{n} ({start.verified_at[:19]}Z, key {start.key_id}), {end - n} events since"]
        extra = self._check_checkpoint(heads, hashes, end, keys, result, summary)
        extra += self._check_given(anchors, hashes, end, keys, result, summary)
        extra += self._check_held_key(end, keys, result)
        final = result.with_findings(extra).model_copy(update={"anchors": summary, "verified_from": n})
        if final.ok and signer is not None and result.state is not None and end > n:
            verified.write(start.path, result.state, heads.mark(), keys, signer)
        return final

    def _read_heads(
        self, heads: _Heads, offset: int, lines: int, hashes: dict[int, str], end: int, chain: Verification
    ) -> _Heads:
        """The checkpoint file's heads from ``offset`` on (``heads.present`` False when there is no file)."""
        path = self.files.checkpoint
        if path is None or not path.is_file():
            return heads
        heads.read(anchors_mod.CheckpointScan(path, offset, lines), hashes, chain.verified_signatures, end)
        if heads.later:
            # Heads beyond the rows read: events appended since (left to the next pass), or a truncated trail
            stored = self._hashes_at({head.seq for *_, head in heads.later})
            for before, head in heads.later:
                if head.seq in stored:
                    heads.stop_at(before)
                else:
                    heads.anchors.append(head)
        return heads

    def _hashes_at(self, seqs: set[int]) -> dict[int, str]:
        """Stored hashes at a few seqs (anchors the rows read did not cover)."""
        if not seqs:
            return {}
        query = select(events_table.c.seq, events_table.c.hash).where(events_table.c.seq.in_(sorted(seqs)))
        with self._errors("reading the audit trail"), self.engine.connect() as conn:
            return {int(row.seq): str(row.hash) for row in conn.execute(query)}

    def _check_given(
        self, anchors, hashes, end, keys, result: Verification, summary: list[str]
    ) -> list[tuple[int, str]]:
        """Anchors handed in by the caller (MLflow tags, an off-box copy), one summary line per source."""
        extra: list[tuple[int, str]] = []
        by_source: dict[str, list[anchors_mod.Anchor]] = {}
        for given in anchors:
            by_source.setdefault(given.source or "caller anchor", []).append(given)
        for source, group in sorted(by_source.items()):
            found = anchors_mod.check_anchors(group, hashes, end, keys, result.rotated_keys, result.verified_signatures)
            latest = max(a.seq for a in group)
            summary.append(f"anchor {source}: head #{latest}, {'MISMATCH' if found else 'matches'}")
            extra += found
        return extra

    def _check_held_key(self, end: int, keys: signing.KeyRing, chain: Verification) -> list[tuple[int, str]]:
        """A finding when the embedded key file beside the store is not the trail's current key (replaced)."""
        path = self.files.default_key
        state = chain.state
        if not end or state is None or path is None or self.files.key_configured or not path.is_file():
            return []
        try:
            held = signing.parse_private_key(path.read_bytes(), str(path))
        except (OSError, ConfigError):
            return [(end + 1, f"{path}: not a readable Ed25519 private key; it was replaced or damaged")]
        current = state.current_key
        trust, _ = keys.check(held.key_id, now_utc())
        if held.key_id == current or signing.is_reviewed(trust):
            return []
        if held.key_id in state.retired:
            return [
                (
                    end + 1,
                    f"{path}: holds key {held.key_id}, which was rotated out at #{state.retired[held.key_id]}; this "
                    f"trail's key is {current}: finish the rotation (put the new key in place) or configure it",
                )
            ]
        return [
            (
                end + 1,
                f"{path}: holds key {held.key_id}, but this trail's key is {current}; the key file was replaced "
                "outside `govern audit rotate-key`: restore the previous key",
            )
        ]

    def _check_checkpoint(
        self, heads: _Heads, hashes, end, keys, chain: Verification, summary
    ) -> list[tuple[int, str]]:
        path = self.files.checkpoint
        if path is None:
            summary.append(f"checkpoint: none configured (set {CHECKPOINT_ENV})")
            return []
        if not heads.present:
            summary.append(f"checkpoint {path}: missing")
            if not end:
                return []
            return [
                (
                    end + 1,
                    f"checkpoint {path} is missing but the trail holds {end} events; it was deleted, "
                    f"or {CHECKPOINT_ENV} points elsewhere",
                )
            ]
        found = anchors_mod.check_anchors(
            heads.anchors, hashes, end, keys, chain.rotated_keys, chain.verified_signatures
        )
        behind = f"; {end - heads.latest} newer events not yet anchored" if heads.latest < end else ""
        verdict = "MISMATCH" if found or heads.unreadable else "matches"
        summary.append(f"checkpoint {path}: {heads.total} heads, latest #{heads.latest}, {verdict}{behind}")
        return found + [(end + 1, line) for _, line in heads.unreadable]

    def export(self, handle: IO[str]) -> int:
        """Write every event as one JSON line (chain order); returns the count."""
        count = 0
        for row in self.raw_rows():
            handle.write(canonical_json(event_from_row(row).model_dump(mode="json")) + "\n")
            count += 1
        return count


_HEAD_KEYS = frozenset({"seq", "hash", "key_id", "signature"})


class _Heads:
    """The checkpoint file's heads as one pass reads them.

    A head equal to an event whose signature just verified (the common case:
    one per append) is only counted; any other is kept as an :class:`Anchor`
    and compared in full (:func:`governance.trail.anchor.check_anchors`).
    """

    def __init__(self, total: int = 0, latest: int = 0):
        self.total, self.latest = total, latest
        self.present = False
        self.anchors: list[anchors_mod.Anchor] = []
        self.unreadable: list[tuple[int, str]] = []
        #: heads beyond the rows read, with the mark before each: ((offset, lines, total, latest), head)
        self.later: list[tuple[tuple[int, int, int, int], anchors_mod.Anchor]] = []
        self._scan: anchors_mod.CheckpointScan | None = None
        self._stop: tuple[int, int, int, int] | None = None

    def read(self, scan: anchors_mod.CheckpointScan, hashes: dict[int, str], signed: dict[int, str], end: int) -> None:
        self.present, self._scan = True, scan
        for number, parsed in scan:
            if type(parsed) is dict and parsed.keys() == _HEAD_KEYS:
                seq = parsed["seq"]
                if (
                    type(seq) is int
                    and hashes.get(seq) == parsed["hash"]
                    and signed.get(seq) == parsed["signature"]
                    and type(parsed["key_id"]) is str
                ):
                    self.total += 1
                    self.latest = max(self.latest, seq)
                    continue
            source = f"checkpoint {scan.path}:{number}"
            head = anchors_mod.parse_head(parsed, source) if parsed is not None else None
            if head is None:
                self.unreadable.append((number, f"{source}: not a signed head; the file was edited"))
                continue
            if head.seq > end:
                self.later.append(((*scan.before, self.total, self.latest), head))
            else:
                self.anchors.append(head)
            self.total += 1
            self.latest = max(self.latest, head.seq)

    def stop_at(self, before: tuple[int, int, int, int]) -> None:
        """A later pass resumes at this line (its event was appended after the rows were read)."""
        if self._stop is None or before[0] < self._stop[0]:
            self._stop = before

    def mark(self) -> verified.FileMark:
        """How far this pass read, for the verified checkpoint."""
        if self._scan is None:
            return verified.FileMark(heads=self.total, latest=self.latest)
        offset, lines, total, latest = self._stop or (self._scan.offset, self._scan.lines, self.total, self.latest)
        return verified.FileMark(
            bytes=offset, lines=lines, heads=total, latest=latest, tail_sha256=self._scan.tail_sha256(offset)
        )


def _require_sound_head(head: dict[str, Any], ring: signing.KeyRing, introduced: dict[str, str], url: str) -> None:
    """Refuse to chain onto a head whose content or signature does not verify (one line; nothing is appended).

    The next event's hash covers the head's signature, and a full verification
    checks only each key's last signature one by one (:func:`chain.verify_rows`):
    signing after a forged head would vouch for it.
    """
    where = f"the audit trail at {redacted(url)}: its last event #{head['seq']} ({describe(head)})"
    fix = "; nothing was appended: run `govern audit verify` to see what was changed"
    if row_hash(head) != head.get("hash"):
        raise AuditError(f"{where} does not match its hash (edited in the database){fix}")
    key_id = str(head.get("key_id") or "")
    if not ring.verify(key_id, str(head["hash"]), str(head.get("signature") or ""), public=introduced.get(key_id)):
        raise AuditError(f"{where} is not validly signed by key {key_id} (a forged insert){fix}")


def _refused(line: str, seq: int = 0) -> Verification:
    """A verification that stopped at its first finding (a verified checkpoint the store contradicts)."""
    return Verification(ok=False, events=0, head_hash=None).with_findings([(seq, line)])


def _check_archive(archive: str | Path, hashes: dict[int, str], result: Verification) -> list[tuple[int, str]]:
    """An earlier export must still be a prefix of the trail (same hash at every archived seq)."""
    archived = read_export(archive)
    archived_check = verify_rows(e.stored_row() for e in archived)
    if not archived_check.ok:
        return [(archived_check.first_bad_seq or 0, f"archive {archive}: {archived_check.problem}")]
    for archived_event in archived:
        if hashes.get(archived_event.seq) != archived_event.hash:
            what = "is missing from the trail" if archived_event.seq not in hashes else "differs in the trail"
            return [
                (
                    archived_event.seq,
                    f"event #{archived_event.seq} ({describe(archived_event.stored_row())}) of archive "
                    f"{archive} {what}; it was truncated or rewritten since it was archived",
                )
            ]
    return []


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


def _stored_trail_id(conn: Connection) -> str | None:
    row = conn.execute(select(meta_table.c.value).where(meta_table.c.name == "trail_id")).first()
    return str(row.value) if row is not None else None


def _connect_args(dialect: str) -> dict[str, Any]:
    return {"connect_timeout": 10} if dialect == "postgresql" else {}


def event_from_row(row: dict[str, Any]) -> Event:
    """A stored row as an :class:`Event`; an unreadable row is one :class:`AuditError` line."""
    try:
        return Event(
            seq=row["seq"],
            event_type=row["event_type"],
            actor=row["actor"],
            role=row["role"],
            identity_method=row["identity_method"],
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
            key_id=row["key_id"],
            trail_id=row.get("trail_id") or "",
            prev_signature=row.get("prev_signature") or "",
            hash=row["hash"],
            signature=row["signature"],
        )
    except (ValueError, ValidationError, TypeError, KeyError):
        raise AuditError(
            f"audit event #{row.get('seq')} is unreadable (edited in the database?); run `govern audit verify`"
        ) from None


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
