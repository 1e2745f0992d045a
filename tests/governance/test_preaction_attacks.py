"""Attacks on what a governed action decides from (issue 38): T1/T2, I1, and ``--out`` paths.

Against a real SQLite trail with the embedded default key and a real MLflow
store (the approvals fixtures of conftest.py and test_approvals.py). The
trail attacks replay what someone with write access to ``audit.db`` can do:
drop the append-only triggers, edit (or delete) an event the verified
checkpoint already covers, take the action, then restore the row. The check
before an action trusts events before its checkpoint through its head alone
(``require_intact`` still passes, as each test shows); the events the
decision reads are verified one by one when it reads them, and the action is
refused naming the event, what is wrong, and ``govern audit verify``.
"""

from __future__ import annotations

import errno
import json
import sqlite3
from pathlib import Path

import pytest
from test_approvals import alias_holder, approve_by, as_user, events, new_model, register

from governance import approvals, incidents, trail
from governance.cli import main
from governance.errors import PermissionDenied, PolicyViolation, TrailBroken
from governance.trail import row_hash
from governance.trail.verified import record_path

# --------------------------------------------------------------------------- helpers


def audit_db() -> Path:
    return Path(trail.open_trail().url.removeprefix("sqlite:///"))


def stored_row(seq: int) -> dict:
    conn = sqlite3.connect(audit_db())
    conn.row_factory = sqlite3.Row
    row = dict(conn.execute("SELECT * FROM audit_events WHERE seq = ?", (seq,)).fetchone())
    conn.close()
    return row


def tamper(statement: str, params: tuple = ()) -> None:
    """What an administrator of the database can do: drop the append-only triggers, then write."""
    conn = sqlite3.connect(audit_db())
    conn.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    conn.execute(statement, params)
    conn.commit()
    conn.close()


def rewrite(row: dict) -> None:
    """Put ``row`` back as stored (the attacker restoring what they edited)."""
    columns = [c for c in row if c != "seq"]
    tamper(
        f"UPDATE audit_events SET {', '.join(f'{c} = ?' for c in columns)} WHERE seq = ?",
        (*[row[c] for c in columns], row["seq"]),
    )


def checkpoint_at_head() -> int:
    """The check before an action, run now: its signed verified checkpoint covers every event so far."""
    trail.require_intact()
    head = trail.head().seq
    assert json.loads(record_path(trail.open_trail().files.checkpoint).read_text())["events"] == head
    return head


def still_trusted_by_the_checkpoint(head: int) -> None:
    """The premise of the attack: the check before an action reads only from the checkpoint on, and passes."""
    result = trail.require_intact()
    assert result.ok and result.verified_from == head


def refusal(action: str, finding: str) -> str:
    return f"refusing to act on a broken audit trail: {action} reads {finding}; see `govern audit verify`"


def edit_details(seq: int, **changes: str) -> None:
    """Change fields of an event's ``details`` in place, its hash and signature left as they were."""
    details = {**json.loads(stored_row(seq)["details"]), **changes}
    tamper("UPDATE audit_events SET details = ? WHERE seq = ?", (trail.canonical_json(details), seq))


def describe(event: trail.Event, *, actor: str | None = None) -> str:
    subject = f"{event.subject.model} v{event.subject.version}"
    return f"event #{event.seq} ({event.event_type} {subject} by {actor or event.actor})"


# --------------------------------------------------------------------------- T1: gate events edited


def test_t1_failed_gate_events_edited_before_the_checkpoint_refuse_the_approval(env, capsys, monkeypatch):
    name = new_model()
    version = register(name, gate_status="failed")
    registered, gated = events(name, "model_registered")[0], events(name, "gate_decision")[0]
    head = checkpoint_at_head()
    originals = [stored_row(registered.seq), stored_row(gated.seq)]
    # The attack: both gate facts turned to "passed" in place (hashes left as they were)
    edit_details(registered.seq, gate_status="passed")
    edit_details(gated.seq, status="passed")
    assert approvals.version_state(name, version).gate_status == "passed"  # what the decision would believe
    still_trusted_by_the_checkpoint(head)
    with pytest.raises(TrailBroken) as info:
        approvals.approve(name, version, reason="gates look fine", identity=as_user("alice"))
    assert str(info.value) == refusal(
        "approve",
        f"{describe(registered)}: stored content does not match its hash; it was edited (and 1 more)",
    )
    # The same refusal on the command line: one line, exit 1, nothing recorded
    monkeypatch.setenv("GOVERN_USER", "alice")
    assert main(["approve", name, version, "--reason", "gates look fine"]) == 1
    assert capsys.readouterr().err == f"govern: {info.value}\n"
    assert events(name, "approved") == [] and events(name, "permission_denied") == []
    # Restored, the trail verifies again, and the approval meets the failed gate it always had
    for row in originals:
        rewrite(row)
    assert trail.verify().ok
    with pytest.raises(PolicyViolation, match=r"^approve refused by approval\.gates_passed: "):
        approvals.approve(name, version, reason="gates look fine", identity=as_user("alice"))


