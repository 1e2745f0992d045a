import pytest

from governance.errors import ConfigError
from governance.evaluation import check_metrics, load_eval_policy
from governance.policy import load_policy_file
from governance.policy.eval import EvalPolicy, MetricRule
from governance.statistics import ratio_of_sums


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
    path.write_text(
        "version: '1'\nconfidence: 0.95\nmethods:\n  sft:\n    - {id: r, severity: deny, metric: m, test: t, "
        "on_insufficient: warn, rationale: x}\n"
    )
    with pytest.raises(ConfigError, match="rule r: give min or max"):
        load_policy_file(path, EvalPolicy)


def test_negative_max_regression_is_refused(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: '1'\nconfidence: 0.95\nmethods:\n  sft:\n    - {id: eval.sft.reg, severity: deny, metric: eval_loss, "
        "test: bootstrap, on_insufficient: warn, relative_to: production, max_regression: -0.05, "
        "higher_is_better: false, rationale: x}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_policy_file(path, EvalPolicy)
    assert str(err.value) == (
        f"{path}: methods.sft.0: Value error, rule eval.sft.reg: max_regression -0.05 is negative; it is the "
        "largest allowed worsening as a fraction of production (0.05 = 5% worse, 0 = no worse)"
    )


def test_shipped_eval_policy_parses():
    assert "sft" in load_eval_policy().methods


RULE = MetricRule(
    id="eval.sft.ppl", severity="deny", metric="kl_to_parent", max=1.0, rationale="r", test="bootstrap",
    on_insufficient="warn",
)  # fmt: skip
REGRESSION = MetricRule(
    id="eval.sft.reg",
    severity="deny",
    metric="eval_loss",
    test="bootstrap",
    on_insufficient="warn",
    relative_to="production",
    max_regression=0.05,
    higher_is_better=False,
    rationale="r",
)


def _per_token(mean: float, metric: str = "kl_to_parent") -> dict:
    """Forty items of 10 tokens whose per-token mean is ``mean``, a little spread among them."""
    sums = [10 * mean * (1 + 0.01 * (i % 5 - 2)) for i in range(40)]
    return {metric: ratio_of_sums(sums, [10] * 40, "items")}


def _check(rules, metrics, subject, production=None):
    evidence = {k: v for name, value in metrics.items() for k, v in _per_token(value, name).items()}
    return check_metrics(rules, metrics, subject, production, evidence=evidence, confidence=0.95)


def test_metric_within_threshold_passes():
    violations, results = _check([RULE], {"kl_to_parent": 0.5}, "m")
    assert violations == [] and results[0]["status"] == "pass"


def test_metric_over_threshold_message():
    (violation,), _ = _check([RULE], {"kl_to_parent": 1.25}, "artifacts/train_sft")
    assert violation.line() == (
        "deny  eval.sft.ppl  artifacts/train_sft: kl_to_parent 1.25 (95% bootstrap CI 1.24..1.26, p=0.0002, "
        "n=40 items): above max 1 at 95% confidence"
    )


def test_missing_metric_is_a_violation():
    (violation,), _ = _check([RULE], {}, "m")
    assert violation.message == "metric kl_to_parent was not computed"


def test_regression_against_production():
    (violation,), _ = _check([REGRESSION], {"eval_loss": 1.2}, "m", production={"eval_loss": 1.0})
    assert violation.message == (
        "eval_loss 1.2 (95% bootstrap CI 1.19..1.21, p=0.0002, n=40 items): above max 1.05 (5.0% worse than "
        "production 1) at 95% confidence"
    )
    assert _check([REGRESSION], {"eval_loss": 1.02}, "m", production={"eval_loss": 1.0})[0] == []


def test_regression_without_production_is_not_applicable():
    violations, results = _check([REGRESSION], {"eval_loss": 9.0}, "m", production=None)
    assert violations == [] and results[0]["status"] == "not_applicable"
