"""Shared test set-up: offline, and every test gets its own MLflow store and audit trail."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "tests" / "e2e") not in sys.path:  # the fresh-copy helpers, for tests/e2e/ and tests/docs/
    sys.path.insert(0, str(REPO / "tests" / "e2e"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Stages a test starts run in fresh interpreters (a stage server per test environment would idle on);
# tests/pipelines/test_stage_server.py and the e2e pipeline runs (their own environment) use servers.
os.environ.setdefault("GOVERN_STAGE_SERVER", "off")

# A pytest-xdist worker runs as `python -c`: its __main__ has neither __spec__ nor __file__, which
# pyspark.sql.connect (imported by great-expectations) takes for a doctest run, and exits the worker with 0
_main = sys.modules["__main__"]
if "PYTEST_XDIST_WORKER" in os.environ and getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = "<pytest-xdist worker>"


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A private SQLite MLflow store (and audit trail beside it) for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    return uri


@pytest.fixture(scope="session")
def repro_once(tmp_path_factory):
    """One full `dvc repro` of the default pipeline in a fresh copy, shared by tests/e2e/ and tests/docs/.

    Right after the run a pristine copy is kept (:func:`repro_snapshot`), so the tutorials, which
    approve, promote and withdraw, start from the state the pipeline left, whatever the e2e tests did
    to the shared copy before them; one full run serves both folders.
    """
    import shutil
    import time

    from e2e_support import fresh_copy, run

    base = tmp_path_factory.mktemp("e2e")
    workdir = fresh_copy(base / "repo")
    started = time.perf_counter()
    result = run(["dvc", "repro"], workdir)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, f"dvc repro failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    print(f"\nfull dvc repro: {seconds:.1f}s")  # noqa: T201 - timing shown with -s
    shutil.copytree(workdir, base / "pristine", symlinks=True)
    return workdir, result, seconds


@pytest.fixture(scope="session")
def repro_snapshot(repro_once) -> Path:
    """The project as the shared full `dvc repro` left it, before any test acted on it (one consumer)."""
    return repro_once[0].parent / "pristine"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``make test`` runs ``-n auto --dist loadgroup``), what shares costly set-up runs
    on one worker: the tests of one module (its module fixtures are built once), every test of the full
    ``dvc repro`` (:func:`repro_once`), and the team chain's tests (tests/server/, session fixtures).

    loadgroup sends together the tests whose node ids end in ``@<group>``. pytest-xdist 3.8.0 appends that
    suffix by setting ``item._nodeid``, which pytest 9.2 no longer reads (a node id is ``item._id``); so the
    suffix is set here, where xdist would have set it, and xdist's own hook then finds nothing to add.
    """
    if not getattr(config.option, "loadgroup", False):  # set by pytest-xdist for --dist loadgroup only
        return
    from _pytest.nodeid import coerce_node_id

    server = REPO / "tests" / "server"
    for item in items:
        if {"repro_once", "repro_snapshot"} & set(getattr(item, "fixturenames", ())):
            group = "full-dvc-repro"
        elif server in item.path.parents:
            group = "team-chain"
        else:
            group = item.path.relative_to(REPO).as_posix()
        if "@" not in item.nodeid:
            item._id = coerce_node_id(f"{item.nodeid}@{group}")
