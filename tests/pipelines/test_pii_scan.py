"""``python -m pipelines.pii_scan <dataset>``: outputs, exit codes, and no raw PII in anything it writes."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import pytest
import yaml
from e2e_support import commit_reviewed

from governance.errors import PolicyViolation
from governance.gates import read_decision, require_passed_gates
from governance.lineage import sha256_file
from governance.pii import PiiScanner, load_findings_report
from governance.pii.engine import NER_ENTITIES
from governance.policy.pii import NlpEngineConfig, load_pii_policy
from pipelines.pii_scan import main

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "policies" / "pii.yaml"

#: Planted values of every entity the shipped policy redacts, in every kind of field.
PLANTED = {
    "jane.doe@example.com": "EMAIL_ADDRESS",
    "(415) 555-0103": "PHONE_NUMBER",
    "4111 1111 1111 1111": "CREDIT_CARD",
    "DE89 3704 0044 0532 0130 00": "IBAN_CODE",
    "123-45-6788": "US_SSN",
    "203.0.113.76": "IP_ADDRESS",
    "https://intranet.example.com/u/jdoe": "URL",
    "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2": "CRYPTO",
    "E123456": "EMPLOYEE_ID",
}


def _rows() -> list[dict]:
    return [
        {"id": "c1", "messages": [{"role": "user", "content": "What is 48 / 2? And 3x + 7 = 22?"},
                                  {"role": "assistant", "content": "24, and x = 5."}]},
        {"id": "c2", "messages": [
            {"role": "system", "content": "Escalate to jane.doe@example.com; staff line (415) 555-0103."},
            {"role": "user", "content": "My card is 4111 1111 1111 1111 and IBAN DE89 3704 0044 0532 0130 00."},
            {"role": "assistant", "content": "Noted. Your social security number 123-45-6788 is not needed."},
            {"role": "user", "content": "I logged in from 203.0.113.76, see https://intranet.example.com/u/jdoe"},
            {"role": "assistant", "content": "Wallet 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2 and employee E123456."},
        ], "meta": {"notes": ["reviewed", "agent jane.doe@example.com"]}},
    ]  # fmt: skip


def _project(tmp_path: Path, monkeypatch, train_rows: list[dict], eval_rows: list[dict] | None = None) -> Path:
    (tmp_path / "policies").mkdir()
    shutil.copy(POLICY, tmp_path / "policies" / "pii.yaml")
    commit_reviewed(tmp_path)  # a policy decides only as the reviewed version
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in train_rows))
    eval_rows = eval_rows if eval_rows is not None else [{"messages": [{"role": "user", "content": "12 + 30 = 42"}]}]
    (tmp_path / "in" / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in eval_rows))
    params = {
        "pii_scan_sft": {
            "kind": "sft",
            "inputs": ["in/train.jsonl", "in/eval.jsonl"],
            "out_dir": "out/pii_scan_sft",
            "policy": "policies/pii.yaml",
        }
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "out" / "pii_scan_sft"


def test_stage_redacts_rescans_and_binds_the_decision_to_the_cleared_files(tmp_path, monkeypatch, mlflow_store):
    out = _project(tmp_path, monkeypatch, _rows())
    assert main(["sft"]) == 0
    cleared_train, cleared_eval = out / "data" / "train.jsonl", out / "data" / "eval.jsonl"
    assert cleared_eval.read_bytes() == Path("in/eval.jsonl").read_bytes()
    redacted = cleared_train.read_text()
    for value, entity in PLANTED.items():
        assert value not in redacted and f"<{entity}>" in redacted
    assert redacted.splitlines()[0] == Path("in/train.jsonl").read_text().splitlines()[0]
    decision = read_decision(out / "decision.json")
    assert decision.passed and decision.counts["deny"] == 0 and decision.counts["warn"] == len(PLANTED)
    assert [i["sha256"] for i in decision.details["inputs"]] == [
        sha256_file("in/train.jsonl"),
        sha256_file("in/eval.jsonl"),
    ]
    # Training's check accepts exactly the cleared files.
    require_passed_gates(
        ["out/pii_scan_sft/data/train.jsonl", "out/pii_scan_sft/data/eval.jsonl"], ["out/pii_scan_sft/decision.json"]
    )
    report = load_findings_report(out / "findings.json")
    assert report.cleared and report.rescan.findings_total == 0
    assert report.scan.by_entity["EMAIL_ADDRESS"].findings == 2 and report.scan.by_entity["EMAIL_ADDRESS"].records == 1
    assert json.loads((out / "manifest.json").read_text())["policy"]["version"] == "2026.11-7"


def test_red_team_appends_pii_to_the_gated_data_and_rewrites_the_decision_hash(tmp_path, monkeypatch, mlflow_store):
    """Issue 31, scripted as the red team did it, up to the check every training stage makes first."""
    out = _project(tmp_path, monkeypatch, _rows())
    assert main(["sft"]) == 0
    files = ["out/pii_scan_sft/data/train.jsonl", "out/pii_scan_sft/data/eval.jsonl"]
    decision = Path("out/pii_scan_sft/decision.json")
    require_passed_gates(files, [decision])  # the gate's own decision, published by the stage: accepted
    # Append 30 records with raw SSNs, card numbers and e-mails to the gated data, rewrite its hash in decision.json
    gated, before = Path(files[0]), sha256_file(files[0])
    pii = [
        {
            "messages": [
                {"role": "user", "content": f"SSN 123-45-{6700 + i}, card 4111 1111 1111 1111, a{i}@example.com"}
            ]
        }
        for i in range(30)
    ]
    with gated.open("a") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in pii)
    decision.write_text(decision.read_text().replace(before, sha256_file(gated)))
    assert read_decision(decision).passed and (out / "decision.json").samefile(decision)
    # (then `dvc commit -f pii_scan_sft`: dvc.lock agrees with the edited files, and nothing here believes dvc.lock)
    with pytest.raises(PolicyViolation) as refused:
        require_passed_gates(files, [decision])
    assert str(refused.value) == (
        f"out/pii_scan_sft/decision.json: no signed gate_decision event in the audit trail matches this file "
        f"(sha256 {sha256_file(decision)[:12]}…): it was not published by the pii_scan_sft stage; "
        "re-run the gate: dvc repro -f pii_scan_sft"
    )


def test_denied_stage_exits_1_and_leaves_no_cleared_data(tmp_path, monkeypatch, mlflow_store):
    rows = [{"messages": [{"role": "user", "content": "Forwarded from Northwind Traders: card 4111 1111 1111 1111"}]}]
    out = _project(tmp_path, monkeypatch, rows)
    assert main(["sft"]) == 1
    decision = read_decision(out / "decision.json")
    assert not decision.passed
    assert decision.summary_lines()[-1] == (
        "deny  pii.customer_name  in/train.jsonl: 1 record contains CUSTOMER_NAME (max 0); "
        "first at line 1, field messages[0].content"
    )
    assert not (out / "data").exists() and not (out / "data.staging").exists()
    assert (out / "findings.json").is_file()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"messages": []}\n{"messages": [\n', "in/train.jsonl:2: invalid JSON (Expecting value at column 15)"),
        (b'{"messages": [{"content": "caf\xe9"}]}\n', "in/train.jsonl:1: invalid UTF-8 at byte 30 of the line; "),
        (b"", "in/train.jsonl: no records (empty file)"),
        (b"[1, 2]\n", "in/train.jsonl:1: expected a JSON object per line, got list"),
        (b'{"chosen": "a", "rejected": "b"}\n', "in/train.jsonl:1: a sft record needs top-level messages or "),
    ],
    ids=["invalid-json", "invalid-utf8", "empty", "wrong-top-level-shape", "wrong-kind"],
)
def test_bad_input_exits_2_and_leaves_no_decision(tmp_path, monkeypatch, capsys, content, expected):
    out = _project(tmp_path, monkeypatch, [])
    Path("in/train.jsonl").write_bytes(content)
    # A stale decision and cleared data from an earlier run must not survive a failed one.
    (out / "data").mkdir(parents=True)
    (out / "decision.json").write_text("{}")
    assert main(["sft"]) == 2
    assert capsys.readouterr().err.startswith(f"pii_scan: DataError: {expected}")
    assert not (out / "decision.json").exists() and not (out / "data").exists()


def test_missing_params_section_exits_2(tmp_path, monkeypatch, capsys):
    _project(tmp_path, monkeypatch, _rows())
    assert main(["kto"]) == 2
    assert capsys.readouterr().err == "pii_scan: ConfigError: params.yaml: section 'pii_scan_kto' is missing\n"


def _flagged(scanner: PiiScanner, text: str, own_words: list[str]) -> list[str]:
    """What the scanner finds in a text, except inside rule ids and field names.

    Those are vocabulary, not values: ``pii.phone_number`` reads as the domain
    ``pii.ph`` (.ph is a TLD), ``meta.notes`` as ``meta.no`` (.no), and "url" in
    ``pii.url`` or the count key ``"URL"`` is a URL context word.
    """
    own = [(m.start(), m.end()) for word in own_words for m in re.finditer(re.escape(word), text)]
    return [
        f"{f.entity} {text[max(0, f.start - 80) : f.end + 10]!r}"
        for f in scanner.findings_in(text)
        if not any(start <= f.start and f.end <= end for start, end in own)
    ]


def test_nothing_the_stage_writes_or_logs_holds_raw_pii(tmp_path, monkeypatch, capsys, caplog, mlflow_store):
    caplog.set_level(logging.INFO)  # what the stage emits (stage_main logs at INFO)
    out = _project(tmp_path, monkeypatch, _rows())
    assert main(["sft"]) == 0
    outputs = {name: (out / name).read_text() for name in ("findings.json", "decision.json", "manifest.json")}
    # And a denied run, whose decision and report list the findings that stopped it.
    denied = [{"messages": [{"role": "user", "content": "Contoso Pharmaceuticals: jane.doe@example.com"}]}]
    Path("in/train.jsonl").write_text(json.dumps(denied[0]) + "\n")
    assert main(["sft"]) == 1
    outputs.update({f"denied {name}": (out / name).read_text() for name in ("findings.json", "decision.json")})
    captured = capsys.readouterr()
    # Log messages as logged (not caplog's format, whose source file names read as domains: engine_base.py)
    log = "\n".join(record.getMessage() for record in caplog.records)
    outputs.update({"log": log, "stderr": captured.err, "stdout": captured.out})
    planted = [*PLANTED, "Contoso Pharmaceuticals", "4111111111111111", "5550103", "jane.doe"]
    policy = load_pii_policy(POLICY)
    # The planted values are pattern PII: the outputs are checked with the pattern recognizers, since to NER
    # a report's capitalised keys and recognizer names ("PhoneRecognizer", "PERSON") read as names.
    patterns = policy.model_copy(
        update={
            "nlp_engine": NlpEngineConfig(engine="no_op"),
            "entities": [rule for rule in policy.entities if rule.entity not in NER_ENTITIES],
        }
    )
    scanner = PiiScanner(patterns, POLICY)
    for name, text in outputs.items():
        for value in planted:
            assert value not in text, (name, PLANTED.get(value, value))
        assert _flagged(scanner, text, [rule.id for rule in policy.entities] + ["meta.notes"]) == [], name
    # The outputs do describe what was found.
    assert "<EMAIL_ADDRESS>" in outputs["findings.json"] and "***@***.com" in outputs["findings.json"]


#: Runs the stage as ``python -m pipelines.pii_scan sft`` does (its ``__main__`` block), then says what it imported.
_AS_MAIN = """
import runpy, sys
sys.argv = ["pipelines.pii_scan", "sft"]
try:
    runpy.run_module("pipelines.pii_scan", run_name="__main__", alter_sys=True)
