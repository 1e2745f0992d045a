"""What must hold before any governed action touches the trail or the registry.

One function, :func:`require_preconditions`, called first by every action
(approve, reject, promote, canary, rollback, approve-objective, registration).
Checks that belong to other concerns — an open incident, an artifact whose
signature does not verify — are added here as one call each, so "may anything
act now?" is answered in one place.
"""

from __future__ import annotations

from governance import trail


def require_preconditions(action: str, name: str | None = None, version: str | None = None) -> None:
    """Refuse ``action`` (raising a :class:`governance.errors.GovernanceError`) when it must not run now.

    ``name``/``version`` identify the model version acted on, where there is one.
    """
    # Never act on a broken trail: a decision appended to a forged chain would inherit its lies.
    # The model's own anchor in MLflow counts too: a trail cut back behind it is broken.
    trail.require_intact(anchors=_model_anchors(name))
    # Never approve or deploy files that no longer match their signature and provenance statement
    if action in {"approve", "canary", "promote", "rollback"} and name and version:
        from governance.provenance import require_verified

        require_verified(name, version)
    # Never deploy a version with an open high-severity incident (the refusal is recorded)
    if action in {"promote", "canary"} and name and version:
        from governance.incidents import require_no_blocking_incident

        require_no_blocking_incident(action, name, version)


def _model_anchors(name: str | None) -> list[trail.Anchor]:
    from governance.approvals.mirror import registry_anchors

    if not name:
        return []
    anchors, _unreadable = registry_anchors(name)  # unreadable ones are `govern audit verify`'s to report
    return anchors
