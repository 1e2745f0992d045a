"""``govern pii scan FILE``: run the PII gate on one dataset file, without writing any data.

Exit 0 when the gate passes (warnings, e.g. findings the pipeline would
redact, allowed), 1 when it denies, 2 for unreadable or malformed input, a bad
policy or a usage error. Prints one summary line; ``--report`` writes the
full findings report (counts, locations, masked snippets; never raw values).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from governance.errors import EXIT_DENIED, EXIT_OK
from governance.pii.kinds import KIND_FIELDS


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("pii", help="PII gate: scan dataset files under policies/pii.yaml")
    commands = parser.add_subparsers(dest="pii_command", required=True, parser_class=type(parser))
    scan = commands.add_parser(
        "scan",
        help="scan one dataset file; exit 0 passed, 1 denied, 2 bad input",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    scan.add_argument("file", help="a .jsonl, .json, .csv or .parquet dataset file")
    scan.add_argument(
        "--kind",
        choices=sorted(KIND_FIELDS),
        help="dataset kind (default: detected from the first record's fields)",
    )
    scan.add_argument("--policy", default="policies/pii.yaml", help="PII policy (default: %(default)s)")
    scan.add_argument("--waivers", default="policies/waivers.yaml", help="waivers file, if it exists")
    scan.add_argument("--report", metavar="OUT.json", help="write the findings report here")
    scan.set_defaults(handler=run_scan)


def run_scan(args: argparse.Namespace) -> int:
    # presidio loads in seconds; only this command pays for it
    from governance.pii import detect_kind, run_pii_gate, write_findings_report

    path = Path(args.file)
    kind = args.kind or detect_kind(path)
    result = run_pii_gate(
        [path],
        kind=kind,
        policy_path=args.policy,
        stage="cli",
        waivers_path=args.waivers,
        progress=True,  # a tqdm bar on stderr when it is a terminal
    )
    if args.report:
        write_findings_report(result.report, args.report)
    decision = result.decision
    scan = result.scans[0]
    by_entity = Counter({entity: tally.findings for entity, tally in scan.by_entity.items()})
    found = ", ".join(f"{entity} {count}" for entity, count in sorted(by_entity.items())) or "none"
    verdict = "passed" if decision.passed else "DENIED"
    line = (
        f"pii scan {path} ({kind}): {verdict}: {scan.records} records, {scan.findings} findings ({found}); "
        f"{decision.counts['deny']} deny, {decision.counts['warn']} warn, {decision.counts['waived']} waived"
    )
    if not decision.passed:
        first = next(v for v in decision.violations if v.severity == "deny" and v.waived_by is None)
        line += f"; first: {first.line()}"
    print(line)  # noqa: T201 - CLI output
    return EXIT_OK if decision.passed else EXIT_DENIED
