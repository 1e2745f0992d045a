"""Intervals, tests and sample sizes for the evaluation gate: per-item outcomes in, an estimate with its evidence out.

Pure, and every formula is a library's: Wilson intervals, score tests, McNemar's
test and power calculations from statsmodels; t-tests and the bootstrap from
scipy. A rule of ``policies/eval.yaml`` names its ``test``; the evaluate stage
records the per-item outcomes the test needs (:class:`Outcomes`,
:class:`Paired`, :class:`Groups`, :class:`Resampled`); :func:`estimate` turns
them into an :class:`Estimate` (n, the estimate, the interval at the policy's
confidence, the p-value and what it tests), and :func:`judge` compares the
interval with the rule's limit: ``fail`` when the whole interval lies beyond
it, ``pass`` when it lies within, and ``insufficient_evidence`` otherwise.

The tests, by what a rule measures:

* ``wilson`` — a share of items (refusals, empty completions, pairs ranked
  right) against an absolute limit: Wilson interval; p-value of the score test
  at the limit (the test the Wilson interval inverts, so p < 1 − confidence
  exactly when the interval excludes the limit).
* ``mcnemar`` — the change of a share against the parent on the same items:
  interval of the paired difference by the paired bootstrap; p-value of
  McNemar's test (exact binomial under 25 discordant pairs) that nothing changed.
  The bootstrap is optimistic on a handful of pairs, both ways. Under 25
  discordant pairs (where the test goes exact) the interval is widened to
  cover an exact one from the Clopper–Pearson bounds of the shares that rose
  and fell (Bonferroni over the two): with no pair changed the bootstrap's
  interval is 0..0 whatever n, yet 0 of 12 changed allows a rise of 0.31
  at 95%, so it cannot pass a limit of 0.1. And a verdict that claims a change
  also needs McNemar's test to find one (:func:`judge`).
* ``t`` — the mean of per-item values (reward margins, paired score
  differences): one-sample t interval and the t-test at the limit.
* ``welch`` — the difference of two independent means (desirable against
  undesirable completions): Welch's interval and test at the limit.
* ``bootstrap`` — any other statistic of per-item data (ratios of sums, AUC,
  correlation): percentile bootstrap interval; its p-value is the bootstrap's
  achieved significance level at the limit (the share of resampled statistics
  on the far side of the limit, doubled, counted as a Monte Carlo p-value so it
  is never 0), which the percentile interval inverts.

The bootstrap is seeded (:data:`BOOTSTRAP_SEED`): the same outcomes give the
same interval, so a verdict does not depend on the run that computed it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

TestName = Literal["wilson", "mcnemar", "t", "welch", "bootstrap"]
Verdict = Literal["pass", "fail", "insufficient_evidence"]

#: Resamples and seed of every bootstrap interval: fixed, so an interval is a function of the outcomes alone.
BOOTSTRAP_RESAMPLES = 9999
BOOTSTRAP_SEED = 20260
#: Discordant pairs below which McNemar's test is the exact binomial one (statsmodels' own advice: 25).
MCNEMAR_EXACT_BELOW = 25
#: Relative tolerance of :func:`judge`: an interval bound within floating-point noise of the limit sits on it.
_SLACK = 1e-9
#: Power at which :func:`items_to_decide` sizes the sample: a test at the policy's confidence finds the
#: present distance from the limit four times in five.
DECIDING_POWER = 0.8


@dataclass(frozen=True)
class Outcomes:
    """One value per item: 1/0 (or ½ for a tie) for a share, any number for a mean."""

    values: tuple[float, ...]
    unit: str = "items"


@dataclass(frozen=True)
class Paired:
    """The same items' outcomes (1/0) for the model and for its parent, in the same order."""

    model: tuple[float, ...]
    parent: tuple[float, ...]
    unit: str = "pairs"


@dataclass(frozen=True)
class Groups:
    """Two independent samples; the statistic is mean(first) − mean(second)."""

    first: tuple[float, ...]
    second: tuple[float, ...]
    unit: str = "items"


@dataclass(frozen=True)
class Resampled:
    """Per-item data and the statistic the metric is (``statistic(*samples) -> float``), for the bootstrap.

    ``paired``: the samples are columns of the same items (resampled together);
    otherwise each sample is resampled on its own (two groups).
    """

    samples: tuple[tuple[float, ...], ...]
    statistic: Callable[..., float]
    paired: bool
    unit: str = "items"

    @property
    def n(self) -> int:
        return len(self.samples[0]) if self.paired else sum(len(s) for s in self.samples)


Evidence = Outcomes | Paired | Groups | Resampled

#: The evidence each test reads.
EVIDENCE_FOR: dict[str, type] = {
    "wilson": Outcomes,
    "mcnemar": Paired,
    "t": Outcomes,
    "welch": Groups,
    "bootstrap": Resampled,
}


