"""The hyperscan prefilter: never misses what presidio finds, on edge cases and random texts."""

from __future__ import annotations

import random
import re
import tempfile
from pathlib import Path

import hyperscan
import pytest
import regex
from pii_policies import write_pattern_only  # tests/governance/pii_policies.py

from governance.pii import PiiScanner
from governance.pii.phone_rule import PHONE_MAX_TRIES
from governance.pii.prefilter import (
    Prefilter,
    Untranslatable,
    ascii_form,
    code_point_ranges,
    hs_class,
    translate,
)
from governance.pii.windows import WindowedAnalyzer
from governance.policy.pii import load_pii_policy

REPO = Path(__file__).resolve().parents[2]
#: The shipped policy without NER: the prefilter is held to presidio's own results for pattern recognizers.
POLICY = write_pattern_only(Path(tempfile.mkdtemp(prefix="pii-pattern-only-")))


@pytest.fixture(scope="module")
def scanner() -> PiiScanner:
    return PiiScanner(load_pii_policy(POLICY), POLICY)


def _as_tuples(results):
    return sorted((r.entity_type, r.start, r.end, r.score) for r in results)


EDGE_CASES = [
    "(415) 555-0103",  # a match that is the whole text
    "call (415) 555-0103",  # ...at the end
    "4111 1111 1111 1111 was my card",  # ...at the start
    "jane.doe@example.com",
    "E123456",
    "Contoso Pharmaceuticals",
    "",
    " ",
    # Overlapping triggers: a card number that is also phone- and SSN-shaped; e-mail holding a URL
    "4111-1111-1111-1111 123-45-6789 call 415-555-0103",
    "mail sam.1@school.example.com or https://school.example.com/u/1",
    "IBAN DE89 3704 0044 0532 0130 00, card 4111 1111 1111 1111",
    # Unicode digits and separators libphonenumber reads: Arabic-Indic, fullwidth, non-breaking space, dashes
    "call ٤١٥ ٥٥٥ ٠١٠٣ now",
    "call （４１５） ５５５－０１０３",
    "call 415\u00a0555\u00a00103",
    "call 415\u2013555\u20130103",
    "call +44\u200b20 7946 0958",
    "ring 0044 20 7946 0958 or 011 44 20 7946 0958",
    # Extensions, vanity letters, dialling prefixes at block starts
    "call 415-555-0103 ext. 12 or 415 555 0103 x204 or 415.555.0103;ext=7",
    "call 1-800-FLOWERS today",
    "dial 00 1 415 555 0103",
    # Numbers beside phone and contrary words
    "Order 7310458826 shipped; call me back on 3725550148.",
    "My number is 5932164470, order number 7310458826.",
    # Math that looks like numbers: must stay out
    "x = (2020 - 7827) / 11 = -527.9091; f(2020) = 2020^2 = 4080400.",
    "2,000 in 2019 and 1,000,000 in 2024; 100000 / 7 = 14285.714",
]


