"""Who may approve, reject, promote, canary and roll back a model version — and the record of it.

Every action is decided by ``policies/approvals.yaml`` against facts from the
audit trail (the truth), written to the trail through
:func:`governance.trail.record`, and mirrored to MLflow (aliases and
``governance.*`` version tags: the view the MLflow UI shows). Each refusal
names the rule that failed and is itself recorded as ``permission_denied``.

Write order (so a failure never leaves half a decision, and a re-run neither
fails nor duplicates):

1. **Preflight** — identity verified, policy loaded, the version read from the
   registry. An unreachable registry stops here: exit 2, nothing written.
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

Facts a decision relies on — who trained and registered the version, its risk
tier, its gate and evaluation status — are frozen into the trail when the
version is registered (:func:`record_registration`), so editing a tag in the
MLflow UI cannot make a version approvable.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from governance import registry, trail
from governance.errors import ConfigError, PermissionDenied, PolicyViolation, RegistryError
from governance.gates import Violation, Waiver, load_waivers
from governance.identity import Identity, current_identity
from governance.lineage import sha256_file
from governance.policy import load_policy_file
from governance.policy.approvals import ApprovalsPolicy
from governance.trail import Event, Subject

log = logging.getLogger(__name__)

POLICY_DIR_ENV = "GOVERN_POLICY_DIR"
ALIAS_PRODUCTION = "production"
ALIAS_CANARY = "canary"
#: Event types that move an alias, and the alias they move.
ALIAS_EVENTS = {"promoted": ALIAS_PRODUCTION, "canary_started": ALIAS_CANARY, "rolled_back": ALIAS_PRODUCTION}

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

#: Which rules each action checks, in the order they are reported.
ACTION_RULES: dict[str, tuple[str, ...]] = {
    "approve": ("role_required", "registered", "gates_passed", "eval_passed", "separation_of_duties"),
    "reject": ("role_required", "registered"),
    "promote": ("role_required", "registered", "gates_passed", "eval_passed", "min_approvers", "no_open_rejection"),
    "canary": ("role_required", "registered", "gates_passed", "eval_passed", "min_approvers", "no_open_rejection"),
    "rollback": ("role_required", "registered", "gates_passed", "eval_passed", "min_approvers", "no_open_rejection"),
}
_PERMISSION_RULES = {"role_required", "separation_of_duties"}


# --------------------------------------------------------------------------- policy files


def policy_dir() -> Path:
    """Where the policy files live: ``GOVERN_POLICY_DIR`` or ``policies/``."""
    return Path(os.environ.get(POLICY_DIR_ENV) or "policies")


def approvals_policy_path() -> Path:
    return policy_dir() / "approvals.yaml"


def load_approvals_policy(path: str | Path | None = None) -> ApprovalsPolicy:
    """Parse and validate ``policies/approvals.yaml``."""
    return load_policy_file(path or approvals_policy_path(), ApprovalsPolicy)


def load_approval_waivers(path: str | Path | None = None) -> list[Waiver]:
    """Waivers from ``policies/waivers.yaml`` (a missing file means none)."""
    return load_waivers(path or policy_dir() / "waivers.yaml")


def _policy_evidence() -> dict[str, str]:
    path = approvals_policy_path()
    return {"approvals_policy_sha256": sha256_file(path)} if path.is_file() else {}


# --------------------------------------------------------------------------- state from the trail


@dataclass
class VersionState:
    """What the audit trail says about one version."""

    name: str
    version: str
    registration: Event | None = None
    gate_status: str | None = None
    eval_status: str | None = None
    gate_event: Event | None = None
    eval_event: Event | None = None
    people: dict[str, str] = field(default_factory=dict)
    risk_tier: str | None = None
    decisions: dict[str, Event] = field(default_factory=dict)
    alias_events: list[Event] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def approvers(self) -> list[str]:
        return sorted(a for a, e in self.decisions.items() if e.event_type == "approved")

    @property
    def rejecters(self) -> list[str]:
        return sorted(a for a, e in self.decisions.items() if e.event_type == "rejected")

    def valid_approvers(self, policy: ApprovalsPolicy) -> list[str]:
        """Approvers who satisfy separation of duties under the policy in force now."""
        excluded = {self.people.get(tag) for tag in policy.rules.separation_of_duties.tags}
        return [a for a in self.approvers if a not in excluded]

    def tier(self, policy: ApprovalsPolicy) -> str:
        return self.risk_tier or policy.rules.min_approvers.default_risk_tier

    def status(self, policy: ApprovalsPolicy) -> str:
        """``blocked`` (gate or eval failed), ``rejected``, ``approved`` or ``pending``."""
        rules = policy.rules
        if self.gate_status == "failed" or self.eval_status == rules.eval_passed.failed:
            return "blocked"
        if self.rejecters:
            return "rejected"
        if len(self.valid_approvers(policy)) >= policy.required_approvals(self.tier(policy)):
            return "approved"
        return "pending"

    def summary(self, policy: ApprovalsPolicy) -> dict[str, Any]:
        """Plain facts for CLIs and reports."""
        return {
            "name": self.name,
            "version": self.version,
            "status": self.status(policy),
            "registered": self.registration is not None,
            "gate_status": self.gate_status,
            "eval_status": self.eval_status,
            "risk_tier": self.tier(policy),
            "approvals_required": policy.required_approvals(self.tier(policy)),
            "approvers": self.approvers,
            "rejected_by": self.rejecters,
            "people": dict(self.people),
            "alias_history": alias_history(self.alias_events, self.version),
        }


@dataclass
class ModelState:
    """What the audit trail says about every version of one registered model."""

    name: str
    events: list[Event]

    def version(self, version: str | int) -> VersionState:
        version = str(version)
        state = VersionState(self.name, version)
        for e in self.events:
            if e.event_type in ALIAS_EVENTS and (
                e.subject.version == version or e.details.get("from_version") == version
            ):
                state.alias_events.append(e)
            if e.subject.version != version:
                continue
            state.events.append(e)
            if e.event_type == "model_registered":
                state.registration = state.registration or e
                state.people = dict(e.details.get("people") or {})
                state.risk_tier = e.details.get("risk_tier")
                state.gate_status = _sticky(state.gate_status, e.details.get("gate_status"), "failed")
                state.eval_status = _sticky(state.eval_status, e.details.get("eval_status"), "eval_failed")
                state.gate_event = state.gate_event or e
                state.eval_event = state.eval_event or e
            elif e.event_type == "gate_decision":
                state.gate_status = _sticky(state.gate_status, e.details.get("status"), "failed")
                if state.gate_status == e.details.get("status"):
                    state.gate_event = e
            elif e.event_type == "eval_decision":
                state.eval_status = _sticky(state.eval_status, e.details.get("status"), "eval_failed")
                if state.eval_status == e.details.get("status"):
                    state.eval_event = e
            elif e.event_type in ("approved", "rejected"):
                state.decisions[e.actor] = e
        return state

    def alias_events(self, alias: str | None = None) -> list[Event]:
        return [e for e in self.events if e.event_type in ALIAS_EVENTS and alias in (None, ALIAS_EVENTS[e.event_type])]

    def alias_holder(self, alias: str) -> str | None:
        """The version the trail says holds ``alias``."""
        moves = self.alias_events(alias)
        return moves[-1].subject.version if moves else None

    def rollback_candidates(self) -> list[str]:
        """Earlier production versions, most recent first, skipping any rolled back from since."""
        order: list[str] = []
        bad: set[str] = set()
        for e in self.alias_events(ALIAS_PRODUCTION):
            target = e.subject.version
            if e.event_type == "rolled_back" and e.details.get("from_version"):
                bad.add(str(e.details["from_version"]))
            bad.discard(target)
            if target in order:
                order.remove(target)
            order.append(target)
        return [v for v in reversed(order[:-1]) if v not in bad]


def _sticky(current: str | None, new: str | None, failed: str) -> str | None:
    """Failure is permanent: once a gate or evaluation failed, a later pass does not erase it."""
    if current == failed:
        return current
    return new or current


def alias_history(alias_events: Iterable[Event], version: str) -> list[dict[str, Any]]:
    """Who moved which alias to or from ``version``, and when."""
    out = []
    for e in alias_events:
        alias = ALIAS_EVENTS[e.event_type]
        moved_to = e.subject.version == version
        out.append(
            {
                "alias": alias,
                "change": ("set" if moved_to else "removed") + (" (rollback)" if e.event_type == "rolled_back" else ""),
                "by": e.actor,
                "at": e.timestamp,
                "event": e.seq,
            }
        )
    return out


def model_state(name: str) -> ModelState:
    """The trail's view of one registered model."""
    return ModelState(name, trail.events(model=name))


