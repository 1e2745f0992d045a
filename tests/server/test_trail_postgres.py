"""The audit trail on PostgreSQL: append-only triggers, tamper detection per column, concurrent appends."""

from __future__ import annotations

import threading

import psycopg2
import pytest

from governance import trail
from governance.errors import AuditError
from governance.trail import Subject, storage

pytestmark = pytest.mark.server


@pytest.fixture
def pg_trail(pg_database, monkeypatch, tmp_path, trail_signing_env):
    """The audit trail in a fresh database, signing with a reviewed key; yields the libpq DSN for direct SQL."""
    monkeypatch.setenv("GOVERN_AUDIT_URL", pg_database)
    for name, value in trail_signing_env(tmp_path, tmp_path / "policies").items():
        monkeypatch.setenv(name, value)
    yield pg_database.replace("postgresql+psycopg2://", "postgresql://")
    trail.open_trail(pg_database).engine.dispose()  # let the database be dropped


def seed(n: int) -> list[trail.Event]:
    return [
        trail.record(
            "approved",
            actor=f"reviewer{i}",
            role="reviewer",
            subject=Subject(model="govllm-dpo", version="7"),
            reason=f"review {i}: naïve ✓",
            evidence={"model_sha256": "ab" * 32},
            details={"n": i},
        )
        for i in range(n)
    ]


def test_postgres_refuses_update_and_delete(pg_trail):
    seed(2)
    conn = psycopg2.connect(pg_trail)
    with pytest.raises(psycopg2.Error, match="audit_events is append-only"), conn.cursor() as cursor:
        cursor.execute("UPDATE audit_events SET reason = 'nothing happened' WHERE seq = 1")
    conn.rollback()
    with pytest.raises(psycopg2.Error, match="audit_events is append-only"), conn.cursor() as cursor:
        cursor.execute("DELETE FROM audit_events WHERE seq = 2")
    conn.close()
    assert trail.verify().ok


def test_flipping_a_byte_in_any_column_is_detected(pg_trail):
    seed(4)
    conn = psycopg2.connect(pg_trail)
    conn.autocommit = True
    with conn.cursor() as cursor:
        # An administrator can drop the trigger; the hash chain still catches every edit
        cursor.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        for column in [*trail.COLUMNS, "hash", "signature"]:
            cursor.execute(f'SELECT "{column}" FROM audit_events WHERE seq = 2')
            (original,) = cursor.fetchone()
            if isinstance(original, int):
                tampered = original + 1000
            elif original == "":
                tampered = "x"
            else:
                data = bytearray(original.encode("utf-8"))
                data[0] ^= 0x01
                tampered = data.decode("utf-8")
            cursor.execute(f'UPDATE audit_events SET "{column}" = %s WHERE seq = 2', (tampered,))
            result = trail.verify()
            assert not result.ok and result.first_bad_seq == 2, column
            assert result.problem.startswith("event #2 "), (column, result.problem)
            where = "seq = %s" % (original + 1000 if isinstance(original, int) else 2)
            cursor.execute(f'UPDATE audit_events SET "{column}" = %s WHERE {where}', (original,))
            assert trail.verify().ok, column
    conn.close()


def test_concurrent_appends_on_postgres_stay_linear(pg_trail):
    trail.head()
    errors: list[Exception] = []

    def approve(i: int) -> None:
        try:
            trail.record(
                "approved", actor=f"r{i}", role="reviewer", subject=Subject(model="m", version="1"), reason="ok"
            )
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=approve, args=(i,)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = trail.events()
    assert [e.seq for e in stored] == list(range(1, 31))
    assert sorted(e.actor for e in stored) == sorted(f"r{i}" for i in range(30))
    assert trail.verify().ok


def test_postgres_trail_rewritten_tail_and_unreviewed_key_are_refused(pg_trail, monkeypatch):
    original = seed(3)
    conn = psycopg2.connect(pg_trail)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        cursor.execute("DELETE FROM audit_events WHERE seq = 3")
        cursor.execute("SELECT * FROM audit_events WHERE seq = 2")
        row = dict(zip([c.name for c in cursor.description], cursor.fetchone(), strict=True))
        row.update(seq=3, prev_hash=row["hash"], prev_signature=row["signature"], actor="mallory")
        row["hash"] = trail.row_hash(row)  # hashed correctly; the copied signature cannot be redone without the key
        columns = ", ".join(row)
        cursor.execute(
            f"INSERT INTO audit_events ({columns}) VALUES ({', '.join(['%s'] * len(row))})", list(row.values())
        )
    conn.close()
    checkpoint = trail.open_trail().files.checkpoint
    assert trail.verify().findings == [
        f"event #3 (approved govllm-dpo v7 by mallory): signature does not verify under key {original[2].key_id}; "
        "the event was forged or re-hashed after an edit",
        f"checkpoint {checkpoint}:3: event #3 was anchored with hash {original[2].hash[:16]}, the trail now holds "
        f"{row['hash'][:16]}; the trail was rewritten at or before #3",
    ]
    # A key nobody reviewed may not sign a shared trail
    monkeypatch.setenv("GOVERN_TRAIL_KEY", trail.generate_key().pem().decode())
    with pytest.raises(AuditError, match=r"^the trail signing key ed25519:[0-9a-f]{16} is not trusted: list it in "):
        seed(1)


