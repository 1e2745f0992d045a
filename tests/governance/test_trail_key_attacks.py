"""Attacks on the trail's keys and identity, each scripted as the attacker did it, with the refusal or finding asserted.

* a replaced ``audit.key`` (the old code listed its public half and trusted it);
* a line added to ``policies/trail_keys.yaml`` and not committed (it was labelled "reviewed");
* events copied between two copies of a project that share a signing key;
* a store from before trail ids keeps verifying, and gains an id.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess

import pytest

from governance import trail
from governance.cli import main
from governance.errors import AuditError, TrailBroken
from governance.trail import Anchor, Subject

SUBJECT = Subject(model="govllm-sft", version="1")


@pytest.fixture
def store(tmp_path, monkeypatch):
    path = tmp_path / "audit.db"
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{path}")
    monkeypatch.setenv("GOVERN_POLICY_DIR", str(tmp_path / "policies"))
    monkeypatch.chdir(tmp_path)  # the project: its checkout is where a file's review is asked
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # none: the trail alone
    for name in ("GOVERN_TRAIL_KEY", "GOVERN_TRAIL_KEY_FILE", "GOVERN_TRAIL_CHECKPOINT"):
        monkeypatch.delenv(name, raising=False)
    return path


def approve(actor: str = "rev", url: str | None = None) -> trail.Event:
    return trail.record("approved", actor=actor, role="reviewer", subject=SUBJECT, reason="ok", url=url)


def insert(path, row: dict) -> None:
    conn = sqlite3.connect(path)
    conn.execute(
        f"INSERT INTO audit_events ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
    )
    conn.commit()
    conn.close()


def signed_after(last: trail.Event, key: trail.SigningKey, **changes) -> dict:
    """The next row after ``last``, hashed and signed with ``key`` (what a key holder writes)."""
    row = {
        **last.stored_row(),
        "seq": last.seq + 1,
        "prev_hash": last.hash,
        "prev_signature": last.signature,
        "key_id": key.key_id,
        **changes,
    }
    row["hash"] = trail.row_hash(row)
    row["signature"] = key.sign(row["hash"])
    return row


def verify_errors(capsys) -> list[str]:
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    where = f" ({trail.redacted(trail.open_trail().url)})"
    return [
        line.removeprefix("govern: audit trail BROKEN: ").removesuffix(where)
        for line in capsys.readouterr().err.splitlines()
    ]


def commit(folder, *files: str) -> None:
    """Commit ``files`` of ``folder`` in the project's repository (the test's working directory, a checkout)."""
    project = folder.parent
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    if not (project / ".git").exists():
        subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", *(str((folder / f).relative_to(project)) for f in files)], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "review"], check=True)


def listing(key: trail.SigningKey, owner: str) -> str:
    return f'  - {{id: "{key.key_id}", public_key: "{key.public_b64}", owner: {owner}, valid_from: 2026-01-01}}\n'


# -- a replaced audit.key ------------------------------------------------------


def test_a_replaced_audit_key_is_a_finding_and_every_action_refuses(store, capsys):
    original = approve()
    key_file, public_file = store.with_name("audit.key"), store.with_name("audit.key.pub")
    listed = public_file.read_text()
    # The attacker replaces the key file (as `rm audit.key` then any govern command did before)
    mallory = trail.generate_key()
    key_file.write_bytes(mallory.pem())
    finding = (
        f"{key_file}: holds key {mallory.key_id}, but this trail's key is {original.key_id}; the key file was "
        "replaced outside `govern audit rotate-key`: restore the previous key"
    )
    assert verify_errors(capsys) == [finding]
    with pytest.raises(TrailBroken) as info:
        trail.require_intact()
    assert str(info.value) == f"refusing to act on a broken audit trail: {finding}; see `govern audit verify`"
    # A record that skips require_intact is refused by the writer; nothing is listed or stored
    with pytest.raises(AuditError) as info:
        approve("mallory")
    assert str(info.value) == (
        f"the trail signing key {mallory.key_id} ({key_file}) is not this trail's key: event #1 was signed by "
        f"{original.key_id} and no `govern audit rotate-key` introduced {mallory.key_id}; the key was replaced, "
        "restore the previous key"
    )
    assert public_file.read_text() == listed and len(trail.events()) == 1


def test_a_replaced_key_listed_by_hand_still_cannot_sign_and_its_events_are_findings(store, capsys):
    original = approve()
    key_file, public_file = store.with_name("audit.key"), store.with_name("audit.key.pub")
    mallory = trail.generate_key()
    key_file.write_bytes(mallory.pem())
    with public_file.open("a") as handle:  # what the old code did for the attacker: list the new public half
        handle.write(f"{mallory.key_id} {mallory.public_b64}\n")
    with pytest.raises(AuditError, match=rf"^the trail signing key {mallory.key_id} \({key_file}\) is not this"):
        approve("mallory")
    insert(store, signed_after(original, mallory, actor="mallory", timestamp=trail.now_utc()))
    assert verify_errors(capsys) == [
        f"event #2 (approved govllm-sft v1 by mallory): signed by key {mallory.key_id} (local key, not reviewed "
        f"in git), which neither signed event #1 ({original.key_id}) nor was rotated in by a key_rotated event; "
        "the trail key was replaced outside `govern audit rotate-key`",
        f"{key_file}: holds key {mallory.key_id}, but this trail's key is {original.key_id}; the key file was "
        "replaced outside `govern audit rotate-key`: restore the previous key",
    ]


def test_a_deleted_audit_key_is_not_recreated_for_a_trail_with_events(store):
    approve()
    key_file = store.with_name("audit.key")
    key_file.unlink()
    with pytest.raises(AuditError) as info:
        approve()
    assert str(info.value) == (
        f"the trail signing key {key_file} is missing but the trail holds events; restore it from its backup "
        "(a new key is made only with a new trail; key changes go through `govern audit rotate-key`)"
    )
    assert not key_file.exists() and info.value.exit_code == 2


def test_a_key_another_process_created_with_the_first_event_is_used_not_refused_as_missing(tmp_path):
    # The race a full test run once hit: this process looked for audit.key before another process created it,
    # and asked whether the trail is empty after that process had written the first event with it
    from governance.trail.location import TrailFiles
    from governance.trail.signing import _create_default_key, load_signing_key, parse_private_key

    key_file = tmp_path / "audit.key"
    files = TrailFiles(
        default_key=key_file,
        local_public_keys=tmp_path / "audit.key.pub",
        checkpoint=None,
        trail_keys_policy=tmp_path / "trail_keys.yaml",
    )

    def the_other_process_won() -> bool:
        if not key_file.exists():
            _create_default_key(key_file)  # ... and signed the trail's first event with it
        return False

    key = load_signing_key(files, "sqlite:///audit.db", the_other_process_won)
    assert key.key_id == parse_private_key(key_file.read_bytes(), str(key_file)).key_id
    assert not list(tmp_path.glob("*.tmp"))


def test_the_key_changes_through_rotate_key_and_the_retired_key_cannot_come_back(store, capsys):
    first = approve()
    old_pem = store.with_name("audit.key").read_bytes()
    assert main(["audit", "rotate-key", "--reason", "laptop replaced"]) == 0
    new = approve()
    assert new.key_id != first.key_id
    capsys.readouterr()
    assert main(["audit", "verify"]) == 0
    store.with_name("audit.key").write_bytes(old_pem)  # the retired key put back in place
    assert verify_errors(capsys) == [
        f"{store.with_name('audit.key')}: holds key {first.key_id}, which was rotated out at #2; this trail's key "
        f"is {new.key_id}: finish the rotation (put the new key in place) or configure it"
    ]


# -- trail_keys.yaml: reviewed only when committed -----------------------------


def test_an_uncommitted_line_in_trail_keys_is_not_reviewed(store, tmp_path, monkeypatch):
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "trail_keys.yaml").write_text('version: "1"\nkeys: []\n')
    commit(policies, "trail_keys.yaml")
    release = trail.generate_key()
    monkeypatch.setenv("GOVERN_TRAIL_KEY", release.pem().decode())
    # The attacker appends a line and does not commit it
    with (policies / "trail_keys.yaml").open("w") as handle:
        handle.write('version: "1"\nkeys:\n' + listing(release, "release-eng"))
    approve()
    assert trail.verify().keys_used == {
        release.key_id: "listed in policies/trail_keys.yaml, not reviewed in git (uncommitted change), "
        "owner release-eng"
    }
    commit(policies, "trail_keys.yaml")  # reviewed: committed and unchanged
    assert trail.verify().keys_used == {release.key_id: "reviewed (policies/trail_keys.yaml, owner release-eng)"}


def test_outside_git_a_listed_key_is_not_reviewed(store, tmp_path, monkeypatch):
    policies = tmp_path / "policies"
    policies.mkdir()
    release = trail.generate_key()
    (policies / "trail_keys.yaml").write_text('version: "1"\nkeys:\n' + listing(release, "release-eng"))
    monkeypatch.setenv("GOVERN_TRAIL_KEY", release.pem().decode())
    approve()
    assert trail.verify().keys_used == {
        release.key_id: "listed in policies/trail_keys.yaml, not reviewed in git (not a git checkout), "
        "owner release-eng"
    }


def test_a_key_slipped_into_trail_keys_uncommitted_cannot_take_over_a_trail(store, tmp_path, monkeypatch, capsys):
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "trail_keys.yaml").write_text('version: "1"\nkeys: []\n')
    commit(policies, "trail_keys.yaml")
    original = approve()  # the embedded key
    mallory = trail.generate_key()
    (policies / "trail_keys.yaml").write_text('version: "1"\nkeys:\n' + listing(mallory, "release-eng"))
    monkeypatch.setenv("GOVERN_TRAIL_KEY", mallory.pem().decode())
    with pytest.raises(AuditError) as info:
        approve("mallory")
    assert str(info.value) == (
        f"the trail signing key {mallory.key_id} is listed in policies/trail_keys.yaml, not reviewed in git "
        f"(uncommitted change); a key that did not sign event #1 ({original.key_id}) signs only once the trail's "
        "key rotated it in: `govern audit rotate-key --new-key-file FILE` (a listing in policies, even reviewed, is "
        "not a rotation)"
    )
    monkeypatch.delenv("GOVERN_TRAIL_KEY")
    insert(store, signed_after(original, mallory, actor="mallory", timestamp=trail.now_utc()))
    assert verify_errors(capsys) == [
        f"event #2 (approved govllm-sft v1 by mallory): signed by key {mallory.key_id} (listed in "
        "policies/trail_keys.yaml, not reviewed in git (uncommitted change), owner release-eng), which neither "
        f"signed event #1 ({original.key_id}) nor was rotated in by a key_rotated event; the trail key was "
        "replaced outside `govern audit rotate-key`"
    ]


def test_a_newly_listed_key_signs_only_after_a_rotation_by_the_trusted_key_even_when_reviewed(
    store, tmp_path, monkeypatch, capsys
):
    """K1's second half: a key listed in a reviewed commit (or one made to look reviewed) cannot take over a trail."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "trail_keys.yaml").write_text('version: "1"\nkeys: []\n')
    commit(policies, "trail_keys.yaml")
    original = approve()  # the embedded key starts the trail
    release = trail.generate_key()
    (policies / "trail_keys.yaml").write_text('version: "1"\nkeys:\n' + listing(release, "release-eng"))
    commit(policies, "trail_keys.yaml")  # reviewed
    monkeypatch.setenv("GOVERN_TRAIL_KEY", release.pem().decode())
    with pytest.raises(AuditError, match=rf"^the trail signing key {release.key_id} is reviewed .* signs only once the "
                       "trail's key rotated it in"):
        approve("release")
    monkeypatch.delenv("GOVERN_TRAIL_KEY")
    insert(store, signed_after(original, release, actor="release", timestamp=trail.now_utc()))
    assert verify_errors(capsys) == [
        f"event #2 (approved govllm-sft v1 by release): signed by key {release.key_id} (reviewed "
        f"(policies/trail_keys.yaml, owner release-eng)), which neither signed event #1 ({original.key_id}) nor was "
        "rotated in by a key_rotated event; the trail key was replaced outside `govern audit rotate-key`"
    ]


