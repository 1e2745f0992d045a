"""Approvals against a real ``mlflow server --app-name basic-auth`` (PostgreSQL backend) and a PostgreSQL trail.

Users are created through the server's REST API; each command runs as the
user the server authenticates (``MLFLOW_TRACKING_USERNAME``/``PASSWORD``).
Versions are registered with ``MlflowClient`` directly (a run, a tiny
artifact, the lineage tags), then recorded as the register stage does.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from governance import approvals, registry, trail
from governance.cli import main
from governance.errors import PolicyViolation, RegistryError
from governance.identity import verify_server_user

pytestmark = [pytest.mark.server, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
#: 50 concurrent approvals: 25 reviewers each approving 2 versions at once, all appending to one chain.
CROWD = [f"crowd{i:02d}" for i in range(25)]
CROWD_VERSIONS = 2
CONCURRENT = len(CROWD) * CROWD_VERSIONS
REVIEWERS = ["rev1", "rev2", "trainer"]
_names = itertools.count(1)


@pytest.fixture(scope="module")
def setup(mlflow_server, tmp_path_factory, trail_signing_env):
    """Users on the server, a policy naming them, and the environment every test starts from."""
    policies = tmp_path_factory.mktemp("policies")
    policy = yaml.safe_load((REPO / "policies" / "approvals.yaml").read_text())
    policy["roles"] = {
        "reviewer": [*REVIEWERS, "rev_ro", *CROWD],
        "release_manager": ["releaser", "releaser_ro"],
        "objective_owner": ["rev1"],
        "waiver_authority": ["releaser"],
    }
    # The one server whose basic-auth users count as authenticated (#31: any other is refused)
    policy["authentication"].update(server=mlflow_server.url, tls_sha256_fingerprint=None)
    (policies / "approvals.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    shutil.copy(REPO / "policies" / "waivers.yaml", policies / "waivers.yaml")
    editors = [*REVIEWERS, "releaser", *CROWD]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda u: mlflow_server.create_user(u, edit_models=True), editors))
        list(pool.map(lambda u: mlflow_server.create_user(u, edit_models=False), ["releaser_ro", "viewer", "rev_ro"]))
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "GOVERN_AUDIT_URL": mlflow_server.audit_url,
        **trail_signing_env(tmp_path_factory.mktemp("trail"), policies),
    }
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    patch.delenv("GOVERN_USER", raising=False)
    patch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    patch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow_server.admin[1])
    registry.ensure_experiment("server-tests")
    yield mlflow_server, env
    patch.undo()


def act_as(server, user: str) -> None:
    """Switch the MLflow credentials of this process (what a user's shell would hold)."""
    os.environ["MLFLOW_TRACKING_USERNAME"] = user
    os.environ["MLFLOW_TRACKING_PASSWORD"] = server.admin[1] if user == "admin" else server.passwords[user]


@pytest.fixture
def server(setup, monkeypatch):
    mlflow_server, _ = setup
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow_server.admin[1])
    return mlflow_server


def register(server, name: str, *, trained_by: str = "trainer") -> str:
    """Register a version as the admin (the pipeline's account) and record it in the trail."""
    act_as(server, "admin")
    client = registry.client()
    run = client.create_run(client.get_experiment_by_name("server-tests").experiment_id)
    client.log_text(run.info.run_id, "tiny weights", "model/weights.txt")
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = str(
        client.create_model_version(
            name,
            source=f"{run.info.artifact_uri}/model",
            run_id=run.info.run_id,
            tags={
                "lineage.trained_by": trained_by,
                "lineage.registered_by": "admin",
                "lineage.risk_tier": "medium",
                "lineage.gate_decisions": "passed",
            },
        ).version
    )
    approvals.record_registration(
        name, version, evidence={"model_sha256": "ab" * 32}, gate_status="passed", eval_status="passed"
    )
    return version


def approve_as(server, name: str, version: str, *users: str) -> None:
    for user in users:
        act_as(server, user)
        assert main(["approve", name, version, "--reason", f"reviewed by {user}"]) == 0


def new_model() -> str:
    return f"srv-model-{next(_names)}"


def events(name: str, kind: str) -> list[trail.Event]:
    return trail.events(model=name, event_types=[kind])


def holder(name: str, alias: str = "production") -> str | None:
    found = registry.version_by_alias(name, alias)
    return None if found is None else str(found.version)


