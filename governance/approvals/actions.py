"""Actions that write the trail and mirror to MLflow: approve, reject, promote, canary, rollback, withdraw.

Write order (so a failure never leaves half a decision, and a re-run neither
fails nor duplicates):

0. **Preconditions** — :func:`governance.approvals.preconditions.require_preconditions`:
   the trail must verify before anything acts on it, and so must every event
   the decision reads, however old (the model's events and the policy's
   changes are read through the check it returns, under the lock too).
1. **Preflight** — policy loaded and hashed, identity verified against the
   server it pins, the version read from the registry. An unreachable
   registry stops here: exit 2, nothing written. Then the **policy pin**: the
   hash of the policy just loaded must be the one the trail holds the version
   to (its registration's, moved on only by an approved ``policy_changed``);
   otherwise the action is refused and the refusal recorded, whatever the
   loaded file says about itself. Actions that find their version in the
   trail (rollback, canary-end, withdraw) check the actor's role first, so
   someone without it is told that, not what the aliases are.
2. **Decide under the trail's append lock** — the guard re-reads the trail,
   applies the policy, and returns the existing event when the action is
   already in force (the same reviewer approving twice, promoting the version
   that already holds ``production``): nothing is appended.
3. **Apply to MLflow, then commit** — the new event is inserted, the alias
   and tags are written, and only then is the trail transaction committed. If
   MLflow refuses or is unreachable, the event is rolled back: the trail does
   not claim a promotion that did not happen. The tags are a pure function of
   the trail, so a later mirror rewrites any that were half written.
4. **Idempotent re-run** — when step 2 found the action already recorded (a
   commit that failed after MLflow was changed, or a plain repeat), only the
   mirror runs, bringing MLflow back in line with the trail.
"""

from __future__ import annotations

import contextlib
import logging
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from governance import registry, registry_view, trail
from governance.approvals.checks import (
    POLICY_PINNED_RULE,
    Check,
    PolicyInForce,
    _refusal_error,
    _Refused,
    check_action,
    default_rollback_target,
    load_approval_waivers,
    policy_dir,
    policy_in_force,
    policy_pin_message,
    project_policy_pin,
    role_violation,
)
from governance.approvals.denials import record_denial
from governance.approvals.mirror import mirror, write_trail_head
from governance.approvals.preconditions import (
    read_model_state,
    read_policy_trail,
    require_preconditions,
)
from governance.approvals.state import (
    ALIAS_CANARY,
    ALIAS_ENDING_EVENTS,
    ALIAS_EVENTS,
    ALIAS_PRODUCTION,
    ModelState,
    PolicyChange,
    VersionState,
    model_state,
    normalize_version,
)
from governance.errors import ConfigError, PermissionDenied, PolicyViolation, RegistryError
from governance.gates import Violation, Waiver
from governance.identity import Identity, current_identity
from governance.lineage import sha256_file
from governance.policy.approvals import ApprovalsPolicy
from governance.trail import Event, Subject

if TYPE_CHECKING:
    from governance.incident_state import Incident

log = logging.getLogger(__name__)

#: Actions whose version is found in the trail: the actor's role is checked before it is looked for.
_ROLE_FIRST_ACTIONS = ("rollback", "canary_end", "withdraw")


@dataclass
class Outcome:
    """The result of an action: the event in force and whether this call appended it."""

    action: str
    name: str
    version: str
    event: Event
    state: VersionState
    policy: ApprovalsPolicy
    previous: str | None = None
    warnings: list[Violation] = field(default_factory=list)

    @property
    def created(self) -> bool:
        return self.event.created


