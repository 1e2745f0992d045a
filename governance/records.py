"""Streaming readers for dataset files, with errors that name file, line and field.

Every gate and stage reads records through :func:`iter_records`, so bad input
is reported the same way everywhere: ``data/raw/sft.jsonl:118: invalid JSON
(Expecting ',' delimiter at column 40)``. Readers stream; a 1M-record file is
never held in memory.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance.errors import DataError
from governance.files import atomic_writer

try:  # optional speed-up: loads_record falls back to json, with the same values and messages
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; a bare install still reads records
    orjson = None

#: A single record larger than this is refused rather than parsed: a runaway
#: line (a whole file without newlines, a base64 blob) is an input error.
MAX_RECORD_BYTES = 8 * 1024 * 1024

#: JSON nested deeper than this is refused before it is parsed. Chat, preference
#: and tool-call records are under 10 levels; Python's parser, the field walkers,
#: pydantic and pandas all recurse per level, and ~1,000 levels end in a
#: RecursionError (or a crash) far from the line that caused it.
MAX_NESTING_DEPTH = 64

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
#: A ``\uD800``-``\uDFFF`` escape: JSON lets it stand alone, Unicode (and every writer) does not
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
#: A run of digits long enough to be an integer orjson would read as a float (beyond 64 bits), looked for
#: as 19 zeros once every digit is a zero and every other byte a space (a tenth of a regex search's time).
_LONG_DIGITS = b"0" * 19
_DIGITS_AS_ZEROS = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_BRACKETS = re.compile(rb"[\[\]{}]")

SUPPORTED_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


@dataclass(frozen=True)
class Record:
    """One record of a dataset: its 1-based line (or row) number and its fields."""

    line: int
    data: dict[str, Any]


class ReadDigest:
    """The SHA-256 of every byte a reader took from a file: what a gate binds is what it read.

    Pass one to :func:`iter_records` (``digest=``); once the records are read,
    :attr:`sha256` is the hash of exactly those bytes, so a file swapped while
    it was read (or between the read and a separate hash) is never bound to a
    verdict about other bytes.
    """

    def __init__(self) -> None:
        import hashlib

        self._hash = hashlib.sha256()
        self.bytes = 0

    def update(self, data: bytes) -> bytes:
        self._hash.update(data)
        self.bytes += len(data)
        return data

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def iter_records(path: str | Path, *, allow_empty: bool = False, digest: ReadDigest | None = None) -> Iterator[Record]:
    """Yield the records of a JSONL, JSON-array, CSV or Parquet file, streaming.

    With ``digest``, every byte read is hashed into it (JSONL streams; the other
    formats are read into memory once and parsed from that buffer).

    Raises :class:`DataError` naming the file and line for a missing or empty
    file, invalid UTF-8, invalid JSON, a record that is not an object, or a
    record over :data:`MAX_RECORD_BYTES`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        records = _iter_jsonl(path, digest)
    elif suffix == ".json":
        records = _iter_json_array(path, digest)
    elif suffix == ".csv":
        records = _iter_csv(path, digest)
    elif suffix == ".parquet":
        records = _iter_parquet(path, digest)
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r} (expected one of {', '.join(SUPPORTED_SUFFIXES)})")
    seen = 0
    for record in records:
        seen += 1
        yield record
    if seen == 0 and not allow_empty:
        raise DataError(f"{path}: no records (empty file)")


def read_records(path: str | Path) -> list[Record]:
    """Read a whole (small) dataset file; see :func:`iter_records`."""
    return list(iter_records(path))