except SystemExit as stop:
    print(stop.code)
"""


def test_stage_run_as_a_process_writes_what_it_writes_in_this_one(tmp_path, monkeypatch, mlflow_store):
    import os
    import subprocess
    import sys

    out = _project(tmp_path, monkeypatch, _rows())
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPENLINEAGE_DISABLED": "true"}
    done = subprocess.run([sys.executable, "-c", _AS_MAIN], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "0"
    # ... and writes what the same stage writes in a process that has already imported everything (this one)
    without = {name: (out / name).read_bytes() for name in ("findings.json", "decision.json", "manifest.json")}
    cleared = (out / "data" / "train.jsonl").read_text()
    assert not any(value in cleared for value in PLANTED)
    assert main(["sft"]) == 0
    assert {name: (out / name).read_bytes() for name in without} == without
    assert (out / "data" / "train.jsonl").read_text() == cleared


def test_a_card_stored_as_a_json_number_is_found_and_cleared(tmp_path, monkeypatch, mlflow_store):
    """Q1 at the gate: PII in a record's numbers (metadata a trainer ships with the data) is personal data too."""
    rows = [
        {"messages": [{"role": "user", "content": "What is 12 + 30?"}, {"role": "assistant", "content": "42."}],
         "meta": {"card": 4111111111111111, "turns": 2, "score": 0.5, "reviewed": True, "ticket": 20261125}},
    ]  # fmt: skip
    out = _project(tmp_path, monkeypatch, rows)
    assert main(["sft"]) == 0
    (cleared,) = [json.loads(line) for line in (out / "data" / "train.jsonl").read_text().splitlines()]
    assert cleared["meta"] == {
        "card": "<CREDIT_CARD>", "turns": 2, "score": 0.5, "reviewed": True, "ticket": 20261125,
    }  # fmt: skip
    report = load_findings_report(out / "findings.json")
    assert report.scan.by_entity["CREDIT_CARD"].findings == 1 and report.rescan.findings_total == 0
    assert "4111111111111111" not in (out / "findings.json").read_text()
