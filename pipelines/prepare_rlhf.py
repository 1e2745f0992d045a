"""Normalise the raw RLHF prompts (prompt only; the reward model judges completions) and split them.

    dvc repro prepare_rlhf        # or: python -m pipelines.prepare_rlhf

Reads ``prepare_rlhf.input`` of ``{"id", "prompt"}`` records (``prompt`` a
string or a list of messages) and writes ``train.jsonl``/``eval.jsonl`` of
``{"id", "prompt": [messages], ...metadata}`` — TRL's conversational
prompt-only format, as ``RLOOTrainer`` reads it — plus a ``manifest.json``.
Same normalisation and (record id, seed) split as ``prepare_grpo``; fields
other than the prompt and metadata are dropped (and counted in the manifest).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from governance.errors import DataError
from governance.records import Record, iter_records
from pipelines._common import load_params, stage_main
from pipelines.prepare_grpo import PreparePromptsParams, normalise_prompt, split_and_write
from pipelines.prepare_sft import METADATA_KEYS

log = logging.getLogger(__name__)
STAGE = "prepare_rlhf"


class PrepareRlhfParams(PreparePromptsParams):
    """Same shape as ``prepare_grpo``'s section: input, out_dir, eval_fraction, seed."""


def normalise(record: Record, path: Path) -> dict[str, Any]:
    """One raw record as ``{"id", "prompt", source?, license?}``; errors name file:line:field."""
    data = record.data
    where = f"{path}:{record.line}"
    record_id = data.get("id")
    if not isinstance(record_id, str | int) or isinstance(record_id, bool) or str(record_id) == "":
        raise DataError(f"{where}: field id: required non-empty string or integer")
    row: dict[str, Any] = {"id": str(record_id), "prompt": normalise_prompt(data.get("prompt"), where)}
    row.update({key: data[key] for key in METADATA_KEYS if key in data})
    return row


@stage_main
def main(argv: list[str] | None = None) -> int:
    params = load_params(STAGE, PrepareRlhfParams)
    source, out_dir = Path(params.input), Path(params.out_dir)
    # Normalise every record (any malformed one stops the stage before output is written)
    rows, seen, dropped_fields = [], set(), 0
    for record in iter_records(source):
        row = normalise(record, source)
        if row["id"] in seen:
            raise DataError(f"{source}:{record.line}: field id: duplicate id {row['id']!r}")
        seen.add(row["id"])
        dropped_fields += len(set(record.data) - {"id", "prompt", *METADATA_KEYS})
        rows.append(row)
    if dropped_fields:
        log.info("dropped %d fields other than id/prompt/metadata (RLHF data is prompt-only)", dropped_fields)
    # Split by seed and write outputs
    split_and_write(source, out_dir, params, STAGE, rows, dropped_fields=dropped_fields)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
