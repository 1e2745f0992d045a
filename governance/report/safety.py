"""The safety evaluation as the report shows it, from the version's recorded ``evaluation/safety.json``.

Reads only what the evaluate stage recorded (rates, the parent's rates and
deltas, prompt-set and judge hashes, the reward model's second opinion, and a
few judged completions); it re-judges nothing. A version evaluated before the
safety evaluation existed gets a gap, not a made-up "not run". Per-hazard rates
(MLCommons AILuminate categories) are shown where the evaluation recorded them.
"""

from __future__ import annotations

from typing import Any

from governance.safety import SAFETY_METRICS
from governance.safety.metrics import counts

#: Judged completions listed per set in the report (safety.json holds all of them).
MAX_EXAMPLES = 3


def _hazard_row(hazard: str, items: list[dict[str, Any]], metrics: dict[str, Any]) -> dict[str, Any]:
    """One hazard category: its red-team prompts, and per verdict (refusal, compliance) and model (this
    version, the parent) the recorded rate beside the count of prompts it was computed from.

    Counts come from the recorded per-prompt verdicts (``verdict``, ``parent_verdict``; a partial refusal counted
    as the rates count it, :func:`governance.safety.metrics.counts`); a column of the
    report states "count of prompts (rate)", never a rate under a heading that reads as a count.
    """
    red = [i for i in items if i.get("set") == "red_team" and i.get("category") == hazard]
    row: dict[str, Any] = {"category": hazard, "prompts": len(red)}
    for who, field in (("", "verdict"), ("parent_", "parent_verdict")):
        recorded = [{"set": "red_team", "verdict": i[field], "partial": i.get(f"{who}partial")}
                    for i in red if i.get(field) is not None]  # fmt: skip
        for verdict in ("refusal", "compliance"):
            row[f"{who}{verdict}"] = metrics.get(f"{who}harmful_{verdict}_rate.{hazard}")
            row[f"{who}{verdict}_count"] = sum(counts(i, verdict) for i in recorded) if recorded else None
        row[f"{who}judged"] = len(recorded)
    return row


def _figure(value: Any, interval: Any = None) -> str:
    """A rate to three places with its 95% interval where recorded; "n/a" where there is none."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "n/a"
    shown = f"{value:.3f}"
    if isinstance(interval, list | tuple) and len(interval) == 2 and all(isinstance(x, int | float) for x in interval):
        shown += f" [{interval[0]:.2f}-{interval[1]:.2f}]"
    return shown


def _model(weakest: dict[str, Any]) -> str:
    """A set's model as the report names it: the set's own name for it, with the code its results use."""
    return f"{weakest['name']} ({weakest.get('model')})" if weakest.get("name") else str(weakest.get("model"))


def judge_agreement_summary(judge: Any) -> dict[str, Any]:
    """The judge's measured agreement with people as the report shows it, from what the evaluation recorded
    (``judge.agreement``, :mod:`governance.safety.agreement`): per set its completions, refusal precision and
    recall with 95% intervals, the held-out cell, the weakest model and the goal; or why it was not measured.
    An evaluation recorded before agreement was recorded reads "not recorded", never "measured"."""
    agreement = judge.get("agreement") if isinstance(judge, dict) else None
    if not isinstance(agreement, dict):
        return {"status": "not recorded"}
    if agreement.get("status") != "measured":
        return {"status": "not measured", "why": agreement.get("why") or "no reason recorded"}
    rows = []
    for entry in agreement.get("sets") or []:
        every, unseen, weakest = entry.get("all") or {}, entry.get("unseen"), entry.get("weakest_model")
        person = entry.get("one_person_held_out")
        rows.append({
            "set": entry.get("set"),
            "public": bool(entry.get("public")),
            "title": entry.get("title"),  # what the set is and what its labels mean (its sources entry)
            "completions": f"{every.get('n', 'n/a')} ({every.get('refusals', 'n/a')})",
            "precision": _figure(every.get("precision"), every.get("precision_ci95")),
            "recall": _figure(every.get("recall"), every.get("recall_ci95")),
            "held_out": "none kept" if not unseen
            else f"{_figure(unseen.get('precision'))} / {_figure(unseen.get('recall'))} ({unseen.get('n')}"
            + (_held_out_whole(entry) if entry.get("held_out") == "all" else ")") + _person(person),
            "weakest": "n/a" if not weakest
            else f"{_model(weakest)}: {weakest.get('figure')} {_figure(weakest.get('value'))}"
            + ("" if weakest.get("one_person") is None else f"; one person {_figure(weakest.get('one_person'))}"),
            "goal": _goal(entry.get("goal_met"), entry.get("goal_met_by_one_person")),
        })  # fmt: skip
    results = agreement.get("results") or {}
    review = agreement.get("review") or {}
    reviewed = f"{review.get('ref')} {str(review.get('commit') or '')[:12]}" if review.get("commit") else "not recorded"
    return {"status": "measured", "results": results, "benchmark": agreement.get("benchmark"),
            "reviewed": reviewed, "goal": agreement.get("goal") or {}, "sets": rows}  # fmt: skip


def _goal(met: Any, by_person: Any) -> str:
    """Whether the judge meets the goal on a set's held-out cell and, where the set keeps how its people split,
    whether one person would."""
    shown = {True: "met", False: "not met"}.get(met, "n/a")
    if by_person not in (True, False) or met not in (True, False):
        return shown
    if met == by_person:
        return shown + (" (as by one person)" if met else " (nor by one person)")
    return shown + (" (one person meets it)" if by_person else " (one person does not)")


def _person(person: Any) -> str:
    """One person's figures on the held-out cell, where the set keeps how its people split; nothing otherwise."""
    if not isinstance(person, dict):
        return ""
    return f"; one person {_figure(person.get('precision'))} / {_figure(person.get('recall'))}"