def _record_waivers(name: str, version: str, check: Check) -> None:
    """A waiver that lets an action through is itself recorded (once per waiver and version)."""
    path = policy_dir() / "waivers.yaml"
    file_hash = sha256_file(path) if path.is_file() else ""
    for waiver in check.waivers_used:
        details = {"rule_id": waiver.rule_id, "expires": waiver.expires.isoformat(), "scope": waiver.subject or "*"}

        def guard(events: list[Event], details: dict[str, Any] = details, granted_by: str = waiver.granted_by):
            return next(
                (
                    e
                    for e in events
                    if e.event_type == "waiver_granted"
                    and e.subject.version == version
                    and e.actor == granted_by
                    and e.details == details
                ),
                None,
            )

        trail.record(
            "waiver_granted",
            actor=waiver.granted_by,
            role="waiver",
            subject=Subject(model=name, version=version),
            reason=waiver.reason,
            evidence={"waivers_file_sha256": file_hash} if file_hash else {},
            details=details,
            guard=guard,
        )


def _act(
    action: str,
    event_type: str,
    name: str,
    version: str | None,
    *,
    reason: str,
    identity: Identity | None,
    incident: str | None = None,
    automatic: bool = False,
) -> Outcome:
    """Preconditions, preflight, decide under the lock, apply to MLflow, commit (see the module docstring).

    ``incident`` (withdraw only) is the incident answered; ``automatic`` says the
    withdrawal is authorised by ``incidents.withdraw_on`` of the pinned policy
    for that incident's severity instead of by the actor's role.
    """
    version = None if version is None else normalize_version(version)
    what = f"{action} {name}" + (f" v{version}" if version else "")
    in_force = policy_in_force()
    policy = in_force.policy
    # The server an identity may come from is the one this policy names (its hash is checked below)
    identity = identity or current_identity(policy.authentication, policy_source=str(in_force.path))
    waivers = load_approval_waivers()
    alias = ALIAS_EVENTS.get(event_type)
    # 0. Never act on a broken trail (nor past any other precondition); every event read below is verified too
    with _nothing_recorded(what):
        reads = require_preconditions(action, name, version, identity=identity)
    # 1. Preflight: the registry must be reachable (and know the model and version) before anything is written
    # (an alias action reads the model's versions once: here, and for the drift check below)
    known = None
    with _nothing_recorded(what):
        if version is not None:
            known = registry_view.read_versions(name=name) if alias is not None else None
            registry_view.read_version(name, version, versions=known)
        else:
            registry_view.require_model(name)
    # The policy that decides must be the one the trail pins for the version (before anything else is written)
    changes = read_policy_trail(reads)
    if version is not None:
        require_pinned_policy(action, name, version, read_model_state(reads, name), in_force, changes, identity)
    if alias is not None and project_policy_pin()[0] in (None, in_force.sha256):
        # Before an alias moves, a registry moved outside govern is restored from the trail and the repair
        # recorded (a forged @production never survives a governed deployment). Approve/reject rewrite their
        # version's tags anyway; `govern audit verify` and `govern reconcile` cover the rest without costing
        # every approval a registry scan. Only under the pinned policy: under another the action is refused
        # below (approval.policy_pinned), and nothing is written from that policy first.
        from governance.approvals.reconcile import reconcile

        with _nothing_recorded(f"{action} {name}"):
            why = f"drift found before {action}; restored from the audit trail"
            reconcile(name, identity=identity, reason=why, versions=known)
    before = read_model_state(reads, name)
    answered = _answered_incident(name, incident, before) if incident is not None else None
    if action in _ROLE_FIRST_ACTIONS and not automatic:
        _require_role_first(action, name, before, answered, in_force, identity)
    if action == "rollback":
        asked = version
        version = _rollback_target(name, before, version, policy=policy, identity=identity, waivers=waivers)
        if asked is None:  # the default target is known only now; its own preconditions must hold too
            reads = require_preconditions(action, name, version, identity=identity)
    elif action == "canary_end":
        version = _canary_holder(name, before, policy=policy, identity=identity)
    elif action == "withdraw":
        version = _serving_version(name, before, answered, policy=policy, identity=identity)
    assert version is not None
    if action in _ROLE_FIRST_ACTIONS:  # the version acted on is known only now
        require_pinned_policy(action, name, version, before, in_force, changes, identity)
    if automatic:
        _require_withdraw_on(name, version, answered, in_force, identity)

    def decide(state: VersionState) -> Check:
        if automatic:  # authorised by incidents.withdraw_on (checked above), not by a role
            return Check(role=f"automatic: incidents.withdraw_on {policy.incidents.withdraw_on}", violations=[])
        return check_action(
            action,
            user=identity.user,
            policy=policy,
            state=state,
            waivers=waivers,
            identity_source=identity.source,
            identity_server=identity.server,
        )

    # 2. Waivers that let this action through are recorded before it
    state_now = before.version(version)
    pre = decide(state_now)
    if not pre.blocking:
        _record_waivers(name, version, pre)
    withdrawn_aliases = before.aliases_of(version) if action == "withdraw" else []
    previous = version if action == "withdraw" else before.alias_holder(alias) if alias else None
    target = None if event_type in ALIAS_ENDING_EVENTS else version
    role = pre.role or ",".join(policy.roles_of(identity.user)) or "none"

    def guard(events: list[Event]) -> Event | None:
        # What is decided under the lock is what was read under it: verified again (re-hashed; signatures
        # already checked are not checked twice)
        state = read_model_state(reads, name, events)
        check = decide(state.version(version))
        if check.blocking:
            raise _Refused(action, check)
        if action == "withdraw":
            held = state.aliases_of(version)
            moves = state.version(version).alias_events
            if not held and not withdrawn_aliases and moves and moves[-1].event_type == "withdrawn":
                return moves[-1]  # already withdrawn: append nothing
            if held != withdrawn_aliases:
                raise PolicyViolation(
                    f"withdraw of {name}: the aliases of v{version} changed while deciding; re-run the command"
                )
            return None
        if alias is not None:
            holder = state.alias_holder(alias)
            if holder == target:  # already in force: append nothing
                return state.alias_events(alias)[-1]
            if holder != previous:
                raise PolicyViolation(
                    f"{action} of {name}: alias {alias} moved to v{holder} while deciding; re-run the command"
                )
            return None
        mine = state.version(version).decisions.get(identity.user)
        if mine is not None and mine.event_type == event_type:
            return mine
        return None

    def apply_then_commit(event: Event, related: list[Event]) -> None:
        after = ModelState(name, [*related, event])
        touched = [version, previous or "", event.details.get("canary_ended", "")]
        mirror(name, touched, after, policy, aliases=alias is not None)

    evidence = {"approvals_policy_sha256": in_force.sha256}
    if state_now.registration is not None:
        evidence["registration_event"] = state_now.registration.hash
    if alias is not None and action not in ("canary_end", "withdraw"):
        for approver in state_now.valid_approvers(policy):
            evidence[f"approval:{approver}"] = state_now.decisions[approver].hash
    if answered is not None:
        evidence["incident_event"] = answered.event_hash
    details: dict[str, Any] = {"action": action, **identity.details()}
    if action == "withdraw":
        details.update({"aliases": withdrawn_aliases, "from_version": version})
        if answered is not None:
            details["incident"] = answered.id
        if automatic:
            details["automatic"] = f"incidents.withdraw_on: {policy.incidents.withdraw_on}"
    elif alias is not None:
        details.update({"alias": alias, "from_version": previous or ""})
    if action == "rollback" and previous and before.alias_holder(ALIAS_CANARY) == previous:
        # The version rolled back from stops serving everywhere: its canary ends with it
        details["canary_ended"] = previous
    if pre.waived:
        details["waived"] = [f"{v.rule_id} by {v.waived_by}" for v in pre.waived]
    if pre.warnings:
        details["warnings"] = [v.line() for v in pre.warnings]
    try:
        event = trail.record(
            event_type,
            actor=identity.user,
            role=role,
            subject=Subject(model=name, version=version),
            reason=reason,
            identity_method=identity.method,
            evidence=evidence,
            details=details,
            guard=guard,
            before_commit=apply_then_commit,
        )
    except _Refused as refused:
        error = _refusal_error(action, refused.check.blocking, policy)
        record_denial(
            action,
            name,
            version,
            identity=identity,
            policy=policy,
            message=str(error),
            rule_ids=[v.rule_id for v in refused.check.blocking],
            policy_sha256=in_force.sha256,
        )
        raise error from None
    except PermissionDenied as exc:  # the MLflow server refused this user
        record_denial(
            action, name, version, identity=identity, policy=policy, message=str(exc), rule_ids=["mlflow.permission"]
        )
        raise
    except RegistryError as exc:  # MLflow failed while applying: the event was rolled back
        raise _unreachable(exc, f"{action} {name} v{version}") from None
    after = model_state(name)
    if event.created:
        # The new head is anchored outside the trail, on the registered model. The action is committed:
        # an anchor that cannot be written now lags (verify still checks the older one), it never undoes it
        try:
            write_trail_head(name)
        except (RegistryError, PermissionDenied) as exc:
            log.warning("%s: trail head not written to MLflow (%s); the next action writes it", name, exc)
    else:
        # 4. Idempotent re-run: only bring MLflow back in line with the trail
        mirror(name, [version], after, policy, aliases=alias is not None)
    return Outcome(
        action=action,
        name=name,
        version=version,
        event=event,
        state=after.version(version),
        policy=policy,
        previous=previous,
        warnings=pre.warnings,
    )


