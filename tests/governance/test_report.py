"""The audit report against real MLflow stores and a real audit trail: every section's values, every verdict check.

Versions are built by tests/governance/report_support.py in the shape the SFT
spine records (real validation and evaluation gates, real registration in the
trail, real approvals); tests/e2e/test_report_browser.py does the same for a
version built by ``dvc repro`` and opens the page in Chromium.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
import yaml
from report_support import PLANTED, REPO, build_version

from governance import approvals, registry, trail
from governance.approvals.reconcile import find_drift
from governance.cli import main as govern
from governance.identity import Identity
from governance.lineage import sha256_file
from governance.report import build_report, log_report
from governance.report.charts import parse_bounds
from governance.report.compliance import ComplianceMap, load_compliance_map
from governance.report.policy import ReportPolicy, load_report_policy

POLICIES = REPO / "policies"


#: A reason carrying markup: report.html and report.md must show it, never run it (issue 9, output spoofing).
SPOOFED_REASON = "scope checked <script>alert(1)</script>"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One MLflow store and audit trail holding a version per scenario, built once for the module."""
    root = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("GOVERN_AUDIT_URL", f"sqlite:///{root / 'audit.db'}")
        mp.setenv("GOVERN_POLICY_DIR", str(POLICIES))
        scenarios = {
            "pending": {},
            "approved": {},
            "eval_failed": {"eval_ratio": 1.25},
            # Three independent defects in one version: each check must report its own
            "defects": {"with_pii_gate": False, "tamper_validation": True, "intended_use": False},
            # Issue 31: trained on PII appended under a rewritten PII decision, an evaluation nobody published
            "forged": {"forged": True},
        }
        built = {}
        for key, options in scenarios.items():
            workdir = root / key
            workdir.mkdir()
            mp.chdir(workdir)
            built[key] = build_version(Path("."), project=key.replace("_", "-"), **options)
        mp.chdir(root)
        approve = built["approved"]
        approvals.approve(approve.name, approve.version, reason="lineage reviewed", identity=Identity("alice", "local"))
        approvals.approve(approve.name, approve.version, reason=SPOOFED_REASON, identity=Identity("bob", "local"))
        approvals.promote(approve.name, approve.version, reason="first release", identity=Identity("dana", "local"))
        # Issue 28: signed at registration as register_sft does (last: once a version is signed, unsigned ones
        # can no longer be approved); its report verifies the signature
        (root / "signed").mkdir()
        mp.chdir(root / "signed")
        built["signed"] = build_version(Path("."), project="signed", signed=True)
        mp.chdir(root)
        yield root, built, mp


def _report(lab, key, **kwargs):
    root, built, _ = lab
    version = built[key]
    started, cpu = time.perf_counter(), time.process_time()
    report = build_report(version.name, version.version, root / "out" / key, **kwargs)
    return report, (time.perf_counter() - started, time.process_time() - cpu)


