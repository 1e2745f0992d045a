"""The verified checkpoint: the check before a governed action reads only events since; no attack gets past it.

Against a real SQLite trail with the embedded default key. The attacks edit
the database, the checkpoint file and the record as someone with write access
to them could (triggers dropped), and each must be refused with the exact
message; an edit to an event the checkpoint already covers passes the check
before an action and is found by the full ``govern audit verify``.
"""

from __future__ import annotations

import base64
import json
import sqlite3

import pytest

from governance import trail
from governance.cli import main
from governance.errors import TrailBroken
from governance.trail import Subject, bulk, signing, storage
from governance.trail.verified import _message, record_path

SUBJECT = Subject(model="govllm-sft", version="1")


@pytest.fixture
def store(tmp_path, monkeypatch):
    """Six signed events in a fresh trail; counts Ed25519 event checks and rows read."""
    path = tmp_path / "audit.db"
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{path}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # none: the trail alone
    for name in ("GOVERN_TRAIL_KEY", "GOVERN_TRAIL_KEY_FILE", "GOVERN_TRAIL_CHECKPOINT"):
        monkeypatch.delenv(name, raising=False)
    for i in range(6):
        append(i)
    calls = {"verify": 0, "rows": 0, "stored": 0}
    real_verify, real_rows, real_stored = signing.KeyRing.verify, storage.Trail.raw_rows, bulk.verify_stored

    def counted(self, *args, **kwargs):
        calls["verify"] += 1
        return real_verify(self, *args, **kwargs)

    def counted_rows(self, *args, **kwargs):
        for row in real_rows(self, *args, **kwargs):
            calls["rows"] += 1
            yield row

    def counted_stored(*args, **kwargs):
        calls["stored"] += 1
        return real_stored(*args, **kwargs)

    monkeypatch.setattr(signing.KeyRing, "verify", counted)
    monkeypatch.setattr(bulk, "verify_stored", counted_stored)
    monkeypatch.setattr(storage.Trail, "raw_rows", counted_rows)
    return path, calls


def append(i: int) -> None:
    trail.record("approved", actor=f"rev{i}", role="reviewer", subject=SUBJECT, reason=f"review {i}", evidence={})


def tamper(path, statement: str, params=()) -> None:
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    conn.execute(statement, params)
    conn.commit()
    conn.close()


def record_file():
    return record_path(trail.open_trail().files.checkpoint)


def refusal(finding: str) -> str:
    return f"refusing to act on a broken audit trail: {finding}; see `govern audit verify`"


def checkpointed(store) -> dict[str, int]:
    """A checkpoint at #6 (the first check reads everything and writes it); the counters reset."""
    _, calls = store
    first = trail.require_intact()
    assert first.verified_from == 0 and first.signatures_verified == 6
    assert json.loads(record_file().read_text())["events"] == 6
    calls.update(verify=0, rows=0, stored=0)
    return calls


def test_only_events_after_the_checkpoint_are_read_and_checked(store):
    calls = checkpointed(store)
    append(6)
    append(7)
    assert calls["verify"] == 2  # each append checked the head it chains onto
    calls.update(verify=0, rows=0, stored=0)
    result = trail.require_intact()
    assert result.ok and result.verified_from == 6 and result.events == 8 and result.signatures_verified == 8
    # event #6 (its hash is recomputed), then #7 and #8: #8's signature checked, #7's covered by #8's hash
    assert calls == {"verify": 1, "rows": 3, "stored": 0}
    assert json.loads(record_file().read_text())["events"] == 8  # moved forward by the key holder
    assert result.anchors[0].startswith("verified checkpoint: #6 (") and result.anchors[0].endswith(", 2 events since")
    calls.update(verify=0, rows=0)
    assert trail.require_intact().verified_from == 8 and calls == {"verify": 0, "rows": 1, "stored": 0}
    # `govern audit verify` (trail.verify) never starts from the checkpoint
    # (in the database: trail/bulk.py, no row read here; one Ed25519 check, the key's last event)
    full = trail.verify()
    assert full.ok and full.verified_from == 0 and calls == {"verify": 1, "rows": 1, "stored": 1}
    assert (full.signatures_checked, full.signatures_covered) == (1, 7)
    every = trail.verify(every_signature=True)  # row by row, each signature
    assert every.ok and every.signatures_checked == 8 and calls == {"verify": 9, "rows": 9, "stored": 1}


