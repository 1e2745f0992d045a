"""Variants of the shipped PII policy for tests of one part of the gate.

``pattern_only`` is policies/pii.yaml without NER (``nlp_engine: no_op``, the NER entity rules
moved to ``disabled_entities``): tests of the pattern recognizers, the windows, the prefilter
and their equality with presidio's own ``AnalyzerEngine.analyze`` use it, because NER reads
windows (``ner_scope: windows``) where presidio reads whole texts.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from governance.pii.engine import NER_ENTITIES
from governance.policy.pii import PiiPolicy, load_pii_policy

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "policies" / "pii.yaml"


def pattern_only_data(path: Path = SHIPPED) -> dict:
    """The policy's YAML data with the NER engine and NER entity rules taken out."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["nlp_engine"] = {"engine": "no_op"}
    dropped = [rule for rule in data["entities"] if rule["entity"] in NER_ENTITIES]
    data["entities"] = [rule for rule in data["entities"] if rule["entity"] not in NER_ENTITIES]
    data["disabled_entities"] = [d for d in data["disabled_entities"] if d["entity"] not in NER_ENTITIES] + [
        {"entity": rule["entity"], "rationale": "pattern-only test policy"} for rule in dropped
    ]
    return data


def write_pattern_only(folder: Path) -> Path:
    """Write the pattern-only policy to ``folder/pii.yaml`` and return its path."""
    path = folder / "pii.yaml"
    path.write_text(yaml.safe_dump(pattern_only_data(), sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def pattern_only(folder: Path) -> tuple[PiiPolicy, Path]:
    """The pattern-only policy, loaded, and its path."""
    path = write_pattern_only(folder)
    return load_pii_policy(path), path
