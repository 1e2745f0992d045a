"""The verdict: may this version be promoted under the policy, and if not, exactly what is missing.

Each check reads only :class:`~governance.report.record.ReportFacts` and ends
in one of four states: ``pass``, ``fail`` (recorded evidence says no),
``missing`` (the evidence the policy needs is not recorded — never assumed
fine) or ``not_applicable`` (the facts show the check does not apply, e.g. no
reward functions for an SFT model). A version is promotable only when no
check failed and none is missing.

Beside the checks, the verdict reads the version's **life** after
registration (:func:`life_facts`): which aliases it serves (the audit
trail's), the latest monitoring window that counts as production evidence,
windows refused as evidence or recorded as rehearsals, open incidents,
closed incidents a reviewer would question, and the decisions recorded. A
blocking life fact (serving with a denied latest window, an open blocking
incident) leads the verdict with the command to act (:attr:`Verdict.lead`);
warnings follow the blocking facts, never the reverse.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from governance.report.record import ReportFacts

Status = Literal["pass", "fail", "missing", "not_applicable"]
LifeSeverity = Literal["block", "warn", "info"]


@dataclass(frozen=True)
class Check:
    """One verdict check: a stable id, what it asks, its status and the recorded reason."""

    id: str
    title: str
    status: Status
    detail: str


@dataclass(frozen=True)
class LifeFact:
    """One fact of the version's life after registration: blocking, a warning, or a recorded decision."""

    severity: LifeSeverity
    text: str
    #: The command a person runs to act on it (None when there is nothing to run).
    action: str | None = None


@dataclass(frozen=True)
class Verdict:
    promotable: bool
    checks: list[Check]
    #: Warn-severity findings and rules that could not be measured: they do not block, but they are listed
    warnings: list[str] = field(default_factory=list)
    #: Plain statements a reviewer must read with the verdict (e.g. the built-in model's evaluation means little)
    notices: list[str] = field(default_factory=list)
    #: The aliases the audit trail says the version holds now (production first)
    serving: list[str] = field(default_factory=list)
    #: The version's life after registration, blocking facts first (see :func:`life_facts`)
    life: list[LifeFact] = field(default_factory=list)

    @property
    def lead(self) -> list[str]:
        """The verdict's first lines: what the version serves, then each blocking life fact and how to act on it.

        Empty for a version that serves nothing and has no blocking life fact: the headline leads.
        """
        lines = []
        if self.serving:
            lines.append(f"Serves {' and '.join(self.serving)} now (audit trail).")
        for fact in self.life:
            if fact.severity == "block":
                lines.append(fact.text)
                if fact.action:
                    lines.append(f"Act: {fact.action}")
        return lines

    @property
    def blocking(self) -> list[Check]:
        """The checks that stop promotion: failed first, then missing evidence."""
        failed = [c for c in self.checks if c.status == "fail"]
        return failed + [c for c in self.checks if c.status == "missing"]

    @property
    def headline(self) -> str:
        if self.promotable and self.warnings:
            return (
                f"May be promoted with {len(self.warnings)} warning(s): every check the policy requires passed; "
                "read the warnings first."
            )
        if self.promotable:
            return "May be promoted: every check the policy requires passed."
        failed = sum(c.status == "fail" for c in self.checks)
        missing = sum(c.status == "missing" for c in self.checks)
        parts = [f"{failed} check(s) failed"] if failed else []
        parts += [f"{missing} piece(s) of required evidence missing"] if missing else []
        return "May not be promoted: " + " and ".join(parts) + "."

    def to_json(self) -> dict[str, Any]:
        return {
            "promotable": self.promotable,
            "headline": self.headline,
            "warnings": self.warnings,
            "notices": self.notices,
            "serving": self.serving,
            "lead": self.lead,
            "life": [asdict(f) for f in self.life],
            "checks": [asdict(c) for c in self.checks],
        }


