"""Training through `accelerate launch` with two CPU processes (gloo), end to end through `dvc repro`.

Opt-in (minutes on 2 cores): ``pytest -m scale tests/e2e/test_scale_out.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from e2e_support import fresh_copy, pipeline_env, run

pytestmark = pytest.mark.scale


@pytest.fixture(scope="module", autouse=True)  # module scope: skip before the module-scoped set-up runs
def _opt_in(request):
    if "scale" not in (request.config.getoption("-m") or ""):
        pytest.skip("opt-in: pytest -m scale (two-process training through dvc repro)")


def _two_processes(workdir: Path, config: str = "multi_cpu.yaml") -> None:
    params = (workdir / "params.yaml").read_text()
    section = params.index("\ntrain_sft:")
    head, tail = params[:section], params[section:]
    tail = tail.replace("num_processes: 1", "num_processes: 2", 1)
    tail = tail.replace("configs/accelerate/single.yaml", f"configs/accelerate/{config}", 1)
    (workdir / "params.yaml").write_text(head + tail)


def _two_process_chain(tmp_path_factory, config: str) -> Path:
    workdir = fresh_copy(tmp_path_factory.mktemp("scale") / "repo")
    _two_processes(workdir, config)
    result = run(["dvc", "repro", "register_sft"], workdir)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return workdir


@pytest.fixture(scope="module")
def two_process_chain(tmp_path_factory):
    return _two_process_chain(tmp_path_factory, "multi_cpu.yaml")


def _client(workdir: Path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _train_runs(workdir: Path):
    client = _client(workdir)
    experiment = client.get_experiment_by_name("govllm")
    return client.search_runs([experiment.experiment_id], filter_string="tags.stage = 'train_sft'")


def test_two_processes_make_one_run_one_model_one_version(two_process_chain):
    workdir = two_process_chain
    runs = _train_runs(workdir)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["lineage.distributed.world_size"] == "2"
    assert runs[0].data.tags["lineage.distributed.distributed_type"] == "MULTI_CPU"
    manifests = list((workdir / "artifacts").glob("train_sft*/manifest.json"))
    assert [m.parent.name for m in manifests] == ["train_sft"]  # no staging folder, no second copy
    manifest = json.loads(manifests[0].read_text())
    assert manifest["distributed"]["world_size"] == 2 and manifest["distributed"]["backend"] == "gloo"
    registration = json.loads((workdir / "artifacts/register_sft/registration.json").read_text())
    client = _client(workdir)
    versions = client.search_model_versions(f"name = '{registration['name']}'")
    assert len(versions) == 1
    lineage = client.download_artifacts(versions[0].run_id, "lineage.json", str(workdir / "dl"))
    distributed = json.loads(Path(lineage).read_text())["distributed"]
    config_file = workdir / "configs/accelerate/multi_cpu.yaml"
    from governance.lineage import sha256_file

    assert distributed["world_size"] == 2 and distributed["config_sha256"] == sha256_file(config_file)


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _rank_process(root: int, rank: int) -> tuple[int | None, float]:
    """The descendant of ``root`` started as ``rank`` by the launcher, and its CPU seconds."""
    for name in filter(str.isdigit, os.listdir("/proc")):
        pid = int(name)
        ancestor = pid
        while ancestor > 1 and ancestor != root:
            ancestor = _parent(ancestor)
        if ancestor != root:
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ and b"pipelines.train_sft" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid, (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return None, 0.0


def test_killing_one_rank_fails_the_stage_cleanly(two_process_chain):
    workdir = two_process_chain
    lock_before = yaml.safe_load((workdir / "dvc.lock").read_text())["stages"]["train_sft"]
    model_before = (workdir / "artifacts/train_sft/model.safetensors").read_bytes()
    proc = subprocess.Popen(
        ["dvc", "repro", "--single-item", "--force", "train_sft"],
        cwd=workdir,
        env=pipeline_env(workdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = False
    deadline = time.monotonic() + 600
    while not killed and proc.poll() is None and time.monotonic() < deadline:
        pid, cpu_seconds = _rank_process(proc.pid, rank=1)
        if pid is not None and cpu_seconds > 10:  # past imports: loading data or training
            os.kill(pid, signal.SIGKILL)
            killed = True
        time.sleep(0.5)
    _, stderr = proc.communicate(timeout=600)
    assert killed, "rank 1 was never seen running"
    assert proc.returncode != 0
    stage_lines = [line for line in stderr.splitlines() if line.startswith("train_sft: ")]
    assert stage_lines == [
        "train_sft: DistributedError: another training process of 2 failed and the launcher stopped this one; "
        "nothing was written"
    ]
    # Nothing new for DVC to cache: the committed model and its lock entry still agree
    assert not (workdir / "artifacts/train_sft.partial").exists()
    assert (workdir / "artifacts/train_sft/model.safetensors").read_bytes() == model_before
    assert yaml.safe_load((workdir / "dvc.lock").read_text())["stages"]["train_sft"] == lock_before
    statuses = sorted(r.info.status for r in _train_runs(workdir))
    assert statuses == ["FAILED", "FINISHED"]


def _one_run_one_version(workdir: Path, config: str) -> str:
    """Asserts one finished two-process training run and one registered version whose lineage names ``config`` by
    its hash and a gloo group; returns the distributed type the run recorded."""
    runs = _train_runs(workdir)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["lineage.distributed.world_size"] == "2"
    registration = json.loads((workdir / "artifacts/register_sft/registration.json").read_text())
    client = _client(workdir)
    versions = client.search_model_versions(f"name = '{registration['name']}'")
    assert len(versions) == 1
    lineage = client.download_artifacts(versions[0].run_id, "lineage.json", str(workdir / "dl"))
    distributed = json.loads(Path(lineage).read_text())["distributed"]
    from governance.lineage import sha256_file

    assert distributed["config_sha256"] == sha256_file(workdir / f"configs/accelerate/{config}")
    assert distributed["backend"] == "gloo"
    return runs[0].data.tags["lineage.distributed.distributed_type"]


def test_the_shipped_fsdp2_config_starts_two_cpu_processes_and_registers_once(tmp_path_factory):
    """configs/accelerate/fsdp2.yaml as a user sets it, on a machine without CUDA (issue 42).

    What this verifies, and what it cannot: accelerate's launcher takes the FSDP config, starts two
    ranks through torchrun, the ranks join one gloo group and train, rank 0 writes one model and one
    run, and one version is registered, the lineage naming the FSDP config by its hash. On CPU the
    stage sets TRL's ``use_cpu`` and accelerate then runs its MULTI_CPU (DDP) path: parameters are not
    sharded, and the lineage says so (``distributed_type`` MULTI_CPU, not FSDP). Sharding itself needs
    GPUs (docs/how-to/gpu.md, "What was verified").
    """
    workdir = _two_process_chain(tmp_path_factory, "fsdp2.yaml")
    assert _one_run_one_version(workdir, "fsdp2.yaml") == "MULTI_CPU"


@pytest.mark.parametrize("config", ["zero2.yaml", "zero3.yaml"])
def test_the_shipped_deepspeed_configs_start_two_cpu_processes_and_register_once(tmp_path_factory, config):
    """configs/accelerate/zero2.yaml and zero3.yaml as shipped, two CPU processes (issue 42).

    Needs ``pip install deepspeed`` (not in the lock: a GPU install's choice); DeepSpeed picks its CPU
    accelerator and a gloo group on a machine without CUDA. What is verified: accelerate's launcher takes
    the DeepSpeed config, two ranks join one gloo group and train, one model, one run, one version, the
    lineage naming the config by its hash and the distributed type that actually ran.
    """
    pytest.importorskip("deepspeed", reason="pip install deepspeed: the ZeRO configs need it")
    workdir = _two_process_chain(tmp_path_factory, config)
    # The trainer ran through DeepSpeed (its CPU accelerator), and the lineage says so: accelerate's own state reads
    # MULTI_CPU on a machine without CUDA, where the stage recorded MULTI_CPU and took the unsharded save path
    assert _one_run_one_version(workdir, config) == "DEEPSPEED"
    model = workdir / "artifacts/train_sft/model.safetensors"
    from safetensors import safe_open

    with safe_open(str(model), "pt") as weights:  # whole tensors, not a rank's empty ZeRO-3 partitions
        assert all(weights.get_slice(name).get_shape() != [0] for name in weights.keys())
