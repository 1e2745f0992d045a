"""Which gate and evaluation decisions a signed trail event published, as the report believes them.

A decision file (or ``lineage.json``) logged to MLflow can be edited by
anyone with MLflow access; :func:`decision_keys` names what to look up in the
audit trail and :func:`mark_signed_decisions` marks each decision signed or
not, taking whether a gate passed and when it was decided from the signed
event, never the file (a decision file records no time; an edited one could).
"""

from __future__ import annotations

from typing import Any

from governance.report.record import ReportFacts


def decision_keys(facts: ReportFacts) -> list[tuple[str, str, str, dict[str, str]]]:
    """``(event_type, stage, sha256, evidence)`` of every decision to look up in the trail.

    A gate: the SHA-256 training recorded in its lineage (what it was trained
    under; the artifact must equal it, see ``integrity``). The evaluation: its
    logged artifact's SHA-256, else the one the version's tag records, and it
    must be the evaluation of this version's model (``model_sha256``).
    """
    keys = [
        ("gate_decision", str(g["stage"]), str(g["lineage_sha256"]), {})
        for g in facts.data.get("gates") or []
        if g.get("stage") and g.get("lineage_sha256")
    ]
    evaluation = facts.evaluation
    digest = evaluation.get("decision_sha256") or evaluation.get("recorded_sha256")
    if evaluation.get("stage") and digest:
        model = {"model_sha256": str(evaluation.get("version_model_sha256"))}
        keys.append(("eval_decision", str(evaluation["stage"]), str(digest), model))
    return keys


def mark_signed_decisions(facts: ReportFacts, events: dict[str, dict[str, Any]] | None) -> None:
    """Mark each decision signed (a trail event published it), unsigned, or unknown (None: no trail).

    Where signed, whether the gate passed and when it was decided (``decided_at``, the event's
    timestamp, with ``decided_event`` its number) are the event's, not the lineage's; unsigned, the
    time stays None and the report says "not recorded".
    """
    if events is None:
        return
    for gate in facts.data.get("gates") or []:
        event = events.get(f"{gate.get('stage')}:{gate.get('lineage_sha256')}")
        gate["signed"], gate["signed_event"] = event is not None, event
        if event is not None:
            gate["passed"] = event.get("passed")
            gate["decided_at"], gate["decided_event"] = event.get("at"), event.get("seq")
            gate["decided_review"] = _review(event)
    evaluation = facts.evaluation
    digest = evaluation.get("decision_sha256") or evaluation.get("recorded_sha256")
    event = events.get(f"{evaluation.get('stage')}:{digest}")
    evaluation["signed"], evaluation["signed_event"] = event is not None, event
    if event is not None:
        evaluation["decided_at"], evaluation["decided_event"] = event.get("at"), event.get("seq")
        evaluation["decided_review"] = _review(event)


def _review(event: dict[str, Any]) -> dict[str, str] | None:
    """The ref and commit the signed event says its policy was reviewed at (None where it records neither:
    published before the ref was recorded), and the other decisive files it bound as reviewed there (``others``:
    the waiver file, the safety judge, the sets' sources file)."""
    if not event.get("reviewed_commit"):
        return None
    policy = str(event.get("policy_path") or "")
    others = [f for f in event.get("reviewed_files") or [] if f != policy]
    return {"ref": str(event.get("reviewed_ref") or ""), "commit": str(event["reviewed_commit"]), "others": others,
            "signed_by": str(event.get("reviewed_signed_by") or "")}  # fmt: skip