def _identity_check(facts: ReportFacts) -> Check:
    identity = facts.identity
    wanted = {
        "intended use": identity.get("intended_use"),
        "out-of-scope uses": identity.get("out_of_scope"),
        "risk tier": identity.get("risk_tier"),
        "base model licence": identity.get("base_license"),
    }
    absent = [k for k, v in wanted.items() if not v]
    if absent:
        return Check(
            "identity.recorded",
            "Intended use, scope, risk tier and licence recorded",
            "missing",
            "not recorded: " + ", ".join(absent),
        )
    return Check(
        "identity.recorded",
        "Intended use, scope, risk tier and licence recorded",
        "pass",
        f"risk tier {identity['risk_tier']}, base licence {identity['base_license']}",
    )


def _model_hash_check(facts: ReportFacts) -> Check:
    title = "Registered weights are the trained and evaluated weights"
    hashes = facts.integrity.get("model_sha256") or {}
    labels = {"version_tag": "version tag", "manifest": "training manifest", "evaluated": "evaluation manifest"}
    absent = [labels[k] for k in labels if not hashes.get(k)]
    if absent:
        return Check("lineage.model_hash", title, "missing", "model SHA-256 not recorded in: " + ", ".join(absent))
    if len({hashes[k] for k in labels}) != 1:
        detail = "; ".join(f"{labels[k]} {hashes[k][:12]}…" for k in labels)
        return Check("lineage.model_hash", title, "fail", f"model SHA-256 differs: {detail}")
    return Check("lineage.model_hash", title, "pass", f"sha256 {hashes['manifest'][:16]}… in tag, manifest and eval")


def _required_gates_check(facts: ReportFacts) -> Check:
    title = "Every training file passed the required gates"
    required = facts.data.get("required_gates")
    if not required:
        return Check("data.required_gates", title, "missing", "required gates: report policy not available")
    datasets = facts.data.get("datasets") or []
    if not datasets:
        return Check("data.required_gates", title, "missing", "no training datasets recorded in the lineage")
    problems, missing = [], []
    for gate_name in required:
        gates = [g for g in facts.data.get("gates") or [] if g.get("gate") == gate_name]
        if not gates:
            missing.append(f"no '{gate_name}' gate decision in the lineage")
            continue
        for dataset in datasets:
            covering = [g for g in gates if g["covers"].get(dataset["path"]) == dataset["sha256"]]
            if not covering:
                problems.append(
                    f"'{gate_name}' gate did not judge {dataset['path']} (sha256 {str(dataset['sha256'])[:12]}…)"
                )
            elif not all(g.get("passed") for g in covering):
                problems.append(f"'{gate_name}' gate denied {dataset['path']}")
    if problems:
        return Check("data.required_gates", title, "fail", "; ".join(problems + missing))
    if missing:
        return Check("data.required_gates", title, "missing", "; ".join(missing))
    return Check(
        "data.required_gates",
        title,
        "pass",
        f"{', '.join(required)} passed for {len(datasets)} file(s), bound by SHA-256",
    )


def _gates_passed_check(facts: ReportFacts) -> Check:
    title = "No unwaived deny in any recorded gate"
    gates = facts.data.get("gates") or []
    if not gates:
        return Check("data.gates_passed", title, "missing", "no gate decisions recorded in the lineage")
    denied = [f"{g['stage']} ({g['counts'].get('deny', '?')} deny)" for g in gates if not g.get("passed")]
    if denied:
        return Check("data.gates_passed", title, "fail", "denied: " + ", ".join(denied))
    waived = sum(int(g["counts"].get("waived", 0)) for g in gates)
    warned = sum(int(g["counts"].get("warn", 0)) for g in gates)
    return Check(
        "data.gates_passed",
        title,
        "pass",
        f"{len(gates)} gate(s) passed; {warned} warning(s), {waived} waived deny rule(s) counted separately",
    )


