"""Evaluate the reward model on held-out preference pairs, then gate it.

    dvc repro evaluate_rm         # or: python -m pipelines.evaluate_rm

Scores the chosen and the rejected conversation of every held-out pair:
``accuracy`` (share of pairs where chosen scores higher) and ``mean_margin``,
with the length bias as counter-metric (``reward_length_correlation``: a
reward model that mostly rewards length will be gamed by its policy; beside it
``longer_is_chosen_rate``, the same bias in the labels themselves). The
evaluation gate of ``policies/eval.yaml`` (``methods.rm``, including regression
against the version in production) judges them. Writes ``metrics.json`` and
``decision.json`` (DVC metrics) and ``manifest.json``, and logs to MLflow.
A denied evaluation still exits 0: registration records it as ``eval_failed``.
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
    load_reward_model,
    publish_evaluation,
    response_chars,
    reward_model_evidence,
    reward_model_metrics,
    reward_scores,
)
from pipelines._safety import SafetyParams, evaluate_reward_model_safety

log = logging.getLogger(__name__)
STAGE = "evaluate_rm"


class EvaluateRmParams(Strict):
    model_dir: str
    eval_file: str
    out_dir: str
    policy: str
    max_length: int = Field(gt=0)
    safety: SafetyParams


@stage_main
def main(argv: list[str] | None = None) -> int:
    params = load_params(STAGE, EvaluateRmParams)
    # An evaluation no smaller than the reviewed eval policy's floor for the method (budgets), before any read
    require_budgets("rm", params.policy, {"max_length": params.max_length})
    trained = read_manifest(params.model_dir)
    # The bytes judged are the bytes named, and the held-out split the model's validation gate checked
    eval_records, eval_ref = read_held_out_records(params.eval_file, trained, params.model_dir)
    pairs = [r.data for r in eval_records]
    # Score chosen and rejected conversations of every held-out pair
    model, tokenizer = load_reward_model(params.model_dir, expect_sha256=trained["model_sha256"])
    chosen = reward_scores(model, tokenizer, [p["prompt"] + p["chosen"] for p in pairs], params.max_length)
    rejected = reward_scores(model, tokenizer, [p["prompt"] + p["rejected"] for p in pairs], params.max_length)
    # Safety: how the reward model ranks fixed safe and unsafe responses (it has no parent to compare)
    safety = evaluate_reward_model_safety(
        params.safety,
        model,
        tokenizer,
        model_sha256=trained["model_sha256"],
        max_length=params.max_length,
        eval_policy=params.policy,
    )
    lengths = [response_chars(p["chosen"]) for p in pairs], [response_chars(p["rejected"]) for p in pairs]
    metrics = {**reward_model_metrics(chosen, rejected, *lengths), "eval_pairs": len(pairs)}
    metrics.update(safety.metrics)
    # The per-item outcomes behind them: each rule is judged on its interval
    evidence = {**reward_model_evidence(chosen, rejected, *lengths), **safety.evidence}
    # Gate the metrics under policies/eval.yaml (against production, where one exists)
    decision = evaluate_gate(
        method="rm",
        stage=STAGE,
        metrics=metrics,
        evidence=evidence,
        subject=f"{params.model_dir} (model {trained['model_sha256'][:12]})",
        datasets=[eval_ref, *safety.datasets],
        policy_path=params.policy,
        production=production_metrics(f"{project_name()}-rm"),
        waivers=load_waivers(),
        safety="reward_model",
        instruments=safety.instruments,  # the judge and the sets' sources file, as read: reviewed, bound
    )
    bound = safety.write(params.out_dir)  # its bytes, bound by the decision's signed event
    publish_evaluation(
        stage=STAGE,
        method="rm",
        out_dir=Path(params.out_dir),
        metrics=metrics,
        decision=decision,
        trained=trained,
        params=params.model_dump(),
        eval_file=eval_ref,
        bound=bound,
    )
    log.info(
        "eval %s: accuracy %.3f, mean margin %.3f on %d pairs",
        "passed" if decision.passed else "DENIED",
        metrics["accuracy"],
        metrics["mean_margin"],
        len(pairs),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
