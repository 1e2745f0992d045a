"""Collect the recorded facts of one model version, from MLflow and the audit trail only.

Nothing here reads the DVC checkout: a reviewer's laptop with
``MLFLOW_TRACKING_URI`` (and the audit-trail URL) can build the same report as
the pipeline. Sources, in the order they are read:

* the registered version (tags ``lineage.*``, ``governance.*``, ``metric.*``,
  description, aliases) and its training run (params ``pipeline.*`` and TRL's
  logged arguments, tags ``env.*``, metrics and their histories);
* the run's artifacts: ``lineage.json``, ``gates/<stage>/decision.json`` (and
  ``findings.json``), ``evaluation/*.json``, ``model/manifest.json`` and
  ``model/config.json``;
* the version holding the ``production`` alias, for comparison;
* the audit trail (:mod:`governance.report.audit`), including the signed
  ``gate_decision``/``eval_decision`` events that published the decision
  files: a decision artifact (or ``lineage.json``, both editable by anyone
  with MLflow access) is believed only where such an event matches its bytes.

A fact that is not recorded is never filled in: its section gets a *gap*
naming what is missing and where it should have come from, and the verdict
(:mod:`governance.report.verdict`) counts it as missing evidence.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from governance import registry, registry_view
from governance.approvals import approvals_policy_path, policy_dir
from governance.errors import ConfigError, GovernanceError
from governance.lineage import sha256_file
from governance.report.audit import audit_facts
from governance.report.compliance import load_compliance_map
from governance.report.documentation import model_documentation
from governance.report.monitoring import monitoring_facts, monitoring_plan
from governance.report.policy import ReportPolicy, load_report_policy
from governance.report.provenance import provenance_facts
from governance.report.safety import safety_summary

log = logging.getLogger(__name__)

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

#: Training-curve metrics, in the order they are plotted; a key matches exactly
#: or, for reward families, by prefix.
CURVE_METRICS = ("loss", "reward", "rewards/", "kl", "mean_token_accuracy", "learning_rate")

#: Hardware and library keys of the recorded environment, shown in this order.
ENV_KEYS = ("accelerator", "cuda_available", "cpu_count", "platform", "python", "torch", "transformers", "trl", "peft")
#: Hardware keys recorded at training time (governance.hardware), shown and used for the energy estimate.
HARDWARE_KEYS = ("cpu_model", "cpu_logical_cores", "gpu_model", "gpu_count", "gpu_power_limit_w", "gpu_power_source")


@dataclass
class ReportFacts:
    """Everything the report says, each section a plain dict; ``gaps`` lists what is not recorded."""

    name: str
    version: str
    generated_at: str
    source: dict[str, Any]
    identity: dict[str, Any]
    training: dict[str, Any]
    data: dict[str, Any]
    objectives: dict[str, Any]
    evaluation: dict[str, Any]
    approvals: dict[str, Any]
    integrity: dict[str, Any]
    operations: dict[str, Any]
    compliance: list[dict[str, str]]
    gaps: dict[str, list[str]] = field(default_factory=dict)
    #: The EU GPAI Model Documentation Form (governance.report.documentation), written as model_documentation.json
    documentation: dict[str, Any] = field(default_factory=dict)
    #: After deployment (governance.report.monitoring): windows checked by `govern monitor`, incidents
    monitoring: dict[str, Any] = field(default_factory=dict)

    def gap(self, section: str, message: str) -> None:
        self.gaps.setdefault(section, []).append(message)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- helpers


def iso_ms(timestamp_ms: int | None) -> str | None:
    """An MLflow millisecond timestamp as ISO-8601 UTC (seconds)."""
    if not timestamp_ms:
        return None
    return dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC).isoformat(timespec="seconds")


def redact_uri(uri: str) -> str:
    """A tracking/audit URI without credentials (``user:password@`` is dropped)."""
    parts = urlsplit(uri)
    if parts.password is None and parts.username is None:
        return uri
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def flat(prefix: str, value: Any) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``, keeping leaf values (lists stay lists)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flat(f"{prefix}.{key}" if prefix else str(key), item))
        return out
    return {prefix: value}


class RunArtifacts:
    """Read-only access to one run's artifacts.

    A run whose artifacts are a local folder (the embedded store's
    ``mlartifacts/``, read beside a copied store: ``registry.rebase_artifact_uri``)
    is read in place, never through MLflow; any other artifact store is
    downloaded once into a scratch folder with ``MlflowClient``.
    """

    def __init__(self, run_id: str, artifact_uri: str, scratch: Path) -> None:
        self.run_id, self.scratch = run_id, scratch
        self.local_root = _local_folder(registry.rebase_artifact_uri(artifact_uri))
        self._fetched: dict[str, Path | None] = {}

    def fetch(self, path: str) -> Path | None:
        """Local path of an artifact file or folder, or None when the run has no such artifact."""
        if path in self._fetched:
            return self._fetched[path]
        if self.local_root is not None:
            local: Path | None = (self.local_root / path).resolve()
            # Only inside the run's folder (a recorded gate folder never points elsewhere)
            if not (local.is_relative_to(self.local_root) and local.exists()):
                log.info("run %s has no artifact %s", self.run_id, path)
                local = None
            self._fetched[path] = local
            return local
        from mlflow.exceptions import MlflowException

        try:
            downloaded = registry.client().download_artifacts(self.run_id, path, str(self.scratch))
        except (MlflowException, OSError) as exc:
            log.info("run %s has no artifact %s (%s)", self.run_id, path, exc.__class__.__name__)
            downloaded = None
        self._fetched[path] = Path(downloaded) if downloaded else None
        return self._fetched[path]

    def json(self, path: str) -> Any:
        """Parsed JSON artifact, None when absent; a corrupt one is a DataError naming it."""
        local = self.fetch(path)
        if local is None or not local.is_file():
            return None
        try:
            return json.loads(local.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            from governance.errors import DataError

            raise DataError(f"run {self.run_id}: artifact {path} is not valid JSON") from None

    def sha256(self, path: str) -> str | None:
        local = self.fetch(path)
        return sha256_file(local) if local is not None and local.is_file() else None

    def children(self, folder: str) -> list[str]:
        """Names of the sub-folders/files directly under ``folder`` (empty when absent)."""
        local = self.fetch(folder)
        if local is None or not local.is_dir():
            return []
        return sorted(p.name for p in local.iterdir())


def _local_folder(artifact_uri: str) -> Path | None:
    """The folder of a ``file://`` (or plain path) artifact URI that exists here; None for a remote store."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(artifact_uri)
    if parsed.scheme not in ("file", ""):
        return None
    folder = Path(unquote(parsed.path)).resolve()
    return folder if folder.is_dir() else None


