"""The record shapes of the shipped files, in TRL's conversational formats.

Each ``build_*`` function returns a list of dicts ready to write as JSONL.
Prompts are unique within a file (normalised user text), because the
validation gate counts repeated records and prompts shared between the train
and eval splits.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial

from raw_data import arithmetic, general, plant, support
from raw_data.annotation import kto_annotation, preference_annotation

MAX_SFT_CHARS = 700
GRPO_SYSTEM = "Solve the problem. Reply with the reasoning, then the final answer as: Answer: <number>"
MATH_SYSTEMS = ["You are a careful maths tutor. Show your working briefly.",
                "You solve arithmetic problems step by step and state the final answer clearly."]
GENERAL_SYSTEMS = ["You are a concise, friendly assistant.", "You are a helpful assistant. Keep answers short.",
                   "Answer in plain language that anyone can follow."]


def _key(text: str) -> str:
    return " ".join(text.casefold().split())


def _unique(make: Callable[[], tuple], seen: set[str], key_of: Callable[[tuple], str]) -> tuple:
    """Call ``make`` until its key is new; 10,000 misses means the slot lists are exhausted."""
    for _ in range(10_000):
        item = make()
        key = _key(key_of(item))
        if key not in seen:
            seen.add(key)
            return item
    raise RuntimeError("slot lists exhausted: cannot draw a new unique prompt")


def _support_turns(rng: random.Random) -> tuple[str, list[dict[str, str]], str]:
    task = rng.choice(support.TASKS)
    company = support.company_for(task, rng)
    turns = [{"role": "user", "content": support.question(task, rng, company)},
             {"role": "assistant", "content": support.good_answer(task, rng, company)}]
    if rng.random() < 0.3:
        ask, answer = support.followup(task, rng, company)
        turns += [{"role": "user", "content": ask}, {"role": "assistant", "content": answer}]
    system = support.system_prompt(task, rng, company)
    return "synthetic-support-v1", turns, system


def _math_turns(rng: random.Random) -> tuple[str, list[dict[str, str]], str]:
    p = arithmetic.problem(rng, word_share=0.6)
    turns = [{"role": "user", "content": p.question},
             {"role": "assistant", "content": arithmetic.worked_answer(p, rng)}]
    return "synthetic-math-v1", turns, rng.choice(MATH_SYSTEMS)


def _general_turns(rng: random.Random) -> tuple[str, list[dict[str, str]], str]:
    pairs = []
    for _ in range(2 if rng.random() < 0.2 else 1):
        if rng.random() < 0.5:
            pairs.append(general.define(rng.choice(sorted(general.DEFINITIONS)), rng))
        else:
            pairs.append(general.howto(rng.choice(sorted(general.HOWTOS)), rng))
    turns = [m for q, a in pairs for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]
    return "synthetic-general-v1", turns, rng.choice(GENERAL_SYSTEMS)


def build_sft(rng: random.Random, n: int) -> list[dict]:
    """``n`` conversations (support ~50%, math ~25%, general ~25%), ~30% with a system prompt."""
    seen: set[str] = set()
    planted = plant.planted_indices("sft")  # PII is planted into support exchanges, where it fits
    records = []
    while len(records) < n:
        maker = rng.choices([_support_turns, _math_turns, _general_turns], weights=[50, 25, 25])[0]
        if len(records) in planted:
            maker = _support_turns
        source, turns, system = maker(rng)
        messages = ([{"role": "system", "content": system}] if rng.random() < 0.3 else []) + turns
        if sum(len(m["content"]) for m in messages) > MAX_SFT_CHARS:
            continue
        key = _key(" ".join(m["content"] for m in turns if m["role"] == "user"))
        if key in seen:
            continue
        seen.add(key)
        records.append({"id": f"sft-{len(records) + 1:04d}", "messages": messages, "source": source,
                        "license": "cc-by-4.0"})
    return records


def _judged_item(rng: random.Random, only_support: bool = False) -> tuple[str, str, str]:
    """A prompt with a good and a bad response, from support (50%), math (30%) or general (20%)."""
    kind = "support" if only_support else rng.choices(["support", "math", "general"], weights=[50, 30, 20])[0]
    if kind == "support":
        task = rng.choice(support.TASKS)
        company = support.company_for(task, rng)
        return (support.question(task, rng, company), support.good_answer(task, rng, company),
                support.bad_answer(task, rng, company)[0])
    if kind == "math":
        p = arithmetic.problem(rng)
        return p.question, arithmetic.worked_answer(p, rng), arithmetic.wrong_answer(p, rng)[0]
    if rng.random() < 0.5:
        term = rng.choice(sorted(general.DEFINITIONS))
        q, a = general.define(term, rng)
    else:
        task = rng.choice(sorted(general.HOWTOS))
        q, a = general.howto(task, rng)
        term = f"how to {task}"
    return q, a, general.bad_general(term, rng)


def build_preference(rng: random.Random, n: int, doubly_rated: int) -> list[dict]:
    """``n`` preference pairs; ``doubly_rated`` of them carry a second annotator's scores."""
    seen: set[str] = set()
    second = set(rng.sample(range(n), doubly_rated))
    planted = plant.planted_indices("pref")
    records = []
    for index in range(n):
        prompt, good, bad = _unique(partial(_judged_item, rng, index in planted), seen, lambda item: item[0])
        record = {"id": f"pref-{index + 1:04d}", "prompt": [{"role": "user", "content": prompt}],
                  "chosen": [{"role": "assistant", "content": good}],
                  "rejected": [{"role": "assistant", "content": bad}]}
        record.update(preference_annotation(rng, two_raters=index in second))
        records.append(record)
    return records


