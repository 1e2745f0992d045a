"""The presidio engine built from policies/pii.yaml: what it detects, and the windowed analyzer's equality."""

from __future__ import annotations

import logging
import random
import tempfile
from pathlib import Path

import pytest
import yaml
from pii_policies import write_pattern_only  # tests/governance/pii_policies.py
from presidio_analyzer.predefined_recognizers import NhsRecognizer, PhoneRecognizer, UsLicenseRecognizer

from governance.errors import ConfigError
from governance.pii import PiiScanner, WindowedAnalyzer, build_engine, phone_rule, run_rules
from governance.pii.engine import guard_presidio_logs
from governance.pii.gate import not_scanned_violations
from governance.policy.pii import PiiPolicy, load_pii_policy

REPO = Path(__file__).resolve().parents[2]
#: The shipped policy without NER: these tests hold the pattern recognizers to presidio's own results.
POLICY = write_pattern_only(Path(tempfile.mkdtemp(prefix="pii-pattern-only-")))

#: One planted value per entity the shipped policy scans, in a sentence that gives it its context.
PLANTED = {
    "EMAIL_ADDRESS": ("Write to me at {} please.", "jane.doe@example.com"),
    "PHONE_NUMBER": ("You can call {} after five.", "(415) 555-0103"),
    "CREDIT_CARD": ("My card number is {} thanks.", "4111 1111 1111 1111"),
    "IBAN_CODE": ("Refund to {} today.", "DE89 3704 0044 0532 0130 00"),
    "US_SSN": ("My social security number is {} ok.", "123-45-6788"),
    "IP_ADDRESS": ("Login from {} was blocked.", "203.0.113.76"),
    "URL": ("See {} for details.", "https://intranet.example.com/u/jdoe"),
    "CRYPTO": ("Send it to {} now.", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"),
    "EMPLOYEE_ID": ("The employee id is {} here.", "E123456"),
    "CUSTOMER_NAME": ("Our client {} called.", "Northwind Traders"),
}


@pytest.fixture(scope="module")
def policy() -> PiiPolicy:
    return load_pii_policy(POLICY)


@pytest.fixture(scope="module")
def scanner(policy) -> PiiScanner:
    return PiiScanner(policy, POLICY)


def _raw(policy_dict: dict, tmp_path: Path) -> Path:
    path = tmp_path / "pii.yaml"
    path.write_text(yaml.safe_dump(policy_dict, sort_keys=False))
    return path


@pytest.mark.parametrize("entity", sorted(PLANTED))
def test_each_entity_is_detected_with_its_exact_span(scanner, entity):
    template, value = PLANTED[entity]
    text = template.format(value)
    found = scanner.findings_in(text)
    start = text.index(value)
    assert [(f.entity, f.start, f.end) for f in found] == [(entity, start, start + len(value))]


def test_checksums_decide_for_cards_ibans_and_wallets(scanner):
    # Same shapes, wrong check digits: presidio's validators reject them.
    for text in (
        "card 4111 1111 1111 1112",
        "iban DE89 3704 0044 0532 0130 01",
        "btc 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3",
    ):
        assert scanner.findings_in(text) == [], text


def test_context_words_lift_a_weak_pattern_over_its_threshold(scanner):
    # The bare E + 6 digits shape scores 0.3 (threshold 0.6); "employee" before it adds 0.35.
    assert scanner.findings_in("Reference E123456 in the ledger.") == []
    # Context words of policy 2026.11-3: payroll and contractor records name staff too.
    [payroll] = scanner.findings_in("Payroll E123456 was paid late.")
    assert (payroll.entity, round(payroll.score, 2)) == ("EMPLOYEE_ID", 0.65)
    assert scanner.findings_in("Room E123456 is free.") == []
    [finding] = scanner.findings_in("Ask the employee with badge E123456.")
    assert (finding.entity, round(finding.score, 2)) == ("EMPLOYEE_ID", 0.65)
    # Context further than the look-back window does not count.
    far = "employee " + "x " * 40 + "E123456"
    assert scanner.findings_in(far) == []


def test_math_data_is_not_flagged(scanner):
    text = (
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May. 3x + 7 = 22 so x = 5. The sum 1+2+...+100 = 5050; "
        "in 2021 she had $1,200 and 3.14159 * 2 = 6.28318. Let x2 = 15, a10 = 3; 123456789 is 9 digits."
    )
    assert scanner.findings_in(text) == []


def test_engine_lists_the_recognizers_that_run_and_no_ner_without_spacy(scanner):
    info = scanner.engine.info.to_dict()
    assert info["nlp_engine"] == "no_op" and info["fallback_reason"] is None
    listed = {r["name"]: r["entities"] for r in info["recognizers"]}
    assert listed == {
        "CreditCardRecognizer": ["CREDIT_CARD"],
        "IbanRecognizer": ["IBAN_CODE"],
        "UsSsnRecognizer": ["US_SSN"],
        "CryptoRecognizer": ["CRYPTO"],
        "EmailRecognizer": ["EMAIL_ADDRESS"],
        "PhoneRecognizer": ["PHONE_NUMBER"],
        "IpRecognizer": ["IP_ADDRESS"],
        "UrlRecognizer": ["URL"],
        "EmployeeIdRecognizer": ["EMPLOYEE_ID"],
        "CustomerNameRecognizer": ["CUSTOMER_NAME"],
        "PhoneShapeRecognizer": ["PHONE_NUMBER"],
    }
    every_entity = {e for entities in listed.values() for e in entities}
    assert not every_entity & {"PERSON", "LOCATION", "ORGANIZATION", "NRP"}
    assert "PERSON" not in info["entities_scanned"]


def test_disabled_entities_are_off_for_a_reason_presidio_shows(scanner, policy):
    # UK_NHS: a US phone number passes the NHS mod-11 check.
    us_phone = "Call 212 555 0105"
    assert NhsRecognizer().analyze(us_phone, ["UK_NHS"])
    assert PhoneRecognizer().analyze(us_phone, ["PHONE_NUMBER"])
    # US_DRIVER_LICENSE: math variables are "licences".
    assert {r.start for r in UsLicenseRecognizer().analyze("Let x2 = 15", ["US_DRIVER_LICENSE"])} == {4}
    disabled = {d.entity for d in policy.disabled_entities}
    assert {"UK_NHS", "US_DRIVER_LICENSE", "DATE_TIME", "US_BANK_NUMBER", "PERSON"} <= disabled
    assert not disabled & set(scanner.engine.entities)
    assert [e for e, _ in [(f.entity, f) for f in scanner.findings_in(us_phone)]] == ["PHONE_NUMBER"]


TRICKY = [
    "Compute 12345 * 678 = 8369910. Then 2024-01-15 and 3.14159, 1/2, 555-1234, 212-555-0199 and 4111 1111 1111 1111",
    "abc8005551234 and 8005551234def and 1x2x3x4x5x6 and +1-800-FLOWERS and 2021-03-04 12:30 ext. 12 x123",
    "jane.doe@example.com visit https://example.com/page www.test.org 192.168.1.10 ::1 fe80::1ff:fe23:4567:890a",
    "DE89 3704 0044 0532 0130 00 GB82WEST12345698765432 gb82 west 1234 5698 7654 32 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
    "call +44 20 7946 0958 or (415) 555-2671 ext. 12, employee E123456; Contoso Pharmaceuticals\nssn 078-05-1121",
    "٣٤٥٦٧٨٩٠١٢ and １２３４５６７８９０ and 415\u00a0555\u00a00103 and 12 34 56 78 90 12 34 56 78 90 12 34",
    "+49 30 1234567, 0049 30 1234567, +41 44 668 18 00, 011 44 20 7946 0958, 00 44 20 7946 0958 and 0000123",
    "CA 310-1234, GB 8001111, 020 7946 0958, 1 800 555 0199 x12, (3343 - 8) / 11 = 303.1818, 1648 + 16.4000",
]


def _fuzz_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    pieces = [value for _, value in PLANTED.values()] + [
        "x@y", "train.py", "e.g.", "10.0.0.256", "::", "1:2:3:4:5:6:7:8", "4111-1111-1111-1111", "378282246310005",
        "123 45 6789", "12345-6789", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "+1 (415) 555-2671", "030 1234567",
        "555-1234", "ext. 12", "x123", "#", "12:30", "phone", "card", "iban", "ssn", "wallet", "(", ")", "/", "-", ".",
        ",", "+", "\n", "\t", "\u00a0", "é", "K",
    ]  # fmt: skip

    def number() -> str:
        return "".join(rng.choice("0123456789") for _ in range(rng.choice([1, 2, 3, 4, 6, 7, 9, 10, 11, 13, 16])))

    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 30)):
            roll = rng.random()
            if roll < 0.3:
                parts.append(number())
            elif roll < 0.55:
                parts.append(rng.choice(pieces))
            elif roll < 0.8:
                parts.append("".join(rng.choice("abcdeinostxEXT") for _ in range(rng.randint(1, 7))))
            else:
                parts.append(rng.choice(" -./()+x:;,#\n"))
            parts.append(rng.choice([" ", "", " ", "\n", "-", ".", ", "]))
        texts.append("".join(parts))
    return texts


