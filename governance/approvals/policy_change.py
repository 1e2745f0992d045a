"""Changing the approvals policy: a recorded, approved ``policy_changed`` event per approver.

Every version is held to the approvals policy it was registered under (its
SHA-256 in the ``model_registered`` event). Another policy applies to it only
after a change old -> new is in force: ``rules.policy_change.min_approvers``
distinct people, each holding a role the *old* policy allows to
``change_policy`` (and authenticated by the server the old policy pins, when
it says so), each recorded ``govern policy-change --old FILE`` for the same
old and new hashes. Each event binds the old and new hash and the unified diff
of the policy text into the signed trail.

Trust boundary: the old policy is the file given with ``--old``, believed only
because its SHA-256 is one the trail already holds (a policy some version was
registered under, or the result of an approved change); the new policy is the
file in force now, believed only as the bytes the event hashes. The proposed
policy decides nothing about its own approval.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance import trail
from governance.approvals.checks import AUTHENTICATED_SOURCE, PolicyInForce, policy_in_force, read_policy
from governance.approvals.preconditions import require_preconditions
from governance.approvals.state import (
    OLD_POLICY_DETAIL,
    POLICY_EVIDENCE_KEY,
    POLICY_SUBJECT,
    PolicyChange,
    policy_changes,
)
from governance.errors import ConfigError, PermissionDenied
from governance.identity import Identity, current_identity
from governance.trail import Event, Subject

log = logging.getLogger(__name__)

ACTION = "change_policy"


@dataclass
class PolicyChangeOutcome:
    """The event in force for this approver, and the change as the trail now folds it."""

    event: Event
    change: PolicyChange

    @property
    def created(self) -> bool:
        return self.event.created


def policy_diff(old: PolicyInForce, new: PolicyInForce) -> str:
    """The unified diff of the policy text, old -> new, labelled with both hashes."""
    return "".join(
        difflib.unified_diff(
            old.text.splitlines(keepends=True),
            new.text.splitlines(keepends=True),
            fromfile=f"approvals.yaml@{old.sha256[:12]}",
            tofile=f"approvals.yaml@{new.sha256[:12]}",
        )
    )


def known_policy_hashes(events: list[Event]) -> set[str]:
    """Policies the trail has held a version to: registered under, or the result of an approved change."""
    known = {e.evidence[POLICY_EVIDENCE_KEY] for e in events if e.event_type == "model_registered"}
    known |= {c.new_sha256 for c in policy_changes(events) if c.approved}
    known.discard("")
    return known


def record_policy_change(old_path: str | Path, *, reason: str, identity: Identity | None = None) -> PolicyChangeOutcome:
    """Record the acting user's approval of replacing the policy ``old_path`` by the policy in force now.

    Refuses (one line; a permission refusal is recorded as ``permission_denied``)
    when the two are the same, when the old one is not a policy the trail
    knows, when the user holds no ``change_policy`` role under the old policy,
    or when the old policy wants authenticated approvers and the user is not
    one. Idempotent per approver.
    """
    from governance.approvals.actions import clean_reason

    reason = clean_reason(reason)
    require_preconditions(ACTION)
    new = policy_in_force()
    old = read_policy(old_path)
    if old.sha256 == new.sha256:
        raise ConfigError(
            f"--old {old_path}: it is the policy in force ({new.path}, sha256 {new.sha256[:12]}); give the "
            "policy the change replaces (e.g. `git show HEAD~1:policies/approvals.yaml > old.yaml`)"
        )
    history = trail.events(event_types=["model_registered", "policy_changed"])
    if old.sha256 not in known_policy_hashes(history):
        raise ConfigError(
            f"--old {old_path}: sha256 {old.sha256[:12]} is no approvals policy the audit trail holds a version "
            "to (none was registered under it, no approved change led to it); give the policy being replaced"
        )
    # The old policy decides: its authentication pin, its roles, its count
    identity = identity or current_identity(old.policy.authentication, policy_source=f"{old_path}")
    rule = old.policy.rules.policy_change
    subject_line = f"approvals policy {old.sha256[:12]} -> {new.sha256[:12]}"
    role = old.policy.acting_role(identity.user, ACTION)
    if role is None:
        allowed = ", ".join(old.policy.permissions[ACTION]) or "no role"
        held = ", ".join(old.policy.roles_of(identity.user)) or "none"
        _refuse(
            identity,
            old,
            f"policy-change refused by {old.policy.rules.role_required.id}: {subject_line}: {identity.user} holds "
            f"no role the replaced policy allows to change it (allowed: {allowed}; {identity.user}'s roles: {held})",
            rule_id=old.policy.rules.role_required.id,
            new=new,
        )
    if rule.authenticated and not (
        identity.source == AUTHENTICATED_SOURCE and old.policy.authentication.pins(identity.server)
    ):
        how = (
            f"authenticated by {identity.server}, not the pinned server "
            f"({old.policy.authentication.server or 'none pinned'})"
            if identity.source == AUTHENTICATED_SOURCE
            else "identified locally (GOVERN_USER or the OS user, unverified)"
        )
        _refuse(
            identity,
            old,
            f"policy-change refused by {rule.id}: {subject_line}: {identity.user} is {how}; a policy change counts "
            "only approvers the pinned MLflow server authenticated",
            rule_id=rule.id,
            new=new,
        )
    details: dict[str, Any] = {
        "file": "approvals.yaml",
        "old_sha256": old.sha256,
        "new_sha256": new.sha256,
        "required_approvals": rule.min_approvers,  # shown; the fold takes the count from the old policy's text
        "diff": policy_diff(old, new),
        OLD_POLICY_DETAIL: old.text,  # hashes to old_sha256: the rules that decide this change travel with it
        **identity.details(),
    }

    def guard(events: list[Event]) -> Event | None:
        return next(
            (
                e
                for e in events
                if e.event_type == "policy_changed"
                and e.actor == identity.user
                and e.details.get("old_sha256") == old.sha256
                and e.details.get("new_sha256") == new.sha256
            ),
            None,
        )

    event = trail.record(
        "policy_changed",
        actor=identity.user,
        role=role,
        subject=Subject(objective=POLICY_SUBJECT, objective_hash=new.sha256),
        reason=reason,
        identity_method=identity.method,
        evidence={POLICY_EVIDENCE_KEY: old.sha256, "new_approvals_policy_sha256": new.sha256},
        details=details,
        guard=guard,
    )
    changes = policy_changes(trail.events(objective=POLICY_SUBJECT, event_types=["policy_changed"]))
    change = next(c for c in changes if (c.old_sha256, c.new_sha256) == (old.sha256, new.sha256))
    return PolicyChangeOutcome(event=event, change=change)


def _refuse(identity: Identity, old: PolicyInForce, line: str, *, rule_id: str, new: PolicyInForce) -> None:
    trail.record(
        "permission_denied",
        actor=identity.user,
        role=",".join(old.policy.roles_of(identity.user)) or "none",
        subject=Subject(objective=POLICY_SUBJECT, objective_hash=new.sha256),
        reason=line,
        identity_method=identity.method,
        evidence={POLICY_EVIDENCE_KEY: old.sha256, "new_approvals_policy_sha256": new.sha256},
        details={"action": ACTION, "rules": [rule_id], **identity.details()},
    )
    raise PermissionDenied(line)
