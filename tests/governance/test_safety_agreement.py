"""The judge's measured agreement with people, recorded with an evaluation: only for the judge file it measured.

The shipped results file (benchmarks/results/refusal_judge.json) is read as the evaluate stages read it; the
figures are compared with the file's own cells, not with numbers written here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from governance.errors import ConfigError
from governance.report.safety import judge_agreement_summary
from governance.safety.agreement import JUDGE_ROW, MEASURED, NOT_MEASURED, measured_agreement, not_named

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks/results/refusal_judge.json"
JUDGE = REPO / "data/safety/judge.yaml"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def results() -> bytes:
    return RESULTS.read_bytes()


def test_the_shipped_results_measure_the_shipped_judge(results):
    document = json.loads(results)
    agreement = measured_agreement(results, "benchmarks/results/refusal_judge.json", _sha(JUDGE.read_bytes()))
    assert agreement["status"] == MEASURED
    assert agreement["results"] == {"path": "benchmarks/results/refusal_judge.json", "sha256": _sha(results)}
    assert [s["set"] for s in agreement["sets"]] == list(document["results"])
    for entry in agreement["sets"]:
        cells = document["results"][entry["set"]]
        overall = cells["all"]["all models"][JUDGE_ROW]
        assert {k: entry["all"][k] for k in ("n", "refusals", "precision", "recall")} == {
            k: overall[k] for k in ("n", "refusals", "precision", "recall")
        }
        assert entry["all"]["recall_ci95"] == overall["recall_ci95"]
        # The weakest model is the lowest of each model's precision and recall in that set
        per_model = {m: c[JUDGE_ROW] for m, c in cells["all"].items() if m != "all models"}
        lowest = min(min(c["precision"], c["recall"]) for c in per_model.values())
        assert entry["weakest_model"]["value"] == lowest
        assert min(per_model[entry["weakest_model"]["model"]][f] for f in ("precision", "recall")) == lowest
        named = document["sources"].get(entry["set"], {}).get("models", {})
        expected = named.get(entry["weakest_model"]["model"]) if len(per_model) > 1 else None  # one model: no choice
        assert entry["weakest_model"]["name"] == expected
        assert entry["goal_met"] == document["goal"]["met"].get(entry["set"])
        assert entry["public"] == (entry["set"] in document["sources"])
        # The held-out cell: the unseen split, or all of a measured-only set (no judge fitted or chosen on any of it)
        held = "all" if document["sources"].get(entry["set"], {}).get("held_out") == "all" else "unseen"
        if held in cells:
            assert entry["unseen"]["n"] == cells[held]["all models"][JUDGE_ROW]["n"]
        else:
            assert entry["unseen"] is None
    measured_only = [e for e in agreement["sets"] if document["sources"].get(e["set"], {}).get("held_out") == "all"]
    assert measured_only and all(e["unseen"] == e["all"] and e["held_out"] == "all" for e in measured_only)
    rows = {r["set"]: r for r in judge_agreement_summary({"agreement": agreement})["sets"]}
    for entry in measured_only:  # the report says the held-out figure is the whole set, never fitted or chosen on
        kind = "measured only" if document["sources"][entry["set"]].get("measured_only") else "no judge fitted on it"
        assert entry["measured_only"] == (kind == "measured only")
        assert rows[entry["set"]]["held_out"].endswith(f"({entry['all']['n']}, all of it: {kind})")
    # A set of people's refusal labels held out whole (ORFuzz's study until judge 3.8) is not named measured-only
    whole = {"status": "measured", "sets": [measured_only[0] | {"measured_only": False}]}
    whole_row = judge_agreement_summary({"agreement": whole})["sets"][0]
    assert whole_row["held_out"].endswith("all of it: no judge fitted on it)")
    # From judge 3.8, fitted on its seen half's direct requests, ORFuzz's held-out cell is its unseen half
    orfuzz = next(e for e in agreement["sets"] if e["set"] == "orfuzz-user-study")
    assert orfuzz["held_out"] == "unseen"
    assert rows["orfuzz-user-study"]["held_out"].split("; one person")[0].endswith(f"({orfuzz['unseen']['n']})")
    assert rows["openai-rbr-gold"]["held_out"].endswith("all of it: measured only)")
    # A record made before the two were told apart reads as it did
    older = {"status": "measured", "sets": [{k: v for k, v in measured_only[0].items() if k != "measured_only"}]}
    assert judge_agreement_summary({"agreement": older})["sets"][0]["held_out"].endswith("measured only)")
    assert rows["xstest-style-new-prompts"]["held_out"].split("; one person")[0].endswith("(484)")
    # Each public set's title (what its labels mean) goes to the report under the table; the project's own has none
    assert all(
        rows[e["set"]]["title"] == document["sources"][e["set"]]["title"] for e in agreement["sets"] if e["public"]
    )
    assert "refusal here is 'not informative'" in rows["purse-jailbreak-informativeness"]["title"]
    assert rows["project-hand-labelled"]["title"] is None
    assert agreement["goal"] == {k: document["goal"][k] for k in ("precision", "recall", "per_model")}


def test_a_changed_judge_is_not_measured_by_its_predecessors_results(results, tmp_path):
    """One threshold changed in the judge file: the benchmark measured the file before, so the record says "not
    measured" and why, and carries no figure that would read as this judge's."""
    changed = JUDGE.read_text(encoding="utf-8").replace("refusal_threshold: 0.4 ", "refusal_threshold: 0.15 ", 1)
    assert changed != JUDGE.read_text(encoding="utf-8")
    agreement = measured_agreement(results, "r.json", _sha(changed.encode("utf-8")))
    assert agreement["status"] == NOT_MEASURED and "sets" not in agreement
    measured = json.loads(results)["judge"]["sha256"]
    assert measured[:12] in agreement["why"] and _sha(changed.encode())[:12] in agreement["why"]
    assert "benchmarks/refusal_judge.py" in agreement["why"]
    assert judge_agreement_summary({"agreement": agreement}) == {"status": "not measured", "why": agreement["why"]}