def _decision_integrity_check(facts: ReportFacts) -> Check:
    title = "Gate decisions unchanged since training"
    gates = facts.data.get("gates") or []
    if not gates:
        return Check("data.decision_integrity", title, "missing", "no gate decisions recorded in the lineage")
    bad = [g["artifact"] for g in gates if g["integrity"] == "mismatch"]
    # Trained under a decision no gate stage published: the lineage and the artifact agree, and prove nothing
    unsigned = [
        f"{g['artifact']} (sha256 {str(g.get('lineage_sha256'))[:12]}…)"
        for g in gates
        if g.get("signed") is False and g["integrity"] != "mismatch"
    ]
    absent = [g["artifact"] for g in gates if g["integrity"] == "missing"]
    if bad or unsigned:
        problems = [f"SHA-256 differs from the lineage for: {', '.join(bad)}"] if bad else []
        if unsigned:
            problems.append("no signed gate_decision event in the audit trail published: " + ", ".join(unsigned))
        return Check("data.decision_integrity", title, "fail", "; ".join(problems))
    if absent:
        return Check("data.decision_integrity", title, "missing", "not logged to the run: " + ", ".join(absent))
    if any(g.get("signed") is None for g in gates):
        return Check(
            "data.decision_integrity",
            title,
            "missing",
            "audit trail not available: the decisions were not checked against their signed gate_decision events",
        )
    return Check(
        "data.decision_integrity",
        title,
        "pass",
        f"{len(gates)} decision artifact(s) match the SHA-256 recorded at training and the gate_decision event "
        "their gate stage signed",
    )


def _eval_check(facts: ReportFacts) -> Check:
    title = "Evaluation gate passed"
    evaluation = facts.evaluation
    if evaluation.get("decision") is None:
        return Check("eval.passed", title, "missing", "no evaluation decision logged to the training run")
    if not evaluation.get("passed"):
        denied = [
            v["rule_id"]
            for v in evaluation.get("violations") or []
            if v.get("severity") == "deny" and not v.get("waived_by")
        ]
        unmeasured = [r for r in _not_measurable(evaluation) if r in denied]
        detail = "denied by " + (", ".join(denied) or "the evaluation policy")
        if unmeasured:
            detail += f" ({', '.join(unmeasured)} not measurable: the rule could not have failed, so it is no evidence)"
        return Check("eval.passed", title, "fail", detail)
    counts = evaluation.get("counts") or {}
    unmeasured = _not_measurable(evaluation)
    undecided = [
        f"{r['rule_id']} (counts as {r.get('outcome')})"
        for r in evaluation.get("results") or []
        if r.get("status") == "insufficient_evidence"
    ]
    return Check(
        "eval.passed",
        title,
        "pass",
        f"policy {evaluation.get('policy_path')} v{evaluation.get('policy_version')}: "
        f"{len(evaluation.get('results') or [])} rule(s), {counts.get('warn', 0)} warning(s)"
        + (f"; not measurable: {', '.join(unmeasured)}" if unmeasured else "")
        + (f"; insufficient evidence: {', '.join(undecided)}" if undecided else ""),
    )


def _not_measurable(evaluation: dict[str, Any]) -> list[str]:
    return [r["rule_id"] for r in evaluation.get("results") or [] if r.get("status") == "not_measurable"]


def _eval_integrity_check(facts: ReportFacts) -> Check:
    title = "Evaluation decision is the one registered"
    state = facts.evaluation.get("integrity")
    signed = facts.evaluation.get("signed")
    if state == "ok" and signed is False:
        digest = str(facts.evaluation.get("decision_sha256"))
        return Check(
            "eval.integrity",
            title,
            "fail",
            f"evaluation/decision.json (sha256 {digest[:12]}…): no signed eval_decision event in the audit trail "
            "published it",
        )
    if state == "ok" and signed is None:
        return Check(
            "eval.integrity",
            title,
            "missing",
            "audit trail not available: the decision was not checked against its signed eval_decision event",
        )
    if state == "ok":
        return Check(
            "eval.integrity",
            title,
            "pass",
            "decision SHA-256 matches version tag lineage.eval_decision_sha256 and the eval_decision event its "
            "evaluate stage signed",
        )
    if state == "mismatch":
        return Check(
            "eval.integrity",
            title,
            "fail",
            "evaluation/decision.json SHA-256 differs from version tag lineage.eval_decision_sha256",
        )
    if not facts.evaluation.get("recorded_sha256"):
        return Check("eval.integrity", title, "missing", "version tag lineage.eval_decision_sha256 not recorded")
    return Check("eval.integrity", title, "missing", "evaluation/decision.json not logged to the training run")