def _as_tuples(results):
    return sorted((r.entity_type, r.start, r.end, r.score) for r in results)


def test_windowed_analyzer_equals_presidio_on_tricky_and_random_texts(scanner):
    engine = scanner.engine
    windowed = scanner.windowed
    assert set(windowed.windowed) == {
        "CreditCardRecognizer", "IbanRecognizer", "UsSsnRecognizer", "CryptoRecognizer",
        "EmailRecognizer", "PhoneRecognizer", "IpRecognizer", "UrlRecognizer",
    }  # fmt: skip
    assert set(windowed.whole_text) == {"EmployeeIdRecognizer", "CustomerNameRecognizer", "PhoneShapeRecognizer"}
    for text in TRICKY + _fuzz_texts(150, seed=7):
        assert _as_tuples(windowed.analyze(text)) == _as_tuples(engine.analyze(text)), repr(text)


def test_phone_numbers_count_nationally_for_the_policy_regions_only(scanner, policy, tmp_path):
    # presidio's default regions include DE, where 1648 and 168.50 are valid numbers: math noise.
    assert PhoneRecognizer().analyze("Next, 1648 + 319 = 1967 and 16.4000", ["PHONE_NUMBER"])
    assert scanner.findings_in("Next, 1648 + 319 = 1967 and 16.4000") == []
    # International numbers count for every country; national ones for US, GB, CA.
    for text in ("call +49 30 1234567", "call 020 7946 0958", "call (415) 555-0103", "call 0049 30 1234567"):
        assert [f.entity for f in scanner.findings_in(text)] == ["PHONE_NUMBER"], text
    # A Berlin number written nationally: libphonenumber does not validate it for US/GB/CA, so it
    # counts only by its shape next to a phone word (context.entities), never bare.
    assert scanner.findings_in("see 030 1234567") == []
    [finding] = scanner.findings_in("call 030 1234567")
    assert (finding.entity, finding.start, finding.end, finding.score) == ("PHONE_NUMBER", 5, 16, 0.4)
    data = policy.model_dump(mode="json")
    data["phone_regions"] = ["US", "XX"]
    path = _raw(data, tmp_path)
    with pytest.raises(ConfigError) as err:
        build_engine(load_pii_policy(path), path)
    assert str(err.value) == f"{path}: phone_regions: libphonenumber does not know XX"