def version_state(name: str, version: str | int) -> VersionState:
    """The trail's view of one version (approvals, statuses, people, alias history)."""
    return model_state(name).version(version)


# --------------------------------------------------------------------------- the policy decision


@dataclass
class Check:
    """Policy outcome for one action by one user on one version."""

    role: str | None
    violations: list[Violation]
    waivers_used: list[Waiver] = field(default_factory=list)

    @property
    def blocking(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "deny" and v.waived_by is None]

    @property
    def waived(self) -> list[Violation]:
        return [v for v in self.violations if v.waived_by is not None]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "warn"]


_ACTION_WORDS = {
    "approve": "approve",
    "reject": "reject",
    "promote": "promote to production",
    "canary": "start a canary",
    "rollback": "roll back",
    "approve_objective": "approve objectives",
    "grant_waiver": "grant waivers",
}


def check_action(
    action: str,
    *,
    user: str,
    policy: ApprovalsPolicy,
    state: VersionState,
    waivers: Iterable[Waiver] = (),
    today: dt.date | None = None,
) -> Check:
    """Apply every rule of ``action`` to ``state``; waivers (from authorised granters) cover waivable rules."""
    rules = policy.rules
    subject = f"{state.name} v{state.version}"
    found: list[tuple[Any, str]] = []
    role = policy.acting_role(user, action)
    for rule_name in ACTION_RULES[action]:
        rule = getattr(rules, rule_name)
        message = _rule_message(rule_name, action=action, user=user, policy=policy, state=state, role=role)
        if message is not None:
            found.append((rule, message))
    today = today or dt.datetime.now(dt.UTC).date()
    authorised = [w for w in waivers if policy.acting_role(w.granted_by, "grant_waiver") is not None]
    violations, used = [], []
    for rule, message in found:
        violation = Violation(rule_id=rule.id, severity=rule.severity, subject=subject, message=message)
        if rule.waivable and rule.severity == "deny":
            waiver = next((w for w in authorised if w.covers(violation, today)), None)
            if waiver is not None:
                violation = violation.model_copy(update={"waived_by": waiver.granted_by})
                used.append(waiver)
        violations.append(violation)
    return Check(role=role, violations=violations, waivers_used=used)


