"""PII gate accuracy on a generated, labelled set: record recall and precision, chat, preference and disguised PII.

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
finding the gate acts on (action redact or deny; DATE_TIME, LOCATION and NRP, counted only, flag
nothing). Record recall = flagged PII records / PII records; precision =
flagged PII records / flagged records. Misses and false hits are listed by
template with the value masked (never raw). ``--naive`` also runs presidio's
``AnalyzerEngine.analyze`` on every field and asserts the same findings.

Goal (issue 15): recall >= 0.99 and precision >= 0.95 on both kinds.

Disguised PII (issue 38, P1). A third generated set, ``obfuscated``, holds chat records whose PII
turn carries one value in a disguise, eleven forms drawn alike: a Luhn-valid card in full-width
digits, with zero-width or soft-hyphen separators, spelled out ("four one one one, ..."; "oh" for
zero); a phone in full-width digits or spelled out, beside a phone word; an e-mail with "＠" (or
wholly full-width), with (at)/[at]/{at}/[@] and (dot)/[dot]/[.], with " at "/" dot "; a name (of
many origins, some not on the census lists: Wei, Ngozi, Kenji, Thandiwe) in lower case or in
capitals, or split by HTML or Markdown ("J<b>ohn</b> Smith", "Jo**hn** Smith"). Its other records
hold a look-alike instead, ordinary text a de-mangler could misread: number words in prose ("one
or two", counting to eight), "at" and "dot" in prose ("meet me at the station", "look at example
dot com", "the dot product"), Markdown and HTML, full-width and zero-width text without PII,
lower-case words that are names too ("the price rose", "the bill is due", "mark the box") and
sentences in capitals. The set is scanned twice in one run, by the gate's scanner (which
normalises text first, ``governance/pii/normalise.py``) and by the same engine reading text as
written (what the gate did before), and recall per form and false hits per look-alike are printed
side by side. Goal: recall >= 0.95 (names written without case are found only where the lists or a
cue say they are names), precision >= 0.95. ``--ner`` prints, beside the hand-labelled sets as
written, the same sentences in lower case and in capitals, normalised and as written.

Measured 2026-11-25 (2 shared cores), the disguised set, seed 0, 2,000 records (599 disguised):
normalised record recall 0.985, precision 1.000; as written 0.204 / 0.682. Per form, normalised vs
as written: full-width card 1.000 vs 0.000, zero-width card 1.000 / 0.000, spelled-out card 1.000 /
0.000, full-width phone 1.000 / 1.000 (libphonenumber reads full-width digits), spelled-out phone
1.000 / 0.000, full-width e-mail 1.000 / 0.000, (at)/(dot) e-mail 1.000 / 0.019, " at "/" dot "
e-mail 1.000 / 0.037, lower-case name 0.878 / 0.000, capitals 0.948 / 0.414, markup-split name 1.000
/ 0.824. False hits on the 1,401 look-alike records: none normalised; 57 as written (full-width
text without PII that presidio read as PII). Seed 7, 1,500 records: 0.975 / 1.000 vs 0.181 / 0.741.
What is missed: names written without case that neither the lists nor a cue mark ("wei", "ngozi" alone,
"thandiwe nkosi"). Hand-labelled names (``--ner``, both sets, PERSON span recall / precision): as
labelled 0.944 / 0.971 normalised and as written (recasing costs the capitalised sentences nothing);
in lower case 0.630 / 0.986 (as written 0.000); in capitals 0.694 / 0.904 (as written 0.139 / 0.682).
The chat and preference figures are the same with and without normalising (2,000 per kind, seed 0:
chat 0.998 / 0.862, preference 0.998 / 0.891). Their precision is short of the goal since the policy runs
NER ("Meter" in "Meter reading 4159328812 was submitted." is a PERSON to the model), not since this
round; a record now counts as flagged only by a finding the gate acts on: before, a DATE_TIME or
LOCATION (counted only) flagged it, and precision read 0.343 / 0.392 (1,000 per kind). ``--naive`` reports different
findings since the policy's NER reads windows, not whole texts (so at this round's start too).

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
#: Issue 38 (P1): the disguised forms, normalised. Lower than the plain goal: a name written without case is found
#: only where the name lists or a cue say it is one (an unlisted name in lower case is no name to anyone's rules).
GOAL_OBFUSCATED_RECALL = 0.95

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


# --- disguised PII (issue 38, P1) and look-alikes -------------------------------------------------------------

_FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})
_DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
#: Names of many origins, some on the census lists the name rules read, some not (Wei, Ngozi, Kenji, Aisha, Thandiwe:
#: a name written without case is found only if the lists or a cue say it is one).
OBFUSCATED_NAMES = [
    ("john", "smith"), ("maria", "garcia"), ("wei", "zhang"), ("aisha", "bello"), ("sofia", "rossi"),
    ("ahmed", "hassan"), ("emily", "clark"), ("carlos", "mendoza"), ("olga", "petrova"), ("kenji", "tanaka"),
    ("fatima", "khan"), ("david", "cohen"), ("grace", "lee"), ("mark", "taylor"), ("priya", "patel"),
    ("ngozi", "okafor"), ("lucas", "martin"), ("anna", "kowalski"), ("james", "brown"), ("thandiwe", "nkosi"),
    ("jane", "doe"), ("robert", "miller"), ("elena", "popescu"), ("omar", "farouk"), ("linda", "nguyen"),
]  # fmt: skip
NAME_TEMPLATES = [
    "my name is {}", "please forward the file to {}", "{} called about the refund", "ask {} for the form",
    "thanks {}, that helped", "i spoke with {} yesterday", "this is {} from billing", "cc {} on the reply",
    "the parcel is for {}", "{} will sign for it",
]  # fmt: skip
CARD_TEMPLATES = ["my card is {}", "card number: {}", "{} is the card on file", "I paid with {}"]
EMAIL_TEMPLATES = ["write to me at {}", "my email is {}", "send it to {}", "{} is my address"]


def _spell(rng: random.Random, digits: str) -> str:
    return " ".join(rng.choice(["zero", "oh"]) if d == "0" else _DIGIT_NAMES[int(d)] for d in digits)


def _phone_groups(rng: random.Random) -> list[str]:
    return [rng.choice(ASSIGNED_AREA), str(rng.randint(2, 9)) + _digits(rng, 2), _digits(rng, 4)]


def _mailbox(rng: random.Random) -> tuple[str, str]:
    first, last = rng.choice(OBFUSCATED_NAMES)
    return rng.choice([first, f"{first}.{last}", f"{first[0]}{last}"]), rng.choice(
        ["example.com", "example.org", "mail.example.net", "example.co.uk"]
    )


def _split_name(rng: random.Random, first: str, last: str) -> str:
    first, last = first.capitalize(), last.capitalize()
    cut = rng.randint(1, len(first) - 1)
    return rng.choice(
        [
            f"{first[:cut]}<b>{first[cut:]}</b> {last}",
            f"{first[:cut]}**{first[cut:]}** {last}",
            f"<i>{first}</i> <b>{last}</b>",
            f"{first[:cut]}<span class=x>{first[cut:]}</span> {last}",
            f"{first} {last[:1]}__{last[1:]}__",
        ]
    )


def _disguised(rng: random.Random) -> tuple[str, str]:
    """A sentence holding one disguised PII value, and its form's label."""
    form = rng.choice(OBFUSCATED_FORMS)
    if form == "full-width card":
        return rng.choice(CARD_TEMPLATES).format(_luhn_card(rng).translate(_FULL_WIDTH)), form
    if form == "zero-width card":
        separator = rng.choice(["\u200b", "\u200c", "\u2060", "\u00ad"])
        return rng.choice(CARD_TEMPLATES).format(_luhn_card(rng).replace(" ", separator)), form
    if form == "spelled-out card":
        groups = _luhn_card(rng).split()
        joined = rng.choice([" ", " - ", ", "]).join(_spell(rng, g) for g in groups)
        return rng.choice(CARD_TEMPLATES).format(joined), form
    if form == "full-width phone":
        area, exchange, line = _phone_groups(rng)
        return rng.choice(PHONE_BEFORE).format(f"({area}) {exchange}-{line}".translate(_FULL_WIDTH)), form
    if form == "spelled-out phone":
        joined = rng.choice([" ", ", ", " - "]).join(_spell(rng, g) for g in _phone_groups(rng))
        return rng.choice(PHONE_BEFORE).format(joined), form
    if form == "full-width e-mail (＠)":
        local, domain = _mailbox(rng)
        address = f"{local}＠{domain}" if rng.random() < 0.5 else f"{local}@{domain}".translate(_FULL_WIDTH)
        return rng.choice(EMAIL_TEMPLATES).format(address), form
    if form == "(at)/(dot) e-mail":
        local, domain = _mailbox(rng)
        at = rng.choice(["(at)", "[at]", "{at}", "(AT)", "[@]"])
        dot = rng.choice(["(dot)", "[dot]", "[.]", "(DOT)", "."])
        spaced = rng.random() < 0.7
        address = f"{local}{' ' if spaced else ''}{at}{' ' if spaced else ''}" + (
            f" {dot} " if spaced and dot != "." else dot
        ).join(domain.split("."))
        return rng.choice(EMAIL_TEMPLATES).format(address), form
    if form == "' at ' / ' dot ' e-mail":
        local, domain = _mailbox(rng)
        at, dot = rng.choice([(" at ", " dot "), (" AT ", " DOT "), (" at ", " [dot] ")])
        return rng.choice(EMAIL_TEMPLATES).format(local.replace(".", dot) + at + dot.join(domain.split("."))), form
    if form == "lower-case name":
        first, last = rng.choice(OBFUSCATED_NAMES)
        name = f"{first} {last}" if rng.random() < 0.7 else first
        return rng.choice(NAME_TEMPLATES).format(name), form
    if form == "all-caps name":
        first, last = rng.choice(OBFUSCATED_NAMES)
        name = f"{first} {last}" if rng.random() < 0.7 else first
        return rng.choice(NAME_TEMPLATES).format(name).upper(), form
    first, last = rng.choice(OBFUSCATED_NAMES)
    return rng.choice(NAME_TEMPLATES).format(_split_name(rng, first, last)), form


