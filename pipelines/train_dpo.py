"""Train the DPO policy from the SFT checkpoint on the gated preference pairs.

    dvc repro train_dpo           # or: python -m pipelines.train_dpo

Refuses to start unless the PII and validation gates passed for the exact
bytes of the train and eval files. The reference model is handled as TRL
does: with a LoRA/QLoRA adapter it is the SFT model with the adapter
switched off; with full tuning TRL loads a frozen copy of the SFT model. The
``trl`` section is passed to ``trl.DPOConfig`` unchanged. One MLflow run,
tagged ``stage=train_dpo``, holds TRL's metrics (rewards/accuracies,
rewards/margins, ...), the hyperparameters and the lineage.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from governance.lineage import verified_model_sha256
from governance.policy import Strict
from governance.training_data import read_gated_data
from pipelines._common import load_params, stage_main
from pipelines._preference import trainer_errors
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
STAGE = "train_dpo"
#: TRL's explicit-prompt preference shape; the provenance columns stay behind (the trainer refuses unknown columns)
PAIR_COLUMNS = ("prompt", "chosen", "rejected")


class TrainDpoParams(Strict):
    base_model: str
    train_file: str
    eval_file: str
    gate_decisions: list[str]
    adapter: AdapterParams
    launch: LaunchParams
    trl: dict[str, Any]


@stage_main
def main(argv: list[str] | None = None) -> int:
    from trl import DPOConfig, DPOTrainer

    params = load_params(STAGE, TrainDpoParams)
    config = trl_config(DPOConfig, params.trl, STAGE)
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
    # TRL's own option for how the model is loaded (attn_implementation, dtype): TRL reads it only when it loads
    # the model itself, and the stage loads it, so the stage applies it
    model, tokenizer = load_model(
        params.base_model, params.adapter, STAGE, expect_sha256=parent_sha256, init_kwargs=config.model_init_kwargs
    )
    train, evaluation = data["train_file"].dataset(PAIR_COLUMNS), data["eval_file"].dataset(PAIR_COLUMNS)
    # The main process alone speaks for the run: MLflow run, model folder (staged), manifest
    with (
        main_process_run(topology, STAGE, {"method": "dpo"}) as run,
        staged_output(out_dir, topology) as staging,
    ):
        if run is not None:
            log_lineage_to_run(run, lineage)
        # Train against the SFT model as reference (ref_model=None: TRL's own handling)
        with trainer_errors(STAGE):
            trainer = DPOTrainer(
                model=model,
                ref_model=None,
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
                    "method": "dpo",
                    "adapter": params.adapter.model_dump(),
                    "seed": config.seed,
                    "beta": config.beta,
                    "reference": "parent, adapter disabled" if lora is not None else "parent, frozen copy",
                },
            )
    if run is not None:
        log.info("trained %s in %.1fs, run %s", STAGE, clock.seconds, run.run_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