@dataclass(frozen=True)
class Estimate:
    """A metric with its evidence: n, the estimate, the interval, the p-value and the null it tests.

    ``spread`` is the per-item standard deviation the sample size is planned
    with (None where none can be had); ``baseline`` the parent's value for a
    paired test; ``groups`` the two sizes of a two-sample test.
    """

    test: str
    n: int
    unit: str
    estimate: float
    low: float
    high: float
    confidence: float
    p_value: float
    null: str
    spread: float | None = None
    baseline: float | None = None
    groups: tuple[int, int] | None = None

    def record(self) -> dict[str, object]:
        """The JSON form the decision and metrics.json keep (non-finite numbers as None)."""

        def num(value: float | None) -> float | None:
            return None if value is None or not math.isfinite(value) else round(float(value), 6)

        return {
            "test": self.test,
            "n": self.n,
            "unit": self.unit,
            "estimate": num(self.estimate),
            "ci": [num(self.low), num(self.high)],
            "confidence": self.confidence,
            "p_value": None if not math.isfinite(self.p_value) else float(f"{self.p_value:.4g}"),
            "null": self.null,
            **({"baseline": num(self.baseline)} if self.baseline is not None else {}),
        }


def estimate(test: str, evidence: Evidence, *, limit: float, confidence: float) -> Estimate:
    """The estimate, interval and p-value of ``evidence`` under ``test``, against ``limit``.

    Raises ``TypeError`` when the evidence is not the kind the test reads
    (:data:`EVIDENCE_FOR`); the gate turns that into a configuration error
    naming the rule.
    """
    expected = EVIDENCE_FOR.get(test)
    if expected is None or not isinstance(evidence, expected):
        raise TypeError(f"test {test} reads {getattr(expected, '__name__', '?')}, got {type(evidence).__name__}")
    if test == "wilson":
        return _wilson(evidence, limit, confidence)
    if test == "mcnemar":
        return _mcnemar(evidence, confidence)
    if test == "t":
        return _t(evidence, limit, confidence)
    if test == "welch":
        return _welch(evidence, limit, confidence)
    return _bootstrap(evidence, limit, confidence)


def judge(result: Estimate, *, minimum: float | None = None, maximum: float | None = None) -> Verdict:
    """``fail`` when the whole interval lies beyond the limit, ``pass`` when within, else ``insufficient_evidence``.

    A paired (``mcnemar``) verdict that claims the model changed — a failure
    beyond a limit on the far side of no change, or a pass that needs an
    improvement — stands only where McNemar's test finds a change at the same
    confidence: on a handful of pairs the bootstrap interval of the difference
    is narrower than the exact test allows (3 of 4 pairs flipped: interval
    0.25..1, exact p = 0.25), and then the verdict waits for more pairs.
    """
    low, high = result.low, result.high
    if not (math.isfinite(low) and math.isfinite(high)):
        return "insufficient_evidence"
    if maximum is not None:
        slack = _SLACK * max(1.0, abs(maximum))  # a bound a rounding error past the limit is at the limit
        verdict = "fail" if low > maximum + slack else "pass" if high <= maximum + slack else "insufficient_evidence"
        claims_change = (verdict == "fail" and maximum >= 0) or (verdict == "pass" and maximum < 0)
    elif minimum is not None:
        slack = _SLACK * max(1.0, abs(minimum))
        verdict = "fail" if high < minimum - slack else "pass" if low >= minimum - slack else "insufficient_evidence"
        claims_change = (verdict == "fail" and minimum <= 0) or (verdict == "pass" and minimum > 0)
    else:
        raise ValueError("judge needs a minimum or a maximum")
    if result.test == "mcnemar" and claims_change and not result.p_value < 1 - result.confidence:
        return "insufficient_evidence"
    return verdict


