"""Registration facts: the ``model_registered``, ``gate_decision`` and ``eval_decision`` events of a version.

Facts a decision relies on — who trained and registered the version, its risk
tier, its gate and evaluation status and metrics — are frozen into the trail
when the version is registered, so editing a tag in the MLflow UI cannot make
a version approvable, nor move the evaluation gate's production reference.

The version's served location — ``source``, ``storage_location`` (what
``models:/NAME/VERSION`` downloads) and ``run_id``, read from the registry
once, at registration — is frozen there too: the registry columns are only
believed as long as they still equal the trail's values
(:mod:`governance.provenance.version` refuses, drift checks report, any change).
"""

from __future__ import annotations

import math
from typing import Any

from governance import registry, registry_view, trail
from governance.approvals.checks import (
    PolicyInForce,
    _policy_evidence,
    approvals_policy_path,
    load_approvals_policy,
    require_project_policy,
)
from governance.approvals.mirror import mirror, write_trail_head
from governance.approvals.preconditions import require_preconditions
from governance.approvals.state import (
    ModelState,
    model_state,
    normalize_version,
)
from governance.errors import ConfigError, PolicyViolation
from governance.identity import current_identity
from governance.lineage import sha256_json
from governance.policy.approvals import RISK_TIER_ORDER, ApprovalsPolicy
from governance.provenance.version import EVIDENCE_KEYS
from governance.trail import Event, Subject


def _status(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{what}: {value!r} is not one of {', '.join(allowed)}")
    return value


#: What the version declares about itself at registration, frozen in the ``model_registered`` event as the people and
#: the tier are: the registrant's intended and out-of-scope uses (register params ``intended_use``, ``out_of_scope``)
#: and the lineage it names (base model, parent model, the commit it was trained at). The report and ``govern
#: models`` state the frozen value, not the tag; MLflow's copy is mirrored from it, so an edited tag is drift.
DECLARED_TAGS = (
    "lineage.intended_use",
    "lineage.out_of_scope",
    "lineage.base_model",
    "lineage.parent_model",
    "lineage.git_commit",
)


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
    require_risk_tier(name, tags.get("lineage.method"), tier, policy, subject=f"{name} v{version}")
    return people, tier, mv


def require_risk_tier(
    name: str, method: str | None, tier: str, policy: ApprovalsPolicy | None = None, *, subject: str | None = None
) -> None:
    """Refuse a risk tier below what the reviewed policy sets for the method, or below the model's first tier.

    The register stage asks before it creates a version (nothing is registered
    then), and the trail's registration asks again from the version's tag.
    """
    policy = policy or load_approvals_policy()
    floor, source = _tier_floor(name, method, policy)
    if floor is not None and RISK_TIER_ORDER.index(tier) < RISK_TIER_ORDER.index(floor):
        raise PolicyViolation(
            f"{subject or name}: risk tier {tier!r} (tag {policy.rules.min_approvers.risk_tier_tag}, from "
            f"params.yaml) is below {floor!r}, which {source}; a tier is lowered only by an approved policy change "
            f"(govern policy-change), never by a parameter: set the register stage's risk_tier to {floor}"
        )


def _tier_floor(name: str, method: str | None, policy: ApprovalsPolicy) -> tuple[str | None, str]:
    """The lowest tier this version may register with, and what fixes it: the method's, or the model's first."""
    rule = policy.rules.min_approvers
    if method and method in rule.min_tier_by_method:  # the reviewed policy decides; it changes only by approval
        tier = rule.min_tier_by_method[method]
        return tier, f"{approvals_policy_path()} sets for method {method} (min_tier_by_method)"
    earlier = [
        (e.details.get("risk_tier"), e.subject.version)
        for e in model_state(name).events
        if e.event_type == "model_registered" and e.details.get("risk_tier") in RISK_TIER_ORDER
    ]
    if earlier:  # a method the policy does not list: the model's first registration fixes its tier
        return earlier[0][0], f"{name} v{earlier[0][1]} was first registered with (the audit trail)"
    return None, ""


def require_registration_policy(action: str = "register") -> PolicyInForce:
    """Refuse to register under an approvals policy other than the project's pin (nothing is registered); the
    first registration of a trail sets the pin (see :func:`~governance.approvals.checks.require_project_policy`)."""
    return require_project_policy(action)


def record_registration(
    name: str,
    version: str | int,
    *,
    actor: str | None = None,
    evidence: dict[str, str],
    gate_status: str,
    eval_status: str,
    reason: str = "registered by the pipeline",
    metrics: dict[str, float] | None = None,
) -> Event:
    """Record a new version in the trail (``model_registered``, then ``gate_decision`` and ``eval_decision``).

    Freezes the separation-of-duties tags (``lineage.trained_by``,
    ``lineage.registered_by``) and the risk tier (``lineage.risk_tier``) read
    from the version, its served location (``source``, ``storage_location``,
    ``run_id``: what ``models:/NAME/VERSION`` downloads), with ``gate_status`` (passed/failed) and ``eval_status``
    (passed/eval_failed), then mirrors the ``governance.*`` tags. ``metrics``
    (the evaluation's, from its decision file) go into the ``eval_decision``
    event: the evaluation gate of a later version reads its production
    reference from there, never from MLflow tags. Idempotent: re-running for
    the same version appends nothing and returns the first ``model_registered``
    event (``created`` False). Refuses, appending nothing, when the trail does
    not verify.
    """
    version = normalize_version(version)
    require_preconditions("register", name, version)
    in_force = require_registration_policy()  # the pinned policy, parsed from the bytes that were checked
    policy = in_force.policy
    rules = policy.rules
    gate_status = _status(gate_status, (rules.gates_passed.passed, "failed"), "gate_status")
    eval_status = _status(eval_status, (rules.eval_passed.passed, rules.eval_passed.failed), "eval_status")
    people, tier, _mv = _registration_facts(name, version, policy)
    trained_method = (_mv.tags or {}).get("lineage.method")
    # What models:/NAME/VERSION serves, frozen: a later UPDATE of the registry row is drift, and refused
    served = registry_view.served_location(name, version)
    who = current_identity()
    actor = actor or who.user
    method = who.method if actor == who.user else "local-unverified"
    subject = Subject(model=name, version=version)
    decision_evidence = dict(evidence)
    evidence = {**evidence, **_policy_evidence(in_force)}

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
        identity_method=method,
        evidence=evidence,
        details={
            "people": people,
            "risk_tier": tier,
            "declared": {tag: (_mv.tags or {})[tag] for tag in DECLARED_TAGS if (_mv.tags or {}).get(tag)},
            # The method the policy's tier floor (min_tier_by_method) applies to, as registered
            **({"method": trained_method} if trained_method else {}),
            "gate_status": gate_status,
            "eval_status": eval_status,
            **served.frozen(),
            # The server that vouched for the registrant (pinned in the approvals policy), when it did
            **(who.details() if method == who.method else {}),
        },
        guard=already("model_registered"),
        before_commit=mirror_registration,
    )
    record_gate_decision(
        name,
        version,
        status=gate_status,
        evidence=decision_evidence,
        actor=actor,
        policy=policy,
        identity_method=method,
    )
    decided = record_eval_decision(
        name,
        version,
        status=eval_status,
        evidence=decision_evidence,
        actor=actor,
        policy=policy,
        metrics=metrics,
        identity_method=method,
    )
    if not registered.created:
        mirror(name, [version], model_state(name), policy, aliases=False)
    _mirror_attestation(name, version, registered)
    if registered.created or decided.created:
        write_trail_head(name)  # the registrant may write the model (it just registered it): a failure is real
    return registered