def _check(report, check_id):
    return next(c for c in report.verdict.checks if c.id == check_id)


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _visible(html: str) -> str:
    """The page's text as a reader sees it (tags and the style block removed, entities kept)."""
    html = re.sub(r"<style>.*?</style>", " ", html.replace("<wbr>", ""), flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_pending_version_needs_exactly_the_missing_approvals(lab):
    report, (wall, cpu) = _report(lab, "pending")
    again, (wall_again, cpu_again) = _report(lab, "pending")
    print(  # noqa: T201 - the render time the issue asks to measure (not a timed test)
        f"\nreport (facts + verdict + html/md/card): first {wall:.2f}s wall / {cpu:.2f}s CPU, "
        f"again {wall_again:.2f}s wall / {cpu_again:.2f}s CPU"
    )
    assert not report.verdict.promotable
    assert [(c.id, c.status) for c in report.verdict.blocking] == [("approvals.quorum", "missing")]
    assert report.verdict.blocking[0].detail == "0 of 2 distinct approval(s) recorded (none); risk tier medium needs 2"
    assert report.verdict.headline == "May not be promoted: 1 piece(s) of required evidence missing."
    statuses = {c.id: c.status for c in report.verdict.checks}
    assert statuses == {
        "identity.recorded": "pass",
        "lineage.model_hash": "pass",
        "data.required_gates": "pass",
        "data.gates_passed": "pass",
        "data.decision_integrity": "pass",
        "eval.passed": "pass",
        "eval.integrity": "pass",
        "objectives.approved": "not_applicable",
        "approvals.quorum": "missing",
        "integrity.chain": "pass",
        "integrity.signature": "not_applicable",  # registered without a signature (the lab's unsigned versions)
        "operations.policy": "pass",
        "operations.incidents": "pass",
        "operations.monitoring": "not_applicable",  # never served: no window of production traffic
    }


def test_every_section_shows_recorded_values_in_html_and_markdown(lab):
    root, built, _ = lab
    report, _ = _report(lab, "pending")
    facts = report.facts
    html, markdown = _visible(_text(report.files.html)), _text(report.files.markdown)
    lineage = json.loads((root / "pending" / "artifacts/validate_sft/decision.json").read_text())
    head = trail.head()
    expected = [
        # 1 verdict, 2 identity
        "May not be promoted",
        "0 of 2 distinct approval(s) recorded",
        "pending-sft",
        "medium",
        "apache-2.0",
        "Drafts for support agents, reviewed before sending.",
        "Unreviewed advice of any kind.",
        "Qwen2ForCausalLM",
        # 3 training
        "c0ffee" * 6 + "abcd",
        facts.training["lock_sha256"],
        "24,576",
        "lora_alpha",
        "all-linear",
        "cosine",  # TRL's logged arguments
        "template_markers",  # loss masking: strategy and the training template's hash
        "7e3a" * 16,
        # 4 data: DVC hashes, records, gates, PII counts, validation rule results
        facts.data["datasets"][0]["md5"],
        "520",
        "data.min_rows",
        "min: 500",
        "EMAIL_ADDRESS",
        "EmailRecognizer",
        "***@***.org",  # masked shape of the planted address
        lineage["policy_version"],
        # 6 evaluation
        "eval.sft.perplexity_vs_base",
        "perplexity_ratio_vs_base",
        "≤1",
        "no production version",
        "base_perplexity",
        # 8 integrity, 9 operations, 10 compliance
        head.hash,
        "lim.human_review",
        "lim.builtin_base",
        "10 years after the version is retired",
        "monitor.pii",  # the plan lists the rules of policies/monitoring.yaml
        "Annex XI 2(c)",
        "MEASURE 2.10",
        "A.7.5",
        "Art. 53(1)(a)",  # the documentation duty of a general-purpose model (no high-risk use declared)
    ]
    for value in expected:
        assert value in html, f"HTML lacks {value!r}"
        assert value in markdown, f"Markdown lacks {value!r}"
    assert "not recorded" in html  # parameter count, hardware model and safety evaluation are honest gaps
    # Energy is an estimate from the recorded train_runtime and the machine's cores, its method stated
    assert "estimate: training time x power draw of the recorded hardware" in html
    for figure in ("lineage", "training_curves", "eval_thresholds"):
        assert report.files.figures[figure].is_file()
        assert f"figures/{figure}.svg" in markdown
    assert html.count("<svg") == 0  # _visible strips tags; the raw page inlines them:
    assert _text(report.files.html).count("<svg") == 3


def test_a_run_too_short_for_curves_or_threshold_charts_still_renders(lab, tmp_path):
    # A few-step run (the GGUF benchmark's 4 SFT steps, logging every 5) logs no curve
    from governance.report.render import render_report

    report, _ = _report(lab, "pending")
    report.facts.training["curves"], report.facts.evaluation["results"] = {}, []
    files = render_report(report.facts, report.verdict, tmp_path / "short")
    markdown = _text(files.markdown)
    assert "![Training curves]" not in markdown and "![Evaluation metrics against thresholds]" not in markdown
    assert "Training curves by optimizer step" not in _text(files.html)


def test_html_is_self_contained(lab):
    report, _ = _report(lab, "pending")
    page = _text(report.files.html)
    assert "<script" not in page.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page, flags=re.I)
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", page, flags=re.I)
    assert "@import" not in page
    assert "Content-Security-Policy" in page


def test_model_card_has_hugging_face_metadata(lab):
    report, _ = _report(lab, "pending")
    card = _text(report.files.model_card)
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "apache-2.0"
    assert front["base_model"] == "builtin:tiny"
    assert "trl" in front["tags"] and "sft" in front["tags"]
    datasets = report.facts.data["datasets"]
    assert front["datasets"] == [d["path"] for d in datasets]
    assert front["dataset_hashes"][datasets[0]["path"]]["md5"] == datasets[0]["md5"]
    metrics = {m["type"]: m["value"] for m in front["model-index"][0]["results"][0]["metrics"]}
    assert metrics["perplexity_ratio_vs_base"] == pytest.approx(0.8)
    assert metrics["base_perplexity"] == pytest.approx(9.03)
    assert front["governance"]["promotable"] is False
    assert "# pending-sft v1" in card and "Drafts for support agents" in card


def test_approved_and_promoted_version_may_be_promoted(lab):
    report, _ = _report(lab, "approved")
    assert report.verdict.promotable, report.verdict.blocking
    # The lab's evaluation and gates record warn-severity findings: promotable, but they are in the banner
    warnings = report.verdict.warnings
    assert warnings and report.verdict.headline == (
        f"May be promoted with {len(warnings)} warning(s): every check the policy requires passed; "
        "read the warnings first."
    )
    quorum = _check(report, "approvals.quorum")
    assert quorum.detail == "2 of 2 approval(s) (risk tier medium): alice, bob"
    ap = report.facts.approvals
    assert [(d["actor"], d["role"], d["decision"], d["reason"]) for d in ap["decisions"]] == [
        ("alice", "reviewer", "approve", "lineage reviewed"),
        ("bob", "reviewer", "approve", SPOOFED_REASON),
    ]
    assert [d["identity"] for d in ap["decisions"]] == ["local, unverified", "local, unverified"]
    assert ap["registry"] == {"checked": True, "drift": [], "repairs": []}
    markdown = _text(report.files.markdown)
    assert "<script>" not in markdown and "<script>" not in _text(report.files.html)
    assert "| bob | local, unverified | reviewer | approve | scope checked \\<script\\>alert(1)\\</script\\> |" in (
        markdown
    )
    # Read as text it needs no entities; rendered as Markdown the reason is text, never a tag
    import markdown_it

    assert "&lt;" not in markdown and "\\u0027" not in markdown
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<script>" not in rendered and "scope checked &lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert (
        "Registry drift: none (MLflow aliases, `governance.*` tags and the `lineage.*` tags registration froze match "
        "the audit trail)." in markdown
    )
    assert [(a["alias"], a["event"], a["actor"]) for a in ap["alias_history"]] == [("production", "set", "dana")]
    assert ap["rollback_target"] == "none: no earlier version has held production"
    html = _visible(_text(report.files.html))
    for value in ("alice", "lineage reviewed", "scope checked", "@production", "dana", "This version holds the"):
        assert value in html
    assert report.facts.identity["aliases"] == ["production"]


