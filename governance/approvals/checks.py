"""Policy checks: who may do what to a version, decided by ``policies/approvals.yaml`` against trail state.

Pure decisions: nothing here writes the trail or MLflow. The facts come from
:mod:`governance.approvals.state` (the trail); the rules from the policy file.

Trust boundary: the policy file is found through ``GOVERN_POLICY_DIR`` (or
``policies/``), which anyone can point anywhere and edit. So the file read is
never trusted by itself: :func:`policy_pin_message` compares its SHA-256 with
the hash the trail binds to the version (recorded at registration, moved on
only by an approved ``policy_changed``), and every action refuses on a mismatch.
That check is not a rule of the policy file, so an edited file cannot waive it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from governance import trail
from governance.approvals.state import (
    POLICY_EVIDENCE_KEY,
    ModelState,
    PolicyChange,
    VersionState,
    model_state,
    pinned_policy,
    policy_trail,
)
from governance.errors import ConfigError, PermissionDenied, PolicyViolation
from governance.gates import Violation, Waiver, read_waiver_file
from governance.policy import Yaml12Loader, validate_model
from governance.policy.approvals import POLICY_DIR_ENV as POLICY_DIR_ENV
from governance.policy.approvals import ApprovalsPolicy
from governance.policy.approvals import approvals_policy_path as approvals_policy_path
from governance.policy.approvals import load_approvals_policy as load_approvals_policy
from governance.policy.approvals import policy_dir as policy_dir
from governance.trail import Event

log = logging.getLogger(__name__)

#: Which rules each action checks, in the order they are reported.
ACTION_RULES: dict[str, tuple[str, ...]] = {
    "approve": (
        "role_required",
        "registered",
        "gates_passed",
        "eval_passed",
        "separation_of_duties",
        "authenticated_approvals",
    ),
    "reject": ("role_required", "registered"),
    "promote": ("role_required", "registered", "gates_passed", "eval_passed", "min_approvers", "no_open_rejection"),
    "canary": ("role_required", "registered", "gates_passed", "eval_passed", "min_approvers", "no_open_rejection"),
    "rollback": ("role_required", "registered", "gates_passed", "eval_passed", "min_approvers", "no_open_rejection"),
    # Ending a canary takes traffic away from a version: always allowed to whoever may start one
    "canary_end": ("role_required",),
    # Taking a version out of service needs nothing of the version: an incident may be about any of it
    "withdraw": ("role_required",),
}
#: Actions that share another action's permission entry in the policy.
PERMISSION_OF = {"canary_end": "canary"}
_PERMISSION_RULES = {"role_required", "separation_of_duties", "authenticated_approvals"}
#: How the trail's ``identity`` detail reads beside an approval.
AUTHENTICATED_SOURCE = "mlflow-basic-auth"
#: The refusal when the policy in force is not the one the trail pins for the version. Not a rule of the
#: policy file on purpose: the file is what it guards against.
POLICY_PINNED_RULE = "approval.policy_pinned"


# --------------------------------------------------------------------------- policy files


def load_approval_waivers(path: str | Path | None = None) -> list[Waiver]:
    """Waivers from ``policies/waivers.yaml`` (a missing file means none), believed only as committed in git.

    A waiver names who granted it; the file is all that says so. A waiver
    typed into the file and not committed (or a file outside a git checkout)
    is anyone's edit, so none of its waivers count: each action is decided as
    if the file were empty, and a warning says why.
    """
    from governance.policy.review import read_reviewed

    path = Path(path or policy_dir() / "waivers.yaml")
    if not path.is_file():
        return []
    review = read_reviewed(path)  # one read: the bytes whose review is asked are the bytes parsed
    waivers = read_waiver_file(path, review.data)
    if waivers:
        why = review.problem
        if why is not None:
            log.warning(
                "%s: %d waiver(s) not applied: the file is not reviewed in git (%s); a waiver counts once committed",
                path,
                len(waivers),
                why,
            )
            return []
    return waivers


def _policy_evidence(in_force: PolicyInForce | None = None) -> dict[str, str]:
    """The approvals policy's hash, and whether the reviewed commit holds exactly these bytes (``reviewed``) or why not.

    ``in_force`` is the policy an action decided under: its hash and review are of the bytes it was parsed from
    (no second read); without one, the file is read once for both.
    """
    from governance.policy.review import read_reviewed, review_of

    if in_force is not None:
        review = review_of(in_force.path, in_force.text.encode("utf-8"))
    else:
        path = approvals_policy_path()
        if not path.is_file():
            return {}
        review = read_reviewed(path)
    return {"approvals_policy_sha256": review.sha256, "approvals_policy_review": review.status}


@dataclass(frozen=True)
class PolicyInForce:
    """The approvals policy as read now: parsed, and the SHA-256 of the exact bytes parsed."""

    policy: ApprovalsPolicy
    sha256: str
    path: Path
    text: str


def read_policy(path: str | Path) -> PolicyInForce:
    """Parse an approvals policy file and hash the same bytes (no window between what is hashed and used)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
        data = yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        where = f":{exc.problem_mark.line + 1}" if exc.problem_mark is not None else ""
        raise ConfigError(f"{path}{where}: invalid YAML ({exc.problem})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc.__class__.__name__})") from None
    policy = validate_model(data, ApprovalsPolicy, str(path))
    return PolicyInForce(policy=policy, sha256=hashlib.sha256(raw).hexdigest(), path=path, text=text)