def test_user_with_read_permission_cannot_promote(server, capsys):
    name = new_model()
    version = register(server, name)
    approve_as(server, name, version, "rev1", "rev2")
    # In the release_manager role, but MLflow grants only READ on the model: the server refuses the alias
    act_as(server, "releaser_ro")
    capsys.readouterr()
    assert main(["promote", name, version]) == 1
    assert capsys.readouterr().err == (
        f"govern: MLflow at {server.url} refused releaser_ro: setting alias 'production' of {name} to v{version} "
        "needs EDIT (or MANAGE) permission on the registered model\n"
    )
    assert events(name, "promoted") == [] and holder(name) is None
    (denied,) = events(name, "permission_denied")
    assert denied.actor == "releaser_ro" and denied.details["rules"] == ["mlflow.permission"]
    assert denied.details["identity"] == "mlflow-basic-auth"
    # A user with no release role is refused by policy before MLflow is asked
    act_as(server, "viewer")
    assert main(["promote", name, version]) == 1
    assert capsys.readouterr().err == (
        f"govern: promote refused by approval.role_required: {name} v{version}: viewer holds no role allowed to "
        "promote to production (allowed: release_manager; viewer's roles: none)\n"
    )
    assert [e.actor for e in events(name, "permission_denied")] == ["releaser_ro", "viewer"]


def test_reviewer_with_read_permission_cannot_approve(server, capsys):
    name = new_model()
    version = register(server, name)
    # A reviewer by policy whom MLflow grants only READ: the server refuses the approval's tags, the event is
    # rolled back and the refusal recorded (exit 1, as for an alias), whichever client sends the write
    act_as(server, "rev_ro")
    capsys.readouterr()
    assert main(["approve", name, version, "--reason", "looks fine"]) == 1
    assert capsys.readouterr().err == (
        f"govern: MLflow at {server.url} refused rev_ro: tagging {name} v{version} "
        "needs EDIT (or MANAGE) permission on the registered model\n"
    )
    assert events(name, "approved") == []
    (denied,) = events(name, "permission_denied")
    assert denied.actor == "rev_ro" and denied.details["rules"] == ["mlflow.permission"]


def test_trainer_cannot_approve_their_own_version(server, capsys):
    name = new_model()
    version = register(server, name, trained_by="trainer")
    act_as(server, "trainer")
    capsys.readouterr()
    assert main(["approve", name, version, "--reason", "my own work looks great"]) == 1
    assert capsys.readouterr().err == (
        f"govern: approve refused by approval.separation_of_duties: {name} v{version}: trainer is this version's "
        "lineage.trained_by and may not approve it\n"
    )
    assert events(name, "approved") == [] and events(name, "permission_denied")[0].actor == "trainer"


def test_two_distinct_reviewers_allow_promotion(server, capsys):
    name = new_model()
    version = register(server, name)
    approve_as(server, name, version, "rev1")
    act_as(server, "releaser")
    with pytest.raises(PolicyViolation, match=r"approval.min_approvers: .*1 distinct approval\(s\) \(rev1\)"):
        approvals.promote(name, version)
    approve_as(server, name, version, "rev1")  # the same reviewer twice still counts once
    assert len(events(name, "approved")) == 1
    approve_as(server, name, version, "rev2")
    act_as(server, "releaser")
    assert main(["promote", name, version]) == 0
    assert capsys.readouterr().out.endswith(
        f"production of {name} -> v{version} by releaser (event #{events(name, 'promoted')[0].seq})\n"
    )
    assert holder(name) == version
    (promoted,) = events(name, "promoted")
    assert promoted.actor == "releaser" and promoted.role == "release_manager"
    assert promoted.details["identity"] == "mlflow-basic-auth"
    assert promoted.details["identity_server"] == server.url  # the pinned server vouched for the user
    (registered,) = events(name, "model_registered")  # the registrant's server is recorded too
    assert registered.identity_method == "mlflow-basic-auth" and registered.details["identity_server"] == server.url
    assert {"approval:rev1", "approval:rev2"} <= set(promoted.evidence)
    tags = registry.get_version(name, version).tags
    assert tags[approvals.TAG_APPROVAL_STATUS] == "approved" and tags[approvals.TAG_APPROVERS] == "rev1,rev2"
    assert tags[approvals.TAG_LAST_EVENT].startswith(f"#{promoted.seq} promoted {promoted.hash}")


def test_rollback_restores_the_previous_production_version(server, capsys):
    name = new_model()
    first, second = register(server, name), register(server, name)
    for version in (first, second):
        approve_as(server, name, version, "rev1", "rev2")
        act_as(server, "releaser")
        assert main(["promote", name, version]) == 0
    assert holder(name) == second
    assert main(["rollback", name, "--reason", "error rate up after release"]) == 0
    assert holder(name) == first
    (rolled,) = events(name, "rolled_back")
    assert (rolled.subject.version, rolled.details["from_version"], rolled.actor) == (first, second, "releaser")
    assert rolled.reason == "error rate up after release"
    capsys.readouterr()
    assert main(["history", name]) == 0
    history = capsys.readouterr().out.splitlines()
    assert [line.split()[3:5] for line in history] == [["->", f"v{first}"], ["->", f"v{second}"], ["->", f"v{first}"]]
    assert "rolled_back by releaser (release_manager): error rate up after release" in history[-1]