def test_an_old_event_edited_under_the_checkpoint_is_found_by_the_full_verify(store, capsys):
    path, _ = store
    checkpointed(store)
    tamper(path, "UPDATE audit_events SET reason = 'forged' WHERE seq = 2")
    # The checkpoint covers #2: the check before an action reads only from #6 on and passes
    assert trail.require_intact().verified_from == 6
    # The full (and scheduled) verify reads everything: refused, one line, exit 1
    capsys.readouterr()
    assert main(["audit", "verify", "--quiet"]) == 1
    assert capsys.readouterr().err == (
        "govern: audit trail BROKEN: event #2 (approved govllm-sft v1 by rev1): stored content does not match "
        f"its hash; it was edited (sqlite:///{path})\n"
    )


def test_a_scheduled_verify_prints_one_line_and_exits_0_on_an_intact_trail(store, capsys):
    path, _ = store
    capsys.readouterr()
    assert main(["audit", "verify", "--quiet"]) == 0
    assert capsys.readouterr().out == f"audit trail intact: 6 events, head {trail.head().hash} (sqlite:///{path})\n"


def test_truncating_the_trail_below_the_checkpoint_is_refused(store):
    path, _ = store
    checkpointed(store)
    tamper(path, "DELETE FROM audit_events WHERE seq > 3")
    with pytest.raises(TrailBroken) as err:
        trail.require_intact()
    assert str(err.value) == refusal(
        f"the trail ends at #3, before #6 that verified checkpoint {record_file()} verified; "
        "events #4..#6 were removed (truncated)"
    )


def test_rewriting_an_event_after_the_checkpoint_is_refused_as_the_full_verify_says(store):
    path, calls = store
    checkpointed(store)
    append(6)
    append(7)
    tamper(path, "UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 7")
    with pytest.raises(TrailBroken) as err:
        trail.require_intact()
    finding = "event #7 (approved govllm-sft v1 by rev6): stored content does not match its hash; it was edited"
    assert str(err.value) == refusal(finding)
    assert calls["rows"] == 4  # from the checkpoint on: #6, #7 (the fast pass stops), #7..#8 with every signature
    assert trail.verify().findings == [finding]


def test_rewriting_the_event_at_the_checkpoint_is_refused(store):
    path, _ = store
    checkpointed(store)
    head = trail.head().hash
    tamper(path, "UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 6")
    with pytest.raises(TrailBroken) as err:
        trail.require_intact()
    assert str(err.value) == refusal(
        f"event #6 (approved govllm-sft v1 by rev5) no longer holds the hash {head[:16]} that verified checkpoint "
        f"{record_file()} verified; the trail was rewritten at or before #6"
    )


def test_an_edited_checkpoint_record_is_refused(store):
    checkpointed(store)
    stored = json.loads(record_file().read_text())
    stored["events"] = stored["state"]["events"] = 3  # "only 3 were verified" (hide a truncation)
    record_file().write_text(json.dumps(stored))
    key_id = trail.open_trail().signing_key().key_id
    with pytest.raises(TrailBroken) as err:
        trail.require_intact()
    assert str(err.value) == refusal(
        f"verified checkpoint {record_file()}: signature does not verify under key {key_id}; "
        "the record was edited or forged"
    )
    record_file().write_text("{}")
    with pytest.raises(TrailBroken, match=r"not a signed verified checkpoint; it was edited; see"):
        trail.require_intact()


def test_a_record_forged_with_the_attackers_own_key_is_refused(store):
    path, _ = store
    checkpointed(store)
    # The attacker rewrites #3..#6 and re-hashes them, then signs a record over the new head with their key
    attacker = trail.generate_key()
    stored = json.loads(record_file().read_text())
    stored["key_id"] = stored["state"]["first_key"] = attacker.key_id
    fields = {name: value for name, value in stored.items() if name != "signature"}
    stored["signature"] = base64.b64encode(attacker.private.sign(_message(fields))).decode()
    record_file().write_text(json.dumps(stored))
    with pytest.raises(TrailBroken) as err:
        trail.require_intact()
    assert str(err.value) == refusal(
        f"verified checkpoint {record_file()}: signed by key {attacker.key_id}, which is not a trusted trail key "
        "(forged record)"
    )


