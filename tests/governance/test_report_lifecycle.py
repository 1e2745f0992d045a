"""Issue 28: the report of a version that went through its whole life shows every fact of it, from the records.

Two signed versions of one model (built by report_support as register_sft builds them: real gates, MLflow
store, trail, model-signing signature and DSSE statement). v1 is promoted; v2 is approved, canaried,
promoted, monitored on a window of its traffic, has a high incident opened and closed, and is rolled back
from. The report of v2 is then checked against the recorded facts: alias history, monitoring per window
(each rule's observed value, threshold and verdict), the closed incident, the signature checked now, the
statement's subject digest against the registered weights, "never reproduced", the release date, the
trail-head anchor, and the GPAI form against its schema.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from report_support import REPO, build_version

from governance import approvals, incidents, registry, trail
from governance.cli import main
from governance.identity import Identity
from governance.report import build_report
from governance.report.documentation_schema import validate_documentation
from governance.report.render import fmt

ALICE, BOB, DANA = (Identity(user, "local") for user in ("alice", "bob", "dana"))


@pytest.fixture(scope="module")
def life(tmp_path_factory):
    root = tmp_path_factory.mktemp("lifecycle")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("GOVERN_AUDIT_URL", f"sqlite:///{root / 'audit.db'}")
        mp.setenv("GOVERN_POLICY_DIR", str(REPO / "policies"))
        mp.setenv("GOVERN_USER", "dana")
        built = []
        for key in ("k1", "k2"):
            (root / key).mkdir()
            mp.chdir(root / key)
            built.append(build_version(Path("."), project="life", lineage_key=key, signed=True))
        mp.chdir(root)
        v1, v2 = built
        name = v1.name
        for version in (v1, v2):
            approvals.approve(name, version.version, reason="lineage and evaluation reviewed", identity=ALICE)
            approvals.approve(name, version.version, reason="safety reviewed", identity=BOB)
        approvals.promote(name, v1.version, reason="first release", identity=DANA)
        approvals.canary(name, v2.version, reason="5% of traffic", identity=DANA)
        approvals.promote(name, v2.version, reason="canary healthy", identity=DANA)
        # A window of v2's traffic (the synthetic rehearsal generator), judged and recorded
        subprocess.run(
            [sys.executable, str(REPO / "scripts/make_traffic_sample.py"), "--model", name, "--version", v2.version,
             "--out", str(root / "traffic")],  # fmt: skip
            check=True,
            capture_output=True,
        )
        code = main(
            ["monitor", name, v2.version, "--traffic", str(root / "traffic/window.jsonl"),
             "--baseline", str(root / "traffic/baseline.jsonl")]  # fmt: skip
        )
        assert code in (0, 1)
        opened = incidents.open_incident(name, v2.version, severity="high", reason="complaints about tone")
        incidents.close_incident(opened.id, reason="tone fixed in the system prompt", identity=DANA)
        approvals.rollback(name, to=v1.version, reason="back to the release before the tone change", identity=DANA)
        report = build_report(name, v2.version, root / "out")
        yield {"root": root, "name": name, "v1": v1, "v2": v2, "incident": opened.id, "report": report}


def test_alias_history_shows_canary_promotion_and_rollback(life):
    report, name, v2 = life["report"], life["name"], life["v2"]
    history = [(a["alias"], a["event"], a["actor"]) for a in report.facts.approvals["alias_history"]]
    assert ("canary", "set", "dana") in history and ("production", "set", "dana") in history
    assert any(alias == "production" and event != "set" for alias, event, _ in history)  # moved away by the rollback
    assert str(registry.version_by_alias(name, "production").version) == life["v1"].version
    promoted = trail.events(model=name, version=v2.version, event_types=["promoted"])
    doc = json.loads(report.files.documentation.read_text())
    release = json.dumps(doc["general_information"]["release_date"])
    assert promoted[0].timestamp[:10] in release and f"#{promoted[0].seq}" in release  # the first promotion


def test_monitoring_per_window_and_the_closed_incident_are_shown(life):
    report = life["report"]
    (window,) = report.facts.monitoring["checks"]
    (event,) = trail.events(model=life["name"], version=life["v2"].version, event_types=["monitoring_checked"])
    assert window["verdict"] == event.details["verdict"]
    recorded = {r["rule_id"]: r for r in event.details["rules"]}
    markdown = report.files.markdown.read_text(encoding="utf-8")
    html = report.files.html.read_text(encoding="utf-8")
    for rule_id, rule in recorded.items():
        assert f"<code>{rule_id}</code>" in html and rule_id in markdown
        # each rule's observed value as the report formats it, and its verdict, on the window's row
        row = html[html.index(f"<code>{rule_id}</code>") :].split("</tr>", 1)[0]
        assert fmt(rule["observed"]) in row and rule["status"].replace("_", " ") in row
    (incident,) = report.facts.monitoring["incidents"]
    assert incident["id"] == life["incident"] and incident["open"] is False
    assert life["incident"] in html and "tone fixed in the system prompt" in html
    assert report.facts.monitoring["blocking_incidents"] == []


def test_signature_statement_reproduction_and_anchor_are_the_recorded_ones(life):
    report, name = life["report"], life["name"]
    pv = report.facts.integrity["provenance"]
    assert pv["check"]["result"] == "verified" and pv["statement"]["equal"] is True
    (registered,) = trail.events(model=name, version=life["v2"].version, event_types=["model_registered"])
    assert pv["statement"]["registered_model_sha256"] == registered.evidence["model_sha256"]
    assert pv["reproduction"]["line"] == "never reproduced"
    checks = {c.id: c.status for c in report.verdict.checks}
    assert checks["integrity.signature"] == "pass" and checks["integrity.chain"] == "pass"
    # every event kind moved the model's anchor: it names the trail's head
    anchor = registry.client().get_registered_model(name).tags["governance.trail_head"]
    head = trail.head()
    assert anchor.split()[:2] == [str(head.seq), head.hash] and head.event_type == "rolled_back"


def test_the_gpai_form_of_a_released_version_validates(life):
    doc = json.loads(life["report"].files.documentation.read_text())
    validate_documentation(doc)
