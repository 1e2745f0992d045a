"""The audit report and model card of a registered model version, from recorded facts only.

    govern report NAME VERSION --out DIR        # a reviewer's laptop: MLflow + audit trail
    dvc repro report                            # the pipeline: every newly registered version

:func:`build_report` = :func:`~governance.report.facts.collect_facts` (MLflow
and the audit trail; never the DVC checkout) →
:func:`~governance.report.verdict.decide_verdict` (may it be promoted, and if
not, what is missing) → :func:`~governance.report.render.render_report`
(self-contained HTML, the same as Markdown, a Hugging Face style model card,
``facts.json``). :func:`log_report` attaches the result to the version's
training run under ``report/`` (the card too: the registered ``model/`` folder is signed at
registration and stays exactly what was signed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from governance.report.facts import ReportFacts, collect_facts
from governance.report.render import ReportFiles, render_report
from governance.report.verdict import Check, Verdict, decide_verdict

log = logging.getLogger(__name__)

__all__ = [
    "BuiltReport",
    "Check",
    "ReportFacts",
    "ReportFiles",
    "Verdict",
    "build_report",
    "collect_facts",
    "decide_verdict",
    "log_report",
    "render_report",
    "report_folder",
]


def report_folder(out_root: Path, name: str, version: str | int) -> Path:
    """``OUT/NAME/vVERSION``: where one version's report goes, so reports into one folder never overwrite
    each other (``govern report`` and the ``report`` stage lay them out alike).

    The name and version become path components: one that would leave ``out_root`` (``..``, a separator)
    is refused (:class:`~governance.errors.ConfigError`).
    """
    from governance.errors import ConfigError

    for what, part in (("model name", str(name)), ("version", f"v{version}")):
        if part in ("", ".", "..") or "/" in part or "\\" in part or part != part.strip():
            raise ConfigError(
                f"{what} {part!r}: not usable as a report folder name under {out_root}; "
                "give the registered model's name and version number"
            )
    return Path(out_root) / str(name) / f"v{version}"


@dataclass(frozen=True)
class BuiltReport:
    facts: ReportFacts
    verdict: Verdict
    files: ReportFiles
    seconds: float


def build_report(
    name: str,
    version: str | int,
    out_dir: str | Path,
    *,
    report_policy: str | Path | None = None,
    approvals_policy: str | Path | None = None,
    audit_url: str | None = None,
) -> BuiltReport:
    """Collect, judge and render the report of ``name`` v``version`` into ``out_dir``.

    Policy files default to ``policies/`` (or ``GOVERN_POLICY_DIR``); the audit
    trail to ``GOVERN_AUDIT_URL`` (or ``audit.db`` beside a local MLflow store).
    """
    started = time.perf_counter()
    facts = collect_facts(
        name, version, report_policy=report_policy, approvals_policy=approvals_policy, audit_url=audit_url
    )
    verdict = decide_verdict(facts)
    files = render_report(facts, verdict, out_dir)
    seconds = time.perf_counter() - started
    log.info("report of %s v%s in %.2fs: %s", name, version, seconds, verdict.headline)
    return BuiltReport(facts, verdict, files, seconds)


def log_report(report: BuiltReport) -> None:
    """Attach the report and its model card to the version's training run under ``report/``.

    Never into ``model/``: that folder is signed at registration, and a file
    added afterwards would (rightly) fail ``govern verify`` and block approval.
    """
    from governance import registry

    run_id = report.facts.training.get("run_id") or report.facts.identity.get("run_id")
    client = registry.client()
    with registry.registry_errors(f"logging the report to run {run_id}"):
        client.log_artifacts(run_id, str(report.files.out_dir), artifact_path="report")
