"""The verified prefix: lets a governed action skip Ed25519 checks it has already made — without trusting anything new.

Every governed action verifies the whole trail first (:func:`governance.trail.require_intact`).
Recomputing hashes and links is cheap; checking one Ed25519 signature per
event is not (~0.5 ms each on the 2-core box: ~0.5 s per 1,000 events, on
every approval). After a verification that found nothing, a process holding
the trail's signing key writes a small record beside the checkpoint file
(``audit.checkpoint.verified.json``): the number ``N`` of events verified,
the hash of event ``N``, the SHA-256 of the signature columns (seq, key id,
signature) of events ``1..N``, the fingerprint of the key ring, and an HMAC
over all of it. The next verification by a key holder skips only the
Ed25519 calls for events ``1..N``, and only when the record's MAC, ``N``'s
stored hash, the signatures digest and the key ring all match.

Why that is sound:

* An Ed25519 check is a pure function of (public key, event hash,
  signature). The ring fingerprint fixes the public keys; the signatures
  digest fixes every signature and key id of ``1..N``; and the verification
  still recomputes every event's hash and link from the stored bytes, so
  when it ends at event ``N`` with the recorded hash, events ``1..N`` hold
  exactly the bytes that verified before (SHA-256 collision resistance). The
  skipped checks would return what they returned then: valid. If the chain
  breaks anywhere, the verification is repeated in full, so every finding
  is still named.
* Only those calls are skipped. Key trust and validity dates, rotations and
  retirements are evaluated for every event as before; every event after
  ``N``, the checkpoint file and the registry anchors are checked in full.
* The MAC key is derived from the trail's private signing key. Writing a
  record that passes needs that key, and whoever holds it can already sign
  forged events (the README's threat model): the record gives an attacker
  nothing the key does not. A missing, unreadable or stale record, or one
  whose MAC fails, is ignored: full verification.
* Only a process that holds the signing key uses or writes a record.
  ``govern audit verify`` (:func:`governance.trail.verify`) always checks
  every signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
from pathlib import Path
from typing import Any

from governance.trail.signing import KeyRing, SigningKey

log = logging.getLogger(__name__)

_MAC_CONTEXT = b"govern audit trail: verified prefix v1\x00"


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


def signatures_digest(rows: list[dict[str, Any]], upto: int) -> str:
    """SHA-256 of the signature columns (seq, key id, signature) of the first ``upto`` rows."""
    digest = hashlib.sha256()
    for row in rows[:upto]:
        digest.update(f"{row.get('seq')} {row.get('key_id')} {row.get('signature')}\n".encode())
    return digest.hexdigest()


def _mac(signer: SigningKey, fields: dict[str, Any]) -> str:
    key = hashlib.sha256(_MAC_CONTEXT + signer.pem()).digest()
    return hmac.new(key, json.dumps(fields, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def trusted_prefix(path: Path | None, rows: list[dict[str, Any]], keys: KeyRing, signer: SigningKey) -> int:
    """How many leading events' signatures were verified before, per an intact record; 0 when none applies."""
    if path is None or not path.is_file():
        return 0
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        fields = {k: stored[k] for k in ("events", "head_hash", "signatures_sha256", "keyring_sha256")}
        events = int(fields["events"])
        mac = str(stored["mac"])
    except (OSError, ValueError, KeyError, TypeError):
        log.info("%s: unreadable; verifying every signature", path)
        return 0
    if not hmac.compare_digest(mac, _mac(signer, fields)):
        log.info("%s: its MAC does not verify under this trail's key (rotated?); verifying every signature", path)
        return 0
    if not 0 < events <= len(rows) or rows[events - 1].get("seq") != events:
        return 0
    if rows[events - 1].get("hash") != fields["head_hash"]:
        return 0
    if fields["signatures_sha256"] != signatures_digest(rows, events):
        return 0
    if fields["keyring_sha256"] != ring_fingerprint(keys):
        return 0
    return events


def write_record(path: Path | None, rows: list[dict[str, Any]], keys: KeyRing, signer: SigningKey) -> None:
    """Record that every event in ``rows`` verified (called only after a verification that found nothing)."""
    if path is None or not rows:
        return
    fields = {
        "events": len(rows),
        "head_hash": rows[-1]["hash"],
        "signatures_sha256": signatures_digest(rows, len(rows)),
        "keyring_sha256": ring_fingerprint(keys),
    }
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps({**fields, "mac": _mac(signer, fields)}, sort_keys=True) + "\n")
        temporary.replace(path)
    except OSError as exc:  # a record that cannot be written only costs the next verification its shortcut
        log.info("%s: not written (%s)", path, exc.strerror)
        temporary.unlink(missing_ok=True)
