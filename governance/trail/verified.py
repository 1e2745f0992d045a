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

What the record does *not* re-check, by design: the bytes of events 1..N-1.
An old event edited in the database after it was verified passes the check
before an action; ``govern audit verify`` (always full, never reads the
record) finds it, which is why it runs on a schedule (see
docs/explanation/trail-at-scale.md). A key ring that changed since the
record (a key listed or removed) means a full verification, and a new record.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from governance.files import write_atomic
from governance.trail.chain import ChainState, canonical_json, now_utc
from governance.trail.signing import KeyRing, SigningKey

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