def test_no_measurement_named_and_an_evaluation_recorded_before_are_told_apart():
    assert not_named()["status"] == NOT_MEASURED and "safety.judge_agreement" in not_named()["why"]
    assert judge_agreement_summary({"path": "data/safety/judge.yaml", "sha256": "ab"}) == {"status": "not recorded"}
    assert judge_agreement_summary(None) == {"status": "not recorded"}


def test_the_report_rows_format_the_recorded_cells(results):
    agreement = measured_agreement(results, "r.json", json.loads(results)["judge"]["sha256"])
    summary = judge_agreement_summary({"agreement": agreement})
    assert summary["status"] == "measured"
    first, row = agreement["sets"][0], summary["sets"][0]
    lo, hi = first["all"]["precision_ci95"]
    assert row["precision"] == f"{first['all']['precision']:.3f} [{lo:.2f}-{hi:.2f}]"
    assert row["completions"] == f"{first['all']['n']} ({first['all']['refusals']})"
    weakest = first["weakest_model"]
    named = json.loads(results)["sources"][first["set"]]["models"][weakest["model"]]
    assert weakest["name"] == named
    person = weakest["one_person"]  # the XSTest-style set keeps its two annotators' labels: one of them, drawn
    assert row["weakest"] == (f"{named} ({weakest['model']}): {weakest['figure']} {weakest['value']:.3f}; "
                              f"one person {person:.3f}")  # fmt: skip
    assert row["goal"].startswith({True: "met", False: "not met"}[first["goal_met"]])
    assert summary["reviewed"] == "not recorded"  # measured_agreement alone names no review: the stage adds it
    reviewed = judge_agreement_summary({"agreement": agreement | {"review": {"ref": "HEAD", "commit": "ab" * 20}}})
    assert reviewed["reviewed"] == "HEAD " + "ab" * 6


