"""The report's evaluation section: the evaluation decision, its metrics, and the production comparison.

From the training run's ``evaluation/`` artifacts (decision, metrics,
generations, safety, manifest) and the version holding ``production``; the
decision's hash is compared with the one the version's tag records. Each rule's
row carries the evidence the decision recorded (test, n, interval, p-value,
baseline) and its verdict, "insufficient evidence" stated as such with what it
counted as and the n that would decide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from governance import registry, registry_view
from governance.approvals import policy_dir
from governance.errors import ConfigError, GovernanceError
from governance.report.record import ReportFacts
from governance.report.run_artifacts import RunArtifacts
from governance.report.safety import safety_summary


def evaluation_facts(
    facts: ReportFacts, version: Any, artifacts: RunArtifacts, versions: list[Any] | None = None
) -> None:
    """The evaluation section: the decision and its integrity, metrics, generations, safety, production."""
    tags = version.tags or {}
    decision = artifacts.json("evaluation/decision.json")
    metrics = artifacts.json("evaluation/metrics.json") or {}
    generations = _generations(artifacts.json("evaluation/generations.json"))
    manifest = artifacts.json("evaluation/manifest.json") or {}
    digest = artifacts.sha256("evaluation/decision.json")
    recorded = tags.get("lineage.eval_decision_sha256")
    details = (decision or {}).get("details") or {}
    results = [dict(r) for r in details.get("results") or []]
    for row, why in zip(results, _eval_rationales(decision, results), strict=True):
        row["rationale"] = why
        row["evidence_text"] = evidence_text(row)
        row["result_label"] = result_label(row)
    gated = {r.get("metric") for r in results}
    production = None
    try:
        if versions is None:  # else the model's versions as the report read them: the holder is among them
            number = registry_view.alias_holder(version.name, "production")
            holder = None if number is None else registry_view.read_version(version.name, number)
        else:
            holder = next((v for v in versions if "production" in (v.aliases or ())), None)
    except GovernanceError as exc:
        holder = None
        facts.gap("evaluation", f"production comparison: {exc}")
    if holder is not None:
        theirs = {
            k.removeprefix(registry.METRIC_TAG_PREFIX): v
            for k, v in (holder.tags or {}).items()
            if k.startswith(registry.METRIC_TAG_PREFIX)
        }
        ours = {
            k.removeprefix(registry.METRIC_TAG_PREFIX): v
            for k, v in tags.items()
            if k.startswith(registry.METRIC_TAG_PREFIX)
        }
        rows = []
        for key in sorted(set(theirs) | set(ours)):
            a, b = _float(ours.get(key)), _float(theirs.get(key))
            rows.append({"metric": key, "this": a, "production": b, "delta": None if a is None or b is None else a - b})
        production = {
            "version": str(holder.version),
            "is_this_version": str(holder.version) == str(version.version),
            "rows": rows,
        }
    facts.evaluation = {
        "decision": decision,
        "passed": None if decision is None else bool(decision.get("passed")),
        "policy_path": (decision or {}).get("policy_path"),
        "policy_version": (decision or {}).get("policy_version"),
        # When it was decided: the signed event that published it (signed_decisions.py), never the file
        "decided_at": None,
        "results": results,
        "violations": (decision or {}).get("violations") or [],
        "counts": (decision or {}).get("counts") or {},
        # metrics.json's ``rules`` restates the decision's per-rule evidence: shown with the rules, not as a metric
        "other_metrics": {k: v for k, v in sorted(metrics.items()) if k not in gated and k != "rules"},
        "confidence": details.get("confidence"),
        "insufficient": [r for r in results if r.get("status") == "insufficient_evidence"],
        "production_at_eval": details.get("production") or {},
        "production": production,
        "generations": generations,
        "safety": safety_summary(artifacts.json("evaluation/safety.json")),
        "datasets": (decision or {}).get("datasets") or [],
        "evaluated_model_sha256": manifest.get("model_sha256"),
        "decision_sha256": digest,
        "recorded_sha256": recorded,
        "integrity": "missing" if digest is None else ("ok" if digest == recorded else "mismatch"),
        "stage": (decision or {}).get("stage") or manifest.get("stage"),
        "version_model_sha256": tags.get("lineage.model_sha256"),
        "signed": None,  # set from the audit trail (see mark_signed_decisions)
        "signed_event": None,
    }
    if decision is None:
        facts.gap(
            "evaluation", "evaluation decision: not logged to the training run (artifact evaluation/decision.json)"
        )
    if not metrics:
        facts.gap("evaluation", "evaluation metrics: not logged (artifact evaluation/metrics.json)")
    if facts.evaluation["safety"] is None:
        facts.gap(
            "evaluation", "safety evaluation: not recorded (artifact evaluation/safety.json; evaluated before it ran)"
        )


#: Completions shown in the report (generations.json may hold one per held-out record).
MAX_GENERATIONS = 10


def _generations(recorded: Any) -> list[dict[str, Any]]:
    """The evaluation's recorded completions as ``{label, completion, reference}``, whatever the stage's shape."""
    if not isinstance(recorded, list):
        return []
    out = []
    for item in recorded[:MAX_GENERATIONS]:
        if not isinstance(item, dict):
            continue
        label = item.get("prompt") or (f"held-out record {item['id']}" if item.get("id") is not None else "prompt")
        out.append(
            {
                "label": str(label),
                "completion": str(item.get("completion") or ""),
                "reference": item.get("answer"),
                "parent_completion": item.get("parent_completion"),
            }
        )
    return out


def _eval_rationales(decision: dict | None, results: list[dict]) -> list[str | None]:
    """Each rule's one-line rationale, from the evaluation policy file when it holds the bytes that decided."""
    if not decision or not results:
        return [None] * len(results)
    from governance.evaluation import load_eval_policy

    path = policy_dir() / Path(str(decision.get("policy_path") or "eval.yaml")).name
    try:
        policy = load_eval_policy(path) if path.is_file() else None
    except ConfigError:
        policy = None
    # The very bytes the decision was judged under where it records their hash (an uncommitted edit that keeps the
    # version number but rewrites a rationale is not them), else the same version
    decided = decision.get("policy_sha256")
    if policy is None or (policy.sha256 != decided if decided else policy.version != decision.get("policy_version")):
        return [None] * len(results)
    method = (decision.get("details") or {}).get("method")
    safety = [*policy.safety.rules, *policy.safety.vs_parent] if policy.safety else []
    rules = {rule.id: rule.rationale for rule in [*policy.methods.get(method, []), *safety]}
    return [rules.get(row.get("rule_id")) for row in results]


