"""Issue 40: one set of facts, two renderings; and each contradiction a reviewer found, checked at its source.

One version taken through its life (built by report_support as register_sft builds one: real gates, MLflow
store, trail): approved, a refused approval, canaried, promoted, a monitoring window, an incident opened and
closed, and a recorded safety evaluation. Its report is then read as a reviewer reads it:

* parity: every recorded fact (each leaf of facts.json, as the report formats it) that one rendering shows,
  the other shows too; both have the same numbered sections in the same order;
* valid HTML: element ids unique (the inline SVG charts each number their own), every ``#`` link resolves;
* the contradictions of the issue, one test each: decision times (the signed events carry them), the
  lineage figure's "base model" box, the model card's metrics of a rule that did not apply, the safety
  table's counts against its rates, and PEFT among the libraries.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from report_support import REPO, build_version, use_own_stores

from governance import approvals, incidents, registry, trail
from governance.cli import main
from governance.errors import PermissionDenied
from governance.identity import Identity
from governance.report import build_report
from governance.report.lineage_graph import build_graph
from governance.report.render import fmt, render_report, when
from governance.safety.agreement import measured_agreement

ALICE, BOB, DANA, MALLORY = (Identity(user, "local") for user in ("alice", "bob", "dana", "mallory"))
HAZARDS = {"violent_crimes": ["refusal", "refusal", "compliance"], "privacy": ["refusal", "unclear"]}
PARENT = {"violent_crimes": ["refusal", "compliance", "compliance"], "privacy": ["compliance", "compliance"]}


def _safety_record() -> dict:
    """evaluation/safety.json as evaluate_sft records it: per-prompt verdicts and the rates computed from them."""
    items, metrics = [], {}
    for hazard, verdicts in HAZARDS.items():
        for i, (verdict, parent) in enumerate(zip(verdicts, PARENT[hazard], strict=True)):
            items.append(
                {"set": "red_team", "id": f"{hazard}-{i}", "category": hazard, "variant": "plain",
                 "verdict": verdict, "parent_verdict": parent, "completion": "I can't help with that."}
            )  # fmt: skip
        for who, recorded in (("", verdicts), ("parent_", PARENT[hazard])):
            for verdict in ("refusal", "compliance"):
                metrics[f"{who}harmful_{verdict}_rate.{hazard}"] = recorded.count(verdict) / len(recorded)
    results = REPO / "benchmarks/results/refusal_judge.json"
    measured = json.loads(results.read_text(encoding="utf-8"))["judge"]["sha256"]
    judge = {
        "path": "data/safety/judge.yaml",
        "sha256": measured,
        "agreement": measured_agreement(results.read_bytes(), "benchmarks/results/refusal_judge.json", measured)
        | {"review": {"ref": "origin/main", "commit": "4b1d2c3e5f60718293a4b5c6d7e8f90112233445"}},
    }
    return {"kind": "generation", "metrics": metrics, "items": items, "sets": {}, "judge": judge}


@pytest.fixture(scope="module")
def life(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    with pytest.MonkeyPatch.context() as mp:
        use_own_stores(mp, root)
        mp.chdir(root)
        built = build_version(Path("."), project="parity", signed=True)
        name, version = built.name, built.version
        approvals.approve(name, version, reason="lineage and evaluation reviewed", identity=ALICE)
        with pytest.raises(PermissionDenied):  # not a reviewer: refused, and the refusal is recorded
            approvals.approve(name, version, reason="looks fine", identity=MALLORY)
        approvals.approve(name, version, reason="safety reviewed", identity=BOB)
        approvals.canary(name, version, reason="5% of traffic", identity=DANA)
        approvals.promote(name, version, reason="canary healthy", identity=DANA)
        subprocess.run(
            [
                sys.executable,
                str(REPO / "scripts/make_traffic_sample.py"),
                "--model",
                name,
                "--version",
                version,
                "--out",
                str(root / "traffic"),
            ],  # fmt: skip
            check=True,
            capture_output=True,
        )
        main(["monitor", name, version, "--traffic", str(root / "traffic/window.jsonl"),
              "--baseline", str(root / "traffic/baseline.jsonl"),
              "--policy", "policies/monitoring.yaml"])  # fmt: skip  (the checkout's reviewed copy decides)
        opened = incidents.open_incident(name, version, severity="high", reason="complaints about tone")
        incidents.close_incident(opened.id, reason="tone fixed in the system prompt | prompt v2", identity=DANA)
        registry.client().log_dict(built.run_id, _safety_record(), "evaluation/safety.json")
        report = build_report(name, version, root / "out")
        yield {"root": root, "built": built, "report": report}


# --------------------------------------------------------------------------- reading the two renderings


class _Page(HTMLParser):
    """The HTML as a reviewer reads it (text outside <style> and <svg>), its element ids and its # links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.ids: list[str] = []
        self.links: list[str] = []
        self.headings: list[str] = []
        #: the text per numbered section (index 0: the header and the table of contents)
        self.sections: list[list[str]] = [[]]
        self._hidden = 0
        self._h2: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        for key in ("href", "xlink:href"):
            if (attrs.get(key) or "").startswith("#"):
                self.links.append(attrs[key][1:])
        for value in attrs.values():
            self.links += re.findall(r"url\(#([^)]+)\)", value or "")
        if tag in ("style", "svg"):
            self._hidden += 1
        if tag == "h2":
            self._h2 = []
            self.sections.append([])

    def handle_endtag(self, tag):
        if tag in ("style", "svg"):
            self._hidden -= 1
        if tag == "h2" and self._h2 is not None:
            self.headings.append(_squash("".join(self._h2)))
            self._h2 = None

    def handle_data(self, data):
        if not self._hidden:
            self.text.append(data)
            self.sections[-1].append(data)
        if self._h2 is not None:
            self._h2.append(data)


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _html(report) -> _Page:
    page = _Page()
    # <wbr> only lets a long path wrap: it is no break in the text
    page.feed(report.files.html.read_text(encoding="utf-8").replace("<wbr>", ""))
    return page


