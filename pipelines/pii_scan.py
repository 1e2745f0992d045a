"""PII gate for one dataset: scan every string field, redact where policy says, re-scan, decide.

    dvc repro pii_scan_sft       # or: python -m pipelines.pii_scan sft

Reads params section ``pii_scan_<dataset>`` (kind, inputs, out_dir, policy).
Writes ``<out_dir>/data/<input file names>`` (the cleared dataset: a redacted
copy, or a byte-identical copy where nothing needed redaction),
``<out_dir>/findings.json`` (counts, locations, masked snippets),
``<out_dir>/manifest.json`` and ``<out_dir>/decision.json`` (bound to the
cleared files), published as a signed ``gate_decision`` event in the audit
trail: training believes the file only through that event. Exit 1 when the
gate denies (the decision says why; no cleared data is left), 2 on
unreadable input or bad configuration (no decision is left).
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from pydantic import Field

from governance.errors import EXIT_DENIED, EXIT_OK
from governance.gates import INPUT_KEY, publish_decision
from governance.lineage import write_manifest
from governance.pii.kinds import DatasetKind
from governance.policy import Strict
from pipelines._common import load_params, stage_main
from pipelines._spark import Engine, SparkParams

log = logging.getLogger(__name__)


class PiiScanParams(Strict):
    kind: DatasetKind
    inputs: list[str] = Field(min_length=1)
    out_dir: str
    policy: str
    engine: Engine = "local"
    spark: SparkParams = SparkParams()


@stage_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.pii_scan", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="dataset name: reads params section pii_scan_<dataset>")
    args = parser.parse_args(argv)
    from governance.pii import run_pii_gate, write_findings_report

    stage = f"pii_scan_{args.dataset}"
    params = load_params(stage, PiiScanParams)
    out_dir = Path(params.out_dir)

    # Remove what an earlier run left, so no stale decision or data outlives this one
    for name in ("decision.json", "findings.json", "manifest.json"):
        (out_dir / name).unlink(missing_ok=True)
    shutil.rmtree(out_dir / "data", ignore_errors=True)

    # Scan, redact, re-scan the redacted copy, decide (on Spark: the same scanner in pandas UDFs)
    scanner = None
    if params.engine == "spark":
        from governance.pii.spark import SparkPiiScanner
        from governance.policy.pii import load_pii_policy
        from governance.spark_io import spark_session

        spark = spark_session(params.spark.model_dump())
        scanner = SparkPiiScanner(load_pii_policy(params.policy), params.policy, spark)
    result = run_pii_gate(
        params.inputs,
        kind=params.kind,
        policy_path=params.policy,
        stage=stage,
        cleared_dir=out_dir / "data",
        scanner=scanner,
        progress=True,
    )

    # Write the findings report and manifest, then publish the decision last (a signed trail event, then the file)
    write_findings_report(result.report, out_dir / "findings.json")
    write_manifest(
        out_dir,
        {
            "stage": stage,
            "params": params.model_dump(),
            "policy": {
                "path": params.policy,
                "version": result.report.policy_version,
                "sha256": result.report.policy_sha256,
            },
            "inputs": {item["path"]: item["sha256"] for item in result.decision.details["inputs"]},
            "outputs": {ref.path: ref.sha256 for ref in result.decision.datasets} if result.cleared_files else {},
        },
    )
    # The inputs' hashes are signed too: validation ties the cleared data to the preparation it came from (P8)
    inputs = {f"{INPUT_KEY}{item['path']}": item["sha256"] for item in result.decision.details["inputs"]}
    publish_decision(
        result.decision, out_dir / "decision.json", evidence=inputs, policy_sha256=result.report.policy_sha256
    )
    for line in result.decision.summary_lines():
        log.info("%s", line)
    log.info(
        "%s: %s; %d records redacted; cleared data %s",
        stage,
        "passed" if result.decision.passed else "DENIED",
        result.decision.details["redaction"]["records_redacted"],
        out_dir / "data" if result.cleared_files else "not written",
    )
    return EXIT_OK if result.decision.passed else EXIT_DENIED


if __name__ == "__main__":
    raise SystemExit(main())
