"""``govern pii scan``: one summary line, exit 0 passed / 1 denied / 2 bad input or usage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from governance.cli import main
from governance.pii import load_findings_report

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "policies" / "pii.yaml"


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_pass_with_redact_warnings_exits_0_with_one_line(tmp_path, capsys):
    data = _jsonl(
        tmp_path / "prefs.jsonl",
        [
            {"prompt": "Hi", "chosen": "Write to jane.doe@example.com", "rejected": "No."},
            {"prompt": "2+2?", "chosen": "4", "rejected": "5"},
        ],  # fmt: skip
    )
    report = tmp_path / "report.json"
    assert main(["pii", "scan", str(data), "--policy", str(POLICY), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"pii scan {data} (preference): passed: 2 records, 1 findings (EMAIL_ADDRESS 1); 0 deny, 1 warn, 0 waived\n"
    )
    loaded = load_findings_report(report)
    assert loaded.scan.findings[0].field == "chosen" and loaded.scan.findings[0].masked == "***@***.com"
    assert loaded.cleared is False and loaded.rescan is None


def test_denied_exits_1_and_names_the_first_denying_rule(tmp_path, capsys):
    data = _jsonl(tmp_path / "sft.jsonl", [{"messages": [{"role": "user", "content": "Fabrikam Holdings wrote."}]}])
    assert main(["pii", "scan", str(data), "--kind", "sft", "--policy", str(POLICY)]) == 1
    assert capsys.readouterr().out == (
        f"pii scan {data} (sft): DENIED: 1 records, 1 findings (CUSTOMER_NAME 1); 1 deny, 0 warn, 0 waived; "
        f"first: deny  pii.customer_name  {data}: 1 record contains CUSTOMER_NAME (max 0); "
        "first at line 1, field messages[0].content\n"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"messages": []}\n{"messages": [\n', ":2: invalid JSON (Expecting value at column 15)"),
        (
            b'{"messages": [{"content": "\xff"}]}\n',
            ":1: invalid UTF-8 at byte 27 of the line; re-encode the file as UTF-8",
        ),
        (b"", ": no records (empty file)"),
        (b'["messages"]\n', ":1: expected a JSON object per line, got list"),
        (
            b'{"messages": []}\n{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
            ":2: JSON nested 100001 levels deep (max 64); flatten the record",
        ),
    ],
    ids=["invalid-json", "invalid-utf8", "empty", "wrong-shape", "deep-nesting"],
)
def test_bad_input_exits_2_naming_file_and_line(tmp_path, capsys, content, expected):
    data = tmp_path / "bad.jsonl"
    data.write_bytes(content)
    assert main(["pii", "scan", str(data), "--kind", "sft", "--policy", str(POLICY)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"govern: {data}{expected}\n" and captured.out == ""


def test_usage_and_policy_errors_exit_2(tmp_path, capsys):
    data = _jsonl(tmp_path / "sft.jsonl", [{"messages": []}])
    with pytest.raises(SystemExit) as exit_info:
        main(["pii", "scan", str(data), "--kind", "chat"])
    assert exit_info.value.code == 2
    bad = tmp_path / "pii.yaml"
    policy = yaml.safe_load(POLICY.read_text())
    del policy["entities"][0]["score_threshold"]
    bad.write_text(yaml.safe_dump(policy))
    capsys.readouterr()
    assert main(["pii", "scan", str(data), "--policy", str(bad)]) == 2
    assert capsys.readouterr().err == f"govern: {bad}: entities.0.score_threshold: required key is missing\n"
