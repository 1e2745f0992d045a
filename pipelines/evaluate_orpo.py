"""Evaluate the ORPO policy against its SFT parent on held-out preference pairs, then gate it.

    dvc repro evaluate_orpo       # or: python -m pipelines.evaluate_orpo

ORPO optimises the log odds ratio log(odds(chosen) / odds(rejected)), odds
from the per-token mean likelihood; the primary metrics are that ratio on
held-out pairs under the policy (``log_odds_accuracy``,
``mean_log_odds_ratio``) and its gain over the SFT parent
(``log_odds_ratio_gain``). Beside them, the log-prob ratio to the parent as
an implicit reward (``reward_accuracy``, ``reward_margin``; β = 1, since ORPO
has no reference model and no β of its own for it), and the counter-metrics
every preference method is held to: drift from the parent on held-out chosen
responses (``kl_to_parent``, ``logp_change_per_token``) and verbosity of
greedy generations (``generation_length_ratio_vs_parent``). The evaluation
gate of ``policies/eval.yaml`` (``methods.orpo``) judges them. Outputs and
MLflow logging as ``evaluate_dpo``; a denied evaluation still exits 0.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import Field

from governance.approvals import production_metrics
from governance.evaluation import evaluate_gate, require_budgets
from governance.gates import load_waivers
from governance.lineage import read_manifest
from governance.policy import Strict
from governance.training_data import read_held_out_records
from pipelines._common import load_params, project_name, stage_main
from pipelines._preference import (
    drift_evidence,
    drift_metrics,
    generate,
    implicit_reward_evidence,
    implicit_reward_metrics,
    log_odds_evidence,
    log_odds_metrics,
    publish_evaluation,
    require_parent,
    score_responses,
    scored_pairs,
    verbosity_evidence,
    verbosity_metrics,
)
from pipelines._safety import SafetyParams, evaluate_policy_safety
from pipelines._training import load_model

log = logging.getLogger(__name__)
STAGE = "evaluate_orpo"


class EvaluateOrpoParams(Strict):
    model_dir: str
    parent_model: str
    eval_file: str
    out_dir: str
    policy: str
    max_length: int = Field(gt=0)
    generation_prompts: int = Field(gt=0)
    max_new_tokens: int = Field(gt=0)
    safety: SafetyParams


@stage_main
def main(argv: list[str] | None = None) -> int:
    params = load_params(STAGE, EvaluateOrpoParams)
    # An evaluation no smaller than the reviewed eval policy's floor for the method (budgets), before any read
    require_budgets(
        "orpo",
        params.policy,
        {
            "generation_prompts": params.generation_prompts,
            "max_new_tokens": params.max_new_tokens,
            "max_length": params.max_length,
        },
    )
    trained = read_manifest(params.model_dir)
    # Only the parent this policy was trained from is its reference
    require_parent(trained, params.model_dir, params.parent_model)
    # The bytes judged are the bytes named, and the held-out split the model's validation gate checked
    eval_records, eval_ref = read_held_out_records(params.eval_file, trained, params.model_dir)
    pairs = [r.data for r in eval_records]
    policy, tokenizer = load_model(params.model_dir, expect_sha256=trained["model_sha256"])
    reference, _ = load_model(params.parent_model, expect_sha256=trained["parent"]["model_sha256"])
    # Log odds ratio (policy and parent), log-prob ratio to the parent and drift, on held-out pairs
    chosen, rejected = scored_pairs(
        score_responses(policy, reference, tokenizer, [(p["prompt"], p["chosen"]) for p in pairs], params.max_length),
        score_responses(policy, reference, tokenizer, [(p["prompt"], p["rejected"]) for p in pairs], params.max_length),
    )
    # Verbosity: greedy generations of policy and parent on the same held-out prompts
    prompts = list({str(p["prompt"]): p["prompt"] for p in pairs}.values())[: params.generation_prompts]
    policy_texts = generate(policy, tokenizer, prompts, params.max_new_tokens)
    parent_texts = generate(reference, tokenizer, prompts, params.max_new_tokens)
    # Safety: red-team refusals, over-refusal and sycophancy, against the SFT parent
    safety = evaluate_policy_safety(
        params.safety,
        policy,
        tokenizer,
        eval_policy=params.policy,  # names the judge the safety rules count by
        model_sha256=trained["model_sha256"],
        parent_dir=params.parent_model,
        parent_sha256=trained["parent"]["model_sha256"],
    )
    metrics = {
        **log_odds_metrics(chosen, rejected),
        **implicit_reward_metrics(chosen, rejected, 1.0),
        **drift_metrics(chosen),
        **verbosity_metrics(policy_texts, parent_texts),
        "eval_pairs": len(chosen),
        "skipped_pairs": len(pairs) - len(chosen),
    }
    metrics.update(safety.metrics)
    # The per-item outcomes behind them: each rule is judged on its interval
    evidence = {
        **log_odds_evidence(chosen, rejected),
        **implicit_reward_evidence(chosen, rejected, 1.0),
        **drift_evidence(chosen),
        **verbosity_evidence(policy_texts, parent_texts),
        **safety.evidence,
    }
    # Gate the metrics under policies/eval.yaml (against production, where one exists)
    decision = evaluate_gate(
        method="orpo",
        stage=STAGE,
        metrics=metrics,
        evidence=evidence,
        subject=f"{params.model_dir} (model {trained['model_sha256'][:12]})",
        datasets=[eval_ref, *safety.datasets],
        policy_path=params.policy,
        production=production_metrics(f"{project_name()}-orpo"),
        waivers=load_waivers(),
        safety="policy",
        instruments=safety.instruments,  # the judge and the sets' sources file, as read: reviewed, bound
    )
    bound = safety.write(params.out_dir)  # its bytes, bound by the decision's signed event
    publish_evaluation(
        stage=STAGE,
        method="orpo",
        out_dir=Path(params.out_dir),
        metrics=metrics,
        decision=decision,
        trained=trained,
        params=params.model_dump(),
        eval_file=eval_ref,
        bound=bound,
        generations=[
            {"prompt": p[-1]["content"], "completion": g, "parent_completion": s}
            for p, g, s in zip(prompts, policy_texts, parent_texts, strict=True)
        ],
    )
    log.info(
        "eval %s: log-odds accuracy %.3f (parent %.3f), KL to parent %.4f/token",
        "passed" if decision.passed else "DENIED",
        metrics["log_odds_accuracy"],
        metrics["parent_log_odds_accuracy"],
        metrics["kl_to_parent"],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
