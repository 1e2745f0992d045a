"""The chain: what an event is, the one serialisation that is hashed, and verifying rows against it.

Each stored event carries the SHA-256 of the previous event (``prev_hash``)
and its own ``hash`` over every other stored column (:data:`COLUMNS`, which
include the signing ``key_id``, the ``identity_method`` and the ``trail_id``
of the trail instance that wrote it), plus an Ed25519 ``signature`` over that
hash (see :mod:`governance.trail.signing`).

The ``trail_id`` is minted when a store is created and written into every
event's hash, so two copies of a project that share a signing key cannot
exchange events: an event of another instance is a finding. Events written
before trail ids existed store ``""`` and are hashed without the column
(:func:`row_hash`); one may not follow an event that has an id.

What a person types is bounded at record time: a reason is at most
:data:`MAX_REASON_BYTES` of UTF-8, actor and role at most
:data:`MAX_NAME_CHARS` characters, and a user name must be NFKC-normalised and
in one script (:func:`require_user_name`): ``"\u0430lice"`` (Cyrillic ``а``)
is refused, not stored as a denial that prints as ``alice``. Findings never
print more of a stored field than those bounds.

Trust boundary: this module believes nothing that is stored. :func:`verify_rows`
recomputes every hash and link from the stored bytes and checks every
signature against the keys it is given; a writer without a trusted key can
re-hash a chain consistently but cannot re-sign it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from governance.errors import AuditError
from governance.trail import signing

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
    "withdrawn",
    "registry_drift",
    "registry_reconciled",
    "waiver_granted",
    "permission_denied",
    "key_rotated",
    "monitoring_checked",
    "incident_opened",
    "incident_closed",
    "reproduction_checked",
    "policy_changed",
    "model_trained",
    "data_prepared",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]
#: How the actor was identified: a name nobody checked, or a user the MLflow server authenticated.
IdentityMethod = Literal["local-unverified", "mlflow-basic-auth"]
IDENTITY_METHODS: tuple[str, ...] = IdentityMethod.__args__  # type: ignore[attr-defined]
#: ``prev_hash`` of the first event.
GENESIS_HASH = "0" * 64
#: The stored columns the hash covers, in this order (everything but ``hash`` and ``signature``).
COLUMNS: tuple[str, ...] = (
    "seq",
    "event_type",
    "actor",
    "role",
    "identity_method",
    "timestamp",
    "subject_model",
    "subject_version",
    "subject_objective",
    "subject_objective_hash",
    "reason",
    "evidence",
    "details",
    "prev_hash",
    "key_id",
    "trail_id",
    "prev_signature",
)
#: The hashed columns of an event written before signatures were chained (stored ``prev_signature`` is ``""``).
UNCHAINED_COLUMNS: tuple[str, ...] = tuple(name for name in COLUMNS if name != "prev_signature")
#: The hashed columns of an event written before trail ids existed (stored ``trail_id`` is ``""`` too).
LEGACY_COLUMNS: tuple[str, ...] = tuple(name for name in UNCHAINED_COLUMNS if name != "trail_id")
#: A reason longer than this (UTF-8 bytes) is refused at record time and never printed in full.
MAX_REASON_BYTES = 4096
#: Actor and role: at most this many characters (the database column's width).
MAX_NAME_CHARS = 200
#: Scripts that legitimately appear together in one name (Unicode's "highly restrictive" profile).
_SCRIPT_SETS = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)
#: Free-text fields a person types; refused when they hold control characters (they would spoof output lines).
TEXT_FIELDS: tuple[str, ...] = ("actor", "role", "reason")
#: Characters that are not control characters by category but reorder what a terminal shows.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: At most this many signature findings are listed one per line; the rest are counted.
MAX_LISTED = 10


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
    """One stored event. ``hash`` covers every other field but ``signature``, which signs ``hash``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int
    event_type: EventType
    actor: str
    role: str
    identity_method: IdentityMethod
    timestamp: str = Field(description="ISO 8601, UTC")
    subject: Subject
    reason: str
    evidence: dict[str, str] = Field(description="name -> hash (or id) of what the decision relied on")
    details: dict[str, Any] = {}
    prev_hash: str
    key_id: str = Field(description="the trail key that signed the event (see policies/trail_keys.yaml)")
    trail_id: str = Field(default="", description="the trail instance that wrote it; empty before trail ids")
    prev_signature: str = Field(
        default="", description="the previous event's signature, covered by this event's hash; empty for event #1"
    )
    hash: str
    signature: str = Field(description="Ed25519 over the event hash, base64")
    #: False when :func:`record` found an equivalent event and appended nothing (not stored, not hashed).
    created: bool = Field(default=True, exclude=True)

    @property
    def time(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.timestamp)

    def line(self) -> str:
        """One human-readable line: ``#12 2026-… approved govllm-sft v3 by bob (reviewer): reason``."""
        return (
            f"#{self.seq} {self.timestamp[:19]}Z {self.event_type} {self.subject.label()} "
            f"by {shown(self.actor, MAX_NAME_CHARS)} ({shown(self.role, MAX_NAME_CHARS)}): {shown_reason(self.reason)}"
        )

    def stored_row(self) -> dict[str, Any]:
        """The row as stored (and hashed): flat subject, evidence and details as canonical JSON text."""
        return {
            "seq": self.seq,
            "event_type": self.event_type,
            "actor": self.actor,
            "role": self.role,
            "identity_method": self.identity_method,
            "timestamp": self.timestamp,
            "subject_model": self.subject.model,
            "subject_version": self.subject.version,
            "subject_objective": self.subject.objective,
            "subject_objective_hash": self.subject.objective_hash,
            "reason": self.reason,
            "evidence": canonical_json(self.evidence),
            "details": canonical_json(self.details),
            "prev_hash": self.prev_hash,
            "key_id": self.key_id,
            "trail_id": self.trail_id,
            "prev_signature": self.prev_signature,
            "hash": self.hash,
            "signature": self.signature,
        }


