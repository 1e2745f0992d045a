"""The data validation gate: stream a dataset, run the suites, turn results into violations.

:func:`validate_dataset` is the pure core (files and a policy section in,
violations and details out); :func:`run_validation_gate` adds the policy file,
waivers and :func:`governance.gates.decide`. See the package docstring for
which checks are structural (exit 2) and which are policy rules.

``data.malformed`` judges the prepare stage's quarantine, not the files given:
the share of records read that were set aside as malformed. Its counts are
recounted from the prepared folder's ``quarantine.jsonl`` (only the number of
records read comes from the prepare manifest, checked against the file), and
both files are bound by hash into the decision with the train and eval files.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from governance.datasets.quarantine import QuarantineCounts, read_quarantine
from governance.gates import DatasetRef, GateDecision, Violation, dataset_ref, decide, load_waivers
from governance.policy.data import (
    AnyKindPolicy,
    KtoPolicy,
    MalformedRule,
    PreferencePolicy,
    PromptPolicy,
    TextPolicy,
    load_data_policy,
)
from governance.records import ReadDigest, iter_records
from governance.validation import expectations as ge
from governance.validation.agreement import cohen_kappa, krippendorff_alpha_interval
from governance.validation.schema import Derived, derive

log = logging.getLogger(__name__)

GATE = "validation"

#: Records per great-expectations batch: bounds peak memory on big files while
#: keeping GE's per-batch overhead (tens of milliseconds) negligible.
DEFAULT_CHUNK_ROWS = 100_000

_AGREEMENT_NAMES = {
    "krippendorff_alpha_interval": "Krippendorff's alpha (interval)",
    "cohen_kappa": "Cohen's kappa",
}


@dataclass(frozen=True)
class RowCheck:
    """A per-record check: its policy rule attribute, derived column and expectation."""

    key: str
    column: str
    phrase: str


@dataclass
class Tally:
    """Failures of one row check summed over chunks."""

    unexpected: int = 0
    first_line: int | None = None
    expectation: str = ""


@dataclass
class FileScan:
    """What one file's pass produced: counts per check, lengths, labels."""

    path: str
    role: str
    rows: int = 0
    chunks: int = 0
    tallies: dict[str, Tally] = field(default_factory=dict)
    desirable: int = 0
    length_min: int | None = None
    length_max: int | None = None
    length_sum: int = 0
    #: SHA-256 of the bytes this pass read (``None`` for an engine that reads the file its own way).
    sha256: str | None = None


_VERSION_LABEL = re.compile(r"^[A-Za-z0-9_.:+-]{1,32}$")


def _version_label(version: str | None) -> str:
    """A guideline version as shown in a decision: free text is hashed, never copied."""
    if version is None:
        return "(missing)"
    if _VERSION_LABEL.match(version):
        return version
    return "sha256:" + hashlib.sha256(version.encode("utf-8")).hexdigest()[:12]


@dataclass
class AnnotationTally:
    """Reward-data provenance and the doubly-annotated sample, over train and eval."""

    records: int = 0
    rated: int = 0
    doubly_annotated: int = 0
    annotators: set[str] = field(default_factory=set)
    guideline_versions: Counter[str] = field(default_factory=Counter)
    score_units: list[list[float]] = field(default_factory=list)
    label_pairs: list[tuple[bool, bool]] = field(default_factory=list)

    def add(self, derived: Derived, *, labels: bool) -> None:
        self.records += 1
        if derived.annotator_id:
            self.annotators.add(derived.annotator_id)
        self.guideline_versions[_version_label(derived.guideline_version)] += 1
        distinct = {}
        for rating in derived.ratings:
            self.annotators.add(rating.annotator_id)
            distinct.setdefault(rating.annotator_id, rating)
        if distinct:
            self.rated += 1
        if len(distinct) < 2:
            return
        self.doubly_annotated += 1
        ratings = list(distinct.values())
        if labels:
            self.label_pairs.append((bool(ratings[0].label), bool(ratings[1].label)))
        else:
            self.score_units.append([r.chosen_score for r in ratings if r.chosen_score is not None])
            self.score_units.append([r.rejected_score for r in ratings if r.rejected_score is not None])

    def agreement(self, metric: str) -> float | None:
        if metric == "cohen_kappa":
            return cohen_kappa([a for a, _ in self.label_pairs], [b for _, b in self.label_pairs])
        return krippendorff_alpha_interval(self.score_units)


