"""The PII gate: presidio detection, policy actions, redaction and findings reports.

Public API::

    from governance.pii import PiiScanner, run_pii_gate, load_findings_report

    result = run_pii_gate(["data/prepared/sft/train.jsonl"], kind="sft",
                          policy_path="policies/pii.yaml", stage="pii_scan_sft",
                          cleared_dir="artifacts/pii_scan_sft/data")
    write_decision(result.decision, "artifacts/pii_scan_sft/decision.json")
    write_findings_report(result.report, "artifacts/pii_scan_sft/findings.json")

``engine`` builds presidio's AnalyzerEngine from ``policies/pii.yaml``;
``windows`` computes its results on small windows (identical, much faster);
``scan`` applies the policy to every string field; ``redact`` writes the
cleared copy; ``gate`` decides; ``report`` reads and writes ``findings.json``.
"""

from governance.pii.engine import EngineInfo, PiiEngine, build_engine
from governance.pii.gate import GATE, PiiGateResult, run_pii_gate
from governance.pii.mask import mask_value, tag
from governance.pii.report import FindingsReport, load_findings_report, write_findings_report
from governance.pii.scan import KIND_FIELDS, FileScan, Finding, PiiScanner, resolve
from governance.pii.windows import WindowedAnalyzer

__all__ = [
    "GATE",
    "KIND_FIELDS",
    "EngineInfo",
    "FileScan",
    "Finding",
    "FindingsReport",
    "PiiEngine",
    "PiiGateResult",
    "PiiScanner",
    "WindowedAnalyzer",
    "build_engine",
    "load_findings_report",
    "mask_value",
    "resolve",
    "run_pii_gate",
    "tag",
    "write_findings_report",
]