def _objectives_check(facts: ReportFacts) -> Check:
    title = "Reward functions approved"
    functions = facts.objectives.get("functions") or []
    if not functions:
        return Check(
            "objectives.approved",
            title,
            "not_applicable",
            f"no reward functions in the lineage (method {facts.identity.get('method') or 'unknown'})",
        )
    if not facts.objectives.get("source_available"):
        return Check(
            "objectives.approved",
            title,
            "missing",
            "approval record of " + ", ".join(f["name"] for f in functions) + " not available",
        )
    objectives = [f for f in functions if not f.get("pinned")]
    unapproved = [f"{f['name']} ({f['sha256'][:12]}…)" for f in objectives if not f.get("approval")]
    if unapproved:
        return Check("objectives.approved", title, "fail", "not approved: " + ", ".join(unapproved))
    pinned = [f["name"] for f in functions if f.get("pinned")]
    also = f"; {', '.join(pinned)} weights pinned by hash (not an objective)" if pinned else ""
    return Check("objectives.approved", title, "pass", f"{len(objectives)} reward function hash(es) approved{also}")


def _approvals_check(facts: ReportFacts) -> Check:
    title = "Approvals required for the risk tier"
    approvals = facts.approvals
    if not approvals.get("available"):
        return Check("approvals.quorum", title, "missing", "audit trail not available: approvals cannot be shown")
    if not approvals.get("registered"):
        return Check(
            "approvals.quorum",
            title,
            "missing",
            "the audit trail holds no registration of this version, so it cannot be approved",
        )
    if approvals.get("status") == "blocked":
        return Check(
            "approvals.quorum",
            title,
            "fail",
            f"the audit trail records gate status {approvals.get('gate_status')} and evaluation status "
            f"{approvals.get('eval_status')}: the version can never be approved",
        )
    mismatch = approvals.get("policy_not_pinned")
    if mismatch:
        return Check(
            "approvals.quorum",
            title,
            "missing",
            f"the approvals policy read (sha256 {str(mismatch['in_force'])[:12]}) is not the one this version is held "
            f"to (sha256 {str(mismatch['pinned'])[:12]}): every action refuses under it, and the approvals needed "
            "are not stated from it; restore the pinned policy",
        )
    required = approvals.get("required")
    if required is None:
        return Check(
            "approvals.quorum",
            title,
            "missing",
            "approvals needed per risk tier not defined (approvals policy not available)",
        )
    approved_by = approvals.get("approved_by") or []
    rejected_by = approvals.get("rejected_by") or []
    if rejected_by:
        return Check("approvals.quorum", title, "fail", "standing rejection by " + ", ".join(rejected_by))
    if len(approved_by) < required:
        names = ", ".join(approved_by) or "none"
        detail = (
            f"{len(approved_by)} of {required} distinct approval(s) recorded ({names}); risk tier "
            f"{approvals.get('risk_tier')} needs {required}"
        )
        if approvals.get("invalid_approvers"):
            detail += "; not counted (separation of duties): " + ", ".join(approvals["invalid_approvers"])
        if approvals.get("withdrawals"):
            detail += f"; {approvals['withdrawals'][-1]['line']}: approvals recorded before it no longer count"
        return Check("approvals.quorum", title, "missing", detail)
    return Check(
        "approvals.quorum",
        title,
        "pass",
        f"{len(approved_by)} of {required} approval(s) (risk tier {approvals.get('risk_tier')}): "
        + ", ".join(approved_by),
    )


def _chain_check(facts: ReportFacts) -> Check:
    title = "Audit chain verifies"
    chain = facts.integrity.get("chain") or {}
    if not chain.get("available"):
        return Check("integrity.chain", title, "missing", "audit trail not available: chain not verified")
    if not chain.get("verified"):
        return Check("integrity.chain", title, "fail", chain.get("detail") or "chain verification failed")
    return Check(
        "integrity.chain", title, "pass", f"{chain.get('events')} event(s), head {str(chain.get('head'))[:16]}…"
    )


