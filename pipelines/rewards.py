"""Verifiable reward functions for GRPO, referenced by name from params.yaml.

    train_grpo:
      reward_funcs: [correctness_reward, brevity_reward]

Each function follows TRL's reward-function contract — ``(prompts,
completions, **kwargs) -> list[float]``, one reward per completion, dataset
columns (here ``answer``) arriving as keyword lists — and accepts both
conversational completions (a list of message dicts, as TRL passes them for a
``prompt`` of messages) and plain strings.

A reward function *is* the training objective, so it is governed like one:
training records the SHA-256 of each function's source, and of what every
global name its code uses is bound to (a helper of this module: its source
too; :func:`governance.objectives.objective_text`), in the model's lineage, and
refuses to start unless ``policies/objectives.yaml`` approves that hash. The
stage runs the functions from this file's bytes read once
(:func:`governance.objectives.load_objective_module`): never a cached ``.pyc``,
never a file swapped after the hash. The functions are still kept
self-contained (text extraction, number parsing, targets inside the body), so
each approval reads as one function.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from governance.errors import ConfigError, DataError

RewardFunction = Callable[..., list[float]]


def completion_text(completion: Any) -> str:
    """The generated text of one completion: a string, or the assistant contents of a message list.

    Reward functions repeat this logic inside their own bodies (see the module
    docstring); this copy is for callers outside the reward computation.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, list) and all(isinstance(m, dict) for m in completion):
        return "".join(str(m.get("content") or "") for m in completion if m.get("role", "assistant") == "assistant")
    raise DataError(
        f"reward function input: completion is a {type(completion).__name__}; "
        "expected a string or a list of {role, content} messages"
    )


def correctness_reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1.0 when the completion's final answer equals the reference ``answer`` exactly, else 0.0.

    The final answer is the last ``Answer: <number>`` in the completion, or its
    last number when no such line exists; ``42``, ``42.0``, ``1,000`` and
    ``Answer: 42`` are read as numbers. A completion with no number scores 0.0.
    The dataset must carry an ``answer`` column; a reference that is not a
    number is a data error (the validation gate's ``data.answer_numeric`` rule
    should have stopped it).
    """

    def text(completion: Any) -> str:
        if isinstance(completion, str):
            return completion
        messages = [completion] if isinstance(completion, dict) else completion
        if isinstance(messages, list) and all(isinstance(m, dict) for m in messages):
            return "".join(str(m.get("content") or "") for m in messages if m.get("role", "assistant") == "assistant")
        raise DataError(f"correctness_reward: completion is a {type(completion).__name__}, not text or messages")

    def number(written: str) -> Decimal | None:
        try:
            value = Decimal(written.strip().replace(",", ""))
        except InvalidOperation:
            return None
        return value if value.is_finite() else None

    answers = kwargs.get("answer")
    if answers is None:
        raise ConfigError("correctness_reward: the dataset has no 'answer' column; it needs one reference per prompt")
    rewards = []
    for index, (completion, answer) in enumerate(zip(completions, answers, strict=True)):
        reference = number(str(answer))
        if reference is None:
            raise DataError(f"correctness_reward: record {index} of the batch: field answer is not a number")
        generated = text(completion)
        marked = re.findall(r"answer\s*[:=]\s*(-?\d[\d,]*(?:\.\d+)?)", generated, flags=re.IGNORECASE)
        numbers = marked or re.findall(r"-?\d[\d,]*(?:\.\d+)?", generated)
        predicted = number(numbers[-1]) if numbers else None
        rewards.append(1.0 if predicted is not None and predicted == reference else 0.0)
    return rewards


def format_reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1.0 when the completion ends with a line ``Answer: <number>``, else 0.0.

    Rewards the output contract the GRPO system prompt asks for, so answers can
    be checked mechanically; says nothing about whether the number is right.
    """

    def text(completion: Any) -> str:
        if isinstance(completion, str):
            return completion
        messages = [completion] if isinstance(completion, dict) else completion
        if isinstance(messages, list) and all(isinstance(m, dict) for m in messages):
            return "".join(str(m.get("content") or "") for m in messages if m.get("role", "assistant") == "assistant")
        raise DataError(f"format_reward: completion is a {type(completion).__name__}, not text or messages")

    final_line = re.compile(r"(?:^|\n)[ \t]*Answer:[ \t]*-?\d[\d,]*(?:\.\d+)?$")
    return [1.0 if final_line.search(text(c).strip()) else 0.0 for c in completions]


def brevity_reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """Length shaping after TRL's GRPO tutorial, one-sided and bounded to [-1, 0].

    The tutorial rewards closeness to 20 characters (``-|20 - len|``); the
    arithmetic prompts here ask for a line of reasoning and then ``Answer:
    <number>``, which the SFT data writes in 31-83 characters. So a completion
    up to 100 characters scores 0.0, and beyond that the reward falls linearly
    to -1.0 at 200 characters. Shorter is never rewarded (an empty reply earns
    nothing here), and the penalty can never outweigh a correct answer
    (``correctness_reward`` is worth 1.0): a counterweight to verbosity, the
    classic reward hack, not an objective of its own.
    """

    def text(completion: Any) -> str:
        if isinstance(completion, str):
            return completion
        messages = [completion] if isinstance(completion, dict) else completion
        if isinstance(messages, list) and all(isinstance(m, dict) for m in messages):
            return "".join(str(m.get("content") or "") for m in messages if m.get("role", "assistant") == "assistant")
        raise DataError(f"brevity_reward: completion is a {type(completion).__name__}, not text or messages")

    budget = 100
    return [-min(max(len(text(c).strip()) - budget, 0) / budget, 1.0) for c in completions]


#: The reward functions params.yaml may name, by their function name.
REWARD_FUNCTIONS: dict[str, RewardFunction] = {
    fn.__name__: fn for fn in (correctness_reward, format_reward, brevity_reward)
}


def resolve_reward_functions(names: Sequence[str], section: str) -> list[RewardFunction]:
    """The reward functions ``names`` refers to, in order; an unknown name is a ConfigError."""
    if not names:
        raise ConfigError(f"params.yaml: {section}.reward_funcs: give at least one of {', '.join(REWARD_FUNCTIONS)}")
    functions = []
    for name in names:
        if name not in REWARD_FUNCTIONS:
            raise ConfigError(
                f"params.yaml: {section}.reward_funcs: unknown reward function {name!r} "
                f"(known: {', '.join(REWARD_FUNCTIONS)}; add new ones to pipelines/rewards.py REWARD_FUNCTIONS)"
            )
        functions.append(REWARD_FUNCTIONS[name])
    if len(set(names)) != len(names):
        raise ConfigError(f"params.yaml: {section}.reward_funcs: {list(names)} names a function twice")
    return functions
