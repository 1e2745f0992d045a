"""The register stage's lineage key: a version is its content, never when or by which run it was made."""

from __future__ import annotations

from pipelines.register import lineage_key


def trained(**changes) -> dict:
    """A training manifest as train_* leaves it (with the run context with_run_context adds)."""
    manifest = {
        "model_sha256": "a" * 64,
        "datasets": {"data/gated/sft.jsonl": {"md5": "m" * 32, "sha256": "d" * 64}},
        "parent": {"stage": "base_model", "model_sha256": "p" * 64},
        "params_sha256": "c" * 64,
        "reward_functions": {},
        "run_id": "run-1",
        "git_commit": "1" * 40,
        "lock_sha256": "l" * 64,
        "trained_at": "2026-11-22T09:00:00Z",
    }
    manifest.update(changes)
    return manifest


def test_re_evaluating_or_retraining_to_the_same_bytes_keeps_the_key():
    first = lineage_key("sft", trained())
    # a new run, commit, dvc.lock or time: the same version
    again = lineage_key(
        "sft", trained(run_id="run-2", git_commit="2" * 40, lock_sha256="k" * 64, trained_at="2026-11-23T00:00:00Z")
    )
    assert again == first


def test_weights_data_parent_params_and_method_each_change_the_key():
    first = lineage_key("sft", trained())
    changed = [
        lineage_key("sft", trained(model_sha256="b" * 64)),
        lineage_key("sft", trained(datasets={"data/gated/sft.jsonl": {"md5": "m" * 32, "sha256": "e" * 64}})),
        lineage_key("sft", trained(parent={"stage": "base_model", "model_sha256": "q" * 64})),
        lineage_key("sft", trained(params_sha256="f" * 64)),
        lineage_key("sft", trained(reward_functions={"brevity": "r" * 64})),
        lineage_key("dpo", trained()),
    ]
    assert len({first, *changed}) == len(changed) + 1
