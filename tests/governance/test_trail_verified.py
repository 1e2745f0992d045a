"""The verified-prefix record: a governed action does not repeat Ed25519 checks, and no attack gets past it.

Against a real SQLite trail with the embedded default key; the attacks edit
the database as an administrator could (triggers dropped), as in
test_trail_attacks.py, and must be refused with the message a full
verification gives.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from governance import trail
from governance.errors import TrailBroken
from governance.trail import Subject, signing
from governance.trail.verified import record_path

SUBJECT = Subject(model="govllm-sft", version="1")


@pytest.fixture
def store(tmp_path, monkeypatch):
    """Six signed events in a fresh trail; counts the Ed25519 checks made (KeyRing.verify calls)."""
    path = tmp_path / "audit.db"
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{path}")
    for name in ("GOVERN_TRAIL_KEY", "GOVERN_TRAIL_KEY_FILE", "GOVERN_TRAIL_CHECKPOINT"):
        monkeypatch.delenv(name, raising=False)
    for i in range(6):
        append(i)
    calls = {"n": 0}
    real_verify = signing.KeyRing.verify

    def counted(self, *args, **kwargs):
        calls["n"] += 1
        return real_verify(self, *args, **kwargs)

    monkeypatch.setattr(signing.KeyRing, "verify", counted)
    return path, calls


def append(i: int) -> None:
    trail.record("approved", actor=f"rev{i}", role="reviewer", subject=SUBJECT, reason=f"review {i}", evidence={})


def tamper(path, statement: str, params=()) -> None:
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    conn.execute(statement, params)
    conn.commit()
    conn.close()


def record_file():
    return record_path(trail.open_trail().files.checkpoint)


def test_only_events_after_the_record_are_checked_again(store):
    _, calls = store
    assert trail.require_intact().signatures_checked == 6 and calls["n"] == 6
    assert json.loads(record_file().read_text())["events"] == 6
    calls["n"] = 0
    append(6)
    append(7)
    assert trail.require_intact().signatures_checked == 8
    assert calls["n"] == 2  # events 7 and 8 only
    calls["n"] = 0
    # `govern audit verify` (trail.verify) never uses the record
    assert trail.verify().ok and calls["n"] == 8


def test_an_edited_event_in_the_recorded_prefix_is_refused_as_without_a_record(store):
    path, calls = store
    trail.require_intact()
    tamper(path, "UPDATE audit_events SET reason = 'forged' WHERE seq = 2")
    expected = trail.verify().problem
    with pytest.raises(TrailBroken) as err:
        trail.require_intact()
    assert str(err.value) == f"refusing to act on a broken audit trail: {expected}; see `govern audit verify`"
    assert "event #2" in expected and "stored content does not match its hash" in expected


def test_a_replaced_signature_in_the_recorded_prefix_is_refused(store):
    path, calls = store
    trail.require_intact()
    forged = signing.generate_key().sign("0" * 64)
    tamper(path, "UPDATE audit_events SET signature = ? WHERE seq = 3", (forged,))
    calls["n"] = 0
    with pytest.raises(TrailBroken) as err:
        trail.require_intact()
    assert "event #3" in str(err.value) and "signature does not verify" in str(err.value)
    assert calls["n"] >= 6  # the record no longer matched: every signature was checked (and the anchors)


def test_a_record_not_made_with_the_trail_key_is_ignored(store):
    _, calls = store
    trail.require_intact()
    stored = json.loads(record_file().read_text())
    record_file().write_text(json.dumps({**stored, "mac": "00" * 32}))
    calls["n"] = 0
    assert trail.require_intact().ok
    assert calls["n"] == 6
