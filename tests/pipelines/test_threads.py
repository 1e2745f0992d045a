"""Stages take their OpenMP threads from the machine; an explicit OMP_NUM_THREADS still wins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROBE = "import os, pipelines._common; print(os.environ['OMP_NUM_THREADS'], os.environ['OMP_WAIT_POLICY'])"


def _threads(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "LOCAL_WORLD_SIZE", "OMP_WAIT_POLICY")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env={**base, **env}, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_threads_come_from_the_cpus_this_process_may_use():
    cpus = len(os.sched_getaffinity(0))
    assert _threads() == f"{cpus} PASSIVE"
    # Under `accelerate launch` the node's processes share the CPUs.
    assert _threads(LOCAL_WORLD_SIZE="2") == f"{max(1, cpus // 2)} PASSIVE"


def test_an_explicit_setting_wins():
    assert _threads(OMP_NUM_THREADS="3", OMP_WAIT_POLICY="ACTIVE") == "3 ACTIVE"


#: What ``accelerate launch`` does: starts the stage with ``OMP_NUM_THREADS`` set to its own default, 1.
LAUNCHER = (
    "import os, subprocess, sys; subprocess.run([sys.executable, '-c', sys.argv[1]], check=True, "
    "env={**os.environ, 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '1'), 'ACCELERATE_DYNAMO_BACKEND': 'NO'})"
)


def _launched_threads(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "LOCAL_WORLD_SIZE", "OMP_WAIT_POLICY")}
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, PROBE], cwd=REPO, env={**base, **env}, capture_output=True, text=True,
        check=True,
    )
    return done.stdout.strip()


def test_the_launchers_default_of_one_thread_gives_way_to_the_machine():
    cpus = len(os.sched_getaffinity(0))
    assert _launched_threads() == f"{cpus} PASSIVE"


def test_under_the_launcher_an_explicit_setting_still_wins():
    assert _launched_threads(OMP_NUM_THREADS="1") == "1 PASSIVE"
    assert _launched_threads(OMP_NUM_THREADS="3") == "3 PASSIVE"


def test_an_experiment_in_dvcs_scratch_copy_uses_the_projects_registry_and_trail(tmp_path, monkeypatch):
    """`dvc exp run --temp` (and queued experiments) run in <project>/.dvc/tmp/exps/<tmp>: the relative
    sqlite:///mlflow.db would be a new registry and trail there, lost with the copy."""
    from pipelines._env import project_store, stage_environ

    scratch = tmp_path / "project" / ".dvc" / "tmp" / "exps" / "tmpk2j4"
    scratch.mkdir(parents=True)
    expected = f"sqlite:///{(tmp_path / 'project' / 'mlflow.db').resolve()}"
    assert project_store(scratch) == expected
    # `dvc exp run --temp` (DVC 3: .dvc/tmp/exps/standalone/<tmp>)
    assert project_store(tmp_path / "project" / ".dvc" / "tmp" / "exps" / "standalone" / "tmpq81z") == expected
    assert stage_environ({}, scratch)["MLFLOW_TRACKING_URI"] == expected
    # The trail follows the store (audit.db beside it)
    from governance.trail.location import audit_url

    monkeypatch.delenv("GOVERN_AUDIT_URL", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", expected)
    assert audit_url() == f"sqlite:///{(tmp_path / 'project' / 'audit.db').resolve()}"
    # A store the caller chose wins; the workspace itself and other folders keep the relative default
    assert stage_environ({"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}, scratch)["MLFLOW_TRACKING_URI"] == (
        "http://127.0.0.1:5000"
    )
    assert project_store(tmp_path / "project") is None
    assert project_store(tmp_path / "project" / ".dvc" / "tmp" / "exps") is None
    assert "MLFLOW_TRACKING_URI" not in stage_environ({}, tmp_path / "project")
