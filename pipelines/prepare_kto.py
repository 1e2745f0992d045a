"""Normalise the KTO examples (one completion, a desirable/undesirable label) and split them.

    dvc repro prepare_kto         # or: python -m pipelines.prepare_kto

Reads ``prepare_kto.input`` of TRL's unpaired-preference shape ``{"id"?,
"prompt", "completion", "label", ...}`` (prompt and completion as strings or
lists of messages; CSV's ``true``/``false`` labels accepted) from any reader
(see :mod:`governance.datasets`), and writes ``train.jsonl`` and ``eval.jsonl``
of ``{"id", "prompt", "completion", "label", annotator_id, guideline_version,
ratings, ...}`` plus a ``manifest.json``. The annotation fields are kept
unchanged for the validation gate (label balance, provenance, Cohen's kappa).
The split is a pure function of (split key, seed), as in ``prepare_sft``.
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
STAGE = "prepare_kto"


class PrepareKtoParams(DatasetParams):
    out_dir: str
    eval_fraction: float = Field(gt=0, lt=1)
    seed: int
    split_by: Literal["prompt", "id"]


@stage_main
def main(argv: list[str] | None = None) -> int:
    # Every set-up requirement (server, identity, trail, keys) checked before any work: all problems at once
    require_ready_setup()
    params = load_params(STAGE, PrepareKtoParams)
    # Read and convert every record (a malformed one stops the stage, or is quarantined: policies/data.yaml)
    prepared = prepare_dataset(params, "kto", PROVENANCE_KEYS, STAGE)
    # Split by seed (examples sharing a prompt stay on one side) and write outputs
    split_and_write(
        prepared,
        stage=STAGE,
        out_dir=Path(params.out_dir),
        seed=params.seed,
        eval_fraction=params.eval_fraction,
        split_key=lambda row: split_key(row["prompt"], row["id"], params.split_by),
        split_name=params.split_by,
        params=params.model_dump(),
        rows_extra={"desirable": sum(r["label"] for r in prepared.rows)},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
