"""The one-pass registry reader returns what MlflowClient returns, without importing MLflow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from governance import registry
from governance.errors import RegistryError
from governance.registry_view import read_versions

REPO = Path(__file__).resolve().parents[2]


def _register(name: str, key: str) -> None:
    with registry.stage_run("govllm", "train_sft") as run:
        import mlflow

        mlflow.log_text("weights", "model/weights.txt")
    registry.register_version(name, run_id=run.info.run_id, artifact_path="model", lineage_key=key, tags={"m": key})


def test_read_versions_equals_mlflow_client(mlflow_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key in ("a", "b"):
        _register("govllm-sft", key)
    _register("govllm-dpo", "c")
    client = registry.client()
    client.set_registered_model_alias("govllm-sft", "production", "2")
    # (search_model_versions leaves aliases out; get_model_version has them.)
    expected = sorted(
        (mv.name, int(mv.version), mv.run_id, mv.source, dict(mv.tags), tuple(sorted(mv.aliases)))
        for mv in (client.get_model_version(found.name, found.version) for found in client.search_model_versions(""))
    )
    got = [(v.name, v.version, v.run_id, v.source, v.tags, v.aliases) for v in read_versions()]
    assert got == expected and len(got) == 3
    assert [v.version for v in read_versions(name="govllm-sft")] == [1, 2]
    assert read_versions(name="govllm-sft")[1].aliases == ("production",)
    # It never needs MLflow itself.
    probe = (
        "import sys; from governance.registry_view import read_versions; read_versions(); "
        "print('mlflow' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_missing_store_is_an_error_not_a_new_file(tmp_path):
    path = tmp_path / "mlfow.db"
    with pytest.raises(RegistryError) as err:
        read_versions(f"sqlite:///{path}")
    assert str(err.value) == (
        f"sqlite:///{path}: no MLflow store at {path}; check MLFLOW_TRACKING_URI for a typo "
        "(govern never creates a store: the first `dvc repro` does)"
    )
    assert not path.exists()
