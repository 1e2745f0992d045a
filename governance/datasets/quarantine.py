"""Quarantine: records that do not fit their format, set aside PII-masked and counted per reason.

Under ``policies/data.yaml`` ``<kind>.malformed: {action: quarantine}`` a prepare
stage does not stop at a :class:`~governance.datasets.formats.RecordError`: the
record goes to ``quarantine.jsonl`` beside the prepared data, one line each::

    {"where": "data/raw/x.jsonl:1255", "line": 1255, "field": "chosen",
     "reason": "an inline \\"Human:\\" turn (not after a blank line) in turn …: ...",
     "message": "<the one-line error, masked>", "record": {<the raw record, masked>}}

and the manifest, the dataset card and the curation steps count them per reason.
The validation gate (``data.malformed``) judges the share set aside.

Trust boundary: a quarantined record is untrusted raw text that may hold PII.
It leaves this module only masked (every finding of the project's PII policy in
every string, keys included, and in every number, read as its JSON text after its key, replaced by its
``<ENTITY>`` tag) and only into the quarantine file. Counts, reasons (which quote no record value),
``file:line`` and field paths are all that reach the manifest, the card, logs,
messages and the report. :func:`read_quarantine` believes the quarantine file,
not the manifest's counts: it recounts the file and refuses a manifest that
disagrees; the gate binds both files by hash into its decision.

Which quarantine: the prepare stage signs what it wrote (:func:`record_prepared`: a ``data_prepared`` trail event,
subject ``prepared:<stage>`` with the manifest's sha256, binding the manifest, train, eval and quarantine
bytes), and :func:`read_quarantine` counts only the bytes such an event bound (attack P8: a quarantine emptied in
place, its manifest's counts edited to match, or a folder of one's own whose manifest names the stage, judged
as 0 of N set aside). The trail key signs it; a folder prepared before the event existed is refused with the
stage to re-run.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from governance.datasets.formats import RecordError
from governance.errors import DataError
from governance.records import ReadDigest, iter_records

log = logging.getLogger(__name__)

#: The quarantine file's name inside a prepare stage's out_dir (a DVC out with the rest of it).
QUARANTINE_FILE = "quarantine.jsonl"
#: The trail event a prepare stage signs its outputs with, its subject prefix and role.
PREPARED_EVENT = "data_prepared"
PREPARED_PREFIX = "prepared:"
PREPARED_ROLE = "prepare stage"

#: A quoted short value inside a field path (``mapping.'n7'``): shown as ``…`` outside the quarantine file.
_QUOTED = re.compile(r"'[^']*'")

Masker = Callable[[str], str]


def field_pattern(field_path: str) -> str:
    """A field path as counts and messages show it: quoted values replaced by ``…``."""
    return _QUOTED.sub("…", field_path)


@dataclass(frozen=True)
class QuarantinedRecord:
    """One record set aside: where it was, the field and reason, the error, and the raw record (unmasked)."""

    where: str
    line: int
    field: str
    reason: str
    message: str
    data: dict[str, Any]


@dataclass
class Quarantine:
    """The records one prepare run set aside, in reading order."""

    action: str
    max_fraction: float
    rule_id: str = "data.malformed"
    records: list[QuarantinedRecord] = field(default_factory=list)

    def add(self, error: RecordError, line: int, data: dict[str, Any]) -> None:
        """Set one record aside (the caller decided the policy allows it)."""
        self.records.append(QuarantinedRecord(error.where, line, error.field, error.reason, str(error), data))

    def by_reason(self) -> dict[str, int]:
        """Quarantined records per reason, most frequent first."""
        return dict(Counter(r.reason for r in self.records).most_common())

    def summary(self, records_read: int, file: str) -> dict[str, Any]:
        """The manifest's ``quarantine`` section: counts and the first location, no record text."""
        first = self.records[0] if self.records else None
        return {
            "rule": self.rule_id,
            "action": self.action,
            "max_fraction": self.max_fraction,
            "file": file,
            "records_read": records_read,
            "quarantined": len(self.records),
            "fraction": round(len(self.records) / records_read, 6) if records_read else 0.0,
            "by_reason": self.by_reason(),
            "first": None
            if first is None
            else {"where": first.where, "field": field_pattern(first.field), "reason": first.reason},
        }


