"""Normalise the preference pairs to TRL's explicit-prompt shape and split them.

    dvc repro prepare_preference  # or: python -m pipelines.prepare_preference

Reads ``prepare_preference.input`` in a published preference shape
(``format: auto`` detects it: TRL preference with an explicit prompt, or with
the prompt repeated inside the conversations as UltraFeedback-binarized ships
it; TRL's implicit-prompt shape; Anthropic HH-RLHF transcripts) from any reader
(see :mod:`governance.datasets`). Writes ``train.jsonl`` and ``eval.jsonl`` of
``{"id", "prompt", "chosen", "rejected", annotator_id, guideline_version,
ratings, ...}`` (the annotation fields are kept unchanged: the validation gate
judges them) and a ``manifest.json``. The split is a pure function of (split
key, seed), as in ``prepare_sft``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import Field

from governance.datasets import DatasetParams, prepare_dataset, split_and_write
from pipelines._common import load_params, require_ready_setup, stage_main
from pipelines._preference import PROVENANCE_KEYS, split_key

log = logging.getLogger(__name__)
STAGE = "prepare_preference"


class PreparePreferenceParams(DatasetParams):
    out_dir: str
    eval_fraction: float = Field(gt=0, lt=1)
    seed: int
    split_by: Literal["prompt", "id"]


@stage_main
def main(argv: list[str] | None = None) -> int:
    # Every set-up requirement (server, identity, trail, keys) checked before any work: all problems at once
    require_ready_setup()
    params = load_params(STAGE, PreparePreferenceParams)
    # Read and convert every record (a malformed one stops the stage, or is quarantined: policies/data.yaml)
    prepared = prepare_dataset(params, "preference", PROVENANCE_KEYS, STAGE)
    # Split by seed (pairs sharing a prompt stay on one side) and write outputs
    split_and_write(
        prepared,
        stage=STAGE,
        out_dir=Path(params.out_dir),
        seed=params.seed,
        eval_fraction=params.eval_fraction,
        split_key=lambda row: split_key(row["prompt"], row["id"], params.split_by),
        split_name=params.split_by,
        params=params.model_dump(),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
