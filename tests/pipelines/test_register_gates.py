"""The register stage believes gate and evaluation decisions only through the signed trail events of their stages.

Issue 31: an outside red team with write access to the working tree, without
the trail key, trained on PII appended to the gated data (its hash rewritten in
``decision.json``) and registered the result as "gates passed". Each attack
below edits the working tree as they did; ``python -m pipelines.register sft``
must refuse with one line before it reads anything from MLflow.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from e2e_support import commit_reviewed

from governance.gates import (
    DatasetRef,
    Violation,
    dataset_ref,
    decide,
    publish_decision,
    read_published_decision,
    require_recorded_gates,
)
from governance.lineage import sha256_file
from pipelines import register

REPO = Path(__file__).resolve().parents[2]
MODEL = "a" * 64
DATA = "artifacts/pii_scan_sft/data/train.jsonl"
PII_DECISION = "artifacts/pii_scan_sft/decision.json"
EVAL_DECISION = "artifacts/evaluate_sft/decision.json"
DENY = Violation(rule_id="eval.max_ratio", severity="deny", subject="model", message="perplexity ratio 1.3 (max 1.1)")


def _gate(violations=()) -> None:
    decision = decide(
        gate="pii",
        stage="pii_scan_sft",
        datasets=[dataset_ref(DATA)],
        policy_path="policies/pii.yaml",
        policy_version="1",
        violations=list(violations),
    )
    publish_decision(decision, PII_DECISION)


def _evaluate(violations=()) -> None:
    decision = decide(
        gate="eval",
        stage="evaluate_sft",
        datasets=[DatasetRef(path="data/eval.jsonl", sha256="e" * 64)],
        policy_path="policies/eval.yaml",
        policy_version="1",
        violations=list(violations),
        details={"method": "sft", "metrics": {"perplexity_ratio_vs_base": 1.3 if violations else 0.8}},
    )
    publish_decision(decision, EVAL_DECISION, evidence={"model_sha256": MODEL})
    Path("artifacts/evaluate_sft/manifest.json").write_text(
        json.dumps({"stage": "evaluate_sft", "model_sha256": MODEL})
    )


def _trained() -> None:
    """The training manifest train_sft writes: the decision it was trained under, by SHA-256, and its data."""
    manifest = {
        "stage": "train_sft",
        "method": "sft",
        "model_path": "artifacts/train_sft",
        "model_sha256": MODEL,
        "gates": [
            {"gate": "pii", "stage": "pii_scan_sft", "passed": True, "decision": PII_DECISION,
             "decision_sha256": sha256_file(PII_DECISION)},
        ],
        "datasets": {DATA: {"md5": "m" * 32, "sha256": sha256_file(DATA)}},
        "parent": {"stage": "base_model", "model_sha256": "p" * 64, "name_or_path": "builtin:tiny"},
        "base": {"name_or_path": "builtin:tiny"},
    }  # fmt: skip
    Path("artifacts/train_sft").mkdir(parents=True, exist_ok=True)
    Path("artifacts/train_sft/manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def ws(tmp_path, monkeypatch, mlflow_store):
    """A working tree with gated data, its published PII decision, a trained model's manifest and its evaluation."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(REPO / "policies", "policies")
    report = Path("policies/report.yaml")  # this workspace's models are trained under the PII gate alone
    report.write_text(report.read_text().replace("required_gates: [pii, validation]", "required_gates: [pii]"))
    commit_reviewed(tmp_path)  # the policies decide only as the reviewed version
    sections = {
        "project": "regtest",
        "register_sft": {
            "method": "sft",
            "model_dir": "artifacts/train_sft",
            "eval_dir": "artifacts/evaluate_sft",
            "out_dir": "artifacts/register_sft",
            "intended_use": "tests",
            "out_of_scope": "anything else",
            "risk_tier": "medium",
        },
    }
    Path("params.yaml").write_text(yaml.safe_dump(sections))
    Path(DATA).parent.mkdir(parents=True)
    Path(DATA).write_text('{"messages": [{"role": "user", "content": "What is 12 + 30?"}]}\n')
    _gate()
    _trained()
    Path("artifacts/evaluate_sft").mkdir(parents=True)
    _evaluate()
    return tmp_path


