"""OpenLineage run events of the stage harness: START then COMPLETE/FAIL, parsed back with the client's models."""

from __future__ import annotations

import json

import pytest
import yaml

from governance.errors import PolicyViolation
from pipelines._common import stage_main


def parse_event(data: dict):
    """Rebuild a RunEvent with openlineage-python's own attrs models (their validators run)."""
    from governance.openlineage import client_event

    return client_event(data)


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A checkout with one gate stage in dvc.yaml; events go to the default file."""
    monkeypatch.chdir(tmp_path)
    for var in ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG", "OPENLINEAGE_DISABLED", "GOVERN_OPENLINEAGE_FILE"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "params.yaml").write_text("project: govllm\npii_scan_sft:\n  out_dir: artifacts/pii_scan_sft\n")
    stages = {
        "pii_scan_sft": {
            "cmd": "python -m pipelines.pii_scan sft",
            "deps": ["pipelines/pii_scan.py", "data/prepared/sft/train.jsonl"],
            "outs": ["${pii_scan_sft.out_dir}/data"],
            "metrics": [{"${pii_scan_sft.out_dir}/decision.json": {"cache": False}}],
        }
    }
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    return tmp_path


def gate_stage(passed: bool):
    """A stage main as the harness runs it: writes its decision, exits 1 when denied."""

    def pii_scan(argv: list[str] | None = None) -> int:
        out = __import__("pathlib").Path("artifacts/pii_scan_sft")
        out.mkdir(parents=True, exist_ok=True)
        decision = {"gate": "pii", "passed": passed, "counts": {"deny": 0 if passed else 2}, "policy_version": "3"}
        (out / "decision.json").write_text(json.dumps(decision))
        if not passed:
            raise PolicyViolation("pii.block_credit_card denied 2 records")
        return 0

    pii_scan.__module__ = "pipelines.pii_scan"
    return stage_main(pii_scan)


def events(checkout) -> list[dict]:
    return [json.loads(line) for line in (checkout / "openlineage/events.jsonl").read_text().splitlines()]


def test_a_passing_stage_emits_start_and_complete_with_its_datasets_and_gate(checkout):
    assert gate_stage(passed=True)(["sft"]) == 0
    start, complete = events(checkout)
    assert start["schemaURL"].startswith("https://openlineage.io/spec/")
    assert [parse_event(e).eventType.value for e in (start, complete)] == ["START", "COMPLETE"]
    assert start["run"]["runId"] == complete["run"]["runId"]
    assert complete["job"] == {"namespace": "govllm", "name": "pii_scan_sft", "facets": {}}
    assert [d["name"] for d in complete["inputs"]] == ["pipelines/pii_scan.py", "data/prepared/sft/train.jsonl"]
    assert [d["name"] for d in complete["outputs"]] == [
        "artifacts/pii_scan_sft/data",
        "artifacts/pii_scan_sft/decision.json",
    ]
    gate = complete["run"]["facets"]["governance_gate"]
    assert (gate["gate"], gate["passed"], gate["policyVersion"]) == ("pii", True, "3")
    assert gate["_schemaURL"].endswith("GovernanceGateRunFacet.json")


def test_a_denied_gate_emits_fail_with_the_error_and_the_verdict(checkout):
    assert gate_stage(passed=False)(["sft"]) == 1
    _, fail = events(checkout)
    event = parse_event(fail)
    assert event.eventType.value == "FAIL"
    assert event.run.facets["errorMessage"].message == "PolicyViolation: pii.block_credit_card denied 2 records"
    assert fail["run"]["facets"]["governance_gate"]["passed"] is False


def test_emission_can_be_turned_off(checkout, monkeypatch):
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    assert gate_stage(passed=True)(["sft"]) == 0
    assert not (checkout / "openlineage").exists()


def test_the_events_file_holds_what_the_client_itself_would_serialise(checkout):
    """The JSON written without importing the client is byte for byte the client's Serde output of that event."""
    from openlineage.client.serde import Serde

    assert gate_stage(passed=False)(["sft"]) == 1
    lines = (checkout / "openlineage/events.jsonl").read_text().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert Serde.to_json(parse_event(json.loads(line))) == line
    run_id = json.loads(lines[0])["run"]["runId"]
    assert run_id[14] == "7" and run_id[19] in "89ab"  # UUIDv7, RFC 4122 variant, as the client's run ids


def test_a_configured_client_transport_gets_the_same_events(checkout, monkeypatch):
    """OPENLINEAGE__TRANSPORT__* hands the events to openlineage-python's own transport (here its file transport)."""
    target = checkout / "elsewhere.jsonl"
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__TYPE", "file")
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__LOG_FILE_PATH", str(target))
    monkeypatch.setenv("OPENLINEAGE__TRANSPORT__APPEND", "true")
    assert gate_stage(passed=True)(["sft"]) == 0
    assert not (checkout / "openlineage").exists()
    start, complete = [json.loads(line) for line in target.read_text().splitlines()]
    assert [parse_event(e).eventType.value for e in (start, complete)] == ["START", "COMPLETE"]
    assert complete["run"]["facets"]["governance_gate"]["passed"] is True
    assert "tags" in complete["run"]["facets"]  # the client added its own facet: it really sent the event


def test_stage_events_are_written_without_importing_the_client(checkout):
    """A stage's lineage costs no openlineage-python import on the default file transport (~0.5 s CPU each)."""
    import subprocess
    import sys

    code = (
        "import json, sys; from pipelines._common import stage_main\n"
        "def prepare_sft(argv=None):\n    return 0\n"
        "prepare_sft.__module__ = 'pipelines.prepare_sft'\n"
        "code = stage_main(prepare_sft)([])\n"
        "print(json.dumps([code, sorted(m for m in sys.modules if m.startswith('openlineage'))]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=checkout, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == [0, []]
    assert [e["eventType"] for e in events(checkout)] == ["START", "COMPLETE"]
