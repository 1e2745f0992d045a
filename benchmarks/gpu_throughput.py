"""SFT and DPO on a GPU: tokens/s, MFU and joules per 1k tokens, the pipeline's stage beside a bare TRL script.

    python benchmarks/gpu_throughput.py [--steps 30] [--skip-qlora]               # TRL's defaults (batch 8)
    python benchmarks/gpu_throughput.py --profile configs/profiles/gpu-h100.yaml  # the profile beside the defaults
    python benchmarks/gpu_throughput.py --no-dvc ...                              # the training stages only
    python benchmarks/gpu_throughput.py --orders both ...                         # each pair in both orders
    python benchmarks/gpu_throughput.py --accelerate-config fsdp2 --num-processes 8 --skip-qlora
    python benchmarks/gpu_throughput.py --dvc-set configs/profiles/gpu-h100.yaml  # the profile as dvc exp run -S flags
    python benchmarks/gpu_throughput.py --device cpu --model builtin:tiny --no-dvc --steps 2 --skip-qlora  # smoke test

Builds a Qwen2-0.5B-shaped model from its config (random weights, nothing is
downloaded; ``--model`` takes a local model directory or ``builtin:tiny``
instead) with the project's offline tokenizer, saves it as a *local model
directory*, and points ``base_model.name_or_path`` at it, so the pipeline side
also exercises the real external-model path. Each side runs in a fresh
subprocess on the same data, steps and TRL options:

* **pipeline**: in a scratch copy of the checkout (its tracked files, a git
  repo as a clone is), ``dvc repro train_<method>``, gates and all; or, with
  ``--no-dvc``, the training stage's command from dvc.yaml (``python -m
  pipelines._launch ... -m pipelines.train_<method>``) with no DVC and none of
  the gates' packages (presidio, Spark, great-expectations): the benchmark
  writes the raw data where params.yaml's gated files live and publishes
  passing gate decisions for those bytes into the scratch copy's own audit
  trail, as ``tests/pipelines`` does, so the stage's gate check passes. Those
  decisions say in their details that nothing was scanned; they never leave
  the scratch copy, which is deleted after. This measures training, not the
  gates.
* **bare**: a TRL script that loads the same model and trains it with the
  same options, nothing else.

What is read, per side: tokens from ``trainer.state.num_input_tokens_seen``
(``include_num_input_tokens_seen: non_padding``, so padding is not counted)
— the pipeline's manifest ``tokens_seen``; seconds from TRL's
``train_runtime`` — the pipeline's MLflow run metric of that name (the
manifest holds no timings: its hash must not change between identical runs);
joules from NVML's counter around ``trainer.train()`` — the pipeline's
``lineage.json`` ``energy`` (:mod:`governance.energy`), the bare script's own
reads. Printed per setting and method: tokens/s, MFU, the pipeline/bare ratio
(goal ≥ 0.98) and joules per 1k tokens (``est.`` where NVML could not meter,
``n/a`` where nothing was known).

MFU = model FLOPs per token × N × tokens/s ÷ (the GPU's dense bf16 peak ×
GPUs), N the trained model's parameters; SFT 6 (forward and backward), DPO 8
(plus the reference model's forward); attention's own FLOPs are not counted
(a few percent at 512 tokens). The peaks are :data:`PEAK_BF16` by GPU name.

``--profile`` runs every method twice, TRL's defaults and the profile's
``train_<method>.trl`` overrides, and prints them side by side. Both sides train
with the stage's own TRL section (``params.yaml``'s ``train_<method>.trl`` with
the benchmark's options and the profile's over it): the same settings. ``--skip-qlora``
skips the check that ``adapter.method: qlora`` trains (bitsandbytes 4-bit),
records its quantisation config in the lineage, and that its dense merge is
evaluated and registered as any version. Needs a CUDA device
unless ``--device cpu`` (the smoke test,
``tests/benchmarks/test_gpu_throughput_smoke.py``: MFU and joules are ``n/a``
there). Measured on an H200 (``benchmarks/results/gpu_throughput_h200.json``,
docs/explanation/performance.md): ``--settings profile,defaults`` measures the
profile first, so a run stopped by its time limit keeps the rows that matter
most (each row is printed and written as it is measured); ``--qlora-only`` runs
the QLoRA check alone.

``--accelerate-config`` (single, multi_gpu, fsdp2, zero2, zero3: the files under
``configs/accelerate/``) runs both sides under the same accelerate launch with
``--num-processes`` processes: the pipeline through its params' ``launch:`` block
(what ``dvc repro`` runs), the bare script through ``python -m
accelerate.commands.launch``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
from functools import partial
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # lineage.json is read back: no bar on stderr

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

QWEN2_15B = dict(
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    max_position_embeddings=32768,
    rope_theta=1000000.0,
    tie_word_embeddings=True,
)

#: The model shapes ``--model`` builds from a config (random weights, the project's tokenizer): nothing is downloaded.
SHAPES = {"qwen2-0.5b-shaped": QWEN2_05B, "qwen2-1.5b-shaped": QWEN2_15B}

#: Dense (no sparsity) bf16 tensor-core peak in FLOP/s per GPU, from the vendors' data sheets, matched in
#: order against the CUDA device name. A GPU not listed gets no MFU (said, not guessed).
PEAK_BF16: tuple[tuple[str, float], ...] = (
    (r"H100.*PCIe", 756e12),
    (r"H100 NVL", 835e12),
    (r"GH200|H200|H100|H800", 989e12),  # SXM
    (r"B200", 2250e12),
    (r"A100|A800", 312e12),
    (r"L40S", 362e12),
    (r"L4\b", 121e12),
    (r"A10\b", 125e12),
    (r"MI300X", 1307e12),
)

#: Model FLOPs per token and parameter: forward 2, backward 4; DPO adds the reference model's forward.
FLOPS_PER_TOKEN = {"sft": 6, "dpo": 8}

#: Where params.yaml's training sections read their gated data, and the gates that must have judged it.
GATED = {
    "sft": ("data/raw/sft.jsonl", "sft", ("messages",)),
    "dpo": ("data/raw/preference.jsonl", "preference", ("prompt", "chosen", "rejected")),
}

BARE = textwrap.dedent(
    """
    import json, os, sys
    wait_policy = os.environ.get("OMP_WAIT_POLICY")  # as OpenMP read it when torch loaded (governance sets a default)
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from governance.energy import GpuEnergyMeter, energy_record
    method, model_dir, data, opts = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    rows = [json.loads(l) for l in open(data)]
    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    dtype = torch.bfloat16 if opts.get("bf16") else torch.float32
    init = {k: v for k, v in (opts.get("model_init_kwargs") or {}).items() if k != "dtype"}
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, **init)
    if method == "sft":
        from trl import SFTConfig, SFTTrainer
        trainer = SFTTrainer(model=model, args=SFTConfig(**opts), processing_class=tok,
                             train_dataset=Dataset.from_list([{"messages": r["messages"]} for r in rows]))
    else:
        from trl import DPOConfig, DPOTrainer
        keep = ("prompt", "chosen", "rejected")
        trainer = DPOTrainer(model=model, args=DPOConfig(**opts), processing_class=tok,
                             train_dataset=Dataset.from_list([{k: r[k] for k in keep} for r in rows]))
    import time
    from transformers import TrainerCallback

    class Logged(TrainerCallback):
        # (step, seconds, tokens) at every log, as the stage's MLflow run records num_input_tokens_seen: the steady
        # rate is read from both sides the same way (steady_rate), after CUDA start and kernel compilation
        points = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.points.append((state.global_step, time.time(), state.num_input_tokens_seen))

    logged = Logged()
    trainer.add_callback(logged)
    meter = GpuEnergyMeter.for_this_process(rank=trainer.args.process_index)
    meter.start()
    out = trainer.train()
    readings = meter.stop()
    peak_gib = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, readings)
        readings = [r for rank in gathered for r in rank]
    energy = energy_record(readings, seconds=meter.seconds, reason=meter.reason)
    if trainer.is_world_process_zero():
        reference = getattr(trainer, "ref_model", None)
        print("RESULT", json.dumps({
            "runtime": out.metrics["train_runtime"],
            # how the policy (and DPO's reference) computed: what a stage/bare difference would come from
            "dtype": str(trainer.model.dtype),
            "attn_implementation": trainer.model.config._attn_implementation,
            "reference_dtype": str(reference.dtype) if reference is not None else None,
            "omp_wait_policy": wait_policy,
            "tokens": trainer.state.num_input_tokens_seen,
            "parameters": sum(p.numel() for p in trainer.model.parameters()),
            "energy": energy,
            "log_points": logged.points,
            "peak_memory_gib": peak_gib,
            "threads": torch.get_num_threads(),
        }))
    """
)


# --------------------------------------------------------------------------- the model and the options


def build_model(dest: Path, shape: str = "qwen2-0.5b-shaped") -> None:
    """A Qwen2-0.5B- (or 1.5B-) shaped model with random weights and the project's tokenizer."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    sys.path.insert(0, str(REPO))
    from pipelines.base_model import train_tokenizer

    tokenizer = train_tokenizer((REPO / "data/raw/corpus.txt").read_text(encoding="utf-8").splitlines(), 8192)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **SHAPES[shape],
    )
    Qwen2ForCausalLM(config).to(torch.bfloat16).save_pretrained(dest)
    tokenizer.save_pretrained(dest)