# --------------------------------------------------------------------------- sections


def _identity(facts: ReportFacts, version: Any, run: Any, lineage: dict, manifest: dict, config: dict | None) -> None:
    tags = version.tags or {}
    description = version.description or ""
    intended = tags.get("lineage.intended_use")
    intended_source = "version tag lineage.intended_use"
    if not intended:
        match = re.search(r"Intended use:\s*(.+)", description, re.S)
        intended = match.group(1).strip() if match else None
        intended_source = "version description"
    out_of_scope = tags.get("lineage.out_of_scope")
    base = lineage.get("base") or manifest.get("base") or {}
    parent = lineage.get("parent") or manifest.get("parent") or {}
    architecture = None
    if config:
        architecture = {
            "architectures": ", ".join(config.get("architectures") or []) or None,
            "model_type": config.get("model_type"),
            "hidden_size": config.get("hidden_size"),
            "num_hidden_layers": config.get("num_hidden_layers"),
            "num_attention_heads": config.get("num_attention_heads"),
            "vocab_size": config.get("vocab_size"),
            "max_position_embeddings": config.get("max_position_embeddings"),
            "torch_dtype": config.get("dtype") or config.get("torch_dtype"),
        }
    is_causal_lm = any(str(a).endswith("ForCausalLM") for a in (config or {}).get("architectures") or [])
    facts.identity = {
        "name": version.name,
        "version": str(version.version),
        "registered_at": iso_ms(version.creation_timestamp),
        "registered_by": tags.get("lineage.registered_by"),
        "description": description,
        "approval_status": tags.get(registry.TAG_APPROVAL_STATUS),
        "eval_status": tags.get("governance.eval_status"),
        "aliases": sorted(getattr(version, "aliases", None) or []),
        "risk_tier": tags.get("lineage.risk_tier"),
        "intended_use": intended,
        "intended_use_source": intended_source if intended else None,
        "out_of_scope": out_of_scope,
        "base_model": base.get("name_or_path") or tags.get("lineage.base_model"),
        "base_license": base.get("license"),
        # The base model's content hash: recorded in lineage.json base, or the parent's when the parent is the base
        "base_model_sha256": base.get("model_sha256")
        or (parent.get("model_sha256") if parent.get("stage") == "base_model" else None),
        "parent_model": tags.get("lineage.parent_model") or parent.get("name_or_path"),
        "parent_model_sha256": parent.get("model_sha256"),
        "model_sha256": tags.get("lineage.model_sha256"),
        "method": tags.get("lineage.method") or manifest.get("method"),
        "architecture": architecture,
        "num_parameters": manifest.get("num_parameters"),
        "modality": "text in, text out (causal language model, chat template)" if is_causal_lm else None,
        "run_id": version.run_id,
        # Where a reviewer fetches it: the registry's own URI, never the registering machine's folder
        "source_uri": portable_source(version),
    }
    if not intended:
        facts.gap(
            "identity", "intended use: not recorded (register params intended_use → version tag lineage.intended_use)"
        )
    if not out_of_scope:
        facts.gap("identity", "out-of-scope uses: not recorded (version tag lineage.out_of_scope)")
    if not facts.identity["risk_tier"]:
        facts.gap("identity", "risk tier: not recorded (version tag lineage.risk_tier)")
    if not base.get("license"):
        facts.gap("identity", "base model licence: not recorded (lineage.json base.license)")
    if architecture is None:
        facts.gap("identity", "architecture: not recorded (artifact model/config.json)")
    if facts.identity["num_parameters"] is None:
        facts.gap("identity", "number of parameters: not recorded (model/manifest.json num_parameters)")


