"""``govern watch`` against a real ``mlflow server`` (PostgreSQL backend store, basic-auth) and a PostgreSQL trail.

A version is registered and recorded as the register stage does; ``govern watch`` runs as its own
process (the MLflow admin, who may manage webhooks) and registers its webhook. A release manager
then sets the ``production`` alias through the REST API exactly as the UI's "Add alias" does: the
drift is in the trail within seconds, and MLflow keeps the alias (``registry_watch.on_drift:
record``). A delivery signed with the wrong secret is refused and records nothing, even once the
policy says revert. A forged approval tag set through the UI is recorded and, under ``revert``,
undone with the alias by reconcile. The watcher runs with ``--no-sweep``: the session's server
holds other modules' models, recorded in another trail (``--once`` sweeps in
tests/governance/test_offline.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from governance import approvals, registry, trail, watch
from governance.approvals import TAG_APPROVAL_STATUS
from tests.server.conftest import free_port, fresh_database

pytestmark = [pytest.mark.server, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SECRET = "watch-test-" + uuid.uuid4().hex
#: How long a change may take to reach the trail: 1-3 s on an idle machine; the slack is for a loaded test runner.
WITHIN_S = 20


@pytest.fixture(scope="module")
def watched(mlflow_server, tmp_path_factory, trail_signing_env):
    """A release manager on the server, a policy naming them, a fresh trail, and the environment of every process."""
    policies = tmp_path_factory.mktemp("watch-policies")
    policy = yaml.safe_load((REPO / "policies" / "approvals.yaml").read_text())
    policy["roles"].update(release_manager=["releaser"], reviewer=["rev1", "rev2"])
    policy["authentication"].update(server=mlflow_server.url, tls_sha256_fingerprint=None)
    policy["registry_watch"]["on_drift"] = "record"
    (policies / "approvals.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    shutil.copy(REPO / "policies" / "waivers.yaml", policies / "waivers.yaml")
    if "releaser" not in mlflow_server.passwords:
        mlflow_server.create_user("releaser", edit_models=True)
    patch = pytest.MonkeyPatch()
    with fresh_database("govern_watch_audit") as audit_url:
        env = {
            "MLFLOW_TRACKING_URI": mlflow_server.url,
            "MLFLOW_TRACKING_USERNAME": "admin",
            "MLFLOW_TRACKING_PASSWORD": mlflow_server.admin[1],
            "GOVERN_AUDIT_URL": audit_url,
            **trail_signing_env(tmp_path_factory.mktemp("watch-trail"), policies),
        }
        for key, value in env.items():
            patch.setenv(key, value)
        patch.delenv("GOVERN_USER", raising=False)
        registry.ensure_experiment("watch-tests")
        yield mlflow_server, env, policies
        patch.undo()


def register(name: str) -> str:
    """A version registered as the admin (the pipeline's account) and recorded in the trail."""
    client = registry.client()
    run = client.create_run(client.get_experiment_by_name("watch-tests").experiment_id)
    client.log_text(run.info.run_id, "tiny weights", "model/weights.txt")
    client.set_terminated(run.info.run_id)
    client.create_registered_model(name)
    version = client.create_model_version(
        name,
        source=f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags={
            "lineage.trained_by": "trainer",
            "lineage.registered_by": "admin",
            "lineage.risk_tier": "medium",
            "lineage.gate_decisions": "passed",
        },
    ).version
    approvals.record_registration(
        name, version, evidence={"model_sha256": "ab" * 32}, gate_status="passed", eval_status="passed"
    )
    return str(version)


def change_policy(server, old: Path, *, approvers: tuple[str, ...]) -> None:
    """The policy in force replaces ``old``, approved (``govern policy-change``) by each of ``approvers``, each
    authenticated by the server as the policy's rule wants."""
    for user in approvers:
        if user not in server.passwords:
            server.create_user(user, edit_models=False)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MLFLOW_TRACKING_USERNAME", user)
            mp.setenv("MLFLOW_TRACKING_PASSWORD", server.passwords[user])
            approvals.record_policy_change(old, reason="revert registry drift from now on")


def as_the_ui(server, user: str, path: str, body: dict) -> None:
    """What the MLflow UI sends: the REST endpoint, the user's own basic-auth credentials."""
    response = requests.post(f"{server.url}{path}", json=body, auth=(user, server.passwords[user]), timeout=30)
    assert response.status_code == 200, response.text


def wait_for(kind: str, name: str, count: int) -> list[trail.Event]:
    """The ``kind`` events of ``name`` once there are ``count`` of them, or what there is after :data:`WITHIN_S`."""
    deadline = time.monotonic() + WITHIN_S
    while len(found := trail.events(model=name, event_types=[kind])) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def start_watch(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", "from governance.cli import main; raise SystemExit(main())", "watch",
         "--listen", f"127.0.0.1:{port}", "--no-sweep"],
        env={**os.environ, **env, "GOVERN_WATCH_SECRET": SECRET},
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while "govern watch: listening" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"govern watch did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)
    return process


def forged_delivery(port: int, name: str) -> requests.Response:
    """A well-formed delivery naming ``name``, signed with a secret that is not the webhook's."""
    body = json.dumps(
        {"entity": "model_version_alias", "action": "created", "data": {"name": name, "alias": "x", "version": "1"}}
    ).encode()
    delivery, stamp = str(uuid.uuid4()), str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": watch.sign("not-the-secret", delivery, stamp, body),
    }
    return requests.post(f"http://127.0.0.1:{port}/", data=body, headers=headers, timeout=10)


