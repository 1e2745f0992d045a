"""Reviewer and release-owner commands: show, approve, reject, promote, canary, rollback, history, approve-objective.

Each action is decided by ``policies/approvals.yaml`` (``GOVERN_POLICY_DIR``
overrides the folder), recorded in the audit trail and mirrored to MLflow
aliases and ``governance.*`` tags. The acting user is ``GOVERN_USER`` / the OS
user against the local store, or the MLflow user the server authenticates
(``MLFLOW_TRACKING_USERNAME``/``PASSWORD``); there is no ``--as``. Exit codes:
0 done (or already in force), 1 refused by policy or permission (the refusal
is recorded), 2 usage or connection error.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from governance import approvals, registry


def register(sub: argparse._SubParsersAction) -> None:
    show = sub.add_parser("show", help="one version: lineage, gate and eval decisions, approvals, aliases")
    show.add_argument("name")
    show.add_argument("version")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=run_show)

    for command, help_text in (
        ("approve", "approve a version as a reviewer"),
        ("reject", "reject a version (blocks deployment until you approve)"),
    ):
        parser = sub.add_parser(command, help=help_text)
        parser.add_argument("name")
        parser.add_argument("version")
        parser.add_argument("--reason", required=True, help="recorded in the audit trail")
        parser.set_defaults(handler=run_decision, action=command)

    for command, help_text, default_reason in (
        ("promote", "point the production alias at an approved version", "promoted to production"),
        ("canary", "point the canary alias at an approved version", "canary started"),
    ):
        parser = sub.add_parser(command, help=help_text)
        parser.add_argument("name")
        parser.add_argument("version")
        parser.add_argument("--reason", default=default_reason, help="recorded in the audit trail")
        parser.set_defaults(handler=run_alias, action=command)

    rollback = sub.add_parser(
        "rollback", help="move production back (default: the previous production version still approved)"
    )
    rollback.add_argument("name")
    rollback.add_argument("--to", metavar="VERSION", help="roll back to this approved version")
    rollback.add_argument("--reason", default="rolled back production", help="recorded in the audit trail")
    rollback.set_defaults(handler=run_rollback)

    history = sub.add_parser("history", help="who moved which alias of a model, and when")
    history.add_argument("name")
    history.add_argument("--json", action="store_true", help="machine-readable output")
    history.set_defaults(handler=run_history)

    objective = sub.add_parser(
        "approve-objective", help="approve the current hashes of a stage's reward functions / objective"
    )
    objective.add_argument("stage", help="e.g. train_grpo (declared under stages: in policies/objectives.yaml)")
    objective.add_argument("--reason", required=True, help="recorded in the audit trail")
    objective.add_argument("--objective", metavar="NAME", help="only this objective of the stage")
    objective.add_argument(
        "--sha256", metavar="HASH", help="approve this exact hash of --objective (as the stage's refusal printed it)"
    )
    objective.set_defaults(handler=run_approve_objective)


def _say(line: str) -> None:
    print(line)  # noqa: T201 - CLI output


def run_decision(args: argparse.Namespace) -> int:
    act = approvals.approve if args.action == "approve" else approvals.reject
    outcome = act(args.name, args.version, reason=args.reason)
    state, policy = outcome.state, outcome.policy
    verb = "approved" if args.action == "approve" else "rejected"
    progress = (
        f"{len(state.valid_approvers(policy))} of {policy.required_approvals(state.tier(policy))} approvals, "
        f"status {state.status(policy)}"
    )
    if not outcome.created:
        _say(
            f"already {verb} {args.name} v{args.version} by {outcome.event.actor} (event #{outcome.event.seq}); "
            f"nothing recorded; {progress}"
        )
        return 0
    _say(f"{verb} {args.name} v{args.version} as {outcome.event.role} (event #{outcome.event.seq}); {progress}")
    return 0


def run_alias(args: argparse.Namespace) -> int:
    act = approvals.promote if args.action == "promote" else approvals.canary
    outcome = act(args.name, args.version, reason=args.reason)
    alias = approvals.ALIAS_PRODUCTION if args.action == "promote" else approvals.ALIAS_CANARY
    if not outcome.created:
        _say(f"{args.name} v{args.version} already holds {alias} (event #{outcome.event.seq}); nothing recorded")
        return 0
    moved = f" (was v{outcome.previous})" if outcome.previous else ""
    _say(f"{alias} of {args.name} -> v{args.version}{moved} by {outcome.event.actor} (event #{outcome.event.seq})")
    return 0


def run_rollback(args: argparse.Namespace) -> int:
    outcome = approvals.rollback(args.name, to=args.to, reason=args.reason)
    if not outcome.created:
        _say(f"{args.name} v{outcome.version} already holds production (event #{outcome.event.seq}); nothing recorded")
        return 0
    _say(
        f"rolled back production of {args.name}: v{outcome.previous} -> v{outcome.version} "
        f"by {outcome.event.actor} (event #{outcome.event.seq})"
    )
    return 0


def history_rows(name: str) -> list[dict[str, Any]]:
    rows = []
    for event in approvals.history(name):
        rows.append(
            {
                "event": event.seq,
                "at": event.timestamp,
                "alias": approvals.ALIAS_EVENTS[event.event_type],
                "change": event.event_type,
                "version": event.subject.version,
                "from_version": event.details.get("from_version", ""),
                "by": event.actor,
                "role": event.role,
                "reason": event.reason,
            }
        )
    return rows


def run_history(args: argparse.Namespace) -> int:
    rows = history_rows(args.name)
    if args.json:
        _say(json.dumps(rows, indent=2))
        return 0
    if not rows:
        _say(f"no alias moves of {args.name} in the audit trail")
        return 0
    for row in rows:
        moved = f" (from v{row['from_version']})" if row["from_version"] else ""
        _say(
            f"#{row['event']:<5} {row['at'][:19]}Z  {row['alias']:<10} -> v{row['version']}{moved}  "
            f"{row['change']} by {row['by']} ({row['role']}): {row['reason']}"
        )
    return 0


def show_facts(name: str, version: str) -> dict[str, Any]:
    """What ``govern show`` prints: the registry's view and the trail's, side by side."""
    mv = registry.get_version(name, version)
    policy = approvals.load_approvals_policy()
    model = approvals.model_state(name)
    state = model.version(version)
    tags = mv.tags or {}
    aliases = sorted(getattr(mv, "aliases", []) or [])
    drift = []
    for alias in (approvals.ALIAS_PRODUCTION, approvals.ALIAS_CANARY):
        in_trail = model.alias_holder(alias) == str(version)
        if in_trail != (alias in aliases):
            drift.append(
                f"alias {alias}: registry {'has' if alias in aliases else 'lacks'} it, trail says "
                f"{'this version' if in_trail else 'another version'}"
            )
    return {
        **state.summary(policy),
        "aliases": aliases,
        "run_id": mv.run_id or "",
        "source": mv.source or "",
        "lineage": {k: v for k, v in sorted(tags.items()) if k.startswith("lineage.")},
        "registry_view": {k: v for k, v in sorted(tags.items()) if k.startswith("governance.")},
        "drift": drift,
        "events": [e.model_dump(mode="json") for e in state.events],
    }


def run_show(args: argparse.Namespace) -> int:
    facts = show_facts(args.name, args.version)
    if args.json:
        _say(json.dumps(facts, indent=2, sort_keys=True))
        return 0
    _say(
        f"{args.name} v{args.version}: {facts['status']} "
        f"({len(facts['approvers'])}/{facts['approvals_required']} approvals, risk tier {facts['risk_tier']})"
    )
    _say(f"  aliases:      {', '.join(facts['aliases']) or '-'}")
    _say(f"  gates:        {facts['gate_status'] or 'unknown'}")
    _say(f"  evaluation:   {facts['eval_status'] or 'unknown'}")
    _say(f"  approved by:  {', '.join(facts['approvers']) or '-'}")
    _say(f"  rejected by:  {', '.join(facts['rejected_by']) or '-'}")
    for tag, who in facts["people"].items():
        _say(f"  {tag + ':':<24}{who}")
    _say(f"  run:          {facts['run_id'] or '-'}")
    _say("  lineage:")
    for key, value in facts["lineage"].items():
        _say(f"    {key} = {value}")
    _say("  audit trail:")
    for event in facts["events"]:
        _say(
            f"    #{event['seq']} {event['timestamp'][:19]}Z {event['event_type']} by {event['actor']} "
            f"({event['role']}): {event['reason']}"
        )
    for line in facts["drift"]:
        _say(f"  warning: MLflow disagrees with the audit trail ({line}); the next governed action re-mirrors it")
    return 0


def run_approve_objective(args: argparse.Namespace) -> int:
    from governance.errors import ConfigError
    from governance.objectives import approve_objective

    hashes = None
    if args.sha256 is not None:
        if args.objective is None:
            raise ConfigError("--sha256 needs --objective NAME (which objective the hash is of)")
        hashes = {args.objective: args.sha256}
    approved = approve_objective(args.stage, reason=args.reason, hashes=hashes, only=args.objective)
    for approval in approved:
        state = "approved" if approval.created else "already approved"
        _say(
            f"{state}: {args.stage} objective {approval.objective} sha256 {approval.sha256} "
            f"by {approval.approved_by} (event #{approval.event_seq})"
        )
    return 0
