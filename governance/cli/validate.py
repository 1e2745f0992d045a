"""``govern validate FILE --kind KIND``: run the data validation gate on a file, outside DVC.

Prints one conftest-style line per violation and a verdict; exit 0 passed
(warnings allowed), 1 denied by an unwaived ``deny`` rule, 2 bad input or usage
(then no ``--report`` is left behind).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from governance.errors import EXIT_DENIED, EXIT_OK
from governance.gates import write_decision
from governance.policy.data import DATASET_KINDS


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "validate",
        help="validate a dataset file against policies/data.yaml (great-expectations suites)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("file", help="train (or only) file: JSONL, JSON, CSV or Parquet")
    parser.add_argument("--kind", required=True, choices=DATASET_KINDS, help="dataset kind (TRL format)")
    parser.add_argument("--eval", dest="eval_file", help="held-out file: also validated, and checked for overlap")
    parser.add_argument("--policy", default="policies/data.yaml", help="data policy file (default: %(default)s)")
    parser.add_argument(
        "--waivers", default="policies/waivers.yaml", help="waiver records, if the file exists (default: %(default)s)"
    )
    parser.add_argument(
        "--prepared", help="the prepare stage's out_dir: judge its quarantine.jsonl against data.malformed"
    )
    parser.add_argument("--report", type=Path, help="write the gate decision JSON here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from governance.validation import run_validation_gate

    if args.report is not None:
        args.report.unlink(missing_ok=True)  # a stale report must not survive bad input
    decision = run_validation_gate(
        kind=args.kind,
        train=args.file,
        eval_path=args.eval_file,
        policy_path=args.policy,
        waivers_path=args.waivers,
        stage="govern validate",
        progress=not args.quiet,
        prepared=args.prepared,
    )
    if args.report is not None:
        write_decision(decision, args.report)
    for line in decision.summary_lines():
        print(line)  # noqa: T201 - CLI output
    files = ", ".join(
        f"{ref.path} ({ref.records} rows)" if ref.records is not None else ref.path for ref in decision.datasets
    )
    counts = ", ".join(f"{value} {key}" for key, value in decision.counts.items())
    verdict = "passed" if decision.passed else "denied"
    print(f"{verdict}: {args.kind} {files}: {counts} (policy {args.policy} v{decision.policy_version})")  # noqa: T201
    return EXIT_OK if decision.passed else EXIT_DENIED