# -- two copies of a project sharing a key -------------------------------------


def test_events_copied_from_another_copy_sharing_the_key_are_findings(store, tmp_path, capsys):
    production = f"sqlite:///{store}"
    trail.verify(url=production)  # set up: the store exists (its trail id minted), no events yet
    trail.open_trail(production).signing_key()  # …and its key
    staging_dir = tmp_path / "staging"
    staging_dir.mkdir()
    for name in ("audit.key", "audit.key.pub"):  # a copy of the project that shares the key
        shutil.copy(store.with_name(name), staging_dir / name)
    staging = f"sqlite:///{staging_dir / 'audit.db'}"
    copied = [approve(f"rev{i}", url=staging) for i in range(2)]
    # The attacker moves staging's approvals (and its checkpoint) into production
    conn = sqlite3.connect(staging_dir / "audit.db")
    conn.row_factory = sqlite3.Row
    for row in conn.execute("SELECT * FROM audit_events ORDER BY seq"):
        insert(store, dict(row))
    conn.close()
    shutil.copy(staging_dir / "audit.checkpoint.jsonl", store.with_name("audit.checkpoint.jsonl"))
    ours, theirs = trail.open_trail(production).trail_id(), trail.open_trail(staging).trail_id()
    assert ours != theirs and copied[0].trail_id == theirs
    assert verify_errors(capsys) == [
        f"event #{i + 1} (approved govllm-sft v1 by rev{i}): belongs to trail {theirs}, not this trail {ours}; "
        "it was copied from another copy of the project that shares its signing key"
        for i in range(2)
    ]
    with pytest.raises(TrailBroken, match=r"^refusing to act on a broken audit trail: event #1 .* \(and 1 more\)"):
        trail.require_intact()


