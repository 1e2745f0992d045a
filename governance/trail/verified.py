"""The verified checkpoint: a signed statement "events 1..N verified", so a governed action checks only what came after.

Every governed action verifies the trail first (:func:`governance.trail.require_intact`).
Reading and re-checking every event is O(trail length): minutes at a million
events. After a verification that found nothing, a process holding the
trail's signing key writes a small record beside the checkpoint file
(``audit.checkpoint.verified.json``):

* ``events`` N and the hash of event N (the chain head it verified);
* the verifier's state at N (:class:`~governance.trail.chain.ChainState`):
  the key of event #1, keys rotated in and out, the trail id, how many
  signatures verified — all that checking event N+1 onwards needs;
* the fingerprint of the trusted key ring it verified under;
* how far it read the checkpoint file (bytes, lines, heads, latest head) and
  the SHA-256 of the last line it read;
* an Ed25519 signature by the trail key over all of it, under its own
  context (``govern-trail-verified-checkpoint-v1:``), so neither an event
  signature nor a record signature can be replayed as the other.

The next verification by :func:`~governance.trail.require_intact` (anyone:
only the public key is needed to check the record) starts from it:

* the record must verify under a key of the ring that is the trail's current
  key at N and was not rotated out at or before N by a stored ``key_rotated``
  event; an edited, forged or unreadable record is refused (the action
  stops), a missing one means a full verification;
* the trail must still hold event N, with the recorded hash, recomputed from
  its stored bytes (a shorter trail was truncated; another hash was rewritten);
  the store's trail id must be the recorded one;
* the checkpoint file must still be at least as long and end the read part
  with the recorded line (else it was truncated or rewritten);
* then events N+1.. are verified in full (hash, link, signature, key trust,
  rotations, bounds), the checkpoint file's heads written since and the
  caller's anchors (MLflow tags) are compared, as a full verification would.

What the record does *not* re-check: the bytes of events 1..N-1. So the
check before an action does not stop there: the events its decision reads
(registration, gate and evaluation decisions, approvals, rejections, alias
moves, incidents, policy changes) are verified one by one at the time of the
action, however old (:class:`DecisionReads`): each one's hash recomputed
from the content the decision uses, its signature checked against the key
ring, its link to the stored hash and signature of the event before it; and
the trail must hold every seq up to its last (a deleted event leaves a
hole). O(events read), not O(trail): an old event edited (triggers
dropped), used, then restored is refused when it is used. An edit to an
event no decision reads (a monitoring result, say), or one that moves an
event out of what a decision reads (another model's name), is left to
``govern audit verify`` (always full, never reads the record), which is why
it runs on a schedule (see docs/explanation/trail-at-scale.md). A key ring
that changed since the record (a key listed or removed) means a full
verification, and a new record.

Writing a record that passes needs the trail's private key; whoever holds it
can already sign forged events (docs/explanation/threat-model.md), so the record
gives an attacker nothing the key does not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from governance.errors import TrailBroken
from governance.files import write_atomic
from governance.trail.chain import ChainState, Event, Verification, canonical_json, check_read_rows, now_utc
from governance.trail.signing import KeyRing, SigningKey, load_keyring

if TYPE_CHECKING:
    from governance.trail.storage import Trail

log = logging.getLogger(__name__)

#: Domain separation from event signatures (``govern-trail-event-v1:``).
_CONTEXT = b"govern-trail-verified-checkpoint-v1:"
_VERSION = 1
_FIELDS = (
    "version",
    "events",
    "head_hash",
    "state",
    "keyring_sha256",
    "checkpoint_bytes",
    "checkpoint_lines",
    "checkpoint_heads",
    "checkpoint_latest",
    "checkpoint_tail_sha256",
    "verified_at",
    "key_id",
)


class RecordRefused(Exception):
    """The verified checkpoint exists but cannot be believed (edited, forged, signed by a retired key)."""


@dataclass(frozen=True)
class FileMark:
    """How far a verification read the checkpoint file."""

    bytes: int = 0
    lines: int = 0
    heads: int = 0
    latest: int = 0
    tail_sha256: str = ""


@dataclass(frozen=True)
class VerifiedCheckpoint:
    """A record whose signature verified: where the next verification starts."""

    state: ChainState
    mark: FileMark
    key_id: str
    verified_at: str
    path: Path


def record_path(checkpoint: Path | None) -> Path | None:
    """Where the record lives: beside the checkpoint file (a trail without one keeps no record)."""
    if checkpoint is None:
        return None
    return checkpoint.with_name(checkpoint.name.removesuffix(".jsonl") + ".verified.json")


def ring_fingerprint(keys: KeyRing) -> str:
    """SHA-256 over every trusted public key with its owner and validity (reviewed) or as local."""
    ring = {
        "reviewed": {
            key_id: [base64.b64encode(raw).decode(), owner, valid_from.isoformat()]
            for key_id, (raw, owner, valid_from) in sorted(keys.reviewed.items())
        },
        "local": {key_id: base64.b64encode(raw).decode() for key_id, raw in sorted(keys.local.items())},
    }
    return hashlib.sha256(json.dumps(ring, sort_keys=True).encode()).hexdigest()


def _message(fields: dict[str, Any]) -> bytes:
    return _CONTEXT + canonical_json(fields).encode("utf-8")


def _public(keys: KeyRing, key_id: str) -> bytes | None:
    return keys.reviewed[key_id][0] if key_id in keys.reviewed else keys.local.get(key_id)


def load(path: Path | None, keys: KeyRing, retired_at: dict[str, int]) -> VerifiedCheckpoint | None:
    """The record at ``path`` when it can be believed; None when there is none or the key ring changed.

    ``retired_at`` maps key ids to the seqs of the stored ``key_rotated``
    events they signed (read from the store, not from the record). Raises
    :class:`RecordRefused` (one line) for a record that was edited or forged.
    """
    if path is None or not path.is_file():
        return None
    where = f"verified checkpoint {path}"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        fields = {name: stored[name] for name in _FIELDS}
        signature = base64.b64decode(str(stored["signature"]), validate=True)
        state = ChainState.model_validate(fields["state"])
        mark = FileMark(
            bytes=int(fields["checkpoint_bytes"]),
            lines=int(fields["checkpoint_lines"]),
            heads=int(fields["checkpoint_heads"]),
            latest=int(fields["checkpoint_latest"]),
            tail_sha256=str(fields["checkpoint_tail_sha256"]),
        )
        key_id = str(fields["key_id"])
    except (OSError, ValueError, KeyError, TypeError, binascii.Error, ValidationError):
        raise RecordRefused(f"{where}: not a signed verified checkpoint; it was edited") from None
    public = _public(keys, key_id)
    if public is None:
        raise RecordRefused(f"{where}: signed by key {key_id}, which is not a trusted trail key (forged record)")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, _message(fields))
    except (InvalidSignature, ValueError):
        raise RecordRefused(
            f"{where}: signature does not verify under key {key_id}; the record was edited or forged"
        ) from None
    events = state.events
    if fields["version"] != _VERSION or fields["events"] != events or fields["head_hash"] != state.head_hash:
        raise RecordRefused(f"{where}: its fields disagree with its state; it was forged")
    if key_id != state.current_key:
        raise RecordRefused(
            f"{where}: signed by key {key_id}, but the trail's key at #{events} is {state.current_key} (forged record)"
        )
    if key_id in retired_at and retired_at[key_id] <= events:
        raise RecordRefused(
            f"{where}: signed by key {key_id}, which was rotated out at #{retired_at[key_id]}, "
            f"before #{events} (forged with a retired key)"
        )
    if fields["keyring_sha256"] != ring_fingerprint(keys):
        log.info("%s: the trusted keys changed since; verifying every event", path)
        return None
    return VerifiedCheckpoint(state=state, mark=mark, key_id=key_id, verified_at=str(fields["verified_at"]), path=path)


def write(path: Path | None, state: ChainState, mark: FileMark, keys: KeyRing, signer: SigningKey) -> None:
    """Record that events ``1..state.events`` verified (called only after a verification that found nothing).

    Written only by the trail's current key, and only when the ring trusts
    it directly (a rotated-in key not yet listed makes no record: the next
    verification is full).
    """
    if path is None or not state.events or signer.key_id != state.current_key or _public(keys, signer.key_id) is None:
        return
    fields = {
        "version": _VERSION,
        "events": state.events,
        "head_hash": state.head_hash,
        "state": state.model_dump(mode="json"),
        "keyring_sha256": ring_fingerprint(keys),
        "checkpoint_bytes": mark.bytes,
        "checkpoint_lines": mark.lines,
        "checkpoint_heads": mark.heads,
        "checkpoint_latest": mark.latest,
        "checkpoint_tail_sha256": mark.tail_sha256,
        "verified_at": now_utc(),
        "key_id": signer.key_id,
    }
    signature = base64.b64encode(signer.private.sign(_message(fields))).decode("ascii")
    try:
        write_atomic(path, json.dumps({**fields, "signature": signature}, sort_keys=True) + "\n")
    except OSError as exc:  # a record that cannot be written only costs the next verification its shortcut
        log.info("%s: not written (%s)", path, exc.strerror)


#: ``(seq, hash, signature)`` whose Ed25519 check passed, per trail and key ring: a decision that reads
#: the same events again (the guard under the append lock, a second precondition) re-hashes them only.
_VOUCHED: dict[tuple[str, str], set[tuple[int, str, str]]] = {}
#: Past this many remembered checks a trail's set starts again (a long-running `govern watch`).
_VOUCHED_MAX = 200_000
#: Seqs looked up per query (SQLite binds at most 32,766 values in one statement).
_SEQS_PER_QUERY = 5000


class DecisionReads:
    """The events a governed decision reads, verified at the time of the action however old they are.

    :func:`governance.trail.require_intact` trusts events before the verified
    checkpoint through its head alone; an old event edited with the triggers
    dropped, used by an action and restored afterwards would pass it. So an
    action hands every event it decides from to :meth:`require`: each is
    checked on its own (:func:`governance.trail.chain.check_read_rows`: hash
    recomputed from the content read, link to the stored hash of the event
    before it, trail id, signature by a key trusted at that point), and the
    first check also asks the store whether any seq up to its last is
    missing. Built from the clean :class:`Verification` that ``require_intact``
    returned (its chain state says which keys were rotated in and out).
    """

    def __init__(self, opened: Trail, verification: Verification, action: str):
        self.opened, self.action = opened, action
        self.state = verification.state
        self.keys = load_keyring(opened.files) if self.state is not None else None
        self._contiguous = False
        self._vouched: set[tuple[int, str, str]] = set()
        if self.keys is not None:
            vouched = _VOUCHED.setdefault((opened.url, ring_fingerprint(self.keys)), set())
            if len(vouched) > _VOUCHED_MAX:
                vouched.clear()
            self._vouched = vouched

    def require(self, events: Iterable[Event]) -> list[Event]:
        """``events`` when every one verifies; else :class:`TrailBroken` (exit 1) naming the first that does not."""
        events = list(events)
        if self.keys is None or self.state is None:  # an unsigned trail (the benchmark's baseline) has no keys
            return events
        if not self._contiguous:
            self._require_contiguous()
        rows = [event.stored_row() for event in events]
        before = self._stored_before({row["seq"] - 1 for row in rows if isinstance(row["seq"], int)})
        findings = check_read_rows(rows, self.keys, self.state, before=before, vouched=self._vouched)
        if findings:
            more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
            raise TrailBroken(
                f"refusing to act on a broken audit trail: {self.action} reads {findings[0][1]}{more}; "
                "see `govern audit verify`"
            )
        return events

    def _stored_before(self, seqs: set[int]) -> dict[int, tuple[str, str]]:
        """The stored hash and signature of each event before one read (the link each read event must match)."""
        wanted = sorted(seq for seq in seqs if seq >= 1)
        found: dict[int, tuple[str, str]] = {}
        for at in range(0, len(wanted), _SEQS_PER_QUERY):  # a database bounds the values one query may bind
            stored = self.opened._heads_at(set(wanted[at : at + _SEQS_PER_QUERY]))
            found.update({seq: (str(row.hash), str(row.signature)) for seq, row in stored.items()})
        return found

    def _require_contiguous(self) -> None:
        """Refuse a trail with a hole: an event deleted (and perhaps restored after the action) leaves one."""
        from sqlalchemy import func, select, text

        from governance.trail.storage import events_table

        # One statement, so PostgreSQL counts and finds the last seq in the same snapshot
        query = select(
            select(func.count()).select_from(events_table).scalar_subquery(),
            select(func.max(events_table.c.seq)).scalar_subquery(),
        )
        with self.opened._errors("reading the audit trail"), self.opened.engine.connect() as conn:
            count, last = conn.execute(query).one()
            count, last = int(count or 0), int(last or 0)
            if count == last:
                self._contiguous = True
                return
            gap = conn.execute(
                text(
                    "SELECT MIN(a.seq) + 1 FROM audit_events a WHERE a.seq < :last AND NOT EXISTS "
                    "(SELECT 1 FROM audit_events b WHERE b.seq = a.seq + 1)"
                ),
                {"last": last},
            ).scalar()
            first = conn.execute(select(func.min(events_table.c.seq))).scalar()
        missing = 1 if first is not None and int(first) > 1 else int(gap) if gap is not None else None
        what = f"event #{missing} is missing" if missing is not None else "its events are not numbered 1, 2, 3, …"
        raise TrailBroken(
            f"refusing to act on a broken audit trail: {what} (it holds {count} events, the last #{last}); "
            "an event was deleted; see `govern audit verify`"
        )
