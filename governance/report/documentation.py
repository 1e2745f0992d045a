"""The provider's Model Documentation Form (EU GPAI Code of Practice), from recorded facts only.

    govern report NAME VERSION --out DIR     # writes DIR/model_documentation.json beside the report

Whoever fine-tunes a general-purpose model becomes its provider and owes this
form. Each section (``general_information``, ``model_properties``,
``distribution``, ``use``, ``training_data``, ``compute``, ``energy``) holds
items ``{"value", "evidence"}``: the recorded value and the hash, id or record
that lets a reviewer check it. An item with no recorded fact has
``value: null`` and ``not_recorded`` saying what is missing and where it should
have come from; nothing is filled in from code defaults.

Energy is an estimate (the pipeline has no energy meter): recorded training
time × the hardware's power draw, and recorded FLOPs ÷ the hardware's peak
throughput × its power draw as a lower bound, with the power table in
``hardware_power.yaml`` beside this module. Where the GPU exposed its power
limit through NVML at training time, that measured limit replaces the table.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import Field

from governance.policy import PolicyFile, Strict, load_yaml, validate_model

POWER_TABLE = Path(__file__).with_name("hardware_power.yaml")
FORM = "EU GPAI Code of Practice — Model Documentation Form"
SECTIONS = (
    "general_information",
    "model_properties",
    "distribution",
    "use",
    "training_data",
    "compute",
    "energy",
)


class GpuPower(Strict):
    match: str
    watts: float = Field(gt=0)
    peak_flops: float = Field(gt=0)


class CpuPower(Strict):
    match: str
    watts_per_core: float = Field(gt=0)
    flops_per_core: float = Field(gt=0)


class DefaultCpuPower(Strict):
    watts_per_core: float = Field(gt=0)
    flops_per_core: float = Field(gt=0)


class PowerTable(PolicyFile):
    gpus: list[GpuPower]
    cpus: list[CpuPower]
    default_cpu: DefaultCpuPower


@cache
def load_power_table(path: str | Path = POWER_TABLE) -> PowerTable:
    return validate_model(load_yaml(path), PowerTable, str(path))


def item(value: Any, evidence: str | None, missing: str) -> dict[str, Any]:
    """One form item: the value and its evidence, or null and what is not recorded."""
    if value is None or value == "" or value == [] or value == {}:
        return {"value": None, "evidence": None, "not_recorded": missing}
    return {"value": value, "evidence": evidence}


# --------------------------------------------------------------------------- energy


def energy_estimate(
    *,
    environment: dict[str, Any],
    runtime_seconds: float | None,
    total_flos: float | None,
    table: PowerTable | None = None,
) -> dict[str, Any]:
    """Training energy in kWh from recorded time and FLOPs and the hardware's power draw (method stated)."""
    table = table or load_power_table()
    gpu, cpu = environment.get("gpu_model"), environment.get("cpu_model")
    cores = environment.get("cpu_logical_cores") or environment.get("cpu_count")
    if gpu:
        count = int(environment.get("gpu_count") or 1)
        entry = next((g for g in table.gpus if re.search(g.match, str(gpu), re.I)), None)
        measured = environment.get("gpu_power_limit_w")
        if entry is None and measured is None:
            return {"kwh": None, "not_recorded": f"no power figure for GPU {gpu!r} in {POWER_TABLE.name}"}
        watts = float(measured if measured is not None else entry.watts) * count
        peak = entry.peak_flops * count if entry else None
        source = (
            f"NVML power limit {measured} W x {count} GPU(s), measured at training time"
            if measured is not None
            else f"{POWER_TABLE.name} entry {entry.match!r}: {entry.watts} W x {count} GPU(s)"
        )
        device = f"{count} x {gpu}"
    else:
        if not cores:
            return {"kwh": None, "not_recorded": "CPU core count not recorded (lineage.json environment)"}
        entry_cpu = next((c for c in table.cpus if cpu and re.search(c.match, str(cpu), re.I)), None)
        per_core = entry_cpu or table.default_cpu
        watts = per_core.watts_per_core * int(cores)
        peak = per_core.flops_per_core * int(cores)
        label = f"entry {entry_cpu.match!r}" if entry_cpu else "default_cpu (CPU model not in the table)"
        source = f"{POWER_TABLE.name} {label}: {per_core.watts_per_core} W x {cores} logical cores"
        device = f"{cores} logical cores of {cpu or 'an unrecorded CPU model'}"
    by_time = runtime_seconds * watts / 3.6e6 if runtime_seconds else None
    by_flops = (total_flos / peak) * watts / 3.6e6 if total_flos and peak else None
    if by_time is None and by_flops is None:
        return {"kwh": None, "not_recorded": "neither training time nor FLOPs recorded"}
    return {
        "kwh": by_time if by_time is not None else by_flops,
        "kwh_time_based": by_time,
        "kwh_flops_lower_bound": by_flops,
        "power_watts": watts,
        "power_source": source,
        "device": device,
        "method": (
            "estimate: training time x power draw of the recorded hardware at full load (upper end); "
            "lower bound: recorded FLOPs / peak throughput x the same power. Not metered."
        ),
        "measured": environment.get("gpu_power_source") is not None,
    }


