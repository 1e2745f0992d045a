"""PII gate accuracy on a generated, labelled set: record recall and precision, chat and preference.

    python benchmarks/pii_accuracy.py                    # 2,000 records per kind, seed 0
    python benchmarks/pii_accuracy.py --records 500 --seed 3 --naive   # also check presidio's own loop
    python benchmarks/pii_accuracy.py --ner              # names, places, nationalities on hand-labelled chat

``--ner`` scores the policy's NER (spaCy, and the name gazetteer beside it) on two hand-labelled sets
(``benchmarks/data/README.md`` says how they were written and labelled): ``pii_names_labelled.txt``,
121 chat-like sentences (70 names of many origins, 45 places, 6 nationalities, and hard negatives:
Apple, Ford, May, the Jordan River, Parkinson's), and ``pii_names_heldout.txt``, 50 more (38 names)
written before the name gazetteer's rules and not looked at while they were written; neither
generated, neither sharing a name with the names planted in ``data/raw``. It prints span recall and
precision per entity and per set for the policy's windows, for the whole text (presidio's way), and
for the pattern-only policy (no NER), side by side; the names goal is judged on both sets together.

Measured (2 shared cores), PERSON span recall / precision with the policy's windows:

* policy as it was (spaCy en_core_web_sm alone, windows of 3 words): first set 0.686 (48/70) /
  0.923, held-out 0.632 (24/38) / 1.000, both 0.667 (72/108) / 0.947; LOCATION both 0.882 / 0.849.
* with the name gazetteer (US Census lists from ``names`` 0.3.0; titles, cues, relations, first name +
  capital, lone listed first names where the capital says something, joined names) and lexicon
  starters: first set 0.900 (63/70) / 0.941, held-out 0.816 (31/38) / 1.000 (its first look).
* a name joined to a name outweighing the model's place label, and windows of 2 words: first set
  0.914 / 0.955, held-out 0.842 (32/38) / 1.000 (the held-out misses still unseen), both 0.889 / 0.970.
* then, after looking at the held-out misses once, two general rules (introductions "this is" / "it's"
  before a listed or non-English name; particles inside names): held-out 0.868 (33/38) / 1.000, no
  longer unseen; both 0.898 (97/108) / 0.970, one name short of the goal; LOCATION 0.902 / 0.939.
  What is still missed: names neither listed nor cued ("Emeka", "Elif", "Thandiwe Nkosi", "Sione
  Tupou"), a listed first name the model calls something else ("Astrid"), "Min-jun Park" ("Park" is
  a place word). Whole-text NER finds the same names as the windows.
* then names looked up as the census lists spell them (no marks, apostrophes or hyphens, particles
  joined: "O'Connor" OCONNOR, "de Vries" DEVRIES; "O'Connor" read as one name word), a run with no
  English word and a listed name anywhere in it, a place word that is a listed surname after a title
  or a non-English word where the model labels nothing there but a person ("Park"), and a name joined
  to a name outweighing the model's NORP label too: first set 0.957 (67/70) / 0.957, held-out 0.921
  (35/38) / 1.000, both 0.944 (102/108) / 0.971, goal met; LOCATION unchanged (0.902 / 0.939). Still
  missed: lone unlisted names with no cue ("Emeka", "Elif", "Aoife", "Priyanka" in "let Priyanka
  know") and two-word runs of unlisted non-English words ("Thandiwe Nkosi", "Sione Tupou"). Taking
  every such run as a name finds those two (both 0.963) but also "Lenovo Thinkpad", "Nakhon
  Ratchasima" and film titles in probes outside the sets, so it is not the policy. Greetings as cues
  ("good morning", "congrats", "happy birthday", "bye", "cheers") and cues naming only a listed first
  name or a non-English word (not "Hello World", "Thanks Team", "Hi All") change neither set's figure.

Generates records the way customer-support and math post-training data look,
each labelled by construction: a record *holds PII* when a value of a scanned
entity type was planted in it (phone numbers in usual shapes, assigned area
codes or not, next to a phone word before or after; e-mail, card, IBAN, SSN,
IP, URL, employee id with its context word), and *holds none* otherwise, even
when it is full of look-alikes: 10-digit order, reference, tracking and
account numbers next to their words, math results, prices, years, times, zip
codes, model numbers. Templates, phrasings, shapes and positions are drawn at
random from pools (several per slot), so the set is not the issue's examples.

The dataset is scanned with ``PiiScanner.scan_file`` (what the pii_scan stages
run) under the shipped policy; a record counts as flagged when it has any
finding. Record recall = flagged PII records / PII records; precision =
flagged PII records / flagged records. Misses and false hits are listed by
template with the value masked (never raw). ``--naive`` also runs presidio's
``AnalyzerEngine.analyze`` on every field and asserts the same findings.

Goal (issue 15): recall >= 0.99 and precision >= 0.95 on both kinds.

Phone values come in the policy's usual US shapes and in shapes the word
lists were not written against (other countries, extensions, dots, slashes,
trunk 0). 30% of the phone sentences use the *held-out* pool: 20 phrasings
("you can get me at", "number's", "if no answer try", ...) written before
round 2026.11-3 chose its words, from how people write a number down in
support chats, never added to the word lists; some hold a policy word, some
do not. The rest use the pools the words were written against, including
round 2026.11-2's held-out slang ("buzz me at", "give me a bell on"), whose
misses led to 2026.11-3's frames ("me at", "me on", "get me", "I'm on") and
which is therefore no longer held out. Some identifier sentences use id words
the contrary list does not hold (docket, manifest, container, meter reading,
...). Recall is printed for the held-out pool and for every other PII record.

How it was measured, honestly: the generator and the policy words are written
by the same hand, so the figures are an upper guess of the hidden set's; the
held-out recall is the better guess for bare digit runs beside unseen words.
The held-out pool's results were seen once (on the previous policy, for the
before figure) before the words were chosen; the words added are the frames
of the old slang pool plus "my digits", none taken from the new pool's misses,
and the pool was not changed after. Grouped phone shapes (NANP 3-3-4, +CC
groups, three-group trunk 0) are found whatever the words; every miss left is
a held-out phrasing beside a shape that needs a phone word.

Round 2026.11-4 was aimed at the held-out pool's misses, so that pool is no
longer wholly unseen: the misses left on 2026.11-3 (seed 0) were bare digit
runs beside "the number here is", "number's" and "the front desk number is",
and the issue asked for "number" to be a phone word unless an identifier noun
qualifies it. The policy now makes "number" supportive unless the word right
before it is one of its qualifiers (order, reference, customer, serial, ...,
and math's prime, even, digit, ...); the qualifiers were written from the
issue's list and from identifier and math wording; a few (docket, container,
check, loan, meter) are also id words of the generator's held-out identifier
pool, whose templates never say "number", so they change nothing here.
Recall is therefore printed also for the held-out pool without those three
phrasings: that is the estimate of unseen phrasings now. What the generator
does not test: math prose that names a bare 10-digit result "the number"
("the number 5932164470 is even") is a phone under 2026.11-4 (no qualifier
before "number"); none of MATH's templates says it, the hidden set may.

Measured (policy 2026.11-4, 2 shared cores, load 5-10), ``--naive`` (findings
identical to presidio's own loop each time): seed 0, 2,000 records per kind:
chat recall 0.997 / precision 1.000, held-out 0.990 (103/104), held-out
without the three aimed-at phrasings 0.989 (90/91), others 0.998 (473/474);
preference 0.997 / 1.000, held-out 0.979 (95/97), without the three 0.972 (69/71),
others 1.000 (476/476). Seed 7, 1,500 per kind: chat 0.993 / 1.000, held-out
0.976 (80/82); preference 0.995 / 1.000, held-out 0.970 (65/67). Seed 7,
2,000 per kind: chat 0.993 / 1.000, held-out 0.980, without the three 0.975
(78/80); preference 0.992 / 1.000, held-out 0.952, without the three 0.944
(67/71). The same runs under 2026.11-3: seed 0 chat 0.995, preference 0.990
(0.9895, short), held-out 0.981 / 0.938; seed 7 (2,000) chat 0.990,
preference 0.988 (short), held-out 0.961 / 0.928; precision 1.000 throughout.
Without the three aimed-at phrasings the held-out recall is the same under
both policies (0.989 / 0.972 seed 0, 0.975 / 0.944 seed 7): every gain is on
the phrasings the round was aimed at, none on unseen ones, so the hidden set's
figure for bare digit runs beside unseen words is still the held-out one
without them (0.94-0.99), and the goal is met here by one to three records.

Before this round, measured (policy 2026.11-3, 2 shared cores, load 3.9 -> 4.3), ``--naive``
(findings identical to presidio's own loop with the same context enhancer):
seed 0, 2,000 records per kind: chat recall 0.995 / precision 1.000, held-out
0.981 (102/104), others 0.998 (473/474); preference 0.990 (567/573 = 0.9895,
one record short of the goal) / 1.000, held-out 0.938 (91/97), others 1.000
(476/476). Seed 7, 1,500 per kind: chat 0.991 / 1.000, held-out 0.963
(79/82); preference 0.995 / 1.000, held-out 0.970 (65/67). Before (policy
2026.11-2 on this generator, seed 0): chat 0.981 / 1.000, held-out 0.962;
preference 0.974 / 1.000, held-out 0.907. A first try with "digits" alone
dropped precision to 0.70 / 0.76 ("9876543210 has ten digits" in math), hence
"my digits". Earlier rounds on the previous generator: 2026.11-2 chat 0.990,
preference 0.980 (precision 1.000); 2026.11-1, no held-out pools, 1.000 / 1.000.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from governance.pii.scan import PiiScanner, resolve  # noqa: E402
from governance.policy.pii import load_pii_policy  # noqa: E402
from governance.records import iter_records, iter_text_fields  # noqa: E402

GOAL_RECALL, GOAL_PRECISION = 0.99, 0.95

# Area codes libphonenumber does not consider assigned (N11, 37X, 59X, 96X, ...) and assigned ones.
UNASSIGNED_AREA = ["372", "593", "962", "379", "371", "596", "965", "375", "377", "598", "966", "968"]
ASSIGNED_AREA = ["415", "212", "617", "312", "206", "303", "512", "646", "718", "305", "404", "702"]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _phone(rng: random.Random) -> str:
    area = rng.choice(UNASSIGNED_AREA if rng.random() < 0.6 else ASSIGNED_AREA)
    exchange = str(rng.randint(2, 9)) + _digits(rng, 2)
    line = _digits(rng, 4)
    shape = rng.randrange(9)
    if shape == 0:
        return f"+1 {area} {exchange} {line}"
    if shape == 1:
        return f"({area}) {exchange}-{line}"
    if shape == 2:
        return f"{area}-{exchange}-{line}"
    if shape == 3:
        return f"{area}.{exchange}.{line}"
    if shape == 4:
        return f"+1-{area}-{exchange}-{line}"
    if shape == 5:
        return f"1 ({area}) {exchange}-{line}"
    if shape == 6:
        return f"{area} {exchange} {line}"
    if shape == 7:
        return f"+1 ({area}) {exchange}-{line}"
    return f"{area}{exchange}{line}"


def _phone_wide(rng: random.Random) -> str:
    """Shapes the policy words were not written against: other countries, extensions, slashes, dots."""
    area = rng.choice(UNASSIGNED_AREA + ASSIGNED_AREA)
    exchange, line = str(rng.randint(2, 9)) + _digits(rng, 2), _digits(rng, 4)
    return rng.choice(
        [
            f"+44 20 {_digits(rng, 4)} {_digits(rng, 4)}",
            f"+44 7{_digits(rng, 3)} {_digits(rng, 6)}",
            f"+33 6 {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)}",
            f"+49 30 {_digits(rng, 6)}",
            f"+61 2 {_digits(rng, 4)} {_digits(rng, 4)}",
            f"+91 9{_digits(rng, 4)} {_digits(rng, 5)}",
            f"+353 1 {_digits(rng, 3)} {_digits(rng, 4)}",
            f"({area}) {exchange}-{line} ext. {rng.randint(1, 999)}",
            f"{area}-{exchange}-{line} x{rng.randint(10, 9999)}",
            f"{area}.{exchange}.{line}",
            f"{area}/{exchange}/{line}",
            f"1-{area}-{exchange}-{line}",
            f"{area} {exchange}-{line}",
            f"0{rng.randint(20, 29)} {_digits(rng, 4)} {_digits(rng, 4)}",
        ]
    )


PHONE_BEFORE = [
    "call me back on {}",
    "my mobile is {}",
    "you can reach our support line at {}",
    "please call {} after 5pm",
    "my cell number is {}",
    "text me at {}",
    "the best phone to reach me is {}",
    "ring the front desk on {}",
    "my home phone: {}",
    "contact me at {} anytime",
    "our helpline {} is open 24/7",
    "you can call the office at {}",
    "my new number, call me: {}",
    "phone {} if anything changes",
    "leave a voicemail at {}",
    "tel. {}",
    "I can be reached on {} during the day",
    "for urgent issues dial {}",
    "Whatsapp me on {}",
    "fax it to {}",
]
PHONE_AFTER = [
    "{} is my cell",
    "{} is the best number to call",
    "{} (mobile)",
    "{} - that's my work phone",
    "{} is our customer support line",
    "{}, call anytime after 9",
]
# Slang and indirect phrasings, the held-out pool of round 2026.11-2. Its misses (bare numbers beside them)
# led round 2026.11-3 to add the grammatical frames of giving a number ("me at", "me on", "get me", ...)
# and contact slang ("buzz", "bell", "holler", "digits"), so it is no longer held out: it is part of the
# pool the words were written against.
PHONE_SLANG = [
    "buzz me at {}",
    "hit me up on {}",
    "give me a bell on {}",
    "try me on {}",
    "you'll get me on {}",
    "I'm on {} most evenings",
    "holler at {} if you're stuck",
    "get hold of me at {}",
    "my digits are {}",
    "{} gets me directly",
    "the desk is manned, {} from nine to five",
    "if it's urgent: {}",
]
# Held out (round 2026.11-3): written before that round's policy words were chosen, from how people write
# a number down in support chats, and never checked against or added to the word lists. Some hold a policy
# word, some do not; recall on them is the estimate of unseen phrasings.
PHONE_HELD_OUT = [
    "you can get me at {}",
    "my contact is {}",
    "I'm reachable at {}",
    "ping me on {} if needed",
    "the number here is {}",
    "shoot me a message at {}",
    "my cell's {}",
    "best way to get me: {}",
    "feel free to ring {}",
    "our office: {}",
    "I'm at {} until 6",
    "number's {}",
    "you can find me on {}",
    "for bookings call {}",
    "{} is the quickest way to reach me",
    "{} - ask for Dana",
    "after hours: {}",
    "drop a text to {}",
    "the front desk number is {}",
    "if no answer try {}",
]
#: The held-out phrasings whose misses round 2026.11-4 was aimed at ("number" a phone word unless qualified):
#: no longer unseen, so recall is also printed for the held-out pool without them.
PHONE_HELD_OUT_AIMED_AT = frozenset({"the number here is {}", "number's {}", "the front desk number is {}"})
#: Identifier words not in the policy's contrary list either.
IDENTIFIER_HELD_OUT = [
    "Docket {} was filed.",
    "Manifest {} lists six pallets.",
    "Dispatch note {} is attached.",
    "Quote {} is valid for 30 days.",
    "Your estimate {} is ready.",
    "Lab sample {} was received.",
    # Round 2026.11-3, written blind to the contrary list like the phone pool above.
    "Container {} cleared customs.",
    "Check {} cleared on Monday.",
    "Statement {} is available online.",
    "Appointment {} is confirmed for Tuesday.",
    "Your loan {} was approved.",
    "Meter reading {} was submitted.",
]
OTHER_PII = [
    ("EMAIL", lambda r: f"{r.choice(['sam', 'lee', 'ana', 'kofi', 'mei'])}.{r.randint(1, 99)}@example.org",
     ["write to me at {}", "my email is {}", "send the invoice to {}", "{} is my address for updates"]),
    ("CARD", lambda r: _luhn_card(r),
     ["I paid with card {}", "my card {} was charged twice", "the visa ending in {} is mine"]),
    ("IBAN", lambda r: _iban(r), ["refund to IBAN {}", "my account is {} at the bank"]),
    ("SSN", lambda r: f"{r.randint(100, 665)}-{r.randint(10, 99)}-{r.randint(1000, 9999)}",
     ["my social security number is {}", "SSN {} on the form"]),
    ("IP", lambda r: f"203.0.113.{r.randint(1, 254)}", ["the login came from {}", "my router shows {}"]),
    ("URL", lambda r: f"https://portal.example.com/u/{r.randint(100, 999)}/profile",
     ["my profile is at {}", "see {} for my details"]),
    ("EMPLOYEE", lambda r: f"E{r.randint(100000, 999999)}", ["my employee id is {}", "staff badge {} here"]),
]  # fmt: skip

IDENTIFIER_WORDS = [
    "Order {} shipped today.",
    "Reference code {} has been issued.",
    "Your order #{} is on its way.",
    "Tracking number {} shows it left the depot.",
    "Invoice {} is attached.",
    "Please quote reference {} when you reply.",
    "Confirmation {} - thanks for booking.",
    "Ticket {} was closed.",
    "Account {} was credited.",
    "Transaction ID {} failed.",
    "Your case {} is being reviewed.",
    "Parcel {} was delivered to the locker.",
    "I ordered it as {} last week.",
    "My booking reference is {}.",
    "Serial {} is printed on the back.",
    "Policy {} renews in May.",
    "Receipt {} shows the refund.",
    "The SKU {} is out of stock.",
    "Membership {} expires soon.",
    "Claim {} was approved.",
]
CHAT_FILLER = [
    "Hi, I need help with my delivery.",
    "Thanks for waiting, let me check.",
    "Could you confirm the details?",
    "Sure, one moment.",
    "That is sorted now, anything else?",
    "No, that's all, thanks!",
    "I was charged $49.99 on 03/14/2024 at 10:45.",
    "It weighs 2.5 kg and measures 30 x 20 x 10 cm.",
    "We are open 9-17, Monday to Friday, zip 94107.",
    "The model RX-2000 ships in 3-5 business days.",
]
MATH = [
    "{a} × {b} = {ab}, then {ab} + {c} = {abc}.",
    "In {y} she saved ${p:,.2f}; the total is {big} cents.",
    "Compute {big} / {b} = {div:.4f}.",
    "The product 1234 × 5678 is 7006652, and 9876543210 has ten digits.",
    "x = ({a} - {c}) / {b} = {xx:.3f}; the answer is {big}.",
]


def _luhn_card(rng: random.Random) -> str:
    digits = [4] + [rng.randint(0, 9) for _ in range(14)]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        doubled = digit * 2 if index % 2 == 0 else digit
        total += doubled - 9 if doubled > 9 else doubled
    digits.append((10 - total % 10) % 10)
    text = "".join(map(str, digits))
    return " ".join(text[i : i + 4] for i in range(0, 16, 4))


def _iban(rng: random.Random) -> str:
    bban = _digits(rng, 18)
    check = 98 - int(bban + "131400") % 97
    raw = f"DE{check:02d}{bban}"
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def _identifier(rng: random.Random) -> str:
    # 10-digit identifiers, many of them valid US numbers to libphonenumber (that is the trap).
    return rng.choice([rng.choice(ASSIGNED_AREA) + str(rng.randint(2, 9)) + _digits(rng, 6), _digits(rng, 10)])


def _math(rng: random.Random) -> str:
    a, b, c = rng.randint(2, 99), rng.randint(2, 12), rng.randint(1, 500)
    big = rng.randint(10**8, 10**10 - 1)
    return rng.choice(MATH).format(
        a=a, b=b, c=c, ab=a * b, abc=a * b + c, y=rng.randint(1990, 2024), p=rng.uniform(1, 5000),
        big=big, div=big / b, xx=(a - c) / b,
    )  # fmt: skip


def _sentence(rng: random.Random, pii: bool) -> tuple[str, str]:
    """A sentence and its template label; with ``pii`` it holds one planted value."""
    if not pii:
        roll = rng.random()
        if roll < 0.5:
            template = rng.choice(IDENTIFIER_WORDS + IDENTIFIER_HELD_OUT)
            return template.format(_identifier(rng)), f"identifier: {template}"
        if roll < 0.75:
            return _math(rng), "math"
        return rng.choice(CHAT_FILLER), "filler"
    roll = rng.random()
    if roll < 0.6:
        held_out = rng.random() < 0.3
        template = rng.choice(PHONE_HELD_OUT if held_out else PHONE_BEFORE + PHONE_AFTER + PHONE_SLANG)
        text = template.format(_phone_wide(rng) if rng.random() < 0.4 else _phone(rng))
        return text[0].upper() + text[1:], f"{'held-out phone' if held_out else 'phone'}: {template}"
    name, value, templates = rng.choice(OTHER_PII)
    template = rng.choice(templates)
    text = template.format(value(rng))
    return text[0].upper() + text[1:], f"{name.lower()}: {template}"


def _turn(rng: random.Random, pii: bool) -> tuple[str, str]:
    sentence, label = _sentence(rng, pii)
    if sentence[-1] not in ".!?" and rng.random() < 0.8:  # people do not always end a sentence
        sentence += rng.choice([".", ".", "!", " :)"])
    parts = [rng.choice(CHAT_FILLER) for _ in range(rng.randint(0, 2))]
    parts.insert(rng.randint(0, len(parts)), sentence)
    return " ".join(parts), label


def write_chat(path: Path, records: int, rng: random.Random, pii_share: float) -> list[tuple[bool, str]]:
    labels = []
    with path.open("w", encoding="utf-8") as handle:
        for index in range(records):
            pii = rng.random() < pii_share
            turns = rng.randint(2, 6)
            where = rng.randrange(turns)
            messages, label = [], "clean"
            for turn in range(turns):
                text, this = _turn(rng, pii and turn == where)
                if turn == where:
                    label = this
                messages.append({"role": "user" if turn % 2 == 0 else "assistant", "content": text})
            handle.write(json.dumps({"id": f"chat-{index}", "messages": messages}) + "\n")
            labels.append((pii, label))
    return labels


def write_preference(path: Path, records: int, rng: random.Random, pii_share: float) -> list[tuple[bool, str]]:
    labels = []
    with path.open("w", encoding="utf-8") as handle:
        for index in range(records):
            pii = rng.random() < pii_share
            where = rng.choice(["prompt", "chosen", "rejected"])
            fields, label = {}, "clean"
            for name in ("prompt", "chosen", "rejected"):
                text, this = _turn(rng, pii and name == where)
                if name == where:
                    label = this
                fields[name] = [{"role": "user" if name == "prompt" else "assistant", "content": text}]
            handle.write(json.dumps({"id": f"pref-{index}", **fields}) + "\n")
            labels.append((pii, label))
    return labels


def measure(scanner: PiiScanner, path: Path, kind: str, labels: list[tuple[bool, str]]) -> dict:
    flagged: set[int] = set()
    findings: list = []

    def sink(finding) -> None:
        flagged.add(finding.line)
        findings.append((finding.line, finding.field, finding.entity, finding.start, finding.end, finding.score))

    start = time.perf_counter()
    scanner.scan_file(path, kind, sink=sink)
    seconds = time.perf_counter() - start
    positives = sum(1 for pii, _ in labels if pii)
    hits = sum(1 for line, (pii, _) in enumerate(labels, start=1) if pii and line in flagged)
    held_out = [line in flagged for line, (pii, label) in enumerate(labels, start=1) if label.startswith("held-out")]
    unseen = [
        line in flagged
        for line, (pii, label) in enumerate(labels, start=1)
        if label.startswith("held-out") and label.split(": ", 1)[1] not in PHONE_HELD_OUT_AIMED_AT
    ]
    misses = Counter(label for line, (pii, label) in enumerate(labels, start=1) if pii and line not in flagged)
    false = Counter(label for line, (pii, label) in enumerate(labels, start=1) if not pii and line in flagged)
    return {
        "records": len(labels),
        "pii_records": positives,
        "recall": hits / positives if positives else 1.0,
        "held_out": (sum(held_out), len(held_out)),
        "held_out_unseen": (sum(unseen), len(unseen)),
        "precision": hits / len(flagged) if flagged else 1.0,
        "misses": misses,
        "false_hits": false,
        "seconds": seconds,
        "findings": sorted(findings),
    }


def naive_findings(scanner: PiiScanner, path: Path) -> list:
    engine, out = scanner.engine, []
    for record in iter_records(path):
        for field, text in iter_text_fields(record.data):
            results = engine.analyzer.analyze(text, language=engine.language, entities=engine.entities)
            for f in resolve(results, scanner.rules, scanner.priority):
                out.append((record.line, field, f.entity, f.start, f.end, f.score))
    return sorted(out)


LABELLED = REPO / "benchmarks" / "data" / "pii_names_labelled.txt"
#: The held-out set, written before the name gazetteer's rules and not looked at while they were tuned.
HELD_OUT = REPO / "benchmarks" / "data" / "pii_names_heldout.txt"
LABELLED_SETS = (LABELLED, HELD_OUT)
_MARK = re.compile(r"\[\[(PERSON|LOCATION|NRP)\|(.+?)\]\]")
#: Goals of issue 26 for names: span recall and precision of PERSON on the hand-labelled set.
GOAL_NAME_RECALL = 0.90
GOAL_NAME_PRECISION = 0.85


def labelled_sentences(path: Path = LABELLED) -> list[tuple[str, list[tuple[int, int, str]]]]:
    """The hand-labelled sentences: text and (start, end, label) spans, markup removed."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        text, spans, cursor = "", [], 0
        for match in _MARK.finditer(line):
            text += line[cursor : match.start()]
            spans.append((len(text), len(text) + len(match.group(2)), match.group(1)))
            text += match.group(2)
            cursor = match.end()
        out.append((text + line[cursor:], spans))
    return out


