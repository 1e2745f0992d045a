"""After training and evaluation: the model's manifest, and what the stage's MLflow run records.

The manifest holds only what the model's bytes determine; who ran it, when,
on which commit and machine, and the energy it drew go to the MLflow run
(:data:`RUN_CONTEXT_KEYS`); the run, commit, dirty flag and user are also signed
in a ``model_trained`` trail event (:mod:`governance.trained`), and read back
from it with :func:`with_run_context`.
TRL's ``report_to: mlflow`` is served by
:class:`~pipelines._reporting.RunReporter` and the energy meter by
:class:`~pipelines._training.energy.EnergyMeterCallback`, both given to the
trainer by :func:`run_callbacks`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from governance.evaluation import GENERATIONS_EVIDENCE
from governance.files import write_atomic
from governance.lineage import sha256_dir, write_manifest
from governance.mlflow_run import MlflowRun
from governance.trained import record_trained, signed_run_context
from pipelines._common import project_name

log = logging.getLogger(__name__)


class Stopwatch:
    """Wall time of a block, for the manifest and the report."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = round(time.perf_counter() - self.start, 3)


#: Lineage facts about *this execution* rather than the model's content: they go to the
#: MLflow run (tags and lineage.json), never into the model folder, whose dvc.lock hash
#: must be the same for every bit-exact re-run (another user, commit or machine).
RUN_CONTEXT_KEYS = ("trained_by", "git_commit", "git_dirty", "environment", "energy")

#: TRL log entries that measure time, not training: kept in MLflow metrics only.
_TIMING_SUFFIXES = ("_runtime", "_per_second", "step_time")


def content_history(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """TRL's loss history without the wall-clock entries (runtime, samples per second)."""
    return [
        {k: v for k, v in entry.items() if not k.endswith(_TIMING_SUFFIXES)}
        for entry in log_history
        if "loss" in entry or "train_loss" in entry
    ]


def quantization_record(model) -> dict[str, Any] | None:
    """The quantisation config the model was loaded with (QLoRA's 4-bit base: ``BitsAndBytesConfig.to_dict()``).

    None for a model loaded unquantised. Read off the model that trained (a
    PeftModel forwards ``config`` to its base), so it is what was used, not
    what the params asked for.
    """
    config = getattr(model, "config", None)
    quantization = getattr(config, "quantization_config", None)
    if quantization is None:
        return None
    data = quantization.to_dict() if hasattr(quantization, "to_dict") else dict(quantization)
    return json.loads(json.dumps(data, default=str))  # dtypes and sets as text: JSON like the rest of the lineage


def training_energy(trainer, seconds: float) -> dict[str, Any]:
    """The energy record of :class:`~pipelines._training.energy.EnergyMeterCallback`, if the trainer had one."""
    from governance.energy import energy_record
    from pipelines._training.energy import EnergyMeterCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, EnergyMeterCallback) and callback.record is not None:
            return callback.record
    return energy_record([], seconds=seconds, reason="not metered: the trainer had no energy meter (run_callbacks)")


