"""The audit trail: hash chain, append-only storage, tamper detection, concurrency, export (SQLite)."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from governance import trail
from governance.cli import main
from governance.errors import AuditError, ConfigError
from governance.trail import GENESIS_HASH, Subject

SUBJECT = Subject(model="govllm-sft", version="3")


@pytest.fixture
def audit_db(tmp_path, monkeypatch):
    path = tmp_path / "audit.db"
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{path}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # no registry: the trail alone
    for name in ("GOVERN_TRAIL_KEY", "GOVERN_TRAIL_KEY_FILE", "GOVERN_TRAIL_CHECKPOINT"):
        monkeypatch.delenv(name, raising=False)  # the embedded default: key and checkpoint beside audit.db
    return path


def add(n: int = 1, **overrides) -> list[trail.Event]:
    out = []
    for i in range(n):
        fields = {
            "actor": f"reviewer{i}",
            "role": "reviewer",
            "subject": SUBJECT,
            "reason": f"looks right {i} — naïve ✓",  # non-ASCII is stored and hashed as UTF-8
            "evidence": {"model_sha256": "ab" * 32},
            "details": {"action": "approve", "n": i},
        }
        fields.update(overrides)
        out.append(trail.record("approved", **fields))
    return out


def test_events_are_chained_from_genesis(audit_db):
    first, second, third = add(3)
    assert (first.seq, second.seq, third.seq) == (1, 2, 3)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert trail.head().hash == third.hash
    stored = trail.events(model="govllm-sft", version="3")
    assert [e.hash for e in stored] == [first.hash, second.hash, third.hash]
    assert stored[0].evidence == {"model_sha256": "ab" * 32} and stored[0].details == {"action": "approve", "n": 0}
    assert stored[0].time.tzinfo is not None and stored[0].time.utcoffset().total_seconds() == 0
    assert trail.verify().ok


def test_hash_covers_every_stored_column(audit_db):
    (event,) = add(1)
    row = event.stored_row()
    assert trail.row_hash(row) == event.hash
    for column in trail.COLUMNS:
        changed = dict(row)
        changed[column] = changed[column] + 1 if isinstance(changed[column], int) else changed[column] + "x"
        assert trail.row_hash(changed) != event.hash, column


def test_unknown_event_type_is_refused(audit_db):
    with pytest.raises(AuditError, match="unknown audit event type 'approve'"):
        trail.record("approve", actor="a", role="r", subject=SUBJECT, reason="x")


def _flip(value):
    """Change one byte of a stored value (an empty one gains a byte; an integer changes)."""
    if isinstance(value, int):
        return value + 1000
    if value == "":
        return "x"
    data = bytearray(value.encode("utf-8"))
    data[-1] = data[-1] ^ 0x01
    return data.decode("utf-8")


@pytest.mark.parametrize("column", [*trail.COLUMNS, "hash"])
def test_editing_any_byte_of_any_column_is_detected(audit_db, column):
    add(4)
    conn = sqlite3.connect(audit_db)
    # An administrator can drop the append-only triggers; the chain still catches the edit
    conn.execute("DROP TRIGGER audit_events_no_update")
    (value,) = conn.execute(f'SELECT "{column}" FROM audit_events WHERE seq = 2').fetchone()
    conn.execute(f'UPDATE audit_events SET "{column}" = ? WHERE seq = 2', (_flip(value),))
    conn.commit()
    conn.close()
    result = trail.verify()
    assert not result.ok and result.first_bad_seq == 2
    assert result.events == 1
    if column == "seq":
        assert result.problem == (
            "event #2 is missing or renumbered (found #3, approved govllm-sft v3 by reviewer2, in its place)"
        )
    elif column == "prev_hash":
        assert result.problem.startswith("event #2 (approved govllm-sft v3 by reviewer1): prev_hash does not match")
    else:
        assert result.problem.endswith("stored content does not match its hash; it was edited")
        assert result.problem.startswith("event #2 (")


def test_update_and_delete_are_refused_by_the_database(audit_db):
    add(2)
    conn = sqlite3.connect(audit_db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit_events SET reason = 'nothing happened' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit_events WHERE seq = 1")
    conn.close()
    assert trail.verify().ok


def test_removed_event_is_detected(audit_db):
    add(3)
    conn = sqlite3.connect(audit_db)
    conn.execute("DROP TRIGGER audit_events_no_delete")
    conn.execute("DELETE FROM audit_events WHERE seq = 2")
    conn.commit()
    conn.close()
    result = trail.verify()
    assert result.first_bad_seq == 2
    assert (
        result.problem
        == "event #2 is missing or renumbered (found #3, approved govllm-sft v3 by reviewer2, in its place)"
    )


def test_truncated_tail_is_caught_against_an_archive(audit_db, tmp_path):
    add(3)
    archive = tmp_path / "archive.jsonl"
    assert main(["audit", "export", "--out", str(archive)]) == 0
    conn = sqlite3.connect(audit_db)
    conn.execute("DROP TRIGGER audit_events_no_delete")
    conn.execute("DELETE FROM audit_events WHERE seq = 3")
    conn.commit()
    conn.close()
    checkpoint = tmp_path / "audit.checkpoint.jsonl"
    truncated = f"checkpoint {checkpoint}:3: head #3 is beyond the trail's end (#2); event #3 was removed (truncated)"
    assert trail.verify().findings == [truncated]  # the chain alone cannot see its missing tail; its anchors can
    result = trail.verify(archive=archive)  # …and so can an archived export
    assert result.first_bad_seq == 3
    assert result.findings == [
        truncated,
        f"event #3 (approved govllm-sft v3 by reviewer2) of archive {archive} is missing from the trail; "
        "it was truncated or rewritten since it was archived",
    ]


def test_export_is_verifiable_json_lines(audit_db, tmp_path, capsys):
    events = add(3)
    out = tmp_path / "trail.jsonl"
    assert main(["audit", "export", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"exported 3 events to {out}; head {events[-1].hash}"
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3] and lines[2]["hash"] == events[-1].hash
    assert main(["audit", "verify", "--file", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"audit trail intact: 3 events, head {events[-1].hash}")
    lines[1]["reason"] = "rewritten"
    out.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert main(["audit", "verify", "--file", str(out)]) == 1
    assert capsys.readouterr().err == (
        "govern: audit trail BROKEN: event #2 (approved govllm-sft v3 by reviewer1): stored content does not "
        f"match its hash; it was edited ({out})\n"
    )


def test_cli_verify_names_the_first_bad_event(audit_db, capsys):
    add(2)
    assert main(["audit", "verify"]) == 0
    assert capsys.readouterr().out.startswith("audit trail intact: 2 events, head ")
    conn = sqlite3.connect(audit_db)
    conn.execute("DROP TRIGGER audit_events_no_update")
    conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1")
    conn.commit()
    conn.close()
    assert main(["audit", "verify"]) == 1
    assert capsys.readouterr().err == (
        "govern: audit trail BROKEN: event #1 (approved govllm-sft v3 by mallory): stored content does not match "
        f"its hash; it was edited (sqlite:///{audit_db})\n"
    )


def test_guard_makes_a_record_idempotent(audit_db):
    def guard(events):
        return next((e for e in events if e.event_type == "model_registered"), None)

    first = trail.record("model_registered", actor="ci", role="registrant", subject=SUBJECT, reason="r", guard=guard)
    again = trail.record("model_registered", actor="ci", role="registrant", subject=SUBJECT, reason="r", guard=guard)
    assert first.created and not again.created and again.hash == first.hash
    assert len(trail.events()) == 1


def test_failure_before_commit_leaves_nothing(audit_db):
    add(1)

    def explode(event, related):
        assert event.seq == 2 and len(related) == 1
        raise ConnectionError("registry unreachable")

    with pytest.raises(ConnectionError):
        trail.record("promoted", actor="dana", role="rm", subject=SUBJECT, reason="go", before_commit=explode)
    assert [e.seq for e in trail.events()] == [1]
    promoted = trail.record("promoted", actor="dana", role="rm", subject=SUBJECT, reason="go")
    assert promoted.seq == 2 and trail.verify().ok


def test_concurrent_appends_stay_linear(audit_db):
    trail.head()  # create the schema once, as any first command does
    errors = []

    def approve(i: int) -> None:
        try:
            trail.record("approved", actor=f"r{i}", role="reviewer", subject=SUBJECT, reason="ok")
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=approve, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    stored = trail.events()
    assert sorted(e.actor for e in stored) == sorted(f"r{i}" for i in range(24))
    assert [e.seq for e in stored] == list(range(1, 25))
    assert trail.verify().ok


def test_audit_db_sits_beside_the_local_mlflow_store(tmp_path, monkeypatch):
    monkeypatch.delenv("GOVERN_AUDIT_URL", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/stores/mlflow.db")
    assert trail.audit_url() == f"sqlite:///{tmp_path}/stores/audit.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert trail.audit_url() == f"sqlite:///{tmp_path}/audit.db"


def test_a_tracking_server_needs_the_shared_audit_database(monkeypatch):
    monkeypatch.delenv("GOVERN_AUDIT_URL", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    with pytest.raises(ConfigError) as info:
        trail.audit_url()
    assert str(info.value) == (
        "GOVERN_AUDIT_URL is not set: with MLflow at http://mlflow.internal:5000 the audit trail must be the shared "
        "database (e.g. GOVERN_AUDIT_URL=postgresql://user@host/audit); a local audit.db would split the trail"
    )


def test_postgres_urls_use_the_installed_driver():
    assert trail._normalize_url("postgresql://postgres@127.0.0.1/audit").startswith("postgresql+psycopg")


def test_unreadable_database_is_one_line(tmp_path, monkeypatch):
    bad = tmp_path / "not-a-db"
    bad.write_text("this is not sqlite")
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{bad}")
    with pytest.raises(AuditError, match=r"^creating the audit tables failed at sqlite:///.*not-a-db: "):
        trail.events()
