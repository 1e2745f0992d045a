"""Supervised fine-tuning of the base model on the gated SFT conversations.

    dvc repro train_sft           # or: python -m pipelines.train_sft

Refuses to start unless the PII and validation gates passed for the exact
bytes of the train and eval files (also when run directly with ``python -m``).
The ``trl`` section is passed to ``trl.SFTConfig`` unchanged; ``adapter``
switches LoRA/QLoRA. One MLflow run per execution, tagged ``stage=train_sft``,
holds TRL's metrics, every hyperparameter and the lineage.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from governance.gates import require_passed_gates
from governance.policy import Strict
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


def read_conversations(path: str) -> list[Conversation]:
    """The gated JSONL's ``messages``, each with the ``file:line`` it came from (metadata dropped)."""
    from governance.records import iter_records

    return [Conversation(f"{path}:{r.line}", r.data["messages"]) for r in iter_records(path)]


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
    data_files = [params.train_file, params.eval_file]
    decisions = require_passed_gates(data_files, params.gate_decisions)
    lineage = training_lineage(
        stage=STAGE,
        params=params.model_dump(),
        data_files=data_files,
        decisions=decisions,
        decision_paths=params.gate_decisions,
        parent_dir=params.base_model,
        topology=topology,
    )
    model, tokenizer = load_model(params.base_model, params.adapter, STAGE)
    # The loss mask from the model's chat template (refused in one line when none fits), into the lineage
    train_rows, eval_rows = read_conversations(params.train_file), read_conversations(params.eval_file)
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
