"""Both gates of one dataset on Spark local[2] equal the local engine: decision, findings, cleared bytes.

Part of the default run: the lean test of the Spark engine path (100 records, one
Spark session for the module). The 1M-record comparison is ``benchmarks/scale_gates.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from governance.gates import write_decision
from governance.pii import run_pii_gate, write_findings_report
from governance.validation import run_validation_gate

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def spark():
    from governance.spark_io import spark_session

    session = spark_session({"master": "local[2]"})  # once per module: start-up is the expensive part
    yield session
    session.stop()


def _workspace(root: Path) -> Path:
    """The shipped SFT data, cut small (a few planted PII values and names included), and the shipped policies."""
    root.mkdir(parents=True)
    shutil.copytree(REPO / "policies", root / "policies")
    lines = (REPO / "data/raw/sft.jsonl").read_text().splitlines(keepends=True)
    # ...and the records with planted names and places (sft-0901..0906): NER runs the same on Spark
    named = [line for line in lines if '"id": "sft-09' in line]
    (root / "train.jsonl").write_text("".join(lines[:80] + named))
    (root / "eval.jsonl").write_text("".join(lines[80:100]))
    return root


def _gates(root: Path, monkeypatch, engine_spark=None) -> dict[str, bytes]:
    from governance.pii.spark import SparkPiiScanner
    from governance.policy.pii import load_pii_policy
    from governance.validation.spark import spark_file_scanner

    monkeypatch.chdir(root)
    scanner = None
    if engine_spark is not None:
        scanner = SparkPiiScanner(load_pii_policy("policies/pii.yaml"), "policies/pii.yaml", engine_spark)
    pii = run_pii_gate(
        ["train.jsonl", "eval.jsonl"],
        kind="sft",
        policy_path="policies/pii.yaml",
        stage="pii_scan_sft",
        cleared_dir="out/data",
        waivers_path="policies/waivers.yaml",
        scanner=scanner,
    )
    write_findings_report(pii.report, "out/findings.json")
    write_decision(pii.decision, "out/pii_decision.json")
    validation = run_validation_gate(
        kind="sft",
        train="out/data/train.jsonl",
        eval_path="out/data/eval.jsonl",
        policy_path="policies/data.yaml",
        waivers_path="policies/waivers.yaml",
        stage="validate_sft",
        scan_file=spark_file_scanner(engine_spark) if engine_spark is not None else None,
    )
    write_decision(validation, "out/validation_decision.json")
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "out").rglob("*")) if p.is_file()}


def _comparable(name: str, content: bytes) -> object:
    if not name.endswith(".json"):
        return content  # cleared data: byte for byte
    value = json.loads(content)
    details = value.get("details", {})
    if "engine" in details:  # the one place the engines may differ: which one ran, in how many batches
        details.pop("engine")
        for item in details.get("files", {}).values():
            item.pop("chunks")
    return value


def test_both_gates_on_spark_equal_the_local_engine(tmp_path, monkeypatch, spark):
    local = _gates(_workspace(tmp_path / "local"), monkeypatch)
    on_spark = _gates(_workspace(tmp_path / "spark"), monkeypatch, engine_spark=spark)
    assert (
        sorted(on_spark)
        == sorted(local)
        == [
            "out/data/eval.jsonl",
            "out/data/train.jsonl",
            "out/findings.json",
            "out/pii_decision.json",
            "out/validation_decision.json",
        ]
    )
    findings = json.loads(local["out/findings.json"])
    assert findings["scan"]["findings_total"] > 0  # the sample carries planted PII: the scan had work
    for name in local:
        assert _comparable(name, on_spark[name]) == _comparable(name, local[name]), name


def test_spark_engine_refuses_invalid_utf8_as_the_local_engine_does(tmp_path, spark):
    """Spark's text reader would scan and clear U+FFFD in place of the byte: the file is refused instead."""
    from governance.errors import DataError
    from governance.pii.spark import SparkPiiScanner
    from governance.policy.pii import load_pii_policy

    path = tmp_path / "train.jsonl"
    good = json.dumps({"id": "a", "messages": [{"role": "user", "content": "hi"}]}).encode() + b"\n"
    path.write_bytes(good + b'{"id": "b", "messages": [{"role": "user", "content": "caf\xe9"}]}\n')
    scanner = SparkPiiScanner(load_pii_policy(REPO / "policies/pii.yaml"), REPO / "policies/pii.yaml", spark)
    with pytest.raises(DataError) as refused:
        scanner.scan_file(path, "sft")
    assert str(refused.value) == f"{path}:2: invalid UTF-8 at byte 57 of the line; re-encode the file as UTF-8"