def trl_options(method: str, steps: int, out: str, device: str = "cuda", profile: dict | None = None) -> dict:
    """TRL's defaults at batch 8 (what the issue measured at 1.6% MFU), or with a profile's options over them."""
    common = dict(
        output_dir=out,
        max_steps=steps,
        per_device_train_batch_size=8,
        learning_rate=1e-5,
        bf16=device == "cuda",
        logging_steps=5,
        save_strategy="no",
        report_to=["mlflow"] if out.startswith("artifacts") else "none",
        gradient_checkpointing=False,
        include_num_input_tokens_seen="non_padding",
        seed=0,
    )
    if method == "sft":
        options = {**common, "max_length": 512}
    else:
        options = {**common, "max_length": 512, "beta": 0.1}
    section = ((profile or {}).get(f"train_{method}") or {}).get("trl") or {}
    return {**options, **section, "output_dir": out, "report_to": options["report_to"], "max_steps": steps}


def load_profile(path: str | Path) -> dict[str, Any]:
    """A GPU profile (``configs/profiles/*.yaml``): params.yaml sections holding only the options it changes."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise SystemExit(f"gpu_throughput: {path}: not a mapping of params.yaml sections")
    return data


def dvc_set_flags(profile: dict[str, Any]) -> list[str]:
    """The profile as ``dvc exp run -S`` overrides: ``++section.key=value`` adds a key params.yaml lacks or sets it."""

    def leaves(prefix: str, node: Any):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from leaves(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            yield prefix, node

    flags = []
    for section, body in profile.items():
        if not section.startswith("train_"):  # the profile's own description, not params
            continue
        for key, value in leaves(section, body):
            text = json.dumps(value) if isinstance(value, bool | int | float) or value is None else str(value)
            flags += ["-S", f"++{key}={text}"]
    return flags


def peak_flops(gpu: str | None) -> float | None:
    """The dense bf16 peak of a GPU by its CUDA name (:data:`PEAK_BF16`), or None."""
    return next((peak for pattern, peak in PEAK_BF16 if gpu and re.search(pattern, gpu)), None)


def mfu(method: str, parameters: int | None, tokens_per_second: float, peak: float | None, gpus: int) -> float | None:
    """Model FLOPs utilisation: ``FLOPS_PER_TOKEN[method]`` × N × tokens/s over the GPUs' dense bf16 peak."""
    if not parameters or not peak:
        return None
    return FLOPS_PER_TOKEN[method] * parameters * tokens_per_second / (peak * gpus)


