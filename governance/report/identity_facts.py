"""The report's identity and training sections: what the model is, and how it was trained.

From the registered version (tags, description, aliases), the training run
(params, ``env.*`` tags, metrics and their histories) and the run's
``lineage.json``, ``model/manifest.json`` and ``model/config.json``. What is
not recorded becomes a gap, never a default.
"""

from __future__ import annotations

import re
from typing import Any

from governance import registry, registry_view
from governance.report.record import ReportFacts
from governance.report.run_artifacts import flat, iso_ms

#: Training-curve metrics, in the order they are plotted; a key matches exactly
#: or, for reward families, by prefix.
CURVE_METRICS = ("loss", "reward", "rewards/", "kl", "mean_token_accuracy", "learning_rate")

#: The training libraries whose versions the report lists under "Libraries" (and the GPAI form under
#: library versions), in this order: every one lineage.json's environment recorded.
LIBRARY_KEYS = ("torch", "transformers", "trl", "peft", "datasets", "accelerate")
#: Hardware and library keys of the recorded environment, shown in this order.
ENV_KEYS = ("accelerator", "cuda_available", "cpu_count", "platform", "python", *LIBRARY_KEYS)
#: Hardware keys recorded at training time (governance.hardware), shown and used for the energy estimate.
HARDWARE_KEYS = ("cpu_model", "cpu_logical_cores", "gpu_model", "gpu_count", "gpu_power_limit_w", "gpu_power_source")


def identity_facts(
    facts: ReportFacts, version: Any, run: Any, lineage: dict, manifest: dict, config: dict | None
) -> None:
    """The identity section: name, version, intended use, base and parent model, architecture, risk tier."""
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
        # The stage that trained the parent: base_model when this step starts from the base, else a training stage
        "parent_stage": parent.get("stage"),
        "model_sha256": tags.get("lineage.model_sha256"),
        "method": tags.get("lineage.method") or manifest.get("method"),
        "architecture": architecture,
        "num_parameters": manifest.get("num_parameters"),
        "modality": "text in, text out (causal language model, chat template)" if is_causal_lm else None,
        "run_id": version.run_id,
        # Where a reviewer fetches it: the registry's own URI, never the registering machine's folder
        "source_uri": portable_source(version),
    }
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


