"""The energy a training run drew: NVML's counter read around ``trainer.train()`` on every rank.

:func:`~pipelines._training.recording.run_callbacks` gives every process an
:class:`EnergyMeterCallback`; when training ends each rank reads its GPU's
counter and the readings are gathered, so the main process's
:attr:`EnergyMeterCallback.record` covers every GPU of the run.
:func:`~pipelines._training.recording.finish_training` puts it in the lineage
(``energy``: joules, method, GPUs) and the run's metrics; the GPAI form shows
it (:mod:`governance.report.documentation`). The measuring itself, and why
NVML, is :mod:`governance.energy`.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from governance.energy import GpuEnergyMeter, GpuReading, energy_record


def gather_readings(readings: list[GpuReading]) -> list[GpuReading]:
    """Every rank's readings on every rank (one ``all_gather_object``; this rank's alone without a process group)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return readings
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, readings)
    return [reading for rank in gathered for reading in rank]


class EnergyMeterCallback(TrainerCallback):
    """Reads this rank's GPU energy counter when training begins and ends; :attr:`record` is the run's energy."""

    def __init__(self) -> None:
        self.meter: GpuEnergyMeter | None = None
        self.record: dict[str, Any] | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.meter = GpuEnergyMeter.for_this_process(rank=args.process_index)
        self.meter.start()

    def on_train_end(self, args, state, control, **kwargs):
        # Every rank reaches on_train_end, so every rank takes part in the gather
        readings = gather_readings(self.meter.stop())
        self.record = energy_record(readings, seconds=self.meter.seconds, reason=self.meter.reason)