def test_credentials_are_verified_by_the_server(server, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "rev1")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "not-the-password")
    monkeypatch.setenv("GOVERN_USER", "rev2")  # no free choice of identity against a server
    assert main(["approve", "srv-any", "1", "--reason", "x"]) == 1
    assert capsys.readouterr().err == (
        f"govern: MLflow at {server.url} rejected the credentials of 'rev1' "
        "(MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD); check the password\n"
    )
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD")
    assert main(["approve", "srv-any", "1", "--reason", "x"]) == 2
    assert capsys.readouterr().err.startswith(f"govern: MLflow at {server.url} needs your credentials: set ")


def test_registry_unreachable_during_promote(server, monkeypatch, capsys):
    name = new_model()
    version = register(server, name)
    approve_as(server, name, version, "rev1", "rev2")
    act_as(server, "releaser")
    releaser = verify_server_user(server.url, "releaser", server.passwords["releaser"])
    before = trail.head().seq
    dead = "http://127.0.0.1:9"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)
    with pytest.raises(RegistryError) as info:
        approvals.promote(name, version, identity=releaser)  # identity checked, then the registry goes away
    assert str(info.value) == (
        f"promote {name} v{version}: cannot reach the MLflow registry at {dead}; nothing was recorded, "
        "re-run when the registry is back"
    )
    capsys.readouterr()
    # Any server but the pinned one is refused before credentials are sent (a dead one, or an attacker's)
    assert main(["promote", name, version]) == 1
    assert capsys.readouterr().err == (
        f"govern: MLflow at {dead} is not the authenticating server {server_policy()} pins "
        f"(authentication.server: {server.url}); an identity from any other server is refused\n"
    )
    assert trail.head().seq == before and holder_at(server, name) is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    assert main(["promote", name, version]) == 0
    assert main(["promote", name, version]) == 0  # re-run: nothing new
    assert "already holds production" in capsys.readouterr().out
    assert len(events(name, "promoted")) == 1 and holder(name) == version
    assert [str(v.version) for v in registry.list_versions(name)] == [version]


def server_policy() -> str:
    return os.path.join(os.environ["GOVERN_POLICY_DIR"], "approvals.yaml")


def holder_at(server, name: str) -> str | None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", server.url)
        return holder(name)


def _approve_in_child(user: str, password: str, name: str, version: str, barrier) -> None:
    """One reviewer's shell: their own credentials, the real CLI entry point."""
    os.environ["MLFLOW_TRACKING_USERNAME"] = user
    os.environ["MLFLOW_TRACKING_PASSWORD"] = password
    code = 3
    try:
        barrier.wait(timeout=120)
        code = main(["approve", name, version, "--reason", f"concurrent review by {user}"])
    finally:
        os._exit(code)


def test_concurrent_approvals_lose_nothing_and_the_chain_verifies(server):
    name = new_model()
    versions = [register(server, name, trained_by="nobody-in-the-crowd") for _ in range(CROWD_VERSIONS)]
    before = trail.head().seq
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(CONCURRENT)
    children = [
        context.Process(target=_approve_in_child, args=(user, server.passwords[user], name, version, barrier))
        for user in CROWD
        for version in versions
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=300)
    assert [c.exitcode for c in children] == [0] * CONCURRENT
    approved = events(name, "approved")
    assert sorted((e.actor, e.subject.version) for e in approved) == sorted(
        (user, version) for user in CROWD for version in versions
    )
    chain = trail.events()
    assert [e.seq for e in chain] == list(range(1, before + 1 + CONCURRENT))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    assert trail.verify().ok
    act_as(server, "admin")
    for version in versions:
        tags = registry.get_version(name, version).tags
        assert sorted(tags[approvals.TAG_APPROVERS].split(",")) == CROWD
        assert tags[approvals.TAG_APPROVAL_STATUS] == "approved"


