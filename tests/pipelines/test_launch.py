"""Training through `accelerate launch`: dvc.yaml commands, shipped configs, rank mechanics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from governance.errors import ConfigError
from governance.lineage import sha256_file
from pipelines._training import LaunchParams, Topology, run_topology, staged_output, trl_config

REPO = Path(__file__).resolve().parents[2]
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
TRAIN_STAGES = sorted(name for name in DVC if name.startswith("train_"))
CONFIGS = sorted((REPO / "configs/accelerate").glob("*.yaml"))


@pytest.mark.parametrize("stage", TRAIN_STAGES)
def test_every_train_stage_runs_through_accelerate_launch_with_its_params(stage):
    words = DVC[stage]["cmd"].split()
    # `accelerate launch` (pipelines._launch: accelerate's own launcher for anything but one local process)
    assert words[:4] == ["python", "-m", "pipelines._launch", "--quiet"]
    assert words[words.index("--config_file") + 1] == f"${{{stage}.launch.config_file}}"
    assert words[words.index("--num_processes") + 1] == f"${{{stage}.launch.num_processes}}"
    assert words[-2:] == ["-m", f"pipelines.{stage}"]
    # A different accelerate config is a different run: DVC re-runs the stage
    assert f"${{{stage}.launch.config_file}}" in DVC[stage]["deps"]
    launch = LaunchParams.model_validate(PARAMS[stage]["launch"])
    assert (REPO / launch.config_file).is_file()


_DUMP_ENV = "import json, os, sys; json.dump({'env': dict(os.environ), 'argv': sys.argv}, open(sys.argv[1], 'w'))"


@pytest.mark.parametrize("threads", [None, "3"])
def test_one_process_starts_the_stage_as_accelerates_own_launcher_does(tmp_path, threads):
    """Same command line and environment as `python -m accelerate.commands.launch` gives the stage."""
    import os
    import subprocess
    import sys

    (tmp_path / "dump_env.py").write_text(_DUMP_ENV)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS" and not k.startswith("ACCELERATE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(tmp_path)])
    if threads:
        env["OMP_NUM_THREADS"] = threads
    seen = {}
    for launcher in ("accelerate.commands.launch", "pipelines._launch"):
        out = tmp_path / "seen.json"
        args = ["--quiet", "--config_file", str(REPO / "configs/accelerate/single.yaml"), "--num_processes", "1"]
        cmd = [sys.executable, "-m", launcher, *args, "-m", "dump_env", str(out)]
        subprocess.run(cmd, env=env, cwd=tmp_path, check=True)
        seen[launcher] = json.loads(out.read_text())
    # ... and the hash of the config bytes it launched with, which the stage records (L2)
    launched = seen["pipelines._launch"]["env"].pop("GOVERNED_ACCELERATE_CONFIG_SHA256")
    assert launched == sha256_file(REPO / "configs/accelerate/single.yaml")
    assert seen["pipelines._launch"] == seen["accelerate.commands.launch"]
    assert seen["pipelines._launch"]["env"]["OMP_NUM_THREADS"] == (threads or "1")


@pytest.mark.parametrize(
    "argv",
    [
        ["--quiet", "--config_file", "configs/accelerate/multi_cpu.yaml", "--num_processes", "2", "-m", "m"],
        ["--quiet", "--config_file", "configs/accelerate/zero2.yaml", "--num_processes", "1", "-m", "m"],
        ["--quiet", "--config_file", "configs/accelerate/single.yaml", "--num_processes", "2", "-m", "m"],
        ["--config_file", "configs/accelerate/single.yaml", "--num_processes", "1", "-m", "m"],
        ["--quiet", "--config_file", "configs/accelerate/single.yaml", "--num_processes", "1", "--cpu", "-m", "m"],
        ["--quiet", "--config_file", "configs/accelerate/nope.yaml", "--num_processes", "1", "-m", "m"],
    ],
)
def test_anything_but_one_local_process_goes_to_accelerates_launcher(argv, monkeypatch):
    from pipelines._launch import simple_launch

    monkeypatch.chdir(REPO)
    assert simple_launch(argv, {}) is None
    single = ["--quiet", "--config_file", "configs/accelerate/single.yaml", "--num_processes", "1", "-m", "m", "x"]
    assert simple_launch(single, {})[0][-3:] == ["-m", "m", "x"]


def test_shipped_configs_cover_each_engine_and_leave_the_process_count_to_params():
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {}
    for path in CONFIGS:
        config = load_config_from_file(str(path))
        assert config.num_processes == -1, f"{path.name}: num_processes must come from params (-1)"
        zero = (config.deepspeed_config or {}).get("zero_stage")
        kinds[path.stem] = f"{config.distributed_type.value}{zero or ''}"
    assert kinds == {
        "single": "NO",
        "multi_cpu": "MULTI_GPU",  # accelerate's torchrun path; the stage joins the workers over gloo
        "multi_gpu": "MULTI_GPU",
        "fsdp2": "FSDP",
        "zero2": "DEEPSPEED2",
        "zero3": "DEEPSPEED3",
    }


def _sft_config(tmp_path):
    from trl import SFTConfig

    return trl_config(SFTConfig, {"output_dir": str(tmp_path / "out"), "report_to": []}, "train_sft")


def test_one_process_topology_is_recorded_with_the_config_hash(tmp_path):
    single = REPO / "configs/accelerate/single.yaml"
    launch = LaunchParams(num_processes=1, config_file=str(single))
    topology = run_topology(_sft_config(tmp_path), launch, _adapter(), "train_sft")
    assert (topology.world_size, topology.rank, topology.is_main) == (1, 0, True)
    assert topology.distributed_type == "NO"
    assert topology.config_sha256 == sha256_file(single)


def test_a_run_with_another_process_count_than_params_is_refused(tmp_path):
    launch = LaunchParams(num_processes=2, config_file=str(REPO / "configs/accelerate/multi_cpu.yaml"))
    with pytest.raises(ConfigError) as caught:
        run_topology(_sft_config(tmp_path), launch, _adapter(), "train_sft")
    assert str(caught.value) == (
        "params.yaml: train_sft.launch.num_processes is 2 but this run has 1 process(es): "
        "run it with `dvc repro train_sft` (accelerate launch) or set num_processes to match"
    )


def test_a_missing_accelerate_config_is_a_config_error(tmp_path):
    launch = LaunchParams(num_processes=1, config_file="configs/accelerate/nope.yaml")
    with pytest.raises(ConfigError, match=r"train_sft\.launch\.config_file: configs/accelerate/nope\.yaml not found"):
        run_topology(_sft_config(tmp_path), launch, _adapter(), "train_sft")


def _adapter():
    from pipelines._training import AdapterParams

    return AdapterParams(method="none")


def _topology(rank: int) -> Topology:
    return Topology(
        world_size=2,
        rank=rank,
        local_world_size=2,
        distributed_type="MULTI_CPU",
        backend="gloo",
        config_file="configs/accelerate/multi_cpu.yaml",
        config_sha256="0" * 64,
    )


def test_staged_output_appears_whole_and_only_on_success(tmp_path):
    out = tmp_path / "artifacts/train_sft"
    out.mkdir(parents=True)
    (out / "stale.bin").write_text("from an earlier run")
    with staged_output(out, _topology(0)) as staging:
        assert (out / "stale.bin").exists()  # the committed output stays until the new one is whole
        staging.mkdir()
        (staging / "model.safetensors").write_text("weights")
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors"]
    assert not staging.exists()


def test_a_failed_run_leaves_nothing_dvc_would_cache(tmp_path):
    out = tmp_path / "artifacts/train_sft"
    with pytest.raises(RuntimeError, match="rank died"), staged_output(out, _topology(0)) as staging:
        staging.mkdir(parents=True)
        (staging / "model.safetensors").write_text("half written")
        out.mkdir()  # what a trainer creating output_dir leaves
        raise RuntimeError("rank died")
    assert not out.exists() and not staging.exists()


def test_a_failed_run_keeps_the_committed_output(tmp_path):
    out = tmp_path / "artifacts/train_sft"
    out.mkdir(parents=True)
    (out / "model.safetensors").write_text("committed")
    with pytest.raises(RuntimeError), staged_output(out, _topology(0)) as staging:
        staging.mkdir()
        raise RuntimeError("rank died")
    assert (out / "model.safetensors").read_text() == "committed" and not staging.exists()


def test_only_the_main_process_touches_outputs(tmp_path):
    out = tmp_path / "artifacts/train_sft"
    out.mkdir(parents=True)
    with staged_output(out, _topology(1)) as staging:
        pass
    assert out.is_dir() and not staging.exists()


def test_the_launchers_stop_fails_a_running_process_once_and_spares_its_clean_up():
    from pipelines._training import DistributedError, stop_on_sigterm

    handler = stop_on_sigterm("another training process of 2 failed")
    with pytest.raises(DistributedError, match="another training process of 2 failed"):
        handler(15, None)
    cleaned_up = False
    try:
        raise RuntimeError("gloo: connection closed by peer")
    except RuntimeError:
        handler(15, None)  # arrives while the run is being closed FAILED: must not abort that
        cleaned_up = True
    assert cleaned_up


def test_the_main_process_run_ends_finished_or_failed_and_other_ranks_start_none(tmp_path, monkeypatch):
    """Through main_process_run as a stage uses it: a crash inside the block ends the MLflow run FAILED."""
    from mlflow import MlflowClient

    from pipelines._training import main_process_run

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("project: launch-test\n")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with main_process_run(_topology(1), "train_sft", {}) as run:
        assert run is None  # rank 1 never starts a run
    with pytest.raises(RuntimeError, match="trainer crashed"):
        with main_process_run(_topology(0), "train_sft", {"method": "sft"}) as run:
            run.log(metrics={"loss": 1.0}, step=1)
            raise RuntimeError("trainer crashed")
    with main_process_run(_topology(0), "train_sft", {"method": "sft"}) as finished:
        finished.log(metrics={"loss": 0.5}, step=1)
    client = MlflowClient(tracking_uri=uri)
    crashed, done = client.get_run(run.run_id), client.get_run(finished.run_id)
    assert (crashed.info.status, crashed.data.metrics["loss"]) == ("FAILED", 1.0)
    assert (done.info.status, done.data.tags["distributed.world_size"], done.data.tags["stage"]) == (
        "FINISHED",
        "2",
        "train_sft",
    )


@pytest.mark.parametrize("config", ["configs/accelerate/zero2.yaml", "configs/accelerate/zero3.yaml"])
def test_a_deepspeed_config_without_deepspeed_is_one_line_naming_the_file(config, tmp_path):
    """A shipped ZeRO config on a machine without deepspeed: one line and exit 1, not accelerate's traceback."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("deepspeed") is not None:
        pytest.skip("deepspeed is installed here")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines._launch",
            "--quiet",
            "--config_file",
            config,
            "--num_processes",
            "2",
            "-m",
            "pipelines.train_sft",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"train_sft: ConfigError: {config}: distributed_type DEEPSPEED needs the deepspeed package, which is not "
        "installed: pip install deepspeed on the GPU machine (docs/how-to/scaling-out.md), or choose another "
        "launch.config_file in params.yaml"
    ]


