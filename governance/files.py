"""Files written whole or not at all: a reader sees the old file or the complete new one, never a part.

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
