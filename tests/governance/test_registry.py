"""Registry behaviour against a real MLflow store (embedded SQLite; the server tests use PostgreSQL)."""

import mlflow
import pytest

from governance import registry
from governance.errors import RegistryError


def _run_with_model(tmp_path):
    registry.ensure_experiment("t")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"w")
    with registry.stage_run("t", "train_sft") as run:
        mlflow.log_artifacts(str(tmp_path / "model"), "model")
    return run.info.run_id


def test_registration_is_pending_and_idempotent(mlflow_store, tmp_path):
    run_id = _run_with_model(tmp_path)
    tags = {"lineage.model_sha256": "abc", "metric.eval_loss": "1.5"}
    version, created = registry.register_version(
        "m-sft", run_id=run_id, artifact_path="model", lineage_key="k1", tags=tags
    )
    again, created_again = registry.register_version(
        "m-sft", run_id=run_id, artifact_path="model", lineage_key="k1", tags=tags
    )
    assert created and not created_again and str(again.version) == str(version.version) == "1"
    stored = registry.get_version("m-sft", 1)
    assert stored.tags[registry.TAG_APPROVAL_STATUS] == "pending"
    assert stored.source.endswith("/model")
    other, created_other = registry.register_version(
        "m-sft", run_id=run_id, artifact_path="model", lineage_key="k2", tags=tags
    )
    assert created_other and str(other.version) == "2"
    assert [str(v.version) for v in registry.list_versions("m-sft")] == ["2", "1"]


def test_parent_lookup_by_model_hash(mlflow_store, tmp_path):
    run_id = _run_with_model(tmp_path)
    registry.register_version(
        "m-sft", run_id=run_id, artifact_path="model", lineage_key="k", tags={"lineage.model_sha256": "abc"}
    )
    assert str(registry.find_version_by_model_hash("m-sft", "abc").version) == "1"
    assert registry.find_version_by_model_hash("m-sft", "nope") is None
    assert registry.find_version_by_model_hash("no-such-model", "abc") is None


def test_failed_stage_marks_run_failed(mlflow_store):
    with pytest.raises(RuntimeError), registry.stage_run("t", "train_sft") as run:
        raise RuntimeError("boom")
    assert registry.client().get_run(run.info.run_id).info.status == "FAILED"


def test_unreachable_server_names_the_uri(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(RegistryError, match=r"http://127\.0\.0\.1:9"):
        registry.list_versions()