OBFUSCATED_FORMS = [
    "full-width card", "zero-width card", "spelled-out card", "full-width phone", "spelled-out phone",
    "full-width e-mail (＠)", "(at)/(dot) e-mail", "' at ' / ' dot ' e-mail", "lower-case name", "all-caps name",
    "markup-split name",
]  # fmt: skip
#: Ordinary text the disguises could be mistaken in (each label a kind): number words, "at" and "dot" in prose,
#: Markdown and HTML, full-width and zero-width characters, lower-case and capitalised words that are also names.
LOOK_ALIKES = {
    "number words in prose": [
        "I bought {a} apples and {b} pears.", "one or two of them, maybe three",
        "we need two, three, maybe four people", "chapter one, verse two", "one by one, two by two",
        "she has three kids and one dog",
        "count with me: one two three four five six seven eight", "give me five, no, six minutes",
    ],
    "'at' and 'dot' in prose": [
        "meet me at the station at {a}", "look at example dot com for the docs", "we met at the cafe near work",
        "visit us at example dot com", "arrive at gate {a} by noon", "connect the dots on page {a}",
        "the dot product of u and v is {b}", "she wore a polka dot dress at the party",
    ],
    "markup": [
        "**Step {a}:** add the *numbers* together.", "Use `snake_case_names` in __init__.", "<b>Total:</b> {b}",
        "x_1 + x_2 = {b}", "_Note_: keep the ~~old~~ receipt.", "<i>Important</i>: read the <u>manual</u>.",
    ],
    "full-width and zero-width text": [
        "Ｔｏｔａｌ： {fw} items", "{fw} × ３ ＝ result", "ｈｅｌｌｏ ｗｏｒｌｄ, see you",
        "zero\u200bwidth\u200bjoined words", "soft\u00adhyphen\u00adated words", "Ｏｒｄｅｒ shipped today",
    ],
    "lower-case and capitalised words": [
        "the price rose by {a} percent", "mark the box and sign below", "the bill is due friday",
        "the grace period ends soon", "i hope so, it's the art of waiting", "winter sports and summer camps",
        "PLEASE CALL THE OFFICE BEFORE NOON", "IMPORTANT: READ THE MANUAL FIRST", "THE BILL IS DUE, MARK THE DATE",
        "may i ask a question?", "will it ship by june?",
    ],
}  # fmt: skip


