"""Normalise the raw KTO examples (one completion, a desirable/undesirable label) and split them.

    dvc repro prepare_kto         # or: python -m pipelines.prepare_kto

Reads ``prepare_kto.input`` (JSONL/JSON/CSV/Parquet) of ``{"id", "prompt",
"completion", "label", ...}`` records, prompt and completion as strings or
lists of messages, and writes ``train.jsonl`` and ``eval.jsonl`` of TRL's
unpaired-preference shape ``{"id", "prompt", "completion", "label",
annotator_id, guideline_version, ratings, ...}`` plus a ``manifest.json``.
The annotation fields are kept unchanged for the validation gate (label
balance, provenance, Cohen's kappa). The split is a pure function of
(split key, seed), as in ``prepare_sft``.
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
STAGE = "prepare_kto"


class PrepareKtoParams(Strict):
    input: str
    out_dir: str
    eval_fraction: float = Field(gt=0, lt=1)
    seed: int
    split_by: Literal["prompt", "id"]


def parse_label(value: Any, where: str) -> bool:
    """A boolean label; CSV's ``true``/``false`` strings are accepted, anything else is a DataError."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    shown = "missing" if value is None else f"a {type(value).__name__}"
    raise DataError(f"{where}: field label: expected a boolean (true = desirable), got {shown}")


def normalise_example(record: Record, path: Path) -> dict[str, Any]:
    """One raw example as ``{"id", "prompt", "completion", "label", ...provenance}``; errors name file:line:field."""
    data, where = record.data, f"{path}:{record.line}"
    return {
        "id": record_id(record, path),
        "prompt": as_messages(data.get("prompt"), where, "prompt", "user"),
        "completion": as_messages(data.get("completion"), where, "completion", "assistant"),
        "label": parse_label(data.get("label"), where),
        **provenance(data),
    }


@stage_main
def main(argv: list[str] | None = None) -> int:
    params = load_params(STAGE, PrepareKtoParams)
    source, out_dir = Path(params.input), Path(params.out_dir)
    # Normalise every record (any malformed one stops the stage before output is written)
    rows, seen = [], set()
    for record in iter_records(source):
        row = normalise_example(record, source)
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
            "rows": {
                "input": len(rows),
                "train": len(train),
                "eval": len(evaluation),
                "desirable": sum(r["label"] for r in rows),
            },
            "outputs": {name: sha256_file(out_dir / f"{name}.jsonl") for name in ("train", "eval")},
            "curation": [
                "strip whitespace of message contents",
                "string prompt/completion → user/assistant messages",
                "CSV label strings → booleans",
                f"split by {params.split_by} hash",
            ],
        },
    )
    log.info("prepared %d examples: %d train, %d eval", len(rows), len(train), len(evaluation))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
