"""The model's whole chain for the GPAI form: the base model, every parent version, and this step.

A DPO version is its base model (a tokenizer corpus, or a publisher's
pre-training), its SFT parent (the SFT data and compute) and its own DPO
step; the form's training data, compute and energy must cover all of them,
not the last step alone. The chain is built in three parts:

* :func:`base_record`: the base model as ``lineage.json`` ``base`` carries it
  down from the ``base_model`` stage's manifest. For the built-in model: its
  corpus (hash, records, dataset card with licence and rights-reservation
  statement) with the corpus's PII and validation gate decisions by hash, and
  the wall time, hardware and energy record of building it. For a model the
  project did not train: the statement that its training data is outside the
  project's control. :func:`base_decision_keys` names the corpus's decisions
  so the report looks them up in the audit trail like every gate decision,
  and :func:`mark_base_gates` marks each signed or not.
* :func:`parent_version`: the registered version whose model is this one's
  parent (``lineage.json`` ``parent.model_sha256`` equal to its
  ``lineage.model_sha256`` tag); :mod:`governance.report.facts` collects that
  version's facts the same way, recursively, and its form is linked here by
  :func:`form_sha256`.
* the steps: :func:`base_step`, :func:`parent_steps` (read back from the
  parent's form) and :func:`this_step` (from the values the form shows for
  this step), summed by :func:`chain_totals`;
  :mod:`governance.report.documentation` shows them as the form's chain items
  (``training_data.chain``, ``.base_model_data``, ``.rights_and_licences``,
  ``compute.chain``, ``energy.chain_kwh``, ``general_information.parent_forms``).

Trust: the base record and this step's figures are the report's facts (the
run's ``lineage.json``, hash-checked as the report checks it); whether a
corpus gate passed is the signed trail event's answer, never the lineage's.
The parent is matched by its registry tag (anyone with MLflow access can set
it), so the match is confirmed against the model hash the parent's signed
``model_registered`` event froze; a difference is a gap of the report. A parent's form is believed as far as its own
report is: it is built by the same code from its own records.
"""

from __future__ import annotations

from typing import Any

from governance.lineage import sha256_json

#: The parent's form, written beside this version's ``model_documentation.json``
PARENT_FORMS_DIR = "parent_forms"
#: How deep the chain is followed (a parent of a parent ...): far beyond any recipe the pipeline has
MAX_DEPTH = 8
#: Shown for a dataset whose card says nothing about reservations of rights
NOT_ASSESSED = "not assessed: the dataset card records no rights-reservation/opt-out statement"


def form_sha256(form: dict[str, Any]) -> str:
    """The SHA-256 of a form without ``generated_at`` (``governance.lineage.sha256_json``: sorted keys, no spaces).

    Generated twice from the same records, a form differs only in when it was generated; this hash is
    what a parent's link names and what the parent's own report prints.
    """
    return sha256_json({k: v for k, v in form.items() if k != "generated_at"})


def parent_form_file(model: str, version: str) -> str:
    """Where a parent's form is written beside the report (relative to the report folder)."""
    return f"{PARENT_FORMS_DIR}/{model}-v{version}.model_documentation.json"


# --------------------------------------------------------------------------- the base model


def base_run_context(experiment_id: str | None, model_sha256: str | None, scratch) -> dict[str, Any]:
    """The base model's build facts (wall time, machine, energy) from the base_model stage's MLflow run that
    logged ``model_sha256`` in the training run's experiment; empty when no such run is found (a base built
    before the stage logged a run, or a store without it): the chain then says it was not recorded."""
    from governance import registry
    from governance.lineage import BASE_RUN_CONTEXT_FILE
    from governance.report.run_artifacts import RunArtifacts

    if not model_sha256 or not experiment_id:
        return {}
    experiment = registry.client().get_experiment(experiment_id)
    run = registry.latest_model_run(experiment.name, "base_model", model_sha256)
    if run is None:
        return {}
    context = RunArtifacts(run.info.run_id, run.info.artifact_uri, scratch).json(BASE_RUN_CONTEXT_FILE)
    keys = ("wall_seconds", "environment", "energy")
    return {key: context[key] for key in keys if key in context} if isinstance(context, dict) else {}


