"""State folded from the audit trail: what the trail says about each model and version, and which
approvals policy each version is held to.

Trust boundary: this module believes only the trail's events. MLflow tags and
aliases never enter here; they are a view derived from this state
(:mod:`governance.approvals.mirror`). The approvals policy a version is held
to is the ``approvals_policy_sha256`` its ``model_registered`` event recorded,
moved on only by ``policy_changed`` events that reached their recorded count of
approvers — never the file or folder the environment points at.

A ``withdrawn`` event takes every alias its version holds (``production`` and
``canary``) and leaves them to nobody; the approvals recorded for that version
before it no longer count, so it serves again only after fresh ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from governance import trail
from governance.errors import ConfigError
from governance.policy.approvals import ApprovalsPolicy
from governance.trail import Event

ALIAS_PRODUCTION = "production"
ALIAS_CANARY = "canary"
#: Event types that move an alias, and the alias they move.
ALIAS_EVENTS = {
    "promoted": ALIAS_PRODUCTION,
    "canary_started": ALIAS_CANARY,
    "canary_ended": ALIAS_CANARY,
    "rolled_back": ALIAS_PRODUCTION,
    # Takes production and canary from its version (``details.aliases`` names those it held)
    "withdrawn": ALIAS_PRODUCTION,
}
#: Event types that take an alias away from its holder (it then points nowhere).
ALIAS_ENDING_EVENTS = {"canary_ended", "withdrawn"}
#: The trail subject (``Subject.objective``) every ``policy_changed`` event of the approvals policy is about.
POLICY_SUBJECT = "policy:approvals.yaml"
#: Where a version's registration records the approvals policy it was registered under.
POLICY_EVIDENCE_KEY = "approvals_policy_sha256"


def normalize_version(version: str | int) -> str:
    """A version number as the trail and MLflow agree on it: ``"01"`` and ``1`` are both ``"1"``.

    MLflow reads ``01`` as version 1; the trail stores ``"1"``. Normalising at
    every entry point keeps the two from disagreeing about one version.
    """
    text = str(version).strip()
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise ConfigError(f"version {str(version)!r} is not a version number (1, 2, 3, …)")
    return str(int(text))


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
    #: What the version declared at registration, frozen (intended and out-of-scope uses, base and parent model,
    #: commit: ``DECLARED_TAGS``).
    declared: dict[str, str] = field(default_factory=dict)
    #: The training method frozen at registration (``lineage.method``): the policy's tier floor applies to it.
    method: str | None = None
    decisions: dict[str, Event] = field(default_factory=dict)
    alias_events: list[Event] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    #: The latest ``withdrawn`` event of this version, and the approvals it voided (recorded before it).
    withdrawal: Event | None = None
    voided_approvals: dict[str, Event] = field(default_factory=dict)

    @property
    def approvers(self) -> list[str]:
        return sorted(a for a, e in self.decisions.items() if e.event_type == "approved")

    @property
    def rejecters(self) -> list[str]:
        return sorted(a for a, e in self.decisions.items() if e.event_type == "rejected")

    def valid_approvers(self, policy: ApprovalsPolicy) -> list[str]:
        """Approvers who satisfy the policy in force now: separation of duties, and authentication by the
        pinned server (recorded in the approval) where the version's risk tier demands it."""
        excluded = {self.people.get(tag) for tag in policy.rules.separation_of_duties.tags}
        authenticated_only = self.tier(policy) in policy.rules.authenticated_approvals.risk_tiers
        return [
            a
            for a in self.approvers
            if a not in excluded
            and (not authenticated_only or authenticated_by_pinned_server(self.decisions[a], policy))
        ]

    def tier(self, policy: ApprovalsPolicy) -> str:
        """The tier registered, raised to the floor the policy in force sets for the version's method.

        A tier is raised by an approved policy change (``min_tier_by_method``):
        the versions pinned to the new policy then need the higher tier's
        approvals, approved ones included. Nothing lowers a registered tier.
        """
        from governance.policy.approvals import RISK_TIER_ORDER

        rule = policy.rules.min_approvers
        registered = self.risk_tier or rule.default_risk_tier
        floor = rule.min_tier_by_method.get(self.method) if self.method else None
        if floor is not None and RISK_TIER_ORDER.index(floor) > RISK_TIER_ORDER.index(registered):
            return floor
        return registered

    def status(self, policy: ApprovalsPolicy) -> str:
        """``blocked`` (gate or eval failed), ``rejected``, ``approved``, ``withdrawn`` (taken out of service and
        not yet approved again by enough fresh approvals) or ``pending``."""
        rules = policy.rules
        if self.gate_status == "failed" or self.eval_status == rules.eval_passed.failed:
            return "blocked"
        if self.rejecters:
            return "rejected"
        if len(self.valid_approvers(policy)) >= policy.required_approvals(self.tier(policy)):
            return "approved"
        if self.withdrawal is not None:
            return "withdrawn"
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
            "withdrawn": describe_withdrawal(self.withdrawal) if self.withdrawal else None,
            "voided_approvers": sorted(self.voided_approvals),
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
                state.declared = dict(e.details.get("declared") or {})
                state.method = e.details.get("method")
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
                state.voided_approvals.pop(e.actor, None)
            elif e.event_type == "withdrawn":
                # Approvals before a withdrawal do not carry over: it serves again only after fresh ones.
                # A standing rejection stays (it stands until its reviewer approves).
                state.withdrawal = e
                for actor, decision in list(state.decisions.items()):
                    if decision.event_type == "approved":
                        state.voided_approvals[actor] = state.decisions.pop(actor)
        return state

    def alias_events(self, alias: str | None = None) -> list[Event]:
        return [e for e in self.events if e.event_type in ALIAS_EVENTS and (alias is None or alias in event_aliases(e))]

    def alias_holders(self) -> dict[str, str | None]:
        """Which version the trail says holds each alias (None: nobody).

        ``canary_ended`` takes the canary away; a rollback away from the version
        holding the canary ends that canary too (recorded as ``canary_ended`` in
        the rollback's details), so a rolled-back version never keeps serving.
        ``withdrawn`` takes every alias its version holds.
        """
        holders: dict[str, str | None] = {ALIAS_PRODUCTION: None, ALIAS_CANARY: None}
        for e in self.alias_events():
            if e.event_type == "withdrawn":
                for alias, holder in holders.items():
                    if holder == e.subject.version:
                        holders[alias] = None
                continue
            alias = ALIAS_EVENTS[e.event_type]
            holders[alias] = None if e.event_type in ALIAS_ENDING_EVENTS else e.subject.version
            if e.event_type == "rolled_back" and e.details.get("canary_ended"):
                holders[ALIAS_CANARY] = None
        return holders

    def alias_holder(self, alias: str) -> str | None:
        """The version the trail says holds ``alias``."""
        return self.alias_holders()[alias]

    def production_metrics(self) -> tuple[str, dict[str, float]] | None:
        """The production version and the metrics its evaluation decision recorded in the trail.

        The metrics are read from the ``eval_decision`` event (hash-chained with
        the rest of the trail) and checked against the ``metrics_sha256`` the
        event carries as evidence; MLflow tags are never consulted.
        """
        from governance.lineage import sha256_json

        holder = self.alias_holder(ALIAS_PRODUCTION)
        if holder is None:
            return None
        event = self.version(holder).eval_event
        if event is None or event.event_type != "eval_decision" or "metrics" not in event.details:
            raise ConfigError(
                f"{self.name} v{holder} holds production but the audit trail records no evaluation metrics for it "
                "(no eval_decision event with metrics); re-register it through the register stage"
            )
        metrics = event.details["metrics"]
        if sha256_json(metrics) != event.evidence.get("metrics_sha256"):
            raise ConfigError(
                f"{self.name} v{holder}: the metrics of eval_decision event #{event.seq} do not match their "
                "recorded metrics_sha256; run `govern audit verify`"
            )
        return holder, {k: float(v) for k, v in metrics.items()}

    def aliases_of(self, version: str) -> list[str]:
        """The aliases the trail says ``version`` holds (``production`` first)."""
        return [alias for alias, holder in self.alias_holders().items() if holder == str(version)]

    def rollback_candidates(self) -> list[str]:
        """Earlier production versions, most recent first, skipping any rolled back from or withdrawn since."""
        order: list[str] = []
        bad: set[str] = set()
        for e in self.alias_events(ALIAS_PRODUCTION):
            target = e.subject.version
            if e.event_type == "withdrawn":
                bad.add(target)
                continue
            if e.event_type == "rolled_back" and e.details.get("from_version"):
                bad.add(str(e.details["from_version"]))
            bad.discard(target)
            if target in order:
                order.remove(target)
            order.append(target)
        return [v for v in reversed(order[:-1]) if v not in bad]


