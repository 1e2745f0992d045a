"""``govern withdraw`` (#27): taking the serving version out of service, with nothing to replace it.

End to end on the embedded store (SQLite MLflow, SQLite trail): the
refusals (role first, for withdraw and rollback alike), the incident a
withdrawal answers, the automatic withdrawal ``incidents.withdraw_on`` asks
for, re-promotion only after fresh approvals, and the same story told by
MLflow's aliases and tags, ``govern show``/``history`` and the audit report.
tests/server/test_server_approvals.py repeats the main flow against a
basic-auth server and a PostgreSQL trail.
"""

from __future__ import annotations

import pytest
import yaml
from test_approvals import REPO, alias_holder, approve_by, as_user, events, new_model, register, tags

from governance import approvals, incidents
from governance.cli import main
from governance.errors import ConfigError, PermissionDenied, PolicyViolation
from governance.lineage import sha256_file
from governance.policy.approvals import IncidentsPolicy


def in_production(name: str, *versions: str) -> None:
    """Approve (alice, bob) and promote each version in turn, as dana."""
    for version in versions:
        approve_by(name, version, "alice", "bob")
        approvals.promote(name, version, identity=as_user("dana"))


def report_facts(env, name: str, version: str) -> dict:
    from governance.report.audit import audit_facts

    return audit_facts(
        name, version, risk_tier=None, approvals_policy=env / "approvals.yaml", reward_hashes={}, stage=None
    )["approvals"]


# --------------------------------------------------------------------------- the stop button


