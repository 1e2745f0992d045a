"""The multi-process training path, lean, in the default run: train_sft on two gloo processes through dvc repro.

The full two-process chain and the kill-one-rank check are opt-in
(``pytest -m scale tests/e2e/test_scale_out.py``); this test re-runs only
``train_sft`` for two steps in a copy of the shared full repro, so every
default test run still launches two ranks through ``accelerate launch``.
"""

from __future__ import annotations

import json
import shutil

import yaml
from e2e_support import run


def test_train_sft_on_two_processes_writes_one_run_and_one_model(repro_once, tmp_path):
    source, _, _ = repro_once
    workdir = tmp_path / "repo"
    shutil.copytree(source, workdir, symlinks=True)
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    section = params["train_sft"]
    section["launch"] = {"num_processes": 2, "config_file": "configs/accelerate/multi_cpu.yaml"}
    section["trl"]["max_steps"] = 2
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    result = run(["dvc", "repro", "--single-item", "train_sft"], workdir)

    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    manifests = sorted((workdir / "artifacts").glob("train_sft*/manifest.json"))
    assert [m.parent.name for m in manifests] == ["train_sft"]  # one model, no staging folder left
    distributed = json.loads(manifests[0].read_text())["distributed"]
    assert (distributed["world_size"], distributed["backend"]) == (2, "gloo")
    from mlflow import MlflowClient

    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name(params["project"])
    runs = client.search_runs(
        [experiment.experiment_id], filter_string="tags.stage = 'train_sft' and tags.`distributed.world_size` = '2'"
    )
    assert [(r.info.status, r.data.tags["distributed.type"]) for r in runs] == [("FINISHED", "MULTI_CPU")]