# --------------------------------------------------------------------------- T2: an approval relabelled


def _rejected_but_approved(name: str) -> tuple[str, trail.Event]:
    """carol rejects, then alice and bob approve: the rejection stands, so promotion is refused."""
    version = register(name)
    approvals.reject(name, version, reason="answers leak internal hostnames", identity=as_user("carol"))
    approve_by(name, version, "alice", "bob")
    (rejection,) = events(name, "rejected")
    return version, rejection


def test_t2_a_rejection_relabelled_to_another_reviewer_and_rehashed_refuses_the_promotion(env):
    name = new_model()
    version, rejection = _rejected_but_approved(name)
    head = checkpoint_at_head()
    original = stored_row(rejection.seq)
    # The attack: carol's rejection relabelled as alice's (her later approval then supersedes it), and
    # re-hashed so that its hash matches the edited content; the attacker holds no trail key to re-sign it
    forged = {**original, "actor": "alice"}
    forged["hash"] = row_hash(forged)
    rewrite(forged)
    assert approvals.version_state(name, version).rejecters == []  # what the decision would believe
    still_trusted_by_the_checkpoint(head)
    key_id = original["key_id"]
    with pytest.raises(TrailBroken) as info:
        approvals.promote(name, version, identity=as_user("dana"))
    assert str(info.value) == refusal(
        "promote",
        f"{describe(rejection, actor='alice')}: signature does not verify under key {key_id}; the event was forged "
        "or re-hashed after an edit (and 1 more)",  # alice's approval after it no longer links to it
    )
    assert events(name, "promoted") == [] and alias_holder(name) is None
    # Restored: carol's rejection is what the decision reads again
    rewrite(original)
    with pytest.raises(PolicyViolation, match=r"^promote refused by approval\.no_open_rejection: "):
        approvals.promote(name, version, identity=as_user("dana"))


def test_t2_a_relabelled_rejection_not_rehashed_and_a_deleted_one_are_refused_too(env):
    name = new_model()
    version, rejection = _rejected_but_approved(name)
    head = checkpoint_at_head()
    original = stored_row(rejection.seq)
    tamper("UPDATE audit_events SET actor = 'alice' WHERE seq = ?", (rejection.seq,))
    still_trusted_by_the_checkpoint(head)
    with pytest.raises(TrailBroken) as info:
        approvals.promote(name, version, identity=as_user("dana"))
    assert str(info.value) == refusal(
        "promote", f"{describe(rejection, actor='alice')}: stored content does not match its hash; it was edited"
    )
    rewrite(original)
    # Deleted outright (to be inserted again afterwards): no event of the decision names it, the hole does
    tamper("DELETE FROM audit_events WHERE seq = ?", (rejection.seq,))
    with pytest.raises(TrailBroken) as info:
        approvals.promote(name, version, identity=as_user("dana"))
    assert str(info.value) == (
        f"refusing to act on a broken audit trail: event #{rejection.seq} is missing (it holds {head - 1} events, "
        f"the last #{head}); an event was deleted; see `govern audit verify`"
    )
    assert events(name, "promoted") == [] and alias_holder(name) is None


def test_an_edited_incident_is_refused_when_a_rollback_reads_it(env):
    name = new_model()
    v1, v2 = register(name), register(name)
    for version in (v1, v2):
        approve_by(name, version, "alice", "bob")
        approvals.promote(name, version, identity=as_user("dana"))
    opened = incidents.open_incident(name, v1, severity="critical", reason="leaks e-mail", identity=as_user("bob"))
    (event,) = events(name, "incident_opened")
    register(name)  # the trail goes on: the incident lies before the checkpoint's head
    head = checkpoint_at_head()
    edit_details(event.seq, severity="low")
    still_trusted_by_the_checkpoint(head)
    with pytest.raises(TrailBroken) as info:
        approvals.rollback(name, to=v1, identity=as_user("dana"))
    assert str(info.value) == refusal(
        "rollback", f"{describe(event)}: stored content does not match its hash; it was edited"
    )
    assert alias_holder(name) == v2 and opened.id == f"INC-{event.seq}"


