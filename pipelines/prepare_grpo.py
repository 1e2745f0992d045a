"""Normalise the raw GRPO arithmetic prompts (prompt + reference answer) and split them.

    dvc repro prepare_grpo        # or: python -m pipelines.prepare_grpo

Reads ``prepare_grpo.input`` (JSONL/JSON/CSV/Parquet) of ``{"id", "prompt",
"answer"}`` records — ``prompt`` a string or a list of system/user messages,
``answer`` the reference the verifiable reward checks — and writes
``train.jsonl`` and ``eval.jsonl`` of ``{"id", "prompt": [messages], "answer",
...metadata}`` in TRL's conversational prompt-only format, plus a
``manifest.json``. The split is the same pure function of (record id, seed) as
``prepare_sft``'s. Whether each answer is present and numeric is the
validation gate's call (rules ``data.answer_present``/``data.answer_numeric``),
so answers are carried through as given (numbers as their string form).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import Field

from governance.errors import DataError
from governance.lineage import md5_file, sha256_file, write_manifest
from governance.policy import Strict
from governance.records import Record, iter_records, write_jsonl
from pipelines._common import load_params, stage_main
from pipelines.prepare_sft import METADATA_KEYS, is_eval

log = logging.getLogger(__name__)
STAGE = "prepare_grpo"

PROMPT_ROLES = ("system", "user", "assistant")


class PreparePromptsParams(Strict):
    input: str
    out_dir: str
    eval_fraction: float = Field(gt=0, lt=1)
    seed: int


def normalise_prompt(value: Any, where: str) -> list[dict[str, str]]:
    """A prompt as a non-empty list of ``{role, content}`` messages; errors name file:line:field."""
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: field prompt: expected a string or a non-empty list of messages")
    messages = []
    for index, message in enumerate(value):
        field = f"prompt[{index}]"
        if not isinstance(message, dict):
            raise DataError(f"{where}: field {field}: expected an object with role and content")
        role, content = message.get("role"), message.get("content")
        if role not in PROMPT_ROLES:
            raise DataError(f"{where}: field {field}.role: {role!r} is not one of {', '.join(PROMPT_ROLES)}")
        if not isinstance(content, str):
            raise DataError(f"{where}: field {field}.content: expected a string, got {type(content).__name__}")
        messages.append({"role": role, "content": content.strip()})
    return messages


def normalise(record: Record, path: Path) -> dict[str, Any]:
    """One raw record as ``{"id", "prompt", "answer"?, source?, license?}``."""
    data = record.data
    where = f"{path}:{record.line}"
    record_id = data.get("id")
    if not isinstance(record_id, str | int) or isinstance(record_id, bool) or str(record_id) == "":
        raise DataError(f"{where}: field id: required non-empty string or integer")
    row: dict[str, Any] = {"id": str(record_id), "prompt": normalise_prompt(data.get("prompt"), where)}
    answer = data.get("answer")
    if isinstance(answer, int | float) and not isinstance(answer, bool):
        answer = str(answer)
    if isinstance(answer, str):
        answer = answer.strip()
    if answer is not None:
        row["answer"] = answer
    row.update({key: data[key] for key in METADATA_KEYS if key in data})
    return row


def split_and_write(
    source: Path, out_dir: Path, params: PreparePromptsParams, stage: str, rows: list[dict], **extra: Any
) -> None:
    """Split rows by (id, seed) and write train/eval JSONL and the manifest (``extra`` added to it)."""
    train = [r for r in rows if not is_eval(r["id"], params.seed, params.eval_fraction)]
    evaluation = [r for r in rows if is_eval(r["id"], params.seed, params.eval_fraction)]
    if not train or not evaluation:
        raise DataError(f"{source}: split left {len(train)} train / {len(evaluation)} eval rows; adjust eval_fraction")
    write_jsonl(out_dir / "train.jsonl", train)
    write_jsonl(out_dir / "eval.jsonl", evaluation)
    write_manifest(
        out_dir,
        {
            "stage": stage,
            "inputs": {str(source): {"sha256": sha256_file(source), "md5": md5_file(source)}},
            "params": params.model_dump(),
            "rows": {"input": len(rows), "train": len(train), "eval": len(evaluation)},
            "outputs": {name: sha256_file(out_dir / f"{name}.jsonl") for name in ("train", "eval")},
            "curation": ["strip whitespace of message contents", "string prompt → [user message]", "split by id hash"],
            **extra,
        },
    )
    log.info("%s: prepared %d rows: %d train, %d eval", stage, len(rows), len(train), len(evaluation))


@stage_main
def main(argv: list[str] | None = None) -> int:
    params = load_params(STAGE, PreparePromptsParams)
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
    split_and_write(source, out_dir, params, STAGE, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
