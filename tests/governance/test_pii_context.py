"""Context decides phone numbers both ways: policy words make a phone shape a phone, or an id not one."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from governance.errors import ConfigError
from governance.pii import PiiScanner
from governance.policy.pii import load_pii_policy

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "policies" / "pii.yaml"


@pytest.fixture(scope="module")
def scanner() -> PiiScanner:
    return PiiScanner(load_pii_policy(POLICY), POLICY)


def _phones(scanner: PiiScanner, text: str) -> list[tuple[str, float]]:
    return [(text[f.start : f.end], round(f.score, 2)) for f in scanner.findings_in(text) if f.entity == "PHONE_NUMBER"]


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        # Area codes libphonenumber does not consider assigned, in grouped shapes: phones by shape (0.4),
        # lifted by a phone word before or after the number within the sentence (0.75).
        ("Please call me back on +1 372 555 0148 tomorrow.", ("+1 372 555 0148", 0.75)),
        ("My mobile is (593) 216-4470.", ("(593) 216-4470", 0.75)),
        ("You can reach our support line at 962-318-5507.", ("962-318-5507", 0.75)),
        ("962-318-5507 is my cell. The model ships soon.", ("962-318-5507", 0.75)),
        ("The answer is 962-318-5507.", ("962-318-5507", 0.4)),
        # Separators ".", extensions, other countries, trunk 0: the same.
        ("Reach me at 593.216.4470 x204 please.", ("593.216.4470 x204", 0.75)),
        ("Hotline 962 318 5507 ext. 12", ("962 318 5507 ext. 12", 0.75)),
        ("Get me on +44 20 9722 6020 tonight.", ("+44 20 9722 6020", 0.75)),  # "me on" (2026.11-3)
        ("Tonight: +44 20 9722 6020.", ("+44 20 9722 6020", 0.4)),  # no phone word: a phone by shape
        ("Ring me on +33 6 12 34 56 78.", ("+33 6 12 34 56 78", 0.75)),
        ("Fax: 020 7946 0958", ("020 7946 0958", 0.75)),
        # Bare digits and slashes need a phone word: one in the policy's list lifts 0.05 to 0.4.
        ("Text me at 3725550148!", ("3725550148", 0.4)),
        ("My number is 5932164470.", ("5932164470", 0.4)),
        ("Whatsapp 593/216/4470 after six.", ("593/216/4470", 0.4)),
        ("My mobile is +447700900123.", ("+447700900123", 0.4)),
        # ...as does a frame people give a number in without naming it (policy 2026.11-3).
        ("Buzz me at 5932164470", ("5932164470", 0.4)),
        ("I'm on 5932164470 most evenings.", ("5932164470", 0.4)),
        ("5932164470 gets me directly.", ("5932164470", 0.4)),
        ("Give me a bell on 3725550148.", ("3725550148", 0.4)),
    ],
)
def test_phone_shapes_are_phones_by_shape_or_beside_phone_words(scanner, text, phone):
    assert _phones(scanner, text) == [phone]


@pytest.mark.parametrize(
    "text",
    [
        "Order 7310458826 shipped today.",  # 731 is an assigned area code: libphonenumber accepts it
        "Reference code 5529013374 has been issued.",
        "Order number 7310458826 shipped.",  # "number" right after a qualifier is an id's (policy 2026.11-4)
        "PO number 7310458826 is approved.",
        "Ask Dana about 5932164470",  # a bare number beside words the policy does not list
        "The product 1234 × 5678 is 7006652, and 9876543210 has ten digits.",  # "digits" only as "my digits"
        "Meet me at the depot with order 7310458826.",  # the order word is nearer than "me at"
        "the total is 4317987067 cents",  # a bare valid number with no phone word
        "Compute 529497919 / 8 = 66187239.875",
        "Compute 1227465155 / 11 = 111587741.3636.",  # a decimal libphonenumber reads as a number
        "Send it to 593/216/4470.",  # slashes without a phone word
    ],
)
def test_identifiers_and_bare_numbers_are_not_phones(scanner, text):
    assert _phones(scanner, text) == []


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        # "number" names a phone on its own, before or after the number (policy 2026.11-4)...
        ("The front desk number is 5932164470.", "5932164470"),
        ("The number here is 5932164470.", "5932164470"),
        ("Number's 5932164470", "5932164470"),
        ("5932164470 is the best number to try.", "5932164470"),
        # ...and after a word that is no qualifier: phone, office, customer service, desk.
        ("Office number: 7310458826", "7310458826"),
        ("Customer service number 7310458826", "7310458826"),
        # A phone word nearer than the qualified pair still decides.
        ("Order number 42, but call 7310458826 today.", "7310458826"),
        # ...as does a formatted shape: contrary phrases unmake only bare digit runs, and the pair does not support.
        ("(415) 555-0103 is the order number", "(415) 555-0103"),
    ],
)
def test_number_is_a_phone_word_unless_qualified(scanner, text, phone):
    assert [value for value, _ in _phones(scanner, text)] == [phone]


@pytest.mark.parametrize(
    "text",
    [
        "Order number 7310458826 shipped.",
        "order number 7310458826",
        "7310458826 is your order number.",
        "Your customer number 5932164470 is on the letter.",  # "customer" qualifies, though not contrary alone
        "Serial number 5932164470 is printed on the back.",
        "Routing number 3725550148, please.",
        "Is 5932164470 a prime number?",  # math words qualify too
        "Pick a 10-digit number like 3725550148.",
        "Order number 030 1234567",  # the pair neither supports a trunk-0 shape nor is one of its phone words
    ],
)
def test_number_after_a_qualifier_is_not_a_phone(scanner, text):
    assert _phones(scanner, text) == []


def test_the_qualified_pair_is_reported_as_the_contrary_word(scanner):
    words = scanner.engine.analyzer.context_aware_enhancer.entity_words["PHONE_NUMBER"]
    assert words.decide(["order", "number"], [], "7310458826") == ("contrary", "order number")
    assert words.decide(["front", "desk", "number", "is"], [], "5932164470") == ("supportive", "number")
    assert words.decide([], ["is", "your", "customer", "number"], "7310458826") == ("contrary", "customer number")
    # Right after the match the word before "number" is the match itself: no qualifier.
    assert words.decide(["customer"], ["number"], "7310458826") == ("supportive", "number")


def test_nearest_word_decides_and_contrary_words_spare_formatted_numbers(scanner):
    # "call" is nearer than "order": a phone; "order" nearer than "call": an id.
    assert _phones(scanner, "About the order, call 7310458826 today.") == [("7310458826", 0.4)]
    assert _phones(scanner, "Call about order 7310458826 today.") == []
    # "number", unqualified ("my" is no qualifier), is nearer than "order": a phone.
    assert _phones(scanner, "For the order, my number is 7310458826.") == [("7310458826", 0.4)]
    # A formatted, valid number beside "order" is still a phone (contrary_shape is bare digits).
    assert _phones(scanner, "Order desk: (415) 555-0103.") == [("(415) 555-0103", 0.4)]
    # Words in the next sentence do not describe the number.
    assert _phones(scanner, "Call me at 3725550148. The model ships in May.") == [("3725550148", 0.4)]
    assert _phones(scanner, "It is 3725550148. Call me later.") == []
    # ...nor do those after an emoticon that ends the sentence ("model" is an id word).
    assert _phones(scanner, "Reach our support line at 3725550148 :) The model ships soon.") == [("3725550148", 0.4)]
    assert _phones(scanner, "It is 3725550148 ;-) Call me later.") == []


def _nearest_by_scanning(phrases, words: list[str], preceding: bool) -> dict[str, tuple[int, str]]:
    """Per kind, the nearest phrase, every phrase tried at every distance (the lookup before it was indexed)."""
    nearest: dict[str, tuple[int, str]] = {}
    for phrase, kind, unless_after in phrases:
        wanted = phrase[::-1] if preceding else phrase
        for distance in range(len(words) - len(phrase) + 1):
            if kind in nearest and nearest[kind][0] <= distance:
                break
            if tuple(words[distance : distance + len(phrase)]) != wanted:
                continue
            # The word before the phrase in the text order (the match itself when it is the first word after).
            text_order = words[::-1] + ["<match>"] if preceding else ["<match>"] + words
            first = len(words) - distance - len(phrase) if preceding else distance + 1
            if first > 0 and text_order[first - 1] in unless_after:
                continue
            nearest[kind] = (distance, " ".join(phrase))
            break
    return nearest


def test_nearest_words_are_found_by_index_as_by_scanning_every_phrase(scanner):
    words = scanner.engine.analyzer.context_aware_enhancer.entity_words["PHONE_NUMBER"]
    vocabulary = sorted({word for phrase, _, _ in words.phrases for word in phrase}) + ["the", "is", "7310458826"]
    rng = random.Random(4)
    decided = 0
    for _ in range(3000):
        sample = [rng.choice(vocabulary) for _ in range(rng.randint(0, 9))]
        for preceding in (True, False):
            expected = _nearest_by_scanning(words.phrases, sample, preceding)
            assert words._nearest(sample, preceding) == expected, (sample, preceding)
            decided += len(expected) == 2
    assert decided > 100  # both kinds near the same match, often: ties and distances are exercised


def test_context_enhancement_leaves_the_raw_results_as_they_were(scanner):
    text = "Order 7310458826 shipped; call me back on 3725550148."
    analyzer = scanner.engine.analyzer
    raw = [r for recognizer in scanner.engine.recognizers for r in recognizer.analyze(text, ["PHONE_NUMBER"]) or []]
    before = [(r.entity_type, r.start, r.end, r.score, dict(r.recognition_metadata or {})) for r in raw]
    enhanced = analyzer.context_aware_enhancer.enhance_using_context(text, raw, None, scanner.engine.recognizers)
    assert sorted((r.start, r.score) for r in enhanced) == [(6, 0.0), (42, 0.4)]
    assert [(r.entity_type, r.start, r.end, r.score, dict(r.recognition_metadata or {})) for r in raw] == before


def _variant(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(POLICY.read_text())
    change(data["context"]["entities"][0])
    path = tmp_path / "pii.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda e: e.pop("contrary_shape"),
            "context.entities.0: Value error, PHONE_NUMBER: contrary words need 'contrary_shape' and 'contrary_score'",
        ),
        (
            lambda e: e["supportive"].append("Order"),
            "context.entities.0: Value error, PHONE_NUMBER: words both supportive and contrary: order",
        ),
        (
            lambda e: e["contrary"].append("call-me"),
            "context.entities.0.contrary: Value error, context word 'call-me' must be one or more words of letters "
            "and digits",
        ),
        (
            lambda e: e["qualifiers"].append("phone"),
            "context.entities.0: Value error, PHONE_NUMBER: qualifiers that are supportive words: phone",
        ),
        (
            lambda e: e["qualifiers"].append("credit card"),
            "context.entities.0: Value error, PHONE_NUMBER: qualifiers must be single words: credit card",
        ),
        (
            lambda e: e["supportive"].append("number"),
            "context.entities.0: Value error, PHONE_NUMBER: qualified words also listed as supportive or contrary: "
            "number",
        ),
        (
            lambda e: e.pop("qualifiers"),
            "context.entities.0: Value error, PHONE_NUMBER: 'qualified' and 'qualifiers' need each other",
        ),
        (
            lambda e: e.update(entity="US_PASSPORT"),
            "(top level): Value error, context.entities lists US_PASSPORT but no entities rule scans it",
        ),
    ],
)
def test_context_words_policy_errors_name_the_key(tmp_path, change, message):
    path = _variant(tmp_path, change)
    with pytest.raises(ConfigError) as err:
        load_pii_policy(path)
    assert str(err.value) == f"{path}: {message}"