def test_withdraw_takes_the_only_production_version_out_of_service(env, monkeypatch, capsys):
    name = new_model()
    version = register(name)
    in_production(name, version)
    approvals.canary(name, version, identity=as_user("dana"))
    # Rollback cannot help: nothing earlier to return to
    with pytest.raises(PolicyViolation, match="has no earlier production version that is still approved"):
        approvals.rollback(name, identity=as_user("dana"))
    monkeypatch.setenv("GOVERN_USER", "dana")
    capsys.readouterr()
    assert main(["withdraw", name, "--reason", "answers leak an e-mail address"]) == 0
    (withdrawn,) = events(name, "withdrawn")
    assert capsys.readouterr().out.splitlines() == [
        f"withdrew {name} v{version} from production and canary by dana (event #{withdrawn.seq}); nothing holds "
        "production or canary now",
        f"{name} v{version} serves again only after fresh approvals (2 needed; those recorded before event "
        f"#{withdrawn.seq} no longer count)",
    ]
    assert (withdrawn.actor, withdrawn.role, withdrawn.subject.version) == ("dana", "release_manager", version)
    assert withdrawn.reason == "answers leak an e-mail address"
    assert withdrawn.details["aliases"] == ["production", "canary"] and withdrawn.details["from_version"] == version
    assert withdrawn.evidence["approvals_policy_sha256"] == sha256_file(env / "approvals.yaml")
    # MLflow: both aliases gone, the tags tell the trail's story
    assert alias_holder(name) is None and alias_holder(name, "canary") is None
    view = tags(name, version)
    assert view[approvals.TAG_APPROVAL_STATUS] == "withdrawn" and view[approvals.TAG_APPROVERS] == ""
    assert view[approvals.TAG_ALIAS_HISTORY].endswith(
        f'{{"alias":"production","change":"removed (withdrawn)","by":"dana","at":"{withdrawn.timestamp}",'
        f'"event":{withdrawn.seq}}},{{"alias":"canary","change":"removed (withdrawn)","by":"dana",'
        f'"at":"{withdrawn.timestamp}","event":{withdrawn.seq}}}]'
    )
    assert view[approvals.TAG_LAST_EVENT].startswith(f"#{withdrawn.seq} withdrawn ")
    assert approvals.find_drift(name) == []
    # A re-run records nothing
    assert main(["withdraw", name]) == 0
    assert capsys.readouterr().out == (
        f"{name} v{version} is already withdrawn (event #{withdrawn.seq}); nothing recorded\n"
    )
    assert len(events(name, "withdrawn")) == 1
    # govern history and govern show
    assert main(["history", name]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.endswith(
        f"production,canary removed from v{version}  withdrawn by dana (release_manager): answers leak an e-mail "
        "address"
    )
    assert main(["show", name, version]) == 0
    shown = capsys.readouterr().out
    line = f"withdrawn on {withdrawn.timestamp[:19]}Z by dana because answers leak an e-mail address"
    assert shown.startswith(f"{name} v{version}: withdrawn (0 of 2 approvals, risk tier medium)\n")
    assert "  aliases:      -\n" in shown and f"  withdrawn:    {line}\n" in shown
    assert "  void:         alice (local, unverified; event #" in shown
    assert "approved before the withdrawal, no longer counts)\n" in shown


def test_a_withdrawn_version_is_promoted_again_only_after_fresh_approvals(env):
    name = new_model()
    v1, v2 = register(name), register(name)
    in_production(name, v1, v2)
    approvals.withdraw(name, reason="refusal rate doubled", identity=as_user("dana"))
    assert alias_holder(name) is None
    # The earlier approvals of v2 no longer count: promote, canary and rollback to it are refused
    for action in (approvals.promote, approvals.canary):
        with pytest.raises(PolicyViolation) as info:
            action(name, v2, identity=as_user("dana"))
        assert str(info.value).endswith(
            f"refused by approval.min_approvers: {name} v{v2}: 0 distinct approval(s) (none); risk tier medium needs 2"
        )
    # Nothing holds production, so rollback has nothing to roll back from; v1 is promoted instead
    with pytest.raises(PolicyViolation, match="has no production version in the audit trail to roll back from"):
        approvals.rollback(name, identity=as_user("dana"))
    assert approvals.default_rollback_target(name) == v1
    assert approvals.promote(name, v1, identity=as_user("dana")).created
    # v2 was withdrawn: never a default rollback target, until fresh approvals bring it back
    assert approvals.model_state(name).rollback_candidates() == []
    approve_by(name, v2, "alice")
    assert approvals.version_state(name, v2).status(approvals.load_approvals_policy()) == "withdrawn"
    approve_by(name, v2, "bob")  # the same reviewers, approving again after the withdrawal
    outcome = approvals.promote(name, v2, identity=as_user("dana"))
    assert outcome.created and alias_holder(name) == v2
    fresh = {e.actor: e.hash for e in events(name, "approved") if e.seq > events(name, "withdrawn")[0].seq}
    assert {k: v for k, v in outcome.event.evidence.items() if k.startswith("approval:")} == {
        f"approval:{actor}": digest for actor, digest in fresh.items()
    }
    assert tags(name, v2)[approvals.TAG_APPROVAL_STATUS] == "approved"


def test_a_standing_rejection_survives_the_withdrawal(env):
    name = new_model()
    version = register(name)
    in_production(name, version)
    approvals.reject(name, version, reason="unsafe answers", identity=as_user("carol"))
    approvals.withdraw(name, identity=as_user("dana"))
    state = approvals.version_state(name, version)
    assert state.rejecters == ["carol"] and state.approvers == [] and sorted(state.voided_approvals) == ["alice", "bob"]
    assert state.status(approvals.load_approvals_policy()) == "rejected"


# --------------------------------------------------------------------------- refusals: the role first


def test_a_reviewer_gets_the_role_refusal_from_withdraw_and_rollback(env, monkeypatch, capsys):
    name = new_model()
    version = register(name)
    in_production(name, version)
    monkeypatch.setenv("GOVERN_USER", "alice")
    capsys.readouterr()
    assert main(["withdraw", name, "--reason", "I saw a bad answer"]) == 1
    assert capsys.readouterr().err == (
        f"govern: withdraw refused by approval.role_required: {name} v{version}: alice holds no role allowed to "
        "withdraw a version from service (allowed: release_manager; alice's roles: reviewer, objective_owner)\n"
    )
    # Rollback has no earlier version to go to: the reviewer still hears about the role, not the target
    assert main(["rollback", name]) == 1
    assert capsys.readouterr().err == (
        f"govern: rollback refused by approval.role_required: {name} v{version}: alice holds no role allowed to "
        "roll back (allowed: release_manager; alice's roles: reviewer, objective_owner)\n"
    )
    # And with nothing in production at all
    other = new_model()
    register(other)
    for argv in (["withdraw", other], ["rollback", other], ["canary-end", other]):
        assert main(argv) == 1
        assert "refused by approval.role_required: " + other + ": alice holds no role" in capsys.readouterr().err
    denials = [(d.details["action"], d.details["rules"]) for d in events(name, "permission_denied")]
    assert denials == [("withdraw", ["approval.role_required"]), ("rollback", ["approval.role_required"])]
    assert alias_holder(name) == version and events(name, "withdrawn") == []


def test_withdraw_with_nothing_serving_is_refused_and_recorded(env):
    name = new_model()
    version = register(name)
    approve_by(name, version, "alice", "bob")
    approvals.canary(name, version, identity=as_user("dana"))
    with pytest.raises(PolicyViolation) as info:
        approvals.withdraw(name, identity=as_user("dana"))
    assert str(info.value) == (
        f"withdraw refused: {name} has no production version in the audit trail to withdraw "
        f"(v{version} holds canary: end it with govern canary-end {name})"
    )
    (denied,) = events(name, "permission_denied")
    assert denied.details["action"] == "withdraw" and denied.reason == str(info.value)
    assert alias_holder(name, "canary") == version


def test_withdraw_under_a_policy_other_than_the_pinned_one_is_refused(env):
    name = new_model()
    version = register(name)
    in_production(name, version)
    path = env / "approvals.yaml"
    path.write_text(path.read_text().replace("  withdraw: [release_manager]", "  withdraw: [reviewer]"))
    with pytest.raises(PolicyViolation, match=r"^withdraw refused by approval.policy_pinned: .* v1: the approvals "):
        approvals.withdraw(name, identity=as_user("alice"))
    assert alias_holder(name) == version and events(name, "withdrawn") == []


# --------------------------------------------------------------------------- incidents


def test_a_high_incident_on_production_prints_the_commands_and_withdraw_answers_it(env, monkeypatch, capsys):
    name = new_model()
    v1, v2 = register(name), register(name)
    in_production(name, v1, v2)
    monkeypatch.setenv("GOVERN_USER", "bob")  # a reviewer raises it
    assert main(["incident", "open", name, v2, "--severity", "high", "--reason", "answers leak e-mail addresses"]) == 0
    (opened,) = events(name, "incident_opened")
    incident = f"INC-{opened.seq}"
    assert capsys.readouterr().out.splitlines() == [
        f"opened {incident} on {name} v{v2} (high): answers leak e-mail addresses",
        f"{name} v{v2} cannot be promoted or canaried until {incident} is closed",
        f"{name} v{v2} holds production; to take it out of service (a release manager):",
        f'  govern withdraw {name} --incident {incident} --reason "..."   # nothing serves production until an '
        "approved version is promoted",
        f'  govern rollback {name} --reason "..."   # production returns to v{v1}, the previous production version '
        "still approved",
    ]
    assert alias_holder(name) == v2  # high: withdraw_on is critical, so a person decides
    # Usage errors name the incident and record nothing
    monkeypatch.setenv("GOVERN_USER", "dana")
    assert main(["withdraw", name, "--incident", "INC-x"]) == 2
    assert capsys.readouterr().err == (
        "govern: 'INC-x' is not an incident id (INC-<number>, as `govern incident list` shows)\n"
    )
    other = new_model()
    register(other)
    assert main(["withdraw", other, "--incident", incident]) == 2
    assert capsys.readouterr().err == f"govern: --incident {incident} is about {name} v{v2}, not {other}\n"
    assert main(["withdraw", name, "--incident", incident, "--reason", "leak confirmed"]) == 0
    (withdrawn,) = events(name, "withdrawn")
    assert capsys.readouterr().out.splitlines() == [
        f"withdrew {name} v{v2} from production by dana (event #{withdrawn.seq}, answering {incident}); nothing "
        "holds production now",
        f"{name} v{v2} serves again only after fresh approvals (2 needed; those recorded before event "
        f"#{withdrawn.seq} no longer count)",
        f"to restore service with the previous production version still approved: govern promote {name} {v1}",
    ]
    assert withdrawn.details["incident"] == incident and withdrawn.evidence["incident_event"] == opened.hash
    assert alias_holder(name) is None
    assert main(["history", name]) == 0
    assert (
        capsys.readouterr()
        .out.splitlines()[-1]
        .endswith(f"withdrawn by dana (release_manager): leak confirmed (answers {incident})")
    )
    (listed,) = incidents.list_incidents(name)
    assert (listed.withdrawn_by, listed.withdrawn_event) == ("dana", withdrawn.seq)
    assert main(["incident", "list", name]) == 0
    assert capsys.readouterr().out.endswith(
        f"answers leak e-mail addresses (v{v2} withdrawn by dana, event #{withdrawn.seq})\n"
    )
    # A closed incident is answered by nothing
    assert main(["incident", "close", incident, "--reason", "template fixed"]) == 0
    capsys.readouterr()
    with pytest.raises(ConfigError, match=rf"^--incident {incident} was closed by dana at "):
        approvals.withdraw(name, incident=incident, identity=as_user("dana"))


def test_a_critical_incident_withdraws_at_once_as_the_policy_says(env, monkeypatch, capsys):
    name = new_model()
    v1, v2 = register(name), register(name)
    in_production(name, v1, v2)
    monkeypatch.setenv("GOVERN_USER", "bob")  # a reviewer: no withdraw role, the policy acts
    argv = ["incident", "open", name, v2, "--severity", "critical", "--reason", "leaks customer e-mail addresses"]
    assert main(argv) == 0
    (opened,) = events(name, "incident_opened")
    (withdrawn,) = events(name, "withdrawn")
    incident = f"INC-{opened.seq}"
    assert capsys.readouterr().out.splitlines() == [
        f"opened {incident} on {name} v{v2} (critical): leaks customer e-mail addresses",
        f"{name} v{v2} cannot be promoted or canaried until {incident} is closed",
        f"withdrew {name} v{v2} at once (incidents.withdraw_on in the approvals policy; event #{withdrawn.seq}): it "
        "serves no alias now and is promoted again only after fresh approvals",
    ]
    assert (withdrawn.actor, withdrawn.role) == ("bob", "automatic: incidents.withdraw_on critical")
    assert withdrawn.details["automatic"] == "incidents.withdraw_on: critical"
    assert withdrawn.details["incident"] == incident and withdrawn.evidence["incident_event"] == opened.hash
    assert withdrawn.reason == (
        f"critical incident {incident} (leaks customer e-mail addresses); incidents.withdraw_on: critical"
    )
    assert alias_holder(name) is None and tags(name, v2)[approvals.TAG_APPROVAL_STATUS] == "withdrawn"
    # The automatic path is no back door: a high incident under withdraw_on: critical is refused, and recorded
    monkeypatch.setenv("GOVERN_USER", "dana")
    approvals.promote(name, v1, identity=as_user("dana"))
    high = incidents.open_incident(name, v1, severity="high", reason="slow", identity=as_user("bob"))
    assert high.withdrawn_event is None and alias_holder(name) == v1
    with pytest.raises(PolicyViolation) as info:
        approvals.withdraw(name, incident=high.id, automatic=True, identity=as_user("bob"))
    assert str(info.value) == (
        f"withdraw refused: {name} v{v1}: incidents.withdraw_on: critical does not withdraw automatically on a high "
        f"incident ({high.id}); a release manager withdraws it with govern withdraw"
    )
    assert events(name, "permission_denied")[-1].reason == str(info.value) and alias_holder(name) == v1


def test_withdraw_on_never_leaves_it_to_a_person_and_high_withdraws_high_ones(env, monkeypatch, capsys):
    path = env / "approvals.yaml"
    path.write_text(path.read_text().replace("  withdraw_on: critical ", "  withdraw_on: never "))
    name = new_model()
    version = register(name)
    in_production(name, version)
    opened = incidents.open_incident(name, version, severity="critical", reason="leak", identity=as_user("bob"))
    assert opened.withdrawn_event is None and alias_holder(name) == version
    assert incidents.response_commands(opened)[1].startswith(f"  govern withdraw {name} --incident {opened.id} ")
    assert len(incidents.response_commands(opened)) == 2  # no earlier version: no rollback line
    policy = approvals.load_approvals_policy()
    assert not policy.incidents.withdraws("critical")
    setting = {"rationale": "r"}
    assert [IncidentsPolicy(withdraw_on="high", **setting).withdraws(s) for s in incidents.SEVERITIES] == [
        False,
        False,
        True,
        True,
    ]
    assert [IncidentsPolicy(withdraw_on="critical", **setting).withdraws(s) for s in incidents.SEVERITIES] == [
        False,
        False,
        False,
        True,
    ]


def test_an_automatic_withdrawal_under_an_unpinned_policy_is_refused_after_the_incident_is_recorded(
    env, monkeypatch, capsys
):
    name = new_model()
    version = register(name)
    in_production(name, version)
    path = env / "approvals.yaml"
    path.write_text(path.read_text().replace("  withdraw_on: critical ", "  withdraw_on: high "))
    monkeypatch.setenv("GOVERN_USER", "bob")
    assert main(["incident", "open", name, version, "--severity", "high", "--reason", "odd answers"]) == 1
    (opened,) = events(name, "incident_opened")
    err = capsys.readouterr().err
    assert err.startswith(
        f"govern: opened INC-{opened.seq} on {name} v{version} (high), but the automatic withdrawal "
        f"(incidents.withdraw_on: high) did not happen: withdraw refused by approval.policy_pinned: {name} "
        f"v{version}: the approvals policy in force ("
    )
    assert err.endswith(
        f"; a release manager withdraws it: govern withdraw {name} --incident INC-{opened.seq} --reason ...\n"
    )
    assert alias_holder(name) == version and events(name, "withdrawn") == []
    assert events(name, "permission_denied")[-1].details["rules"] == ["approval.policy_pinned"]


# --------------------------------------------------------------------------- the report and the policy file


def test_the_report_says_withdrawn_on_by_because_and_agrees_with_mlflow(env):
    from governance.report.verdict import _approvals_check

    name = new_model()
    v1, v2 = register(name), register(name)
    in_production(name, v1, v2)
    opened = incidents.open_incident(name, v2, severity="high", reason="leak", identity=as_user("bob"))
    approvals.withdraw(name, reason="leak confirmed", incident=opened.id, identity=as_user("dana"))
    (withdrawn,) = events(name, "withdrawn")
    line = f"withdrawn on {withdrawn.timestamp[:19]}Z by dana because leak confirmed (answers {opened.id})"
    facts = report_facts(env, name, v2)
    assert facts["status"] == "withdrawn" and facts["approved_by"] == []
    assert facts["voided_approvers"] == ["alice", "bob"]
    assert facts["withdrawals"] == [
        {
            "event": withdrawn.seq,
            "at": withdrawn.timestamp,
            "actor": "dana",
            "aliases": ["production"],
            "incident": opened.id,
            "automatic": None,
            "line": line,
        }
    ]
    assert facts["alias_history"][-1] == {
        "alias": "production",
        "event": "removed (withdrawn)",
        "actor": "dana",
        "at": withdrawn.timestamp,
        "detail": f"event #{withdrawn.seq}: {line}",
    }
    assert facts["rollback_target"] == (
        f"no version holds production since v{v2} was {line}; an approved version is promoted to serve again"
    )
    # The report, MLflow's aliases and MLflow's tags agree: nothing holds production, v2 withdrawn
    assert alias_holder(name) is None and facts["registry"]["drift"] == []
    assert tags(name, v2)[approvals.TAG_APPROVAL_STATUS] == facts["status"]
    check = _approvals_check(type("Facts", (), {"approvals": facts})())
    assert (check.status, check.detail) == (
        "missing",
        f"0 of 2 distinct approval(s) recorded (none); risk tier medium needs 2; {line}: approvals recorded "
        "before it no longer count",
    )


def test_the_report_templates_print_the_withdrawal(env):
    from types import SimpleNamespace

    from governance.report.render import _environment

    name = new_model()
    version = register(name)
    in_production(name, version)
    approvals.withdraw(name, reason="harmful <b>answers</b>", identity=as_user("dana"))
    facts = report_facts(env, name, version)
    source = (REPO / "governance/report/templates/report.md.j2").read_text()
    start = source.index("{% for w in ap.get('withdrawals')")
    block = source[start : source.index("{% endfor %}", start) + len("{% endfor %}")]
    markdown = (
        _environment().from_string("{% set ap = f.approvals %}" + block).render(f=SimpleNamespace(approvals=facts))
    )
    assert "**Withdrawn from service** (`@production`): withdrawn on " in markdown
    assert "by dana because harmful \\<b\\>answers\\</b\\> (audit event #" in markdown
    assert (
        "Approvals recorded before it no longer count (alice, bob): it serves again only after fresh ones." in markdown
    )


def test_the_incidents_setting_is_required_and_checked(env):
    path = env / "approvals.yaml"
    data = yaml.safe_load(path.read_text())
    del data["incidents"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        approvals.load_approvals_policy()
    assert str(info.value) == f"{path}: incidents: required key is missing"
    data["incidents"] = {"withdraw_on": "sometimes", "rationale": "x"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        approvals.load_approvals_policy()
    assert str(info.value).startswith(f"{path}: incidents.withdraw_on: Input should be 'critical', 'high' or 'never'")
    shipped = approvals.load_approvals_policy(REPO / "policies" / "approvals.yaml")
    assert shipped.incidents.withdraw_on == "critical" and shipped.permissions["withdraw"] == ["release_manager"]


def test_withdraw_is_refused_to_a_user_the_policy_does_not_know(env):
    name = new_model()
    register(name)
    with pytest.raises(PermissionDenied) as info:
        approvals.withdraw(name, identity=as_user("mallory"))
    assert str(info.value) == (
        f"withdraw refused by approval.role_required: {name}: mallory holds no role allowed to withdraw a version "
        "from service (allowed: release_manager; mallory's roles: none)"
    )
