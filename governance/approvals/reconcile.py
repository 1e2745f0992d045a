"""Registry drift: where MLflow's aliases and ``governance.*`` tags disagree with the trail, and the repair.

Trust boundary: the trail (with the approvals policy) says what each alias and
tag must be; MLflow only shows it. Anyone with write access to MLflow can set
an alias or a tag with the plain client — deployments read
``models:/NAME@production`` — so :func:`find_drift` compares every registered
model with the state the trail implies, and :func:`reconcile` restores MLflow
from the trail and records what it repaired as a ``registry_reconciled``
event (the forgery stays on record after the repair).

The version's served location — ``source``, ``storage_location`` (the
download URI ``models:/NAME/VERSION`` reads) and ``run_id`` — is compared with
the values its ``model_registered`` event froze. That drift is reported, never
repaired here: MLflow has no call that sets those columns, and pointing them
back is a repair of the store itself. Until then every governed action on the
version refuses it (:func:`governance.provenance.require_verified`).

MLflow 3.x webhooks (SQL backend) announce alias and tag changes, but they
fire only from the tracking server's REST handlers: a client of the embedded
SQLite store, or anyone writing the backend database, bypasses them. Drift is
found as it happens by ``govern watch`` (governance/watch/, server mode) and otherwise by
polling: run ``govern audit verify`` on a schedule (docs/explanation/trail-at-scale.md).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

from governance import registry_view, trail
from governance.approvals.checks import PolicyInForce, policy_in_force, policy_pin_message, require_project_policy
from governance.approvals.mirror import (
    POLICY_DEPENDENT_TAGS,
    TAG_LAST_EVENT,
    mirror,
    view_tags,
    write_trail_head,
)
from governance.approvals.preconditions import require_preconditions
from governance.approvals.state import ModelState, PolicyChange, model_state, policy_trail
from governance.errors import PermissionDenied, RegistryError
from governance.identity import Identity, current_identity
from governance.trail import Event, Subject

log = logging.getLogger(__name__)

#: Registry columns of a version frozen at registration (:class:`governance.registry_view.ServedLocation`).
SERVED_FIELDS = registry_view.ServedLocation.FIELDS
#: Tags compared for drift. ``governance.last_event`` is a display pointer (a refusal appends an
#: event without re-tagging), so it is rewritten by a repair but not reported as drift.
_NOT_COMPARED = {TAG_LAST_EVENT}
_ABSENT = "(absent)"


@dataclass(frozen=True)
class Drift:
    """One disagreement between MLflow and the trail."""

    model: str
    version: str
    item: str  # "alias production", "tag governance.approval_status", "source", "storage_location", "run_id"
    registry: str
    trail: str

    def line(self) -> str:
        where = f"{self.model} v{self.version}" if self.version else self.model
        return f"{where}: {self.item}: registry says {self.registry}, trail says {self.trail}"

    @property
    def repairable(self) -> bool:
        """Whether :func:`reconcile` restores it (aliases and tags); a served location it only reports."""
        return self.item not in SERVED_FIELDS

    @property
    def repair(self) -> str:
        """How to repair it, for a message."""
        if self.repairable:
            return f"govern reconcile {self.model}"
        return f"set {self.item} of {self.model} v{self.version} back in the MLflow store; govern reconcile cannot"


def find_drift(
    name: str | None = None,
    *,
    policy: PolicyInForce | None = None,
    versions: list[Any] | None = None,
    served: bool | Collection[str] = True,
) -> list[Drift]:
    """Every mismatch between MLflow (aliases, ``governance.*`` version tags, and with ``served`` each
    version's ``source``/``storage_location``/``run_id``) and the trail's state.

    ``policy`` is the approvals policy as read (default: the one in force). The tags that only a policy decides
    (the status, the approvals required) are compared only for a version that policy is pinned for: under
    another (an uncommitted edit, a copy) the trail's state is not known, so MLflow's tag is not called drift.
    ``versions`` are :func:`governance.registry_view.read_versions`' answer when the caller already has it.
    Against a tracking server, ``served`` costs one download-URI request per registered version; a collection
    of version numbers checks only theirs (a caller that shows one version's drift).
    """
    policy = policy or policy_in_force()
    changes = policy_trail()
    versions = registry_view.read_versions(name=name) if versions is None else versions
    by_model: dict[str, list[Any]] = {}
    for mv in versions:
        by_model.setdefault(mv.name, []).append(mv)
    if name is not None:
        by_model.setdefault(name, [])
    drift: list[Drift] = []
    for model, model_versions in sorted(by_model.items()):
        drift.extend(_model_drift(model, model_versions, model_state(model), policy, changes, served=served))
    return drift


def _model_drift(
    model: str,
    versions: list[Any],
    state: ModelState,
    policy: PolicyInForce,
    changes: list[PolicyChange],
    *,
    served: bool | Collection[str] = True,
) -> list[Drift]:
    out: list[Drift] = []
    in_registry: dict[str, str | None] = {}
    for mv in versions:
        for alias in mv.aliases or []:
            in_registry[alias] = str(mv.version)
    for alias, holder in state.alias_holders().items():
        found = in_registry.get(alias)
        if found != holder:
            out.append(
                Drift(
                    model=model,
                    version=found or holder or "",
                    item=f"alias {alias}",
                    registry=f"v{found}" if found else "no version",
                    trail=f"v{holder}" if holder else "no version",
                )
            )
    for mv in sorted(versions, key=lambda v: int(v.version)):
        version = str(mv.version)
        tags = mv.tags or {}
        version_state = state.version(version)
        expected = view_tags(version_state, policy.policy)
        unstated = POLICY_DEPENDENT_TAGS if policy_pin_message(version_state, policy, changes) else set()
        for key, value in expected.items():
            if key in _NOT_COMPARED or key in unstated:
                continue
            current = tags.get(key)
            if current is None and version_state.registration is None:
                continue  # a version the trail never registered claims nothing by lacking a tag
            if current != value:
                out.append(
                    Drift(
                        model=model,
                        version=version,
                        item=f"tag {key}",
                        registry=_short(current),
                        trail=_short(value),
                    )
                )
        checks_served = served if isinstance(served, bool) else version in served
        if checks_served and version_state.registration is not None:
            # Where models:/NAME/VERSION reads the files, against where it read them when registered (in full:
            # a shortened path would hide where the files now come from)
            location = registry_view.served_location_of(mv)
            for field, now, recorded in location.changes_from(version_state.registration.details):
                out.append(
                    Drift(
                        model=model, version=version, item=field, registry=now or "(empty)", trail=recorded or "(empty)"
                    )
                )
    return out


def _short(value: str | None) -> str:
    if value is None:
        return _ABSENT
    if value == "":
        return "(empty)"
    return value if len(value) <= 60 else value[:57] + "..."


class _NoLongerDrifting(Exception):
    """Under the append lock the drift seen before it was gone or different: a concurrent action's mirror."""


def reconcile(
    name: str, *, identity: Identity | None = None, reason: str = "", versions: list[Any] | None = None
) -> tuple[list[Drift], Event | None]:
    """Restore MLflow's view of ``name`` (aliases, tags) from the trail; record what was repaired (nothing when
    no drift). A changed served location is not repaired (see the module docstring): ``find_drift`` reports it.
    ``versions``: :func:`governance.registry_view.read_versions`' answer for ``name`` when the caller has it.

    Returns the drift found and the ``registry_reconciled`` event (None when
    there was nothing to repair). Drift is confirmed again under the trail's
    append lock — a concurrent action writes MLflow just before its event
    commits, which looks like drift from outside the lock — and the repair
    runs before the event commits: if MLflow refuses, nothing is recorded.
    """
    # The tags written mirror the trail's state under the policy the project is held to, never a copied or
    # uncommitted one (it would write "approved" for a version no action treats as approved)
    in_force = require_project_policy("reconcile")
    policy, changes = in_force.policy, policy_trail()
    # A served location is reported, not repaired here
    drift = find_drift(name, policy=in_force, versions=versions, served=False)
    if not drift:
        return [], None
    require_preconditions("reconcile", name)
    identity = identity or current_identity()

    def still_drifting(events: list[Event]) -> None:
        versions = registry_view.read_versions(name=name)
        if _model_drift(name, versions, ModelState(name, events), in_force, changes, served=False) != drift:
            raise _NoLongerDrifting()
        return None

    def repair(event: Event, related: list[Event]) -> None:
        versions = [str(v.version) for v in registry_view.read_versions(name=name)]
        mirror(name, versions, ModelState(name, related), policy, aliases=True)

    try:
        event = trail.record(
            "registry_reconciled",
            actor=identity.user,
            role=",".join(policy.roles_of(identity.user)) or "none",
            subject=Subject(model=name),
            reason=reason or f"restored {len(drift)} alias/tag value(s) of {name} from the audit trail",
            identity_method=identity.method,
            evidence={},
            details={**identity.details(), "repaired": [asdict(d) for d in drift]},
            guard=still_drifting,
            before_commit=repair,
        )
    except _NoLongerDrifting:
        log.info("%s: drift seen outside the lock was a concurrent action's mirror; nothing repaired", name)
        return [], None
    with contextlib.suppress(RegistryError, PermissionDenied):  # the repair is committed; the anchor can lag
        write_trail_head(name)
    for d in drift:
        log.warning("reconciled %s", d.line())
    return drift, event


def reconciled_events(name: str) -> list[Event]:
    """The ``registry_reconciled`` events of ``name``: every repair, with what was found."""
    return trail.events(model=name, event_types=["registry_reconciled"])