def test_phone_trigger_keeps_every_number_libphonenumber_could_validate(scanner):
    phone = next(rule for recognizer, rule in scanner.windowed.plans if recognizer.name == "PhoneRecognizer")
    assert phone.min_digits == 6 and phone.national.dialling_prefixes == ["00", "011"]
    for kept in ("(415) 555-0103", "1 415 555 0103", "020 7946 0958", "0044 20 7946 0958", "310-1234", "8001111"):
        assert phone.national.may_hold_number(kept), kept
    for dropped in ("(3343 - 8) / 11", "303.1818", "0000123", "2024"):
        assert not phone.national.may_hold_number(dropped), dropped


def test_long_texts_fall_back_to_whole_text_phone_scan(scanner):
    # A text where libphonenumber could exhaust its 65,535 tries is scanned whole: still identical.
    text = " ".join(f"{n:010d}" for n in range(3000, 3400)) + " call (415) 555-0103"
    phone = next(rule for r, rule in scanner.windowed.plans if r.name == "PhoneRecognizer")
    assert phone.windows(text) is None
    assert _as_tuples(scanner.windowed.analyze(text)) == _as_tuples(scanner.engine.analyze(text))


def test_spacy_model_missing_is_a_config_error(policy, tmp_path):
    data = policy.model_dump(mode="json")
    data["nlp_engine"] = {"engine": "spacy", "model": "en_core_web_zz", "fallback": "error", "ner_scope": "whole_text"}
    path = _raw(data, tmp_path)
    with pytest.raises(ConfigError) as err:
        build_engine(load_pii_policy(path), path)
    assert str(err.value) == (
        f"{path}: nlp_engine.model: spaCy model 'en_core_web_zz' is not installed; install it (make's set-up "
        "installs requirements-models.lock: pip install --require-hashes --no-deps -r requirements-models.lock) "
        "or set nlp_engine.engine: no_op (pattern recognizers only, no PERSON/LOCATION)"
    )


