"""Files written whole or not at all (governance.files), and the writers that go through it."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator

import pytest

from governance.errors import DataError
from governance.files import atomic_writer, write_atomic
from governance.records import write_jsonl


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "decision.json"
    path.write_text("old\n")
    with pytest.raises(RuntimeError, match="disk full"), atomic_writer(path, encoding="utf-8") as handle:
        handle.write("half of the new")
        raise RuntimeError("disk full")
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decision.json"]


def test_a_completed_write_replaces_the_file_and_creates_its_folder(tmp_path):
    path = tmp_path / "a" / "b" / "manifest.json"
    assert write_atomic(path, "ünïcode\n") == path
    assert path.read_bytes() == "ünïcode\n".encode()
    write_atomic(path, b"\x00bytes")
    assert path.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in path.parent.iterdir()) == ["manifest.json"]


def test_permissions_apply_to_the_new_file(tmp_path):
    key = tmp_path / "trail.key"
    key.write_bytes(b"old key")
    key.chmod(0o644)
    write_atomic(key, b"new key", permissions=0o600)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    umask = os.umask(0)
    os.umask(umask)
    plain = write_atomic(tmp_path / "plain.json", "{}")
    assert stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~umask


def test_two_writers_of_one_path_never_share_a_temporary_file(tmp_path):
    path = tmp_path / "out.json"
    with atomic_writer(path) as first, atomic_writer(path) as second:
        first.write(b"first")
        second.write(b"second")
        assert first.name != second.name
    # the outer block ends last: its body is the file's
    assert path.read_bytes() == b"first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_records_that_fail_half_way_leave_no_output_and_no_temporary_file(tmp_path):
    """A stage's reader finds bad input after writing some rows: the output folder holds nothing of this run."""
    out = tmp_path / "prepared"

    def rows() -> Iterator[dict]:
        yield {"prompt": "p1", "completion": "c1"}
        raise DataError("data/raw/sft.jsonl:2: field 'completion' is missing")

    with pytest.raises(DataError, match="sft.jsonl:2"):
        write_jsonl(out / "train.jsonl", rows())
    assert list(out.iterdir()) == []
    assert write_jsonl(out / "train.jsonl", [{"b": 1, "a": 2}]) == 1
    assert (out / "train.jsonl").read_text() == json.dumps({"a": 2, "b": 1}) + "\n"


def test_a_dataset_that_changed_under_the_redaction_leaves_no_cleared_copy(tmp_path):
    """The scan found PII on line 2; by redaction time line 2 is no longer JSON: one error, nothing in cleared/."""
    from governance.pii.redact import Redactor, write_cleared_copy

    src = tmp_path / "sft.jsonl"
    src.write_text('{"prompt": "hi"}\n{"prompt": "mail <EMAIL_ADDRESS> please"\n')
    cleared = tmp_path / "cleared"
    with pytest.raises(DataError, match=r"sft\.jsonl:2: changed while being redacted"):
        write_cleared_copy(src, cleared / "sft.jsonl", {2: [("prompt", 5, 20, "EMAIL_ADDRESS")]}, Redactor())
    assert list(cleared.iterdir()) == []
