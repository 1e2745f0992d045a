"""Gate decisions: what every gate returns, writes, and what training requires.

A gate (PII scan, validation, evaluation) returns :class:`Violation` objects,
never a boolean. :func:`decide` applies waivers and turns them into a
:class:`GateDecision`, which is written as JSON (a DVC metric) bound to the
SHA-256 of the exact files it judged. :func:`require_passed_gates` is what a
training stage calls before it touches data: it recomputes the hashes and
refuses unless every decision is for these bytes and passed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from governance.errors import ConfigError, DataError, PolicyViolation
from governance.lineage import sha256_file

Severity = Literal["deny", "warn"]


class Violation(BaseModel):
    """One rule's finding: rule id, severity, the object judged and a message.

    ``message`` names the object, the observed value and the threshold; it is
    rendered conftest-style by :meth:`line`.
    """

    model_config = ConfigDict(frozen=True)

    rule_id: str
    severity: Severity
    subject: str
    message: str
    waived_by: str | None = None

    def line(self) -> str:
        tag = f"{self.severity}  {self.rule_id}  {self.subject}: {self.message}"
        return tag + (f"  [waived by {self.waived_by}]" if self.waived_by else "")


class Waiver(BaseModel):
    """A recorded exception to one rule: who granted it, why, and until when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_id: str
    granted_by: str
    reason: str
    expires: dt.date
    subject: str | None = Field(default=None, description="limit the waiver to one subject (file path)")

    def covers(self, violation: Violation, today: dt.date) -> bool:
        return (
            violation.rule_id == self.rule_id
            and today <= self.expires
            and (self.subject is None or self.subject == violation.subject)
        )


class WaiverFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    waivers: list[Waiver] = []


def load_waivers(path: str | Path | None) -> list[Waiver]:
    """Load ``policies/waivers.yaml``; a missing path means no waivers."""
    if path is None or not Path(path).exists():
        return []
    from governance.policy import load_policy_file

    return load_policy_file(path, WaiverFile).waivers


class DatasetRef(BaseModel):
    """A file a decision is bound to, by content hash."""

    model_config = ConfigDict(frozen=True)

    path: str
    sha256: str
    records: int | None = None


class GateDecision(BaseModel):
    """The record a gate writes: what was judged, under which policy, and the verdict.

    A pure function of the judged bytes, the policy and the waivers in force: no
    timestamp or run id, so the file's hash in ``dvc.lock`` is reproducible. When
    the gate ran is recorded by the stage's OpenLineage events and MLflow run.
    """

    gate: str
    stage: str
    passed: bool
    datasets: list[DatasetRef]
    policy_path: str
    policy_version: str
    counts: dict[str, int]
    violations: list[Violation]
    details: dict[str, Any] = {}

    def summary_lines(self) -> list[str]:
        return [violation.line() for violation in self.violations]


def decide(
    *,
    gate: str,
    stage: str,
    datasets: Sequence[DatasetRef],
    policy_path: str | Path,
    policy_version: str,
    violations: Iterable[Violation],
    waivers: Sequence[Waiver] = (),
    details: dict[str, Any] | None = None,
    today: dt.date | None = None,
) -> GateDecision:
    """Apply waivers to violations and decide: passed unless an unwaived deny remains."""
    today = today or dt.datetime.now(dt.UTC).date()
    final: list[Violation] = []
    for violation in violations:
        waiver = next((w for w in waivers if violation.severity == "deny" and w.covers(violation, today)), None)
        if waiver is not None:
            violation = violation.model_copy(update={"waived_by": waiver.granted_by})
        final.append(violation)
    counts = {
        "deny": sum(v.severity == "deny" and v.waived_by is None for v in final),
        "warn": sum(v.severity == "warn" for v in final),
        "waived": sum(v.waived_by is not None for v in final),
    }
    return GateDecision(
        gate=gate,
        stage=stage,
        passed=counts["deny"] == 0,
        datasets=list(datasets),
        policy_path=str(policy_path),
        policy_version=policy_version,
        counts=counts,
        violations=final,
        details=details or {},
    )


def dataset_ref(path: str | Path, records: int | None = None) -> DatasetRef:
    """Bind a file by its SHA-256 (the exact bytes a gate judged)."""
    return DatasetRef(path=str(path), sha256=sha256_file(path), records=records)


def write_decision(decision: GateDecision, path: str | Path) -> None:
    """Write a decision JSON atomically (never a half-written 'passed')."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(decision.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def read_decision(path: str | Path) -> GateDecision:
    path = Path(path)
    if not path.is_file():
        raise PolicyViolation(f"{path}: gate decision missing; run the gate stage first (dvc repro)")
    try:
        return GateDecision.model_validate_json(path.read_text())
    except ValueError as exc:
        raise DataError(f"{path}: not a valid gate decision ({exc.__class__.__name__})") from None


def require_passed_gates(files: Sequence[str | Path], decision_paths: Sequence[str | Path]) -> list[GateDecision]:
    """Refuse unless each decision passed and covers the exact bytes of every file.

    Raises :class:`PolicyViolation` naming the decision and the file whose hash
    differs, or the first denying rule. Returns the decisions for lineage.
    """
    if not decision_paths:
        raise ConfigError("no gate decisions configured for this stage; a training stage needs at least one")
    missing = [str(f) for f in files if not Path(f).is_file()]
    if missing:
        raise DataError(f"{missing[0]}: training data file not found; run the gate stages that write it (dvc repro)")
    current = {str(Path(f)): sha256_file(f) for f in files}
    decisions = []
    for decision_path in decision_paths:
        decision = read_decision(decision_path)
        judged = {str(Path(ref.path)): ref.sha256 for ref in decision.datasets}
        for file, digest in current.items():
            if file not in judged:
                raise PolicyViolation(
                    f"{decision_path}: the {decision.gate} gate did not judge {file}; re-run it (dvc repro)"
                )
            if judged[file] != digest:
                raise PolicyViolation(
                    f"{decision_path}: {file} has sha256 {digest[:12]}… but the {decision.gate} gate passed "
                    f"{judged[file][:12]}…; the data changed since it was gated, re-run the gate"
                )
        if not decision.passed:
            first = next(v for v in decision.violations if v.severity == "deny" and not v.waived_by)
            raise PolicyViolation(
                f"{decision_path}: {decision.gate} gate denied {decision.counts['deny']} rule(s); first: {first.line()}"
            )
        decisions.append(decision)
    return decisions
