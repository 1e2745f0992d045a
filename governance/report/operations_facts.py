"""The report's operations section: limitations, monitoring plan, retention, and limitations the facts imply.

From ``policies/report.yaml`` (compared with the hash the training lineage
recorded) and ``policies/monitoring.yaml``; the derived limitations follow
from the other sections (the PII scanner that ran, evaluation sizes,
warnings and waivers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from governance.approvals import policy_dir
from governance.errors import ConfigError
from governance.policy.review import Review
from governance.report.data_facts import pii_limitation
from governance.report.monitoring import monitoring_plan
from governance.report.policy import ReportPolicy
from governance.report.record import ReportFacts


def operations_facts(facts: ReportFacts, policy: ReportPolicy | None, review: Review | None, lineage: dict) -> None:
    """The operations section: report policy (vs training's), limitations, monitoring plan, retention.

    ``policy`` is what :func:`~governance.policy.load_stated_policy` parsed (the reviewed version wherever one
    exists) and ``review`` what it found of the working copy: both are stated, and a policy that is not the
    reviewed version is a gap.
    """
    if policy is None or review is None:
        facts.operations = {"policy": None, "provider": None}
        facts.gap("operations", "limitations, monitoring plan and retention: policies/report.yaml not available")
        return
    policy_path = review.path
    recorded = (lineage.get("policies") or {}).get(str(policy_path)) or next(
        (v for k, v in (lineage.get("policies") or {}).items() if Path(k).name == policy_path.name), None
    )
    facts.operations = {
        "policy": {"path": str(policy_path), "version": policy.version, "sha256": policy.sha256,
                   **stated_review(facts, "operations", policy.sha256, review)},
        "policy_at_training": recorded,
        "policy_changed_since_training": bool(recorded) and recorded.get("sha256") != policy.sha256,
        "limitations": [
            item.model_dump()
            for item in policy.limitations_for(facts.identity.get("method"), facts.identity.get("base_model"))
        ],
        "provider": policy.provider.model_dump(),
        "evidence_rules": policy.evidence.model_dump(),
        "monitoring": {
            **policy.monitoring.model_dump(),
            **_monitoring_plan(facts),
            "owner_members": _owner_members(facts, policy.monitoring.owner_role, policy_path),
        },
        "retention": [r.model_dump() for r in policy.retention],
        "derived_limitations": _derived_limitations(facts),
    }  # fmt: skip
    if not recorded:
        facts.gap(
            "operations", f"{policy_path}: not in the training lineage's policy hashes (trained before it existed)"
        )


def stated_review(facts: ReportFacts, section: str, stated_sha256: str, review: Review) -> dict[str, Any]:
    """How a stated policy was read, for the report: its review, which bytes are stated, and a gap unless reviewed.

    With an uncommitted change the reviewed version is stated (``stated_sha256``) and the working copy's hash is
    shown beside it; with no reviewed version at all (not a git checkout, not committed) the working copy is
    stated, and the gap says so: a reader then knows the text was not reviewed.
    """
    stated = {"review": review.status, "review_detail": review.describe()}
    if review.reviewed:
        return stated
    if stated_sha256 != review.sha256:
        stated["working_copy_sha256"] = review.sha256
        facts.gap(
            section,
            f"{review.path}: the working copy has an uncommitted change (sha256 {review.sha256[:16]}); "
            f"stated here is the reviewed version at {review.ref} ({(review.commit or '')[:12]}), not the change",
        )
    else:
        facts.gap(section, f"{review.path}: {review.describe()}; what is stated from it was not reviewed")
    return stated


def _monitoring_plan(facts: ReportFacts) -> dict[str, Any]:
    """The signals of ``policies/monitoring.yaml`` (what ``govern monitor`` checks), or a gap naming the file."""
    path = policy_dir() / "monitoring.yaml"
    try:
        plan = monitoring_plan(path)
    except ConfigError as exc:
        facts.gap("operations", f"monitoring plan: {exc}")
        return {"policy": None, "signals": []}
    policy = {k: plan[k] for k in ("path", "version", "sha256")}
    return {"policy": {**policy, **stated_review(facts, "operations", plan["sha256"], plan["review"])},
            "signals": plan["signals"]}  # fmt: skip


def _owner_members(facts: ReportFacts, role: str, policy_path: Path) -> list[str] | None:
    """Who holds the monitoring owner's role in the approvals policy; a gap when it is not a role there."""
    from governance.approvals import approvals_policy_path, load_approvals_policy

    # The approvals policy the report read the approvals under, else the project's
    path = Path(((facts.approvals or {}).get("policy") or {}).get("path") or approvals_policy_path())
    try:
        roles = load_approvals_policy(path).roles
    except ConfigError as exc:
        facts.gap("operations", f"monitoring owner {role!r}: its members not read ({exc})")
        return None
    if role not in roles:
        facts.gap(
            "operations",
            f"{policy_path}: monitoring.owner_role {role!r} is not a role of {path} "
            f"(roles: {', '.join(sorted(roles))}); nobody is recorded as answerable for monitoring",
        )
        return None
    return list(roles[role])


def _derived_limitations(facts: ReportFacts) -> list[str]:
    """Limitations that follow from the recorded facts themselves (scanner, counts, warnings, waivers)."""
    out = [pii_limitation(gate) for gate in facts.data.get("pii") or []]
    evaluation = facts.evaluation
    for ref in evaluation.get("datasets") or []:
        if ref.get("records") is not None:
            out.append(f"Evaluated on {ref['records']} held-out records of {ref.get('path')}.")
    for gate in facts.data.get("gates") or []:
        for violation in gate.get("violations") or []:
            if violation.get("waived_by"):
                out.append(f"Rule {violation['rule_id']} was waived by {violation['waived_by']} ({gate['stage']}).")
            elif violation.get("severity") == "warn":
                out.append(f"Warning {violation['rule_id']} ({gate['stage']}): {violation.get('message')}")
    for violation in evaluation.get("violations") or []:
        if violation.get("severity") == "warn" or violation.get("waived_by"):
            out.append(f"Evaluation {violation['severity']} {violation['rule_id']}: {violation.get('message')}")
    return out
