"""Shared test set-up: offline, and every test gets its own MLflow store and audit trail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Stages a test starts run in fresh interpreters (a stage server per test environment would idle on);
# tests/pipelines/test_stage_server.py and the e2e pipeline runs (their own environment) use servers.
os.environ.setdefault("GOVERN_STAGE_SERVER", "off")


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A private SQLite MLflow store (and audit trail beside it) for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    return uri
