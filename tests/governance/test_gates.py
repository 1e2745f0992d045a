"""Gate decisions: waivers, the checks training makes, and the signed trail events that make a decision believable.

A decision file is believed only when a verified ``gate_decision`` (or
``eval_decision``) event in the audit trail published exactly its bytes; the
attack tests below edit the files as an outside red team with write access to
the working tree, but without the trail key, did (issue 31).
"""

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

from governance import trail
from governance.errors import PolicyViolation, TrailBroken
from governance.gates import (
    Violation,
    Waiver,
    dataset_ref,
    decide,
    publish_decision,
    read_published_decision,
    require_passed_gates,
    require_recorded_gates,
    write_decision,
)
from governance.lineage import sha256_file
from governance.policy.review import read_reviewed

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "policies" / "pii.yaml"


@pytest.fixture(autouse=True)
def _own_trail(mlflow_store):
    """Every test publishes into (and reads from) its own audit trail."""


def _data(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"a": 1}\n')
    return path


def _decision(tmp_path, path, violations=(), waivers=(), name="decision.json", stage="pii_scan_sft", gate="pii"):
    decision = decide(
        gate=gate,
        stage=stage,
        datasets=[dataset_ref(path)],
        policy_path=str(POLICY),
        policy_version="1",
        violations=list(violations),
        waivers=list(waivers),
    )
    out = tmp_path / name
    publish_decision(decision, out)
    return decision, out


#: What the red team appended to the gated data: raw SSNs, card numbers and e-mail addresses.
PII_RECORDS = [
    {
        "messages": [
            {"role": "user", "content": f"My SSN is 123-45-{6700 + i} and my card 4111 1111 1111 1111."},
            {"role": "assistant", "content": f"Thanks, I will write to customer{i}@example.com."},
        ]
    }
    for i in range(30)
]


def _append_pii_and_rewrite_the_hash(data: Path, decision: Path) -> str:
    """The attack as scripted: append PII records to the gated data, put the new hash in decision.json."""
    before = sha256_file(data)
    with data.open("a") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in PII_RECORDS)
    decision.write_text(decision.read_text().replace(before, sha256_file(data)))
    return sha256_file(decision)


# --------------------------------------------------------------------------- attacks (issue 31)


def test_red_team_pii_appended_and_decision_hash_rewritten_is_refused(tmp_path):
    path = _data(tmp_path)
    _, out = _decision(tmp_path, path)
    forged = _append_pii_and_rewrite_the_hash(path, out)
    with pytest.raises(PolicyViolation) as refused:
        require_passed_gates([path], [out])
    assert str(refused.value) == (
        f"{out}: no signed gate_decision event in the audit trail matches this file (sha256 {forged[:12]}…): "
        "it was not published by the pii_scan_sft stage; re-run the gate: dvc repro -f pii_scan_sft"
    )


def test_hand_written_passed_decision_is_refused(tmp_path):
    path = _data(tmp_path)
    decision = decide(
        gate="validation",
        stage="validate_sft",
        datasets=[dataset_ref(path)],
        policy_path=str(POLICY),
        policy_version="1",
        violations=[],
    )
    out = tmp_path / "validate.json"
    write_decision(decision, out)  # the file alone, as anyone with write access can make it
    with pytest.raises(
        PolicyViolation, match=r"no signed gate_decision event .* re-run the gate: dvc repro -f validate_sft$"
    ):
        require_passed_gates([path], [out])


