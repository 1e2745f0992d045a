"""Issues 28 and 40: the report of a version that went through its whole life tells the truth about it.

Two signed versions of one model (built by report_support as register_sft builds them: real gates, MLflow
store, trail, model-signing signature and DSSE statement). v1 is promoted; v2 is approved, canaried and
promoted, then monitored three times: the shipped rehearsal sample (recorded as a rehearsal), a window an
earlier govern recorded although it was dated before v2 was registered (refused as evidence by the report),
and a window of its production traffic whose answers grew three times longer (denied by length drift).
A high incident is opened without evidence and closed by the release manager who promoted v2. The report
of v2 *while it serves production* must lead with that fact, the denied window and the rollback command,
before any warning; the report after the rollback is checked against the recorded facts: alias history,
monitoring per window (each rule's statistic, bound, p-value and verdict, in HTML and Markdown alike), the
closed incident and what a reviewer says about it, the signature checked now, the statement's subject digest
against the registered weights, "never reproduced", the release date, the trail-head anchor, and the GPAI
form against its schema.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import commit_reviewed
from report_support import REPO, build_version, use_own_stores

from governance import approvals, incidents, registry, trail
from governance.cli import main
from governance.errors import DataError
from governance.identity import Identity
from governance.monitoring import check_window
from governance.report import build_report
from governance.report.documentation_schema import validate_documentation
from governance.report.render import fmt

ALICE, BOB, DANA = (Identity(user, "local") for user in ("alice", "bob", "dana"))


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _old_style_window(name: str, version: str, first: str, last: str) -> None:
    """A ``monitoring_checked`` event as govern recorded it before windows were judged for what they prove.

    Written through :func:`governance.trail.record` (the trail's only writer), with the details of that time:
    no ``evidence`` standing, rules without bound or p-value; its traffic is dated before the registration.
    """
    trail.record(
        "monitoring_checked",
        actor="dana",
        role="release_manager",
        subject=trail.Subject(model=name, version=version),
        reason="monitoring window traffic/window.jsonl: passed",
        evidence={"traffic_sha256": "ab" * 32, "mlflow_run": "0" * 32},
        details={
            "verdict": "passed",
            "window": {"source": "traffic/window.jsonl", "requests": 200, "first": first, "last": last},
            "baseline": {"label": "traffic window traffic/baseline.jsonl", "requests": 150},
            "policy_version": "2026.11-1",
            "rules": [
                {
                    "rule_id": "monitor.embedding_drift",
                    "severity": "deny",
                    "status": "pass",
                    "observed": 0.48,
                    "threshold": "KS D ≤ 0.3 or p ≥ 0.01",
                },  # fmt: skip
            ],
            "blocking": [],
            "recommendation": "",
        },
    )


@pytest.fixture(scope="module")
def life(tmp_path_factory):
    root = tmp_path_factory.mktemp("lifecycle")
    with pytest.MonkeyPatch.context() as mp:
        use_own_stores(mp, root)
        # The shipped rehearsal sample addressed to v2 (its own stores: the second version registered is 2). Its
        # baseline's answers are v2's evaluation generations, which its signed evaluation binds: the baseline a
        # production check compares with (M7: never a file the person running the monitor names)
        sample = [sys.executable, str(REPO / "scripts/make_traffic_sample.py"), "--model", "life-sft"]
        subprocess.run([*sample, "--version", "2", "--out", str(root / "traffic")], check=True, capture_output=True)
        evaluated = [
            {"prompt": r["prompt"], "completion": r["response"]} for r in _rows(root / "traffic/baseline.jsonl")
        ]
        built = []
        for key, generations in (("k1", None), ("k2", evaluated)):
            (root / key).mkdir()
            mp.chdir(root / key)
            built.append(
                build_version(Path("."), project="life", lineage_key=key, signed=True, generations=generations)
            )
        assert [b.version for b in built] == ["1", "2"]
        mp.chdir(root)
        # The monitor decides under the reviewed monitoring policy: root is a checkout with the shipped policies
        shutil.copytree(REPO / "policies", root / "policies")
        commit_reviewed(root)
        policy = ["--policy", "policies/monitoring.yaml"]
        v1, v2 = built
        name = v1.name
        for version in (v1, v2):
            approvals.approve(name, version.version, reason="lineage and evaluation reviewed", identity=ALICE)
            approvals.approve(name, version.version, reason="safety reviewed", identity=BOB)
        approvals.promote(name, v1.version, reason="first release", identity=DANA)
        approvals.canary(name, v2.version, reason="5% of traffic", identity=DANA)
        approvals.promote(name, v2.version, reason="canary healthy", identity=DANA)
        # The sample (marked "rehearsal": true) against its baseline: judged, recorded as a rehearsal
        baseline = root / "traffic/baseline.jsonl"
        code = main(["monitor", name, v2.version, "--traffic", str(root / "traffic/window.jsonl"),
                     "--baseline", str(baseline), *policy])  # fmt: skip
        assert code in (0, 1)
        # The same sample without its marking, dated days before v2 was registered: refused, nothing recorded
        sample = _rows(root / "traffic/window.jsonl")
        unmarked = _write(root / "unmarked.jsonl", [{k: v for k, v in r.items() if k != "rehearsal"} for r in sample])
        before = len(trail.events(model=name))
        with pytest.raises(DataError) as refused:
            check_window(name, v2.version, unmarked, baseline=baseline, policy_path="policies/monitoring.yaml")
        assert len(trail.events(model=name)) == before
        # What an earlier govern did record of such a window
        _old_style_window(name, v2.version, sample[0]["timestamp"], sample[-1]["timestamp"])
        # v2's production traffic, after its registration: the same questions, answers three times longer
        (registered,) = trail.events(model=name, version=v2.version, event_types=["model_registered"])
        start = dt.datetime.fromisoformat(registered.timestamp) + dt.timedelta(milliseconds=1)
        # Two seconds of serving after the registration, all before the check: on a fast machine the fixture gets
        # here under a second after v2 was registered, and a window ending a second before "now" began before it
        time.sleep(max(0.0, (start + dt.timedelta(seconds=2) - dt.datetime.now(dt.UTC)).total_seconds()))
        step = (dt.datetime.now(dt.UTC) - dt.timedelta(milliseconds=200) - start) / len(sample)
        production = [
            {**{k: v for k, v in r.items() if k != "rehearsal"}, "response": " ".join([r["response"]] * 3),
             "timestamp": (start + step * i).isoformat().replace("+00:00", "Z")}
            for i, r in enumerate(sample)
        ]  # fmt: skip
        traffic = _write(root / "production.jsonl", production)
        said = io.StringIO()
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            denied_code = main(["monitor", name, v2.version, "--traffic", str(traffic), *policy])
        # The production window is recorded (denied: exit 1); anything else is the fixture's failure, said whole
        assert denied_code == 1, f"govern monitor of the production window exited {denied_code}:\n{said.getvalue()}"
        # A high incident opened without evidence, closed at once by the release manager who promoted v2
        opened = incidents.open_incident(
            name, v2.version, severity="high", reason="complaints about tone", identity=BOB
        )
        incidents.close_incident(opened.id, reason="tone fixed in the system prompt", identity=DANA)
        serving = build_report(name, v2.version, root / "serving")
        approvals.rollback(name, to=v1.version, reason="back to the release before the tone change", identity=DANA)
        report = build_report(name, v2.version, root / "out")
        yield {
            "root": root,
            "name": name,
            "v1": v1,
            "v2": v2,
            "incident": opened.id,
            "report": report,
            "serving": serving,
            "denied_code": denied_code,
            "refusal": str(refused.value),
            "unmarked": unmarked,
        }


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
    rehearsal, old, production = report.facts.monitoring["checks"]
    events = trail.events(model=life["name"], version=life["v2"].version, event_types=["monitoring_checked"])
    assert [w["verdict"] for w in (rehearsal, old, production)] == [e.details["verdict"] for e in events]
    assert production["verdict"] == "denied" and life["denied_code"] == 1
    markdown = report.files.markdown.read_text(encoding="utf-8")
    html = report.files.html.read_text(encoding="utf-8")
    for rule in production["rules"]:
        rule_id = rule["rule_id"]
        # each rule's observed value, bound, p-value and both sample sizes, on the window's row in both formats
        html_row = html[html.index(f'id="monitoring-window-{production["event"]}"') :]
        html_row = html_row[html_row.index(f"<code>{rule_id}</code>") :].split("</tr>", 1)[0]
        md_table = markdown[markdown.index(f"(event #{production['event']}), verdict denied") :]
        md_row = next(line for line in md_table.splitlines() if line.startswith(f"| `{rule_id}`"))
        for row in (html_row, md_row):
            assert fmt(rule["observed"]) in row and rule["status"].replace("_", " ") in row, (rule_id, row)
            for key in ("bound", "p_value", "alpha", "n", "n_baseline"):
                if rule.get(key) is not None:
                    assert fmt(rule[key]) in row, (rule_id, key, row)
    length = next(r for r in production["rules"] if r["rule_id"] == "monitor.length_drift")
    assert length["status"] == "fail" and length["observed"] > length["bound"] and length["p_value"] < length["alpha"]
    # the baseline: v2's evaluation generations, which its signed evaluation bound (the sample's 150 answers)
    assert (length["n"], length["n_baseline"]) == (200, 150) and length["baseline_value"].startswith("median ")
    (incident,) = report.facts.monitoring["incidents"]
    assert incident["id"] == life["incident"] and incident["open"] is False
    assert life["incident"] in html and "tone fixed in the system prompt" in html
    assert "tone fixed in the system prompt" in markdown  # the close reason in both formats
    assert report.facts.monitoring["blocking_incidents"] == []


def test_a_window_from_before_the_registration_is_refused_and_a_rehearsal_is_never_production(life):
    report, name, v2 = life["report"], life["name"], life["v2"].version
    (registered,) = trail.events(model=name, version=v2, event_types=["model_registered"])
    # govern monitor refuses the unmarked sample: its dates precede the version
    assert life["refusal"].startswith(f"{life['unmarked']}: not evidence about {name} v{v2}: its first request ")
    assert f"before {name} v{v2} was registered ({registered.timestamp})" in life["refusal"]
    assert "govern monitor --rehearsal" in life["refusal"]
    rehearsal, old, production = report.facts.monitoring["checks"]
    assert rehearsal["evidence"]["kind"] == "rehearsal" and "rehearsal" in rehearsal["recommendation"]
    assert old["evidence"]["kind"] == "refused"
    assert any(f"before {name} v{v2} was registered" in reason for reason in old["evidence"]["reasons"])
    assert production["evidence"]["kind"] == "production"
    assert report.facts.monitoring["latest_production"]["event"] == production["event"]
    assert report.facts.monitoring["not_evidence"] == [rehearsal["event"], old["event"]]
    # the tag a registry UI shows says rehearsal for a rehearsal; the trail event carries the standing
    (first, *_) = trail.events(model=name, version=v2, event_types=["monitoring_checked"])
    assert first.details["evidence"]["kind"] == "rehearsal" and first.reason.startswith("rehearsal window ")
    # both formats say so on the window's row, and the old window's pass above its bound is called uncheckable
    html = report.files.html.read_text(encoding="utf-8")
    markdown = report.files.markdown.read_text(encoding="utf-8")
    for text in (html, markdown):
        assert text.count("refused as evidence") >= 2 and "traffic from before the version existed" in text
    warnings = [f.text for f in report.verdict.life if f.severity == "warn"]
    assert any(f"window event #{old['event']}" in w and "refused as evidence" in w for w in warnings)
    assert any(f"window event #{rehearsal['event']}" in w and "a rehearsal" in w for w in warnings)


def test_the_verdict_of_a_serving_version_leads_with_its_denied_window_and_the_command(life):
    report, name, v1, v2 = life["serving"], life["name"], life["v1"].version, life["v2"].version
    verdict = report.verdict
    assert verdict.serving[0] == "production"
    production = report.facts.monitoring["checks"][-1]
    serves = " and ".join(verdict.serving)
    assert verdict.lead[0] == f"Serves {serves} now (audit trail)."
    assert verdict.lead[1].startswith(
        f"{name} v{v2} serves {serves} and its latest monitoring window of production traffic was denied "
        f"(window event #{production['event']} ({life['root'] / 'production.jsonl'}, 200 requests), checked "
    )
    assert re.search(r"monitor\.length_drift KS D [0-9.]+ > bound 0\.3, p=[0-9.e+-]+ \(alpha 0\.01, n 200 vs 150\)",
                     verdict.lead[1])  # fmt: skip
    assert verdict.lead[2].startswith(f'Act: govern rollback {name} --to {v1} --reason "..."')
    assert not verdict.promotable
    checks = {c.id: c for c in verdict.checks}
    assert checks["operations.monitoring"].status == "fail"
    # in both formats the lead comes first, then the promotion headline, then blocking checks, then warnings
    html = report.files.html.read_text(encoding="utf-8")
    markdown = report.files.markdown.read_text(encoding="utf-8")
    for text, lead in ((html, verdict.lead[1].split(" (")[0]), (markdown, verdict.lead[1].split(" (")[0])):
        section = text[text.index("Verdict") :]
        order = [section.index(lead), section.index(verdict.headline), section.index("What is missing or failed")]
        order.append(section.index("Warnings ("))
        assert order == sorted(order), order
    assert f"govern rollback {name} --to {v1}" in html and f"govern rollback {name} --to {v1}" in markdown
    card = report.files.model_card.read_text(encoding="utf-8")  # the model card's governance section too
    assert f"- **{verdict.lead[1]}**" in card and card.index(verdict.lead[1]) < card.index("- Promotion verdict at")
    assert "serving: production" in html and f"Serves {serves} now" in html and f"Serves {serves} now" in markdown
    # the incident closed without evidence by the one who promoted v2 is commented on, not shown bare
    (incident,) = report.facts.monitoring["incidents"]
    concerns = " ".join(incident["concerns"])
    promoted = next(e for e in report.facts.approvals["events"] if e["action"] == "promoted")
    assert "with no evidence recorded" in concerns and "closed by dana, who canaried" in concerns
    assert f"promoted (event #{promoted['seq']}) this version" in concerns
    assert re.search(r"closed \d+ s after it was opened", concerns)
    for text in (html, markdown):
        assert "with no evidence recorded" in text and f"promoted (event #{promoted['seq']}) this version" in text
    # after the rollback v2 serves nothing: its verdict no longer leads with a serving alias
    assert life["report"].verdict.serving == []
    assert not any(line.startswith("Serves") for line in life["report"].verdict.lead)


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
