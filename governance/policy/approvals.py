"""Schema of ``policies/approvals.yaml``: who may do what to a model version, and when.

The file names roles and their members, which roles may perform each action,
and the rules a version must satisfy before it is approved or moved to an
alias. Every action must be listed (a missing one fails loudly instead of
being open to all), every role an action names must exist, and the rules
that guard the data and evaluation gates can never be waived.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from governance.policy import PolicyFile, Rule, Strict

Action = Literal[
    "approve",
    "reject",
    "promote",
    "canary",
    "rollback",
    "approve_objective",
    "grant_waiver",
    "open_incident",
    "close_incident",
]
ACTIONS: tuple[str, ...] = Action.__args__  # type: ignore[attr-defined]
RiskTier = Literal["low", "medium", "high"]


class RoleRequiredRule(Rule):
    """The acting user must hold a role the action lists under ``permissions``."""

    severity: Literal["deny"]
    waivable: Literal[False]


class RegisteredRule(Rule):
    """The version must have been registered through the governed pipeline (a ``model_registered`` event)."""

    severity: Literal["deny"]
    waivable: Literal[False]


class GatesPassedRule(Rule):
    """The data gates the version was trained behind must all have passed (waivers applied at the gate)."""

    severity: Literal["deny"]
    waivable: Literal[False]
    tag: str = Field(description="version tag the registration records the gate status in")
    passed: str = Field(description="the tag value that means every gate passed")


class EvalPassedRule(Rule):
    """The version's evaluation gate must have passed; once ``eval_failed``, never approvable."""

    severity: Literal["deny"]
    waivable: Literal[False]
    tag: str
    passed: str
    failed: str


class SeparationOfDutiesRule(Rule):
    """Nobody named in these version tags (trainer, registrant) may approve the version."""

    waivable: bool
    tags: list[str] = Field(min_length=1)


class MinApproversRule(Rule):
    """Distinct approvers a version needs before promotion or canary, by risk tier."""

    waivable: bool
    risk_tier_tag: str
    default_risk_tier: RiskTier
    by_risk_tier: dict[RiskTier, int]

    @model_validator(mode="after")
    def _every_tier(self) -> MinApproversRule:
        missing = [t for t in RiskTier.__args__ if t not in self.by_risk_tier]  # type: ignore[attr-defined]
        if missing:
            raise ValueError(f"rule {self.id}: by_risk_tier needs a count for {', '.join(missing)}")
        if any(count < 1 for count in self.by_risk_tier.values()):
            raise ValueError(f"rule {self.id}: by_risk_tier counts must be at least 1")
        return self


class AuthenticatedApprovalsRule(Rule):
    """In these risk tiers an approval counts only when the MLflow server authenticated the approver.

    On the local store anyone can be anyone (``GOVERN_USER``); listing a tier
    here makes such approvals refused at ``govern approve`` and not counted
    towards ``min_approvers`` (an approval recorded before the tier was listed).
    """

    severity: Literal["deny"]
    waivable: Literal[False]
    risk_tiers: list[RiskTier] = Field(description="tiers that accept only server-authenticated approvals")


class NoOpenRejectionRule(Rule):
    """A reviewer's standing rejection blocks promotion until that reviewer approves."""

    waivable: bool


class ApprovalRules(Strict):
    role_required: RoleRequiredRule
    registered: RegisteredRule
    gates_passed: GatesPassedRule
    eval_passed: EvalPassedRule
    separation_of_duties: SeparationOfDutiesRule
    min_approvers: MinApproversRule
    authenticated_approvals: AuthenticatedApprovalsRule
    no_open_rejection: NoOpenRejectionRule


class ApprovalsPolicy(PolicyFile):
    roles: dict[str, list[str]] = Field(description="role -> members (MLflow user names, or local user names)")
    permissions: dict[Action, list[str]] = Field(description="action -> roles allowed to perform it")
    rules: ApprovalRules

    @model_validator(mode="after")
    def _consistent(self) -> ApprovalsPolicy:
        missing = [a for a in ACTIONS if a not in self.permissions]
        if missing:
            raise ValueError(f"permissions: list the roles for every action; missing {', '.join(missing)}")
        for action, roles in self.permissions.items():
            unknown = [r for r in roles if r not in self.roles]
            if unknown:
                raise ValueError(f"permissions.{action}: unknown role(s) {', '.join(unknown)}; define them under roles")
        return self

    def roles_of(self, user: str) -> list[str]:
        """The roles ``user`` holds, in file order."""
        return [role for role, members in self.roles.items() if user in members]

    def acting_role(self, user: str, action: str) -> str | None:
        """The first role of ``user`` that may perform ``action``, or None."""
        allowed = self.permissions.get(action, [])  # type: ignore[call-overload]
        return next((role for role in self.roles_of(user) if role in allowed), None)

    def required_approvals(self, risk_tier: str) -> int:
        return self.rules.min_approvers.by_risk_tier[risk_tier]  # type: ignore[index]