def require_pinned_policy(
    action: str,
    name: str,
    version: str,
    model: ModelState,
    in_force: PolicyInForce,
    changes: list[PolicyChange],
    identity: Identity,
) -> None:
    """Refuse (recorded) when the policy in force is not the one the trail pins for ``version``."""
    message = policy_pin_message(model.version(version), in_force, changes)
    if message is None:
        return
    line = f"{action} refused by {POLICY_PINNED_RULE}: {name} v{version}: {message}"
    record_denial(
        action,
        name,
        version,
        identity=identity,
        policy=in_force.policy,
        message=line,
        rule_ids=[POLICY_PINNED_RULE],
        policy_sha256=in_force.sha256,
    )
    raise PolicyViolation(line)


def _require_role_first(
    action: str, name: str, state: ModelState, answered: Incident | None, in_force: PolicyInForce, identity: Identity
) -> None:
    """Refuse (recorded) someone whose roles do not allow ``action``, before the trail is asked for its version.

    Decided by the policy in force; the pinned-policy check follows once the
    version is known, and the full check under the append lock repeats this
    one, so a file that grants a role grants nothing by itself.
    """
    alias = ALIAS_CANARY if action == "canary_end" else ALIAS_PRODUCTION
    version = answered.version if answered is not None else state.alias_holder(alias) or ""
    subject = f"{name} v{version}" if version else name
    violation = role_violation(action, user=identity.user, policy=in_force.policy, subject=subject)
    if violation is None:
        return
    error = _refusal_error(action, [violation], in_force.policy)
    record_denial(
        action,
        name,
        version,
        identity=identity,
        policy=in_force.policy,
        message=str(error),
        rule_ids=[violation.rule_id],
        policy_sha256=in_force.sha256,
    )
    raise error


