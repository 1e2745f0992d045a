"""OpenLineage run events of the stage harness: START then COMPLETE/FAIL, parsed back with the client's models."""

from __future__ import annotations

import json

import pytest
import yaml

from governance.errors import PolicyViolation
from pipelines._common import stage_main


def parse_event(data: dict):
    """Rebuild a RunEvent with openlineage-python's own attrs models (their validators run)."""
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import error_message_run

    facets = dict(data["run"].get("facets") or {})
    if "errorMessage" in facets:
        raw = {k: v for k, v in facets["errorMessage"].items() if not k.startswith("_")}
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(**raw)
    return RunEvent(
        eventType=RunState(data["eventType"]),
        eventTime=data["eventTime"],
        run=Run(runId=data["run"]["runId"], facets=facets),
        job=Job(namespace=data["job"]["namespace"], name=data["job"]["name"]),
        producer=data["producer"],
        inputs=[InputDataset(namespace=d["namespace"], name=d["name"]) for d in data["inputs"]],
        outputs=[OutputDataset(namespace=d["namespace"], name=d["name"]) for d in data["outputs"]],
    )


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
