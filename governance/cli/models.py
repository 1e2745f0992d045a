"""``govern models [NAME]``: registered models, versions, approval status, lineage."""

from __future__ import annotations

import argparse
import json

from governance import registry


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="list registered models and versions with their approval status")
    parser.add_argument("name", nargs="?", help="only this registered model")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def version_summary(version) -> dict[str, str]:
    tags = version.tags or {}
    return {
        "name": version.name,
        "version": str(version.version),
        "status": tags.get(registry.TAG_APPROVAL_STATUS, "unknown"),
        "aliases": ",".join(getattr(version, "aliases", []) or []),
        "method": tags.get("lineage.method", ""),
        "git_commit": tags.get("lineage.git_commit", "")[:10],
        "parent": tags.get("lineage.parent_model", ""),
        "eval": tags.get("lineage.eval_decision", ""),
        "run_id": version.run_id or "",
    }


def run(args: argparse.Namespace) -> int:
    rows = [version_summary(v) for v in registry.list_versions(args.name)]
    if args.json:
        print(json.dumps(rows, indent=2))  # noqa: T201 - CLI output
        return 0
    if not rows:
        print(f"no registered models at {registry.tracking_uri()}")  # noqa: T201
        return 0
    columns = ["name", "version", "status", "aliases", "method", "eval", "git_commit", "parent"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns))  # noqa: T201
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in columns))  # noqa: T201
    return 0