def test_an_alias_set_in_the_ui_is_recorded_as_drift_and_reverted_under_policy(watched, tmp_path):
    server, env, policies = watched
    name = f"watch-model-{uuid.uuid4().hex[:6]}"
    version = register(name)
    port = free_port()
    process = start_watch(env, port, tmp_path / "watch.log")
    try:
        # The UI's "Add alias": production on a version nobody approved
        as_the_ui(server, "releaser", "/api/2.0/mlflow/registered-models/alias",
                  {"name": name, "alias": "production", "version": version})  # fmt: skip
        (drift,) = wait_for("registry_drift", name, 1)
        assert drift.details["drift"] == [
            {"model": name, "version": version, "item": "alias production",
             "registry": f"v{version}", "trail": "no version"}
        ]  # fmt: skip
        assert drift.details["announced"]["event"] == "model_version_alias.created"
        assert (drift.actor, drift.identity_method) == ("admin", "mlflow-basic-auth")
        assert registry.version_by_alias(name, "production") is not None  # on_drift: record leaves MLflow as it is
        assert not trail.events(model=name, event_types=["registry_reconciled"])

        # Revert from now on (the watcher reads the policy at each check), through a recorded, approved policy
        # change: a revert writes MLflow's view, which only the policy the project is held to may decide (an
        # edited file alone reverts nothing); a forged delivery must not trigger it
        old = tmp_path / "old_approvals.yaml"
        old.write_text((policies / "approvals.yaml").read_text())
        policy = yaml.safe_load(old.read_text())
        policy["registry_watch"]["on_drift"] = "revert"
        (policies / "approvals.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
        change_policy(server, old, approvers=("releaser", "rev1"))
        head = trail.head().seq
        refused = forged_delivery(port, name)
        assert refused.status_code == 401, refused.text
        time.sleep(1)
        assert trail.head().seq == head
        assert registry.version_by_alias(name, "production") is not None

        # A forged approval through the UI's tag editor: recorded, then reverted with the alias
        as_the_ui(server, "releaser", "/api/2.0/mlflow/model-versions/set-tag",
                  {"name": name, "version": version, "key": TAG_APPROVAL_STATUS, "value": "approved"})  # fmt: skip
        (reconciled,) = wait_for("registry_reconciled", name, 1)
        second = trail.events(model=name, event_types=["registry_drift"])[-1]
        assert second.seq < reconciled.seq and second.details["on_drift"] == "revert"
        assert {d["item"] for d in reconciled.details["repaired"]} == {"alias production", f"tag {TAG_APPROVAL_STATUS}"}
        assert registry.version_by_alias(name, "production") is None
        assert registry.get_version(name, version).tags[TAG_APPROVAL_STATUS] != "approved"
        assert approvals.find_drift(name) == []
    finally:
        process.terminate()
        process.wait(timeout=10)
        client = registry.client()  # the session's server outlives this module: no webhook left calling a dead port
        for hook in client.list_webhooks():
            if hook.name == watch.DEFAULT_WEBHOOK_NAME:
                client.delete_webhook(hook.webhook_id)
    log = (tmp_path / "watch.log").read_text()
    assert process.returncode == 0, log[-2000:]
    assert "delivery refused from 127.0.0.1: signature does not verify under GOVERN_WATCH_SECRET" in log


def test_the_signature_is_mlflows_and_a_stale_or_altered_delivery_is_refused():
    from mlflow.webhooks.delivery import _generate_hmac_signature

    body = json.dumps({"entity": "model_version_tag", "action": "set", "data": {"name": "m", "version": "1"}})
    stamp = str(int(time.time()))
    signature = _generate_hmac_signature(SECRET, "d-1", stamp, body)  # what MLflow sends
    assert watch.sign(SECRET, "d-1", stamp, body.encode()) == signature
    headers = {"x-mlflow-delivery-id": "d-1", "x-mlflow-timestamp": stamp, "x-mlflow-signature": signature}
    assert watch.verify_delivery(SECRET, headers, body.encode()).model == "m"
    with pytest.raises(watch.BadDelivery, match="does not verify"):
        watch.verify_delivery(SECRET, headers, body.replace('"m"', '"other"').encode())
    with pytest.raises(watch.BadDelivery, match="a replay, or a skewed clock"):
        watch.verify_delivery(SECRET, headers, body.encode(), now=time.time() + 600)
