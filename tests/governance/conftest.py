"""Fixtures of the approvals tests (test_approvals*, whose helpers register versions in the module's store)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from governance import registry

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite MLflow store per module (creating one costs seconds); each test uses its own model name."""
    root = tmp_path_factory.mktemp("mlflow")
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    patch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    patch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    registry.ensure_experiment("approvals-tests")
    yield root
    patch.undo()


@pytest.fixture
def env(store, tmp_path, monkeypatch):
    """A fresh audit trail and a copy of the shipped policies, copied before any version is registered under them."""
    policies = tmp_path / "policies"
    policies.mkdir()
    for name in ("approvals.yaml", "waivers.yaml"):
        shutil.copy(REPO / "policies" / name, policies / name)
    monkeypatch.setenv("GOVERN_POLICY_DIR", str(policies))
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("GOVERN_USER", "nobody")
    # The project checkout is where a file's review is asked: the policies folder, once a test commits there
    monkeypatch.chdir(policies)
    return policies