def _rule_message(
    rule_name: str, *, action: str, user: str, policy: ApprovalsPolicy, state: VersionState, role: str | None
) -> str | None:
    """The violation message of one rule, or None when it holds."""
    rules = policy.rules
    if rule_name == "role_required":
        if role is not None:
            return None
        allowed = ", ".join(policy.permissions[action]) or "no role"  # type: ignore[index]
        held = ", ".join(policy.roles_of(user)) or "none"
        return f"{user} holds no role allowed to {_ACTION_WORDS[action]} (allowed: {allowed}; {user}'s roles: {held})"
    if rule_name == "registered":
        if state.registration is not None:
            return None
        return "no model_registered event in the audit trail; register it through the pipeline's register stage"
    if rule_name == "gates_passed":
        if state.gate_status == rules.gates_passed.passed:
            return None
        where = f", event #{state.gate_event.seq}" if state.gate_event else ""
        return (
            f"its data gates did not all pass ({rules.gates_passed.tag} = {state.gate_status or 'unknown'}{where}); "
            "it cannot be approved or deployed"
        )
    if rule_name == "eval_passed":
        if state.eval_status == rules.eval_passed.passed:
            return None
        where = f", event #{state.eval_event.seq}" if state.eval_event else ""
        return (
            f"its evaluation did not pass ({rules.eval_passed.tag} = {state.eval_status or 'unknown'}{where}); "
            "a version that failed evaluation can never be approved"
        )
    if rule_name == "separation_of_duties":
        for tag in rules.separation_of_duties.tags:
            if state.people.get(tag) == user:
                return f"{user} is this version's {tag} and may not approve it"
        return None
    if rule_name == "min_approvers":
        approvers = state.valid_approvers(policy)
        tier = state.tier(policy)
        needed = policy.required_approvals(tier)
        if len(approvers) >= needed:
            return None
        names = ", ".join(approvers) or "none"
        return f"{len(approvers)} distinct approval(s) ({names}); risk tier {tier} needs {needed}"
    if rule_name == "no_open_rejection":
        rejecters = state.rejecters
        if not rejecters:
            return None
        seqs = ", ".join(f"#{state.decisions[r].seq}" for r in rejecters)
        return f"rejected by {', '.join(rejecters)} (event {seqs}); a standing rejection blocks deployment"
    raise ConfigError(f"unknown approval rule {rule_name!r}")  # pragma: no cover - ACTION_RULES is fixed


