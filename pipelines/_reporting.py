"""TRL's ``report_to: mlflow``, logged to the stage's own MLflow run.

:class:`RunReporter` logs what transformers' ``MLflowCallback`` logs — the
model config and training arguments as params when training begins, every
logged value as a metric at the trainer's global step — to the stage's
:class:`~governance.mlflow_run.MlflowRun`. Imported by
:func:`pipelines._training.run_callbacks` once transformers is loaded.
"""

from __future__ import annotations

import json
import logging
import os
import re

from transformers import TrainerCallback

from governance.mlflow_run import MlflowRun

log = logging.getLogger(__name__)

#: Characters MLflow refuses in metric names become ``_``, as transformers' MLflowCallback does.
_UNSAFE_METRIC_NAME = re.compile(r"[^0-9A-Za-z_\-\.\ :/]")


class RunReporter(TrainerCallback):
    """transformers' ``MLflowCallback``, logging to the stage's run rather than one it picks itself.

    Same params (the model's config overlaid with ``args.to_dict()``, values
    over MLflow's length limit dropped by :meth:`MlflowRun.log`), same metrics
    (numbers and one-element tensors, names sanitised, at ``state.global_step``),
    same ``MLFLOW_TAGS``; ``report_to`` is logged as the params said it.
    """

    def __init__(self, run: MlflowRun, report_to: list[str]):
        self.run = run
        self.report_to = report_to
        self._initialized = False

    def setup(self, args, state, model) -> None:
        if state.is_world_process_zero:
            params = {**args.to_dict(), "report_to": self.report_to}
            if getattr(model, "config", None) is not None:
                params = {**model.config.to_dict(), **params}
            tags = json.loads(os.environ["MLFLOW_TAGS"]) if os.environ.get("MLFLOW_TAGS") else {}
            self.run.log(params={k: str(v) for k, v in params.items()}, tags=tags)
        self._initialized = True

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not self._initialized:
            self.setup(args, state, model)

    def on_log(self, args, state, control, logs, model=None, **kwargs):
        if not self._initialized:
            self.setup(args, state, model)
        if not state.is_world_process_zero:
            return
        metrics = {}
        for key, value in logs.items():
            if hasattr(value, "numel") and value.numel() == 1:  # a one-element tensor
                value = value.item()
            if not isinstance(value, int | float):
                log.warning("%s: not a number, not logged as a metric", key)
                continue
            metrics[_UNSAFE_METRIC_NAME.sub("_", key)] = value
        self.run.log(metrics=metrics, step=state.global_step)