def nesting_depth(raw: bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest (brackets inside strings do not count).

    Cheap for ordinary records: a text with no more opening brackets than
    :data:`MAX_NESTING_DEPTH` cannot nest deeper, so only bracket-heavy texts
    are walked (strings removed first, then only the brackets visited).
    """
    opening = raw.count(b"[") + raw.count(b"{")
    if opening <= MAX_NESTING_DEPTH:
        return opening
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub(b'""', raw)):
        if bracket in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads_record(raw: bytes | str, where: str) -> Any:
    """Parse one JSON text safely: any failure is a one-line :class:`DataError` naming ``where``.

    ``where`` is ``file:line`` (or ``file``). Refused, never raised as a
    traceback: invalid JSON, nesting over :data:`MAX_NESTING_DEPTH`, integers
    past Python's digit limit, and anything that would exhaust the parser's
    recursion or memory.
    """
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    depth = nesting_depth(data)
    if depth > MAX_NESTING_DEPTH:
        raise DataError(f"{where}: JSON nested {depth} levels deep (max {MAX_NESTING_DEPTH}); flatten the record")
    # orjson parses a record in about half json's time and gives the same value, except that it reads an
    # integer beyond 64 bits as a float (any such literal has 19 digits or more) and refuses what json
    # accepts (NaN, lone surrogates, a BOM, UTF-16): those records, and every record orjson refuses, go to
    # json, whose value or error message is the one reported.
    if orjson is not None and _LONG_DIGITS not in data.translate(_DIGITS_AS_ZEROS):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    try:
        # Without its line break: a line cut short is reported at its end, not at "column 1" of the next line.
        value = json.loads(raw.rstrip(b"\r\n" if isinstance(raw, bytes) else "\r\n"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: invalid JSON ({_json_message(exc)})") from None
    except RecursionError:
        raise DataError(
            f"{where}: JSON nested too deeply to parse (max {MAX_NESTING_DEPTH}); flatten the record"
        ) from None
    except MemoryError:
        raise DataError(f"{where}: record too large to parse in memory; split it") from None
    except ValueError as exc:  # e.g. an integer over sys.get_int_max_str_digits() digits
        raise DataError(f"{where}: invalid JSON value ({exc})") from None
    if _SURROGATE_ESCAPE.search(data):
        refuse_lone_surrogates(value, where)
    return value


def _plain_object(raw: bytes) -> dict | None:
    """The JSON object on a line, where orjson reads it exactly as :func:`loads_record` would; else None.

    The same gates as ``loads_record``'s fast path (nesting within the limit, no 19-digit number),
    and only a successful parse into an object counts: errors, and every other value, are left to
    the checked path so its messages stay the same.
    """
    if orjson is None or nesting_depth(raw) > MAX_NESTING_DEPTH or _LONG_DIGITS in raw.translate(_DIGITS_AS_ZEROS):
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _json_message(exc: json.JSONDecodeError) -> str:
    # json's own message for a raw control character already ends in "at"
    return f"{exc.msg.removesuffix(' at')} at column {exc.colno}"


def refuse_lone_surrogates(value: Any, where: str, prefix: str = "") -> None:
    """Refuse a string (or key) holding half of a UTF-16 surrogate pair, naming its field.

    JSON's ``\\ud800`` escape parses into a code point no UTF-8 writer accepts, so
    the record would fail later (hashing, writing the cleared copy) with a
    traceback far from its line.
    """
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        path = f"{prefix}[{key}]" if isinstance(value, list) else f"{prefix}.{key}" if prefix else str(key)
        for text, what in ((key, "key"), (item, "value")):
            if isinstance(text, str) and not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as exc:
                    shown = path.encode("utf-8", "backslashreplace").decode("utf-8")  # the key may be the culprit
                    raise DataError(
                        f"{where}: field {shown}: {what} holds a lone UTF-16 surrogate (\\u{ord(text[exc.start]):04x}) "
                        f"at character {exc.start}; not valid Unicode, fix the escape"
                    ) from None
        if isinstance(item, dict | list):
            refuse_lone_surrogates(item, where, path)


def invalid_utf8(path: Path, line_no: int, byte: int) -> DataError:
    """The one error for a line that is not UTF-8, whichever engine reads the file."""
    return DataError(f"{path}:{line_no}: invalid UTF-8 at byte {byte} of the line; re-encode the file as UTF-8")


def require_utf8_lines(
    path: str | Path, chunk_bytes: int = 16 * 1024 * 1024, *, label: str | Path | None = None
) -> None:
    """Refuse a text file with bytes that are not UTF-8, naming line and byte as :func:`iter_records` does.

    For readers that replace invalid bytes instead of refusing them (Spark's text source substitutes
    U+FFFD, which would silently change what is scanned and cleared). Reads whole lines in chunks of about
    ``chunk_bytes``, so a file of any size is checked in bounded memory, at the speed of a bytes decode.
    ``label`` is the name messages give the file (a private copy's original path).
    """
    path = Path(path)
    lines_before = 0
    carry = b""
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(chunk_bytes)
            block = carry + chunk
            cut = block.rfind(b"\n") + 1 if chunk else len(block)  # whole lines only, until the end
            piece, carry = block[:cut], block[cut:]
            try:
                piece.decode("utf-8")
            except UnicodeDecodeError as exc:
                line_start = piece.rfind(b"\n", 0, exc.start) + 1
                line_no = lines_before + piece.count(b"\n", 0, exc.start) + 1
                named = Path(label) if label is not None else path
                raise invalid_utf8(named, line_no, exc.start - line_start) from None
            lines_before += piece.count(b"\n")
            if not chunk:
                return


def _buffer(path: Path, digest: ReadDigest | None):
    """The file as one in-memory buffer, hashed into ``digest``: the bytes parsed are the bytes hashed."""
    return io.BytesIO(digest.update(path.read_bytes())) if digest is not None else path.open("rb")


def _iter_jsonl(path: Path, digest: ReadDigest | None = None) -> Iterator[Record]:
    with path.open("rb") as handle:
        lines = (digest.update(raw) for raw in handle) if digest is not None else handle
        yield from jsonl_records(lines, path)


def jsonl_records(lines: Iterable[bytes], path: str | Path) -> Iterator[Record]:
    """The records of JSON Lines given as raw lines (a file handle, or a buffer read once); errors name file:line."""
    path = Path(path)
    for line_no, raw in enumerate(lines, start=1):
        if len(raw) > MAX_RECORD_BYTES:
            raise DataError(
                f"{path}:{line_no}: record is {len(raw)} bytes (max {MAX_RECORD_BYTES}); "
                "split it or check the file is JSON Lines"
            )
        # Most lines are plain JSON objects orjson reads as json would: no decode or blank check
        # needed (orjson accepts only valid UTF-8). Anything else takes the checked path below.
        value = _plain_object(raw)
        if value is None:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise invalid_utf8(path, line_no, exc.start) from None
            if not text.strip():
                continue
            value = loads_record(raw, f"{path}:{line_no}")
        if not isinstance(value, dict):
            raise DataError(f"{path}:{line_no}: expected a JSON object per line, got {type(value).__name__}")
        yield Record(line_no, value)


def _iter_json_array(path: Path, digest: ReadDigest | None = None) -> Iterator[Record]:
    try:
        data = path.read_bytes()
        text = (digest.update(data) if digest is not None else data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: invalid UTF-8 at byte {exc.start}; re-encode the file as UTF-8") from None
    depth = nesting_depth(text.encode("utf-8"))
    if depth > MAX_NESTING_DEPTH + 1:  # the top-level array is one level
        raise DataError(
            f"{path}: JSON nested {depth - 1} levels deep in a record (max {MAX_NESTING_DEPTH}); flatten the record"
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({_json_message(exc)})") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise DataError(
            f"{path}: cannot parse the JSON array ({type(exc).__name__}); convert it to JSON Lines"
        ) from None
    if not isinstance(value, list):
        raise DataError(f"{path}: expected a JSON array of objects at top level, got {type(value).__name__}")
    surrogates = _SURROGATE_ESCAPE.search(text.encode("utf-8")) is not None
    for index, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise DataError(f"{path}: record {index}: expected a JSON object, got {type(item).__name__}")
        if surrogates:
            refuse_lone_surrogates(item, f"{path}: record {index}")
        yield Record(index, item)


def _iter_csv(path: Path, digest: ReadDigest | None = None) -> Iterator[Record]:
    # A field may be as large as a record may be (csv's default limit is 128 KiB, and its error has no line).
    csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD_BYTES))
    row_no = 1
    try:
        handle = io.TextIOWrapper(_buffer(path, digest), encoding="utf-8", newline="")
        reader = csv.DictReader(handle)
        # Line 1 is the header; data rows start at line 2 as an editor shows them.
        for row_no, row in enumerate(reader, start=2):
            if None in row:
                raise DataError(f"{path}:{row_no}: more values than header columns")
            yield Record(row_no, {key: _csv_value(value, f"{path}:{row_no}") for key, value in row.items()})
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: invalid UTF-8 at byte {exc.start}; re-encode the file as UTF-8") from None
    except csv.Error as exc:
        raise DataError(f"{path}:{row_no + 1}: unreadable CSV ({exc})") from None


def _csv_value(value: str | None, where: str) -> Any:
    # Nested fields (chat messages) travel in CSV as JSON text; decode them so
    # the schema checks see the same shape as JSONL. Text that is not JSON stays
    # text; JSON too deep to handle is refused like a JSONL line.
    if value is not None and value[:1] in "[{":
        try:
            return loads_record(value, where)
        except DataError:
            if nesting_depth(value.encode("utf-8")) > MAX_NESTING_DEPTH:
                raise
            return value
    return value


def _iter_parquet(path: Path, digest: ReadDigest | None = None) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(_buffer(path, digest) if digest is not None else path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    row_no = 0
    nested = any(_type_depth(field.type) > 1 for field in parquet.schema_arrow)
    if max((_type_depth(field.type) for field in parquet.schema_arrow), default=0) > MAX_NESTING_DEPTH:
        raise DataError(f"{path}: columns nested deeper than {MAX_NESTING_DEPTH} levels; flatten the schema")
    for batch in parquet.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            row_no += 1
            if nested and _value_depth(row) > MAX_NESTING_DEPTH:
                raise DataError(f"{path}:{row_no}: record nested deeper than {MAX_NESTING_DEPTH} levels")
            yield Record(row_no, row)


def _type_depth(arrow_type) -> int:
    """Nesting levels of an Arrow type (list and struct types add one each)."""
    children = [arrow_type.field(i).type for i in range(arrow_type.num_fields)] if arrow_type.num_fields else []
    return 1 + max((_type_depth(child) for child in children), default=0)


def _value_depth(value: Any) -> int:
    """Nesting levels of a parsed value, iteratively (no recursion however deep it is)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            items = item.values()
        elif isinstance(item, list):
            items = item
        else:
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_NESTING_DEPTH:
            stack.extend((child, depth + 1) for child in items)
    return deepest


def iter_text_fields(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(field_path, text)`` for every string inside a record, and every integer long enough to be an id.

    Paths read like the data: ``prompt``, ``messages[2].content``,
    ``chosen[0].content``. Every string field of every format is visited,
    including system prompts and metadata; an integer of
    :data:`MIN_SCANNED_NUMBER_DIGITS` digits or more (a card or phone stored as
    a JSON number) is visited as its JSON text. Booleans, floats, short numbers
    and nulls are not text.
    """
    fields: list[tuple[str, str]] = []
    _collect_text_fields(value, prefix, fields)
    return iter(fields)


def text_values(value: Any) -> list[str]:
    """The strings :func:`iter_text_fields` yields, in the same order, without their paths.

    For scans that need a path only where they find something (the PII scan builds the paths of a
    record's fields only when one holds a finding: most records hold none, and the paths were most
    of the walk's time).
    """
    texts: list[str] = []
    _collect_texts(value, texts)
    return texts


#: Integers with this many digits or more are scanned as text: a card, phone or account number stored as a
#: JSON number is personal data like its string form (a count, a score or a label is shorter).
MIN_SCANNED_NUMBER_DIGITS = 7


def scanned_number(value: Any) -> str | None:
    """The JSON text of an integer long enough to be an identifier (a card, a phone), else None."""
    if type(value) is int and abs(value) >= 10 ** (MIN_SCANNED_NUMBER_DIGITS - 1):
        return str(value)
    return None


def _collect_texts(value: Any, texts: list[str]) -> None:
    # The walk of _collect_text_fields, step for step, keeping only the texts (no paths: most of its time).
    if isinstance(value, str):
        texts.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            if isinstance(item, str):
                texts.append(item)
            elif isinstance(item, (dict, list)):
                _collect_texts(item, texts)
            elif (number := scanned_number(item)) is not None:
                texts.append(number)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                texts.append(item)
            elif isinstance(item, (dict, list)):
                _collect_texts(item, texts)
            elif (number := scanned_number(item)) is not None:
                texts.append(number)
    elif (number := scanned_number(value)) is not None:
        texts.append(number)


def _collect_text_fields(value: Any, prefix: str, fields: list[tuple[str, str]]) -> None:
    # Appended to one list: nested generators cost a frame switch per string per level, and the
    # PII scan walks every record (about a tenth of its time went here).
    if isinstance(value, str):
        fields.append((prefix, value))
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                fields.append((f"{prefix}.{key}" if prefix else str(key), item))
            elif isinstance(item, (dict, list)):
                _collect_text_fields(item, f"{prefix}.{key}" if prefix else str(key), fields)
            elif (number := scanned_number(item)) is not None:
                fields.append((f"{prefix}.{key}" if prefix else str(key), number))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                fields.append((f"{prefix}[{index}]", item))
            elif isinstance(item, (dict, list)):
                _collect_text_fields(item, f"{prefix}[{index}]", fields)
            elif (number := scanned_number(item)) is not None:
                fields.append((f"{prefix}[{index}]", number))
    elif (number := scanned_number(value)) is not None:
        fields.append((prefix, number))


def write_jsonl(path: str | Path, rows: list[dict[str, Any]] | Iterator[dict[str, Any]]) -> int:
    """Write rows as JSON Lines atomically (temp file, then rename); return the count."""
    count = 0
    with atomic_writer(path, encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    return count
