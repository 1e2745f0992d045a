"""Attacks through what the trail is given, each scripted as the attacker did it, with the refusal asserted.

* a 10 MiB reason (it flooded every report and verification);
* a confusable user name (Cyrillic ``а`` in ``alice``: stored as a denial that printed as alice);
* ``govern audit export --out audit.checkpoint.jsonl`` (it overwrote the append-only checkpoint).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from governance import trail
from governance.cli import main
from governance.errors import AuditError
from governance.trail import Subject

SUBJECT = Subject(model="govllm-sft", version="1")
FLOOD = "x" * (10 * 1024 * 1024)


@pytest.fixture
def store(tmp_path, monkeypatch):
    path = tmp_path / "audit.db"
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{path}")
    monkeypatch.setenv("GOVERN_POLICY_DIR", str(tmp_path / "policies"))
    monkeypatch.setenv("GOVERN_USER", "kim")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # none: the trail alone
    for name in ("GOVERN_TRAIL_KEY", "GOVERN_TRAIL_KEY_FILE", "GOVERN_TRAIL_CHECKPOINT"):
        monkeypatch.delenv(name, raising=False)
    return path


def approve(actor: str = "rev", reason: str = "ok", event_type: str = "approved") -> trail.Event:
    return trail.record(event_type, actor=actor, role="reviewer", subject=SUBJECT, reason=reason)


def forge_signed(store, **changes) -> None:
    """What a holder of the embedded key writes straight into the database, bypassing record()."""
    import sqlite3

    last = trail.head()
    key = trail.open_trail().signing_key()
    row = {**last.stored_row(), "seq": last.seq + 1, "prev_hash": last.hash, "timestamp": trail.now_utc(), **changes}
    row["hash"] = trail.row_hash(row)
    row["signature"] = key.sign(row["hash"])
    conn = sqlite3.connect(store)
    conn.execute(
        f"INSERT INTO audit_events ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
    )
    conn.commit()
    conn.close()


# -- unbounded reasons -------------------------------------------------------------


def test_a_10_mib_reason_is_refused_with_one_line(store, capsys):
    approve()
    with pytest.raises(AuditError) as info:
        approve(reason=FLOOD)
    assert str(info.value) == "reason is 10485760 bytes (max 4096); give a short reason and link the details"
    assert info.value.exit_code == 2 and len(trail.events()) == 1
    # …through the CLI too: one line, exit 2
    assert main(["audit", "rotate-key", "--reason", FLOOD]) == 2
    assert capsys.readouterr().err == (
        "govern: reason is 10485760 bytes (max 4096); give a short reason and link the details\n"
    )
    approve(reason="é" * 2048)  # 4096 bytes of UTF-8: at the bound, accepted
    with pytest.raises(AuditError, match=r"^reason is 4098 bytes \(max 4096\)"):
        approve(reason="é" * 2049)


def test_a_flooded_reason_written_around_record_is_a_finding_and_never_printed_in_full(store, capsys):
    approve()
    forge_signed(store, actor="mallory", reason=FLOOD)
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "govern: audit trail BROKEN: event #2 (approved govllm-sft v1 by mallory): reason is 10485760 bytes "
        f"(max 4096); `govern` refuses that at record time, so it was not written by it (sqlite:///{store})\n"
    )
    line = trail.events()[-1].line()
    assert len(line) < 4096 + 200 and line.endswith(f"… ({len(FLOOD) - 4096} more characters)")


def test_a_huge_actor_is_refused_and_never_printed_in_full(store, capsys):
    with pytest.raises(AuditError, match=r"^actor is 5000 characters \(max 200\); give a shorter actor$"):
        approve(actor="a" * 5000)
    approve()
    forge_signed(store, actor="m" * 100_000)
    result = trail.verify()
    assert result.findings == [
        f"event #2 (approved govllm-sft v1 by {'m' * 200}… (99800 more characters)): actor is 100000 characters "
        "(max 200); `govern` refuses that at record time, so it was not written by it"
    ]


# -- confusable user names -----------------------------------------------------------


def test_a_cyrillic_a_in_alice_is_refused_not_stored_as_a_denial(store):
    with pytest.raises(AuditError) as info:
        approve(actor="\u0430lice", event_type="permission_denied")
    assert str(info.value) == (
        "actor '\\u0430lice' mixes scripts Cyrillic (U+0430 at position 0) and Latin (U+006C at position 1); "
        "a user name is written in one script"
    )
    assert info.value.exit_code == 2 and trail.head() is None


def test_a_user_name_that_is_not_nfkc_is_refused_at_record_time(store):
    with pytest.raises(AuditError) as info:
        approve(actor="\uff41\uff4c\uff49\uff43\uff45")  # fullwidth "alice"
    assert str(info.value) == (
        "actor '\\uff41\\uff4c\\uff49\\uff43\\uff45' is not NFKC-normalised (it reads as 'alice'); "
        "give the user name in its normalised form"
    )


def test_the_acting_identity_is_normalised_and_one_script_names_pass(store):
    assert trail.normalize_user("\uff41\uff4c\uff49\uff43\uff45") == "alice"
    with pytest.raises(AuditError, match=r"^GOVERN_USER '\\u0430lice' mixes scripts Cyrillic"):
        trail.normalize_user("\u0430lice", "GOVERN_USER")
    for name in ("José", "o'brien-2", "Алиса", "山田たろう", "kim.lee@example.org", "svc_ci-bot"):
        assert approve(actor=name).actor == name


def test_a_confusable_name_written_around_record_is_a_finding(store):
    approve()
    forge_signed(store, actor="\u0430lice")
    assert trail.verify().findings == [
        "event #2 (approved govllm-sft v1 by \u0430lice): actor '\\u0430lice' mixes scripts Cyrillic (U+0430 at "
        "position 0) and Latin (U+006C at position 1); `govern` refuses that at record time, so it was not written "
        "by it"
    ]


# -- export over the trail's own files --------------------------------------------------


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("audit.checkpoint.jsonl", "the trail's checkpoint file"),
        ("audit.db", "the trail database"),
        ("audit.key", "the trail signing key"),
        ("audit.key.pub", "the trail's local public keys"),
        ("audit.checkpoint.verified.json", "the trail's verified-prefix record"),
        ("audit.key.backup", "a trail key file"),
    ],
)
def test_export_never_overwrites_a_trail_file(store, monkeypatch, capsys, name, role):
    approve()
    monkeypatch.chdir(store.parent)  # as the attacker typed it, beside audit.db
    before = {p.name: p.read_bytes() for p in store.parent.iterdir() if p.is_file()}
    assert main(["audit", "export", "--out", name, "--force"]) == 2
    assert capsys.readouterr().err == (
        f"govern: --out {name} is {role}; an export never overwrites the audit trail's files: choose another path\n"
    )
    assert {p.name: p.read_bytes() for p in store.parent.iterdir() if p.is_file()} == before
    assert trail.verify().ok


def test_export_refuses_a_link_to_the_checkpoint(store, tmp_path, capsys):
    approve()
    link = tmp_path / "out" / "trail.jsonl"
    link.parent.mkdir()
    os.symlink(store.with_name("audit.checkpoint.jsonl"), link)
    assert main(["audit", "export", "--out", str(link)]) == 2
    assert capsys.readouterr().err == (
        f"govern: --out {link} is the trail's checkpoint file; an export never overwrites the audit trail's files: "
        "choose another path\n"
    )
    assert trail.verify().ok


def test_export_overwrites_another_existing_file_only_with_force(store, tmp_path, capsys):
    event = approve()
    out = tmp_path / "archive" / "trail.jsonl"
    out.parent.mkdir()
    out.write_text("an earlier archive\n")
    assert main(["audit", "export", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"govern: --out {out} already exists; choose another path, or give --force to overwrite it\n"
    )
    assert out.read_text() == "an earlier archive\n"
    assert main(["audit", "export", "--out", str(out), "--force"]) == 0
    assert capsys.readouterr().out == f"exported 1 events to {out}; head {event.hash}\n"
    assert [e.hash for e in trail.read_export(out)] == [event.hash]
    assert sorted(p.name for p in out.parent.iterdir()) == ["trail.jsonl"]  # no temporary file left


def test_a_confusable_govern_user_is_refused_by_the_cli_before_anything_is_recorded(store, monkeypatch, capsys):
    from governance.identity import current_identity, local_identity

    monkeypatch.setenv("GOVERN_POLICY_DIR", str(Path(__file__).resolve().parents[2] / "policies"))
    monkeypatch.setenv("GOVERN_USER", "\u0430lice")
    assert main(["approve", "govllm-sft", "1", "--reason", "ok"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "govern: GOVERN_USER '\\u0430lice' mixes scripts Cyrillic (U+0430 at position 0) and Latin (U+006C at "
        "position 1); a user name is written in one script"
    ]
    assert trail.head() is None  # no denial stored under a name that prints as alice
    monkeypatch.setenv("GOVERN_USER", "\uff41\uff4c\uff49\uff43\uff45")  # fullwidth: normalised, not refused
    assert local_identity().user == "alice" and current_identity().user == "alice"