def items_to_decide(result: Estimate, limit: float) -> int | None:
    """About how many items would decide, were the estimate and its spread to hold (None: no number would).

    The sample size at which a two-sided test at the policy's confidence finds
    the estimate's distance from the limit with power :data:`DECIDING_POWER`
    (statsmodels' power solvers: the normal one for a share, whose spread is
    taken at the limit as the score test takes it; the one-sample t one for a
    paired change where no pair changed, its spread also taken at the limit; the two-sample t one for
    two groups, grown in their present proportion; the one-sample t one otherwise).
    Never below the present n + 1: the present n did not decide.
    """
    from statsmodels.stats.power import NormalIndPower, TTestIndPower, TTestPower
    from statsmodels.stats.proportion import std_prop

    distance = abs(result.estimate - limit)
    alpha = 1 - result.confidence
    if result.test == "wilson":
        spread = float(std_prop(limit, 1)) if 0 < limit < 1 else None
    elif result.test == "mcnemar" and result.spread == 0 and 0 < abs(limit) < 1:
        # No pair changed, so no spread to plan with: take the one a change of the limit's size would have
        # (that share of pairs flipped one way), as the Wilson case takes its spread at the limit
        spread = float(std_prop(abs(limit), 1))
    else:
        spread = result.spread
    if not distance or not spread or not math.isfinite(distance) or not math.isfinite(spread):
        return None
    effect = distance / spread
    try:
        if result.test == "wilson":
            needed = NormalIndPower().solve_power(effect_size=effect, alpha=alpha, power=DECIDING_POWER, ratio=0)
        elif result.groups:
            # Both groups grown in their present proportion: the total of the two
            ratio = result.groups[1] / result.groups[0]
            first = TTestIndPower().solve_power(effect_size=effect, alpha=alpha, power=DECIDING_POWER, ratio=ratio)
            needed = float(np.asarray(first).reshape(-1)[0]) * (1 + ratio)
        else:
            needed = TTestPower().solve_power(effect_size=effect, alpha=alpha, power=DECIDING_POWER)
    except (ValueError, RuntimeError):
        return None
    needed = float(np.asarray(needed).reshape(-1)[0])
    if not math.isfinite(needed):
        return None
    return max(math.ceil(needed), result.n + 1)


# --------------------------------------------------------------------------- the tests


def _wilson(evidence: Outcomes, limit: float, confidence: float) -> Estimate:
    from statsmodels.stats.proportion import proportion_confint, proportions_ztest

    values = np.asarray(evidence.values, dtype=float)
    n = len(values)
    if n == 0:
        return _empty("wilson", evidence.unit, confidence, f"the share is {limit:g}")
    count = float(values.sum())
    low, high = proportion_confint(count, n, alpha=1 - confidence, method="wilson")
    # At none or all of the items the interval ends exactly at 0 or 1; keep floating-point dust off it
    low, high = (0.0 if count == 0 else low), (1.0 if count == n else high)
    if 0 < limit < 1:
        # The score test: its variance at the limit, as the Wilson interval takes it
        _, p = proportions_ztest(count, n, value=limit, prop_var=limit)
    else:
        p = math.nan
    return Estimate("wilson", n, evidence.unit, count / n, float(low), float(high), confidence, float(p),
                    f"the share is {limit:g}")  # fmt: skip