@dataclass
class ValidationOutcome:
    """The gate's findings before waivers: violations, the files judged, and details."""

    violations: list[Violation]
    datasets: list[DatasetRef]
    details: dict[str, Any]


def _pct(rate: float) -> str:
    text = f"{rate * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def row_checks(kind: str, policy: AnyKindPolicy, *, role: str) -> list[RowCheck]:
    """The row-level checks a file of ``kind`` gets (``role`` is train or eval)."""
    end = "user" if kind in ("prompt", "rlhf") else "assistant"
    bounds = policy.length_bounds
    checks = [
        RowCheck("empty_text", "min_text_chars", "have an empty text field"),
        RowCheck(
            "turn_order",
            "turn_order_ok",
            f"break turn order (system optional first, then user/assistant alternating, ending with {end})",
        ),
        RowCheck("length_bounds", "length", f"are outside {bounds.min}..{bounds.max} {bounds.unit}"),
        RowCheck("duplicate_rate", "is_duplicate", "repeat an earlier record (normalised text)"),
    ]
    if isinstance(policy, TextPolicy):
        checks = [check for check in checks if check.key != "turn_order"]  # plain text has no turns
    if role == "eval":
        checks.append(RowCheck("train_eval_overlap", "in_train", "share a normalised prompt with the train file"))
    if isinstance(policy, PreferencePolicy):
        checks.append(RowCheck("chosen_equals_rejected", "chosen_differs", "have chosen identical to rejected"))
    if isinstance(policy, PreferencePolicy | KtoPolicy):
        checks.append(RowCheck("annotation_provenance", "has_provenance", "lack annotator_id or guideline_version"))
    if isinstance(policy, PromptPolicy):
        checks.append(RowCheck("answer_present", "answer_present", "have no reference answer"))
        checks.append(RowCheck("answer_numeric", "answer_numeric", "have a non-numeric answer"))
    return checks


def _row_expectation(check: RowCheck, policy: AnyKindPolicy) -> Any:
    if check.key == "empty_text":
        return ge.between(check.key, check.column, min_value=1)
    if check.key == "length_bounds":
        return ge.between(check.key, check.column, policy.length_bounds.min, policy.length_bounds.max)
    if check.key in ("duplicate_rate", "train_eval_overlap"):
        return ge.in_set(check.key, check.column, [False])
    return ge.in_set(check.key, check.column, [True])


