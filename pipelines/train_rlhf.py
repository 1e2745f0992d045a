"""RLHF: optimise the SFT policy against the learned reward model, with a KL leash to the SFT reference.

    dvc repro train_rlhf          # or: python -m pipelines.train_rlhf

RLHF here uses **RLOO** (REINFORCE Leave-One-Out, ``trl.RLOOTrainer``), not
PPO, because TRL 1.16 removed ``PPOTrainer`` (it is not even under
``trl.experimental``). RLOO keeps what matters for governance: on-policy
sampling scored by the reward model trained in ``train_rm``, and a KL penalty
(``beta``) to the frozen SFT reference. ``beta <= 0`` is refused: without the
penalty nothing stops the policy drifting to whatever the reward model
over-scores (the textbook reward hack). The ``trl`` section goes to
``trl.RLOOConfig`` unchanged.

The objective and its approval
------------------------------
For RLHF the *objective* is the reward model. Its weights cannot be approved
by hash ahead of time: a retrained reward model has new bytes on every
machine and after every upstream change, so a byte-level approval would block
``dvc repro`` on a fresh clone and be rubber-stamped thereafter. What a
reviewer can judge — and what fixes the reward model's behaviour up to
training noise — is its **recipe**: the ``train_rm`` params (hash), the SHA-256
of the exact gated preference data it learned from, the stage it was
fine-tuned from and the base model's identity. The stage computes that recipe
hash from ``artifacts/train_rm/manifest.json`` and requires
``policies/objectives.yaml`` to approve it as objective ``reward_model_recipe``
for stage ``train_rlhf`` (:func:`governance.objectives.require_approved_objective`,
whose refusal names the hash and how to approve it; ``govern approve-objective
train_rlhf`` computes the same hash through :func:`current_objective_hashes`,
named under ``stages.train_rlhf.hashes_from``). The shipped recipe is
approved there, so a fresh clone runs end to end; changing the reward data or
the reward-model params needs a new, reviewed approval. The weights are still
pinned: the stage checks the reward model's files against the hash its
manifest recorded (refusing a model altered after training), and records both
hashes in lineage — ``reward_functions: {reward_model_recipe, reward_model}``,
registered as ``lineage.reward.<name>.sha256`` tags.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from governance.datasets.hashed import HashedFile
from governance.errors import ConfigError, PolicyViolation
from governance.lineage import read_manifest, sha256_json, verified_model_sha256
from governance.mlflow_run import MlflowRun
from governance.objectives import require_approved_objective
from governance.policy import Strict
from governance.training_data import read_gated_data
from pipelines._common import load_params, stage_main
from pipelines._training import (
    AdapterParams,
    LaunchParams,
    Stopwatch,
    base_model_path,
    finish_training,
    load_model,
    log_lineage_to_run,
    main_process_run,
    name_as_loaded,
    peft_config,
    recorded_model,
    run_callbacks,
    run_topology,
    save_trained_model,
    staged_output,
    training_lineage,
    trl_config,
)

log = logging.getLogger(__name__)
STAGE = "train_rlhf"


class TrainRlhfParams(Strict):
    base_model: str
    reward_model: str
    train_file: str
    eval_file: str
    gate_decisions: list[str]
    adapter: AdapterParams
    launch: LaunchParams
    trl: dict[str, Any]


def require_kl_penalty(beta: float, section: str) -> None:
    """Refuse RLHF without a KL penalty to the reference policy."""
    if beta <= 0:
        raise ConfigError(
            f"params.yaml: {section}.trl.beta: {beta} — RLHF against a learned reward model needs a KL penalty "
            "to the SFT reference (beta > 0), or the policy drifts to whatever the reward model over-scores; "
            "set e.g. beta: 0.05"
        )


def reward_model_recipe(manifest: dict[str, Any]) -> dict[str, Any]:
    """What a reward model was trained from — params, gated data, parent stage, base — but not its bytes."""
    try:
        return {
            "stage": manifest["stage"],
            "params_sha256": manifest["params_sha256"],
            "datasets": {path: ref["sha256"] for path, ref in sorted(manifest["datasets"].items())},
            "parent_stage": manifest["parent"]["stage"],
            "base": manifest["base"].get("name_or_path"),
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"reward model manifest: missing lineage field {exc}; re-run train_rm") from None


def load_reward_model(model_dir: str | Path):
    """The reward model (sequence classification, one logit) and its tokenizer, checked against its manifest."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    manifest = read_manifest(model_dir)
    path = base_model_path(model_dir)
    if manifest.get("model_sha256") is None:
        raise PolicyViolation(f"{model_dir}/manifest.json: records no model_sha256; re-run train_rm")
    # Loaded from a private copy that must hash to what train_rm recorded (a swap during the load never reaches it)
    with recorded_model(model_dir, "reward model", expect_sha256=manifest["model_sha256"]) as (copy, digest):
        try:
            tokenizer = AutoTokenizer.from_pretrained(copy)
            dtype = torch.float32 if not torch.cuda.is_available() else torch.bfloat16
            model = AutoModelForSequenceClassification.from_pretrained(copy, num_labels=1, dtype=dtype)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot load the reward model ({str(exc).splitlines()[0][:200]})") from None
    name_as_loaded(model, tokenizer, path, digest)
    if model.config.num_labels != 1:
        raise ConfigError(f"{path}: reward model has {model.config.num_labels} labels; RLHF needs a scalar (1) head")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer, manifest


