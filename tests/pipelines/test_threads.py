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