def _stream_file(
    path: Path,
    *,
    role: str,
    kind: str,
    policy: AnyKindPolicy,
    chunk_rows: int,
    train_prompts: set[int] | None,
    annotation: AnnotationTally | None,
    progress: bool,
) -> tuple[FileScan, set[int]]:
    checks = row_checks(kind, policy, role=role)
    suite = [_row_expectation(check, policy) for check in checks]
    scan = FileScan(path=str(path), role=role, tallies={c.key: Tally() for c in checks})
    seen: set[int] = set()
    prompts: set[int] = set()
    tokens = policy.length_bounds.unit == "approx_tokens"
    from_csv = path.suffix.lower() == ".csv"
    buffer: list[dict[str, Any]] = []

    def flush() -> None:
        if not buffer:
            return
        outcomes = ge.run_suite(f"{kind}_{role}_rows", pd.DataFrame.from_records(buffer), suite, index_column="line")
        for key, outcome in outcomes.items():
            tally = scan.tallies[key]
            tally.expectation = outcome.expectation
            tally.unexpected += outcome.unexpected_count
            if tally.first_line is None and outcome.first_index is not None:
                tally.first_line = outcome.first_index
        scan.chunks += 1
        buffer.clear()

    bar = tqdm(
        desc=f"validate {path.name}", unit=" rec", file=sys.stderr, delay=2.0, mininterval=1.0, disable=not progress
    )
    digest = ReadDigest()  # the decision binds the bytes this pass read, not a later read of the path
    try:
        for record in iter_records(path, digest=digest):
            derived = derive(kind, record.data, record.line, str(path), from_csv=from_csv)
            length = (derived.chars + 3) // 4 if tokens else derived.chars
            row: dict[str, Any] = {
                "line": record.line,
                "min_text_chars": derived.min_text_chars,
                "turn_order_ok": derived.turn_order_ok,
                "length": length,
                "is_duplicate": derived.dup_key in seen,
            }
            seen.add(derived.dup_key)
            if role == "eval":
                row["in_train"] = train_prompts is not None and derived.prompt_key in train_prompts
            else:
                prompts.add(derived.prompt_key)
            if derived.chosen_differs is not None:
                row["chosen_differs"] = derived.chosen_differs
            if annotation is not None:
                row["has_provenance"] = derived.has_provenance
                annotation.add(derived, labels=kind == "kto")
            if derived.answer_present is not None:
                row["answer_present"] = derived.answer_present
                row["answer_numeric"] = derived.answer_numeric
            if derived.label:
                scan.desirable += 1
            scan.rows += 1
            scan.length_sum += length
            scan.length_min = length if scan.length_min is None else min(scan.length_min, length)
            scan.length_max = length if scan.length_max is None else max(scan.length_max, length)
            buffer.append(row)
            bar.update()
            if len(buffer) >= chunk_rows:
                flush()
        flush()
    finally:
        bar.close()
    scan.sha256 = digest.sha256
    log.info("%s: %d records validated in %d chunk(s)", path, scan.rows, scan.chunks)
    return scan, prompts


@dataclass
class _Judged:
    """A dataset-level measurement, its expectation(s) and how to word a failure."""

    rule: Any
    subject: str
    columns: dict[str, Any]
    expectations: list[Any]
    observed: Any
    threshold: dict[str, Any]
    message: str
    row_expectation: str | None = None


def _rate_measure(scan: FileScan, check: RowCheck, rule: Any) -> _Judged:
    tally = scan.tallies[check.key]
    rate = tally.unexpected / scan.rows if scan.rows else 0.0
    key = f"{scan.role}.{check.key}"
    column = f"{scan.role}_{check.key}_rate"
    noun = "eval records" if check.key == "train_eval_overlap" else "records"
    where = f"; first at line {tally.first_line}" if tally.first_line is not None else ""
    return _Judged(
        rule=rule,
        subject=scan.path,
        columns={column: rate},
        expectations=[ge.between(key, column, max_value=rule.max_rate)],
        observed={"count": tally.unexpected, "rows": scan.rows, "rate": rate, "first_line": tally.first_line},
        threshold={"max_rate": rule.max_rate},
        row_expectation=tally.expectation,
        message=(
            f"{tally.unexpected} of {scan.rows} {noun} ({_pct(rate)}) {check.phrase} (max {_pct(rule.max_rate)}){where}"
        ),
    )


