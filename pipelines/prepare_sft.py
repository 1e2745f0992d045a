"""Normalise the raw SFT conversations to TRL's conversational format and split them.

    dvc repro prepare_sft         # or: python -m pipelines.prepare_sft

Reads ``prepare_sft.input`` (JSONL/JSON/CSV/Parquet), accepts TRL's
conversational (``messages``) and prompt-completion (``prompt``/``completion``)
shapes, and writes ``train.jsonl`` and ``eval.jsonl`` of ``{"id", "messages",
...metadata}`` records plus a ``manifest.json`` (input hashes, params, counts).
The split is a pure function of (record id, seed), so adding a record never
moves another between train and eval.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from pydantic import Field

from governance.errors import DataError
from governance.lineage import md5_file, sha256_file, write_manifest
from governance.policy import Strict
from governance.records import Record, iter_records, write_jsonl
from pipelines._common import load_params, stage_main

log = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant")
METADATA_KEYS = ("source", "license")


class PrepareSftParams(Strict):
    input: str
    out_dir: str
    eval_fraction: float = Field(gt=0, lt=1)
    seed: int


def normalise(record: Record, path: Path) -> dict[str, Any]:
    """One raw record as ``{"id", "messages", source?, license?}``; errors name file:line:field."""
    data = record.data
    where = f"{path}:{record.line}"
    record_id = data.get("id")
    if not isinstance(record_id, str | int) or isinstance(record_id, bool) or str(record_id) == "":
        raise DataError(f"{where}: field id: required non-empty string or integer")
    if "messages" in data:
        messages = data["messages"]
    elif "prompt" in data and "completion" in data:
        prompt, completion = data["prompt"], data["completion"]
        prompt = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        completion = [{"role": "assistant", "content": completion}] if isinstance(completion, str) else completion
        if not isinstance(prompt, list) or not isinstance(completion, list):
            raise DataError(f"{where}: fields prompt/completion: expected strings or lists of messages")
        messages = prompt + completion
    else:
        raise DataError(f"{where}: field messages: required (or prompt and completion)")
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: field messages: expected a non-empty list of messages")
    clean = []
    for index, message in enumerate(messages):
        field = f"messages[{index}]"
        if not isinstance(message, dict):
            raise DataError(f"{where}: field {field}: expected an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise DataError(f"{where}: field {field}.role: {role!r} is not one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise DataError(f"{where}: field {field}.content: expected a string, got {type(content).__name__}")
        clean.append({"role": role, "content": content.strip()})
    row: dict[str, Any] = {"id": str(record_id), "messages": clean}
    row.update({key: data[key] for key in METADATA_KEYS if key in data})
    return row


def is_eval(record_id: str, seed: int, eval_fraction: float) -> bool:
    """Deterministic split: hash of (seed, id) mapped to [0, 1)."""
    digest = hashlib.sha256(f"{seed}:{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < eval_fraction


@stage_main
def main(argv: list[str] | None = None) -> int:
    params = load_params("prepare_sft", PrepareSftParams)
    source, out_dir = Path(params.input), Path(params.out_dir)
    # Normalise every record (any malformed one stops the stage before output is written)
    rows, seen = [], set()
    for record in iter_records(source):
        row = normalise(record, source)
        if row["id"] in seen:
            raise DataError(f"{source}:{record.line}: field id: duplicate id {row['id']!r}")
        seen.add(row["id"])
        rows.append(row)
    # Split by seed and write outputs
    train = [r for r in rows if not is_eval(r["id"], params.seed, params.eval_fraction)]
    evaluation = [r for r in rows if is_eval(r["id"], params.seed, params.eval_fraction)]
    if not train or not evaluation:
        raise DataError(f"{source}: split left {len(train)} train / {len(evaluation)} eval rows; adjust eval_fraction")
    write_jsonl(out_dir / "train.jsonl", train)
    write_jsonl(out_dir / "eval.jsonl", evaluation)
    write_manifest(
        out_dir,
        {
            "stage": "prepare_sft",
            "inputs": {str(source): {"sha256": sha256_file(source), "md5": md5_file(source)}},
            "params": params.model_dump(),
            "rows": {"input": len(rows), "train": len(train), "eval": len(evaluation)},
            "outputs": {
                name: sha256_file(out_dir / f"{name}.jsonl") for name in ("train", "eval")
            },
            "curation": ["strip whitespace of message contents", "prompt/completion → messages", "split by id hash"],
        },
    )
    log.info("prepared %d rows: %d train, %d eval", len(rows), len(train), len(evaluation))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
