"""What every governed action reads and writes of a basic-auth server's registry, sent straight to its REST API,
is what MlflowClient reads and writes (``governance/registry_view.py``, ``governance/registry_writes.py``), without
importing MLflow.

Against the session's real ``mlflow server --app-name basic-auth`` on PostgreSQL with served artifacts:

* the same tag, alias and model-tag writes through :mod:`governance.registry_writes` and through
  ``MlflowClient`` (:mod:`governance.registry`) read back identically through MLflow, and each refusal (no
  permission, MANAGE to remove an alias, a missing version or model, a key MLflow refuses) is the same line;
* a run (info, params, tags, latest metrics, a NaN among them), a metric's history and a run's served
  artifacts (a file, a nested file, a folder, an absent path) read as MlflowClient reads them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from governance import registry, registry_view, registry_writes
from governance.errors import PermissionDenied, RegistryError
from governance.report.run_artifacts import RunArtifacts

pytestmark = [pytest.mark.server, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(mlflow_server):
    """The session's server with an editor, a reader, and two registered models of two versions each."""
    for user, edit in (("rest-editor", True), ("rest-reader", False)):
        if user not in mlflow_server.passwords:
            mlflow_server.create_user(user, edit_models=edit)
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    _act_as(patch, mlflow_server, "admin")
    client = registry.client()
    experiment = registry.ensure_experiment("rest-writes")
    for name in ("rest-fast", "rest-client"):
        client.create_registered_model(name)
        for _ in range(2):
            run = client.create_run(experiment)
            client.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    yield mlflow_server
    patch.undo()


def _act_as(patch: pytest.MonkeyPatch, server, user: str) -> None:
    patch.setenv("MLFLOW_TRACKING_USERNAME", user)
    patch.setenv("MLFLOW_TRACKING_PASSWORD", server.admin[1] if user == "admin" else server.passwords[user])


def _state_through_mlflow(client, name: str) -> tuple:
    """What the MLflow UI shows of ``name``: every version's tags, the aliases, the model's tags."""
    model = client.get_registered_model(name)
    versions = {
        int(mv.version): dict(client.get_model_version(name, mv.version).tags)
        for mv in client.search_model_versions(f"name = '{name}'")
    }
    return versions, dict(model.aliases), dict(model.tags)


def _error(call) -> tuple[type, str]:
    with pytest.raises((RegistryError, PermissionDenied)) as info:
        call()
    return info.type, str(info.value)


def test_rest_writes_read_back_through_mlflow_as_the_client_path_does(server, monkeypatch):
    _act_as(monkeypatch, server, "rest-editor")
    tags = {"governance.approval_status": "approved", "governance.approvers": "alice,bob"}
    registry_writes.set_version_tags("rest-fast", 1, tags)
    registry_writes.set_version_tags("rest-fast", 1, {"governance.approvers": "alice,bob,carol"})
    registry_writes.set_alias("rest-fast", "production", 1)
    registry_writes.set_alias("rest-fast", "canary", 2)
    registry_writes.set_alias("rest-fast", "production", 2)
    registry_writes.set_model_tag("rest-fast", "governance.trail_head", "#3 abc")
    assert registry_writes.mirror_version_tags("rest-fast", 2, tags) == 2
    assert registry_writes.mirror_version_tags("rest-fast", 2, tags) == 0
    client = registry.client()
    client.set_model_version_tag("rest-client", "1", "governance.approval_status", "approved")
    client.set_model_version_tag("rest-client", "1", "governance.approvers", "alice,bob,carol")
    client.set_registered_model_alias("rest-client", "canary", "2")
    client.set_registered_model_alias("rest-client", "production", "2")
    client.set_registered_model_tag("rest-client", "governance.trail_head", "#3 abc")
    for key, value in tags.items():
        client.set_model_version_tag("rest-client", "2", key, value)
    assert _state_through_mlflow(client, "rest-fast") == _state_through_mlflow(client, "rest-client")
    # removing an alias needs MANAGE (the admin holds it); an absent alias is a no-op on both paths
    _act_as(monkeypatch, server, "admin")
    registry_writes.delete_alias("rest-fast", "canary")
    registry_writes.delete_alias("rest-fast", "canary")
    registry.delete_alias("rest-client", "canary")
    registry.delete_alias("rest-client", "canary")
    assert _state_through_mlflow(client, "rest-fast") == _state_through_mlflow(client, "rest-client")
    assert client.get_registered_model("rest-fast").aliases == {"production": "2"}


def test_rest_write_refusals_are_the_client_paths_lines(server, monkeypatch):
    _act_as(monkeypatch, server, "rest-reader")  # READ only: every write refused
    assert _error(lambda: registry_writes.set_alias("rest-fast", "production", 1)) == _error(
        lambda: registry.set_alias("rest-fast", "production", 1)
    )
    kind, line = _error(lambda: registry_writes.set_version_tags("rest-fast", 1, {"governance.x": "y"}))
    assert (kind, line) == _error(lambda: registry.set_version_tags("rest-fast", 1, {"governance.x": "y"}))
    assert kind is PermissionDenied
    assert line == (
        f"MLflow at {server.url} refused rest-reader: tagging rest-fast v1 needs EDIT (or MANAGE) permission "
        "on the registered model"
    )
    _act_as(monkeypatch, server, "rest-editor")  # EDIT, not MANAGE: cannot remove an alias
    kind, line = _error(lambda: registry_writes.delete_alias("rest-fast", "production"))
    assert (kind, line) == _error(lambda: registry.delete_alias("rest-fast", "production"))
    assert line == (
        f"MLflow at {server.url} refused rest-editor: removing alias 'production' of rest-fast needs MANAGE "
        "permission on the registered model"
    )
    _act_as(monkeypatch, server, "admin")
    kind, line = _error(lambda: registry_writes.set_alias("rest-fast", "production", 7))
    assert (kind, line) == _error(lambda: registry.set_alias("rest-fast", "production", 7))
    assert kind is RegistryError and line.startswith(
        f"setting alias 'production' of rest-fast to v7 failed at {server.url}: RESOURCE_DOES_NOT_EXIST: "
    )
    kind, line = _error(lambda: registry_writes.set_model_tag("rest-nothing", "governance.trail_head", "x"))
    assert (kind, line) == _error(lambda: registry.set_model_tag("rest-nothing", "governance.trail_head", "x"))
    assert kind is RegistryError
    # a key MLflow would refuse: the server's own refusal, word for word
    kind, line = _error(lambda: registry_writes.set_version_tags("rest-fast", 1, {"bad|key": "x"}))
    assert (kind, line) == _error(lambda: registry.set_version_tags("rest-fast", 1, {"bad|key": "x"}))
    assert line.startswith(
        f'tagging rest-fast v1 failed at {server.url}: INVALID_PARAMETER_VALUE: Invalid value "bad|key" for '
    )


