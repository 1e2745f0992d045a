"""What the training machine is: CPU model, GPU model and, where the GPU exposes it, its power limit.

Recorded at training time into the lineage's ``environment`` (run context,
never the model's manifest), so the report can name the hardware and
estimate training energy (:mod:`governance.report.documentation`). Reads
``/proc/cpuinfo`` (Linux) or :func:`platform.processor`, torch's CUDA device
name, and NVML through ``pynvml`` when that is installed; absent facts are
None, never guessed.
"""

from __future__ import annotations

import logging
import platform
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The CPU's model name, e.g. ``AMD EPYC 7B13`` (None when the system does not say)."""
    path = Path(cpuinfo)
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    return platform.processor() or None


def gpu_facts() -> dict[str, Any]:
    """GPU model and count via torch; power limit and current draw via NVML where it is available."""
    import torch

    if not torch.cuda.is_available():
        return {"gpu_model": None, "gpu_count": 0, "gpu_power_limit_w": None, "gpu_power_source": None}
    out: dict[str, Any] = {
        "gpu_model": torch.cuda.get_device_name(0),
        "gpu_count": torch.cuda.device_count(),
        "gpu_power_limit_w": None,
        "gpu_power_source": None,
    }
    try:
        import pynvml  # optional: ships with nvidia-ml-py where a GPU stack is installed
    except ImportError:
        return out
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        out["gpu_power_limit_w"] = pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0
        out["gpu_power_source"] = "NVML enforced power limit"
    except pynvml.NVMLError as exc:  # a driver without NVML power queries: say so, do not guess
        log.info("NVML power query failed (%s)", exc)
    return out


def hardware_facts() -> dict[str, Any]:
    """CPU model, logical CPUs, GPU model/count and power limit: the hardware part of a run's environment."""
    import os

    return {"cpu_model": cpu_model(), "cpu_logical_cores": os.cpu_count(), **gpu_facts()}
