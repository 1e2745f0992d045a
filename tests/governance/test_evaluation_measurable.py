"""No evaluation rule passes vacuously; warnings and the fixture notice reach the verdict banner."""

from __future__ import annotations

import math

from governance.evaluation import check_metrics, not_measurable
from governance.policy.eval import MetricRule
from governance.report.facts import ReportFacts
from governance.report.verdict import collect_notices, collect_warnings, decide_verdict
from governance.statistics import paired, shares

DELTA = MetricRule(
    id="eval.grpo.accuracy_vs_parent", severity="deny", metric="accuracy_delta_vs_parent", min=-0.05, rationale="r",
    test="mcnemar", on_insufficient="warn",
)  # fmt: skip
LEAK = MetricRule(
    id="eval.sft.role_leak", severity="warn", metric="role_leak_rate", max=0.34, rationale="r", test="wilson",
    on_insufficient="pass",
)  # fmt: skip


def check_metrics_at_95(rules, metrics, subject, production=None, evidence=None):
    """The gate at the shipped policy's confidence; ``evidence`` only where a rule gets as far as its interval."""
    return check_metrics(rules, metrics, subject, production, evidence=evidence or {}, confidence=0.95)


def test_a_delta_with_both_sides_at_the_floor_is_not_measurable():
    metrics = {"accuracy": 0.0, "parent_accuracy": 0.0, "accuracy_delta_vs_parent": 0.0}
    (violation,), (result,) = check_metrics_at_95([DELTA], metrics, "artifacts/train_grpo")
    assert violation.line() == (
        "deny  eval.grpo.accuracy_vs_parent  artifacts/train_grpo: accuracy_delta_vs_parent is not measurable: "
        "accuracy 0 and parent_accuracy 0 are both at the floor, so the difference cannot show a change"
    )
    assert result["status"] == "not_measurable" and result["observed"] is None


def test_a_delta_that_moved_is_judged_normally():
    """Off the floor the rule is judged on its paired interval (30 questions; 9 only the parent got right).

    Both moves have under 25 discordant pairs, so the interval covers the exact one and neither decides yet.
    """
    metrics = {"accuracy": 0.2, "parent_accuracy": 0.1, "accuracy_delta_vs_parent": 0.1}
    rose = {"accuracy_delta_vs_parent": paired([1] * 3 + [0] * 27, [0] * 30)}
    (risen,) = check_metrics_at_95([DELTA], {**metrics, "accuracy": 0.1, "accuracy_delta_vs_parent": 0.1 - 0.0,
                                             "parent_accuracy": 0.0}, "m", evidence=rose)[0]  # fmt: skip
    assert risen.line() == (
        "warn  eval.grpo.accuracy_vs_parent  m: insufficient evidence: accuracy_delta_vs_parent 0.1 "
        "(95% CI -0.12..0.29, McNemar p=0.25, n=30 pairs) against min -0.05; accuracy 0.1 vs parent 0; "
        "about 35 pairs would decide"
    )
    worse = {"accuracy": 0.0, "parent_accuracy": 0.3, "accuracy_delta_vs_parent": -0.3}
    fell = {"accuracy_delta_vs_parent": paired([0] * 30, [1] * 9 + [0] * 21)}
    (violation,), (result,) = check_metrics_at_95([DELTA], worse, "m", evidence=fell)
    assert violation.message == (
        "insufficient evidence: accuracy_delta_vs_parent -0.3 (95% CI -0.52..0.00435, McNemar p=0.0039, n=30 pairs) "
        "against min -0.05; accuracy 0 vs parent 0.3; about 31 pairs would decide"
    )
    assert result["status"] == "insufficient_evidence"


def test_a_regression_rule_with_both_sides_at_zero_is_not_measurable():
    rule = MetricRule(
        id="eval.grpo.regression_vs_production",
        severity="deny",
        metric="accuracy",
        relative_to="production",
        max_regression=0.05,
        higher_is_better=True,
        rationale="r",
        test="wilson",
        on_insufficient="warn",
    )
    (violation,), (result,) = check_metrics_at_95([rule], {"accuracy": 0.0}, "m", production={"accuracy": 0.0})
    assert violation.message == (
        "accuracy is not measurable: accuracy 0 and production 0 are both at the floor, so no regression can show"
    )
    assert result["status"] == "not_measurable"
    # Off the floor the candidate's interval is judged against production's value less 5%
    many = {"accuracy": shares([1] * 200 + [0] * 800, "questions")}
    assert check_metrics_at_95([rule], {"accuracy": 0.2}, "m", {"accuracy": 0.1}, evidence=many)[0] == []


