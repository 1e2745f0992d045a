"""Schema of ``policies/eval.yaml``: evaluation thresholds per training method, each with its statistical form.

Every rule names the ``test`` that turns the evaluation's per-item outcomes into
an interval (:mod:`governance.statistics`) and what ``insufficient evidence``
counts as (``on_insufficient``); the file names the ``confidence`` every
interval is taken at. None of them has a default: a rule without its form fails
to parse instead of deciding on a point estimate.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from governance.policy import PolicyFile, Rule, Strict

#: The tests a rule may name (governance/statistics.py says what each reads and computes).
Test = Literal["wilson", "mcnemar", "t", "welch", "bootstrap"]


class MetricRule(Rule):
    """A bound on one evaluation metric, judged by the interval of its ``test``.

    The rule fails when the interval at the policy's confidence lies wholly
    beyond the limit, passes when it lies wholly within, and otherwise finds
    *insufficient evidence*, which counts as ``on_insufficient`` (``deny``,
    ``warn`` or ``pass``; a ``warn`` rule may not deny on less evidence than
    its own failure needs).

    Absolute rules give ``min`` or ``max`` (one limit: the interval is tested
    against it). Regression rules
    (``relative_to: production``) compare with the same metric of the version
    currently holding the ``production`` alias: ``max_regression`` is the
    largest allowed relative worsening, in the direction ``higher_is_better``
    says; production's recorded value is the baseline the limit is taken
    from. Without a production version a regression rule is not applicable
    and is reported as such.
    """

    metric: str
    test: Test
    on_insufficient: Literal["deny", "warn", "pass"]
    min: float | None = None
    max: float | None = None
    relative_to: Literal["production"] | None = None
    max_regression: float | None = None
    higher_is_better: bool | None = None

    @model_validator(mode="after")
    def _threshold_present(self) -> MetricRule:
        if self.relative_to is None and self.min is None and self.max is None:
            raise ValueError(f"rule {self.id}: give min or max (or relative_to with max_regression)")
        if self.min is not None and self.max is not None:
            raise ValueError(f"rule {self.id}: give min or max, not both: a rule tests its interval against one limit")
        if self.relative_to is not None and (self.min is not None or self.max is not None):
            raise ValueError(f"rule {self.id}: a relative_to rule takes its limit from production; drop min/max")
        if self.test == "wilson" and any(b is not None and not 0 < b < 1 for b in (self.min, self.max)):
            raise ValueError(
                f"rule {self.id}: test wilson is for a share against a limit strictly between 0 and 1 "
                f"(got {self.min if self.min is not None else self.max})"
            )
        if self.test == "mcnemar" and self.relative_to is not None:
            raise ValueError(
                f"rule {self.id}: test mcnemar pairs the model with its parent; production's per-item outcomes "
                "are not recorded, so a relative_to rule takes the test of the metric itself"
            )
        if self.severity == "warn" and self.on_insufficient == "deny":
            raise ValueError(
                f"rule {self.id}: a warn rule cannot deny on insufficient evidence (on_insufficient: warn or pass)"
            )
        if self.relative_to is not None and (self.max_regression is None or self.higher_is_better is None):
            raise ValueError(f"rule {self.id}: relative_to needs max_regression and higher_is_better")
        if self.max_regression is not None and self.max_regression < 0:
            # A negative allowance would demand an improvement and fail every equal candidate.
            raise ValueError(
                f"rule {self.id}: max_regression {self.max_regression} is negative; it is the largest allowed "
                "worsening as a fraction of production (0.05 = 5% worse, 0 = no worse)"
            )
        return self


class SafetyRule(MetricRule):
    """A rule of the ``safety`` group: for every method, or only for those ``methods`` lists.

    ``methods`` lets one measure carry a different tolerance where a method's parent differs in
    kind (SFT's parent is a base model, every other policy's is an assistant).
    """

    methods: list[str] | None = Field(default=None, min_length=1)


class SafetyRules(Strict):
    """The ``safety`` group: rules every evaluate stage applies to its safety metrics.

    ``rules`` judge the model's own rates (policy models and reward models);
    ``vs_parent`` judge the change against the parent model (the model the
    policy was trained from), so they apply only where there is a parent.
    """

    # The judge whose verdicts these rules count (a judge file, reviewed like this policy): an evaluation judged by
    # any other file, however reviewed (a rejected candidate kept for comparison), is refused
    judge: str = Field(min_length=1)
    # The least generation budget a safety evaluation may use (``safety.max_new_tokens`` in params): completions cut
    # shorter stop before they show whether the model goes on to comply, so params cannot thin the evidence
    min_new_tokens: int = Field(ge=1)
    rules: list[SafetyRule] = Field(min_length=1)
    vs_parent: list[SafetyRule] = Field(min_length=1)

    def for_method(self, method: str, *, with_parent: bool) -> list[SafetyRule]:
        """The rules that apply to ``method``: its own rates, and the change against the parent where it has one."""
        rules = self.rules + (self.vs_parent if with_parent else [])
        return [rule for rule in rules if rule.methods is None or method in rule.methods]


class EvaluationBudget(Strict):
    """The least size of one method's evaluation (``budgets.<method>``): an evaluate stage's params may raise each,
    never lower it. ``generation_prompts``: held-out prompts generated from (the verbosity counter-metric);
    ``max_new_tokens``: each generation's budget; ``max_length``: the tokens a held-out pair is scored on."""

    generation_prompts: int | None = Field(default=None, ge=1)
    max_new_tokens: int | None = Field(default=None, ge=1)
    max_length: int | None = Field(default=None, ge=1)


class EvalPolicy(PolicyFile):
    """``policies/eval.yaml``: the confidence every interval is taken at, rules per method, the safety group, and
    the least size of each method's evaluation."""

    confidence: float = Field(gt=0.5, lt=1)
    methods: dict[str, list[MetricRule]]
    safety: SafetyRules | None = None
    budgets: dict[str, EvaluationBudget] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _budget_methods_known(self) -> EvalPolicy:
        unknown = sorted(set(self.budgets) - set(self.methods))
        if unknown:
            raise ValueError(f"budgets: {', '.join(unknown)}: no such method under methods")
        return self

    @model_validator(mode="after")
    def _safety_methods_known(self) -> EvalPolicy:
        for rule in [*self.safety.rules, *self.safety.vs_parent] if self.safety else []:
            unknown = sorted(set(rule.methods or []) - set(self.methods))
            if unknown:
                raise ValueError(
                    f"rule {rule.id}: methods {unknown} have no rules under methods: (known: {sorted(self.methods)})"
                )
        return self
