"""The shared full `dvc repro` of the e2e tests."""

from __future__ import annotations

import time

import pytest
from e2e_support import fresh_copy, run


@pytest.fixture(scope="session")
def repro_once(tmp_path_factory):
    """One full `dvc repro` of the default pipeline in a fresh copy, shared by e2e tests."""
    workdir = fresh_copy(tmp_path_factory.mktemp("e2e") / "repo")
    started = time.perf_counter()
    result = run(["dvc", "repro"], workdir)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, f"dvc repro failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    print(f"\nfull dvc repro: {seconds:.1f}s")  # noqa: T201 - timing shown with -s
    return workdir, result, seconds