def _file_measures(kind: str, policy: AnyKindPolicy, scan: FileScan) -> list[_Judged]:
    minimum = policy.min_rows.min_train if scan.role == "train" else policy.min_rows.min_eval
    measures = [
        _Judged(
            rule=policy.min_rows,
            subject=scan.path,
            columns={f"{scan.role}_rows": scan.rows},
            expectations=[ge.between(f"{scan.role}.min_rows", f"{scan.role}_rows", min_value=minimum)],
            observed={"rows": scan.rows},
            threshold={"min": minimum},
            message=f"{scan.rows} rows (min {minimum})",
        )
    ]
    for check in row_checks(kind, policy, role=scan.role):
        measures.append(_rate_measure(scan, check, getattr(policy, check.key)))
    if isinstance(policy, KtoPolicy):
        rule = policy.label_balance
        share = scan.desirable / scan.rows if scan.rows else 0.0
        measures.append(
            _Judged(
                rule=rule,
                subject=scan.path,
                columns={f"{scan.role}_desirable_share": share},
                expectations=[
                    ge.between(
                        f"{scan.role}.label_balance",
                        f"{scan.role}_desirable_share",
                        rule.min_desirable_share,
                        rule.max_desirable_share,
                    )
                ],
                observed={"desirable": scan.desirable, "rows": scan.rows, "share": share},
                threshold={"min": rule.min_desirable_share, "max": rule.max_desirable_share},
                message=(
                    f"desirable share {share:.2f} ({scan.desirable} of {scan.rows} labelled true) "
                    f"outside {rule.min_desirable_share:g}..{rule.max_desirable_share:g}"
                ),
            )
        )
    return measures


def _agreement_measure(policy: PreferencePolicy | KtoPolicy, tally: AnnotationTally, subject: str) -> _Judged:
    rule = policy.inter_rater_agreement
    value = tally.agreement(rule.metric)
    name = _AGREEMENT_NAMES[rule.metric]
    items = tally.doubly_annotated
    if items < rule.min_items:
        message = f"{items} doubly annotated items (min {rule.min_items}); agreement not measurable"
    elif value is None:
        message = f"{name} undefined on {items} doubly annotated items (the ratings do not vary)"
    else:
        message = f"{name} {value:.3f} on {items} doubly annotated items (min {rule.min_value:g})"
    return _Judged(
        rule=rule,
        subject=subject,
        columns={"agreement_items": items, "agreement": value},
        expectations=[
            ge.between("inter_rater_agreement.items", "agreement_items", min_value=rule.min_items),
            ge.not_null("inter_rater_agreement.defined", "agreement"),
            ge.between("inter_rater_agreement", "agreement", min_value=rule.min_value),
        ],
        observed={"metric": rule.metric, "value": value, "doubly_annotated": items},
        threshold={"min_value": rule.min_value, "min_items": rule.min_items},
        message=message,
    )


def _malformed_measure(rule: MalformedRule, counts: QuarantineCounts) -> _Judged:
    """``data.malformed``: the share of records read that the prepare stage quarantined.

    Under ``action: fail`` none may be: a quarantine file with records was
    written under another policy.
    """
    limit = rule.max_fraction if rule.action == "quarantine" else 0.0
    fraction = counts.quarantined / counts.records_read if counts.records_read else 0.0
    shown_limit = f"max {_pct(limit)}" if rule.action == "quarantine" else "action fail: none may be quarantined"
    first = (
        f"; first at {counts.first_where}, field {counts.first_field}: {counts.first_reason}"
        if counts.first_where
        else ""
    )
    return _Judged(
        rule=rule,
        subject=counts.file,
        columns={"quarantined_fraction": fraction},
        expectations=[ge.between("malformed", "quarantined_fraction", max_value=limit)],
        observed={
            "quarantined": counts.quarantined,
            "records_read": counts.records_read,
            "fraction": fraction,
            "by_reason": counts.by_reason,
            "first": counts.first_where,
        },
        threshold={"action": rule.action, "max_fraction": limit},
        message=(
            f"{counts.quarantined} of {counts.records_read} records quarantined ({_pct(fraction)}, {shown_limit})"
            f"{first}"
        ),
    )


