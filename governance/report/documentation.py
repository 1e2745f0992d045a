"""The provider's Model Documentation Form (EU GPAI Code of Practice), from recorded facts only.

    govern report NAME VERSION --out DIR     # writes DIR/model_documentation.json beside the report

Whoever fine-tunes a general-purpose model becomes its provider and owes this
form. Each of its eight sections (``general_information``, ``model_properties``,
``distribution``, ``use``, ``training_process``, ``training_data``,
``compute``, ``energy``) holds
items ``{"value", "evidence"}``: the recorded value and the hash, id or record
that lets a reviewer check it. An item with no recorded fact has
``value: null`` and ``not_recorded`` saying what is missing and where it should
have come from; nothing is filled in from code defaults. Every item of the
form is always present: the shape is :mod:`governance.report.documentation_schema`
(and ``model_documentation.schema.json`` beside it).

Trust: the values are the report's facts (the trail, hash-checked artifacts);
the provider's declarations (organisation, contact, acceptable-use policy,
integration targets) come from ``policies/report.yaml``, whose SHA-256 each
lineage records. A figure shown twice (training wall time, licences) is read
from the one fact the report shows, so the form and the report cannot differ.

The form covers the model's whole chain, not the last step alone:
``training_data.chain``, ``training_data.rights_and_licences``,
``compute.chain`` and ``energy.chain_kwh`` sum the base model (its gated
corpus, or the statement that a publisher's pre-training is outside the
project's control), every parent version (from its own form, linked by hash
in ``general_information.parent_forms``) and this step
(:mod:`governance.report.chain`); the other items describe this step.

Energy is measured where NVML could: the training stage reads every GPU's
total-energy counter on every rank around training (:mod:`governance.energy`)
and ``lineage.json`` ``energy`` holds the joules, ``method: nvml`` and the
GPUs. Otherwise it is an estimate, labelled so: recorded training time × the
hardware's power draw, and recorded FLOPs ÷ the hardware's peak throughput ×
its power draw as a lower bound, with the power table in
``hardware_power.yaml`` beside this module. Where the GPU exposed its power
limit through NVML at training time, that measured limit replaces the table.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import Field

from governance.energy import COUNTER, METHOD_NVML
from governance.policy import PolicyFile, Strict, load_yaml, validate_model
from governance.report.chain import base_step, chain_totals, parent_links, parent_steps, this_step

POWER_TABLE = Path(__file__).with_name("hardware_power.yaml")
FORM = "EU GPAI Code of Practice — Model Documentation Form"
SECTIONS = (
    "general_information",
    "model_properties",
    "distribution",
    "use",
    "training_process",
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


def _judge_evidence(safety: dict[str, Any]) -> str:
    """The safety judge behind the rates and how far it agrees with people, as the form's evidence states it."""
    judge = safety.get("judge") or {}
    if not judge.get("sha256"):
        return ""
    agreement = safety.get("judge_agreement") or {}
    status = agreement.get("status", "not recorded")
    if status == "measured":
        sets = agreement.get("sets") or []
        unmet = sum(1 for s in sets if s.get("goal") == "not met")
        shown = (f"measured on {len(sets)} sets (results sha256 "
                 f"{(agreement.get('results') or {}).get('sha256', '')[:12]}), goal not met on {unmet}")  # fmt: skip
    else:
        shown = status
    return f"; judge sha256 {judge['sha256'][:12]}, agreement with people {shown}"


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


