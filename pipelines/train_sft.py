"""Supervised fine-tuning of the base model on the gated SFT conversations.

    dvc repro train_sft           # or: python -m pipelines.train_sft

Refuses to start unless the gates ``policies/report.yaml`` requires passed for
the exact bytes of the train and eval files (also when run directly with
``python -m``): each file is read once, and the buffer the gates' hashes are
checked against is the one trained on. The parent's hash is recomputed from
its files, never copied from its manifest.
The ``trl`` section is passed to ``trl.SFTConfig`` unchanged; ``adapter``
switches LoRA/QLoRA. One MLflow run per execution, tagged ``stage=train_sft``,
holds TRL's metrics, every hyperparameter and the lineage.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from governance.datasets.hashed import HashedFile
from governance.lineage import verified_model_sha256
from governance.policy import Strict
from governance.training_data import read_gated_data
from pipelines._common import load_params, stage_main
from pipelines._loss_masking import (
    Conversation,
    LossMasking,
    choose_loss_masking,
    masked_tokenization,
    prompt_completion_rows,
)
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
STAGE = "train_sft"


class TrainSftParams(Strict):
    base_model: str
    train_file: str
    eval_file: str
    gate_decisions: list[str]
    adapter: AdapterParams
    launch: LaunchParams
    trl: dict[str, Any]


def read_conversations(data: HashedFile) -> list[Conversation]:
    """The gated JSONL's ``messages`` (from the bytes read once), each with its ``file:line`` (metadata dropped)."""
    return [Conversation(f"{data.path}:{r.line}", r.data["messages"]) for r in data.records()]


def training_dataset(conversations: list[Conversation], masking: LossMasking):
    """The ``datasets.Dataset`` TRL trains on: conversations, or prompt/completion turns for ``completion_only``."""
    from datasets import Dataset

    if masking.strategy == "completion_only":
        return Dataset.from_list(prompt_completion_rows(conversations))
    return Dataset.from_list([{"messages": c.messages} for c in conversations])


@stage_main
def main(argv: list[str] | None = None) -> int:
    from trl import SFTConfig, SFTTrainer

    params = load_params(STAGE, TrainSftParams)
    config = trl_config(SFTConfig, params.trl, STAGE)
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
    # The loss mask from the model's chat template (refused in one line when none fits), into the lineage
    train_rows, eval_rows = read_conversations(data["train_file"]), read_conversations(data["eval_file"])
    masking = choose_loss_masking(tokenizer, train_rows + eval_rows, config.assistant_only_loss, params.base_model)
    lineage["loss_masking"] = masking.lineage()
    log.info("%s: loss masking %s (%s)", STAGE, masking.strategy, masking.template_source)
    train, evaluation = training_dataset(train_rows, masking), training_dataset(eval_rows, masking)
    # The main process alone speaks for the run: MLflow run, model folder (staged), manifest
    with (
        main_process_run(topology, STAGE, {"method": "sft"}) as run,
        staged_output(out_dir, topology) as staging,
    ):
        if run is not None:
            log_lineage_to_run(run, lineage)
        # Train
        callbacks = run_callbacks(config, run)
        with masked_tokenization(masking, config, tokenizer):  # TRL tokenizes the data while it builds the trainer
            trainer = SFTTrainer(
                model=model,
                args=config,
                callbacks=callbacks,
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
                extra={"method": "sft", "adapter": params.adapter.model_dump(), "seed": config.seed},
            )
    if run is not None:
        log.info("trained %s in %.1fs, run %s", STAGE, clock.seconds, run.run_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