def span_scores(scanner: PiiScanner, data: list, entity: str) -> tuple[float, float, int, int, list[str]]:
    """Recall (gold spans overlapped by a finding of ``entity``) and precision (findings overlapping one)."""
    texts = [text for text, _ in data]
    found = scanner.findings_in_many(texts)
    hit = gold_total = true = predicted = 0
    misses: list[str] = []
    for (text, gold), findings in zip(data, found, strict=True):
        spans = [(f.start, f.end) for f in findings if f.entity == entity]
        wanted = [(a, b) for a, b, label in gold if label == entity]
        for a, b in wanted:
            gold_total += 1
            if any(s < b and a < e for s, e in spans):
                hit += 1
            else:
                misses.append(text[a:b])
        predicted += len(spans)
        true += sum(1 for s, e in spans if any(s < b and a < e for a, b in wanted))
    return hit / gold_total if gold_total else 1.0, true / predicted if predicted else 1.0, hit, gold_total, misses


def ner_accuracy(policy_path: Path) -> int:
    """Print PERSON / LOCATION / NRP span recall and precision: policy windows, whole text, pattern-only.

    Per set (the first labelled set, the held-out one written before the name gazetteer's rules, and both);
    the names goal is judged on both together.
    """
    import yaml

    sets = {path.stem.removeprefix("pii_names_"): labelled_sentences(path) for path in LABELLED_SETS}
    sets["both"] = [item for data in list(sets.values()) for item in data]
    raw = yaml.safe_load(policy_path.read_text(encoding="utf-8"))
    variants = {"windows (policy)": raw}
    whole = copy.deepcopy(raw)
    whole["nlp_engine"]["ner_scope"] = "whole_text"
    whole["nlp_engine"].pop("ner_windows", None)
    variants["whole text"] = whole
    patterns = copy.deepcopy(raw)
    patterns["nlp_engine"] = {"engine": "no_op"}
    ner = {"PERSON", "LOCATION", "NRP", "DATE_TIME", "ORGANIZATION"}
    patterns["entities"] = [r for r in raw["entities"] if r["entity"] not in ner]
    patterns["disabled_entities"] = [d for d in raw["disabled_entities"] if d["entity"] not in ner] + [
        {"entity": e, "rationale": "pattern-only"} for e in sorted(ner)
    ]
    variants["pattern-only"] = patterns
    ok = True
    for name, data in sets.items():
        print(f"set {name}: {len(data)} sentences")  # noqa: T201
    person_misses: list[str] = []
    with tempfile.TemporaryDirectory(prefix="pii-ner-") as tmp:
        for name, variant in variants.items():
            path = Path(tmp) / f"{name.split()[0]}.yaml"
            path.write_text(yaml.safe_dump(variant, sort_keys=False, allow_unicode=True), encoding="utf-8")
            scanner = PiiScanner(load_pii_policy(path), path)
            for set_name, data in sets.items():
                line = [f"{name:17s} {set_name:9s}"]
                for entity in ("PERSON", "LOCATION", "NRP"):
                    if entity not in scanner.engine.entities:
                        line.append(f"{entity} not scanned")
                        continue
                    recall, precision, hit, total, misses = span_scores(scanner, data, entity)
                    line.append(f"{entity} recall {recall:.3f} ({hit}/{total}) precision {precision:.3f}")
                    if entity == "PERSON" and name.startswith("windows") and set_name == "both":
                        reached = recall >= GOAL_NAME_RECALL and precision >= GOAL_NAME_PRECISION
                        ok &= reached
                        line.append(
                            f"[names goal: recall {GOAL_NAME_RECALL}, precision {GOAL_NAME_PRECISION}: "
                            f"{'ok' if reached else 'SHORT'}]"
                        )
                        person_misses = misses
                print("  ".join(line))  # noqa: T201
    print(f"names missed with the policy's windows (both sets): {len(person_misses)}")  # noqa: T201
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2000, help="records per kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pii-share", type=float, default=0.3, help="share of records holding PII")
    parser.add_argument("--policy", default=str(REPO / "policies" / "pii.yaml"))
    parser.add_argument("--naive", action="store_true", help="also assert presidio's own loop finds the same")
    parser.add_argument("--ner", action="store_true", help="score NER on the hand-labelled names set instead")
    args = parser.parse_args(argv)
    if args.ner:
        return ner_accuracy(Path(args.policy))

    rng = random.Random(args.seed)
    scanner = PiiScanner(load_pii_policy(args.policy), args.policy)
    ok = True
    with tempfile.TemporaryDirectory(prefix="pii-accuracy-") as tmp:
        for kind, writer in (("sft", write_chat), ("preference", write_preference)):
            path = Path(tmp) / f"{kind}.jsonl"
            labels = writer(path, args.records, rng, args.pii_share)
            result = measure(scanner, path, kind, labels)
            name = "chat" if kind == "sft" else kind
            reached = result["recall"] >= GOAL_RECALL and result["precision"] >= GOAL_PRECISION
            ok &= reached
            print(  # noqa: T201
                f"{name:10s} {result['records']} records ({result['pii_records']} with PII): "
                f"record recall {result['recall']:.3f} (goal {GOAL_RECALL}), "
                f"precision {result['precision']:.3f} (goal {GOAL_PRECISION}) "
                f"{'ok' if reached else 'SHORT'}; {result['seconds']:.1f} s"
            )
            found, total = result["held_out"]
            known = result["pii_records"] - total
            known_found = round(result["recall"] * result["pii_records"]) - found
            print(  # noqa: T201
                "    held-out phone phrasings (written before the policy's words): "
                f"recall {found / total if total else 1:.3f} "
                f"({found}/{total}); every other PII record: recall {known_found / known if known else 1:.3f} "
                f"({known_found}/{known})"
            )
            found, total = result["held_out_unseen"]
            print(  # noqa: T201
                "    held-out pool without the three 'number' phrasings round 2026.11-4 was aimed at: "
                f"recall {found / total if total else 1:.3f} ({found}/{total})"
            )
            for title, counter in (("missed", result["misses"]), ("false hits", result["false_hits"])):
                for label, count in counter.most_common(8):
                    print(f"    {title}: {count} x {label}")  # noqa: T201
            if args.naive:
                same = naive_findings(scanner, path) == result["findings"]
                print(f"    identical findings to presidio's own loop: {same}")  # noqa: T201
                ok &= same
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
