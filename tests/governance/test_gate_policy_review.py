"""A gate decides only under the reviewed policy, and training and registration check it again (issue 38, G1).

The red team edited ``policies/pii.yaml`` (``pii.person`` to ``allow``, version
string unchanged) without committing it: names went through the gate into
training. Every policy file a gate names is bound by hash into its signed
decision; an unreviewed one is refused when the decision is published, and a
decision whose policy is no longer the reviewed version is refused where it is
read (training, registration). Each case runs for the PII, data and eval
policies: the mechanism, not a list.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from e2e_support import commit_reviewed

from governance.errors import PolicyViolation
from governance.gates import dataset_ref, decide, publish_decision, read_published_decision, require_passed_gates

REPO = Path(__file__).resolve().parents[2]
GATES = [("pii", "pii_scan_sft", "policies/pii.yaml"), ("validation", "validate_sft", "policies/data.yaml"),
         ("eval", "evaluate_sft", "policies/eval.yaml")]  # fmt: skip


@pytest.fixture
def project(tmp_path, monkeypatch, mlflow_store):
    """A checkout holding the shipped policies as reviewed, and a data file; the test runs inside it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOVERN_POLICY_DIR", raising=False)
    shutil.copytree(REPO / "policies", "policies")
    Path("data").mkdir()
    Path("data/train.jsonl").write_text(json.dumps({"messages": [{"role": "user", "content": "12 + 30?"}]}) + "\n")
    commit_reviewed(tmp_path)
    return tmp_path


def _decision(gate: str, stage: str, policy: str):
    return decide(
        gate=gate, stage=stage, datasets=[dataset_ref("data/train.jsonl")], policy_path=policy, policy_version="1",
        violations=[],
    )  # fmt: skip


def _loosen(policy: str) -> None:
    """What the attacker typed: one more line in the file, the version string unchanged."""
    with Path(policy).open("a") as handle:
        handle.write("# loosened, not committed\n")


@pytest.mark.parametrize(("gate", "stage", "policy"), GATES)
def test_attack_an_uncommitted_policy_edit_is_refused_when_the_decision_is_published(project, gate, stage, policy):
    _loosen(policy)
    out = Path(f"artifacts/{stage}/decision.json")
    with pytest.raises(PolicyViolation) as info:
        publish_decision(_decision(gate, stage, policy), out)
    assert str(info.value) == (
        f"{policy}: this {gate} gate's file decides, and it is not the reviewed version (uncommitted change); only "
        f"the version committed at the reviewed ref counts: restore the reviewed version (git checkout HEAD -- "
        f"{policy}) or get the change reviewed and merged"
    )
    assert not out.exists()  # nothing left that a later step could mistake for a decision


@pytest.mark.parametrize(("gate", "stage", "policy"), GATES)
def test_attack_a_policy_edited_after_its_gate_ran_is_refused_where_the_decision_is_read(project, gate, stage, policy):
    out = Path(f"artifacts/{stage}/decision.json")
    publish_decision(_decision(gate, stage, policy), out)
    _loosen(policy)
    read = (lambda: require_passed_gates(["data/train.jsonl"], [out])) if gate != "eval" else (
        lambda: read_published_decision(out)
    )  # fmt: skip
    with pytest.raises(PolicyViolation) as info:
        read()
    assert str(info.value) == (
        f"{out}: {policy}: this file decides, and it is not the reviewed version (uncommitted change); only the "
        f"version committed at the reviewed ref counts: restore the reviewed version (git checkout HEAD -- "
        f"{policy}) or get the change reviewed and merged"
    )


def test_a_reviewed_policy_change_after_the_gate_needs_the_gate_again(project):
    out = Path("artifacts/validate_sft/decision.json")
    publish_decision(_decision("validation", "validate_sft", "policies/data.yaml"), out)
    before = json.loads(out.read_text())
    data = yaml.safe_load(Path("policies/data.yaml").read_text())
    data["version"] = "reviewed-later"
    Path("policies/data.yaml").write_text(yaml.safe_dump(data))
    commit_reviewed(project)
    with pytest.raises(PolicyViolation, match=r"policies/data.yaml is now the reviewed sha256 .* but the validate_sft "
                       r"decision \(event #\d+\) was judged under .*; re-run the gate: dvc repro -f validate_sft"):
        require_passed_gates(["data/train.jsonl"], [out])
    assert json.loads(out.read_text()) == before
