"""`govern <command>` imports only the module that registers the command; the map stays complete."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

from governance.cli import COMMAND_MODULES, COMMAND_OWNERS, _Parser

REPO = Path(__file__).resolve().parents[2]


def test_every_command_is_mapped_to_the_module_that_registers_it():
    registered = {}
    for name in COMMAND_MODULES:
        parser = _Parser(prog="govern")
        sub = parser.add_subparsers(dest="command", parser_class=_Parser)
        importlib.import_module(f"governance.cli.{name}").register(sub)
        registered.update(dict.fromkeys(sub.choices, name))
    assert COMMAND_OWNERS == registered


def test_a_command_imports_only_its_own_module():
    probe = (
        "import sys; from governance.cli import build_parser; build_parser('models'); "
        "print(sorted(m for m in sys.modules if m.startswith('governance.cli.')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['governance.cli.models']"


#: Runs ``govern`` with the given argv, then says whether MLflow was imported (the last stdout line).
_PROBE = (
    "import sys\n"
    "from governance.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('mlflow imported:', 'mlflow' in sys.modules)\n"
    "sys.exit(code)\n"
)


def _register_pending(name: str) -> str:
    from governance import approvals, registry

    client = registry.client()
    run = client.create_run(registry.ensure_experiment("cli-no-mlflow"))
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(
        name,
        source=f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags={"lineage.trained_by": "trainer", "lineage.registered_by": "ci-bot", "lineage.risk_tier": "medium"},
    ).version
    approvals.record_registration(
        name, version, actor="ci-bot", evidence={"model_sha256": "ab" * 32}, gate_status="passed", eval_status="passed"
    )
    return str(version)


def test_reading_and_governed_actions_never_import_mlflow_on_the_embedded_store(mlflow_store, tmp_path, monkeypatch):
    """models/show/history/approve/promote/canary/canary-end run without MLflow; MlflowClient sees their writes."""
    from governance import approvals, registry, trail

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOVERN_POLICY_DIR", str(REPO / "policies"))
    name = "govllm-nomlflow"
    first, second = _register_pending(name), _register_pending(name)

    def govern(user: str, *argv: str) -> str:
        env = {**__import__("os").environ, "GOVERN_USER": user, "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, *argv], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        *output, probe = done.stdout.splitlines()
        assert probe == "mlflow imported: False", argv
        return "\n".join(output)

    govern("alice", "approve", name, first, "--reason", "reviewed")
    assert "2 of 2 approvals, status approved" in govern("bob", "approve", name, first, "--reason", "reviewed")
    govern("alice", "approve", name, second, "--reason", "reviewed")
    govern("bob", "approve", name, second, "--reason", "reviewed")
    govern("dana", "promote", name, first)
    govern("dana", "canary", name, second)
    govern("dana", "canary-end", name)
    govern("dana", "canary", name, second)
    assert govern("nobody", "models", name).splitlines()[1].split()[:4] == [name, second, "approved", "canary"]
    assert govern("nobody", "show", name, first).startswith(f"{name} v{first}: approved (2 of 2 approvals")
    assert len(govern("nobody", "history", name).splitlines()) == 4
    # What the MLflow UI reads (MlflowClient) is the trail's state, as after the client path
    client = registry.client()
    assert str(client.get_model_version_by_alias(name, "production").version) == first
    assert str(client.get_model_version_by_alias(name, "canary").version) == second
    assert client.get_model_version(name, first).tags["governance.approval_status"] == "approved"
    assert client.get_model_version(name, first).tags["governance.approvers"] == "alice,bob"
    head = trail.head()
    assert client.get_registered_model(name).tags["governance.trail_head"].startswith(f"{head.seq} {head.hash} ")
    assert approvals.find_drift(name) == []