class _Refused(Exception):
    def __init__(self, action: str, check: Check):
        super().__init__(action)
        self.action, self.check = action, check


def _refusal_error(
    action: str, blocking: list[Violation], policy: ApprovalsPolicy
) -> PermissionDenied | PolicyViolation:
    """One line naming the first failing rule; permission rules map to PermissionDenied, the rest to PolicyViolation."""
    first = blocking[0]
    line = f"{action} refused by {first.rule_id}: {first.subject}: {first.message}"
    if len(blocking) > 1:
        line += f" (also failing: {', '.join(v.rule_id for v in blocking[1:])})"
    permission_rules = {getattr(policy.rules, name).id for name in _PERMISSION_RULES}
    return PermissionDenied(line) if first.rule_id in permission_rules else PolicyViolation(line)


# --------------------------------------------------------------------------- the MLflow view


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


# --------------------------------------------------------------------------- registration facts


def _status(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{what}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _registration_facts(name: str, version: str, policy: ApprovalsPolicy) -> tuple[dict[str, str], str, Any]:
    """People (separation-of-duties tags) and risk tier read from the version's tags, to freeze in the trail."""
    mv = registry.get_version(name, version)
    tags = mv.tags or {}
    people = {}
    for tag in policy.rules.separation_of_duties.tags:
        value = (tags.get(tag) or "").strip()
        if not value or value == "unknown":
            raise ConfigError(
                f"{name} v{version}: tag {tag} is missing; separation of duties "
                f"({policy.rules.separation_of_duties.id}) needs it set at registration"
            )
        people[tag] = value
    rule = policy.rules.min_approvers
    tier = tags.get(rule.risk_tier_tag) or rule.default_risk_tier
    if tier not in rule.by_risk_tier:
        raise ConfigError(
            f"{name} v{version}: tag {rule.risk_tier_tag} = {tier!r} is not a risk tier of "
            f"{approvals_policy_path()} ({', '.join(rule.by_risk_tier)})"
        )
    return people, tier, mv


def record_registration(
    name: str,
    version: str | int,
    *,
    actor: str | None = None,
    evidence: dict[str, str],
    gate_status: str,
    eval_status: str,
    reason: str = "registered by the pipeline",
) -> Event:
    """Record a new version in the trail (``model_registered``, then ``gate_decision`` and ``eval_decision``).

    Freezes the separation-of-duties tags (``lineage.trained_by``,
    ``lineage.registered_by``) and the risk tier (``lineage.risk_tier``) read
    from the version, with ``gate_status`` (passed/failed) and ``eval_status``
    (passed/eval_failed), then mirrors the ``governance.*`` tags. Idempotent:
    re-running for the same version appends nothing and returns the first
    ``model_registered`` event (``created`` False).
    """
    version = str(version)
    policy = load_approvals_policy()
    rules = policy.rules
    gate_status = _status(gate_status, (rules.gates_passed.passed, "failed"), "gate_status")
    eval_status = _status(eval_status, (rules.eval_passed.passed, rules.eval_passed.failed), "eval_status")
    people, tier, mv = _registration_facts(name, version, policy)
    actor = actor or current_identity().user
    subject = Subject(model=name, version=version)
    decision_evidence = dict(evidence)
    evidence = {**evidence, **_policy_evidence()}

    def already(kind: str, **match: Any):
        def guard(events: list[Event]) -> Event | None:
            return next(
                (
                    e
                    for e in events
                    if e.event_type == kind
                    and e.subject.version == version
                    and all(e.details.get(k) == v for k, v in match.items())
                ),
                None,
            )

        return guard

    def mirror_registration(_event: Event, related: list[Event]) -> None:
        mirror(name, [version], ModelState(name, [*related, _event]), policy, aliases=False)

    registered = trail.record(
        "model_registered",
        actor=actor,
        role="registrant",
        subject=subject,
        reason=reason,
        evidence=evidence,
        details={
            "people": people,
            "risk_tier": tier,
            "gate_status": gate_status,
            "eval_status": eval_status,
            "run_id": mv.run_id or "",
        },
        guard=already("model_registered"),
        before_commit=mirror_registration,
    )
    record_gate_decision(name, version, status=gate_status, evidence=decision_evidence, actor=actor, policy=policy)
    record_eval_decision(name, version, status=eval_status, evidence=decision_evidence, actor=actor, policy=policy)
    if not registered.created:
        mirror(name, [version], model_state(name), policy, aliases=False)
    return registered


def _record_decision(
    kind: str,
    name: str,
    version: str,
    *,
    status: str,
    evidence: dict[str, str],
    actor: str | None,
    reason: str,
    policy: ApprovalsPolicy,
) -> Event:
    actor = actor or current_identity().user

    def guard(events: list[Event]) -> Event | None:
        same = [e for e in events if e.event_type == kind and e.subject.version == version]
        if same and same[-1].details.get("status") == status and same[-1].evidence == evidence:
            return same[-1]
        return None

    def mirror_decision(event: Event, related: list[Event]) -> None:
        mirror(name, [version], ModelState(name, [*related, event]), policy, aliases=False)

    return trail.record(
        kind,
        actor=actor,
        role="registrant",
        subject=Subject(model=name, version=version),
        reason=reason,
        evidence=evidence,
        details={"status": status},
        guard=guard,
        before_commit=mirror_decision,
    )


def record_gate_decision(
    name: str,
    version: str | int,
    *,
    status: str,
    evidence: dict[str, str],
    actor: str | None = None,
    reason: str = "data gates decided before training",
    policy: ApprovalsPolicy | None = None,
) -> Event:
    """Record the data-gate status (``passed``/``failed``) of a version; a failure is permanent."""
    policy = policy or load_approvals_policy()
    status = _status(status, (policy.rules.gates_passed.passed, "failed"), "gate status")
    return _record_decision(
        "gate_decision",
        name,
        str(version),
        status=status,
        evidence=evidence,
        actor=actor,
        reason=reason,
        policy=policy,
    )


def record_eval_decision(
    name: str,
    version: str | int,
    *,
    status: str,
    evidence: dict[str, str],
    actor: str | None = None,
    reason: str = "evaluation gate decided",
    policy: ApprovalsPolicy | None = None,
) -> Event:
    """Record the evaluation status (``passed``/``eval_failed``); once eval_failed, never approvable."""
    policy = policy or load_approvals_policy()
    rule = policy.rules.eval_passed
    status = _status(status, (rule.passed, rule.failed), "eval status")
    return _record_decision(
        "eval_decision",
        name,
        str(version),
        status=status,
        evidence=evidence,
        actor=actor,
        reason=reason,
        policy=policy,
    )


# --------------------------------------------------------------------------- actions


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


def record_denial(
    action: str,
    name: str,
    version: str,
    *,
    identity: Identity,
    policy: ApprovalsPolicy | None,
    message: str,
    rule_ids: list[str],
) -> Event:
    """Record a refusal as ``permission_denied`` (every refusal, not deduplicated: each is an attempt)."""
    roles = ",".join(policy.roles_of(identity.user)) if policy is not None else ""
    return trail.record(
        "permission_denied",
        actor=identity.user,
        role=roles or "none",
        subject=Subject(model=name, version=str(version)),
        reason=message,
        evidence=_policy_evidence(),
        details={"action": action, "rules": rule_ids, "identity": identity.source},
    )


def _act(
    action: str,
    event_type: str,
    name: str,
    version: str | None,
    *,
    reason: str,
    identity: Identity | None,
) -> Outcome:
    """Preflight, decide under the lock, apply to MLflow, commit (see the module docstring)."""
    identity = identity or current_identity()
    policy = load_approvals_policy()
    waivers = load_approval_waivers()
    alias = ALIAS_EVENTS.get(event_type)
    # 1. Preflight: the registry must be reachable (and know the version) before anything is written
    with _nothing_recorded(f"{action} {name}" + (f" v{version}" if version else "")):
        if version is not None:
            registry.get_version(name, version)
        else:
            registry.version_by_alias(name, ALIAS_PRODUCTION)
    before = model_state(name)
    if action == "rollback":
        version = _rollback_target(name, before, version, policy=policy, identity=identity, waivers=waivers)
    assert version is not None
    version = str(version)
    # 2. Waivers that let this action through are recorded before it
    pre = check_action(action, user=identity.user, policy=policy, state=before.version(version), waivers=waivers)
    if not pre.blocking:
        _record_waivers(name, version, pre)
    previous = before.alias_holder(alias) if alias else None
    role = pre.role or ",".join(policy.roles_of(identity.user)) or "none"

    def guard(events: list[Event]) -> Event | None:
        state = ModelState(name, events)
        check = check_action(action, user=identity.user, policy=policy, state=state.version(version), waivers=waivers)
        if check.blocking:
            raise _Refused(action, check)
        if alias is not None:
            holder = state.alias_holder(alias)
            if holder == version:  # already in force: append nothing
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
        if alias is not None:
            registry.set_alias(name, alias, version)
        mirror(name, [version, previous or ""], after, policy, aliases=False)

    state_now = before.version(version)
    evidence = {**_policy_evidence()}
    if state_now.registration is not None:
        evidence["registration_event"] = state_now.registration.hash
    if alias is not None:
        for approver in state_now.valid_approvers(policy):
            evidence[f"approval:{approver}"] = state_now.decisions[approver].hash
    details: dict[str, Any] = {"action": action, "identity": identity.source}
    if alias is not None:
        details.update({"alias": alias, "from_version": previous or ""})
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
    if not event.created:
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


def default_rollback_target(
    name: str,
    state: ModelState | None = None,
    *,
    policy: ApprovalsPolicy | None = None,
    waivers: list[Waiver] | None = None,
) -> str | None:
    """The version ``govern rollback NAME`` would restore now: the latest earlier production version
    (never one rolled back from since) that still satisfies every promotion rule; None if there is none."""
    state = state or model_state(name)
    policy = policy or load_approvals_policy()
    waivers = load_approval_waivers() if waivers is None else waivers
    for candidate in state.rollback_candidates():
        # Who asks is checked separately; here only the version's own standing counts
        check = check_action("rollback", user="", policy=policy, state=state.version(candidate), waivers=waivers)
        blocking = [v for v in check.blocking if v.rule_id != policy.rules.role_required.id]
        if not blocking:
            return candidate
        log.info("rollback: skipping v%s (%s)", candidate, blocking[0].rule_id)
    return None


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
        return str(to)
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
    return _act("approve", "approved", name, str(version), reason=_reason(reason), identity=identity)


def reject(name: str, version: str | int, *, reason: str, identity: Identity | None = None) -> Outcome:
    """Reject a version; the rejection blocks deployment until the same reviewer approves."""
    return _act("reject", "rejected", name, str(version), reason=_reason(reason), identity=identity)


def promote(
    name: str, version: str | int, *, reason: str = "promoted to production", identity: Identity | None = None
) -> Outcome:
    """Point the ``production`` alias at an approved version."""
    return _act("promote", "promoted", name, str(version), reason=_reason(reason), identity=identity)


def canary(
    name: str, version: str | int, *, reason: str = "canary started", identity: Identity | None = None
) -> Outcome:
    """Point the ``canary`` alias at an approved version."""
    return _act("canary", "canary_started", name, str(version), reason=_reason(reason), identity=identity)


def rollback(
    name: str,
    *,
    to: str | int | None = None,
    reason: str = "rolled back production",
    identity: Identity | None = None,
) -> Outcome:
    """Move ``production`` back to ``to``, or by default to the previous production version still approved."""
    return _act(
        "rollback", "rolled_back", name, None if to is None else str(to), reason=_reason(reason), identity=identity
    )


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ConfigError("--reason: give a non-empty reason; it is recorded in the audit trail")
    return reason


def history(name: str) -> list[Event]:
    """Alias moves of ``name`` (promoted, canary_started, rolled_back), oldest first."""
    return trail.events(model=name, event_types=list(ALIAS_EVENTS))
