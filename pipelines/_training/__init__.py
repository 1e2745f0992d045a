"""Mechanics every training stage shares, one job per module; the stages import them from here.

Each ``train_*`` module stays readable top to bottom (TRL's own stance); what
must be *consistent* between them lives here, once:

* :mod:`~pipelines._training.config` — TRL's and PEFT's config objects from params, unchanged;
* :mod:`~pipelines._training.models` — loading a stage's model, saving a trained one;
* :mod:`~pipelines._training.lineage` — a trained model's provenance and how it reaches the run;
* :mod:`~pipelines._training.recording` — the model's manifest, the run's context, evaluation results;
* :mod:`~pipelines._training.launch` — one run, many processes (``accelerate launch``), staged outputs.
"""

from pipelines._training.config import (
    OFF_WORDS,
    AdapterParams,
    check_scalar_types,
    peft_config,
    strategy_off_words,
    trl_config,
)
from pipelines._training.launch import (
    DistributedError,
    LaunchParams,
    Topology,
    main_process_run,
    run_topology,
    save_trained_model,
    staged_output,
    stop_on_sigterm,
)
from pipelines._training.lineage import dataset_provenance, log_lineage_to_run, training_lineage
from pipelines._training.models import base_model_path, load_model, name_as_loaded, recorded_model, save_model
from pipelines._training.recording import (
    RUN_CONTEXT_KEYS,
    Stopwatch,
    content_history,
    finish_training,
    log_evaluation,
    run_callbacks,
    with_run_context,
    write_generations,
)

__all__ = [
    "OFF_WORDS",
    "RUN_CONTEXT_KEYS",
    "AdapterParams",
    "DistributedError",
    "LaunchParams",
    "Stopwatch",
    "Topology",
    "base_model_path",
    "check_scalar_types",
    "content_history",
    "dataset_provenance",
    "finish_training",
    "load_model",
    "log_evaluation",
    "log_lineage_to_run",
    "main_process_run",
    "name_as_loaded",
    "peft_config",
    "recorded_model",
    "run_callbacks",
    "run_topology",
    "save_model",
    "save_trained_model",
    "staged_output",
    "stop_on_sigterm",
    "strategy_off_words",
    "training_lineage",
    "trl_config",
    "with_run_context",
    "write_generations",
]