def pii_masker(pii_policy_path: str | Path) -> Masker:
    """A function replacing every PII finding of the policy in a text by its ``<ENTITY>`` tag.

    Every entity the policy scans is masked, whatever its action there
    (``allow`` included): a quarantined record is kept for a person to read, not
    to train on, so nothing the scanner recognises stays. The policy counts only
    as its reviewed version.
    """
    from governance.pii.mask import tag
    from governance.pii.scan import PiiScanner
    from governance.policy import load_reviewed_policy
    from governance.policy.pii import PiiPolicy

    # What is masked decides what raw text reaches quarantine.jsonl (a DVC output): the reviewed PII policy only,
    # so a recogniser dropped from an uncommitted copy cannot let an e-mail address through
    what = "PII policy (what a quarantined record is masked by)"
    scanner = PiiScanner(load_reviewed_policy(pii_policy_path, PiiPolicy, what), pii_policy_path)

    def mask(text: str) -> str:
        findings = scanner.findings_in(text) if text.strip() else []
        for finding in sorted(findings, key=lambda f: f.start, reverse=True):
            text = text[: finding.start] + tag(finding.entity) + text[finding.end :]
        return text

    return mask


def mask_value(value: Any, mask: Masker, key: str | None = None) -> Any:
    """A record with every scalar in it masked: strings (keys too) passed through ``mask``, numbers scanned too.

    A number is read as its JSON text after its key (``"card: 4111111111111111"``, ``"phone: 4155550103"``: the
    key is the context a bare digit run needs), and replaced by what ``mask`` makes of that text when ``mask``
    changes it (``"<CREDIT_CARD>"``: a string then); otherwise it stays the number it was. Booleans and null
    hold nothing to mask. ``key``: the key of the object the value is under (lists pass theirs on).
    """
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask(str(name)): mask_value(item, mask, str(name)) for name, item in value.items()}
    if isinstance(value, list):
        return [mask_value(item, mask, key) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _mask_number(value, mask, key)
    return value


def _mask_number(value: int | float, mask: Masker, key: str | None) -> Any:
    text = json.dumps(value)
    lead = f"{key}: " if key else ""
    masked = mask(lead + text)
    if masked == lead + text:
        return value
    # The number's part of the masked text (the key may have been masked too; a number holds no ": ").
    return masked.rsplit(": ", 1)[-1] if lead else masked


def masked_entries(quarantine: Quarantine, mask: Masker) -> list[dict[str, Any]]:
    """The quarantine file's lines: where, field, reason, and the error and the record masked."""
    return [
        {
            "where": record.where,
            "line": record.line,
            "field": mask(record.field),
            "reason": record.reason,
            "message": mask(record.message),
            "record": mask_value(record.data, mask),
        }
        for record in quarantine.records
    ]


@dataclass(frozen=True)
class QuarantineCounts:
    """What the validation gate judges: records read and set aside, per reason, and the first one."""

    file: str
    records_read: int
    quarantined: int
    by_reason: dict[str, int]
    first_where: str | None
    first_field: str | None
    first_reason: str | None
    action: str | None
    #: The sha256 of the quarantine file's and the manifest's bytes as read (and as the prepare stage signed them)
    sha256: str = ""
    manifest_sha256: str = ""
    #: The ``data_prepared`` trail event that bound them
    prepared_event: int | None = None


def record_prepared(stage: str, manifest_path: Path, outputs: dict[str, str]) -> None:
    """Sign what a prepare stage wrote (a ``data_prepared`` event): the manifest's sha256 (the subject's hash)
    and each output's (``train``, ``eval``, ``quarantine``), as the stage hashed them when it wrote them."""
    import hashlib

    from governance import trail
    from governance.identity import record_stage_event

    manifest_sha256 = hashlib.sha256(manifest_path.read_bytes()).hexdigest()
    record_stage_event(
        PREPARED_EVENT,
        role=PREPARED_ROLE,
        subject=trail.Subject(objective=f"{PREPARED_PREFIX}{stage}", objective_hash=manifest_sha256),
        reason=f"{stage}: prepared {', '.join(outputs)} (manifest {manifest_sha256[:12]}…)",
        evidence={"manifest_sha256": manifest_sha256, **{f"{name}_sha256": h for name, h in outputs.items()}},
    )


def prepared_event(stage: str, manifest_sha256: str, quarantine_sha256: str) -> Any:
    """The newest ``data_prepared`` event of ``stage`` that bound this manifest and quarantine, or None."""
    from governance import trail

    signed = [
        e
        for e in trail.events(objective=f"{PREPARED_PREFIX}{stage}", event_types=[PREPARED_EVENT])
        if e.subject.objective_hash == manifest_sha256
        and e.evidence.get("manifest_sha256") == manifest_sha256
        and e.evidence.get("quarantine_sha256") == quarantine_sha256
    ]
    return signed[-1] if signed else None


def read_quarantine(prepared_dir: str | Path) -> QuarantineCounts:
    """Recount a prepared folder's quarantine file and check its manifest agrees, and that the prepare stage the
    manifest names signed both (:func:`record_prepared`).

    The counts come from the file itself; the manifest contributes only the
    number of records read (the denominator, which only the prepare stage saw).
    Each file is read once: the bytes counted are the bytes hashed and checked against the signed event.
    A missing file, a line that is not a quarantine entry, a manifest whose
    counts differ from the file, or bytes no prepare stage signed is a :class:`DataError` naming the file.
    """
    import hashlib

    folder = Path(prepared_dir)
    path = folder / QUARANTINE_FILE
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise DataError(f"{manifest_path}: prepared manifest missing; run the prepare stage first (dvc repro)")
    manifest_bytes = manifest_path.read_bytes()
    try:
        manifest = json.loads(manifest_bytes.decode("utf-8"))
        section, stage = manifest.get("quarantine"), manifest.get("stage")
    except (ValueError, AttributeError):
        raise DataError(f"{manifest_path}: not a prepare manifest (invalid JSON); re-run the prepare stage") from None
    if not isinstance(section, dict) or not isinstance(section.get("records_read"), int):
        raise DataError(
            f"{manifest_path}: field quarantine: missing (prepared before the malformed-record policy); "
            "re-run the prepare stage"
        )
    if not path.is_file():
        raise DataError(f"{path}: quarantine file missing; re-run the prepare stage")
    reasons: Counter[str] = Counter()
    first: dict[str, Any] | None = None
    digest = ReadDigest()
    for record in iter_records(path, allow_empty=True, digest=digest):
        reason, where = record.data.get("reason"), record.data.get("where")
        if not isinstance(reason, str) or not isinstance(where, str):
            raise DataError(f"{path}:{record.line}: field reason: not a quarantine entry; re-run the prepare stage")
        reasons[reason] += 1
        first = first or record.data
    quarantined = sum(reasons.values())
    if quarantined != section.get("quarantined") or dict(reasons) != section.get("by_reason"):
        raise DataError(
            f"{manifest_path}: field quarantine: counts {section.get('quarantined')} but {path} holds "
            f"{quarantined} records; the two were not written together, re-run the prepare stage"
        )
    if section["records_read"] < quarantined:
        raise DataError(
            f"{manifest_path}: field quarantine.records_read: {section['records_read']} is fewer than the "
            f"{quarantined} quarantined; re-run the prepare stage"
        )
    manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    event = prepared_event(str(stage), manifest_sha256, digest.sha256)
    if event is None:
        raise DataError(
            f"{path}: sha256 {digest.sha256[:12]}… (manifest {manifest_sha256[:12]}…) is not a quarantine a "
            f"{PREPARED_EVENT} event of {stage} signed in the audit trail: the folder was changed after the stage "
            f"wrote it, or was not written by it; re-run the stage (dvc repro -f {stage})"
        )
    return QuarantineCounts(
        sha256=digest.sha256,
        manifest_sha256=manifest_sha256,
        prepared_event=event.seq,
        file=str(path),
        records_read=section["records_read"],
        quarantined=quarantined,
        by_reason=dict(reasons.most_common()),
        first_where=first.get("where") if first else None,
        first_field=field_pattern(str(first.get("field"))) if first else None,
        first_reason=first.get("reason") if first else None,
        action=section.get("action"),
    )