def build_kto(rng: random.Random, n: int, doubly_rated: int, desirable_share: float) -> list[dict]:
    """``n`` unpaired completions, about ``desirable_share`` labelled desirable."""
    seen: set[str] = set()
    second = set(rng.sample(range(n), doubly_rated))
    planted = plant.planted_indices("kto")
    records = []
    for index in range(n):
        prompt, good, bad = _unique(partial(_judged_item, rng, index in planted), seen, lambda item: item[0])
        label = rng.random() < desirable_share
        record = {"id": f"kto-{index + 1:04d}", "prompt": [{"role": "user", "content": prompt}],
                  "completion": [{"role": "assistant", "content": good if label else bad}], "label": label}
        record.update(kto_annotation(rng, label, two_raters=index in second))
        records.append(record)
    return records


def build_grpo(rng: random.Random, n: int, seen: set[str],
               make: Callable[[random.Random], arithmetic.Problem] = arithmetic.one_step) -> list[dict]:
    """``n`` distinct GRPO prompts (``make``: counting problems, or small facts) with the reference answer as a string.

    ``seen`` collects the normalised questions; :func:`build_grpo_demos` draws
    from the same space and shares it, so no GRPO prompt (held-out ones included)
    appears among the SFT demonstrations.
    """
    records = []
    for index in range(n):
        (p,) = _unique(lambda: (make(rng),), seen, lambda item: item[0].question)
        records.append({"id": f"grpo-{index + 1:04d}", "prompt": [{"role": "system", "content": GRPO_SYSTEM},
                        {"role": "user", "content": p.question}], "answer": str(p.answer)})
    return records


def build_grpo_demos(rng: random.Random, n: int, first_index: int, seen: set[str],
                     make: Callable[[random.Random], arithmetic.Problem] = arithmetic.one_step) -> list[dict]:
    """``n`` SFT conversations in the GRPO format (its system prompt, a ``make`` problem, ``Answer:`` line).

    They give the SFT parent the output contract GRPO's rewards check, so its
    sampled completions are sometimes right and GRPO has a signal to sharpen.
    Ids continue from ``first_index``; questions avoid every one in ``seen``.
    """
    records = []
    for index in range(first_index, first_index + n):
        (p,) = _unique(lambda: (make(rng),), seen, lambda item: item[0].question)
        messages = [{"role": "system", "content": GRPO_SYSTEM}, {"role": "user", "content": p.question},
                    {"role": "assistant", "content": arithmetic.answer_line(p)}]
        records.append({"id": f"sft-{index + 1:04d}", "messages": messages, "source": "synthetic-math-v1",
                        "license": "cc-by-4.0"})
    return records


def _customer_question(rng: random.Random) -> str:
    task = rng.choice(support.TASKS)
    return support.question(task, rng, support.company_for(task, rng))


def build_rlhf_prompts(rng: random.Random, n: int) -> list[dict]:
    """``n`` distinct open-ended prompts for online RLHF."""
    nouns = sorted({task.noun for task in support.TASKS})
    seen: set[str] = set()
    planted = plant.planted_indices("rlhf")
    records = []
    for index in range(n):
        if index in planted:  # the planted prompts quote a customer question (see plant.plant)
            (text,) = _unique(lambda: (_customer_question(rng),), seen, lambda item: item[0])
        else:
            (text,) = _unique(lambda: (general.rlhf_prompt(rng, nouns),), seen, lambda item: item[0])
        records.append({"id": f"rlhf-{index + 1:04d}", "prompt": [{"role": "user", "content": text}]})
    return records
