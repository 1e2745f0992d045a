"""Disguised PII (issue 38, P1): every form replayed through the shipped policy's real scanner, locally and on Spark.

Full-width digits and ``＠``, zero-width characters, spelled-out digits, ``(at)``/``(dot)`` and `` at ``/`` dot ``
addresses, names in lower case or capitals, names split by markup: each is found, its finding covers the
characters as written, the gate warns with its exact message and the cleared copy holds the tag where the
disguised value was. Ordinary text that looks like a disguise ("meet at the station", number words in prose,
emphasis in Markdown) stays without findings. The values are the usual test values (a Luhn-valid test card,
example.com addresses, 555 numbers), not anyone's data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from governance.pii import PiiScanner, run_pii_gate, write_findings_report
from governance.pii.mask import mask_value, snippet
from governance.pii.normalise import TextNormaliser
from governance.policy.pii import load_pii_policy

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "policies" / "pii.yaml"
VERSION = load_pii_policy(POLICY).version

#: (text, entity, the disguised value as written): each must be one finding of that entity covering the value.
DISGUISED = [
    ("My card is ４１１１ １１１１ １１１１ １１１１, thanks.", "CREDIT_CARD", "４１１１ １１１１ １１１１ １１１１"),
    ("card ４１１１１１１１１１１１１１１１ on file", "CREDIT_CARD", "４１１１１１１１１１１１１１１１"),
    ("Mail me at jane.doe＠example.com today.", "EMAIL_ADDRESS", "jane.doe＠example.com"),
    ("Card: 4111\u200b1111\u200b1111\u200b1111 (zero-width)", "CREDIT_CARD", "4111\u200b1111\u200b1111\u200b1111"),
    ("Card: 4111\u00ad1111\u00ad1111\u00ad1111", "CREDIT_CARD", "4111\u00ad1111\u00ad1111\u00ad1111"),
    ("My card is four one one one one one one one one one one one one one one one.", "CREDIT_CARD",
     "four one one one one one one one one one one one one one one one"),
    ("Card: Four One One One - One One One One - One One One One - One One One One", "CREDIT_CARD",
     "Four One One One - One One One One - One One One One - One One One One"),
    ("call me on four one five five five five zero one zero three tonight", "PHONE_NUMBER",
     "four one five five five five zero one zero three"),
    ("Call me on four one five, five five five, oh one oh three.", "PHONE_NUMBER",
     "four one five, five five five, oh one oh three"),
    ("ring me: 415 five five five 0103", "PHONE_NUMBER", "415 five five five 0103"),
    ("Write to jane (at) example (dot) com please.", "EMAIL_ADDRESS", "jane (at) example (dot) com"),
    ("jane [at] example [dot] co [dot] uk", "EMAIL_ADDRESS", "jane [at] example [dot] co [dot] uk"),
    ("JANE {AT} EXAMPLE {DOT} ORG", "EMAIL_ADDRESS", "JANE {AT} EXAMPLE {DOT} ORG"),
    ("write to jane at example dot com please", "EMAIL_ADDRESS", "jane at example dot com"),
    ("reach me at jane dot doe at example dot com", "EMAIL_ADDRESS", "jane dot doe at example dot com"),
    ("mail jane @ example.com", "EMAIL_ADDRESS", "jane @ example.com"),
    ("defanged: jane@example[.]com", "EMAIL_ADDRESS", "jane@example[.]com"),
    ("my name is john smith", "PERSON", "john smith"),
    ("MY NAME IS JOHN SMITH", "PERSON", "JOHN SMITH"),
    ("please forward the file to john smith today", "PERSON", "john smith"),
    ("I met jane yesterday", "PERSON", "jane"),
    ("priya patel will sign for it", "PERSON", "priya patel"),
    ("PLEASE CC KENJI TANAKA ON THE REPLY", "PERSON", "KENJI TANAKA"),
    ("the parcel is for wei zhang", "PERSON", "wei zhang"),
    ("thanks mark, see you tomorrow", "PERSON", "mark"),
    ("dear mr. okonkwo, thank you", "PERSON", "okonkwo"),
    ("MY SON CHIDI HAS A FEVER", "PERSON", "CHIDI"),
    ("hi, my name is priya raghunathan and i need help", "PERSON", "priya raghunathan"),
    ("Please forward it to J<b>ohn</b> Smith today.", "PERSON", "J<b>ohn</b> Smith"),
    ("Please forward it to Jo**hn** Smith today.", "PERSON", "Jo**hn** Smith"),
    ("Please forward it to <i>John</i> <b>Smith</b> today.", "PERSON", "John</i> <b>Smith"),
]  # fmt: skip

#: Ordinary text that looks like a disguise: no finding of the entity named (None: no finding at all).
LOOK_ALIKES = [
    ("meet at the station at nine", None),
    ("Let's meet at the cafe. Then go home.", None),
    ("look at example dot com for the docs", "EMAIL_ADDRESS"),
    ("the shop is at example.com", "EMAIL_ADDRESS"),
    ("I have one dog, two cats and three fish.", "PHONE_NUMBER"),
    ("Count with me: one, two, three, four, five!", None),
    ("one or two of the nine options, maybe three", None),
    ("oh, one more thing: two of them", None),
    ("winter sports are fun", None),
    ("the bill is due on friday", "PERSON"),
    ("grace period and rose garden", "PERSON"),
    ("**Step 1:** add the *numbers* and __bold__ words", None),
    ("Use the <b> tag for bold", None),
    ("annotator ann-02 and ANN models", "PERSON"),
    ("account GB54 LOYD 8540 6689 5464 74", "PERSON"),
    ("the admin fee is 25 dollars; phishing means a scam", "PERSON"),
    ("the price rose by two percent, mark the box", "PERSON"),
    ("thanks lol, hi guys, my name is not important", "PERSON"),
    ("Hello <PERSON>, your <PHONE_NUMBER> and <EMAIL_ADDRESS> are on file.", None),
    ("x_1 + x_2 = 12 and 2*3*4 = 24", None),
]


@pytest.fixture(scope="module")
def scanner() -> PiiScanner:
    return PiiScanner(load_pii_policy(POLICY), POLICY)


@pytest.fixture(scope="module")
def as_written(scanner) -> PiiScanner:
    """The same engine reading texts as written (what the gate did before): the disguises pass it."""
    return PiiScanner(scanner.policy, POLICY, engine=scanner.engine, normalise=False)


@pytest.mark.parametrize(("text", "entity", "value"), DISGUISED, ids=[d[2][:24] for d in DISGUISED])
def test_a_disguised_value_is_found_over_the_characters_as_written(scanner, as_written, text, entity, value):
    found = [(f.entity, text[f.start : f.end]) for f in scanner.findings_in(text)]
    assert (entity, value) in found
    assert entity not in [f.entity for f in as_written.findings_in(text) if text[f.start : f.end] == value]


@pytest.mark.parametrize(("text", "entity"), LOOK_ALIKES, ids=[t[:24] for t, _ in LOOK_ALIKES])
def test_ordinary_text_that_looks_disguised_stays_without_findings(scanner, text, entity):
    found = [f.entity for f in scanner.findings_in(text)]
    if entity is None:
        assert found == [] or set(found) <= {"DATE_TIME"}, found
    else:
        assert entity not in found


def test_the_batch_scan_finds_what_one_text_at_a_time_finds(scanner):
    texts = [text for text, _, _ in DISGUISED] + [text for text, _ in LOOK_ALIKES]
    one_by_one = [[(f.entity, f.start, f.end) for f in scanner.findings_in(text)] for text in texts]
    assert [[(f.entity, f.start, f.end) for f in found] for found in scanner.findings_in_many(texts)] == one_by_one


def test_the_offset_map_covers_each_original_character():
    [read] = TextNormaliser().normalise_many(["x ４１\u200b１ y (at) z"])
    assert read.text == "x 411 y (at) z" and read.moved
    assert read.span(2, 5) == (2, 6)  # "411" was "４１\u200b１"
    assert read.span(6, 7) == (7, 8)  # "y"
    [same] = TextNormaliser().normalise_many(["nothing to do here"])
    assert same.text == same.original and not same.moved and same.span(3, 7) == (3, 7)


def test_without_hyperscan_the_same_texts_are_rewritten(scanner, monkeypatch):
    texts = [text for text, _, _ in DISGUISED] + [text for text, _ in LOOK_ALIKES]
    expected = [n.text for n in scanner.normaliser.normalise_many(texts)]
    python = TextNormaliser(scanner.normaliser.names)
    monkeypatch.setattr(python, "_database", None)
    assert [n.text for n in python.normalise_many(texts)] == expected


def test_report_context_masks_spelled_out_digits(scanner):
    text = "Card four one one one one one one one one one one one one one one one, call five five five one two"
    [card] = [f for f in scanner.findings_in(text) if f.entity == "CREDIT_CARD"]
    context = snippet(text, card.start, card.end, card.entity, [(card.start, card.end, card.entity)], 40,
                      scanner.analyze_context)  # fmt: skip
    assert context == "Card <CREDIT_CARD>, call # # # # #"
    assert set(mask_value("CREDIT_CARD", text[card.start : card.end])) == {"*", " "}


def _disguised_rows() -> list[dict]:
    turns = [
        "Card ４１１１ １１１１ １１１１ １１１１ please.",
        "Mail jane (at) example (dot) com or call me on four one five five five five zero one zero three.",
        "Forward it to J<b>ohn</b> Smith.",
        "my name is jane doe",
        "Let's meet at the station at nine.",
    ]
    return [
        {"id": f"r{i}", "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": turn}]}
        for i, turn in enumerate(turns, start=1)
    ]


def _write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def test_the_gate_warns_with_exact_messages_and_clears_the_disguised_characters(scanner, tmp_path):
    data = _write_rows(tmp_path / "train.jsonl", _disguised_rows())
    cleared = tmp_path / "out" / "data"
    result = run_pii_gate([data], kind="sft", policy_path=POLICY, stage="pii_scan_sft", cleared_dir=cleared,
                          scanner=scanner)  # fmt: skip
    assert result.decision.passed
    field = "messages[1].content"
    assert [line for line in result.decision.summary_lines() if "DATE_TIME" not in line] == [
        f"warn  pii.credit_card  {data}: 1 record contains CREDIT_CARD, redacted to <CREDIT_CARD> under policy "
        f"{VERSION}; first at line 1, field {field}",
        f"warn  pii.email_address  {data}: 1 record contains EMAIL_ADDRESS, redacted to <EMAIL_ADDRESS> under "
        f"policy {VERSION}; first at line 2, field {field}",
        f"warn  pii.phone_number  {data}: 1 record contains PHONE_NUMBER, redacted to <PHONE_NUMBER> under policy "
        f"{VERSION}; first at line 2, field {field}",
        f"warn  pii.person  {data}: 2 records contain PERSON, redacted to <PERSON> under policy {VERSION}; "
        f"first at line 3, field {field}",
    ]
    turns = [json.loads(line)["messages"][1]["content"] for line in (cleared / "train.jsonl").read_text().splitlines()]
    assert turns == [
        "Card <CREDIT_CARD> please.",
        "Mail <EMAIL_ADDRESS> or call me on <PHONE_NUMBER>.",
        "Forward it to <PERSON>.",
        "my name is <PERSON>",
        "Let's meet at the station at nine.",
    ]
    assert result.decision.details["rescan"] == {"records_with_findings": 0, "findings": 0}
    assert "spelled-out digit words" in result.decision.details["scanner"]["text_normalisation"]
    # The report lists masked shapes and contexts only: nothing of a disguised value.
    report = tmp_path / "findings.json"
    write_findings_report(result.report, report)
    written = report.read_text(encoding="utf-8")
    for raw in ("１１１１", "(at) example", "five five", "ohn</b>", "jane doe", "jane"):
        assert raw not in written


@pytest.fixture(scope="module")
def spark():
    from governance.spark_io import spark_session

    session = spark_session({"master": "local[1]"})
    yield session
    session.stop()


def test_the_spark_engine_finds_and_clears_the_same(scanner, spark, tmp_path):
    from governance.pii.spark import SparkPiiScanner

    data = _write_rows(tmp_path / "train.jsonl", _disguised_rows())
    local = run_pii_gate([data], kind="sft", policy_path=POLICY, stage="s", cleared_dir=tmp_path / "local",
                         scanner=scanner)  # fmt: skip
    on_spark = run_pii_gate([data], kind="sft", policy_path=POLICY, stage="s", cleared_dir=tmp_path / "spark",
                            scanner=SparkPiiScanner(scanner.policy, POLICY, spark))  # fmt: skip
    assert on_spark.decision.summary_lines() == local.decision.summary_lines()
    assert on_spark.report.scan.findings == local.report.scan.findings
    assert (tmp_path / "spark" / "train.jsonl").read_bytes() == (tmp_path / "local" / "train.jsonl").read_bytes()
