"""The findings report (``findings.json``): counts, locations and masked context, never raw values.

Written by the ``pii_scan_*`` stages and ``govern pii scan --report``; read by
the audit report with :func:`load_findings_report`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from governance.errors import DataError
from governance.files import write_atomic

SCHEMA = "pii-findings/1"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReportedFinding(_Model):
    """One listed finding: where it is, what it is, and its masked shape and context."""

    file: str
    line: int
    field: str
    entity: str
    also: list[str]
    start: int
    end: int
    score: float
    action: str
    rule_id: str
    masked: str
    snippet: str


class FileSummary(_Model):
    """One scanned file: hash, size and how much of it held PII."""

    path: str
    sha256: str
    records: int
    text_fields: int
    records_with_findings: int
    findings: int
    redacted_records: int | None = None


class EntitySummary(_Model):
    """One entity type under the policy: its rule and how often it was found."""

    rule_id: str
    action: str
    score_threshold: float
    findings: int
    records: int


class ScanSummary(_Model):
    """Counts of one pass (the scan of the inputs, or the re-scan of the cleared copy)."""

    files: list[FileSummary]
    by_entity: dict[str, EntitySummary]
    by_field: dict[str, dict[str, int]]
    findings_total: int
    findings_listed: int
    findings: list[ReportedFinding]


class FindingsReport(_Model):
    """``findings.json``."""

    schema_version: str
    gate: str
    stage: str
    kind: str
    policy_path: str
    policy_version: str
    policy_sha256: str
    scanner: dict[str, Any]
    passed: bool
    counts: dict[str, int]
    scan: ScanSummary
    rescan: ScanSummary | None = None
    cleared: bool


def write_findings_report(report: FindingsReport, path: str | Path) -> None:
    """Write ``findings.json`` atomically."""
    write_atomic(path, json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n")


def load_findings_report(path: str | Path) -> FindingsReport:
    """Read a ``findings.json``; a missing or malformed file is a DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: findings report missing; run the pii_scan stage first (dvc repro)")
    try:
        report = FindingsReport.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(f"{path}: not a valid PII findings report ({exc.__class__.__name__})") from None
    if report.schema_version != SCHEMA:
        raise DataError(f"{path}: findings report schema {report.schema_version!r}, expected {SCHEMA!r}")
    return report
