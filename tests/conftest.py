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


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    """A private SQLite MLflow store (and audit trail beside it) for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    return uri