def policy_in_force() -> PolicyInForce:
    """The approvals policy the environment points at (``GOVERN_POLICY_DIR`` or ``policies/``), with its hash."""
    return read_policy(approvals_policy_path())


#: What ``govern models``/``govern show`` state as a version's status under a policy that is not its pin.
NOT_STATED = "not-stated"


def policy_pin_message(state: VersionState, in_force: PolicyInForce, changes: Iterable[PolicyChange]) -> str | None:
    """Why ``in_force`` may not decide for ``state``'s version, or None when it is the policy the trail pins.

    The pin is the hash the version's ``model_registered`` event recorded,
    moved on by each approved ``policy_changed`` (see
    :func:`governance.approvals.state.pinned_policy`). An unregistered version
    has no pin; ``approval.registered`` refuses it.
    """
    if state.registration is None:
        return None
    pinned, via = pinned_policy(state.registration, changes)
    if pinned is None:
        return (
            f"its model_registered event #{state.registration.seq} records no approvals_policy_sha256, so no "
            "policy is pinned for it; register a new version through the register stage"
        )
    if pinned == in_force.sha256:
        return None
    how = (
        f"in force since policy change event #{via.seq}"
        if via is not None and via.event_type == "policy_changed"
        else f"recorded at registration, event #{state.registration.seq}"
    )
    return (
        f"the approvals policy in force ({in_force.path}, sha256 {in_force.sha256[:12]}) is not the one pinned for "
        f"it (sha256 {pinned[:12]}, {how}); restore that policy, or record an approved change with "
        "`govern policy-change --old FILE`"
    )


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
    "canary_end": "end a canary",
    "rollback": "roll back",
    "withdraw": "withdraw a version from service",
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
    identity_source: str | None = None,
    identity_server: str | None = None,
) -> Check:
    """Apply every rule of ``action`` to ``state``; waivers (from authorised granters) cover waivable rules.

    ``identity_source`` is how the acting user was identified (``local`` or
    ``mlflow-basic-auth``) and ``identity_server`` the server that did it; None
    skips the rules about them (a version's own standing).
    """
    rules = policy.rules
    subject = f"{state.name} v{state.version}"
    found: list[tuple[Any, str]] = []
    role = policy.acting_role(user, PERMISSION_OF.get(action, action))
    for rule_name in ACTION_RULES[action]:
        rule = getattr(rules, rule_name)
        message = _rule_message(
            rule_name,
            action=action,
            user=user,
            policy=policy,
            state=state,
            role=role,
            identity_source=identity_source,
            identity_server=identity_server,
        )
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
    rule_name: str,
    *,
    action: str,
    user: str,
    policy: ApprovalsPolicy,
    state: VersionState,
    role: str | None,
    identity_source: str | None = None,
    identity_server: str | None = None,
) -> str | None:
    """The violation message of one rule, or None when it holds."""
    rules = policy.rules
    if rule_name == "role_required":
        return None if role is not None else _no_role_message(action, user, policy)
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
    if rule_name == "authenticated_approvals":
        tier = state.tier(policy)
        if identity_source is None or state.registration is None:
            return None  # an unregistered version has no frozen tier; approval.registered refuses it
        if tier not in rules.authenticated_approvals.risk_tiers:
            return None
        if identity_source == AUTHENTICATED_SOURCE:
            if policy.authentication.pins(identity_server):
                return None
            return (
                f"{user} was authenticated by {identity_server or 'an unnamed server'}, not the server the policy "
                f"pins (authentication.server: {policy.authentication.server or 'null'}); risk tier {tier} accepts "
                "only approvals authenticated by the pinned server"
            )
        return (
            f"{user} is identified locally (GOVERN_USER or the OS user, unverified); risk tier {tier} accepts only "
            "approvals authenticated by the MLflow server (MLFLOW_TRACKING_USERNAME/PASSWORD, basic-auth server)"
        )
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


