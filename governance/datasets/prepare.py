"""Turn a published dataset into a prepare stage's canonical records, counting every step.

    read (any reader) → map columns → convert (detected or named format)
      → [quarantine malformed records, per reason] → strip whitespace
      → content-hash ids where none → drop exact duplicates → (stage splits)

A record that does not fit its format (a :class:`RecordError`) stops the stage
with one line naming ``file:line`` and the field, unless the data policy's
``<kind>.malformed`` rule says ``action: quarantine``: then it is set aside,
PII-masked, in ``quarantine.jsonl`` beside the prepared data and counted per
reason in the manifest, the dataset card and the curation steps (see
:mod:`governance.datasets.quarantine`; the validation gate judges the share).

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

from governance.datasets.cards import DatasetCard, build_card, malformed_card
from governance.datasets.curation import Curation
from governance.datasets.formats import Format, RecordError, resolve_format
from governance.datasets.quarantine import (
    QUARANTINE_FILE,
    Quarantine,
    field_pattern,
    masked_entries,
    pii_masker,
    record_prepared,
)
from governance.datasets.readers import Source, open_source
from governance.errors import ConfigError, DataError
from governance.lineage import sha256_file, sha256_json, write_manifest
from governance.policy import Strict
from governance.policy.data import MalformedRule, load_data_policy
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
    # policies/data.yaml: its <kind>.malformed rule fails on, or quarantines, records that do not fit the format.
    # None: fail on the first (the strict reading, for a file prepared outside the pipeline).
    policy: str | None = None
    pii_policy: str | None = None  # policies/pii.yaml: what is masked in quarantined records before they are written


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
    #: The manifest's quarantine section (counts, no record text) and the masked lines of quarantine.jsonl
    quarantine: dict[str, Any] | None = None
    quarantined: list[dict[str, Any]] | None = None

    def manifest(self) -> dict[str, Any]:
        return {
            "inputs": self.source.manifest(),
            "format": {"name": self.format.name, "kind": self.format.kind, "detected": self.detected},
            "card": self.card,
            "curation": self.curation.to_json(),
            **({"quarantine": self.quarantine} if self.quarantine is not None else {}),
        }


def record_id(data: Mapping[str, Any], where: str) -> str | None:
    """The record's ``id`` as a string, None when absent; an unusable id is a :class:`DataError`."""
    if "id" not in data or data["id"] is None:
        return None
    value = data["id"]
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value).strip() == "":
        raise RecordError(where, "id", "required non-empty string or integer")
    return str(value)


def map_columns(data: Mapping[str, Any], columns: Mapping[str, str], where: str) -> dict[str, Any]:
    """Rename the dataset's columns to the canonical names ``columns`` maps them to."""
    if not columns:
        return dict(data)
    out = {k: v for k, v in data.items() if k not in columns.values()}
    for canonical, column in columns.items():
        if column not in data:
            raise RecordError(where, column, f"required field is missing (columns: {canonical}: {column})")
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
    quarantine: Quarantine | None = None,
) -> tuple[list[dict[str, Any]], Format, bool, int]:
    """Convert, strip, id and de-duplicate; returns rows, format, whether detected, dropped field count.

    A record that does not fit the format raises its :class:`RecordError`, or,
    given a ``quarantine``, is set aside there and counted per reason as a
    curation step. The format is detected from the first record whose columns map.
    """
    rows: list[tuple[int, str | None, dict[str, Any]]] = []
    fmt: Format | None = None
    detected = False
    read = converted_changed = dropped_fields = 0
    for record in records:
        read += 1
        where = f"{where_prefix}:{record.line}"
        try:
            data = map_columns(record.data, params.columns, where)
            if fmt is None:
                fmt, detected = resolve_format(kind, params.format, data, where_prefix, section)
                if detected:
                    log.info("%s: detected format %s (%s)", where_prefix, fmt.name, fmt.description)
            rid = record_id(data, where)
            row = fmt.convert(data, where, fmt.name)
        except RecordError as error:
            if quarantine is None:  # a user's input error like any other: one line, reported as a DataError
                raise DataError(str(error)) from None
            quarantine.add(error, record.line, record.data)
            continue
        converted_changed += any(data.get(k) != v for k, v in row.items())
        row.update({k: data[k] for k in keep if k in data and k not in row})
        dropped_fields += len(set(data) - set(row) - {"id"})
        rows.append((record.line, rid, row))
    if fmt is None:  # no record at all (or none whose columns map): a named format still resolves
        fmt, detected = resolve_format(kind, params.format, None, where_prefix, section)
    total = curation.record("read", read)
    if quarantine is not None:
        reasons = quarantine.by_reason()
        if not reasons:
            total = curation.record("quarantine malformed records (none)", total)
        for reason, count in reasons.items():
            total = curation.record(f"quarantine malformed: {reason}", total, dropped=count)
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


