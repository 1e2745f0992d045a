"""The PII gate: scan, apply the policy, redact, re-scan, decide.

:func:`run_pii_gate` is what the ``pii_scan_*`` stages and ``govern pii scan``
call. It scans every input file, turns counts into :class:`Violation` objects
(one per rule and file, conftest-style messages), and, when asked for a
cleared copy, writes it: inputs with nothing to redact are copied byte for
byte, others are redacted with presidio-anonymizer and re-scanned; only a
copy that re-scans clean is moved into place. A denied gate leaves no cleared
data behind, so nothing downstream can consume it.

Trust boundary: the decision, its ``inputs`` and the report bind each file by the
SHA-256 of the bytes its scan read (:attr:`FileScan.sha256`), and the cleared copy
by its re-scan's, never by hashing the path again: bytes swapped in after a scan
are bound to nothing, so training refuses them. The cleared copy is written
only from bytes that hash as the scan's did.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from governance.errors import ConfigError, DataError
from governance.gates import DatasetRef, GateDecision, Violation, decide, load_waivers
from governance.pii.engine import EngineInfo
from governance.pii.mask import tag
from governance.pii.redact import REDACTION_OPERATOR, Redactor, write_cleared_copy
from governance.pii.report import (
    SCHEMA,
    EntitySummary,
    FileSummary,
    FindingsReport,
    ReportedFinding,
    ScanSummary,
)
from governance.pii.scan import FileScan, ListingBudget, PiiScanner
from governance.policy.pii import PiiPolicy, load_pii_policy, policy_digest

log = logging.getLogger(__name__)

GATE = "pii"


@dataclass
class PiiGateResult:
    """The decision, the findings report, and the cleared files (none when denied or scan-only)."""

    decision: GateDecision
    report: FindingsReport
    cleared_files: list[Path]
    scans: list[FileScan]
    rescans: list[FileScan]


def _contain(count: int) -> str:
    return f"{count} record contains" if count == 1 else f"{count} records contain"


def entity_violations(policy: PiiPolicy, scans: Sequence[FileScan], *, redacting: bool) -> list[Violation]:
    """One violation per rule and file: deny over ``max_records``, and every redaction (a warning)."""
    violations = []
    for scan in scans:
        for rule in policy.entities:
            count = scan.entity_records(rule.entity)
            first = scan.first_of(rule.entity)
            if count == 0 or first is None:
                continue
            if rule.action == "deny" and count > (rule.max_records or 0):
                message = f"{_contain(count)} {rule.entity} (max {rule.max_records}); first at {first.location()}"
            elif rule.action == "redact":
                done = "redacted" if redacting else "to be redacted"
                message = (
                    f"{_contain(count)} {rule.entity}, {done} to {tag(rule.entity)} under policy {policy.version}; "
                    f"first at {first.location()}"
                )
            else:
                continue
            violations.append(Violation(rule_id=rule.id, severity=rule.severity, subject=scan.path, message=message))
    return violations


def not_scanned_violations(policy: PiiPolicy, info: EngineInfo, policy_path: str) -> list[Violation]:
    """A warning for each entity the policy lists but the engine could not scan (no NER model)."""
    return [
        Violation(
            rule_id=policy.rule_for(entity).id,
            severity="warn",
            subject=policy_path,
            message=f"{entity} was not scanned: {reason}",
        )
        for entity, reason in info.entities_not_scanned.items()
    ]


def rescan_violations(policy: PiiPolicy, rescans: Sequence[FileScan]) -> list[Violation]:
    """Records of the redacted copy in which the policy still finds something to redact."""
    rule = policy.rescan
    violations = []
    for scan in rescans:
        count = scan.records_by_action.get("redact", 0)
        first = scan.first_by_action.get("redact")
        if count > rule.max_records and first is not None:
            violations.append(
                Violation(
                    rule_id=rule.id,
                    severity=rule.severity,
                    subject=scan.path,
                    message=(
                        f"{count} record{'s' if count != 1 else ''} still contain{'s' if count == 1 else ''} PII after "
                        f"redaction (max {rule.max_records}); first at {first.location()} ({first.entity})"
                    ),
                )
            )
    return violations


def scanned_sha256(scan: FileScan) -> str:
    """The SHA-256 of the bytes ``scan`` read: what a decision about its file binds."""
    if scan.sha256 is None:
        raise DataError(f"{scan.path}: the scan recorded no SHA-256 of the bytes it read; nothing can be bound to it")
    return scan.sha256


def summarize(policy: PiiPolicy, scans: Sequence[FileScan], hashes: dict[str, str]) -> ScanSummary:
    """Counts by entity and by field across files, plus the listed (masked) findings."""
    by_field: dict[str, dict[str, int]] = {}
    merged: Counter = Counter()
    for scan in scans:
        merged.update(scan.by_field)
    for (pattern, entity), count in sorted(merged.items()):
        by_field.setdefault(pattern, {})[entity] = count
    by_entity = {
        rule.entity: EntitySummary(
            rule_id=rule.id,
            action=rule.action,
            score_threshold=rule.score_threshold,
            findings=sum(s.by_entity[rule.entity].findings for s in scans if rule.entity in s.by_entity),
            records=sum(s.entity_records(rule.entity) for s in scans),
        )
        for rule in policy.entities
    }
    listed = [ReportedFinding(**item.to_dict()) for scan in scans for item in scan.listed]
    return ScanSummary(
        files=[
            FileSummary(
                path=scan.path,
                sha256=hashes[scan.path],
                records=scan.records,
                text_fields=scan.text_fields,
                records_with_findings=scan.records_with_findings,
                findings=scan.findings,
                redacted_records=scan.redacted_records if scan.redactions else None,
            )
            for scan in scans
        ],
        by_entity=by_entity,
        by_field=by_field,
        findings_total=sum(scan.findings for scan in scans),
        findings_listed=len(listed),
        findings=listed,
    )


def run_pii_gate(
    inputs: Sequence[str | Path],
    *,
    kind: str,
    policy_path: str | Path,
    stage: str,
    cleared_dir: str | Path | None = None,
    waivers_path: str | Path | None = None,
    scanner: PiiScanner | None = None,
    progress: bool = False,
) -> PiiGateResult:
    """Scan ``inputs`` under the policy and decide; with ``cleared_dir``, also write the cleared copy.

    Raises :class:`~governance.errors.DataError` for unreadable or malformed
    input and :class:`~governance.errors.ConfigError` for a bad policy, before
    anything is written. The caller writes the decision and the report.
    """
    policy_path = str(policy_path)
    policy = scanner.policy if scanner is not None else load_pii_policy(policy_path)
    scanner = scanner or PiiScanner(policy, policy_path)
    inputs = [Path(p) for p in inputs]
    if not inputs:
        raise ConfigError("no input files to scan")
    names = [p.name for p in inputs]
    if cleared_dir is not None and len(set(names)) != len(names):
        raise ConfigError(f"input files must have distinct names to be cleared into one folder: {', '.join(names)}")
    waivers = load_waivers(waivers_path)
    # The policy bytes the scan runs under (a policy built in code has no file bytes: its file is hashed)
    digest = policy.sha256 or policy_digest(policy_path)

    # Scan the inputs
    budget = ListingBudget(policy.report.max_listed_findings)
    scans = [
        scanner.scan_file(path, kind, budget=budget, keep_redactions=cleared_dir is not None, progress=progress)
        for path in inputs
    ]
    # What was scanned, not the path hashed again: it may hold other bytes by now
    hashes = {str(path): scanned_sha256(scan) for path, scan in zip(inputs, scans, strict=True)}
    violations = not_scanned_violations(policy, scanner.engine.info, policy_path)
    violations += entity_violations(policy, scans, redacting=cleared_dir is not None)

    # Redact and re-scan, unless the scan alone already denies
    cleared: list[Path] = []
    rescans: list[FileScan] = []
    redacted_records = 0
    preliminary = decide(
        gate=GATE,
        stage=stage,
        datasets=[],
        policy_path=policy_path,
        policy_version=policy.version,
        violations=violations,
        waivers=waivers,
    )
    if cleared_dir is not None and preliminary.passed:
        cleared_dir = Path(cleared_dir)
        staging = cleared_dir.with_name(cleared_dir.name + ".staging")
        shutil.rmtree(staging, ignore_errors=True)
        redactor = Redactor()
        staged = []
        try:
            for path, scan in zip(inputs, scans, strict=True):
                target = staging / path.name
                redacted_records += write_cleared_copy(
                    path, target, scan.redactions, redactor, scanned_sha256=scanned_sha256(scan)
                )
                staged.append(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # a refused copy leaves nothing to be mistaken for cleared
            raise
        rescan_budget = ListingBudget(policy.report.max_listed_findings)
        # Re-scan the staged copy, reported under the names the cleared files will have
        labels = [str(cleared_dir / path.name) for path in inputs]
        rescans = [
            scanner.scan_file(target, kind, budget=rescan_budget, progress=progress, label=label)
            for target, label in zip(staged, labels, strict=True)
        ]
        hashes.update({label: scanned_sha256(rescan) for label, rescan in zip(labels, rescans, strict=True)})
        violations += rescan_violations(policy, rescans)
        final = decide(
            gate=GATE,
            stage=stage,
            datasets=[],
            policy_path=policy_path,
            policy_version=policy.version,
            violations=violations,
            waivers=waivers,
        )
        if final.passed:
            shutil.rmtree(cleared_dir, ignore_errors=True)
            staging.replace(cleared_dir)
            cleared = [cleared_dir / path.name for path in inputs]
        else:
            shutil.rmtree(staging, ignore_errors=True)

    # Decide
    # Each judged file under the hash of the bytes its scan read; a cleared copy under its re-scan's
    judged = zip(cleared, rescans, strict=True) if cleared else zip(inputs, scans, strict=True)
    datasets = [
        DatasetRef(path=str(path), sha256=scanned_sha256(read), records=scan.records)
        for (path, read), scan in zip(judged, scans, strict=True)
    ]
    # What ran, and what every text was turned into before it ran (governance.pii.normalise)
    info = {
        **scanner.engine.info.to_dict(),
        "text_normalisation": scanner.normaliser.description if scanner.normaliser is not None else None,
    }
    details = {
        "kind": kind,
        "cleared": bool(cleared),
        "inputs": [
            {"path": str(p), "sha256": hashes[str(p)], "records": s.records} for p, s in zip(inputs, scans, strict=True)
        ],
        "scanner": info,
        # sorted: presidio's registry order varies run to run, and this file is hashed in dvc.lock
        "windowed_recognizers": sorted(scanner.windowed.windowed) if scanner.windowed else [],
        "entities": {
            rule.entity: {
                "rule_id": rule.id,
                "action": rule.action,
                "score_threshold": rule.score_threshold,
                "records": sum(s.entity_records(rule.entity) for s in scans),
            }
            for rule in policy.entities
        },
        "entities_disabled": {d.entity: d.rationale for d in policy.disabled_entities},
        "redaction": {
            "policy_version": policy.version,
            "policy_sha256": digest,
            "operator": REDACTION_OPERATOR,
            "records_redacted": redacted_records,
        },
        "rescan": {
            "records_with_findings": sum(s.records_with_findings for s in rescans),
            "findings": sum(s.findings for s in rescans),
        }
        if rescans
        else None,
    }
    decision = decide(
        gate=GATE,
        stage=stage,
        datasets=datasets,
        policy_path=policy_path,
        policy_version=policy.version,
        violations=violations,
        waivers=waivers,
        details=details,
        policy_sha256=policy.sha256,
    )
    report = FindingsReport(
        schema_version=SCHEMA,
        gate=GATE,
        stage=stage,
        kind=kind,
        policy_path=policy_path,
        policy_version=policy.version,
        policy_sha256=digest,
        scanner=info,
        passed=decision.passed,
        counts=decision.counts,
        scan=summarize(policy, scans, hashes),
        rescan=summarize(policy, rescans, hashes) if rescans else None,
        cleared=bool(cleared),
    )
    log.info(
        "pii gate %s: %s (%d deny, %d warn, %d waived)",
        stage,
        "passed" if decision.passed else "DENIED",
        decision.counts["deny"],
        decision.counts["warn"],
        decision.counts["waived"],
    )
    return PiiGateResult(decision=decision, report=report, cleared_files=cleared, scans=scans, rescans=rescans)
