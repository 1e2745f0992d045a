"""The incident log of model versions: opened and closed in the audit trail, mirrored to the version's tags.

    govern incident open govllm-sft 3 --severity high --reason "..." [--evidence drift_report.html]
    govern incident close INC-42 --reason "..." [--evidence drift_report.html]
    govern incident list [NAME] [--open]

An incident is an ``incident_opened`` event (its id is ``INC-<event seq>``)
and, once resolved, an ``incident_closed`` event naming it. Who may open and
close is ``policies/approvals.yaml`` (``open_incident``, ``close_incident``);
a refusal is recorded as ``permission_denied`` like every other. Evidence is
recorded by SHA-256, never by content. An open incident of a blocking
severity (high, critical) refuses ``promote``, ``canary`` and ``rollback`` to
that version (:func:`governance.approvals.preconditions.require_no_blocking_incident`, which
reads incidents from the trail through :mod:`governance.incident_state`: the
approvals never import this module, which sits above them).

Opening one on a version that serves (holds ``production`` or ``canary``)
withdraws it at once where the approvals policy says so
(``incidents.withdraw_on``): a ``withdrawn`` event naming the incident,
recorded as the opener's and authorised by that setting (see
:func:`governance.approvals.withdraw`). Otherwise, for a blocking severity,
:func:`response_commands` names the ``govern withdraw`` and ``govern
rollback`` commands that apply; nothing is done without a person.

Trust: the trail is the truth; the ``governance.incidents_open`` tag is a view
rewritten from it after every change. The automatic withdrawal is decided by
the approvals policy the trail pins for the version (refused, and recorded,
under any other file).
"""

from __future__ import annotations

from pathlib import Path

from governance import registry, trail
from governance.errors import ConfigError, DataError, GovernanceError, PermissionDenied, PolicyViolation
from governance.identity import Identity, current_identity
from governance.incident_state import BLOCKED_ACTIONS as BLOCKED_ACTIONS
from governance.incident_state import BLOCKING_SEVERITIES as BLOCKING_SEVERITIES
from governance.incident_state import INCIDENT_ID
from governance.incident_state import RULE_ID as RULE_ID
from governance.incident_state import SEVERITIES as SEVERITIES
from governance.incident_state import TAG_INCIDENTS_OPEN as TAG_INCIDENTS_OPEN
from governance.incident_state import TAG_INCIDENTS_TOTAL as TAG_INCIDENTS_TOTAL
from governance.incident_state import Incident as Incident
from governance.incident_state import blocking_incidents as blocking_incidents
from governance.incident_state import find_incident as find_incident
from governance.incident_state import fold_incidents as fold_incidents
from governance.incident_state import incident_id as incident_id
from governance.incident_state import incident_tags as incident_tags
from governance.incident_state import list_incidents as list_incidents
from governance.lineage import sha256_file
from governance.trail import Event, Subject


def _mirror(name: str, version: str, events: list[Event]) -> None:
    registry.mirror_version_tags(name, version, incident_tags(events, version))


def _anchor(name: str) -> None:
    """The model's trail-head anchor moves with its incidents too (`govern audit verify` shows no lag)."""
    from governance.registry_anchors import anchor_committed_event

    anchor_committed_event(name)


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ConfigError("--reason: give a non-empty reason; it is recorded in the audit trail")
    return reason


def _policy(action: str, name: str, version: str, identity: Identity):
    """The approvals policy that decides ``action`` on ``name`` v``version``.

    Closing an incident re-opens deployment of the version, so like every version action it is decided by the
    policy the trail pins for the version (:func:`governance.approvals.policy_pin_message`): under a copied or
    uncommitted file it is refused, and the refusal recorded. Opening one raises an alarm and is decided by the
    policy in force: an alarm is never held back by a file, and one opened without cause is closed by a release
    manager under the pinned policy; a withdrawal it triggers is a version action, refused under any other file.
    """
    from governance.approvals import model_state, policy_in_force, policy_trail, require_pinned_policy

    in_force = policy_in_force()
    if action == "close_incident":  # refused and recorded, exactly as every version action is
        require_pinned_policy(action, name, version, model_state(name), in_force, policy_trail(), identity)
    return in_force.policy


def _require_role(action: str, name: str, version: str, identity: Identity) -> str:
    """The acting role for ``action`` under the pinned policy; otherwise the refusal is recorded and raised."""
    policy = _policy(action, name, version, identity)
    role = policy.acting_role(identity.user, action)
    if role is not None:
        return role
    allowed = ", ".join(policy.permissions.get(action, [])) or "no role"  # type: ignore[call-overload]
    held = ", ".join(policy.roles_of(identity.user)) or "none"
    words = action.replace("_", " ").replace("incident", "an incident")
    message = (
        f"{action} refused by {policy.rules.role_required.id}: {name} v{version}: {identity.user} holds no role "
        f"allowed to {words} (allowed: {allowed}; {identity.user}'s roles: {held})"
    )
    from governance.approvals import record_denial

    record_denial(action, name, version, identity=identity, policy=policy, message=message,
                  rule_ids=[policy.rules.role_required.id])  # fmt: skip
    raise PermissionDenied(message)


