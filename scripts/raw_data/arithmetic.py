"""Arithmetic questions and small word problems with worked answers.

:func:`problem` returns a :class:`Problem` (question, reasoning, integer answer):
bare operations (+, -, ×, ÷ with exact quotients) in several wordings, and
one- or two-step word problems about shopping, savings, travel and sharing.
:func:`one_step` returns the GRPO fixture's problems: how many things of one
kind a container holds, with one or two kinds named, answered in one line; a
rule (find the count of the kind asked about) that a tiny model can partially
learn in SFT and reinforcement can sharpen, and that held-out questions test,
unlike the multi-digit problems above, which the built-in model never gets right.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

ITEMS = [("notebook", "notebooks"), ("apple", "apples"), ("ticket", "tickets"), ("pencil", "pencils"),
         ("coffee", "coffees"), ("book", "books"), ("plant", "plants"), ("sandwich", "sandwiches")]
#: Roles rather than first names, so the PII gate (which flags person names) sees only the planted PII.
PEOPLE = ["student", "teacher", "baker", "nurse", "farmer", "cyclist", "librarian", "shop owner", "gardener", "pilot"]


@dataclass(frozen=True)
class Problem:
    """A question, the worked reasoning and the integer answer."""

    question: str
    reasoning: str
    answer: int


def _add(rng: random.Random) -> Problem:
    a, b = rng.randint(2, 999), rng.randint(2, 999)
    q = rng.choice(["What is {a} + {b}?", "Compute {a} plus {b}.", "Add {a} and {b}.",
                    "What is the sum of {a} and {b}?"])
    return Problem(q.format(a=a, b=b), f"Adding the two numbers: {a} + {b} = {a + b}.", a + b)


def _sub(rng: random.Random) -> Problem:
    a = rng.randint(20, 999)
    b = rng.randint(1, a - 1)
    q = rng.choice(["What is {a} - {b}?", "Compute {a} minus {b}.", "Subtract {b} from {a}.",
                    "What is the difference between {a} and {b}?"])
    return Problem(q.format(a=a, b=b), f"Subtracting: {a} - {b} = {a - b}.", a - b)


def _mul(rng: random.Random) -> Problem:
    a, b = rng.randint(2, 99), rng.randint(2, 30)
    q = rng.choice(["What is {a} × {b}?", "Compute {a} times {b}.", "Multiply {a} by {b}.",
                    "What is the product of {a} and {b}?"])
    tens, ones = divmod(a, 10)
    if tens and ones:  # split into tens and ones, as one would in one's head
        detail = f"{a} × {b} = {tens * 10} × {b} + {ones} × {b} = {tens * 10 * b} + {ones * b} = {a * b}."
    else:
        detail = f"{a} × {b} = {a * b}."
    return Problem(q.format(a=a, b=b), detail, a * b)


def _div(rng: random.Random) -> Problem:
    b, c = rng.randint(2, 25), rng.randint(2, 40)
    a = b * c
    q = rng.choice(["What is {a} ÷ {b}?", "Divide {a} by {b}.", "What is {a} divided by {b}?"])
    return Problem(q.format(a=a, b=b), f"Since {b} × {c} = {a}, {a} ÷ {b} = {c}.", c)


def _shopping(rng: random.Random) -> Problem:
    name, (one, many) = rng.choice(PEOPLE), rng.choice(ITEMS)
    n, price = rng.randint(2, 12), rng.randint(2, 25)
    q = f"A {name} buys {n} {many} at {price} dollars each. How many dollars does the {name} spend?"
    return Problem(q, f"Each {one} costs {price} dollars, so {n} × {price} = {n * price} dollars.", n * price)


def _change(rng: random.Random) -> Problem:
    name, (_, many) = rng.choice(PEOPLE), rng.choice(ITEMS)
    n, price = rng.randint(2, 6), rng.randint(3, 15)
    paid = ((n * price) // 10 + 1) * 10 + rng.choice([0, 10, 40])
    q = f"A {name} buys {n} {many} for {price} dollars each and pays with {paid} dollars. How much change is given?"
    total = n * price
    return Problem(q, f"The cost is {n} × {price} = {total} dollars. Change: {paid} - {total} = "
                      f"{paid - total} dollars.", paid - total)


def _savings(rng: random.Random) -> Problem:
    name, per, weeks = rng.choice(PEOPLE), rng.randint(5, 60), rng.randint(3, 20)
    start = rng.choice([0, 0, 25, 50, 100])
    base = f"A {name} has {start} dollars and saves" if start else f"A {name} saves"
    q = f"{base} {per} dollars every week. How many dollars will the {name} have after {weeks} weeks?"
    saved = per * weeks
    r = f"Savings: {per} × {weeks} = {saved} dollars." + (f" Adding the {start} dollars: {saved} + {start} = "
                                                           f"{saved + start}." if start else "")
    return Problem(q, r, saved + start)


def _travel(rng: random.Random) -> Problem:
    speed, hours = rng.choice([40, 45, 50, 60, 65, 70, 80, 90]), rng.randint(2, 9)
    vehicle = rng.choice(["A train", "A bus", "A car", "A truck"])
    q = f"{vehicle} travels at {speed} km per hour for {hours} hours. How many kilometres does it cover?"
    return Problem(q, f"Distance = speed × time = {speed} × {hours} = {speed * hours} km.", speed * hours)


def _sharing(rng: random.Random) -> Problem:
    people, each = rng.randint(2, 12), rng.randint(3, 30)
    total = people * each
    thing = rng.choice(["stickers", "marbles", "cookies", "cards", "dollars"])
    q = f"{total} {thing} are shared equally among {people} friends. How many does each friend get?"
    return Problem(q, f"Each friend gets {total} ÷ {people} = {each} {thing}.", each)


def _pages(rng: random.Random) -> Problem:
    name, total = rng.choice(PEOPLE), rng.randint(120, 480)
    per, days = rng.randint(10, 30), rng.randint(2, 5)
    q = f"A book has {total} pages. A {name} reads {per} pages a day for {days} days. How many pages are left?"
    read = per * days
    return Problem(q, f"Pages read: {per} × {days} = {read}. Pages left: {total} - {read} = {total - read}.",
                   total - read)


def _interest(rng: random.Random) -> Problem:
    principal, rate = rng.choice([200, 500, 800, 1000, 1500, 2000, 2500, 4000]), rng.choice([2, 3, 4, 5, 6, 10])
    q = (f"A savings account pays {rate}% simple interest per year. How much interest does {principal} dollars "
         "earn in one year?")
    return Problem(q, f"{rate}% of {principal} is {principal} × {rate} ÷ 100 = {principal * rate // 100} dollars.",
                   principal * rate // 100)


def _temperature(rng: random.Random) -> Problem:
    start, drop = rng.randint(-5, 25), rng.randint(3, 20)
    q = f"The temperature is {start} degrees in the morning and falls by {drop} degrees by night. What is it at night?"
    return Problem(q, f"{start} - {drop} = {start - drop} degrees.", start - drop)


def _fees(rng: random.Random) -> Problem:
    balance, fee, months = rng.randint(300, 2000), rng.choice([3, 4, 5, 6, 8, 12]), rng.randint(2, 12)
    q = (f"An account holds {balance} dollars and is charged a fee of {fee} dollars each month. What is the "
         f"balance after {months} months?")
    return Problem(q, f"Fees: {fee} × {months} = {fee * months} dollars. Balance: {balance} - {fee * months} = "
                      f"{balance - fee * months} dollars.", balance - fee * months)


BARE: list[Callable[[random.Random], Problem]] = [_add, _sub, _mul, _div]
WORD: list[Callable[[random.Random], Problem]] = [_shopping, _change, _savings, _travel, _sharing, _pages,
                                                  _interest, _temperature, _fees]


CONTAINERS = ["box", "basket", "bag", "crate", "drawer", "shelf", "cupboard", "tray"]


def _count_one(rng: random.Random) -> Problem:
    (_, many), place, n = rng.choice(ITEMS), rng.choice(CONTAINERS), rng.randint(2, 9)
    q = rng.choice(["A {p} holds {n} {m}. How many {m} are in the {p}?",
                    "There are {n} {m} in a {p}. How many {m} are in the {p}?",
                    "A {who} puts {n} {m} in a {p}. How many {m} are in the {p}?"])
    return Problem(q.format(p=place, n=n, m=many, who=rng.choice(PEOPLE)), f"There are {n} {many}.", n)


def _count_two(rng: random.Random) -> Problem:
    (_, first), (_, second) = rng.sample(ITEMS, 2)
    place, a, b = rng.choice(CONTAINERS), *rng.sample(range(2, 10), 2)
    asked, n = rng.choice([(first, a), (second, b)])
    q = rng.choice(["A {p} holds {a} {f} and {b} {s}. How many {x} are in the {p}?",
                    "There are {a} {f} and {b} {s} in a {p}. How many {x} are there?"])
    return Problem(q.format(p=place, a=a, b=b, f=first, s=second, x=asked), f"There are {n} {asked}.", n)


ONE_STEP: list[Callable[[random.Random], Problem]] = [_count_one, _count_two]


def one_step(rng: random.Random) -> Problem:
    """How many of one kind of thing a container holds, read off the question (one or two kinds named)."""
    return rng.choice(ONE_STEP)(rng)


def answer_line(p: Problem) -> str:
    """The one-line working, then the final answer on its own line (what ``format_reward`` checks)."""
    return f"{p.reasoning}\nAnswer: {p.answer}"


def problem(rng: random.Random, word_share: float = 0.5) -> Problem:
    """A random problem: a word problem with probability ``word_share``, else a bare operation."""
    return rng.choice(WORD if rng.random() < word_share else BARE)(rng)


def worked_answer(p: Problem, rng: random.Random) -> str:
    """The reasoning followed by the final answer, in one of a few styles."""
    return rng.choice([f"{p.reasoning} Answer: {p.answer}", f"{p.reasoning} So the answer is {p.answer}.",
                       f"Let's work it out. {p.reasoning} The answer is {p.answer}.",
                       f"{p.reasoning}\nAnswer: {p.answer}"])


def wrong_answer(p: Problem, rng: random.Random) -> tuple[str, str]:
    """An incorrect or unhelpful answer and its kind (slip, bare, verbose)."""
    kind = rng.choice(["slip", "slip", "bare", "verbose"])
    wrong = p.answer + rng.choice([-10, -2, -1, 1, 2, 10])
    if kind == "slip":
        return f"{p.reasoning.rsplit('=', 1)[0]}= {wrong}. Answer: {wrong}", kind
    if kind == "bare":
        return rng.choice([f"{wrong}.", f"Probably around {wrong}.", "Use a calculator."]), kind
    return ("Arithmetic is a fundamental skill that people have used for thousands of years, and there are many "
            "ways to approach a question like this one, from mental strategies to written methods and calculators. "
            f"Each method has advantages. In any case, the result should be roughly {wrong}."), kind


#: Small verifiable facts for GRPO: (subject, unit, count). The answer hangs on the subject word, which a tiny
#: model can associate directly; the SFT demonstrations cover only the first DEMO_FACTS of them, so the SFT
#: parent is partly right and GRPO has facts left to learn from its reward.
FACTS = [("a spider", "legs", 8), ("a triangle", "sides", 3), ("a week", "days", 7), ("a bicycle", "wheels", 2),
         ("a square", "sides", 4), ("a hand", "fingers", 5), ("a hexagon", "sides", 6), ("a unicycle", "wheels", 1),
         ("a tricycle", "wheels", 3), ("a nonagon", "sides", 9), ("a pentagon", "sides", 5),
         ("a rainbow", "colours", 7),
         ("an insect", "legs", 6), ("a bird", "legs", 2), ("an octopus", "arms", 8), ("a dog", "legs", 4),
         ("a cube", "faces", 6), ("a starfish", "arms", 5), ("a heptagon", "sides", 7), ("a violin", "strings", 4)]
DEMO_FACTS = 12
_FACT_FORMS = ["How many {u} does {t} have?", "{T} has how many {u}?", "What is the number of {u} {t} has?",
               "Tell me how many {u} {t} has.", "How many {u} has {t} got?",
               "Count the {u} of {t}. How many are there?"]
_FACT_OPENERS = ["", "Quick question: ", "Here is a puzzle. ", "Think carefully. ", "A child asks: ", "Trivia: "]
_FACT_CLOSERS = ["", " Give the number.", " Answer with a number."]


def fact(rng: random.Random, demo: bool = False) -> Problem:
    """How many legs, sides, wheels, ... a familiar thing has, in one of many phrasings."""
    subject, unit, n = rng.choice(FACTS[:DEMO_FACTS] if demo else FACTS)
    form = rng.choice(_FACT_FORMS).format(u=unit, t=subject, T=subject[0].upper() + subject[1:])
    q = rng.choice(_FACT_OPENERS) + form + rng.choice(_FACT_CLOSERS)
    return Problem(q, f"{subject[0].upper() + subject[1:]} has {n} {unit}.", n)