def test_every_event_carries_the_store_trail_id_in_its_hash(store):
    event = approve()
    assert event.trail_id == trail.open_trail().trail_id() and len(event.trail_id) == 32
    assert trail.row_hash(event.stored_row()) == event.hash
    assert trail.row_hash({**event.stored_row(), "trail_id": "0" * 32}) != event.hash
    assert trail.row_hash({**event.stored_row(), "trail_id": ""}) != event.hash  # blanking it is an edit too
    assert "trail id: " + event.trail_id in trail.verify().detail_lines()


def test_a_deleted_trail_id_record_is_a_finding_and_appends_refuse(store, capsys):
    approve()
    instance = trail.open_trail().trail_id()
    conn = sqlite3.connect(store)
    conn.execute("DROP TRIGGER audit_trail_meta_no_delete")
    conn.execute("DELETE FROM audit_trail_meta")
    conn.commit()
    conn.close()
    assert verify_errors(capsys) == [
        f"the trail's instance id (audit_trail_meta.trail_id) is missing but its events belong to trail {instance}; "
        "it was deleted"
    ]
    with pytest.raises(AuditError, match=r"has lost its instance id \(audit_trail_meta.trail_id was deleted\)"):
        approve()


# -- a store from before trail ids -----------------------------------------------


_OLD_SCHEMA = (
    "CREATE TABLE audit_events (seq INTEGER PRIMARY KEY, event_type VARCHAR(40) NOT NULL, actor VARCHAR(200) NOT NULL,"
    " role VARCHAR(200) NOT NULL, identity_method VARCHAR(40) NOT NULL, timestamp VARCHAR(40) NOT NULL,"
    " subject_model VARCHAR(300) NOT NULL, subject_version VARCHAR(40) NOT NULL,"
    " subject_objective VARCHAR(300) NOT NULL, subject_objective_hash VARCHAR(64) NOT NULL, reason TEXT NOT NULL,"
    " evidence TEXT NOT NULL, details TEXT NOT NULL, prev_hash VARCHAR(64) NOT NULL UNIQUE,"
    " key_id VARCHAR(40) NOT NULL, hash VARCHAR(64) NOT NULL UNIQUE, signature VARCHAR(100) NOT NULL)"
)


