"""Schema of ``policies/objectives.yaml``: which training objectives are approved, by hash.

A reward function (or a reward model's recipe) *is* what a GRPO or RLHF stage
optimises, so it is approved like a release: by the SHA-256 of what defines
it. ``stages`` says where ``govern approve-objective STAGE`` finds a stage's
current objectives; ``approved`` lists objectives approved in code review —
the commit that adds an entry is recorded as its evidence.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from governance.policy import PolicyFile, Rule, Strict

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CALLABLE_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_MODULE_REF = re.compile(r"^[A-Za-z_][\w.]*$")


class ApprovedHashRule(Rule):
    """A stage may optimise only objectives whose current hash is approved."""


class StageObjectives(Strict):
    """How to compute a stage's current objective hashes (imported by name, never statically).

    Either ``reward_module`` with the function names (given directly in
    ``functions``, or read from ``params.yaml`` at ``params_key``), hashed by
    :func:`governance.objectives.objective_hashes`; or ``hashes_from``, a
    ``module:function`` returning ``{objective name: sha256}``.
    """

    reward_module: str | None = None
    functions: list[str] | None = None
    params_key: str | None = Field(default=None, description="dotted path in params.yaml to the list of names")
    hashes_from: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> StageObjectives:
        if self.hashes_from is not None:
            if self.reward_module or self.functions or self.params_key:
                raise ValueError("give either hashes_from, or reward_module with functions/params_key, not both")
            if not _CALLABLE_REF.match(self.hashes_from):
                raise ValueError(f"hashes_from: {self.hashes_from!r} is not module:function")
            return self
        if not self.reward_module or not _MODULE_REF.match(self.reward_module):
            raise ValueError("reward_module: required dotted module path (or give hashes_from)")
        if (self.functions is None) == (self.params_key is None):
            raise ValueError("give exactly one of functions (names) or params_key (where params.yaml lists them)")
        return self


class CodeReviewApproval(Strict):
    """An objective approved in code review: the commit adding this entry is the evidence."""

    stage: str
    objective: str = Field(description="reward function name (or objective name, e.g. reward_model_recipe)")
    sha256: str
    approved_by: str
    reason: str = Field(min_length=1)

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _SHA256.match(value):
            raise ValueError("must be 64 lowercase hex characters (a SHA-256)")
        return value


class ObjectiveRules(Strict):
    approved_hash: ApprovedHashRule


class ObjectivesPolicy(PolicyFile):
    rules: ObjectiveRules
    stages: dict[str, StageObjectives] = {}
    approved: list[CodeReviewApproval] = []
