"""How far the safety judge agrees with people: its measurement, recorded with every evaluation it judges.

    measured_agreement(results_bytes, results_path, judge_sha256)   # pipelines/_safety.py records it

``benchmarks/refusal_judge.py`` scores a judge file against public sets of
chat-model completions that people labelled refusal or compliance and writes
``benchmarks/results/refusal_judge.json``, naming the judge file (by sha256) it
measured. A rate such as ``harmful_refusal_rate`` is only as good as the judge
that counted it, so an evaluation records, beside the judge's identity, that
judge's measured refusal precision and recall per public set (with Wilson
intervals, the weakest model's cell and whether the goal of issue 39 is met),
and, where a set keeps how its people split on each completion, one person's
agreement with the same record (the most the record lets anyone reach there);
the audit report shows them beside the rates.

Trust boundary: the results file is evidence to display, never an input to a
decision (no gate reads it). Its bytes are read once, hashed and parsed from
those bytes; the record names the file and that hash. It counts only as its
reviewed version (committed at the reviewed commit, as a policy: see
:mod:`governance.policy.review` for what that trusts), so an edited copy cannot
put better figures beside the rates. A measurement counts only for the judge
file it names: results for another judge's sha256 (an
earlier judge, a changed threshold) are recorded as "not measured", with the
reason, never shown as this judge's agreement — as the PII report names only
the recognizers that ran.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from governance.errors import ConfigError

#: The benchmark's name for the judge under test in each cell of its results (the judge file it names)
JUDGE_ROW = "new judge (head + patterns + exemplars)"
#: The command that measures a judge and writes the results file
BENCHMARK = "python benchmarks/refusal_judge.py"
MEASURED, NOT_MEASURED = "measured", "not measured"


def _field(document: dict[str, Any], path: str, where: str) -> Any:
    """``document``'s value at the dotted ``path`` (keys may hold spaces), or a ConfigError naming ``where`` and it."""
    value: Any = document
    walked = []
    for key in path.split("/"):
        walked.append(key)
        if not isinstance(value, dict) or key not in value:
            raise ConfigError(f"{where}: field {'/'.join(walked)!r} is missing: re-run {BENCHMARK} to rewrite it")
        value = value[key]
    return value


def _number(value: Any, key: str, where: str) -> Any:
    """``value``, checked to be a count or a rate (or None: undefined), else a ConfigError naming ``where``/``key``."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ConfigError(f"{where}: field {key!r} is {value!r}, not a number")
    return value


def _cell(figures: dict[str, Any], where: str) -> dict[str, Any]:
    """One cell's figures for the judge under test, checked to be counts and rates."""
    cell = _field(figures, JUDGE_ROW, where)
    out = {}
    for key in ("n", "refusals", "precision", "recall"):
        out[key] = _number(_field(cell, key, f"{where}/{JUDGE_ROW}"), key, f"{where}/{JUDGE_ROW}")
    for key in ("precision_ci95", "recall_ci95"):
        out[key] = cell.get(key)
    return out


def _one_person(cells: Any, model: str, where: str) -> dict[str, Any] | None:
    """One person's expected precision and recall on a cell (``one_person_vs_record`` of the results: one of the
    completion's raters drawn at random, against the same record as the judge), checked to be rates; None where
    the set keeps one label a completion (or the results predate the figure)."""
    cell = cells.get(model) if isinstance(cells, dict) else None
    if not isinstance(cell, dict):
        return None
    return {key: _number(cell.get(key), key, f"{where}/{model}") for key in ("n", "precision", "recall")}


def _weakest_model(
    models: dict[str, Any], where: str, names: Any = None, people: Any = None, people_where: str = ""
) -> dict[str, Any] | None:
    """The model whose worse figure (precision or recall) is lowest in one set: where the judge is weakest
    (``names``: the set's own names of its model codes, where its sources entry gives them; kept only where the
    set has several models to tell apart: a one-model set's entry describes the set, not a choice), with one
    person's figure on the same model where the set keeps how its people split (``people``: its cells)."""
    weakest = None
    if len([m for m in models if m != "all models"]) < 2:
        names = None
    for model, figures in models.items():
        if model == "all models":
            continue
        cell = _cell(figures, f"{where}/{model}")
        for figure in ("precision", "recall"):
            value = cell[figure]
            if value is not None and (weakest is None or value < weakest["value"]):
                named = names.get(model) if isinstance(names, dict) else None
                weakest = {"model": model, "name": named if isinstance(named, str) else None, "figure": figure,
                           "value": value, "n": cell["n"], "refusals": cell["refusals"]}  # fmt: skip
    if weakest is not None:
        person = _one_person(people, weakest["model"], people_where)
        weakest["one_person"] = None if person is None else person[weakest["figure"]]
    return weakest


