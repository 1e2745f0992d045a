"""The environment is installed by hash: every file pip may take for ``requirements.lock`` is pinned by its SHA-256.

A mirror, proxy or wheel cache that serves other bytes under a pinned name and version (a package whose code
decides a gate, say presidio's recognizers) is refused at install, as the model wheels of
``requirements-models.lock`` already were; the lock's own hash is in every version's lineage.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from governance.environment import environment_differences

REPO = Path(__file__).resolve().parents[1]
INSTALL = re.compile(r"pip install .*-r requirements\.lock")


def _requirements(text: str) -> list[str]:
    """Each requirement of a pip requirements file with its options (continuation lines joined)."""
    joined = text.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_every_requirement_of_the_lock_is_pinned_by_version_and_hash_and_installed_so():
    requirements = _requirements((REPO / "requirements.lock").read_text())
    assert len(requirements) > 200
    unpinned = [r.split()[0] for r in requirements if "==" not in r.split()[0] or "--hash=sha256:" not in r]
    assert unpinned == []
    assert [r.split()[0] for r in requirements if r.startswith("torch==")] == ["torch==2.13.0+cpu"]
    # `make` installs it in hash-checking mode (the one command that reads it, and the GPU install's copy)
    makefile = (REPO / "Makefile").read_text().splitlines()
    installs = [line for line in makefile if INSTALL.search(line)]
    assert installs and all("--require-hashes" in line for line in installs)
    gpu = [line for line in makefile if "requirements-less-torch.lock" in line]
    assert any("pip install" in line and "--require-hashes" in line for line in gpu)
    # pip, which checks every other hash, comes by hash too (the venv's bundled pip installs it), never unpinned
    assert [r.split()[0] for r in requirements if r.startswith("pip==")] == ["pip==26.3"]
    for target in (".venv/bin/.installed", ".venv/bin/.installed-gpu"):  # the CPU and GPU installs, as make runs them
        commands = subprocess.run(
            ["make", "-n", "-B", target], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
        ).stdout
        installs = [line for line in commands.splitlines() if " pip install " in line]
        assert "--require-hashes" in installs[0] and installs[0].endswith("-r .venv/pip.lock")
        assert not [line for line in installs if "--upgrade pip" in line]


def test_the_environment_this_suite_runs_in_is_the_lock():
    assert environment_differences(REPO / "requirements.lock") == []


def _wheel(folder: Path, body: str) -> Path:
    """A minimal pure-Python wheel of ``lockcheck`` 1.0 whose module is ``body``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lockcheck-1.0-py3-none-any.whl"
    files = {
        "lockcheck.py": body,
        "lockcheck-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: lockcheck\nVersion: 1.0\n",
        "lockcheck-1.0.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [f"{name},,\n" for name in files] + ["lockcheck-1.0.dist-info/RECORD,,\n"]
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr("lockcheck-1.0.dist-info/RECORD", "".join(record))
    return path


def test_attack_a_wheel_served_with_other_bytes_under_the_pinned_version_is_refused_at_install(tmp_path):
    reviewed = _wheel(tmp_path / "reviewed", "def allowed(record):\n    return False\n")
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"lockcheck==1.0 \\\n    --hash=sha256:{hashlib.sha256(reviewed.read_bytes()).hexdigest()}\n")

    def install(index: Path, target: Path) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-index"]
        command += ["--find-links", str(index), "--target", str(target), "--require-hashes", "-r", str(lock)]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    assert install(reviewed.parent, tmp_path / "ok").returncode == 0
    assert (tmp_path / "ok" / "lockcheck.py").read_text().endswith("return False\n")
    # The same name and version, one line changed: what a tampered mirror or cache would serve
    forged = _wheel(tmp_path / "mirror", "def allowed(record):\n    return True\n")
    refused = install(forged.parent, tmp_path / "forged")
    assert refused.returncode != 0
    assert "DO NOT MATCH THE HASHES" in refused.stderr
    assert hashlib.sha256(forged.read_bytes()).hexdigest() in refused.stderr
    assert not (tmp_path / "forged" / "lockcheck.py").exists()
