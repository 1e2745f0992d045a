"""Issue 28: a figure the report shows twice is the same figure in both places; the GPAI form is whole.

A version built by tests/governance/report_support.py (real gates, real MLflow store, real trail),
approved and promoted, is reported; every figure that appears in two places (rows, wall time,
licence, hashes, policy versions, the PII scanner's NLP engine, release date) is asserted equal,
and model_documentation.json is validated against the committed JSON Schema.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from report_support import REPO, build_version

from governance import approvals
from governance.errors import DataError
from governance.identity import Identity
from governance.report import build_report
from governance.report.data_facts import curation_of_file, from_card, pii_limitation
from governance.report.documentation_schema import SCHEMA_FILE, json_schema, validate_documentation
from governance.report.render import fmt


@pytest.fixture(scope="module")
def promoted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crosscheck")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
    mp.setenv("GOVERN_AUDIT_URL", f"sqlite:///{tmp / 'audit.db'}")
    mp.setenv("GOVERN_POLICY_DIR", str(REPO / "policies"))
    mp.chdir(tmp)
    try:
        built = build_version(Path("."), project="xcheck")
        approvals.approve(built.name, built.version, reason="ok", identity=Identity("alice", "local"))
        approvals.approve(built.name, built.version, reason="ok", identity=Identity("bob", "local"))
        approvals.promote(built.name, built.version, reason="first release", identity=Identity("dana", "local"))
        yield build_report(built.name, built.version, tmp / "out")
    finally:
        mp.undo()


def test_every_figure_shown_twice_is_the_same(promoted):
    facts, doc = promoted.facts, json.loads(promoted.files.documentation.read_text())
    html = promoted.files.html.read_text(encoding="utf-8")
    markdown = promoted.files.markdown.read_text(encoding="utf-8")
    card = yaml.safe_load(promoted.files.model_card.read_text(encoding="utf-8").split("---\n")[1])
    # Wall time: one figure (the manifest's), in the Training section and the form's compute
    wall = facts.training["wall_seconds"]
    assert doc["compute"]["training_time_seconds"]["value"] == wall == 4.5
    assert f"| Wall time (s) | {fmt(wall)} |" in markdown
    assert doc["energy"]["estimate"]["value"]["kwh_time_based"] == pytest.approx(
        doc["energy"]["training_energy_kwh"]["value"]
    )
    # Rows: the form's datasets, the datasets table and the gate decisions' counts
    for row, listed in zip(facts.data["datasets"], doc["training_data"]["datasets"]["value"], strict=True):
        assert (listed["path"], listed["records"], listed["sha256"]) == (row["path"], row["records"], row["sha256"])
        assert card["dataset_hashes"][row["path"]]["sha256"] == row["sha256"]
    assert [r["records"] for r in facts.data["datasets"]] == [520, 60]
    # Hashes: authenticity = version tag = manifest = evaluated model
    model_sha = facts.identity["model_sha256"]
    assert doc["general_information"]["authenticity_sha256"]["value"] == model_sha
    assert set(facts.integrity["model_sha256"].values()) == {model_sha}
    assert card["governance"]["model_sha256"] == model_sha
    # Policy versions: the plan is policies/monitoring.yaml's rules, the header is report.yaml's version
    monitoring_policy = yaml.safe_load((REPO / "policies/monitoring.yaml").read_text())
    plan = facts.operations["monitoring"]
    assert plan["policy"]["version"] == monitoring_policy["version"]
    assert [s["id"] for s in plan["signals"]] == [r["id"] for r in monitoring_policy["rules"].values()]
    assert f"v{monitoring_policy['version']}" in html and "monitor.length_drift" in markdown
    report_policy = yaml.safe_load((REPO / "policies/report.yaml").read_text())
    assert facts.operations["policy"]["version"] == report_policy["version"]
    # NLP engine: the limitation says what the recorded scanner did, as the form's PII screening does
    (gate,) = facts.data["pii"]
    (screened,) = doc["training_data"]["pii_screening"]["value"]
    assert screened["nlp_engine"] == gate["nlp_engine"]
    limitation = pii_limitation(gate)
    assert limitation in facts.operations["derived_limitations"]
    ner_ran = gate["nlp_engine"] not in (None, "no_op")
    assert ("and NER (" in limitation) is ner_ran and ("no NER ran" in limitation) is not ner_ran
    # Release date: the trail's promoted event, not an alias move
    promoted_event = next(e for e in facts.approvals["events"] if e["action"] == "promoted")
    release = doc["general_information"]["release_date"]
    assert release["value"] == promoted_event["at"] and f"event #{promoted_event['seq']}" in release["evidence"]
    # Provider: from policies/report.yaml, shipped null: "not recorded", never the OS user
    provider = doc["general_information"]["provider"]
    assert provider["value"] is None and "policies/report.yaml" in provider["not_recorded"]
    # Distribution: a URI a reviewer can fetch, not the registering machine's folder
    assert facts.identity["source_uri"].startswith(("runs:/", "models:/"))


def test_the_form_is_whole_and_matches_the_committed_schema(promoted):
    doc = json.loads(promoted.files.documentation.read_text())
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema == json_schema(), "run: python -m governance.report.documentation_schema"
    jsonschema.validate(doc, schema)
    sections = [k for k, v in doc.items() if isinstance(v, dict)]
    assert len(sections) == 8 and "training_process" in sections
    for section in sections:
        for name, entry in doc[section].items():
            assert (entry["value"] is not None and entry["evidence"]) or entry["not_recorded"], f"{section}.{name}"
    for name in ("acceptable_use_policy", "integration_system_types", "technical_means_of_integration",
                 "required_hardware", "required_software"):  # fmt: skip
        assert name in doc["use"]
    for name in ("how_data_was_obtained", "scope_and_characteristics", "unsuitable_data_detection"):
        assert name in doc["training_data"]
    assert doc["energy"]["inference_flops_per_token"]["not_recorded"]  # the fixture records no parameter count
    # Readable in the HTML: its own entry in the table of contents, no raw JSON or escaped unicode
    html = promoted.files.html.read_text(encoding="utf-8")
    assert '<a href="#documentation">' in html and '<a href="#documentation-training-process">' in html
    section = html[html.index('id="documentation"') : html.index('id="compliance"')]
    assert "\\u" not in section and '{"' not in section and "{\n" not in section


def test_a_form_missing_an_item_is_refused_naming_it(promoted):
    doc = json.loads(promoted.files.documentation.read_text())
    del doc["use"]["acceptable_use_policy"]
    with pytest.raises(DataError) as refused:
        validate_documentation(doc, "x.json")
    assert str(refused.value) == (
        "x.json: item use.acceptable_use_policy: Field required; every form item needs a value with evidence, "
        "or null with not_recorded (governance/report/documentation_schema.py)"
    )


def test_licence_and_rows_flow_from_the_card_and_the_file():
    card = {"license": "cc-by-4.0", "source": "synthetic"}
    assert from_card({"not recorded": 451}, card, "license") == {"cc-by-4.0": 451}
    assert from_card({"mit": 3, "not recorded": 2}, card, "license") == {"mit": 3, "cc-by-4.0": 2}
    assert from_card({"not recorded": 2}, {}, "license") == {"not recorded": 2}
    steps = [
        {"step": "read", "rows_in": 500, "rows_out": 500, "dropped": 0, "changed": 0},
        {"step": "split by prompt hash (451 train / 49 eval)", "rows_in": 500, "rows_out": 500, "dropped": 0},
    ]
    share = curation_of_file(steps, 451, "artifacts/pii_scan_preference/data/train.jsonl")[-1]
    assert (share["rows_in"], share["rows_out"], share["to_other_files"]) == (500, 451, 49)
    assert (
        share["step"] == "this file's share of the split: train.jsonl keeps 451 rows, 49 are in the other split file(s)"
    )
    assert curation_of_file(steps[:1], 451, "x") == steps[:1]  # no split: the steps are this file's


def test_the_pii_limitation_says_which_engine_ran():
    base = {"stage": "pii_scan_sft", "recognizers": ["a", "b"], "entities_not_scanned": {}}
    assert pii_limitation({**base, "nlp_engine": "no_op", "nlp_model": None}) == (
        "Personal data in the pii_scan_sft data was detected by 2 recognizers, pattern recognizers only: no NER ran "
        "(NLP engine no_op), so names, places and other entities without a fixed pattern were not detected; recall "
        "is imperfect: residual personal data cannot be excluded, only reduced."
    )
    spacy = {**base, "nlp_engine": "spacy", "nlp_model": "en_core_web_sm", "nlp_model_version": "3.8.0"}
    assert "pattern recognizers and NER (spacy, model en_core_web_sm 3.8.0)" in pii_limitation(spacy)
