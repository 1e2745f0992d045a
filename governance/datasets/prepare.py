"""Turn a published dataset into a prepare stage's canonical records, counting every step.

    read (any reader) → map columns → convert (detected or named format)
      → strip whitespace → content-hash ids where none → drop exact duplicates → (stage splits)

Explicit ids must be unique (a duplicate is an error naming both lines' file);
records without one get ``h`` + 16 hex digits of the SHA-256 of their canonical
content, so the same content always gets the same id and the train/eval split
(a hash of the id) never moves it. Identical content under a hashed id is an
exact duplicate: dropped and counted, never silently.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance.datasets.cards import DatasetCard, build_card
from governance.datasets.curation import Curation
from governance.datasets.formats import Format, resolve_format
from governance.datasets.readers import Source, open_source
from governance.errors import DataError
from governance.lineage import sha256_file, sha256_json, write_manifest
from governance.policy import Strict
from governance.records import Record, write_jsonl

log = logging.getLogger(__name__)

#: Fields whose strings are message lists after conversion (stripped as one step).
MESSAGE_FIELDS = ("messages", "prompt", "chosen", "rejected", "completion")


class DatasetParams(Strict):
    """What every ``prepare_*`` section says about its input besides the split."""

    input: str
    format: str = "auto"  # auto: detect from the first record (recorded in the manifest); or a format name
    columns: dict[str, str] = {}  # canonical field -> the dataset's column, e.g. {prompt: question_text}
    split: str = "train"  # which split of a save_to_disk DatasetDict or a cached Hub dataset
    config: str | None = None  # a cached Hub dataset's configuration (e.g. "main" for GSM8K)
    card: DatasetCard | None = None


@dataclass
class Prepared:
    """A prepared dataset: canonical rows and everything its manifest records."""

    rows: list[dict[str, Any]]
    format: Format
    detected: bool
    source: Source
    curation: Curation
    card: dict[str, Any]
    dropped_fields: int

    def manifest(self) -> dict[str, Any]:
        return {
            "inputs": self.source.manifest(),
            "format": {"name": self.format.name, "kind": self.format.kind, "detected": self.detected},
            "card": self.card,
            "curation": self.curation.to_json(),
        }


def record_id(data: Mapping[str, Any], where: str) -> str | None:
    """The record's ``id`` as a string, None when absent; an unusable id is a :class:`DataError`."""
    if "id" not in data or data["id"] is None:
        return None
    value = data["id"]
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value).strip() == "":
        raise DataError(f"{where}: field id: required non-empty string or integer")
    return str(value)


def map_columns(data: Mapping[str, Any], columns: Mapping[str, str], where: str) -> dict[str, Any]:
    """Rename the dataset's columns to the canonical names ``columns`` maps them to."""
    if not columns:
        return dict(data)
    out = {k: v for k, v in data.items() if k not in columns.values()}
    for canonical, column in columns.items():
        if column not in data:
            raise DataError(f"{where}: field {column}: required field is missing (columns: {canonical}: {column})")
        out[canonical] = data[column]
    return out


def strip_messages(row: dict[str, Any]) -> bool:
    """Strip surrounding whitespace of every message content in place; True if any changed."""
    changed = False
    for key in MESSAGE_FIELDS:
        messages = row.get(key)
        if not isinstance(messages, list):
            continue
        for message in messages:
            stripped = message["content"].strip()
            changed |= stripped != message["content"]
            message["content"] = stripped
    if isinstance(row.get("answer"), str):
        stripped = row["answer"].strip()
        changed |= stripped != row["answer"]
        row["answer"] = stripped
    return changed


def content_id(row: Mapping[str, Any]) -> str:
    """A stable id from the record's canonical content (never from its position)."""
    return "h" + sha256_json({k: v for k, v in row.items() if k != "id"})[:16]