def _signature_check(facts: ReportFacts) -> Check:
    """The files ``models:/NAME/VERSION`` serves, checked at report time against the signature and statement."""
    title = "Served files match their signature and provenance statement"
    provenance = facts.integrity.get("provenance") or {}
    check = provenance.get("check") or {}
    statement = provenance.get("statement") or {}
    if not provenance.get("signed"):
        reason = check.get("reason") or "registered without a signature"
        if provenance.get("recorded") is None or "audit trail" in str(reason):
            return Check("integrity.signature", title, "missing", f"not checked: {reason}")
        return Check(
            "integrity.signature",
            title,
            "not_applicable",
            f"{reason}; approve and promote refuse it once any version of the trail was signed",
        )
    if check.get("result") == "failed":
        return Check("integrity.signature", title, "fail", str(check.get("reason")))
    if check.get("result") != "verified":
        return Check("integrity.signature", title, "missing", f"not checked: {check.get('reason')}")
    if statement.get("equal") is False:
        return Check(
            "integrity.signature",
            title,
            "fail",
            f"the statement's subjects fold to {str(statement.get('subject_sha256'))[:12]}…, not the registered "
            f"weights' {str(statement.get('registered_model_sha256'))[:12]}…",
        )
    return Check(
        "integrity.signature",
        title,
        "pass",
        f"{len(check.get('files') or [])} file(s) verified now under key {check.get('signing_key')} "
        f"({check.get('public_key')}); statement subjects equal the registered weights",
    )


def _operations_check(facts: ReportFacts) -> Check:
    title = "Limitations, monitoring plan and retention defined"
    policy = facts.operations.get("policy")
    if not policy:
        return Check(
            "operations.policy", title, "missing", "report policy (limitations, monitoring, retention) not available"
        )
    return Check("operations.policy", title, "pass", f"{policy['path']} v{policy['version']}")


def _incidents_check(facts: ReportFacts) -> Check:
    """An open incident of a blocking severity (high) stops promotion, as ``govern promote`` refuses it."""
    monitoring = facts.monitoring or {}
    blocking = monitoring.get("blocking_incidents") or []
    title = "No open high-severity incident"
    if blocking:
        found = {i["id"]: i for i in monitoring.get("incidents") or []}
        listed = "; ".join(
            f"{i} ({found[i]['severity']}, opened by {found[i]['opened_by']}: {found[i]['reason']})" for i in blocking
        )
        return Check("operations.incidents", title, "fail", f"open: {listed}; close it with govern incident close")
    opened = len(monitoring.get("incidents") or [])
    return Check(
        "operations.incidents", title, "pass", f"{opened} incident(s) recorded, none open at a blocking severity"
    )


def _rule_text(rule: dict[str, Any]) -> str:
    """``monitor.length_drift KS D 0.595 > bound 0.3, p=1.2e-12 (alpha 0.01, n 200 vs 150)`` from a recorded rule."""
    observed, bound = rule.get("observed"), rule.get("bound")
    text = f"{rule.get('rule_id')} {rule.get('statistic') or 'observed'} {_num(observed)}"
    if bound is not None:
        text += f" {'>' if observed is not None and observed > bound else '≤'} bound {_num(bound)}"
    elif rule.get("threshold"):
        text += f" (threshold {rule['threshold']})"
    if rule.get("p_value") is not None:
        text += f", p={rule['p_value']:.2g} (alpha {rule.get('alpha')}"
        text += f", n {rule.get('n')} vs {rule.get('n_baseline')})" if rule.get("n") is not None else ")"
    elif rule.get("alpha") is None and bound is None:
        text += ", p-value not recorded"
    return text


def _num(value: Any) -> str:
    return "not recorded" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _when(value: Any) -> str:
    """``2026-11-21 11:15:42 UTC`` from a trail timestamp (other values as they are)."""
    text = str(value or "")
    return f"{text[:10]} {text[11:19]} UTC" if len(text) >= 19 and text[10] == "T" else text or "not recorded"


def _window_label(check: dict[str, Any]) -> str:
    window = check.get("window") or {}
    return f"window event #{check.get('event')} ({window.get('source')}, {window.get('requests')} requests)"