def _answered_incident(name: str, incident: str, state: ModelState) -> Incident:
    """The open incident of ``name`` a withdrawal answers (a usage error otherwise: nothing is recorded).

    Taken from ``state``, whose events were verified when read: a withdrawal's authority (the incident's
    severity, who opened it) comes from no event that was not.
    """
    from governance.incident_state import find_incident, fold_incidents

    found = find_incident(incident)
    if found.name != name:
        raise ConfigError(f"--incident {found.id} is about {found.name} v{found.version}, not {name}")
    verified = next((i for i in fold_incidents(state.events) if i.id == found.id), None)
    if verified is None:  # appended since the state was read: the next run sees it
        raise ConfigError(f"--incident {found.id}: not in the audit trail read for {name}; re-run the command")
    found = verified
    if not found.is_open:
        raise ConfigError(
            f"--incident {found.id} was closed by {found.closed_by} at {found.closed_at}; a withdrawal answers an "
            "open incident (leave out --incident to withdraw without one)"
        )
    return found


def _serving_version(
    name: str, state: ModelState, answered: Incident | None, *, policy: ApprovalsPolicy, identity: Identity
) -> str:
    """The version a withdrawal takes out of service: the incident's, else the one holding production.

    A version the trail's last alias move already withdrew is returned too, so a
    re-run records nothing and only brings MLflow back in line.
    """
    if answered is not None:
        version = answered.version
        moves = state.version(version).alias_events
        if state.aliases_of(version) or (moves and moves[-1].event_type == "withdrawn"):
            return version
        production = state.alias_holder(ALIAS_PRODUCTION)
        message = (
            f"withdraw refused: {answered.id} is about {name} v{version}, which holds no alias in the audit trail "
            f"(production is {'v' + production if production else 'unset'}); nothing to withdraw"
        )
        record_denial("withdraw", name, version, identity=identity, policy=policy, message=message, rule_ids=[])
        raise PolicyViolation(message)
    holder = state.alias_holder(ALIAS_PRODUCTION)
    if holder is not None:
        return holder
    moves = state.alias_events(ALIAS_PRODUCTION)
    if moves and moves[-1].event_type == "withdrawn":
        return moves[-1].subject.version
    canary = state.alias_holder(ALIAS_CANARY)
    message = f"withdraw refused: {name} has no production version in the audit trail to withdraw"
    if canary is not None:
        message += f" (v{canary} holds canary: end it with govern canary-end {name})"
    record_denial("withdraw", name, "", identity=identity, policy=policy, message=message, rule_ids=[])
    raise PolicyViolation(message)