def _swapped_while_read(monkeypatch, path: Path, shown: bytes) -> None:
    """The attack: ``shown`` is on disk while Spark's executors read the file, the real bytes again right after."""
    import governance.pii.spark
    import governance.spark_io
    import governance.validation.spark

    real = governance.spark_io.records_frame
    kept = path.read_bytes()

    def read_while_swapped(spark, source, **kwargs):
        path.write_bytes(shown)
        try:
            frame = real(spark, source, **kwargs).cache()
            frame.count()  # the executors read now
            return frame
        finally:
            path.write_bytes(kept)

    for module in (governance.pii.spark, governance.validation.spark):
        monkeypatch.setattr(module, "records_frame", read_while_swapped)


def test_attack_a_file_swapped_while_spark_reads_it_and_back_is_scanned_as_bound(tmp_path, monkeypatch, spark):
    """Clean records on disk while the executors read, the planted PII back before the gate hashed the file again:
    on a local master the executors read a private copy hashed as it was made, so the PII is scanned and bound."""
    import hashlib

    from governance.pii.spark import SparkPiiScanner
    from governance.policy.pii import load_pii_policy

    path = tmp_path / "train.jsonl"
    record = {"id": "a", "messages": [{"role": "user", "content": "My card is 4111 1111 1111 1111, SSN 078-05-1120."}]}
    planted = (json.dumps(record) + "\n").encode()
    path.write_bytes(planted)
    clean = (json.dumps({"id": "a", "messages": [{"role": "user", "content": "hello"}]}) + "\n").encode()
    _swapped_while_read(monkeypatch, path, clean)
    scanner = SparkPiiScanner(load_pii_policy(REPO / "policies/pii.yaml"), REPO / "policies/pii.yaml", spark)
    scan = scanner.scan_file(path, "sft")
    assert path.read_bytes() == planted  # swapped back: on disk nothing shows
    assert scan.sha256 == hashlib.sha256(planted).hexdigest()
    assert scan.findings >= 1  # what was bound was what was scanned: the planted card and SSN


def test_attack_a_valid_file_shown_to_spark_validation_binds_the_bytes_it_validated(tmp_path, monkeypatch, spark):
    """The validation gate on Spark bound a later read of the path: a malformed file put back after the pass was
    bound as validated. It now binds the bytes its executors read."""
    import hashlib

    root = _workspace(tmp_path / "ws")
    monkeypatch.chdir(root)
    valid = (root / "train.jsonl").read_bytes()
    broken = valid + b'{"id": "x", "messages": []}\n'
    (root / "train.jsonl").write_bytes(broken)
    _swapped_while_read(monkeypatch, root / "train.jsonl", valid)
    from governance.validation.spark import spark_file_scanner

    decision = run_validation_gate(
        kind="sft", train="train.jsonl", eval_path="eval.jsonl", policy_path="policies/data.yaml",
        waivers_path="policies/waivers.yaml", stage="validate_sft", scan_file=spark_file_scanner(spark),
    )  # fmt: skip
    [train] = [d for d in decision.datasets if d.path == "train.jsonl"]
    assert (root / "train.jsonl").read_bytes() == broken
    assert train.sha256 == hashlib.sha256(broken).hexdigest()  # the bytes validated, the broken record included
    # The broken record (line 180: no turns) is what was validated; the sample's size rules deny either way
    found = {v.rule_id: v.message for v in decision.violations}
    assert "first at line 180" in found["data.empty_text"] and "data.turn_order" in found