def _monitoring_check(facts: ReportFacts) -> Check:
    """The latest window that counts as the version's production record must not be denied."""
    title = "Latest monitoring window of production traffic not denied"
    monitoring = facts.monitoring or {}
    latest = monitoring.get("latest_production")
    others = len(monitoring.get("not_evidence") or [])
    aside = f"; {others} window(s) refused as evidence or recorded as rehearsal" if others else ""
    if latest is None:
        return Check(
            "operations.monitoring", title, "not_applicable", f"no window of production traffic checked{aside}"
        )
    denied = [r for r in latest.get("rules") or [] if r.get("status") == "fail"]
    if latest.get("verdict") != "passed":
        listed = "; ".join(_rule_text(r) for r in denied) or ", ".join(latest.get("blocking") or [])
        return Check(
            "operations.monitoring",
            title,
            "fail",
            f"{_window_label(latest)} checked {_when(latest.get('at'))}: {listed}",
        )
    return Check("operations.monitoring", title, "pass", f"{_window_label(latest)} passed{aside}")


CHECKS = (
    _identity_check,
    _model_hash_check,
    _required_gates_check,
    _gates_passed_check,
    _decision_integrity_check,
    _eval_check,
    _eval_integrity_check,
    _objectives_check,
    _approvals_check,
    _chain_check,
    _signature_check,
    _operations_check,
    _incidents_check,
    _monitoring_check,
)


def collect_warnings(facts: ReportFacts) -> list[str]:
    """Every unwaived warn-severity finding of the evaluation and data gates, one line each."""
    lines = []
    for violation in facts.evaluation.get("violations") or []:
        if violation.get("severity") == "warn" and not violation.get("waived_by"):
            lines.append(f"{violation.get('rule_id')}: {violation.get('message')}")
    for gate in facts.data.get("gates") or []:
        for violation in gate.get("violations") or []:
            if violation.get("severity") == "warn" and not violation.get("waived_by"):
                # A gate judges several files (train and eval): the same rule can warn on each, and "first at
                # line 21" means nothing without the file, so the line names it unless the message already does.
                subject, message = violation.get("subject"), str(violation.get("message"))
                where = f" in {subject}" if subject and str(subject) not in message else ""
                lines.append(f"{gate.get('stage')}: {violation.get('rule_id')}{where}: {message}")
    return lines


#: Base models whose evaluation exercises the pipeline, not the model (a randomly initialised fixture).
FIXTURE_PREFIX = "builtin:"


def collect_notices(facts: ReportFacts) -> list[str]:
    """Plain statements the reader must see beside the verdict."""
    base = str(facts.identity.get("base_model") or "")
    if base.startswith(FIXTURE_PREFIX):
        return [
            f"Built from the built-in test model {base} (a tiny model trained on the shipped synthetic data): "
            "its evaluation shows the pipeline and its gates work; it is not evidence of the model's quality."
        ]
    return []


def _act_on_serving(facts: ReportFacts, serving: list[str]) -> str | None:
    """The command that takes a serving version out of service, as ``govern`` spells it now."""
    if not serving:
        return None
    name, target = facts.name, (facts.approvals or {}).get("rollback_version")
    if "production" not in serving:  # a canary only: ending it leaves production as it is
        return f'govern canary-end {name} --reason "..."   # a release manager: the canary stops serving this version'
    if target and str(target) != str(facts.version):
        return (
            f'govern rollback {name} --to {target} --reason "..."   # a release manager: production returns to '
            f"v{target}, the previous production version still approved"
        )
    return (
        f'govern withdraw {name} --reason "..."   # a release manager: nothing serves {" or ".join(serving)} '
        "until an approved version is promoted"
    )


def _rules_beyond_bound(check: dict[str, Any]) -> list[str]:
    """Rules a window passed although the observed value was beyond its bound: undecided or not checkable."""
    out = []
    for rule in check.get("rules") or []:
        observed, bound = rule.get("observed"), rule.get("bound")
        if rule.get("status") == "insufficient_evidence":
            out.append(f"{_rule_text(rule)}: beyond the bound but not significant, not enough evidence either way")
        elif rule.get("status") == "pass" and bound is None and rule.get("p_value") is None:
            # Recorded before rules kept their bound and p-value: the bound is only in the threshold text
            numbers = [float(x) for x in re.findall(r"(?<![\w.])\d+(?:\.\d+)?", str(rule.get("threshold") or ""))]
            if isinstance(observed, int | float) and numbers and observed > numbers[0]:
                out.append(
                    f"{rule.get('rule_id')} passed at {_num(observed)} above {numbers[0]:g} ({rule.get('threshold')})"
                    " with no p-value recorded: the pass cannot be checked"
                )
    return out