def _require_withdraw_on(
    name: str, version: str, answered: Incident | None, in_force: PolicyInForce, identity: Identity
) -> None:
    """An automatic withdrawal stands only for the incident's opener, on a severity ``incidents.withdraw_on`` covers."""
    setting = in_force.policy.incidents
    if answered is not None and setting.withdraws(answered.severity) and answered.opened_by == identity.user:
        return
    if answered is not None and setting.withdraws(answered.severity):
        reason = f"only opening {answered.id} withdraws automatically, and {answered.opened_by} opened it"
    else:
        what = f"a {answered.severity} incident ({answered.id})" if answered is not None else "no incident"
        reason = f"incidents.withdraw_on: {setting.withdraw_on} does not withdraw automatically on {what}"
    message = f"withdraw refused: {name} v{version}: {reason}; a release manager withdraws it with govern withdraw"
    record_denial(
        "withdraw",
        name,
        version,
        identity=identity,
        policy=in_force.policy,
        message=message,
        rule_ids=[],
        policy_sha256=in_force.sha256,
    )
    raise PolicyViolation(message)


def _canary_holder(name: str, state: ModelState, *, policy: ApprovalsPolicy, identity: Identity) -> str:
    holder = state.alias_holder(ALIAS_CANARY)
    if holder is None:
        message = f"canary-end refused: {name} has no canary in the audit trail to end"
        record_denial("canary_end", name, "", identity=identity, policy=policy, message=message, rule_ids=[])
        raise PolicyViolation(message)
    return holder


_CONNECTION_FAILURES = ("NewConnectionError", "Connection refused", "Max retries exceeded", "timed out", "cannot reach")


def _unreachable(exc: RegistryError, what: str) -> RegistryError:
    """A registry failure as one line; a connection failure says which URI and that nothing was recorded."""
    message = str(exc)
    if any(marker in message for marker in _CONNECTION_FAILURES):
        message = f"cannot reach the MLflow registry at {registry.tracking_uri()}"
    return RegistryError(f"{what}: {message}; nothing was recorded, re-run when the registry is back")


@contextlib.contextmanager
def _nothing_recorded(what: str) -> Iterator[None]:
    try:
        yield
    except RegistryError as exc:
        raise _unreachable(exc, what) from None


