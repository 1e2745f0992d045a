"""The approvals policy in force is pinned (#31): attacks first, then the recorded, approved way to change it.

Each attack is scripted as the attacker did it — a policy folder of one's own
through ``GOVERN_POLICY_DIR``, or ``policies/approvals.yaml`` edited in place,
with ``min_approvers`` for high at 1 and the approver added to every role —
followed by approving and promoting a high-tier version alone. Each asserts
the exact refusal and that it is recorded.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from test_approvals import alias_holder, approve_by, as_user, events, new_model, register

from governance import approvals, trail
from governance.cli import main
from governance.errors import ConfigError, PermissionDenied, PolicyViolation
from governance.lineage import sha256_file


def one_person_policy(path: Path, user: str) -> str:
    """The attacker's policy: high tier needs one (unauthenticated) approval, and ``user`` holds every role."""
    data = yaml.safe_load(path.read_text())
    data["rules"]["min_approvers"]["by_risk_tier"]["high"] = 1
    data["rules"]["authenticated_approvals"]["risk_tiers"] = []
    for members in data["roles"].values():
        members.append(user)
    return yaml.safe_dump(data, sort_keys=False)


def pinned_refusal(action: str, name: str, version: str, in_force: Path, pinned: str, seq: int) -> str:
    return (
        f"{action} refused by approval.policy_pinned: {name} v{version}: the approvals policy in force "
        f"({in_force}, sha256 {sha256_file(in_force)[:12]}) is not the one pinned for it (sha256 {pinned[:12]}, "
        f"recorded at registration, event #{seq}); restore that policy, or record an approved change with "
        "`govern policy-change --old FILE`"
    )


def test_attack_a_policy_folder_of_ones_own_decides_nothing(env, tmp_path, monkeypatch, capsys):
    name = new_model()
    version = register(name, risk_tier="high")
    (registered,) = events(name, "model_registered")
    pinned = registered.evidence["approvals_policy_sha256"]
    assert pinned == sha256_file(env / "approvals.yaml")
    # The attacker: a copy of policies/ with high: 1 and themself in every role, named by GOVERN_POLICY_DIR
    forged = tmp_path / "mine"
    shutil.copytree(env, forged)
    (forged / "approvals.yaml").write_text(one_person_policy(env / "approvals.yaml", "alice"))
    monkeypatch.setenv("GOVERN_POLICY_DIR", str(forged))
    monkeypatch.setenv("GOVERN_USER", "alice")
    for argv, action in (
        (["approve", name, version, "--reason", "lgtm"], "approve"),
        (["promote", name, version], "promote"),
        (["canary", name, version], "canary"),
    ):
        assert main(argv) == 1
        expected = pinned_refusal(action, name, version, forged / "approvals.yaml", pinned, registered.seq)
        assert capsys.readouterr().err == f"govern: {expected}\n"
    denials = events(name, "permission_denied")
    assert [d.details["rules"] for d in denials] == [["approval.policy_pinned"]] * 3
    assert {d.evidence["approvals_policy_sha256"] for d in denials} == {sha256_file(forged / "approvals.yaml")}
    assert events(name, "approved") == [] and alias_holder(name) is None


def test_attack_editing_the_policy_in_place_decides_nothing(env, monkeypatch, capsys):
    name = new_model()
    version = register(name, risk_tier="high")
    (registered,) = events(name, "model_registered")
    pinned = registered.evidence["approvals_policy_sha256"]
    path = env / "approvals.yaml"
    path.write_text(one_person_policy(path, "alice"))  # uncommitted edit of the file in force
    monkeypatch.setenv("GOVERN_USER", "alice")
    assert main(["approve", name, version, "--reason", "lgtm"]) == 1
    expected = pinned_refusal("approve", name, version, path, pinned, registered.seq)
    assert capsys.readouterr().err == f"govern: {expected}\n"
    with pytest.raises(PolicyViolation) as info:
        approvals.promote(name, version, identity=as_user("alice"))
    assert str(info.value) == pinned_refusal("promote", name, version, path, pinned, registered.seq)
    assert events(name, "approved") == [] and alias_holder(name) is None


