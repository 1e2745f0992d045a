"""Attacks on the audit trail by someone with write access to its SQLite database (not the key), each detected.

Every attack is run against a real SQLite trail with the append-only triggers
dropped, as an administrator could; ``govern audit verify`` must name what was
done (one line per finding, exit 1) and :func:`trail.require_intact` must
refuse every governed action.
"""

from __future__ import annotations

import sqlite3

import pytest

from governance import trail
from governance.cli import main
from governance.errors import AuditError, TrailBroken
from governance.trail import Anchor, Subject

SUBJECT = Subject(model="govllm-dpo", version="2")


@pytest.fixture
def store(tmp_path, monkeypatch):
    """Eight events (the fourth a rejection) in a fresh SQLite trail; yields the database path."""
    path = tmp_path / "audit.db"
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{path}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # none: the trail alone
    for name in ("GOVERN_TRAIL_KEY", "GOVERN_TRAIL_KEY_FILE", "GOVERN_TRAIL_CHECKPOINT"):
        monkeypatch.delenv(name, raising=False)  # the embedded default: key and checkpoint beside audit.db
    for i in range(8):
        trail.record(
            "rejected" if i == 3 else "approved",
            actor=f"rev{i}",
            role="reviewer",
            subject=SUBJECT,
            reason=f"review {i}",
            evidence={"model_sha256": "ab" * 32},
        )
    return path


def tamper(path, *statements, params=()) -> None:
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    for statement in statements:
        conn.execute(statement, params)
    conn.commit()
    conn.close()


def rows(path) -> list[dict]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    out = [dict(r) for r in conn.execute("SELECT * FROM audit_events ORDER BY seq")]
    conn.close()
    return out


def key_id() -> str:
    return trail.open_trail().signing_key().key_id


def refused(capsys) -> list[str]:
    """``govern audit verify`` exits 1; its stderr lines, without the common prefix and suffix."""
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    where = f" ({trail.redacted(trail.open_trail().url)})"
    lines = capsys.readouterr().err.splitlines()
    assert all(line.startswith("govern: audit trail BROKEN: ") and line.endswith(where) for line in lines), lines
    return [line.removeprefix("govern: audit trail BROKEN: ").removesuffix(where) for line in lines]