def test_failed_evaluation_fails_the_verdict_and_blocks_approval(lab):
    report, _ = _report(lab, "eval_failed")
    failed = {c.id: c.detail for c in report.verdict.checks if c.status == "fail"}
    assert failed["eval.passed"] == "denied by eval.sft.perplexity_vs_base"
    assert failed["approvals.quorum"] == (
        "the audit trail records gate status passed and evaluation status eval_failed: "
        "the version can never be approved"
    )
    assert report.verdict.headline.startswith("May not be promoted: 2 check(s) failed")
    # The finding with its evidence: the interval, the p-value and n, in both forms of the report
    finding = (
        "perplexity_ratio_vs_base 1.25 (95% bootstrap CI 1.25..1.25, p=0.0002, n=60 conversations): above max 1 at "
        "95% confidence"
    )
    assert finding in _visible(_text(report.files.html))
    assert finding in _text(report.files.markdown)
    assert "n=60 conversations; 95% CI 1.25..1.25; bootstrap p=0.0002" in _text(report.files.markdown)


def test_every_defect_is_named_failures_first(lab):
    report, _ = _report(lab, "defects")
    assert [(c.id, c.status) for c in report.verdict.blocking] == [
        ("data.decision_integrity", "fail"),
        ("identity.recorded", "missing"),
        ("data.required_gates", "missing"),
        ("approvals.quorum", "missing"),
    ]
    assert (
        report.verdict.headline == "May not be promoted: 1 check(s) failed and 3 piece(s) of required evidence missing."
    )


def test_missing_pii_gate_is_reported_as_missing_evidence(lab):
    report, _ = _report(lab, "defects")
    check = _check(report, "data.required_gates")
    assert (check.status, check.detail) == ("missing", "no 'pii' gate decision in the lineage")
    assert "PII scan: no decision of gate 'pii' in the training run's lineage" in report.facts.gaps["data"]
    assert "pii gate" in _visible(_text(report.files.html))  # dashed "not recorded" node in the lineage graph


def test_gate_decision_changed_after_training_fails_integrity(lab):
    report, _ = _report(lab, "defects")
    check = _check(report, "data.decision_integrity")
    assert (check.status, check.detail) == (
        "fail",
        "SHA-256 differs from the lineage for: gates/validate_sft/decision.json",
    )


def test_red_team_decisions_without_signed_events_fail_integrity(lab):
    """The lineage and the logged artifacts agree with the rewritten files: only the audit trail tells."""
    root, _, _ = lab
    report, _ = _report(lab, "forged")
    pii = sha256_file(root / "forged/artifacts/pii_scan_sft/decision.json")
    evaluated = sha256_file(root / "forged/artifacts/evaluate_sft/decision.json")
    checks = {c.id: (c.status, c.detail) for c in report.verdict.checks}
    assert checks["data.decision_integrity"] == (
        "fail",
        f"no signed gate_decision event in the audit trail published: gates/pii_scan_sft/decision.json "
        f"(sha256 {pii[:12]}…)",
    )
    assert checks["eval.integrity"] == (
        "fail",
        f"evaluation/decision.json (sha256 {evaluated[:12]}…): no signed eval_decision event in the audit trail "
        "published it",
    )
    assert checks["data.required_gates"][0] == "pass"  # the rewritten decision does cover the data it was shown
    assert not report.verdict.promotable


def test_missing_intended_use_and_scope_are_missing_evidence(lab):
    report, _ = _report(lab, "defects")
    check = _check(report, "identity.recorded")
    assert (check.status, check.detail) == ("missing", "not recorded: intended use, out-of-scope uses")
    html = _visible(_text(report.files.html))
    assert "Intended use not recorded" in html


def test_without_an_audit_trail_approvals_and_chain_are_missing(lab, tmp_path):
    _, _, mp = lab
    absent = tmp_path / "nowhere" / "audit.db"
    mp.setenv("GOVERN_AUDIT_URL", f"sqlite:///{absent}")
    try:
        report, _ = _report(lab, "pending")
    finally:
        mp.setenv("GOVERN_AUDIT_URL", f"sqlite:///{lab[0] / 'audit.db'}")
    statuses = {c.id: (c.status, c.detail) for c in report.verdict.checks}
    assert statuses["approvals.quorum"] == ("missing", "audit trail not available: approvals cannot be shown")
    assert statuses["integrity.chain"] == ("missing", "audit trail not available: chain not verified")
    assert f"approvals and alias history: not recorded (no audit trail at {absent})" in report.facts.gaps["approvals"]
    assert not absent.exists(), "reading the report must not create an audit trail"