def test_spacy_fallback_no_op_reports_person_as_not_scanned(policy, tmp_path):
    data = policy.model_dump(mode="json")
    data["nlp_engine"] = {"engine": "spacy", "model": "en_core_web_zz", "fallback": "no_op", "ner_scope": "whole_text"}
    data["entities"].append(
        {
            "id": "pii.person",
            "entity": "PERSON",
            "action": "redact",
            "severity": "warn",
            "score_threshold": 0.6,
            "rationale": "names",
        }  # fmt: skip
    )
    data["disabled_entities"] = [d for d in data["disabled_entities"] if d["entity"] != "PERSON"]
    path = _raw(data, tmp_path)
    variant = load_pii_policy(path)
    engine = build_engine(variant, path)
    assert engine.info.nlp_engine == "no_op" and engine.info.requested_nlp_engine == "spacy"
    assert "PERSON" not in engine.entities
    assert all("PERSON" not in r.entities for r in engine.info.recognizers)
    [violation] = not_scanned_violations(variant, engine.info, str(path))
    assert violation.line() == (
        f"warn  pii.person  {path}: PERSON was not scanned: spaCy model 'en_core_web_zz' is not installed; "
        "nlp_engine.fallback is no_op, so no NER ran"
    )


def test_person_under_no_op_is_a_config_error(policy, tmp_path):
    data = policy.model_dump(mode="json")
    data["entities"].append(
        {
            "id": "pii.person",
            "entity": "PERSON",
            "action": "redact",
            "severity": "warn",
            "score_threshold": 0.6,
            "rationale": "names",
        }  # fmt: skip
    )
    data["disabled_entities"] = [d for d in data["disabled_entities"] if d["entity"] != "PERSON"]
    path = _raw(data, tmp_path)
    with pytest.raises(ConfigError) as err:
        build_engine(load_pii_policy(path), path)
    assert str(err.value) == (
        f"{path}: entities.10.entity: no recognizer detects 'PERSON' with nlp_engine 'no_op'; "
        "it needs an NER model: set nlp_engine.engine: spacy with an installed model"
    )