def portable_source(version: Any) -> str | None:
    """``runs:/<run>/<path>`` for a version registered from a local artifact folder (another machine's path)."""
    source = str(version.source or "")
    if not source or source.startswith(("runs:/", "models:/")) or not version.run_id:
        return source or None
    marker = f"{version.run_id}/artifacts/"
    if marker in source:
        return f"runs:/{version.run_id}/{source.split(marker, 1)[1]}"
    return source if "://" in source and not source.startswith("file:") else f"models:/{version.name}/{version.version}"


def _training(facts: ReportFacts, run: Any, lineage: dict, manifest: dict) -> None:
    params = lineage.get("params") or {}
    pipeline_params = {k.removeprefix("pipeline."): v for k, v in run.data.params.items() if k.startswith("pipeline.")}
    logged_args = {k: v for k, v in run.data.params.items() if not k.startswith("pipeline.")}
    environment = lineage.get("environment") or {
        k.removeprefix("env."): v for k, v in run.data.tags.items() if k.startswith("env.")
    }
    adapter = manifest.get("adapter") or params.get("adapter")
    metrics = run.data.metrics
    curves: dict[str, list[list[float]]] = {}
    for key in sorted(metrics):
        if not any(key == m or (m.endswith("/") and key.startswith(m)) for m in CURVE_METRICS) or key.endswith("/std"):
            continue
        history = registry_view.metric_history(run.info.run_id, key)
        if len(history) > 1:
            curves[key] = [
                [float(m.step), float(m.value)] for m in sorted(history, key=lambda m: (m.step, m.timestamp))
            ]
    curve_source = "MLflow metric history (TRL's MLflow callback)"
    if "loss" not in curves and manifest.get("train_history"):
        rows = [r for r in manifest["train_history"] if "loss" in r and "step" in r]
        if rows:
            curves["loss"] = [[float(r["step"]), float(r["loss"])] for r in rows]
            curve_source = "model/manifest.json train_history"
    ordered = sorted(curves, key=lambda k: next(i for i, m in enumerate(CURVE_METRICS) if k == m or k.startswith(m)))
    facts.training = {
        "method": manifest.get("method") or (run.data.tags or {}).get("method"),
        "stage": lineage.get("stage") or run.data.tags.get("stage"),
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "run_status": run.info.status,
        "started_at": iso_ms(run.info.start_time),
        "ended_at": iso_ms(run.info.end_time),
        "trained_by": lineage.get("trained_by") or manifest.get("trained_by"),
        "adapter": adapter,
        "trl": params.get("trl") or {},
        "stage_params": {k: v for k, v in flat("", params).items() if not k.startswith(("trl.", "adapter."))},
        "pipeline_params_logged": len(pipeline_params),
        "logged_args": dict(sorted(logged_args.items())),
        "seed": manifest.get("seed", (params.get("trl") or {}).get("seed")),
        "global_steps": manifest.get("global_steps"),
        "tokens_seen": manifest.get("tokens_seen") or metrics.get("num_tokens"),
        "wall_seconds": manifest.get("wall_seconds", metrics.get("wall_seconds")),
        "train_runtime": metrics.get("train_runtime"),
        "total_flos": metrics.get("total_flos"),
        "train_loss": metrics.get("train_loss"),
        "environment": {k: environment.get(k) for k in (*ENV_KEYS, *HARDWARE_KEYS) if k in environment},
        "trainer": manifest.get("trainer"),
        "git_commit": lineage.get("git_commit"),
        "git_dirty": lineage.get("git_dirty"),
        "lock_sha256": lineage.get("lock_sha256"),
        "params_sha256": lineage.get("params_sha256"),
        # SFT: how the loss was kept on the answers (strategy, the training template's hash and source)
        "loss_masking": lineage.get("loss_masking") or manifest.get("loss_masking"),
        "curves": {k: curves[k] for k in ordered},
        "curve_source": curve_source if curves else None,
    }
    if not params:
        facts.gap("training", "hyperparameters: not recorded (lineage.json params)")
    if facts.training["global_steps"] is None:
        facts.gap("training", "optimizer steps: not recorded (model/manifest.json global_steps)")
    if facts.training["tokens_seen"] is None:
        facts.gap("training", "tokens seen: not recorded (TRL's num_tokens metric or manifest tokens_seen)")
    if not environment:
        facts.gap("training", "hardware and library versions: not recorded (lineage.json environment)")
    if not lineage.get("git_commit") or lineage.get("git_commit") == "unknown":
        facts.gap("training", "code commit: not recorded (lineage.json git_commit)")
    if not lineage.get("lock_sha256"):
        facts.gap("training", "environment lock-file hash: not recorded (lineage.json lock_sha256)")
    if "loss" not in curves:
        facts.gap("training", "training loss curve: not recorded (metric history 'loss')")
    if facts.training["stage"] == "train_sft" and not facts.training["loss_masking"]:
        facts.gap("training", "loss-masking strategy: not recorded (lineage.json loss_masking)")