def warmup_steps(steps: int) -> int:
    """Steps left out of the steady rate: CUDA start, kernel selection and compilation fall in them."""
    return max(1, min(10, steps // 4))


def steady_rate(points: list[tuple[int, float, float]], skip: int) -> float | None:
    """Tokens/s between the first log at or after step ``skip`` and the last: ``(step, seconds, tokens)`` points.

    Both sides are read the same way: the bare script's log callback, the stage's MLflow history of
    ``num_input_tokens_seen`` (its timestamps); None when fewer than two logs fall after the warm-up.
    """
    after = sorted(p for p in points if p[0] >= skip)
    if len(after) < 2 or after[-1][1] <= after[0][1]:
        return None
    return (after[-1][2] - after[0][2]) / (after[-1][1] - after[0][1])


# --------------------------------------------------------------------------- the scratch checkout


def environment(work: Path) -> dict[str, str]:
    """The scratch copy's environment: its own MLflow store and audit trail, offline, fresh interpreters."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GOVERN_"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(filter(None, [str(work), os.environ.get("PYTHONPATH")])),
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="",
        TOKENIZERS_PARALLELISM="false",
        DVC_NO_ANALYTICS="1",
        GOVERN_USER="benchmark",
        GOVERN_STAGE_SERVER="off",  # both sides start fresh interpreters; no server left behind
        MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}",
        GOVERN_AUDIT_URL=f"sqlite:///{work / 'audit.db'}",
    )
    return env


def scratch_copy(dest: Path) -> Path:
    """The checkout's files (tracked, and new ones not ignored) as a new git repo, as a clone is: policies reviewed."""
    listing = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(listing, cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in filter(None, files.split("\0")):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "benchmark copy"],
    ):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    return dest


def run(cmd: list[str], work: Path, what: str) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=work, env=environment(work), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(
            f"gpu_throughput: {what} failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}"
        )
    return done


def stage_command(work: Path, stage: str) -> list[str]:
    """The stage's ``cmd`` from dvc.yaml with ``${...}`` filled in from params.yaml: what ``dvc repro`` runs."""
    params = yaml.safe_load((work / "params.yaml").read_text())

    def value(match: re.Match) -> str:
        node = params
        for key in match.group(1).split("."):
            node = node[key]
        return str(node)

    cmd = yaml.safe_load((work / "dvc.yaml").read_text())["stages"][stage]["cmd"]
    argv = shlex.split(re.sub(r"\$\{([A-Za-z0-9_.]+)\}", value, cmd))
    return [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]


#: Run in the scratch copy: passing decisions of both required gates for the files written there.
PUBLISH_GATES = textwrap.dedent(
    """
    import sys
    from governance.gates import dataset_ref, decide, publish_decision
    dataset, gates, files = sys.argv[1], sys.argv[2].split(","), sys.argv[3:]
    note = ("not scanned: benchmarks/gpu_throughput.py --no-dvc published this decision in a scratch copy's own "
            "audit trail so the training stage runs without the gates' packages; it measures training, not gates")
    for gate, stage, policy in (("pii", f"pii_scan_{dataset}", "policies/pii.yaml"),
                                ("validation", f"validate_{dataset}", "policies/data.yaml")):
        if gate not in gates:
            continue
        # As the validation gate records them: the first file the train split, any other the held-out eval split
        details = {"benchmark": note}
        if gate == "validation":  # under the rules of the kind the method trains on (grpo's data: prompt)
            details["kind"] = {"corpus": "text", "grpo": "prompt"}.get(dataset, dataset)
            details["files"] = {f: {"role": "train" if i == 0 else "eval"} for i, f in enumerate(files)}
        decision = decide(gate=gate, stage=stage, datasets=[dataset_ref(f) for f in files], policy_path=policy,
                          policy_version="benchmark", violations=[], details=details)
        publish_decision(decision, f"artifacts/{stage}/decision.json")
    """
)


def write_gated_data(work: Path, method: str) -> None:
    """``--no-dvc``: the raw data at the paths params.yaml trains on, and passing decisions for those bytes."""
    raw, dataset, keep = GATED[method]
    params = yaml.safe_load((work / "params.yaml").read_text())[f"train_{method}"]
    rows = [json.loads(line) for line in (REPO / raw).read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [{k: row[k] for k in keep} for row in rows]
    split = int(len(rows) * 0.9)
    for key, part in (("train_file", rows[:split]), ("eval_file", rows[split:])):
        path = work / params[key]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    run(
        [sys.executable, "-c", PUBLISH_GATES, dataset, "pii,validation", params["train_file"], params["eval_file"]],
        work,
        "gates",
    )


def write_gated_corpus(work: Path) -> None:
    """``--no-dvc`` with the built-in base: the corpus records where base_model reads the gated copy, with passing
    decisions for those bytes (prepare_corpus runs as in the DAG; the gates' packages are not needed)."""
    run(stage_command(work, "prepare_corpus"), work, "prepare_corpus")
    params = yaml.safe_load((work / "params.yaml").read_text())
    prepared = work / params["pii_scan_corpus"]["inputs"][0]
    gated = work / params["base_model"]["corpus"]
    gated.parent.mkdir(parents=True, exist_ok=True)
    gated.write_bytes(prepared.read_bytes())
    corpus = params["base_model"]["corpus"]
    run([sys.executable, "-c", PUBLISH_GATES, "corpus", "pii,validation", corpus], work, "gates")


def write_gated_safety(work: Path) -> None:
    """``--no-dvc`` before an evaluation: the safety sets where pii_scan_safety writes them, with a passing PII decision
    for those bytes (the safety sets have a PII gate only)."""
    params = yaml.safe_load((work / "params.yaml").read_text())["pii_scan_safety"]
    data = work / params["out_dir"] / "data"
    data.mkdir(parents=True, exist_ok=True)
    files = []
    for source in params["inputs"]:
        (data / Path(source).name).write_bytes((work / source).read_bytes())
        files.append(str(Path(params["out_dir"]) / "data" / Path(source).name))
    run([sys.executable, "-c", PUBLISH_GATES, "safety", "pii", *files], work, "gates")


def stage_trl(method: str, options: dict) -> dict:
    """The TRL options a stage trains with: the checkout's ``train_<method>.trl`` with ``options`` over it.

    Over the checkout's section, not the scratch copy's last one: a profile's options (packing, flex attention)
    must not stay behind in the settings measured after it. The bare script is given the same dict (its own
    ``output_dir`` and ``report_to`` aside), so both sides train with the same settings: the shipped section's
    options that ``options`` leaves alone (DPO's ``loss_type: [sigmoid, sft]``, the seeds, the scheduler) too.
    """
    shipped = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))[f"train_{method}"]["trl"]
    return {**shipped, **options}