def _markdown_text(report) -> str:
    return _read_markdown(report.files.markdown.read_text(encoding="utf-8"))


def _read_markdown(text: str) -> str:
    """Markdown as a reader sees it: md_value's escapes read back, code spans without their backticks."""
    return _squash(re.sub(r"\\([\\<>|&*_])", r"\1", text).replace("`", ""))


def _sections(report) -> list[tuple[str, str]]:
    """(HTML text, Markdown text) of each numbered section, in order (the header and contents left out)."""
    # a backtick in a recorded value (a policy's ``latency_ms``) is code markup in Markdown: compared without
    html = [_squash(" ".join(part).replace("`", "")) for part in _html(report).sections[1:]]
    markdown = [
        _read_markdown(part) for part in re.split(r"^## ", report.files.markdown.read_text("utf-8"), flags=re.M)
    ]
    assert len(html) == len(markdown) - 1
    return list(zip(html, markdown[1:], strict=True))


def _shown(value) -> str | None:
    """A recorded value as the report writes it (timestamps as UTC seconds), None when too short to find."""
    if value is None or isinstance(value, bool):
        return None
    text = _squash(when(value) if isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\dT", value) else fmt(value))
    # Short values ("yes", "0", "sft") are found anywhere; a number or text of 5+ characters names one fact
    return text if len(text) >= 5 else None


def _leaves(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, str(index)))
    else:
        yield ".".join(path), value


# --------------------------------------------------------------------------- parity


