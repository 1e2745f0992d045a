"""A training run in MLflow, written from the stage's process: lineage params and tags, TRL's params and
metrics, on a real (SQLite) store."""

from __future__ import annotations

import json

import mlflow
import pytest

from governance.mlflow_run import MlflowRun
from pipelines._training import log_lineage_to_run, run_callbacks


def _lineage(tmp_path) -> dict:
    decision = tmp_path / "decision.json"
    decision.write_text(json.dumps({"passed": True}))
    return {
        # over MLflow's 100 params per request: the batch is split, nothing is dropped
        "params": {"trl": {f"option_{i:03d}": i for i in range(150)}, "base_model": "artifacts/base_model"},
        "params_sha256": "p" * 64,
        "git_commit": "c" * 40,
        "git_dirty": False,
        "trained_by": "pipeline-bot",
        "lock_sha256": "l" * 64,
        "parent": {"model_sha256": "m" * 64},
        "gates": [{"stage": "pii_scan_sft", "passed": True, "decision": str(decision)}],
        "distributed": {"world_size": 1},
        "datasets": {"artifacts/pii_scan_sft/data/train.jsonl": {"md5": "d" * 32}},
        "policies": {"policies/pii.yaml": {"version": "2026.11-1"}},
        "environment": {"python": "3.11.7"},
    }


def test_lineage_params_and_tags_are_all_logged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    run = MlflowRun("lineage-test")
    run.start("train_sft", {})
    log_lineage_to_run(run, _lineage(tmp_path))
    run.end()
    client = mlflow.MlflowClient(tracking_uri=uri)
    logged = client.get_run(run.run_id).data
    assert len([k for k in logged.params if k.startswith("pipeline.trl.option_")]) == 150
    assert logged.params["pipeline.trl.option_149"] == "149"
    assert logged.params["pipeline.base_model"] == "artifacts/base_model"
    assert logged.params["pipeline.params_sha256"] == "p" * 64
    assert logged.tags["lineage.gates"] == "pii_scan_sft=passed"
    assert logged.tags["lineage.data.train.jsonl.md5"] == "d" * 32
    assert logged.tags["lineage.policy.pii"] == "2026.11-1"
    assert logged.tags["lineage.distributed.world_size"] == "1"
    assert logged.tags["env.python"] == "3.11.7"
    assert logged.tags["stage"] == "train_sft"
    artifacts = {a.path for a in client.list_artifacts(run.run_id, "gates/pii_scan_sft")}
    assert artifacts == {"gates/pii_scan_sft/decision.json"}
    assert {a.path for a in client.list_artifacts(run.run_id)} == {"gates", "lineage.json"}


def test_report_to_mlflow_reaches_the_run_as_transformers_callback_would_log_it(tmp_path, monkeypatch):
    """TRL's params and metrics reach the stage's run; MLflowCallback (which picks its own run) is not used."""
    import torch
    from transformers import TrainerControl, TrainerState, TrainingArguments

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    config = TrainingArguments(output_dir=str(tmp_path / "out"), report_to=["mlflow"], learning_rate=3e-3)
    run = MlflowRun("lineage-test")
    run.start("train_sft", {})
    reporter, meter = run_callbacks(config, run)
    assert type(meter).__name__ == "EnergyMeterCallback"  # last: it brackets training, not the reporter's set-up
    assert config.report_to == []  # transformers builds no MLflowCallback
    state = TrainerState()
    state.global_step = 5
    reporter.on_train_begin(config, state, TrainerControl())
    reporter.on_log(config, state, TrainerControl(), logs={"loss": torch.tensor(2.5), "grad_norm": 1.0, "mode": "x"})
    run.end()

    client = mlflow.MlflowClient(tracking_uri=uri)
    logged = client.get_run(run.run_id).data
    assert logged.params["learning_rate"] == "0.003"
    assert logged.params["report_to"] == "['mlflow']"  # as the params said, not as rewritten for the trainer
    assert logged.metrics == {"loss": 2.5, "grad_norm": 1.0}
    assert [m.step for m in client.get_metric_history(run.run_id, "loss")] == [5]


def test_other_reporters_are_left_as_the_params_say(tmp_path):
    from transformers import TrainingArguments

    none = TrainingArguments(output_dir=str(tmp_path / "out"), report_to="none")
    before = list(none.report_to)
    meter_only = ["EnergyMeterCallback"]  # every process meters its GPU's energy, whatever reports
    assert [type(c).__name__ for c in run_callbacks(none, None)] == meter_only and none.report_to == before
    both = TrainingArguments(output_dir=str(tmp_path / "out"), report_to=["mlflow", "tensorboard"])
    # not the main process: nothing reports, nothing imports MLflow
    assert [type(c).__name__ for c in run_callbacks(both, None)] == meter_only
    assert both.report_to == ["tensorboard"]


def test_an_evaluation_whose_training_run_is_gone_fails_and_its_own_run_ends_failed(tmp_path, monkeypatch):
    from governance.errors import RegistryError
    from pipelines._training import log_evaluation

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("project: lineage-test\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "evaluation" / "metrics.json").write_text('{"loss": 0.5}')
    with pytest.raises(RegistryError, match=r"^MLflow log_to_run failed: .*0{32}"):
        gone = {"run_id": "0" * 32}
        log_evaluation(stage="evaluate_sft", method="sft", out_dir="evaluation", metrics={"loss": 0.5}, trained=gone)
    client = mlflow.MlflowClient(tracking_uri=uri)
    (evaluation,) = client.search_runs([client.get_experiment_by_name("lineage-test").experiment_id])
    assert (evaluation.data.tags["stage"], evaluation.info.status) == ("evaluate_sft", "FAILED")
    assert evaluation.data.metrics == {"loss": 0.5}