def _rollback_target(
    name: str,
    state: ModelState,
    to: str | None,
    *,
    policy: ApprovalsPolicy,
    identity: Identity,
    waivers: list[Waiver],
) -> str:
    current = state.alias_holder(ALIAS_PRODUCTION)
    if current is None:
        message = f"rollback refused: {name} has no production version in the audit trail to roll back from"
        record_denial("rollback", name, "", identity=identity, policy=policy, message=message, rule_ids=[])
        raise PolicyViolation(message)
    if to is not None:
        return normalize_version(to)
    target = default_rollback_target(name, state, policy=policy, waivers=waivers)
    if target is not None:
        return target
    message = (
        f"rollback refused: {name} has no earlier production version that is still approved "
        f"(production is v{current}); name one with --to VERSION"
    )
    record_denial("rollback", name, current, identity=identity, policy=policy, message=message, rule_ids=[])
    raise PolicyViolation(message)


def approve(name: str, version: str | int, *, reason: str, identity: Identity | None = None) -> Outcome:
    """Approve a version as a reviewer (role, registration, gates, eval, separation of duties)."""
    return _act("approve", "approved", name, version, reason=clean_reason(reason), identity=identity)


def reject(name: str, version: str | int, *, reason: str, identity: Identity | None = None) -> Outcome:
    """Reject a version; the rejection blocks deployment until the same reviewer approves."""
    return _act("reject", "rejected", name, version, reason=clean_reason(reason), identity=identity)


def promote(
    name: str, version: str | int, *, reason: str = "promoted to production", identity: Identity | None = None
) -> Outcome:
    """Point the ``production`` alias at an approved version."""
    return _act("promote", "promoted", name, version, reason=clean_reason(reason), identity=identity)


def canary(
    name: str, version: str | int, *, reason: str = "canary started", identity: Identity | None = None
) -> Outcome:
    """Point the ``canary`` alias at an approved version."""
    return _act("canary", "canary_started", name, version, reason=clean_reason(reason), identity=identity)


def rollback(
    name: str,
    *,
    to: str | int | None = None,
    reason: str = "rolled back production",
    identity: Identity | None = None,
) -> Outcome:
    """Move ``production`` back to ``to``, or by default to the previous production version still approved."""
    to = None if to is None else str(to)
    return _act("rollback", "rolled_back", name, to, reason=clean_reason(reason), identity=identity)


def canary_end(name: str, *, reason: str = "canary ended", identity: Identity | None = None) -> Outcome:
    """Take the ``canary`` alias away from the version holding it (whoever may start a canary may end it)."""
    return _act("canary_end", "canary_ended", name, None, reason=clean_reason(reason), identity=identity)


def withdraw(
    name: str,
    *,
    reason: str = "withdrawn from service",
    incident: str | None = None,
    identity: Identity | None = None,
    automatic: bool = False,
) -> Outcome:
    """Take the serving version out of service: ``production`` (and its ``canary``) point nowhere afterwards.

    The version is the one ``incident`` (``INC-<n>``, open, of this model) is
    about, else the one holding production; nothing needs to replace it. Its
    approvals recorded before the withdrawal no longer count: it is promoted
    again only after fresh ones. ``automatic`` is how opening an incident acts
    under ``incidents.withdraw_on`` (the actor is its opener, whatever their
    roles); it is refused for an incident whose severity the pinned policy's
    setting does not cover.
    """
    if automatic and incident is None:
        raise ConfigError("an automatic withdrawal answers an incident; name it")
    return _act(
        "withdraw",
        "withdrawn",
        name,
        None,
        reason=clean_reason(reason),
        identity=identity,
        incident=incident,
        automatic=automatic,
    )


def clean_reason(reason: str) -> str:
    """A reason fit for the trail and every screen that shows it: one line, no control characters."""
    reason = (reason or "").strip()
    if not reason:
        raise ConfigError("--reason: give a non-empty reason; it is recorded in the audit trail")
    bad = next((c for c in reason if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise ConfigError(
            f"--reason: control character U+{ord(bad):04X} at position {reason.index(bad) + 1} is not allowed; "
            "write the reason as one line of plain text"
        )
    return reason


def history(name: str) -> list[Event]:
    """Alias moves of ``name`` (promoted, canary_started, canary_ended, rolled_back, withdrawn), oldest first."""
    return trail.events(model=name, event_types=list(ALIAS_EVENTS))
