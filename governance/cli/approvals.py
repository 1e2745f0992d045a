"""Reviewer and release-owner commands: show, approve, reject, promote, canary, canary-end, rollback, withdraw,
history, approve-objective, policy-change.

Each action is decided by ``policies/approvals.yaml`` (``GOVERN_POLICY_DIR``
overrides the folder, but the file's SHA-256 must be the one the audit trail
pins for the version: the policy it was registered under, or one an approved
``govern policy-change`` led to), recorded in the audit trail and mirrored to MLflow
aliases and ``governance.*`` tags. The acting user is ``GOVERN_USER`` / the OS
user against the local store, or the MLflow user the server authenticates
(``MLFLOW_TRACKING_USERNAME``/``PASSWORD``); there is no ``--as``. Exit codes:
0 done (or already in force), 1 refused by policy or permission (the refusal
is recorded) or the audit trail does not verify, 2 usage or connection error.
``show`` prints the trail's state (never MLflow's tags as truth), how each
approver was identified, and a warning for every place MLflow disagrees.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from governance import approvals, registry_view


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

    canary_end = sub.add_parser("canary-end", help="end the canary: remove the canary alias from its version")
    canary_end.add_argument("name")
    canary_end.add_argument("--reason", default="canary ended", help="recorded in the audit trail")
    canary_end.set_defaults(handler=run_canary_end)

    rollback = sub.add_parser(
        "rollback", help="move production back (default: the previous production version still approved)"
    )
    rollback.add_argument("name")
    rollback.add_argument("--to", metavar="VERSION", help="roll back to this approved version")
    rollback.add_argument("--reason", default="rolled back production", help="recorded in the audit trail")
    rollback.set_defaults(handler=run_rollback)

    withdraw = sub.add_parser(
        "withdraw",
        help="take the serving version out of service: remove production (and its canary) even with nothing to "
        "replace it; it is promoted again only after fresh approvals",
    )
    withdraw.add_argument("name")
    withdraw.add_argument("--reason", default="withdrawn from service", help="recorded in the audit trail")
    withdraw.add_argument(
        "--incident", metavar="ID", help="the open incident (INC-<n>) this answers; withdraws the version it is about"
    )
    withdraw.set_defaults(handler=run_withdraw)

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

    change = sub.add_parser(
        "policy-change",
        help="approve replacing the approvals policy --old by the one in force (needs distinct approvers)",
    )
    change.add_argument(
        "--old", required=True, metavar="FILE", help="the policy being replaced (e.g. from git show HEAD~1:...)"
    )
    change.add_argument("--reason", required=True, help="recorded in the audit trail")
    change.set_defaults(handler=run_policy_change)


def _say(line: str) -> None:
    print(line)  # noqa: T201 - CLI output


def run_decision(args: argparse.Namespace) -> int:
    act = approvals.approve if args.action == "approve" else approvals.reject
    outcome = act(args.name, args.version, reason=args.reason)
    state, policy = outcome.state, outcome.policy
    verb = "approved" if args.action == "approve" else "rejected"
    progress = f"{approval_count(len(state.valid_approvers(policy)), policy.required_approvals(state.tier(policy)))}, "
    progress += f"status {state.status(policy)}"
    if not outcome.created:
        _say(
            f"already {verb} {args.name} v{outcome.version} by {outcome.event.actor} (event #{outcome.event.seq}); "
            f"nothing recorded; {progress}"
        )
        return 0
    _say(f"{verb} {args.name} v{outcome.version} as {outcome.event.role} (event #{outcome.event.seq}); {progress}")
    return 0


def approval_count(valid: int, required: int) -> str:
    """``1 of 2 approvals``; past the requirement, ``3 approvals, 2 required`` (never "3 of 2")."""
    if valid <= required:
        return f"{valid} of {required} approvals"
    return f"{valid} approvals, {required} required"


def run_alias(args: argparse.Namespace) -> int:
    act = approvals.promote if args.action == "promote" else approvals.canary
    outcome = act(args.name, args.version, reason=args.reason)
    alias = approvals.ALIAS_PRODUCTION if args.action == "promote" else approvals.ALIAS_CANARY
    if not outcome.created:
        _say(f"{args.name} v{outcome.version} already holds {alias} (event #{outcome.event.seq}); nothing recorded")
        return 0
    moved = f" (was v{outcome.previous})" if outcome.previous else ""
    _say(f"{alias} of {args.name} -> v{outcome.version}{moved} by {outcome.event.actor} (event #{outcome.event.seq})")
    return 0


def run_canary_end(args: argparse.Namespace) -> int:
    outcome = approvals.canary_end(args.name, reason=args.reason)
    if not outcome.created:
        _say(f"{args.name} has no canary (ended by event #{outcome.event.seq}); nothing recorded")
        return 0
    _say(
        f"canary of {args.name} ended: v{outcome.version} no longer holds it, by {outcome.event.actor} "
        f"(event #{outcome.event.seq})"
    )
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
    if outcome.event.details.get("canary_ended"):
        _say(f"canary of {args.name} ended with it: v{outcome.event.details['canary_ended']} no longer holds it")
    return 0


def run_withdraw(args: argparse.Namespace) -> int:
    outcome = approvals.withdraw(args.name, reason=args.reason, incident=args.incident)
    event, state, policy = outcome.event, outcome.state, outcome.policy
    if not outcome.created:
        _say(f"{args.name} v{outcome.version} is already withdrawn (event #{event.seq}); nothing recorded")
        return 0
    aliases = event.details.get("aliases") or []
    answers = f", answering {event.details['incident']}" if event.details.get("incident") else ""
    _say(
        f"withdrew {args.name} v{outcome.version} from {' and '.join(aliases)} by {event.actor} "
        f"(event #{event.seq}{answers}); nothing holds {' or '.join(aliases)} now"
    )
    _say(
        f"{args.name} v{outcome.version} serves again only after fresh approvals "
        f"({policy.required_approvals(state.tier(policy))} needed; those recorded before event #{event.seq} "
        "no longer count)"
    )
    target = approvals.default_rollback_target(args.name)
    if target is not None and approvals.ALIAS_PRODUCTION in aliases:
        _say(
            f"to restore service with the previous production version still approved: "
            f"govern promote {args.name} {target}"
        )
    return 0


def history_rows(name: str) -> list[dict[str, Any]]:
    rows = []
    for event in approvals.history(name):
        rows.append(
            {
                "event": event.seq,
                "at": event.timestamp,
                "alias": ",".join(approvals.event_aliases(event)),
                "change": event.event_type,
                "version": event.subject.version,
                "from_version": event.details.get("from_version", ""),
                "by": event.actor,
                "role": event.role,
                "reason": event.reason,
                "incident": event.details.get("incident", ""),
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
        if row["change"] == "canary_ended":
            target = f"ended on v{row['version']}"
        elif row["change"] == "withdrawn":
            target = f"removed from v{row['version']}"
        else:
            target = f"-> v{row['version']}{moved}"
        answers = f" (answers {row['incident']})" if row["incident"] else ""
        _say(
            f"#{row['event']:<5} {row['at'][:19]}Z  {row['alias']:<10} {target}  "
            f"{row['change']} by {row['by']} ({row['role']}): {row['reason']}{answers}"
        )
    return 0


def show_facts(name: str, version: str) -> dict[str, Any]:
    """What ``govern show`` prints: the trail's state as truth, the registry's view beside it, and the drift."""
    from governance.identity import identity_label

    version = approvals.normalize_version(version)
    versions = registry_view.read_versions(name=name)
    # Not among them: read_version raises the one-line "not registered" (exit 2)
    mv = next((v for v in versions if str(v.version) == version), None) or registry_view.read_version(name, version)
    in_force = approvals.policy_in_force()
    policy = in_force.policy
    model = approvals.model_state(name)
    state = model.version(version)
    # The status and the approvals it needs are stated only under the policy the trail pins for the version, as
    # every action decides; never from an uncommitted or copied approvals file
    unpinned = approvals.policy_pin_message(state, in_force, approvals.policy_trail())
    tags = mv.tags or {}
    holders = model.alias_holders()
    registry_aliases = list(mv.aliases)
    drift = [
        d.line()
        # Only this version's served location is shown: only it is asked for (one request, not one per version)
        for d in approvals.find_drift(name, policy=in_force, versions=versions, served={version})
        if d.version == version or d.item.startswith("alias ")
    ]
    approvals_with_identity = [
        {
            "actor": actor,
            "decision": event.event_type,
            "event": event.seq,
            "identity": identity_label(event.identity_method),
        }
        for actor, event in sorted(state.decisions.items())
    ]
    voided = [
        {"actor": actor, "event": event.seq, "identity": identity_label(event.identity_method)}
        for actor, event in sorted(state.voided_approvals.items())
    ]
    summary = state.summary(policy)
    if unpinned:
        summary.update(status=approvals.NOT_STATED, approvals_required=None, risk_tier=state.risk_tier or None)
    return {
        **summary,
        "policy_not_pinned": unpinned,
        "provenance": _provenance_summary(name, version, state.registration, state.events),
        "version": version,
        "valid_approvals": None if unpinned else len(state.valid_approvers(policy)),
        "aliases": sorted(a for a, v in holders.items() if v == version),
        "registry_aliases": registry_aliases,
        "decisions": approvals_with_identity,
        "voided_approvals": voided,
        "run_id": mv.run_id or "",
        "source": mv.source or "",
        "lineage": {k: v for k, v in sorted(tags.items()) if k.startswith("lineage.")},
        "registry_view": {k: v for k, v in sorted(tags.items()) if k.startswith("governance.")},
        "drift": drift,
        "events": [{**e.model_dump(mode="json"), "identity": identity_label(e.identity_method)} for e in state.events],
    }


def _provenance_summary(name: str, version: str, registration: Any, events: list[Any]) -> dict[str, Any]:
    """The signature, statement and authenticity hash the trail recorded at registration, and the last
    reproduction. Recorded, not re-checked: ``govern verify`` (and the report) run the signature check."""
    evidence = dict(registration.evidence) if registration is not None else {}
    reproductions = [e for e in events if e.event_type == "reproduction_checked"]
    last = reproductions[-1] if reproductions else None
    if last is None:
        reproduced = "never reproduced"
    else:
        verdict = last.details.get("verdict") or "no verdict recorded"
        differs = "; ".join(last.details.get("differences") or []) or last.details.get("missing") or ""
        reproduced = f"{verdict}, {last.timestamp[:19]}Z by {last.actor} (event #{last.seq})"
        reproduced += f": {differs}" if verdict != "bit-exact" and differs else ""
    return {
        "model_sha256": evidence.get("model_sha256", ""),
        "signature_sha256": evidence.get("signature_sha256", ""),
        "statement_sha256": evidence.get("statement_sha256", ""),
        "signing_key": evidence.get("signing_key", ""),
        "check": f"govern verify {name} {version}",
        "reproduced": reproduced,
    }


def run_show(args: argparse.Namespace) -> int:
    facts = show_facts(args.name, args.version)
    if args.json:
        _say(json.dumps(facts, indent=2, sort_keys=True))
        return 0
    version = facts["version"]
    if facts["policy_not_pinned"]:
        _say(f"{args.name} v{version}: status not stated (risk tier {facts['risk_tier'] or 'not stated'})")
        recorded = facts["approvers"]
        _say(
            f"  approvals:    {len(recorded)} recorded ({', '.join(recorded) or '-'}); the number required is not "
            f"stated: {facts['policy_not_pinned']}"
        )
    else:
        _say(
            f"{args.name} v{version}: {facts['status']} "
            f"({approval_count(facts['valid_approvals'], facts['approvals_required'])}, risk tier {facts['risk_tier']})"
        )
    _say(f"  aliases:      {', '.join(facts['aliases']) or '-'}")
    _say(f"  gates:        {facts['gate_status'] or 'unknown'}")
    _say(f"  evaluation:   {facts['eval_status'] or 'unknown'}")
    for decision in facts["decisions"]:
        label = "approved by:" if decision["decision"] == "approved" else "rejected by:"
        _say(f"  {label:<14}{decision['actor']} ({decision['identity']}; event #{decision['event']})")
    if not facts["decisions"]:
        _say("  approved by:  -")
    if facts["withdrawn"]:
        _say(f"  withdrawn:    {facts['withdrawn']}")
    for approval in facts["voided_approvals"]:
        _say(
            f"  {'void:':<14}{approval['actor']} ({approval['identity']}; event #{approval['event']}; approved before "
            "the withdrawal, no longer counts)"
        )
    for tag, who in facts["people"].items():
        _say(f"  {tag + ':':<24}{who}")
    _say(f"  run:          {facts['run_id'] or '-'}")
    pv = facts["provenance"]
    _say(f"  weights:      sha256 {pv['model_sha256'] or 'not recorded'} (audit trail, at registration)")
    if pv["signature_sha256"]:
        _say(
            f"  signed:       key {pv['signing_key'][:16]}, signature {pv['signature_sha256'][:12]}, in-toto statement "
            f"{pv['statement_sha256'][:12]} (recorded; check now: {pv['check']})"
        )
    else:
        _say("  signed:       no (registered without a signature; nothing to verify its files by)")
    _say(f"  reproduced:   {pv['reproduced']}")
    _say("  lineage:")
    for key, value in facts["lineage"].items():
        _say(f"    {key} = {value}")
    _say("  audit trail:")
    for event in facts["events"]:
        _say(
            f"    #{event['seq']} {event['timestamp'][:19]}Z {event['event_type']} by {event['actor']} "
            f"({event['role']}; {event['identity']}): {event['reason']}"
        )
    for line in facts["drift"]:
        _say(
            f"  warning: MLflow disagrees with the audit trail ({line}); shown above is the trail's state; "
            f"repair: govern reconcile {args.name}"
        )
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


def run_policy_change(args: argparse.Namespace) -> int:
    from governance.approvals.policy_change import record_policy_change

    outcome = record_policy_change(args.old, reason=args.reason)
    event, change = outcome.event, outcome.change
    _say(event.details.get("diff", "").rstrip("\n"))
    what = f"approvals policy {change.old_sha256[:12]} -> {change.new_sha256[:12]}"
    done = "recorded" if outcome.created else "already recorded"
    standing = (
        f"in force since event #{change.approved_by.seq}: versions held to {change.old_sha256[:12]} are now held "
        f"to {change.new_sha256[:12]}"
        if change.approved_by is not None
        else f"not in force until {change.required} distinct approvers record it"
    )
    _say(
        f"{done}: {what} approved by {event.actor} (event #{event.seq}); "
        f"{len(change.approvers)} of {change.required} approvals ({', '.join(change.approvers)}); {standing}"
    )
    return 0
