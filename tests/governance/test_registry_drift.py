"""The registry reconciled against the trail, and the `govern` defects of issue 15, against real stores.

Each attack of issue 9 that moves MLflow outside ``govern`` (a forged alias,
a forged approval tag, a forged metric tag), re-registers identical weights,
spoofs output through ``--reason``, or acts on a broken trail is scripted
against a real SQLite audit trail and a real SQLite MLflow store, and the exact
message is asserted.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from governance import approvals, registry, trail
from governance.cli import main
from governance.errors import ConfigError, PermissionDenied, PolicyViolation, TrailBroken
from governance.identity import Identity

REPO = Path(__file__).resolve().parents[2]
_names = itertools.count(1)


@pytest.fixture
def env(env, tmp_path):
    """The approvals fixtures (tests/governance/conftest.py); here the trail database path."""
    return tmp_path / "audit.db"


def register(name: str, *, risk_tier: str = "medium", metrics: dict[str, float] | None = None) -> str:
    """A version as the register stage leaves it: run, lineage tags, then the trail record."""
    client = registry.client()
    run = client.create_run(client.get_experiment_by_name("approvals-tests").experiment_id)
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(
        name,
        source=f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags={
            "lineage.trained_by": "trainer",
            "lineage.registered_by": "ci-bot",
            "lineage.risk_tier": risk_tier,
            "lineage.gate_decisions": "passed",
            "lineage.parent_model": "govllm-sft v1",
            "lineage.git_commit": "c0ffee" * 6 + "c0ff",
            **{f"metric.{k}": str(v) for k, v in (metrics or {}).items()},
        },
    ).version
    approvals.record_registration(
        name,
        version,
        actor="ci-bot",
        evidence={"model_sha256": "ab" * 32},
        gate_status="passed",
        eval_status="passed",
        metrics=metrics,
    )
    return str(version)


def user(name: str) -> Identity:
    return Identity(user=name, source="local")


def approve_by(name: str, version: str, *users: str) -> None:
    for who in users:
        approvals.approve(name, version, reason=f"reviewed by {who}", identity=user(who))


def promoted(name: str, **kwargs) -> str:
    version = register(name, **kwargs)
    approve_by(name, version, "alice", "bob")
    approvals.promote(name, version, identity=user("dana"))
    return version


def holder(name: str, alias: str) -> str | None:
    found = registry.version_by_alias(name, alias)
    return None if found is None else str(found.version)


def kinds(name: str) -> list[str]:
    return [e.event_type for e in trail.events(model=name)]


def forge(name: str, version: str) -> None:
    """What anyone with MLflow write access can do with the plain client."""
    client = registry.client()
    client.set_registered_model_alias(name, "production", version)
    client.set_model_version_tag(name, version, "governance.approval_status", "approved")


# --------------------------------------------------------------------------- forged alias and approval tag


def test_forged_alias_and_approval_tag_are_drift_shown_and_repaired(env, capsys):
    name = f"govllm-drift-{next(_names)}"
    version = register(name)
    forge(name, version)
    capsys.readouterr()
    # audit verify: the chain is intact, the registry is not
    assert main(["audit", "verify"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"govern: registry drift: {name} v{version}: alias production: registry says v{version}, trail says no "
        f"version (repair: govern reconcile {name})",
        f"govern: registry drift: {name} v{version}: tag governance.approval_status: registry says approved, "
        f"trail says pending (repair: govern reconcile {name})",
    ]
    # models and show: the trail's state, with a visible warning
    assert main(["models", name]) == 0
    captured = capsys.readouterr()
    row = captured.out.splitlines()[1].split()
    assert row[:3] == [name, version, "pending"] and "production" not in captured.out
    assert captured.err.splitlines()[0] == (
        "warning: MLflow disagrees with the audit trail in 2 place(s); shown above is the trail's state "
        "(repair: govern reconcile)"
    )
    assert main(["show", name, version]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"{name} v{version}: pending (0 of 2 approvals, risk tier medium)\n  aliases:      -\n")
    assert (
        f"  warning: MLflow disagrees with the audit trail ({name} v{version}: alias production: registry says "
        f"v{version}, trail says no version); shown above is the trail's state; repair: govern reconcile {name}"
    ) in shown
    # reconcile: alias removed, tag rewritten, the repair recorded
    assert main(["reconcile", name]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"reconciled {name}: 2 value(s) restored from the audit trail (event #")
    assert holder(name, "production") is None
    assert registry.get_version(name, version).tags["governance.approval_status"] == "pending"
    repaired = trail.events(model=name, event_types=["registry_reconciled"])[-1]
    assert [(d["item"], d["registry"], d["trail"]) for d in repaired.details["repaired"]] == [
        ("alias production", f"v{version}", "no version"),
        ("tag governance.approval_status", "approved", "pending"),
    ]
    assert main(["audit", "verify"]) == 0
    assert "drift: none" in capsys.readouterr().out
    assert main(["reconcile", name]) == 0
    assert capsys.readouterr().out == f"{name}: MLflow matches the audit trail; nothing recorded\n"


def test_attack_a_lineage_tag_edited_after_registration_is_drift_and_reconcile_restores_it(env, capsys):
    # The registration froze the tier and the people from these tags; approvals go by the frozen values, so a
    # tag lowered or renamed afterwards in MLflow (the UI, the plain client) is drift, not a new fact
    name = f"govllm-drift-{next(_names)}"
    version = register(name, risk_tier="high")
    client = registry.client()
    client.set_model_version_tag(name, version, "lineage.risk_tier", "low")
    client.set_model_version_tag(name, version, "lineage.trained_by", "mallory")
    client.set_model_version_tag(name, version, "lineage.parent_model", "a reviewed model v9")
    capsys.readouterr()
    assert [d.line() for d in approvals.find_drift(name)] == [
        f"{name} v{version}: tag lineage.trained_by: registry says mallory, trail says trainer",
        f"{name} v{version}: tag lineage.parent_model: registry says a reviewed model v9, trail says govllm-sft v1",
        f"{name} v{version}: tag lineage.risk_tier: registry says low, trail says high",
    ]
    assert main(["models", name, "--json"]) == 0  # the table states what the registration froze
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["parent"], row["git_commit"]) == ("govllm-sft v1", "c0ffeec0ff")
    assert main(["show", name, version]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"{name} v{version}: pending (0 of 3 approvals, risk tier high)\n")
    assert "tag lineage.risk_tier: registry says low, trail says high); shown above is the trail's state" in shown
    assert main(["reconcile", name]) == 0
    assert capsys.readouterr().out.startswith(f"reconciled {name}: 3 value(s) restored from the audit trail")
    restored = registry.get_version(name, version).tags
    assert (restored["lineage.risk_tier"], restored["lineage.trained_by"]) == ("high", "trainer")
    assert restored["lineage.parent_model"] == "govllm-sft v1"
    assert approvals.find_drift(name) == []


def test_attack_reconcile_under_an_edited_approvals_policy_writes_nothing(env, capsys):
    """R5: one approval recorded (the medium tier needs two), then the tier lowered to one in the working copy of
    policies/approvals.yaml and ``govern reconcile`` run: before, the repair computed the trail's state under that
    copy and wrote ``governance.approval_status=approved`` to MLflow, which no action treats as approved. Reconcile,
    like registration, now runs only under the project's pinned approvals policy."""
    name = f"govllm-drift-{next(_names)}"
    version = register(name)
    approvals.approve(name, version, reason="reviewed", identity=Identity(user="alice", source="local"))
    assert registry.get_version(name, version).tags["governance.approval_status"] == "pending"
    path = Path(os.environ["GOVERN_POLICY_DIR"]) / "approvals.yaml"
    path.write_text(path.read_text().replace("      medium: 2  ", "      medium: 1  ", 1))
    assert main(["reconcile", name]) == 1
    assert capsys.readouterr().err.startswith(
        f"govern: reconcile refused by approval.policy_pinned: the approvals policy in force ({path}, sha256 "
    )
    assert registry.get_version(name, version).tags["governance.approval_status"] == "pending"
    assert trail.events(model=name, event_types=["registry_reconciled"]) == []


