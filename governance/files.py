"""Files written whole or not at all (a reader sees the old file or the complete new one, never a part), and
cache files read only when they are the user's own (:func:`read_private`).

Every file the project writes for another step to trust (a gate decision, a
stage's records, a manifest, a findings report, a signing key, the report
index) goes through :func:`atomic_writer`. It writes a temporary file next to
the target, named per process and call so two writers never share one, and
renames it over the target only once the body is complete. When writing
fails (bad input found half-way, a full disk, Ctrl-C), the temporary file is
removed: nothing is left in a stage's output folder for a later run or a
reader to mistake for output.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_writer(path: str | Path, *, encoding: str | None = None, permissions: int = 0o666) -> Iterator[IO[Any]]:
    """A handle on a temporary file that replaces ``path`` when the block ends without an exception.

    Binary unless ``encoding`` is given. ``permissions`` applies before the
    umask, as for :func:`open` (``0o600`` for a private key). The folder is
    created when missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, permissions)
    try:
        with os.fdopen(descriptor, "w" if encoding else "wb", encoding=encoding) as handle:
            yield handle
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: bytes | str, *, permissions: int = 0o666) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` whole or not at all; returns the path."""
    with atomic_writer(path, permissions=permissions) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def read_private(path: str | Path) -> tuple[bytes | None, str | None]:
    """A cache file's bytes if this user owns it and nobody else may write it; else ``(None, why)``.

    What the project caches to save time (compiled PII prefilter databases, code point tables, baseline
    embeddings) decides as much as the code that would recompute it, so it is read only from a file that
    only its owner, the user running the command, could have written: opened without following a symlink,
    and checked on the open descriptor (``fstat``), so the bytes read are the file checked. A file owned by
    another user, or writable by the group or others (a shared ``GOVERN_CACHE_DIR``), is not read: the
    caller recomputes. Returns ``(None, None)`` for a file that does not exist.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None, None
    except OSError as exc:  # a symlink (ELOOP), a folder, no permission
        return None, f"not opened ({exc.strerror or exc.__class__.__name__})"
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(handle.fileno())
        if status.st_uid != os.getuid():
            return None, f"owned by uid {status.st_uid}, not this user ({os.getuid()})"
        if status.st_mode & 0o022:
            who = "the group" if status.st_mode & 0o020 else "others"
            return None, f"writable by {who} (mode {status.st_mode & 0o777:o})"
        return handle.read(), None