def _look_alike(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(sorted(LOOK_ALIKES))
    a, b = rng.randint(2, 12), rng.randint(13, 999)
    text = rng.choice(LOOK_ALIKES[kind]).format(a=a, b=b, fw=str(b).translate(_FULL_WIDTH))
    return text, f"look-alike: {kind}"


def write_obfuscated(path: Path, records: int, rng: random.Random, pii_share: float) -> list[tuple[bool, str]]:
    """Chat records: with PII, one turn holds a disguised value (:func:`_disguised`); without, one a look-alike."""
    labels = []
    with path.open("w", encoding="utf-8") as handle:
        for index in range(records):
            pii = rng.random() < pii_share
            turns = rng.randint(2, 5)
            where = rng.randrange(turns)
            messages, label = [], "clean"
            for turn in range(turns):
                if turn == where:
                    text, label = _disguised(rng) if pii else _look_alike(rng)
                else:
                    text = rng.choice(CHAT_FILLER)
                messages.append({"role": "user" if turn % 2 == 0 else "assistant", "content": text})
            handle.write(json.dumps({"id": f"obf-{index}", "messages": messages}, ensure_ascii=False) + "\n")
            labels.append((pii, label))
    return labels


def obfuscated_side_by_side(scanner: PiiScanner, as_written: PiiScanner, path: Path, labels: list) -> bool:
    """Record recall and precision of the disguised set, normalised and as written, per form; whether the goal holds."""
    scanners = {"normalised": scanner, "as written": as_written}
    results = {name: measure(each, path, "sft", labels) for name, each in scanners.items()}
    for name, result in results.items():
        print(  # noqa: T201
            f"obfuscated {name:10s} {result['records']} records ({result['pii_records']} with disguised PII): "
            f"record recall {result['recall']:.3f}, precision {result['precision']:.3f}; {result['seconds']:.1f} s"
        )
    forms = Counter(label for pii, label in labels if pii)
    for form in OBFUSCATED_FORMS:
        cells = []
        for name, result in results.items():
            found = forms[form] - result["misses"][form]
            cells.append(f"{name} {found / forms[form] if forms[form] else 1:.3f} ({found}/{forms[form]})")
        print(f"    {form:24s} " + "   ".join(cells))  # noqa: T201
    kinds = Counter(label for pii, label in labels if not pii)
    for kind in sorted(kinds):
        hits = "   ".join(f"{name} {result['false_hits'][kind]}" for name, result in results.items())
        print(f"    false hits on {kind.removeprefix('look-alike: ')} ({kinds[kind]} records): {hits}")  # noqa: T201
    normalised = results["normalised"]
    reached = normalised["recall"] >= GOAL_OBFUSCATED_RECALL and normalised["precision"] >= GOAL_PRECISION
    print(  # noqa: T201
        f"    [goal: recall {GOAL_OBFUSCATED_RECALL}, precision {GOAL_PRECISION} normalised: "
        f"{'ok' if reached else 'SHORT'}]"
    )
    for label, count in normalised["misses"].most_common(6):
        print(f"    missed (normalised): {count} x {label}")  # noqa: T201
    return reached


def measure(scanner: PiiScanner, path: Path, kind: str, labels: list[tuple[bool, str]]) -> dict:
    flagged: set[int] = set()
    findings: list = []

    def sink(finding) -> None:
        # A record is flagged by a finding the gate acts on (redact, deny): since the policy runs NER, dates and
        # places are counted (action allow) in nearly every record, and flag nothing.
        if finding.action != "allow":
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
    """presidio's own loop over each field as the scanner's normaliser writes it, mapped back as the scanner does."""
    engine, out = scanner.engine, []
    for record in iter_records(path):
        for field, text in iter_text_fields(record.data):
            [read] = scanner.normalise([text])
            results = engine.analyzer.analyze(read.text, language=engine.language, entities=engine.entities)
            for f in resolve(results, scanner.rules, scanner.priority):
                out.append((record.line, field, f.entity, *read.span(f.start, f.end), f.score))
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
    ok &= caseless_names_side_by_side(policy_path, sets["both"])
    return 0 if ok else 1


def caseless_names_side_by_side(policy_path: Path, data: list) -> bool:
    """PERSON span recall and precision on the hand-labelled sentences in lower case and in capitals (issue 38),
    normalised and as written, the policy's windows; the sentences as labelled beside them. Whether the capitalised
    sentences still meet the names goal normalised (recasing must not cost what capitals find)."""
    scanner = PiiScanner(load_pii_policy(policy_path), policy_path)
    scanners = {"normalised": scanner, "as written": PiiScanner(scanner.policy, policy_path, engine=scanner.engine,
                                                                normalise=False)}  # fmt: skip
    variants = {"as labelled": data}
    for name, change in (("lower case", str.lower), ("capitals", str.upper)):
        variants[name] = [(change(text), gold) for text, gold in data if len(change(text)) == len(text)]
    ok = True
    for variant, sentences in variants.items():
        cells = []
        for name, each in scanners.items():
            recall, precision, hit, total, _ = span_scores(each, sentences, "PERSON")
            cells.append(f"{name} recall {recall:.3f} ({hit}/{total}) precision {precision:.3f}")
            if variant == "as labelled" and name == "normalised":
                ok &= recall >= GOAL_NAME_RECALL and precision >= GOAL_NAME_PRECISION
        print(f"names in {variant:11s} (both sets, {len(sentences)} sentences): " + "   ".join(cells))  # noqa: T201
    return ok


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
        # The disguised forms: the same scanner, and the same engine reading texts as written, on one file
        path = Path(tmp) / "obfuscated.jsonl"
        labels = write_obfuscated(path, args.records, rng, args.pii_share)
        as_written = PiiScanner(scanner.policy, args.policy, engine=scanner.engine, normalise=False)
        ok &= obfuscated_side_by_side(scanner, as_written, path, labels)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
