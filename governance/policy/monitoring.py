"""Schema of ``policies/monitoring.yaml``: what ``govern monitor`` checks on a window of production traffic.

Each rule compares a traffic window with a baseline (the version's recorded
evaluation generations, or an earlier window) or with an absolute bound.
Distribution rules (response length, reward-model scores, embeddings) use a
two-sample test and fire only when the test is significant (``p < alpha``)
*and* the effect is larger than the bound — with 100k requests a trivial
difference is significant, with 20 baseline generations a large one may not be.
Every threshold is required; nothing defaults in code.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from governance.policy import PolicyFile, Rule, Strict


class _TestBounds(Strict):
    alpha: float = Field(gt=0, lt=1, description="significance level of the two-sample test")


class LengthDriftRule(Rule, _TestBounds):
    """Response length (characters): two-sample Kolmogorov-Smirnov test against the baseline."""

    max_ks_statistic: float = Field(gt=0, le=1, description="largest allowed KS distance between the two CDFs")


class RefusalRateRule(Rule, _TestBounds):
    """Share of responses matching a refusal pattern, against the baseline's share (one-sided Fisher test)."""

    patterns: list[str] = Field(min_length=1, description="case-insensitive regular expressions of a refusal")
    max_increase: float = Field(ge=0, le=1, description="largest allowed rise of the refusal rate, absolute")


class PiiRule(Rule):
    """PII in the window (the project's PII scanner, policies/pii.yaml): responses gated, prompts counted."""

    max_response_rate: float = Field(ge=0, le=1, description="largest allowed share of responses with PII")
    prompt_severity: Literal["deny", "warn"] = Field(description="what PII typed by users in prompts counts as")
    max_prompt_rate: float = Field(ge=0, le=1, description="largest allowed share of prompts with PII")
    sample_size: int | None = Field(gt=0, description="scan at most this many records (seeded sample); null = all")
    max_examples: int = Field(ge=0, description="masked examples kept in the report")


class PreferenceDriftRule(Rule, _TestBounds):
    """Registered reward model's scores of window responses vs baseline responses (one-sided KS: lower)."""

    reward_model: str = Field(description="registered reward model name; its production version (else newest) scores")
    max_mean_drop: float = Field(ge=0, description="largest allowed fall of the mean score, in baseline std units")
    sample_size: int = Field(gt=0, description="score at most this many responses per side (seeded sample)")


class EmbeddingDriftRule(Rule, _TestBounds):
    """Sentence embeddings (all-MiniLM-L6-v2): cosine distance to the baseline centroid, two-sample KS test."""

    max_ks_statistic: float = Field(gt=0, le=1)
    sample_size: int = Field(gt=0, description="embed at most this many responses per side (seeded sample)")


class FeedbackRateRule(Rule):
    """Share of rated requests rated -1 (thumbs down); not measured when nobody rated."""

    max_negative_rate: float = Field(ge=0, le=1)
    min_rated: int = Field(ge=1, description="fewer ratings than this are not enough to judge")


class LatencyRule(Rule):
    """95th percentile of ``latency_ms``; not measured when no record carries it."""

    max_p95_ms: float = Field(gt=0)


class CostRule(Rule):
    """Mean ``cost`` per request; not measured when no record carries it."""

    max_mean_cost: float = Field(ge=0)


class MonitoringRules(Strict):
    length_drift: LengthDriftRule
    refusal_rate: RefusalRateRule
    pii: PiiRule
    preference_drift: PreferenceDriftRule
    embedding_drift: EmbeddingDriftRule
    feedback_rate: FeedbackRateRule
    latency_p95: LatencyRule
    cost: CostRule


class MonitoringPolicy(PolicyFile):
    min_window: int = Field(ge=1, description="a window (and a baseline) with fewer records is refused as bad input")
    seed: int = Field(description="seed of every sample drawn, so a re-run of the same window gives the same verdict")
    rules: MonitoringRules

    @model_validator(mode="after")
    def _unique_ids(self) -> MonitoringPolicy:
        ids = [getattr(self.rules, name).id for name in MonitoringRules.model_fields]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"rules: duplicate rule id(s) {', '.join(duplicated)}")
        return self

    def all_rules(self) -> list[Rule]:
        return [getattr(self.rules, name) for name in MonitoringRules.model_fields]