def test_rest_writes_never_import_mlflow(server):
    probe = (
        "import sys\nfrom governance import registry_writes\n"
        "registry_writes.set_version_tags('rest-fast', 1, {'governance.probe': 'x'})\n"
        "registry_writes.set_model_tag('rest-fast', 'governance.probe', 'x')\n"
        "print('mlflow' in sys.modules)\n"
    )
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": server.url,
        "MLFLOW_TRACKING_USERNAME": "rest-editor",
        "MLFLOW_TRACKING_PASSWORD": server.passwords["rest-editor"],
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    assert registry.get_version("rest-fast", 1).tags["governance.probe"] == "x"


def test_runs_metric_history_and_served_artifacts_read_as_mlflow_client_reads_them(server, monkeypatch, tmp_path):
    _act_as(monkeypatch, server, "admin")  # the pipeline's account, owner of the experiment
    client = registry.client()
    run = client.create_run(registry.ensure_experiment("rest-writes"), run_name="rest-reads", tags={"stage": "t"})
    run_id = run.info.run_id
    client.log_param(run_id, "lr", "0.001")
    for step, loss in enumerate((2.5, 1.25, float("nan"), 0.5)):
        client.log_metric(run_id, "loss", loss, step=step, timestamp=1_700_000_000_000 + step)
    client.log_metric(run_id, "accuracy", 0.75)
    client.log_text(run_id, '{"a": 1}', "lineage.json")
    client.log_text(run_id, "weights", "model/weights.txt")
    client.log_text(run_id, '{"b": 2}', "model/nested/config.json")
    client.set_terminated(run_id)

    _act_as(monkeypatch, server, "rest-editor")  # a reviewer reads (the server's default READ)
    ours, theirs = registry_view.read_run(run_id), client.get_run(run_id)
    assert registry_view.store_kind() == "rest" and isinstance(ours, registry_view.RunView)
    for field in ("run_id", "run_name", "status", "start_time", "end_time", "artifact_uri"):
        assert getattr(ours.info, field) == getattr(theirs.info, field), field
    assert ours.data.params == theirs.data.params and ours.data.tags == theirs.data.tags
    assert ours.data.metrics["accuracy"] == theirs.data.metrics["accuracy"] == 0.75
    assert ours.data.metrics["loss"] == theirs.data.metrics["loss"] == 0.5
    history = [(p.step, p.value, p.timestamp) for p in registry_view.metric_history(run_id, "loss")]
    expected = [(m.step, m.value, m.timestamp) for m in client.get_metric_history(run_id, "loss")]
    assert len(history) == 4 and str(history) == str(expected)  # str: NaN equals itself
    with pytest.raises(RegistryError) as info:
        registry_view.read_run("0" * 32)  # basic-auth cannot tell the run's experiment: refused, not absent
    assert str(info.value) == f"reading run {'0' * 32} failed at {server.url}: 403 Permission denied"
    _act_as(monkeypatch, server, "admin")
    with pytest.raises(RegistryError) as info:
        registry_view.read_run("0" * 32)
    assert str(info.value) == f"reading run {'0' * 32} failed at {server.url}: Run with id={'0' * 32} not found"
    _act_as(monkeypatch, server, "rest-editor")

    # Served artifacts: the same bytes as MLflow's download, at the artifact's own relative path
    served = RunArtifacts(run_id, ours.info.artifact_uri, tmp_path / "ours")
    assert served.served_root is not None and served.served_root.endswith(f"{run_id}/artifacts")
    mlflow_copy = tmp_path / "mlflow"
    for path in ("lineage.json", "model/nested/config.json", "model"):
        got = served.fetch(path)
        assert got == tmp_path / "ours" / path
        want = Path(client.download_artifacts(run_id, path, str(mlflow_copy / path.replace("/", "_"))))
        if want.is_dir():
            assert sorted(str(p.relative_to(got)) for p in got.rglob("*")) == sorted(
                str(p.relative_to(want)) for p in want.rglob("*")
            )
        else:
            assert got.read_bytes() == want.read_bytes()
    assert served.json("model/nested/config.json") == {"b": 2} and served.children("model") == ["nested", "weights.txt"]
    assert served.fetch("evaluation/missing.json") is None and served.json("evaluation/missing.json") is None
    # a path out of the run's artifacts (a folder named in an editable lineage.json) is never fetched nor written
    assert served.fetch("../../escape/lineage.json") is None and not (tmp_path.parent / "escape").exists()
    # a user the server refuses reads nothing (MLflow's download raises; the report records the gap)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    assert RunArtifacts(run_id, ours.info.artifact_uri, tmp_path / "refused").fetch("lineage.json") is None
