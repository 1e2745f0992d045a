"""Normalise the SFT conversations to TRL's conversational format and split them.

    dvc repro prepare_sft         # or: python -m pipelines.prepare_sft

Reads ``prepare_sft.input`` in any published SFT shape (``format: auto`` detects
it from the first record: TRL ``messages`` or prompt/completion, OpenAI chat,
ShareGPT, Alpaca; see :mod:`governance.datasets.formats`) from JSONL/JSON/CSV/
Parquet, gzip-compressed or not, a ``save_to_disk`` folder or the local HF
cache (``hf:<name>``), and writes ``train.jsonl`` and ``eval.jsonl`` of
``{"id", "messages", ...metadata}`` records plus a ``manifest.json`` (raw
hashes, detected format, dataset card, counted curation steps). The split is a
pure function of (record id, seed), so adding a record never moves another
between train and eval.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import Field

from governance.datasets import DatasetParams, is_eval, prepare_dataset, split_and_write
from pipelines._common import load_params, require_ready_setup, stage_main

log = logging.getLogger(__name__)
STAGE = "prepare_sft"

METADATA_KEYS = ("source", "license")
__all__ = ["METADATA_KEYS", "PrepareSftParams", "is_eval", "main"]


class PrepareSftParams(DatasetParams):
    out_dir: str
    eval_fraction: float = Field(gt=0, lt=1)
    seed: int


@stage_main
def main(argv: list[str] | None = None) -> int:
    # Every set-up requirement (server, identity, trail, keys) checked before any work: all problems at once
    require_ready_setup()
    params = load_params(STAGE, PrepareSftParams)
    # Read and convert every record (a malformed one stops the stage, or is quarantined: policies/data.yaml)
    prepared = prepare_dataset(params, "sft", METADATA_KEYS, STAGE)
    # Split by seed and write outputs
    split_and_write(
        prepared,
        stage=STAGE,
        out_dir=Path(params.out_dir),
        seed=params.seed,
        eval_fraction=params.eval_fraction,
        params=params.model_dump(),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