def set_params(work: Path, method: str, options: dict, adapter: str, config: str, processes: int) -> None:
    """The stage's params for one side: :func:`stage_trl`, the adapter and the accelerate launch."""
    params = yaml.safe_load((work / "params.yaml").read_text())
    section = params[f"train_{method}"]
    section["launch"] = {"num_processes": processes, "config_file": f"configs/accelerate/{config}.yaml"}
    section["trl"] = stage_trl(method, options)
    section["adapter"]["method"] = adapter
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def latest_run(work: Path, stage: str) -> tuple[dict[str, float], dict[str, Any]]:
    """The stage's latest MLflow run in the scratch store: its metrics and its ``lineage.json``."""
    import mlflow

    uri = f"sqlite:///{work / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    project = yaml.safe_load((work / "params.yaml").read_text())["project"]
    experiment = client.get_experiment_by_name(project)
    runs = client.search_runs(
        [experiment.experiment_id], f"tags.stage = '{stage}'", order_by=["attributes.start_time DESC"], max_results=1
    )
    if not runs:
        raise SystemExit(f"gpu_throughput: no MLflow run of {stage} in {uri}")
    run_id = runs[0].info.run_id
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, "lineage.json", tmp)
        lineage = json.loads(Path(path).read_text())
    history = client.get_metric_history(run_id, "num_input_tokens_seen")
    lineage["_log_points"] = [(m.step, m.timestamp / 1000.0, m.value) for m in history]
    return runs[0].data.metrics, lineage


def pipeline_side(
    method: str,
    work: Path,
    options: dict,
    *,
    dvc: bool = True,
    qlora: bool = False,
    config: str = "single",
    processes: int = 1,
) -> dict:
    """Train with the real stage in the scratch copy; what its manifest, run and lineage recorded."""
    section = f"train_{method}"
    set_params(work, method, options, "qlora" if qlora else "none", config, processes)
    if dvc:
        run([sys.executable, "-m", "dvc", "repro", "--no-commit", section], work, f"dvc repro {section}")
    else:
        run(stage_command(work, section), work, section)
    out_dir = yaml.safe_load((work / "params.yaml").read_text())[section]["trl"]["output_dir"]
    manifest = json.loads((work / out_dir / "manifest.json").read_text())
    metrics, lineage = latest_run(work, section)
    return {
        "runtime": metrics.get("train_runtime", metrics.get("wall_seconds")),
        "tokens": manifest["tokens_seen"],
        "parameters": manifest["num_parameters"],
        "energy": lineage.get("energy"),
        "quantization": lineage.get("quantization"),
        "log_points": lineage.get("_log_points", []),
    }


def stage_parent(work: Path, section: dict) -> Path:
    """The model a training stage starts from: its ``base_model`` output's manifest ``model_path`` (the base model's
    folder for SFT; train_sft's output for DPO), as the stage itself resolves it."""
    sys.path.insert(0, str(REPO))
    from pipelines._training.models import base_model_path

    path = base_model_path(work / section["base_model"])
    return path if path.is_absolute() else work / path


#: ``--orders``: which side trains first, per setting and method.
ORDERS = {
    "bare-first": (("bare", "stage"),),
    "stage-first": (("stage", "bare"),),
    "both": (("bare", "stage"), ("stage", "bare")),
}


def order_balanced(pair: list[dict]) -> dict:
    """Two rows of one setting and method measured in both orders: the geometric mean of their stage/bare ratios
    (whole run and steady), in which a speed-up of whichever side trains second cancels (scipy's gmean)."""
    from scipy.stats import gmean

    def mean(key: str) -> float | None:
        values = [r[key] for r in pair]
        return float(gmean(values)) if all(values) else None

    return {"setting": pair[0]["setting"], "method": pair[0]["method"], "orders": [r["order"] for r in pair],
            "ratio": mean("ratio"), "steady_ratio": mean("steady_ratio")}  # fmt: skip


def balanced_line(entry: dict) -> str:
    steady = f"{entry['steady_ratio']:.3f}" if entry["steady_ratio"] else "n/a"
    return (f"{entry['setting']} {entry['method']}: stage/bare over both orders (geometric mean) "
            f"{entry['ratio']:.3f} whole run, {steady} steady")  # fmt: skip


def in_checkout(path: Path, work: Path) -> str:
    """``path`` as the checkout names it (relative to the scratch copy ``work``), or as it is when outside it."""
    return str(path.relative_to(work)) if path.is_relative_to(work) else str(path)


def bare_side(
    method: str,
    work: Path,
    model_dir: Path,
    data: Path,
    options: dict,
    out: Path,
    config: str = "single",
    processes: int = 1,
) -> dict:
    """Train with a bare TRL script under the same accelerate launch; what it printed."""
    script = out.with_suffix(".py")
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(BARE)
    config_file = str(REPO / f"configs/accelerate/{config}.yaml")
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--quiet", "--config_file", config_file]
    argv = [*launch, "--num_processes", str(processes), str(script), method, str(model_dir), str(data)]
    done = run([*argv, json.dumps({**options, "output_dir": str(out)})], work, f"bare {method}")
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