def _gate_stage_folder(gate: dict[str, Any]) -> str:
    return f"gates/{gate.get('stage')}"


#: Masked examples listed per PII gate in the report (findings.json may list more).
MAX_PII_EXAMPLES = 20


def pii_summary(stage: str | None, decision: dict[str, Any], findings: dict[str, Any] | None) -> dict[str, Any]:
    """One PII gate as the report shows it: scanner, counts by entity type, redactions, masked examples.

    Reads only counts, entity types, locations and the masked shapes/snippets
    that ``findings.json`` holds; the gate never records raw values.
    """
    details = decision.get("details") or {}
    scan = (findings or {}).get("scan") or {}
    rescan = (findings or {}).get("rescan") or {}
    scanner = details.get("scanner") or (findings or {}).get("scanner") or {}
    by_entity = scan.get("by_entity") or {}
    rescanned = rescan.get("by_entity") or {}
    entities = []
    for entity, rule in (details.get("entities") or {}).items():
        found = by_entity.get(entity) or {}
        entities.append(
            {
                "entity": entity,
                "rule_id": rule.get("rule_id"),
                "action": rule.get("action"),
                "score_threshold": rule.get("score_threshold"),
                "records": rule.get("records"),
                "findings": found.get("findings"),
                "after_redaction": (rescanned.get(entity) or {}).get("findings") if rescan else None,
            }
        )
    redaction = details.get("redaction") or {}
    return {
        "stage": stage,
        "passed": decision.get("passed"),
        "policy_path": decision.get("policy_path"),
        "policy_version": decision.get("policy_version"),
        "policy_sha256": redaction.get("policy_sha256") or (findings or {}).get("policy_sha256"),
        "nlp_engine": scanner.get("nlp_engine"),
        "nlp_model": scanner.get("nlp_model"),
        "nlp_model_version": scanner.get("nlp_model_version"),
        "fallback_reason": scanner.get("fallback_reason"),
        "recognizers": sorted({r.get("name") for r in scanner.get("recognizers") or [] if r.get("name")}),
        "entities_not_scanned": scanner.get("entities_not_scanned") or details.get("entities_disabled") or {},
        "entities": entities,
        "operator": redaction.get("operator"),
        "records_redacted": redaction.get("records_redacted"),
        "rescan": details.get("rescan"),
        "files": scan.get("files") or details.get("inputs") or [],
        "by_field": scan.get("by_field") or {},
        "findings_total": scan.get("findings_total"),
        "findings_listed": scan.get("findings_listed"),
        "examples": [
            {k: item.get(k) for k in ("file", "line", "field", "entity", "action", "masked", "snippet")}
            for item in (scan.get("findings") or [])[:MAX_PII_EXAMPLES]
        ],
        "findings_recorded": findings is not None,
    }