def test_edited_audit_event_breaks_the_chain(lab, tmp_path):
    root, built, mp = lab
    copy = tmp_path / "audit.db"
    copy.write_bytes((root / "audit.db").read_bytes())
    with sqlite3.connect(copy) as db:
        db.execute("DROP TRIGGER audit_events_no_update")
        db.execute("UPDATE audit_events SET reason = 'rewritten' WHERE seq = 1")
    mp.setenv("GOVERN_AUDIT_URL", f"sqlite:///{copy}")
    try:
        report, _ = _report(lab, "pending")
    finally:
        mp.setenv("GOVERN_AUDIT_URL", f"sqlite:///{root / 'audit.db'}")
    check = _check(report, "integrity.chain")
    assert check.status == "fail"
    # Event #1 is the first gate stage's published decision (the version's registration comes later)
    assert check.detail.startswith("event #1 (gate_decision gate:pii_scan_sft by ")
    assert check.detail.endswith("): stored content does not match its hash; it was edited")
    assert "chain broken" in _visible(_text(report.files.html))


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def test_no_planted_pii_reaches_report_card_or_mlflow(lab, tmp_path):
    from governance.pii import PiiScanner
    from governance.pii.report import load_findings_report
    from governance.policy.pii import load_pii_policy

    root, built, _ = lab
    report, _ = _report(lab, "pending")
    log_report(report)
    # The gate did find and redact every planted value (so there was something to leak)
    findings = load_findings_report(root / "pending" / "artifacts/pii_scan_sft/findings.json")
    found = {e for e, summary in findings.scan.by_entity.items() if summary.findings}
    assert {"EMAIL_ADDRESS", "CREDIT_CARD", "PHONE_NUMBER"} <= found
    # Everything the report wrote, and everything the training run holds in MLflow
    client = registry.client()
    mirror = tmp_path / "run"
    client.download_artifacts(report.facts.training["run_id"], "", str(mirror))
    version = client.get_model_version(built["pending"].name, built["pending"].version)
    texts = {
        str(p): p.read_text(encoding="utf-8", errors="replace") for p in report.files.out_dir.rglob("*") if p.is_file()
    }
    texts.update(
        {
            str(p): p.read_text(encoding="utf-8", errors="replace")
            for p in mirror.rglob("*")
            if p.suffix in (".json", ".md", ".html", ".svg", ".txt", ".yaml")
        }
    )
    texts["version tags"] = json.dumps(version.tags) + version.description
    assert any(path.endswith("report.html") for path in texts) and any("gates/pii_scan_sft" in p for p in texts)
    for where, text in texts.items():
        for value in PLANTED:
            assert value not in text, f"raw PII {value[:4]}… in {where}"
            assert _digits(value) not in _digits(text) or len(_digits(value)) < 8, f"PII digits in {where}"
    # And the project's own scanner finds none of the planted entity types in the rendered report
    # (the EU AI Act's number, Regulation (EU) 2024/1689, reads as a phone number to it)
    scanner = PiiScanner(load_pii_policy(POLICIES / "pii.yaml"), POLICIES / "pii.yaml")
    for path in (report.files.markdown, report.files.model_card):
        text = _text(path).replace("(EU) 2024/1689", "(EU)")
        hits = {(f.entity, f.start) for f in scanner.findings_in(text)}
        assert not {e for e, _ in hits} & {"EMAIL_ADDRESS", "CREDIT_CARD", "PHONE_NUMBER"}, (path.name, hits)


def test_report_is_logged_to_the_training_run(lab):
    report, _ = _report(lab, "pending")
    log_report(report)
    client = registry.client()
    run_id = report.facts.training["run_id"]
    logged = {f.path for f in client.list_artifacts(run_id, "report")}
    assert {"report/report.html", "report/report.md", "report/README.md", "report/facts.json"} <= logged
    # The signed model folder stays exactly what was signed at registration
    assert "model/README.md" not in {f.path for f in client.list_artifacts(run_id, "model")}