# --------------------------------------------------------------------------- the sweep: each profile choice measured

#: ``--sweep``: the options a GPU profile chooses, one change at a time over TRL's defaults, each run by the bare
#: TRL script (the pipeline's cost is the ratio's business). ``wrapped`` packing lets a conversation attend to the one
#: before it in the same row (no padding-free kernel needed, but not the same training): measured for comparison only,
#: never chosen. The best correct variant per method becomes the profile ``--write-profile`` writes.
SWEEP: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "sft": [
        ("defaults (batch 8)", {}),
        ("batch 64", {"per_device_train_batch_size": 64}),
        ("batch 64 + liger", {"per_device_train_batch_size": 64, "use_liger_kernel": True}),
        ("bfd 2048 x 8", {"packing": True, "packing_strategy": "bfd", "max_length": 2048}),
        (
            "bfd 2048 x 8 + liger",
            {"packing": True, "packing_strategy": "bfd", "max_length": 2048, "use_liger_kernel": True},
        ),
        (
            "bfd 8192 x 1 + liger",
            {
                "packing": True,
                "packing_strategy": "bfd",
                "max_length": 8192,
                "per_device_train_batch_size": 1,
                "use_liger_kernel": True,
            },
        ),
        (
            "bfd 2048 x 8 + liger + flex",
            {
                "packing": True,
                "packing_strategy": "bfd",
                "max_length": 2048,
                "use_liger_kernel": True,
                # PyTorch's flex attention skips the blocks the packed rows' mask leaves out (SDPA computes them);
                # one padded length (8 x 2048) so its compiled kernel is built once, not per batch
                "model_init_kwargs": {"attn_implementation": "flex_attention"},
                "pad_to_multiple_of": 16384,
            },
        ),
        (
            "wrapped 2048 x 8 + liger",
            {"packing": True, "packing_strategy": "wrapped", "max_length": 2048, "use_liger_kernel": True},
        ),
    ],
    "dpo": [
        ("defaults (batch 8)", {}),
        ("batch 32", {"per_device_train_batch_size": 32}),
        ("batch 32 + liger", {"per_device_train_batch_size": 32, "use_liger_kernel": True}),
    ],
}


def sweep(
    methods: list[str],
    work: Path,
    model_dir: Path,
    steps: int,
    device: str,
    tmp: Path,
    peak: float | None,
    variants: dict[str, list[tuple[str, dict[str, Any]]]] = SWEEP,
) -> list[dict]:
    """Every variant of :data:`SWEEP` by the bare TRL script; a variant that fails is a row saying so, not a stop."""
    rows = []
    for method in methods:
        raw = REPO / GATED[method][0]
        for name, change in variants[method]:
            options = {**trl_options(method, steps, str(tmp / f"sweep_{method}"), device), **change}
            options["bf16"] = device == "cuda"
            entry = {"method": method, "variant": name, "options": change}
            try:
                result = bare_side(method, work, model_dir, raw, options, tmp / f"sweep_{method}")
            except SystemExit as failed:
                entry["error"] = str(failed).strip().splitlines()[-1][:300]
            else:
                tps = result["tokens"] / result["runtime"]
                steady = steady_rate(result.get("log_points", []), warmup_steps(steps))
                entry.update(
                    tokens_per_s=tps,
                    steady_tokens_per_s=steady,
                    mfu=mfu(method, result["parameters"], tps, peak, 1),
                    mfu_steady=mfu(method, result["parameters"], steady, peak, 1) if steady else None,
                    peak_memory_gib=result.get("peak_memory_gib"),
                    parameters=result["parameters"],
                    tokens=result["tokens"],
                )
            rows.append(entry)
            print(sweep_line(entry), flush=True)  # noqa: T201
    return rows


def sweep_line(r: dict) -> str:
    if "error" in r:
        return f"{r['method']:4} {r['variant']:28} failed: {r['error']}"

    def pct(value: float | None) -> str:
        return f"{100 * value:.1f}%" if value is not None else "n/a"

    memory = f"{r['peak_memory_gib']:.1f}" if r.get("peak_memory_gib") is not None else "n/a"
    steady = f"{r['steady_tokens_per_s']:.0f}" if r.get("steady_tokens_per_s") else "n/a"
    return (
        f"{r['method']:4} {r['variant']:28} {r['tokens_per_s']:10.0f} {steady:>10} {pct(r['mfu']):>7} "
        f"{pct(r['mfu_steady']):>9} {memory:>8}"
    )


def best_profile(rows: list[dict], device: str) -> dict[str, Any]:
    """The profile the sweep measured best: per method, the correct variant (not ``wrapped``) of highest MFU."""
    profile: dict[str, Any] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        ok = [r for r in rows if r["method"] == method and "error" not in r and "wrapped" not in r["variant"]]
        if not ok:
            continue
        best = max(ok, key=lambda r: r.get("steady_tokens_per_s") or r["tokens_per_s"])
        profile[f"train_{method}"] = {"trl": {"bf16": device == "cuda", **best["options"]}}
    return profile


# --------------------------------------------------------------------------- the figures


def joules_per_1k(side: dict) -> tuple[float | None, str]:
    """Joules per 1000 tokens and how it was had: ``nvml``, ``est.`` (power limit x time) or ``n/a``."""
    energy = side.get("energy") or {}
    if energy.get("joules") is None or not side.get("tokens"):
        return None, "n/a"
    return energy["joules"] / side["tokens"] * 1000, "nvml" if energy.get("method") == "nvml" else "est."


