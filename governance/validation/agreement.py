"""Inter-rater agreement for reward data: Krippendorff's alpha (interval) and Cohen's kappa.

Preference annotators score the chosen and the rejected response of an item;
each of those scores is a *unit* judged by every annotator who rated the item,
and Krippendorff's alpha with the interval metric measures how far the scores
agree beyond chance. It tolerates any number of raters per unit and units with
a single rating (they are not pairable and drop out), which is what a sample of
doubly-annotated items looks like.

KTO annotators give a binary desirable/undesirable label; Cohen's kappa over
the first two ratings of each doubly-annotated item measures agreement beyond
chance. Rater identities vary across items (a pool of annotators), so the two
"raters" are the first and second rating slot, the usual pairwise reading of
kappa for pooled annotation.

Both return ``None`` when agreement is undefined: fewer than two pairable units,
or no variation at all (expected disagreement of zero), so a degenerate sample
is reported as "not measurable" instead of as perfect agreement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def krippendorff_alpha_interval(units: Sequence[Sequence[float]]) -> float | None:
    """Krippendorff's alpha with the interval metric (squared difference).

    ``units`` holds, per unit, the values the raters gave it (missing ratings
    simply absent). Units with fewer than two values are not pairable and are
    ignored, as in Krippendorff (2011), "Computing Krippendorff's
    Alpha-Reliability". Uses the closed form of the coincidence sums:
    ``sum_{i != j} (v_i - v_j)^2 = 2 (m * sum v^2 - (sum v)^2)`` for m values.
    """
    pairable = [[float(v) for v in unit] for unit in units if len(unit) >= 2]
    if not pairable:
        return None
    n = sum(len(unit) for unit in pairable)
    if n < 2:
        return None
    observed = 0.0
    total_sum = 0.0
    total_sq = 0.0
    for unit in pairable:
        m = len(unit)
        s = math.fsum(unit)
        sq = math.fsum(v * v for v in unit)
        observed += 2.0 * (m * sq - s * s) / (m - 1)
        total_sum += s
        total_sq += sq
    d_observed = observed / n
    d_expected = 2.0 * (n * total_sq - total_sum * total_sum) / (n * (n - 1))
    if d_expected <= 0.0:
        return None
    return 1.0 - d_observed / d_expected


def cohen_kappa(first: Sequence[object], second: Sequence[object]) -> float | None:
    """Cohen's kappa between two aligned sequences of categorical labels.

    Delegates to scikit-learn's ``cohen_kappa_score``; returns ``None`` when
    kappa is undefined (fewer than two items, or both raters used one and the
    same label throughout, so chance agreement is 1).
    """
    if len(first) != len(second):
        raise ValueError(f"cohen_kappa: {len(first)} labels against {len(second)}")
    if len(first) < 2:
        return None
    labels = set(first) | set(second)
    if len(labels) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score

    value = float(cohen_kappa_score(list(first), list(second)))
    return None if math.isnan(value) else value