def test_rollback_and_canary_end_are_held_to_the_pin_too(env):
    name = new_model()
    v1, v2 = register(name), register(name)
    for version in (v1, v2):
        approve_by(name, version, "alice", "bob")
        approvals.promote(name, version, identity=as_user("dana"))
    approvals.canary(name, v2, identity=as_user("dana"))
    pinned = events(name, "model_registered")[0].evidence["approvals_policy_sha256"]
    path = env / "approvals.yaml"
    path.write_text(one_person_policy(path, "mallory"))
    seq = {e.subject.version: e.seq for e in events(name, "model_registered")}
    with pytest.raises(PolicyViolation) as info:
        approvals.rollback(name, identity=as_user("mallory"))
    assert str(info.value) == pinned_refusal("rollback", name, v1, path, pinned, seq[v1])
    with pytest.raises(PolicyViolation) as info:
        approvals.canary_end(name, identity=as_user("mallory"))
    assert str(info.value) == pinned_refusal("canary_end", name, v2, path, pinned, seq[v2])
    assert alias_holder(name) == v2 and alias_holder(name, "canary") == v2


# --------------------------------------------------------------------------- the recorded way: govern policy-change


def _local_policy_changes(env: Path) -> None:
    """A team on the local store that lets unauthenticated people change the policy (the shipped one does not)."""
    path = env / "approvals.yaml"
    path.write_text(path.read_text().replace("    authenticated: true ", "    authenticated: false "))