class Verification(BaseModel):
    """The result of recomputing the chain, checking its signatures and comparing it with its anchors.

    ``findings`` holds one line per problem, in the order of the events they
    name; ``problem`` is the first of them and ``ok`` means there are none.
    """

    ok: bool
    events: int
    head_hash: str | None
    first_bad_seq: int | None = None
    problem: str | None = None
    findings: list[str] = []
    #: the event each finding names (same order as ``findings``).
    finding_seqs: list[int] = []
    signatures_checked: int = 0
    #: signatures not checked one by one: a later event's hash covers each, and a checked signature that hash.
    signatures_covered: int = 0
    #: key id -> how it is trusted ("reviewed …", "local key, not reviewed in git", "rotated in at #N …").
    keys_used: dict[str, str] = {}
    #: one line per anchor source that was compared (checkpoint file, MLflow tags, …).
    anchors: list[str] = []
    #: the trail instance the events belong to (None: no event has an id yet).
    trail_id: str | None = None
    #: events written before trail ids existed (hashed without one).
    legacy_events: int = 0
    #: keys introduced by verified ``key_rotated`` events: id -> public key (base64).
    rotated_keys: dict[str, str] = Field(default={}, exclude=True)
    #: seq -> signature of every event whose signature verified (anchors equal to these need no second check).
    verified_signatures: dict[int, str] = Field(default={}, exclude=True)
    #: where the rows ended (None without keys); a place to continue from only when ``ok``.
    state: ChainState | None = Field(default=None, exclude=True)
    #: the verified checkpoint this verification started from (0: it read every event).
    verified_from: int = 0

    @property
    def signatures_verified(self) -> int:
        """Signatures checked one by one plus those the chain vouches for (:func:`verify_rows`)."""
        return self.signatures_checked + self.signatures_covered

    def line(self) -> str:
        if self.ok:
            return f"audit trail intact: {self.events} events, head {self.head_hash or GENESIS_HASH}"
        return f"audit trail BROKEN: {self.problem}"

    def detail_lines(self) -> list[str]:
        """What was checked, for ``govern audit verify`` and the report's integrity section."""
        lines = [f"signatures: {self.signatures_verified} verified"]
        if self.signatures_covered:
            lines[0] += (
                f" ({self.signatures_checked} by an Ed25519 check: each key's last event; "
                f"{self.signatures_covered} by the chain: the next event's hash covers each)"
            )
        lines += [f"key {key_id}: {trust}" for key_id, trust in sorted(self.keys_used.items())]
        lines += self.anchors or ["anchors: none compared"]
        if self.trail_id or self.legacy_events:
            before = f" ({self.legacy_events} events from before trail ids)" if self.legacy_events else ""
            lines.append(f"trail id: {self.trail_id or 'none yet'}{before}")
        return lines

    def with_findings(self, extra: list[tuple[int, str]]) -> Verification:
        """This result with more findings (``(seq, line)``), re-sorted by the event they name."""
        if not extra:
            return self
        merged = sorted([*zip(self.finding_seqs, self.findings, strict=True), *extra], key=lambda item: item[0])
        return self.model_copy(
            update={
                "ok": False,
                "findings": [line for _, line in merged],
                "finding_seqs": [seq for seq, _ in merged],
                "problem": merged[0][1],
                "first_bad_seq": merged[0][0],
            }
        )


