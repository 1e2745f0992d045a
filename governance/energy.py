"""GPU energy of a block of work, measured by NVML's total-energy counter on every rank, or said to be unmeasured.

    meter = GpuEnergyMeter.for_this_process()   # every rank: the GPU(s) this process trains on
    meter.start()
    trainer.train()
    readings = meter.stop()                      # joules per GPU, this rank
    record = energy_record(gathered_readings, seconds=...)   # the lineage's ``energy``, all ranks

NVML (``nvidia-ml-py``, in the ``[gpu]`` extra, imported lazily so the CPU
install never needs it) exposes ``nvmlDeviceGetTotalEnergyConsumption``: the
millijoules a board has drawn since the driver loaded, from the board's own
power sensor, on Volta and later GPUs. The difference of two reads is the
energy the whole board drew in between: idle draw and any other process on
the same GPU included, host CPU, memory and cooling not. A record is
``method: nvml`` only when every GPU of every rank was read at both ends;
otherwise (no GPU, no ``nvidia-ml-py``, a board or MIG slice without the
counter) its method is ``estimate: power limit x time`` and ``reason`` says
why. ``joules`` is then the GPUs' enforced power limits times the wall time
where NVML gave the limits, else null, and the report falls back to its power
table (:mod:`governance.report.documentation`), labelled an estimate.

Why NVML and not CodeCarbon: CodeCarbon's GPU figure is this same counter,
read through the same ``nvidia-ml-py``. What it adds is a CPU and RAM share
estimated from TDP tables, a CO2 figure from a carbon-intensity table, a
sampling thread and a CSV file, with a dependency tree of its own (pandas,
requests, rich, typer, ...) in the lock of every model's lineage. The form
asks for energy, and the counter is the measurement; two reads per GPU per
rank cost nothing a training step would notice.

Trust: a run record the report displays. Nothing decides on it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)

METHOD_NVML = "nvml"
METHOD_ESTIMATE = "estimate: power limit x time"
COUNTER = "nvmlDeviceGetTotalEnergyConsumption (mJ since driver load), read when training began and ended"


def load_nvml() -> Any | None:
    """The ``pynvml`` module of ``nvidia-ml-py``, initialised; None where it is not installed or finds no driver."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:  # installed, but no NVIDIA driver on this machine
        log.info("NVML: %s", exc)
        return None
    return pynvml


@dataclass(frozen=True)
class GpuReading:
    """What one rank measured on one GPU; ``joules`` None where the counter could not be read."""

    rank: int
    index: int
    uuid: str | None
    name: str | None
    joules: float | None
    power_limit_w: float | None
    error: str | None = None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class GpuEnergyMeter:
    """NVML's energy counter on the CUDA devices one process uses, read at :meth:`start` and :meth:`stop`."""

    def __init__(self, devices: list[tuple[int, str | None, str | None]], rank: int = 0, nvml: Any | None = None):
        """``devices``: (CUDA index, UUID and name as torch reports them) of each GPU this process uses."""
        self.devices = devices
        self.rank = rank
        self.nvml = nvml
        self.reason: str | None = None
        self._handles: list[Any] = []
        self._start_mj: list[int | None] = []
        self._started = 0.0
        self.seconds: float | None = None

    @classmethod
    def for_this_process(cls, rank: int = 0) -> GpuEnergyMeter:
        """A meter on the GPU this process trains on (torch's current CUDA device); none where there is no GPU."""
        import torch

        if not torch.cuda.is_available():
            meter = cls([], rank)
            meter.reason = "no CUDA device: nothing for NVML to meter"
            return meter
        index = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        uuid = getattr(props, "uuid", None)
        meter = cls([(index, str(uuid) if uuid is not None else None, props.name)], rank, load_nvml())
        if meter.nvml is None:
            meter.reason = "NVML not available (install the [gpu] extra: nvidia-ml-py) or no NVIDIA driver"
        return meter

    def _handle(self, index: int, uuid: str | None) -> Any:
        # NVML numbers every GPU of the machine; CUDA only the visible ones (CUDA_VISIBLE_DEVICES): match by UUID
        if uuid:
            wanted = uuid.lower().removeprefix("gpu-")
            for i in range(self.nvml.nvmlDeviceGetCount()):
                handle = self.nvml.nvmlDeviceGetHandleByIndex(i)
                if _text(self.nvml.nvmlDeviceGetUUID(handle)).lower().removeprefix("gpu-") == wanted:
                    return handle
        return self.nvml.nvmlDeviceGetHandleByIndex(index)

    def start(self) -> None:
        """Read each GPU's counter (a GPU without one is read as None and the record says why)."""
        self._started = time.perf_counter()
        if self.nvml is None:
            return
        for index, uuid, _ in self.devices:
            handle = self._handle(index, uuid)
            self._handles.append(handle)
            self._start_mj.append(self._counter(handle))

    def _counter(self, handle: Any) -> int | None:
        try:
            return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
        except self.nvml.NVMLError as exc:  # pre-Volta boards and MIG slices have no counter: said, not guessed
            self.reason = f"NVML energy counter not supported: {exc}"
            return None

    def stop(self) -> list[GpuReading]:
        """Joules each GPU drew since :meth:`start` (None where its counter could not be read)."""
        self.seconds = time.perf_counter() - self._started
        if self.nvml is None:  # a GPU NVML cannot read: in the record, so the total is not called measured
            return [GpuReading(self.rank, i, uuid, name, None, None, self.reason) for i, uuid, name in self.devices]
        readings = []
        for (index, _, _), handle, start in zip(self.devices, self._handles, self._start_mj, strict=True):
            end = self._counter(handle)
            try:
                limit = self.nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0
            except self.nvml.NVMLError:
                limit = None
            readings.append(
                GpuReading(
                    rank=self.rank,
                    index=index,
                    uuid=_text(self.nvml.nvmlDeviceGetUUID(handle)),
                    name=_text(self.nvml.nvmlDeviceGetName(handle)),
                    joules=(end - start) / 1000.0 if start is not None and end is not None else None,
                    power_limit_w=limit,
                    error=None if start is not None and end is not None else self.reason,
                )
            )
        return readings


def energy_record(readings: list[GpuReading], *, seconds: float | None, reason: str | None = None) -> dict[str, Any]:
    """The lineage's ``energy``: joules, the method, the GPUs (every rank's readings, each GPU once).

    ``nvml`` when every GPU's counter was read at both ends; otherwise ``estimate: power limit x
    time`` with the enforced power limits times ``seconds`` where NVML gave them (else null) and
    ``reason`` saying why it is not a measurement.
    """
    seen: set[str] = set()
    gpus = []
    for reading in readings:
        key = reading.uuid or f"{reading.rank}:{reading.index}"
        if key in seen:  # two ranks on one GPU: its counter counts once
            continue
        seen.add(key)
        gpus.append(reading)
    measured = bool(gpus) and all(g.joules is not None for g in gpus)
    base = {"seconds": round(seconds, 3) if seconds is not None else None, "gpus": [asdict(g) for g in gpus]}
    if measured:
        return {"method": METHOD_NVML, "joules": round(sum(g.joules for g in gpus), 3), "counter": COUNTER, **base}
    limits = [g.power_limit_w for g in gpus]
    estimate = (
        round(sum(limits) * seconds, 3) if gpus and seconds is not None and all(x is not None for x in limits) else None
    )
    why = reason or next((g.error for g in gpus if g.error), None) or "no GPU readings"
    return {"method": METHOD_ESTIMATE, "joules": estimate, "reason": why, **base}
