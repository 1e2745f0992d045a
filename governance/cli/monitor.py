"""``govern monitor`` and ``govern incident``: post-deployment checks and the incident log of a version.

``govern monitor NAME VERSION --traffic FILE [--baseline FILE]`` judges a
window of production requests under ``policies/monitoring.yaml`` and records
the verdict (an MLflow run with the drift report, a ``monitoring_checked``
trail event). Exit 0 no deny rule fired, 1 a deny rule fired (each named with
observed value and threshold; a rollback target is recommended, never acted
on), 2 bad input. ``govern incident open|close|list`` keep the incident log:
trail events mirrored to the version's tags; an open high or critical incident
blocks promote and canary of that version. Opening one on a version that
serves prints the withdraw and rollback commands that apply, or withdraws it
at once where ``incidents.withdraw_on`` in ``policies/approvals.yaml`` says so.
"""

from __future__ import annotations

import argparse
import json

from governance.errors import EXIT_DENIED, EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    monitor = sub.add_parser(
        "monitor",
        help="judge a window of production traffic of a version; exit 0 passed, 1 denied, 2 bad input",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    monitor.add_argument("name")
    monitor.add_argument("version")
    monitor.add_argument("--traffic", required=True, metavar="FILE", help="request log (.jsonl or .parquet)")
    monitor.add_argument(
        "--baseline",
        metavar="FILE",
        help="an earlier window a signed production check of the model passed against a version's evaluation "
        "generations (any file for a rehearsal; "
        "default: the version's evaluation generations its signed evaluation bound)",
    )
    monitor.add_argument(
        "--rehearsal",
        action="store_true",
        help="record the window as a rehearsal: judged as usual, never counted as the version's production record",
    )
    monitor.add_argument("--policy", metavar="FILE", help="monitoring policy (default: policies/monitoring.yaml)")
    monitor.add_argument("--json", action="store_true", help="print the recorded summary as JSON")
    monitor.set_defaults(handler=run_monitor)

    incident = sub.add_parser("incident", help="open, close and list incidents of model versions")
    commands = incident.add_subparsers(dest="incident_command", required=True, parser_class=type(incident))
    opening = commands.add_parser("open", help="open an incident on a version (high and critical block promote/canary)")
    opening.add_argument("name")
    opening.add_argument("version")
    opening.add_argument("--severity", required=True, choices=["low", "medium", "high", "critical"])
    opening.add_argument("--reason", required=True, help="recorded in the audit trail")
    opening.add_argument("--evidence", metavar="FILE", help="a file whose SHA-256 is recorded (drift report, ticket)")
    opening.set_defaults(handler=run_incident_open)
    closing = commands.add_parser("close", help="close an open incident by its id (INC-<n>)")
    closing.add_argument("incident_id", metavar="ID")
    closing.add_argument("--reason", required=True, help="recorded in the audit trail")
    closing.add_argument(
        "--evidence", metavar="FILE", help="what shows it is resolved (a passing drift report, a ticket): its SHA-256"
    )
    closing.set_defaults(handler=run_incident_close)
    listing = commands.add_parser("list", help="incidents, newest first")
    listing.add_argument("name", nargs="?", help="only this model")
    listing.add_argument("--open", action="store_true", help="only open incidents")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=run_incident_list)


def _say(line: str) -> None:
    print(line)  # noqa: T201 - CLI output


def run_monitor(args: argparse.Namespace) -> int:
    from governance import registry, trail
    from governance.monitoring import check_window, record_check

    # Preflight before minutes of scoring: the version is registered and the trail verifies
    registry.get_version(args.name, args.version)
    trail.require_intact()
    result = check_window(
        args.name,
        args.version,
        args.traffic,
        baseline=args.baseline,
        policy_path=args.policy,
        rehearsal=args.rehearsal,
    )
    event = record_check(result)
    if args.json:
        _say(json.dumps({**result.summary(), "event": event.seq}, indent=2, sort_keys=True))
        return EXIT_OK if result.passed else EXIT_DENIED
    for violation in result.blocking + result.warnings:
        _say(violation.line())
    counts = f"{len(result.blocking)} deny, {len(result.warnings)} warn"
    span = result.window.span()
    if result.rehearsal:
        _say(f"rehearsal, not production evidence: {'; '.join(result.standing.reasons)}")
    _say(
        f"monitor {result.name} v{result.version}: {'REHEARSAL ' if result.rehearsal else ''}"
        f"{result.verdict.upper()}: {span['requests']} requests "
        f"({span['first']} to {span['last']}) vs {result.baseline.label}: {counts}; recorded as event #{event.seq}"
    )
    if result.recommendation:
        _say(f"recommendation: {result.recommendation}")
    return EXIT_OK if result.passed else EXIT_DENIED


def run_incident_open(args: argparse.Namespace) -> int:
    from governance import incidents

    incident = incidents.open_incident(
        args.name, args.version, severity=args.severity, reason=args.reason, evidence_file=args.evidence
    )
    _say(f"opened {incident.id} on {incident.name} v{incident.version} ({incident.severity}): {incident.reason}")
    if incident.blocks_deployment:
        _say(f"{incident.name} v{incident.version} cannot be promoted or canaried until {incident.id} is closed")
    if incident.withdrawn_event is not None:
        _say(
            f"withdrew {incident.name} v{incident.version} at once (incidents.withdraw_on in the approvals policy; "
            f"event #{incident.withdrawn_event}): it serves no alias now and is promoted again only after fresh "
            "approvals"
        )
    for line in incidents.response_commands(incident):
        _say(line)
    return EXIT_OK


def run_incident_close(args: argparse.Namespace) -> int:
    from governance import incidents

    incident = incidents.close_incident(args.incident_id, reason=args.reason, evidence_file=args.evidence)
    _say(f"closed {incident.id} on {incident.name} v{incident.version} ({incident.severity}) by {incident.closed_by}")
    return EXIT_OK


def run_incident_list(args: argparse.Namespace) -> int:
    from governance import incidents

    found = incidents.list_incidents(args.name, only_open=args.open)
    if args.json:
        _say(json.dumps([i.to_dict() for i in found], indent=2))
        return EXIT_OK
    if not found:
        _say("no incidents")
    for incident in found:
        closed = f"closed {incident.closed_at} by {incident.closed_by}" if incident.closed_at else "OPEN"
        withdrawn = (
            f" (v{incident.version} withdrawn by {incident.withdrawn_by}, event #{incident.withdrawn_event})"
            if incident.withdrawn_event is not None
            else ""
        )
        _say(
            f"{incident.id}  {incident.name} v{incident.version}  {incident.severity:<6}  {closed}  "
            f"opened {incident.opened_at} by {incident.opened_by}: {incident.reason}{withdrawn}"
        )
    return EXIT_OK
