"""What the training machine is: CPU model, GPU model, driver and, where the GPU exposes it, its power limit.

Recorded at training time into the lineage's ``environment`` (run context,
never the model's manifest), so the report can name the hardware and
estimate training energy (:mod:`governance.report.documentation`). Reads
``/proc/cpuinfo`` (Linux) or :func:`platform.processor`, torch's CUDA device
name and CUDA runtime, and NVML through ``pynvml`` (``nvidia-ml-py``, the
``[gpu]`` extra) when that is installed; absent facts are None, never
guessed. The versions of the ``[gpu]`` extra's packages that are installed
(:data:`GPU_PACKAGES`) come along: they change what a CUDA run computes.
The energy a run drew is measured separately, around training
(:mod:`governance.energy`).
"""

from __future__ import annotations

import importlib.metadata
import logging
import platform
from pathlib import Path
from typing import Any

from governance.energy import load_nvml

log = logging.getLogger(__name__)

#: The ``[gpu]`` extra's packages (and flash-attn, built by hand where wanted): their versions, where installed.
GPU_PACKAGES = ("bitsandbytes", "liger-kernel", "nvidia-ml-py", "flash-attn")


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
    """GPU model, count and CUDA runtime via torch; driver and power limit via NVML where it is available."""
    import torch

    if not torch.cuda.is_available():
        return {"gpu_model": None, "gpu_count": 0, "gpu_power_limit_w": None, "gpu_power_source": None}
    out: dict[str, Any] = {
        "gpu_model": torch.cuda.get_device_name(0),
        "gpu_count": torch.cuda.device_count(),
        "gpu_power_limit_w": None,
        "gpu_power_source": None,
        "cuda_runtime": torch.version.cuda,
    }
    pynvml = load_nvml()  # optional: nvidia-ml-py, the [gpu] extra
    if pynvml is None:
        return out
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        out["gpu_driver"] = driver.decode() if isinstance(driver, bytes) else str(driver)
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        out["gpu_power_limit_w"] = pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0
        out["gpu_power_source"] = "NVML enforced power limit"
    except pynvml.NVMLError as exc:  # a driver without NVML power queries: say so, do not guess
        log.info("NVML power query failed (%s)", exc)
    return out


def gpu_packages() -> dict[str, str]:
    """``{name: version}`` of the installed :data:`GPU_PACKAGES` (none on the CPU install)."""
    found = {}
    for name in GPU_PACKAGES:
        try:
            found[name.replace("-", "_")] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def hardware_facts() -> dict[str, Any]:
    """CPU model, logical CPUs, GPU model/count/driver and power limit, and the GPU packages installed."""
    import os

    return {"cpu_model": cpu_model(), "cpu_logical_cores": os.cpu_count(), **gpu_facts(), **gpu_packages()}
