"""``govern models [NAME]`` and ``govern reconcile [NAME]``: registered versions as the audit trail sees them.

The status and aliases printed are the trail's (folded from its events under
``policies/approvals.yaml``), never MLflow's tags: a version approved or
aliased only in MLflow is shown as the trail has it, with a warning naming
the drift. ``govern reconcile`` restores MLflow from the trail and records
the repair as a ``registry_reconciled`` event.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="list registered models and versions with their approval status")
    parser.add_argument("name", nargs="?", help="only this registered model")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)
    reconcile = sub.add_parser(
        "reconcile", help="restore MLflow aliases and governance tags from the audit trail; record the repair"
    )
    reconcile.add_argument("name", nargs="?", help="only this registered model (default: every one)")
    reconcile.add_argument("--reason", default="", help="recorded in the audit trail with the repair")
    reconcile.set_defaults(handler=run_reconcile)


def _say(line: str = "", *, err: bool = False) -> None:
    print(line, file=sys.stderr if err else sys.stdout)  # noqa: T201 - CLI output


def version_rows(name: str | None) -> tuple[list[dict[str, str]], list[str], list[str]]:
    """One row per registered version (the trail's status and aliases), the drift lines, and why a status is not
    stated: it is stated only under the approvals policy the trail pins for the version (as every action decides),
    never from an uncommitted or copied policy file."""
    from governance import registry_view
    from governance.approvals import (
        NOT_STATED,
        find_drift,
        model_state,
        policy_in_force,
        policy_pin_message,
        policy_trail,
    )

    in_force = policy_in_force()
    policy, changes = in_force.policy, policy_trail()
    if name is not None:
        registry_view.require_model(name)
    # Newest first within each model
    versions = sorted(registry_view.read_versions(name=name), key=lambda v: (v.name, -v.version))
    states = {model: model_state(model) for model in {v.name for v in versions}}
    rows, unstated = [], []
    for mv in versions:
        tags = mv.tags or {}
        state = states[mv.name]
        version_state = state.version(str(mv.version))
        holders = state.alias_holders()
        unpinned = policy_pin_message(version_state, in_force, changes)
        if unpinned:
            unstated.append(f"{mv.name} v{mv.version}: status not stated: {unpinned}")
        status = NOT_STATED if unpinned else version_state.status(policy)
        frozen = version_state.declared
        rows.append(
            {
                "name": mv.name,
                "version": str(mv.version),
                "status": status if version_state.registration else "unregistered",
                "aliases": ",".join(a for a, v in sorted(holders.items()) if v == str(mv.version)),
                # As the registration froze them (MLflow's tags are mirrored from the trail: an edit is drift)
                "method": version_state.method or tags.get("lineage.method", ""),
                "git_commit": frozen.get("lineage.git_commit", tags.get("lineage.git_commit", ""))[:10],
                "parent": frozen.get("lineage.parent_model", tags.get("lineage.parent_model", "")),
                "eval": version_state.eval_status or "",
                "run_id": mv.run_id or "",
            }
        )
    drift = find_drift(name, policy=in_force, versions=versions)
    return rows, [d.line() for d in drift], unstated


def run(args: argparse.Namespace) -> int:
    from governance import registry

    rows, drift, unstated = version_rows(args.name)
    for line in unstated:
        _say(f"warning: {line}", err=True)
    if args.json:
        _say(json.dumps(rows, indent=2))  # the drift warning goes to stderr, as in the table
        _drift_warning(drift)
        return 0
    if not rows:
        _say(f"no registered models at {registry.tracking_uri()}")
        return 0
    columns = ["name", "version", "status", "aliases", "method", "eval", "git_commit", "parent"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    _say("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        _say("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())
    _drift_warning(drift)
    return 0


def _drift_warning(drift: list[str]) -> None:
    if not drift:
        return
    _say(
        f"warning: MLflow disagrees with the audit trail in {len(drift)} place(s); shown above is the trail's state "
        "(repair: govern reconcile)",
        err=True,
    )
    for line in drift:
        _say(f"  drift: {line}", err=True)


def run_reconcile(args: argparse.Namespace) -> int:
    from governance import registry_view
    from governance.approvals import clean_reason, find_drift, reconcile

    reason = clean_reason(args.reason) if args.reason else ""
    names = [args.name] if args.name else registry_view.model_names()
    if args.name:
        registry_view.require_model(args.name)
    left = 0
    for name in names:
        drift, event = reconcile(name, reason=reason)
        # Where models:/ reads a version's files is not reconcile's to move: said, and exit 1
        remaining = [d for d in find_drift(name) if not d.repairable]
        left += len(remaining)
        if event is None and not remaining:
            _say(f"{name}: MLflow matches the audit trail; nothing recorded")
        elif event is not None:
            _say(f"reconciled {name}: {len(drift)} value(s) restored from the audit trail (event #{event.seq})")
            for d in drift:
                _say(f"  repaired: {d.line()}")
        for d in remaining:
            _say(f"govern: not repaired: {d.line()} (repair: {d.repair})", err=True)
    return 1 if left else 0
