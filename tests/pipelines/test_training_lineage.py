"""A training run's lineage in MLflow: every param and tag lands, in one batch, on a real (SQLite) store."""

from __future__ import annotations

import json

import mlflow

from governance.registry import stage_run
from pipelines._training import log_lineage_to_run


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
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with stage_run("lineage-test", "train_sft") as run:
        log_lineage_to_run(_lineage(tmp_path))
    logged = mlflow.MlflowClient().get_run(run.info.run_id).data
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
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "gates/pii_scan_sft")}
    assert artifacts == {"gates/pii_scan_sft/decision.json"}
