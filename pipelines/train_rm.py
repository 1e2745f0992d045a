"""Train a reward model from the base model on the gated preference pairs.

    dvc repro train_rm            # or: python -m pipelines.train_rm

The base model gets a one-output score head (``AutoModelForSequenceClassification``,
``num_labels=1``) and TRL's ``RewardTrainer`` fits it with the pairwise
Bradley-Terry loss. Refuses to start unless the PII and validation gates
passed for the exact bytes of the train and eval files. The ``trl`` section is
passed to ``trl.RewardConfig`` unchanged; ``adapter`` switches LoRA/QLoRA
(``task_type: SEQ_CLS`` keeps the score head trainable). One MLflow run,
tagged ``stage=train_rm``, holds TRL's metrics, the hyperparameters and the
lineage; the output is the merged reward model with its manifest.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from governance.errors import ConfigError
from governance.lineage import verified_model_sha256
from governance.policy import Strict
from governance.training_data import read_gated_data
from pipelines._common import load_params, stage_main
from pipelines._preference import load_reward_model, trainer_errors
from pipelines._training import (
    AdapterParams,
    LaunchParams,
    Stopwatch,
    finish_training,
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
STAGE = "train_rm"
#: TRL's explicit-prompt preference shape; the provenance columns stay behind (the trainer refuses unknown columns)
PAIR_COLUMNS = ("prompt", "chosen", "rejected")


class TrainRmParams(Strict):
    base_model: str
    train_file: str
    eval_file: str
    gate_decisions: list[str]
    adapter: AdapterParams
    launch: LaunchParams
    trl: dict[str, Any]


@stage_main
def main(argv: list[str] | None = None) -> int:
    import torch
    from transformers import set_seed
    from trl import RewardConfig, RewardTrainer

    params = load_params(STAGE, TrainRmParams)
    config = trl_config(RewardConfig, params.trl, STAGE)
    if params.adapter.method == "qlora" and not torch.cuda.is_available():
        # TRL 1.16's RewardTrainer casts every trainable parameter of a quantised model to bf16, the new score
        # head included, while on a CPU the rest of the model loads in fp32: the first step fails on the mismatch
        raise ConfigError(
            f"params.yaml: {STAGE}.adapter.method: qlora trains a reward model on a CUDA GPU only (TRL's "
            "RewardTrainer casts the score head to bf16 while a CPU model computes in fp32): use method: lora"
        )
    lora = peft_config(params.adapter, STAGE)
    out_dir = Path(config.output_dir)
    # Every process: its place in the launch, then the gates, before any data is read
    topology = run_topology(config, params.launch, params.adapter, STAGE)
    # Refuse data the required gates did not clear; each file is read once, and that buffer is what trains
    files = {"train_file": params.train_file, "eval_file": params.eval_file}
    data = read_gated_data(STAGE, files, params.gate_decisions)
    # The parent as its files are now (refused unless its manifest claims the same)
    parent_sha256 = verified_model_sha256(params.base_model)
    lineage = training_lineage(
        stage=STAGE,
        params=params.model_dump(),
        data=data,
        decision_paths=params.gate_decisions,
        parent_dir=params.base_model,
        parent_sha256=parent_sha256,
        topology=topology,
    )
    # The score head is initialised randomly: seed first, so the same params give the same model
    set_seed(config.seed)
    model, tokenizer = load_reward_model(params.base_model, params.adapter, STAGE, expect_sha256=parent_sha256)
    train, evaluation = data["train_file"].dataset(PAIR_COLUMNS), data["eval_file"].dataset(PAIR_COLUMNS)
    # The main process alone speaks for the run: MLflow run, model folder (staged), manifest
    with (
        main_process_run(topology, STAGE, {"method": "rm"}) as run,
        staged_output(out_dir, topology) as staging,
    ):
        if run is not None:
            log_lineage_to_run(run, lineage)
        # Train
        with trainer_errors(STAGE):
            trainer = RewardTrainer(
                model=model,
                args=config,
                callbacks=run_callbacks(config, run),
                train_dataset=train,
                eval_dataset=evaluation,
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
                    "method": "rm",
                    "adapter": params.adapter.model_dump(),
                    "seed": config.seed,
                    "train_pairs": len(trainer.train_dataset),
                },
            )
    if run is not None:
        log.info("trained %s in %.1fs, run %s", STAGE, clock.seconds, run.run_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