def test_a_store_from_before_trail_ids_still_verifies_and_gains_an_id(store, capsys):
    key = trail.generate_key()
    store.with_name("audit.key").write_bytes(key.pem())
    store.with_name("audit.key.pub").write_text(f"{key.key_id} {key.public_b64}\n")
    conn = sqlite3.connect(store)
    conn.execute(_OLD_SCHEMA)
    prev, rows = trail.GENESIS_HASH, []
    for seq in (1, 2):
        row = {
            "seq": seq, "event_type": "approved", "actor": f"old{seq}", "role": "reviewer",
            "identity_method": "local-unverified", "timestamp": trail.now_utc(), "subject_model": "govllm-sft",
            "subject_version": "1", "subject_objective": "", "subject_objective_hash": "", "reason": "ok",
            "evidence": "{}", "details": "{}", "prev_hash": prev, "key_id": key.key_id,
        }  # fmt: skip
        row["hash"] = prev = trail.row_hash(row)  # hashed as the older govern did: no trail id
        row["signature"] = key.sign(row["hash"])
        conn.execute(
            f"INSERT INTO audit_events ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
        )
        rows.append(row)
    conn.commit()
    conn.close()
    with store.with_name("audit.checkpoint.jsonl").open("w") as handle:
        for row in rows:
            handle.write(
                Anchor(seq=row["seq"], hash=row["hash"], key_id=key.key_id, signature=row["signature"]).line() + "\n"
            )
    # Opened by this govern: the column is added, the old events verify, new ones carry the minted id
    result = trail.verify()
    assert result.ok and result.legacy_events == 2, result.findings
    new = approve()
    assert new.trail_id == trail.open_trail().trail_id() and new.trail_id
    lines = trail.verify().detail_lines()
    assert lines[-1] == f"trail id: {new.trail_id} (2 events from before trail ids)"
    # An event without an id after one that has it was inserted (an older govern, or copied in)
    older = signed_after(new, key, actor="old3", trail_id="")
    legacy = {k: v for k, v in older.items() if k not in ("trail_id", "prev_signature")}
    legacy["hash"] = trail.row_hash(legacy)
    legacy["signature"] = key.sign(legacy["hash"])
    insert(store, legacy)
    assert verify_errors(capsys) == [
        "event #4 (approved govllm-sft v1 by old3): written without a trail id after event #3, which has one; "
        "it was inserted by an older govern or copied in"
    ]


