"""The GRPO reward functions: TRL's contract, correct/incorrect/malformed answers, both completion shapes."""

from __future__ import annotations

import pytest

from governance.errors import ConfigError, DataError
from governance.objectives import objective_hashes
from pipelines.rewards import (
    REWARD_FUNCTIONS,
    brevity_reward,
    completion_text,
    correctness_reward,
    format_reward,
    resolve_reward_functions,
)


def conversational(text: str) -> list[dict[str, str]]:
    """A completion as TRL passes it for a conversational prompt."""
    return [{"role": "assistant", "content": text}]


@pytest.mark.parametrize("shape", [str, conversational], ids=["string", "conversational"])
@pytest.mark.parametrize(
    ("completion", "answer", "expected"),
    [
        ("Pages read: 17 × 4 = 68. Pages left: 345 - 68 = 277.\nAnswer: 277", "277", 1.0),
        ("Answer: 277", 277, 1.0),  # an integer reference, as a number column would arrive
        ("Answer: 277.0", "277", 1.0),  # the same number written differently
        ("The balance is 1,288 dollars.\nAnswer: 1,288", "1288", 1.0),
        ("It falls by 11: 20 - 11 = 9", "9", 1.0),  # no Answer line: the last number counts
        ("The temperature falls by 11 to 9.", "-9", 0.0),  # sign matters
        ("Answer: 276", "277", 0.0),
        ("Answer: 277\nAnswer: 12", "277", 0.0),  # the *last* stated answer counts, not any
        ("277 is close but Answer: 12", "277", 0.0),  # an Answer line beats a stray number
        ("I do not know.", "277", 0.0),  # malformed: no number at all
        ("", "277", 0.0),
    ],
)
def test_correctness_reward(shape, completion, answer, expected):
    assert correctness_reward([None], [shape(completion)], answer=[answer]) == [expected]


def test_correctness_reward_scores_a_batch_in_order():
    completions = [conversational("Answer: 9"), conversational("Answer: 8"), conversational("nothing")]
    assert correctness_reward([None] * 3, completions, answer=["9", "9", "9"]) == [1.0, 0.0, 0.0]


def test_correctness_reward_without_answer_column_is_a_config_error():
    with pytest.raises(ConfigError, match=r"correctness_reward: the dataset has no 'answer' column"):
        correctness_reward([None], ["Answer: 1"])


def test_correctness_reward_with_non_numeric_reference_names_the_record():
    with pytest.raises(DataError, match=r"correctness_reward: record 1 of the batch: field answer is not a number"):
        correctness_reward([None, None], ["Answer: 1", "Answer: 2"], answer=["1", "two"])


@pytest.mark.parametrize("shape", [str, conversational], ids=["string", "conversational"])
@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("48 dollars.\nAnswer: 48", 1.0),
        ("Answer: -3", 1.0),
        ("Answer: 48\n\n", 1.0),  # trailing whitespace is not content
        ("The answer is 48", 0.0),
        ("Answer: 48 dollars", 0.0),  # the last line must be only the number
        ("Answer: 48\nand some afterthought", 0.0),
        ("", 0.0),
    ],
)
def test_format_reward(shape, completion, expected):
    assert format_reward([None], [shape(completion)]) == [expected]


@pytest.mark.parametrize("shape", [str, conversational], ids=["string", "conversational"])
@pytest.mark.parametrize(
    ("length", "expected"),
    [(0, 0.0), (52, 0.0), (100, 0.0), (101, -0.01), (150, -0.5), (200, -1.0), (2000, -1.0)],
)
def test_brevity_reward_penalises_only_beyond_the_budget_and_never_below_minus_one(shape, length, expected):
    assert brevity_reward([None], [shape("x" * length)]) == [pytest.approx(expected)]


def test_brevity_reward_ignores_surrounding_whitespace():
    assert brevity_reward([None], ["\n" * 300 + "Answer: 4" + " " * 300]) == [0.0]


def test_conversational_completion_reads_only_assistant_content():
    completion = [{"role": "assistant", "content": "Answer: "}, {"role": "tool", "content": "99"}]
    assert completion_text(completion) == "Answer: "
    assert correctness_reward([None], [completion], answer=["99"]) == [0.0]


@pytest.mark.parametrize("function", list(REWARD_FUNCTIONS.values()), ids=list(REWARD_FUNCTIONS))
def test_a_completion_of_the_wrong_type_is_a_data_error_naming_the_function(function):
    with pytest.raises(DataError, match=rf"{function.__name__}: completion is a int, not text or messages"):
        function([None], [42], answer=["1"])


def test_resolve_reward_functions_by_name_in_order():
    assert resolve_reward_functions(["brevity_reward", "correctness_reward"], "train_grpo") == [
        brevity_reward,
        correctness_reward,
    ]


def test_unknown_reward_function_name_is_a_config_error_listing_the_known_ones():
    with pytest.raises(ConfigError) as err:
        resolve_reward_functions(["correctness_reward", "acurracy_reward"], "train_grpo")
    assert str(err.value) == (
        "params.yaml: train_grpo.reward_funcs: unknown reward function 'acurracy_reward' "
        "(known: correctness_reward, format_reward, brevity_reward; add new ones to pipelines/rewards.py "
        "REWARD_FUNCTIONS)"
    )


def test_a_reward_function_named_twice_is_a_config_error():
    with pytest.raises(ConfigError, match=r"names a function twice"):
        resolve_reward_functions(["brevity_reward", "brevity_reward"], "train_grpo")


def test_reward_functions_are_self_contained_so_their_source_hash_covers_their_behaviour():
    # Everything that decides a reward must be inside the hashed source: no module-level helper
    # or constant of pipelines.rewards may be read by a reward function.
    import pipelines.rewards as rewards

    module_names = {name for name in vars(rewards) if not name.startswith("__")}
    allowed = {"re", "Decimal", "InvalidOperation", "DataError", "ConfigError", "Any", "Sequence"}
    for name, function in REWARD_FUNCTIONS.items():
        used = set(function.__code__.co_names) | {
            n for const in function.__code__.co_consts if hasattr(const, "co_names") for n in const.co_names
        }
        assert (used & module_names) <= allowed, f"{name} reads {sorted((used & module_names) - allowed)}"
    hashes = objective_hashes(REWARD_FUNCTIONS.values())
    assert set(hashes) == set(REWARD_FUNCTIONS) and len(set(hashes.values())) == len(hashes)
