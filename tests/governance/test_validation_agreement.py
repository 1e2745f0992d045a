"""Inter-rater agreement: Krippendorff's alpha (interval) and Cohen's kappa against textbook values."""

import itertools
import random

import pytest

from governance.validation import cohen_kappa, krippendorff_alpha_interval

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the reliability
# data matrix of 4 coders x 12 units with missing values (also Wikipedia's example).
# Published: nominal 0.743, ordinal 0.815, interval 0.849.
KRIPPENDORFF_2011_UNITS = [
    [1, 1, 1],
    [2, 2, 3, 2],
    [3, 3, 3, 3],
    [3, 3, 3, 3],
    [2, 2, 2, 2],
    [1, 2, 3, 4],
    [4, 4, 4, 4],
    [1, 1, 2, 1],
    [2, 2, 2, 2],
    [5, 5, 5],
    [1, 1],
    [3],  # a single rating is not pairable and must not count
]


def test_alpha_interval_matches_krippendorff_2011():
    assert krippendorff_alpha_interval(KRIPPENDORFF_2011_UNITS) == pytest.approx(0.849, abs=5e-4)


def _alpha_by_definition(units):
    """Alpha from the coincidence matrix, straight from the definition (no closed form)."""
    pairable = [u for u in units if len(u) >= 2]
    values = [v for u in pairable for v in u]
    n = len(values)
    observed = sum(
        (a - b) ** 2 / (len(u) - 1) for u in pairable for a, b in itertools.permutations(u, 2)
    ) / n
    expected = sum((a - b) ** 2 for a, b in itertools.permutations(values, 2)) / (n * (n - 1))
    return 1 - observed / expected


def test_alpha_closed_form_equals_coincidence_definition_on_random_data():
    rng = random.Random(7)
    for _ in range(20):
        units = [[rng.randint(1, 5) for _ in range(rng.randint(1, 4))] for _ in range(rng.randint(3, 15))]
        if sum(len(u) >= 2 for u in units) < 1:
            continue
        try:
            expected = _alpha_by_definition(units)
        except ZeroDivisionError:
            continue
        assert krippendorff_alpha_interval(units) == pytest.approx(expected)


def test_alpha_perfect_agreement_is_one_and_systematic_disagreement_is_negative():
    assert krippendorff_alpha_interval([[1, 1], [3, 3], [5, 5]]) == pytest.approx(1.0)
    assert krippendorff_alpha_interval([[1, 5], [5, 1]]) < 0


def test_alpha_undefined_without_pairable_units_or_variation():
    assert krippendorff_alpha_interval([[3], [4]]) is None
    assert krippendorff_alpha_interval([[2, 2], [2, 2]]) is None


def test_kappa_matches_textbook_example():
    # Wikipedia "Cohen's kappa": 50 grant proposals, yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> 0.4
    first = [True] * 20 + [True] * 5 + [False] * 10 + [False] * 15
    second = [True] * 20 + [False] * 5 + [True] * 10 + [False] * 15
    assert cohen_kappa(first, second) == pytest.approx(0.4)


def test_kappa_undefined_when_one_label_throughout():
    assert cohen_kappa([True, True, True], [True, True, True]) is None
    assert cohen_kappa([True], [False]) is None


def test_kappa_rejects_unaligned_sequences():
    with pytest.raises(ValueError, match="3 labels against 2"):
        cohen_kappa([True, False, True], [True, False])