def convert_records(
    records: Iterable[Record],
    where_prefix: str,
    kind: str,
    params: DatasetParams,
    keep: tuple[str, ...],
    curation: Curation,
    section: str = "prepare",
) -> tuple[list[dict[str, Any]], Format, bool, int]:
    """Convert, strip, id and de-duplicate; returns rows, format, whether detected, dropped field count."""
    iterator = iter(records)
    first = next(iterator, None)
    first_data = map_columns(first.data, params.columns, f"{where_prefix}:{first.line}") if first else None
    fmt, detected = resolve_format(kind, params.format, first_data, where_prefix, section)
    if detected:
        log.info("%s: detected format %s (%s)", where_prefix, fmt.name, fmt.description)
    rows: list[tuple[int, str | None, dict[str, Any]]] = []
    converted_changed = dropped_fields = 0
    for record in [first, *iterator] if first else []:
        where = f"{where_prefix}:{record.line}"
        data = first_data if record is first else map_columns(record.data, params.columns, where)
        rid = record_id(data, where)
        row = fmt.convert(data, where, fmt.name)
        converted_changed += any(data.get(k) != v for k, v in row.items())
        row.update({k: data[k] for k in keep if k in data and k not in row})
        dropped_fields += len(set(data) - set(row) - {"id"})
        rows.append((record.line, rid, row))
    total = curation.record("read", len(rows))
    curation.record(f"convert {fmt.name} → {kind} records", total, changed=converted_changed)
    curation.record("strip whitespace of message contents", total, changed=sum(strip_messages(r) for _, _, r in rows))
    out, seen, duplicates = [], {}, 0
    for line, rid, row in rows:
        if rid is not None:
            if rid in seen:
                raise DataError(f"{where_prefix}:{line}: field id: duplicate id {rid!r}")
            seen[rid] = line
            out.append({"id": rid, **row})
            continue
        hashed = content_id(row)
        if hashed in seen:
            duplicates += 1
            continue
        seen[hashed] = line
        out.append({"id": hashed, **row})
    hashed_count = sum(rid is None for _, rid, _ in rows)
    curation.record("content-hash id for records without one", total, changed=hashed_count)
    curation.record("drop exact duplicates (same content-hash id)", total, dropped=duplicates)
    return out, fmt, detected, dropped_fields


def prepare_dataset(params: DatasetParams, kind: str, keep: tuple[str, ...], section: str = "prepare") -> Prepared:
    """Read ``params.input`` wherever it lives and convert it to ``kind``'s canonical records."""
    source, records = open_source(params.input, split=params.split, config=params.config)
    curation = Curation()
    rows, fmt, detected, dropped_fields = convert_records(records, params.input, kind, params, keep, curation, section)
    if not rows:
        raise DataError(f"{params.input}: no records (empty file)")
    card = build_card(source, params.card)
    return Prepared(rows, fmt, detected, source, curation, card, dropped_fields)


def is_eval(key: str, seed: int, eval_fraction: float) -> bool:
    """Deterministic split: hash of (seed, key) mapped to [0, 1)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < eval_fraction


def split_and_write(
    prepared: Prepared,
    *,
    stage: str,
    out_dir: Path,
    seed: int,
    eval_fraction: float,
    split_key: Callable[[dict[str, Any]], str] = lambda row: row["id"],
    split_name: str = "id",
    params: dict[str, Any],
    rows_extra: dict[str, Any] | None = None,
    **extra: Any,
) -> tuple[int, int]:
    """Split by the hash of each row's key and write train/eval JSONL plus the manifest.

    A split that leaves either side empty is a :class:`DataError` and nothing is written.
    """
    rows = prepared.rows
    held_out = [is_eval(split_key(r), seed, eval_fraction) for r in rows]
    train = [r for r, e in zip(rows, held_out, strict=True) if not e]
    evaluation = [r for r, e in zip(rows, held_out, strict=True) if e]
    if not train or not evaluation:
        raise DataError(
            f"{prepared.source.spec}: split left {len(train)} train / {len(evaluation)} eval rows; adjust eval_fraction"
        )
    prepared.curation.record(f"split by {split_name} hash ({len(train)} train / {len(evaluation)} eval)", len(rows))
    write_jsonl(out_dir / "train.jsonl", train)
    write_jsonl(out_dir / "eval.jsonl", evaluation)
    write_manifest(
        out_dir,
        {
            "stage": stage,
            "params": params,
            "rows": {"input": len(rows), "train": len(train), "eval": len(evaluation), **(rows_extra or {})},
            "outputs": {name: sha256_file(out_dir / f"{name}.jsonl") for name in ("train", "eval")},
            **prepared.manifest(),
            **extra,
        },
    )
    log.info(
        "%s: prepared %d rows (%s): %d train, %d eval",
        stage,
        len(rows),
        prepared.format.name,
        len(train),
        len(evaluation),
    )
    return len(train), len(evaluation)
