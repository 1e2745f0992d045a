"""The evaluation gate: metrics in, violations out, under ``policies/eval.yaml``.

Pure: the stage computes the metrics (and fetches the production version's
metrics, if any); this module only judges them. A denied evaluation does not
stop registration — the evidence matters — but the version is marked
``eval_failed`` and can never be approved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from governance.gates import DatasetRef, GateDecision, Violation, Waiver, decide
from governance.policy import load_policy_file
from governance.policy.eval import EvalPolicy, MetricRule

DEFAULT_POLICY = Path("policies/eval.yaml")


def load_eval_policy(path: str | Path = DEFAULT_POLICY) -> EvalPolicy:
    return load_policy_file(path, EvalPolicy)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


#: Suffix of a metric that compares the model with its parent on the same data (``accuracy_delta_vs_parent``).
PARENT_DELTA_SUFFIX = "_delta_vs_parent"


def is_rate(metric: str) -> bool:
    """A metric bounded by 0 and 1 by construction (a share of examples): ``*_rate``, ``*accuracy``, ``*compliance``."""
    return metric.endswith(("_rate", "accuracy", "compliance"))


def not_measurable(metric: str, metrics: Mapping[str, float], rule: MetricRule | None = None) -> str | None:
    """Why ``metric`` says nothing about the model under ``rule``, or None when it does.

    Undefined (NaN or infinite) is not measurable. So is a ``*_delta_vs_parent``
    whose two sides both sit at the bound the guarded worsening moves towards,
    since the difference could not show that worsening: a rule with ``min``
    guards a drop, and accuracy 0 vs 0 cannot drop; a rule with only ``max``
    guards a rise, and a rate at 1 vs 1 cannot rise. A rate at 0 vs 0 under
    a ``max`` rule *is* measurable: no looping completions in either model is a
    result, and a rise would have shown. Without a rule, both directions are
    assumed guarded (0 vs 0 is not measurable).
    """
    observed = metrics.get(metric)
    if isinstance(observed, float) and not math.isfinite(observed):
        return f"undefined ({observed}) on this evaluation data"
    if metric.endswith(PARENT_DELTA_SUFFIX):
        base = metric[: -len(PARENT_DELTA_SUFFIX)]
        guards_drop = rule is None or rule.min is not None
        return at_bound(
            base, metrics.get(base), metrics.get(f"parent_{base}"), f"parent_{base}",
            guards_drop=guards_drop, guards_rise=not guards_drop and rule.max is not None,
            consequence=("the difference cannot show a change", "the difference cannot show a rise"),
        )  # fmt: skip
    return None


def at_bound(
    metric: str, observed: Any, reference: Any, reference_name: str, *, guards_drop: bool, guards_rise: bool,
    consequence: tuple[str, str],
) -> str | None:
    """Why comparing ``observed`` with ``reference`` cannot show the worsening a rule guards, or None.

    Both at 0 when the rule guards a drop (nothing is below the floor); both at 1 for a rate
    when it guards a rise (nothing is above the ceiling). ``consequence`` ends the message for a
    floor and for a ceiling.
    """
    if guards_drop and observed == 0 and reference == 0:
        return f"{metric} 0 and {reference_name} 0 are both at the floor, so {consequence[0]}"
    if guards_rise and is_rate(metric) and observed == 1 and reference == 1:
        return f"{metric} 1 and {reference_name} 1 are both at the ceiling, so {consequence[1]}"
    return None


def _versus_parent(metric: str, metrics: Mapping[str, float]) -> str:
    """``; <base> X vs parent Y`` for a ``*_delta_vs_parent`` metric whose two sides were recorded, else ``""``.

    A difference alone hides whether 0.2 more compliance is 0 → 0.2 or 0.8 → 1: a reviewer reading
    the denial needs both values.
    """
    if not metric.endswith(PARENT_DELTA_SUFFIX):
        return ""
    base = metric[: -len(PARENT_DELTA_SUFFIX)]
    current, parent = metrics.get(base), metrics.get(f"parent_{base}")
    if current is None or parent is None:
        return ""
    return f"; {base} {_fmt(current)} vs parent {_fmt(parent)}"


def check_metrics(
    rules: Sequence[MetricRule],
    metrics: Mapping[str, float],
    subject: str,
    production: Mapping[str, float] | None = None,
) -> tuple[list[Violation], list[dict]]:
    """Judge metrics against rules; returns violations and one result row per rule."""
    violations: list[Violation] = []
    results: list[dict] = []
    for rule in rules:
        observed = metrics.get(rule.metric)
        row = {"rule_id": rule.id, "metric": rule.metric, "severity": rule.severity, "observed": observed}
        if observed is None:
            message = f"metric {rule.metric} was not computed"
            violations.append(Violation(rule_id=rule.id, severity=rule.severity, subject=subject, message=message))
            results.append({**row, "status": "missing", "threshold": None})
            continue
        unmeasurable = not_measurable(rule.metric, metrics, rule)
        if unmeasurable is not None:
            # A rule that cannot tell better from worse must not pass: the evidence is absent
            message = f"{rule.metric} is not measurable: {unmeasurable}"
            violations.append(Violation(rule_id=rule.id, severity=rule.severity, subject=subject, message=message))
            results.append({**row, "observed": None, "status": "not_measurable", "threshold": unmeasurable})
            continue
        if rule.relative_to == "production":
            reference = (production or {}).get(rule.metric)
            if reference is None:
                results.append({**row, "status": "not_applicable", "threshold": "no production version"})
                continue
            stuck = at_bound(
                rule.metric, observed, reference, "production",
                guards_drop=bool(rule.higher_is_better), guards_rise=not rule.higher_is_better,
                consequence=("no regression can show", "no regression can show"),
            )  # fmt: skip
            if stuck is not None:
                message = f"{rule.metric} is not measurable: {stuck}"
                violations.append(Violation(rule_id=rule.id, severity=rule.severity, subject=subject, message=message))
                results.append({**row, "observed": None, "status": "not_measurable", "threshold": stuck})
                continue
            sign = 1.0 if rule.higher_is_better else -1.0
            worsening = sign * (reference - observed) / max(abs(reference), 1e-12)
            threshold = f"≤{rule.max_regression:.1%} worse than production {_fmt(reference)}"
            ok = worsening <= rule.max_regression
            if not ok:
                message = (
                    f"{rule.metric} {_fmt(observed)} is {worsening:.1%} worse than production {_fmt(reference)} "
                    f"(max {rule.max_regression:.1%})"
                )
                violations.append(Violation(rule_id=rule.id, severity=rule.severity, subject=subject, message=message))
            results.append({**row, "status": "pass" if ok else "fail", "threshold": threshold, "reference": reference})
            continue
        problems = []
        if rule.min is not None and observed < rule.min:
            problems.append(f"min {_fmt(rule.min)}")
        if rule.max is not None and observed > rule.max:
            problems.append(f"max {_fmt(rule.max)}")
        bounds = " and ".join(
            b
            for b in (
                f"≥{_fmt(rule.min)}" if rule.min is not None else "",
                f"≤{_fmt(rule.max)}" if rule.max is not None else "",
            )
            if b
        )
        if problems:
            message = f"{rule.metric} {_fmt(observed)} ({', '.join(problems)}){_versus_parent(rule.metric, metrics)}"
            violations.append(Violation(rule_id=rule.id, severity=rule.severity, subject=subject, message=message))
        results.append({**row, "status": "fail" if problems else "pass", "threshold": bounds})
    return violations, results


def evaluate_gate(
    *,
    method: str,
    stage: str,
    metrics: Mapping[str, float],
    subject: str,
    datasets: Sequence[DatasetRef],
    policy_path: str | Path = DEFAULT_POLICY,
    production: Mapping[str, float] | None = None,
    waivers: Sequence[Waiver] = (),
    safety: Literal["policy", "reward_model"] | None = None,
) -> GateDecision:
    """Decide the evaluation gate for one method's metrics.

    ``safety`` adds the policy's ``safety`` group: ``"policy"`` its rules and
    its regression-vs-parent rules, ``"reward_model"`` (no parent) its rules only.
    """
    from governance.errors import ConfigError

    policy = load_eval_policy(policy_path)
    if method not in policy.methods:
        raise ConfigError(f"{policy_path}: methods.{method}: no evaluation rules for method {method!r}")
    rules = list(policy.methods[method])
    if safety is not None:
        if policy.safety is None:
            raise ConfigError(f"{policy_path}: safety: no safety rules, but {stage} evaluates safety; add the group")
        rules += policy.safety.for_method(method, with_parent=safety == "policy")
    violations, results = check_metrics(rules, metrics, subject, production)
    return decide(
        gate="eval",
        stage=stage,
        datasets=datasets,
        policy_path=policy_path,
        policy_version=policy.version,
        violations=violations,
        waivers=waivers,
        details={"method": method, "metrics": dict(metrics), "results": results, "production": dict(production or {})},
    )
