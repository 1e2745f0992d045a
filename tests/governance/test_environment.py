"""The installed environment against its own records: files edited in place, missing, stray start-up hooks."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path

from governance.environment import installed_file_differences


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _install(site: Path, name: str, files: dict[str, str]) -> None:
    """A package as pip leaves it: its files, and a ``.dist-info`` whose ``RECORD`` lists each with its digest."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    rows = [f"{info.name}/METADATA,sha256={_digest((info / 'METADATA').read_bytes())},1"]
    for relative, text in files.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_text(text)
        rows.append(f"{relative},sha256={_digest(text.encode())},{len(text)}")
    rows.append(f"{info.name}/RECORD,,")
    (info / "RECORD").write_text("\n".join(rows) + "\n")


def test_an_environment_as_installed_matches_its_records(tmp_path):
    _install(tmp_path, "recognizers", {"recognizers/__init__.py": "THRESHOLD = 0.5\n", "recognizers.pth": "./x\n"})
    check = installed_file_differences([str(tmp_path)])
    assert check.ok and check.lines() == []
    assert (check.distributions, check.files) == (1, 3)  # the .pth its package installed is listed, not a stray


def test_a_file_edited_in_place_a_deleted_one_and_stray_start_up_hooks_are_each_named(tmp_path):
    package = {"recognizers/__init__.py": "THRESHOLD = 0.5\n", "recognizers/card.py": "X = 1\n"}
    _install(tmp_path, "recognizers", package)
    (tmp_path / "recognizers/__init__.py").write_text("THRESHOLD = 1.01\n")  # a patch nobody reverted
    (tmp_path / "recognizers/card.py").unlink()
    (tmp_path / "zz-hook.pth").write_text("import os\n")  # Python runs a .pth's import lines in every process
    (tmp_path / "sitecustomize.py").write_text("print('hello')\n")
    check = installed_file_differences([str(tmp_path)])
    assert not check.ok
    assert check.changed == ["recognizers: recognizers/__init__.py"]
    assert check.missing == ["recognizers: recognizers/card.py"]
    assert sorted(Path(h).name for h in check.unlisted_hooks) == ["sitecustomize.py", "zz-hook.pth"]
    lines = check.lines()
    assert lines[0] == (
        "1 file(s) differ from the SHA-256 their package's RECORD lists: recognizers: recognizers/__init__.py"
    )
    assert lines[1].startswith("1 file(s) their package's RECORD lists are missing")
    assert lines[2].startswith("2 start-up hook(s) no package installed")


def test_a_deleted_file_is_named_even_where_importlib_metadata_hides_missing_files(tmp_path):
    """``importlib_metadata`` (imported by MLflow and others) adds a finder whose ``files`` skip the files that no
    longer exist: the check reads each RECORD as written, so what was deleted is still reported."""
    import importlib_metadata  # noqa: F401 - its import installs the finder, as in any stage that imports MLflow

    _install(tmp_path, "recognizers", {"recognizers/__init__.py": "X = 1\n", "recognizers/card.py": "Y = 2\n"})
    (tmp_path / "recognizers/card.py").unlink()
    check = installed_file_differences([str(tmp_path)])
    assert check.missing == ["recognizers: recognizers/card.py"] and check.distributions == 1


def test_govern_doctor_environment_reads_this_suites_own_environment():
    """One lean run of the whole check on the real environment (a few GB hashed: seconds)."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "govern"), "doctor", "--environment"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    lines = [line for line in result.stdout.splitlines() if " environment " in line]
    assert lines[0] == "ok      environment every package of requirements.lock installed at its pinned version"
    assert lines[1].startswith("ok      environment ") and "match their RECORD; no stray start-up hook" in lines[1]
