"""Data validation gate of one dataset: great-expectations suites against policies/data.yaml.

    dvc repro validate_sft        # or: python -m pipelines.validate sft

Reads params section ``validate_<dataset>`` (kind, train, eval, out_dir,
policy) and writes ``<out_dir>/decision.json`` bound to the SHA-256 of the
train and eval files, published as a signed ``gate_decision`` event in the
audit trail (training believes the file only through it), plus
``manifest.json``. Exit 0 passed (warnings allowed), 1 an unwaived
``deny``, 2 bad input or configuration; on exit 2 no decision is left
behind, so a stale "passed" can never outlive broken data.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from governance.errors import EXIT_DENIED, EXIT_OK
from governance.gates import GateDecision, publish_decision
from governance.lineage import write_manifest
from governance.policy import Strict
from governance.policy.data import DatasetKind
from governance.validation import run_validation_gate
from pipelines._common import load_params, stage_main
from pipelines._spark import Engine, SparkParams

log = logging.getLogger(__name__)

#: Waivers are records shared by every gate; one file for the whole project.


class ValidateParams(Strict):
    kind: DatasetKind
    train: str
    eval: str | None
    out_dir: str
    policy: str
    # The prepare stage's out_dir: data.malformed judges the share of its records quarantined (its
    # quarantine.jsonl, recounted, and manifest.json, bound by hash into the decision); none: not applicable
    prepared: str | None = None
    engine: Engine = "local"
    spark: SparkParams = SparkParams()


def _parse_args(argv: list[str] | None) -> str:
    parser = argparse.ArgumentParser(prog="python -m pipelines.validate", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="dataset name: reads params section validate_<dataset>")
    # argparse reports a usage error itself and exits 2, as every bad-input path does
    return parser.parse_args(argv).dataset


def require_prepared(dataset: str, params: ValidateParams) -> None:
    """Refuse to judge a kind whose data policy has ``data.malformed`` without its own prepare stage's folder.

    ``data.malformed`` judges the share of records the prepare stage set aside: with ``prepared: null`` it is "not
    applicable", and with another dataset's folder it judges another quarantine, so a 30% quarantine would never be
    judged. The folder must be the one ``prepare_<dataset>`` wrote (its manifest's ``stage``).
    """
    import json

    from governance.errors import ConfigError, PolicyViolation
    from governance.policy import load_reviewed_policy
    from governance.policy.data import DataPolicy

    if params.kind == "text":
        return  # the corpus's prepare stage reads plain text lines: none is malformed, it quarantines nothing
    section = load_reviewed_policy(params.policy, DataPolicy, "data policy").for_kind(params.kind)
    if getattr(section, "malformed", None) is None:
        return
    expected = f"prepare_{dataset}"
    if params.prepared is None:
        raise PolicyViolation(
            f"params.yaml: validate_{dataset}.prepared: not set, but {params.policy} {params.kind}.malformed judges "
            f"the share of records {expected} set aside; name its out_dir (the folder of its manifest.json)"
        )
    manifest = Path(params.prepared) / "manifest.json"
    try:
        stage = json.loads(manifest.read_text(encoding="utf-8")).get("stage")
    except (OSError, ValueError, AttributeError):
        raise ConfigError(f"{manifest}: not a prepare manifest; run {expected} first (dvc repro)") from None
    if stage != expected:
        raise PolicyViolation(
            f"params.yaml: validate_{dataset}.prepared: {params.prepared} is {stage}'s folder, not {expected}'s: "
            f"{params.kind}.malformed would judge another dataset's quarantine; name {expected}'s out_dir"
        )


def require_same_preparation(dataset: str, params: ValidateParams, decision: GateDecision) -> None:
    """Refuse a quarantine from another preparation than the data validated (P8).

    The quarantine counted is one ``prepare_<dataset>`` signed (its ``data_prepared`` event, which
    :func:`governance.datasets.read_quarantine` found). Each file validated must be that preparation's output of
    the same name as the PII gate cleared it: a signed PII gate decision binds the validated bytes
    (``data:<path>``) and the input of that name they were cleared from (``input:<path>``), whose hash must be
    the one the preparation signed for it (``train_sha256`` for ``train.jsonl``). An earlier run's quarantine
    (signed, but of other data: fewer records set aside) was otherwise judged for today's data.
    """
    from governance import trail
    from governance.datasets.quarantine import PREPARED_EVENT, PREPARED_PREFIX
    from governance.errors import PolicyViolation
    from governance.gates import DATA_KEY, INPUT_KEY, SUBJECT_PREFIX

    seq = (decision.details.get("quarantine") or {}).get("prepared_event")
    if seq is None:
        return
    stage = f"prepare_{dataset}"
    (prepared,) = [
        e for e in trail.events(objective=f"{PREPARED_PREFIX}{stage}", event_types=[PREPARED_EVENT]) if e.seq == seq
    ]
    judged = {ref.path: ref.sha256 for ref in decision.datasets}
    pii_gates = [e for e in trail.events(event_types=["gate_decision"]) if e.subject.objective.startswith(
        f"{SUBJECT_PREFIX}pii_scan_")]  # fmt: skip
    for path in (params.train, params.eval):
        if path is None:
            continue
        name, digest = Path(path).name, judged.get(path)
        output = prepared.evidence.get(f"{Path(path).stem}_sha256")
        cleared_from = {
            value
            for e in pii_gates
            if e.evidence.get(f"{DATA_KEY}{Path(path)}") == digest
            for key, value in e.evidence.items()
            if key.startswith(INPUT_KEY) and Path(key[len(INPUT_KEY) :]).name == name
        }
        if output is None or output not in cleared_from:
            raise PolicyViolation(
                f"params.yaml: validate_{dataset}.prepared: the quarantine judged is {stage}'s of trail event "
                f"#{seq}, but no signed PII gate decision cleared {path} (sha256 {str(digest)[:12]}…) from that "
                f"preparation's {name}: the share set aside would be another run's; re-run {stage} and its PII "
                "gate (dvc repro)"
            )


@stage_main
def main(argv: list[str] | None = None) -> int:
    dataset = _parse_args(argv)
    stage = f"validate_{dataset}"
    params = load_params(stage, ValidateParams)
    out_dir = Path(params.out_dir)
    # Remove any earlier decision first: bad input must leave none behind
    for stale in ("decision.json", "manifest.json"):
        (out_dir / stale).unlink(missing_ok=True)
    # data.malformed judges this dataset's own quarantine, never none or another's
    require_prepared(dataset, params)
    # Validate and decide (on Spark: the same derived columns and GX suites, through GX's Spark datasource)
    scan_file = None
    if params.engine == "spark":
        from governance.spark_io import spark_session
        from governance.validation.spark import spark_file_scanner

        scan_file = spark_file_scanner(spark_session(params.spark.model_dump()))
    decision = run_validation_gate(
        kind=params.kind,
        train=params.train,
        eval_path=params.eval,
        policy_path=params.policy,
        stage=stage,
        progress=True,
        scan_file=scan_file,
        prepared=params.prepared,
    )
    # The quarantine judged is the one of the preparation the validated data came from (P8)
    require_same_preparation(dataset, params, decision)
    # Publish the decision (a signed trail event, then the file: a DVC metric) and the provenance of the judgement
    publish_decision(decision, out_dir / "decision.json")  # bound to the policy bytes the gate parsed
    write_manifest(
        out_dir,
        {
            "stage": stage,
            "params": params.model_dump(),
            "policy": {"path": params.policy, "version": decision.policy_version, "sha256": decision.policy_sha256},
            "inputs": {ref.path: ref.sha256 for ref in decision.datasets},
            "decision": {"passed": decision.passed, "counts": decision.counts},
        },
    )
    for line in decision.summary_lines():
        log.warning("%s", line)
    rows = ", ".join(
        f"{ref.path} ({ref.records} rows)" if ref.records is not None else ref.path for ref in decision.datasets
    )
    verdict = "passed" if decision.passed else "DENIED"
    log.info("%s %s: %s; %s", stage, verdict, rows, ", ".join(f"{k} {v}" for k, v in decision.counts.items()))
    return EXIT_OK if decision.passed else EXIT_DENIED


if __name__ == "__main__":
    raise SystemExit(main())