def _g(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) and not isinstance(value, bool) else "—"


#: How a report names each test's p-value, and the test.
_P_LABELS = {
    "wilson": "score test", "mcnemar": "McNemar", "t": "t-test", "welch": "Welch t-test", "bootstrap": "bootstrap",
}  # fmt: skip


def evidence_text(row: dict[str, Any]) -> str | None:
    """``n=24 paired red-team prompts; 95% CI 0..0.21; McNemar p=0.5 (no change against the parent); parent 0.71``.

    None for a row the decision recorded no evidence for (missing, not measurable, not applicable, or
    decided before rules carried their statistics).
    """
    found = row.get("evidence")
    if not isinstance(found, dict):
        return None
    low, high = (list(found.get("ci") or []) + [None, None])[:2]
    level = found.get("confidence")
    level_text = f"{level:.0%}" if isinstance(level, int | float) else "?"
    parts = [f"n={found.get('n')} {found.get('unit') or 'items'}"]
    parts.append(f"{level_text} CI {_g(low)}..{_g(high)}" if low is not None and high is not None else "no interval")
    p = found.get("p_value")
    label = _P_LABELS.get(str(found.get("test")), str(found.get("test")))
    shown = "<1e-300" if p == 0 else f"{p:.2g}" if isinstance(p, int | float) else None
    parts.append(f"{label} p={shown} ({found.get('null')})" if shown else f"{label} p undefined")
    if found.get("baseline") is not None:
        parts.append(f"parent {_g(found['baseline'])}")
    if row.get("reference") is not None:
        parts.append(f"production {_g(row['reference'])}")
    if found.get("items_to_decide"):
        parts.append(f"about {found['items_to_decide']} {found.get('unit') or 'items'} would decide")
    return "; ".join(parts)


def result_label(row: dict[str, Any]) -> str:
    """``pass``, ``fail`` or ``insufficient evidence (counts as warn)``: the verdict and what undecided counted as."""
    status = str(row.get("status") or "")
    if status == "insufficient_evidence":
        return f"insufficient evidence (counts as {row.get('outcome') or row.get('on_insufficient')})"
    return status.replace("_", " ")


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