def adapter_facts(adapter: dict[str, Any] | None, quantization: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The adapter as trained: LoRA settings only where an adapter was trained, and what was fine-tuned.

    params.yaml keeps ``adapter.lora`` beside ``method: none`` (so switching to LoRA is one word); those
    settings did not shape the model, so a fact showing them would contradict "full fine-tuning".
    ``quantization`` is the 4-bit config a QLoRA base was loaded with, as the manifest recorded it.
    """
    if not adapter:
        return None
    method = adapter.get("method")
    if method == "none":
        return {"method": "none", "fine_tuning": "full fine-tuning: every weight trained, no adapter"}
    trained = "low-rank matrices trained"
    if quantization:
        bits = "4 bits" if quantization.get("load_in_4bit") else "8 bits" if quantization.get("load_in_8bit") else "?"
        kind = ", ".join(
            str(v)
            for v in (
                quantization.get("quant_method"),
                quantization.get("bnb_4bit_quant_type"),
                quantization.get("bnb_4bit_compute_dtype") and f"compute {quantization['bnb_4bit_compute_dtype']}",
            )
            if v
        )
        trained += f" on the base loaded in {bits} ({kind}), merged into the base loaded again unquantised"
    else:
        trained += ", merged into the saved weights"
    return {**adapter, "fine_tuning": f"{method} adapter ({trained})"}


def training_facts(facts: ReportFacts, run: Any, lineage: dict, manifest: dict) -> None:
    """The training section: method, hyperparameters, environment, steps, tokens and the loss curves."""
    params = lineage.get("params") or {}
    pipeline_params = {k.removeprefix("pipeline."): v for k, v in run.data.params.items() if k.startswith("pipeline.")}
    logged_args = {k: v for k, v in run.data.params.items() if not k.startswith("pipeline.")}
    environment = lineage.get("environment") or {
        k.removeprefix("env."): v for k, v in run.data.tags.items() if k.startswith("env.")
    }
    adapter = adapter_facts(manifest.get("adapter") or params.get("adapter"), manifest.get("quantization"))
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
        # "Libraries" in both renderings: every training library the environment recorded (PEFT included)
        "libraries": {k: environment[k] for k in LIBRARY_KEYS if environment.get(k)},
        "energy": lineage.get("energy"),  # measured around training (governance.energy), or why not
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


def trail_over_tags(facts: ReportFacts, tags: dict[str, str], approvals: dict[str, Any]) -> None:
    """The risk tier, the people and the declared uses the audit trail froze at registration replace the version's
    tags in the identity section (anyone with MLflow access edits a tag; the approvals were decided under the
    trail's); a tag that differs from what was frozen is a gap. Without a registration in the trail, or for a version
    registered before its declarations were frozen, the tags are stated as such."""
    tier_tag = tags.get("lineage.risk_tier")
    if approvals.get("registered"):
        frozen = approvals.get("registered_risk_tier")
        if frozen and tier_tag != frozen:
            facts.gap(
                "identity",
                f"risk tier: the version tag lineage.risk_tier says {tier_tag!r} but the audit trail's "
                f"model_registered event froze {frozen!r}: the tag was changed after registration; the trail's "
                "tier is stated",
            )
        facts.identity["risk_tier"] = approvals.get("risk_tier")
        facts.identity["risk_tier_source"] = approvals.get("risk_tier_source")
        for tag, frozen_person in (approvals.get("people") or {}).items():
            if tags.get(tag) != frozen_person:
                facts.gap(
                    "identity",
                    f"{tag}: the version tag says {tags.get(tag)!r} but the audit trail's model_registered event "
                    f"froze {frozen_person!r}: the tag was changed after registration; the trail's is stated",
                )
        if (approvals.get("people") or {}).get("lineage.registered_by"):
            facts.identity["registered_by"] = approvals["people"]["lineage.registered_by"]
        for tag, key in (("lineage.intended_use", "intended_use"), ("lineage.out_of_scope", "out_of_scope")):
            frozen_text = (approvals.get("declared") or {}).get(tag)
            if frozen_text is None:
                continue  # registered before declarations were frozen: the tag is all there is
            if tags.get(tag) != frozen_text:
                facts.gap(
                    "identity",
                    f"{tag}: the version tag differs from what the audit trail's model_registered event froze: the "
                    "tag was changed after registration; the trail's is stated",
                )
            facts.identity[key] = frozen_text
            if key == "intended_use":
                facts.identity["intended_use_source"] = "frozen in the audit trail at registration"
        for tag, key in (("lineage.parent_model", "parent_model"), ("lineage.base_model", "base_model")):
            frozen_name = (approvals.get("declared") or {}).get(tag)
            if frozen_name is None:
                continue  # registered before the lineage it names was frozen
            if tags.get(tag) != frozen_name:
                facts.gap(
                    "identity",
                    f"{tag}: the version tag says {tags.get(tag)!r} but the audit trail's model_registered event "
                    f"froze {frozen_name!r}: the tag was changed after registration; the trail's is stated",
                )
            if key == "parent_model" or not facts.identity.get(key):  # the base: lineage.json's, else the frozen
                facts.identity[key] = frozen_name
    else:
        facts.identity["risk_tier_source"] = "version tag lineage.risk_tier" if tier_tag else None
    if not facts.identity.get("risk_tier"):
        facts.gap("identity", "risk tier: not recorded (version tag lineage.risk_tier, audit trail)")
    if not facts.identity.get("intended_use"):
        facts.gap(
            "identity", "intended use: not recorded (register params intended_use → version tag lineage.intended_use)"
        )
    if not facts.identity.get("out_of_scope"):
        facts.gap("identity", "out-of-scope uses: not recorded (version tag lineage.out_of_scope)")