def test_a_checkout_older_than_the_trail_is_diagnosed_as_stale_not_forged(store, tmp_path, monkeypatch, capsys):
    """Issue 41: a clone that has not pulled the team's set-up commit sees the team key as unknown: say `git pull`."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "trail_keys.yaml").write_text('version: "1"\nkeys: []\n')
    commit(policies, "trail_keys.yaml")
    release = trail.generate_key()
    (policies / "trail_keys.yaml").write_text('version: "1"\nkeys:\n' + listing(release, "release-eng"))
    commit(policies, "trail_keys.yaml")  # the team's set-up commit
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "update-ref", "refs/remotes/origin/main", "HEAD"], check=True)
    monkeypatch.setenv("GOVERN_TRAIL_KEY", release.pem().decode())
    approve()  # the trail, started with the team's key
    monkeypatch.delenv("GOVERN_TRAIL_KEY")
    subprocess.run([*git, "reset", "-q", "--hard", "HEAD~1"], check=True)  # this clone, before the set-up commit
    listed = subprocess.run([*git, "rev-parse", "origin/main"], check=True, capture_output=True, text=True)
    diagnosis = (
        f"signed by key {release.key_id}, which this checkout's {policies / 'trail_keys.yaml'} does not list but "
        f"commit {listed.stdout[:12]} (origin/main) does: this checkout's policy is older than the trail; `git pull`, "
        "then verify again (every action refuses until then)"
    )
    assert verify_errors(capsys) == [
        f"event #1 (approved govllm-sft v1 by rev): {diagnosis}",
        f"checkpoint {store.with_name('audit.checkpoint.jsonl')}:1: head #1 is {diagnosis}",
    ]
    with pytest.raises(AuditError):  # still refused: a diagnosis, never trust
        approve("bob")