def test_an_old_event_no_decision_reads_is_left_to_the_full_verify(env):
    name = new_model()
    version = register(name)
    with pytest.raises(PermissionDenied):
        approvals.approve(name, version, reason="mine", identity=as_user("mallory"))
    (denied,) = events(name, "permission_denied")
    approve_by(name, version, "alice", "bob")
    checkpoint_at_head()
    # A refusal decides nothing: editing it does not stop the promotion (the scheduled full verify finds it)
    tamper("UPDATE audit_events SET reason = 'forged' WHERE seq = ?", (denied.seq,))
    assert approvals.promote(name, version, identity=as_user("dana")).created and alias_holder(name) == version
    assert trail.verify().problem == (f"{describe(denied)}: stored content does not match its hash; it was edited")


def test_events_signed_before_and_after_a_key_rotation_verify_under_the_key_of_their_time(env):
    name = new_model()
    version = register(name)
    approve_by(name, version, "alice")
    rotation, new_key = trail.rotate_key(actor="dana", reason="yearly rotation")
    approve_by(name, version, "bob")
    old, new = events(name, "approved")
    assert (old.key_id, new.key_id) == (rotation.key_id, new_key.key_id) and old.key_id != new.key_id
    checkpoint_at_head()
    assert approvals.promote(name, version, identity=as_user("dana")).created and alias_holder(name) == version


# --------------------------------------------------------------------------- I1: rollback to a version with an incident


def test_i1_rollback_to_a_version_with_an_open_critical_incident_is_refused(env, capsys, monkeypatch):
    name = new_model()
    v1, v2 = register(name), register(name)
    for version in (v1, v2):
        approve_by(name, version, "alice", "bob")
        approvals.promote(name, version, identity=as_user("dana"))
    # v1 no longer serves: opening a critical incident on it withdraws nothing
    opened = incidents.open_incident(name, v1, severity="critical", reason="leaks e-mail", identity=as_user("bob"))
    assert opened.withdrawn_event is None and alias_holder(name) == v2
    message = (
        f"rollback refused by incident.open_high: {name} v{v1}: open incident {opened.id} (critical, opened by bob "
        f"at {opened.opened_at[:19]}Z); close it first (govern incident close {opened.id} --reason ...)"
    )
    monkeypatch.setenv("GOVERN_USER", "dana")
    assert main(["rollback", name, "--to", v1, "--reason", "v2 regressed"]) == 1
    assert capsys.readouterr().err == f"govern: {message}\n"
    # the default target (the previous production version, v1) is refused alike
    with pytest.raises(PolicyViolation) as info:
        approvals.rollback(name, identity=as_user("dana"))
    assert str(info.value) == message
    assert alias_holder(name) == v2 and events(name, "rolled_back") == []
    denials = events(name, "permission_denied")
    assert [(d.actor, d.details["action"], d.details["rules"]) for d in denials] == [
        ("dana", "rollback", ["incident.open_high"]),
        ("dana", "rollback", ["incident.open_high"]),
    ]
    # Closed by a release manager, the rollback goes through
    incidents.close_incident(opened.id, reason="template fixed", identity=as_user("dana"))
    assert approvals.rollback(name, to=v1, reason="v2 regressed", identity=as_user("dana")).created
    assert alias_holder(name) == v1


def test_i2_closing_an_incident_under_a_role_one_gave_oneself_is_refused(env, capsys, monkeypatch):
    """I2: bob (a reviewer) adds himself to release_manager in the working copy of ``approvals.yaml`` and closes the
    critical incident that blocks v1, so v1 can serve again. Before, the incident's role check read the working copy;
    it is now decided, like every version action, by the policy the trail pins for the version."""
    name = new_model()
    v1 = register(name)
    opened = incidents.open_incident(name, v1, severity="critical", reason="leaks e-mail", identity=as_user("bob"))
    path = env / "approvals.yaml"
    path.write_text(path.read_text().replace("release_manager: [dana]", "release_manager: [dana, bob]"))
    monkeypatch.setenv("GOVERN_USER", "bob")
    assert main(["incident", "close", opened.id, "--reason", "fine now"]) == 1
    assert capsys.readouterr().err.startswith(
        f"govern: close_incident refused by approval.policy_pinned: {name} v{v1}: the approvals policy in force ("
    )
    assert [i.is_open for i in incidents.list_incidents(name) if i.id == opened.id] == [True]
    assert events(name, "permission_denied")[-1].details["rules"] == ["approval.policy_pinned"]


