"""The evaluation gate: metrics and their per-item outcomes in, violations out, under ``policies/eval.yaml``.

Pure: the stage computes the metrics and records the outcomes they were
computed from (and fetches the production version's metrics, if any); this
module only judges them. Each rule is judged by the interval its ``test``
gives at the policy's ``confidence`` (:mod:`governance.statistics`): it denies
only when the interval lies beyond the limit, passes when it lies within, and
otherwise finds *insufficient evidence*, which counts as the rule's
``on_insufficient`` and says how many items would decide. The evidence must
reproduce the metric it stands for, or the gate refuses to judge.

A denied evaluation does not stop registration — the evidence matters — but
the version is marked ``eval_failed`` and can never be approved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from governance import statistics
from governance.errors import ConfigError
from governance.gates import DatasetRef, GateDecision, Violation, Waiver, decide
from governance.policy import load_policy_file
from governance.policy.eval import EvalPolicy, MetricRule
from governance.statistics import Evidence

DEFAULT_POLICY = Path("policies/eval.yaml")
#: The evidence key of an evaluation's signed event that binds its ``generations.json`` bytes: the completions the
#: drift monitor takes as a version's baseline, believed only as that event signed them
GENERATIONS_EVIDENCE = "generations_sha256"


def load_eval_policy(path: str | Path = DEFAULT_POLICY) -> EvalPolicy:
    return load_policy_file(path, EvalPolicy)


def require_budgets(method: str, policy_path: str | Path, values: Mapping[str, int]) -> None:
    """Refuse an evaluation smaller than the reviewed eval policy's floor for ``method`` (``budgets``), before it
    reads anything: ``values`` are the evaluate stage's params (``generation_prompts``, ``max_new_tokens``,
    ``max_length``). Fewer prompts turn a rule's evidence into "insufficient" (a deny becomes a warning), and a
    shorter budget cuts off what a rule measures: an evaluation's size is the policy's, like its thresholds."""
    from governance.errors import PolicyViolation
    from governance.policy import load_reviewed_policy

    policy = load_reviewed_policy(policy_path, EvalPolicy, "eval policy")
    floors = policy.budgets.get(method)
    for key, floor in (floors.model_dump(exclude_none=True) if floors else {}).items():
        value = values.get(key)
        if value is not None and value < floor:
            raise PolicyViolation(
                f"params.yaml: evaluate_{method}.{key}: {value} is below the floor {policy_path} sets "
                f"(budgets.{method}.{key}: {floor}); an evaluation's size is the policy's, so that its rules decide "
                f"on the evidence they were written for: raise it to at least {floor}, or lower the floor in a "
                "reviewed change"
            )


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
    metric: str,
    observed: Any,
    reference: Any,
    reference_name: str,
    *,
    guards_drop: bool,
    guards_rise: bool,
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
    *,
    evidence: Mapping[str, Evidence],
    confidence: float,
) -> tuple[list[Violation], list[dict]]:
    """Judge metrics against rules by their intervals; returns violations and one result row per rule.

    ``evidence`` holds each gated metric's per-item outcomes (keyed by metric
    name), ``confidence`` the policy's level. A rule fails when the interval
    lies beyond its limit, passes when within, and otherwise finds insufficient
    evidence, counted as the rule's ``on_insufficient``. Every row records the
    test, n, the estimate, the interval, the p-value and what it counted as.
    """
    violations: list[Violation] = []
    results: list[dict] = []

    def violation(rule: MetricRule, severity: str, message: str) -> None:
        violations.append(Violation(rule_id=rule.id, severity=severity, subject=subject, message=message))

    for rule in rules:
        observed = metrics.get(rule.metric)
        row = {
            "rule_id": rule.id, "metric": rule.metric, "severity": rule.severity, "test": rule.test,
            "on_insufficient": rule.on_insufficient, "observed": observed,
        }  # fmt: skip
        if observed is None:
            message = f"metric {rule.metric} was not computed"
            violation(rule, rule.severity, message)
            results.append(
                {**row, "status": "missing", "outcome": rule.severity, "threshold": None, "message": message}
            )
            continue
        unmeasurable = not_measurable(rule.metric, metrics, rule)
        if unmeasurable is not None:
            # A rule that cannot tell better from worse must not pass: the evidence is absent
            message = f"{rule.metric} is not measurable: {unmeasurable}"
            violation(rule, rule.severity, message)
            results.append({**row, "observed": None, "status": "not_measurable", "outcome": rule.severity,
                            "threshold": unmeasurable, "message": message})  # fmt: skip
            continue
        minimum, maximum, reference = rule.min, rule.max, None
        if rule.relative_to == "production":
            reference = (production or {}).get(rule.metric)
            if reference is None:
                results.append({**row, "status": "not_applicable", "outcome": None,
                                "threshold": "no production version", "message": "no production version"})  # fmt: skip
                continue
            stuck = at_bound(
                rule.metric, observed, reference, "production",
                guards_drop=bool(rule.higher_is_better), guards_rise=not rule.higher_is_better,
                consequence=("no regression can show", "no regression can show"),
            )  # fmt: skip
            if stuck is not None:
                message = f"{rule.metric} is not measurable: {stuck}"
                violation(rule, rule.severity, message)
                results.append({**row, "observed": None, "status": "not_measurable", "outcome": rule.severity,
                                "threshold": stuck, "message": message, "reference": reference})  # fmt: skip
                continue
            allowance = float(rule.max_regression or 0.0) * abs(reference)
            if rule.higher_is_better:
                minimum = reference - allowance
            else:
                maximum = reference + allowance
        limit = float(minimum if minimum is not None else maximum)
        bound = _bound_text(rule, limit, reference)
        threshold = f"{'≥' if minimum is not None else '≤'}{_fmt(limit)}" + (
            f" (≤{rule.max_regression:.1%} worse than production {_fmt(reference)})" if reference is not None else ""
        )
        item = evidence.get(rule.metric)
        if item is None:
            message = (
                f"{rule.metric} {_fmt(observed)}: no per-item outcomes were recorded, so its {rule.test} interval "
                f"cannot be computed against {bound}"
            )
            violation(rule, rule.severity, message)
            results.append({**row, "status": "missing", "outcome": rule.severity, "threshold": threshold,
                            "message": message, **_reference(reference)})  # fmt: skip
            continue
        try:
            found = statistics.estimate(rule.test, item, limit=limit, confidence=confidence)
        except TypeError as exc:
            raise ConfigError(f"rule {rule.id}: {rule.metric}: {exc}; the policy's test and the stage's evidence "
                              "must agree") from None  # fmt: skip
        if not _same(found.estimate, observed):
            raise ConfigError(
                f"rule {rule.id}: the per-item outcomes of {rule.metric} give {_fmt(found.estimate)} but the stage "
                f"recorded {_fmt(observed)}; the evidence must be the data the metric was computed from"
            )
        verdict = statistics.judge(found, minimum=minimum, maximum=maximum)
        needed = statistics.items_to_decide(found, limit) if verdict == "insufficient_evidence" else None
        message = _message(rule.metric, found, verdict, bound, needed, _versus_parent(rule.metric, metrics))
        if verdict == "fail":
            outcome = rule.severity
        elif verdict == "pass":
            outcome = "pass"
        else:
            outcome = rule.on_insufficient
        if outcome != "pass":
            violation(rule, outcome, message)
        results.append(
            {
                **row,
                "observed": found.estimate,
                "status": verdict,
                "outcome": outcome,
                "threshold": threshold,
                "message": message,
                "evidence": {**found.record(), "limit": limit, "items_to_decide": needed},
                **_reference(reference),
            }
        )
    return violations, results


def _reference(reference: float | None) -> dict[str, float]:
    return {} if reference is None else {"reference": reference}


def _same(a: float, b: float) -> bool:
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def _bound_text(rule: MetricRule, limit: float, reference: float | None) -> str:
    """``max 0.15``, or ``min 0.57 (5.0% worse than production 0.6)`` for a regression rule."""
    word = "min" if rule.min is not None or (reference is not None and rule.higher_is_better) else "max"
    if reference is None:
        return f"{word} {_fmt(limit)}"
    return f"{word} {_fmt(limit)} ({rule.max_regression:.1%} worse than production {_fmt(reference)})"


def _number(value: float) -> str:
    return f"{value:.3g}"


def p_text(p: float) -> str:
    """A p-value in two significant figures; one that underflowed to 0 as ``<1e-300``, never a bare 0."""
    return "<1e-300" if p == 0 else f"{p:.2g}"


def evidence_text(found: statistics.Estimate) -> str:
    """``95% CI -0.04..0.21, McNemar p=0.41, n=24 pairs``: the interval, the test's p-value and n."""
    label = {"wilson": "Wilson CI", "bootstrap": "bootstrap CI"}.get(found.test, "CI")
    if math.isfinite(found.low) and math.isfinite(found.high):
        interval = f"{found.confidence:.0%} {label} {_number(found.low)}..{_number(found.high)}"
    else:
        interval = f"no {found.confidence:.0%} interval: too few items or no spread among them"
    test = {"mcnemar": "McNemar p", "t": "t-test p", "welch": "Welch p"}.get(found.test, "p")
    p = f"{test}={p_text(found.p_value)}" if math.isfinite(found.p_value) else f"{test} undefined"
    return f"{interval}, {p}, n={found.n} {found.unit}"