def test_a_postgres_store_from_before_trail_ids_gains_the_column_and_an_id(pg_trail):
    """The migration on PostgreSQL: old events keep verifying as hashed; new ones carry the minted id."""
    key = trail.open_trail().signing_key()
    conn = psycopg2.connect(pg_trail)
    conn.autocommit = True
    prev, anchors = trail.GENESIS_HASH, []
    with conn.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE audit_events (seq INTEGER PRIMARY KEY, event_type VARCHAR(40) NOT NULL, actor VARCHAR(200)"
            " NOT NULL, role VARCHAR(200) NOT NULL, identity_method VARCHAR(40) NOT NULL, timestamp VARCHAR(40) NOT"
            " NULL, subject_model VARCHAR(300) NOT NULL, subject_version VARCHAR(40) NOT NULL, subject_objective"
            " VARCHAR(300) NOT NULL, subject_objective_hash VARCHAR(64) NOT NULL, reason TEXT NOT NULL, evidence TEXT"
            " NOT NULL, details TEXT NOT NULL, prev_hash VARCHAR(64) NOT NULL UNIQUE, key_id VARCHAR(40) NOT NULL,"
            " hash VARCHAR(64) NOT NULL UNIQUE, signature VARCHAR(100) NOT NULL)"
        )
        for seq in (1, 2):
            row = {
                "seq": seq, "event_type": "approved", "actor": f"old{seq}", "role": "reviewer",
                "identity_method": "local-unverified", "timestamp": trail.now_utc(), "subject_model": "m",
                "subject_version": "1", "subject_objective": "", "subject_objective_hash": "", "reason": "ok",
                "evidence": "{}", "details": "{}", "prev_hash": prev, "key_id": key.key_id,
            }  # fmt: skip
            row["hash"] = prev = trail.row_hash(row)  # as the older govern hashed it: no trail id
            row["signature"] = key.sign(row["hash"])
            cursor.execute(
                f"INSERT INTO audit_events ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
                list(row.values()),
            )
            anchors.append(trail.Anchor(seq=seq, hash=row["hash"], key_id=key.key_id, signature=row["signature"]))
    conn.close()
    checkpoint = trail.open_trail().files.checkpoint
    checkpoint.write_text("".join(anchor.line() + "\n" for anchor in anchors))
    assert trail.verify().ok and trail.verify().legacy_events == 2
    (new,) = seed(1)
    assert new.seq == 3 and new.trail_id == trail.open_trail().trail_id()
    assert trail.verify().ok


def test_postgres_check_before_an_action_starts_from_the_verified_checkpoint(pg_trail):
    """The attacks of test_trail_verified.py as a PostgreSQL administrator would make them, with psycopg2."""
    from governance.errors import TrailBroken
    from governance.trail.verified import record_path

    seed(5)
    assert trail.require_intact().verified_from == 0  # the first check reads everything and records #5
    record = record_path(trail.open_trail().files.checkpoint)
    conn = psycopg2.connect(pg_trail)
    conn.autocommit = True
    cursor = conn.cursor()
    cursor.execute("DROP TRIGGER audit_events_append_only ON audit_events")
    # An old event edited under the checkpoint: the action check passes, the full verify refuses
    cursor.execute("UPDATE audit_events SET reason = 'nothing happened' WHERE seq = 2")
    assert trail.require_intact().verified_from == 5
    assert trail.verify().findings == [
        "event #2 (approved govllm-dpo v7 by reviewer1): stored content does not match its hash; it was edited"
    ]
    cursor.execute("UPDATE audit_events SET reason = %s WHERE seq = 2", ("review 1: naïve ✓",))
    # An event after the checkpoint rewritten: refused by the action check, with the full verify's words
    seed(2)
    cursor.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 6")
    finding = "event #6 (approved govllm-dpo v7 by mallory): stored content does not match its hash; it was edited"
    with pytest.raises(TrailBroken) as err:
        trail.require_intact()
    assert str(err.value) == f"refusing to act on a broken audit trail: {finding}; see `govern audit verify`"
    # Truncated below the checkpoint: refused
    cursor.execute("DELETE FROM audit_events WHERE seq > 3")
    with pytest.raises(TrailBroken) as err:
        trail.require_intact()
    assert str(err.value) == (
        f"refusing to act on a broken audit trail: the trail ends at #3, before #5 that verified checkpoint "
        f"{record} verified; events #4..#5 were removed (truncated); see `govern audit verify`"
    )
    conn.close()


TRICKY_REASONS = ('he said "no"', "back\\slash and a/slash", "naïve 東京 😀 \u2028", "'single' and \"double\"")


