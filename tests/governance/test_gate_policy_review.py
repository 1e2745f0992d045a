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

import hashlib
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
    with pytest.raises(
        PolicyViolation,
        match=r"policies/data.yaml is now the reviewed sha256 .* but the validate_sft "
        r"decision \(event #\d+\) was judged under .*; re-run the gate: dvc repro -f validate_sft",
    ):
        require_passed_gates(["data/train.jsonl"], [out])
    assert json.loads(out.read_text()) == before


def _judged_with(instrument: str):
    """An evaluation decision read with ``instrument`` (a judge file) as the stage read it: by its bytes' hash."""
    from governance.gates import DatasetRef
    from governance.lineage import sha256_file

    return decide(
        gate="eval", stage="evaluate_sft", datasets=[dataset_ref("data/train.jsonl")], policy_path="policies/eval.yaml",
        policy_version="1", violations=[], instruments=[DatasetRef(path=instrument, sha256=sha256_file(instrument))],
    )  # fmt: skip


@pytest.fixture
def judge(project):
    """The shipped judge file in the checkout, committed: a reviewed instrument."""
    Path("data/safety").mkdir(parents=True)
    shutil.copy(REPO / "data/safety/judge.yaml", "data/safety/judge.yaml")
    commit_reviewed(project, "data/safety")
    return "data/safety/judge.yaml"


def test_a_decision_binds_its_instruments_as_reviewed_and_others_keep_their_bytes(project, judge):
    """A decision names the files besides its policy that read the evidence (the safety judge); publishing binds each
    by the hash of its reviewed bytes into the signed event. A decision with none keeps the bytes it always had."""
    out = Path("artifacts/evaluate_sft/decision.json")
    event = publish_decision(_judged_with(judge), out)
    assert event.evidence[f"reviewed:{judge}"] == json.loads(out.read_text())["instruments"][0]["sha256"]
    plain = Path("artifacts/validate_sft/decision.json")
    publish_decision(_decision("validation", "validate_sft", "policies/data.yaml"), plain)
    assert "instruments" not in json.loads(plain.read_text())


def test_attack_an_instrument_not_reviewed_or_changed_while_the_stage_ran_is_refused_when_published(project, judge):
    out = Path("artifacts/evaluate_sft/decision.json")
    # Read as reviewed, then edited before the decision is published: the stage's bytes are no longer the reviewed
    decision = _judged_with(judge)
    _loosen(judge)
    with pytest.raises(PolicyViolation) as uncommitted:
        publish_decision(decision, out)
    assert str(uncommitted.value) == (
        f"{judge}: this eval gate's instrument decides, and it is not the reviewed version (uncommitted change); only "
        f"the version committed at the reviewed ref counts: restore the reviewed version (git checkout HEAD -- "
        f"{judge}) or get the change reviewed and merged"
    )
    # Read while another judge was in place, the reviewed one put back before publishing: not what the stage used
    swapped = _judged_with(judge)
    shutil.copy(REPO / "data/safety/judge.yaml", judge)
    with pytest.raises(PolicyViolation, match=rf"^{judge}: the evaluate_sft stage read it as sha256 \w+…, but the "
                       r"reviewed file holds \w+…: it changed while the stage ran; re-run the stage$"):  # fmt: skip
        publish_decision(swapped, out)
    assert not out.exists()


def test_attack_an_instrument_edited_after_the_decision_is_refused_where_the_decision_is_read(project, judge):
    out = Path("artifacts/evaluate_sft/decision.json")
    publish_decision(_judged_with(judge), out)
    read_published_decision(out)
    _loosen(judge)
    with pytest.raises(PolicyViolation) as info:
        read_published_decision(out)
    assert str(info.value).startswith(f"{out}: {judge}: this file decides, and it is not the reviewed version")


@pytest.mark.parametrize(("gate", "stage", "policy"), GATES)
def test_attack_a_policy_swapped_back_between_the_gates_read_and_the_binding_is_refused(project, gate, stage, policy):
    """The gate parses a loosened policy, the reviewed one is put back before the decision is published: the
    decision carries the hash of the bytes the gate parsed (every loader sets it), so the binding refuses."""
    from governance.lineage import sha256_file
    from governance.policy import load_policy_file

    reviewed = Path(policy).read_bytes()
    _loosen(policy)
    parsed = load_policy_file(policy, _schema(gate))
    assert parsed.sha256 == sha256_file(policy) != hashlib.sha256(reviewed).hexdigest()
    Path(policy).write_bytes(reviewed)  # back before the binding
    decision = decide(
        gate=gate, stage=stage, datasets=[dataset_ref("data/train.jsonl")], policy_path=policy, policy_version="1",
        violations=[], policy_sha256=parsed.sha256,
    )  # fmt: skip
    out = Path(f"artifacts/{stage}/decision.json")
    with pytest.raises(PolicyViolation, match=rf"^{policy}: the {gate} gate judged under sha256 \w+…, but the reviewed "
                       r"file holds \w+…: it changed while the gate ran; re-run the gate$"):  # fmt: skip
        publish_decision(decision, out)
    assert not out.exists()
    # The reviewed bytes parsed: published, and the decision file records the hash it was judged under
    ok = load_policy_file(policy, _schema(gate))
    publish_decision(decision.model_copy(update={"policy_sha256": ok.sha256}), out)
    assert json.loads(out.read_text())["policy_sha256"] == hashlib.sha256(reviewed).hexdigest()


def _schema(gate: str):
    from governance.policy.data import DataPolicy
    from governance.policy.eval import EvalPolicy
    from governance.policy.pii import PiiPolicy

    return {"pii": PiiPolicy, "validation": DataPolicy, "eval": EvalPolicy}[gate]
