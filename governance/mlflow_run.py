"""A training or evaluate stage's MLflow run, written from the stage's own process.

:class:`MlflowRun` is what a stage logs to: params, tags and metrics in one
batch per call, ``lineage.json``, the gate decisions, the model folder, an
evaluation's files (also to the training run, as ``heldout.*``). MLflow is
imported on first use, so a stage a gate refuses never pays for it.

Failure: a write that fails raises at once (:class:`RegistryError`, or
:class:`ConfigError` for a refused store); the stage's code that started the
run ends it FAILED on any exception (``main_process_run`` for training,
``log_evaluation`` for an evaluation). A process killed outright leaves its
run RUNNING, as any MLflow run.

Trust boundary: the run is a *view* for reviewers; what the stage decides
(gates, manifests, outputs) never depends on it beyond the errors it raises.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from governance.errors import GovernanceError, RegistryError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _writing(action: str) -> Iterator[None]:
    """An MLflow or file error as one :class:`RegistryError` line; governance errors pass unchanged."""
    try:
        yield
    except GovernanceError:
        raise
    except Exception as exc:
        raise RegistryError(f"MLflow {action} failed: {str(exc).splitlines()[0][:300]}") from None


class MlflowRun:
    """One stage execution's MLflow run in ``experiment``: :meth:`start`, log, :meth:`end`."""

    def __init__(self, experiment: str):
        self.experiment = experiment
        self.run_id: str | None = None
        self._experiment_id: str | None = None
        self._running = False

    def _open(self) -> str:
        """The experiment's id, created on first use (sets MLflow's URIs; a refused store raises here)."""
        if self._experiment_id is None:
            from governance.registry import ensure_experiment

            self._experiment_id = ensure_experiment(self.experiment)
        return self._experiment_id

    def start(self, stage: str, tags: dict[str, str]) -> str:
        """Start the stage's run, tagged ``stage=<stage>``, and return its id."""
        experiment_id = self._open()
        import mlflow

        from governance.registry import registry_errors

        with registry_errors(f"starting the MLflow run for {stage}"):
            run = mlflow.start_run(experiment_id=experiment_id, run_name=stage, tags={"stage": stage, **tags})
        self.run_id, self._running = run.info.run_id, True
        return self.run_id

    def log(
        self,
        *,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        step: int = 0,
    ) -> None:
        """Params, tags and metrics (at ``step``, timestamped now) in one batch.

        A param longer than MLflow accepts is dropped with a warning, as
        transformers' ``MLflowCallback`` does.
        """
        import mlflow
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

        timestamp = int(time.time() * 1000)
        kept = {}
        for key, value in (params or {}).items():
            if len(str(value)) > MAX_PARAM_VAL_LENGTH:
                log.warning("param %s dropped: longer than MLflow's %d characters", key, MAX_PARAM_VAL_LENGTH)
                continue
            kept[key] = str(value)
        with _writing("log"):
            mlflow.MlflowClient().log_batch(
                self.run_id,
                metrics=[Metric(k, float(v), timestamp, step) for k, v in (metrics or {}).items()],
                params=[Param(k, v) for k, v in kept.items()],
                tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
            )

    def log_dict(self, data: Any, artifact_file: str) -> None:
        import mlflow

        with _writing("log_dict"):
            mlflow.log_dict(data, artifact_file)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        import mlflow

        with _writing("log_artifact"):
            mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def log_artifacts(self, directory: str | Path, artifact_path: str | None = None) -> None:
        """Copy a folder's files into the run's artifacts."""
        import mlflow

        with _writing("log_artifacts"):
            mlflow.log_artifacts(str(directory), artifact_path=artifact_path)

    def log_to_run(
        self,
        run_id: str,
        *,
        metrics: dict[str, float] | None = None,
        artifacts: str | Path | None = None,
        artifact_path: str | None = None,
    ) -> None:
        """Metrics (step 0, timestamped now) and a folder's files logged to *another* run, e.g. the training run."""
        import mlflow
        from mlflow.entities import Metric

        timestamp = int(time.time() * 1000)
        client = mlflow.MlflowClient()
        with _writing("log_to_run"):
            if metrics:
                client.log_batch(run_id, metrics=[Metric(k, float(v), timestamp, 0) for k, v in metrics.items()])
            if artifacts is not None:
                client.log_artifacts(run_id, str(artifacts), artifact_path=artifact_path)

    def find_model_run(self, stage: str, model_sha256: str) -> str | None:
        """The id of the latest run of ``stage`` in this experiment that logged model ``model_sha256``, or None."""
        self._open()
        from governance.registry import latest_model_run, registry_errors

        with registry_errors(f"searching runs of {stage}"):
            run = latest_model_run(self.experiment, stage, model_sha256)
        return run.info.run_id if run is not None else None

    def end(self, status: str = "FINISHED") -> None:
        """End the run (FINISHED, or FAILED); nothing to do when none was started or it has ended."""
        if not self._running:
            return
        import mlflow

        self._running = False
        try:
            mlflow.end_run(status=status)
        except Exception as exc:
            raise RegistryError(
                f"closing the MLflow run {self.run_id} failed: {str(exc).splitlines()[0][:300]}"
            ) from None