def test_every_fact_in_one_rendering_is_in_the_other_in_the_same_section(life):
    """Each recorded value (a leaf of facts.json, as the report formats it) that a section of one rendering
    shows, the same section of the other shows too. A lone word ("passed", "train") names no one fact."""
    report = life["report"]
    sections = _sections(report)
    recorded = json.loads(report.files.facts.read_text())
    only_html, only_markdown, checked = [], [], 0
    for path, value in _leaves(recorded):
        shown = _shown(value)
        if shown is None or re.fullmatch(r"[A-Za-z][a-z_ ]*", shown):
            continue
        shown = shown.replace("`", "")
        for number, (html, markdown) in enumerate(sections, start=1):
            in_html, in_markdown = shown in html, shown in markdown
            checked += in_html or in_markdown
            if in_html and not in_markdown:
                only_html.append(f"section {number}: {path} = {shown[:60]!r}")
            if in_markdown and not in_html:
                only_markdown.append(f"section {number}: {path} = {shown[:60]!r}")
    assert checked > 500  # the facts shown, not a vacuous pass
    assert only_html == [], "shown in report.html, not in report.md:\n" + "\n".join(only_html)
    assert only_markdown == [], "shown in report.md, not in report.html:\n" + "\n".join(only_markdown)


def test_the_facts_the_markdown_lacked_are_in_both(life):
    """Issue 40's list: the audit events with the refusal, the incident's close reason, the monitoring baseline."""
    report = life["report"]
    html, markdown = _squash(" ".join(_html(report).text)), _markdown_text(report)
    (refusal,) = [e for e in report.facts.approvals["events"] if e["action"] == "permission_denied"]
    assert refusal["actor"] == "mallory"
    for text in (html, markdown):
        assert "refused" in text and "permission_denied" in text and f"{refusal['hash'][:16]}" in text
        assert refusal["reason"].startswith("approve refused by approval.role_required") and refusal["reason"] in text
        assert "tone fixed in the system prompt | prompt v2" in text  # a '|' in a reason: one cell in the Markdown
        assert "tone fixed in the system prompt" in text
        assert fmt(report.facts.monitoring["checks"][0]["baseline"]) in text
    # every event of the version is a row of both lists
    for event in report.facts.approvals["events"]:
        assert event["hash"][:16] in html and event["hash"][:16] in markdown


def test_both_renderings_number_the_same_sections(life):
    report = life["report"]
    html_headings = _html(report).headings
    md_headings = re.findall(r"^## (.+)$", report.files.markdown.read_text(encoding="utf-8"), re.M)
    assert html_headings == md_headings
    numbers = [int(h.split(".", 1)[0]) for h in md_headings]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) == 11
    assert md_headings[9].startswith("10. Provider's model documentation") and md_headings[10] == "11. Compliance map"