def from_card(counts: Any, card: dict | None, key: str) -> Any:
    """Per-record counts (``{"cc-by-4.0": 451}``) with records "not recorded" taking the dataset card's value.

    The prepare stage counts a per-record field (source, licence); a record without one is governed by
    the dataset's card, so the datasets table and the card never disagree.
    """
    declared = (card or {}).get(key)
    if not isinstance(counts, dict) or not declared:
        return counts
    out: dict[str, Any] = {}
    for value, n in counts.items():
        label = declared if value == "not recorded" else value
        out[label] = out.get(label, 0) + n if isinstance(n, int) else n
    return out


def curation_of_file(steps: Any, records: int | None, path: str) -> Any:
    """The prepare stage's steps, ending with this file's share where the last step split the rows.

    The steps count the whole raw file (500 rows out of the split); the train file holds only its share,
    so a row is added saying how many rows this file kept and how many went to the other split files.
    """
    if not isinstance(steps, list) or not steps or records is None or not isinstance(steps[-1], dict):
        return steps
    last = steps[-1]
    if not str(last.get("step", "")).startswith("split") or last.get("rows_out") in (None, records):
        return steps
    share = {
        "step": f"this file's share of the split: {Path(path).name} keeps {records} rows, "
        f"{last['rows_out'] - records} are in the other split file(s)",
        "rows_in": last["rows_out"],
        "dropped": 0,
        "changed": 0,
        "rows_out": records,
        "to_other_files": last["rows_out"] - records,
    }
    return [*steps, share]


def _data(facts: ReportFacts, artifacts: RunArtifacts, lineage: dict, policy: ReportPolicy | None) -> None:
    datasets = lineage.get("datasets") or {}
    provenance = lineage.get("provenance") or {}
    gates_out, pii, validation = [], [], []
    records_by_path: dict[str, int] = {}
    for gate in lineage.get("gates") or []:
        folder = _gate_stage_folder(gate)
        decision = artifacts.json(f"{folder}/decision.json")
        digest = artifacts.sha256(f"{folder}/decision.json")
        entry = {
            "gate": gate.get("gate"),
            "stage": gate.get("stage"),
            "passed": gate.get("passed"),
            "policy_version": gate.get("policy_version"),
            "counts": gate.get("counts") or {},
            "lineage_sha256": gate.get("decision_sha256"),
            "artifact_sha256": digest,
            "artifact": f"{folder}/decision.json",
            "integrity": "missing"
            if digest is None
            else ("ok" if digest == gate.get("decision_sha256") else "mismatch"),
            # Whether a signed trail event published the decision training used: set from the audit trail
            "signed": None,
            "signed_event": None,
            "decision": decision,
            "covers": {},
        }
        if decision is not None:
            entry["policy_path"] = decision.get("policy_path")
            entry["decided_at"] = decision.get("decided_at")
            entry["violations"] = decision.get("violations") or []
            entry["covers"] = {ref.get("path"): ref.get("sha256") for ref in decision.get("datasets") or []}
            for ref in decision.get("datasets") or []:
                if ref.get("records") is not None:
                    records_by_path.setdefault(ref.get("path"), ref["records"])
            if decision.get("gate") == "pii":
                findings = artifacts.json(f"{folder}/findings.json")
                pii.append(pii_summary(gate.get("stage"), decision, findings))
                if findings is None:
                    facts.gap("data", f"PII findings report {folder}/findings.json: not logged to the training run")
            elif decision.get("gate") == "validation":
                validation.append({"stage": gate.get("stage"), "decision": decision})
        else:
            facts.gap("data", f"gate decision {folder}/decision.json: not logged to the training run")
        gates_out.append(entry)
    rows = []
    for path, ref in datasets.items():
        origin = provenance.get(path) or {}
        rows.append(
            {
                "path": path,
                "sha256": ref.get("sha256"),
                "md5": ref.get("md5"),
                "records": records_by_path.get(path),
                "sources": from_card(origin.get("sources"), origin.get("card"), "source"),
                "licenses": from_card(origin.get("licenses"), origin.get("card"), "license"),
                "curation": curation_of_file(origin.get("curation"), records_by_path.get(path), path),
                "raw_input": origin.get("inputs"),
                "format": origin.get("format"),
                "card": origin.get("card"),
                "gates": [
                    {"gate": g["gate"], "stage": g["stage"], "covered": g["covers"].get(path) == ref.get("sha256")}
                    for g in gates_out
                ],
            }
        )
    facts.data = {
        "datasets": rows,
        "gates": gates_out,
        "pii": pii,
        "validation": validation,
        "annotation": next(
            (
                v["decision"].get("details", {}).get("annotation")
                for v in validation
                if v["decision"].get("details", {}).get("annotation")
            ),
            None,
        ),
        "required_gates": policy.evidence.required_gates if policy else None,
    }
    if not datasets:
        facts.gap("data", "training datasets: not recorded (lineage.json datasets)")
    if rows and not provenance:
        facts.gap(
            "data",
            "dataset source, licence and curation steps: not recorded in the lineage (lineage.json provenance, "
            "from the prepare stage's manifest)",
        )
    if not pii:
        facts.gap("data", "PII scan: no decision of gate 'pii' in the training run's lineage")
    if not validation:
        facts.gap("data", "validation: no decision of gate 'validation' in the training run's lineage")