def energy_items(metered: dict[str, Any], estimate: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The form's training energy: measured where the lineage's ``energy`` is NVML's, else the estimate, labelled.

    ``metered`` is ``lineage.json`` ``energy`` (:func:`governance.energy.energy_record`), ``estimate``
    :func:`energy_estimate`'s result; the estimate is shown beside a measurement too.
    """
    measured = metered.get("method") == METHOD_NVML and metered.get("joules") is not None
    gpus = len(metered.get("gpus") or [])
    return {
        "training_energy_kwh": (
            item(metered["joules"] / 3.6e6, f"measured: {COUNTER}, on every rank; {gpus} GPU(s)", "")
            if measured
            else item(estimate.get("kwh"), estimate.get("method"), estimate.get("not_recorded", ""))
        ),
        "estimate": item(
            {k: v for k, v in estimate.items() if k != "kwh"} if estimate.get("kwh") is not None else None,
            f"{POWER_TABLE.name} and lineage.json environment",
            estimate.get("not_recorded", "energy estimate"),
        ),
        "measured": item(
            {k: metered.get(k) for k in ("method", "joules", "seconds", "gpus")} if measured else None,
            "lineage.json energy (NVML's total-energy counter read when training began and ended, on every rank)",
            f"not metered ({metered.get('reason') or 'no energy record in lineage.json'}): "
            "the figure above is an estimate",
        ),
    }


def base_energy(training: dict[str, Any]) -> dict[str, Any]:
    """What building the base model drew: NVML's measurement where there is one, else the labelled estimate."""
    metered = training.get("energy") or {}
    if metered.get("method") == METHOD_NVML and metered.get("joules") is not None:
        return {"kwh": metered["joules"] / 3.6e6, "method": f"measured: {COUNTER}"}
    estimate = energy_estimate(
        environment=training.get("environment") or {},
        runtime_seconds=training.get("wall_seconds"),
        total_flos=None,
    )
    if estimate.get("kwh") is None:
        return {"kwh": None, "not_recorded": estimate.get("not_recorded")}
    return {"kwh": estimate["kwh"], "method": f"estimate: wall time x {estimate['power_source']}"}


def _chain_items(facts: Any, datasets: list[dict[str, Any]], this: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The form's chain items: every step from the base model through each parent to this one, summed."""
    chain = getattr(facts, "chain", None) or {}
    base = chain.get("base") or {}
    parent = chain.get("parent")
    steps = parent_steps(parent) if parent else [base_step(base, base_energy(base.get("training") or {}))]
    if chain.get("parent_missing"):
        steps.append(
            {
                "step": "parent version",
                "kind": "parent",
                "datasets": [],
                "rights": [],
                "not_recorded": [chain["parent_missing"]],
            }  # fmt: skip
        )
    steps.append(this_step(datasets=datasets, **this))
    totals = chain_totals(steps)
    left_out = totals["left_out"]  # empty: every step recorded what is summed
    base_data = next((s.get("base") for s in steps if s.get("kind") == "base_model"), None)
    return {
        "parent_forms": item(
            parent_links(parent)
            or (
                None
                if chain.get("parent_missing")
                else f"none: trained directly from the base model {base.get('name_or_path')}"
            ),
            "each parent version's own form, built from its own records by the same code; form_sha256 is "
            "sha256_json of that form without generated_at, written beside this one as form_file",
            chain.get("parent_missing") or "parent forms",
        ),
        "chain": item(
            {
                "steps": [
                    {
                        "step": s["step"],
                        "kind": s.get("kind"),
                        "stage": s.get("stage"),
                        "records": s.get("records"),
                        "datasets": s.get("datasets") or None,
                        "training_data": s.get("training_data"),
                    }
                    for s in steps
                ],
                "total_records": totals["records"],
                "left_out": left_out,
            },
            "base model: lineage.json base (the base_model stage's manifest); parents: their own forms "
            "(parent_forms); this step: this form's datasets. left_out: what no step recorded",
            "the chain",
        ),
        "base_model_data": item(
            base_data,
            "lineage.json base, from the base_model stage's manifest; each corpus gate decision looked up in the "
            "audit trail by its sha256 (signed: a gate_decision event published it; passed: that event's answer)",
            "the base model's training data: lineage.json base records no corpus and no statement (a base_model "
            "stage from before the corpus was gated)",
        ),
        "rights_and_licences": item(
            [{"step": s["step"], **row} for s in steps for row in s.get("rights") or []],
            "dataset cards (params prepare_*.card license and rights_reservation, or the dataset's README); "
            "'not assessed' where the card records no rights-reservation/opt-out statement",
            "no dataset in the chain",
        ),
        "compute_chain": item(
            {
                "steps": [
                    {
                        "step": s["step"],
                        "training_seconds": s.get("training_seconds"),
                        "training_flops": s.get("training_flops"),
                    }  # fmt: skip
                    for s in steps
                ],
                "total_training_seconds": totals["training_seconds"],
                "total_training_flops": totals["training_flops"],
                "left_out": left_out,
            },
            "each step's recorded training time and FLOPs (base model: its stage's wall time; parents: their forms)",
            "compute over the chain",
        ),
        "energy_chain": item(
            {
                "steps": [
                    {"step": s["step"], "energy_kwh": s.get("energy_kwh"), "energy_method": s.get("energy_method")}
                    for s in steps
                ],
                "total_kwh": totals["energy_kwh"],
                "left_out": left_out,
            },
            "each step's measured or estimated training energy (method per step)",
            "energy over the chain",
        ),
    }


# --------------------------------------------------------------------------- the form


def _release(facts: Any) -> dict[str, Any]:
    """The date the version first took ``production``: the trail's first ``promoted`` event of it."""
    events = (facts.approvals or {}).get("events") or []
    first = next((e for e in events if e.get("action") == "promoted"), None)
    return item(
        first and first.get("at"),
        first
        and f"audit trail event #{first.get('seq')}: promoted to @production by {first.get('actor')} "
        "(the release date is the first promotion of this version; canaries and rollbacks are not releases)",
        "not released: the audit trail has no promoted event for this version",
    )


def training_wall_seconds(training: dict[str, Any]) -> tuple[float | None, str]:
    """The one training wall time the report shows everywhere, and where it was recorded."""
    if training.get("wall_seconds") is not None:
        return training["wall_seconds"], "model/manifest.json wall_seconds (the training stage's measured wall time)"
    return training.get("train_runtime"), f"MLflow run {training.get('run_id')} metric train_runtime"


def _provider(facts: Any) -> dict[str, Any]:
    provider = (facts.operations or {}).get("provider") or {}
    named = {k: provider.get(k) for k in ("organisation", "contact") if provider.get(k)}
    return item(
        named or None,
        "policies/report.yaml provider (organisation, contact)",
        "provider: set provider.organisation and provider.contact in policies/report.yaml",
    )


def _weights_bytes(identity: dict[str, Any]) -> int | None:
    params = identity.get("num_parameters")
    dtype = str((identity.get("architecture") or {}).get("torch_dtype") or "")
    size = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1}.get(dtype)
    return int(params) * size if params and size else None


def _key_decisions(facts: Any) -> list[dict[str, Any]]:
    """Decisions the governance policies made about this training, each with its recorded rationale."""
    out = []
    rules = (facts.operations or {}).get("evidence_rules") or {}
    if rules.get("required_gates"):
        out.append(
            {
                "decision": "gates every training file must pass",
                "choice": ", ".join(rules["required_gates"]),
                "rationale": rules.get("rationale"),
                "evidence": "policies/report.yaml evidence",
            }
        )
    for row in (facts.evaluation or {}).get("results") or []:
        out.append(
            {
                "decision": f"acceptance criterion {row.get('rule_id')}",
                "choice": f"{row.get('metric')} {row.get('threshold') or ''}".strip(),
                "rationale": row.get("rationale") or "not recorded (the rule's rationale in the evaluation policy)",
                "evidence": f"evaluation/decision.json under policy {(facts.evaluation or {}).get('policy_version')}",
            }
        )
    approvals = facts.approvals or {}
    if approvals.get("required") is not None:
        out.append(
            {
                "decision": "approvals required before production",
                "choice": approvals.get("required"),
                "rationale": f"approvals policy for risk tier {approvals.get('risk_tier')}",
                "evidence": f"policies/approvals.yaml; risk tier {approvals.get('risk_tier_source')}",
            }
        )
    return out


def model_documentation(facts: Any) -> dict[str, Any]:
    """The form, checked against its schema (every item present, each with evidence or not_recorded)."""
    from governance.report.documentation_schema import validate_documentation

    form = _form(facts)
    validate_documentation(form, f"{facts.name} v{facts.version}: model_documentation.json")
    return form


def _form(facts: Any) -> dict[str, Any]:
    """The eight sections of the form from a :class:`~governance.report.facts.ReportFacts`.

    Every item of :data:`FORM_ITEMS` is present, each with its value and evidence or ``not_recorded``
    (validated by :class:`governance.report.documentation_schema.ModelDocumentation`).
    """
    identity, training, data = facts.identity, facts.training, facts.data
    environment = training.get("environment") or {}
    config = identity.get("architecture") or {}
    base_sha = identity.get("base_model_sha256")
    run = f"MLflow run {training.get('run_id')}"
    provider = (facts.operations or {}).get("provider") or {}
    wall_seconds, wall_source = training_wall_seconds(training)
    energy = energy_estimate(
        environment=environment,
        runtime_seconds=wall_seconds,
        total_flos=training.get("total_flos"),
    )
    datasets = [
        {
            "path": d.get("path"),
            "sha256": d.get("sha256"),
            "records": d.get("records"),
            "sources": d.get("sources"),
            "licenses": d.get("licenses"),
            "card_license": (d.get("card") or {}).get("license"),
            "raw_inputs": d.get("raw_input"),
            "curation": d.get("curation"),
        }
        for d in data.get("datasets") or []
    ]
    cards = [
        {
            "dataset": d.get("path"),
            **{k: (d.get("card") or {}).get(k) for k in ("source", "collection", "license", "citation")},
            "declared_in": (d.get("card") or {}).get("origin"),
        }
        for d in data.get("datasets") or []
        if d.get("card")
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
    pii = [
        {
            "stage": p.get("stage"),
            "passed": p.get("passed"),
            "recognizers": len(p.get("recognizers") or []),
            "nlp_engine": p.get("nlp_engine"),
            "nlp_model": p.get("nlp_model"),
            "entities_not_scanned": sorted(p.get("entities_not_scanned") or {}),
            "findings": p.get("findings_total"),
            "redacted": p.get("records_redacted"),
        }
        for p in data.get("pii") or []
    ]
    dropped = [
        {"dataset": c["dataset"], "step": s.get("step"), "dropped": s.get("dropped")}
        for c in curation
        for s in c["steps"]
        if isinstance(s, dict) and s.get("dropped")
    ]
    unsuitable = {
        "pii_gates": pii,
        "validation_gates": [
            {
                "stage": v.get("stage"),
                "passed": (v.get("decision") or {}).get("passed"),
                "rules": len(((v.get("decision") or {}).get("details") or {}).get("rules") or []),
            }
            for v in data.get("validation") or []
        ],
        "rows_dropped_in_curation": dropped,
    }
    energy_now = energy_items(training.get("energy") or {}, energy)
    chain = _chain_items(
        facts,
        [
            {**d, "card": next((x.get("card") for x in data.get("datasets") or [] if x.get("path") == d["path"]), None)}
            for d in datasets
        ],
        {
            "label": f"this step ({identity.get('name')} v{identity.get('version')})",
            "stage": training.get("stage"),
            "seconds": wall_seconds,
            "flops": training.get("total_flos"),
            "energy": energy_now["training_energy_kwh"],
        },
    )
    safety = (facts.evaluation or {}).get("safety") or {}
    weights = _weights_bytes(identity)
    software = {k: environment.get(k) for k in ("python", "torch", "transformers", "peft") if environment.get(k)}
    trl_params = training.get("trl") or {}
    return {
        "form": FORM,
        "model": identity.get("name"),
        "version": identity.get("version"),
        "generated_at": facts.generated_at,
        "general_information": {
            "provider": _provider(facts),
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
            "union_market_release_date": item(
                None,
                None,
                "placing on the EU market is the provider's act outside the pipeline; the release date above is "
                "the first promotion to @production",
            ),
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
            "parent_forms": chain["parent_forms"],
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
                    "model_uri": f"models:/{identity.get('name')}/{identity.get('version')}",
                    "source_uri": identity.get("source_uri"),
                    "aliases": identity.get("aliases"),
                }
                if identity.get("name")
                else None,
                "MLflow model registry (the only distribution channel the pipeline has)",
                "registry",
            ),
            "license": item(
                identity.get("base_license"),
                "lineage.json base.license (params base_model.license, refused where the model card or GGUF file "
                "declares another)",
                "licence: params base_model.license → lineage.json base.license",
            ),
        },
        "use": {
            "acceptable_use_policy": item(
                provider.get("acceptable_use_policy"),
                "policies/report.yaml provider.acceptable_use_policy",
                "acceptable-use policy: set provider.acceptable_use_policy in policies/report.yaml",
            ),
            "intended_use": item(identity.get("intended_use"), identity.get("intended_use_source"), "intended use"),
            "out_of_scope_uses": item(identity.get("out_of_scope"), "version tag lineage.out_of_scope", "out of scope"),
            "integration_system_types": item(
                provider.get("integration_system_types"),
                "policies/report.yaml provider.integration_system_types",
                "types of AI systems it can be integrated into: set provider.integration_system_types in "
                "policies/report.yaml",
            ),
            "technical_means_of_integration": item(
                {
                    "fetch": f"mlflow artifacts download -u models:/{identity.get('name')}/{identity.get('version')}",
                    "format": f"Hugging Face transformers folder ({config.get('architectures')}, safetensors)",
                    "prompting": "the tokenizer's chat template shipped in the model folder",
                    "adapter": (training.get("adapter") or {}).get("method") if training.get("adapter") else None,
                }
                if identity.get("name") and config
                else None,
                "artifact model/config.json; MLflow model version",
                "technical means of integration: artifact model/config.json",
            ),
            "required_hardware": item(
                {
                    "weights_bytes": weights,
                    "dtype": config.get("torch_dtype"),
                    "trained_on": environment.get("accelerator"),
                    "note": "weights memory only (parameters x dtype size); activations and KV cache come on top",
                }
                if weights
                else None,
                "model/manifest.json num_parameters x model/config.json dtype; lineage.json environment",
                "required hardware: parameter count or dtype not recorded",
            ),
            "required_software": item(
                software or None,
                "lineage.json environment (the versions it was trained and evaluated with)",
                "required software: lineage.json environment",
            ),
            "risk_tier": item(
                identity.get("risk_tier"),
                identity.get("risk_tier_source") or "version tag lineage.risk_tier",
                "risk tier",
            ),
            "approval_status": item(identity.get("approval_status"), "audit trail, mirrored to version tags", "status"),
            "safety_evaluation": item(
                {
                    r["metric"]: {"value": r["value"], "parent": r["parent"], "delta": r["delta"]}
                    for r in safety.get("rates") or []
                }
                or None,
                "artifact evaluation/safety.json; prompt sets "
                + ", ".join(f"{k} {v.get('sha256', '')[:12]}" for k, v in (safety.get("sets") or {}).items())
                + _judge_evidence(safety),
                "safety evaluation: artifact evaluation/safety.json (evaluated before it existed)",
            ),
        },
        "training_process": {
            "design_specification": item(
                {
                    "method": identity.get("method"),
                    "stage": training.get("stage"),
                    "trainer": training.get("trainer"),
                    "starting_point": identity.get("parent_model"),
                    "adapter": training.get("adapter"),
                    "hyperparameters": trl_params or None,
                    "seed": training.get("seed"),
                    "optimizer_steps": training.get("global_steps"),
                    "loss_masking": (training.get("loss_masking") or {}).get("strategy"),
                    "objectives": [f.get("name") for f in (facts.objectives or {}).get("functions") or []] or None,
                }
                if identity.get("method")
                else None,
                "lineage.json params (params_sha256 "
                f"{str(training.get('params_sha256'))[:12]}), model/manifest.json, version tag lineage.method",
                "training design: lineage.json params and model/manifest.json",
            ),
            "key_decisions": item(
                _key_decisions(facts),
                "governance policies in force (report, evaluation, approvals), as the decisions recorded them",
                "key decisions: no evidence rule, evaluation result or approvals policy recorded",
            ),
            "hyperparameter_rationale": item(
                None,
                None,
                "each hyperparameter's reason is a comment in params.yaml; the lineage records params.yaml only by "
                f"hash (params_sha256 {str(training.get('params_sha256'))[:12]}) at commit "
                f"{str(training.get('git_commit'))[:12]}",
            ),
        },
        "training_data": {
            "type": item(
                identity.get("method") and f"text; {identity.get('method')} training records (JSON Lines)",
                "version tag lineage.method",
                "data type",
            ),
            "datasets": item(datasets, "lineage.json datasets (sha256 of the gated files)", "lineage.json datasets"),
            "how_data_was_obtained": item(
                cards,
                "dataset cards recorded by the prepare stage (lineage.json provenance card)",
                "how the data was obtained: dataset card (params prepare_* card, or the dataset's README)",
            ),
            "scope_and_characteristics": item(
                [
                    {
                        "dataset": d.get("path"),
                        "records": d.get("records"),
                        "format": (d.get("format") or {}).get("name") if isinstance(d.get("format"), dict) else None,
                        "collection": (d.get("card") or {}).get("collection"),
                    }
                    for d in data.get("datasets") or []
                ],
                "gate decisions' record counts; dataset cards; lineage.json provenance format",
                "data scope: lineage.json datasets",
            ),
            "provenance_raw_files": item(
                raw,
                "lineage.json provenance inputs (prepare stage manifest)",
                "raw-file hashes: the prepare stage's manifest (lineage.json provenance)",
            ),
            "curation_steps": item(
                curation,
                "lineage.json provenance curation (prepare stage manifest); the last step of a split file is its share",
                "per-step curation counts: the prepare stage's manifest",
            ),
            "unsuitable_data_detection": item(
                unsuitable if pii or unsuitable["validation_gates"] else None,
                "gates/<stage>/decision.json of the PII and validation gates, bound by sha256 in lineage.json gates",
                "no PII or validation gate decision in the lineage",
            ),
            "pii_screening": item(
                pii,
                "gates/<pii stage>/decision.json, bound by sha256 in lineage.json gates",
                "PII gate decisions",
            ),
            "bias_detection": item(
                bias_rules,
                "validation gate decisions (lineage.json gates)",
                "no bias measurement recorded: the validation gates have no balance/bias rule for this data",
            ),
            "chain": chain["chain"],
            "base_model_data": chain["base_model_data"],
            "rights_and_licences": chain["rights_and_licences"],
        },
        "compute": {
            "training_time_seconds": item(wall_seconds, wall_source, "training time: model/manifest.json wall_seconds"),
            "training_period": item(
                training.get("started_at")
                and {"started": training.get("started_at"), "ended": training.get("ended_at")},
                f"{run} start and end (includes loading and saving around training)",
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
            "chain": chain["compute_chain"],
        },
        "energy": {
            **energy_now,
            "chain_kwh": chain["energy_chain"],
            "inference_flops_per_token": item(
                2 * int(identity["num_parameters"]) if identity.get("num_parameters") else None,
                "estimate: 2 x parameter count FLOPs per generated token (one forward pass; attention over the "
                "context comes on top); not benchmarked",
                "inference compute: model/manifest.json num_parameters",
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
