"""Refusals recorded: every refused governed action becomes a ``permission_denied`` event in the trail.

One function, :func:`record_denial`, shared by the actions, their
preconditions and the incident commands (each refusal is an attempt, so none
is deduplicated). After the append the model's trail-head anchor moves
(:mod:`governance.registry_anchors`), where MLflow takes it.

Trust boundary: what is written is the trail's; the acting identity is the
one the caller verified, and the policy hash is the one that decided.
"""

from __future__ import annotations

import contextlib

from governance import trail
from governance.approvals.checks import _policy_evidence
from governance.errors import PermissionDenied, RegistryError
from governance.identity import Identity
from governance.policy.approvals import ApprovalsPolicy
from governance.registry_anchors import write_trail_head
from governance.trail import Event, Subject


def record_denial(
    action: str,
    name: str,
    version: str,
    *,
    identity: Identity,
    policy: ApprovalsPolicy | None,
    message: str,
    rule_ids: list[str],
    policy_sha256: str | None = None,
) -> Event:
    """Record a refusal as ``permission_denied`` (every refusal, not deduplicated: each is an attempt).

    ``policy_sha256`` is the hash of the policy that decided (default: the file in force now).
    """
    roles = ",".join(policy.roles_of(identity.user)) if policy is not None else ""
    event = trail.record(
        "permission_denied",
        actor=identity.user,
        role=roles or "none",
        subject=Subject(model=name, version=str(version)),
        reason=message,
        identity_method=identity.method,
        evidence={"approvals_policy_sha256": policy_sha256} if policy_sha256 else _policy_evidence(),
        details={"action": action, "rules": rule_ids, **identity.details()},
    )
    # The refusal stands even when MLflow cannot take the anchor (unreachable, or this user may not write it)
    with contextlib.suppress(RegistryError, PermissionDenied):
        write_trail_head(name)
    return event
