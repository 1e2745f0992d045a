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

:func:`collect_facts` reads the version and its run and hands them to one
module per section: :mod:`~governance.report.identity_facts` (identity,
training), :mod:`~governance.report.data_facts`,
:mod:`~governance.report.evaluation_facts`,
:mod:`~governance.report.objectives_facts`,
:mod:`~governance.report.operations_facts`; artifacts are read through
:mod:`~governance.report.run_artifacts`, and
:mod:`~governance.report.signed_decisions` says which decisions the trail
signed.

A fact that is not recorded is never filled in: its section gets a *gap*
naming what is missing and where it should have come from, and the verdict
(:mod:`governance.report.verdict`) counts it as missing evidence.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from governance import registry, registry_view
from governance.approvals import approvals_policy_path, policy_dir
from governance.errors import ConfigError
from governance.policy import load_stated_policy
from governance.report.audit import audit_facts
from governance.report.chain import (
    MAX_DEPTH,
    base_decision_keys,
    base_record,
    base_run_context,
    form_sha256,
    mark_base_gates,
    parent_form_file,
    parent_version,
)
from governance.report.compliance import legal_basis, load_compliance_map
from governance.report.data_facts import data_facts
from governance.report.documentation import model_documentation
from governance.report.evaluation_facts import evaluation_facts
from governance.report.identity_facts import identity_facts, trail_over_tags, training_facts
from governance.report.monitoring import monitoring_facts
from governance.report.objectives_facts import objectives_facts, reward_hashes
from governance.report.operations_facts import operations_facts
from governance.report.policy import ReportPolicy
from governance.report.provenance import provenance_facts
from governance.report.record import ReportFacts
from governance.report.run_artifacts import RunArtifacts
from governance.report.signed_decisions import decision_keys, mark_signed_decisions

log = logging.getLogger(__name__)

__all__ = ["ReportFacts", "collect_facts", "redact_uri"]

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _parent_chain(
    facts: ReportFacts,
    lineage: dict[str, Any],
    report_policy: str | Path,
    approvals_policy: str | Path,
    audit_url: str | None,
    depth: int,
) -> None:
    """The parent version's facts and form in ``facts.chain``, or why there is none; gaps for what is missing."""
    for gate in (facts.chain["base"].get("corpus") or {}).get("gates") or []:
        if gate.get("signed") is False:
            digest = str(gate.get("decision_sha256"))[:12]
            facts.gap(
                "data",
                f"base model corpus: the {gate.get('stage')} decision (sha256 {digest}…) was published by no signed "
                "trail event",
            )
    if depth >= MAX_DEPTH:
        facts.chain["parent_missing"] = f"the chain is followed {MAX_DEPTH} versions deep; earlier steps not read"
        facts.gap("training", f"model chain: {facts.chain['parent_missing']}")
        return
    parent_ref = lineage.get("parent") or {}
    found, missing = parent_version(
        parent_ref, name=facts.name, version=facts.version, versions=registry_view.read_versions()
    )
    if found is None:
        if missing:
            facts.chain["parent_missing"] = missing
            facts.gap("training", f"model chain: {missing}")
        return
    parent = collect_facts(
        found.name,
        found.version,
        report_policy=report_policy,
        approvals_policy=approvals_policy,
        audit_url=audit_url,
        depth=depth + 1,
    )
    frozen = parent.approvals.get("registered_model_sha256")
    facts.chain["parent"] = {
        "model": parent.name,
        "version": parent.version,
        "stage": parent.training.get("stage"),
        "model_sha256": parent_ref.get("model_sha256"),
        # The registry tag matched (anyone with MLflow access sets it); the signed registration event must agree
        "confirmed_by_trail": frozen == parent_ref.get("model_sha256"),
        "form": parent.documentation,
        "form_sha256": parent.chain.get("form_sha256"),
        "form_file": parent_form_file(parent.name, parent.version),
    }
    # Every ancestor's form, written beside the report where its link points
    facts.chain["forms"] = {facts.chain["parent"]["form_file"]: parent.documentation, **parent.chain.get("forms", {})}
    if not facts.chain["parent"]["confirmed_by_trail"]:
        facts.gap(
            "training",
            f"model chain: {parent.name} v{parent.version} carries the parent's hash in its registry tag, but its "
            f"model_registered event in the audit trail records {str(frozen)[:12]}…",
        )


def redact_uri(uri: str) -> str:
    """A tracking/audit URI without credentials (``user:password@`` is dropped)."""
    parts = urlsplit(uri)
    if parts.password is None and parts.username is None:
        return uri
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# --------------------------------------------------------------------------- entry point


