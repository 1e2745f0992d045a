import pytest

from governance.errors import ConfigError
from governance.evaluation import check_metrics, load_eval_policy
from governance.policy import load_policy_file
from governance.policy.eval import EvalPolicy, MetricRule


def test_yaml_error_names_file_and_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nmethods:\n  sft: [\n")
    with pytest.raises(ConfigError, match=r"p\.yaml:4: invalid YAML"):
        load_policy_file(path, EvalPolicy)


def test_unknown_key_is_a_typo(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("version: '1'\nmethod: {}\n")
    with pytest.raises(ConfigError, match=r"p\.yaml: method: unknown key \(did you mean methods\?\)"):
        load_policy_file(path, EvalPolicy)


def test_missing_threshold_fails_loudly(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("version: '1'\nmethods:\n  sft:\n    - {id: r, severity: deny, metric: m, rationale: x}\n")
    with pytest.raises(ConfigError, match="rule r: give min and/or max"):
        load_policy_file(path, EvalPolicy)


def test_negative_max_regression_is_refused(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: '1'\nmethods:\n  sft:\n    - {id: eval.sft.reg, severity: deny, metric: eval_loss, "
        "relative_to: production, max_regression: -0.05, higher_is_better: false, rationale: x}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_policy_file(path, EvalPolicy)
    assert str(err.value) == (
        f"{path}: methods.sft.0: Value error, rule eval.sft.reg: max_regression -0.05 is negative; it is the "
        "largest allowed worsening as a fraction of production (0.05 = 5% worse, 0 = no worse)"
    )


def test_shipped_eval_policy_parses():
    assert "sft" in load_eval_policy().methods


RULE = MetricRule(id="eval.sft.ppl", severity="deny", metric="perplexity_ratio_vs_base", max=1.0, rationale="r")
REGRESSION = MetricRule(
    id="eval.sft.reg",
    severity="deny",
    metric="eval_loss",
    relative_to="production",
    max_regression=0.05,
    higher_is_better=False,
    rationale="r",
)


def test_metric_within_threshold_passes():
    violations, results = check_metrics([RULE], {"perplexity_ratio_vs_base": 0.5}, "m")
    assert violations == [] and results[0]["status"] == "pass"


def test_metric_over_threshold_message():
    (violation,), _ = check_metrics([RULE], {"perplexity_ratio_vs_base": 1.25}, "artifacts/train_sft")
    assert violation.line() == "deny  eval.sft.ppl  artifacts/train_sft: perplexity_ratio_vs_base 1.25 (max 1)"


def test_missing_metric_is_a_violation():
    (violation,), _ = check_metrics([RULE], {}, "m")
    assert violation.message == "metric perplexity_ratio_vs_base was not computed"


def test_regression_against_production():
    (violation,), _ = check_metrics([REGRESSION], {"eval_loss": 1.2}, "m", production={"eval_loss": 1.0})
    assert violation.message == "eval_loss 1.2 is 20.0% worse than production 1 (max 5.0%)"
    assert check_metrics([REGRESSION], {"eval_loss": 1.02}, "m", production={"eval_loss": 1.0})[0] == []


def test_regression_without_production_is_not_applicable():
    violations, results = check_metrics([REGRESSION], {"eval_loss": 9.0}, "m", production=None)
    assert violations == [] and results[0]["status"] == "not_applicable"
