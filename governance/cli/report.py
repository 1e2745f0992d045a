"""``govern report NAME VERSION --out DIR``: the audit report and model card of one version.

Needs only the MLflow tracking server (``MLFLOW_TRACKING_URI``) and the audit
trail (``GOVERN_AUDIT_URL``, or ``audit.db`` beside a local store), plus the
policy files (``policies/`` or ``GOVERN_POLICY_DIR``): no DVC checkout. Writes
``DIR/NAME/vVERSION/``: ``report.html`` (self-contained, opens offline), ``report.md``, ``README.md``
(model card), ``facts.json`` and ``figures/`` — one folder per version, as the ``report`` stage
lays them out, so reports of several versions into one ``--out`` never overwrite each other.
Exit 0 when written — whatever the verdict — unless ``--require-promotable`` is given, then 1 when the version
may not be promoted; 2 for a usage, input or connection error.
"""

from __future__ import annotations

import argparse

from governance.errors import EXIT_DENIED


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("report", help="write the audit report and model card of a registered version")
    parser.add_argument("name", help="registered model name, e.g. govllm-sft")
    parser.add_argument("version", help="version number")
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder (created if missing); the report goes to DIR/NAME/vVERSION/",
    )
    parser.add_argument("--report-policy", metavar="FILE", help="default: policies/report.yaml")
    parser.add_argument("--approvals-policy", metavar="FILE", help="default: policies/approvals.yaml")
    parser.add_argument(
        "--log-to-mlflow",
        action="store_true",
        help="also attach the report to the version's training run (report/, model card included)",
    )
    parser.add_argument(
        "--require-promotable", action="store_true", help="exit 1 when the verdict is 'may not be promoted'"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from governance.report import build_report, log_report, report_folder

    report = build_report(
        args.name,
        args.version,
        report_folder(Path(args.out), args.name, args.version),
        report_policy=args.report_policy,
        approvals_policy=args.approvals_policy,
    )
    if args.log_to_mlflow:
        log_report(report)
    print(report.verdict.headline)  # noqa: T201 - CLI output
    for check in report.verdict.blocking:
        print(f"  {check.status:<8} {check.id}: {check.detail}")  # noqa: T201
    files = report.files
    print(f"wrote {files.html}, {files.markdown}, {files.model_card} ({report.seconds:.1f}s)")  # noqa: T201
    if args.require_promotable and not report.verdict.promotable:
        return EXIT_DENIED
    return 0