def _objectives(facts: ReportFacts, version: Any, lineage: dict, manifest: dict, audit: dict) -> None:
    approvals = audit.get("objective_approvals") or {}
    # Pinned only where the hash is the reward model's weights the model manifest recorded: a reward
    # function merely *named* like the pinned entry still needs its approval
    weights = (manifest.get("reward_model") or {}).get("model_sha256") if isinstance(manifest, dict) else None
    functions = [
        {**fn, "approval": approvals.get(fn["sha256"])}
        | {"pinned": fn["name"] in PINNED_WEIGHTS and fn["sha256"] == weights}
        for fn in _reward_hashes(version, manifest)
    ]
    facts.objectives = {
        "functions": functions,
        "stage": lineage.get("stage"),
        "history": manifest.get("reward_history") or [],
        "source_available": audit.get("objectives_available", False),
    }
    if functions and not audit.get("objectives_available"):
        facts.gap(
            "objectives", f"objective approvals: not recorded ({audit.get('objectives_gap', 'no approval source')})"
        )


def _evaluation(facts: ReportFacts, version: Any, artifacts: RunArtifacts) -> None:
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
    gated = {r.get("metric") for r in results}
    production = None
    try:
        number = registry_view.alias_holder(version.name, "production")
        holder = None if number is None else registry_view.read_version(version.name, number)
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
        "decided_at": (decision or {}).get("decided_at"),
        "results": results,
        "violations": (decision or {}).get("violations") or [],
        "counts": (decision or {}).get("counts") or {},
        "other_metrics": {k: v for k, v in sorted(metrics.items()) if k not in gated},
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
        "signed": None,  # set from the audit trail (see _signed_decisions)
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
    """Each rule's one-line rationale, from the evaluation policy file when it is the version that decided."""
    if not decision or not results:
        return [None] * len(results)
    from governance.evaluation import load_eval_policy

    path = policy_dir() / Path(str(decision.get("policy_path") or "eval.yaml")).name
    try:
        policy = load_eval_policy(path) if path.is_file() else None
    except ConfigError:
        policy = None
    if policy is None or policy.version != decision.get("policy_version"):
        return [None] * len(results)
    method = (decision.get("details") or {}).get("method")
    safety = [*policy.safety.rules, *policy.safety.vs_parent] if policy.safety else []
    rules = {rule.id: rule.rationale for rule in [*policy.methods.get(method, []), *safety]}
    return [rules.get(row.get("rule_id")) for row in results]


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _operations(facts: ReportFacts, policy: ReportPolicy | None, policy_path: Path, lineage: dict) -> None:
    if policy is None:
        facts.operations = {"policy": None, "provider": None}
        facts.gap("operations", f"limitations, monitoring plan and retention: {policy_path} not available")
        return
    recorded = (lineage.get("policies") or {}).get(str(policy_path)) or next(
        (v for k, v in (lineage.get("policies") or {}).items() if Path(k).name == policy_path.name), None
    )
    current_sha = sha256_file(policy_path)
    facts.operations = {
        "policy": {"path": str(policy_path), "version": policy.version, "sha256": current_sha},
        "policy_at_training": recorded,
        "policy_changed_since_training": bool(recorded) and recorded.get("sha256") != current_sha,
        "limitations": [
            item.model_dump()
            for item in policy.limitations_for(facts.identity.get("method"), facts.identity.get("base_model"))
        ],
        "provider": policy.provider.model_dump(),
        "evidence_rules": policy.evidence.model_dump(),
        "monitoring": {**policy.monitoring.model_dump(), **_monitoring_plan(facts)},
        "retention": [r.model_dump() for r in policy.retention],
        "derived_limitations": _derived_limitations(facts),
    }
    if not recorded:
        facts.gap(
            "operations", f"{policy_path}: not in the training lineage's policy hashes (trained before it existed)"
        )


