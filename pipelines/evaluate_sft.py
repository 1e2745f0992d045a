"""Evaluate the SFT model against its base on held-out conversations, then gate it.

    dvc repro evaluate_sft        # or: python -m pipelines.evaluate_sft

Held-out loss and perplexity of base vs tuned model, greedy generations on
fixed prompts, and the evaluation gate of ``policies/eval.yaml`` (including
regression against the version now in production, where one exists). Writes
``metrics.json`` (a DVC metric), ``generations.json`` and ``decision.json``,
and logs the metrics to its own MLflow run and to the training run.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from pydantic import Field

from governance.approvals import production_metrics
from governance.evaluation import evaluate_gate
from governance.gates import dataset_ref, load_waivers, publish_decision
from governance.lineage import read_manifest, sha256_file, write_manifest
from governance.policy import Strict
from governance.records import iter_records
from pipelines._common import load_params, project_name, stage_main
from pipelines._safety import SafetyParams, evaluate_policy_safety
from pipelines._training import load_model, log_evaluation, with_run_context

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


def heldout_loss(model, tokenizer, conversations: list[list[dict]]) -> float:
    """Token-weighted mean next-token loss over chat-templated conversations."""
    import torch

    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for messages in conversations:
            ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_tensors="pt")
            input_ids = ids["input_ids"][:, : model.config.max_position_embeddings]
            n = input_ids.shape[1] - 1
            if n < 1:
                continue
            out = model(input_ids=input_ids, labels=input_ids)
            total += float(out.loss) * n
            tokens += n
    return total / max(tokens, 1)


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
    out_dir = Path(params.out_dir)
    trained = read_manifest(params.model_dir)
    conversations = [r.data["messages"] for r in iter_records(params.eval_file)]
    # Held-out loss and perplexity, base vs tuned
    base, tokenizer = load_model(params.base_model)
    base_loss = heldout_loss(base, tokenizer, conversations)
    del base
    tuned, tokenizer = load_model(params.model_dir)
    tuned_loss = heldout_loss(tuned, tokenizer, conversations)
    generations = generate(tuned, tokenizer, params.prompts, params.max_new_tokens)
    # Safety: red-team refusals, over-refusal and sycophancy, against the base model
    safety = evaluate_policy_safety(
        params.safety,
        tuned,
        tokenizer,
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
    # Gate the metrics under policies/eval.yaml (against production, where one exists)
    production = production_metrics(f"{project_name()}-sft")
    decision = evaluate_gate(
        method="sft",
        stage=STAGE,
        metrics=metrics,
        subject=f"{params.model_dir} (model {trained['model_sha256'][:12]})",
        datasets=[dataset_ref(params.eval_file, len(conversations)), *safety.datasets],
        policy_path=params.policy,
        production=production,
        waivers=load_waivers(),
        safety="policy",
    )
    # The training run this model came from
    trained = with_run_context(trained)
    out_dir.mkdir(parents=True, exist_ok=True)
    safety.write(out_dir)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    (out_dir / "generations.json").write_text(
        json.dumps([{"prompt": p, "completion": g} for p, g in zip(params.prompts, generations, strict=True)], indent=2)
        + "\n"
    )
    # A signed eval_decision event for this model, then the file: register believes it only through the event
    publish_decision(decision, out_dir / "decision.json", evidence={"model_sha256": trained["model_sha256"]})
    write_manifest(
        out_dir,
        {
            "stage": STAGE,
            "model_sha256": trained["model_sha256"],
            "eval_file": {"path": params.eval_file, "sha256": sha256_file(params.eval_file)},
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