def finish_training(
    *,
    out_dir: str | Path,
    lineage: dict[str, Any],
    trainer,
    seconds: float,
    run: MlflowRun,
    extra: dict[str, Any],
    final_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Write the trained model's manifest and log the model folder to the run.

    The manifest holds only what the bytes of the model determine (lineage of
    inputs, params, steps, loss history, a quantised base's config); the run id,
    wall time, energy, user, commit and machine are tags and metrics of the
    MLflow run, found again with :func:`with_run_context`. ``lineage.json`` is
    logged again with the energy the training drew (joules, method, GPUs) and
    the quantisation config. A failed write raises here, before the staged
    model moves into place.
    """
    out_dir = Path(out_dir)
    state = trainer.state
    lineage = {**lineage, "energy": training_energy(trainer, seconds)}
    quantization = quantization_record(trainer.model)
    if quantization is not None:  # QLoRA: the 4-bit base's config shapes the weights, so it is content
        lineage["quantization"] = quantization
    manifest = {
        **{k: v for k, v in lineage.items() if k not in RUN_CONTEXT_KEYS},
        "model_sha256": sha256_dir(out_dir),
        "num_parameters": sum(p.numel() for p in trainer.model.parameters()),
        # Written in a staging folder (see staged_output); the model lives at final_dir
        "model_path": str(final_dir or out_dir),
        "license": lineage["base"].get("license"),
        "trainer": f"{type(trainer).__module__}.{type(trainer).__qualname__}",
        "global_steps": state.global_step,
        "tokens_seen": getattr(state, "num_input_tokens_seen", None) or None,
        "train_history": content_history(state.log_history),
        **extra,
    }
    write_manifest(out_dir, manifest)
    energy = lineage["energy"]
    metrics = {"wall_seconds": seconds}
    if energy.get("joules") is not None:
        metrics["energy_joules"] = energy["joules"]
    tags = {
        "lineage.model_sha256": manifest["model_sha256"],
        "lineage.energy.method": energy["method"],
        "lineage.energy.gpus": str(len(energy.get("gpus") or [])),
    }
    run.log(metrics=metrics, tags=tags)
    run.log_dict(lineage, "lineage.json")  # now with the energy drawn (and a quantised base's config)
    run.log_artifacts(out_dir, artifact_path="model")
    # The run context as this stage computed it, signed now: the run's tags can be edited later, this cannot
    record_trained(manifest["stage"], manifest["model_sha256"], run.run_id, lineage)
    log.debug("model %s logged to run %s", manifest["model_sha256"][:12], run.run_id)
    return manifest


def with_run_context(manifest: dict[str, Any]) -> dict[str, Any]:
    """A trained model's manifest plus its training run's context, as the training stage signed it.

    Adds ``run_id``, ``git_commit``, ``git_dirty`` and ``trained_by`` from the newest ``model_trained`` trail
    event of the manifest's stage for this model hash (:func:`governance.trained.signed_run_context`), and
    checks the MLflow run's tags still say the same. Raises :class:`ConfigError` when no such event exists (the
    model folder came from elsewhere, e.g. a DVC cache, without its trail) or a tag was changed since.
    """
    stage, digest = str(manifest.get("stage")), str(manifest.get("model_sha256"))
    return {**manifest, **signed_run_context(stage, digest, str(manifest.get("model_path")))}


def write_generations(out_dir: str | Path, generations: list[dict[str, Any]]) -> dict[str, str]:
    """Write ``generations.json`` atomically; returns the evidence binding its bytes, for the evaluation's signed
    event (the drift monitor's default baseline is these completions, read only as that event bound them)."""
    data = (json.dumps(generations, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    write_atomic(Path(out_dir) / "generations.json", data)
    return {GENERATIONS_EVIDENCE: hashlib.sha256(data).hexdigest()}


def log_evaluation(*, stage: str, method: str, out_dir: str | Path, metrics: dict[str, float], trained: dict) -> None:
    """Log an evaluate stage's results to its own MLflow run and to the training run.

    The stage's own run (tagged ``stage=<stage>``, ``training_run_id``) gets the
    metrics and the output folder's files under ``evaluation/``; the training
    run gets the metrics as ``heldout.*`` and the same files. ``trained`` carries
    the run context (:func:`with_run_context`). A failed write raises here and
    the stage's run ends FAILED.
    """
    run = MlflowRun(project_name())
    run.start(stage, {"method": method, "training_run_id": trained["run_id"]})
    try:
        run.log(metrics=metrics)
        run.log_artifacts(out_dir, artifact_path="evaluation")
        heldout = {f"heldout.{k}": float(v) for k, v in metrics.items()}
        run.log_to_run(trained["run_id"], metrics=heldout, artifacts=out_dir, artifact_path="evaluation")
    except BaseException:
        run.end("FAILED")
        raise
    run.end()


def run_callbacks(config, run: MlflowRun | None) -> list:
    """The stage's trainer callbacks: TRL's ``report_to: mlflow`` to the stage's run, and the energy meter.

    Call on every process, before building the trainer. transformers'
    ``MLflowCallback`` picks its run from environment variables
    (``MLFLOW_RUN_ID``, ``MLFLOW_NESTED_RUN``...) and logs params in its own
    chunks; the stage's run, already holding the lineage, must be the one TRL's
    values reach. So ``mlflow`` is taken out of ``config.report_to`` (on every
    process: the callback imports MLflow even where it logs nothing) and, on
    the main process, replaced by :class:`RunReporter`, which logs the same
    params and metrics to the run. Other ``report_to`` entries are left alone.
    Every process also gets an :class:`~pipelines._training.energy.EnergyMeterCallback`
    (last, so it brackets training and not the reporter's set-up): its ranks
    gather their readings when training ends, so each must have one.
    """
    from pipelines._training.energy import EnergyMeterCallback

    meter = EnergyMeterCallback()
    report_to = list(config.report_to or [])
    if "mlflow" not in report_to:
        return [meter]
    config.report_to = [name for name in report_to if name != "mlflow"]
    if run is None:
        return [meter]
    from pipelines._reporting import RunReporter

    return [RunReporter(run, report_to=report_to), meter]
