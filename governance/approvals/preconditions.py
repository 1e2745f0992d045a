"""What must hold before any governed action touches the trail or the registry.

One function, :func:`require_preconditions`, called first by every action
(approve, reject, promote, canary, rollback, approve-objective, registration).
Checks that belong to other concerns — an open incident (read from the trail
by :mod:`governance.incident_state`), an artifact whose signature does not
verify — are added here as one call each, so "may anything
act now?" is answered in one place.

A refused verification (files that differ, a version served from elsewhere
than it was registered, an unsigned version once signing is in force) is
recorded as ``permission_denied`` — for ``govern verify`` too
(:func:`require_verified_version`) — like every other refusal.

**The check covers what the decision relies on.** The trail check
(:func:`governance.trail.require_intact`) starts from the signed verified
checkpoint and trusts the events before it through its head alone. So the
events a decision reads — the model's registration, gate and evaluation
decisions, approvals, rejections, alias moves, withdrawals and incidents, and
the approvals policy's changes — are verified one by one now, however old
(:class:`governance.trail.verified.DecisionReads`): an old event edited with
the database's triggers dropped, used, and restored afterwards is refused
when it is used. :func:`require_preconditions` returns that check, and the
action reads its state through it (:func:`read_model_state`,
:func:`read_policy_trail`), under the append lock too.

Trust boundary: the trail (verified first, against the registry's anchors;
each event a decision reads verified again) and the trusted signing key; the
registry's rows are only compared with what the trail froze.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from governance import trail
from governance.approvals.checks import load_approvals_policy
from governance.approvals.denials import record_denial
from governance.approvals.state import (
    ALIAS_EVENTS,
    POLICY_SUBJECT,
    ModelState,
    PolicyChange,
    policy_changes,
)
from governance.errors import ArtifactTampered, GovernanceError, PolicyViolation
from governance.identity import Identity, current_identity
from governance.incident_state import BLOCKED_ACTIONS, RULE_ID, blocking_incidents
from governance.trail import Event
from governance.trail.verified import DecisionReads

if TYPE_CHECKING:
    from governance.provenance import Verified

log = logging.getLogger(__name__)

#: Actions that put a version's files in front of users (or approve them for it): each verifies them first.
VERIFIED_ACTIONS = ("approve", "canary", "promote", "rollback")
#: The events of a model a governed decision reads (approval state, aliases, incidents); each is verified
#: when read. Refusals, monitoring results, drift and reproduction records decide nothing.
DECISION_EVENTS = frozenset(
    {
        "model_registered",
        "gate_decision",
        "eval_decision",
        "approved",
        "rejected",
        "waiver_granted",
        "incident_opened",
        "incident_closed",
        *ALIAS_EVENTS,
    }
)


def require_preconditions(
    action: str, name: str | None = None, version: str | None = None, *, identity: Identity | None = None
) -> DecisionReads:
    """Refuse ``action`` (raising a :class:`governance.errors.GovernanceError`) when it must not run now.

    ``name``/``version`` identify the model version acted on, where there is one;
    ``identity`` is who acts (recorded with a refusal; default: the current user).
    Returns the check the action reads the trail through (:func:`read_model_state`).
    """
    # Never act on a broken trail: a decision appended to a forged chain would inherit its lies.
    # The model's own anchor in MLflow counts too: a trail cut back behind it is broken.
    verification = trail.require_intact(anchors=_model_anchors(name))
    # That check trusts events before its verified checkpoint; what this decision reads is verified now
    reads = DecisionReads(trail.open_trail(), verification, action)
    read_policy_trail(reads)
    model = read_model_state(reads, name) if name else None
    # Never approve or deploy files that no longer match their signature and provenance statement,
    # nor files served from elsewhere than registered, nor an unsigned version once signing exists
    if action in VERIFIED_ACTIONS and name and version:
        require_verified_version(action, name, version, identity=identity, trail_checked=True)
    # Never deploy (nor roll back to) a version with an open high-severity incident (the refusal is recorded)
    if model is not None and version:
        require_no_blocking_incident(action, name, version, identity, events=model.events)
    return reads


def read_model_state(reads: DecisionReads, name: str, events: Iterable[Event] | None = None) -> ModelState:
    """The trail's view of ``name`` from its stored events (or ``events``, already read), each that decides verified.

    Raises :class:`governance.errors.TrailBroken` naming the first event a
    decision would read that was edited, forged or unlinked, however old.
    """
    events = list(trail.events(model=name) if events is None else events)
    reads.require(e for e in events if e.event_type in DECISION_EVENTS)
    return ModelState(name, events)


def read_policy_trail(reads: DecisionReads) -> list[PolicyChange]:
    """Every recorded change of the approvals policy (what pins a version's policy), each event verified."""
    return policy_changes(reads.require(trail.events(objective=POLICY_SUBJECT, event_types=["policy_changed"])))


def require_no_blocking_incident(
    action: str,
    name: str | None,
    version: str | None,
    identity: Identity | None = None,
    *,
    events: Iterable[Event] | None = None,
) -> None:
    """Refuse ``promote``/``canary``/``rollback`` to a version with an open high-severity incident (recorded).

    Incidents are read from the trail (:mod:`governance.incident_state`), or
    from ``events`` already read and verified; :mod:`governance.incidents` opens them.
    """
    if action not in BLOCKED_ACTIONS or not name or not version:
        return
    found = trail.events(model=name, version=str(version)) if events is None else events
    blocking = blocking_incidents(found, str(version))
    if not blocking:
        return
    identity = identity or current_identity()
    ids = ", ".join(f"{i.id} ({i.severity}, opened by {i.opened_by} at {i.opened_at[:19]}Z)" for i in blocking)
    message = (
        f"{action} refused by {RULE_ID}: {name} v{version}: open incident {ids}; "
        f"close it first (govern incident close {blocking[0].id} --reason ...)"
    )
    record_denial(
        action,
        name,
        str(version),
        identity=identity,
        policy=load_approvals_policy(),
        message=message,
        rule_ids=[RULE_ID],
    )
    raise PolicyViolation(message)


def require_verified_version(
    action: str,
    name: str,
    version: str,
    *,
    identity: Identity | None = None,
    trail_checked: bool = False,
) -> Verified | None:
    """Verify the files ``models:/NAME/VERSION`` serves before ``action``; record and raise a refusal.

    ``action`` ``verify`` (``govern verify``) is strict: an unsigned version is
    refused as having nothing to verify. Any other action passes an unsigned
    version only while no version in the trail was ever signed
    (:func:`governance.provenance.require_verified`). The refusal is recorded as
    ``permission_denied`` (rule ``provenance.verified`` or
    ``provenance.signed``) and re-raised, prefixed with the action for an action.
    A trail that does not verify is refused first (nothing is recorded on it).
    """
    from governance.provenance import require_verified, verify_version
    from governance.provenance.version import RULE_SIGNED, RULE_VERIFIED

    if not trail_checked:
        trail.require_intact(anchors=_model_anchors(name))
    try:
        return verify_version(name, version) if action == "verify" else require_verified(name, version)
    except (ArtifactTampered, PolicyViolation) as exc:
        rule = RULE_SIGNED if isinstance(exc, PolicyViolation) else RULE_VERIFIED
        message = str(exc) if action == "verify" else f"{action} refused by {rule}: {exc}"
        _record_refusal(action, name, version, identity, message, rule)
        if action == "verify":
            raise
        raise type(exc)(message) from None


def _record_refusal(action: str, name: str, version: str, identity: Identity | None, message: str, rule: str) -> None:
    """Record a refused verification; a trail that cannot take it does not lift the refusal (logged)."""
    try:
        record_denial(
            action,
            name,
            version,
            identity=identity or current_identity(),
            policy=load_approvals_policy(),
            message=message,
            rule_ids=[rule],
        )
    except GovernanceError as exc:
        log.warning("%s v%s: the refused %s was not recorded in the audit trail (%s)", name, version, action, exc)


def _model_anchors(name: str | None) -> list[trail.Anchor]:
    from governance.registry_anchors import registry_anchors

    if not name:
        return []
    anchors, _unreadable = registry_anchors(name)  # unreadable ones are `govern audit verify`'s to report
    return anchors