def test_attack_list_and_show_state_no_status_under_an_edited_approvals_policy(env, capsys):
    """S1: the same edit as R5 (the medium tier lowered to one approval in the working copy). Before, ``govern models``
    and ``govern show`` stated the version ``approved`` (1 of 1) and reported MLflow's ``pending`` as drift to
    repair, though no action would treat it as approved. They now state the status only under the policy the trail
    pins for the version, and otherwise say why not; the registry's tag is not called drift."""
    name = f"govllm-drift-{next(_names)}"
    version = register(name)
    approvals.approve(name, version, reason="reviewed", identity=Identity(user="alice", source="local"))
    path = Path(os.environ["GOVERN_POLICY_DIR"]) / "approvals.yaml"
    path.write_text(path.read_text().replace("      medium: 2  ", "      medium: 1  ", 1))
    assert main(["models", name]) == 0
    out, err = capsys.readouterr()
    (row,) = [line for line in out.splitlines() if line.startswith(name)]
    assert row.split()[2] == "not-stated" and "approved" not in out
    assert "approval_status" not in err
    assert f"{name} v{version}: status not stated: the approvals policy in force ({path}, sha256 " in err
    assert main(["show", name, version]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{name} v{version}: status not stated (risk tier medium)\n")
    required = "the number required is not stated: the approvals policy in force ("
    assert f"  approvals:    1 recorded (alice); {required}" in out
    assert "approval_status" not in out + err
    assert main(["show", name, version, "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["status"] == "not-stated" and facts["approvals_required"] is None
    assert facts["policy_not_pinned"].startswith("the approvals policy in force (")
    path.write_text(path.read_text().replace("      medium: 1  ", "      medium: 2  ", 1))
    assert main(["show", name, version]) == 0
    assert capsys.readouterr().out.startswith(f"{name} v{version}: pending (1 of 2 approvals, risk tier medium)\n")


def test_next_deployment_removes_a_forged_alias_and_records_it(env):
    name = f"govllm-drift-{next(_names)}"
    version = register(name)
    approve_by(name, version, "alice", "bob")
    forge(name, version)  # production forged onto the approved version before anyone promoted it
    approvals.canary(name, version, identity=user("dana"))
    assert holder(name, "production") is None and holder(name, "canary") == version
    assert kinds(name)[-2:] == ["registry_reconciled", "canary_started"]
    assert approvals.find_drift(name) == []


def test_trail_head_is_anchored_on_the_model_after_each_append(env, capsys):
    name = f"govllm-drift-{next(_names)}"
    version = register(name)
    approvals.approve(name, version, reason="ok", identity=user("alice"))
    tag = registry.client().get_registered_model(name).tags[approvals.TAG_TRAIL_HEAD]
    assert tag == trail.Anchor.of(trail.head()).encode()
    anchors, unreadable = approvals.registry_anchors(name)
    assert [a.seq for a in anchors] == [trail.head().seq] and unreadable == []


# --------------------------------------------------------------------------- never act on a broken trail


def test_a_broken_trail_refuses_every_action_and_appends_nothing(env, capsys):
    name = f"govllm-drift-{next(_names)}"
    version = register(name)
    approve_by(name, version, "alice")
    conn = sqlite3.connect(env)
    conn.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    # the newest event: older ones are covered by the signed verified checkpoint, which
    # only the full `govern audit verify` re-reads (tests/governance/test_trail_verified.py)
    conn.execute("UPDATE audit_events SET reason = 'edited' WHERE seq = (SELECT max(seq) FROM audit_events)")
    conn.commit()
    conn.close()
    count = len(trail.events())
    with pytest.raises(TrailBroken) as info:
        approvals.approve(name, version, reason="second look", identity=user("bob"))
    assert str(info.value).startswith(
        f"refusing to act on a broken audit trail: event #{count} (approved {name} v{version} by alice): stored "
        "content does not match its hash; it was edited"
    )
    for act in (
        lambda: approvals.promote(name, version, identity=user("dana")),
        lambda: approvals.rollback(name, identity=user("dana")),
        lambda: approvals.canary_end(name, identity=user("dana")),
    ):
        with pytest.raises(TrailBroken):
            act()
    capsys.readouterr()
    assert main(["reject", name, version, "--reason", "no"]) == 1
    assert capsys.readouterr().err.startswith(f"govern: refusing to act on a broken audit trail: event #{count} (")
    assert len(trail.events()) == count


# --------------------------------------------------------------------------- evaluation reference


def test_regression_reference_comes_from_the_trail_not_a_forged_metric_tag(env):
    name = f"govllm-drift-{next(_names)}"
    assert approvals.production_metrics(name) is None
    version = promoted(name, metrics={"eval_loss": 1.5, "accuracy": 0.75})
    registry.client().set_model_version_tag(name, version, "metric.eval_loss", "999")
    assert approvals.production_metrics(name) == {"accuracy": 0.75, "eval_loss": 1.5}
    event = trail.events(model=name, event_types=["eval_decision"])[-1]
    assert event.details["metrics"] == {"accuracy": 0.75, "eval_loss": 1.5}
    assert set(event.evidence) == {"model_sha256", "metrics_sha256"}


def test_a_production_version_without_recorded_metrics_is_refused_as_a_reference(env):
    name = f"govllm-drift-{next(_names)}"
    version = promoted(name)
    with pytest.raises(ConfigError) as info:
        approvals.production_metrics(name)
    assert str(info.value) == (
        f"{name} v{version} holds production but the audit trail records no evaluation metrics for it "
        "(no eval_decision event with metrics); re-register it through the register stage"
    )


# --------------------------------------------------------------------------- identity and output hygiene


def test_high_tier_refuses_a_local_approval_and_show_names_the_identity(env, capsys):
    name = f"govllm-drift-{next(_names)}"
    version = register(name, risk_tier="high")
    with pytest.raises(PermissionDenied) as info:
        approvals.approve(name, version, reason="lgtm", identity=user("alice"))
    assert str(info.value) == (
        f"approve refused by approval.authenticated: {name} v{version}: alice is identified locally (GOVERN_USER "
        "or the OS user, unverified); risk tier high accepts only approvals authenticated by the MLflow server "
        "(MLFLOW_TRACKING_USERNAME/PASSWORD, basic-auth server)"
    )
    assert kinds(name)[-1] == "permission_denied"


@pytest.mark.parametrize(
    ("reason", "code", "position"),
    [("ok\n#99 2026-01-01T00:00:00Z approved by dana", "000A", 3), ("fine\x1b[2Kthen", "001B", 5)],
)
def test_control_characters_in_reason_are_refused_at_input(env, capsys, reason, code, position):
    name = f"govllm-drift-{next(_names)}"
    version = register(name)
    count = len(trail.events())
    capsys.readouterr()
    assert main(["approve", name, version, "--reason", reason]) == 2
    assert capsys.readouterr().err == (
        f"govern: --reason: control character U+{code} at position {position} is not allowed; "
        "write the reason as one line of plain text\n"
    )
    assert len(trail.events()) == count


# --------------------------------------------------------------------------- issue 15 defects


def test_canary_end_and_rollback_take_the_canary_away(env, capsys, monkeypatch):
    name = f"govllm-drift-{next(_names)}"
    v1 = promoted(name)
    v2 = register(name)
    approve_by(name, v2, "alice", "bob", "carol")
    monkeypatch.setenv("GOVERN_USER", "dana")
    assert main(["canary", name, v2]) == 0
    assert holder(name, "canary") == v2
    capsys.readouterr()
    assert main(["canary-end", name]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"canary of {name} ended: v{v2} no longer holds it, by dana (event #")
    assert holder(name, "canary") is None
    assert main(["canary-end", name]) == 1
    assert capsys.readouterr().err == f"govern: canary-end refused: {name} has no canary in the audit trail to end\n"
    # a version rolled back from loses its canary too
    approvals.canary(name, v2, identity=user("dana"))
    approvals.promote(name, v2, identity=user("dana"))
    capsys.readouterr()
    assert main(["rollback", name]) == 0
    assert capsys.readouterr().out.splitlines()[1] == f"canary of {name} ended with it: v{v2} no longer holds it"
    assert holder(name, "production") == v1 and holder(name, "canary") is None
    assert approvals.model_state(name).alias_holders() == {"production": v1, "canary": None}
    assert approvals.find_drift(name) == []


def test_approval_count_past_the_requirement_and_version_01(env, capsys, monkeypatch):
    name = f"govllm-drift-{next(_names)}"
    version = register(name)
    approve_by(name, version, "alice", "bob")
    monkeypatch.setenv("GOVERN_USER", "carol")
    capsys.readouterr()
    assert main(["approve", name, f"0{version}", "--reason", "third pair of eyes"]) == 0
    assert capsys.readouterr().out.startswith(f"approved {name} v{version} as reviewer (event #")
    assert approvals.model_state(name).version(version).approvers == ["alice", "bob", "carol"]
    assert main(["show", name, f"0{version}"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"{name} v{version}: approved (3 approvals, 2 required, risk tier medium)")
    assert main(["show", name, "v1"]) == 2
    assert capsys.readouterr().err == "govern: version 'v1' is not a version number (1, 2, 3, …)\n"


def test_rollback_of_a_model_that_does_not_exist_records_nothing(env, capsys, monkeypatch):
    count = len(trail.events())
    with pytest.raises(ConfigError) as info:
        approvals.rollback("govllm-no-such-model", identity=user("dana"))
    assert str(info.value) == f"no registered model named 'govllm-no-such-model' at {registry.tracking_uri()}"
    assert info.value.exit_code == 2
    assert len(trail.events()) == count


def test_rollback_with_no_production_is_refused(env):
    name = f"govllm-drift-{next(_names)}"
    register(name)
    with pytest.raises(PolicyViolation) as info:
        approvals.rollback(name, identity=user("dana"))
    assert str(info.value) == (
        f"rollback refused: {name} has no production version in the audit trail to roll back from"
    )


def test_output_into_a_closed_pipe_ends_quietly(env, monkeypatch, capsys):
    """``govern history NAME | head`` where head has gone: exit 141, no traceback, nothing on stderr."""
    name = f"govllm-drift-{next(_names)}"
    read_end, write_end = os.pipe()
    os.close(read_end)
    saved = os.dup(1)
    try:
        with open(write_end, "w", buffering=1) as pipe:
            monkeypatch.setattr(sys, "stdout", pipe)
            assert main(["history", name]) == 141
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    assert capsys.readouterr().err == ""


def test_attack_an_evaluation_judged_under_another_project_name_is_not_registered(env):
    """P3: ``-S project=scratch`` for the evaluate stage (no production there: every regression rule is "not
    applicable"), then the real project name for register: the version registered with its regression against
    production never judged. Registration now requires the production the evaluation compared with to be the
    registered name's production now (the decision's signed ``details.production`` against the trail)."""
    from governance.gates import decide
    from pipelines.register import require_production_compared

    name = f"govllm-drift-{next(_names)}"
    promoted(name, metrics={"eval_loss": 1.25})

    def evaluated(production: dict) -> object:
        details = {"method": "sft", "production": production}
        return decide(gate="eval", stage="evaluate_sft", datasets=[], policy_path="policies/eval.yaml",
                      policy_version="2.1", violations=[], details=details)  # fmt: skip

    with pytest.raises(PolicyViolation) as refused:
        require_production_compared(name, evaluated({}), "artifacts/evaluate_sft", "ef" * 32)
    assert str(refused.value) == (
        f"artifacts/evaluate_sft/decision.json: the evaluation's regression rules compared the model with no "
        f"production version, but {name} has one in production now: they were judged against another baseline "
        "(another project name, or production moved since); re-run the evaluate stage under this project: dvc repro"
    )
    require_production_compared(
        name, evaluated(approvals.production_metrics(name)), "artifacts/evaluate_sft", "ef" * 32
    )
    # The production version's own weights registered again: it is its own baseline
    require_production_compared(name, evaluated({}), "artifacts/evaluate_sft", "ab" * 32)
    with pytest.raises(PolicyViolation, match="compared the model with other production metrics than those of"):
        require_production_compared(name, evaluated({"eval_loss": 2.0}), "artifacts/evaluate_sft", "ef" * 32)
