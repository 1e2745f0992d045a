"""The run process writes a stage's MLflow run for real (SQLite store), and ends it FAILED whenever the stage fails.

Each test starts as few run processes as it can: every one imports MLflow (seconds of CPU).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from governance import registry
from governance import run_process as rp
from governance.errors import ConfigError, RegistryError

#: The checkout under test, first on the path of the stage processes these tests start
ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


@pytest.fixture
def store(mlflow_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return MlflowClient(tracking_uri=mlflow_store, registry_uri=mlflow_store)


@pytest.mark.parametrize("mode", ["process", "inline"])
def test_a_run_holds_params_tags_metrics_and_artifacts(store, tmp_path, monkeypatch, mode):
    # inline: GOVERN_RUN_PROCESS=off, the benchmarks' off-switch: the same messages, applied in this process
    monkeypatch.setenv(rp.SWITCH, "on" if mode == "process" else "off")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"w")
    (tmp_path / "decision.json").write_text('{"passed": true}')
    run = rp.RunProcess("rp-test")
    run_id = run.start("train_sft", {"method": "sft"})
    run.log(params={f"pipeline.trl.option_{i:03d}": i for i in range(150)}, tags={"lineage.gates": "g=passed"})
    for step in (5, 10):
        run.log(metrics={"loss": 1.0 / step, "learning_rate": 0.1}, step=step)
    run.log(params={"too_long": "x" * 6001})  # dropped with a warning, as transformers' MLflowCallback does
    run.log_dict({"stage": "train_sft"}, "lineage.json")
    run.log_artifact(tmp_path / "decision.json", artifact_path="gates/validate_sft")
    run.log_artifacts(tmp_path / "model", artifact_path="model")
    run.log(tags={"lineage.model_sha256": "abc"})
    run.sync()
    # A model's training run is found by stage and hash (train_rlhf links its reward model's run so)
    assert run.find_model_run("train_sft", "abc") == run_id
    assert run.find_model_run("train_sft", "nope") is None
    run.end()

    logged = store.get_run(run_id)
    assert logged.info.status == "FINISHED"
    assert (logged.data.tags["stage"], logged.data.tags["method"]) == ("train_sft", "sft")
    assert len([k for k in logged.data.params if k.startswith("pipeline.trl.option_")]) == 150
    assert logged.data.params["pipeline.trl.option_149"] == "149"
    assert "too_long" not in logged.data.params
    assert logged.data.tags["lineage.gates"] == "g=passed"
    assert [(m.step, m.value) for m in store.get_metric_history(run_id, "loss")] == [(5, 0.2), (10, 0.1)]
    assert {a.path for a in store.list_artifacts(run_id)} == {"lineage.json", "gates", "model"}
    assert [a.path for a in store.list_artifacts(run_id, "model")] == ["model/weights.bin"]
    assert rp.last_run()["run_id"] == run_id  # the stage's OpenLineage event names it
    assert run._process.poll() == 0


def test_an_evaluation_finds_the_training_run_with_its_tags_and_logs_to_it(store, tmp_path):
    """What an evaluate stage does through its run process: never importing MLflow itself."""
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "evaluation" / "metrics.json").write_text('{"loss": 0.5}')
    training = rp.RunProcess("rp-test")
    training_id = training.start("train_sft", {"lineage.model_sha256": "abc", "lineage.git_commit": "c0ffee"})
    training.end()
    run = rp.RunProcess("rp-test")
    found = run.model_run("train_sft", "abc")
    assert found["run_id"] == training_id and found["tags"]["lineage.git_commit"] == "c0ffee"
    assert run.model_run("train_sft", "nope") is None
    run_id = run.start("evaluate_sft", {"training_run_id": training_id})
    run.log(metrics={"loss": 0.5})
    run.log_to_run(
        training_id, metrics={"heldout.loss": 0.5}, artifacts=tmp_path / "evaluation", artifact_path="evaluation"
    )
    run.end()

    assert store.get_run(training_id).data.metrics == {"heldout.loss": 0.5}
    assert [a.path for a in store.list_artifacts(training_id, "evaluation")] == ["evaluation/metrics.json"]
    assert store.get_run(run_id).data.metrics == {"loss": 0.5}
    assert store.get_run(run_id).info.status == "FINISHED"


def test_a_failed_write_is_raised_in_the_stage_and_fails_the_run(store, tmp_path):
    run = rp.RunProcess("rp-test")
    run_id = run.start("train_sft", {})
    run.log_artifact(tmp_path / "missing.json")
    with pytest.raises(RegistryError, match="MLflow log_artifact failed"):
        run.sync()
    with pytest.raises(RegistryError, match="MLflow log_artifact failed"):
        run.end()
    assert store.get_run(run_id).info.status == "FAILED"


def test_a_killed_stage_leaves_its_run_failed_and_never_imported_mlflow(store, tmp_path, mlflow_store):
    stage = textwrap.dedent(
        """
        import json, os, sys
        from governance.run_process import RunProcess
        run = RunProcess("rp-test")
        run_id = run.start("train_sft", {})
        run.log(metrics={"loss": 1.0}, step=1)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("mlflow", "sqlalchemy", "alembic"))
        print(json.dumps({"run_id": run_id, "loaded": loaded}), flush=True)
        os._exit(9)  # no end, no clean-up: as a stage killed mid-run
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", stage],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**ENV, "MLFLOW_TRACKING_URI": mlflow_store},
    )
    assert done.returncode == 9, done.stderr
    reported = json.loads(done.stdout)
    assert reported["loaded"] == []  # MLflow lives in the run process only
    deadline = time.time() + 120
    while store.get_run(reported["run_id"]).info.status == "RUNNING" and time.time() < deadline:
        time.sleep(0.2)
    logged = store.get_run(reported["run_id"])
    assert logged.info.status == "FAILED"
    assert logged.data.metrics["loss"] == 1.0  # what was sent before the crash is kept


def test_a_refused_store_fails_before_any_run_and_the_process_closes(mlflow_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    registry.ensure_experiment("rp-test")  # the project's store: mlflow.db here
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlfow.db'}")
    run = rp.start_run_process("rp-test")
    with pytest.raises(ConfigError, match="mlfow.db"):
        run.start("train_sft", {})
    rp.close_run_processes()  # a stage's error boundary: the process exits on its own, with no run
    assert run._process.wait(timeout=120) == 0
    assert not (tmp_path / "mlfow.db").exists()


def test_only_the_main_process_starts_one(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert rp.start_run_process("rp-test") is None
