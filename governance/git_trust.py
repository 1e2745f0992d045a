"""git as a trust decision runs it, and what the files of a checkout are against its commit.

Below every other module that asks git anything it then believes (the review check of
:mod:`governance.policy.review`, the commit a training lineage records, a reproduction's worktree): git runs
with none of the caller's ``GIT_*`` variables, replace refs and grafts off (:func:`git_environment`), and a
file's blob id is computed here from its bytes (:func:`blob_id`), never asked of git, so neither an index
flag (``--assume-unchanged``, ``--skip-worktree``) nor a local clean filter changes the answer.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

#: How long one git call may take before its answer counts as none (the file as not reviewed, the commit unknown).
GIT_TIMEOUT_S = 10


def git_environment() -> dict[str, str]:
    """The environment git runs in for a trust decision: no caller ``GIT_*`` variable, no replace refs, no grafts."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(
        GIT_NO_REPLACE_OBJECTS="1",
        GIT_GRAFT_FILE=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        GIT_OPTIONAL_LOCKS="0",
        LC_ALL="C",
    )
    return env


def git(args: list[str], cwd: Path, *, text: bool = True) -> subprocess.CompletedProcess:
    """git with ``args`` in ``cwd``, as a trust decision runs it (:func:`git_environment`, replace refs off)."""
    return subprocess.run(
        ["git", "-c", "core.useReplaceRefs=false", *args],
        cwd=cwd,
        env=git_environment(),
        capture_output=True,
        text=text,
        timeout=GIT_TIMEOUT_S,
        check=False,
    )


def blob_id(data: bytes, length: int) -> str:
    """Git's object id of a blob holding ``data`` (SHA-1, or SHA-256 in a repository that uses it)."""
    digest = hashlib.sha256() if length == 64 else hashlib.sha1()
    digest.update(b"blob %d\0" % len(data) + data)
    return digest.hexdigest()


#: Rewritten by ``dvc repro`` itself as stages finish: it does not make the code dirty
NOT_CODE = ("dvc.lock",)


def checkout_state(repo: str | Path = ".") -> dict[str, object]:
    """The commit checked out at ``repo`` and whether the files there differ from it, as recorded in a lineage.

    ``{"commit": id, "dirty": bool, "changed": [up to 20 paths]}``, or ``{"commit": "unknown", "dirty": None,
    "changed": []}`` outside git. Dirty is decided from the bytes, not from git's own status: each file of the
    commit's tree is read and its blob id computed here (:func:`blob_id`), so neither ``git update-index
    --assume-unchanged``/``--skip-worktree``, nor a clean filter in ``.git/info/attributes``, nor an index or
    ``GIT_DIR`` of one's own (git runs with the review check's clean environment) hides an edit; a file staged
    that the commit lacks counts too. ``dvc.lock`` (:data:`NOT_CODE`) is left out.
    """
    repo = Path(repo)
    try:
        head = git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], repo)
        if head.returncode != 0 or not head.stdout.strip():
            return {"commit": "unknown", "dirty": None, "changed": []}
        top = Path(git(["rev-parse", "--show-toplevel"], repo).stdout.strip())
        tree = git(["ls-tree", "-r", "-z", "--full-tree", head.stdout.strip()], repo, text=False)
        staged = git(["ls-files", "-z", "--full-name"], top, text=False)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return {"commit": "unknown", "dirty": None, "changed": []}
    committed: dict[str, tuple[str, str]] = {}
    for entry in tree.stdout.split(b"\0"):
        if entry:
            meta, _, name = entry.partition(b"\t")
            mode, _, blob = meta.decode().split(" ")
            committed[name.decode("utf-8", "surrogateescape")] = (mode, blob)
    changed = [
        name for name, (mode, blob) in committed.items() if name not in NOT_CODE and _differs(top / name, mode, blob)
    ]
    changed += [
        name
        for name in (n.decode("utf-8", "surrogateescape") for n in staged.stdout.split(b"\0") if n)
        if name not in committed and name not in NOT_CODE
    ]
    return {"commit": head.stdout.strip(), "dirty": bool(changed), "changed": sorted(changed)[:20]}


def _differs(path: Path, mode: str, blob: str) -> bool:
    """Whether the file at ``path`` is not the committed ``blob`` of ``mode`` (a submodule is left to its own)."""
    if mode == "160000":
        return False
    try:
        if mode == "120000":
            data = os.readlink(path).encode("utf-8", "surrogateescape")
        elif path.is_symlink():
            return True
        else:
            data = path.read_bytes()
    except OSError:
        return True  # deleted, or unreadable: not the committed file
    if mode in ("100644", "100755") and path.is_file() and (os.access(path, os.X_OK) != (mode == "100755")):
        return True
    return blob_id(data, len(blob)) != blob