def test_an_undefined_metric_is_not_measurable_at_the_rule_severity():
    (violation,), (result,) = check_metrics_at_95([LEAK], {"role_leak_rate": math.nan}, "m")
    assert violation.severity == "warn"
    assert violation.message == "role_leak_rate is not measurable: undefined (nan) on this evaluation data"
    assert result["status"] == "not_measurable"
    assert not_measurable("role_leak_rate", {"role_leak_rate": 0.5}) is None


def _facts(base_model: str, eval_violations: list[dict], gates: list[dict]) -> ReportFacts:
    return ReportFacts(
        name="m",
        version="1",
        generated_at="t",
        source={},
        identity={"base_model": base_model},
        training={},
        data={"gates": gates},
        objectives={},
        evaluation={"violations": eval_violations, "results": [], "decision": {}, "passed": True},
        approvals={},
        integrity={},
        operations={},
        compliance=[],
    )


def test_warnings_are_listed_in_the_banner_and_the_fixture_says_it_proves_nothing():
    facts = _facts(
        "builtin:tiny",
        [
            {"rule_id": "eval.sft.role_leak", "severity": "warn", "message": "role_leak_rate 1 (max 0.34)"},
            {"rule_id": "eval.sft.empty", "severity": "warn", "message": "x", "waived_by": "alice"},
            {"rule_id": "eval.sft.ppl", "severity": "deny", "message": "y"},
        ],
        [
            {
                "stage": "validate_sft",
                "passed": True,
                "counts": {"warn": 1},
                "integrity": "ok",
                "artifact": "a",
                "violations": [{"rule_id": "data.min_rows", "severity": "warn", "message": "z"}],
            },
            {  # one rule warning on two files: each line names its file, once
                "stage": "pii_scan_sft",
                "passed": True,
                "counts": {"warn": 3},
                "integrity": "ok",
                "artifact": "b",
                "violations": [
                    {"rule_id": "pii.person", "severity": "warn", "subject": "d/train.jsonl", "message": "at line 7"},
                    {"rule_id": "pii.person", "severity": "warn", "subject": "d/eval.jsonl", "message": "at line 2"},
                    {"rule_id": "pii.url", "severity": "warn", "subject": "d/eval.jsonl", "message": "d/eval.jsonl:3"},
                ],
            },
        ],
    )
    assert collect_warnings(facts) == [
        "eval.sft.role_leak: role_leak_rate 1 (max 0.34)",
        "validate_sft: data.min_rows: z",
        "pii_scan_sft: pii.person in d/train.jsonl: at line 7",
        "pii_scan_sft: pii.person in d/eval.jsonl: at line 2",
        "pii_scan_sft: pii.url: d/eval.jsonl:3",
    ]
    (notice,) = collect_notices(facts)
    assert "not evidence of the model's quality" in notice and "builtin:tiny" in notice
    verdict = decide_verdict(facts)
    assert verdict.warnings == collect_warnings(facts) and verdict.to_json()["notices"] == [notice]
    assert collect_notices(_facts("/models/Qwen2.5-0.5B-Instruct", [], [])) == []


def test_a_promotable_verdict_with_warnings_says_so():
    from governance.report.verdict import Check, Verdict

    ok = [Check("a", "A", "pass", "")]
    assert Verdict(True, ok).headline == "May be promoted: every check the policy requires passed."
    assert Verdict(True, ok, warnings=["w1", "w2"]).headline == (
        "May be promoted with 2 warning(s): every check the policy requires passed; read the warnings first."
    )


LOOPS = MetricRule(
    id="eval.grpo.degenerate_repetition", severity="deny", metric="repetition_rate_delta_vs_parent", max=0.2,
    rationale="r", test="mcnemar", on_insufficient="warn",
)  # fmt: skip


