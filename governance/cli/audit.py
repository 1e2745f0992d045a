"""``govern audit verify|export``: check the hash chain of the audit trail, or archive it as JSON Lines.

The trail is ``GOVERN_AUDIT_URL`` or ``audit.db`` beside the local MLflow
store. ``verify`` recomputes every event's hash and link and names the first
bad event (exit 1); with ``--archive`` it also requires an earlier export to
still be the trail's prefix, which catches a truncated or rewritten tail.
``--file`` verifies an export on its own, away from the database.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from governance import trail
from governance.errors import EXIT_DENIED, EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("audit", help="verify or export the audit trail", description=__doc__.split("\n\n")[0])
    actions = parser.add_subparsers(dest="audit_command", required=True, parser_class=type(parser))
    verify = actions.add_parser("verify", help="recompute the hash chain; name the first bad event")
    verify.add_argument("--archive", type=Path, help="an earlier `govern audit export` that must still be a prefix")
    verify.add_argument("--file", type=Path, help="verify this export file instead of the database")
    verify.set_defaults(handler=run_verify)
    export = actions.add_parser("export", help="write every event as JSON Lines (chain order) for archiving")
    export.add_argument("--out", type=Path, help="output file (default: stdout)")
    export.set_defaults(handler=run_export)


def run_verify(args: argparse.Namespace) -> int:
    if args.file is not None:
        result = trail.verify_rows(event.stored_row() for event in trail.read_export(args.file))
        where = str(args.file)
    else:
        result = trail.verify(archive=args.archive)
        where = trail.redacted(trail.open_trail().url)
    if result.ok:
        print(f"{result.line()} ({where})")  # noqa: T201 - CLI output
        return EXIT_OK
    print(f"govern: {result.line()} ({where})", file=sys.stderr)  # noqa: T201
    return EXIT_DENIED


def run_export(args: argparse.Namespace) -> int:
    opened = trail.open_trail()
    if args.out is None:
        opened.export(sys.stdout)
        return EXIT_OK
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        count = opened.export(handle)
    tmp.replace(args.out)
    head = opened.head()
    print(f"exported {count} events to {args.out}; head {head.hash if head else trail.GENESIS_HASH}")  # noqa: T201
    return EXIT_OK