def malformed_rule(params: DatasetParams, policy_kind: str, section: str) -> MalformedRule | None:
    """The data policy's ``<kind>.malformed`` rule the stage applies (None: no policy, fail on the first)."""
    if params.policy is None:
        return None
    rule = load_data_policy(params.policy).for_kind(policy_kind).malformed
    if rule.action == "quarantine" and params.pii_policy is None:
        raise ConfigError(
            f"params.yaml: {section}.pii_policy: required, {params.policy} says {policy_kind}.malformed.action: "
            "quarantine and quarantined records are PII-masked before they are written (policies/pii.yaml)"
        )
    return rule


def prepare_dataset(
    params: DatasetParams,
    kind: str,
    keep: tuple[str, ...],
    section: str = "prepare",
    policy_kind: str | None = None,
) -> Prepared:
    """Read ``params.input`` wherever it lives and convert it to ``kind``'s canonical records.

    ``policy_kind`` is the data policy section whose ``malformed`` rule applies
    (default ``kind``; prompt-only RLHF data is kind ``prompt``, policy ``rlhf``).
    Quarantined records are masked here, before anything else sees them.
    """
    rule = malformed_rule(params, policy_kind or kind, section)
    quarantine = Quarantine(rule.action, rule.max_fraction) if rule and rule.action == "quarantine" else None
    source, records = open_source(params.input, split=params.split, config=params.config)
    curation = Curation()
    rows, fmt, detected, dropped_fields = convert_records(
        records, params.input, kind, params, keep, curation, section, quarantine
    )
    read = curation.steps[0].rows_in  # every record read, the quarantined ones included
    if not rows and quarantine is not None and quarantine.records:
        first = quarantine.records[0]
        raise DataError(
            f"{params.input}: all {len(quarantine.records)} records are malformed; first at {first.where}, field "
            f"{field_pattern(first.field)}: {first.reason}; check format: and columns: in params.yaml {section}"
        )
    if not rows:
        raise DataError(f"{params.input}: no records (empty file)")
    card = build_card(source, params.card)
    action = rule.action if rule else "fail"
    summary = (quarantine or Quarantine(action, rule.max_fraction if rule else 0.0)).summary(read, QUARANTINE_FILE)
    summary["policy"] = params.policy
    card["malformed"] = malformed_card(fmt.name, summary)
    masked: list[dict[str, Any]] = []
    if quarantine is not None and quarantine.records:
        masked = masked_entries(quarantine, pii_masker(str(params.pii_policy)))
        summary["masked_with"] = params.pii_policy
        log.warning(
            "%s: quarantined %d of %d records as malformed (%s); first at %s",
            params.input,
            len(quarantine.records),
            read,
            "; ".join(f"{n} {reason}" for reason, n in quarantine.by_reason().items()),
            quarantine.records[0].where,
        )
    return Prepared(rows, fmt, detected, source, curation, card, dropped_fields, summary, masked)


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
    outputs = ["train", "eval"]
    if prepared.quarantine is not None:
        # Always written (empty when nothing was set aside): the validation gate recounts it
        write_jsonl(out_dir / QUARANTINE_FILE, prepared.quarantined or [])
        prepared.quarantine["file"] = str(out_dir / QUARANTINE_FILE)
        prepared.card["malformed"]["file"] = str(out_dir / QUARANTINE_FILE)
        outputs.append("quarantine")
    hashes = {name: sha256_file(out_dir / f"{name}.jsonl") for name in outputs}
    manifest = write_manifest(
        out_dir,
        {
            "stage": stage,
            "params": params,
            "rows": {"input": len(rows), "train": len(train), "eval": len(evaluation), **(rows_extra or {})},
            "outputs": hashes,
            **prepared.manifest(),
            **extra,
        },
    )
    # Signed as written: the validation gate judges only a quarantine the stage signed (P8)
    record_prepared(stage, manifest, hashes)
    log.info(
        "%s: prepared %d rows (%s): %d train, %d eval",
        stage,
        len(rows),
        prepared.format.name,
        len(train),
        len(evaluation),
    )
    return len(train), len(evaluation)