def _monitoring_plan(facts: ReportFacts) -> dict[str, Any]:
    """The signals of ``policies/monitoring.yaml`` (what ``govern monitor`` checks), or a gap naming the file."""
    path = policy_dir() / "monitoring.yaml"
    try:
        plan = monitoring_plan(path)
    except ConfigError as exc:
        facts.gap("operations", f"monitoring plan: {exc}")
        return {"policy": None, "signals": []}
    return {"policy": {k: plan[k] for k in ("path", "version", "sha256")}, "signals": plan["signals"]}


def pii_limitation(gate: dict[str, Any]) -> str:
    """What one PII gate's recorded scanner could and could not detect (never fixed text: NER may not have run)."""
    stage = gate.get("stage")
    recognizers = gate.get("recognizers") or []
    engine, model = gate.get("nlp_engine"), gate.get("nlp_model")
    if engine and engine != "no_op":
        version = f" {gate['nlp_model_version']}" if gate.get("nlp_model_version") else ""
        how = f"pattern recognizers and NER ({engine}{f', model {model}{version}' if model else ''})"
    else:
        why = f"; {gate['fallback_reason']}" if gate.get("fallback_reason") else ""
        how = (
            f"pattern recognizers only: no NER ran (NLP engine {engine or 'not recorded'}{why}), "
            "so names, places and other entities without a fixed pattern were not detected"
        )
    skipped = gate.get("entities_not_scanned") or {}
    not_scanned = f"; entity types not scanned: {', '.join(sorted(skipped))}" if skipped else ""
    return (
        f"Personal data in the {stage} data was detected by {len(recognizers)} recognizers, {how}{not_scanned}; "
        "recall is imperfect: residual personal data cannot be excluded, only reduced."
    )


def _derived_limitations(facts: ReportFacts) -> list[str]:
    """Limitations that follow from the recorded facts themselves (scanner, counts, warnings, waivers)."""
    out = [pii_limitation(gate) for gate in facts.data.get("pii") or []]
    evaluation = facts.evaluation
    for ref in evaluation.get("datasets") or []:
        if ref.get("records") is not None:
            out.append(f"Evaluated on {ref['records']} held-out records of {ref.get('path')}.")
    for gate in facts.data.get("gates") or []:
        for violation in gate.get("violations") or []:
            if violation.get("waived_by"):
                out.append(f"Rule {violation['rule_id']} was waived by {violation['waived_by']} ({gate['stage']}).")
            elif violation.get("severity") == "warn":
                out.append(f"Warning {violation['rule_id']} ({gate['stage']}): {violation.get('message')}")
    for violation in evaluation.get("violations") or []:
        if violation.get("severity") == "warn" or violation.get("waived_by"):
            out.append(f"Evaluation {violation['severity']} {violation['rule_id']}: {violation.get('message')}")
    return out


def _decision_keys(facts: ReportFacts) -> list[tuple[str, str, str, dict[str, str]]]:
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


def _signed_decisions(facts: ReportFacts, events: dict[str, dict[str, Any]] | None) -> None:
    """Mark each decision signed (a trail event published it), unsigned, or unknown (None: no trail).

    Where signed, whether the gate passed is the event's, not the lineage's.
    """
    if events is None:
        return
    for gate in facts.data.get("gates") or []:
        event = events.get(f"{gate.get('stage')}:{gate.get('lineage_sha256')}")
        gate["signed"], gate["signed_event"] = event is not None, event
        if event is not None:
            gate["passed"] = event.get("passed")
    evaluation = facts.evaluation
    digest = evaluation.get("decision_sha256") or evaluation.get("recorded_sha256")
    event = events.get(f"{evaluation.get('stage')}:{digest}")
    evaluation["signed"], evaluation["signed_event"] = event is not None, event


# --------------------------------------------------------------------------- entry point


