"""The MLflow view of the trail: ``governance.*`` version tags, the ``lineage.*`` tags registration froze, and the
aliases, written from trail state.

Trust boundary: MLflow is only displayed, never believed. Every tag written
here is a pure function of :mod:`governance.approvals.state`; a tag or alias
set outside ``govern`` is drift, found by :mod:`governance.approvals.reconcile`.
The trail-head anchor on the registered model is :mod:`governance.registry_anchors`'.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from governance import registry, registry_view, registry_writes
from governance.approvals.state import ModelState, VersionState, alias_history
from governance.policy.approvals import ApprovalsPolicy

# The trail-head anchor lives a layer down (incidents, monitoring and reproduction move it too); named here as well
from governance.registry_anchors import TAG_TRAIL_HEAD as TAG_TRAIL_HEAD
from governance.registry_anchors import anchor_committed_event as anchor_committed_event
from governance.registry_anchors import registry_anchors as registry_anchors
from governance.registry_anchors import write_trail_head as write_trail_head

#: The governance view mirrored onto each model version (the MLflow UI shows these).
TAG_APPROVAL_STATUS = registry.TAG_APPROVAL_STATUS  # pending | approved | rejected | blocked | withdrawn
TAG_APPROVERS = "governance.approvers"
TAG_REJECTED_BY = "governance.rejected_by"
TAG_APPROVALS_REQUIRED = "governance.approvals_required"
TAG_GATE_STATUS = "governance.gate_status"
TAG_EVAL_STATUS = "governance.eval_status"
TAG_ALIAS_HISTORY = "governance.alias_history"
TAG_LAST_EVENT = "governance.last_event"
_ALIAS_HISTORY_MAX_CHARS = 4000

log = logging.getLogger(__name__)


#: The tags only an approvals policy decides: stated only under the policy the trail pins for the version.
POLICY_DEPENDENT_TAGS = frozenset({TAG_APPROVAL_STATUS, TAG_APPROVALS_REQUIRED})


def view_tags(state: VersionState, policy: ApprovalsPolicy) -> dict[str, str]:
    """The ``governance.*`` tags a version shows in MLflow, and the lineage tags its registration froze
    (:func:`frozen_lineage_tags`): a pure function of the trail."""
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
        **frozen_lineage_tags(state, policy),
    }


def frozen_lineage_tags(state: VersionState, policy: ApprovalsPolicy) -> dict[str, str]:
    """The ``lineage.*`` tags as the ``model_registered`` event froze them: the risk tier registered (before any
    raise by a policy), the people (separation of duties), the method and the registrant's declared uses. The
    registration read them from these tags; approvals and the report go by the frozen values, so MLflow shows
    those too, and a tag edited after registration is drift (``govern show`` warns, ``govern reconcile``
    restores it). Nothing for a version the trail never registered; a value the event did not freeze (a
    version registered before it froze that kind) is not stated."""
    if state.registration is None:
        return {}
    frozen = {**state.people, **state.declared}
    if state.risk_tier:
        frozen[policy.rules.min_approvers.risk_tier_tag] = state.risk_tier
    if state.method:
        frozen["lineage.method"] = state.method
    return frozen


def mirror(name: str, versions: Iterable[str], state: ModelState, policy: ApprovalsPolicy, *, aliases: bool) -> None:
    """Bring MLflow in line with the trail: tags of ``versions`` and, if asked, the aliases
    (an alias the trail gives to nobody is removed; one it gives elsewhere is moved)."""
    if aliases:
        in_registry = registry_view.alias_holders(name)  # one read: each write below changes only its own alias
        for alias, holder in state.alias_holders().items():
            current = in_registry.get(alias)
            if holder is None and current is not None:
                registry_writes.delete_alias(name, alias)
            elif holder is not None and current != holder:
                registry_writes.set_alias(name, alias, holder)
    touched = list(dict.fromkeys(v for v in versions if v))
    if not touched:
        return
    current = registry_view.version_tags(name)  # one read for every version mirrored
    for version in touched:
        registry_writes.mirror_version_tags(name, version, view_tags(state.version(version), policy), current=current)
