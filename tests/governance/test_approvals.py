"""Approvals, promotion, canary and rollback against a real MLflow store (embedded SQLite) and audit trail.

Every rule of policies/approvals.yaml has a passing and a failing case; the
failing case asserts the exact refusal, and that the refusal is recorded.
The server tests (tests/server/) repeat the key flows with basic-auth users
and PostgreSQL.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest
import yaml

from governance import approvals, registry, registry_writes, trail
from governance.cli import main
from governance.errors import ConfigError, PermissionDenied, PolicyViolation, RegistryError
from governance.identity import Identity

REPO = Path(__file__).resolve().parents[2]
_names = itertools.count(1)


def register(
    name: str,
    *,
    trained_by: str = "trainer",
    registered_by: str = "ci-bot",
    risk_tier: str = "medium",
    gate_status: str = "passed",
    eval_status: str = "passed",
    record: bool = True,
    method: str | None = None,
) -> str:
    """A version as the register stage leaves it: run, artifact, lineage tags, then the trail record."""
    client = registry.client()
    experiment = client.get_experiment_by_name("approvals-tests").experiment_id
    run = client.create_run(experiment)
    client.log_text(run.info.run_id, "tiny weights", "model/weights.txt")
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(
        name,
        source=f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags={
            "lineage.trained_by": trained_by,
            "lineage.registered_by": registered_by,
            "lineage.risk_tier": risk_tier,
            **({"lineage.method": method} if method else {}),
            "lineage.gate_decisions": gate_status,
            registry.TAG_APPROVAL_STATUS: "pending",
        },
    ).version
    if record:
        approvals.record_registration(
            name,
            version,
            actor=registered_by,
            evidence={"model_sha256": "ab" * 32},
            gate_status=gate_status,
            eval_status=eval_status,
        )
    return str(version)


def as_user(name: str) -> Identity:
    return Identity(user=name, source="local")


def new_model() -> str:
    return f"govllm-test-{next(_names)}"


def tags(name: str, version: str) -> dict[str, str]:
    return registry.get_version(name, version).tags


def alias_holder(name: str, alias: str = "production") -> str | None:
    found = registry.version_by_alias(name, alias)
    return None if found is None else str(found.version)


def events(name: str, kind: str | None = None) -> list[trail.Event]:
    return [e for e in trail.events(model=name) if kind is None or e.event_type == kind]


def approve_by(name: str, version: str, *users: str) -> None:
    for user in users:
        approvals.approve(name, version, reason=f"reviewed by {user}", identity=as_user(user))


# --------------------------------------------------------------------------- registration


def test_registration_is_recorded_once_and_mirrored(env):
    name = new_model()
    version = register(name)
    registered = events(name)
    assert [e.event_type for e in registered] == ["model_registered", "gate_decision", "eval_decision"]
    first = registered[0]
    assert first.actor == "ci-bot" and first.details["people"] == {
        "lineage.trained_by": "trainer",
        "lineage.registered_by": "ci-bot",
    }
    assert first.details["risk_tier"] == "medium" and first.evidence["model_sha256"] == "ab" * 32
    again = approvals.record_registration(
        name, version, actor="ci-bot", evidence={"model_sha256": "ab" * 32}, gate_status="passed", eval_status="passed"
    )
    assert not again.created and again.hash == first.hash
    assert len(events(name)) == 3
    view = tags(name, version)
    assert view[approvals.TAG_APPROVAL_STATUS] == "pending"
    assert view[approvals.TAG_APPROVALS_REQUIRED] == "2"
    assert view[approvals.TAG_EVAL_STATUS] == "passed" and view[approvals.TAG_GATE_STATUS] == "passed"
    assert view[approvals.TAG_LAST_EVENT].startswith(f"#{registered[-1].seq} eval_decision ")


def test_registration_needs_the_separation_of_duties_tags(env):
    name = new_model()
    version = register(name, record=False)
    registry.client().delete_model_version_tag(name, version, "lineage.trained_by")
    with pytest.raises(ConfigError) as info:
        approvals.record_registration(
            name, version, actor="ci-bot", evidence={}, gate_status="passed", eval_status="passed"
        )
    assert str(info.value) == (
        f"{name} v{version}: tag lineage.trained_by is missing; separation of duties "
        "(approval.separation_of_duties) needs it set at registration"
    )
    assert events(name) == []


def test_registration_rejects_an_unknown_risk_tier_and_status(env):
    name = new_model()
    version = register(name, risk_tier="critical", record=False)
    with pytest.raises(ConfigError) as info:
        approvals.record_registration(
            name, version, actor="ci-bot", evidence={}, gate_status="passed", eval_status="passed"
        )
    assert str(info.value) == (
        f"{name} v{version}: tag lineage.risk_tier = 'critical' is not a risk tier of "
        f"{env / 'approvals.yaml'} (low, medium, high)"
    )
    with pytest.raises(ConfigError, match=r"^eval_status: 'denied' is not one of passed, eval_failed$"):
        approvals.record_registration(
            name, version, actor="ci-bot", evidence={}, gate_status="passed", eval_status="denied"
        )


# --------------------------------------------------------------------------- approve: each rule


def test_reviewer_approval_is_recorded_and_mirrored(env):
    name = new_model()
    version = register(name)
    outcome = approvals.approve(name, version, reason="lineage and eval reviewed", identity=as_user("alice"))
    assert outcome.created and outcome.event.event_type == "approved" and outcome.event.role == "reviewer"
    assert outcome.event.evidence["registration_event"] == events(name, "model_registered")[0].hash
    assert "approvals_policy_sha256" in outcome.event.evidence
    view = tags(name, version)
    assert view[approvals.TAG_APPROVERS] == "alice" and view[approvals.TAG_APPROVAL_STATUS] == "pending"
    again = approvals.approve(name, version, reason="again", identity=as_user("alice"))
    assert not again.created and again.event.seq == outcome.event.seq
    assert len(events(name, "approved")) == 1


def test_role_required_refuses_and_the_refusal_is_recorded(env):
    name = new_model()
    version = register(name)
    with pytest.raises(PermissionDenied) as info:
        approvals.approve(name, version, reason="lgtm", identity=as_user("mallory"))
    assert str(info.value) == (
        f"approve refused by approval.role_required: {name} v{version}: mallory holds no role allowed to approve "
        "(allowed: reviewer; mallory's roles: none)"
    )
    (denied,) = events(name, "permission_denied")
    assert denied.actor == "mallory" and denied.role == "none" and denied.reason == str(info.value)
    assert denied.details == {"action": "approve", "identity": "local", "rules": ["approval.role_required"]}
    assert events(name, "approved") == []


def test_trainer_cannot_approve_their_own_version(env):
    name = new_model()
    version = register(name, trained_by="bob", registered_by="carol")
    for user, tag in (("bob", "lineage.trained_by"), ("carol", "lineage.registered_by")):
        with pytest.raises(PermissionDenied) as info:
            approvals.approve(name, version, reason="mine", identity=as_user(user))
        assert str(info.value) == (
            f"approve refused by approval.separation_of_duties: {name} v{version}: {user} is this version's "
            f"{tag} and may not approve it"
        )
    assert len(events(name, "permission_denied")) == 2
    approvals.approve(name, version, reason="independent review", identity=as_user("alice"))
    assert [e.actor for e in events(name, "approved")] == ["alice"]


def test_editing_lineage_tags_in_mlflow_does_not_lift_separation_of_duties(env):
    name = new_model()
    version = register(name, trained_by="bob")
    registry.client().set_model_version_tag(name, version, "lineage.trained_by", "someone-else")
    with pytest.raises(PermissionDenied, match="bob is this version's lineage.trained_by"):
        approvals.approve(name, version, reason="tag says it's not mine", identity=as_user("bob"))


def _waive(env: Path, rule_id: str, granted_by: str, subject: str | None, expires: str = "2999-12-31") -> None:
    path = env / "waivers.yaml"
    data = yaml.safe_load(path.read_text())
    data["waivers"].append(
        {"rule_id": rule_id, "granted_by": granted_by, "reason": "two-person team", "expires": expires}
        | ({"subject": subject} if subject else {})
    )
    path.write_text(yaml.safe_dump(data))
    _commit(env, "waivers.yaml")  # reviewed: a waiver counts only as committed in git


def _commit(folder: Path, *files: str) -> None:
    git = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@localhost"]
    if not (folder / ".git").exists():
        subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", *files], check=True)
    subprocess.run([*git, "commit", "-qm", "review"], check=True)


def test_attack_a_waiver_typed_into_waivers_yaml_and_not_committed_counts_for_nothing(env, caplog):
    """The trainer adds a waiver 'granted by dana' to the file and approves their own version."""
    name = new_model()
    version = register(name, trained_by="bob")
    _commit(env, "approvals.yaml", "waivers.yaml")
    path = env / "waivers.yaml"
    data = yaml.safe_load(path.read_text())
    data["waivers"].append(
        {"rule_id": "approval.separation_of_duties", "granted_by": "dana", "reason": "trust me"}
        | {"expires": "2999-12-31"}
    )
    path.write_text(yaml.safe_dump(data))  # not committed
    with pytest.raises(PermissionDenied, match="approval.separation_of_duties"):
        approvals.approve(name, version, reason="self-review", identity=as_user("bob"))
    assert events(name, "waiver_granted") == [] and events(name, "approved") == []
    assert f"{path}: 1 waiver(s) not applied: the file is not reviewed in git (uncommitted change)" in caplog.text


def test_attack_a_waiver_shown_to_the_parser_and_swapped_back_before_the_review_check_counts_for_nothing(
    env, monkeypatch, caplog
):
    """W2: the forged waiver file is in place for the read that parses it and the reviewed one is put back before git
    is asked (a swap between two reads of one path). Before, the waivers were parsed from one read and the review
    asked of another, so the forged waiver counted; now both come from one read."""
    name = new_model()
    version = register(name, trained_by="bob")
    _commit(env, "approvals.yaml", "waivers.yaml")
    path = env / "waivers.yaml"
    reviewed = path.read_bytes()
    data = yaml.safe_load(reviewed)
    data["waivers"].append(
        {"rule_id": "approval.separation_of_duties", "granted_by": "dana", "reason": "trust me"}
        | {"expires": "2999-12-31"}
    )
    path.write_text(yaml.safe_dump(data))
    forged, original = path.read_bytes(), Path.read_bytes
    reads = []

    def swapped_back_after_the_first_read(self: Path) -> bytes:
        if self.resolve() != path.resolve():
            return original(self)
        reads.append(self)
        if len(reads) == 1:
            path.write_bytes(reviewed)  # the attacker's swap, right after the read
            return forged
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", swapped_back_after_the_first_read)
    with pytest.raises(PermissionDenied, match="approval.separation_of_duties"):
        approvals.approve(name, version, reason="self-review", identity=as_user("bob"))
    assert events(name, "waiver_granted") == [] and events(name, "approved") == []
    assert f"{path}: 1 waiver(s) not applied: the file is not reviewed in git (uncommitted change)" in caplog.text


def test_separation_of_duties_waiver_from_the_waiver_authority_is_recorded(env):
    name = new_model()
    version = register(name, trained_by="bob")
    _waive(env, "approval.separation_of_duties", "alice", f"{name} v{version}")  # alice may not grant waivers
    with pytest.raises(PermissionDenied, match="approval.separation_of_duties"):
        approvals.approve(name, version, reason="self-review", identity=as_user("bob"))
    _waive(env, "approval.separation_of_duties", "dana", f"{name} v{version}", expires="2000-01-01")  # expired
    with pytest.raises(PermissionDenied, match="approval.separation_of_duties"):
        approvals.approve(name, version, reason="self-review", identity=as_user("bob"))
    _waive(env, "approval.separation_of_duties", "dana", f"{name} v{version}")
    outcome = approvals.approve(name, version, reason="self-review under waiver", identity=as_user("bob"))
    assert outcome.created and outcome.event.details["waived"] == ["approval.separation_of_duties by dana"]
    (waiver,) = events(name, "waiver_granted")
    assert waiver.actor == "dana" and waiver.reason == "two-person team" and waiver.seq < outcome.event.seq
    assert waiver.details == {
        "expires": "2999-12-31",
        "rule_id": "approval.separation_of_duties",
        "scope": f"{name} v{version}",
    }
    approvals.approve(name, version, reason="again", identity=as_user("bob"))
    assert len(events(name, "waiver_granted")) == 1


def test_eval_failed_version_can_never_be_approved(env):
    name = new_model()
    version = register(name, eval_status="eval_failed")
    _waive(env, "approval.eval_passed", "dana", None)  # eval_passed is not waivable: ignored
    registry.client().set_model_version_tag(name, version, "governance.eval_status", "passed")  # nor can a tag edit
    with pytest.raises(PolicyViolation) as info:
        approvals.approve(name, version, reason="lgtm", identity=as_user("alice"))
    seq = events(name, "eval_decision")[0].seq
    assert str(info.value) == (
        f"approve refused by approval.eval_passed: {name} v{version}: its evaluation did not pass "
        f"(governance.eval_status = eval_failed, event #{seq}); a version that failed evaluation can never be approved"
    )
    approvals.record_eval_decision(name, version, status="passed", evidence={"re-eval": "cd" * 32}, actor="ci-bot")
    with pytest.raises(PolicyViolation, match="approval.eval_passed"):
        approvals.approve(name, version, reason="re-evaluated", identity=as_user("alice"))
    assert tags(name, version)[approvals.TAG_APPROVAL_STATUS] == "blocked"


def test_eval_passed_cannot_be_made_waivable(env):
    path = env / "approvals.yaml"
    path.write_text(
        path.read_text().replace(
            "    waivable: false\n    tag: governance.eval_status",
            "    waivable: true\n    tag: governance.eval_status",
        )
    )
    with pytest.raises(ConfigError) as info:
        approvals.load_approvals_policy()
    assert str(info.value) == f"{path}: rules.eval_passed.waivable: Input should be False"


def test_failed_data_gates_block_approval(env):
    name = new_model()
    version = register(name, gate_status="failed")
    with pytest.raises(PolicyViolation) as info:
        approvals.approve(name, version, reason="lgtm", identity=as_user("alice"))
    seq = events(name, "gate_decision")[0].seq
    assert str(info.value) == (
        f"approve refused by approval.gates_passed: {name} v{version}: its data gates did not all pass "
        f"(lineage.gate_decisions = failed, event #{seq}); it cannot be approved or deployed"
    )


def test_version_not_registered_through_the_pipeline_is_refused(env):
    name = new_model()
    version = register(name, record=False)
    with pytest.raises(PolicyViolation) as info:
        approvals.approve(name, version, reason="lgtm", identity=as_user("alice"))
    assert str(info.value) == (
        f"approve refused by approval.registered: {name} v{version}: no model_registered event in the audit trail; "
        "register it through the pipeline's register stage (also failing: approval.gates_passed, "
        "approval.eval_passed)"
    )


# --------------------------------------------------------------------------- promote, canary, rollback


def test_promotion_needs_distinct_approvers_by_risk_tier(env):
    name = new_model()
    version = register(name)
    approve_by(name, version, "alice")
    with pytest.raises(PolicyViolation) as info:
        approvals.promote(name, version, identity=as_user("dana"))
    assert str(info.value) == (
        f"promote refused by approval.min_approvers: {name} v{version}: 1 distinct approval(s) (alice); "
        "risk tier medium needs 2"
    )
    assert alias_holder(name) is None and events(name, "promoted") == []
    approve_by(name, version, "bob")
    outcome = approvals.promote(name, version, identity=as_user("dana"))
    assert outcome.created and alias_holder(name) == version
    assert set(outcome.event.evidence) >= {"approval:alice", "approval:bob", "registration_event"}
    view = tags(name, version)
    assert view[approvals.TAG_APPROVAL_STATUS] == "approved" and view[approvals.TAG_APPROVERS] == "alice,bob"
    assert '"alias":"production","change":"set"' in view[approvals.TAG_ALIAS_HISTORY]
    other = new_model()  # a model's first registered tier fixes it: a low-tier model is another model
    low = register(other, risk_tier="low")
    approve_by(other, low, "carol")
    assert approvals.canary(other, low, identity=as_user("dana")).created
    assert alias_holder(other, "canary") == low


def test_attack_a_lower_tier_in_params_is_refused_for_a_method_the_policy_lists(env):
    """G2: register_sft.risk_tier: low in params.yaml; the policy sets sft to medium. Nothing is frozen in the trail."""
    name = new_model()
    version = register(name, risk_tier="low", record=False, method="sft")
    with pytest.raises(PolicyViolation) as info:
        approvals.record_registration(
            name, version, evidence={"model_sha256": "ab" * 32}, gate_status="passed", eval_status="passed"
        )
    assert str(info.value) == (
        f"{name} v{version}: risk tier 'low' (tag lineage.risk_tier, from params.yaml) is below 'medium', which "
        f"{env / 'approvals.yaml'} sets for method sft (min_tier_by_method); a tier is lowered only by an approved "
        "policy change (govern policy-change), never by a parameter: set the register stage's risk_tier to medium"
    )
    assert events(name, "model_registered") == []
    # Another method's tier, and raising a tier, follow the same policy
    with pytest.raises(PolicyViolation, match="is below 'high', which .* sets for method rlhf"):
        approvals.require_risk_tier(name, "rlhf", "medium")
    approvals.require_risk_tier(name, "sft", "high")


def test_a_models_first_registered_tier_is_its_floor_where_the_policy_lists_no_method(env):
    name = new_model()
    register(name, risk_tier="high")
    with pytest.raises(PolicyViolation, match=rf"is below 'high', which {name} v1 was first registered with"):
        register(name, risk_tier="medium")
    assert len(events(name, "model_registered")) == 1


def test_only_release_managers_promote(env):
    name = new_model()
    version = register(name)
    approve_by(name, version, "alice", "bob")
    with pytest.raises(PermissionDenied) as info:
        approvals.promote(name, version, identity=as_user("alice"))
    assert str(info.value) == (
        f"promote refused by approval.role_required: {name} v{version}: alice holds no role allowed to promote "
        "to production (allowed: release_manager; alice's roles: reviewer, objective_owner)"
    )
    assert events(name, "permission_denied")[0].details["action"] == "promote"


def test_a_standing_rejection_blocks_deployment_until_withdrawn(env):
    name = new_model()
    version = register(name)
    approve_by(name, version, "alice", "bob")
    approvals.reject(name, version, reason="toxic outputs on probe set", identity=as_user("carol"))
    assert tags(name, version)[approvals.TAG_APPROVAL_STATUS] == "rejected"
    with pytest.raises(PolicyViolation) as info:
        approvals.canary(name, version, identity=as_user("dana"))
    seq = events(name, "rejected")[0].seq
    assert str(info.value) == (
        f"canary refused by approval.no_open_rejection: {name} v{version}: rejected by carol (event #{seq}); "
        "a standing rejection blocks deployment"
    )
    approve_by(name, version, "carol")
    assert approvals.canary(name, version, identity=as_user("dana")).created


def test_promotion_is_idempotent(env):
    name = new_model()
    version = register(name)
    approve_by(name, version, "alice", "bob")
    first = approvals.promote(name, version, identity=as_user("dana"))
    again = approvals.promote(name, version, identity=as_user("dana"))
    assert first.created and not again.created and again.event.seq == first.event.seq
    assert len(events(name, "promoted")) == 1


def test_rollback_restores_the_previous_approved_production_version(env):
    name = new_model()
    v1, v2, v3 = register(name), register(name), register(name)
    for version in (v1, v2):
        approve_by(name, version, "alice", "bob")
        approvals.promote(name, version, identity=as_user("dana"))
    assert alias_holder(name) == v2 and approvals.default_rollback_target(name) == v1
    outcome = approvals.rollback(name, reason="latency regression", identity=as_user("dana"))
    assert outcome.created and (outcome.previous, outcome.version) == (v2, v1)
    assert alias_holder(name) == v1
    assert outcome.event.details["from_version"] == v2 and outcome.event.reason == "latency regression"
    assert '"change":"removed (rollback)"' in tags(name, v2)[approvals.TAG_ALIAS_HISTORY]
    # v2 was rolled back from: it is not a default target any more
    assert approvals.default_rollback_target(name) is None
    with pytest.raises(PolicyViolation) as info:
        approvals.rollback(name, identity=as_user("dana"))
    assert str(info.value) == (
        f"rollback refused: {name} has no earlier production version that is still approved (production is "
        f"v{v1}); name one with --to VERSION"
    )
    with pytest.raises(PolicyViolation, match=r"rollback refused by approval.min_approvers: .* v3: 0 distinct"):
        approvals.rollback(name, to=v3, identity=as_user("dana"))
    assert approvals.rollback(name, to=v2, reason="fixed upstream", identity=as_user("dana")).created
    assert alias_holder(name) == v2
    assert [(e.event_type, e.subject.version) for e in approvals.history(name)] == [
        ("promoted", v1),
        ("promoted", v2),
        ("rolled_back", v1),
        ("rolled_back", v2),
    ]


def test_rollback_without_production_is_refused(env):
    name = new_model()
    register(name)
    with pytest.raises(PolicyViolation) as info:
        approvals.rollback(name, identity=as_user("dana"))
    assert str(info.value) == f"rollback refused: {name} has no production version in the audit trail to roll back from"


# --------------------------------------------------------------------------- failures and write order


def test_registry_unreachable_during_promote_records_nothing(env, monkeypatch, capsys):
    # The policy pins the server (before registration, so the version is held to this policy)
    path = env / "approvals.yaml"
    path.write_text(path.read_text().replace("  server: null\n", "  server: http://127.0.0.1:9\n"))
    name = new_model()
    version = register(name)
    approve_by(name, version, "alice", "bob")
    before = len(trail.events())
    store_uri = registry.tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(RegistryError) as info:
        approvals.promote(name, version, identity=as_user("dana"))
    assert str(info.value) == (
        f"promote {name} v{version}: cannot reach the MLflow registry at http://127.0.0.1:9; nothing was recorded, "
        "re-run when the registry is back"
    )
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "dana")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "secret")
    assert main(["promote", name, version]) == 2
    err = capsys.readouterr().err
    assert err == "govern: cannot reach http://127.0.0.1:9 to verify user 'dana' (ConnectionError)\n"
    assert len(trail.events()) == before
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store_uri)
    monkeypatch.setenv("GOVERN_USER", "dana")
    assert main(["promote", name, version]) == 0
    assert main(["promote", name, version]) == 0
    assert len(events(name, "promoted")) == 1 and alias_holder(name) == version


def test_mlflow_failure_while_applying_rolls_the_event_back(env, monkeypatch):
    name = new_model()
    version = register(name)
    approve_by(name, version, "alice", "bob")

    def unreachable(*args, **kwargs):
        raise RegistryError("setting alias 'production' failed: cannot reach the registry (ConnectionError)")

    with monkeypatch.context() as patch:
        patch.setattr(registry_writes, "set_alias", unreachable)  # what the mirror calls on every store
        with pytest.raises(RegistryError) as info:
            approvals.promote(name, version, identity=as_user("dana"))
    assert str(info.value) == (
        f"promote {name} v{version}: cannot reach the MLflow registry at {registry.tracking_uri()}; nothing was "
        "recorded, re-run when the registry is back"
    )
    assert events(name, "promoted") == [] and alias_holder(name) is None
    assert approvals.promote(name, version, identity=as_user("dana")).created
    assert len(events(name, "promoted")) == 1 and alias_holder(name) == version


def test_alias_set_before_a_lost_commit_is_recorded_once_on_rerun(env):
    name = new_model()
    version = register(name)
    approve_by(name, version, "alice", "bob")
    registry.set_alias(name, "production", version)  # MLflow changed, then the commit was lost
    outcome = approvals.promote(name, version, identity=as_user("dana"))
    assert outcome.created and len(events(name, "promoted")) == 1 and alias_holder(name) == version


def test_rerun_repairs_an_alias_moved_outside_governance(env):
    name = new_model()
    v1, v2 = register(name), register(name)
    approve_by(name, v1, "alice", "bob")
    approvals.promote(name, v1, identity=as_user("dana"))
    registry.set_alias(name, "production", v2)  # someone used the MLflow UI
    assert not approvals.promote(name, v1, identity=as_user("dana")).created
    assert alias_holder(name) == v1


# --------------------------------------------------------------------------- the CLI


def test_cli_exit_codes_and_one_line_messages(env, monkeypatch, capsys):
    name = new_model()
    version = register(name)
    monkeypatch.setenv("GOVERN_USER", "alice")
    assert main(["approve", name, version, "--reason", "reviewed eval and lineage"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"approved {name} v{version} as reviewer (event #")
    assert out.endswith("); 1 of 2 approvals, status pending\n")
    assert main(["approve", name, version, "--reason", "again"]) == 0
    assert "nothing recorded" in capsys.readouterr().out
    assert main(["promote", name, version]) == 1
    assert capsys.readouterr().err == (
        f"govern: promote refused by approval.role_required: {name} v{version}: alice holds no role allowed to "
        "promote to production (allowed: release_manager; alice's roles: reviewer, objective_owner) "
        "(also failing: approval.min_approvers)\n"
    )
    assert main(["approve", name, "99", "--reason", "x"]) == 2
    assert capsys.readouterr().err == f"govern: {name} v99 is not registered at {registry.tracking_uri()}\n"
    with pytest.raises(SystemExit) as info:
        main(["approve", name, version])
    assert info.value.code == 2
    assert "the following arguments are required: --reason" in capsys.readouterr().err
    assert main(["approve", name, version, "--reason", "  "]) == 2
    assert capsys.readouterr().err == "govern: --reason: give a non-empty reason; it is recorded in the audit trail\n"


def test_cli_show_and_history(env, monkeypatch, capsys):
    name = new_model()
    v1, v2 = register(name), register(name)
    for version in (v1, v2):
        approve_by(name, version, "alice", "bob")
        approvals.promote(name, version, identity=as_user("dana"))
    monkeypatch.setenv("GOVERN_USER", "dana")
    assert main(["rollback", name, "--reason", "bad canary metrics"]) == 0
    assert capsys.readouterr().out.startswith(f"rolled back production of {name}: v{v2} -> v{v1} by dana (event #")
    assert main(["history", name]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert f"production -> v{v1} (from v{v2})  rolled_back by dana (release_manager): bad canary metrics" in lines[2]
    assert main(["show", name, v1]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"{name} v{v1}: approved (2 of 2 approvals, risk tier medium)\n")
    assert "  aliases:      production\n" in shown
    assert "  approved by:  alice (local, unverified; event #" in shown
    assert "  approved by:  bob (local, unverified; event #" in shown
    assert "lineage.trained_by = trainer" in shown
    assert "rolled_back by dana (release_manager; local, unverified)" in shown
    assert main(["show", name, v1, "--json"]) == 0
    assert '"status": "approved"' in capsys.readouterr().out


# --------------------------------------------------------------------------- policy file


def test_every_action_must_name_its_roles(env):
    path = env / "approvals.yaml"
    path.write_text(path.read_text().replace("  rollback: [release_manager]", "  rollback: [release_owner]"))
    with pytest.raises(ConfigError) as info:
        approvals.load_approvals_policy()
    assert (
        str(info.value) == f"{path}: (top level): Value error, permissions.rollback: unknown role(s) release_owner; "
        "define them under roles"
    )
    data = yaml.safe_load((REPO / "policies" / "approvals.yaml").read_text())
    del data["permissions"]["canary"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="permissions: list the roles for every action; missing canary"):
        approvals.load_approvals_policy()


def test_shipped_policy_validates():
    policy = approvals.load_approvals_policy(REPO / "policies" / "approvals.yaml")
    assert policy.required_approvals("medium") == 2
    assert policy.rules.separation_of_duties.tags == ["lineage.trained_by", "lineage.registered_by"]


def test_register_says_a_re_evaluated_version_stays_blocked(env):
    """The register stage's line tells the trail's status, and why a passing re-evaluation does not unblock."""
    from pipelines.register import registration_status

    name = new_model()
    version = register(name, eval_status="eval_failed")
    assert registration_status(name, version, "eval_failed") == "blocked"
    approvals.record_eval_decision(name, version, status="passed", evidence={"re-eval": "cd" * 32}, actor="ci-bot")
    assert registration_status(name, version, "passed") == (
        "blocked; its evaluation was recorded eval_failed and this run's is passed: a failed evaluation stays on "
        "its version, so only a new version (new weights, data or params) can be approved"
    )
    assert registration_status(name, register(name), "passed") == "pending"