def _message(metric: str, found: statistics.Estimate, verdict: str, bound: str, needed: int | None, versus: str) -> str:
    """The rule's finding: beyond, within, or not decided, with the evidence, the parent's value (``versus``) and,
    undecided, the n that would decide."""
    head = f"{metric} {_fmt(found.estimate)} ({evidence_text(found)})"
    level = f"{found.confidence:.0%} confidence"
    if verdict == "fail":
        side = "above" if bound.startswith("max") else "below"
        return f"{head}: {side} {bound} at {level}{versus}"
    if verdict == "pass":
        return f"{head}: within {bound} at {level}{versus}"
    if needed is not None:
        decide = f"about {needed} {found.unit} would decide"
    elif math.isfinite(found.estimate) and found.spread is not None and found.test != "wilson":
        decide = "no number of items decides while the estimate sits at the limit"
    else:
        decide = "no sample size can be planned from these outcomes"
    return f"insufficient evidence: {head} against {bound}{versus}; {decide}"


def metrics_record(metrics: Mapping[str, float], results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What ``metrics.json`` holds: the metrics, and under ``rules`` each rule's n, interval, p-value and verdict.

    Beside them the baseline the statistic was judged against (``baseline``: the parent's value on the same
    items, for a paired test; ``reference``: production's recorded value, for a regression rule) and, undecided,
    ``items_to_decide``: a statistic beyond its bound that still counts as pass shows why, in the DVC metric too.
    """
    rules = {}
    for row in results:
        found = row.get("evidence") or {}
        ci = found.get("ci") or [None, None]
        rules[row["rule_id"]] = {
            "verdict": row.get("status"),
            "counts_as": row.get("outcome"),
            "test": row.get("test"),
            "n": found.get("n"),
            "unit": found.get("unit"),
            "estimate": found.get("estimate"),
            "ci_low": ci[0],
            "ci_high": ci[1],
            "confidence": found.get("confidence"),
            "p_value": found.get("p_value"),
            "limit": found.get("limit"),
            "baseline": found.get("baseline"),
            "reference": row.get("reference"),
            "items_to_decide": found.get("items_to_decide"),
        }
    return {**dict(metrics), "rules": rules}


def evaluate_gate(
    *,
    method: str,
    stage: str,
    metrics: Mapping[str, float],
    evidence: Mapping[str, Evidence],
    subject: str,
    datasets: Sequence[DatasetRef],
    policy_path: str | Path = DEFAULT_POLICY,
    production: Mapping[str, float] | None = None,
    waivers: Sequence[Waiver] = (),
    safety: Literal["policy", "reward_model"] | None = None,
    instruments: Sequence[DatasetRef] = (),
) -> GateDecision:
    """Decide the evaluation gate for one method's metrics, each rule on the interval of its evidence.

    ``evidence`` holds the per-item outcomes of every gated metric
    (:mod:`governance.statistics`). ``safety`` adds the policy's ``safety`` group: ``"policy"`` its rules and
    its regression-vs-parent rules, ``"reward_model"`` (no parent) its rules only. ``instruments`` are the files the
    evidence was read with besides the policy (the safety judge and the sets' sources file, as the safety evaluation
    read them): the decision names them, and publishing it refuses any that is not the reviewed version.
    """
    policy = load_eval_policy(policy_path)
    if method not in policy.methods:
        raise ConfigError(f"{policy_path}: methods.{method}: no evaluation rules for method {method!r}")
    rules = list(policy.methods[method])
    if safety is not None:
        if policy.safety is None:
            raise ConfigError(f"{policy_path}: safety: no safety rules, but {stage} evaluates safety; add the group")
        rules += policy.safety.for_method(method, with_parent=safety == "policy")
    violations, results = check_metrics(
        rules, metrics, subject, production, evidence=evidence, confidence=policy.confidence
    )
    return decide(
        gate="eval",
        stage=stage,
        datasets=datasets,
        policy_path=policy_path,
        policy_version=policy.version,
        violations=violations,
        waivers=waivers,
        details={
            "method": method,
            "confidence": policy.confidence,
            "metrics": dict(metrics),
            "results": results,
            "production": dict(production or {}),
        },
        instruments=instruments,
        policy_sha256=policy.sha256,  # the policy bytes the rules came from: publishing binds these, not a later read
    )