def test_withdraw_answers_an_incident_and_only_fresh_approvals_serve_again(server, capsys):
    """#27 on the server: the role refusal first, an incident-linked withdraw, re-promotion after fresh approvals."""
    from governance.report.audit import audit_facts

    name = new_model()
    version = register(server, name)
    approve_as(server, name, version, "rev1", "rev2")
    act_as(server, "releaser")
    assert main(["promote", name, version]) == 0
    # A reviewer hears about the role (with its rule id), from withdraw and from rollback alike
    act_as(server, "rev1")
    capsys.readouterr()
    for argv, words in ((["withdraw", name], "withdraw a version from service"), (["rollback", name], "roll back")):
        assert main(argv) == 1
        assert capsys.readouterr().err == (
            f"govern: {argv[0]} refused by approval.role_required: {name} v{version}: rev1 holds no role allowed to "
            f"{words} (allowed: release_manager; rev1's roles: reviewer, objective_owner)\n"
        )
    # The reviewer opens a high incident; the release manager withdraws the only production version answering it
    assert main(["incident", "open", name, version, "--severity", "high", "--reason", "answers leak e-mail"]) == 0
    (opened,) = events(name, "incident_opened")
    incident = f"INC-{opened.seq}"
    assert f"  govern withdraw {name} --incident {incident} " in capsys.readouterr().out
    act_as(server, "releaser")
    # MLflow's basic-auth counts removing an alias as deleting: EDIT is not enough, nothing is withdrawn
    assert main(["withdraw", name, "--incident", incident, "--reason", "leak confirmed"]) == 1
    assert capsys.readouterr().err == (
        f"govern: MLflow at {server.url} refused releaser: removing alias 'production' of {name} needs MANAGE "
        "permission on the registered model\n"
    )
    assert events(name, "withdrawn") == [] and holder(name) == version
    assert events(name, "permission_denied")[-1].details["rules"] == ["mlflow.permission"]
    server.grant("releaser", name, "MANAGE")
    assert main(["withdraw", name, "--incident", incident, "--reason", "leak confirmed"]) == 0
    (withdrawn,) = events(name, "withdrawn")
    assert (withdrawn.actor, withdrawn.role, withdrawn.details["incident"]) == ("releaser", "release_manager", incident)
    assert withdrawn.details["identity"] == "mlflow-basic-auth" and withdrawn.details["identity_server"] == server.url
    assert withdrawn.evidence["incident_event"] == opened.hash
    # MLflow, the trail and the report agree: nothing holds production, the version is withdrawn
    assert holder(name) is None
    assert registry.get_version(name, version).tags[approvals.TAG_APPROVAL_STATUS] == "withdrawn"
    facts = audit_facts(
        name, version, risk_tier=None, approvals_policy=Path(server_policy()), reward_hashes={}, stage=None
    )["approvals"]
    assert facts["status"] == "withdrawn" and facts["registry"]["drift"] == []
    assert facts["withdrawals"][0]["line"] == (
        f"withdrawn on {withdrawn.timestamp[:19]}Z by releaser because leak confirmed (answers {incident})"
    )
    # Promoted again only after the incident is closed and with fresh approvals
    assert main(["incident", "close", incident, "--reason", "template fixed"]) == 0
    capsys.readouterr()
    assert main(["promote", name, version]) == 1
    assert capsys.readouterr().err == (
        f"govern: promote refused by approval.min_approvers: {name} v{version}: 0 distinct approval(s) (none); "
        "risk tier medium needs 2\n"
    )
    approve_as(server, name, version, "rev1", "rev2")
    act_as(server, "releaser")
    assert main(["promote", name, version]) == 0 and holder(name) == version


def test_doctor_checks_the_permissions_each_role_needs_before_an_incident_does(server):
    """A release manager granted EDIT (as the team doc once said) learns it from `govern doctor`, not at withdraw."""
    from governance import preflight
    from governance.policy.approvals import load_approvals_policy

    policy = load_approvals_policy()
    server.create_user("releaser_edit", edit_models=True)
    policy = policy.model_copy(
        update={"roles": {**policy.roles, "release_manager": [*policy.roles["release_manager"], "releaser_edit"]}}
    )
    finding = preflight.check_permissions(
        server.url, "releaser_edit", ("releaser_edit", server.passwords["releaser_edit"]), policy
    )
    assert not finding.ok
    assert finding.line == (
        "releaser_edit holds EDIT on the registered models, but canary, promote, rollback, withdraw need MANAGE"
    )
    assert f"{server.url}/api/3.0/mlflow/users/permissions/grant" in finding.fix and '"MANAGE"' in finding.fix
    # A reviewer needs EDIT (approvals write tags): what they hold
    reviewer = preflight.check_permissions(server.url, "rev1", ("rev1", server.passwords["rev1"]), policy)
    assert reviewer.ok and reviewer.line == "rev1 holds EDIT on every registered model (approve, reject)"
    # The grant the finding names, after revoking the old one (a grant is not changed in place)
    server.api("POST", "/api/3.0/mlflow/users/permissions/revoke", json={
        "username": "releaser_edit", "resource_type": "registered_model", "resource_id": "*"})  # fmt: skip
    server.grant("releaser_edit", "*", "MANAGE")
    fixed = preflight.check_permissions(
        server.url, "releaser_edit", ("releaser_edit", server.passwords["releaser_edit"]), policy
    )
    assert fixed.ok, fixed.line