def test_a_full_verification_runs_in_postgresql_byte_for_byte(pg_trail, monkeypatch):
    """The database spells each row's JSON exactly as govern hashed it (quotes, backslashes, non-ASCII): no row read."""
    for reason in TRICKY_REASONS:
        trail.record(
            "approved",
            actor="reviewer",
            role="reviewer",
            subject=Subject(model="govllm-dpo", version="7"),
            reason=reason,
            details={"note": reason},
        )

    def read_row_by_row(self, *args, **kwargs):
        raise AssertionError("the full verification read the rows one by one")

    with monkeypatch.context() as patch:
        patch.setattr(storage.Trail, "raw_rows", read_row_by_row)
        result = trail.verify()
    assert result.ok and (result.signatures_checked, result.signatures_covered) == (1, 3), result.findings
    assert result.anchors[0].endswith(": 4 heads, latest #4, matches")
    # an edit is not "intact" in the database: the row-by-row pass names it
    conn = psycopg2.connect(pg_trail)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        cursor.execute("UPDATE audit_events SET reason = 'he said \"yes\"' WHERE seq = 1")
    conn.close()
    assert trail.verify().findings[0] == (
        "event #1 (approved govllm-dpo v7 by reviewer): stored content does not match its hash; it was edited"
    )


def test_postgresql_spells_a_string_as_canonical_json_or_as_no_json_at_all(pg_trail):
    """The bulk pass's quoting equals json.dumps without control characters; with one it is never canonical JSON.

    A spelling that matched the canonical JSON of another value would let an
    edited row pass the database check: so every value either spells exactly
    as ``canonical_json`` does or spells as something no JSON parser accepts.
    """
    import json

    from governance.trail import bulk
    from governance.trail.chain import canonical_json

    plain = [*TRICKY_REASONS, "", 'a\\"b', "\\", '"', "\u007f del", "\u2029", "tab-free", "🙂" * 3]
    controls = ["line\nbreak", "tab\there", "soh\x01", "\x1f", 'quote"and\nnewline']
    conn = psycopg2.connect(pg_trail)
    try:
        with conn.cursor() as cursor:
            for value in [*plain, *controls]:
                cursor.execute(f"SELECT {bulk._pg_string('v')} FROM (SELECT %s::text AS v) t", (value,))
                spelled = cursor.fetchone()[0]
                if value in plain:
                    assert spelled == canonical_json(value), value
                else:
                    assert spelled != canonical_json(value)
                    with pytest.raises(json.JSONDecodeError):
                        json.loads(spelled)  # a raw control character inside a string: not JSON
            cursor.execute(f"SELECT format('%s', {bulk._pg_string('v')}) FROM (SELECT NULL::text AS v) t")
            assert cursor.fetchone()[0] == ""  # NULL: nothing at all where a JSON string must be
    finally:
        conn.close()


def test_a_re_hashed_edit_and_a_replaced_signature_break_a_link_in_postgresql(pg_trail):
    """Each row then hashes as stored; the links, an ordered scan of their own on PostgreSQL, count the break."""
    from sqlalchemy import text

    from governance.trail import bulk
    from governance.trail.chain import GENESIS_HASH

    seed(4)
    engine = trail.open_trail().engine

    def broken_links() -> int:
        with engine.connect() as db:
            return db.execute(text(bulk._links_query()), {"end": 4, "genesis": GENESIS_HASH}).scalar_one()

    conn = psycopg2.connect(pg_trail)
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        cursor.execute("SELECT * FROM audit_events WHERE seq = 2")
        row = dict(zip([c.name for c in cursor.description], cursor.fetchone(), strict=True))
        assert broken_links() == 0
        edited = {**row, "reason": "approved after a call"}
        edited["hash"] = trail.row_hash(edited)  # re-hashed: the row itself checks out, #3 still names the old hash
        cursor.execute(
            "UPDATE audit_events SET reason = %s, hash = %s WHERE seq = 2", (edited["reason"], edited["hash"])
        )
        assert broken_links() == 1
        assert (
            trail.verify()
            .findings[0]
            .startswith("event #2 (approved govllm-dpo v7 by reviewer1): signature does not verify under key ")
        )
        cursor.execute("UPDATE audit_events SET reason = %s, hash = %s WHERE seq = 2", (row["reason"], row["hash"]))
        assert broken_links() == 0 and trail.verify().ok
        # another event's (valid) signature in place of #2's: #3 chains the one it followed
        cursor.execute(
            "UPDATE audit_events SET signature = (SELECT signature FROM audit_events WHERE seq = 1) WHERE seq = 2"
        )
        assert broken_links() == 1 and not trail.verify().ok
        cursor.execute("ALTER TABLE audit_events ALTER COLUMN prev_hash DROP NOT NULL")  # an administrator can
        cursor.execute("UPDATE audit_events SET prev_hash = NULL WHERE seq = 3")  # a NULL is never a link
        cursor.execute("UPDATE audit_events SET signature = %s WHERE seq = 2", (row["signature"],))
        assert broken_links() == 1
    conn.close()