def test_installed_spacy_model_adds_its_ner_recognizer(policy, tmp_path):
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(
        [{"label": "PERSON", "pattern": [{"LOWER": "alice"}, {"LOWER": "liddell"}]}]
    )
    model_dir = tmp_path / "ruler_model"
    nlp.to_disk(model_dir)
    data = policy.model_dump(mode="json")
    data["nlp_engine"] = {"engine": "spacy", "model": str(model_dir), "fallback": "error", "ner_scope": "whole_text"}
    data["entities"].append(
        {
            "id": "pii.person",
            "entity": "PERSON",
            "action": "redact",
            "severity": "warn",
            "score_threshold": 0.6,
            "rationale": "names",
        }  # fmt: skip
    )
    data["disabled_entities"] = [d for d in data["disabled_entities"] if d["entity"] != "PERSON"]
    path = _raw(data, tmp_path)
    engine = build_engine(load_pii_policy(path), path)
    assert engine.info.nlp_engine == "spacy" and engine.info.nlp_model == str(model_dir)
    ner = [r for r in engine.info.recognizers if r.source == "nlp:spacy"]
    assert [r.name for r in ner] == ["SpacyRecognizer"] and "PERSON" in ner[0].entities
    text = "Alice Liddell paid with 4111 1111 1111 1111, call (415) 555-0103."
    assert ("PERSON", 0, 13) in [(r.entity_type, r.start, r.end) for r in engine.analyze(text)]
    windowed = WindowedAnalyzer(engine)
    assert windowed.ner == ["SpacyRecognizer"] and "SpacyRecognizer" not in windowed.whole_text
    assert _as_tuples(windowed.analyze(text)) == _as_tuples(engine.analyze(text))


def test_presidio_log_arguments_are_withheld(caplog):
    guard_presidio_logs()
    with caplog.at_level(logging.ERROR, logger="presidio-analyzer"):
        logging.getLogger("presidio-analyzer").error("Failed to validate text %s", "DE89370400440532013000")
    assert "DE89370400440532013000" not in caplog.text
    assert "Failed to validate text %s [arguments withheld" in caplog.text


def _phone_texts(count: int, seed: int) -> list[str]:
    """Phone numbers in usual and unusual shapes, with prefixes, extensions and math around them."""
    rng = random.Random(seed)
    heads = ["", "", "1", "+1 ", "0", "+44 ", "0044 ", "011 44 ", "011 ", "00 1 ", "(", "+", "180020", "44"]
    shapes = [(3, 3, 4), (4, 3, 4), (2, 4, 4), (3, 4, 4), (5, 6), (4, 6), (3, 7), (10,), (11,), (7,), (4, 4, 4, 4)]
    around = ["(7819 - 7983) / 10 = ", "call ", "x", " ext. 12", "203.0.113.92", " / 8", ", ", "#", "1 ٣٤٥ "]
    texts = []
    for _ in range(count):
        separator = rng.choice([" ", "-", ".", "", "  ", "/", " - ", "\u00a0", ") "])
        groups = ["".join(rng.choice("0123456789") for _ in range(n)) for n in rng.choice(shapes)]
        phone = rng.choice(heads) + separator.join(groups)
        texts.append(rng.choice(around) + phone + rng.choice(around))
    return texts


def test_phone_trigger_reads_a_dialling_prefix_as_libphonenumber_does(scanner):
    """After ``00``/``011`` a country code and a number of that country, or no valid number can follow."""
    phone = next(rule for recognizer, rule in scanner.windowed.plans if recognizer.name == "PhoneRecognizer")
    may_hold_number = phone.national.may_hold_number
    # Record ids and counters: 00 + country code 1 + four digits, 00 + 20 (Egypt) + 3 digits: no number.
    for dropped in ("0015000", "0020999", "0019999", "011 1 555", "0099999"):
        assert not may_hold_number(dropped), dropped
    # Real international numbers after a dialling prefix stay, whatever the country.
    for kept in ("0049 30 1234567", "011 44 20 7946 0958", "00 1 415 555 0103", "0081 3 1234 5678", "00 800 1234 5678"):
        assert may_hold_number(kept), kept
    # Argentina rewrites its numbers while stripping the national prefix (a 9 inserted): no pattern is
    # checked, only that enough digits follow (10-digit numbers, one digit the rule adds).
    assert may_hold_number("0054 0 11 15 1234 5678") and not may_hold_number("00 54 1")
    # The prefilter asks the same of a dialling prefix: a record id fires no phone recognizer at all.
    windowed = scanner.windowed
    fired = windowed.prefilter.fired(["bench-0015000", "ids 0010000 to 0019999", "call 0044 20 7946 0958"])
    assert [windowed._phone_plan in plans for plans in fired] == [False, False, True]


