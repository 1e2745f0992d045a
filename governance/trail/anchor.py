"""Anchors: signed chain heads kept outside the trail database, and comparing them with the chain.

After every append the new head (seq, hash, key id, signature) is appended to
an append-only checkpoint file beside the store (``audit.checkpoint.jsonl``,
or ``GOVERN_TRAIL_CHECKPOINT``). The registry writes the same head as a tag on
the registered model in MLflow (:meth:`Anchor.encode` / :meth:`Anchor.decode`;
the trail itself never imports MLflow) and hands those back to
:func:`governance.trail.verify` as extra anchors.

A hash chain alone cannot see its own missing tail, nor a tail rewritten and
re-hashed consistently. An anchor can: a head beyond the chain's end means the
trail was truncated; a different hash at an anchored seq means it was
rewritten. An anchor is itself signed (it is the head event's signature), so
one cannot be forged without the key — but anyone who can write the file can
delete lines from it, which is why the same head also goes to MLflow and why
docs/explanation/threat-model.md says what to ship off-box.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from governance.errors import AuditError
from governance.trail import signing


class Anchor(BaseModel):
    """A chain head as recorded outside the trail database; ``source`` says where (for findings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int
    hash: str
    key_id: str
    signature: str
    source: str = ""

    @classmethod
    def of(cls, event, source: str = "") -> Anchor:
        """The anchor of a stored :class:`~governance.trail.Event` (normally the new head)."""
        return cls(seq=event.seq, hash=event.hash, key_id=event.key_id, signature=event.signature, source=source)

    def encode(self) -> str:
        """``seq hash key_id signature`` — one short line, e.g. an MLflow tag value."""
        return f"{self.seq} {self.hash} {self.key_id} {self.signature}"

    @classmethod
    def decode(cls, text: str, source: str) -> Anchor:
        """Parse :meth:`encode`'s form; a malformed value is an :class:`AuditError` naming ``source``."""
        parts = text.split()
        if len(parts) != 4 or not parts[0].isdigit():
            raise AuditError(f"{source}: not a trail anchor ('<seq> <hash> <key id> <signature>')")
        return cls(seq=int(parts[0]), hash=parts[1], key_id=parts[2], signature=parts[3], source=source)

    def line(self) -> str:
        return json.dumps({"seq": self.seq, "hash": self.hash, "key_id": self.key_id, "signature": self.signature})


def append_checkpoint(path: Path, anchor: Anchor) -> None:
    """Append one head to the checkpoint file: one ``write`` of one line with ``O_APPEND`` (no torn lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (anchor.line() + "\n").encode("ascii"))
    finally:
        os.close(fd)


def read_checkpoint(path: Path) -> tuple[list[Anchor], list[tuple[int, str]]]:
    """The anchors of a checkpoint file, and a finding per unreadable line (``(line number, text)``)."""
    anchors, bad = [], []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                anchors.append(Anchor.model_validate({**json.loads(line), "source": f"checkpoint {path}:{number}"}))
            except (ValueError, ValidationError, TypeError):
                bad.append((number, f"checkpoint {path}:{number}: not a signed head; the file was edited"))
    return anchors, bad


def check_anchors(
    anchors: Iterable[Anchor],
    hashes: dict[int, str],
    end: int,
    keys,
    rotated: dict[str, str],
    verified: dict[int, str] | None = None,
) -> list[tuple[int, str]]:
    """Findings ``(seq, line)`` for anchors that the chain contradicts.

    ``hashes`` maps each stored seq to its stored hash and ``end`` is the last
    stored seq. Per source, the first rewritten seq and the furthest anchor
    beyond the end are reported; an anchor whose signature does not verify is
    reported as forged and otherwise ignored. ``rotated`` maps key ids
    introduced by rotation events to their public keys; ``verified`` maps
    seqs whose stored signature already verified to that signature (an anchor
    equal to its event needs no second signature check).
    """
    verified = verified or {}
    findings: list[tuple[int, str]] = []
    seen_rewrite: set[str] = set()
    beyond: dict[str, Anchor] = {}
    for anchor in sorted(anchors, key=lambda a: a.seq):
        family = anchor.source.rsplit(":", 1)[0] if anchor.source.startswith("checkpoint ") else anchor.source
        if hashes.get(anchor.seq) == anchor.hash and verified.get(anchor.seq) == anchor.signature:
            continue  # the very event, whose signature verified a moment ago
        trust, _ = keys.check(anchor.key_id, "9999")
        if (trust is None and anchor.key_id not in rotated) or not keys.verify(
            anchor.key_id, anchor.hash, anchor.signature, public=rotated.get(anchor.key_id)
        ):
            stale = signing.stale_listing(keys, anchor.key_id) if trust is None else None
            forged = (
                f"{anchor.source}: head #{anchor.seq} is signed by key {anchor.key_id}, {stale}"
                if stale is not None
                else f"{anchor.source}: head #{anchor.seq} is not signed by a trusted trail key (forged anchor)"
            )
            findings.append((anchor.seq, forged))
            continue
        if anchor.seq > end:
            beyond[family] = anchor
        elif hashes.get(anchor.seq) != anchor.hash and family not in seen_rewrite:
            seen_rewrite.add(family)
            stored = hashes.get(anchor.seq)
            now = f"the trail now holds {stored[:16]}" if stored else "the trail has no such event"
            findings.append(
                (
                    anchor.seq,
                    f"{anchor.source}: event #{anchor.seq} was anchored with hash {anchor.hash[:16]}, {now}; "
                    f"the trail was rewritten at or before #{anchor.seq}",
                )
            )
    for anchor in beyond.values():
        removed = f"event #{anchor.seq} was" if anchor.seq == end + 1 else f"events #{end + 1}..#{anchor.seq} were"
        findings.append(
            (
                anchor.seq,
                f"{anchor.source}: head #{anchor.seq} is beyond the trail's end (#{end}); "
                f"{removed} removed (truncated)",
            )
        )
    return findings


class CheckpointScan:
    """One pass over a checkpoint file from a byte offset: yields ``(line number, parsed JSON or None)``.

    Only complete lines (ending in a newline) move the mark (:attr:`offset`,
    :attr:`lines`) a later pass resumes from; a last line without one (a head
    being written, or a newline removed) is still yielded, so nothing it says
    goes unchecked. Blank lines are skipped; a line that is not JSON yields None.
    """

    def __init__(self, path: Path, offset: int = 0, lines: int = 0):
        self.path, self.offset, self.lines = path, offset, lines
        self.before = (offset, lines)

    def __iter__(self):
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            number = self.lines
            for raw in handle:
                number += 1
                #: the mark before the line being yielded (to stop a later pass's resumption there)
                self.before = (self.offset, self.lines)
                if raw.endswith(b"\n"):
                    self.offset += len(raw)
                    self.lines = number
                if not raw.strip():
                    continue
                try:
                    yield number, json.loads(raw)
                except ValueError:
                    yield number, None

    def tail_sha256(self, offset: int | None = None) -> str:
        """SHA-256 of the (at most) 256 bytes before ``offset`` (default: the mark): what a later pass re-checks."""
        end = self.offset if offset is None else offset
        with self.path.open("rb") as handle:
            handle.seek(max(0, end - 256))
            return hashlib.sha256(handle.read(min(end, 256))).hexdigest()


def parse_head(parsed, source: str) -> Anchor | None:
    """A parsed checkpoint line as an :class:`Anchor`; None when it is not a signed head."""
    try:
        return Anchor.model_validate({**parsed, "source": source})
    except (ValueError, ValidationError, TypeError):
        return None
