"""Plain-text corpus for training the tiny model's BPE tokenizer.

Paragraphs of several kinds (support dialogues in chat phrasing, operations
notes, definitions, how-tos, science facts, worked arithmetic, everyday
scenes) are drawn at random until the target size is reached; exact repeats
are skipped. No PII module is used here: the corpus holds no personal data.
"""

from __future__ import annotations

import random

from raw_data import arithmetic, general, support

TIMES = ["In the morning", "On a rainy afternoon", "Every Saturday", "After work", "During the holidays",
         "Late in the evening", "At the start of each month", "On the first warm day of spring"]
SUBJECTS = ["the family", "a group of neighbours", "the local library", "a small bakery", "the school choir",
            "a retired engineer", "two old friends", "the community garden", "a new cafe", "the cycling club"]
ACTIVITIES = ["plans a picnic by the river", "repaints the fence", "organises a book swap",
              "bakes bread for the market", "tidies the shared allotment", "rehearses for a concert",
              "checks the household budget",
              "walks the dog along the canal", "sorts the recycling", "tries a new recipe for soup"]
REASONS = ["because the weather is finally dry", "to save a little money", "since everyone has a free day",
           "to raise funds for new equipment", "so that nothing goes to waste", "because it is a long tradition",
           "to meet people from the street", "as a way to relax after a busy week"]
AFTERS = ["Afterwards they share tea and talk about the week.", "It takes longer than expected, but nobody minds.",
          "By noon the work is done and the place looks brighter.", "They agree to do it again next month.",
          "A few people stop by to ask how they can join.", "The result is better than anyone hoped."]
CONNECTORS = ["Also,", "In addition,", "Another interesting fact:", "Similarly,", "It is also worth knowing that",
              "Scientists have also found that", "On a related note,"]


def _dialogue(rng: random.Random) -> str:
    task = rng.choice(support.TASKS)
    company = support.company_for(task, rng)
    lines = [f"User: {support.question(task, rng, company)}", f"Assistant: {support.good_answer(task, rng, company)}"]
    if rng.random() < 0.4:
        ask, answer = support.followup(task, rng, company)
        lines += [f"User: {ask}", f"Assistant: {answer}"]
    return "\n".join(lines)


def _operations(rng: random.Random) -> str:
    task = rng.choice(support.TASKS)
    company = support.company_for(task, rng)
    lead = rng.choice(["When a customer asks about {n}, the recommended answer is:", "Operations note on {n}.",
                       "Guidance for agents handling {n}:", "A typical question concerns {n}. The standard reply:"])
    ask, answer = support.followup(task, rng, company)
    return (f"{lead.format(n=task.noun)} {support.fill(task.steps, rng, company)} Customers often follow up with "
            f"\"{ask}\" The answer: {answer}")


def _definitions(rng: random.Random) -> str:
    terms = rng.sample(sorted(general.DEFINITIONS), rng.randint(2, 4))
    return " ".join(general.define(term, rng)[1] for term in terms)


def _howto(rng: random.Random) -> str:
    task = rng.choice(sorted(general.HOWTOS))
    question, answer = general.howto(task, rng)
    return rng.choice([f"Q: {question}\nA: {answer}", f"How to {task}. {answer}", f"User: {question}\n"
                       f"Assistant: {answer}"])


def _science(rng: random.Random) -> str:
    facts = rng.sample(general.SCIENCE_FACTS, rng.randint(2, 4))
    parts = [facts[0]] + [f"{rng.choice(CONNECTORS)} {f[0].lower() + f[1:]}" for f in facts[1:]]
    return " ".join(parts)


def _arithmetic(rng: random.Random) -> str:
    problems = [arithmetic.problem(rng) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.4:
        p = problems[0]
        return f"User: {p.question}\nAssistant: {arithmetic.worked_answer(p, rng)}"
    return " ".join(f"Problem: {p.question} Solution: {p.reasoning} The answer is {p.answer}." for p in problems)


def _everyday(rng: random.Random) -> str:
    subject = rng.choice(SUBJECTS)
    return (f"{rng.choice(TIMES)}, {subject} {rng.choice(ACTIVITIES)} {rng.choice(REASONS)}. "
            f"{rng.choice(AFTERS)}")


KINDS = [(_dialogue, 25), (_operations, 12), (_definitions, 12), (_howto, 10), (_science, 12),
         (_arithmetic, 17), (_everyday, 12)]


def build_corpus(rng: random.Random, target_chars: int) -> str:
    """Paragraphs separated by blank lines, about ``target_chars`` long, without exact repeats."""
    makers, weights = zip(*KINDS, strict=True)
    seen: set[str] = set()
    paragraphs: list[str] = []
    size = 0
    misses = 0
    while size < target_chars:
        text = rng.choices(makers, weights=weights)[0](rng)
        if text in seen:
            misses += 1
            if misses > 100_000:
                raise RuntimeError("corpus slot lists exhausted before the target size")
            continue
        seen.add(text)
        paragraphs.append(text)
        size += len(text) + 2
    return "\n\n".join(paragraphs) + "\n"