def _refusal(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_genuine_decisions_pass_the_checks_and_registration_goes_on_to_mlflow(ws, capsys):
    # Both decisions are the ones their stages published: the next thing register needs is the training run's
    # context, as the training stage signed it (L3)
    assert register.main(["sft"]) == 2
    assert _refusal(capsys).startswith(
        "register: ConfigError: artifacts/train_sft: no signed model_trained event of stage train_sft for model "
        "aaaaaaaaaaaa…"
    )


def test_red_team_trained_on_pii_appended_under_a_rewritten_decision_is_not_registered(ws, capsys):
    before = sha256_file(DATA)
    with Path(DATA).open("a") as handle:
        handle.writelines(
            json.dumps({"messages": [{"role": "user", "content": f"SSN 123-45-{6700 + i}, e{i}@example.com"}]}) + "\n"
            for i in range(30)
        )
    decision = Path(PII_DECISION)
    decision.write_text(decision.read_text().replace(before, sha256_file(DATA)))
    _trained()  # train_sft as it ran before issue 31: its manifest names the rewritten decision
    assert register.main(["sft"]) == 1
    assert _refusal(capsys) == (
        f"register: PolicyViolation: artifacts/train_sft/manifest.json: the model was trained under {PII_DECISION} "
        f"(sha256 {sha256_file(PII_DECISION)[:12]}…), which no signed gate_decision event in the audit trail "
        "matches: it was not published by the pii_scan_sft stage; re-run the gate and retrain: "
        "dvc repro -f pii_scan_sft"
    )


def test_denied_evaluation_rewritten_to_passed_is_not_registered(ws, capsys):
    _evaluate([DENY])
    decision = Path(EVAL_DECISION)
    denied = json.loads(decision.read_text())
    decision.write_text(
        json.dumps({**denied, "passed": True, "counts": {**denied["counts"], "deny": 0}, "violations": []}, indent=2)
    )
    assert register.main(["sft"]) == 1
    assert _refusal(capsys) == (
        f"register: PolicyViolation: {EVAL_DECISION}: no signed eval_decision event in the audit trail matches this "
        f"file (sha256 {sha256_file(EVAL_DECISION)[:12]}…): it was not published by the evaluate_sft stage; "
        "re-run the gate: dvc repro -f evaluate_sft"
    )


def test_another_models_passed_evaluation_is_not_registered(ws, capsys):
    # The manifests edited to name another model: the passed evaluation's signed event is for this one
    Path("artifacts/evaluate_sft/manifest.json").write_text(
        json.dumps({"stage": "evaluate_sft", "model_sha256": "b" * 64})
    )
    manifest = json.loads(Path("artifacts/train_sft/manifest.json").read_text())
    Path("artifacts/train_sft/manifest.json").write_text(json.dumps({**manifest, "model_sha256": "b" * 64}))
    assert register.main(["sft"]) == 1
    event = read_published_decision(EVAL_DECISION, require={"model_sha256": MODEL}).event
    assert _refusal(capsys) == (
        f"register: PolicyViolation: {EVAL_DECISION}: the signed eval_decision event #{event.seq} records "
        "model_sha256 aaaaaaaaaaaa…, not bbbbbbbbbbbb…; re-run it: dvc repro -f evaluate_sft"
    )


def test_gate_status_is_the_signed_events_not_the_manifests(ws):
    # The gate denied; the training manifest (a working-tree file) was edited to say it passed
    _gate([Violation(rule_id="pii.us_ssn", severity="deny", subject=DATA, message="1 record contains US_SSN (max 0)")])
    _trained()
    manifest = json.loads(Path("artifacts/train_sft/manifest.json").read_text())
    assert manifest["gates"][0]["passed"] is True
    gates = require_recorded_gates(
        manifest["gates"], {DATA: sha256_file(DATA)}, source="artifacts/train_sft/manifest.json"
    )
    params = register.load_params("register_sft", register.RegisterParams)
    evaluated = read_published_decision(EVAL_DECISION, require={"model_sha256": MODEL})
    trained = {
        **manifest,
        "run_id": "r",
        "git_commit": "c",
        "git_dirty": False,
        "params_sha256": "s",
        "lock_sha256": "l",
    }
    tags = register.version_tags("regtest", params, trained, gates, evaluated)
    assert (tags["lineage.gate_decisions"], tags["lineage.gates"]) == ("failed", "pii_scan_sft=denied")
    assert tags["lineage.eval_decision_sha256"] == sha256_file(EVAL_DECISION)


def test_a_model_whose_manifest_lists_fewer_gates_than_the_reviewed_policy_requires_is_not_registered(ws, capsys):
    """The reviewed policies/report.yaml requires a gate the training manifest does not list: nothing is registered."""
    report = Path("policies/report.yaml")
    report.write_text(report.read_text().replace("required_gates: [pii]", "required_gates: [pii, validation]"))
    commit_reviewed(ws)  # a reviewed change: every model now needs the validation gate too
    assert register.main(["sft"]) == 1
    assert _refusal(capsys) == (
        "register: PolicyViolation: artifacts/train_sft/manifest.json: records no decision of the validation gate, "
        "which policies/report.yaml requires for every file trained on (evidence.required_gates); retrain under "
        "every required gate: dvc repro"
    )
    from governance import registry

    assert registry.client().search_registered_models("name = 'regtest-sft'") == []
