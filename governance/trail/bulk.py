"""Full verification in the database: every hash, link and head checked by set-based queries, O(keys) in Python.

`govern audit verify` reads the whole trail. Streaming a million rows through
Python costs ~40 µs an event (fetching 19 columns, building the canonical
JSON, parsing a checkpoint line); this module asks the database instead:

* **hashes and links.** Each row's canonical JSON is built by the database
  exactly as :func:`governance.trail.chain.canonical_json` writes it
  (``json_object`` on SQLite; on PostgreSQL ``format`` over columns quoted as
  :func:`_pg_string` says, which also argues why a match cannot be a
  different row) in the layout :func:`~governance.trail.chain.row_hash`
  picks, hashed (a ``govern_sha256`` function on SQLite, ``sha256`` on
  PostgreSQL) and compared with the stored hash; the same scan checks that
  seqs run 1..N. That ``prev_hash`` is the previous hash and
  ``prev_signature`` the previous signature is checked in the same query on
  SQLite (joining the previous seq) and in an ordered scan of its own on
  PostgreSQL (``LAG``), which leaves the hashing free to run in parallel
  workers. Only the number of rows that fail comes back.
* **trust, O(keys).** Per key its first, last and earliest-dated event, and
  every ``key_rotated`` event, are replayed in seq order through the same
  check as the row-by-row pass (:func:`~governance.trail.chain._check_signature`
  without the Ed25519 step); every condition there is monotonic in seq or
  time, so the extremes pass exactly when every event between them does.
* **signatures.** Each key's last event, the trail's last event and any event
  no successor's hash covers (before chaining) get an Ed25519 check; the
  chain vouches for the rest (:func:`~governance.trail.chain.verify_rows`).
* **the checkpoint file** is compared byte for byte with the heads the
  database spells for events 1..N (one string per row, compared in blocks).

Anything this pass does not find exactly as an untouched trail has it (a
failed row, a head out of order, a database error) makes it return None, and
the caller runs the row-by-row pass, which names each problem with the same
finding text as before. This pass never produces a finding, so it cannot
word one differently; it can only say "intact" when every rule holds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _ascii
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from governance.trail import verified
from governance.trail.anchor import CheckpointScan
from governance.trail.chain import (
    COLUMNS,
    GENESIS_HASH,
    LEGACY_COLUMNS,
    MAX_REASON_BYTES,
    UNCHAINED_COLUMNS,
    ChainState,
    Verification,
    _check_signature,
    _field_problem,
)

#: Heads compared per block (one fetch from the database, one read of the file).
_BLOCK = 20_000
#: The function SQLite computes hashes with (registered on every connection by the store).
SQLITE_SHA256 = "govern_sha256"


def sqlite_sha256(payload: str) -> str:
    """SHA-256 (hex) of a text's UTF-8 bytes: what :func:`row_hash` computes over the canonical JSON."""
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Checked:
    """A full verification that found nothing, and how far it read the checkpoint file."""

    result: Verification
    mark: verified.FileMark | None


def _payload(dialect: str, columns: tuple[str, ...]) -> str:
    """SQL spelling the canonical JSON of a row over ``columns`` (sorted keys, no spaces, UTF-8 kept).

    SQLite: one ``json_object`` call with the keys in sorted order (compact, and
    its strings escaped as ``json_quote`` escapes them), 40% cheaper than a
    ``printf`` of each column's ``json_quote``.

    PostgreSQL (its ``json_build_object`` puts spaces around ``:``): one
    ``format`` call over the columns quoted by :func:`_pg_string`, a third
    cheaper than ``to_json`` per column.
    """
    names = sorted(columns)
    if dialect == "sqlite":
        return "json_object(" + ", ".join(f"'{name}', e.{name}" for name in names) + ")"
    template = ",".join(json.dumps(name) + ":%s" for name in names)
    values = ", ".join(f"e.{name}" if name == "seq" else _pg_string(f"e.{name}") for name in names)
    return f"format('{{{template}}}', {values})"


