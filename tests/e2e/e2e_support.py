"""Fresh copies of the repository for end-to-end runs of `dvc repro` (imported by e2e tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
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
    """Copy what a clone holds (git's tracked files, as in the working tree) into its own git repo.

    Nothing generated comes along: no outputs, MLflow store, audit trail or DVC
    cache/run-cache, so every stage really runs.
    """
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True
    ).stdout.decode().split("\0")
    for name in filter(None, tracked):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "fresh clone"],
    ):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    return dest


def run(cmd: list[str], cwd: Path, timeout: int = 1500) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=pipeline_env(cwd), capture_output=True, text=True, timeout=timeout)


def commit_reviewed(root: Path, *paths: str) -> str:
    """Commit ``paths`` (default ``policies``) in the checkout at ``root``, made if there is none: the reviewed version.

    A file that decides (anything under policies/) counts only as committed at the
    reviewed ref of the checkout a command runs in; a test's working folder becomes
    such a checkout here, as a fresh clone of a reviewed main is. Returns the commit id.
    """
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@localhost"]
    if not (Path(root) / ".git").exists():
        subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-f", *(paths or ("policies",))], check=True)
    subprocess.run([*git, "commit", "-qm", "reviewed", "--allow-empty"], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
