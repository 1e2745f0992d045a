"""govern reproduce's environment check: the installed packages against the lock the version recorded."""

from __future__ import annotations

from importlib import metadata

from governance.provenance.reproduce import Reproduction, environment_differences


def test_installed_packages_are_compared_with_the_lock(tmp_path):
    pyyaml = metadata.version("PyYAML")
    lock = tmp_path / "requirements.lock"
    lock.write_text(
        "# header comment\n"
        f"PyYAML=={pyyaml}\n"
        "pytest==0.0.1\n"
        "no-such-package-anywhere==1.0\n"
        "-e .\n"
    )
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
