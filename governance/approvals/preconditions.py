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

Trust boundary: the trail (verified first, against the registry's anchors)
and the trusted signing key; the registry's rows are only compared with what
the trail froze.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from governance import trail
from governance.approvals.checks import load_approvals_policy
from governance.approvals.denials import record_denial
from governance.errors import ArtifactTampered, GovernanceError, PolicyViolation
from governance.identity import Identity, current_identity
from governance.incident_state import BLOCKED_ACTIONS, RULE_ID, blocking_incidents

if TYPE_CHECKING:
    from governance.provenance import Verified

log = logging.getLogger(__name__)

#: Actions that put a version's files in front of users (or approve them for it): each verifies them first.
VERIFIED_ACTIONS = ("approve", "canary", "promote", "rollback")


def require_preconditions(
    action: str, name: str | None = None, version: str | None = None, *, identity: Identity | None = None
) -> None:
    """Refuse ``action`` (raising a :class:`governance.errors.GovernanceError`) when it must not run now.

    ``name``/``version`` identify the model version acted on, where there is one;
    ``identity`` is who acts (recorded with a refusal; default: the current user).
    """
    # Never act on a broken trail: a decision appended to a forged chain would inherit its lies.
    # The model's own anchor in MLflow counts too: a trail cut back behind it is broken.
    trail.require_intact(anchors=_model_anchors(name))
    # Never approve or deploy files that no longer match their signature and provenance statement,
    # nor files served from elsewhere than registered, nor an unsigned version once signing exists
    if action in VERIFIED_ACTIONS and name and version:
        require_verified_version(action, name, version, identity=identity, trail_checked=True)
    # Never deploy a version with an open high-severity incident (the refusal is recorded)
    if action in {"promote", "canary"} and name and version:
        require_no_blocking_incident(action, name, version, identity)


def require_no_blocking_incident(
    action: str, name: str | None, version: str | None, identity: Identity | None = None
) -> None:
    """Refuse ``promote``/``canary`` of a version with an open high-severity incident; the refusal is recorded.

    Incidents are read from the trail (:mod:`governance.incident_state`); :mod:`governance.incidents` opens them.
    """
    if action not in BLOCKED_ACTIONS or not name or not version:
        return
    blocking = blocking_incidents(trail.events(model=name, version=str(version)), str(version))
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
