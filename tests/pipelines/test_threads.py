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