def _no_role_message(action: str, user: str, policy: ApprovalsPolicy) -> str:
    allowed = ", ".join(policy.permissions[PERMISSION_OF.get(action, action)]) or "no role"  # type: ignore[index]
    held = ", ".join(policy.roles_of(user)) or "none"
    return f"{user} holds no role allowed to {_ACTION_WORDS[action]} (allowed: {allowed}; {user}'s roles: {held})"


def role_violation(action: str, *, user: str, policy: ApprovalsPolicy, subject: str) -> Violation | None:
    """The ``role_required`` violation of ``user`` for ``action`` on ``subject``, or None when a role allows it.

    For actions whose version is known only from the trail (rollback, canary-end,
    withdraw): who asks is decided before what they ask about, so someone
    without the role hears that, not what the model's aliases are.
    """
    if policy.acting_role(user, PERMISSION_OF.get(action, action)) is not None:
        return None
    rule = policy.rules.role_required
    return Violation(
        rule_id=rule.id, severity=rule.severity, subject=subject, message=_no_role_message(action, user, policy)
    )


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


def project_policy_pin() -> tuple[str | None, Event | None]:
    """The approvals policy hash the project is held to now, and the event that set it (None before any).

    The newest ``model_registered`` event of any model that recorded a policy
    hash, moved on by every approved ``policy_changed`` after it. Trail-wide on
    purpose: a new model name does not get a fresh pin.
    """
    registrations = trail.events(event_types=["model_registered"])
    latest = next((e for e in reversed(registrations) if POLICY_EVIDENCE_KEY in e.evidence), None)
    if latest is None:
        return None, None
    return pinned_policy(latest, policy_trail())


def require_project_policy(action: str) -> PolicyInForce:
    """Refuse ``action`` (register, reconcile) under an approvals policy other than the project's pin (nothing done).

    A version is held to the policy its registration records; registering
    under a copied or edited policy (``GOVERN_POLICY_DIR``, an uncommitted
    edit) would make that copy the version's pin and let it decide the
    version's approvals. The first registration of a trail sets the pin
    (its git review status is recorded beside it, see :func:`_policy_evidence`);
    after that the pin moves only through approved ``policy_changed`` events.
    """
    in_force = policy_in_force()
    pinned, via = project_policy_pin()
    if pinned is None or pinned == in_force.sha256:
        return in_force
    how = (
        f"in force since policy change event #{via.seq}"
        if via is not None and via.event_type == "policy_changed"
        else f"recorded by {via.subject.label()}'s registration, event #{via.seq}"
        if via is not None
        else ""
    )
    raise PolicyViolation(
        f"{action} refused by {POLICY_PINNED_RULE}: the approvals policy in force ({in_force.path}, sha256 "
        f"{in_force.sha256[:12]}) is not the project's pinned policy (sha256 {pinned[:12]}, {how}); restore that "
        "policy, or record an approved change with `govern policy-change --old FILE`"
    )