def test_a_truncated_or_rewritten_checkpoint_file_is_refused(store):
    checkpointed(store)
    checkpoint = trail.open_trail().files.checkpoint
    original = checkpoint.read_text()
    lines = original.splitlines(keepends=True)
    checkpoint.write_text("".join(lines[:3]))
    with pytest.raises(TrailBroken) as err:
        trail.require_intact()
    assert str(err.value) == refusal(
        f"checkpoint {checkpoint} is {len(''.join(lines[:3]))} bytes, shorter than the {len(original)} bytes "
        f"verified checkpoint {record_file()} read; heads were removed from it (truncated or replaced)"
    )
    last = json.loads(lines[5])
    lines[5] = json.dumps({**last, "hash": "f" * 64}) + "\n"
    checkpoint.write_text("".join(lines) + "\n" * (len(original) - len("".join(lines))))
    with pytest.raises(TrailBroken) as err:
        trail.require_intact()
    assert str(err.value) == refusal(
        f"checkpoint {checkpoint}: the heads verified checkpoint {record_file()} read (lines 1..6) were rewritten since"
    )


def test_a_head_appended_since_that_the_trail_lacks_is_truncation(store):
    path, _ = store
    checkpointed(store)
    append(6)
    tamper(path, "DELETE FROM audit_events WHERE seq = 7")
    checkpoint = trail.open_trail().files.checkpoint
    with pytest.raises(TrailBroken) as err:
        trail.require_intact()
    assert str(err.value) == refusal(
        f"checkpoint {checkpoint}:7: head #7 is beyond the trail's end (#6); event #7 was removed (truncated)"
    )


def test_without_a_record_or_after_the_keys_changed_everything_is_verified_again(store):
    _, calls = store
    checkpointed(store)
    record_file().unlink()
    assert trail.require_intact().verified_from == 0 and calls["stored"] == 1 and calls["verify"] == 1
    assert record_file().is_file()
    # A key listed since: the record was made under another ring, so it is not used
    pub = trail.open_trail().files.local_public_keys
    other = trail.generate_key()
    pub.write_text(pub.read_text() + f"{other.key_id} {other.public_b64}\n")
    calls.update(verify=0, stored=0)
    assert trail.require_intact().verified_from == 0 and calls["stored"] == 1 and calls["verify"] == 1
    assert trail.require_intact().verified_from == 6


def test_a_process_without_the_key_uses_the_record_but_does_not_move_it(store):
    checkpointed(store)
    key_file = trail.open_trail().files.default_key
    kept = key_file.read_bytes()
    key_file.unlink()
    try:
        append_with = trail.open_trail()
        assert append_with.held_signing_key() is None
        result = trail.require_intact()
        assert result.ok and result.verified_from == 6
    finally:
        key_file.write_bytes(kept)


def test_a_key_rotation_after_the_checkpoint_is_followed(store):
    checkpointed(store)
    _, new_key = trail.rotate_key(actor="ops", reason="yearly rotation")
    append(6)
    result = trail.require_intact()
    assert result.ok and result.events == 8
    stored = json.loads(record_file().read_text())
    assert stored["key_id"] == new_key.key_id and stored["events"] == 8
    append(7)
    assert trail.require_intact().verified_from == 8
    assert trail.verify().ok


def test_a_full_verification_runs_in_sqlite_byte_for_byte(store):
    """SQLite spells each row's JSON exactly as govern hashed it (quotes, backslashes, non-ASCII): no row read."""
    _, calls = store
    for reason in ('he said "no"', "back\\slash and a/slash", "naïve 東京 😀 \u2028", "'single' and \"double\""):
        trail.record("approved", actor="rév", role="reviewer", subject=SUBJECT, reason=reason, details={"r": reason})
    calls.update(verify=0, rows=0, stored=0)
    result = trail.verify()
    assert result.ok and calls == {"verify": 1, "rows": 0, "stored": 1}, result.findings
    assert result.signatures_verified == 10