def _judge(measures: list[_Judged], name: str) -> tuple[list[Violation], list[dict[str, Any]]]:
    """Run one summary suite over a one-row frame of all measurements; violations and rule records."""
    columns: dict[str, list[Any]] = {}
    suite = []
    for measure in measures:
        for column, value in measure.columns.items():
            columns[column] = [value]
        suite.extend(measure.expectations)
    outcomes = ge.run_suite(name, pd.DataFrame(columns), suite)
    violations, records = [], []
    for measure in measures:
        keys = [e.meta["key"] for e in measure.expectations]
        passed = all(outcomes[k].success for k in keys)
        records.append(
            {
                "id": measure.rule.id,
                "severity": measure.rule.severity,
                "subject": measure.subject,
                "passed": passed,
                "observed": measure.observed,
                "threshold": measure.threshold,
                # Row-level expectation (counts per record) and summary ones (the verdict).
                "row_expectation": measure.row_expectation,
                "summary_expectations": sorted({outcomes[k].expectation for k in keys}),
            }
        )
        if not passed:
            violations.append(
                Violation(
                    rule_id=measure.rule.id,
                    severity=measure.rule.severity,
                    subject=measure.subject,
                    message=measure.message,
                )
            )
    return violations, records


def validate_dataset(
    kind: str,
    train: str | Path,
    eval_path: str | Path | None,
    policy: AnyKindPolicy,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: bool = False,
    scan_file: Callable[..., tuple[FileScan, set[int]]] | None = None,
    quarantine: QuarantineCounts | None = None,
) -> ValidationOutcome:
    """Validate a train file (and optional eval file) of ``kind`` against a policy section.

    Streams each file through :func:`~governance.validation.schema.derive` in
    chunks of ``chunk_rows`` records; raises :class:`~governance.errors.DataError`
    on the first structural error. Returns violations (not yet waived), the
    files bound by hash, and the details a decision records. ``scan_file``
    replaces the streaming pass (the Spark engine:
    :func:`governance.validation.spark.spark_file_scanner`); everything after
    the per-file pass is shared. ``quarantine`` (from
    :func:`~governance.datasets.quarantine.read_quarantine`) is what the
    prepare stage set aside; without it ``data.malformed`` is not applicable.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be positive")
    train = Path(train)
    annotation = AnnotationTally() if isinstance(policy, PreferencePolicy | KtoPolicy) else None
    scans: list[FileScan] = []
    engine = {"great_expectations": ge.ge_version(), "chunk_rows": chunk_rows}
    if scan_file is not None:
        engine = {"great_expectations": ge.ge_version(), **getattr(scan_file, "engine", {"name": "custom"})}
    _scan_file = scan_file or _stream_file
    train_scan, train_prompts = _scan_file(
        train,
        role="train",
        kind=kind,
        policy=policy,
        chunk_rows=chunk_rows,
        train_prompts=None,
        annotation=annotation,
        progress=progress,
    )
    scans.append(train_scan)
    if eval_path is not None:
        eval_scan, _ = _scan_file(
            Path(eval_path),
            role="eval",
            kind=kind,
            policy=policy,
            chunk_rows=chunk_rows,
            train_prompts=train_prompts,
            annotation=annotation,
            progress=progress,
        )
        scans.append(eval_scan)
    del train_prompts

    measures: list[_Judged] = []
    for scan in scans:
        measures.extend(_file_measures(kind, policy, scan))
    if annotation is not None and isinstance(policy, PreferencePolicy | KtoPolicy):
        measures.append(_agreement_measure(policy, annotation, str(train)))
    if quarantine is not None:
        measures.append(_malformed_measure(policy.malformed, quarantine))
    violations, rules = _judge(measures, f"{kind}_summary")

    details: dict[str, Any] = {
        "kind": kind,
        "engine": engine,
        "files": {
            scan.path: {
                "role": scan.role,
                "rows": scan.rows,
                "chunks": scan.chunks,
                "length": {
                    "unit": policy.length_bounds.unit,
                    "min": scan.length_min,
                    "max": scan.length_max,
                    "mean": round(scan.length_sum / scan.rows, 1) if scan.rows else None,
                },
                "row_expectations": {key: t.expectation for key, t in scan.tallies.items()},
                **({"desirable": scan.desirable} if isinstance(policy, KtoPolicy) else {}),
            }
            for scan in scans
        },
        "rules": rules,
    }
    if eval_path is None:
        details["not_applicable"] = {policy.train_eval_overlap.id: "no eval file given"}
    if quarantine is None:
        details.setdefault("not_applicable", {})[policy.malformed.id] = "no prepared folder given (its quarantine)"
    else:
        details["quarantine"] = {
            "file": quarantine.file,
            "records_read": quarantine.records_read,
            "quarantined": quarantine.quarantined,
            "by_reason": quarantine.by_reason,
            "prepared_event": quarantine.prepared_event,  # the prepare stage's signed event that bound it (P8)
        }
    if annotation is not None and isinstance(policy, PreferencePolicy | KtoPolicy):
        rule = policy.inter_rater_agreement
        value = annotation.agreement(rule.metric)
        details["annotation"] = {
            "records": annotation.records,
            "rated": annotation.rated,
            "doubly_annotated": annotation.doubly_annotated,
            "doubly_annotated_share": round(annotation.doubly_annotated / annotation.records, 4)
            if annotation.records
            else 0.0,
            # Annotator ids may be names or emails: only their number leaves the gate.
            "annotators": len(annotation.annotators),
            "guideline_versions": dict(sorted(annotation.guideline_versions.items())),
            "agreement": {
                "metric": rule.metric,
                "value": None if value is None else round(value, 4),
                "units": len(annotation.score_units) if rule.metric != "cohen_kappa" else len(annotation.label_pairs),
                "pooled_over": [scan.path for scan in scans],
            },
        }
    datasets = [
        DatasetRef(path=scan.path, sha256=scan.sha256, records=scan.rows)
        if scan.sha256 is not None
        else dataset_ref(scan.path, records=scan.rows)
        for scan in scans
    ]
    if quarantine is not None:
        # The bytes counted and checked against the prepare stage's signed event, not the files hashed again
        datasets.append(DatasetRef(path=quarantine.file, sha256=quarantine.sha256, records=quarantine.quarantined))
        manifest = str(Path(quarantine.file).parent / "manifest.json")
        datasets.append(DatasetRef(path=manifest, sha256=quarantine.manifest_sha256))
    return ValidationOutcome(violations=violations, datasets=datasets, details=details)


def run_validation_gate(
    *,
    kind: str,
    train: str | Path,
    eval_path: str | Path | None,
    policy_path: str | Path,
    waivers_path: str | Path | None = None,
    stage: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: bool = False,
    scan_file: Callable[..., tuple[FileScan, set[int]]] | None = None,
    prepared: str | Path | None = None,
) -> GateDecision:
    """Load the data policy and waivers, validate, and decide (not yet written).

    ``prepared`` is the prepare stage's out_dir: its quarantine is judged by ``data.malformed``.
    """
    data_policy = load_data_policy(policy_path)
    section = data_policy.for_kind(kind)
    waivers = load_waivers(waivers_path)
    quarantine = read_quarantine(prepared) if prepared is not None else None
    outcome = validate_dataset(
        kind,
        train,
        eval_path,
        section,
        chunk_rows=chunk_rows,
        progress=progress,
        scan_file=scan_file,
        quarantine=quarantine,
    )
    return decide(
        gate=GATE,
        stage=stage,
        datasets=outcome.datasets,
        policy_path=policy_path,
        policy_version=data_policy.version,
        violations=outcome.violations,
        waivers=waivers,
        details=outcome.details,
        policy_sha256=data_policy.sha256,  # the bytes judged under: publishing binds these, not a later read
    )
