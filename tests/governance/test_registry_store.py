"""A mistyped SQLite tracking URI is refused by govern instead of silently becoming a new, empty store."""

from __future__ import annotations

from governance import registry
from governance.cli import main


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