def open_incident(
    name: str,
    version: str | int,
    *,
    severity: str,
    reason: str,
    evidence_file: str | Path | None = None,
    identity: Identity | None = None,
) -> Incident:
    """Open an incident on a registered version; returns it (its id is ``INC-<event seq>``).

    Where ``incidents.withdraw_on`` covers its severity and the version serves,
    the version is withdrawn next (the returned incident names the event); a
    refused withdrawal is raised after the incident is recorded, saying so.
    """
    version = str(version)
    if severity not in SEVERITIES:
        raise ConfigError(f"--severity: {severity!r} is not one of {', '.join(SEVERITIES)}")
    reason = _reason(reason)
    evidence = _evidence(evidence_file)
    # Never append to a trail that does not verify
    trail.require_intact()
    identity = identity or current_identity()
    registry.get_version(name, version)  # the version must exist before anything is written
    role = _require_role("open_incident", name, version, identity)

    def mirror_open(event: Event, related: list[Event]) -> None:
        _mirror(name, version, [*related, event])

    event = trail.record(
        "incident_opened",
        actor=identity.user,
        identity_method=_method(identity),
        role=role,
        subject=Subject(model=name, version=version),
        reason=reason,
        evidence=evidence,
        details={"severity": severity, "identity": identity.source},
        before_commit=mirror_open,
    )
    _anchor(name)
    opened = next(i for i in fold_incidents([event]) if i.id == incident_id(event))
    return _withdraw_where_the_policy_says(opened, identity)


def _withdraw_where_the_policy_says(incident: Incident, identity: Identity) -> Incident:
    """Withdraw the incident's version when ``incidents.withdraw_on`` covers its severity and it serves."""
    from governance.approvals import model_state, withdraw

    setting = _policy("open_incident", incident.name, incident.version, identity).incidents
    if not setting.withdraws(incident.severity) or not model_state(incident.name).aliases_of(incident.version):
        return incident
    try:
        withdraw(
            incident.name,
            incident=incident.id,
            automatic=True,
            reason=(
                f"{incident.severity} incident {incident.id} ({_excerpt(incident.reason)}); "
                f"incidents.withdraw_on: {setting.withdraw_on}"
            ),
            identity=identity,
        )
    except GovernanceError as exc:
        raise type(exc)(
            f"opened {incident.id} on {incident.name} v{incident.version} ({incident.severity}), but the automatic "
            f"withdrawal (incidents.withdraw_on: {setting.withdraw_on}) did not happen: {exc}; a release manager "
            f"withdraws it: govern withdraw {incident.name} --incident {incident.id} --reason ..."
        ) from None
    return find_incident(incident.id)


def _excerpt(reason: str, limit: int = 300) -> str:
    """The start of an incident's reason, for the withdrawal's own (which the trail bounds)."""
    return reason if len(reason) <= limit else reason[:limit] + "…"


def response_commands(incident: Incident) -> list[str]:
    """The commands that take an incident's serving version out of service, for the one who opened it.

    Only for an open incident of a blocking severity whose version still holds
    an alias: ``govern withdraw`` always applies; ``govern rollback`` where an
    earlier production version is still approved to return to.
    """
    from governance.approvals import ALIAS_PRODUCTION, default_rollback_target, model_state

    if not incident.blocks_deployment or incident.withdrawn_event is not None:
        return []
    state = model_state(incident.name)
    held = state.aliases_of(incident.version)
    if not held:
        return []
    name = incident.name
    lines = [
        f"{name} v{incident.version} holds {' and '.join(held)}; to take it out of service (a release manager):",
        f'  govern withdraw {name} --incident {incident.id} --reason "..."   # nothing serves '
        f"{' or '.join(held)} until an approved version is promoted",
    ]
    if ALIAS_PRODUCTION in held:
        target = default_rollback_target(name, state)
        # A rollback to a version with an open blocking incident of its own is refused: never suggest one
        if target is not None and not blocking_incidents(state.events, target):
            lines.append(
                f'  govern rollback {name} --reason "..."   # production returns to v{target}, '
                "the previous production version still approved"
            )
    return lines


def _evidence(evidence_file: str | Path | None) -> dict[str, str]:
    """A file's name and SHA-256 (never its content), or nothing."""
    if evidence_file is None:
        return {}
    path = Path(evidence_file)
    if not path.is_file():
        raise DataError(f"{path}: evidence file not found")
    return {"evidence_file": path.name, "evidence_sha256": sha256_file(path)}


def close_incident(
    incident: str, *, reason: str, evidence_file: str | Path | None = None, identity: Identity | None = None
) -> Incident:
    """Close an open incident by id; closing one already closed is refused (exit 1) naming who closed it.

    ``evidence_file`` (what shows it is resolved) is recorded by name and SHA-256; without it the close rests on
    its reason alone, and the audit report says so.
    """
    if INCIDENT_ID.match(incident.strip()) is None:
        raise ConfigError(f"{incident!r} is not an incident id (INC-<number>, as `govern incident list` shows)")
    reason = _reason(reason)
    evidence = _evidence(evidence_file)
    trail.require_intact()
    identity = identity or current_identity()
    found = find_incident(incident)
    role = _require_role("close_incident", found.name, found.version, identity)

    def guard(events: list[Event]) -> Event | None:
        # Under the append lock: a concurrent close wins once, the other is refused
        current = next((i for i in fold_incidents(events) if i.id == found.id), None)
        if current is not None and not current.is_open:
            raise PolicyViolation(f"{found.id} is already closed (by {current.closed_by} at {current.closed_at})")
        return None

    def mirror_close(event: Event, related: list[Event]) -> None:
        _mirror(found.name, found.version, [*related, event])

    trail.record(
        "incident_closed",
        actor=identity.user,
        identity_method=_method(identity),
        role=role,
        subject=Subject(model=found.name, version=found.version),
        reason=reason,
        evidence={"incident_event": found.event_hash, **evidence},
        details={"incident": found.id, "severity": found.severity, "identity": identity.source},
        guard=guard,
        before_commit=mirror_close,
    )
    _anchor(found.name)
    return next(i for i in list_incidents(found.name) if i.id == found.id)


def _method(identity: Identity) -> str:
    """How the trail records who acted: authenticated by the MLflow server, or a local name nobody checked."""
    return "mlflow-basic-auth" if identity.source == "mlflow-basic-auth" else "local-unverified"