def authenticated_by_pinned_server(event: Event, policy: ApprovalsPolicy) -> bool:
    """Whether ``event``'s actor was authenticated by the server ``policy`` pins (recorded in the event)."""
    return event.identity_method == "mlflow-basic-auth" and policy.authentication.pins(
        event.details.get("identity_server")
    )


@dataclass
class PolicyChange:
    """One proposed change of the approvals policy (old -> new hash) and who recorded it.

    It is in force once ``required`` distinct people recorded it; ``required``
    and each person's right to record it were decided by the old policy when
    each event was appended (a refusal appends nothing but ``permission_denied``).
    """

    old_sha256: str
    new_sha256: str
    required: int
    events: dict[str, Event] = field(default_factory=dict)
    approved_by: Event | None = None

    @property
    def approvers(self) -> list[str]:
        return sorted(self.events)

    @property
    def approved(self) -> bool:
        return self.approved_by is not None


#: The detail of a ``policy_changed`` event holding the replaced policy's full text (its SHA-256 is ``old_sha256``).
OLD_POLICY_DETAIL = "old_policy"
#: How an approver authenticated by the pinned MLflow server is recorded (``identity.details()``).
_AUTHENTICATED_SOURCE = "mlflow-basic-auth"


def replaced_policy(event: Event) -> tuple[ApprovalsPolicy | None, str]:
    """The policy a ``policy_changed`` event replaces, parsed from the text it carries; ``(None, why)`` otherwise.

    The text counts only when its SHA-256 is the event's ``old_sha256``: nobody
    can write another text with that hash, so the count, the roles and the
    authentication rule that decide the change are the replaced policy's own,
    never a number or a name the event states about itself.
    """
    import hashlib

    import yaml

    from governance.policy import Yaml12Loader, validate_model

    text = event.details.get(OLD_POLICY_DETAIL)
    if not isinstance(text, str):
        return None, "it carries no text of the policy it replaces"
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != event.details.get("old_sha256"):
        return None, "the policy text it carries does not hash to its old_sha256"
    try:
        data = yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader
        return validate_model(data, ApprovalsPolicy, f"event #{event.seq}: old policy"), ""
    except (yaml.YAMLError, ConfigError) as exc:
        return None, f"the policy text it carries does not parse ({exc.__class__.__name__})"


