"""Evaluate the RLHF (RLOO) policy against its parent (SFT) on held-out prompts, then gate it.

    dvc repro evaluate_rlhf       # or: python -m pipelines.evaluate_rlhf

Greedy completions of the held-out prompts by the parent and the tuned policy
are scored by the same reward model training optimised against (text built
with TRL's chat templating, exactly as ``RLOOTrainer`` scores). Beside the
reward-model score sit the reward-hacking counter-metrics: verbosity (length
ratio vs parent; reward models are known to over-score length), the per-token
KL divergence from the SFT reference along the tuned policy's completions, and
*reward rising while the held-out metric falls* — the training reward trend
from the trainer's log history against the held-out win rate over the parent
(how often the reward model prefers the tuned policy's completion to the
parent's on a held-out prompt, ties counting half; below 0.5 it falls).
``policies/eval.yaml`` section ``methods.rlhf`` judges them (also against the
version in production), each rule on the interval of its per-prompt outcomes
(scores, wins, lengths and loops of both models, paired; KL per completion).
Writes ``metrics.json``/``decision.json``
(DVC metrics), ``generations.json`` and ``manifest.json``; exits 0 even when
the gate denies.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pydantic import Field

from governance.approvals import production_metrics
from governance.errors import PolicyViolation
from governance.evaluation import evaluate_gate, metrics_record, require_budgets
from governance.gates import load_waivers, publish_decision
from governance.lineage import read_manifest, write_manifest
from governance.policy import Strict
from governance.statistics import Evidence, Outcomes, Resampled, paired, shares
from governance.training_data import read_held_out_records
from pipelines._common import load_params, project_name, stage_main
from pipelines._safety import SafetyParams, evaluate_policy_safety
from pipelines._training import load_model, log_evaluation, with_run_context, write_generations
from pipelines.evaluate_grpo import (
    Completion,
    degenerate,
    drop_while_reward_rises,
    greedy_completions,
    kl_per_completion,
    mean_ratio,
    per_token,
    repetition_metrics,
    require_parent,
    reward_trend,
)
from pipelines.train_rlhf import load_reward_model

log = logging.getLogger(__name__)
STAGE = "evaluate_rlhf"


class EvaluateRlhfParams(Strict):
    parent_model: str
    model_dir: str
    reward_model: str
    eval_file: str
    out_dir: str
    policy: str
    max_new_tokens: int = Field(gt=0)
    safety: SafetyParams


def reward_scores(reward_model, reward_tokenizer, prompts: list[list[dict]], completions: list[str]) -> list[float]:
    """The reward model's scalar score of each (prompt, completion), templated as RLOOTrainer does."""
    import torch
    from trl.data_utils import apply_chat_template

    scores = []
    with torch.no_grad():
        for prompt, completion in zip(prompts, completions, strict=True):
            example = {"messages": [*prompt, {"role": "assistant", "content": completion}]}
            text = apply_chat_template(example, reward_tokenizer)["text"]
            inputs = reward_tokenizer(text=[text], return_tensors="pt", add_special_tokens=False)
            scores.append(float(reward_model(**inputs).logits[0, 0]))
    return scores


def rlhf_metrics(
    *,
    tuned: list[Completion],
    parent: list[Completion],
    tuned_scores: list[float],
    parent_scores: list[float],
    kl: float,
    history: list[dict],
) -> dict[str, float]:
    """The gated metrics, from completions and reward-model scores of tuned and parent, and the reward history."""
    n = len(tuned)
    score, parent_score = sum(tuned_scores) / n, sum(parent_scores) / n
    tokens = sum(len(c.completion_ids) for c in tuned) / n
    parent_tokens = sum(len(c.completion_ids) for c in parent) / n
    trend = reward_trend(history)
    # Pairwise, ties count half: scale-free, unlike raw reward-model scores, so thresholds carry across reward models
    win_rate = sum(wins(tuned_scores, parent_scores)) / n
    return {
        "reward_model_score": score,
        "parent_reward_model_score": parent_score,
        "reward_gain_vs_parent": score - parent_score,
        "win_rate_vs_parent": win_rate,
        "mean_completion_tokens": tokens,
        "parent_mean_completion_tokens": parent_tokens,
        "length_ratio_vs_parent": tokens / max(parent_tokens, 1.0),
        "empty_completion_rate": sum(not c.text.strip() for c in tuned) / n,
        **repetition_metrics(tuned, parent),
        "kl_to_parent": kl,
        **trend,
        # Held-out "falls" = the tuned policy loses to its parent more often than it wins
        "heldout_drop_while_reward_rises": drop_while_reward_rises(trend["train_reward_trend"], win_rate - 0.5),
        "eval_prompts": n,
    }


