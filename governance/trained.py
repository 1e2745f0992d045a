"""What a training stage saw of its own run, signed when it trained: the run, the commit, a dirty tree, the user.

    from governance.trained import record_trained, signed_run_context

A trained model's manifest holds only what its bytes determine; who trained it, from which commit and whether
the tree had uncommitted changes are facts about the execution, logged as tags of the stage's MLflow run. Tags
can be edited by anyone who may edit the run (``MlflowClient().set_tag``, or the embedded store's SQLite file),
and registration copied them into the version's tags, the signed provenance statement and the report: a model
trained from edited code (``lineage.git_dirty: True``) registered as "commit X, no uncommitted changes" once the
tag said ``False`` (attack L3, which undid L1). So the training stage signs them, as it logs them, in a
``model_trained`` trail event (subject ``trained:<stage>`` with the model's sha256), and whoever reads a model's
run context (the evaluate and register stages) reads it from that event and refuses a run whose tags now say
otherwise.

Trust boundary: what the stage signs is what its own lineage computed (:mod:`governance.lineage`'s git check,
which L1 hardened); the trail key signs it. A model with no such event (trained before the event existed, or
copied in from elsewhere with its MLflow store) is refused with the stage to re-run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from governance.errors import ConfigError

if TYPE_CHECKING:
    from governance.trail import Event

EVENT = "model_trained"
PREFIX = "trained:"
ROLE = "training stage"
#: The run context a training stage signs, and the MLflow run tag each is also logged as.
SIGNED_TAGS = {
    "model_sha256": "lineage.model_sha256",
    "git_commit": "lineage.git_commit",
    "git_dirty": "lineage.git_dirty",
    "trained_by": "lineage.trained_by",
}


def record_trained(stage: str, model_sha256: str, run_id: str, lineage: dict[str, Any]) -> None:
    """Sign the stage's run context for the model it trained (a ``model_trained`` event)."""
    from governance import trail
    from governance.identity import record_stage_event

    evidence = {
        "run_id": run_id,
        "model_sha256": model_sha256,
        "git_commit": str(lineage["git_commit"]),
        "git_dirty": str(lineage["git_dirty"]),
        "trained_by": str(lineage["trained_by"]),
    }
    record_stage_event(
        EVENT,
        role=ROLE,
        subject=trail.Subject(objective=f"{PREFIX}{stage}", objective_hash=model_sha256),
        reason=f"{stage}: trained model {model_sha256[:12]}… in run {run_id}",
        evidence=evidence,
    )


def trained_event(stage: str, model_sha256: str, url: str | None = None, run_id: str | None = None) -> Event | None:
    """The ``model_trained`` event of ``stage`` for this model hash (the trail verified first): the one of run
    ``run_id`` where given and signed, else the newest; None when there is none."""
    from governance import trail

    signed = [
        e
        for e in trail.events(objective=f"{PREFIX}{stage}", event_types=[EVENT], url=url)
        if e.subject.objective_hash == model_sha256 and e.evidence.get("model_sha256") == model_sha256
    ]
    of_run = [e for e in signed if run_id is not None and e.evidence.get("run_id") == run_id]
    return (of_run or signed or [None])[-1]


def context_of(event: Event) -> dict[str, Any]:
    """The run context an event signed: ``run_id``, ``git_commit``, ``git_dirty`` (a bool) and ``trained_by``."""
    return {
        "run_id": event.evidence["run_id"],
        "git_commit": event.evidence["git_commit"],
        "git_dirty": {"True": True, "False": False}.get(event.evidence["git_dirty"]),
        "trained_by": event.evidence["trained_by"],
    }


def signed_run_context(stage: str, model_sha256: str, model_path: str) -> dict[str, Any]:
    """The run context the training stage signed for this model (its newest ``model_trained`` event), checked
    against the MLflow run's tags now; a missing event or a changed tag is a ConfigError naming both values."""
    from governance.registry import client, registry_errors

    event = trained_event(stage, model_sha256)
    if event is None:
        raise ConfigError(
            f"{model_path}: no signed {EVENT} event of stage {stage} for model {model_sha256[:12]}… in the audit "
            f"trail (the run context is believed only as the training stage signed it); re-run the stage "
            f"(dvc repro -f {stage})"
        )
    run_id = event.evidence["run_id"]
    with registry_errors(f"reading run {run_id} of {stage}"):
        tags = client().get_run(run_id).data.tags
    for key, tag in SIGNED_TAGS.items():
        if tags.get(tag) != event.evidence[key]:
            raise ConfigError(
                f"MLflow run {run_id} ({stage}): tag {tag} is {tags.get(tag)!r}, but the training stage signed "
                f"{event.evidence[key]!r} (trail event #{event.seq}); the run's tags were changed after training, "
                "and nothing is evaluated or registered under them"
            )
    return context_of(event)
