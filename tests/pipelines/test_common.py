"""pipelines._common: what every stage process shares."""

from __future__ import annotations

import sys

import pytest

from pipelines._common import without_optional_backends


def test_an_optional_backend_left_out_fails_its_import(monkeypatch):
    monkeypatch.delitem(sys.modules, "stage_probe_backend", raising=False)
    without_optional_backends("stage_probe_backend")
    try:
        with pytest.raises(ImportError, match=r"^import of stage_probe_backend halted; None in sys.modules$"):
            import stage_probe_backend  # noqa: F401
    finally:
        del sys.modules["stage_probe_backend"]


def test_a_module_already_imported_is_left_alone():
    import json

    without_optional_backends("json")
    assert sys.modules["json"] is json
    import json as again

    assert again is json


def test_a_training_stage_process_leaves_out_scipy_always_and_peft_without_an_adapter(tmp_path):
    """In the stage's own process (as `python -m pipelines.train_*` runs it): no scipy, and peft only for LoRA."""
    import json
    import os
    import subprocess
    from pathlib import Path

    probe = (
        "import json, sys; from pipelines._training import leave_out_unused_backends; "
        "leave_out_unused_backends('train_sft'); "
        "from transformers.utils import is_peft_available, is_scipy_available; "
        "print(json.dumps([is_scipy_available(), is_peft_available()]))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    seen = {}
    for method in ("none", "lora"):
        (tmp_path / "params.yaml").write_text(f"train_sft:\n  adapter: {{method: {method}}}\n")
        done = subprocess.run(
            [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        seen[method] = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"none": [False, False], "lora": [False, True]}