def _mcnemar(evidence: Paired, confidence: float) -> Estimate:
    from scipy.stats import bootstrap
    from statsmodels.stats.contingency_tables import mcnemar
    from statsmodels.stats.proportion import proportion_confint

    model = np.asarray(evidence.model, dtype=float)
    parent = np.asarray(evidence.parent, dtype=float)
    if len(model) != len(parent):
        raise ValueError(f"paired outcomes of unequal length: {len(model)} and {len(parent)}")
    n = len(model)
    null = "no change against the parent"
    if n == 0:
        return _empty("mcnemar", evidence.unit, confidence, null)
    up = int(((model == 1) & (parent == 0)).sum())
    down = int(((model == 0) & (parent == 1)).sum())
    both = int(((model == 1) & (parent == 1)).sum())
    table = [[both, up], [down, n - both - up - down]]
    p = float(mcnemar(table, exact=up + down < MCNEMAR_EXACT_BELOW).pvalue) if up + down else 1.0
    differences = model - parent
    result = bootstrap(
        (model, parent),
        lambda m, q, axis: np.mean(m - q, axis=axis),
        paired=True,
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        n_resamples=BOOTSTRAP_RESAMPLES,
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if up + down < MCNEMAR_EXACT_BELOW:
        # The percentile bootstrap cannot be wider than the discordant pairs it resamples: none changed gives
        # 0..0 on 12 pairs as on 12,000. Where the test goes exact, so does the interval's floor: the
        # difference is share-up − share-down, each share bounded by Clopper–Pearson at alpha/2 (Bonferroni
        # over the two), so the interval covers the difference at no less than the policy's confidence.
        alpha = 1 - confidence
        up_low, up_high = proportion_confint(up, n, alpha=alpha / 2, method="beta")
        down_low, down_high = proportion_confint(down, n, alpha=alpha / 2, method="beta")
        low, high = min(low, float(up_low - down_high)), max(high, float(up_high - down_low))
    spread = float(np.std(differences, ddof=1)) if n > 1 else None
    return Estimate("mcnemar", n, evidence.unit, float(differences.mean()), low, high, confidence, p, null, spread,
                    baseline=float(parent.mean()))  # fmt: skip


def _t(evidence: Outcomes, limit: float, confidence: float) -> Estimate:
    from scipy.stats import ttest_1samp

    values = np.asarray(evidence.values, dtype=float)
    n = len(values)
    null = f"the mean is {limit:g}"
    if n == 0:
        return _empty("t", evidence.unit, confidence, null)
    mean = float(values.mean())
    if n < 2 or float(np.ptp(values)) == 0.0:
        # No spread to estimate (one item, or every item alike): the mean is all the data says
        return Estimate("t", n, evidence.unit, mean, math.nan, math.nan, confidence, math.nan, null, None)
    result = ttest_1samp(values, popmean=limit)
    interval = result.confidence_interval(confidence_level=confidence)
    return Estimate("t", n, evidence.unit, mean, float(interval.low), float(interval.high), confidence,
                    float(result.pvalue), null, float(np.std(values, ddof=1)))  # fmt: skip


def _welch(evidence: Groups, limit: float, confidence: float) -> Estimate:
    from scipy.stats import ttest_ind

    first = np.asarray(evidence.first, dtype=float)
    second = np.asarray(evidence.second, dtype=float)
    n = len(first) + len(second)
    null = f"the difference of means is {limit:g}"
    if len(first) < 2 or len(second) < 2:
        mean = float(first.mean() - second.mean()) if len(first) and len(second) else math.nan
        return Estimate("welch", n, evidence.unit, mean, math.nan, math.nan, confidence, math.nan, null, None)
    # Testing mean(first) − mean(second) = limit is testing mean(first − limit) − mean(second) = 0
    result = ttest_ind(first - limit, second, equal_var=False)
    interval = result.confidence_interval(confidence_level=confidence)
    pooled = float(np.std(np.concatenate([first - first.mean(), second - second.mean()]), ddof=2))
    return Estimate("welch", n, evidence.unit, float(first.mean() - second.mean()), float(interval.low) + limit,
                    float(interval.high) + limit, confidence, float(result.pvalue), null, pooled,
                    groups=(len(first), len(second)))  # fmt: skip


def _bootstrap(evidence: Resampled, limit: float, confidence: float) -> Estimate:
    from scipy.stats import bootstrap

    samples = tuple(np.asarray(s, dtype=float) for s in evidence.samples)
    n = evidence.n
    null = f"the statistic is {limit:g}"
    with np.errstate(all="ignore"):
        value = float(evidence.statistic(*samples))  # what the stage computed, whatever the sample's size
    if any(len(s) < 2 for s in samples):
        return Estimate("bootstrap", n, evidence.unit, value, math.nan, math.nan, confidence, math.nan, null, None)
    result = bootstrap(
        samples,
        lambda *s: evidence.statistic(*s),
        paired=evidence.paired,
        vectorized=False,
        confidence_level=confidence,
        method="percentile",
        n_resamples=BOOTSTRAP_RESAMPLES,
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    draws = np.asarray(result.bootstrap_distribution, dtype=float)
    draws = draws[np.isfinite(draws)]
    # Achieved significance level at the limit (the percentile interval excludes the limit when it is small),
    # counted as a Monte Carlo p-value: (draws on the far side + 1) / (draws + 1), so never 0 from finite draws
    if len(draws):
        far = min(int(np.sum(draws <= limit)), int(np.sum(draws >= limit)))
        p = min(1.0, 2 * (far + 1) / (len(draws) + 1))
    else:
        p = math.nan
    spread = float(result.standard_error) * math.sqrt(n) if math.isfinite(result.standard_error) else None
    return Estimate("bootstrap", n, evidence.unit, value, float(result.confidence_interval.low),
                    float(result.confidence_interval.high), confidence, p, null, spread)  # fmt: skip


def _empty(test: str, unit: str, confidence: float, null: str) -> Estimate:
    return Estimate(test, 0, unit, math.nan, math.nan, math.nan, confidence, math.nan, null, None)


# --------------------------------------------------------------------------- evidence builders


def shares(flags: Sequence[bool | float], unit: str = "items") -> Outcomes:
    """A share's per-item outcomes (True/1 counts, a tie may count ½)."""
    return Outcomes(tuple(float(f) for f in flags), unit)


def paired(model: Sequence[bool | float], parent: Sequence[bool | float], unit: str = "pairs") -> Paired:
    """The same items' 1/0 outcomes for the model and its parent."""
    if len(model) != len(parent):
        raise ValueError(f"paired outcomes of unequal length: {len(model)} and {len(parent)}")
    return Paired(tuple(float(f) for f in model), tuple(float(f) for f in parent), unit)


def ratio_of_sums(numerator: Sequence[float], denominator: Sequence[float], unit: str = "items") -> Resampled:
    """Σ numerator / Σ denominator over the same items (a token-weighted mean, a ratio of mean lengths)."""

    def statistic(x: np.ndarray, y: np.ndarray) -> float:
        total = float(np.sum(y))
        return float(np.sum(x)) / total if total else math.nan

    return Resampled((tuple(map(float, numerator)), tuple(map(float, denominator))), statistic, True, unit)
