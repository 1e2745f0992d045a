"""A dataset file read once: its bytes, their hashes, and the records parsed from those same bytes.

What this module believes: nothing but the buffer. :func:`read_hashed` reads a
file's bytes once and hashes that buffer; :meth:`HashedFile.records` and
:meth:`HashedFile.dataset` parse the same buffer, never the path again. So
the SHA-256 a caller checks against a gate decision, or records in a
manifest, is the hash of exactly what it trains on: a file swapped on disk
after the read (and swapped back) changes nothing the caller holds.

Records are parsed as :func:`governance.records.iter_records` parses a JSON
Lines file: the same values and the same ``file:line`` messages.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance.errors import DataError
from governance.records import Record, jsonl_records


@dataclass(frozen=True)
class HashedFile:
    """A file's bytes as read once, with the SHA-256 (ours) and MD5 (DVC's) of exactly those bytes."""

    path: str
    data: bytes
    sha256: str
    md5: str

    def ref(self) -> dict[str, str]:
        """The manifest's entry for this file: ``{"sha256", "md5"}`` of the buffer (what ``file_refs`` gives)."""
        return {"sha256": self.sha256, "md5": self.md5}

    def records(self) -> list[Record]:
        """The JSON Lines records of the buffer; errors name ``file:line`` as ``iter_records`` does."""
        if Path(self.path).suffix.lower() != ".jsonl":
            raise DataError(
                f"{self.path}: training reads JSON Lines (.jsonl), parsed from the bytes it hashed; "
                f"got {Path(self.path).suffix or 'no suffix'!r}"
            )
        rows = list(jsonl_records(io.BytesIO(self.data), self.path))  # split as a file handle splits (on \n only)
        if not rows:
            raise DataError(f"{self.path}: no records (empty file)")
        return rows

    def columns(self, required: Sequence[str], optional: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Each record's ``required`` fields (refused, naming ``file:line``, when one is missing) and ``optional``
        ones (None when absent); every other field stays behind."""
        rows = []
        for record in self.records():
            missing = [c for c in required if c not in record.data]
            if missing:
                raise DataError(f"{self.path}:{record.line}: field {missing[0]}: required field is missing")
            rows.append({c: record.data[c] for c in required} | {c: record.data.get(c) for c in optional})
        return rows

    def dataset(self, required: Sequence[str], optional: Sequence[str] = ()):
        """:meth:`columns` as a ``datasets.Dataset`` (what TRL's trainers take)."""
        from datasets import Dataset

        return Dataset.from_list(self.columns(required, optional))


def read_hashed(path: str | Path) -> HashedFile:
    """Read ``path`` once and hash that buffer; :class:`DataError` when it is not a readable file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc.__class__.__name__})") from None
    return HashedFile(str(path), data, hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest())
