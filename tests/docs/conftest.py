"""The project after one full `dvc repro`, for the tutorial runner (tests/docs/test_tutorials.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

E2E = Path(__file__).resolve().parents[1] / "e2e"
if str(E2E) not in sys.path:  # the fresh-copy helpers of the e2e tests
    sys.path.insert(0, str(E2E))

from e2e_support import fresh_copy, run  # noqa: E402


@pytest.fixture(scope="session")
def repro_once(tmp_path_factory):
    """One full `dvc repro` of the default pipeline in a fresh copy (as tests/e2e/conftest.py's).

    A fixture of tests/e2e/ is not visible here; moving ``repro_once`` to tests/conftest.py would let
    the e2e tests and the tutorials share one run (this definition and the e2e one then go).
    """
    workdir = fresh_copy(tmp_path_factory.mktemp("docs") / "repo")
    started = time.perf_counter()
    result = run(["dvc", "repro"], workdir)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, f"dvc repro failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    print(f"\nfull dvc repro: {seconds:.1f}s")  # noqa: T201 - timing shown with -s
    return workdir, result, seconds
