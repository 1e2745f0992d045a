"""The Model Documentation Form: energy estimate (pure) and the form of a recorded version, gaps said so.

A version built by tests/governance/report_support.py (real MLflow store, real
audit trail, real approvals and promotion) records no hardware model, trainer
class or safety evaluation: the form must say so item by item, never fill them
in. tests/e2e/test_model_documentation.py checks a dvc-built version, where
every section is filled.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_support import REPO, build_version

from governance import approvals
from governance.identity import Identity
from governance.report import build_report
from governance.report.documentation import SECTIONS, energy_estimate, load_power_table, not_recorded_items


def test_energy_from_a_gpu_table_entry_time_and_flops():
    energy = energy_estimate(
        environment={"gpu_model": "NVIDIA H100 80GB HBM3", "gpu_count": 2, "cpu_logical_cores": 16},
        runtime_seconds=3600.0,
        total_flos=9.89e14 * 2 * 1800,
    )
    assert energy["kwh"] == pytest.approx(1.4)  # 1 h x 1400 W
    assert energy["kwh_flops_lower_bound"] == pytest.approx(0.7)  # half the time at peak
    assert energy["power_source"] == "hardware_power.yaml entry 'H100': 700.0 W x 2 GPU(s)"
    assert energy["measured"] is False


def test_energy_prefers_the_power_limit_nvml_reported():
    energy = energy_estimate(
        environment={
            "gpu_model": "NVIDIA H100",
            "gpu_count": 1,
            "gpu_power_limit_w": 350.0,
            "gpu_power_source": "NVML enforced power limit",
        },
        runtime_seconds=3600.0,
        total_flos=None,
    )
    assert energy["kwh"] == pytest.approx(0.35) and energy["measured"] is True
    assert energy["power_source"] == "NVML power limit 350.0 W x 1 GPU(s), measured at training time"


def test_energy_on_an_unlisted_cpu_uses_the_stated_default():
    energy = energy_estimate(
        environment={"cpu_model": "Some CPU", "cpu_logical_cores": 2}, runtime_seconds=36.0, total_flos=1e12
    )
    default = load_power_table().default_cpu
    assert energy["kwh"] == pytest.approx(36.0 * 2 * default.watts_per_core / 3.6e6)
    assert "default_cpu (CPU model not in the table)" in energy["power_source"]


def test_energy_without_time_or_flops_is_not_recorded():
    assert energy_estimate(environment={"cpu_count": 2}, runtime_seconds=None, total_flos=None) == {
        "kwh": None,
        "not_recorded": "neither training time nor FLOPs recorded",
    }
    assert energy_estimate(environment={"gpu_model": "Mystery GPU"}, runtime_seconds=1.0, total_flos=None) == {
        "kwh": None,
        "not_recorded": "no power figure for GPU 'Mystery GPU' in hardware_power.yaml",
    }


def test_a_recorded_version_gets_every_section_and_says_what_is_not_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("GOVERN_POLICY_DIR", str(REPO / "policies"))
    monkeypatch.chdir(tmp_path)
    built = build_version(Path("."), project="doc")
    approvals.approve(built.name, built.version, reason="ok", identity=Identity("alice", "local"))
    approvals.approve(built.name, built.version, reason="ok", identity=Identity("bob", "local"))
    approvals.promote(built.name, built.version, reason="first release", identity=Identity("dana", "local"))
    report = build_report(built.name, built.version, tmp_path / "out")
    doc = json.loads(report.files.documentation.read_text())
    assert doc == json.loads(json.dumps(report.facts.documentation, default=str))
    assert [s for s in SECTIONS if s in doc] == list(SECTIONS)
    general = doc["general_information"]
    assert general["authenticity_sha256"]["value"] == report.facts.identity["model_sha256"]
    assert general["release_date"]["value"] is not None  # promoted: the trail has the @production event
    assert general["model_dependencies"]["value"]["base_model_sha256"] == "0" * 64  # the base is the parent
    # The fixture records no trainer class, hardware model or safety evaluation: said, not invented
    gaps = not_recorded_items(doc)
    assert (
        "use.safety_evaluation: safety evaluation: artifact evaluation/safety.json (evaluated before it existed)"
        in gaps
    )
    assert doc["model_properties"]["training_method"]["value"]["trainer"] is None
    # Energy: 4.5 s of recorded wall time (the report's figure, not train_runtime 4.2) on 2 logical cores
    energy = doc["energy"]["training_energy_kwh"]
    assert energy["value"] == pytest.approx(4.5 * 2 * load_power_table().default_cpu.watts_per_core / 3.6e6)
    assert energy["evidence"].startswith("estimate: training time x power draw")
    assert doc["energy"]["measured"]["not_recorded"].startswith("not metered")
    # The same form is a section of the HTML and Markdown report
    for path in (report.files.markdown, report.files.html):
        text = path.read_text(encoding="utf-8")
        assert "Provider's model documentation (EU GPAI Code of Practice)" in text
        assert "not recorded" in text