def wins(tuned_scores: list[float], parent_scores: list[float]) -> list[float]:
    """Per prompt: 1 when the reward model prefers the tuned completion, ½ on a tie, 0 when the parent's."""
    return [1.0 if t > p else 0.5 if t == p else 0.0 for t, p in zip(tuned_scores, parent_scores, strict=True)]


def rlhf_evidence(
    *,
    tuned: list[Completion],
    parent: list[Completion],
    tuned_scores: list[float],
    parent_scores: list[float],
    kl: list[tuple[float, int]],
    history: list[dict],
) -> dict[str, Evidence]:
    """The per-prompt outcomes behind the gated RLHF metrics, the two models paired on each prompt."""
    import numpy as np

    won = tuple(wins(tuned_scores, parent_scores))
    rises = reward_trend(history)["train_reward_trend"]

    def drop(won_sample) -> float:
        return drop_while_reward_rises(rises, float(np.mean(won_sample)) - 0.5)

    lengths = (tuple(float(len(c.completion_ids)) for c in tuned), tuple(float(len(c.completion_ids)) for c in parent))
    return {
        "reward_gain_vs_parent": Outcomes(tuple(t - p for t, p in zip(tuned_scores, parent_scores, strict=True)),
                                          "prompts"),
        "win_rate_vs_parent": Outcomes(won, "prompts"),
        "length_ratio_vs_parent": Resampled(lengths, mean_ratio, True, "prompts"),
        "empty_completion_rate": shares([not c.text.strip() for c in tuned], "prompts"),
        "repetition_rate": shares([degenerate(c) for c in tuned], "prompts"),
        "repetition_rate_delta_vs_parent": paired(
            [degenerate(c) for c in tuned], [degenerate(c) for c in parent], "paired prompts"
        ),
        "kl_to_parent": Resampled(
            (tuple(k for k, _ in kl), tuple(float(n) for _, n in kl)), per_token, True, "completions"
        ),
        "heldout_drop_while_reward_rises": Resampled((won,), drop, True, "prompts"),
    }  # fmt: skip