def test_an_unset_bf16_follows_the_launchs_mixed_precision_on_cpu(tmp_path, monkeypatch):
    # A DeepSpeed launch (zero2/zero3.yaml: mixed_precision bf16) refuses a TRL config whose bf16 disagrees; without
    # a launcher's word the CPU default stays fp32, as before
    from trl import SFTConfig

    options = {"output_dir": str(tmp_path / "out"), "report_to": [], "use_cpu": True}
    assert trl_config(SFTConfig, dict(options), "train_sft").bf16 is False
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    assert trl_config(SFTConfig, dict(options), "train_sft").bf16 is False
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    assert trl_config(SFTConfig, dict(options), "train_sft").bf16 is True
    assert trl_config(SFTConfig, {**options, "bf16": False}, "train_sft").bf16 is False  # params still decide


def test_a_deepspeed_launch_is_recorded_as_deepspeed_where_accelerate_says_multi_cpu(tmp_path):
    # On a machine without CUDA, accelerate's state reads MULTI_CPU under a DeepSpeed launch, while the trainer
    # trains through DeepSpeed (TRL's config carries its plugin): the topology follows the trainer
    config = _sft_config(tmp_path)
    config.deepspeed_plugin = object()  # what TrainingArguments sets from ACCELERATE_USE_DEEPSPEED
    launch = LaunchParams(num_processes=1, config_file=str(REPO / "configs/accelerate/zero3.yaml"))
    topology = run_topology(config, launch, _adapter(), "train_sft")
    assert topology.distributed_type == "DEEPSPEED" and topology.sharded


