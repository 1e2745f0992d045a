"""Normalise the raw preference pairs to TRL's explicit-prompt shape and split them.

    dvc repro prepare_preference  # or: python -m pipelines.prepare_preference

Reads ``prepare_preference.input`` (JSONL/JSON/CSV/Parquet) of ``{"id",
"prompt", "chosen", "rejected", ...}`` records. Prompts and responses may be
strings or lists of messages; so may TRL's implicit-prompt shape (``chosen``
and ``rejected`` as whole conversations sharing their prompt turns). Writes
``train.jsonl`` and ``eval.jsonl`` of ``{"id", "prompt", "chosen", "rejected",
annotator_id, guideline_version, ratings, ...}`` (the annotation fields are
kept unchanged: the validation gate judges them) and a ``manifest.json``.
The split is a pure function of (split key, seed), as in ``prepare_sft``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from governance.errors import DataError
from governance.lineage import md5_file, sha256_file, write_manifest
from governance.policy import Strict
from governance.records import Record, iter_records, write_jsonl
from pipelines._common import load_params, stage_main
from pipelines._preference import as_messages, provenance, record_id, split_key
from pipelines.prepare_sft import is_eval

log = logging.getLogger(__name__)
STAGE = "prepare_preference"


class PreparePreferenceParams(Strict):
    input: str
    out_dir: str
    eval_fraction: float = Field(gt=0, lt=1)
    seed: int
    split_by: Literal["prompt", "id"]


def normalise_pair(record: Record, path: Path) -> dict[str, Any]:
    """One raw pair as ``{"id", "prompt", "chosen", "rejected", ...provenance}``; errors name file:line:field."""
    data, where = record.data, f"{path}:{record.line}"
    rid = record_id(record, path)
    chosen = as_messages(data.get("chosen"), where, "chosen", "assistant")
    rejected = as_messages(data.get("rejected"), where, "rejected", "assistant")
    if "prompt" in data:
        prompt = as_messages(data["prompt"], where, "prompt", "user")
    else:
        # Implicit prompt: the turns both conversations share, up to the last user turn
        shared = 0
        while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
            shared += 1
        while shared > 0 and chosen[shared - 1]["role"] != "user":
            shared -= 1
        if shared == 0:
            raise DataError(f"{where}: field prompt: required (or chosen/rejected conversations sharing a user turn)")
        prompt, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
    return {"id": rid, "prompt": prompt, "chosen": chosen, "rejected": rejected, **provenance(data)}


@stage_main
def main(argv: list[str] | None = None) -> int:
    params = load_params(STAGE, PreparePreferenceParams)
    source, out_dir = Path(params.input), Path(params.out_dir)
    # Normalise every record (any malformed one stops the stage before output is written)
    rows, seen = [], set()
    for record in iter_records(source):
        row = normalise_pair(record, source)
        if row["id"] in seen:
            raise DataError(f"{source}:{record.line}: field id: duplicate id {row['id']!r}")
        seen.add(row["id"])
        rows.append(row)
    # Split by seed and write outputs
    keys = [split_key(r["prompt"], r["id"], params.split_by) for r in rows]
    held_out = [is_eval(key, params.seed, params.eval_fraction) for key in keys]
    train = [r for r, e in zip(rows, held_out, strict=True) if not e]
    evaluation = [r for r, e in zip(rows, held_out, strict=True) if e]
    if not train or not evaluation:
        raise DataError(f"{source}: split left {len(train)} train / {len(evaluation)} eval rows; adjust eval_fraction")
    write_jsonl(out_dir / "train.jsonl", train)
    write_jsonl(out_dir / "eval.jsonl", evaluation)
    write_manifest(
        out_dir,
        {
            "stage": STAGE,
            "inputs": {str(source): {"sha256": sha256_file(source), "md5": md5_file(source)}},
            "params": params.model_dump(),
            "rows": {"input": len(rows), "train": len(train), "eval": len(evaluation)},
            "outputs": {name: sha256_file(out_dir / f"{name}.jsonl") for name in ("train", "eval")},
            "curation": [
                "strip whitespace of message contents",
                "string prompt/responses → user/assistant messages",
                "implicit prompt → explicit prompt (shared turns up to the last user turn)",
                f"split by {params.split_by} hash",
            ],
        },
    )
    log.info("prepared %d pairs: %d train, %d eval", len(rows), len(train), len(evaluation))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
