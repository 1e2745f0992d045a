"""The report's post-deployment facts: monitoring windows checked and incidents, from the audit trail only.

Each ``monitoring_checked`` event of the version is one window (when, what
window, the verdict, each rule's observed value against its threshold, the
MLflow run holding the drift report); each ``incident_opened`` /
``incident_closed`` pair is one incident (severity, who opened and closed it
and when, the SHA-256 of the evidence). The verdict
(:mod:`governance.report.verdict`) counts an open incident of a blocking
severity as a failed check.

Each window is judged again here for what it can be evidence of
(:func:`governance.monitoring.evidence.judge_window`, against the version's
registration in the trail), so a window recorded before that rule existed,
dated before the version was registered, is shown as *refused* and a
rehearsal as a *rehearsal*: only *production* windows count as the version's
record (``latest_production``). Each closed incident carries the comments a
reviewer would make (``concerns``): closed without any evidence, how soon, by
the person who deployed the version.

The monitoring *plan* (:func:`monitoring_plan`) is not prose: it lists the
rules of ``policies/monitoring.yaml`` — the file ``govern monitor`` checks
with — each with what it measures (the rule schema's description), its
thresholds and its severity, so the plan and the monitor cannot disagree.
Trust: the trail for what was checked; the policy file as it is now for the
plan (its version and SHA-256 are shown beside it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from governance import trail
from governance.incident_state import BLOCKING_SEVERITIES, fold_incidents
from governance.monitoring.evidence import REHEARSAL, judge_window
from governance.policy import Rule, load_stated_policy
from governance.policy.monitoring import MonitoringPolicy

#: What a verdict of each severity does (governance/monitoring/monitor.py: a deny recommends, never acts).
SEVERITY_ACTION = {
    "deny": (
        "deny: the window's verdict is denied, an incident may be opened on it, and govern monitor recommends "
        "the rollback target govern rollback would pick (rolling back stays a person's decision)"
    ),
    "warn": "warn: listed in the window's verdict for a person to read; does not deny the window",
}
#: Rule fields that are not thresholds or settings.
_RULE_KEYS = frozenset(Rule.model_fields)


def _threshold_text(rule: Rule) -> tuple[str, str]:
    """``(thresholds, settings)`` of one rule: its bounds with the schema's description, then the rest."""
    bounds, settings = [], []
    for key, spec in type(rule).model_fields.items():
        if key in _RULE_KEYS or key == "patterns":
            continue
        value = getattr(rule, key)
        text = f"{key} {'all' if value is None else value}" + (f" ({spec.description})" if spec.description else "")
        is_bound = key.startswith(("max_", "min_")) and key != "max_examples"
        (bounds if is_bound or key in ("alpha", "prompt_severity") else settings).append(text)
    if "patterns" in type(rule).model_fields:
        settings.append(f"{len(rule.patterns)} refusal patterns")  # type: ignore[attr-defined]
    return "; ".join(bounds), "; ".join(settings)


def monitoring_plan(policy_path: Path) -> dict[str, Any]:
    """The monitoring signals from ``policies/monitoring.yaml``: one per rule, in the policy's order.

    Raises :class:`~governance.errors.ConfigError` (naming the file and key) when the policy is
    missing or invalid; the caller reports it as a gap. Read as a stated policy
    (:func:`~governance.policy.load_stated_policy`): the reviewed version where the working copy has an
    uncommitted change; ``review`` says what the working copy is.
    """
    policy, review = load_stated_policy(policy_path, MonitoringPolicy)
    signals = []
    for rule in policy.all_rules():
        thresholds, settings = _threshold_text(rule)
        doc = (type(rule).__doc__ or "").strip().splitlines()
        signals.append(
            {
                "id": rule.id,
                "severity": rule.severity,
                "signal": doc[0] if doc else rule.id,
                "threshold": thresholds,
                "settings": settings,
                "action": SEVERITY_ACTION[rule.severity],
                "rationale": rule.rationale,
            }
        )
    return {
        "path": str(policy_path),
        "version": policy.version,
        "sha256": policy.sha256,  # of the bytes parsed: the reviewed version where the working copy differs
        "review": review,
        "min_window": policy.min_window,
        "signals": signals,
    }


#: Events of the version that put it in front of users: whoever recorded one deployed it.
DEPLOY_EVENTS = ("promoted", "canary_started")