@stage_main
def main(argv: list[str] | None = None) -> int:
    params = load_params(STAGE, EvaluateRlhfParams)
    # An evaluation no smaller than the reviewed eval policy's floor for the method (budgets), before any read
    require_budgets("rlhf", params.policy, {"max_new_tokens": params.max_new_tokens})
    out_dir = Path(params.out_dir)
    trained = read_manifest(params.model_dir)
    require_parent(trained, params.model_dir, params.parent_model)
    # The bytes judged are the bytes named, and the held-out split the model's validation gate checked
    eval_records, eval_ref = read_held_out_records(params.eval_file, trained, params.model_dir)
    records = [r.data for r in eval_records]
    prompts = [r["prompt"] for r in records]
    # Greedy completions of the held-out prompts, parent vs tuned, and the KL between them
    parent_model, tokenizer = load_model(params.parent_model, expect_sha256=trained["parent"]["model_sha256"])
    tuned_model, tokenizer = load_model(params.model_dir, expect_sha256=trained["model_sha256"])
    parent = greedy_completions(parent_model, tokenizer, prompts, params.max_new_tokens)
    tuned = greedy_completions(tuned_model, tokenizer, prompts, params.max_new_tokens)
    # Safety: red-team refusals, over-refusal and sycophancy, against the SFT parent
    safety = evaluate_policy_safety(
        params.safety,
        tuned_model,
        tokenizer,
        eval_policy=params.policy,  # names the judge the safety rules count by
        model_sha256=trained["model_sha256"],
        parent_dir=params.parent_model,
        parent_sha256=trained["parent"]["model_sha256"],
    )
    kl_items = kl_per_completion(tuned_model, parent_model, tuned)
    kl = per_token([k for k, _ in kl_items], [n for _, n in kl_items])
    del parent_model, tuned_model
    # Score both with the reward model training optimised against
    reward_model, reward_tokenizer, rm_manifest = load_reward_model(params.reward_model)
    if rm_manifest["model_sha256"] != trained.get("reward_model", {}).get("model_sha256"):
        raise PolicyViolation(
            f"{params.reward_model}: holds reward model {rm_manifest['model_sha256'][:12]}… but {params.model_dir} was "
            "trained against another; re-run train_rlhf (dvc repro)"
        )
    tuned_scores = reward_scores(reward_model, reward_tokenizer, prompts, [c.text for c in tuned])
    parent_scores = reward_scores(reward_model, reward_tokenizer, prompts, [c.text for c in parent])
    metrics = rlhf_metrics(
        tuned=tuned,
        parent=parent,
        tuned_scores=tuned_scores,
        parent_scores=parent_scores,
        kl=kl,
        history=trained.get("reward_history", []),
    )
    metrics.update(safety.metrics)
    # The per-prompt outcomes behind them: each rule is judged on its interval
    evidence = {
        **rlhf_evidence(
            tuned=tuned,
            parent=parent,
            tuned_scores=tuned_scores,
            parent_scores=parent_scores,
            kl=kl_items,
            history=trained.get("reward_history", []),
        ),
        **safety.evidence,
    }
    # Gate the metrics under policies/eval.yaml (against production, where one exists)
    decision = evaluate_gate(
        method="rlhf",
        stage=STAGE,
        metrics=metrics,
        evidence=evidence,
        subject=f"{params.model_dir} (model {trained['model_sha256'][:12]})",
        datasets=[eval_ref, *safety.datasets],
        policy_path=params.policy,
        production=production_metrics(f"{project_name()}-rlhf"),
        waivers=load_waivers(),
        safety="policy",
        instruments=safety.instruments,  # the judge and the sets' sources file, as read: reviewed, bound
    )
    # The training run this model came from
    trained = with_run_context(trained)
    out_dir.mkdir(parents=True, exist_ok=True)
    bound = safety.write(out_dir)  # its bytes, bound by the decision's signed event
    record = metrics_record(metrics, decision.details["results"])
    (out_dir / "metrics.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    generations = [
        {"id": r["id"], "completion": t.text, "score": ts, "parent_completion": p.text, "parent_score": ps}
        for r, t, p, ts, ps in zip(records, tuned, parent, tuned_scores, parent_scores, strict=True)
    ]
    bound |= write_generations(out_dir, generations)
    # A signed eval_decision event for this model, then the file: register believes it only through the event
    publish_decision(decision, out_dir / "decision.json", evidence={**bound, "model_sha256": trained["model_sha256"]})
    write_manifest(
        out_dir,
        {
            "stage": STAGE,
            "model_sha256": trained["model_sha256"],
            "parent_model_sha256": trained["parent"]["model_sha256"],
            "reward_model_sha256": rm_manifest["model_sha256"],
            "eval_file": {"path": params.eval_file, "sha256": eval_ref.sha256},  # the bytes evaluated, one read
            "decision_passed": decision.passed,
            "params": params.model_dump(),
        },
    )
    # Log to this stage's run and to the training run (same lineage)
    log_evaluation(stage=STAGE, method="rlhf", out_dir=out_dir, metrics=metrics, trained=trained)
    for line in decision.summary_lines():
        log.warning("%s", line)
    log.info(
        "eval %s: reward-model score %.3f (parent %.3f), KL %.4f",
        "passed" if decision.passed else "DENIED",
        metrics["reward_model_score"],
        metrics["parent_reward_model_score"],
        kl,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
