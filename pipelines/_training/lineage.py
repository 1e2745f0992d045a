"""What a trained model's provenance is made of (computed before training) and how it reaches the run.

:func:`training_lineage` gathers the inputs' hashes and gate decisions, the
parent model, params, policies and environment; :func:`log_lineage_to_run`
writes them to the stage's MLflow run as params, tags, ``lineage.json`` and
the gate decisions themselves, so ``govern report`` needs only the tracking
server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.hardware import hardware_facts
from governance.identity import current_user
from governance.lineage import (
    environment,
    git_state,
    lock_file_hash,
    policy_versions,
    read_manifest,
    sha256_file,
    sha256_json,
)
from governance.mlflow_run import MlflowRun
from governance.registry import flatten
from governance.training_data import GatedData

if TYPE_CHECKING:
    from pipelines._training.launch import Topology


def training_lineage(
    *,
    stage: str,
    params: dict[str, Any],
    data: GatedData,
    decision_paths: list[str | Path],
    parent_dir: str | Path,
    parent_sha256: str,
    topology: Topology | None = None,
) -> dict[str, Any]:
    """Everything a trained model's provenance is made of, computed before training.

    Hash what you train: the datasets' hashes and their records' sources and licences come from the buffers
    ``data`` read once and trains on (:func:`governance.training_data.read_gated_data`), never from the paths read
    again, and the parent's hash is the one the stage recomputed from its files (``parent_sha256``).

    ``distributed`` says how many processes trained it, how (accelerate's
    distributed type) and under which accelerate config (its SHA-256): the
    process count shapes the global batch, so it is part of the model's content.
    """
    parent = read_manifest(parent_dir)
    git = git_state()
    distributed = {k: v for k, v in topology.to_dict().items() if k != "rank"} if topology else None
    return {
        "provenance": dataset_provenance(data),
        "stage": stage,
        "distributed": distributed,
        "params": params,
        "params_sha256": sha256_json(params),
        "datasets": data.refs(),
        "gates": [
            {
                "gate": d.gate,
                "stage": d.stage,
                "passed": d.passed,
                "policy_version": d.policy_version,
                "counts": d.counts,
                "decision": str(p),
                "decision_sha256": sha256_file(p),
            }
            for d, p in zip(data.decisions, decision_paths, strict=True)
        ],
        "parent": {
            "stage": parent.get("stage"),
            "dir": str(parent_dir),
            "name_or_path": parent.get("name_or_path", parent.get("base_name_or_path", str(parent_dir))),
            "model_sha256": parent_sha256,
            "license": parent.get("license"),
        },
        # The base model's identity, licence and content hash, carried down from the base_model stage's manifest
        "base": parent.get(
            "base",
            {
                "name_or_path": parent.get("name_or_path"),
                "license": parent.get("license"),
                "model_sha256": parent.get("model_sha256"),
            },
        ),
        "trained_by": current_user(),
        "git_commit": git["commit"],
        "git_dirty": git["dirty"],
        "lock_sha256": lock_file_hash(),
        "policies": policy_versions(),
        "environment": {**environment(), **hardware_facts()},
    }


def dataset_provenance(data: GatedData) -> dict[str, Any]:
    """Where each gated training file came from: the prepared file and raw inputs, rows,
    curation steps, and the sources and licences its records declare (counted in the buffer trained on)."""
    from collections import Counter

    prepared_by_name: dict[str, str] = {}
    for decision in data.decisions:
        for ref in decision.details.get("inputs", []) or []:
            prepared_by_name[Path(ref["path"]).name] = ref["path"]
    out: dict[str, Any] = {}
    for hashed in data.files.values():
        file = hashed.path
        sources: Counter[str] = Counter()
        licenses: Counter[str] = Counter()
        for record in hashed.records():
            sources[str(record.data.get("source", "not recorded"))] += 1
            licenses[str(record.data.get("license", "not recorded"))] += 1
        entry: dict[str, Any] = {"sources": dict(sources), "licenses": dict(licenses)}
        prepared = prepared_by_name.get(Path(file).name)
        manifest_path = Path(prepared).parent / "manifest.json" if prepared else None
        if manifest_path is not None and manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text())
            entry.update(
                prepared_from=prepared,
                stage=manifest.get("stage"),
                inputs=manifest.get("inputs"),
                rows=manifest.get("rows"),
                curation=manifest.get("curation"),
                format=manifest.get("format"),
                card=manifest.get("card"),
            )
        out[str(file)] = entry
    return out


def log_lineage_to_run(run: MlflowRun, lineage: dict[str, Any]) -> None:
    """Log lineage as params (``pipeline.*``) and tags (``lineage.*``) of the stage's run.

    Params and tags go in one batch (MLflow splits it into requests of 100 of each):
    every request re-reads the run from the store, so fewer requests cost less.
    """
    params = flatten("pipeline", lineage["params"])
    params["pipeline.params_sha256"] = lineage["params_sha256"]
    tags = {
        "lineage.git_commit": lineage["git_commit"],
        "lineage.git_dirty": str(lineage["git_dirty"]),
        "lineage.trained_by": str(lineage["trained_by"]),
        "lineage.lock_sha256": lineage["lock_sha256"],
        "lineage.parent_model_sha256": str(lineage["parent"]["model_sha256"]),
        "lineage.gates": ",".join(f"{g['stage']}={'passed' if g['passed'] else 'denied'}" for g in lineage["gates"]),
    }
    tags.update({f"lineage.distributed.{k}": str(v) for k, v in (lineage.get("distributed") or {}).items()})
    tags.update({f"lineage.data.{Path(p).name}.md5": ref["md5"] for p, ref in lineage["datasets"].items()})
    tags.update({f"lineage.policy.{Path(p).stem}": ref["version"] for p, ref in lineage["policies"].items()})
    tags.update({f"env.{k}": str(v) for k, v in lineage["environment"].items()})
    run.log(params=params, tags=tags)
    run.log_dict(lineage, "lineage.json")
    # The gate decisions (and PII findings beside them) travel with the run, so a
    # reviewer's `govern report` needs only the tracking server, not this checkout.
    for gate in lineage["gates"]:
        decision = Path(gate["decision"])
        run.log_artifact(decision, artifact_path=f"gates/{gate['stage']}")
        findings = decision.with_name("findings.json")
        if findings.is_file():
            run.log_artifact(findings, artifact_path=f"gates/{gate['stage']}")