def base_record(lineage: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    """The base model as this version's lineage carries it (``lineage.json`` ``base``), for the chain's first step."""
    base = lineage.get("base") or manifest.get("base") or {}
    corpus = base.get("corpus") or {}
    return {
        "name_or_path": base.get("name_or_path"),
        "license": base.get("license"),
        "model_sha256": base.get("model_sha256"),
        "trained_by_project": base.get("trained_by_project"),
        "training_data": base.get("training_data"),
        "training": base.get("training") or {},
        "corpus": (
            {**corpus, "gates": [{**g, "signed": None, "signed_event": None} for g in corpus.get("gates") or []]}
            if corpus
            else None
        ),
    }


def base_decision_keys(base: dict[str, Any]) -> list[tuple[str, str, str, dict[str, str]]]:
    """``(event_type, stage, sha256, evidence)`` of the base corpus's gate decisions, to look up in the trail."""
    return [
        ("gate_decision", str(g["stage"]), str(g["decision_sha256"]), {})
        for g in (base.get("corpus") or {}).get("gates") or []
        if g.get("stage") and g.get("decision_sha256")
    ]


def mark_base_gates(base: dict[str, Any], events: dict[str, dict[str, Any]] | None) -> None:
    """Mark each corpus gate decision signed (a trail event published its bytes) or not; None: no trail to ask.

    Where signed, whether the gate passed is the event's answer.
    """
    if events is None:
        return
    for gate in (base.get("corpus") or {}).get("gates") or []:
        event = events.get(f"{gate.get('stage')}:{gate.get('decision_sha256')}")
        gate["signed"], gate["signed_event"] = event is not None, event
        if event is not None:
            gate["passed"] = event.get("passed")


# --------------------------------------------------------------------------- the parent version


def parent_version(
    parent: dict[str, Any], *, name: str, version: str, versions: list[Any]
) -> tuple[Any | None, str | None]:
    """The registered version holding ``parent``'s model, or None and why (the parent is the base model, or none).

    ``versions`` are the registry's versions (:func:`governance.registry_view.read_versions`). Several
    versions of one model hash (registered again): the earliest, which first recorded it.
    """
    if parent.get("stage") == "base_model":
        return None, None
    digest = parent.get("model_sha256")
    if not digest:
        return None, "the parent's model hash is not recorded (lineage.json parent.model_sha256)"
    holders = [
        v
        for v in versions
        if (v.tags or {}).get("lineage.model_sha256") == digest and (v.name, str(v.version)) != (name, version)
    ]
    if not holders:
        return None, (
            f"no registered version holds the parent model {parent.get('name_or_path')} (sha256 {digest[:12]}…): "
            "its data, compute and energy are not in this form"
        )
    return min(holders, key=lambda v: (v.creation_timestamp or 0, v.name, int(v.version))), None


# --------------------------------------------------------------------------- the form's items
#
# Inside this module a step is one dict: step (its label), kind (base_model, parent, this), stage, records,
# datasets [{path, sha256, records}], rights [{dataset, licence, rights_reservation}], training_data (what
# it trained on, where that is a statement), training_seconds, training_flops, energy_kwh, energy_method,
# base (the base model's data, first step only) and not_recorded (what the sums leave out). The form shows
# projections of it (training_data.chain, .base_model_data, .rights_and_licences, compute.chain,
# energy.chain_kwh); a parent's steps are read back from those items of its form.


def _rights(path: str | None, card: dict[str, Any] | None, licenses: Any = None) -> dict[str, Any]:
    """A dataset's licence and rights-reservation statement: the card's (the publisher's, else the team's), with the
    records' own licences and any unreviewed params declaration that differs stated beside it, never instead."""
    card = card or {}
    recorded = ", ".join(sorted(k for k in licenses if k != "not recorded")) if isinstance(licenses, dict) else None
    declared = card.get("license")
    licence = declared or recorded or "not recorded: the dataset card names no licence"
    if declared and recorded and recorded != declared:
        licence = f"{declared}; the records themselves carry {recorded}"
    statements = {"licence": licence, "rights_reservation": card.get("rights_reservation") or NOT_ASSESSED}
    for key, field in (("license", "licence"), ("rights_reservation", "rights_reservation")):
        conflict = (card.get("conflicts") or {}).get(key)
        if conflict:
            statements[field] += (
                f" (from {conflict['published_in']}; params declare {conflict['params']!r} instead, which is not "
                "reviewed and not stated)"
            )
    return {"dataset": path, **statements}


def _step(label: str, kind: str, **values: Any) -> dict[str, Any]:
    return {
        "step": label,
        "kind": kind,
        "stage": None,
        "records": None,
        "datasets": [],
        "rights": [],
        "training_data": None,
        "training_seconds": None,
        "training_flops": None,
        "energy_kwh": None,
        "energy_method": None,
        "base": None,
        "not_recorded": [],
        **values,
    }


def base_step(base: dict[str, Any], energy: dict[str, Any] | None) -> dict[str, Any]:
    """The chain's first step: the base model, its data and what building it cost (measured or estimated)."""
    name = base.get("name_or_path") or "the base model"
    step = _step(f"base model {name}", "base_model", stage="base_model")
    if base.get("trained_by_project") is False:
        statement = base.get("training_data") or f"outside the project's control: {name} was not trained here"
        step.update(
            training_data=statement,
            rights=[{"dataset": "its pre-training data", "licence": statement, "rights_reservation": statement}],
            base={"model": name, "model_sha256": base.get("model_sha256"), "training_data": statement},
            not_recorded=[f"{name}: data, compute and energy of its pre-training ({statement})"],
        )
        return step
    corpus = base.get("corpus")
    if not corpus:
        step["not_recorded"] = [
            f"{name}: its training data and compute (lineage.json base carries no corpus: the base_model stage "
            "predates the gated corpus; re-run dvc repro)"
        ]
        return step
    training = base.get("training") or {}
    rights = _rights(corpus.get("path"), corpus.get("card"), corpus.get("licenses"))
    step.update(
        records=corpus.get("records"),
        datasets=[{k: corpus.get(k) for k in ("path", "records", "sha256")}],
        rights=[rights],
        training_data=training.get("what"),
        training_seconds=training.get("wall_seconds"),
        base={
            "model": name,
            "model_sha256": base.get("model_sha256"),
            "corpus": corpus.get("path"),
            "sha256": corpus.get("sha256"),
            "records": corpus.get("records"),
            "source": (corpus.get("card") or {}).get("source"),
            "licence": rights["licence"],
            "rights_reservation": rights["rights_reservation"],
            "gates": [
                {
                    "stage": g.get("stage"),
                    "passed": g.get("passed"),
                    "signed": g.get("signed"),
                    "trail_event": (g.get("signed_event") or {}).get("seq"),
                    "decision_sha256": g.get("decision_sha256"),
                }
                for g in corpus.get("gates") or []
            ],
        },
    )
    if energy and energy.get("kwh") is not None:
        step["energy_kwh"], step["energy_method"] = energy["kwh"], energy["method"]
    else:
        step["not_recorded"].append(f"{name}: energy ({(energy or {}).get('not_recorded', 'not recorded')})")
    if step["training_seconds"] is None:
        step["not_recorded"].append(f"{name}: wall time of building it (base_model manifest base.training)")
    return step


def this_step(
    *,
    label: str,
    stage: str | None,
    datasets: list[dict[str, Any]],
    seconds: float | None,
    flops: float | None,
    energy: dict[str, Any],
) -> dict[str, Any]:
    """This version's own training step, from the values the form shows for it (``energy``: its energy item)."""
    step = _step(
        label,
        "this",
        stage=stage,
        datasets=[{k: d.get(k) for k in ("path", "records", "sha256")} for d in datasets],
        rights=[_rights(d.get("path"), d.get("card"), d.get("licenses")) for d in datasets],
        records=sum(d["records"] for d in datasets if d.get("records") is not None) if datasets else None,
        training_data="the datasets listed, as their gates passed them (this form's unsuitable_data_detection)",
        training_seconds=seconds,
        training_flops=flops,
        energy_kwh=energy.get("value"),
        energy_method=(energy.get("evidence") or "").split(";")[0] or None if energy.get("value") is not None else None,
    )
    for key, what in (("training_seconds", "training time"), ("training_flops", "FLOPs"), ("energy_kwh", "energy")):
        if step[key] is None:
            step["not_recorded"].append(f"{label}: {what}")
    if any(d.get("records") is None for d in datasets):
        step["not_recorded"].append(f"{label}: record count of a dataset")
    return step


def parent_links(parent: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every parent's form by hash, nearest first: the parent, then the parents its own form links."""
    if not parent:
        return []
    own = {
        "model": parent.get("model"),
        "version": parent.get("version"),
        "stage": parent.get("stage"),
        "model_sha256": parent.get("model_sha256"),
        "form_sha256": parent.get("form_sha256"),
        "form_file": parent.get("form_file"),
    }
    earlier = _value(parent.get("form") or {}, "general_information", "parent_forms")
    return [own, *(entry for entry in earlier or [] if isinstance(entry, dict))]


def _value(form: dict[str, Any], section: str, name: str) -> Any:
    return ((form.get(section) or {}).get(name) or {}).get("value")


def parent_steps(parent: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps of the parent's own chain, read back from its form, its own step relabelled as the parent."""
    form = parent.get("form") or {}
    label = f"parent {parent['model']} v{parent['version']}"
    chain = _value(form, "training_data", "chain") or {}
    if not chain.get("steps"):
        return [_step(label, "parent", not_recorded=[f"{label}: its form has no chain (an older report's form)"])]
    compute = {s.get("step"): s for s in (_value(form, "compute", "chain") or {}).get("steps") or []}
    energy = {s.get("step"): s for s in (_value(form, "energy", "chain_kwh") or {}).get("steps") or []}
    rights: dict[str, list[dict[str, Any]]] = {}
    for row in _value(form, "training_data", "rights_and_licences") or []:
        rights.setdefault(row.get("step"), []).append({k: v for k, v in row.items() if k != "step"})
    base = _value(form, "training_data", "base_model_data")
    own = chain["steps"][-1].get("step")
    steps = []
    for shown in chain["steps"]:
        name = shown.get("step")
        steps.append(
            _step(
                label if name == own else name,
                "parent" if name == own else shown.get("kind") or "parent",
                **{k: shown.get(k) for k in ("stage", "records", "datasets", "training_data") if shown.get(k)},
                rights=rights.get(name, []),
                training_seconds=(compute.get(name) or {}).get("training_seconds"),
                training_flops=(compute.get(name) or {}).get("training_flops"),
                energy_kwh=(energy.get(name) or {}).get("energy_kwh"),
                energy_method=(energy.get(name) or {}).get("energy_method"),
                base=base if shown.get("kind") == "base_model" and isinstance(base, dict) else None,
            )
        )
    steps[-1]["form"] = {"sha256": parent.get("form_sha256"), "file": parent.get("form_file")}
    # What the parent's sums left out, said of this chain too (its own step under its new label)
    steps[-1]["not_recorded"] = [str(m).replace(own, label, 1) for m in chain.get("left_out") or []]
    return steps


def chain_totals(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Records, training time, FLOPs and energy summed over every step, and what the sums leave out."""

    def total(key: str) -> float | None:
        values = [s.get(key) for s in steps if s.get(key) is not None]
        return sum(values) if values else None

    missing = [m for s in steps for m in s.get("not_recorded") or []]
    return {
        "records": total("records"),
        "training_seconds": total("training_seconds"),
        "training_flops": total("training_flops"),
        "energy_kwh": total("energy_kwh"),
        "left_out": missing,
    }
