"""Schema of ``policies/eval.yaml``: evaluation thresholds per training method."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from governance.policy import PolicyFile, Rule, Strict


class MetricRule(Rule):
    """A bound on one evaluation metric.

    Absolute rules give ``min`` and/or ``max``. Regression rules
    (``relative_to: production``) compare with the same metric of the version
    currently holding the ``production`` alias: ``max_regression`` is the
    largest allowed relative worsening, in the direction ``higher_is_better``
    says. Without a production version a regression rule is not applicable
    and is reported as such.
    """

    metric: str
    min: float | None = None
    max: float | None = None
    relative_to: Literal["production"] | None = None
    max_regression: float | None = None
    higher_is_better: bool | None = None

    @model_validator(mode="after")
    def _threshold_present(self) -> MetricRule:
        if self.relative_to is None and self.min is None and self.max is None:
            raise ValueError(f"rule {self.id}: give min and/or max (or relative_to with max_regression)")
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

    rules: list[SafetyRule] = Field(min_length=1)
    vs_parent: list[SafetyRule] = Field(min_length=1)

    def for_method(self, method: str, *, with_parent: bool) -> list[SafetyRule]:
        """The rules that apply to ``method``: its own rates, and the change against the parent where it has one."""
        rules = self.rules + (self.vs_parent if with_parent else [])
        return [rule for rule in rules if rule.methods is None or method in rule.methods]


class EvalPolicy(PolicyFile):
    methods: dict[str, list[MetricRule]]
    safety: SafetyRules | None = None

    @model_validator(mode="after")
    def _safety_methods_known(self) -> EvalPolicy:
        for rule in [*self.safety.rules, *self.safety.vs_parent] if self.safety else []:
            unknown = sorted(set(rule.methods or []) - set(self.methods))
            if unknown:
                raise ValueError(
                    f"rule {rule.id}: methods {unknown} have no rules under methods: (known: {sorted(self.methods)})"
                )
        return self