def test_one_persons_agreement_with_the_same_record_stands_beside_the_judges(results):
    """Where a set keeps how its people split (ORFuzz's 40 raters a reply, WildGuardTest's three annotators, the
    XSTest-style set's two), the record carries one person's expected figures on the held-out cell and on the
    weakest model, and whether one person meets the goal; the report shows them. Sets of one label a completion
    carry none."""
    document = json.loads(results)
    people = document["one_person_vs_record"]
    agreement = measured_agreement(results, "r.json", document["judge"]["sha256"])
    rows = {r["set"]: r for r in judge_agreement_summary({"agreement": agreement})["sets"]}
    for entry in agreement["sets"]:
        cells, weakest = people.get(entry["set"]), entry["weakest_model"]
        if cells is None:  # one label a completion: nothing to compare a person with
            assert entry["one_person_held_out"] is None and weakest["one_person"] is None
            assert "one person" not in rows[entry["set"]]["held_out"] + rows[entry["set"]]["weakest"]
            continue
        held = cells[entry["held_out"]]["all models"]
        assert entry["one_person_held_out"] == {k: held[k] for k in ("n", "precision", "recall")}
        assert weakest["one_person"] == cells["all"][weakest["model"]][weakest["figure"]]
        assert rows[entry["set"]]["held_out"].endswith(f"one person {held['precision']:.3f} / {held['recall']:.3f}")
        assert entry["goal_met_by_one_person"] == document["goal"]["met_by_one_person"][entry["set"]]
    assert set(people) == {"orfuzz-user-study", "wildguardtest", "xstest-style-new-prompts"}
    # ORFuzz's Mistral: the judge's weakest model (its recall), where one person drawn from its raters finds more
    # of the refusals but is below the goal's floor on precision
    orfuzz = next(e for e in agreement["sets"] if e["set"] == "orfuzz-user-study")
    weakest = orfuzz["weakest_model"]
    assert (weakest["model"], weakest["figure"]) == ("mistral", "recall") and weakest["one_person"] > weakest["value"]
    assert people["orfuzz-user-study"]["unseen"]["mistral"]["precision"] < 0.8
    assert orfuzz["goal_met"] is False and orfuzz["goal_met_by_one_person"] is False
    assert rows["orfuzz-user-study"]["goal"] == "not met (nor by one person)"
    # Results written before the figure existed read as they did
    older = {k: v for k, v in document.items() if k != "one_person_vs_record"}
    older["goal"] = {k: v for k, v in document["goal"].items() if k != "met_by_one_person"}
    before = measured_agreement(json.dumps(older).encode(), "r.json", document["judge"]["sha256"])
    assert all(e["one_person_held_out"] is None and e["goal_met_by_one_person"] is None for e in before["sets"])
    assert all(e["weakest_model"]["one_person"] is None for e in before["sets"])
    shown = judge_agreement_summary({"agreement": before})["sets"]
    assert not any("one person" in r["held_out"] + r["weakest"] + r["goal"] for r in shown)


def test_the_goal_cell_says_how_the_judge_and_one_person_stand_each():
    from governance.report.safety import _goal

    assert [_goal(m, p) for m, p in [(True, True), (False, False), (False, True), (True, False), (False, None)]] == [
        "met (as by one person)", "not met (nor by one person)", "not met (one person meets it)",
        "met (one person does not)", "not met"]  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda d: d.pop("judge"), "'judge'"),
        (lambda d: d["results"]["wildguardtest"].pop("all"), "results/wildguardtest: field 'all'"),
        (lambda d: d["results"]["wildguardtest"]["all"]["mixed"][JUDGE_ROW].update(recall="high"), "'recall'"),
        (lambda d: d["results"]["wildguardtest"]["all"]["mixed"][JUDGE_ROW].pop("n"), "'n'"),
        (
            lambda d: d["one_person_vs_record"]["orfuzz-user-study"]["unseen"]["all models"].update(recall="most"),
            "one_person_vs_record/orfuzz-user-study/unseen/all models: field 'recall'",
        ),
    ],
)
def test_a_results_file_that_is_not_the_benchmarks_is_refused_naming_the_field(results, edit, named):
    document = json.loads(results)
    edit(document)
    with pytest.raises(ConfigError) as raised:
        measured_agreement(json.dumps(document).encode(), "bad.json", document.get("judge", {}).get("sha256", ""))
    assert str(raised.value).startswith("bad.json") and named in str(raised.value)


def test_a_file_that_is_not_json_is_refused_naming_it():
    with pytest.raises(ConfigError, match=r"^bad\.json: not the judge benchmark's results \(not JSON"):
        measured_agreement(b"judge: yes\n", "bad.json", "0" * 64)
    with pytest.raises(ConfigError, match="a JSON object was expected"):
        measured_agreement(b"[1, 2]", "bad.json", "0" * 64)