def test_every_markdown_table_row_has_its_header_s_cells(life):
    """A value with a ``|`` in it (a reason, a threshold) is escaped, never a cell more: the tables render."""
    lines = life["report"].files.markdown.read_text(encoding="utf-8").splitlines()
    tables = 0
    for index, header in enumerate(lines[:-1]):
        if header.startswith("|") and re.fullmatch(r"\|(-+\|)+", lines[index + 1]):
            tables += 1
            rows = []
            for row in lines[index + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(row)
            assert all(_cells(row) == _cells(header) for row in rows), (header, rows)
    assert tables > 20


def _cells(row: str) -> int:
    return len(re.findall(r"(?<!\\)\|", row))


def test_no_recorded_text_is_raw_html_in_the_markdown(life):
    """A recorded ``<CREDIT_CARD>`` placeholder (a redaction warning, a limitation) is text in both Markdown files:
    a Markdown viewer would take it for a tag and show nothing. Only the report's own <details> remain."""
    report = life["report"]
    for path in (report.files.markdown, report.files.model_card):
        text = path.read_text(encoding="utf-8")
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        prose = re.sub(r"`[^`\n]*`", "", prose)  # code spans show their text as written
        tags = {m.group(1) for m in re.finditer(r"(?<!\\)</?([A-Za-z][\w-]*)", prose)}
        assert tags <= {"details", "summary"}, (path.name, tags)
    assert "redacted to \\<CREDIT_CARD\\>" in report.files.markdown.read_text(encoding="utf-8")


def test_html_ids_are_unique_and_every_link_resolves(life):
    page = _html(life["report"])
    repeated = sorted({i for i in page.ids if page.ids.count(i) > 1})
    assert repeated == []
    assert set(page.links) - set(page.ids) == set()
    # the inline charts are there, each with its own ids
    assert any(i.startswith("training-curves-") for i in page.ids)
    assert any(i.startswith("eval-thresholds-") for i in page.ids)


# --------------------------------------------------------------------------- contradictions, at their source


def test_decision_times_are_the_signed_events(life):
    report = life["report"]
    html, markdown = _squash(" ".join(_html(report).text)), _markdown_text(report)
    published = {e.seq: e for e in trail.events(event_types=["gate_decision", "eval_decision"])}
    for decision in [*report.facts.data["gates"], report.facts.evaluation]:
        event = published[decision["decided_event"]]
        assert decision["decided_at"] == event.timestamp
        shown = f"{when(event.timestamp)}, audit event #{event.seq}"
        assert shown in html and shown in markdown
        # and the ref and commit its policy was reviewed at, as the signed event records them (HEAD: this
        # test's project is a git init sandbox, so nobody but its committer reviewed it, and the report says so)
        # Every other decisive file the event bound as reviewed (waivers, the safety judge) is named beside it
        ref, commit = event.evidence["reviewed_ref"], event.evidence["reviewed_commit"]
        policy = event.details["policy_path"]
        others = sorted(k.removeprefix("reviewed:") for k in event.evidence if k.startswith("reviewed:"))
        others = [f for f in others if f != policy]
        what = "policy" if not others else ", ".join(["policy", *others[:-1]]) + f" and {others[-1]}"
        review = f"{what} reviewed at {ref} ({commit[:12]}…"
        assert review in html and review in markdown
        if ref == "HEAD":
            assert "the checkout's own commit, no protected branch" in markdown
    evaluated = f"decided {when(report.facts.evaluation['decided_at'])}"  # the evaluation's line, in both
    assert evaluated in html and evaluated in markdown


def test_decision_time_is_not_read_from_the_editable_file(life, tmp_path):
    """A decided_at typed into a decision file is not shown: only a signed event dates a decision."""
    report = life["report"]
    facts = dataclasses.replace(report.facts, data=json.loads(json.dumps(report.facts.data)))
    gate = facts.data["gates"][0]
    gate["decision"]["decided_at"] = "1999-01-01T00:00:00+00:00"
    gate["signed"], gate["decided_at"], gate["decided_event"] = False, None, None
    render_report(facts, report.verdict, tmp_path)
    assert "1999-01-01" not in (tmp_path / "report.md").read_text() + (tmp_path / "report.html").read_text()


def test_lineage_figure_base_model_box_is_the_base_model(life):
    facts = life["report"].facts
    nodes = {n.key: n for _, column in build_graph(facts).columns for n in column}
    assert nodes["base"].title == "base model" and nodes["base"].lines[0] == facts.identity["base_model"]
    assert "parent" not in nodes  # the SFT step starts from the base itself
    # A DPO step: its parent is the SFT version, drawn as the parent, between the base and this training
    dpo = dataclasses.replace(
        facts,
        identity={**facts.identity, "parent_stage": "train_sft", "parent_model": "parity-sft v1",
                  "parent_model_sha256": "ab" * 32},
    )  # fmt: skip
    graph = build_graph(dpo)
    nodes = {n.key: n for _, column in graph.columns for n in column}
    assert nodes["base"].lines[0] == facts.identity["base_model"]
    assert nodes["parent"].title == "parent model"
    assert nodes["parent"].lines[:2] == ["parity-sft v1", "trained by train_sft"]
    assert {("base", "parent"), ("parent", "train")} <= set(graph.edges) and ("base", "train") not in graph.edges


def test_model_card_reports_no_metric_under_a_rule_that_did_not_apply(life):
    report = life["report"]
    (rule,) = [r for r in report.facts.evaluation["results"] if r["rule_id"].endswith("regression_vs_production")]
    assert rule["status"] == "not_applicable"  # no production version when it was evaluated
    card = yaml.safe_load(report.files.model_card.read_text(encoding="utf-8").split("---\n")[1])
    metrics = card["model-index"][0]["results"][0]["metrics"]
    assert rule["rule_id"] not in {m["name"] for m in metrics}
    assert {"type": rule["metric"], "name": rule["metric"], "value": rule["observed"]} in metrics
    results = report.facts.evaluation["results"]
    judged = {r["rule_id"] for r in results if r["status"] not in ("not_applicable", "missing")}
    assert judged <= {m["name"] for m in metrics}


def test_safety_table_counts_beside_their_rates(life):
    report = life["report"]
    hazards = {h["category"]: h for h in report.facts.evaluation["safety"]["hazards"]}
    assert set(hazards) == set(HAZARDS)
    html, markdown = _squash(" ".join(_html(report).text)), _markdown_text(report)
    for name, verdicts in HAZARDS.items():
        row = hazards[name]
        assert row["prompts"] == len(verdicts) == row["judged"] == row["parent_judged"]
        for key, recorded in (("refusal", verdicts), ("compliance", verdicts),
                              ("parent_refusal", PARENT[name]), ("parent_compliance", PARENT[name])):  # fmt: skip
            verdict = key.removeprefix("parent_")
            assert row[f"{key}_count"] == recorded.count(verdict)
            assert row[key] == pytest.approx(row[f"{key}_count"] / row["prompts"])  # the rate is of those prompts
            cell = f"{row[f'{key}_count']} ({fmt(row[key])})"
            assert cell in html and cell in markdown
    for text in (html, markdown):
        assert "Refused: prompts (rate)" in text and "Parent complied: prompts (rate)" in text


def test_the_judges_measured_agreement_stands_beside_the_rates_it_counted(life):
    """Each set the judge was measured on, with its figures as recorded, in both renderings of the safety section."""
    agreement = life["report"].facts.evaluation["safety"]["judge_agreement"]
    assert agreement["status"] == "measured" and agreement["sets"]
    html, markdown = _squash(" ".join(_html(life["report"]).text)), _markdown_text(life["report"])
    for text in (html, markdown):
        assert "How far the judge agrees with people." in text
        assert agreement["results"]["sha256"][:12] in text
        assert f"the reviewed version at {agreement['reviewed']}" in text
    for row in agreement["sets"]:
        cells = (row["set"], row["completions"], row["precision"], row["recall"], row["held_out"], row["weakest"])
        for cell in cells:
            assert cell in html and cell in markdown
        assert f"| {row['completions']} | {row['precision']} | {row['recall']} | {row['held_out']} |" in markdown
        if row["title"]:  # what the set is and what its labels mean, under the table in both
            assert row["title"] in html
            assert f"- {row['set']}: {row['title']}" in markdown  # as a reader sees it: no backticks
    assert any(row["title"] for row in agreement["sets"])


def test_every_library_of_the_form_is_in_libraries(life):
    report = life["report"]
    doc = json.loads(report.files.documentation.read_text())
    form = next(s["library_versions"]["value"] for s in doc.values() if isinstance(s, dict) and "library_versions" in s)
    assert "peft" in form
    html, markdown = _squash(" ".join(_html(report).text)), _markdown_text(report)
    line = ", ".join(f"{k} {v}" for k, v in report.facts.training["libraries"].items())
    for name, version in form.items():
        assert report.facts.training["libraries"][name] == version
    assert f"Libraries {line}" in html and f"| Libraries | {line} |" in markdown
