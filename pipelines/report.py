"""Write the audit report and model card of every newly registered version.

    dvc repro report              # or: python -m pipelines.report

For each method in params ``report.methods`` it reads the version that
``register_<method>`` registered (``<out_dir>/registration.json``), collects
its facts from MLflow and the audit trail — exactly what ``govern report``
does on a reviewer's laptop — and, because this stage runs in the checkout,
also cross-checks the dataset hashes of the version's lineage against
``dvc.lock``. Writes ``<out_dir>/<name>/v<version>/`` (report.html, report.md,
README.md model card, facts.json, figures/) and attaches them to the version's
training run (``report/``, model card included). Writes nothing else: the
report never modifies another stage's outputs.

A report shows run ids, approval times and when it was made, so DVC does not
hash the report folders: the stage's DVC output is ``<out_dir>/index.json``
(each version's verdict and check statuses, nothing run-specific), which a
fresh clone's ``dvc repro`` writes byte for byte again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import Field

from governance.errors import ConfigError
from governance.files import write_atomic
from governance.lineage import dvc_lock_stage
from governance.policy import Strict
from governance.report import BuiltReport, collect_facts, decide_verdict, log_report, render_report, report_folder
from governance.report.facts import ReportFacts
from governance.report.verdict import Verdict
from pipelines._common import load_all_params, load_params, stage_main

log = logging.getLogger(__name__)
STAGE = "report"
#: The stage's DVC output in ``out_dir``: one line per report, no run id or time (those stay in the reports).
INDEX = "index.json"


class ReportParams(Strict):
    methods: list[str] = Field(min_length=1)
    out_dir: str
    policy: str
    approvals_policy: str
    log_to_mlflow: bool


def registration_file(method: str) -> Path:
    """``registration.json`` of ``register_<method>``, from that stage's params section."""
    section = load_all_params().get(f"register_{method}")
    if not isinstance(section, dict) or not section.get("out_dir"):
        raise ConfigError(f"params.yaml: report.methods: {method!r} has no register_{method}.out_dir to read")
    return Path(section["out_dir"]) / "registration.json"


def read_registration(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: registration missing; run the register stage first (dvc repro)")
    try:
        data = json.loads(path.read_text())
        return {"name": str(data["name"]), "version": str(data["version"])}
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{path}: not a registration record (expected name and version)") from None


def checkout_cross_check(facts: ReportFacts, lock_path: Path = Path("dvc.lock")) -> list[dict[str, Any]]:
    """Each training file's md5 in the version's lineage against what ``dvc.lock`` records for it."""
    stage = facts.training.get("stage")
    locked = {dep["path"]: dep.get("md5") for dep in dvc_lock_stage(stage, lock_path).get("deps", [])} if stage else {}
    rows = []
    for dataset in facts.data.get("datasets") or []:
        in_lock = locked.get(dataset["path"])
        rows.append(
            {
                "path": dataset["path"],
                "lineage_md5": dataset.get("md5"),
                "dvc_lock_md5": in_lock,
                "match": None if in_lock is None else in_lock == dataset.get("md5"),
            }
        )
    return rows


@stage_main
def main(argv: list[str] | None = None) -> int:
    params = load_params(STAGE, ReportParams)
    out_root = Path(params.out_dir)
    index = []
    for method in params.methods:
        registration = read_registration(registration_file(method))
        name, version = registration["name"], registration["version"]
        # Facts from MLflow and the audit trail, plus the checkout's dvc.lock
        facts = collect_facts(name, version, report_policy=params.policy, approvals_policy=params.approvals_policy)
        facts.integrity["checkout"] = checkout_cross_check(facts)
        verdict = decide_verdict(facts)
        files = render_report(facts, verdict, report_folder(out_root, name, version))
        report = BuiltReport(facts, verdict, files, 0.0)
        # Attach to the version's training run
        if params.log_to_mlflow:
            log_report(report)
        log.info("%s v%s: %s (%s)", name, version, verdict.headline, files.html)
        index.append(index_entry(method, name, version, verdict, files.html.parent))
    write_index(out_root / INDEX, index)
    return 0


def index_entry(method: str, name: str, version: str, verdict: Verdict, folder: Path) -> dict[str, Any]:
    """What the DVC-hashed index says of one report: the verdict and each check's status, nothing run-specific."""
    return {
        "method": method,
        "name": name,
        "version": version,
        "promotable": verdict.promotable,
        "checks": {check.id: check.status for check in verdict.checks},
        "folder": folder.as_posix(),
    }


def write_index(path: Path, entries: list[dict[str, Any]]) -> None:
    """``index.json``, the stage's DVC output: written last, atomically (a failed run leaves none)."""
    body = {
        "reports": entries,
        "note": "the reports themselves (HTML, Markdown, model card, facts) show run ids and times, so DVC does not "
        "hash them; they are attached to each version's training run in MLflow and `govern report` rebuilds them",
    }
    write_atomic(path, json.dumps(body, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
