"""A mistyped SQLite tracking URI never silently becomes a new, empty store: govern refuses any missing store,
a stage refuses one beside an existing store."""

from __future__ import annotations

import sqlite3

import pytest

from governance import registry
from governance.cli import main
from governance.errors import ConfigError


def test_govern_refuses_a_sqlite_store_that_does_not_exist(mlflow_store, tmp_path, monkeypatch, capsys):
    typo = tmp_path / "mlfow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{typo}")
    assert main(["models"]) == 2
    assert capsys.readouterr().err == (
        f"govern: sqlite:///{typo}: no MLflow store at {typo}; check MLFLOW_TRACKING_URI for a typo "
        "(govern never creates a store: the first `dvc repro` does)\n"
    )
    assert not typo.exists()


def test_stages_still_create_the_store_on_their_first_run(mlflow_store, tmp_path):
    # Outside govern (a pipeline stage's first run) the embedded store is created.
    with registry.stage_run("govllm", "prepare_sft"):
        pass
    assert (tmp_path / "mlflow.db").is_file()
    registry.require_existing_store()


def test_a_stage_never_creates_a_second_store_beside_an_existing_one(mlflow_store, tmp_path, monkeypatch):
    # The project's store exists (a stage's first run made it) ...
    with registry.stage_run("govllm", "prepare_sft"):
        pass
    # ... and a stage is pointed at a mistyped name beside it: refused, nothing created
    typo = tmp_path / "mlfow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{typo}")
    with pytest.raises(ConfigError) as err:
        with registry.stage_run("govllm", "prepare_sft"):
            pass
    assert str(err.value) == (
        f"sqlite:///{typo}: no MLflow store at {typo}, but {tmp_path / 'mlflow.db'} beside it is one; a store is "
        "created only in a folder that has none (a typo in MLFLOW_TRACKING_URI?): point it at "
        f"{tmp_path / 'mlflow.db'}, or give a second store its own folder"
    )
    assert not typo.exists()
    # A folder whose only database is not an MLflow store (the audit trail) still gets its store
    fresh = tmp_path / "second"
    fresh.mkdir()
    sqlite3.connect(fresh / "audit.db").close()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{fresh / 'mlflow.db'}")
    with registry.stage_run("govllm", "prepare_sft"):
        pass
    assert (fresh / "mlflow.db").is_file()