def _mirror_attestation(name: str, version: str, registered: Event) -> None:
    """The version's ``lineage.signature_sha256``/``statement_sha256``/``signing_key`` tags set to what the trail
    recorded. Two writers attesting one version at once each tag it before recording; the trail keeps the first
    registration, so the loser's tags are replaced by the winner's (verification reads the trail, the UI the tags)."""
    recorded = {tag: registered.evidence[key] for key, tag in EVIDENCE_KEYS.items() if key in registered.evidence}
    if recorded:
        registry.mirror_version_tags(name, version, recorded)


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
    metrics: dict[str, float] | None = None,
    identity_method: str = "local-unverified",
) -> Event:
    actor = actor or current_identity().user
    details: dict[str, Any] = {"status": status}
    if metrics is not None:
        details["metrics"] = _finite(metrics)
        # Bound to the event's hash like every field, and checked again where the reference is read
        evidence = {**evidence, "metrics_sha256": sha256_json(details["metrics"])}

    def guard(events: list[Event]) -> Event | None:
        same = [e for e in events if e.event_type == kind and e.subject.version == version]
        if same and same[-1].details == details and same[-1].evidence == evidence:
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
        identity_method=identity_method,
        evidence=evidence,
        details=details,
        guard=guard,
        before_commit=mirror_decision,
    )


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    """Numeric metrics as plain floats; NaN/inf (not computed) and non-numbers are left out."""
    out = {}
    for key, value in sorted(metrics.items()):
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(float(value)):
            out[str(key)] = float(value)
    return out


def record_gate_decision(
    name: str,
    version: str | int,
    *,
    status: str,
    evidence: dict[str, str],
    actor: str | None = None,
    reason: str = "data gates decided before training",
    policy: ApprovalsPolicy | None = None,
    identity_method: str = "local-unverified",
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
        identity_method=identity_method,
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
    metrics: dict[str, float] | None = None,
    identity_method: str = "local-unverified",
) -> Event:
    """Record the evaluation status (``passed``/``eval_failed``) and its metrics; once eval_failed, never
    approvable."""
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
        metrics=metrics,
        identity_method=identity_method,
    )


def production_metrics(name: str) -> dict[str, float] | None:
    """The metrics the version holding ``production`` was evaluated with, as the audit trail recorded them.

    The evaluation gate's regression rule compares against these. They come
    from the production version's ``eval_decision`` event in a trail that
    verifies (signed, hash-chained, anchored), never from MLflow tags anyone
    with registry access can edit. None when no version holds production.
    """
    trail.require_intact()
    found = model_state(name).production_metrics()
    return None if found is None else found[1]
