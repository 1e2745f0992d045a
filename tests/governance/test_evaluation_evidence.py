"""Every evaluate stage's per-item evidence reproduces the metric it stands for, under the test the policy names.

Constructed scores and completions (no model): each stage's pure metric function and its evidence builder
on the same inputs; the evidence, run through the shipped policy's test for every rule of the method, must
give the recorded metric (the gate refuses to judge otherwise), and the gate judges it.
"""

from __future__ import annotations

import math

import pytest

from governance.evaluation import check_metrics, load_eval_policy
from governance.statistics import estimate
from pipelines._preference import (
    ResponseScore,
    drift_evidence,
    drift_metrics,
    implicit_reward_evidence,
    implicit_reward_metrics,
    log_odds_evidence,
    log_odds_metrics,
    reward_model_evidence,
    reward_model_metrics,
    separation_evidence,
    separation_metrics,
    verbosity_evidence,
    verbosity_metrics,
)
from pipelines.evaluate_grpo import Completion, grpo_evidence, grpo_metrics
from pipelines.evaluate_rlhf import rlhf_evidence, rlhf_metrics
from pipelines.evaluate_sft import leaks_chat_markup, mean_loss, sft_evidence

POLICY = load_eval_policy("policies/eval.yaml")


def _scores(n: int, shift: float) -> list[ResponseScore]:
    return [
        ResponseScore(policy_logp=-10.0 - (i % 7) + shift, reference_logp=-10.5 - (i % 5), tokens=5 + i % 4,
                      kl=0.05 * (1 + i % 3))
        for i in range(n)
    ]  # fmt: skip


TEXTS = [f"answer {i} " * (1 + i % 4) for i in range(12)] + ["", "user\nhi"]
PARENT_TEXTS = [f"reply {i} " * (1 + i % 3) for i in range(14)]


def _reproduces(method: str, metrics: dict, evidence: dict) -> None:
    rules = [r for r in POLICY.methods[method] if r.relative_to is None and r.metric in evidence]
    regression = [r for r in POLICY.methods[method] if r.relative_to is not None]
    assert rules, method
    for rule in [*rules, *regression]:
        limit = rule.min if rule.min is not None else rule.max if rule.max is not None else 0.5
        found = estimate(rule.test, evidence[rule.metric], limit=limit, confidence=POLICY.confidence)
        assert math.isclose(found.estimate, metrics[rule.metric], rel_tol=1e-6, abs_tol=1e-9), rule.id
    # The gate judges them all (no refusal for mismatched evidence)
    _, results = check_metrics(POLICY.methods[method], metrics, "m", None, evidence=evidence, confidence=0.95)
    assert {r["status"] for r in results} <= {"pass", "fail", "insufficient_evidence", "not_applicable"}


def test_dpo_and_orpo_evidence():
    chosen, rejected = _scores(30, 1.0), _scores(30, -0.5)
    metrics = {**implicit_reward_metrics(chosen, rejected, 0.1), **drift_metrics(chosen),
               **verbosity_metrics(TEXTS, PARENT_TEXTS)}  # fmt: skip
    evidence = {**implicit_reward_evidence(chosen, rejected, 0.1), **drift_evidence(chosen),
                **verbosity_evidence(TEXTS, PARENT_TEXTS)}  # fmt: skip
    _reproduces("dpo", metrics, evidence)
    metrics.update(log_odds_metrics(chosen, rejected))
    evidence.update(log_odds_evidence(chosen, rejected))
    _reproduces("orpo", metrics, evidence)


def test_kto_evidence():
    scores = _scores(40, 0.0)
    labels = [i % 3 != 0 for i in range(40)]
    desirable = [s for s, label in zip(scores, labels, strict=True) if label]
    metrics = {**separation_metrics(scores, labels, 0.1), **drift_metrics(desirable),
               **verbosity_metrics(TEXTS, PARENT_TEXTS)}  # fmt: skip
    evidence = {**separation_evidence(scores, labels, 0.1), **drift_evidence(desirable),
                **verbosity_evidence(TEXTS, PARENT_TEXTS)}  # fmt: skip
    _reproduces("kto", metrics, evidence)


def test_reward_model_evidence():
    chosen = [0.1 * i for i in range(20)]
    rejected = [0.1 * i - 0.3 + 0.5 * (i % 3 == 0) for i in range(20)]
    lengths = [40 + i for i in range(20)], [30 + 2 * i for i in range(20)]
    _reproduces(
        "rm", reward_model_metrics(chosen, rejected, *lengths), reward_model_evidence(chosen, rejected, *lengths)
    )


def _completion(ids: list[int], text: str) -> Completion:
    return Completion(prompt_ids=[1, 2], completion_ids=ids, text=text)


@pytest.mark.parametrize("rising", [True, False])
def test_grpo_and_rlhf_evidence(rising):
    tuned = [_completion([5] * 10 if i % 4 == 0 else list(range(3 + i % 5)), f"Answer: {i % 3}") for i in range(16)]
    parent = [_completion(list(range(2 + i % 3)), f"Answer: {i % 2}" if i % 5 else "no") for i in range(16)]
    answers = [str(i % 2) for i in range(16)]
    kl = [(0.1 * (1 + i % 3), len(c.completion_ids)) for i, c in enumerate(tuned)]
    history = [{"reward": 0.1}, {"reward": 0.5 if rising else -0.5}]
    kl_mean = sum(k for k, _ in kl) / sum(n for _, n in kl)
    _reproduces(
        "grpo",
        grpo_metrics(tuned=tuned, parent=parent, answers=answers, kl=kl_mean, history=history),
        grpo_evidence(tuned=tuned, parent=parent, answers=answers, kl=kl, history=history),
    )
    scores, parent_scores = [0.1 * (i % 5) for i in range(16)], [0.1 * (i % 3) for i in range(16)]
    _reproduces(
        "rlhf",
        rlhf_metrics(tuned=tuned, parent=parent, tuned_scores=scores, parent_scores=parent_scores, kl=kl_mean,
                     history=history),
        rlhf_evidence(tuned=tuned, parent=parent, tuned_scores=scores, parent_scores=parent_scores, kl=kl,
                      history=history),
    )  # fmt: skip


def test_sft_evidence():
    tuned = [(2.0 * (1 + i % 3), 3 + i % 4) for i in range(20)]
    base = [(5.0 * (1 + i % 2), 3 + i % 4) for i in range(20)]
    generations = ["Hello.", "", "user\nsomething"]
    tuned_loss, base_loss = mean_loss(tuned), mean_loss(base)
    metrics = {
        "eval_loss": tuned_loss,
        "perplexity_ratio_vs_base": math.exp(min(tuned_loss, 50)) / math.exp(min(base_loss, 50)),
        "empty_generation_rate": sum(not g.strip() for g in generations) / 3,
        "role_leak_rate": sum(leaks_chat_markup(g) for g in generations) / 3,
    }
    _reproduces("sft", metrics, sft_evidence(tuned, base, generations))
    with pytest.raises(ValueError, match="different tokens"):
        sft_evidence(tuned, base[:-1] + [(1.0, 99)], generations)
