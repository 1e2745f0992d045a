"""A stage's MLflow run, written from the stage's process on a real (SQLite) store; a failed write fails loudly."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from governance import registry
from governance.errors import ConfigError, RegistryError
from governance.mlflow_run import MlflowRun


@pytest.fixture
def store(mlflow_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return MlflowClient(tracking_uri=mlflow_store, registry_uri=mlflow_store)


def test_a_run_holds_params_tags_metrics_and_artifacts(store, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"w")
    (tmp_path / "decision.json").write_text('{"passed": true}')
    run = MlflowRun("run-test")
    run_id = run.start("train_sft", {"method": "sft"})
    run.log(params={f"pipeline.trl.option_{i:03d}": i for i in range(150)}, tags={"lineage.gates": "g=passed"})
    for step in (5, 10):
        run.log(metrics={"loss": 1.0 / step, "learning_rate": 0.1}, step=step)
    run.log(params={"too_long": "x" * 6001})  # dropped with a warning, as transformers' MLflowCallback does
    run.log_dict({"stage": "train_sft"}, "lineage.json")
    run.log_artifact(tmp_path / "decision.json", artifact_path="gates/validate_sft")
    run.log_artifacts(tmp_path / "model", artifact_path="model")
    run.log(tags={"lineage.model_sha256": "abc"})
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


def test_metrics_and_files_reach_another_run(store, tmp_path):
    """What an evaluate stage does: its own run, and the training run's ``heldout.*`` metrics and files."""
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "evaluation" / "metrics.json").write_text('{"loss": 0.5}')
    training = MlflowRun("run-test")
    training_id = training.start("train_sft", {"lineage.model_sha256": "abc"})
    training.end()
    run = MlflowRun("run-test")
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


def test_a_failed_write_raises_at_once_and_the_run_can_end_failed(store, tmp_path):
    run = MlflowRun("run-test")
    run_id = run.start("train_sft", {})
    with pytest.raises(RegistryError, match=r"^MLflow log_artifact failed: "):
        run.log_artifact(tmp_path / "missing.json")
    run.end("FAILED")
    run.end()  # ended once: a second end changes nothing
    assert store.get_run(run_id).info.status == "FAILED"


def test_a_refused_store_fails_before_any_run_and_creates_nothing(mlflow_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    registry.ensure_experiment("run-test")  # the project's store: mlflow.db here
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlfow.db'}")
    run = MlflowRun("run-test")
    with pytest.raises(ConfigError, match="mlfow.db"):
        run.start("train_sft", {})
    run.end()  # nothing started: nothing to end
    assert run.run_id is None
    assert not (tmp_path / "mlfow.db").exists()
