"""A copied project folder reads its own artifacts, not the original's (MLflow records absolute paths)."""

from __future__ import annotations

import shutil
from pathlib import Path

from governance import registry


def test_a_copied_project_reads_the_copy_s_artifacts(tmp_path, monkeypatch):
    original, copy = tmp_path / "original", tmp_path / "copy"
    original.mkdir()
    monkeypatch.chdir(original)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{original / 'audit.db'}")
    with registry.stage_run("govllm", "train_sft") as run:
        import mlflow

        mlflow.log_text("original weights", "model/weights.txt")
    shutil.copytree(original, copy)
    # The original changes after the copy; the copy must not see it.
    recorded = Path(registry.client().get_run(run.info.run_id).info.artifact_uri.removeprefix("file://"))
    (recorded / "model" / "weights.txt").write_text("changed in the original")

    # As a new process in the copy sees it (mlflow.set_tracking_uri exported the resolved original).
    monkeypatch.chdir(copy)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    path = registry.client().download_artifacts(run.info.run_id, "model/weights.txt", str(tmp_path / "out"))
    assert Path(path).read_text() == "original weights"
    assert registry.rebase_artifact_uri(recorded.as_uri()) == (copy / recorded.relative_to(original)).as_uri()
    # Servers and custom locations are left alone.
    assert registry.rebase_artifact_uri("s3://bucket/mlartifacts/1", "sqlite:///x.db") == "s3://bucket/mlartifacts/1"
    assert registry.rebase_artifact_uri("file:///data/runs/1", "sqlite:///x.db") == "file:///data/runs/1"