# --------------------------------------------------------------------------- the form


def _release(facts: Any) -> dict[str, Any]:
    history = (facts.approvals or {}).get("alias_history") or []
    first = next((a for a in history if a.get("alias") == "production" and "set" in str(a.get("event", ""))), None)
    if first is None:
        first = next((a for a in history if a.get("alias") == "production"), None)
    return item(
        first and first.get("at"),
        first and f"audit trail: alias @production {first.get('event')} by {first.get('actor')}",
        "not released: no @production alias event for this version in the audit trail",
    )


def model_documentation(facts: Any) -> dict[str, Any]:
    """The seven sections of the form from a :class:`~governance.report.facts.ReportFacts`."""
    identity, training, data = facts.identity, facts.training, facts.data
    environment = training.get("environment") or {}
    config = identity.get("architecture") or {}
    base_sha = identity.get("base_model_sha256")
    run = f"MLflow run {training.get('run_id')}"
    energy = energy_estimate(
        environment=environment,
        runtime_seconds=training.get("train_runtime") or training.get("wall_seconds"),
        total_flos=training.get("total_flos"),
    )
    datasets = [
        {
            "path": d.get("path"),
            "sha256": d.get("sha256"),
            "records": d.get("records"),
            "sources": d.get("sources"),
            "licenses": d.get("licenses"),
            "raw_inputs": d.get("raw_input"),
            "curation": d.get("curation"),
        }
        for d in data.get("datasets") or []
    ]
    # The prepare stage's manifest names each raw file with its hashes: {path: {sha256, md5, reader}}
    raw = [
        {"dataset": d["path"], "raw_file": path, **(hashes if isinstance(hashes, dict) else {})}
        for d in datasets
        for path, hashes in (d["raw_inputs"] or {}).items()
    ]
    curation = [{"dataset": d["path"], "steps": d["curation"]} for d in datasets if d["curation"]]
    validation_rules = [
        {
            "stage": v.get("stage"),
            "rule": r.get("rule_id") or r.get("id"),
            "passed": r.get("passed"),
            "observed": r.get("observed"),
        }
        for v in data.get("validation") or []
        for r in ((v.get("decision") or {}).get("details") or {}).get("rules") or []
    ]
    bias_rules = [r for r in validation_rules if re.search(r"balance|bias", str(r["rule"]))]
    safety = (facts.evaluation or {}).get("safety") or {}
    return {
        "form": FORM,
        "model": identity.get("name"),
        "version": identity.get("version"),
        "generated_at": facts.generated_at,
        "general_information": {
            "provider": item(
                identity.get("registered_by"),
                "version tag lineage.registered_by (the identity that registered it)",
                "registering identity: version tag lineage.registered_by",
            ),
            "model_name": item(identity.get("name"), "MLflow registered model", "registered model name"),
            "model_version": item(identity.get("version"), f"MLflow model version, {run}", "model version"),
            "authenticity_sha256": item(
                identity.get("model_sha256"),
                "version tag lineage.model_sha256; equals model/manifest.json and the evaluated model "
                f"(integrity: {(facts.integrity or {}).get('model_sha256')})",
                "model hash: version tag lineage.model_sha256",
            ),
            "registered_at": item(identity.get("registered_at"), "MLflow model version creation time", "registration"),
            "release_date": _release(facts),
            "model_dependencies": item(
                {
                    "base_model": identity.get("base_model"),
                    "base_model_sha256": base_sha,
                    "base_model_license": identity.get("base_license"),
                    "parent_model": identity.get("parent_model"),
                    "parent_model_sha256": identity.get("parent_model_sha256"),
                }
                if identity.get("base_model")
                else None,
                "lineage.json base and parent (from the base_model stage's manifest)",
                "base model: lineage.json base",
            ),
        },
        "model_properties": {
            "architecture": item(config or None, "artifact model/config.json", "model/config.json"),
            "parameter_count": item(identity.get("num_parameters"), "model/manifest.json num_parameters", "parameters"),
            "input_output_modalities": item(identity.get("modality"), "model/config.json architectures", "modality"),
            "context_length_tokens": item(
                config.get("max_position_embeddings"), "model/config.json max_position_embeddings", "context length"
            ),
            "training_method": item(
                {
                    "method": identity.get("method"),
                    "trainer": training.get("trainer"),
                    "adapter": training.get("adapter"),
                }
                if identity.get("method")
                else None,
                "version tag lineage.method; model/manifest.json trainer and adapter",
                "training method",
            ),
            "library_versions": item(
                {k: environment.get(k) for k in ("torch", "transformers", "trl", "peft") if environment.get(k)},
                "lineage.json environment",
                "library versions: lineage.json environment",
            ),
        },
        "distribution": {
            "channels": item(
                {
                    "registry": (facts.source or {}).get("tracking_uri"),
                    "source_uri": identity.get("source_uri"),
                    "aliases": identity.get("aliases"),
                },
                "MLflow model registry (the only distribution channel the pipeline has)",
                "registry",
            ),
            "license": item(
                identity.get("base_license"),
                "lineage.json base.license (params base_model.license)",
                "licence: params base_model.license → lineage.json base.license",
            ),
        },
        "use": {
            "intended_use": item(identity.get("intended_use"), identity.get("intended_use_source"), "intended use"),
            "out_of_scope_uses": item(identity.get("out_of_scope"), "version tag lineage.out_of_scope", "out of scope"),
            "risk_tier": item(identity.get("risk_tier"), "version tag lineage.risk_tier", "risk tier"),
            "approval_status": item(identity.get("approval_status"), "audit trail, mirrored to version tags", "status"),
            "safety_evaluation": item(
                {
                    r["metric"]: {"value": r["value"], "parent": r["parent"], "delta": r["delta"]}
                    for r in safety.get("rates") or []
                }
                or None,
                "artifact evaluation/safety.json; prompt sets "
                + ", ".join(f"{k} {v.get('sha256', '')[:12]}" for k, v in (safety.get("sets") or {}).items()),
                "safety evaluation: artifact evaluation/safety.json (evaluated before it existed)",
            ),
        },
        "training_data": {
            "type": item(
                identity.get("method") and f"text; {identity.get('method')} training records (JSON Lines)",
                "version tag lineage.method",
                "data type",
            ),
            "datasets": item(datasets, "lineage.json datasets (sha256 of the gated files)", "lineage.json datasets"),
            "provenance_raw_files": item(
                raw,
                "lineage.json provenance inputs (prepare stage manifest)",
                "raw-file hashes: the prepare stage's manifest (lineage.json provenance)",
            ),
            "curation_steps": item(
                curation,
                "lineage.json provenance curation (prepare stage manifest)",
                "per-step curation counts: the prepare stage's manifest",
            ),
            "pii_screening": item(
                [
                    {
                        "stage": p.get("stage"),
                        "passed": p.get("passed"),
                        "findings": p.get("findings_total"),
                        "redacted": p.get("records_redacted"),
                    }
                    for p in data.get("pii") or []
                ],
                "gates/<pii stage>/decision.json, bound by sha256 in lineage.json gates",
                "PII gate decisions",
            ),
            "bias_detection": item(
                bias_rules,
                "validation gate decisions (lineage.json gates)",
                "no bias measurement recorded: the validation gates have no balance/bias rule for this data",
            ),
        },
        "compute": {
            "training_time_seconds": item(
                training.get("train_runtime") or training.get("wall_seconds"),
                f"{run} metric train_runtime (wall_seconds)",
                "training time: run metric train_runtime",
            ),
            "training_period": item(
                training.get("started_at")
                and {"started": training.get("started_at"), "ended": training.get("ended_at")},
                run,
                "run start/end",
            ),
            "hardware": item(
                {
                    k: environment.get(k)
                    for k in ("cpu_model", "cpu_logical_cores", "gpu_model", "gpu_count", "accelerator")
                    if environment.get(k) is not None
                }
                or None,
                "lineage.json environment (recorded at training time)",
                "hardware: lineage.json environment cpu_model/gpu_model",
            ),
            "training_flops": item(training.get("total_flos"), f"{run} metric total_flos (Trainer)", "FLOPs"),
            "optimizer_steps": item(training.get("global_steps"), "model/manifest.json global_steps", "steps"),
            "tokens_seen": item(training.get("tokens_seen"), "TRL metric num_tokens / manifest", "tokens"),
        },
        "energy": {
            "training_energy_kwh": item(energy.get("kwh"), energy.get("method"), energy.get("not_recorded", "")),
            "estimate": item(
                {k: v for k, v in energy.items() if k != "kwh"} if energy.get("kwh") is not None else None,
                f"{POWER_TABLE.name} and lineage.json environment",
                energy.get("not_recorded", "energy estimate"),
            ),
            "measured": item(
                None, None, "not metered: the pipeline has no energy meter; the figure above is an estimate"
            ),
        },
    }


def not_recorded_items(documentation: dict[str, Any]) -> list[str]:
    """``section.item`` of every item without a recorded fact (for the report's gaps)."""
    return [
        f"{section}.{name}: {entry['not_recorded']}"
        for section in SECTIONS
        for name, entry in documentation[section].items()
        if entry.get("value") is None and name != "measured"
    ]
