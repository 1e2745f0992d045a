"""benchmarks/gpu_throughput.py end to end on CPU, the tiny built-in model, a few steps: so it cannot rot again.

The benchmark is a GPU job (issue 42: its first GPU run stopped on a field the
manifest no longer held). Here it runs ``--device cpu --no-dvc``: the training
stages' own commands with no DVC and no gate packages, SFT and DPO, each beside
the bare TRL script, and reads every figure from where the stages record it
now (manifest, MLflow run, lineage.json). MFU and joules are n/a on CPU: no
bf16 peak, no NVML. The GPU profile and the issue's MFU arithmetic are checked
here too, without a GPU.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "configs/profiles/gpu-h100.yaml"
QLORA_SITE = REPO / ".venv" / "qlora-cpu"  # make test installs bitsandbytes here, beside the venv


def _benchmark():
    spec = importlib.util.spec_from_file_location("gpu_throughput", REPO / "benchmarks/gpu_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # ~80 CPU s: the base model, SFT and DPO on each side (+ ~55 s with -m qlora_chain)
@pytest.mark.qlora_chain
def test_the_benchmark_runs_the_training_stages_without_dvc_and_prints_every_figure(tmp_path, request):
    out = tmp_path / "gpu_throughput.json"
    command = [sys.executable, "benchmarks/gpu_throughput.py", "--device", "cpu", "--model", "builtin:tiny"]
    command += ["--no-dvc", "--steps", "2", "--json", str(out)]
    # bitsandbytes beside the venv, as the QLoRA tests put it (0.50 computes NF4 on a CPU): the benchmark's QLoRA
    # chain runs too when asked (-m qlora_chain); the QLoRA path itself (4-bit training, the dense merge evaluated and
    # registered) runs by default in tests/pipelines/test_preference_methods.py
    wanted = "qlora_chain" in (request.config.getoption("-m") or "")
    qlora_site = wanted and (QLORA_SITE / "bitsandbytes").is_dir()
    paths = [str(QLORA_SITE)] if qlora_site else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [*paths, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [*command, *([] if qlora_site else ["--skip-qlora"])],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [(r["setting"], r["method"]) for r in rows] == [("defaults", "sft"), ("defaults", "dpo")]
    for r in rows:
        # Tokens from the manifest, seconds from the run's train_runtime: both sides measured, a ratio between
        assert r["tokens"] > 0 and r["parameters"] > 0
        assert r["bare_tokens"] == r["tokens"]  # the same records, options and seeds: the same tokens on both sides
        # The same CPU threads: accelerate launch would give the bare script one, the stage takes the machine's
        assert r["bare_threads"] == int(result["omp_num_threads"])
        assert r["bare_tokens_per_s"] > 0 and r["pipeline_tokens_per_s"] > 0 and r["ratio"] > 0
        # No GPU: no peak to divide by, no NVML to read; said, not guessed
        assert r["mfu_bare"] is None and r["mfu_pipeline"] is None
        assert (r["energy"], r["joules_per_1k_tokens"]) == ("n/a", None)
        # steady rates are read the same way from both sides' logs (None when too few logs follow the warm-up)
        assert {"bare_steady_tokens_per_s", "pipeline_steady_tokens_per_s", "steady_ratio"} <= r.keys()
    # Both sides train with the stage's own TRL options (the shipped section under the benchmark's): the same
    # settings, so the ratio is the pipeline's cost and not a difference of loss, scheduler or data order
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    for r in rows:
        section = shipped[f"train_{r['method']}"]["trl"]
        set_by_benchmark = _benchmark().trl_options(r["method"], 2, "bare", "cpu")
        kept = {k: v for k, v in section.items() if k not in set_by_benchmark}
        assert kept and {k: r["trl"][k] for k in kept} == kept
        assert r["trl"]["max_steps"] == 2 and r["trl"]["per_device_train_batch_size"] == 8
        # and the same records: the bare script reads the stage's gated train file
        assert r["bare_data"] == shipped[f"train_{r['method']}"]["train_file"]
        # and the same model: the stage's parent, so DPO's bare side starts from train_sft's output as the stage does
        assert r["bare_computed"]["dtype"] == "torch.float32"  # no GPU: the stages load fp32, and so does the script
    assert rows[1]["bare_model"] == shipped["train_dpo"]["base_model"]
    assert rows[1]["bare_computed"]["reference_dtype"] == "torch.float32"  # TRL's frozen copy, as the policy
    assert rows[0]["bare_model"] == shipped["train_sft"]["base_model"]
    assert {r["order"] for r in rows} == {"bare then stage"}  # the default; --stage-first swaps it
    assert rows[1]["trl"]["loss_type"] == shipped["train_dpo"]["trl"]["loss_type"] == ["sigmoid", "sft"]
    assert "device: cpu x1 (no GPU: no MFU)" in done.stdout
    assert "training stages only (no DVC, no gates)" in done.stdout
    assert "energy (pipeline): estimate: power limit x time" in done.stdout  # the lineage's energy, labelled
    if not qlora_site:
        why = f"{QLORA_SITE}: no bitsandbytes (make test installs it there)" if wanted else "opt-in: -m qlora_chain"
        pytest.skip(f"{why}: the benchmark's QLoRA chain was not run")
    # QLoRA: trained on a 4-bit base (the lineage says so), merged dense, then evaluated and registered as any version
    qlora = result["qlora"]
    assert qlora["quantization"]["bnb_4bit_quant_type"] == "nf4" and qlora["tokens"] > 0
    assert qlora["merged_dense"] is True and qlora["adapter_kept"] is True
    assert isinstance(qlora["eval_passed"], bool)  # the tiny model after 5 steps: a verdict either way, recorded
    assert qlora["registered"]["version"] == "1" and qlora["registered"]["created"] is True
    assert qlora["registered"]["approval_status"] in {"pending", "blocked"}  # registration never approves
    assert "qlora sft: merged model dense True" in done.stdout and "register_sft:" in done.stdout


def test_mfu_is_the_issues_arithmetic():
    bench = _benchmark()
    # issue 42: 7.2k tokens/s of a 0.37B model on one H100 SXM = 1.6% MFU (6 x N x tokens/s over 989 TFLOP/s)
    peak = bench.peak_flops("NVIDIA H100 80GB HBM3")
    assert peak == 989e12
    assert bench.mfu("sft", 370_000_000, 7200, peak, 1) == pytest.approx(0.0162, abs=5e-4)
    assert bench.mfu("dpo", 370_000_000, 7200, peak, 1) == pytest.approx(0.0162 * 8 / 6, abs=5e-4)
    assert bench.peak_flops("NVIDIA H100 PCIe") == 756e12 and bench.peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert bench.peak_flops("Some Future GPU") is None and bench.mfu("sft", 1, 1.0, None, 1) is None


def test_the_profile_names_only_trl_options_that_build_and_the_docs_apply_it_in_one_command():
    from trl import DPOConfig, SFTConfig

    from pipelines._training import trl_config

    profile = yaml.safe_load(PROFILE.read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, config_class in (("train_sft", SFTConfig), ("train_dpo", DPOConfig)):
        options = {**params[section]["trl"], **profile[section]["trl"]}
        # This machine has no GPU: TRL refuses bf16 and transformers Liger without one; everything else builds
        config = trl_config(config_class, {**options, "bf16": False, "use_liger_kernel": False}, section)
        for key, value in profile[section]["trl"].items():
            if key not in ("bf16", "use_liger_kernel"):
                assert getattr(config, key) == value, (section, key)
    flags = shlex.split(
        subprocess.run(
            [sys.executable, "benchmarks/gpu_throughput.py", "--dvc-set", str(PROFILE)],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert flags[:4] == ["-S", "++train_sft.trl.bf16=true", "-S", "++train_sft.trl.per_device_train_batch_size=8"]
    # a nested option (TRL's model_init_kwargs, which the stages apply when they load the model) as one dotted key
    assert "++train_sft.trl.model_init_kwargs.attn_implementation=flex_attention" in flags
    command = "dvc exp run -n gpu-h100 $(python benchmarks/gpu_throughput.py --dvc-set configs/profiles/gpu-h100.yaml)"
    assert command in (REPO / "docs/how-to/gpu.md").read_text()


def test_the_gpu_extra_is_pinned_in_the_gpu_lock_and_torch_there_is_never_a_cpu_build():
    import tomllib

    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["gpu"]
    lock = [line for line in (REPO / "requirements-gpu.lock").read_text().splitlines() if line and line[0] != "#"]
    assert sorted(extra) == sorted(line for line in lock if line.split("==")[0] in {e.split("==")[0] for e in extra})
    assert "torch===2.13.0" in lock  # exact string: 2.13.0+cpu never satisfies it
    torch_line = next(line for line in (REPO / "requirements.lock").read_text().splitlines() if line[:7] == "torch==")
    assert torch_line.removeprefix("torch==").split("+")[0] == "2.13.0"  # the same torch, CPU and CUDA builds


def test_the_steady_rate_leaves_the_warm_up_out_and_says_when_it_cannot_tell():
    bench = _benchmark()
    # (step, seconds, tokens): 10 s of compilation before step 5, then 1,000 tokens a second
    points = [(5, 10.0, 500), (10, 15.0, 5500), (15, 20.0, 10500), (20, 25.0, 15500)]
    assert bench.steady_rate(points, bench.warmup_steps(20)) == pytest.approx(1000.0)
    assert bench.steady_rate(points[:1], 5) is None  # one log after the warm-up: no rate, not a guess
    assert bench.warmup_steps(30) == 7 and bench.warmup_steps(2) == 1


def test_the_sweep_chooses_the_fastest_correct_variant_and_never_wrapped_packing_or_a_failure():
    bench = _benchmark()
    rows = [
        {"method": "sft", "variant": "defaults (batch 8)", "options": {},
         "tokens_per_s": 1.0, "steady_tokens_per_s": 2.0},
        {"method": "sft", "variant": "bfd 2048 x 8 + liger + flex", "options": {"packing": True},
         "tokens_per_s": 0.5, "steady_tokens_per_s": 9.0},
        {"method": "sft", "variant": "wrapped 2048 x 8 + liger", "options": {"packing_strategy": "wrapped"},
         "tokens_per_s": 20.0, "steady_tokens_per_s": 20.0},
        {"method": "dpo", "variant": "batch 32 + liger", "options": {"use_liger_kernel": True}, "error": "ImportError"},
        {"method": "dpo", "variant": "defaults (batch 8)", "options": {},
         "tokens_per_s": 1.0, "steady_tokens_per_s": None},
    ]  # fmt: skip
    profile = bench.best_profile(rows, "cuda")
    assert profile == {"train_sft": {"trl": {"bf16": True, "packing": True}}, "train_dpo": {"trl": {"bf16": True}}}


def test_a_profile_measured_first_leaves_nothing_behind_for_the_defaults(tmp_path):
    # On the H200 the profile ran before the defaults (--settings profile,defaults): the stage's "defaults" row
    # then still packed with flex attention, since each side's options were layered over the last side's params
    bench = _benchmark()
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    profile = yaml.safe_load(PROFILE.read_text())
    bench.set_params(
        tmp_path, "sft", bench.trl_options("sft", 5, "artifacts/train_sft", "cuda", profile), "none", "single", 1
    )
    assert yaml.safe_load((tmp_path / "params.yaml").read_text())["train_sft"]["trl"]["packing"] is True
    bench.set_params(tmp_path, "sft", bench.trl_options("sft", 5, "artifacts/train_sft", "cuda"), "none", "single", 1)
    trl = yaml.safe_load((tmp_path / "params.yaml").read_text())["train_sft"]["trl"]
    assert not {"packing", "model_init_kwargs", "use_liger_kernel", "pad_to_multiple_of"} & trl.keys()
    assert trl["per_device_train_batch_size"] == 8 and trl["max_length"] == 512  # TRL's defaults as the issue measured


def test_both_orders_cancel_a_speed_up_of_whichever_side_trains_second():
    # The H200's DPO rows (2026-11-27): stage first 0.698, bare first 1.465 steady; the second side of each pair
    # ran ~1.45x the first, so each single order measured the order, and their geometric mean the pipeline
    bench = _benchmark()
    pair = [
        {"setting": "profile", "method": "dpo", "order": "stage then bare", "ratio": 0.483, "steady_ratio": 0.698},
        {"setting": "profile", "method": "dpo", "order": "bare then stage", "ratio": 1.854, "steady_ratio": 1.465},
    ]
    balanced = bench.order_balanced(pair)
    assert balanced["steady_ratio"] == pytest.approx((0.698 * 1.465) ** 0.5) and 1.0 < balanced["steady_ratio"] < 1.02
    assert balanced["orders"] == ["stage then bare", "bare then stage"]
    assert bench.order_balanced([{**pair[0], "steady_ratio": None}, pair[1]])["steady_ratio"] is None  # not guessed
    assert "1.011 steady" in bench.balanced_line(balanced)
    assert bench.ORDERS["both"] == (("bare", "stage"), ("stage", "bare"))


def test_the_results_file_keeps_six_significant_digits_so_no_figure_reads_as_a_card_number(tmp_path):
    # The H200's steady ratio 1.4590877919706027 was written whole: its digits pass a card number's Luhn check,
    # and the PII scan of tracked outputs reported it as one
    bench = _benchmark()
    path = tmp_path / "results.json"
    bench.write_results(path, {"rows": [{"steady_ratio": 1.4590877919706027, "tokens": 156974, "trl": {"lr": 1e-05}}]})
    row = json.loads(path.read_text())["rows"][0]
    assert row == {"steady_ratio": 1.45909, "tokens": 156974, "trl": {"lr": 1e-05}}  # ints and small floats kept
