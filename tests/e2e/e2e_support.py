"""Fresh copies of the repository for end-to-end runs of `dvc repro` (imported by e2e tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# What a fresh clone holds: tracked files, minus generated stores and outputs.
IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "artifacts",
    "mlflow.db",
    "mlartifacts",
    "mlruns",
    "audit.db",
    "reports",
    "prepared",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "*.egg-info",
    ".dvc/cache",
    ".dvc/tmp",
    ".whl",
    ".gl",
)


def pipeline_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GOVERN_"))}
    env.update(
        PATH=f"{BIN}:{env.get('PATH', '')}",
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="",
        DVC_NO_ANALYTICS="1",
        GOVERN_USER="pipeline-bot",
    )
    return env


def fresh_copy(dest: Path) -> Path:
    """Copy the checkout like a clone would give it, as its own git repo."""
    shutil.copytree(REPO, dest, ignore=IGNORE)
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "fresh clone"],
    ):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    return dest


def run(cmd: list[str], cwd: Path, timeout: int = 1500) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=pipeline_env(cwd), capture_output=True, text=True, timeout=timeout)
