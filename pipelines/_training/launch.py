"""One run, many processes: every ``train_*`` stage is started by ``accelerate launch``.

Where this process stands (:class:`Topology`), the one MLflow run on the main
process (:func:`main_process_run`), a launcher's SIGTERM turned into
:class:`DistributedError`, and outputs staged beside the committed model and
moved into place only on success (:func:`staged_output`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from governance.errors import ConfigError, GovernanceError, PolicyViolation
from governance.lineage import sha256_file
from governance.mlflow_run import MlflowRun
from governance.policy import Strict
from pipelines._common import project_name
from pipelines._training.config import AdapterParams
from pipelines._training.models import save_model

log = logging.getLogger(__name__)


class LaunchParams(Strict):
    """How dvc.yaml launches the stage: ``accelerate launch --config_file C --num_processes N``.

    ``num_processes`` is accelerate's: processes over all machines. The config
    files under ``configs/accelerate/`` leave it to this value (``-1`` there).
    """

    num_processes: int = Field(ge=1)
    config_file: str


class DistributedError(GovernanceError):
    """A process of a multi-process training run failed or was stopped; nothing was written."""


@dataclass(frozen=True)
class Topology:
    """Where this process stands in the run accelerate started."""

    world_size: int
    rank: int
    local_world_size: int
    distributed_type: str
    backend: str | None
    config_file: str
    config_sha256: str

    @property
    def is_main(self) -> bool:
        """The one process that speaks for the run: outputs, manifest, MLflow, lineage."""
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        return self.distributed_type in ("FSDP", "DEEPSPEED")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def launched_config_sha256(path: Path, section: str) -> str:
    """The SHA-256 of the accelerate config this run was launched with: the bytes the launcher read
    (:mod:`pipelines._launch`), which must still be the configured file's; the file's own where no launcher
    says (a stage started without it)."""
    from pipelines._launch import CONFIG_SHA256_ENV

    now = sha256_file(path)
    launched = os.environ.get(CONFIG_SHA256_ENV)
    if launched is not None and launched != now:
        raise PolicyViolation(
            f"params.yaml: {section}.launch.config_file: {path} has sha256 {now[:12]}… now, but the launch ran with "
            f"a config of sha256 {launched[:12]}…: it changed while the stage was launched, so the run's config is "
            "not the file the lineage would name; nothing trained: re-run the stage"
        )
    return launched or now


def run_topology(config, launch: LaunchParams, adapter: AdapterParams, section: str) -> Topology:
    """This process's rank, the world size and distributed type the trainer will use.

    Reads the distributed state the TRL config set up (accelerate's, from the
    launcher's environment) and hashes the accelerate config named in params.
    Refuses a run whose process count differs from ``launch.num_processes`` (the
    lineage must describe what ran) and LoRA/QLoRA under FSDP/DeepSpeed, whose
    sharded adapter weights this stage cannot merge into one model folder.
    """
    path = Path(launch.config_file)
    if not path.is_file():
        raise ConfigError(
            f"params.yaml: {section}.launch.config_file: {path} not found (configs/accelerate/ holds the shipped ones)"
        )
    config.device  # noqa: B018 - builds TrainingArguments' distributed state (accelerate's PartialState)
    state = config.distributed_state
    topology = Topology(
        world_size=state.num_processes,
        rank=state.process_index,
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
        # What the trainer runs under: TRL's config carries a DeepSpeed plugin whenever the launch is DeepSpeed's, also
        # where accelerate's state says MULTI_CPU (no CUDA: use_cpu); the Trainer then trains through DeepSpeed all the
        # same: the lineage must say DEEPSPEED, and a ZeRO-3 model is gathered before it is saved (the sharded path)
        distributed_type="DEEPSPEED"
        if getattr(config, "deepspeed_plugin", None) is not None
        else state.distributed_type.value,
        backend=state.backend,
        config_file=str(path),
        config_sha256=launched_config_sha256(path, section),
    )
    if topology.world_size != launch.num_processes:
        raise ConfigError(
            f"params.yaml: {section}.launch.num_processes is {launch.num_processes} but this run has "
            f"{topology.world_size} process(es): run it with `dvc repro {section}` (accelerate launch) "
            "or set num_processes to match"
        )
    if topology.sharded and adapter.method != "none":
        raise ConfigError(
            f"params.yaml: {section}.adapter.method: {adapter.method} under {topology.distributed_type} "
            f"({path}) is not supported: sharded adapters cannot be merged into one model; use multi_gpu.yaml (DDP)"
        )
    log.info(
        "%s: process %d of %d (%s, backend %s, %s)",
        section,
        topology.rank,
        topology.world_size,
        topology.distributed_type,
        topology.backend,
        path,
    )
    return topology


@contextlib.contextmanager
def main_process_run(topology: Topology, stage: str, tags: dict[str, str]):
    """The stage's MLflow run on the main process (yields its :class:`MlflowRun`), nothing elsewhere (None).

    The run ends FINISHED when the block completes and FAILED when it raises. A SIGTERM (the launcher stopping the
    survivors after one process died) becomes :class:`DistributedError` on
    every process, so the run ends FAILED and staged outputs are removed
    before the process exits.
    """

    lost = (
        f"another training process of {topology.world_size} failed and the launcher stopped this one; "
        "nothing was written"
    )

    previous = signal.signal(signal.SIGTERM, stop_on_sigterm(lost)) if topology.world_size > 1 else None
    try:
        if not topology.is_main:
            yield None
            return
        run = MlflowRun(project_name())
        run_tags = {
            **tags,
            "distributed.world_size": str(topology.world_size),
            "distributed.type": topology.distributed_type,
        }
        try:
            run.start(stage, run_tags)
            yield run
        except BaseException:
            with contextlib.suppress(Exception):
                run.end("FAILED")
            raise
        run.end()
    except RuntimeError as exc:
        if topology.world_size == 1 or not _peer_lost(exc):
            raise
        log.debug("collective failed: %s", str(exc).splitlines()[0][:200])
        raise DistributedError(lost) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def stop_on_sigterm(message: str) -> Callable[[int, object], None]:
    """A SIGTERM handler that turns the launcher's stop into :class:`DistributedError`, once.

    The launcher sends SIGTERM to the survivors after one process died, often
    while the main process is already failing on the broken collective and
    closing its MLflow run as FAILED. Raising again there would abort that
    clean-up half-way (the run would stay RUNNING), so a SIGTERM that arrives
    while an exception is being handled is ignored: the failure in flight
    already ends the process with the same outcome.
    """

    def stopped(signum: int, frame: object) -> None:
        if sys.exc_info()[1] is not None:
            log.debug("SIGTERM during the clean-up of a failure: letting the clean-up finish")
            return
        raise DistributedError(message)

    return stopped


def _peer_lost(exc: RuntimeError) -> bool:
    """Whether a collective failed because another process of the group went away (gloo/NCCL)."""
    text = str(exc).lower()
    return any(
        phrase in text for phrase in ("connection closed by peer", "connection reset", "gloo", "nccl", "broken pipe")
    )


@contextlib.contextmanager
def staged_output(out_dir: str | Path, topology: Topology):
    """A staging folder beside ``out_dir``, moved into place only when the block succeeds.

    The earlier output stays where it is until the new one is complete (dvc.yaml
    marks the training outs ``persist: true``, so DVC does not delete them before
    the stage runs either): a failed run — a bad ``dvc exp run -S`` value, an
    exception, a SIGTERM turned into one — removes only the staging folder and
    leaves the committed model and its ``dvc.lock`` entry agreeing. A process
    killed outright leaves only ``<out_dir>.partial``, which is no DVC output
    and is cleared by the next run.
    """
    out_dir = Path(out_dir)
    staging = out_dir.with_name(out_dir.name + ".partial")
    existed = out_dir.exists()
    if topology.is_main:
        shutil.rmtree(staging, ignore_errors=True)
    try:
        yield staging
    except BaseException:
        if topology.is_main:
            shutil.rmtree(staging, ignore_errors=True)
            if not existed:  # an (empty) output_dir the trainer made: no output of this run may remain
                shutil.rmtree(out_dir, ignore_errors=True)
        raise
    if topology.is_main:
        # The trainer may have created output_dir (logs); the staged model replaces it whole
        shutil.rmtree(out_dir, ignore_errors=True)
        staging.rename(out_dir)


def save_trained_model(trainer, tokenizer, out_dir: str | Path, topology: Topology) -> None:
    """Save the trained model once, from the main process.

    Under FSDP/DeepSpeed the full state dict is gathered first, a collective
    every process takes part in; with one process or DDP every process holds
    the whole model and the main one saves it (LoRA merged in).
    """
    if topology.sharded:
        state_dict = trainer.accelerator.get_state_dict(trainer.model_wrapped)
        if topology.is_main:
            model = trainer.accelerator.unwrap_model(trainer.model)
            model.save_pretrained(out_dir, state_dict=state_dict, safe_serialization=True)
            tokenizer.save_pretrained(out_dir)
    elif topology.is_main:
        save_model(trainer.model, tokenizer, out_dir)
    trainer.accelerator.wait_for_everyone()