def test_cli_writes_the_report_and_exit_code_follows_the_flag(lab, capsys):
    root, built, _ = lab
    version = built["pending"]
    out = root / "cli-out"
    assert govern(["report", version.name, version.version, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "May not be promoted: 1 piece(s) of required evidence missing." in printed
    assert "missing  approvals.quorum: 0 of 2 distinct approval(s)" in printed
    folder = out / version.name / f"v{version.version}"
    assert f"wrote {folder / 'report.html'}, {folder / 'report.md'}, {folder / 'README.md'} (" in printed
    assert {p.name for p in folder.iterdir()} >= {"report.html", "report.md", "README.md", "facts.json", "figures"}
    assert govern(["report", version.name, version.version, "--out", str(out), "--require-promotable"]) == 1
    approved = built["approved"]
    assert govern(["report", approved.name, approved.version, "--out", str(out), "--require-promotable"]) == 0
    # Two versions' reports into one --out: both survive, each in its NAME/vVERSION folder
    for built_version in (version, approved):
        facts = json.loads((out / built_version.name / f"v{built_version.version}" / "facts.json").read_text())
        assert (facts["facts"]["name"], facts["facts"]["version"]) == (built_version.name, built_version.version)
    assert not (out / "report.html").exists()


def test_cli_unknown_version_is_one_line_exit_2(lab, capsys):
    assert govern(["report", "pending-sft", "99", "--out", str(lab[0] / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("govern: pending-sft v99 is not registered at sqlite:///")
    assert "Traceback" not in err


def _stage_checkout(lab, lock_md5: dict[str, str] | None = None) -> Path:
    """The 'pending' scenario's folder as a checkout: params.yaml, registration.json, dvc.lock."""
    root, built, mp = lab
    workdir = root / "pending"
    version = built["pending"]
    params = {
        "project": "pending",
        "register_sft": {"out_dir": "artifacts/register_sft"},
        "report": {
            "methods": ["sft"],
            "out_dir": "reports",
            "policy": str(POLICIES / "report.yaml"),
            "approvals_policy": str(POLICIES / "approvals.yaml"),
            "log_to_mlflow": True,
        },
    }
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    (workdir / "artifacts/register_sft").mkdir(parents=True, exist_ok=True)
    (workdir / "artifacts/register_sft/registration.json").write_text(
        json.dumps({"name": version.name, "version": version.version, "created": True})
    )
    lineage_md5 = {"artifacts/pii_scan_sft/data/train.jsonl": None, "artifacts/pii_scan_sft/data/eval.jsonl": None}
    from governance.lineage import md5_file

    deps = [{"path": path, "md5": (lock_md5 or {}).get(path) or md5_file(workdir / path)} for path in lineage_md5]
    (workdir / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {"train_sft": {"deps": deps}}}))
    mp.chdir(workdir)
    return workdir


def test_report_stage_writes_per_version_and_cross_checks_dvc_lock(lab):
    from pipelines import report as stage

    root, built, mp = lab
    workdir = _stage_checkout(lab)
    try:
        assert stage.main([]) == 0
    finally:
        mp.chdir(root)
    folder = workdir / "reports" / "pending-sft" / "v1"
    for name in ("report.html", "report.md", "README.md", "facts.json"):
        assert (folder / name).is_file(), name
    facts = json.loads((folder / "facts.json").read_text())["facts"]
    assert [row["match"] for row in facts["integrity"]["checkout"]] == [True, True]
    assert "Cross-check with the checkout" in _text(folder / "report.html")
    run_id = built["pending"].run_id
    assert "report/README.md" in {f.path for f in registry.client().list_artifacts(run_id, "report")}
    assert "model/README.md" not in {f.path for f in registry.client().list_artifacts(run_id, "model")}
    # The DVC output is the index: the verdict and check statuses, no run id or time, the same bytes again
    index = (workdir / "reports" / "index.json").read_bytes()
    entry = json.loads(index)["reports"][0]
    assert (entry["method"], entry["name"], entry["version"]) == ("sft", "pending-sft", "1")
    assert entry["folder"] == "reports/pending-sft/v1" and entry["checks"] and not entry["promotable"]
    assert run_id not in index.decode() and not re.search(rb"20\d\d-\d\d-\d\d", index)
    mp.chdir(workdir)
    try:
        assert stage.main([]) == 0
    finally:
        mp.chdir(root)
    assert (workdir / "reports" / "index.json").read_bytes() == index


def test_report_stage_shows_a_dvc_lock_that_moved_on(lab):
    from pipelines import report as stage

    root, _, mp = lab
    workdir = _stage_checkout(lab, {"artifacts/pii_scan_sft/data/train.jsonl": "0" * 32})
    try:
        assert stage.main([]) == 0
    finally:
        mp.chdir(root)
    facts = json.loads((workdir / "reports/pending-sft/v1/facts.json").read_text())["facts"]
    rows = {row["path"]: row for row in facts["integrity"]["checkout"]}
    assert rows["artifacts/pii_scan_sft/data/train.jsonl"]["match"] is False
    assert rows["artifacts/pii_scan_sft/data/train.jsonl"]["dvc_lock_md5"] == "0" * 32
    assert "differs" in _visible(_text(workdir / "reports/pending-sft/v1/report.html"))


def test_report_stage_without_registration_is_one_line_exit_2(lab, capsys):
    from pipelines import report as stage

    root, _, mp = lab
    workdir = _stage_checkout(lab)
    (workdir / "artifacts/register_sft/registration.json").unlink()
    try:
        assert stage.main([]) == 2
    finally:
        mp.chdir(root)
    assert capsys.readouterr().err.strip() == (
        "report: ConfigError: artifacts/register_sft/registration.json: registration missing; "
        "run the register stage first (dvc repro)"
    )


# --------------------------------------------------------------------------- static data and helpers


def test_shipped_report_policy_and_compliance_map_validate():
    policy = load_report_policy(POLICIES / "report.yaml")
    assert policy.evidence.required_gates == ["pii", "validation"]
    assert [item.id for item in policy.limitations_for("grpo", "Qwen/Qwen2-0.5B")] == [
        "lim.human_review",
        "lim.eval_scope",
        "lim.reward_scope",  # lim.pii_recall is derived from each PII decision's recorded scanner now
    ]
    rows = load_compliance_map().rows()
    sections = {row["section"] for row in rows}
    assert sections == {
        "verdict",
        "identity",
        "training",
        "data",
        "objectives",
        "evaluation",
        "approvals",
        "integrity",
        "operations",
    }
    assert {row["framework"] for row in rows} == {
        "EU AI Act (Regulation (EU) 2024/1689)",
        "NIST AI RMF 1.0",
        "ISO/IEC 42001:2023 Annex A",
    }


def test_report_policy_without_required_gates_fails_loudly(tmp_path):
    from governance.errors import ConfigError
    from governance.policy import load_policy_file

    data = yaml.safe_load((POLICIES / "report.yaml").read_text())
    del data["evidence"]["required_gates"]
    bad = tmp_path / "report.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as err:
        load_policy_file(bad, ReportPolicy)
    assert str(err.value) == f"{bad}: evidence.required_gates: required key is missing"


def test_compliance_map_rejects_an_unknown_framework(tmp_path):
    from governance.errors import ConfigError
    from governance.policy import load_policy_file

    bad = tmp_path / "map.yaml"
    bad.write_text(
        "version: '1'\nframeworks: {eu_ai_act: EU AI Act}\n"
        "sections:\n  data:\n    - {framework: gdpr, ref: Art. 5, field: x}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_policy_file(bad, ComplianceMap)
    assert "sections.data: Art. 5: unknown framework 'gdpr'" in str(err.value)


@pytest.mark.parametrize(
    ("threshold", "bounds"),
    [
        ("≤1", (None, 1.0)),
        ("≥0.5 and ≤2", (0.5, 2.0)),
        ("≥1e-3", (0.001, None)),
        ("≤5.0% worse than production 1.234", (None, None)),
        ("no production version", (None, None)),
        (None, (None, None)),
    ],
)
def test_threshold_text_parses_to_chart_bounds(threshold, bounds):
    assert parse_bounds(threshold) == bounds


def test_without_the_approvals_policy_the_report_still_renders_who_trained_and_registered(lab, tmp_path):
    """The people frozen at registration come from the trail, not the policy: a missing policy is a gap, not a crash."""
    report, _ = _report(lab, "pending", approvals_policy=tmp_path / "absent" / "approvals.yaml")
    assert any("not available" in gap for gap in report.facts.gaps["approvals"])
    people = report.facts.approvals["people"]
    assert people and set(people) == {"lineage.trained_by", "lineage.registered_by"}
    html = _visible(_text(report.files.html))
    assert f"Trained by {people['lineage.trained_by']}" in html


def test_attack_a_risk_tier_or_registrant_tag_changed_after_registration_is_not_stated(lab):
    """Anyone with MLflow access edits a version's tags: the identity section (and the verdict's summary and the
    model documentation) stated ``lineage.risk_tier`` 'low' from the tag while the approvals were decided under the
    tier the trail froze. The trail's tier, registrant and declared intended use are stated, each changed tag a gap."""
    from mlflow import MlflowClient

    _, built, _ = lab
    version = built["pending"]
    client = MlflowClient()
    tags = client.get_model_version(version.name, version.version).tags
    try:
        client.set_model_version_tag(version.name, version.version, "lineage.risk_tier", "low")
        client.set_model_version_tag(version.name, version.version, "lineage.registered_by", "mallory")
        client.set_model_version_tag(version.name, version.version, "lineage.intended_use", "clinical triage advice")
        client.set_model_version_tag(version.name, version.version, "lineage.parent_model", "a reviewed model v9")
        report, _ = _report(lab, "pending")
        # MLflow's lineage tags mirror what the registration froze: each edit is drift, which reconcile restores
        drift = {d.item: (d.registry, d.trail) for d in find_drift(version.name) if d.version == str(version.version)}
    finally:
        for tag in ("lineage.risk_tier", "lineage.registered_by", "lineage.intended_use", "lineage.parent_model"):
            client.set_model_version_tag(version.name, version.version, tag, tags[tag])
    identity = report.facts.identity
    assert identity["risk_tier"] == tags["lineage.risk_tier"] == report.facts.approvals["risk_tier"] != "low"
    assert identity["risk_tier_source"] == "frozen in the audit trail at registration"
    assert identity["registered_by"] == tags["lineage.registered_by"] != "mallory"
    gaps = report.facts.gaps["identity"]
    assert (
        f"risk tier: the version tag lineage.risk_tier says 'low' but the audit trail's model_registered event froze "
        f"{tags['lineage.risk_tier']!r}: the tag was changed after registration; the trail's tier is stated"
    ) in gaps
    assert any(g.startswith("lineage.registered_by: the version tag says 'mallory'") for g in gaps)
    assert identity["intended_use"] == tags["lineage.intended_use"]
    assert (
        "lineage.intended_use: the version tag differs from what the audit trail's model_registered event froze: "
        "the tag was changed after registration; the trail's is stated" in gaps
    )
    assert identity["parent_model"] == tags["lineage.parent_model"] != "a reviewed model v9"
    assert any(g.startswith("lineage.parent_model: the version tag says 'a reviewed model v9'") for g in gaps)
    assert drift == {
        "tag lineage.parent_model": ("a reviewed model v9", tags["lineage.parent_model"]),
        "tag lineage.risk_tier": ("low", tags["lineage.risk_tier"]),
        "tag lineage.registered_by": ("mallory", tags["lineage.registered_by"]),
        "tag lineage.intended_use": ("clinical triage advice", tags["lineage.intended_use"]),
    }
    html = _visible(_text(report.files.html))
    assert "risk tier low" not in html.lower() and "mallory" in html  # named only in the gap and the drift
    # the edited use is named only in the drift table, as what the registry says beside what the trail froze
    assert html.count("clinical triage") == 1
    assert {"item": "tag lineage.intended_use", "version": version.version, "registry": "clinical triage advice",
            "trail": tags["lineage.intended_use"]} in report.facts.approvals["registry"]["drift"]  # fmt: skip


def _stored_model(version) -> Path:
    from urllib.parse import unquote, urlparse

    return Path(unquote(urlparse(registry.client().get_run(version.run_id).info.artifact_uri).path)) / "model"


def test_the_signature_statement_and_reproduction_are_checked_and_shown(lab, capsys):
    import html as html_lib
    import subprocess

    from markupsafe import escape

    from governance.lineage import sha256_dir
    from governance.provenance.reproduce import Reproduction, _record
    from governance.provenance.signing import file_digests
    from governance.report.provenance import RECOMPUTE_COMMAND

    root, built, _ = lab
    version = built["signed"]
    stored = _stored_model(version)
    report, _ = _report(lab, "signed")
    pv = report.facts.integrity["provenance"]
    check, statement = pv["check"], pv["statement"]
    # The check ran now, over every registered file, under the trail's key
    assert (check["result"], check["reason"]) == ("verified", None)
    assert {f["path"]: f["sha256"] for f in check["files"]} == file_digests(stored)
    assert check["signing_key"] == pv["recorded"]["signing_key"] and len(check["signing_key"]) == 64
    assert check["public_key"].startswith("local key ") and "not pinned" in check["public_key"]
    # The statement's subjects fold to the registered weights' hash, which the documented command recomputes
    assert statement["equal"] is True
    assert statement["subject_sha256"] == statement["registered_model_sha256"] == sha256_dir(stored)
    recomputed = subprocess.run(
        ["bash", "-c", RECOMPUTE_COMMAND.replace("MODEL_DIR", str(stored))], capture_output=True, text=True, check=True
    )
    assert recomputed.stdout.strip() == statement["registered_model_sha256"]
    assert RECOMPUTE_COMMAND in (REPO / "docs" / "explanation" / "provenance.md").read_text()
    assert pv["fetch"]["files"] == "mlflow artifacts download -u models:/signed-sft/1 -d signed-sft-v1/model"
    signature = _check(report, "integrity.signature")
    assert signature.status == "pass" and signature.detail.startswith(f"{len(check['files'])} file(s) verified now")
    assert pv["reproduction"]["line"] == "never reproduced"
    html, md = _text(report.files.html), _text(report.files.markdown)
    for text in (html, md):
        assert check["signing_key"] in text and statement["registered_model_sha256"] in text
        assert all(f["sha256"] in text for f in check["files"]) and "never reproduced" in text
    assert "signature verified" in html and "statement subject = registered weights" in html
    assert str(escape(pv["fetch"]["authenticity"])) in html
    assert "**verified**" in md and pv["fetch"]["authenticity"] in md
    assert "| Subject digest equals the registered weights' hash | yes |" in md
    # A recorded reproduction (through its one trail writer) replaces "never reproduced"
    differs = "weights: model.safetensors sha256 0123456789ab… (registered 89abcdef0123…)"
    _record(Reproduction(version.name, version.version, "c0ffee" * 6 + "abcd", "train_sft", 1, [differs]), 0.0)
    report, _ = _report(lab, "signed")
    line = report.facts.integrity["provenance"]["reproduction"]["line"]
    assert line.startswith("differs, ") and line.endswith(f": {differs}")
    assert html_lib.escape(line, quote=False) in _text(report.files.html) and line in _text(report.files.markdown)
    # govern show: the recorded signature, statement and authenticity hash, and the last reproduction
    capsys.readouterr()
    assert govern(["show", version.name, version.version]) == 0
    shown = capsys.readouterr().out
    assert f"  weights:      sha256 {statement['registered_model_sha256']} (audit trail, at registration)\n" in shown
    assert f"  signed:       key {pv['recorded']['signing_key'][:16]}, signature " in shown
    assert f"(recorded; check now: govern verify {version.name} {version.version})\n" in shown
    assert "  reproduced:   differs, " in shown and f": {differs}\n" in shown
    # Tampered weights: the report says the check failed and names the file, never "verified"
    weights = stored / "model.safetensors"
    original = weights.read_bytes()
    try:
        weights.write_bytes(b"X" + original[1:])
        report, _ = _report(lab, "signed")
    finally:
        weights.write_bytes(original)
    check = report.facts.integrity["provenance"]["check"]
    assert check["result"] == "failed" and "model/model.safetensors: sha256" in check["reason"]
    assert "signature failed" in _text(report.files.html) and "signature verified" not in _text(report.files.html)
    # ... and the verdict: tampered served files make the version not promotable
    signature = _check(report, "integrity.signature")
    assert (signature.status, signature.detail) == ("fail", check["reason"]) and not report.verdict.promotable


def test_an_unsigned_version_says_the_signature_check_did_not_run(lab):
    report, _ = _report(lab, "pending")
    pv = report.facts.integrity["provenance"]
    assert pv["signed"] is False and pv["check"]["result"] == "not run"
    assert pv["check"]["reason"] == "registered without a signature (no signature_sha256 in its model_registered event)"
    assert pv["statement"]["equal"] is None and pv["reproduction"]["line"] == "never reproduced"
    html = _text(report.files.html)
    assert "signature not run" in html and "signature verified" not in html
    assert "**not run** — registered without a signature" in _text(report.files.markdown)
    signature = _check(report, "integrity.signature")
    assert (signature.status, signature.detail) == (
        "not_applicable",
        "registered without a signature (no signature_sha256 in its model_registered event); approve and promote "
        "refuse it once any version of the trail was signed",
    )


def test_an_uncommitted_report_policy_changes_nothing_the_report_states(tmp_path, monkeypatch):
    """B-R: the reviewed policy declares a high-risk use; an uncommitted edit empties it (and renames the provider).

    Before, the report stated the working copy: the high-risk provisions (Art. 10, 12, 18, 19, Annex IV) left the
    compliance table and the legal basis said none was declared. The report now states the reviewed version and
    names the uncommitted change as a gap; outside a git checkout it states the file with a "not reviewed" gap.
    """
    from e2e_support import commit_reviewed
    from report_support import use_own_stores

    monkeypatch.chdir(tmp_path)
    use_own_stores(monkeypatch, tmp_path)
    monkeypatch.setenv("GOVERN_POLICY_DIR", str(tmp_path / "policies"))
    built = build_version(Path("."), project="stated")
    policy = tmp_path / "policies/report.yaml"
    use = "Annex III 5(b): creditworthiness assessment"
    reviewed = yaml.safe_load(policy.read_text())
    reviewed["high_risk_uses"] = [use]
    reviewed["provider"]["organisation"] = "Reviewed Bank plc"
    policy.write_text(yaml.safe_dump(reviewed, sort_keys=False))
    commit = commit_reviewed(tmp_path)
    edited = {**reviewed, "high_risk_uses": [], "provider": {**reviewed["provider"], "organisation": "Edited Org"}}
    policy.write_text(yaml.safe_dump(edited, sort_keys=False))

    report = build_report(built.name, built.version, tmp_path / "out")
    stated = report.facts.operations["policy"]
    assert stated["review"] == "uncommitted change"
    assert stated["sha256"] != stated["working_copy_sha256"] == sha256_file(policy)
    assert report.facts.operations["provider"]["organisation"] == "Reviewed Bank plc"
    assert use in report.facts.legal_basis
    assert "Annex IV 2(d)" in [row["ref"] for row in report.facts.compliance]
    assert (
        f"{policy}: the working copy has an uncommitted change (sha256 {sha256_file(policy)[:16]}); stated here is "
        f"the reviewed version at HEAD ({commit[:12]}), not the change"
    ) in report.facts.gaps["operations"]
    html = _visible(_text(report.files.html))
    assert "Edited Org" not in html and "Reviewed Bank plc" in html
    assert "stated is the reviewed version, not the working copy" in html

    # No reviewed version to fall back on: the working copy is stated, and the report says it was not reviewed
    import shutil

    shutil.rmtree(tmp_path / ".git")
    report = build_report(built.name, built.version, tmp_path / "out2")
    assert report.facts.operations["policy"]["review"] == "not a git checkout"
    assert report.facts.operations["provider"]["organisation"] == "Edited Org"
    assert (
        f"{policy}: not reviewed (not a git checkout); what is stated from it was not reviewed"
        in (report.facts.gaps["operations"])
    )


def test_a_rules_rationale_is_stated_only_from_the_policy_bytes_that_decided(lab, tmp_path):
    """R3: the report's one-line rationale of each rule comes from policies/eval.yaml; an edit that keeps the version
    number but rewrites a rationale ("...may be skipped") is not the policy the decision was judged under, so the
    report states no rationale rather than the edited one."""
    _, _, mp = lab
    shipped = yaml.safe_load((POLICIES / "eval.yaml").read_text())
    rationale = shipped["methods"]["sft"][0]["rationale"]
    report, _ = _report(lab, "pending")
    [row] = [r for r in report.facts.evaluation["results"] if r["rule_id"] == "eval.sft.perplexity_vs_base"]
    assert row["rationale"] == rationale
    edited = tmp_path / "policies"
    shutil.copytree(POLICIES, edited)
    shipped["methods"]["sft"][0]["rationale"] = "A formality; this rule may be skipped."
    (edited / "eval.yaml").write_text(yaml.safe_dump(shipped, sort_keys=False))  # version unchanged
    with mp.context() as inner:
        inner.setenv("GOVERN_POLICY_DIR", str(edited))
        report, _ = _report(lab, "pending")
    [row] = [r for r in report.facts.evaluation["results"] if r["rule_id"] == "eval.sft.perplexity_vs_base"]
    assert row["rationale"] is None


def test_an_approvals_policy_other_than_the_pinned_one_states_no_approvals_status(lab, tmp_path):
    """R4: the medium tier lowered to one approval in a copy of policies/approvals.yaml (an uncommitted edit reads
    the same) and the report rendered under it. Every action refuses under that file (approval.policy_pinned), so the
    report no longer computes the quorum from it (before: "risk tier medium needs 1"); it says why instead."""
    edited = tmp_path / "approvals.yaml"
    edited.write_text((POLICIES / "approvals.yaml").read_text().replace("      medium: 2  ", "      medium: 1  ", 1))
    assert edited.read_text() != (POLICIES / "approvals.yaml").read_text()
    report, _ = _report(lab, "pending", approvals_policy=edited)
    check = _check(report, "approvals.quorum")
    pinned = report.facts.approvals["policy_pin"]["pinned_sha256"]
    assert check.status == "missing" and check.detail == (
        f"the approvals policy read (sha256 {sha256_file(edited)[:12]}) is not the one this version is held to "
        f"(sha256 {pinned[:12]}): every action refuses under it, and the approvals needed are not stated from it; "
        "restore the pinned policy"
    )
    assert report.facts.approvals.get("required") is None and report.facts.approvals.get("status") is None
    assert any("is not the approvals policy" in gap for gap in report.facts.gaps["approvals"])


def test_attack_a_decision_swapped_between_its_parse_and_its_hash_is_stated_from_neither(lab, monkeypatch):
    """V1: the report parsed a run's evaluation/decision.json with one read and hashed it with another, then vouched
    for what it parsed by the signed event matching the hash. A forged "passed" shown to the parse only (the
    denied decision back for the hash) read as a passed evaluation with its integrity intact. The report now
    parses and hashes the same bytes, read once: the forged bytes match neither the version's record nor a signed
    event."""
    real_bytes = Path.read_bytes
    forged: dict[str, int] = {}

    def first_read_forged(path: Path, data: bytes) -> bytes:
        if not str(path).endswith("evaluation/decision.json") or forged.get(str(path)):
            return data
        forged[str(path)] = 1
        decision = json.loads(data)
        return json.dumps({**decision, "passed": True}).encode()

    monkeypatch.setattr(Path, "read_bytes", lambda self: first_read_forged(self, real_bytes(self)))
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: first_read_forged(self, real_bytes(self)).decode())
    report, _ = _report(lab, "eval_failed")
    assert forged  # the swap was seen by the report's first read
    check = _check(report, "eval.integrity")  # before: "pass", with the forged verdict stated
    assert (check.status, check.detail) == (
        "fail",
        "evaluation/decision.json SHA-256 differs from version tag lineage.eval_decision_sha256",
    )
    assert not report.verdict.promotable