def _held_out_whole(entry: dict[str, Any]) -> str:
    """How a set held out whole is named: measured only (its labels are of another kind, never fitted or chosen
    on), or held out whole (a set no judge was fitted or chosen on, kept for measuring). A record made before
    the two were told apart has no ``measured_only`` and was measured-only then."""
    return ", all of it: measured only)" if entry.get("measured_only", True) else ", all of it: no judge fitted on it)"


def safety_summary(recorded: dict[str, Any] | None) -> dict[str, Any] | None:
    """Rates with parent and delta, the evidence hashes and a few examples; None when nothing was recorded."""
    if not isinstance(recorded, dict):
        return None
    metrics = recorded.get("metrics") or {}
    rows = []
    for name in SAFETY_METRICS:
        rows.append(
            {
                "metric": name,
                "value": metrics.get(name),
                "parent": metrics.get(f"parent_{name}"),
                "delta": metrics.get(f"{name}_delta_vs_parent"),
            }
        )
    variants = {
        k.removeprefix("harmful_refusal_rate_"): v
        for k, v in metrics.items()
        if k.startswith("harmful_refusal_rate_") and not k.endswith("_vs_parent")
    }
    hazards = [
        _hazard_row(hazard, recorded.get("items") or [], metrics)
        for hazard in sorted({k.split(".", 1)[1] for k in metrics if k.startswith("harmful_refusal_rate.")})
    ]
    examples: dict[str, list[dict[str, Any]]] = {}
    for item in recorded.get("items") or []:
        bucket = examples.setdefault(str(item.get("set")), [])
        if len(bucket) < MAX_EXAMPLES and "completion" in item:
            shown = {k: item.get(k) for k in ("id", "category", "variant", "verdict", "completion", "parent_verdict")}
            for key, flag in (("verdict", "partial"), ("parent_verdict", "parent_partial")):
                if item.get(flag):
                    shown[key] = "partial refusal"  # refuses, then complies in another voice (judge 3.10 on)
            bucket.append(shown)
    second = recorded.get("reward_model") or None
    return {
        "kind": recorded.get("kind"),
        "model_sha256": recorded.get("model_sha256"),
        "rates": rows,
        "jailbreak_variants": variants,
        "hazards": hazards,
        "harmful_compliance_rate": metrics.get("harmful_compliance_rate"),
        "sets": recorded.get("sets") or {},
        "judge": recorded.get("judge"),
        "judge_agreement": judge_agreement_summary(recorded.get("judge")),
        "generation": recorded.get("generation"),
        "pii_decision": recorded.get("pii_decision"),
        "parent": recorded.get("parent"),
        "reward_model": None
        if not second
        else {
            "path": second.get("path"),
            "model_sha256": second.get("model_sha256"),
            "metrics": second.get("metrics") or {},
        },
        "examples": examples,
    }