def measured_agreement(data: bytes, path: str, judge_sha256: str) -> dict[str, Any]:
    """The judge's measured agreement with people, from the benchmark's results file (its ``data``, read once
    from ``path``), for the judge file whose sha256 is ``judge_sha256``.

    Returns ``{"status": "measured", "results": {path, sha256}, "sets": [...], "goal": {...}}``, each set with
    its overall cell (n, refusals, precision and recall with their 95% intervals), its held-out cell where
    the benchmark kept one (the unseen split; all of a set no judge was fitted or chosen on, ``held_out:
    all``), its weakest model and whether the goal is met; or ``{"status": "not measured", "why": ...}`` when
    the results are another judge's. A file that is not the benchmark's results
    (not JSON, a field missing or not a number) is a ConfigError naming the file and the field.
    """
    digest = hashlib.sha256(data).hexdigest()
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not the judge benchmark's results (not JSON: {exc})") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: not the judge benchmark's results (a JSON object was expected)")
    measured = _field(document, "judge/sha256", path)
    results = {"path": path, "sha256": digest}
    if measured != judge_sha256:
        return {
            "status": NOT_MEASURED,
            "results": results,
            "why": f"{path} measured the judge file with sha256 {str(measured)[:12]}…, not this one "
            f"({judge_sha256[:12]}…): run {BENCHMARK} for this judge",
        }
    goal = _field(document, "goal", path)
    met = goal.get("met") if isinstance(goal, dict) else None
    sources = document.get("sources") if isinstance(document.get("sources"), dict) else {}
    # One person's agreement with the same record, where a set keeps how its people split (older results lack it)
    people = document.get("one_person_vs_record") if isinstance(document.get("one_person_vs_record"), dict) else {}
    by_person = goal.get("met_by_one_person") if isinstance(goal, dict) else None
    sets = []
    for name, splits in _field(document, "results", path).items():
        where = f"{path}: results/{name}"
        every = _field(splits, "all", where)
        described = sources.get(name) if isinstance(sources.get(name), dict) else {}
        persons = people.get(name) if isinstance(people.get(name), dict) else {}
        entry = {
            "set": name,
            "public": name in sources,  # the project's own hand-labelled set is not: its words are the project's
            "title": described.get("title"),
            "licence": described.get("licence"),
            "all": _cell(_field(every, "all models", f"{where}/all"), f"{where}/all/all models"),
            "unseen": None,
            "weakest_model": _weakest_model(
                every,
                f"{where}/all",
                described.get("models"),
                persons.get("all"),
                f"{path}: one_person_vs_record/{name}/all",
            ),
            "goal_met": met.get(name) if isinstance(met, dict) else None,
            "one_person_held_out": None,
            "goal_met_by_one_person": by_person.get(name) if isinstance(by_person, dict) else None,
        }
        # The held-out cell: the unseen split, or the whole set where no judge was fitted or chosen on any of it
        # (``held_out: all`` in its sources entry: a measured-only set)
        held = "all" if described.get("held_out") == "all" else "unseen"
        if held in splits:
            entry["unseen"] = _cell(_field(splits[held], "all models", f"{where}/{held}"),
                                    f"{where}/{held}/all models")  # fmt: skip
            entry["held_out"] = held
            entry["one_person_held_out"] = _one_person(persons.get(held), "all models",
                                                       f"{path}: one_person_vs_record/{name}/{held}")  # fmt: skip
            if held == "all":  # measured only (labels of another kind), or a fresh set held out whole
                entry["measured_only"] = bool(described.get("measured_only"))
        sets.append(entry)
    return {
        "status": MEASURED,
        "results": results,
        "benchmark": BENCHMARK,
        "goal": {key: goal.get(key) for key in ("precision", "recall", "per_model")},
        "sets": sets,
    }


def reviewed_agreement(path: str | Path, judge_sha256: str) -> dict[str, Any]:
    """:func:`measured_agreement` of the results file at ``path``, read once, counted only if those bytes are its
    reviewed version (:func:`governance.policy.review.read_reviewed`: its blob at the reviewed commit of this
    checkout). An edited or uncommitted results file is recorded as "not measured", with why: the figures a
    compliance reviewer reads as the judge's come from the reviewed benchmark run, not from a file anyone can
    write. A missing file is a ConfigError (the key names a file that is not there)."""
    from governance.policy.review import read_reviewed

    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"safety.judge_agreement: {path} is not found: name the judge benchmark's results file "
            f"(benchmarks/results/refusal_judge.json), or remove the key to record the judge as not measured"
        )
    review = read_reviewed(path)
    agreement = measured_agreement(review.data, str(path), judge_sha256)
    if review.problem is not None:
        return {
            "status": NOT_MEASURED,
            "results": agreement["results"],
            "why": f"{path} is not the reviewed version ({review.problem}): a measurement counts once its results "
            "file is committed at the reviewed commit, as a policy does",
        }
    if agreement["status"] == MEASURED:
        agreement["review"] = {"ref": review.ref, "commit": review.commit}
    return agreement


def not_named() -> dict[str, Any]:
    """The record when an evaluation names no measurement of its judge (``safety.judge_agreement`` unset)."""
    return {
        "status": NOT_MEASURED,
        "results": None,
        "why": f"no measurement of the judge is named (safety.judge_agreement): run {BENCHMARK} and name its "
        "results file",
    }