def counts_for_change(event: Event, old: ApprovalsPolicy) -> str | None:
    """``None`` when the replaced policy lets this event's actor approve the change; otherwise why not."""
    if old.acting_role(event.actor, "change_policy") is None:
        return f"{event.actor} holds no role the replaced policy allows to change it"
    rule = old.rules.policy_change
    if rule.authenticated and not (
        event.details.get("identity") == _AUTHENTICATED_SOURCE
        and old.authentication.pins(event.details.get("identity_server"))
    ):
        return f"{event.actor} was not authenticated by the server the replaced policy pins"
    return None


def policy_changes(events: Iterable[Event]) -> list[PolicyChange]:
    """Every proposed policy change in the trail, in the order first proposed; each knows when it was approved.

    Folded from the replaced policy (the text each event carries, checked
    against its hash): how many approvers a change needs, who may approve it
    and whether they must be server-authenticated are that policy's rules. An
    event's own ``required_approvals`` or a role it names decide nothing; an
    event the replaced policy does not allow is left out (and logged).
    """
    import logging

    log = logging.getLogger(__name__)
    changes: dict[tuple[str, str], PolicyChange] = {}
    for e in events:
        if e.event_type != "policy_changed":
            continue
        old, why = replaced_policy(e)
        if old is not None:
            why = counts_for_change(e, old) or ""
        if old is None or why:
            log.warning("policy_changed event #%d does not count: %s", e.seq, why)
            continue
        key = (str(e.details.get("old_sha256")), str(e.details.get("new_sha256")))
        change = changes.setdefault(key, PolicyChange(*key, required=old.rules.policy_change.min_approvers))
        change.events.setdefault(e.actor, e)
        if change.approved_by is None and len(change.events) >= change.required:
            change.approved_by = e
    return list(changes.values())


