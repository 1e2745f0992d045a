"""A stage's MLflow run, kept by a process of its own that starts before the stage's heavy imports.

A training stage spends its first seconds importing torch, transformers and
TRL and loading the model on one core; importing MLflow and opening its
SQLite store costs about 3 CPU seconds more. :func:`start_run_process` spawns
``python -m governance.run_process`` first, which imports MLflow, opens the
store and the experiment on the other core meanwhile; the stage then sends
what it would have logged (params, tags, metrics, artifacts) down a pipe as
JSON lines and the run process writes them with MLflow's own client, in the
order sent. The run is MLflow's ordinary run: the stage itself never imports
MLflow.

Failure: any failed write is remembered and raised in the stage at the next
:meth:`RunProcess.sync` or :meth:`RunProcess.end` as the error it would have
raised in-process (:class:`RegistryError`, or :class:`ConfigError` for a
refused store), and the run ends FAILED. A stage that dies without ending
its run (killed, crashed interpreter) closes the pipe, and the run process
ends the run FAILED before it exits.

Trust boundary: the run process is a writer of the MLflow *view*; what the
stage decides (gates, manifests, outputs) never depends on it beyond the
errors it reports.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from governance.errors import ConfigError, GovernanceError, RegistryError

log = logging.getLogger(__name__)

#: Error classes the run process may report, by name; anything else becomes RegistryError.
_ERRORS: dict[str, type[GovernanceError]] = {"ConfigError": ConfigError, "RegistryError": RegistryError}

#: Run processes this process started and has not closed (closed at exit, or by :func:`close_run_processes`).
_OPEN: set[RunProcess] = set()

#: Modules MLflow imports as optional backends whenever installed (pyspark for Spark schemas, scipy
#: for sparse-matrix schemas) that logging a run or registering a version never calls: ~0.15 of the
#: ~1.7 CPU seconds of starting MLflow on the embedded store. A process that only uses MLflow for
#: that (the run process, the register stage) leaves them out (a ``None`` in ``sys.modules``).
MLFLOW_UNUSED_BACKENDS = ("pyspark", "scipy")

#: ``GOVERN_RUN_PROCESS=off``: the same messages applied in the stage's own process (no child, MLflow
#: imported by the stage), for measuring what the separate process saves (benchmarks/mechanisms.py).
SWITCH = "GOVERN_RUN_PROCESS"
OFF = ("off", "0", "false", "no")

#: The last run a :class:`RunProcess` of this process ended: ``{"run_id", "experiment_id", "tracking_uri"}``.
_LAST_RUN: dict[str, str] | None = None


class RunProcess:
    """The stage's side of the run process: send what to log, wait only where a result is needed."""

    def __init__(self, experiment: str):
        import governance

        env = dict(os.environ)
        # The child imports this same governance package (a worktree's, not an installed copy)
        root = str(Path(governance.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._process: subprocess.Popen | _InProcess
        if os.environ.get(SWITCH, "on").lower() in OFF:
            self._process = _InProcess()
        else:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "governance.run_process"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                text=True,
                bufsize=1,
            )
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.tracking_uri: str | None = None
        self._ended = False
        self._end_sent = False
        _OPEN.add(self)
        self._send({"op": "open", "experiment": experiment})

    # -- the pipe ---------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self._process.stdin.write(json.dumps(message, default=str) + "\n")
        except (BrokenPipeError, ValueError, OSError):
            raise self._gone() from None

    def _reply(self) -> dict[str, Any]:
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise self._gone()
        reply = json.loads(line)
        if "error" in reply:
            raise _ERRORS.get(reply.get("kind", ""), RegistryError)(reply["error"])
        return reply

    def _gone(self) -> RegistryError:
        code = self._process.poll()
        return RegistryError(
            f"the MLflow run process exited ({'code ' + str(code) if code is not None else 'pipe closed'}) "
            "before the run was complete; its error is above"
        )

    # -- the run ------------------------------------------------------------------------------

    def start(self, stage: str, tags: dict[str, str]) -> str:
        """Start the stage's run (tagged ``stage=<stage>``) and wait for its id; a refused store raises here."""
        self._send({"op": "start", "stage": stage, "tags": tags})
        reply = self._reply()
        self.run_id, self.experiment_id, self.tracking_uri = reply["run_id"], reply["experiment_id"], reply["uri"]
        return self.run_id

    def log(
        self,
        *,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
        step: int = 0,
    ) -> None:
        """Params, tags and metrics (at ``step``, timestamped now) in one batch; returns at once."""
        self._send(
            {
                "op": "log",
                "params": {k: str(v) for k, v in (params or {}).items()},
                "tags": {k: str(v) for k, v in (tags or {}).items()},
                "metrics": metrics or {},
                "step": step,
                "timestamp": int(time.time() * 1000),
            }
        )

    def log_dict(self, data: Any, artifact_file: str) -> None:
        self._send({"op": "log_dict", "data": data, "artifact_file": artifact_file})

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._send({"op": "log_artifact", "path": str(Path(path).resolve()), "artifact_path": artifact_path})

    def log_artifacts(self, directory: str | Path, artifact_path: str | None = None) -> None:
        """Copy a folder into the run's artifacts; :meth:`sync` before the folder moves or changes."""
        self._send({"op": "log_artifacts", "path": str(Path(directory).resolve()), "artifact_path": artifact_path})

    def find_model_run(self, stage: str, model_sha256: str) -> str | None:
        """The id of the latest run of ``stage`` in this experiment that logged model ``model_sha256``, or None."""
        found = self.model_run(stage, model_sha256)
        return found["run_id"] if found is not None else None

    def model_run(self, stage: str, model_sha256: str) -> dict[str, Any] | None:
        """``{"run_id", "tags"}`` of the latest run of ``stage`` that logged model ``model_sha256``, or None."""
        self._send({"op": "find_model_run", "stage": stage, "model_sha256": model_sha256})
        reply = self._reply()
        return {"run_id": reply["run_id"], "tags": reply.get("tags", {})} if reply["run_id"] is not None else None

    def log_to_run(
        self,
        run_id: str,
        *,
        metrics: dict[str, float] | None = None,
        artifacts: str | Path | None = None,
        artifact_path: str | None = None,
    ) -> None:
        """Metrics (step 0, timestamped now) and a folder's files logged to *another* run, e.g. the training run.

        A failure counts as this run's: the stage's run ends FAILED and :meth:`end` raises it.
        """
        self._send(
            {
                "op": "log_to_run",
                "run_id": run_id,
                "metrics": metrics or {},
                "timestamp": int(time.time() * 1000),
                "path": str(Path(artifacts).resolve()) if artifacts is not None else None,
                "artifact_path": artifact_path,
            }
        )

    def sync(self) -> None:
        """Wait until everything sent so far is written; raise the first write that failed."""
        self._send({"op": "sync"})
        self._reply()

    def end(self, status: str = "FINISHED") -> None:
        """End the run (FINISHED, or FAILED) and the process; raises a write that failed (the run ends FAILED)."""
        global _LAST_RUN
        if self._ended:
            return
        self._ended = True
        try:
            self._send({"op": "end", "status": status})
            self._reply()
            self._end_sent = True  # the process exits now: close() waits for it, run or not
        finally:
            self.close()
            if self.run_id is not None:
                _LAST_RUN = {
                    "run_id": self.run_id,
                    "experiment_id": str(self.experiment_id),
                    "tracking_uri": str(self.tracking_uri),
                }

    def close(self) -> None:
        """Close the pipe; a started run that was not ended ends FAILED, and this waits until it has.

        Without a started run there is nothing to wait for: the process finishes opening the
        store (never stopped half-way through creating one) and exits on its own.
        """
        _OPEN.discard(self)
        self._ended = True
        with contextlib.suppress(OSError):
            self._process.stdin.close()
        if self.run_id is not None or self._end_sent:
            try:
                self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process.stdout.close()


class _InProcess:
    """The run process's writer inside the stage (``GOVERN_RUN_PROCESS=off``): the pipe's two ends, no child.

    A line written is applied at once by :class:`_Writer`, exactly as the child
    would apply it; its reply waits for :meth:`readline`.
    """

    def __init__(self) -> None:
        self._writer = _Writer()
        self._replies: list[str] = []
        self._ended = False
        self.stdin = self.stdout = self

    def write(self, line: str) -> int:
        message = json.loads(line)
        reply = self._writer.handle(message)
        if reply is not None:
            self._replies.append(json.dumps(reply) + "\n")
        self._ended = self._ended or message["op"] == "end"
        return len(line)

    def flush(self) -> None:
        return None

    def readline(self) -> str:
        return self._replies.pop(0) if self._replies else ""

    def close(self) -> None:
        # The pipe closing without an end: the run failed, as serve() decides in the child
        if not self._ended and self._writer.run is not None:
            self._writer._end("FAILED")
        self._ended = True

    def poll(self) -> int:
        return 0

    def wait(self, timeout: float | None = None) -> int:
        return 0

    def kill(self) -> None:
        return None


def start_run_process(experiment: str) -> RunProcess | None:
    """On the main process (``RANK`` 0 or unset), a :class:`RunProcess` opening ``experiment``; elsewhere None.

    Call it first thing in a stage, before importing torch or TRL: the point is
    that MLflow's start-up runs while the stage imports.
    """
    if os.environ.get("RANK", "0") != "0":
        return None
    return RunProcess(experiment)


def close_run_processes() -> None:
    """Close every run process this process started and has not closed (a stage's error boundary calls it)."""
    for process in list(_OPEN):
        process.close()


def last_run() -> dict[str, str] | None:
    """The run a run process of this process last ended (``run_id``, ``experiment_id``, ``tracking_uri``)."""
    return _LAST_RUN


atexit.register(close_run_processes)


# --------------------------------------------------------------------------- the run process itself


class _Writer:
    """Applies the stage's messages to MLflow, in order; remembers the first failure."""

    def __init__(self) -> None:
        self.experiment = ""
        self.experiment_id: str | None = None
        self.run = None
        self.error: GovernanceError | None = None

    def handle(self, message: dict[str, Any]) -> dict[str, Any] | None:
        op = message["op"]
        if op == "find_model_run":  # a read: its failure is the caller's, not the run's
            return self._find_model_run(message)
        if op in ("sync", "end"):
            if op == "end":
                self._end(message["status"])
            return self._status()
        if self.error is None:
            try:
                getattr(self, f"_{op}")(message)
            except GovernanceError as exc:
                self.error = exc
            except Exception as exc:  # an MLflow or file error: reported to the stage, which fails
                self.error = RegistryError(f"MLflow {op} failed: {str(exc).splitlines()[0][:300]}")
        if op == "start":
            return self._status() if self.error else self._started()
        return None

    def _status(self) -> dict[str, Any]:
        if self.error is None:
            return {"ok": True}
        return {"error": str(self.error), "kind": type(self.error).__name__}

    def _started(self) -> dict[str, Any]:
        import mlflow

        return {
            "run_id": self.run.info.run_id,
            "experiment_id": str(self.run.info.experiment_id),
            "uri": mlflow.get_tracking_uri(),
        }

    def _open(self, message: dict[str, Any]) -> None:
        from governance.registry import ensure_experiment

        self.experiment = message["experiment"]
        self.experiment_id = ensure_experiment(self.experiment)

    def _find_model_run(self, message: dict[str, Any]) -> dict[str, Any]:
        from governance.registry import latest_model_run, registry_errors

        try:
            with registry_errors(f"searching runs of {message['stage']}"):
                run = latest_model_run(self.experiment, message["stage"], message["model_sha256"])
        except GovernanceError as exc:
            return {"error": str(exc), "kind": type(exc).__name__}
        if run is None:
            return {"run_id": None}
        return {"run_id": run.info.run_id, "tags": dict(run.data.tags)}

    def _start(self, message: dict[str, Any]) -> None:
        import mlflow

        from governance.registry import registry_errors

        stage = message["stage"]
        with registry_errors(f"starting the MLflow run for {stage}"):
            self.run = mlflow.start_run(
                experiment_id=self.experiment_id, run_name=stage, tags={"stage": stage, **message["tags"]}
            )

    def _log(self, message: dict[str, Any]) -> None:
        import mlflow
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

        params = {}
        for key, value in message["params"].items():
            if len(str(value)) > MAX_PARAM_VAL_LENGTH:  # as transformers' MLflowCallback: dropped, with a warning
                log.warning("param %s dropped: longer than MLflow's %d characters", key, MAX_PARAM_VAL_LENGTH)
                continue
            params[key] = str(value)
        mlflow.MlflowClient().log_batch(
            self.run.info.run_id,
            metrics=[Metric(k, float(v), message["timestamp"], message["step"]) for k, v in message["metrics"].items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, str(v)) for k, v in message["tags"].items()],
        )

    def _log_to_run(self, message: dict[str, Any]) -> None:
        import mlflow
        from mlflow.entities import Metric

        client = mlflow.MlflowClient()
        if message["metrics"]:
            client.log_batch(
                message["run_id"],
                metrics=[Metric(k, float(v), message["timestamp"], 0) for k, v in message["metrics"].items()],
            )
        if message["path"] is not None:
            client.log_artifacts(message["run_id"], message["path"], artifact_path=message["artifact_path"])

    def _log_dict(self, message: dict[str, Any]) -> None:
        import mlflow

        mlflow.log_dict(message["data"], message["artifact_file"])

    def _log_artifact(self, message: dict[str, Any]) -> None:
        import mlflow

        mlflow.log_artifact(message["path"], artifact_path=message["artifact_path"])

    def _log_artifacts(self, message: dict[str, Any]) -> None:
        import mlflow

        mlflow.log_artifacts(message["path"], artifact_path=message["artifact_path"])

    def _end(self, status: str) -> None:
        import mlflow

        if self.run is None:
            return
        status = "FAILED" if self.error is not None else status
        try:
            mlflow.end_run(status=status)
        except Exception as exc:
            if self.error is None:
                self.error = RegistryError(
                    f"closing the MLflow run {self.run.info.run_id} failed: {str(exc).splitlines()[0][:300]}"
                )
        self.run = None


def serve(commands: IO[str], replies: IO[str]) -> int:
    """Apply JSON-line messages from ``commands`` until ``end`` or end of input; replies go to ``replies``."""
    writer = _Writer()
    for line in commands:
        message = json.loads(line)
        reply = writer.handle(message)
        if reply is not None:
            replies.write(json.dumps(reply) + "\n")
            replies.flush()
        if message["op"] == "end":
            return 0
    # The stage went away without ending its run: it failed
    if writer.run is not None:
        log.warning("the stage closed its pipe without ending MLflow run %s: ending it FAILED", writer.run.info.run_id)
        writer._end("FAILED")
    return 0


def main() -> int:
    if os.environ.get("GOVERN_SKIP_BACKENDS", "on").lower() not in OFF:
        for name in MLFLOW_UNUSED_BACKENDS:
            sys.modules.setdefault(name, None)
    # The stage handles Ctrl-C and the launcher's SIGTERM and then ends the run; this process waits for that
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("mlflow.store", "alembic"):  # store creation and migration notes, as the stages quiet them
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # Replies travel on the original stdout; anything a library prints goes to stderr
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    return serve(sys.stdin, replies)


if __name__ == "__main__":
    raise SystemExit(main())
