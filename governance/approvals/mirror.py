"""The MLflow view of the trail: ``governance.*`` version tags and the aliases, written from trail state.

Trust boundary: MLflow is only displayed, never believed. Every tag written
here is a pure function of :mod:`governance.approvals.state`; a tag or alias
set outside ``govern`` is drift, found by :mod:`governance.approvals.reconcile`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from governance import registry
from governance.approvals.state import ALIAS_CANARY, ALIAS_PRODUCTION, ModelState, VersionState, alias_history
from governance.policy.approvals import ApprovalsPolicy

#: The governance view mirrored onto each model version (the MLflow UI shows these).
TAG_APPROVAL_STATUS = registry.TAG_APPROVAL_STATUS  # pending | approved | rejected | blocked
TAG_APPROVERS = "governance.approvers"
TAG_REJECTED_BY = "governance.rejected_by"
TAG_APPROVALS_REQUIRED = "governance.approvals_required"
TAG_GATE_STATUS = "governance.gate_status"
TAG_EVAL_STATUS = "governance.eval_status"
TAG_ALIAS_HISTORY = "governance.alias_history"
TAG_LAST_EVENT = "governance.last_event"
_ALIAS_HISTORY_MAX_CHARS = 4000


def view_tags(state: VersionState, policy: ApprovalsPolicy) -> dict[str, str]:
    """The ``governance.*`` tags a version shows in MLflow: a pure function of the trail."""
    history = alias_history(state.alias_events, state.version)
    encoded = json.dumps(history, separators=(",", ":"))
    while len(encoded) > _ALIAS_HISTORY_MAX_CHARS and history:
        history = history[1:]
        encoded = json.dumps(history, separators=(",", ":"))
    last = state.events[-1] if state.events else None
    return {
        TAG_APPROVAL_STATUS: state.status(policy),
        TAG_APPROVERS: ",".join(state.approvers),
        TAG_REJECTED_BY: ",".join(state.rejecters),
        TAG_APPROVALS_REQUIRED: str(policy.required_approvals(state.tier(policy))),
        TAG_GATE_STATUS: state.gate_status or "unknown",
        TAG_EVAL_STATUS: state.eval_status or "unknown",
        TAG_ALIAS_HISTORY: encoded,
        TAG_LAST_EVENT: f"#{last.seq} {last.event_type} {last.hash}" if last else "",
    }


def mirror(name: str, versions: Iterable[str], state: ModelState, policy: ApprovalsPolicy, *, aliases: bool) -> None:
    """Bring MLflow in line with the trail: tags of ``versions`` and, if asked, the aliases."""
    if aliases:
        for alias in (ALIAS_PRODUCTION, ALIAS_CANARY):
            holder = state.alias_holder(alias)
            if holder is not None:
                current = registry.version_by_alias(name, alias)
                if current is None or str(current.version) != holder:
                    registry.set_alias(name, alias, holder)
    for version in dict.fromkeys(v for v in versions if v):
        registry.mirror_version_tags(name, version, view_tags(state.version(version), policy))