def row(setting: str, method: str, bare: dict, piped: dict, peak: float | None, gpus: int, skip: int = 1) -> dict:
    """One line of the table, as JSON: both sides' tokens/s and MFU (whole run and steady), the ratios, joules."""
    bare_tps, piped_tps = bare["tokens"] / bare["runtime"], piped["tokens"] / piped["runtime"]
    bare_steady, piped_steady = steady_rate(bare.get("log_points", []), skip), steady_rate(piped["log_points"], skip)
    joules, how = joules_per_1k(piped)
    bare_joules, bare_how = joules_per_1k(bare)
    return {
        "setting": setting,
        "method": method,
        "bare_tokens_per_s": bare_tps,
        "pipeline_tokens_per_s": piped_tps,
        "ratio": piped_tps / bare_tps,
        "bare_steady_tokens_per_s": bare_steady,
        "pipeline_steady_tokens_per_s": piped_steady,
        "steady_ratio": piped_steady / bare_steady if bare_steady and piped_steady else None,
        "mfu_steady_bare": mfu(method, bare["parameters"], bare_steady, peak, gpus) if bare_steady else None,
        "mfu_steady_pipeline": mfu(method, piped["parameters"], piped_steady, peak, gpus) if piped_steady else None,
        "mfu_bare": mfu(method, bare["parameters"], bare_tps, peak, gpus),
        "mfu_pipeline": mfu(method, piped["parameters"], piped_tps, peak, gpus),
        "joules_per_1k_tokens": joules,
        "energy": how,
        "bare_joules_per_1k_tokens": bare_joules,
        "bare_energy": bare_how,
        "tokens": piped["tokens"],
        "bare_tokens": bare["tokens"],  # the same records and options: equal unless the sides tokenised differently
        "parameters": piped["parameters"],
        "bare_peak_memory_gib": bare.get("peak_memory_gib"),
        "bare_threads": bare.get("threads"),  # the caller's OMP_NUM_THREADS, which the stage takes too
    }


