"""The report's post-deployment facts: monitoring windows checked and incidents, from the audit trail only.

Each ``monitoring_checked`` event of the version is one window (when, what
window, the verdict, each rule's observed value against its threshold, the
MLflow run holding the drift report); each ``incident_opened`` /
``incident_closed`` pair is one incident (severity, who opened and closed it
and when, the SHA-256 of the evidence). The verdict
(:mod:`governance.report.verdict`) counts an open incident of a blocking
severity as a failed check.

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
from governance.lineage import sha256_file
from governance.policy import Rule, load_policy_file
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
    missing or invalid; the caller reports it as a gap.
    """
    policy = load_policy_file(policy_path, MonitoringPolicy)
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
        "sha256": sha256_file(policy_path),
        "min_window": policy.min_window,
        "signals": signals,
    }


def monitoring_facts(name: str, version: str, *, audit_url: str | None = None) -> dict[str, Any]:
    """``{"checks": [...], "incidents": [...], "blocking_incidents": [...]}`` for one version."""
    events = trail.events(
        model=name,
        version=str(version),
        event_types=["monitoring_checked", "incident_opened", "incident_closed"],
        url=audit_url,
    )
    checks = [
        {
            "event": e.seq,
            "at": e.timestamp,
            "by": e.actor,
            "verdict": e.details.get("verdict"),
            "window": e.details.get("window") or {},
            "baseline": (e.details.get("baseline") or {}).get("label"),
            "policy_version": e.details.get("policy_version"),
            "rules": e.details.get("rules") or [],
            "blocking": e.details.get("blocking") or [],
            "recommendation": e.details.get("recommendation") or "",
            "mlflow_run": e.evidence.get("mlflow_run"),
            "traffic_sha256": e.evidence.get("traffic_sha256"),
        }
        for e in events
        if e.event_type == "monitoring_checked"
    ]
    incidents = [i.to_dict() for i in fold_incidents(events)]
    return {
        "checks": checks,
        "incidents": incidents,
        "blocking_incidents": [i["id"] for i in incidents if i["open"] and i["severity"] in BLOCKING_SEVERITIES],
    }
