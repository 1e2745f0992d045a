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
    # Never act on a broken trail: a decision appended to a forged chain would inherit its lies
    trail.require_intact()