def test_an_approved_policy_change_moves_the_pin(env, tmp_path, monkeypatch, capsys):
    _local_policy_changes(env)
    name = new_model()
    version = register(name)  # medium: 2 approvals under the old policy
    old = tmp_path / "old.yaml"
    shutil.copy(env / "approvals.yaml", old)
    data = yaml.safe_load(old.read_text())
    data["rules"]["min_approvers"]["by_risk_tier"]["medium"] = 1
    data["roles"]["reviewer"].append("mallory")
    data["permissions"]["change_policy"] = ["reviewer"]  # the new policy decides nothing about its own approval
    (env / "approvals.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    old_hash, new_hash = sha256_file(old), sha256_file(env / "approvals.yaml")
    subject = f"approvals policy {old_hash[:12]} -> {new_hash[:12]}"

    first = approvals.record_policy_change(old, reason="four eyes is too slow", identity=as_user("alice"))
    assert first.created and not first.change.approved and first.change.approvers == ["alice"]
    assert first.event.details["old_sha256"] == old_hash and first.event.details["new_sha256"] == new_hash
    assert first.event.details["required_approvals"] == 2
    assert "-      medium: 2" in first.event.details["diff"] and "+      medium: 1" in first.event.details["diff"]
    # One person twice is still one approval; the change is not in force
    again = approvals.record_policy_change(old, reason="again", identity=as_user("alice"))
    assert not again.created and again.change.approvers == ["alice"]
    with pytest.raises(PolicyViolation, match=r"^approve refused by approval.policy_pinned: "):
        approvals.approve(name, version, reason="lgtm", identity=as_user("alice"))
    # A role the proposed policy grants counts for nothing: the old policy decides who may change it
    with pytest.raises(PermissionDenied) as info:
        approvals.record_policy_change(old, reason="me too", identity=as_user("mallory"))
    assert str(info.value) == (
        f"policy-change refused by approval.role_required: {subject}: mallory holds no role the replaced policy "
        "allows to change it (allowed: reviewer, release_manager; mallory's roles: none)"
    )
    (denied,) = trail.events(objective=approvals.POLICY_SUBJECT, event_types=["permission_denied"])
    assert denied.actor == "mallory" and denied.reason == str(info.value)
    # A second person: in force, printed with its diff
    monkeypatch.setenv("GOVERN_USER", "dana")
    assert main(["policy-change", "--old", str(old), "--reason", "agreed in the release review"]) == 0
    out = capsys.readouterr().out
    (second,) = [e for e in trail.events(event_types=["policy_changed"]) if e.actor == "dana"]
    assert out.startswith(f"--- approvals.yaml@{old_hash[:12]}\n+++ approvals.yaml@{new_hash[:12]}\n")
    assert out.endswith(
        f"recorded: {subject} approved by dana (event #{second.seq}); 2 of 2 approvals (alice, dana); "
        f"in force since event #{second.seq}: versions held to {old_hash[:12]} are now held to {new_hash[:12]}\n"
    )
    # Now the new policy decides: one approval is enough, and each event names the policy it was decided under
    approve_by(name, version, "alice")
    promoted = approvals.promote(name, version, identity=as_user("dana"))
    assert promoted.created and alias_holder(name) == version
    assert promoted.event.evidence["approvals_policy_sha256"] == new_hash
    # ... and the old policy no longer does
    shutil.copy(old, env / "approvals.yaml")
    with pytest.raises(PolicyViolation) as info:
        approvals.reject(name, version, reason="no", identity=as_user("bob"))
    assert str(info.value).endswith(
        f"(sha256 {new_hash[:12]}, in force since policy change event #{second.seq}); restore that policy, or "
        "record an approved change with `govern policy-change --old FILE`"
    )


def test_a_policy_change_on_the_shipped_policy_needs_authenticated_approvers(env, tmp_path):
    name = new_model()
    register(name)
    old = tmp_path / "old.yaml"
    shutil.copy(env / "approvals.yaml", old)
    path = env / "approvals.yaml"
    path.write_text(one_person_policy(path, "alice"))
    with pytest.raises(PermissionDenied) as info:
        approvals.record_policy_change(old, reason="just me", identity=as_user("alice"))
    assert str(info.value) == (
        f"policy-change refused by approval.policy_change: approvals policy {sha256_file(old)[:12]} -> "
        f"{sha256_file(path)[:12]}: alice is identified locally (GOVERN_USER or the OS user, unverified); a policy "
        "change counts only approvers the pinned MLflow server authenticated"
    )
    assert trail.events(event_types=["policy_changed"]) == []


def test_a_policy_change_names_a_policy_the_trail_holds(env, tmp_path):
    register(new_model())
    stranger = tmp_path / "stranger.yaml"
    stranger.write_text((env / "approvals.yaml").read_text() + "# another policy\n")
    with pytest.raises(ConfigError) as info:
        approvals.record_policy_change(stranger, reason="x", identity=as_user("alice"))
    assert str(info.value) == (
        f"--old {stranger}: sha256 {sha256_file(stranger)[:12]} is no approvals policy the audit trail holds a "
        "version to (none was registered under it, no approved change led to it); give the policy being replaced"
    )
    with pytest.raises(ConfigError) as info:
        approvals.record_policy_change(env / "approvals.yaml", reason="x", identity=as_user("alice"))
    assert str(info.value).startswith(f"--old {env / 'approvals.yaml'}: it is the policy in force (")


def test_the_report_shows_the_policy_of_each_event(env):
    from governance.report.audit import audit_facts

    name = new_model()
    version = register(name)
    approve_by(name, version, "alice")
    facts = audit_facts(
        name, version, risk_tier=None, approvals_policy=env / "approvals.yaml", reward_hashes={}, stage=None
    )["approvals"]
    policy_hash = sha256_file(env / "approvals.yaml")
    decided = {e["action"]: e["policy_sha256"] for e in facts["events"]}
    assert decided["model_registered"] == decided["approved"] == policy_hash
    assert [d["policy_sha256"] for d in facts["decisions"]] == [policy_hash]
    assert facts["policy_pin"]["pinned_sha256"] == policy_hash


def test_attack_registering_under_a_policy_of_ones_own_is_refused_and_registers_nothing(env, tmp_path, monkeypatch):
    """The forged policy may not become a new version's pin: registration is held to the project's pin."""
    first = new_model()
    register(first, risk_tier="high")
    (pin,) = events(first, "model_registered")
    assert pin.evidence["approvals_policy_review"] == "not a git checkout"  # recorded: nobody reviewed this copy
    forged = tmp_path / "mine"
    shutil.copytree(env, forged)
    (forged / "approvals.yaml").write_text(one_person_policy(env / "approvals.yaml", "alice"))
    monkeypatch.setenv("GOVERN_POLICY_DIR", str(forged))
    head = trail.head()
    with pytest.raises(PolicyViolation) as info:
        approvals.require_registration_policy()  # what the register stage asks before it creates a version
    assert str(info.value) == (
        f"register refused by approval.policy_pinned: the approvals policy in force ({forged / 'approvals.yaml'}, "
        f"sha256 {sha256_file(forged / 'approvals.yaml')[:12]}) is not the project's pinned policy (sha256 "
        f"{pin.evidence['approvals_policy_sha256'][:12]}, recorded by {first} v1's registration, event #{pin.seq}); "
        "restore that policy, or record an approved change with `govern policy-change --old FILE`"
    )
    # A new model name does not get a fresh pin either, and record_registration refuses on its own
    second = new_model()
    with pytest.raises(PolicyViolation, match=r"^register refused by approval.policy_pinned: "):
        register(second, risk_tier="high")
    assert trail.head() == head and events(second, "model_registered") == []


def test_attack_a_forged_policy_changed_event_with_its_own_count_decides_nothing(env, tmp_path, monkeypatch):
    """K2: a key holder appends one ``policy_changed`` (``required_approvals: 1``) and promotes on one approval.

    The fold takes the count, the roles and the authentication rule from the replaced policy's text, checked
    against its hash; what an event says about itself (its count, its identity when the policy wants a server's)
    decides nothing.
    """
    name = new_model()
    version = register(name, risk_tier="high")
    old_text = (env / "approvals.yaml").read_text()
    pinned = sha256_file(env / "approvals.yaml")
    forged = one_person_policy(env / "approvals.yaml", "alice")
    (env / "approvals.yaml").write_text(forged)
    new_sha = sha256_file(env / "approvals.yaml")

    def forge(**details) -> None:
        trail.record(
            "policy_changed", actor="alice", role="reviewer",
            subject=trail.Subject(objective=approvals.POLICY_SUBJECT, objective_hash=new_sha), reason="forged",
            evidence={"approvals_policy_sha256": pinned, "new_approvals_policy_sha256": new_sha},
            details={"file": "approvals.yaml", "old_sha256": pinned, "new_sha256": new_sha, "required_approvals": 1,
                     "identity": "mlflow-basic-auth", "identity_server": "http://evil.example:5000", **details},
        )  # fmt: skip

    forge()  # no text of the replaced policy: its count is the event's word only
    forge(old_policy=old_text.replace("min_approvers: 2 ", "min_approvers: 1 "))  # a text that is not the pinned one
    forge(old_policy=old_text)  # the real text: needs 2, authenticated by the pinned server (none is pinned)
    assert [c for c in approvals.policy_trail() if c.approved] == []
    for act in (
        lambda: approve_by(name, version, "alice"),
        lambda: approvals.promote(name, version, identity=as_user("dana")),
    ):
        with pytest.raises(
            PolicyViolation, match="approve refused by approval.policy_pinned|promote refused by approval.policy_pinned"
        ):
            act()
    assert events(name, "approved") == [] and alias_holder(name) is None


def test_raising_a_methods_tier_by_an_approved_change_makes_an_approved_version_need_more(env, tmp_path):
    """Tier by intent (issue 41): the raise is a recorded, approved step, and it re-evaluates approvals held."""
    _local_policy_changes(env)
    local = yaml.safe_load((env / "approvals.yaml").read_text())
    local["rules"]["authenticated_approvals"]["risk_tiers"] = []  # a team on the local store: names count anywhere
    (env / "approvals.yaml").write_text(yaml.safe_dump(local, sort_keys=False))
    name = new_model()
    version = register(name, method="sft")  # medium: two approvals
    approve_by(name, version, "alice", "bob")
    assert approvals.version_state(name, version).status(approvals.load_approvals_policy()) == "approved"
    old = tmp_path / "old.yaml"
    shutil.copy(env / "approvals.yaml", old)
    data = yaml.safe_load(old.read_text())
    data["rules"]["min_approvers"]["min_tier_by_method"]["sft"] = "high"
    (env / "approvals.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    for person in ("alice", "dana"):
        approvals.record_policy_change(old, reason="sft answers customers now", identity=as_user(person))
    state = approvals.version_state(name, version)
    policy = approvals.load_approvals_policy()
    assert (state.tier(policy), state.status(policy)) == ("high", "pending")
    with pytest.raises(PolicyViolation, match=r"2 distinct approval\(s\) \(alice, bob\); risk tier high needs 3"):
        approvals.promote(name, version, identity=as_user("dana"))
    approve_by(name, version, "carol")
    assert approvals.promote(name, version, identity=as_user("dana")).created