def _check_row(e: trail.Event, subject: str, registered_at: str | None) -> dict[str, Any]:
    """One ``monitoring_checked`` event as the report shows it, with what it can be evidence of, judged now."""
    window = e.details.get("window") or {}
    recorded = e.details.get("evidence") or {}
    standing = judge_window(
        window,
        subject=subject,
        registered_at=registered_at,
        checked_at=e.timestamp,
        # The person's own --rehearsal; a window recorded as a rehearsal never becomes production evidence here
        rehearsal=bool(recorded.get("declared"))
        or (recorded.get("kind") == REHEARSAL and not window.get("rehearsal_records")),
    )
    baseline = e.details.get("baseline") or {}
    return {
        "event": e.seq,
        "at": e.timestamp,
        "by": e.actor,
        "verdict": e.details.get("verdict"),
        "window": window,
        "evidence": standing.to_json(),
        "baseline": baseline.get("label"),
        "baseline_requests": baseline.get("requests"),
        "policy_version": e.details.get("policy_version"),
        "rules": e.details.get("rules") or [],
        "blocking": e.details.get("blocking") or [],
        "recommendation": e.details.get("recommendation") or "",
        "mlflow_run": e.evidence.get("mlflow_run"),
        "traffic_sha256": e.evidence.get("traffic_sha256"),
    }


def _seconds_between(start: str | None, end: str | None) -> float | None:
    import datetime as dt

    if not start or not end:
        return None
    try:
        return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return None


def _duration(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def incident_concerns(incident: dict[str, Any], deployers: dict[str, list[str]]) -> list[str]:
    """What a reviewer would say about how an incident was handled, one sentence each (none when nothing)."""
    concerns = []
    if incident.get("closed_at"):
        open_for = incident.get("open_seconds")
        when = f" {_duration(open_for)} after it was opened" if open_for is not None else ""
        if "evidence_sha256" not in (incident.get("close_evidence") or {}):
            opened_with = "evidence_sha256" in (incident.get("evidence") or {})
            concerns.append(
                f"closed{when} with no evidence recorded"
                + (" that it was resolved" if opened_with else " (none when it was opened either)")
                + " (govern incident close --evidence FILE): that it was resolved rests on the closer's word"
            )
        closer = incident.get("closed_by")
        if closer in deployers:
            concerns.append(
                f"closed by {closer}, who {' and '.join(deployers[closer])} this version: the person answerable for "
                "deploying it judged the incident about it (no second person)"
            )
        elif closer and closer == incident.get("opened_by"):
            concerns.append(f"opened and closed by the same person ({closer}): no second person judged it")
    return concerns


def monitoring_facts(name: str, version: str, *, audit_url: str | None = None) -> dict[str, Any]:
    """Checks (each judged for what it can be evidence of), incidents with their concerns, for one version.

    ``latest_production`` is the newest window that counts as the version's production record (None when
    none does); ``blocking_incidents`` the open incidents of a blocking severity.
    """
    events = trail.events(
        model=name,
        version=str(version),
        event_types=["monitoring_checked", "incident_opened", "incident_closed", "model_registered", *DEPLOY_EVENTS],
        url=audit_url,
    )
    registered = next((e.timestamp for e in events if e.event_type == "model_registered"), None)
    subject = f"{name} v{version}"
    checks = [_check_row(e, subject, registered) for e in events if e.event_type == "monitoring_checked"]
    production = [c for c in checks if c["evidence"]["kind"] == "production"]
    deployers: dict[str, list[str]] = {}
    for e in events:
        if e.event_type in DEPLOY_EVENTS:
            words = deployers.setdefault(e.actor, [])
            word = f"{'promoted' if e.event_type == 'promoted' else 'canaried'} (event #{e.seq})"
            words.append(word)
    incidents = []
    for incident in fold_incidents(events):
        row = incident.to_dict()
        row["open_seconds"] = _seconds_between(incident.opened_at, incident.closed_at)
        row["concerns"] = incident_concerns(row, deployers)
        incidents.append(row)
    return {
        "registered_at": registered,
        "checks": checks,
        "latest_production": production[-1] if production else None,
        "not_evidence": [c["event"] for c in checks if c["evidence"]["kind"] != "production"],
        "incidents": incidents,
        "blocking_incidents": [i["id"] for i in incidents if i["open"] and i["severity"] in BLOCKING_SEVERITIES],
    }