def test_phone_trigger_never_drops_what_libphonenumber_validates_after_a_dialling_prefix(scanner):
    """Soundness, sampled: anything ruled out parses to no valid number in any region of the recognizer."""
    import phonenumbers

    recognizer, phone = next((r, rule) for r, rule in scanner.windowed.plans if r.name == "PhoneRecognizer")
    rng = random.Random(15)
    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    ruled_out = 0
    for _ in range(4000):
        example = phonenumbers.example_number_for_type(rng.choice(regions), rng.randrange(11))
        if example is None:
            continue
        digits = phonenumbers.national_significant_number(example)
        cut = rng.randrange(len(digits))
        digits = rng.choice(
            [digits, digits[:cut] + digits[cut + 1 :], digits[:cut] + str(rng.randrange(10)) + digits[cut + 1 :]]
        )
        code = rng.choice([str(example.country_code), str(example.country_code)[:-1] or "7", "99", "1"])
        text = rng.choice(["00", "011", "00 ", "011-"]) + code + rng.choice(["", " "]) + digits
        if phone.national.may_hold_number(text):
            continue
        ruled_out += 1
        for region in recognizer.supported_regions:
            _assert_no_valid_number(text, region)
    assert ruled_out > 500


def _assert_no_valid_number(text: str, region: str) -> None:
    """libphonenumber parses ``text`` with default ``region`` to no valid number (or not at all)."""
    import phonenumbers

    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return
    assert not phonenumbers.is_valid_number(number), (text, region)


def test_phone_windows_skip_hopeless_parses_and_keep_presidios_results(scanner, monkeypatch):
    recognizer, phone = next((r, rule) for r, rule in scanner.windowed.plans if r.name == "PhoneRecognizer")
    assert phone.guarded  # the shipped presidio's loop is the one repeated: the fast path runs
    asked, skipped = [], []
    for_region = phone.national.for_region

    def counting_for(region: str):
        may_hold_number = for_region(region)

        def counting(candidate: str) -> bool:
            answer = may_hold_number(candidate)
            asked.append(candidate)
            if not answer:
                skipped.append(candidate)
            return answer

        return counting

    monkeypatch.setattr(phone.national, "for_region", counting_for)
    texts = TRICKY + _phone_texts(300, seed=5)
    found = 0
    for text in texts:
        expected = _as_tuples(recognizer.analyze(text=text, entities=["PHONE_NUMBER"], nlp_artifacts=None))
        assert _as_tuples(phone.analyze_window(recognizer, text, ["PHONE_NUMBER"])) == expected, repr(text)
        found += bool(expected)
    assert found > 50 and len(skipped) > len(asked) / 3  # real numbers found, most hopeless parses skipped
    # The comparison above catches a guard that skips a parse presidio validates:
    monkeypatch.setattr(phone.national, "for_region", lambda region: lambda candidate: "(415)" not in candidate)
    assert phone.analyze_window(recognizer, "call (415) 555-0103", ["PHONE_NUMBER"]) == []
    assert _as_tuples(recognizer.analyze(text="call (415) 555-0103", entities=["PHONE_NUMBER"])) == [
        ("PHONE_NUMBER", 5, 19, 0.4)
    ]


def test_phone_matcher_of_one_region_skips_what_only_another_region_could_validate(scanner):
    """A matcher parsing with region GB skips a NANPA-only number, and the US one a UK-only number."""
    phone = next(rule for r, rule in scanner.windowed.plans if r.name == "PhoneRecognizer")
    us, gb = phone.national.for_region("US"), phone.national.for_region("GB")
    assert us("(415) 555-0103") and not gb("(415) 555-0103")
    assert gb("07911 123456") and not us("07911 123456")  # a UK mobile: no NANPA number in its digits
    for both in ("+44 20 7946 0958", "0044 20 7946 0958", "1-800-FLOWERS"):  # plus, UK prefix, vanity letters
        assert gb(both) and phone.national.may_hold_number(both), both
    assert not phone.national.for_region("XX")("(415) 555-0103")  # an unknown region parses only "+" numbers
    assert phone.national.for_region("XX")("+1 415 555 0103")
    # Soundness, sampled: what one region's check rules out never parses to a valid number with that region.
    import phonenumbers

    rng = random.Random(16)
    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    ruled_out = 0
    for _ in range(3000):
        example = phonenumbers.example_number_for_type(rng.choice(regions + ["US", "GB", "CA"] * 20), rng.randrange(11))
        if example is None:
            continue
        digits = phonenumbers.national_significant_number(example)
        head = rng.choice(["", "0", "1", f"00{example.country_code}", f"011{example.country_code}", "(0)"])
        text = head + rng.choice(["", " ", "-"]) + digits
        for region in ("US", "GB", "CA"):
            if phone.national.for_region(region)(text):
                continue
            ruled_out += 1
            _assert_no_valid_number(text, region)
    assert ruled_out > 1000