def test_an_untouched_trail_verifies_and_says_what_it_checked(store, capsys):
    assert main(["audit", "verify"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"audit trail intact: 8 events, head {trail.head().hash} (sqlite:///{store})"
    assert out[1:4] == [
        "  signatures: 8 verified (1 by an Ed25519 check: each key's last event; 7 by the chain: the next event's "
        "hash covers each)",
        f"  key {key_id()}: local key, not reviewed in git",
        f"  checkpoint {store.with_name('audit.checkpoint.jsonl')}: 8 heads, latest #8, matches",
    ]  # then the registry's side (anchors in MLflow, drift)
    assert trail.require_intact().ok
    assert main(["audit", "verify", "--every-signature"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "  signatures: 8 verified"


def test_deleting_the_last_event_is_truncation(store, capsys):
    tamper(store, "DELETE FROM audit_events WHERE seq = 8")
    checkpoint = store.with_name("audit.checkpoint.jsonl")
    finding = f"checkpoint {checkpoint}:8: head #8 is beyond the trail's end (#7); event #8 was removed (truncated)"
    assert refused(capsys) == [finding]
    with pytest.raises(TrailBroken) as info:
        trail.require_intact()
    assert str(info.value) == f"refusing to act on a broken audit trail: {finding}; see `govern audit verify`"
    assert info.value.exit_code == 1


def test_deleting_the_last_six_events_is_truncation(store, capsys):
    tamper(store, "DELETE FROM audit_events WHERE seq > 2")
    checkpoint = store.with_name("audit.checkpoint.jsonl")
    assert refused(capsys) == [
        f"checkpoint {checkpoint}:8: head #8 is beyond the trail's end (#2); events #3..#8 were removed (truncated)"
    ]


def test_deleting_a_rejection_and_rehashing_the_rest_is_a_detected_rewrite(store, capsys):
    original = rows(store)
    tamper(store, "DELETE FROM audit_events WHERE seq = 4")
    # Re-hash every later event with the project's own hash function; the signatures cannot be redone
    # (and re-link each to the signature before it, which the next hash covers)
    prev, prev_signature = original[2]["hash"], original[2]["signature"]
    for row in original[4:]:
        old_seq = row["seq"]
        row.update(seq=old_seq - 1, prev_hash=prev, prev_signature=prev_signature)
        row["hash"] = prev = trail.row_hash(row)
        prev_signature = row["signature"]
        tamper(
            store,
            "UPDATE audit_events SET seq = ?, prev_hash = ?, prev_signature = ?, hash = ? WHERE seq = ?",
            params=(row["seq"], row["prev_hash"], row["prev_signature"], row["hash"], old_seq),
        )
    key, checkpoint = key_id(), store.with_name("audit.checkpoint.jsonl")

    def forged(seq: int) -> str:
        return (
            f"event #{seq} (approved govllm-dpo v2 by rev{seq}): signature does not verify under key {key}; "
            "the event was forged or re-hashed after an edit"
        )

    assert refused(capsys) == [
        forged(4),
        f"checkpoint {checkpoint}:4: event #4 was anchored with hash {original[3]['hash'][:16]}, the trail now "
        f"holds {rows(store)[3]['hash'][:16]}; the trail was rewritten at or before #4",
        forged(5),
        forged(6),
        forged(7),
        f"checkpoint {checkpoint}:8: head #8 is beyond the trail's end (#7); event #8 was removed (truncated)",
    ]
    assert trail.verify_rows(rows(store)).ok  # the hash chain alone is consistent again: only keys and anchors see it


def test_inserting_two_hashed_approved_events_is_a_forged_insert(store, capsys):
    last = rows(store)[-1]
    outsider = trail.generate_key()  # the attacker's own key: signs correctly, but nobody trusts it
    for n, signer in ((9, None), (10, outsider)):
        row = dict(
            last,
            seq=n,
            prev_hash=last["hash"],
            prev_signature=last["signature"],
            actor=f"mallory{n}",
            timestamp=trail.now_utc(),
        )
        if signer is not None:
            row["key_id"] = signer.key_id
        row["hash"] = trail.row_hash(row)
        row["signature"] = signer.sign(row["hash"]) if signer is not None else last["signature"]
        tamper(
            store,
            f"INSERT INTO audit_events ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            params=tuple(row.values()),
        )
        last = row
    assert refused(capsys) == [
        f"event #9 (approved govllm-dpo v2 by mallory9): signature does not verify under key {key_id()}; "
        "the event was forged or re-hashed after an edit",
        f"event #10 (approved govllm-dpo v2 by mallory10): signed by unknown key {outsider.key_id}; "
        "it was not written by a trusted trail key (forged insert)",
    ]
    with pytest.raises(TrailBroken, match=r"^refusing to act on a broken audit trail: event #9 .* \(and 1 more\)"):
        trail.require_intact()


def test_editing_a_middle_event_is_named(store, capsys):
    tamper(store, "UPDATE audit_events SET reason = 'all good' WHERE seq = 4")
    assert refused(capsys) == [
        "event #4 (rejected govllm-dpo v2 by rev3): stored content does not match its hash; it was edited"
    ]
    with pytest.raises(TrailBroken, match=r"^refusing to act on a broken audit trail: event #4 \(rejected "):
        trail.require_intact()


def test_registry_anchor_catches_what_a_rewritten_checkpoint_hides(store, capsys):
    """DB and checkpoint file both truncated: the head the registry tagged in MLflow still names it."""
    tag = Anchor.of(trail.head()).encode()  # what the registry writes on the registered model
    checkpoint = store.with_name("audit.checkpoint.jsonl")
    checkpoint.write_text("".join(checkpoint.read_text().splitlines(keepends=True)[:5]))
    tamper(store, "DELETE FROM audit_events WHERE seq > 5")
    assert trail.verify().ok  # chain, signatures and the edited checkpoint agree…
    mlflow_anchor = Anchor.decode(tag, source="MLflow tag governance.trail_head on govllm-dpo")
    result = trail.verify(anchors=[mlflow_anchor])  # …the registry's copy does not
    assert result.findings == [
        "MLflow tag governance.trail_head on govllm-dpo: head #8 is beyond the trail's end (#5); "
        "events #6..#8 were removed (truncated)"
    ]
    forged = Anchor(seq=3, hash="f" * 64, key_id=mlflow_anchor.key_id, signature=mlflow_anchor.signature, source="x")
    assert trail.verify(anchors=[forged]).findings == [
        "x: head #3 is not signed by a trusted trail key (forged anchor)"
    ]


def test_a_deleted_checkpoint_file_is_a_finding(store, capsys):
    checkpoint = store.with_name("audit.checkpoint.jsonl")
    checkpoint.unlink()
    assert refused(capsys) == [
        f"checkpoint {checkpoint} is missing but the trail holds 8 events; it was deleted, "
        "or GOVERN_TRAIL_CHECKPOINT points elsewhere"
    ]


def test_an_off_box_copy_of_the_checkpoint_catches_a_consistent_cut(store, tmp_path, capsys):
    """Database and checkpoint both cut back to #5 agree with each other; the copy shipped off-box does not."""
    checkpoint = store.with_name("audit.checkpoint.jsonl")
    copy = tmp_path / "shipped" / "checkpoint.jsonl"
    copy.parent.mkdir()
    copy.write_text(checkpoint.read_text())
    checkpoint.write_text("".join(checkpoint.read_text().splitlines(keepends=True)[:5]))
    tamper(store, "DELETE FROM audit_events WHERE seq > 5")
    assert main(["audit", "verify"]) == 0
    capsys.readouterr()
    assert main(["audit", "verify", "--anchors", str(copy)]) == 1
    assert capsys.readouterr().err == (
        f"govern: audit trail BROKEN: off-box copy {copy}: head #8 is beyond the trail's end (#5); "
        f"events #6..#8 were removed (truncated) (sqlite:///{store})\n"
    )


def test_an_old_events_signature_replaced_is_found_by_the_full_verify(store, capsys):
    """Each event's hash covers the signature before it: a replaced old signature is a finding, not vouched for."""
    original = rows(store)
    # #3 now carries #6's signature: valid base64, a valid signature by the trail key, of another event
    tamper(store, "UPDATE audit_events SET signature = ? WHERE seq = 3", params=(original[5]["signature"],))
    lines = refused(capsys)
    assert lines[:2] == [
        f"event #3 (approved govllm-dpo v2 by rev2): signature does not verify under key {key_id()}; "
        "the event was forged or re-hashed after an edit",
        "event #4 (rejected govllm-dpo v2 by rev3): prev_signature does not match the signature of event #3; "
        "that signature was replaced, or an event before it removed or inserted",
    ]
    assert main(["audit", "verify", "--every-signature"]) == 1
    assert capsys.readouterr().err.count("BROKEN") == len(lines)  # the same findings either way


def test_a_forged_event_at_the_head_stops_the_next_append(store):
    """The trail checks the head before its signature covers it: a forged last event is never vouched for."""
    last = rows(store)[-1]
    forged = dict(last, seq=9, prev_hash=last["hash"], prev_signature=last["signature"], actor="mallory")
    forged["timestamp"] = trail.now_utc()
    forged["hash"] = trail.row_hash(forged)  # hashed right; the signature cannot be made without the key
    tamper(
        store,
        f"INSERT INTO audit_events ({', '.join(forged)}) VALUES ({', '.join('?' * len(forged))})",
        params=tuple(forged.values()),
    )
    with pytest.raises(AuditError) as err:
        trail.record("approved", actor="rev9", role="reviewer", subject=SUBJECT, reason="review 9")
    assert str(err.value) == (
        f"the audit trail at sqlite:///{store}: its last event #9 (approved govllm-dpo v2 by mallory) is not validly "
        f"signed by key {key_id()} (a forged insert); nothing was appended: run `govern audit verify` to see what "
        "was changed"
    )
    assert [row["seq"] for row in rows(store)][-1] == 9  # nothing appended after it
