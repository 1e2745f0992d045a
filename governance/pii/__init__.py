"""The PII gate: presidio detection, policy actions, redaction and findings reports.

Public API::

    from governance.pii import run_pii_gate, write_findings_report, load_findings_report
    from governance.gates import publish_decision

    result = run_pii_gate(["data/prepared/sft/train.jsonl"], kind="sft",
                          policy_path="policies/pii.yaml", stage="pii_scan_sft",
                          cleared_dir="artifacts/pii_scan_sft/data")
    write_findings_report(result.report, "artifacts/pii_scan_sft/findings.json")
    publish_decision(result.decision, "artifacts/pii_scan_sft/decision.json",  # signed trail event, then the file
                     policy_sha256=result.report.policy_sha256)

    report = load_findings_report("artifacts/pii_scan_sft/findings.json")

``engine`` builds presidio's AnalyzerEngine from ``policies/pii.yaml``;
``windows`` computes its results on small windows (identical, much faster), from
``run_rules`` (pattern recognizers), ``phone_rule`` and ``national_numbers`` (phones) and
``ner_windows`` (where the NER model reads); ``names`` finds PERSON from a name list beside the model;
``normalise`` undoes disguises first (full-width digits, spelled-out numbers, "(at)" addresses, markup inside
names, names without case) and maps findings back to the text as written;
``scan`` applies the policy to every string field; ``redact`` writes the
cleared copy; ``gate`` decides; ``report`` reads and writes ``findings.json``.

Importing presidio costs seconds (it loads transformers), so names are
imported on first use: ``import governance.pii`` alone stays cheap, and
``govern`` commands that do not scan never pay for it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EngineInfo": "governance.pii.engine",
    "PiiEngine": "governance.pii.engine",
    "build_engine": "governance.pii.engine",
    "WindowedAnalyzer": "governance.pii.windows",
    "NormalisedText": "governance.pii.normalise",
    "TextNormaliser": "governance.pii.normalise",
    "KIND_FIELDS": "governance.pii.kinds",
    "DatasetKind": "governance.pii.kinds",
    "FileScan": "governance.pii.scan",
    "Finding": "governance.pii.scan",
    "PiiScanner": "governance.pii.scan",
    "detect_kind": "governance.pii.scan",
    "resolve": "governance.pii.scan",
    "mask_value": "governance.pii.mask",
    "tag": "governance.pii.mask",
    "GATE": "governance.pii.gate",
    "PiiGateResult": "governance.pii.gate",
    "run_pii_gate": "governance.pii.gate",
    "FindingsReport": "governance.pii.report",
    "load_findings_report": "governance.pii.report",
    "write_findings_report": "governance.pii.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'governance.pii' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