def pinned_policy(registration: Event | None, changes: Iterable[PolicyChange]) -> tuple[str | None, Event | None]:
    """The approvals policy hash a version is held to, and the event that set it.

    Starts at the hash its registration recorded and follows every approved
    change whose old hash is the one reached so far, in the order they were
    approved. ``(None, registration)`` when the registration recorded none.
    """
    if registration is None:
        return None, None
    pinned, via = registration.evidence.get(POLICY_EVIDENCE_KEY), registration
    approved = sorted((c for c in changes if c.approved_by is not None), key=lambda c: c.approved_by.seq)  # type: ignore[union-attr]
    for change in approved:
        if pinned is not None and change.old_sha256 == pinned:
            pinned, via = change.new_sha256, change.approved_by
    return pinned, via


def policy_trail() -> list[PolicyChange]:
    """Every proposed change of the approvals policy recorded in the trail."""
    return policy_changes(trail.events(objective=POLICY_SUBJECT, event_types=["policy_changed"]))


def _sticky(current: str | None, new: str | None, failed: str) -> str | None:
    """Failure is permanent: once a gate or evaluation failed, a later pass does not erase it."""
    if current == failed:
        return current
    return new or current


def event_aliases(event: Event) -> tuple[str, ...]:
    """The aliases an alias event moves: one, or for ``withdrawn`` those its version held then."""
    if event.event_type == "withdrawn":
        return tuple(event.details.get("aliases") or (ALIAS_PRODUCTION,))
    return (ALIAS_EVENTS[event.event_type],)


def describe_withdrawal(event: Event) -> str:
    """``withdrawn on 2026-11-20 10:04:05Z by dana because <reason> (answers INC-7)``: one bounded line."""
    answers = f" (answers {event.details['incident']})" if event.details.get("incident") else ""
    return f"withdrawn on {event.timestamp[:19]}Z by {event.actor} because {trail.shown_reason(event.reason)}{answers}"


def alias_history(alias_events: Iterable[Event], version: str) -> list[dict[str, Any]]:
    """Who moved which alias to or from ``version``, and when."""
    out = []
    for e in alias_events:
        if e.event_type == "withdrawn":
            if e.subject.version == version:
                row = {"by": e.actor, "at": e.timestamp, "event": e.seq}
                out.extend({"alias": alias, "change": "removed (withdrawn)", **row} for alias in event_aliases(e))
            continue
        alias = ALIAS_EVENTS[e.event_type]
        moved_to = e.subject.version == version and e.event_type not in ALIAS_ENDING_EVENTS
        rollback = " (rollback)" if e.event_type == "rolled_back" else ""
        row = {"by": e.actor, "at": e.timestamp, "event": e.seq}
        out.append({"alias": alias, "change": ("set" if moved_to else "removed") + rollback, **row})
        if e.event_type == "rolled_back" and e.details.get("canary_ended") == version:
            out.append({"alias": ALIAS_CANARY, "change": "removed (rollback)", **row})
    return out


def model_state(name: str) -> ModelState:
    """The trail's view of one registered model."""
    return ModelState(name, trail.events(model=name))


def version_state(name: str, version: str | int) -> VersionState:
    """The trail's view of one version (approvals, statuses, people, alias history)."""
    return model_state(name).version(version)
