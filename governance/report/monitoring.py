"""The report's post-deployment facts: monitoring windows checked and incidents, from the audit trail only.

Each ``monitoring_checked`` event of the version is one window (when, what
window, the verdict, each rule's observed value against its threshold, the
MLflow run holding the drift report); each ``incident_opened`` /
``incident_closed`` pair is one incident (severity, who opened and closed it
and when, the SHA-256 of the evidence). The verdict
(:mod:`governance.report.verdict`) counts an open incident of a blocking
severity as a failed check.
"""

from __future__ import annotations

from typing import Any

from governance import trail
from governance.incidents import BLOCKING_SEVERITIES, fold_incidents


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
