"""Evaluate the SFT model against its base on held-out conversations, then gate it.

    dvc repro evaluate_sft        # or: python -m pipelines.evaluate_sft

Held-out loss and perplexity of base vs tuned model, greedy generations on
fixed prompts, and the evaluation gate of ``policies/eval.yaml`` (including
regression against the version now in production, where one exists), each rule
judged on the interval of its per-item outcomes (per conversation: both models'
summed loss and its tokens; per prompt: empty or leaking). Writes
``metrics.json`` (a DVC metric, with each rule's n, interval, p-value and
verdict), ``generations.json`` and ``decision.json``, and logs the metrics to
its own MLflow run and to the training run.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from pydantic import Field

from governance.approvals import production_metrics
from governance.evaluation import evaluate_gate, metrics_record, require_budgets
from governance.gates import load_waivers, publish_decision
from governance.lineage import read_manifest, write_manifest
from governance.policy import Strict
from governance.statistics import Evidence, Resampled, shares
from governance.training_data import read_held_out_records
from pipelines._common import load_params, project_name, stage_main
from pipelines._preference import require_parent
from pipelines._safety import SafetyParams, evaluate_policy_safety
from pipelines._training import load_model, log_evaluation, with_run_context, write_generations

log = logging.getLogger(__name__)
STAGE = "evaluate_sft"


class EvaluateSftParams(Strict):
    base_model: str
    model_dir: str
    eval_file: str
    out_dir: str
    policy: str
    prompts: list[str] = Field(min_length=1)
    max_new_tokens: int = Field(gt=0)
    safety: SafetyParams


def heldout_losses(model, tokenizer, conversations: list[list[dict]]) -> list[tuple[float, int]]:
    """Per chat-templated conversation: its summed next-token loss and the tokens predicted (0, 0 when none)."""
    import torch

    model.eval()
    out_losses: list[tuple[float, int]] = []
    with torch.no_grad():
        for messages in conversations:
            ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_tensors="pt")
            input_ids = ids["input_ids"][:, : model.config.max_position_embeddings]
            n = input_ids.shape[1] - 1
            if n < 1:
                out_losses.append((0.0, 0))
                continue
            out = model(input_ids=input_ids, labels=input_ids)
            out_losses.append((float(out.loss) * n, n))
    return out_losses


def heldout_loss(model, tokenizer, conversations: list[list[dict]]) -> float:
    """Token-weighted mean next-token loss over chat-templated conversations."""
    return mean_loss(heldout_losses(model, tokenizer, conversations))


def mean_loss(losses: list[tuple[float, int]]) -> float:
    """Token-weighted mean of per-conversation summed losses."""
    return sum(total for total, _ in losses) / max(sum(n for _, n in losses), 1)


def per_token_loss(sums, tokens) -> float:
    """Σ summed losses / Σ tokens, the token count floored at 1 as :func:`mean_loss` floors it."""
    import numpy as np

    return float(np.sum(sums)) / max(float(np.sum(tokens)), 1.0)


def perplexity_ratio(tuned_sums, base_sums, tokens) -> float:
    """exp(tuned mean loss) / exp(base mean loss), token-weighted, each mean capped at 50 nats as the metric is."""
    import numpy as np

    total = max(float(np.sum(tokens)), 1.0)
    tuned, base = min(float(np.sum(tuned_sums)) / total, 50.0), min(float(np.sum(base_sums)) / total, 50.0)
    return math.exp(tuned) / math.exp(base)


def sft_evidence(
    tuned: list[tuple[float, int]], base: list[tuple[float, int]], generations: list[str]
) -> dict[str, Evidence]:
    """The per-item outcomes behind the gated SFT metrics: per conversation (paired base/tuned), per prompt."""
    if [n for _, n in tuned] != [n for _, n in base]:
        raise ValueError("base and tuned model scored different tokens of the held-out conversations")
    tokens = tuple(float(n) for _, n in tuned)
    tuned_sums, base_sums = tuple(s for s, _ in tuned), tuple(s for s, _ in base)
    return {
        "eval_loss": Resampled((tuned_sums, tokens), per_token_loss, True, "conversations"),
        "perplexity_ratio_vs_base": Resampled((tuned_sums, base_sums, tokens), perplexity_ratio, True, "conversations"),
        "empty_generation_rate": shares([not g.strip() for g in generations], "prompts"),
        "role_leak_rate": shares([leaks_chat_markup(g) for g in generations], "prompts"),
    }


def generate(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy completions of fixed prompts (deterministic, so runs compare)."""
    import torch

    outputs = []
    with torch.no_grad():
        for prompt in prompts:
            ids = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
            )
            generated = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
            outputs.append(tokenizer.decode(generated[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))
    return outputs


ROLE_LINES = {"system", "user", "assistant"}


def leaks_chat_markup(text: str) -> bool:
    """A completion that writes the chat template's role lines has not learned to answer."""
    return any(line.strip() in ROLE_LINES for line in text.splitlines()) or "<|im_" in text


@stage_main
def main(argv: list[str] | None = None) -> int:
    params = load_params(STAGE, EvaluateSftParams)
    # An evaluation no smaller than the reviewed eval policy's floor for the method (budgets), before any read
    require_budgets("sft", params.policy, {"max_new_tokens": params.max_new_tokens})
    out_dir = Path(params.out_dir)
    trained = read_manifest(params.model_dir)
    # The safety comparison's parent is the base model this SFT model was trained from, recomputed from its files
    require_parent(trained, params.model_dir, params.base_model)
    # The bytes judged are the bytes named, and the held-out split the model's validation gate checked
    eval_records, eval_ref = read_held_out_records(params.eval_file, trained, params.model_dir)
    conversations = [r.data["messages"] for r in eval_records]
    # Held-out loss and perplexity, base vs tuned
    base, tokenizer = load_model(params.base_model, expect_sha256=trained["parent"]["model_sha256"])
    base_losses = heldout_losses(base, tokenizer, conversations)
    base_loss = mean_loss(base_losses)
    del base
    tuned, tokenizer = load_model(params.model_dir, expect_sha256=trained["model_sha256"])
    tuned_losses = heldout_losses(tuned, tokenizer, conversations)
    tuned_loss = mean_loss(tuned_losses)
    generations = generate(tuned, tokenizer, params.prompts, params.max_new_tokens)
    # Safety: red-team refusals, over-refusal and sycophancy, against the base model
    safety = evaluate_policy_safety(
        params.safety,
        tuned,
        tokenizer,
        eval_policy=params.policy,  # names the judge the safety rules count by
        model_sha256=trained["model_sha256"],
        parent_dir=params.base_model,
        parent_sha256=trained.get("parent", {}).get("model_sha256"),
    )
    metrics = {
        "eval_loss": tuned_loss,
        "perplexity": math.exp(min(tuned_loss, 50)),
        "base_eval_loss": base_loss,
        "base_perplexity": math.exp(min(base_loss, 50)),
        "perplexity_ratio_vs_base": math.exp(min(tuned_loss, 50)) / math.exp(min(base_loss, 50)),
        "empty_generation_rate": sum(not g.strip() for g in generations) / len(generations),
        "role_leak_rate": sum(leaks_chat_markup(g) for g in generations) / len(generations),
        "mean_generation_chars": sum(len(g) for g in generations) / len(generations),
        "eval_conversations": len(conversations),
        **safety.metrics,
    }
    # The per-item outcomes behind them: each rule is judged on its interval
    evidence = {**sft_evidence(tuned_losses, base_losses, generations), **safety.evidence}
    # Gate the metrics under policies/eval.yaml (against production, where one exists)
    production = production_metrics(f"{project_name()}-sft")
    decision = evaluate_gate(
        method="sft",
        stage=STAGE,
        metrics=metrics,
        evidence=evidence,
        subject=f"{params.model_dir} (model {trained['model_sha256'][:12]})",
        datasets=[eval_ref, *safety.datasets],
        policy_path=params.policy,
        production=production,
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
    bound |= write_generations(
        out_dir, [{"prompt": p, "completion": g} for p, g in zip(params.prompts, generations, strict=True)]
    )
    # A signed eval_decision event for this model, then the file: register believes it only through the event
    publish_decision(decision, out_dir / "decision.json", evidence={**bound, "model_sha256": trained["model_sha256"]})
    write_manifest(
        out_dir,
        {
            "stage": STAGE,
            "model_sha256": trained["model_sha256"],
            "eval_file": {"path": params.eval_file, "sha256": eval_ref.sha256},  # the bytes evaluated, one read
            "decision_passed": decision.passed,
            "params": params.model_dump(),
        },
    )
    # Log to this stage's run and to the training run (same lineage)
    log_evaluation(stage=STAGE, method="sft", out_dir=out_dir, metrics=metrics, trained=trained)
    for line in decision.summary_lines():
        log.warning("%s", line)
    log.info("eval %s: loss %.3f (base %.3f)", "passed" if decision.passed else "DENIED", tuned_loss, base_loss)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