def _random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    pieces = [
        "call", "order", "my number is", "x", "ext", "+", "(", ")", "-", ".", "/", " ", "\u00a0", "٣", "４",
        "@", "example.com", "http://", "E", "DE", "::", "ｘ", "#", "0", "00", "011", "Contoso Pharmaceuticals",
    ]  # fmt: skip
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 30)):
            if rng.random() < 0.5:
                parts.append("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 11))))
            else:
                parts.append(rng.choice(pieces))
            parts.append(rng.choice(["", " ", " ", "-", ".", ", ", "\n"]))
        texts.append("".join(parts))
    return texts


def test_prefilter_runs_hyperscan_and_keeps_presidios_results(scanner):
    windowed = scanner.windowed
    assert scanner.prefilter_engine == "hyperscan"
    # Every recognizer of the shipped policy has a prefilter pattern: none has to run on every text.
    assert windowed.prefilter.always == frozenset()
    texts = EDGE_CASES + _random_texts(200, seed=11)
    for text in texts:
        assert _as_tuples(windowed.analyze(text)) == _as_tuples(scanner.engine.analyze(text)), repr(text)


def test_one_scan_for_the_fields_of_a_record_finds_each_in_its_field(scanner):
    texts = EDGE_CASES + _random_texts(40, seed=3)
    batched = scanner.windowed.analyze_many(texts)
    assert [_as_tuples(r) for r in batched] == [_as_tuples(scanner.engine.analyze(t)) for t in texts]
    # A policy pattern recognizer (the deny-list) found in the right field of a record, not its neighbours.
    found = scanner.findings_in_many(["no names here", "a note about Fabrikam Holdings.", "2 + 2 = 4"])
    assert [[(f.entity, f.start, f.end) for f in field] for field in found] == [
        [],
        [("CUSTOMER_NAME", 13, 30)],
        [],
    ]


def test_long_texts_and_texts_near_libphonenumbers_try_limit(scanner):
    near_limit = " ".join(f"{n:010d}" for n in range(3000, 4000)) + " call (415) 555-0103"
    assert len(near_limit) * 9 > PHONE_MAX_TRIES
    phone = next(rule for recognizer, rule in scanner.windowed.plans if recognizer.name == "PhoneRecognizer")
    assert phone.windows(near_limit) is None  # libphonenumber could give up here: scanned whole
    long_text = ("Step: 12 × 7 = 84, then 84 + 9 = 93. " * 3000) + "Call me on (593) 216-4470."
    for text in (near_limit, long_text, "(415) 555-0103 " * 2000):
        assert _as_tuples(scanner.windowed.analyze(text)) == _as_tuples(scanner.engine.analyze(text))


def test_phone_windows_from_the_prefilters_match_ends_are_the_whole_texts_windows(scanner):
    """Candidates read only in the runs where a phone expression matched: the same windows, or the whole text."""
    windowed = scanner.windowed
    phone = windowed.plans[windowed._phone_plan][1]
    prefilter = windowed.prefilter
    rng = random.Random(21)
    ascii_only = [t for t in EDGE_CASES + _random_texts(600, seed=21) if t.isascii()]
    math = [
        f"Check: {rng.randint(1, 99999)} / {rng.randint(2, 12)} ≈ 0.{rng.randint(1, 999)}, id bench-00{n:05d}"
        for n in range(300)
    ]
    records = [ascii_only[i : i + 4] for i in range(0, len(ascii_only), 4)] + [
        math[i : i + 3] for i in range(0, 300, 3)
    ]
    compared = with_windows = 0
    for texts in records:
        fired, ends = prefilter.fired_with_ends(texts, windowed._phone_plan)
        assert ends is not None  # ASCII and inert characters only: the ends are character offsets
        for text, plans, phone_ends in zip(texts, fired, ends, strict=True):
            if windowed._phone_plan in plans:
                compared += 1
                expected = phone.windows(text)
                assert phone.windows(text, phone_ends) == expected, repr(text)
                with_windows += bool(expected)
            else:
                assert phone_ends == [] and not phone.candidates(text)[0], repr(text)
    assert compared > 150 and with_windows > 50
    # One scan of many records' texts gives each text the ends its own record's scan gives.
    flat = [text for texts in records for text in texts]
    assert prefilter.fired_with_ends(flat, windowed._phone_plan)[1] == [
        ends for texts in records for ends in prefilter.fired_with_ends(texts, windowed._phone_plan)[1]
    ]
    # A text whose bounds say libphonenumber could give up is counted exactly, and still scanned whole.
    near_limit = " ".join(f"{n:010d}" for n in range(3000, 4000)) + " call (415) 555-0103"
    [plans], [ends] = prefilter.fired_with_ends([near_limit], windowed._phone_plan)
    assert phone.windows(near_limit, ends) is None
    # Off the ASCII path (a non-breaking space libphonenumber reads) there are no ends: whole-text candidates.
    # Only that text leaves the path: the others of the same scan keep theirs.
    fired, ends = prefilter.fired_with_ends(["call 415\u00a0555\u00a00103", "call 415 555 0103"], windowed._phone_plan)
    assert ends[0] is None and ends[1] == prefilter.fired_with_ends(["call 415 555 0103"], windowed._phone_plan)[1][0]
    assert windowed._phone_plan in fired[0] and windowed._phone_plan in fired[1]


def test_texts_that_are_not_utf8_encodable_run_every_recognizer(scanner):
    text = "call (415) 555-0103 \ud800 then"  # a lone surrogate, as json.loads makes from "\\ud800"
    prefilter = scanner.windowed.prefilter
    # That text runs everything; the text beside it is scanned as on its own.
    assert prefilter.fired([text, "clean", "write to a@b.org"]) == [
        prefilter.always | prefilter.plans,
        *prefilter.fired(["clean", "write to a@b.org"]),
    ]
    assert _as_tuples(scanner.windowed.analyze(text)) == _as_tuples(scanner.engine.analyze(text))


def _fired_utf8(prefilter: Prefilter, texts: list[str]) -> list[frozenset[int]]:
    """``fired`` with the ASCII path turned off: every record on the UTF-8 database."""
    ascii_database, prefilter.ascii_database = prefilter.ascii_database, None
    try:
        return prefilter.fired(texts)
    finally:
        prefilter.ascii_database = ascii_database


def test_ascii_path_fires_where_the_utf8_database_does(scanner):
    prefilter = scanner.windowed.prefilter
    assert prefilter.ascii_database is not None
    # Inert characters ("×", "≈", "é", an emoji) take the ASCII path; a digit, a letter or a separator
    # some recognizer reads ("٣", "ｘ", a non-breaking space, "ó" of "extensión") and surrogates do not.
    assert all(prefilter._all_inert(text) for text in ["12 × 7 ≈ 84", "café", "ok 😀", "plain"])
    assert not any(prefilter._all_inert(text) for text in ["٣", "ｘ", "415\u00a0555", "extensión", "\ud800"])
    rng = random.Random(5)
    pool = [*"0123456789 -+()./x#e,t:;@E", "×", "≈", "—", "é", "٣", "０", "＋", "（", "\u00a0", "\u2060", "ｘ", "😀",
            "д", "ó", "\u3000", "ー", "～", "a", "X", "n", "\ud800"]  # fmt: skip
    records = [EDGE_CASES[i : i + 3] for i in range(0, len(EDGE_CASES), 3)]
    records += [
        ["".join(rng.choice(pool) for _ in range(rng.randint(0, 40))) for _ in range(rng.randint(1, 4))]
        for _ in range(3000)
    ]
    for texts in records:
        assert prefilter.fired(texts) == _fired_utf8(prefilter, texts), texts
    # Many records in one scan (as scan_file batches them): each text still on its own path.
    for start in range(0, len(records), 50):
        batch = records[start : start + 50]
        flat = [text for texts in batch for text in texts]
        assert prefilter.fired(flat) == [plans for texts in batch for plans in _fired_utf8(prefilter, texts)]


def test_ascii_form_cuts_classes_and_refuses_what_it_cannot_read():
    # A class keeps its ASCII members; one with none matches nothing (byte 0x80 never occurs there).
    # "é" is not inert here: "?" is not in that class and "é" is.
    [expression], unsafe = ascii_form([hs_class(((0x30, 0x39), (0xE9, 0xE9))) + hs_class(((0x660, 0x669),))])
    assert expression == "[\\x{30}-\\x{39}][\\x{80}]"
    assert unsafe == ((0xE9, 0xE9), (0x660, 0x669))
    # In a class holding "?", every non-ASCII character outside it is not inert.
    assert ascii_form([hs_class(((0x3F, 0x3F),))])[1] == ((0x80, 0x10FFFF),)
    # Classes of ASCII digits and the syntax around them pass; literals that are not digits do not.
    assert ascii_form(["(?:3[0-9]*|[^0123]){2,}^"]) == (["(?:3[0-9]*|[^0123]){2,}^"], ())
    assert ascii_form(["[?]"]) is None and ascii_form(["a"]) is None and ascii_form(["x-"]) is None


def test_python_fallback_says_so_and_gives_the_same_results(scanner):
    fallback = WindowedAnalyzer(scanner.engine, prefilter=False)
    assert fallback.prefilter is None and fallback.prefilter_engine == "python"
    for text in EDGE_CASES:
        assert _as_tuples(fallback.analyze(text)) == _as_tuples(scanner.windowed.analyze(text)), repr(text)


def _hs_matches(expression: str, text: str) -> bool:
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(expressions=[expression.encode()], ids=[0], elements=1, flags=[hyperscan.HS_FLAG_UTF8])
    hits: list[int] = []
    database.scan(text.encode(), match_event_handler=lambda *args: hits.append(1))
    return bool(hits)


@pytest.mark.parametrize(
    ("pattern", "flags", "text"),
    [
        (r"(?<![\w+])\+\d{2}\b", regex.IGNORECASE, "tel +44"),  # assertions dropped, match kept
        (r"\bE\d{6}\b", regex.IGNORECASE, "staff e١٢٣٤٥٦"),  # Unicode digits and case folding of the engine
        (r"[a-z]{2}", regex.IGNORECASE, "\u212a\u017f"),  # Kelvin sign and long s fold to k and s
        (r"(?:^|(?<=\W))(Contoso\ Ltd)(?:(?=\W)|$)", regex.IGNORECASE, "by CONTOSO LTD."),
    ],
)
def test_translation_matches_wherever_the_original_does(pattern, flags, text):
    assert regex.search(pattern, text, flags)
    assert _hs_matches(translate(pattern, flags, "regex"), text)


def test_translation_refuses_what_it_cannot_carry_over():
    with pytest.raises(Untranslatable) as err:
        translate(r"(\d)\1", 0, "re")
    assert str(err.value) == "construct GROUPREF"
    with pytest.raises(Untranslatable) as err:
        translate(r"\b", 0, "re")
    assert str(err.value) == "matches the empty string"
    # POSIX classes mean something else to re: never translated as re reads them.
    with pytest.raises(Untranslatable) as err:
        translate(r"[[:digit:]]{3}", 0, "regex")
    assert str(err.value) == "regex-only syntax '[:'"


def test_character_sets_are_the_original_engines():
    digits = code_point_ranges(r"\d", re.UNICODE, "re")
    assert (0x30, 0x39) in digits and (0x660, 0x669) in digits and (0xFF10, 0xFF19) in digits
    assert hs_class(((0x30, 0x39), (0x41, 0x41))) == r"[\x{30}-\x{39}\x{41}]"


def test_a_recognizer_without_a_pattern_runs_on_every_text():
    prefilter = Prefilter({0: [r"\x{40}"]}, always={1})
    assert prefilter.fired(["a@b", "none", ""]) == [frozenset({0, 1}), frozenset({1}), frozenset({1})]


def test_patterns_hyperscan_refuses_make_their_recognizer_run_on_every_text():
    too_large = "a{70000}"  # hyperscan refuses a bounded repeat this long
    prefilter = Prefilter({0: [r"\x{40}"], 2: [too_large]}, always=set())
    assert prefilter.always == frozenset({2}) and prefilter.plans == frozenset({0})
    assert prefilter.fired(["a@b", "none"]) == [frozenset({0, 2}), frozenset({2})]


def test_the_utf8_database_is_compiled_when_a_text_first_needs_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GOVERN_CACHE_DIR", str(tmp_path))
    phone = translate(r"\d{3}-\d{4}", re.UNICODE, "re")  # Unicode digits: the UTF-8 database is large
    prefilter = Prefilter({0: [phone], 1: [translate("@", 0, "re")]}, always=set())
    # ASCII texts, and texts whose non-ASCII characters no expression reads, never need it.
    assert prefilter.fired(["call 555-0148", "a@b", "café × 2"]) == [frozenset({0}), frozenset({1}), frozenset()]
    assert prefilter._utf8 is None and len(list(tmp_path.rglob("*.hsdb"))) == 1
    # Arabic-Indic digits are digits to re: that text takes the UTF-8 database, compiled (and cached) now.
    assert prefilter.fired(["call ٥٥٥-٠١٤٨", "a@b"]) == [frozenset({0}), frozenset({1})]
    assert prefilter._utf8 is not None and len(list(tmp_path.rglob("*.hsdb"))) == 2


def test_a_plan_only_the_utf8_database_refuses_runs_on_every_text_of_that_path(tmp_path, monkeypatch):
    monkeypatch.setenv("GOVERN_CACHE_DIR", str(tmp_path))
    words = translate(r"\w{50}", re.UNICODE, "re")  # hyperscan: "Pattern is too large" in UTF-8 only
    prefilter = Prefilter({0: [translate("@", 0, "re")], 2: [words]}, always=set())
    assert prefilter.plans == frozenset({0, 2}) and prefilter.always == frozenset()
    assert prefilter.fired(["a@b", "x" * 50, "plain"]) == [frozenset({0}), frozenset({2}), frozenset()]
    # "ó" is a word character: the UTF-8 path, where plan 2 runs on every text.
    assert prefilter.fired(["extensión", "a@b ó"]) == [frozenset({2}), frozenset({0, 2})]


def _texts():
    return ["call 555-0148 today", "mail me @ home", "nothing here", "555-0148 @"]


def test_compiled_database_is_cached_and_reloaded_without_compiling(tmp_path, monkeypatch):
    import hyperscan

    from governance.pii.prefilter import Prefilter

    monkeypatch.setenv("GOVERN_CACHE_DIR", str(tmp_path))
    expressions = {0: [r"\d{3}-\d{4}"], 3: ["@"]}
    first = Prefilter(expressions, always={5})
    cached = list((tmp_path / "hyperscan").glob("*.hsdb"))
    assert len(cached) == 1

    def no_new_database(*args, **kwargs):
        raise AssertionError("compiled although a cached database was there")

    monkeypatch.setattr(hyperscan, "Database", no_new_database)
    second = Prefilter(expressions, always={5})
    assert (
        second.fired(_texts())
        == first.fired(_texts())
        == [
            frozenset({0, 5}),
            frozenset({3, 5}),
            frozenset({5}),
            frozenset({0, 3, 5}),
        ]
    )


def test_cache_does_not_depend_on_plan_numbering_or_pattern_order(tmp_path, monkeypatch):
    """Plan numbers and some pattern lists follow hash-seeded set order, which changes per process."""
    from governance.pii.prefilter import Prefilter

    monkeypatch.setenv("GOVERN_CACHE_DIR", str(tmp_path))
    one = Prefilter({0: [r"\d{3}-\d{4}", r"\d{10}"], 1: ["@"]}, always=set())
    other = Prefilter({0: ["@"], 1: [r"\d{10}", r"\d{3}-\d{4}"]}, always=set())
    assert len(list((tmp_path / "hyperscan").glob("*.hsdb"))) == 1  # one database for both numberings
    assert one.fired(_texts()) == [frozenset({0}), frozenset({1}), frozenset(), frozenset({0, 1})]
    assert other.fired(_texts()) == [frozenset({1}), frozenset({0}), frozenset(), frozenset({0, 1})]


def test_a_cached_file_that_is_not_a_database_is_ignored_and_replaced(tmp_path, monkeypatch):
    from governance.pii.prefilter import Prefilter

    monkeypatch.setenv("GOVERN_CACHE_DIR", str(tmp_path))
    Prefilter({0: [r"\d{3}-\d{4}"]}, always=set())
    (cached,) = (tmp_path / "hyperscan").glob("*.hsdb")
    cached.write_bytes(b"not a hyperscan database")
    again = Prefilter({0: [r"\d{3}-\d{4}"]}, always=set())
    assert again.fired(["call 555-0148"]) == [frozenset({0})]
    assert cached.read_bytes() != b"not a hyperscan database"


def test_cache_off_compiles_and_writes_nothing(tmp_path, monkeypatch):
    from governance.pii.prefilter import Prefilter

    monkeypatch.setenv("GOVERN_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert Prefilter({0: ["@"]}, always=set()).fired(["a@b"]) == [frozenset({0})]
    assert not any(tmp_path.rglob("*.hsdb"))


def test_code_point_table_is_kept_on_disk_and_equals_what_the_engine_computes(tmp_path, monkeypatch):
    from governance.pii import prefilter

    monkeypatch.setenv("GOVERN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(prefilter.RangeTable, "_shared", None)
    prefilter.code_point_ranges.cache_clear()
    classes = [(r"\d", re.UNICODE, "re"), ("[a-z]", re.IGNORECASE, "re"), (r"\p{Lu}", 0, "regex")]
    first = [prefilter.code_point_ranges(*c) for c in classes]
    prefilter.RangeTable.shared().save()
    (table,) = tmp_path.glob("code-point-ranges-*.json")
    # A fresh process (no in-memory caches) reads the file instead of computing, and gets the same ranges
    monkeypatch.setattr(prefilter.RangeTable, "_shared", None)
    prefilter.code_point_ranges.cache_clear()
    monkeypatch.setattr(prefilter, "_computed_ranges", lambda *c: pytest.fail(f"recomputed {c}"))
    assert [prefilter.code_point_ranges(*c) for c in classes] == first
    assert (0x212A, 0x212A) in first[1]  # KELVIN SIGN folds to "k" under re's IGNORECASE: the engine decided
    monkeypatch.undo()
    # A damaged table is ignored and recomputed, never trusted
    monkeypatch.setenv("GOVERN_CACHE_DIR", str(tmp_path))
    table.write_text('{"re|0|x": "not ranges"')
    monkeypatch.setattr(prefilter.RangeTable, "_shared", None)
    prefilter.code_point_ranges.cache_clear()
    assert prefilter.code_point_ranges(r"\d", re.UNICODE, "re") == first[0]
    monkeypatch.setattr(prefilter.RangeTable, "_shared", None)
    prefilter.code_point_ranges.cache_clear()


def _never_matching_database() -> bytes:
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    database.compile(expressions=[b"qqqq-never-qqqq"], ids=[0], elements=1, flags=[0])
    return hyperscan.dumpb(database)


def test_p7_a_database_planted_in_a_shared_cache_is_not_loaded(tmp_path, monkeypatch):
    """Attack P7: the compiled database decides which records the recognizers read at all. Before, one compiled
    from a pattern that never matches, written into a shared ``GOVERN_CACHE_DIR``, made the gate sign
    "0 findings" over cards and e-mails. A cached file is loaded only if it is the user's own and writable by
    nobody else; a group-writable one (another member of a shared cache's group wrote it) is compiled anew."""
    from governance.pii.prefilter import Prefilter

    monkeypatch.setenv("GOVERN_CACHE_DIR", str(tmp_path))
    expressions = {0: [r"\d{3}-\d{4}"], 3: ["@"]}
    honest = Prefilter(expressions, always=set()).fired(_texts())
    (cached,) = (tmp_path / "hyperscan").glob("*.hsdb")
    cached.write_bytes(_never_matching_database())
    cached.chmod(0o664)
    assert (
        Prefilter(expressions, always=set()).fired(_texts())
        == honest
        == [
            frozenset({0}),
            frozenset({3}),
            frozenset(),
            frozenset({0, 3}),
        ]
    )


def test_p7_a_code_point_table_planted_in_a_shared_cache_is_not_read(tmp_path):
    from governance.pii.prefilter import RangeTable

    table = tmp_path / "code-point-ranges.json"
    table.write_text('{"[0-9]": [[0, 0]]}')
    table.chmod(0o666)
    assert RangeTable(table).entries == {}  # computed again, never the planted ranges
    table.chmod(0o600)
    assert RangeTable(table).entries == {"[0-9]": ((0, 0),)}  # the user's own file is the user's own cache


def test_read_private_reads_only_the_users_own_file_that_nobody_else_may_write(tmp_path):
    from governance.files import read_private

    own = tmp_path / "own"
    own.write_bytes(b"cached")
    own.chmod(0o600)
    assert read_private(own) == (b"cached", None)
    assert read_private(tmp_path / "absent") == (None, None)
    own.chmod(0o620)
    assert read_private(own) == (None, "writable by the group (mode 620)")
    own.chmod(0o602)
    assert read_private(own) == (None, "writable by others (mode 602)")
    link = tmp_path / "link"
    link.symlink_to(own)
    data, why = read_private(link)
    assert data is None and why.startswith("not opened")
