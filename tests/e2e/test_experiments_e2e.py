"""`dvc exp run -S` as a platform engineer runs it, on a copy of the shared full repro.

The README's own example (``train_sft.trl.learning_rate=1e-3``) must run: DVC rewrites
params.yaml on ``-S``, and values YAML 1.1 would retype (``save_strategy: "no"``) must
reach TRL unchanged. A failed experiment must leave the committed model in place.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from e2e_support import run

from governance.policy import load_yaml


@pytest.fixture
def workdir(repro_once, tmp_path):
    source, _, _ = repro_once
    copy = tmp_path / "repo"
    shutil.copytree(source, copy, symlinks=True)
    return copy


def _weights_sha256(workdir):
    return hashlib.sha256((workdir / "artifacts/train_sft/model.safetensors").read_bytes()).hexdigest()


def test_readme_experiment_runs_and_shows_its_params(workdir):
    # max_steps only keeps the test short; the learning rate is the README's example
    result = run(
        ["dvc", "exp", "run", "train_sft", "-S", "train_sft.trl.learning_rate=1e-3", "-S", "train_sft.trl.max_steps=4"],
        workdir,
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"

    # DVC rewrote params.yaml: the stages still read the string "no" and the float 1e-3
    section = load_yaml(workdir / "params.yaml")["train_sft"]["trl"]
    assert (section["save_strategy"], section["eval_strategy"], section["learning_rate"]) == ("no", "no", 0.001)
    manifest = json.loads((workdir / "artifacts/train_sft/manifest.json").read_text())
    assert manifest["global_steps"] == 4

    shown = run(["dvc", "exp", "show", "--json"], workdir)
    assert shown.returncode == 0, shown.stderr
    assert '"learning_rate": 0.001' in shown.stdout

    from mlflow import MlflowClient

    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("govllm")
    runs = client.search_runs(
        [experiment.experiment_id], filter_string="tags.stage = 'train_sft'", order_by=["attributes.start_time DESC"]
    )
    assert runs[0].info.status == "FINISHED"
    assert float(runs[0].data.params["learning_rate"]) == 0.001


def test_failed_experiment_keeps_the_committed_model(workdir):
    before = _weights_sha256(workdir)
    result = run(["dvc", "exp", "run", "train_sft", "-S", "train_sft.trl.lr_scheduler_type=bogus"], workdir)
    assert result.returncode != 0
    assert "lr_scheduler_type" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert _weights_sha256(workdir) == before
    assert not (workdir / "artifacts/train_sft.partial").exists()