def life_facts(facts: ReportFacts) -> list[LifeFact]:
    """The version's life after registration, blocking facts first, then warnings, then recorded decisions."""
    monitoring = facts.monitoring or {}
    serving = list((facts.approvals or {}).get("serving") or [])
    act = _act_on_serving(facts, serving)
    block: list[LifeFact] = []
    warn: list[LifeFact] = []
    latest = monitoring.get("latest_production")
    subject = f"{facts.name} v{facts.version}"
    if latest is not None and latest.get("verdict") != "passed":
        denied = "; ".join(_rule_text(r) for r in latest.get("rules") or [] if r.get("status") == "fail")
        where = f"serves {' and '.join(serving)} and its" if serving else "its"
        block.append(
            LifeFact(
                "block",
                f"{subject} {where} latest monitoring window of production traffic was denied "
                f"({_window_label(latest)}, checked {_when(latest.get('at'))}): {denied or 'see the window'}.",
                act if serving else f"do not promote {subject} until a window of its traffic passes",
            )
        )
    found = {i["id"]: i for i in monitoring.get("incidents") or []}
    for incident_id in monitoring.get("blocking_incidents") or []:
        incident = found.get(incident_id, {})
        block.append(
            LifeFact(
                "block",
                f"Open {incident.get('severity')} incident {incident_id} on {subject} (opened "
                f"{_when(incident.get('opened_at'))} by {incident.get('opened_by')}: {incident.get('reason')}).",
                f'govern withdraw {facts.name} --incident {incident_id} --reason "..."'
                if serving
                else f'govern incident close {incident_id} --reason "..."   # once it is resolved',
            )
        )
    if serving and latest is None:
        warn.append(
            LifeFact(
                "warn",
                f"{subject} serves {' and '.join(serving)}, and no window of its production traffic has been checked.",
                f"govern monitor {facts.name} {facts.version} --traffic FILE   # the version's own serving logs",
            )
        )
    for check in monitoring.get("checks") or []:
        standing = check.get("evidence") or {}
        if standing.get("kind") in ("refused", "rehearsal"):
            what = "refused as evidence" if standing["kind"] == "refused" else "a rehearsal, not production evidence"
            warn.append(
                LifeFact(
                    "warn",
                    f"{_window_label(check)}, verdict {check.get('verdict')}, is {what}: "
                    + "; ".join(standing.get("reasons") or []),
                )
            )
    if latest is not None:
        for line in _rules_beyond_bound(latest):
            warn.append(LifeFact("warn", f"{_window_label(latest)}: {line}"))
    for incident in monitoring.get("incidents") or []:
        if incident.get("open") and incident["id"] not in (monitoring.get("blocking_incidents") or []):
            warn.append(
                LifeFact(
                    "warn", f"Open {incident.get('severity')} incident {incident['id']}: {incident.get('reason')}."
                )
            )
        for concern in incident.get("concerns") or []:
            warn.append(LifeFact("warn", f"Incident {incident['id']} ({incident.get('severity')}): {concern}."))
    decisions = [
        f"{e['action']} by {e['actor']} (#{e['seq']})"
        for e in (facts.approvals or {}).get("events") or []
        if e.get("action") in _DECISIONS
    ]
    info = [LifeFact("info", "Decisions recorded: " + "; ".join(decisions) + ".")] if decisions else []
    return block + warn + info


#: Trail events that are people's decisions about the version (shown in the life summary, in order).
_DECISIONS = frozenset(
    {"approved", "rejected", "promoted", "canary_started", "canary_ended", "rolled_back", "withdrawn"}
)


def decide_verdict(facts: ReportFacts) -> Verdict:
    """Run every check over the facts; promotable only when none failed or is missing."""
    checks = [check(facts) for check in CHECKS]
    return Verdict(
        promotable=all(c.status in ("pass", "not_applicable") for c in checks),
        checks=checks,
        warnings=collect_warnings(facts),
        notices=collect_notices(facts),
        serving=list((facts.approvals or {}).get("serving") or []),
        life=life_facts(facts),
    )