def test_forged_trail_row_for_the_rewritten_decision_breaks_the_trail(tmp_path):
    path = _data(tmp_path)
    _, out = _decision(tmp_path, path)
    forged = _append_pii_and_rewrite_the_hash(path, out)
    # Without the trail key: copy the genuine row, point it at the forged file and data, re-chain and re-hash it
    with sqlite3.connect(tmp_path / "audit.db") as db:
        db.row_factory = sqlite3.Row
        genuine = dict(db.execute("SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone())
        evidence = {**json.loads(genuine["evidence"]), "decision_sha256": forged, f"data:{path}": sha256_file(path)}
        row = dict(
            genuine,
            seq=genuine["seq"] + 1,
            subject_objective_hash=forged,
            evidence=trail.canonical_json(evidence),
            prev_hash=genuine["hash"],
        )
        row["hash"] = trail.row_hash(row)
        db.execute(
            f"INSERT INTO audit_events ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
        )
    with pytest.raises(TrailBroken) as refused:
        require_passed_gates([path], [out])
    assert str(refused.value) == (
        f"refusing to act on a broken audit trail: event #{row['seq']} (gate_decision gate:pii_scan_sft by "
        f"{genuine['actor']}): signature does not verify under key {genuine['key_id']}; the event was forged or "
        "re-hashed after an edit; see `govern audit verify`"
    )


def test_published_decision_is_one_signed_event_bound_to_file_data_and_policy(tmp_path):
    path = _data(tmp_path)
    decision, out = _decision(tmp_path, path)
    (event,) = trail.events(objective="gate:pii_scan_sft")
    assert (event.event_type, event.subject.objective_hash, event.role) == (
        "gate_decision",
        sha256_file(out),
        "gate stage",
    )
    assert event.evidence == {
        "decision_sha256": sha256_file(out),
        "policy_sha256": sha256_file(POLICY),
        f"data:{path}": sha256_file(path),
        f"reviewed:{POLICY}": sha256_file(POLICY),  # the reviewed policy, at the commit it was reviewed
        "reviewed_commit": read_reviewed(POLICY).commit,
        "reviewed_ref": read_reviewed(POLICY).ref,  # origin/main, or HEAD where the default fell back to it
    }
    assert event.details["passed"] is True and event.details["gate"] == "pii"
    # Publishing the same decision again (dvc repro -f on the same data) appends nothing
    again = publish_decision(decision, out)
    assert not again.created and again.seq == event.seq
    assert len(trail.events(objective="gate:pii_scan_sft")) == 1


def test_eval_decision_is_accepted_only_for_the_model_it_evaluated(tmp_path):
    path = _data(tmp_path)
    decision = decide(
        gate="eval",
        stage="evaluate_sft",
        datasets=[dataset_ref(path)],
        policy_path=str(POLICY),
        policy_version="1",
        violations=[],
    )
    out = tmp_path / "eval_decision.json"
    event = publish_decision(decision, out, evidence={"model_sha256": "a" * 64})
    assert event.event_type == "eval_decision"
    published = read_published_decision(out, require={"model_sha256": "a" * 64})
    assert (published.sha256, published.event.seq) == (sha256_file(out), event.seq)
    with pytest.raises(PolicyViolation) as refused:
        read_published_decision(out, require={"model_sha256": "b" * 64})
    assert str(refused.value) == (
        f"{out}: the signed eval_decision event #{event.seq} records model_sha256 aaaaaaaaaaaa…, "
        "not bbbbbbbbbbbb…; re-run it: dvc repro -f evaluate_sft"
    )
    # The red team's version: a denied evaluation rewritten to passed
    out.write_text(out.read_text().replace('"passed": true', '"passed": true '))
    with pytest.raises(PolicyViolation, match=r"no signed eval_decision event in the audit trail matches this file"):
        read_published_decision(out, require={"model_sha256": "a" * 64})


def test_registration_accepts_only_the_signed_decisions_a_model_was_trained_under(tmp_path):
    path = _data(tmp_path)
    _, out = _decision(tmp_path, path)
    trained = [{"stage": "pii_scan_sft", "decision": str(out), "decision_sha256": sha256_file(out)}]
    (event,) = require_recorded_gates(trained, {str(path): sha256_file(path)}, source="m/manifest.json")
    assert event.details["passed"] is True
    # Trained under the rewritten decision: no signed event for it
    forged = _append_pii_and_rewrite_the_hash(path, out)
    trained = [{"stage": "pii_scan_sft", "decision": str(out), "decision_sha256": forged}]
    with pytest.raises(PolicyViolation) as refused:
        require_recorded_gates(trained, {str(path): sha256_file(path)}, source="m/manifest.json")
    assert str(refused.value) == (
        f"m/manifest.json: the model was trained under {out} (sha256 {forged[:12]}…), which no signed "
        "gate_decision event in the audit trail matches: it was not published by the pii_scan_sft stage; "
        "re-run the gate and retrain: dvc repro -f pii_scan_sft"
    )
    # A manifest edited to claim the genuine decision, while the data is the attacker's
    trained = [{"stage": "pii_scan_sft", "decision": str(out), "decision_sha256": event.subject.objective_hash}]
    with pytest.raises(PolicyViolation) as refused:
        require_recorded_gates(trained, {str(path): sha256_file(path)}, source="m/manifest.json")
    assert str(refused.value) == (
        f"m/manifest.json: {path} (sha256 {sha256_file(path)[:12]}…) is not what the signed pii_scan_sft "
        f"decision (event #{event.seq}) judged; re-run the gate and retrain: dvc repro -f pii_scan_sft"
    )
    with pytest.raises(PolicyViolation, match=r"^m/manifest\.json: records no gate decisions"):
        require_recorded_gates([], {str(path): sha256_file(path)}, source="m/manifest.json")


# --------------------------------------------------------------------------- the checks as before


DENY = Violation(
    rule_id="pii.credit_card", severity="deny", subject="train.jsonl", message="3 records contain CREDIT_CARD (max 0)"
)


def test_violation_line_is_conftest_style():
    assert DENY.line() == "deny  pii.credit_card  train.jsonl: 3 records contain CREDIT_CARD (max 0)"


def test_passed_decision_lets_training_start(tmp_path):
    path = _data(tmp_path)
    _, out = _decision(tmp_path, path)
    (decision,) = require_passed_gates([path], [out])
    assert decision.passed and decision.counts == {"deny": 0, "warn": 0, "waived": 0}


def test_denied_decision_blocks_with_first_rule(tmp_path):
    path = _data(tmp_path)
    _, out = _decision(tmp_path, path, [DENY])
    with pytest.raises(PolicyViolation, match=r"pii gate denied 1 rule\(s\); first: deny  pii\.credit_card"):
        require_passed_gates([path], [out])


def test_changed_data_is_refused_even_if_gate_passed(tmp_path):
    path = _data(tmp_path)
    _, out = _decision(tmp_path, path)
    path.write_text('{"a": 2}\n')
    with pytest.raises(PolicyViolation, match="the data changed since it was gated"):
        require_passed_gates([path], [out])


def test_missing_decision_is_refused(tmp_path):
    path = _data(tmp_path)
    with pytest.raises(PolicyViolation, match="gate decision missing"):
        require_passed_gates([path], [tmp_path / "nope.json"])


def test_file_not_judged_is_refused(tmp_path):
    path = _data(tmp_path)
    _, out = _decision(tmp_path, path)
    other = tmp_path / "eval.jsonl"
    other.write_text('{"a": 1}\n')
    with pytest.raises(PolicyViolation, match=r"did not judge .*eval\.jsonl"):
        require_passed_gates([path, other], [out])


def test_unexpired_waiver_turns_deny_into_waived(tmp_path):
    path = _data(tmp_path)
    waiver = Waiver(rule_id="pii.credit_card", granted_by="alice", reason="test cards", expires=dt.date(2999, 1, 1))
    decision, _ = _decision(tmp_path, path, [DENY], [waiver])
    assert decision.passed and decision.counts == {"deny": 0, "warn": 0, "waived": 1}
    assert decision.violations[0].line().endswith("[waived by alice]")


def test_expired_waiver_does_not_apply(tmp_path):
    path = _data(tmp_path)
    waiver = Waiver(rule_id="pii.credit_card", granted_by="alice", reason="old", expires=dt.date(2000, 1, 1))
    decision, _ = _decision(tmp_path, path, [DENY], [waiver])
    assert not decision.passed and decision.counts["deny"] == 1


def test_missing_training_file_is_a_data_error(tmp_path):
    from governance.errors import DataError

    path = _data(tmp_path)
    _, out = _decision(tmp_path, path)
    with pytest.raises(DataError, match=r"gone\.jsonl: training data file not found"):
        require_passed_gates([tmp_path / "gone.jsonl"], [out])


def test_one_gates_decision_copied_to_another_gates_path_is_refused(tmp_path):
    """The PII decision copied over the validation decision: the validation gate never ran on this data."""
    path = _data(tmp_path)
    _, out = _decision(tmp_path, path)
    copied = tmp_path / "validate" / "decision.json"
    copied.parent.mkdir()
    copied.write_bytes(out.read_bytes())
    with pytest.raises(PolicyViolation) as info:
        require_passed_gates([path], [out, copied])
    stage = json.loads(out.read_text())["stage"]
    assert str(info.value) == (
        f"{copied}: is the {stage} decision again (as {out}); each configured gate decision must come from its "
        "own gate stage, re-run them: dvc repro"
    )
