"""Annotation provenance for the reward datasets, and the agreement it implies.

Every preference/KTO record names its primary annotator (``ann-01``..``ann-08``)
and the labelling guideline version, and carries the primary rating. A sample
of records has a second rating from a different annotator, simulated as
mostly agreeing (same or ±1 score, same KTO label) with occasional real
disagreement, so the validation gate's agreement statistics land in a
realistic band (Krippendorff's alpha ~0.8, Cohen's kappa ~0.75).
"""

from __future__ import annotations

import random

ANNOTATORS = [f"ann-{i:02d}" for i in range(1, 9)]
#: Most items were labelled under the current guideline; an early batch under v2.0.
GUIDELINES = ["v2.1"] * 17 + ["v2.0"] * 3


def _clip(score: int) -> int:
    return max(1, min(5, score))


def _second_rater(rng: random.Random, first: str) -> str:
    return rng.choice([a for a in ANNOTATORS if a != first])


def preference_annotation(rng: random.Random, two_raters: bool) -> dict:
    """``annotator_id``, ``guideline_version`` and ``ratings`` (chosen_score > rejected_score for the primary)."""
    annotator = rng.choice(ANNOTATORS)
    chosen = rng.choices([5, 4, 3], weights=[50, 40, 10])[0]
    rejected = rng.choices([1, 2, 3], weights=[50, 38, 12])[0]
    if rejected >= chosen:
        rejected = chosen - 1
    ratings = [{"annotator_id": annotator, "chosen_score": chosen, "rejected_score": rejected}]
    if two_raters:
        # Mostly the same or one point apart; about one in seven a clear disagreement.
        def jitter() -> int:
            return rng.choices([0, 1, -1, 2, -2], weights=[52, 17, 17, 7, 7])[0]

        ratings.append({"annotator_id": _second_rater(rng, annotator), "chosen_score": _clip(chosen + jitter()),
                        "rejected_score": _clip(rejected + jitter())})
    return {"annotator_id": annotator, "guideline_version": rng.choice(GUIDELINES), "ratings": ratings}


def kto_annotation(rng: random.Random, label: bool, two_raters: bool) -> dict:
    """``annotator_id``, ``guideline_version`` and ``ratings`` (primary label = the record's label)."""
    annotator = rng.choice(ANNOTATORS)
    ratings = [{"annotator_id": annotator, "label": label}]
    if two_raters:
        agrees = rng.random() < 0.9
        ratings.append({"annotator_id": _second_rater(rng, annotator), "label": label if agrees else not label})
    return {"annotator_id": annotator, "guideline_version": rng.choice(GUIDELINES), "ratings": ratings}


def alpha_interval(units: list[list[float]]) -> float:
    """Krippendorff's alpha (interval metric) over units with two or more values."""
    pairable = [u for u in units if len(u) >= 2]
    n = sum(len(u) for u in pairable)
    observed = sum(sum((a - b) ** 2 for i, a in enumerate(u) for j, b in enumerate(u) if i != j) / (len(u) - 1)
                   for u in pairable) / n
    values = [v for u in pairable for v in u]
    expected = sum((a - b) ** 2 for i, a in enumerate(values) for j, b in enumerate(values) if i != j) / (n * (n - 1))
    return 1.0 - observed / expected


def kappa(first: list[bool], second: list[bool]) -> float:
    """Cohen's kappa between two aligned boolean sequences."""
    n = len(first)
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    p1, p2 = sum(first) / n, sum(second) / n
    expected = p1 * p2 + (1 - p1) * (1 - p2)
    return (observed - expected) / (1 - expected)
