"""Schema of ``policies/approvals.yaml``: who may do what to a model version, and when.

The file names roles and their members, which roles may perform each action,
and the rules a version must satisfy before it is approved or moved to an
alias. Every action must be listed (a missing one fails loudly instead of
being open to all), every role an action names must exist, and the rules
that guard the data and evaluation gates can never be waived.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from governance.policy import PolicyFile, Rule, Strict, load_policy_file

Action = Literal[
    "approve",
    "reject",
    "promote",
    "canary",
    "rollback",
    "withdraw",
    "approve_objective",
    "grant_waiver",
    "open_incident",
    "close_incident",
    "change_policy",
]
ACTIONS: tuple[str, ...] = Action.__args__  # type: ignore[attr-defined]
RiskTier = Literal["low", "medium", "high"]
#: Risk tiers from the least to the most demanding.
RISK_TIER_ORDER: tuple[str, ...] = ("low", "medium", "high")
#: Incident severities at which opening an incident withdraws the version it names at once (or never).
WithdrawOn = Literal["critical", "high", "never"]


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
    #: The lowest tier a version trained by each method may register with. The tier tag comes from params,
    #: which anyone can edit: a tier below this is refused; a model's first registered tier is a floor too.
    min_tier_by_method: dict[str, RiskTier]

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


class PolicyChangeRule(Rule):
    """A change of this policy is in force only once this many distinct ``change_policy`` holders recorded it.

    Decided by the policy the change replaces (its roles, this count), never by
    the proposed one, so nobody can write themselves into the roles that
    approve their own edit.
    """

    severity: Literal["deny"]
    waivable: Literal[False]
    min_approvers: int = Field(ge=2, description="distinct people; one person alone never changes the policy")
    authenticated: bool = Field(description="count only approvers authenticated by the pinned MLflow server")


class ApprovalRules(Strict):
    role_required: RoleRequiredRule
    registered: RegisteredRule
    gates_passed: GatesPassedRule
    eval_passed: EvalPassedRule
    separation_of_duties: SeparationOfDutiesRule
    min_approvers: MinApproversRule
    authenticated_approvals: AuthenticatedApprovalsRule
    no_open_rejection: NoOpenRejectionRule
    policy_change: PolicyChangeRule


class IncidentsPolicy(Strict):
    """What opening an incident on a serving version does by itself.

    ``withdraw_on: critical`` withdraws the version (its ``production`` and
    ``canary`` aliases) when a critical incident is opened on it; ``high``
    does so for high and critical incidents; ``never`` leaves it to a person
    with the ``withdraw`` permission. The withdrawal is recorded as the
    opener's, authorised by this setting, and names the incident.
    """

    withdraw_on: WithdrawOn = Field(description="critical | high | never")
    rationale: str

    def withdraws(self, severity: str) -> bool:
        """Whether opening an incident of ``severity`` withdraws the version at once."""
        if self.withdraw_on == "never":
            return False
        return severity == "critical" or (self.withdraw_on == "high" and severity == "high")


#: What ``govern watch`` does with registry drift a webhook told it of.
OnDrift = Literal["record", "revert"]


class RegistryWatchPolicy(Strict):
    """What ``govern watch`` does when an alias or ``governance.*`` tag is changed outside ``govern``.

    ``record`` appends a ``registry_drift`` event and leaves MLflow as it is
    (``govern reconcile`` repairs it later, by hand); ``revert`` records it and
    then runs reconcile, which restores MLflow from the trail and records a
    ``registry_reconciled`` event.
    """

    on_drift: OnDrift = Field(description="record | revert")
    rationale: str


_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


class UnauthenticatedServer(Strict):
    """Whether a tracking server that authenticates nobody (no ``--app-name basic-auth``) may be used, and for what.

    Such a server needs no credentials, so who acts against it is only a claim
    (``GOVERN_USER`` or the OS user), recorded as local and unverified.
    ``risk_tiers`` lists the tiers whose runs may use one; ``[]`` never.
    """

    risk_tiers: list[RiskTier] = Field(description="risk tiers that may use a server without authentication")
    rationale: str

    def allows(self, tier: str) -> bool:
        return tier in self.risk_tiers


class Authentication(Strict):
    """The one MLflow server whose basic-auth users count as authenticated, pinned by URL (and certificate).

    ``server: null`` says no server authenticates anyone: every identity is
    local and unverified, and a tracking server is refused as an identity
    source. For ``https`` the SHA-256 fingerprint of the server's TLS
    certificate is required (``openssl x509 -noout -fingerprint -sha256``), so
    a server that merely answers on the pinned name is refused too.
    """

    server: str | None = Field(description="the tracking server URL (scheme://host[:port]), or null for none")
    tls_sha256_fingerprint: str | None = Field(description="https only: SHA-256 of the server's certificate (DER)")
    unauthenticated_server: UnauthenticatedServer

    @field_validator("server")
    @classmethod
    def _server(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username
            or parts.path.strip("/")
            or parts.query
        ):
            raise ValueError(f"{value!r} is not a server URL; write scheme://host[:port], e.g. https://mlflow.internal")
        return normalize_server(value)

    @field_validator("tls_sha256_fingerprint")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digest = value.strip().replace(":", "").lower()
        if not _FINGERPRINT.match(digest):
            raise ValueError(
                f"{value!r} is not a SHA-256 fingerprint; write the 64 hex digits "
                "`openssl x509 -noout -fingerprint -sha256` prints (colons allowed)"
            )
        return digest

    @model_validator(mode="after")
    def _fingerprint_for_https(self) -> Authentication:
        scheme = urlsplit(self.server).scheme if self.server else None
        if scheme == "https" and self.tls_sha256_fingerprint is None:
            raise ValueError(f"authentication: {self.server} is https; pin its certificate in tls_sha256_fingerprint")
        if scheme != "https" and self.tls_sha256_fingerprint is not None:
            raise ValueError("authentication: tls_sha256_fingerprint pins an https server; server is not https")
        return self

    def pins(self, server: str | None) -> bool:
        """Whether ``server`` (an identity's) is the pinned one."""
        return self.server is not None and server is not None and normalize_server(server) == self.server


def normalize_server(url: str) -> str:
    """``scheme://host[:port]`` lower-cased, without a trailing slash: how two spellings of one server compare."""
    parts = urlsplit(url.strip())
    netloc = (parts.hostname or "").lower()
    if parts.port is not None:
        netloc += f":{parts.port}"
    return f"{parts.scheme.lower()}://{netloc}"


class ApprovalsPolicy(PolicyFile):
    roles: dict[str, list[str]] = Field(description="role -> members (MLflow user names, or local user names)")
    permissions: dict[Action, list[str]] = Field(description="action -> roles allowed to perform it")
    authentication: Authentication
    incidents: IncidentsPolicy
    registry_watch: RegistryWatchPolicy
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


# --------------------------------------------------------------------------- where the file is

#: Where the policy files live when not ``policies/`` (anyone can set it: what it names is pinned in the trail).
POLICY_DIR_ENV = "GOVERN_POLICY_DIR"


def policy_dir() -> Path:
    """Where the policy files live: ``GOVERN_POLICY_DIR`` or ``policies/``."""
    return Path(os.environ.get(POLICY_DIR_ENV) or "policies")


def approvals_policy_path() -> Path:
    """The approvals policy file in force: ``approvals.yaml`` under :func:`policy_dir`."""
    return policy_dir() / "approvals.yaml"


def load_approvals_policy(path: str | Path | None = None) -> ApprovalsPolicy:
    """Parse and validate ``policies/approvals.yaml`` (the file read is believed only as the trail pins it)."""
    return load_policy_file(path or approvals_policy_path(), ApprovalsPolicy)