def _pg_string(column: str) -> str:
    """A text column as a JSON string, escaping only ``\\`` and ``"``: ``json.dumps``'s spelling without controls.

    Why that is enough: ``json.dumps`` (``ensure_ascii=False``) escapes
    exactly ``\\``, ``"`` and U+0000..U+001F. A value without a control
    character is spelled here as ``json.dumps`` spells it. A value with one
    keeps it raw, and no canonical JSON holds a raw control character, so
    that row's spelling can never equal the canonical JSON whose SHA-256 is
    stored: it fails the comparison and the row-by-row pass decides. So a row
    whose spelling matches parses back to exactly the row that was hashed.
    A NULL makes the argument NULL, which ``format`` spells as nothing
    (``"actor":,``): not JSON either.
    """
    return f"""'"' || replace(replace({column}, '\\', '\\\\'), '"', '\\"') || '"'"""


def _hash(dialect: str, expression: str) -> str:
    if dialect == "sqlite":
        return f"{SQLITE_SHA256}({expression})"
    return f"encode(sha256(convert_to({expression}, 'UTF8')), 'hex')"


def _rows_query(dialect: str) -> str:
    """One scan: the seqs, the rows not as an append wrote them, the trail ids, the longest reason, the unchained.

    Returns ``events, lowest seq, bad rows, legacy rows, first identified seq,
    rows of another trail, last legacy seq, longest reason (bytes), unchained
    rows after #1``.
    """
    payload = (
        f"CASE WHEN e.trail_id = '' THEN {_payload(dialect, LEGACY_COLUMNS)} "
        f"WHEN e.prev_signature = '' THEN {_payload(dialect, UNCHAINED_COLUMNS)} "
        f"ELSE {_payload(dialect, COLUMNS)} END"
    )
    stored = f"{_hash(dialect, payload)} = e.hash AND e.key_id <> '' AND e.signature <> ''"
    if dialect == "sqlite":
        # The links in the same scan, the previous event by its key (an index lookup): a window would copy the
        # rows aside (~3x the CPU)
        ok = f"{stored} AND {_LINKED.format(prev='p.')}"
        source = "audit_events e LEFT JOIN audit_events p ON p.seq = e.seq - 1 WHERE e.seq <= :end"
    else:
        # PostgreSQL: the links in an ordered scan of their own (_links_query), so that this one, the hashing,
        # may run in parallel workers; joining the table again here cost ~15% more CPU
        ok, source = stored, "audit_events e WHERE e.seq <= :end"
    length = "LENGTH(CAST(e.reason AS BLOB))" if dialect == "sqlite" else "OCTET_LENGTH(e.reason)"
    # seq is the primary key (unique): COUNT = MAX and MIN = 1 mean exactly 1..N, nothing missing
    return (
        f"SELECT COUNT(*), MIN(e.seq), SUM(CASE WHEN {ok} THEN 0 ELSE 1 END), "
        "SUM(CASE WHEN e.trail_id = '' THEN 1 ELSE 0 END), MIN(CASE WHEN e.trail_id <> '' THEN e.seq END), "
        "SUM(CASE WHEN e.trail_id <> '' AND e.trail_id <> :instance THEN 1 ELSE 0 END), "
        f"MAX(CASE WHEN e.trail_id = '' THEN e.seq END), MAX(CASE WHEN e.trail_id <> '' THEN {length} END), "
        "SUM(CASE WHEN e.seq > 1 AND (e.trail_id = '' OR e.prev_signature = '') THEN 1 ELSE 0 END) "
        f"FROM {source}"
    )


#: An event's links: ``prev_hash`` is the previous event's hash (the genesis hash for #1), and a chained event's
#: ``prev_signature`` its signature. ``{prev}``: how the previous event's columns are named.
_LINKED = (
    "e.prev_hash = COALESCE({prev}hash, :genesis) "
    "AND (e.trail_id = '' OR e.prev_signature = '' OR {prev}seq IS NULL OR e.prev_signature = {prev}signature)"
)


def _links_query() -> str:
    """PostgreSQL: how many events do not link to the row before them (LAG over one scan in seq order).

    With seqs exactly 1..N (the rows query) the row before is the previous
    seq. ``IS NOT TRUE``: a NULL column counts as a broken link.
    """
    return (
        "SELECT COUNT(*) FROM (SELECT seq, prev_hash, prev_signature, trail_id, LAG(seq) OVER w AS p_seq, "
        "LAG(hash) OVER w AS p_hash, LAG(signature) OVER w AS p_signature FROM audit_events WHERE seq <= :end "
        f"WINDOW w AS (ORDER BY seq)) e WHERE ({_LINKED.format(prev='e.p_')}) IS NOT TRUE"
    )


