"""Register a trained, evaluated model as a pending version in the MLflow Model Registry.

    dvc repro register_sft        # or: python -m pipelines.register sft

One registered model per method (``<project>-<method>``). The version carries
its lineage as tags — dataset hashes (as ``dvc.lock`` records them), gate and
evaluation decisions, training run, git commit, params and lock-file hashes,
parent model version — and starts ``pending``: nothing is promoted here. The
same content registered twice (weights, data, parent, training params: see
:func:`lineage_key`) yields the same version, never a duplicate. A
version whose evaluation was denied is registered too (the evidence matters),
marked ``eval_failed``.

Trust boundary: the manifests and decision files it reads are working-tree
files anyone with write access can edit. The gate decisions the model was
trained under and its evaluation decision are believed only through the
signed trail events their stages published (:mod:`governance.gates`): whether
the gates passed comes from those events, never from the training manifest.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from governance.gates import GateDecision, PublishedDecision, read_published_decision, require_recorded_gates
from governance.identity import current_user
from governance.lineage import read_manifest, sha256_json
from governance.policy import Strict
from governance.registry import METRIC_TAG_PREFIX, find_version_by_model_hash, register_version
from governance.training_data import require_required_gate_events
from pipelines._common import load_params, project_name, stage_main
from pipelines._training import with_run_context

if TYPE_CHECKING:
    from governance.trail import Event

log = logging.getLogger(__name__)


class RegisterParams(Strict):
    method: str
    model_dir: str
    eval_dir: str
    out_dir: str
    intended_use: str
    out_of_scope: str
    risk_tier: str


def version_tags(
    project: str, params: RegisterParams, trained: dict, gates: list[Event], evaluated: PublishedDecision
) -> dict[str, str]:
    """The lineage tags of a version: its training manifest, and its gate and eval decisions as the trail has them."""
    eval_decision = evaluated.decision
    parent = trained["parent"]
    parent_label = parent.get("name_or_path") or parent.get("dir")
    if parent.get("stage") not in (None, "base_model"):
        registered = find_version_by_model_hash(
            f"{project}-{parent['stage'].removeprefix('train_')}", parent["model_sha256"]
        )
        parent_label = f"{registered.name} v{registered.version}" if registered is not None else parent_label
    metrics = eval_decision.details.get("metrics", {})
    tags = {
        "lineage.method": params.method,
        "lineage.model_sha256": trained["model_sha256"],
        "lineage.training_run_id": trained["run_id"],
        "lineage.git_commit": trained["git_commit"],
        "lineage.git_dirty": str(trained["git_dirty"]),
        "lineage.params_sha256": trained["params_sha256"],
        "lineage.lock_sha256": trained["lock_sha256"],
        "lineage.parent_model": str(parent_label),
        "lineage.parent_model_sha256": str(parent.get("model_sha256")),
        "lineage.base_model": str(trained["base"].get("name_or_path")),
        "lineage.gate_decisions": "passed" if all(e.details.get("passed") is True for e in gates) else "failed",
        "lineage.gates": ",".join(
            f"{e.details.get('stage')}={'passed' if e.details.get('passed') is True else 'denied'}" for e in gates
        ),
        "lineage.eval_decision": "passed" if eval_decision.passed else "denied",
        "lineage.eval_decision_sha256": evaluated.sha256,
        "lineage.trained_by": str(trained.get("trained_by", "unknown")),
        "lineage.registered_by": current_user(),
        "lineage.risk_tier": params.risk_tier,
        "lineage.intended_use": params.intended_use,
        "lineage.out_of_scope": params.out_of_scope,
        "governance.eval_status": "passed" if eval_decision.passed else "eval_failed",
    }
    for path, ref in trained["datasets"].items():
        tags[f"lineage.data.{Path(path).name}.md5"] = ref["md5"]
        tags[f"lineage.data.{Path(path).name}.sha256"] = ref["sha256"]
    for name, digest in (trained.get("reward_functions") or {}).items():
        tags[f"lineage.reward.{name}.sha256"] = digest
    tags.update(
        {f"{METRIC_TAG_PREFIX}{k}": f"{float(v):.6g}" for k, v in metrics.items() if isinstance(v, int | float)}
    )
    return tags


def require_method(method: str, manifest: dict, evaluated: GateDecision, section: str) -> None:
    """Refuse a ``method`` in params that is not the one the model was trained with and its signed evaluation judged.

    The method names the registered model (``<project>-<method>``) and chooses its lowest approval tier
    (``min_tier_by_method``): ``-S register_rlhf.method=sft`` would register an RLHF policy where an SFT model's one
    approval suffices. Believed: the evaluation decision's method (its bytes are what a signed event published), and
    the training manifest's, which must agree.
    """
    from governance.errors import PolicyViolation

    judged = evaluated.details.get("method")
    trained = manifest.get("method")
    if method != judged or method != trained:
        raise PolicyViolation(
            f"params.yaml: register_{section}.method: {method}, but the model was trained as {trained} and its "
            f"evaluation ({evaluated.stage}) judged it under the {judged} rules; the registered name and the "
            "approval tier follow the method trained: set method to the one trained"
        )


def require_production_compared(name: str, evaluated: GateDecision, eval_dir: str | Path, model_sha256: str) -> None:
    """Refuse an evaluation whose regression rules compared the model with another production than ``name``'s now.

    The evaluate stage compares with the production version of ``<project>-<method>`` (the metrics its signed
    ``eval_decision`` recorded), and records what it compared with (``details.production``). Run under another
    ``project`` (``-S project=scratch``: no production there), every regression rule is "not applicable" and the
    version then registers under the real name, where production exists; likewise when production moved since.
    Believed: the decision's bytes (published by a signed event) and the trail's production metrics now. A model
    that is itself the production version (``model_sha256``: the same weights registered again) is its own baseline.
    """
    from governance.approvals import ALIAS_PRODUCTION, model_state, production_metrics
    from governance.errors import PolicyViolation

    compared = dict(evaluated.details.get("production") or {})
    production = dict(production_metrics(name) or {})
    if production:
        state = model_state(name)
        holder = state.alias_holder(ALIAS_PRODUCTION)
        registration = state.version(holder).registration if holder else None
        if registration is not None and registration.evidence.get("model_sha256") == model_sha256:
            return
    if compared != production:
        if not compared:
            what = f"with no production version, but {name} has one in production now"
        elif not production:
            what = f"with a production version, but {name} has none in production now"
        else:
            what = f"with other production metrics than those of {name}'s production version now"
        raise PolicyViolation(
            f"{Path(eval_dir) / 'decision.json'}: the evaluation's regression rules compared the model {what}: "
            "they were judged against another baseline (another project "
            "name, or production moved since); re-run the evaluate stage under this project: dvc repro"
        )


def lineage_key(method: str, trained: dict) -> str:
    """What makes a version the same version: its weights, data, parent and training params — by content.

    Never a timestamp, run id, commit or decision file: re-evaluating the same
    model, or retraining it to the same bytes, yields the existing version.
    """
    return sha256_json(
        {
            "method": method,
            "model_sha256": trained["model_sha256"],
            "datasets": {path: ref["sha256"] for path, ref in sorted(trained["datasets"].items())},
            "parent_model_sha256": trained["parent"].get("model_sha256"),
            "params_sha256": trained["params_sha256"],
            "reward_functions": dict(sorted((trained.get("reward_functions") or {}).items())),
        }
    )


def registration_status(name: str, version: str, evaluated: str) -> str:
    """The version's status as the trail has it, and why when this run's evaluation says otherwise.

    A failed evaluation stays on its version (failure is permanent, see governance.approvals.state): a
    re-run whose evaluation now passes records its ``eval_decision`` but does not unblock the version.
    """
    from governance.approvals import load_approvals_policy, version_state

    state = version_state(name, version)
    status = state.status(load_approvals_policy())
    if state.eval_status != evaluated:
        status += (
            f"; its evaluation was recorded {state.eval_status} and this run's is {evaluated}: a failed evaluation "
            "stays on its version, so only a new version (new weights, data or params) can be approved"
        )
    return status


@stage_main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        from governance.errors import ConfigError

        raise ConfigError(
            "usage: python -m pipelines.register <method>   (reads params.yaml section register_<method>)"
        )
    params = load_params(f"register_{argv[0]}", RegisterParams)
    project = project_name()
    manifest, evaluation = read_manifest(params.model_dir), read_manifest(params.eval_dir)
    # Only the evaluation of *this* model counts
    if evaluation.get("model_sha256") != manifest["model_sha256"]:
        from governance.errors import PolicyViolation

        raise PolicyViolation(
            f"{params.eval_dir}: evaluates model {str(evaluation.get('model_sha256'))[:12]}… but {params.model_dir} "
            f"holds {manifest['model_sha256'][:12]}…; re-run the evaluate stage"
        )
    # The decisions, only as their stages published them in the audit trail: the gates it was trained under,
    # and its evaluation (for this model)
    gates = require_recorded_gates(
        manifest.get("gates") or [],
        {path: ref["sha256"] for path, ref in (manifest.get("datasets") or {}).items()},
        source=str(Path(params.model_dir) / "manifest.json"),
    )
    evaluated = read_published_decision(
        Path(params.eval_dir) / "decision.json", require={"model_sha256": manifest["model_sha256"]}
    )
    # Every gate the reviewed policies/report.yaml requires, not only those the manifest lists
    require_required_gate_events(gates, str(Path(params.model_dir) / "manifest.json"))
    # The method names the registered model and sets its lowest approval tier: it is the one trained and evaluated
    require_method(params.method, manifest, evaluated.decision, argv[0])
    name = f"{project}-{params.method}"
    # Its regression rules compared it with this name's production, as it stands now
    require_production_compared(name, evaluated.decision, params.eval_dir, manifest["model_sha256"])
    trained = with_run_context(manifest)
    eval_decision = evaluated.decision
    tags = version_tags(project, params, trained, gates, evaluated)
    key = lineage_key(params.method, trained)
    description = (
        f"{params.method.upper()} model trained from {tags['lineage.parent_model']}. "
        f"Intended use: {params.intended_use}"
    )
    # Nothing is registered under an approvals policy other than the project's pin (it would become the version's)
    from governance.approvals import require_registration_policy, require_risk_tier

    in_force = require_registration_policy()
    # The tier comes from the reviewed policy (and the model's first registration); params may only raise it
    require_risk_tier(name, params.method, params.risk_tier, in_force.policy)
    # Register (idempotent by lineage) and record the registration in the audit trail
    version, created = register_version(
        name,
        run_id=trained["run_id"],
        artifact_path="model",
        lineage_key=key,
        tags=tags,
        description=description,
    )
    from governance.approvals import record_registration
    from governance.provenance import attest_registered_version
    from governance.provenance.version import lineage_commands

    # Sign the registered files and their provenance statement; the trail keeps the digests
    attestation = attest_registered_version(
        name,
        str(version.version),
        trained=trained,
        commands=lineage_commands(trained, also=(str(evaluation.get("stage")), f"register_{params.method}")),
        runs={"training": trained["run_id"]},
    )
    record_registration(
        name,
        str(version.version),
        actor=tags["lineage.registered_by"],
        evidence={
            **attestation,
            "model_sha256": trained["model_sha256"],
            "eval_decision_sha256": tags["lineage.eval_decision_sha256"],
            **{f"gate.{e.details.get('stage')}": e.subject.objective_hash for e in gates},
            **{k.removeprefix("lineage.data."): v for k, v in tags.items() if k.startswith("lineage.data.")},
        },
        gate_status=tags["lineage.gate_decisions"],
        eval_status=tags["governance.eval_status"],
        metrics=eval_decision.details.get("metrics", {}),  # the regression reference of later versions
    )
    out = Path(params.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # No lineage key here: it hashes the git commit, and this file is hashed in dvc.lock (the version's tag has it)
    registration = {"name": name, "version": str(version.version), "created": created}
    (out / "registration.json").write_text(json.dumps(registration, indent=2, sort_keys=True) + "\n")
    log.info("%s %s v%s (%s)", "registered" if created else "already registered", name, version.version,
             registration_status(name, str(version.version), tags["governance.eval_status"]))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
