"""Write the cleared copy of a dataset: redacted with presidio-anonymizer where the policy says so.

Records without findings to redact are copied byte for byte (their original
line); a file with nothing to redact is copied whole, so its hash is
unchanged. Redacted records are re-serialised with their key order kept, each
redacted span replaced by ``<ENTITY_TYPE>`` (presidio's ``replace`` operator).
Given the SHA-256 of the bytes the scan read, the source bytes read here must
hash the same, or nothing is written: spans found in one file are never applied
to (and unscanned lines never copied from) another.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

from governance.errors import ConfigError, DataError
from governance.files import atomic_writer
from governance.pii.mask import tag
from governance.records import scanned_number

#: What replaces a redacted span: presidio-anonymizer's replace operator with the entity tag.
REDACTION_OPERATOR = "replace with <ENTITY_TYPE> (presidio-anonymizer)"

Redactions = dict[int, list[tuple[str, int, int, str]]]


class Redactor:
    """presidio-anonymizer with the replace-by-tag operator."""

    def __init__(self) -> None:
        self.engine = AnonymizerEngine()

    def redact_text(self, text: str, spans: list[tuple[int, int, str]]) -> str:
        """Replace each ``(start, end, entity)`` span of a text by ``<ENTITY>``."""
        results = [
            RecognizerResult(entity_type=entity, start=start, end=end, score=1.0) for start, end, entity in spans
        ]
        operators = {entity: OperatorConfig("replace", {"new_value": tag(entity)}) for _, _, entity in spans}
        return self.engine.anonymize(text=text, analyzer_results=results, operators=operators).text

    def redact_record(self, data: dict[str, Any], spans: list[tuple[str, int, int, str]]) -> dict[str, Any]:
        """The record with the given ``(field path, start, end, entity)`` spans redacted."""
        by_field: dict[str, list[tuple[int, int, str]]] = {}
        for field_path, start, end, entity in spans:
            by_field.setdefault(field_path, []).append((start, end, entity))
        return _replace_strings(
            data, "", lambda path, text: self.redact_text(text, by_field[path]) if path in by_field else text
        )


def _replace_strings(value: Any, prefix: str, replace) -> Any:
    """Rebuild a record with every string passed through ``replace(path, text)``.

    Paths are built exactly as :func:`governance.records.iter_text_fields`
    builds them, so a finding's field path addresses the same string.
    """
    if isinstance(value, str):
        return replace(prefix, value)
    if isinstance(value, dict):
        return {
            key: _replace_strings(item, f"{prefix}.{key}" if prefix else str(key), replace)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_replace_strings(item, f"{prefix}[{index}]", replace) for index, item in enumerate(value)]
    number = scanned_number(value)
    if number is not None:  # scanned as its JSON text: redacted, it becomes that text with the tag
        replaced = replace(prefix, number)
        return value if replaced == number else replaced
    return value


#: How much of a file with nothing to redact is copied at a time.
COPY_CHUNK_BYTES = 1024 * 1024


def write_cleared_copy(
    src: str | Path,
    dst: str | Path,
    redactions: Redactions,
    redactor: Redactor,
    *,
    scanned_sha256: str | None = None,
) -> int:
    """Write ``dst``: ``src`` with the given records redacted; returns the number of redacted records.

    With no redactions the file is copied unchanged (same bytes, same hash).
    Redacted copies are written for JSON Lines input only. With ``scanned_sha256``
    (of the bytes the scan read), raises :class:`DataError` and writes nothing
    when the bytes read from ``src`` hash otherwise.
    """
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    if not redactions:
        with src.open("rb") as reader, atomic_writer(dst) as writer:
            while chunk := reader.read(COPY_CHUNK_BYTES):
                digest.update(chunk)
                writer.write(chunk)
            _require_scanned(src, digest.hexdigest(), scanned_sha256)
        return 0
    if src.suffix.lower() != ".jsonl":
        raise ConfigError(
            f"{src}: {len(redactions)} records need redaction, but redacted copies are written for .jsonl only; "
            "convert the dataset to JSON Lines"
        )
    redacted = 0
    with src.open("rb") as reader, atomic_writer(dst) as writer:
        for line_no, raw in enumerate(reader, start=1):
            digest.update(raw)
            spans = redactions.get(line_no)
            if spans is None:
                writer.write(raw)
                continue
            try:
                data = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                # The scan parsed this line a moment ago: the file changed underneath us.
                raise DataError(f"{src}:{line_no}: changed while being redacted; re-run the scan") from None
            newline = b"\n" if raw.endswith(b"\n") else b""
            writer.write(json.dumps(redactor.redact_record(data, spans), ensure_ascii=False).encode("utf-8") + newline)
            redacted += 1
        _require_scanned(src, digest.hexdigest(), scanned_sha256)  # inside the writer: a refusal leaves no copy behind
    return redacted


def _require_scanned(src: Path, read_sha256: str, scanned_sha256: str | None) -> None:
    if scanned_sha256 is not None and read_sha256 != scanned_sha256:
        raise DataError(f"{src}: changed since it was scanned; nothing was cleared, re-run the scan")