def verify_stored(
    conn: Connection, dialect: str, keys: Any, instance: str | None, checkpoint: Path | None
) -> Checked | None:
    """Verify the stored trail and the checkpoint file in the database; None: let the row-by-row pass decide."""
    try:
        return _verify(conn, dialect, keys, instance, checkpoint)
    except (SQLAlchemyError, UnicodeError, ValueError, TypeError, KeyError, OSError):
        return None  # an unusual value or a database that cannot do it: the row-by-row pass reads it


def _verify(conn: Connection, dialect: str, keys: Any, instance: str | None, checkpoint: Path | None) -> Checked | None:
    end = conn.execute(text("SELECT COALESCE(MAX(seq), 0) FROM audit_events")).scalar_one()
    if not end:
        return None  # nothing to save
    bound = {"end": end}
    scan = conn.execute(text(_rows_query(dialect)), {**bound, "genesis": GENESIS_HASH, "instance": instance or ""})
    events, lowest, bad, legacy, first_identified, foreign, last_legacy, longest, unchained = scan.one()
    if events != end or lowest != 1 or bad:
        return None
    if dialect != "sqlite" and conn.execute(text(_links_query()), {**bound, "genesis": GENESIS_HASH}).scalar_one():
        return None
    # The trail instance: every id the same as the store's, no event without one after the first that has one
    if first_identified is not None and (instance is None or foreign or (last_legacy or 0) > first_identified):
        return None
    # Record-time bounds of the events with an id: the longest reason, each distinct actor and role once
    if (longest or 0) > MAX_REASON_BYTES:
        return None
    names = conn.execute(
        text("SELECT DISTINCT actor, role FROM audit_events WHERE trail_id <> '' AND seq <= :end"), bound
    ).all()
    for actor, role in names:
        if not isinstance(actor, str) or not isinstance(role, str):
            return None
        if _field_problem("actor", actor) is not None or _field_problem("role", role) is not None:
            return None
    trust = _replay_trust(conn, keys, bound)
    if trust is None:
        return None
    state, keys_used, rotated_in, last_of_key = trust
    checked = _check_signatures(conn, keys, bound, rotated_in, {end, *last_of_key}, unchained > 0)
    if checked is None:
        return None
    head = conn.execute(text("SELECT hash, signature FROM audit_events WHERE seq = :end"), bound).one()
    mark = None
    if checkpoint is not None:
        if not checkpoint.is_file():
            return None  # a missing file is a finding (or a first run): the row-by-row pass words it
        mark = _compare_heads(conn, dialect, bound, checkpoint)
        if mark is None:
            return None
    state = state.model_copy(
        update={
            "events": end,
            "head_hash": head.hash,
            "head_signature": head.signature,
            "trail_id": instance if first_identified is not None else None,
            "first_identified": first_identified,
            "legacy": int(legacy or 0),
            "signatures": checked,
            "covered": end - checked,
        }
    )
    result = Verification(
        ok=True,
        events=end,
        head_hash=head.hash,
        signatures_checked=checked,
        signatures_covered=end - checked,
        keys_used=keys_used,
        rotated_keys={key_id: public for key_id, (_, public, _) in rotated_in.items()},
        state=state,
        trail_id=state.trail_id,
        legacy_events=state.legacy,
    )
    return Checked(result, mark)


