"""govern reproduce's environment check: the installed packages against the lock the version recorded."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from governance.environment import environment_differences
from governance.provenance.reproduce import Reproduction


def test_installed_packages_are_compared_with_the_lock(tmp_path):
    pyyaml = metadata.version("PyYAML")
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"# header comment\nPyYAML=={pyyaml}\npytest==0.0.1\nno-such-package-anywhere==1.0\n-e .\n")
    assert environment_differences(lock) == [
        f"pytest {metadata.version('pytest')} installed (lock 0.0.1)",
        "no-such-package-anywhere not installed (lock 1.0)",
    ]


def test_the_result_line_names_what_differs():
    result = Reproduction("govllm-sft", "3", "c0ffee" * 7, "train_sft", exit_code=1)
    result.differences = ["weights: model.safetensors sha256 0123456789ab… (registered ba9876543210…)"]
    assert result.line() == (
        "govllm-sft v3: reproduction from c0ffeec0ffee (train_sft) differs: "
        "weights: model.safetensors sha256 0123456789ab… (registered ba9876543210…)"
    )
    gone = "commit c0ffeec0ffee is not in the git checkout at /repo"
    missing = Reproduction("govllm-sft", "3", "c0ffee" * 7, "train_sft", exit_code=2, missing=gone)
    assert missing.line().endswith("inputs missing: commit c0ffeec0ffee is not in the git checkout at /repo")


def test_a_manifest_differing_only_in_the_base_models_run_context_is_not_a_difference(tmp_path):
    """The base_model stage records its wall time, machine and energy in the base block every descendant's manifest
    carries; a re-run of the same bytes records others (found by the team-setup walk's reproduce block)."""
    import json

    from governance.lineage import sha256_file
    from governance.provenance.reproduce import _same_content, _substantive

    def manifest(folder: str, seconds: float, **more) -> Path:
        path = tmp_path / folder / "manifest.json"
        path.parent.mkdir()
        base = {"model_sha256": "ab" * 32, "training": {"what": "tokenizer", "wall_seconds": seconds,
                "energy": {"seconds": seconds}, "environment": {"host": folder}}}  # fmt: skip
        path.write_text(json.dumps({"model_sha256": "cd" * 32, "base": base, **more}))
        return path

    registered, reproduced = manifest("registered", 0.075), manifest("reproduced", 0.085)
    assert _same_content(registered, sha256_file(registered), reproduced)
    # Believed only as the signed statement names it, and only run context may differ
    assert not _same_content(registered, "00" * 32, reproduced)
    assert not _same_content(registered, sha256_file(registered), manifest("other", 0.085, global_steps=7))
    note = "manifest.json: only the base model's run context differs (wall time, environment, energy)"
    assert not _substantive([note])
    assert _substantive(["file: manifest.json differs (lineage facts recorded with the weights)"])


def test_a_lock_with_hashes_is_read_by_its_requirements_not_its_hash_lines(tmp_path):
    pyyaml, pytest_version = metadata.version("PyYAML"), metadata.version("pytest")
    lock = tmp_path / "requirements.lock"
    lock.write_text(
        "# header comment\n"
        f"PyYAML=={pyyaml} \\\n    --hash=sha256:{'a' * 64} \\\n    --hash=sha256:{'b' * 64}\n"
        f"pytest[testing]=={pytest_version} \\\n    --hash=sha256:{'c' * 64}\n"
        f"no-such-package-anywhere==1.0 \\\n    --hash=sha256:{'d' * 64}\n"
    )
    assert environment_differences(lock) == ["no-such-package-anywhere not installed (lock 1.0)"]
