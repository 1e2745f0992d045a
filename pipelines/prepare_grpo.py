"""Normalise the GRPO prompts (prompt + reference answer) and split them.

    dvc repro prepare_grpo        # or: python -m pipelines.prepare_grpo

Reads ``prepare_grpo.input`` of ``{"id"?, "prompt", "answer"}`` records or
GSM8K's ``{"question", "answer": "... #### 72"}`` (``format: auto`` detects
which; see :mod:`governance.datasets`), from any reader the SFT stage takes,
and writes ``train.jsonl`` and ``eval.jsonl`` of ``{"id", "prompt": [messages],
"answer", ...metadata}`` in TRL's conversational prompt-only format, plus a
``manifest.json``. The split is the same pure function of (record id, seed) as
``prepare_sft``'s. Whether each answer is present and numeric is the validation
gate's call (rules ``data.answer_present``/``data.answer_numeric``), so
answers are carried through as given (numbers as their string form).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import Field

from governance.datasets import DatasetParams, Prepared, prepare_dataset, split_and_write
from pipelines._common import load_params, require_ready_setup, stage_main
from pipelines.prepare_sft import METADATA_KEYS

log = logging.getLogger(__name__)
STAGE = "prepare_grpo"


class PreparePromptsParams(DatasetParams):
    out_dir: str
    eval_fraction: float = Field(gt=0, lt=1)
    seed: int


def write_split(prepared: Prepared, params: PreparePromptsParams, stage: str, **extra: Any) -> None:
    """Split prompts by (id, seed) and write train/eval JSONL and the manifest (``extra`` added to it)."""
    split_and_write(
        prepared,
        stage=stage,
        out_dir=Path(params.out_dir),
        seed=params.seed,
        eval_fraction=params.eval_fraction,
        params=params.model_dump(),
        **extra,
    )


@stage_main
def main(argv: list[str] | None = None) -> int:
    # Every set-up requirement (server, identity, trail, keys) checked before any work: all problems at once
    require_ready_setup()
    params = load_params(STAGE, PreparePromptsParams)
    # Read and convert every record (a malformed one stops the stage, or is quarantined: policies/data.yaml)
    prepared = prepare_dataset(params, "prompt", METADATA_KEYS, STAGE)
    # Split by seed and write outputs
    write_split(prepared, params, STAGE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