def _replay_trust(
    conn: Connection, keys: Any, bound: dict[str, int]
) -> tuple[ChainState, dict[str, str], dict[str, tuple[int, str, str]], set[int]] | None:
    """Key trust, validity and rotations from each key's extreme events and the rotations, in seq order.

    Returns the state so far, each key's trust label, the rotated-in keys and each key's last seq.
    """
    per_key = conn.execute(
        text(
            "SELECT key_id, MIN(seq), MAX(seq), MIN(timestamp), MAX(timestamp) FROM audit_events "
            "WHERE seq <= :end GROUP BY key_id"
        ),
        bound,
    ).all()
    for key_id, _, _, earliest, latest in per_key:
        # trusted from its earliest event on, and trusted the same way throughout (else the rows decide)
        at_earliest, refused = keys.check(key_id, earliest)
        if refused is not None or at_earliest != keys.check(key_id, latest)[0]:
            return None
    extremes = {seq for _, first, last, _, _ in per_key for seq in (first, last)}
    rows = conn.execute(
        text(
            "SELECT seq, event_type, actor, subject_model, subject_version, subject_objective, key_id, timestamp, "
            "details, hash, signature FROM audit_events WHERE seq <= :end AND (event_type = 'key_rotated' OR seq IN "
            f"({', '.join(str(int(seq)) for seq in sorted(extremes))})) ORDER BY seq"
        ),
        bound,
    ).mappings()
    rotated_in: dict[str, tuple[int, str, str]] = {}
    retired: dict[str, int] = {}
    first_key: str | None = None
    keys_used: dict[str, str] = {}
    for row in rows:
        if row["seq"] == 1:
            first_key = str(row["key_id"])
        found = _check_signature(dict(row), keys, rotated_in, retired, first_key, verify=False)
        if isinstance(found, str):
            return None
        keys_used[found[0]] = found[1]
    if first_key is None:
        return None
    state = ChainState(first_key=first_key, rotated_in=rotated_in, retired=retired, key_ids=sorted(keys_used))
    return state, keys_used, rotated_in, {last for _, _, last, _, _ in per_key}


def _check_signatures(
    conn: Connection,
    keys: Any,
    bound: dict[str, int],
    rotated_in: dict[str, tuple[int, str, str]],
    last: set[int],
    unchained: bool,
) -> int | None:
    """Ed25519 on ``last`` (the last event, each key's last) and every event no successor covers; how many, or None."""
    seqs = ", ".join(str(int(seq)) for seq in sorted(last))
    # an event before one that does not chain it (a trail from before chaining): checked one by one too
    before_unchained = (
        " OR seq IN (SELECT seq - 1 FROM audit_events WHERE seq <= :end AND (trail_id = '' OR prev_signature = ''))"
        if unchained
        else ""
    )
    rows = conn.execute(
        text(
            f"SELECT seq, key_id, hash, signature FROM audit_events WHERE seq <= :end AND (seq IN ({seqs})"
            f"{before_unchained})"
        ),
        bound,
    ).all()
    for _, key_id, event_hash, signature in rows:
        public = rotated_in[key_id][1] if key_id in rotated_in else None
        if not keys.verify(key_id, event_hash, signature, public=public):
            return None
    return len(rows)


def _compare_heads(conn: Connection, dialect: str, bound: dict[str, int], path: Path) -> verified.FileMark | None:
    """The checkpoint file holds exactly one head per event 1..N, in order (else None: parsed line by line).

    Each head is spelled as :meth:`Anchor.line` writes it (``json.dumps``:
    the same ASCII escapes) from the stored seq, hash, key id and signature,
    and compared with the file in blocks of bytes.
    """
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    # a server-side cursor on PostgreSQL: the heads arrive in blocks, never all at once
    cursor = dbapi.cursor(name="govern_heads") if dialect == "postgresql" else dbapi.cursor()  # type: ignore[call-arg]
    lines = 0
    try:
        cursor.execute(
            f"SELECT seq, hash, key_id, signature FROM audit_events WHERE seq <= {int(bound['end'])} ORDER BY seq"
        )
        with path.open("rb") as handle:
            while block := cursor.fetchmany(_BLOCK):
                expected = "".join(
                    [
                        f'{{"seq": {seq}, "hash": {_ascii(h)}, "key_id": {_ascii(k)}, "signature": {_ascii(s)}}}\n'
                        for seq, h, k, s in block
                    ]
                ).encode("ascii")
                if handle.read(len(expected)) != expected:
                    return None
                lines += len(block)
            if handle.read(1) or lines != bound["end"]:
                return None  # heads beyond the events read (appended since, or not this trail's): parsed one by one
            size = handle.tell()
    finally:
        cursor.close()
    return verified.FileMark(
        bytes=size, lines=lines, heads=lines, latest=bound["end"], tail_sha256=CheckpointScan(path, size).tail_sha256()
    )
