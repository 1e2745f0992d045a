"""Whether a file under policies/ is what git's history says: committed, and unchanged in the working tree.

A key listed in ``policies/trail_keys.yaml`` or pinned as
``policies/keys/model_signing.pub`` is trusted as *reviewed* because the
commit that added it went through code review. That holds only for the bytes
in that commit: a line added to the file and not committed is anyone's edit.
:func:`review_status` asks git for the file's blob at ``HEAD`` and compares it
with the bytes on disk (the equivalent of the file being tracked and
``git diff --quiet HEAD -- FILE``, without git's filters: byte for byte).

Trust boundary: git's object store at ``HEAD`` is believed (whoever can
commit can review-bypass; that is what branch protection is for); the
working-tree file is believed only when it equals that blob. Outside a git
checkout (a deployed copy without ``.git``) nothing is reviewed.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

#: How long one git call may take before the file counts as not reviewed.
_GIT_TIMEOUT_S = 10


def _blob_id(data: bytes, length: int) -> str:
    """Git's object id of a blob holding ``data`` (SHA-1, or SHA-256 in a repository that uses it)."""
    digest = hashlib.sha256() if length == 64 else hashlib.sha1()
    digest.update(b"blob %d\0" % len(data) + data)
    return digest.hexdigest()


def review_status(path: Path) -> str | None:
    """``None`` when ``path`` is committed at ``HEAD`` and unchanged on disk; otherwise why it is not reviewed.

    The reasons: ``"not a git checkout"``, ``"git not available"``, ``"not
    committed"`` (no such path at ``HEAD``), ``"uncommitted change"`` (the
    working file differs from ``HEAD``'s).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError:
        return "not readable"
    try:
        result = subprocess.run(
            ["git", "-C", str(path.parent.resolve()), "rev-parse", "--verify", "--quiet", f"HEAD:./{path.name}"],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        return "git not available"
    except subprocess.TimeoutExpired:
        return "git did not answer"
    if result.returncode == 128:
        log.info("%s: git says %s", path, (result.stderr.strip().splitlines() or ["?"])[0])
        return "not a git checkout"
    blob = result.stdout.strip()
    if result.returncode != 0 or not blob:
        return "not committed"
    return None if _blob_id(data, len(blob)) == blob else "uncommitted change"