def test_a_rule_against_a_rise_is_measurable_at_the_floor_and_not_at_the_ceiling():
    """0 vs 0 looping completions is a result (a rise would show); 1 vs 1 cannot show a rise."""
    none = {"repetition_rate": 0.0, "parent_repetition_rate": 0.0, "repetition_rate_delta_vs_parent": 0.0}
    quiet = {"repetition_rate_delta_vs_parent": paired([0] * 30, [0] * 30)}
    violations, (result,) = check_metrics_at_95([LOOPS], none, "m", evidence=quiet)
    assert violations == [] and result["status"] == "pass"
    rose = {"repetition_rate": 0.5, "parent_repetition_rate": 0.0, "repetition_rate_delta_vs_parent": 0.5}
    looping = {"repetition_rate_delta_vs_parent": paired([1] * 15 + [0] * 15, [0] * 30)}
    (violation,), _ = check_metrics_at_95([LOOPS], rose, "m", evidence=looping)
    # 15 discordant pairs: judged on the exact interval, which does not yet clear 0.2
    assert violation.message == (
        "insufficient evidence: repetition_rate_delta_vs_parent 0.5 (95% CI 0.155..0.709, McNemar p=6.1e-05, "
        "n=30 pairs) against max 0.2; repetition_rate 0.5 vs parent 0; about 31 pairs would decide"
    )
    stuck = {"repetition_rate": 1.0, "parent_repetition_rate": 1.0, "repetition_rate_delta_vs_parent": 0.0}
    (violation,), (result,) = check_metrics_at_95([LOOPS], stuck, "artifacts/train_grpo")
    assert violation.message == (
        "repetition_rate_delta_vs_parent is not measurable: repetition_rate 1 and parent_repetition_rate 1 "
        "are both at the ceiling, so the difference cannot show a rise"
    )
    assert result["status"] == "not_measurable"
    # A rule against a drop stays not measurable at the floor, and an unbounded metric has no ceiling
    assert not_measurable("accuracy_delta_vs_parent", {"accuracy": 0.0, "parent_accuracy": 0.0}, DELTA) is not None
    score = {"reward_score": 1.0, "parent_reward_score": 1.0}
    assert not_measurable("reward_score_delta_vs_parent", score, LOOPS.model_copy(update={"metric": "x"})) is None


def test_a_lower_is_better_rate_stuck_at_one_against_production_is_not_measurable():
    rule = MetricRule(
        id="eval.rlhf.loops_vs_production", severity="deny", metric="repetition_rate", relative_to="production",
        max_regression=0.05, higher_is_better=False, rationale="r", test="wilson", on_insufficient="warn",
    )  # fmt: skip
    (violation,), _ = check_metrics_at_95([rule], {"repetition_rate": 1.0}, "m", production={"repetition_rate": 1.0})
    assert violation.message == (
        "repetition_rate is not measurable: repetition_rate 1 and production 1 are both at the ceiling, "
        "so no regression can show"
    )
    none = {"repetition_rate": shares([0] * 100, "prompts")}
    assert check_metrics_at_95([rule], {"repetition_rate": 0.0}, "m", {"repetition_rate": 0.1}, none)[0] == []


def test_the_reward_models_pinned_weights_are_not_an_unapproved_objective():
    """RLHF's lineage holds the recipe (approved) and the weights hash (pinned): only the recipe needs approval."""
    from governance.report.verdict import _objectives_check

    facts = _facts("builtin:tiny", [], [])
    recipe = {"name": "reward_model_recipe", "sha256": "b" * 64, "approval": {"approved_by": "erin"}, "pinned": False}
    weights = {"name": "reward_model", "sha256": "c" * 64, "approval": None, "pinned": True}
    facts.objectives = {"functions": [recipe, weights], "source_available": True}
    check = _objectives_check(facts)
    assert (check.status, check.detail) == (
        "pass",
        "1 reward function hash(es) approved; reward_model weights pinned by hash (not an objective)",
    )
    facts.objectives["functions"] = [{**recipe, "approval": None}, weights]
    check = _objectives_check(facts)
    assert (check.status, check.detail) == ("fail", "not approved: reward_model_recipe (bbbbbbbbbbbb…)")


def test_only_the_recorded_reward_model_weights_are_pinned_not_a_function_named_like_them():
    """A reward function called ``reward_model`` whose hash is not the recorded weights still needs approval."""
    from types import SimpleNamespace

    from governance.report.objectives_facts import objectives_facts
    from governance.report.verdict import _objectives_check

    audit = {"objective_approvals": {"b" * 64: {"approved_by": "erin"}}, "objectives_available": True}
    rlhf = {
        "reward_functions": {"reward_model_recipe": "b" * 64, "reward_model": "c" * 64},
        "reward_model": {"dir": "artifacts/train_rm", "model_sha256": "c" * 64},
    }
    facts = _facts("builtin:tiny", [], [])
    objectives_facts(facts, SimpleNamespace(tags={}), {}, rlhf, audit)
    assert _objectives_check(facts).status == "pass"
    impostor = {"reward_functions": {"reward_model_recipe": "b" * 64, "reward_model": "d" * 64}}
    objectives_facts(facts, SimpleNamespace(tags={}), {}, impostor, audit)
    check = _objectives_check(facts)
    assert (check.status, check.detail) == ("fail", "not approved: reward_model (dddddddddddd…)")