def rounded(value: Any) -> Any:
    """``value`` with every float cut to 6 significant digits (in dicts and lists too): a rate's seventeenth digit
    is noise, and a long run of digits reads as a number of another kind (a card number) to a PII scan."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item) for item in value]
    return value


def write_results(path: Path, data: dict) -> None:
    """The ``--json`` results file: :func:`rounded` figures, indented."""
    path.write_text(json.dumps(rounded(data), indent=2) + "\n")


def print_table(rows: list[dict]) -> None:
    def pct(value: float | None) -> str:
        return f"{100 * value:.1f}%" if value is not None else "n/a"

    def joules(value: float | None, how: str) -> str:
        return f"{value:.1f} {how}" if value is not None else how

    def num(value: float | None, spec: str) -> str:
        return format(value, spec) if value is not None else "n/a"

    print(  # noqa: T201
        f"{'setting':9} {'method':6} {'bare tok/s':>11} {'pipe tok/s':>11} {'ratio':>6} "
        f"{'MFU bare':>9} {'MFU pipe':>9} {'steady ratio':>12} {'steady MFU b/p':>15} "
        f"{'J/1k tok pipe':>15} {'J/1k tok bare':>15}"
    )
    for r in rows:
        steady_mfu = f"{pct(r['mfu_steady_bare'])}/{pct(r['mfu_steady_pipeline'])}"
        print(  # noqa: T201
            f"{r['setting']:9} {r['method']:6} {r['bare_tokens_per_s']:11.0f} {r['pipeline_tokens_per_s']:11.0f} "
            f"{r['ratio']:6.3f} {pct(r['mfu_bare']):>9} {pct(r['mfu_pipeline']):>9} "
            f"{num(r['steady_ratio'], '.3f'):>12} {steady_mfu:>15} "
            f"{joules(r['joules_per_1k_tokens'], r['energy']):>15} "
            f"{joules(r['bare_joules_per_1k_tokens'], r['bare_energy']):>15}"
        )


def qlora_check(work: Path, params: dict, args: argparse.Namespace) -> dict:
    """``train_sft`` with ``adapter.method: qlora`` for 5 steps: what its manifest, run and lineage recorded.

    Then, as for any version, ``evaluate_sft`` and ``register_sft`` on the dense merged model (``dvc repro
    register_sft``, or their commands with ``--no-dvc``): the evaluation's verdict and the registered version.
    """
    options = trl_options("sft", 5, params["train_sft"]["trl"]["output_dir"], args.device)
    trained = pipeline_side("sft", work, options, dvc=not args.no_dvc, qlora=True)
    section = yaml.safe_load((work / "params.yaml").read_text())
    if args.no_dvc:
        # The evaluation asks the reward model for a second opinion on refusals: a short train_rm, on gated data
        write_gated_data(work, "dpo")
        set_params(work, "rm", {"max_steps": 2, "bf16": args.device == "cuda"}, "none", "single", 1)
        run(stage_command(work, "train_rm"), work, "train_rm")
        write_gated_safety(work)
        for stage in ("evaluate_sft", "register_sft"):
            run(stage_command(work, stage), work, stage)
    else:
        run([sys.executable, "-m", "dvc", "repro", "--no-commit", "register_sft"], work, "dvc repro register_sft")
    model_dir = work / section["train_sft"]["trl"]["output_dir"]
    decision = json.loads((work / section["evaluate_sft"]["out_dir"] / "decision.json").read_text())
    registration = json.loads((work / section["register_sft"]["out_dir"] / "registration.json").read_text())
    merged = json.loads((model_dir / "config.json").read_text())
    return {
        **trained,
        "merged_dense": "quantization_config" not in merged,
        "merged_dtype": merged.get("dtype", merged.get("torch_dtype")),
        "adapter_kept": (model_dir / "adapter" / "adapter_config.json").is_file(),
        "eval_passed": decision.get("passed"),
        "registered": {**registration, "approval_status": approval_status(work, registration)},
    }


def approval_status(work: Path, registration: dict) -> str | None:
    """The registered version's approval status, as the scratch MLflow store's registry shows it."""
    import mlflow

    store = f"sqlite:///{work / 'mlflow.db'}"  # the registry too: an MLFLOW_REGISTRY_URI of the caller must not win
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)
    version = client.get_model_version(registration["name"], registration["version"])
    return version.tags.get("governance.approval_status")


def qlora_line(qlora: dict) -> str:
    return (
        f"qlora sft: trained {qlora['tokens']} tokens in {qlora['runtime']:.1f}s; "
        f"lineage quantization: {json.dumps(qlora['quantization'])}; energy: {json.dumps(qlora['energy'])}\n"
        f"qlora sft: merged model dense {qlora['merged_dense']} ({qlora['merged_dtype']}), adapter kept "
        f"{qlora['adapter_kept']}; evaluate_sft {'passed' if qlora['eval_passed'] else 'denied'}; "
        f"register_sft: {json.dumps(qlora['registered'])}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--methods", default="sft,dpo", help="comma-separated: sft, dpo")
    parser.add_argument("--model", default="qwen2-0.5b-shaped", help="qwen2-0.5b-shaped, builtin:tiny or a model dir")
    parser.add_argument("--profile", help="a GPU profile (configs/profiles/*.yaml): run it beside TRL's defaults")
    parser.add_argument("--no-dvc", action="store_true", help="the training stages' commands only: no DVC, no gates")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu: the smoke test (no MFU)")
    parser.add_argument("--skip-qlora", action="store_true")
    parser.add_argument(
        "--qlora-only", action="store_true", help="only the QLoRA check (train_sft with adapter.method: qlora)"
    )
    parser.add_argument(
        "--settings",
        default="defaults,profile",
        help="which settings and in which order (defaults, profile): the first ones measured are kept if time runs out",
    )
    configs = ["single", "multi_gpu", "fsdp2", "zero2", "zero3"]
    parser.add_argument("--accelerate-config", default="single", choices=configs)
    parser.add_argument("--num-processes", type=int, default=1, help="processes (GPUs) for the accelerate config")
    parser.add_argument(
        "--orders",
        default="bare-first",
        choices=sorted(ORDERS),
        help="which side trains first; both: each order once, and the geometric mean of the two ratios",
    )
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--dvc-set", metavar="PROFILE", help="print PROFILE as `dvc exp run -S` flags and exit")
    parser.add_argument("--build-model", metavar="DIR", help="build --model's shape into DIR (a local model) and exit")
    parser.add_argument("--sweep", action="store_true", help="measure each profile choice (SWEEP) by the bare script")
    parser.add_argument("--variants", metavar="REGEX", help="with --sweep: only the variants whose name matches")
    parser.add_argument("--write-profile", metavar="PATH", help="with --sweep: write the best variants as a profile")
    args = parser.parse_args(argv)
    if args.dvc_set:
        print(shlex.join(dvc_set_flags(load_profile(args.dvc_set))))  # noqa: T201
        return 0
    if args.build_model:
        if args.model not in SHAPES:
            parser.error(f"--build-model: --model must be one of {', '.join(SHAPES)}")
        build_model(Path(args.build_model), args.model)
        return 0
    methods = [m for m in args.methods.split(",") if m]
    if unknown := [m for m in methods if m not in FLOPS_PER_TOKEN]:
        parser.error(f"--methods: {', '.join(unknown)} (sft, dpo)")
    sharding = {"config": args.accelerate_config, "processes": args.num_processes}
    known = {"defaults": None, **({"profile": load_profile(args.profile)} if args.profile else {})}
    order = [name for name in args.settings.split(",") if name]
    if unknown := [name for name in order if name not in ("defaults", "profile")]:
        parser.error(f"--settings: {', '.join(unknown)} (defaults, profile)")
    settings = {name: known[name] for name in order if name in known}
    # The same CPU threads on both sides: a stage whose caller chose none takes the machine's share
    # (pipelines._env.machine_threads), and `accelerate launch` would give the bare script one
    sys.path.insert(0, str(REPO))
    from pipelines._env import machine_threads

    os.environ.setdefault("OMP_NUM_THREADS", str(machine_threads({"LOCAL_WORLD_SIZE": str(args.num_processes)})))
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_throughput: no CUDA device on this machine; run it where one is lent", file=sys.stderr)  # noqa: T201
        return 2
    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else None
    peak = peak_flops(gpu)
    with tempfile.TemporaryDirectory() as tmp:
        work = scratch_copy(Path(tmp) / "repo")
        params = yaml.safe_load((work / "params.yaml").read_text())
        if args.model in SHAPES:
            model_dir = Path(tmp) / args.model
            build_model(model_dir, args.model)
            params["base_model"]["name_or_path"] = str(model_dir)
        elif args.model != "builtin:tiny":
            model_dir = Path(args.model).resolve()
            params["base_model"]["name_or_path"] = str(model_dir)
        (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        if args.sweep:
            if args.model == "builtin:tiny":
                write_gated_corpus(work)
                run(stage_command(work, "base_model"), work, "base_model")
                model_dir = work / json.loads((work / "artifacts/base_model/manifest.json").read_text())["model_path"]
            print(  # noqa: T201
                f"sweep on {gpu or 'cpu'} ({f'dense bf16 peak {peak / 1e12:.0f} TFLOP/s' if peak else 'no MFU'}); "
                f"model {args.model}; {args.steps} steps, steady = from the first log at or after step "
                f"{warmup_steps(args.steps)}\n"
                f"{'':4} {'variant':28} {'tok/s':>10} {'steady':>10} {'MFU':>7} {'MFU st.':>9} {'peak GiB':>8}",
                flush=True,
            )
            chosen = {m: [v for v in SWEEP[m] if re.search(args.variants or "", v[0])] for m in methods}
            rows = sweep(methods, work, model_dir, args.steps, args.device, Path(tmp), peak, chosen)
            if args.json:
                write_results(Path(args.json), {"device": gpu or "cpu", "model": args.model, "sweep": rows})
            if args.write_profile:
                Path(args.write_profile).write_text(yaml.safe_dump(best_profile(rows, args.device), sort_keys=False))
            return 0 if all("error" not in r for r in rows if not r["variant"].startswith("defaults")) else 1
        # The base model stage (and, without DVC, the gated data) once, untimed
        if args.no_dvc:
            if args.model == "builtin:tiny":
                write_gated_corpus(work)
            run(stage_command(work, "base_model"), work, "base_model")
            for method in {*methods, *(["sft"] if "dpo" in methods else [])}:  # DPO starts from SFT's model
                write_gated_data(work, method)
        else:
            run([sys.executable, "-m", "dvc", "repro", "--no-commit", "base_model"], work, "dvc repro base_model")
        if args.model == "builtin:tiny":
            model_dir = work / json.loads((work / "artifacts/base_model/manifest.json").read_text())["model_path"]
        if args.qlora_only:  # on a CPU too, where bitsandbytes is importable (0.50 computes NF4 there)
            qlora = qlora_check(work, params, args)
            print(qlora_line(qlora), flush=True)  # noqa: T201
            if args.json:
                qlora = {k: v for k, v in qlora.items() if k != "log_points"}
                write_results(Path(args.json), {"device": gpu or "cpu", "qlora": qlora})
            return 0
        if "dpo" in methods and "sft" not in methods:  # train_dpo starts from train_sft's model: one step, untimed
            sft_out = params["train_sft"]["trl"]["output_dir"]
            pipeline_side("sft", work, trl_options("sft", 1, sft_out, args.device), dvc=not args.no_dvc, **sharding)
        rows, energy_methods, balanced = [], set(), []
        for setting, profile in settings.items():
            for method in methods:
                # The same records too: with --no-dvc the stage's gated train file (written above), else the raw file
                section = params[f"train_{method}"]
                raw = work / section["train_file"] if args.no_dvc else REPO / GATED[method][0]
                out = params[f"train_{method}"]["trl"]["output_dir"]
                # The stage's own TRL options on both sides: the same settings, only output_dir and report_to differ
                bare_out = Path(tmp) / f"bare_{method}"
                bare_options = stage_trl(method, trl_options(method, args.steps, str(bare_out), args.device, profile))
                # The same model too: the stage's parent (DPO starts from train_sft's output, not the base)
                parent = stage_parent(work, section)
                piped_options = trl_options(method, args.steps, out, args.device, profile)
                # Each side once per order asked. The second side of a pair ran ~1.45x the first's steady tokens/s on
                # an H200 whichever it was (DPO, 1.3B): one order alone measures the order; --orders both measures
                # each and reports the geometric mean of the two ratios, in which the order cancels
                sides = {
                    "bare": partial(bare_side, method, work, parent, raw, bare_options, bare_out, **sharding),
                    "stage": partial(pipeline_side, method, work, piped_options, dvc=not args.no_dvc, **sharding),
                }
                for order in ORDERS[args.orders]:
                    measured = {side: sides[side]() for side in order}
                    bare, piped = measured["bare"], measured["stage"]
                    rows.append(row(setting, method, bare, piped, peak, args.num_processes, warmup_steps(args.steps)))
                    rows[-1]["trl"] = {k: v for k, v in bare_options.items() if k not in ("output_dir", "report_to")}
                    # Paths as the checkout names them, not the scratch copy's temporary folder
                    rows[-1]["bare_data"] = in_checkout(raw, work)
                    rows[-1]["bare_model"] = in_checkout(parent, work)
                    rows[-1]["order"] = " then ".join(order)
                    computed = ("dtype", "attn_implementation", "reference_dtype", "omp_wait_policy")
                    rows[-1]["bare_computed"] = {k: bare.get(k) for k in computed}
                    energy_methods.add((piped.get("energy") or {}).get("method"))
                    print_table(rows[-1:])  # as each row is measured: a run stopped by a time limit keeps it
                    sys.stdout.flush()
                    if args.json:  # likewise: the rows so far, rewritten after each
                        so_far = {
                            "device": gpu or "cpu",
                            "omp_num_threads": os.environ["OMP_NUM_THREADS"],
                            "rows": rows,
                        }
                        write_results(Path(args.json), so_far)
                if len(ORDERS[args.orders]) == 2:
                    balanced.append(order_balanced(rows[-2:]))
                    print(balanced_line(balanced[-1]), flush=True)  # noqa: T201
        peak_text = f"dense bf16 peak {peak / 1e12:.0f} TFLOP/s" if peak else "no bf16 peak known: no MFU"
        print(  # noqa: T201
            f"device: {gpu or 'cpu'} x{args.num_processes} ({peak_text if gpu else 'no GPU: no MFU'}); "
            f"model: {args.model}, {rows[0]['parameters'] / 1e6:.1f}M parameters, {args.steps} steps; "
            f"accelerate {args.accelerate_config}; "
            f"{'training stages only (no DVC, no gates)' if args.no_dvc else 'dvc repro'}"
        )
        print_table(rows)
        print(f"energy (pipeline): {', '.join(sorted(str(m) for m in energy_methods))}; goal: ratio >= 0.98")  # noqa: T201
        threads = os.environ["OMP_NUM_THREADS"]
        result: dict[str, Any] = {"device": gpu or "cpu", "omp_num_threads": threads, "rows": rows}
        if balanced:
            result["order_balanced"] = balanced
        # On a CPU where bitsandbytes is importable (0.50 computes NF4 there) too: the smoke test runs the chain
        if not args.skip_qlora and (args.device == "cuda" or importlib.util.find_spec("bitsandbytes") is not None):
            qlora = qlora_check(work, params, args)
            print(qlora_line(qlora))  # noqa: T201
            result["qlora"] = {k: v for k, v in qlora.items() if k != "log_points"}
        if args.json:
            write_results(Path(args.json), result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
