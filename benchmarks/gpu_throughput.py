"""SFT and DPO tokens/s on a GPU: the pipeline stage vs a bare TRL script, in bf16.

    python benchmarks/gpu_throughput.py [--steps 30] [--skip-qlora]
    python benchmarks/gpu_throughput.py --accelerate-config fsdp2 --num-processes 8 --skip-qlora
    python benchmarks/gpu_throughput.py --accelerate-config zero3 --num-processes 8 --skip-qlora   # needs deepspeed

Builds a Qwen2-0.5B-shaped model from its config (random weights, nothing is
downloaded) with the project's offline tokenizer, saves it as a *local model
directory*, and points ``base_model.name_or_path`` at it — so the pipeline side
also exercises the real external-model path. Each side runs in a fresh
subprocess on the same data, steps and TRL options; tokens/s is measured by the
trainer itself (``train_runtime`` and tokens seen). Prints the ratio per method
(goal: pipeline ≥ 0.98× bare) and checks that ``adapter.method: qlora`` trains
(bitsandbytes 4-bit). Needs a CUDA device: on a CPU-only machine it says so and
exits 2.

``--accelerate-config`` (single, multi_gpu, fsdp2, zero2, zero3: the files under
``configs/accelerate/``) runs both sides under the same accelerate launch with
``--num-processes`` processes: the pipeline through its params' ``launch:`` block
(what ``dvc repro`` runs), the bare script through ``python -m
accelerate.commands.launch``. Not yet run on a GPU from this repository (no GPU
was lent to the session that added the sharded configs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

QWEN2_05B = dict(
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    tie_word_embeddings=True,
)

BARE = textwrap.dedent(
    """
    import json, sys, torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    method, model_dir, data, opts = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    rows = [json.loads(l) for l in open(data)]
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    if method == "sft":
        from trl import SFTConfig, SFTTrainer
        trainer = SFTTrainer(model=model, args=SFTConfig(**opts), processing_class=tok,
                             train_dataset=Dataset.from_list([{"messages": r["messages"]} for r in rows]))
    else:
        from trl import DPOConfig, DPOTrainer
        keep = ("prompt", "chosen", "rejected")
        trainer = DPOTrainer(model=model, args=DPOConfig(**opts), processing_class=tok,
                             train_dataset=Dataset.from_list([{k: r[k] for k in keep} for r in rows]))
    out = trainer.train()
    tokens = trainer.state.num_input_tokens_seen
    print("RESULT", json.dumps({"runtime": out.metrics["train_runtime"], "tokens": tokens}))
    """
)


def build_model(dest: Path) -> None:
    """A Qwen2-0.5B-shaped model with random weights and the project's tokenizer."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    sys.path.insert(0, str(REPO))
    from pipelines.base_model import train_tokenizer

    tokenizer = train_tokenizer(REPO / "data/raw/corpus.txt", 8192)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **QWEN2_05B
    )
    Qwen2ForCausalLM(config).to(torch.bfloat16).save_pretrained(dest)
    tokenizer.save_pretrained(dest)


def trl_options(method: str, steps: int, out: str) -> dict:
    common = dict(
        output_dir=out,
        max_steps=steps,
        per_device_train_batch_size=8,
        learning_rate=1e-5,
        bf16=True,
        logging_steps=5,
        save_strategy="no",
        report_to=["mlflow"] if out.startswith("artifacts") else "none",
        gradient_checkpointing=False,
        include_num_input_tokens_seen=True,
        seed=0,
    )
    if method == "sft":
        return {**common, "max_length": 512}
    return {**common, "max_length": 512, "beta": 0.1}


def pipeline_side(
    method: str, work: Path, steps: int, qlora: bool = False, config: str = "single", processes: int = 1
) -> dict:
    """Run the real stages in a scratch copy: base_model (external dir) → gates → train_<method>."""
    params = yaml.safe_load((work / "params.yaml").read_text())
    section = f"train_{method}"
    params[section]["launch"] = {"num_processes": processes, "config_file": f"configs/accelerate/{config}.yaml"}
    params[section]["trl"] = {
        **params[section]["trl"],
        **trl_options(method, steps, params[section]["trl"]["output_dir"]),
    }
    params[section]["adapter"]["method"] = "qlora" if qlora else "none"
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db"}
    stages = ["dvc", "repro", "--no-commit", section]
    done = subprocess.run(stages, cwd=work, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"pipeline {method} failed:\n{done.stderr[-3000:]}")
    manifest = json.loads((work / params[section]["trl"]["output_dir"] / "manifest.json").read_text())
    final = [h for h in manifest["train_history"] if "train_runtime" in h][-1]
    return {"runtime": final["train_runtime"], "tokens": manifest["tokens_seen"]}


def bare_side(
    method: str, model_dir: Path, data: Path, steps: int, out: Path, config: str = "single", processes: int = 1
) -> dict:
    script = out.with_suffix(".py")
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(BARE)
    config_file = str(REPO / f"configs/accelerate/{config}.yaml")
    launch = ["-m", "accelerate.commands.launch", "--quiet", "--config_file", config_file]
    done = subprocess.run(
        [
            sys.executable,
            *launch,
            "--num_processes",
            str(processes),
            str(script),
            method,
            str(model_dir),
            str(data),
            json.dumps(trl_options(method, steps, str(out))),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"bare {method} failed:\n{done.stderr[-3000:]}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--skip-qlora", action="store_true")
    configs = ["single", "multi_gpu", "fsdp2", "zero2", "zero3"]
    parser.add_argument("--accelerate-config", default="single", choices=configs)
    parser.add_argument("--num-processes", type=int, default=1, help="processes (GPUs) for the accelerate config")
    args = parser.parse_args()
    sharding = {"config": args.accelerate_config, "processes": args.num_processes}
    import torch

    if not torch.cuda.is_available():
        print("gpu_throughput: no CUDA device on this machine; run it where one is lent", file=sys.stderr)  # noqa: T201
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "repo"
        shutil.copytree(
            REPO, work, ignore=shutil.ignore_patterns(".venv", "artifacts", "mlflow.db", "mlartifacts", ".git")
        )
        subprocess.run(["git", "init", "-q"], cwd=work, check=True)
        model_dir = Path(tmp) / "qwen2-0.5b-shaped"
        build_model(model_dir)
        params = yaml.safe_load((work / "params.yaml").read_text())
        params["base_model"]["name_or_path"] = str(model_dir)
        (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        rows = {}
        for method, data in (("sft", "data/raw/sft.jsonl"), ("dpo", "data/raw/preference.jsonl")):
            bare = bare_side(method, model_dir, REPO / data, args.steps, Path(tmp) / f"bare_{method}", **sharding)
            piped = pipeline_side(method, work, args.steps, **sharding)
            rows[method] = (bare["tokens"] / bare["runtime"], piped["tokens"] / piped["runtime"])
        print(  # noqa: T201
            f"device: {torch.cuda.get_device_name(0)}; model: Qwen2-0.5B-shaped, bf16, {args.steps} steps; "
            f"accelerate {args.accelerate_config} x{args.num_processes}"
        )
        print(f"{'method':8} {'bare tok/s':>12} {'pipeline tok/s':>15} {'ratio':>7}")  # noqa: T201
        for method, (bare, piped) in rows.items():
            print(f"{method:8} {bare:12.0f} {piped:15.0f} {piped / bare:7.3f}")  # noqa: T201
        if not args.skip_qlora:
            qlora = pipeline_side("sft", work, 5, qlora=True)
            print(f"qlora sft: trained {qlora['tokens']} tokens in {qlora['runtime']:.1f}s")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