def canonical_json(value: Any) -> str:
    """The one serialisation that is stored and hashed: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def row_hash(row: dict[str, Any]) -> str:
    """SHA-256 over the stored columns of a row (all but ``hash`` and ``signature``), exactly as stored.

    A row without a ``prev_signature`` (``""`` or absent: event #1, or written
    before signatures were chained) is hashed over :data:`UNCHAINED_COLUMNS`;
    one without a ``trail_id`` too (written before trail ids) over
    :data:`LEGACY_COLUMNS`, as it was then. Blanking either field of a newer
    row therefore changes what is hashed and is caught as an edit.
    """
    payload = canonical_json({name: row[name] for name in _hashed_columns(row)})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _hashed_columns(row: dict[str, Any]) -> tuple[str, ...]:
    if not row.get("trail_id"):
        return LEGACY_COLUMNS
    return COLUMNS if row.get("prev_signature") else UNCHAINED_COLUMNS


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def require_printable(field: str, value: str) -> None:
    """Refuse control and bidirectional-override characters in a free-text field (one line, exit 2).

    A reason with a newline, an escape sequence or a right-to-left override
    would print as a fake audit line wherever the trail is shown.
    """
    for position, char in enumerate(value):
        if unicodedata.category(char) == "Cc" or char in _BIDI_CONTROLS:
            raise AuditError(
                f"{field} contains control character U+{ord(char):04X} at position {position}; "
                "give it as one line of printable text"
            )


def require_bounded(field: str, value: str) -> None:
    """Refuse a reason over :data:`MAX_REASON_BYTES` or an actor/role over :data:`MAX_NAME_CHARS` (one line, exit 2).

    A 10 MiB reason would be stored, hashed and printed in every report and
    verification that names the event.
    """
    if field == "reason":
        size = len(value.encode("utf-8"))
        if size > MAX_REASON_BYTES:
            raise AuditError(
                f"reason is {size} bytes (max {MAX_REASON_BYTES}); give a short reason and link the details"
            )
    elif len(value) > MAX_NAME_CHARS:
        raise AuditError(f"{field} is {len(value)} characters (max {MAX_NAME_CHARS}); give a shorter {field}")


def _script(char: str) -> str | None:
    """The script of a letter (first word of its Unicode name: LATIN, CYRILLIC, GREEK, CJK, …); None otherwise."""
    if not unicodedata.category(char).startswith("L"):
        return None  # digits, punctuation, marks: common to every script
    return unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]


def require_user_name(field: str, value: str) -> None:
    """Refuse a user name that is not NFKC-normalised or that mixes scripts (one line, exit 2).

    ``"\u0430lice"`` (Cyrillic ``а``, then Latin) prints as ``alice``; stored,
    it would read as alice's decision. Combinations a real name uses (Latin
    with Han, Hiragana and Katakana; with Bopomofo; with Hangul) are allowed.
    The trail never rewrites a name it is given: the identity layer
    normalises (:func:`normalize_user`), the trail refuses what it did not.
    """
    normal = unicodedata.normalize("NFKC", value)
    if normal != value:
        raise AuditError(
            f"{field} {ascii(value)} is not NFKC-normalised (it reads as {ascii(normal)}); "
            "give the user name in its normalised form"
        )
    first: dict[str, int] = {}
    for position, char in enumerate(value):
        script = _script(char)
        if script is not None and script not in first:
            first[script] = position
    if len(first) > 1 and not any(set(first) <= allowed for allowed in _SCRIPT_SETS):
        parts = [
            f"{script.title()} (U+{ord(value[at]):04X} at position {at})"
            for script, at in sorted(first.items(), key=lambda item: item[1])
        ]
        raise AuditError(
            f"{field} {ascii(value)} mixes scripts {', '.join(parts[:-1])} and {parts[-1]}; "
            "a user name is written in one script"
        )


def normalize_user(name: str, source: str = "user name") -> str:
    """``name`` NFKC-normalised, refused (:class:`AuditError`, one line naming ``source``) if it mixes scripts.

    For the code that determines the acting identity: ``"ａｌｉｃｅ"``
    (fullwidth) becomes ``"alice"``; ``"\u0430lice"`` is refused.
    """
    normal = unicodedata.normalize("NFKC", name)
    require_user_name(source, normal)
    return normal


def shown(value: Any, limit: int) -> str:
    """A stored value as a finding or line prints it: control characters escaped, at most ``limit`` characters."""
    text = str(value)
    if any(unicodedata.category(c) == "Cc" or c in _BIDI_CONTROLS for c in text):
        text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def shown_reason(reason: str) -> str:
    """A reason as printed: at most :data:`MAX_REASON_BYTES` characters, whatever was stored."""
    return shown(reason, MAX_REASON_BYTES)


def describe(row: dict[str, Any]) -> str:
    """``approved govllm-sft v3 by bob``: how a finding names an event (each field shown bounded)."""
    subject = shown(row.get("subject_model") or row.get("subject_objective") or "-", MAX_NAME_CHARS)
    version = f" v{shown(row['subject_version'], MAX_NAME_CHARS)}" if row.get("subject_version") else ""
    return f"{shown(row.get('event_type'), 40)} {subject}{version} by {shown(row.get('actor'), MAX_NAME_CHARS)}"


class ChainState(BaseModel):
    """Where a clean verification of events ``1..events`` ended: all that checking event ``events + 1`` on needs.

    Serialised into the signed verified checkpoint (:mod:`governance.trail.verified`),
    so a later verification continues from it instead of re-reading the prefix.
    """

    model_config = ConfigDict(extra="forbid")

    events: int = 0
    head_hash: str = GENESIS_HASH
    #: the signature of event ``events``: the next event's ``prev_signature`` must be it.
    head_signature: str = ""
    #: the key that signed event #1 (None: no event yet).
    first_key: str | None = None
    #: new key id -> [seq of the key_rotated event, public key (base64), old key id].
    rotated_in: dict[str, tuple[int, str, str]] = {}
    #: key id -> seq of the event that rotated it out.
    retired: dict[str, int] = {}
    #: the trail instance the events belong to, and the first event that carried it.
    trail_id: str | None = None
    first_identified: int | None = None
    legacy: int = 0
    #: Ed25519 checks made, and signatures vouched for by a later event's hash instead (see :func:`verify_rows`).
    signatures: int = 0
    covered: int = 0
    #: every key that signed an event of the prefix.
    key_ids: list[str] = []

    @property
    def current_key(self) -> str | None:
        """The key that signs after event ``events``: the last one rotated in, else the first."""
        if not self.rotated_in:
            return self.first_key
        return max(self.rotated_in.items(), key=lambda item: item[1][0])[0]


Verification.model_rebuild()


class _Recheck(Exception):
    """The fast pass met something wrong: the caller re-reads and checks every signature to name it exactly."""


def verify_rows(
    rows: Iterable[dict[str, Any]] | Callable[[], Iterable[dict[str, Any]]],
    keys: Any | None = None,
    *,
    trail_id: str | None = None,
    start: ChainState | None = None,
    hashes: dict[int, str] | None = None,
    every_signature: bool = False,
) -> Verification:
    """Recompute the chain over rows in ``seq`` order and, with ``keys``, check the signatures.

    ``keys`` is a :class:`governance.trail.signing.KeyRing`; without it only
    the hash chain is checked (an archive compared as a prefix). The first
    broken link ends the chain check; signatures are checked on every row, so
    each forged or re-hashed event is named (the first :data:`MAX_LISTED`).

    **Chained signatures.** An event's hash covers the previous event's
    signature (``prev_signature``), and the trail verifies the head's
    signature before it signs the next event (:meth:`Trail.append`). So once
    the hashes and links check out, one Ed25519 check per key (the last event
    each key signed) and one of every event whose successor does not chain
    it (the trail's last event, events from before chaining) vouch for every
    other signature: a replaced signature breaks the next event's hash, a
    re-hashed chain breaks a key's last signature. That pass runs when
    ``rows`` is a callable that reads the rows (again): when it meets
    anything wrong, the rows are read once more and every signature is
    checked (``every_signature`` forces that), so the findings are the same
    exact lines either way. Key trust, validity and rotations are checked on
    every event in both.

    ``start`` continues a verification that ended cleanly there (the rows
    then begin at ``start.events + 1``): the state of key trust, rotations
    and the instance id is taken from it, nothing before it is read. A clean
    result carries the state to continue from (``Verification.state``).
    ``hashes``, when given, is filled with every row's stored hash by seq
    (the anchors are compared with it).

    ``trail_id`` is the instance the store says it is (its meta record);
    without it, the first event's id. Every event with an id must carry that
    one (else it came from another copy of the project), and no event without
    one may follow an event with one. Events with an id must also respect the
    record-time bounds (:func:`require_bounded`, :func:`require_user_name`):
    only a writer that bypassed :func:`governance.trail.record` makes one that
    does not.
    """
    read = rows if callable(rows) else None
    if read is not None and keys is not None and not every_signature:
        stream = iter(read())
        try:
            return _verify_pass(stream, keys, trail_id, start, hashes, chained=True)
        except _Recheck:
            pass  # something is wrong: read again and check every signature, to name exactly what
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # a database cursor: release it now
    return _verify_pass(read() if read is not None else rows, keys, trail_id, start, hashes, chained=False)


def _verify_pass(
    rows: Iterable[dict[str, Any]],
    keys: Any | None,
    trail_id: str | None,
    start: ChainState | None,
    hashes: dict[int, str] | None,
    *,
    chained: bool,
) -> Verification:
    """One pass of :func:`verify_rows`; ``chained`` raises :class:`_Recheck` at the first thing wrong."""
    begin = start or ChainState()
    prev, count = begin.head_hash, begin.events
    prev_signature = begin.head_signature
    chain_problem: tuple[int, str] | None = None
    verified_events, verified_head = begin.events, (begin.head_hash if begin.events else None)
    signature_findings: list[tuple[int, str]] = []
    checked, covered = begin.signatures, begin.covered
    keys_used: dict[str, str] = {}
    verified_signatures: dict[int, str] = {}
    first_key: str | None = begin.first_key
    # in rotation order (a serialised state has its keys sorted)
    rotated_in: dict[str, tuple[int, str, str]] = dict(sorted(begin.rotated_in.items(), key=lambda item: item[1][0]))
    retired: dict[str, int] = dict(begin.retired)
    instance_findings: list[tuple[int, str]] = []
    reference, first_identified, legacy = trail_id or begin.trail_id or None, begin.first_identified, begin.legacy
    # chained: the previous row while no later one has vouched for its signature, and each key's last row
    pending: tuple[int, str, str, str, str | None] | None = None
    last_of_key: dict[str, tuple[int, str, str, str, str | None]] = {}
    done_at: set[int] = set()  # last-of-key rows already checked one by one
    if keys is not None:
        for key_id in begin.key_ids:
            keys_used[key_id] = _trust_label(key_id, keys, rotated_in)
    hashed = _row_hasher()
    for expected, row in enumerate(rows, start=begin.events + 1):
        count = expected
        seq = row.get("seq")
        at = seq if isinstance(seq, int) else expected
        if hashes is not None and isinstance(seq, int):
            hashes[seq] = row.get("hash")
        stored_id = row.get("trail_id") or ""
        if not stored_id:
            legacy += 1
            if first_identified is not None:
                if chained:
                    raise _Recheck
                instance_findings.append(
                    (
                        at,
                        f"event #{seq} ({describe(row)}): written without a trail id after event "
                        f"#{first_identified}, which has one; it was inserted by an older govern or copied in",
                    )
                )
        else:
            first_identified = first_identified if first_identified is not None else seq
            reference = reference or stored_id
            if stored_id != reference:
                if chained:
                    raise _Recheck
                instance_findings.append(
                    (
                        at,
                        f"event #{seq} ({describe(row)}): belongs to trail {shown(stored_id, 64)}, not this trail "
                        f"{shown(reference, 64)}; it was copied from another copy of the project that shares its "
                        "signing key",
                    )
                )
            else:
                bound = _bound_problem(row)
                if bound is not None:
                    if chained:
                        raise _Recheck
                    instance_findings.append((at, f"event #{seq} ({describe(row)}): {bound}"))
        # hashed (so covering the previous signature) only in an event with a trail id: see row_hash
        stored_prev_signature = (row.get("prev_signature") or "") if stored_id else ""
        if chain_problem is None:
            problem = None
            if seq != expected:
                problem = f"event #{expected} is missing or renumbered (found #{seq}, {describe(row)}, in its place)"
            elif row.get("prev_hash") != prev:
                problem = (
                    f"event #{seq} ({describe(row)}): prev_hash does not match the hash of event #{seq - 1}; "
                    "an event before it was removed, inserted or edited"
                )
            elif hashed(row) != row.get("hash"):
                problem = f"event #{seq} ({describe(row)}): stored content does not match its hash; it was edited"
            elif stored_prev_signature and prev_signature and stored_prev_signature != prev_signature:
                problem = (
                    f"event #{seq} ({describe(row)}): prev_signature does not match the signature of event "
                    f"#{seq - 1}; that signature was replaced, or an event before it removed or inserted"
                )
            if problem is not None:
                if chained:
                    raise _Recheck
                chain_problem = (expected, problem)
                verified_events, verified_head = expected - 1, (prev if expected > 1 else None)
        if expected == 1:
            first_key = str(row.get("key_id") or "")
        if keys is not None:
            found = _check_signature(row, keys, rotated_in, retired, first_key, verify=not chained)
            if isinstance(found, str):
                if chained:
                    raise _Recheck
                signature_findings.append((seq if isinstance(seq, int) else expected, found))
            else:
                key_id, keys_used[key_id], public = found
                signature = str(row.get("signature"))
                verified_signatures[seq] = signature
                if not chained:
                    checked += 1
                else:
                    if pending is not None:
                        if stored_prev_signature:  # this row's hash covers the previous signature (link checked)
                            covered += 1
                        elif not _signed(keys, pending):  # nothing covers it (before chaining): check it now
                            raise _Recheck
                        else:
                            checked += 1
                            if last_of_key.get(pending[1]) is pending:
                                done_at.add(pending[0])
                    pending = last_of_key[key_id] = (seq, key_id, str(row.get("hash")), signature, public)
        prev = row.get("hash")
        prev_signature = str(row.get("signature") or "")
    if chained and pending is not None:
        # Each key's last event (it vouches for everything before it) and the last event (nothing covers it)
        for entry in {pending[0]: pending, **{entry[0]: entry for entry in last_of_key.values()}}.values():
            if entry[0] in done_at:
                continue
            if not _signed(keys, entry):
                raise _Recheck
            checked += 1
            covered -= entry is not pending  # counted as covered above, checked here
    if chain_problem is None:
        verified_events, verified_head = count, (prev if count else None)
    findings = (
        ([chain_problem] if chain_problem else [])
        + _capped(signature_findings)
        + _capped(instance_findings, "events not of this trail or over the record-time bounds")
    )
    findings.sort(key=lambda item: item[0])
    rotated_keys = {key_id: public for key_id, (_, public, _) in rotated_in.items()}
    instance = {"trail_id": reference, "legacy_events": legacy}
    # where the rows ended; only a clean result's state is a place to continue from
    state = (
        ChainState(
            events=count,
            head_hash=str(prev) if count else GENESIS_HASH,
            head_signature=prev_signature if count else "",
            first_key=first_key,
            rotated_in=rotated_in,
            retired=retired,
            trail_id=reference,
            first_identified=first_identified,
            legacy=legacy,
            signatures=checked,
            covered=covered,
            key_ids=sorted(keys_used),
        )
        if keys is not None
        else None
    )
    common = {
        **instance,
        "rotated_keys": rotated_keys,
        "verified_signatures": verified_signatures,
        "signatures_checked": checked,
        "signatures_covered": covered,
        "keys_used": keys_used,
        "state": state,
    }
    if not findings:
        return Verification(ok=True, events=verified_events, head_hash=verified_head, **common)
    return Verification(
        ok=False,
        events=verified_events,
        head_hash=verified_head,
        first_bad_seq=findings[0][0],
        problem=findings[0][1],
        findings=[line for _, line in findings],
        finding_seqs=[seq for seq, _ in findings],
        **common,
    )


def check_read_rows(
    rows: Iterable[dict[str, Any]],
    keys: Any,
    state: ChainState,
    *,
    before: dict[int, tuple[str, str]],
    vouched: set[tuple[int, str, str]],
) -> list[tuple[int, str]]:
    """Each stored row a decision read, checked on its own however old: ``(seq, finding)`` for each that fails.

    The per-event half of :func:`verify_rows`, for rows that a verified
    checkpoint vouches for only through its head (nobody re-read them): the
    row's hash recomputed from its content; its link to the event before it
    (``before``: seq -> that event's stored hash and signature, the rows
    themselves not read); its trail id and record-time bounds; and its
    signature by a key trusted at that point of the trail (``state``, the
    verified trail's first key, rotations and retirements: a key rotated in
    after the row does not vouch for it). One finding per row, in the words
    :func:`verify_rows` uses. ``vouched`` holds the ``(seq, hash, signature)``
    whose Ed25519 check passed already; each row that passes is added.
    """
    hashed = _row_hasher()
    findings: list[tuple[int, str]] = []
    for row in rows:
        seq = row.get("seq")
        if not isinstance(seq, int) or seq < 1:
            findings.append((0, f"an event numbered {shown(seq, 40)} ({describe(row)}) is not of the chain"))
            continue
        problem = _read_row_problem(row, seq, keys, state, before, vouched, hashed)
        if problem is not None:
            findings.append((seq, f"event #{seq} ({describe(row)}): {problem}"))
    return sorted(findings, key=lambda item: item[0])


def _read_row_problem(
    row: dict[str, Any],
    seq: int,
    keys: Any,
    state: ChainState,
    before: dict[int, tuple[str, str]],
    vouched: set[tuple[int, str, str]],
    hashed: Callable[[dict[str, Any]], str | None],
) -> str | None:
    """What is wrong with one row read by a decision (see :func:`check_read_rows`), or None."""
    event_hash, signature = str(row.get("hash") or ""), str(row.get("signature") or "")
    if hashed(row) != event_hash:
        return "stored content does not match its hash; it was edited"
    stored_id = row.get("trail_id") or ""
    if seq == 1:
        if row.get("prev_hash") != GENESIS_HASH:
            return "prev_hash is not the genesis hash of event #1; an event was inserted before it"
    elif seq - 1 not in before:
        return f"event #{seq - 1} before it is missing; it was removed, or the trail renumbered"
    else:
        previous_hash, previous_signature = before[seq - 1]
        if row.get("prev_hash") != previous_hash:
            return (
                f"prev_hash does not match the hash of event #{seq - 1}; an event before it was removed, inserted "
                "or edited"
            )
        if stored_id and row.get("prev_signature") and row.get("prev_signature") != previous_signature:
            return (
                f"prev_signature does not match the signature of event #{seq - 1}; that signature was replaced, "
                "or an event before it removed or inserted"
            )
    if stored_id and state.trail_id is not None and stored_id != state.trail_id:
        return (
            f"belongs to trail {shown(stored_id, 64)}, not this trail {shown(state.trail_id, 64)}; it was copied "
            "from another copy of the project that shares its signing key"
        )
    if not stored_id and state.first_identified is not None and seq > state.first_identified:
        return (
            f"written without a trail id after event #{state.first_identified}, which has one; it was inserted by "
            "an older govern or copied in"
        )
    bound = _bound_problem(row) if stored_id else None
    if bound is not None:
        return bound
    # Key trust as it stood at this row: only rotations recorded before it introduce a key
    rotated_in = {key_id: rotation for key_id, rotation in state.rotated_in.items() if rotation[0] < seq}
    found = _check_signature(row, keys, rotated_in, dict(state.retired), state.first_key, verify=False)
    if isinstance(found, str):
        return found.removeprefix(f"event #{seq} ({describe(row)}): ")
    key_id, _, public = found
    if (seq, event_hash, signature) not in vouched:
        if not keys.verify(key_id, event_hash, signature, public=public):
            return f"signature does not verify under key {key_id}; the event was forged or re-hashed after an edit"
        vouched.add((seq, event_hash, signature))
    return None


def _signed(keys: Any, entry: tuple[int, str, str, str, str | None]) -> bool:
    """Ed25519 check of one pending ``(seq, key id, hash, signature, rotated-in public key)``."""
    _, key_id, event_hash, signature, public = entry
    return bool(keys.verify(key_id, event_hash, signature, public=public))


def _trust_label(key_id: str, keys: Any, rotated_in: dict[str, tuple[int, str, str]]) -> str:
    """How a key that signed part of a verified prefix is trusted now (for the summary lines)."""
    trust, refused = keys.check(key_id, "9999-12-31")
    if trust is None and key_id in rotated_in:
        at, _, old = rotated_in[key_id]
        return f"rotated in at #{at} by {old}, not reviewed in git"
    return trust or refused or "no longer trusted"


def _row_hasher():
    """:func:`row_hash`, with the canonical JSON of the usual row (str and int columns) built without ``json.dumps``.

    The fast form writes exactly the bytes :func:`canonical_json` writes (the
    same C string encoder, the same sorted keys and separators); any other
    value type falls back to :func:`row_hash` itself.
    """
    from json.encoder import encode_basestring

    def build(columns: tuple[str, ...]) -> list[tuple[str, str]]:
        ordered = sorted(columns)
        return [(name, ("{" if i == 0 else ",") + encode_basestring(name) + ":") for i, name in enumerate(ordered)]

    layouts = {columns: build(columns) for columns in (COLUMNS, UNCHAINED_COLUMNS, LEGACY_COLUMNS)}
    sha256 = hashlib.sha256

    def hashed(row: dict[str, Any]) -> str | None:
        parts = []
        try:
            for name, prefix in layouts[_hashed_columns(row)]:  # the layout row_hash picks
                value = row[name]
                kind = type(value)
                if kind is str:
                    parts.append(prefix + encode_basestring(value))
                elif kind is int:
                    parts.append(prefix + int.__repr__(value))
                else:
                    return row_hash(row)
        except KeyError:
            return None
        parts.append("}")
        return sha256("".join(parts).encode("utf-8")).hexdigest()

    def guarded(row: dict[str, Any]) -> str | None:
        try:
            return hashed(row)
        except (KeyError, TypeError, ValueError):
            return None

    return guarded


def _capped(
    findings: list[tuple[int, str]], what: str = "events whose signatures do not verify"
) -> list[tuple[int, str]]:
    if len(findings) <= MAX_LISTED:
        return findings
    rest = len(findings) - MAX_LISTED
    last = findings[MAX_LISTED - 1][0]
    return [*findings[:MAX_LISTED], (last, f"… and {rest} more {what}")]


def _bound_problem(row: dict[str, Any]) -> str | None:
    """Why a stored row (written with a trail id) breaks a record-time bound, or None."""
    for field in TEXT_FIELDS:
        value = row.get(field)
        if isinstance(value, str):
            problem = _field_problem(field, value)
            if problem is not None:
                return problem
    return None


@functools.lru_cache(maxsize=4096)
def _field_problem(field: str, value: str) -> str | None:
    """:func:`_bound_problem` for one value; cached, as a trail repeats its actors and roles a million times."""
    try:
        require_bounded(field, value)
        if field == "actor":
            require_user_name(field, value)
    except AuditError as refused:
        return f"{str(refused).split(';', 1)[0]}; `govern` refuses that at record time, so it was not written by it"
    return None


class _Where:
    """``event #N (approved m v1 by bob)``, built only when a finding prints it (not for a million clean events)."""

    __slots__ = ("row", "seq")

    def __init__(self, seq: Any, row: dict[str, Any]):
        self.seq, self.row = seq, row

    def __format__(self, spec: str) -> str:
        return f"event #{self.seq} ({describe(self.row)})"


def _check_signature(
    row: dict[str, Any],
    keys: Any,
    rotated_in: dict[str, tuple[int, str, str]],
    retired: dict[str, int],
    first_key: str | None,
    *,
    verify: bool = True,
) -> tuple[str, str, str | None] | str:
    """``(key id, trust, rotated-in public key)`` when a key trusted at that point signed the row; else the finding.

    ``verify=False`` checks everything but the Ed25519 signature itself (a
    later event vouches for it: :func:`verify_rows`).

    A key is trusted only if it signed event #1 or an earlier ``key_rotated``
    event (signed by a key trusted then) introduced it, however it is listed:
    a listing in ``policies/trail_keys.yaml``, even reviewed, says a key may
    be used, never that it took over a trail. A key that appears otherwise
    replaced the trail's key.
    """
    seq, key_id, signature = row.get("seq"), str(row.get("key_id") or ""), str(row.get("signature") or "")
    where = _Where(seq, row)
    if not key_id or not signature:
        return f"{where}: not signed; it was not written by the trail (forged insert)"
    trust, refused = keys.check(key_id, str(row.get("timestamp") or ""))
    if refused is not None:
        return f"{where}: {refused}"
    public = None
    if trust is None and key_id in rotated_in:
        at, public, old = rotated_in[key_id]
        trust = f"rotated in at #{at} by {old}, not reviewed in git"
    if trust is None:
        stale = signing.stale_listing(keys, key_id)
        if stale is not None:
            return f"{where}: signed by key {key_id}, {stale}"
        return f"{where}: signed by unknown key {key_id}; it was not written by a trusted trail key (forged insert)"
    # Every key that did not start the trail, reviewed or not, signs only once a trusted key rotated it in
    if key_id != first_key and key_id not in rotated_in:
        return (
            f"{where}: signed by key {key_id} ({trust}), which neither signed event #1 ({first_key}) nor was "
            "rotated in by a key_rotated event; the trail key was replaced outside `govern audit rotate-key`"
        )
    if key_id in retired and isinstance(seq, int) and seq > retired[key_id]:
        return f"{where}: signed by key {key_id}, which was rotated out at #{retired[key_id]}"
    if verify and not keys.verify(key_id, str(row.get("hash") or ""), signature, public=public):
        return f"{where}: signature does not verify under key {key_id}; the event was forged or re-hashed after an edit"
    if row.get("event_type") == "key_rotated":
        try:
            details = json.loads(row.get("details") or "{}")
            rotated_in[str(details["new_key_id"])] = (int(seq), str(details["new_public_key"]), key_id)
            retired[key_id] = int(seq)
        except (ValueError, KeyError, TypeError):
            return f"{where}: key rotation names no new key (details.new_key_id / new_public_key)"
    return key_id, trust, public