def collect_facts(
    name: str,
    version: str | int,
    *,
    report_policy: str | Path | None = None,
    approvals_policy: str | Path | None = None,
    audit_url: str | None = None,
) -> ReportFacts:
    """Read every recorded fact about ``name`` v``version`` into a :class:`ReportFacts`.

    Raises :class:`~governance.errors.ConfigError` when the version is not
    registered and :class:`~governance.errors.RegistryError` when the tracking
    server cannot be reached; everything else that is absent becomes a gap.
    """
    model_version = registry_view.read_version(name, version)
    if not model_version.run_id:
        raise ConfigError(f"{name} v{version}: registered without a training run; nothing to report")
    run = registry_view.read_run(model_version.run_id)
    report_policy = report_policy or policy_dir() / "report.yaml"
    approvals_policy = approvals_policy or approvals_policy_path()
    policy_path = Path(report_policy)
    policy: ReportPolicy | None = load_report_policy(policy_path) if policy_path.is_file() else None
    facts = ReportFacts(
        name=model_version.name,
        version=str(model_version.version),
        generated_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        source={"tracking_uri": redact_uri(registry.tracking_uri())},
        identity={},
        training={},
        data={},
        objectives={},
        evaluation={},
        approvals={},
        integrity={},
        operations={},
        compliance=load_compliance_map().rows(),
    )
    with (
        tempfile.TemporaryDirectory(prefix="govern-report-") as scratch,
        registry.registry_errors(f"reading artifacts of run {model_version.run_id}"),
    ):
        artifacts = RunArtifacts(model_version.run_id, run.info.artifact_uri, Path(scratch))
        lineage = artifacts.json("lineage.json") or {}
        manifest = artifacts.json("model/manifest.json") or {}
        config = artifacts.json("model/config.json")
        if not lineage:
            facts.gap("training", "lineage: artifact lineage.json missing from the training run")
        if not manifest:
            facts.gap("training", "model manifest: artifact model/manifest.json missing from the training run")
        _identity(facts, model_version, run, lineage, manifest, config)
        _training(facts, run, lineage, manifest)
        _data(facts, artifacts, lineage, policy)
        _evaluation(facts, model_version, artifacts)
        audit = audit_facts(
            model_version.name,
            str(model_version.version),
            risk_tier=facts.identity.get("risk_tier"),
            approvals_policy=Path(approvals_policy),
            reward_hashes={f["name"]: f["sha256"] for f in _reward_hashes(model_version, manifest)},
            stage=lineage.get("stage") or run.data.tags.get("stage"),
            audit_url=audit_url,
            decisions=_decision_keys(facts),
        )
        _signed_decisions(facts, audit["decision_events"])
        _objectives(facts, model_version, lineage, manifest, audit)
        facts.approvals = audit["approvals"]
        # The trail's status, never the version's governance.approval_status tag (anyone with MLflow access sets it)
        facts.identity["approval_status"] = audit["approvals"]["status"] or "not recorded in the audit trail"
        facts.integrity = {
            "chain": audit["chain"],
            "model_sha256": {
                "version_tag": (model_version.tags or {}).get("lineage.model_sha256"),
                "manifest": manifest.get("model_sha256"),
                "evaluated": facts.evaluation.get("evaluated_model_sha256"),
            },
            "gate_decisions": [
                {
                    "artifact": g["artifact"],
                    "integrity": g["integrity"],
                    "sha256": g["artifact_sha256"],
                    "signed": g["signed"],
                }
                for g in facts.data["gates"]
            ],
            "eval_decision": facts.evaluation["integrity"],
            "eval_decision_signed": facts.evaluation["signed"],
            "audit_url": audit.get("audit_url"),
        }
        for section, messages in audit.get("gaps", {}).items():
            for message in messages:
                facts.gap(section, message)
        _operations(facts, policy, policy_path, lineage)
        # Reading a report never creates a trail that is not there
        facts.monitoring = (
            monitoring_facts(facts.name, facts.version, audit_url=audit_url)
            if audit["chain"]["available"]
            else {"checks": [], "incidents": [], "blocking_incidents": []}
        )
        # Signatures, provenance statement and reproduction, verified now as `govern verify` does
        facts.integrity["provenance"] = provenance_facts(
            facts.name,
            facts.version,
            facts.approvals.get("reproductions") or [],
            trail_problem=None if audit["chain"]["available"] else "the audit trail was not available",
        )
        facts.documentation = model_documentation(facts)
        energy = facts.documentation["energy"]["training_energy_kwh"]
        if energy["value"] is None:
            facts.gap("training", f"training energy: {energy['not_recorded']}")
    facts.source["report_policy"] = facts.operations.get("policy")
    facts.source["audit_url"] = audit.get("audit_url")
    return facts


#: Reward entries of a training lineage that identify weights rather than name an objective: RLHF records
#: the reward model's weights hash (``reward_model``) beside its recipe (``reward_model_recipe``), and the
#: recipe is what policies/objectives.yaml approves; the weights are pinned by the stage's hash check.
PINNED_WEIGHTS = frozenset({"reward_model"})


def _reward_hashes(version: Any, manifest: dict) -> list[dict[str, str]]:
    hashes = dict(manifest.get("reward_functions") or {})
    for key, value in (version.tags or {}).items():
        match = re.fullmatch(r"lineage\.reward\.(.+)\.sha256", key)
        if match:
            hashes.setdefault(match.group(1), value)
    return [{"name": k, "sha256": v} for k, v in sorted(hashes.items())]
