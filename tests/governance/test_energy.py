"""Training energy: NVML's counter read per GPU on every rank, or an estimate labelled so; the form shows which.

NVML is faked (this machine has no GPU): a module with the calls governance.energy
makes, whose counters advance as a board's would. The real reads ran on no GPU in
the session that wrote this (docs/how-to/gpu.md says what was verified where).
"""

from __future__ import annotations

import pytest

from governance.energy import (
    METHOD_ESTIMATE,
    METHOD_NVML,
    GpuEnergyMeter,
    GpuReading,
    energy_record,
)
from governance.report.documentation import energy_estimate, energy_items


class FakeNvml:
    """Two boards; CUDA sees only the second (CUDA_VISIBLE_DEVICES=1), so NVML index 1 is CUDA index 0."""

    class NVMLError(Exception):
        pass

    def __init__(self, counters_mj=(5_000_000, 9_000_000), step_mj=(0, 350_000), supported=True):
        self.counters = list(counters_mj)
        self.step = step_mj
        self.supported = supported

    def nvmlDeviceGetCount(self):  # noqa: N802 - NVML's names
        return 2

    def nvmlDeviceGetHandleByIndex(self, i):  # noqa: N802
        return i

    def nvmlDeviceGetUUID(self, h):  # noqa: N802
        return f"GPU-0000000{h}-aaaa-bbbb-cccc-dddddddddddd"

    def nvmlDeviceGetName(self, h):  # noqa: N802
        return b"NVIDIA H100 80GB HBM3"  # older bindings return bytes

    def nvmlDeviceGetEnforcedPowerLimit(self, h):  # noqa: N802
        return 700_000

    def nvmlDeviceGetTotalEnergyConsumption(self, h):  # noqa: N802
        if not self.supported:
            raise self.NVMLError("Not Supported")
        value = self.counters[h]
        self.counters[h] += self.step[h]  # the board draws between reads
        return value


def test_the_counter_difference_of_the_gpu_cuda_uses_is_measured_in_joules():
    nvml = FakeNvml()
    meter = GpuEnergyMeter([(0, "00000001-aaaa-bbbb-cccc-dddddddddddd", "H100")], rank=0, nvml=nvml)
    meter.start()
    (reading,) = meter.stop()
    # Matched by UUID: NVML's board 1, not NVML index 0 (which drew nothing)
    assert reading.uuid == "GPU-00000001-aaaa-bbbb-cccc-dddddddddddd"
    assert reading.name == "NVIDIA H100 80GB HBM3"
    assert reading.joules == pytest.approx(350.0)
    record = energy_record([reading], seconds=meter.seconds)
    assert record["method"] == METHOD_NVML and record["joules"] == pytest.approx(350.0)
    assert record["gpus"][0]["power_limit_w"] == 700.0 and "nvmlDeviceGetTotalEnergyConsumption" in record["counter"]


def test_every_ranks_gpu_counts_once_and_the_total_is_their_sum():
    def reading(rank, uuid, joules):
        return GpuReading(rank, 0, uuid, "H100", joules, 700.0)

    record = energy_record(
        [reading(0, "GPU-a", 100.0), reading(1, "GPU-b", 120.0), reading(2, "GPU-b", 120.0)], seconds=1.0
    )
    assert record["method"] == METHOD_NVML and record["joules"] == pytest.approx(220.0)
    assert [g["uuid"] for g in record["gpus"]] == ["GPU-a", "GPU-b"]


def test_a_board_without_the_counter_is_an_estimate_from_its_power_limit_and_says_why():
    nvml = FakeNvml(supported=False)
    meter = GpuEnergyMeter([(0, "00000001-aaaa-bbbb-cccc-dddddddddddd", "H100")], nvml=nvml)
    meter.start()
    readings = meter.stop()
    record = energy_record(readings, seconds=10.0, reason=meter.reason)
    assert record["method"] == METHOD_ESTIMATE == "estimate: power limit x time"
    assert record["joules"] == pytest.approx(7000.0)  # 700 W x 10 s
    assert record["reason"] == "NVML energy counter not supported: Not Supported"


def test_one_rank_without_nvml_makes_the_whole_run_an_estimate():
    measured = GpuReading(0, 0, "GPU-a", "H100", 100.0, 700.0)
    blind = GpuReading(1, 0, "GPU-b", "H100", None, None, "NVML not available")
    record = energy_record([measured, blind], seconds=2.0)
    assert record["method"] == METHOD_ESTIMATE and record["joules"] is None
    assert record["reason"] == "NVML not available"


def test_on_this_cpu_machine_nothing_is_metered_and_the_record_says_so():
    meter = GpuEnergyMeter.for_this_process()
    meter.start()
    record = energy_record(meter.stop(), seconds=meter.seconds, reason=meter.reason)
    assert record["method"] == METHOD_ESTIMATE and record["joules"] is None and record["gpus"] == []
    assert record["reason"] == "no CUDA device: nothing for NVML to meter"


def test_the_form_shows_the_measurement_where_there_is_one_and_the_estimate_labelled_where_not():
    environment = {"gpu_model": "NVIDIA H100 80GB HBM3", "gpu_count": 1}
    estimate = energy_estimate(environment=environment, runtime_seconds=3600.0, total_flos=None)
    gpu = GpuReading(0, 0, "GPU-a", "NVIDIA H100 80GB HBM3", 1.8e6, 700.0)
    items = energy_items(energy_record([gpu], seconds=3600.0), estimate)
    assert items["training_energy_kwh"]["value"] == pytest.approx(0.5)  # 1.8 MJ
    assert items["training_energy_kwh"]["evidence"].startswith("measured: nvmlDeviceGetTotalEnergyConsumption")
    assert items["measured"]["value"]["method"] == "nvml"
    assert items["estimate"]["value"]["power_watts"] == 700.0  # shown beside it: 0.7 kWh at full power

    unmetered = energy_record([], seconds=3600.0, reason="no CUDA device: nothing for NVML to meter")
    items = energy_items(unmetered, estimate)
    assert items["training_energy_kwh"]["value"] == pytest.approx(0.7)
    assert items["training_energy_kwh"]["evidence"].startswith("estimate: ")
    assert items["measured"]["value"] is None
    assert items["measured"]["not_recorded"] == (
        "not metered (no CUDA device: nothing for NVML to meter): the figure above is an estimate"
    )