def collect_facts(
    name: str,
    version: str | int,
    *,
    report_policy: str | Path | None = None,
    approvals_policy: str | Path | None = None,
    audit_url: str | None = None,
    depth: int = 0,
) -> ReportFacts:
    """Read every recorded fact about ``name`` v``version`` into a :class:`ReportFacts`.

    The parent version (the registered model this one was trained from) is read the same way, recursively
    (``depth`` counts how far down the chain this call is), so the GPAI form covers the whole chain.

    Raises :class:`~governance.errors.ConfigError` when the version is not
    registered and :class:`~governance.errors.RegistryError` when the tracking
    server cannot be reached; everything else that is absent becomes a gap.
    """
    # The model's versions, read once: this one, the production version compared with, the registry's drift
    versions = registry_view.read_versions(name=name)
    model_version = registry_view.read_version(name, version, versions=versions)
    if not model_version.run_id:
        raise ConfigError(f"{name} v{version}: registered without a training run; nothing to report")
    run = registry_view.read_run(model_version.run_id)
    report_policy = report_policy or policy_dir() / "report.yaml"
    approvals_policy = approvals_policy or approvals_policy_path()
    policy_path = Path(report_policy)
    # Stated as reviewed: an uncommitted edit (say, high_risk_uses emptied) changes nothing the report says
    policy, policy_review = load_stated_policy(policy_path, ReportPolicy) if policy_path.is_file() else (None, None)
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
        compliance=load_compliance_map().rows(policy.high_risk_uses if policy else None),
        legal_basis=legal_basis(policy.high_risk_uses if policy else None),
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
        identity_facts(facts, model_version, run, lineage, manifest, config)
        training_facts(facts, run, lineage, manifest)
        signed_training_context(facts, lineage.get("stage") or run.data.tags.get("stage"), manifest, audit_url)
        base = base_record(lineage, manifest)
        if base.get("trained_by_project") and "wall_seconds" not in base["training"]:
            # Built after the build facts left the hashed folder: they are the base_model stage's MLflow run's
            found = base_run_context(run.info.experiment_id, base.get("model_sha256"), Path(scratch))
            base["training"] = {**base["training"], **found}
        facts.chain = {"base": base, "parent": None, "parent_missing": None}
        data_facts(facts, artifacts, lineage, policy)
        evaluation_facts(facts, model_version, artifacts, versions)
        audit = audit_facts(
            model_version.name,
            str(model_version.version),
            risk_tier=facts.identity.get("risk_tier"),
            approvals_policy=Path(approvals_policy),
            reward_hashes={f["name"]: f["sha256"] for f in reward_hashes(model_version, manifest)},
            stage=lineage.get("stage") or run.data.tags.get("stage"),
            audit_url=audit_url,
            decisions=decision_keys(facts) + base_decision_keys(facts.chain["base"]),
            versions=versions,
        )
        mark_signed_decisions(facts, audit["decision_events"])
        mark_base_gates(facts.chain["base"], audit["decision_events"])
        objectives_facts(facts, model_version, lineage, manifest, audit)
        facts.approvals = audit["approvals"]
        # The trail's status, never the version's governance.approval_status tag (anyone with MLflow access sets it)
        facts.identity["approval_status"] = audit["approvals"]["status"] or "not recorded in the audit trail"
        # Likewise the risk tier and the people: the trail's, a changed tag a gap
        trail_over_tags(facts, model_version.tags or {}, audit["approvals"])
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
        operations_facts(facts, policy, policy_review, lineage)
        # Reading a report never creates a trail that is not there
        facts.monitoring = (
            monitoring_facts(facts.name, facts.version, audit_url=audit_url)
            if audit["chain"]["available"]
            else {
                "checks": [],
                "latest_production": None,
                "not_evidence": [],
                "incidents": [],
                "blocking_incidents": [],
            }
        )
        # Signatures, provenance statement and reproduction, verified now as `govern verify` does
        facts.integrity["provenance"] = provenance_facts(
            facts.name,
            facts.version,
            facts.approvals.get("reproductions") or [],
            trail_problem=None if audit["chain"]["available"] else "the audit trail was not available",
        )
        _parent_chain(facts, lineage, report_policy, approvals_policy, audit_url, depth)
        facts.documentation = model_documentation(facts)
        facts.chain["form_sha256"] = form_sha256(facts.documentation)
        energy = facts.documentation["energy"]["training_energy_kwh"]
        if energy["value"] is None:
            facts.gap("training", f"training energy: {energy['not_recorded']}")
    facts.source["report_policy"] = facts.operations.get("policy")
    facts.source["audit_url"] = audit.get("audit_url")
    return facts


def signed_training_context(facts: ReportFacts, stage: str | None, manifest: dict, audit_url: str | None) -> None:
    """State the run, commit, dirty flag and user as the training stage signed them (its ``model_trained`` event),
    not as ``lineage.json`` (editable by anyone with MLflow access) says; a difference is a gap naming both. A
    model trained before the event existed keeps lineage.json's values, as before."""
    from governance import trail
    from governance.errors import GovernanceError
    from governance.report.audit import trail_missing
    from governance.trained import context_of, trained_event

    if not stage or not manifest.get("model_sha256"):
        return
    try:
        url = audit_url or trail.audit_url()
        if trail_missing(url):
            return  # no trail: the audit section says so, and nothing here may create one
        event = trained_event(stage, manifest["model_sha256"], url=url, run_id=facts.training.get("run_id"))
    except GovernanceError:
        return  # no trail configured, or an unreadable one: the audit section states it
    if event is None:
        return
    for key, value in context_of(event).items():
        stated = facts.training.get(key)
        if stated is not None and stated != value:
            facts.gap(
                "training",
                f"{key}: the run's lineage.json says {stated!r}, the training stage signed {value!r} (trail event "
                f"#{event.seq}); the signed value is stated",
            )
        facts.training[key] = value
    facts.training["run_context_event"] = event.seq