def test_attack_a_config_swapped_while_the_launcher_reads_it_is_refused_by_the_stage(tmp_path, monkeypatch):
    """L2: the launcher read the accelerate config (mixed precision, FSDP/DeepSpeed settings: what runs) and the
    stage hashed the file by another read: swapped for the launch and back, the lineage named the config that did
    not run. The launcher now reads it once, runs from a private copy and hands the stage that hash; the stage
    records it and refuses when the configured file no longer has it."""
    import hashlib

    from governance.errors import PolicyViolation
    from pipelines._launch import CONFIG_SHA256_ENV, config_read_once
    from pipelines._training.launch import launched_config_sha256

    config = tmp_path / "single.yaml"
    reviewed = (REPO / "configs/accelerate/single.yaml").read_bytes()
    swapped = reviewed.replace(b"mixed_precision: 'no'", b"mixed_precision: bf16").replace(
        b"mixed_precision: no", b"mixed_precision: bf16"
    )
    config.write_bytes(swapped)
    argv = ["--quiet", "--config_file", str(config), "--num_processes", "1", "-m", "pipelines.train_sft"]
    with config_read_once(argv) as (launched, digest):
        config.write_bytes(reviewed)  # swapped back once the launcher read it
        copy = Path(launched[2])
        assert copy != config and copy.read_bytes() == swapped and digest == hashlib.sha256(swapped).hexdigest()
        assert launched[:2] + launched[3:] == argv[:2] + argv[3:]
        monkeypatch.setenv(CONFIG_SHA256_ENV, digest)
        with pytest.raises(PolicyViolation) as refused:
            launched_config_sha256(config, "train_sft")
    assert not copy.exists()  # the private copy is gone with the run
    now = hashlib.sha256(reviewed).hexdigest()
    assert str(refused.value) == (
        f"params.yaml: train_sft.launch.config_file: {config} has sha256 {now[:12]}… now, but the launch ran with a "
        f"config of sha256 {digest[:12]}…: it changed while the stage was launched, so the run's config is not the "
        "file the lineage would name; nothing trained: re-run the stage"
    )
    monkeypatch.setenv(CONFIG_SHA256_ENV, now)
    assert launched_config_sha256(config, "train_sft") == now
    monkeypatch.delenv(CONFIG_SHA256_ENV)
    assert launched_config_sha256(config, "train_sft") == now  # a stage started without the launcher hashes the file
