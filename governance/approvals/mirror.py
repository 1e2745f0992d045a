"""The MLflow view of the trail: ``governance.*`` version tags and the aliases, written from trail state.

Trust boundary: MLflow is only displayed, never believed. Every tag written
here is a pure function of :mod:`governance.approvals.state`; a tag or alias
set outside ``govern`` is drift, found by :mod:`governance.approvals.reconcile`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from governance import registry, registry_view, registry_writes, trail
from governance.approvals.state import ModelState, VersionState, alias_history
from governance.errors import AuditError, PermissionDenied, RegistryError
from governance.policy.approvals import ApprovalsPolicy
from governance.trail import Anchor

#: The governance view mirrored onto each model version (the MLflow UI shows these).
TAG_APPROVAL_STATUS = registry.TAG_APPROVAL_STATUS  # pending | approved | rejected | blocked | withdrawn
TAG_APPROVERS = "governance.approvers"
TAG_REJECTED_BY = "governance.rejected_by"
TAG_APPROVALS_REQUIRED = "governance.approvals_required"
TAG_GATE_STATUS = "governance.gate_status"
TAG_EVAL_STATUS = "governance.eval_status"
TAG_ALIAS_HISTORY = "governance.alias_history"
TAG_LAST_EVENT = "governance.last_event"
#: On the registered model: the trail's head after the last append a governed action made
#: (seq, hash and, once events are signed, signature and key id) — an anchor outside the trail.
TAG_TRAIL_HEAD = "governance.trail_head"
_ALIAS_HISTORY_MAX_CHARS = 4000

log = logging.getLogger(__name__)


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
    """Bring MLflow in line with the trail: tags of ``versions`` and, if asked, the aliases
    (an alias the trail gives to nobody is removed; one it gives elsewhere is moved)."""
    if aliases:
        for alias, holder in state.alias_holders().items():
            current = registry_view.alias_holder(name, alias)
            if holder is None and current is not None:
                registry_writes.delete_alias(name, alias)
            elif holder is not None and current != holder:
                registry_writes.set_alias(name, alias, holder)
    for version in dict.fromkeys(v for v in versions if v):
        registry_writes.mirror_version_tags(name, version, view_tags(state.version(version), policy))


def write_trail_head(name: str) -> Anchor | None:
    """Write the trail's current head as the ``governance.trail_head`` tag of registered model ``name``.

    Called after every append a governed action makes, so the registry holds
    a signed anchor the trail database cannot rewrite: ``govern audit verify``
    hands every model's anchor to :func:`governance.trail.verify`, which then
    sees a truncated or rewritten trail.
    """
    head = trail.head()
    if head is None:
        return None
    anchor = Anchor.of(head)
    registry_writes.set_model_tag(name, TAG_TRAIL_HEAD, anchor.encode())
    return anchor


def anchor_committed_event(name: str) -> Anchor | None:
    """:func:`write_trail_head` after an event that stands whatever MLflow says (an incident, a monitoring
    verdict, a reproduction): every event kind moves the model's anchor, so `govern audit verify` never shows
    it behind. MLflow unreachable, or this user not allowed to write the model: logged, the anchor lags until
    the next governed action writes it; the committed event is never undone."""
    try:
        return write_trail_head(name)
    except (RegistryError, PermissionDenied) as exc:
        log.warning("%s: trail head not written to MLflow (%s); the next governed action writes it", name, exc)
        return None


def registry_anchors(name: str | None = None) -> tuple[list[Anchor], list[str]]:
    """Every registered model's ``governance.trail_head`` anchor, and a line per unreadable one."""
    anchors, problems = [], []
    for model, value in registry_view.model_tags(TAG_TRAIL_HEAD, name).items():
        source = f"MLflow tag {TAG_TRAIL_HEAD} of {model}"
        try:
            anchors.append(Anchor.decode(value, source))
        except AuditError as exc:
            problems.append(str(exc))
    return anchors, problems
