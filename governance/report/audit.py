"""The report's view of the audit trail: approvals, alias history, objectives, signed decisions, chain integrity.

The trail (:mod:`governance.trail`) is the truth for who approved what and
when; the registry only mirrors it. This module reads it for one version —
through :mod:`governance.approvals`' own reading of the trail, so the report
and ``govern approve``/``promote`` can never disagree on a count — and
returns plain dicts. When the trail or the approvals policy is not available
it returns gaps naming what is missing, so the report says "not recorded"
instead of guessing. Reading never creates a trail: a SQLite trail that does
not exist is reported as missing, not silently started empty.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from governance import approvals, trail
from governance.errors import ConfigError, GovernanceError
from governance.trail import Event

log = logging.getLogger(__name__)


def _approval_row(event: Event) -> dict[str, Any]:
    from governance.identity import identity_label

    return {
        "seq": event.seq,
        "at": event.timestamp,
        "actor": event.actor,
        "role": event.role,
        "decision": "approve" if event.event_type == "approved" else "reject",
        "reason": event.reason,
        "hash": event.hash,
        "identity": identity_label(event.identity_method),
        "identity_server": event.details.get("identity_server"),
        "policy_sha256": event.evidence.get("approvals_policy_sha256"),
    }


def _registry_drift(name: str, version: str, versions: list[Any] | None = None) -> dict[str, Any]:
    """MLflow against the trail for this model: current drift (aliases, this version's tags) and past repairs.

    The report shows the trail's state; this says where MLflow disagrees, so a
    reader of the registry UI knows not to believe it. ``versions``: the model's versions as the report read them.
    """
    found = approvals.find_drift(name, versions=versions, served={version})  # only this version's is shown
    drift = [
        {"item": d.item, "version": d.version, "registry": d.registry, "trail": d.trail}
        for d in found
        if d.version == version or d.item.startswith("alias ")
    ]
    repairs = [
        {"seq": e.seq, "at": e.timestamp, "actor": e.actor, "count": len(e.details.get("repaired") or [])}
        for e in approvals.reconciled_events(name)
    ]
    return {"checked": True, "drift": drift, "repairs": repairs}


def trail_missing(url: str) -> str | None:
    """Why the trail at ``url`` cannot be read without creating it, or None when it can."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) != ":memory:" and not path.is_file():
            return f"no audit trail at {path}"
    return None


def _rollback_target(model: approvals.ModelState, version: str, policy: Any) -> dict[str, Any]:
    """Where ``production`` goes back to: the earlier production version that still passes every rule."""
    holder = model.alias_holder(approvals.ALIAS_PRODUCTION)
    if holder is None:
        withdrawn = [e for e in model.alias_events(approvals.ALIAS_PRODUCTION) if e.event_type == "withdrawn"]
        if withdrawn:
            last = withdrawn[-1]
            return {
                "version": None,
                "detail": f"no version holds production since v{last.subject.version} was "
                f"{approvals.describe_withdrawal(last)}; an approved version is promoted to serve again",
            }
        return {"version": None, "detail": "no version has held production; nothing to roll back to"}
    if holder != version:
        return {
            "version": holder,
            "detail": f"v{holder} holds production now; it is what production returns to if this version fails",
        }
    role_rule = policy.rules.role_required.id
    candidates = model.rollback_candidates()
    if not candidates:
        return {"version": None, "detail": "none: no earlier version has held production"}
    for candidate in candidates:
        check = approvals.check_action("rollback", user="(report)", policy=policy, state=model.version(candidate))
        if not [v for v in check.blocking if v.rule_id != role_rule]:
            return {"version": candidate, "detail": f"v{candidate}: the previous production version still approved"}
    return {"version": None, "detail": "no earlier production version is still approved; rollback needs --to"}


def _decision_events(
    opened: trail.Trail, decisions: Sequence[tuple[str, str, str, Mapping[str, str]]]
) -> dict[str, dict[str, Any]]:
    """``stage:sha256`` -> the signed event that published that decision file (only those found)."""
    from governance.gates import REVIEWED_KEY, SUBJECT_PREFIX

    found: dict[str, dict[str, Any]] = {}
    for kind, stage, digest, evidence in decisions:
        for e in opened.events(objective=f"{SUBJECT_PREFIX}{stage}", event_types=[kind]):
            if (
                e.subject.objective_hash == digest
                and e.evidence.get("decision_sha256") == digest
                and all(e.evidence.get(k) == v for k, v in evidence.items())
            ):
                found[f"{stage}:{digest}"] = {
                    "seq": e.seq,
                    "event_type": e.event_type,
                    "actor": e.actor,
                    "at": e.timestamp,
                    "passed": e.details.get("passed"),
                    "policy_sha256": e.evidence.get("policy_sha256"),
                    "policy_path": e.details.get("policy_path"),
                    "reviewed_ref": e.evidence.get("reviewed_ref"),
                    "reviewed_commit": e.evidence.get("reviewed_commit"),
                    "reviewed_signed_by": e.evidence.get("reviewed_signed_by"),
                    # Every decisive file the event bound as reviewed: the policy, waivers, instruments (the judge)
                    "reviewed_files": sorted(
                        k.removeprefix(REVIEWED_KEY) for k in e.evidence if k.startswith(REVIEWED_KEY)
                    ),
                }
    return found


def audit_facts(
    name: str,
    version: str,
    *,
    risk_tier: str | None,
    approvals_policy: Path,
    reward_hashes: dict[str, str],
    stage: str | None,
    audit_url: str | None = None,
    decisions: Sequence[tuple[str, str, str, Mapping[str, str]]] = (),
    versions: list[Any] | None = None,
) -> dict[str, Any]:
    """Approvals, alias history, rollback target, objective approvals, signed decisions and chain status of one version.

    ``decisions`` are ``(event_type, stage, sha256, evidence)`` of the gate and
    eval decision files the version's lineage names, ``evidence`` what the
    event must also carry (an evaluation's ``model_sha256``);
    ``decision_events`` maps each found ``stage:sha256`` to the signed event
    its stage published (None when the trail cannot be read). ``versions``: the model's registered versions
    (:func:`governance.registry_view.read_versions`) when the caller read them; else they are read here.
    """
    gaps: dict[str, list[str]] = {}
    approvals_out: dict[str, Any] = {
        "available": False,
        "registered": False,
        "status": None,
        "decisions": [],
        "events": [],
        "required": None,
        "risk_tier": risk_tier,
        "risk_tier_source": "version tag lineage.risk_tier",
        "approved_by": [],
        "invalid_approvers": [],
        "rejected_by": [],
        "people": {},
        "declared": {},
        "alias_history": [],
        "withdrawals": [],
        "rollback_target": None,
        "serving": [],
        "gate_status": None,
        "eval_status": None,
        "policy": None,
        "registry": {"checked": False, "drift": [], "repairs": []},
    }
    chain: dict[str, Any] = {"available": False, "head": None, "verified": None, "events": None, "detail": None}
    out: dict[str, Any] = {
        "approvals": approvals_out,
        "chain": chain,
        "objective_approvals": {},
        "objectives_available": False,
        "decision_events": None,
        "audit_url": None,
        "gaps": gaps,
    }
    try:
        url = audit_url or trail.audit_url()
    except ConfigError as exc:
        gaps.setdefault("approvals", []).append(f"approvals and alias history: not recorded ({exc})")
        gaps.setdefault("integrity", []).append("audit-chain head and verification: audit trail location unknown")
        out["objectives_gap"] = "audit trail location unknown"
        return out
    out["audit_url"] = trail.redacted(url)
    missing = trail_missing(url)
    if missing:
        gaps.setdefault("approvals", []).append(f"approvals and alias history: not recorded ({missing})")
        gaps.setdefault("integrity", []).append(f"audit-chain head and verification: {missing}")
        out["objectives_gap"] = missing
        return out
    try:
        anchors, _unreadable = approvals.registry_anchors(name)
    except GovernanceError as exc:
        anchors = []
        gaps.setdefault("integrity", []).append(f"registry anchor of {name}: not read ({exc})")
    try:
        opened = trail.open_trail(url)
        verification = opened.verify(anchors=anchors)
        model_events = opened.events(model=name)
    except GovernanceError as exc:
        gaps.setdefault("approvals", []).append(f"approvals and alias history: trail unreadable ({exc})")
        gaps.setdefault("integrity", []).append(f"audit-chain verification: trail unreadable ({exc})")
        out["objectives_gap"] = "audit trail unreadable"
        return out
    chain.update(
        available=True,
        head=verification.head_hash,
        verified=verification.ok,
        events=verification.events,
        detail=verification.problem,
        verified_at=trail.now_utc(),
        findings=verification.findings,
        signatures=verification.signatures_verified,
        keys=[f"{key_id}: {trust}" for key_id, trust in sorted(verification.keys_used.items())],
        anchors=verification.anchors,
    )
    # Objectives: approved when the trail holds objective_approved for the exact hash
    if reward_hashes:
        if not stage:
            out["objectives_gap"] = "training stage not recorded, so objective approvals cannot be looked up"
        else:
            out["objectives_available"] = True
            for fn_name, digest in reward_hashes.items():
                found = [
                    e
                    for e in opened.events(objective=f"{stage}:{fn_name}", event_types=["objective_approved"])
                    if e.subject.objective_hash == digest
                ]
                if found:
                    e = found[0]
                    out["objective_approvals"][digest] = {
                        "approved_by": e.actor,
                        "role": e.role,
                        "approved_at": e.timestamp,
                        "reason": e.reason,
                        "source": e.details.get("source", "cli"),
                        "event": e.seq,
                        "evidence": dict(e.evidence),
                    }
    # Decisions: believed where the trail holds the event their stage published for exactly these bytes
    out["decision_events"] = _decision_events(opened, decisions)
    # Approvals: the approvals module's own reading of the trail
    model = approvals.ModelState(name, model_events)
    state = model.version(version)
    withdrawals = {e.seq: e for e in state.alias_events if e.event_type == "withdrawn" and e.subject.version == version}
    approvals_out.update(
        available=True,
        registered=state.registration is not None,
        # The model hash the signed registration event froze (a child version's chain is matched against it)
        registered_model_sha256=state.registration.evidence.get("model_sha256") if state.registration else None,
        events=[
            {
                "seq": e.seq,
                "at": e.timestamp,
                "action": e.event_type,
                "actor": e.actor,
                "role": e.role,
                "reason": e.reason,
                "hash": e.hash,
                # The approvals policy the event was decided under (the pin it was checked against)
                "policy_sha256": e.evidence.get("approvals_policy_sha256"),
            }
            for e in state.events
        ],
        decisions=[_approval_row(e) for e in state.events if e.event_type in ("approved", "rejected")],
        reproductions=[
            {
                "at": e.timestamp,
                "actor": e.actor,
                "verdict": e.details.get("verdict"),
                "commit": e.evidence.get("commit"),
                "machine": e.details.get("machine"),
                "differences": "; ".join(e.details.get("differences") or []) or e.details.get("missing") or "",
            }
            for e in state.events
            if e.event_type == "reproduction_checked"
        ],
        gate_status=state.gate_status,
        eval_status=state.eval_status,
        alias_history=[
            {
                "alias": h["alias"],
                "event": h["change"],
                "actor": h["by"],
                "at": h["at"],
                "detail": f"event #{h['event']}"
                + (f": {approvals.describe_withdrawal(withdrawals[h['event']])}" if h["event"] in withdrawals else ""),
            }
            for h in approvals.alias_history(state.alias_events, version)
        ],
        # "withdrawn on … by … because …", with the approvals it voided (they no longer count)
        withdrawals=[
            {
                "event": e.seq,
                "at": e.timestamp,
                "actor": e.actor,
                "aliases": list(approvals.event_aliases(e)),
                "incident": e.details.get("incident"),
                "automatic": e.details.get("automatic"),
                "line": approvals.describe_withdrawal(e),
            }
            for e in withdrawals.values()
        ],
        voided_approvers=sorted(state.voided_approvals),
        # The aliases the trail says this version holds now (production first): what it serves
        serving=model.aliases_of(version),
    )
    if state.registration is None:
        gaps.setdefault("approvals", []).append(
            f"registration: the audit trail holds no model_registered event for {name} v{version}"
        )
    else:
        changes = approvals.policy_changes(
            opened.events(objective=approvals.POLICY_SUBJECT, event_types=["policy_changed"])
        )
        pinned, via = approvals.pinned_policy(state.registration, changes)
        approvals_out["policy_pin"] = {
            "pinned_sha256": pinned,
            "since_event": via.seq if via is not None else None,
            "changes": [
                {
                    "old_sha256": c.old_sha256,
                    "new_sha256": c.new_sha256,
                    "approvers": c.approvers,
                    "approved_event": c.approved_by.seq if c.approved_by is not None else None,
                }
                for c in changes
            ],
        }
    approvals_out["people"] = dict(state.people)  # frozen at registration: known whatever the policy
    if not approvals_policy.is_file():
        gaps.setdefault("approvals", []).append(f"required approvers per risk tier: {approvals_policy} not available")
        approvals_out["approved_by"] = state.approvers
        approvals_out["rejected_by"] = state.rejecters
        return out
    try:
        policy = approvals.load_approvals_policy(approvals_policy)
    except ConfigError as exc:
        gaps.setdefault("approvals", []).append(f"required approvers per risk tier: {exc}")
        return out
    pinned = (approvals_out.get("policy_pin") or {}).get("pinned_sha256")
    if pinned and policy.sha256 != pinned:
        # Another file than the one the version is held to (an uncommitted edit, a copy): every action refuses under
        # it (approval.policy_pinned), so the report states no approvals status from it either
        approvals_out["policy"] = {"path": str(approvals_policy), "version": policy.version, "sha256": policy.sha256}
        approvals_out["policy_not_pinned"] = {"in_force": policy.sha256, "pinned": pinned}
        approvals_out["approved_by"] = state.approvers
        approvals_out["rejected_by"] = state.rejecters
        gaps.setdefault("approvals", []).append(
            f"required approvers per risk tier: {approvals_policy} (sha256 {str(policy.sha256)[:12]}) is not the "
            f"approvals policy {name} v{version} is held to (sha256 {pinned[:12]}); the status is not stated from it"
        )
        return out
    tier = state.tier(policy)
    valid = state.valid_approvers(policy)
    approvals_out.update(
        policy={"path": str(approvals_policy), "version": policy.version, "sha256": policy.sha256},
        status=state.status(policy),
        risk_tier=tier,
        risk_tier_source="frozen in the audit trail at registration" if state.risk_tier else "policy default",
        # What the model_registered event froze, before any raise by the policy in force (the tag must say this)
        registered_risk_tier=state.risk_tier,
        required=policy.required_approvals(tier),
        approved_by=valid,
        invalid_approvers=[a for a in state.approvers if a not in valid],
        rejected_by=state.rejecters,
        people=dict(state.people),
        declared=dict(state.declared),
    )
    target = _rollback_target(model, version, policy)
    approvals_out["rollback_target"] = (f"v{target['version']} — " if target["version"] else "") + target["detail"]
    approvals_out["rollback_version"] = target["version"]
    try:
        approvals_out["registry"] = _registry_drift(name, version, versions)
    except GovernanceError as exc:
        approvals_out["registry"] = {"checked": False, "drift": [], "repairs": []}
        gaps.setdefault("integrity", []).append(f"registry drift: not checked ({exc})")
    return out
