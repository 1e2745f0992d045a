"""Normalise the RLHF prompts (prompt only; the reward model judges completions) and split them.

    dvc repro prepare_rlhf        # or: python -m pipelines.prepare_rlhf

Reads ``prepare_rlhf.input`` in a prompt shape (``{"id"?, "prompt"}``, or
GSM8K's question/answer) and writes ``train.jsonl``/``eval.jsonl`` of
``{"id", "prompt": [messages], ...metadata}`` — TRL's conversational
prompt-only format, as ``RLOOTrainer`` reads it — plus a ``manifest.json``.
Same conversion and (record id, seed) split as ``prepare_grpo``; fields other
than the prompt and metadata (a reference answer too) are dropped, and counted
in the manifest and as a curation step.
"""

from __future__ import annotations

import logging

from governance.datasets import prepare_dataset
from pipelines._common import load_params, require_ready_setup, stage_main
from pipelines.prepare_grpo import PreparePromptsParams, write_split
from pipelines.prepare_sft import METADATA_KEYS

log = logging.getLogger(__name__)
STAGE = "prepare_rlhf"


class PrepareRlhfParams(PreparePromptsParams):
    """Same shape as ``prepare_grpo``'s section."""


@stage_main
def main(argv: list[str] | None = None) -> int:
    # Every set-up requirement (server, identity, trail, keys) checked before any work: all problems at once
    require_ready_setup()
    params = load_params(STAGE, PrepareRlhfParams)
    # Read and convert every record (a malformed one stops the stage, or is quarantined: policies/data.yaml)
    prepared = prepare_dataset(params, "prompt", METADATA_KEYS, STAGE, policy_kind="rlhf")
    # RLHF data is prompt-only: a reference answer is not carried
    answers = sum("answer" in row for row in prepared.rows)
    for row in prepared.rows:
        row.pop("answer", None)
    prepared.curation.record("drop reference answers (prompt-only)", len(prepared.rows), changed=answers)
    dropped_fields = prepared.dropped_fields + answers
    if dropped_fields:
        log.info("dropped %d fields other than id/prompt/metadata (RLHF data is prompt-only)", dropped_fields)
    # Split by seed and write outputs
    write_split(prepared, params, STAGE, dropped_fields=dropped_fields)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