def test_phone_windows_refuse_a_region_that_rewrites_its_numbers(caplog):
    """Argentina's national prefix rule inserts a 9: its numbers' digits are not the text's, so no windows."""
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer as Recognizer

    with caplog.at_level(logging.WARNING, logger="governance.pii.phone_rule"):
        assert phone_rule.phone_rule(Recognizer(supported_regions=["US", "AR"])) is None
    assert "AR rewrites national numbers" in caplog.text
    assert phone_rule.phone_rule(Recognizer(supported_regions=["US", "BR"])) is not None  # BR keeps a group


def test_run_bounds_are_the_maximal_runs_around_a_span(scanner):
    """Each rule's window run, found backwards on the reversed text, is the one a character walk finds."""
    rng = random.Random(8)
    alphabet = "ab 1-.(x@:/\u00a0٣E+#,\n"
    rules = [rule for _, rule in scanner.windowed.plans if rule is not None]
    long_runs = ["@" + "1 2-3." * rng.randint(10, 200) + "@" for _ in range(20)]  # runs longer than a chunk
    for index in range(420):
        text = (
            long_runs[index - 400]
            if index >= 400
            else "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 700)))
        )
        start = rng.randrange(len(text))
        end = min(len(text), start + rng.randint(0, 3))
        for rule in rules:
            low, high = start, end
            while low > 0 and not rule.boundary.fullmatch(text[low - 1]):
                low -= 1
            while high < len(text) and not rule.boundary.fullmatch(text[high]):
                high += 1
            assert run_rules.run_bounds(rule.boundary, text, start, end) == (low, high), (text, start, end)


def test_phone_windows_run_presidios_own_loop_when_its_source_changed(scanner, monkeypatch, caplog):
    recognizer = next(r for r, _ in scanner.windowed.plans if r.name == "PhoneRecognizer")
    monkeypatch.setattr(phone_rule, "PRESIDIO_PHONE_ANALYZE_SHA256", "0" * 64)
    with caplog.at_level(logging.WARNING, logger="governance.pii.phone_rule"):
        phone = phone_rule.PhoneRule(recognizer)
    assert not phone.guarded
    assert "its source is not the one repeated" in caplog.text
    text = "call (415) 555-0103 or 020 7946 0958"
    assert _as_tuples(phone.analyze_window(recognizer, text, ["PHONE_NUMBER"])) == _as_tuples(
        recognizer.analyze(text=text, entities=["PHONE_NUMBER"])
    )


def test_phone_candidates_skip_short_ones_without_changing_what_triggers(scanner):
    phone = next(rule for r, rule in scanner.windowed.plans if r.name == "PhoneRecognizer")

    def every_candidate(text):  # the loop before short candidates were skipped
        spans, numbers, longest = [], 0, 0
        for match in phone.relaxed.finditer(text):
            start, end = match.span()
            longest = max(longest, end - start)
            potential = len(phone.word.findall(text, start, end))
            if potential >= phone.min_digits:
                numbers += potential // phone.min_digits
                if phone.national.may_hold_number(text[start:end]):
                    spans.append((start, end))
        return spans, numbers, longest

    for text in TRICKY + _fuzz_texts(100, seed=9) + _phone_texts(100, seed=9):
        spans, numbers, longest = phone.candidates(text)
        expected = every_candidate(text)
        assert (spans, numbers) == expected[:2], repr(text)
        assert longest == expected[2] or not spans  # longest is only read when something triggers
