"""GRPO with verifiable rewards: the SFT policy learns gated arithmetic prompts, scored by code.

    dvc repro train_grpo          # or: python -m pipelines.train_grpo

Starts from the SFT model, refuses to start unless the PII and validation
gates passed for the exact train/eval bytes, resolves ``reward_funcs`` by name
from :mod:`pipelines.rewards` (run from its source bytes, read once) and refuses
again unless the SHA-256 of every reward function's source and bindings is
approved in ``policies/objectives.yaml`` — the
reward *is* the objective, so changing it is a reviewed change. The ``trl``
section goes to ``trl.GRPOConfig`` unchanged (generation with transformers,
no vLLM); ``adapter`` switches LoRA/QLoRA. The reward functions' hashes travel
in the model manifest (``reward_functions``) and become
``lineage.reward.<name>.sha256`` tags at registration.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import Field

from governance.datasets.hashed import HashedFile
from governance.lineage import verified_model_sha256
from governance.objectives import load_objective_module, objective_hashes, require_approved_objective
from governance.policy import Strict
from governance.training_data import read_gated_data
from pipelines._common import load_params, stage_main
from pipelines._training import (
    AdapterParams,
    LaunchParams,
    Stopwatch,
    finish_training,
    load_model,
    log_lineage_to_run,
    main_process_run,
    peft_config,
    run_callbacks,
    run_topology,
    save_trained_model,
    staged_output,
    training_lineage,
    trl_config,
)

log = logging.getLogger(__name__)
STAGE = "train_grpo"
#: Where the reward functions params.yaml names live (policies/objectives.yaml stages.train_grpo.reward_module)
REWARD_MODULE = "pipelines.rewards"


class TrainGrpoParams(Strict):
    base_model: str
    train_file: str
    eval_file: str
    gate_decisions: list[str]
    reward_funcs: list[str] = Field(min_length=1)
    adapter: AdapterParams
    launch: LaunchParams
    trl: dict[str, Any]


def load_prompts(data: HashedFile):
    """The gated JSONL (the bytes read once) as a ``datasets.Dataset`` of ``prompt`` and ``answer`` (the reward's
    reference)."""
    return data.dataset(("prompt",), optional=("answer",))


def reward_history(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Per logging step: the mean total reward and each reward function's mean, as TRL logged them."""
    rows = []
    for entry in log_history:
        if "reward" not in entry:
            continue
        row = {"step": entry.get("step"), "reward": entry["reward"]}
        row.update(
            {k: v for k, v in entry.items() if k.startswith("rewards/") or k in ("kl", "completions/mean_length")}
        )
        rows.append(row)
    return rows


@stage_main
def main(argv: list[str] | None = None) -> int:
    from trl import GRPOConfig, GRPOTrainer

    params = load_params(STAGE, TrainGrpoParams)
    config = trl_config(GRPOConfig, params.trl, STAGE)
    lora = peft_config(params.adapter, STAGE)
    out_dir = Path(config.output_dir)
    # Every process: its place in the launch, then the gates, before any data is read
    topology = run_topology(config, params.launch, params.adapter, STAGE)
    # Refuse data the required gates did not clear; each file is read once, and that buffer is what trains
    files = {"train_file": params.train_file, "eval_file": params.eval_file}
    data = read_gated_data(STAGE, files, params.gate_decisions)
    # The parent as its files are now (refused unless its manifest claims the same)
    parent_sha256 = verified_model_sha256(params.base_model)
    # Refuse to optimise an objective nobody approved
    # Executed from the bytes hashed (never a cached .pyc, never the file read again after the hash)
    reward_funcs = load_objective_module(REWARD_MODULE).resolve_reward_functions(params.reward_funcs, STAGE)
    reward_hashes = objective_hashes(reward_funcs)
    require_approved_objective(STAGE, reward_hashes)
    lineage = training_lineage(
        stage=STAGE,
        params=params.model_dump(),
        data=data,
        decision_paths=params.gate_decisions,
        parent_dir=params.base_model,
        parent_sha256=parent_sha256,
        topology=topology,
    )
    model, tokenizer = load_model(params.base_model, params.adapter, STAGE, expect_sha256=parent_sha256)
    train = load_prompts(data["train_file"])
    # The main process alone speaks for the run: MLflow run, model folder (staged), manifest
    with (
        main_process_run(topology, STAGE, {"method": "grpo"}) as run,
        staged_output(out_dir, topology) as staging,
    ):
        if run is not None:
            log_lineage_to_run(run, lineage)
            run.log(tags={f"lineage.reward.{name}.sha256": digest for name, digest in reward_hashes.items()})
        # Train
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=reward_funcs,
            args=config,
            callbacks=run_callbacks(config, run),
            train_dataset=train,
            processing_class=tokenizer,
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
                    "method": "grpo",
                    "adapter": params.adapter.model_dump(),
                    "seed": config.seed,
                    "reward_functions": reward_hashes,
                    "reward_history": reward_history(trainer.state.log_history),
                },
            )
    if run is not None:
        log.info("trained %s in %.1fs, run %s", STAGE, clock.seconds, run.run_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
