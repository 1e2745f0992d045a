import datetime as dt

import pytest

from governance.errors import PolicyViolation
from governance.gates import Violation, Waiver, dataset_ref, decide, require_passed_gates, write_decision


def _data(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"a": 1}\n')
    return path


def _decision(tmp_path, path, violations=(), waivers=(), name="decision.json"):
    decision = decide(
        gate="pii",
        stage="pii_scan_sft",
        datasets=[dataset_ref(path)],
        policy_path="policies/pii.yaml",
        policy_version="1",
        violations=list(violations),
        waivers=list(waivers),
    )
    out = tmp_path / name
    write_decision(decision, out)
    return decision, out


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