def test_a_high_incident_on_production_never_suggests_rolling_back_to_a_blocked_version(env):
    name = new_model()
    v1, v2 = register(name), register(name)
    for version in (v1, v2):
        approve_by(name, version, "alice", "bob")
        approvals.promote(name, version, identity=as_user("dana"))
    incidents.open_incident(name, v1, severity="high", reason="slow answers", identity=as_user("bob"))
    on_v2 = incidents.open_incident(name, v2, severity="high", reason="leaks hostnames", identity=as_user("bob"))
    lines = incidents.response_commands(on_v2)
    assert lines[1].startswith(f"  govern withdraw {name} --incident {on_v2.id}")
    assert not any("govern rollback" in line for line in lines)


# --------------------------------------------------------------------------- govern report --out


@pytest.mark.parametrize(
    ("out", "reason"),
    [
        ("/proc/x", "/proc is the kernel's process filesystem, not a folder on disk"),
        ("/proc/self/x", "/proc is the kernel's process filesystem, not a folder on disk"),
        ("/sys/kernel/x", "/sys is the kernel's device filesystem, not a folder on disk"),
        ("/dev/null", "/dev is the device filesystem, not a folder on disk"),
    ],
)
def test_report_out_on_a_kernel_filesystem_is_one_line(out, reason, capsys):
    assert main(["report", "govllm-sft", "1", "--out", out]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"govern: --out {out}: {reason}; give a folder on disk\n"


def test_report_out_that_is_a_file_or_under_one_is_one_line_and_creates_nothing(tmp_path, capsys):
    afile = tmp_path / "report.html"
    afile.write_text("not a folder\n")
    assert main(["report", "govllm-sft", "1", "--out", str(afile)]) == 2
    assert capsys.readouterr().err == f"govern: --out {afile}: is a file, not a folder; give a folder\n"
    under = afile / "reports"
    assert main(["report", "govllm-sft", "1", "--out", str(under)]) == 2
    assert capsys.readouterr().err == (
        f"govern: --out {under}: cannot be created: {afile} is a file, not a folder; give a folder\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_report_out_in_a_read_only_folder_is_one_line(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real_open = __import__("os").open

    def refuse_writes(path, flags, *args, **kwargs):  # what a read-only mount answers (tests may run as root)
        if str(path).startswith(str(locked)) and flags & (__import__("os").O_WRONLY | __import__("os").O_RDWR):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr("os.open", refuse_writes)
    assert main(["report", "govllm-sft", "1", "--out", str(locked / "out")]) == 2
    assert capsys.readouterr().err == (
        f"govern: --out {locked / 'out'}: cannot be written: {locked} is not writable (Permission denied); "
        "give a folder you may write to\n"
    )
    assert list(locked.iterdir()) == []


def test_a_report_that_fails_half_way_leaves_nothing_and_keeps_the_earlier_one(tmp_path, capsys, monkeypatch):
    from governance import report

    out = tmp_path / "out"
    earlier = out / "govllm-sft" / "v1"
    earlier.mkdir(parents=True)
    (earlier / "report.html").write_text("earlier\n")

    def full_disk_half_way(name, version, out_dir, **kwargs):
        (Path(out_dir) / "report.html").write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device", str(Path(out_dir) / "report.md"))

    monkeypatch.setattr(report, "build_report", full_disk_half_way)
    assert main(["report", "govllm-sft", "1", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"govern: --out {out}: writing the report to {earlier} failed (No space left on device); nothing of it "
        "was left behind\n"
    )
    assert [p.name for p in out.rglob("*")] == ["govllm-sft", "v1", "report.html"]
    assert (earlier / "report.html").read_text() == "earlier\n"
    # Into a folder that did not exist: the folders this run created go too
    fresh = tmp_path / "fresh" / "reports"
    assert main(["report", "govllm-sft", "1", "--out", str(fresh)]) == 2
    capsys.readouterr()
    assert not (tmp_path / "fresh").exists()


def test_other_out_options_fail_as_one_line_too(env, capsys):
    # `govern audit export --out` writes through its own checks; what they miss ends as one line, not a traceback
    register(new_model())
    assert main(["audit", "export", "--out", "/proc/x"]) == 2
    assert capsys.readouterr().err == (
        "govern: --out /proc/x: /proc is the kernel's process filesystem, not a folder on disk; give a path on disk\n"
    )