def current_objective_hashes() -> dict[str, str]:
    """``{"reward_model_recipe": sha256}`` of the reward model ``params.yaml`` points at, as it stands now.

    What ``govern approve-objective train_rlhf`` hashes (``policies/objectives.yaml``
    names this function under ``stages.train_rlhf.hashes_from``).
    """
    params = load_params(STAGE, TrainRlhfParams)
    return {"reward_model_recipe": sha256_json(reward_model_recipe(read_manifest(params.reward_model)))}


def reward_history(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Per logging step: the mean reward-model score and the KL, as TRL logged them (evaluate_rlhf reads it)."""
    keep = ("kl", "completions/mean_length")
    return [
        {
            "step": e.get("step"),
            "reward": e["reward"],
            **{k: v for k, v in e.items() if k.startswith("rewards/") or k in keep},
        }
        for e in log_history
        if "reward" in e
    ]


def reward_model_run_id(rm_manifest: dict[str, Any], run: MlflowRun) -> str:
    """The reward model's training run (a link for reviewers; its hash in the lineage is the evidence)."""
    return run.find_model_run(rm_manifest.get("stage"), rm_manifest.get("model_sha256")) or "not recorded"


def load_prompts(data: HashedFile):
    """The gated JSONL (the bytes read once) as a ``datasets.Dataset`` with one ``prompt`` column of messages."""
    return data.dataset(("prompt",))


@stage_main
def main(argv: list[str] | None = None) -> int:
    from trl import RLOOConfig, RLOOTrainer

    params = load_params(STAGE, TrainRlhfParams)
    config = trl_config(RLOOConfig, params.trl, STAGE)
    require_kl_penalty(config.beta, STAGE)
    lora = peft_config(params.adapter, STAGE)
    out_dir = Path(config.output_dir)
    # Every process: its place in the launch, then the gates, before any data is read
    topology = run_topology(config, params.launch, params.adapter, STAGE)
    # Refuse data the required gates did not clear; each file is read once, and that buffer is what trains
    files = {"train_file": params.train_file, "eval_file": params.eval_file}
    data = read_gated_data(STAGE, files, params.gate_decisions)
    # The parent as its files are now (refused unless its manifest claims the same)
    parent_sha256 = verified_model_sha256(params.base_model)
    # Refuse to optimise a reward model whose recipe nobody approved
    reward_model, reward_tokenizer, rm_manifest = load_reward_model(params.reward_model)
    recipe = reward_model_recipe(rm_manifest)
    objective = {"reward_model_recipe": sha256_json(recipe)}
    require_approved_objective(STAGE, objective)
    reward_hashes = {**objective, "reward_model": rm_manifest["model_sha256"]}
    lineage = training_lineage(
        stage=STAGE,
        params=params.model_dump(),
        data=data,
        decision_paths=params.gate_decisions,
        parent_dir=params.base_model,
        parent_sha256=parent_sha256,
        topology=topology,
    )
    policy, tokenizer = load_model(params.base_model, params.adapter, STAGE, expect_sha256=parent_sha256)
    train = load_prompts(data["train_file"])
    # The main process alone speaks for the run: MLflow run, model folder (staged), manifest
    with (
        main_process_run(topology, STAGE, {"method": "rlhf"}) as run,
        staged_output(out_dir, topology) as staging,
    ):
        if run is not None:
            log_lineage_to_run(run, lineage)
            run.log(tags={f"lineage.reward.{name}.sha256": digest for name, digest in reward_hashes.items()})
            run.log(tags={"lineage.reward_model_run_id": reward_model_run_id(rm_manifest, run)})
        # Train
        trainer = RLOOTrainer(
            model=policy,
            reward_funcs=reward_model,
            args=config,
            callbacks=run_callbacks(config, run),
            train_dataset=train,
            processing_class=tokenizer,
            reward_processing_classes=reward_tokenizer,
            peft_config=lora,
        )
        with Stopwatch() as clock:
            trainer.train()
        # Save the full model with its provenance, and log both to the run
        save_trained_model(trainer, tokenizer, staging, topology)
        if run is not None:
            finish_training(
                out_dir=staging,
                final_dir=out_dir,
                lineage=lineage,
                trainer=trainer,
                seconds=clock.seconds,
                run=run,
                extra={
                    "method": "rlhf",
                    "algorithm": "rloo",
                    "adapter": params.adapter.model_dump(),
                    "seed": config.seed,
                    "beta": config.beta,
                    "reward_functions": reward_hashes,
                    "reward_model": {
                        "dir": params.reward_model,
                        "model_sha256": rm_manifest["model_sha256"],
                        "recipe": recipe,
                        "recipe_sha256": objective["reward_model_recipe"],
                    },
                    "reward_history": reward_history(trainer.state.log_history),
                },
            )
    if run is not None:
        log.info("trained %s in %.1fs, run %s", STAGE, clock.seconds, run.run_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
