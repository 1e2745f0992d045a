"""``govern monitor``: judge a window of production traffic of one version, and record the verdict.

:func:`check_window` reads the window (only the named version's requests),
the baseline (the version's recorded evaluation generations from its MLflow
run, which its signed evaluation bound, or an earlier window a signed production
check passed) and ``policies/monitoring.yaml``, and applies every
rule (:mod:`governance.monitoring.checks`). :func:`record_check` then makes
the verdict a record, in this order: the trail must verify
(:func:`governance.trail.require_intact`); an MLflow run tagged with the
version gets the metrics, ``monitoring.json`` and the drift report
(``drift_report.html``, inline SVG charts); a ``monitoring_checked`` event
lands in the trail (through :func:`governance.trail.record`) with the verdict,
each rule's observed value and the evidence hashes; the version's
``governance.monitoring`` tag mirrors it. A deny *recommends* a rollback to
the target ``govern rollback`` would choose; rolling back stays a person's
decision.

What the window can be evidence of is decided before any rule runs
(:mod:`governance.monitoring.evidence`): a window dated before the version's
registration in the trail (or after the check) is refused unless it is
recorded as a rehearsal (``--rehearsal``, or requests marked
``"rehearsal": true``); a rehearsal is judged and recorded as one, never as
the version's production record, and recommends nothing.

Trust: the trail event is the record; the MLflow run and tag are views.
Nothing raw leaves this module: rules report counts, statistics and masked
PII shapes, never a prompt or a response.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from governance import registry, trail
from governance.errors import ConfigError, DataError, GovernanceError
from governance.gates import Violation
from governance.identity import Identity, current_identity
from governance.lineage import sha256_file
from governance.monitoring import checks
from governance.monitoring.embeddings import EmbeddingStore, cache_dir, cache_key
from governance.monitoring.evidence import PRODUCTION, REFUSED, WindowEvidence, judge_window, registration_time
from governance.monitoring.traffic import Window, read_window, window_from_generations
from governance.policy import load_policy_file, load_reviewed_policy
from governance.policy.monitoring import MonitoringPolicy

log = logging.getLogger(__name__)

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no download bars in a reviewer's output

GENERATIONS_ARTIFACT = "evaluation/generations.json"
TAG_MONITORING = "governance.monitoring"


def monitoring_policy_path() -> Path:
    from governance.approvals import policy_dir

    return policy_dir() / "monitoring.yaml"


def load_monitoring_policy(path: str | Path | None = None) -> MonitoringPolicy:
    return load_policy_file(path or monitoring_policy_path(), MonitoringPolicy)


@dataclass
class Baseline:
    window: Window
    label: str
    evidence: dict[str, str]


@dataclass
class MonitorResult:
    """Every rule's result on one window, and what it was judged against."""

    name: str
    version: str
    window: Window
    baseline: Baseline
    policy: MonitoringPolicy
    policy_path: Path
    results: list[checks.RuleResult]
    checked_at: str
    seconds: float
    evidence: dict[str, str] = field(default_factory=dict)
    recommendation: str | None = None
    #: Seconds per step (read, each rule family), for benchmarks and ``-v``.
    timings: dict[str, float] = field(default_factory=dict)
    #: What the window is evidence of: the version's production, or a rehearsal (a refused one never gets here).
    standing: WindowEvidence = field(default_factory=lambda: WindowEvidence("production", (), None))

    @property
    def rehearsal(self) -> bool:
        return not self.standing.is_production

    @property
    def violations(self) -> list[Violation]:
        return [v for r in self.results for v in r.violations]

    @property
    def blocking(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "deny"]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "warn"]

    @property
    def passed(self) -> bool:
        return not self.blocking

    @property
    def verdict(self) -> str:
        return "passed" if self.passed else "denied"

    def metrics(self) -> dict[str, float]:
        out = {"window_requests": float(len(self.window)), "baseline_responses": float(len(self.baseline.window))}
        for result in self.results:
            out.update({k: float(v) for k, v in result.metrics.items() if checks.finite(v)})
        return out

    def summary(self) -> dict[str, Any]:
        """The verdict as plain data: what the trail event, ``monitoring.json`` and the report keep."""
        return {
            "model": self.name,
            "version": self.version,
            "verdict": self.verdict,
            "checked_at": self.checked_at,
            "window": self.window.span(),
            "evidence": self.standing.to_json(),
            "baseline": {"label": self.baseline.label, "requests": len(self.baseline.window)},
            "policy": {"path": str(self.policy_path), "version": self.policy.version},
            "rules": [r.summary() for r in self.results],
            "blocking": [v.rule_id for v in self.blocking],
            "warnings": [v.line() for v in self.warnings],
            "recommendation": self.recommendation,
        }


# --------------------------------------------------------------------------- baselines


def require_signed_generations(name: str, version: str, digest: str, source: str, hint: str) -> None:
    """Refuse baseline generations that no signed evaluation of this version's model bound (attack M6).

    The version's model is the ``model_sha256`` its signed ``model_registered`` event froze (for a version the
    trail never registered, its ``lineage.model_sha256`` tag); an evaluation of that model binds its
    ``generations.json`` in its signed event (``generations_sha256``). The run's artifact is
    editable by anyone with MLflow access: replaced by the drifted window, every drift rule compared the window
    with itself and passed.
    """
    from governance.evaluation import GENERATIONS_EVIDENCE

    registered = trail.events(model=name, version=version, event_types=["model_registered"])
    if registered:
        model_sha256 = registered[0].evidence.get("model_sha256")
    else:  # a version the trail never registered: its tag names the model, whose evaluation must still be signed
        model_sha256 = (registry.get_version(name, version).tags or {}).get("lineage.model_sha256")
    if not model_sha256:
        raise ConfigError(f"{name} v{version}: no model hash recorded to bind {source} to; {hint}")
    signed = {
        e.evidence.get(GENERATIONS_EVIDENCE)
        for e in trail.events(event_types=["eval_decision"])
        if e.evidence.get("model_sha256") == model_sha256
    }
    if digest not in signed:
        raise ConfigError(
            f"{source}: sha256 {digest[:12]}… is not the generations a signed evaluation of {name} v{version}'s "
            f"model ({model_sha256[:12]}…) bound ({GENERATIONS_EVIDENCE}); the artifact was changed, or the "
            f"evaluation predates the binding: re-run the evaluate stage, or {hint}"
        )


def recorded_generations(name: str, version: str) -> Baseline:
    """The version's evaluation generations, from its training run's ``evaluation/generations.json``."""
    mv = registry.get_version(name, version)
    run_id = mv.run_id or ""
    hint = "pass --baseline FILE (an earlier traffic window of this or the previous version)"
    if not run_id:
        raise ConfigError(f"{name} v{version}: no MLflow run recorded, so no evaluation generations; {hint}")
    client = registry.client()
    scratch = Path(tempfile.mkdtemp(prefix="govern-baseline-"))
    try:
        with registry.registry_errors(f"reading the evaluation generations of {name} v{version}"):
            path = Path(client.download_artifacts(run_id, GENERATIONS_ARTIFACT, str(scratch)))
    except GovernanceError:
        raise ConfigError(
            f"{name} v{version}: run {run_id} has no {GENERATIONS_ARTIFACT} "
            f"(no recorded evaluation generations); {hint}"
        ) from None
    source = f"run {run_id}:{GENERATIONS_ARTIFACT}"
    data = path.read_bytes()  # read once: what is checked is what is parsed
    digest = hashlib.sha256(data).hexdigest()
    require_signed_generations(name, version, digest, source, hint)
    try:
        generations = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise DataError(f"{source}: not readable JSON ({exc.__class__.__name__})") from None
    if not isinstance(generations, list):
        raise DataError(f"{source}: expected a JSON array of generations")
    window = window_from_generations(generations, source)
    return Baseline(
        window=window,
        label=f"evaluation generations of {name} v{version} ({source})",
        evidence={"baseline_generations_sha256": digest, "baseline_run": run_id},
    )


def require_checked_window(name: str, digest: str, source: str) -> dict[str, Any]:
    """The signed ``monitoring_checked`` event that vouches for a traffic window as a production baseline of
    ``name`` (attack M7): one that checked those very bytes (``traffic_sha256``) as production evidence of a
    version of ``name`` and passed. Any other file is refused (:class:`~governance.errors.ConfigError`).

    ``--baseline FILE`` took any file the person running the monitor named: the drifted window itself, or a
    window checked as a rehearsal (which anybody may record, and which is not the version's answers), made
    every drift rule compare the window with itself and pass. A window a denied check recorded is no baseline
    either: the drift it showed would become the norm the next window is held to. Nor is a window that was itself
    judged against another window: each baseline was held to a version's signed evaluation generations, so drift
    cannot creep in through a chain of windows, each within bounds of the last.
    """
    vouching = [
        e
        for e in trail.events(model=name, event_types=["monitoring_checked"])
        if e.evidence.get("traffic_sha256") == digest
        and (e.details.get("evidence") or {}).get("kind") == PRODUCTION
        and e.details.get("verdict") == "passed"
        and e.evidence.get("baseline_generations_sha256")
    ]
    if not vouching:
        raise ConfigError(
            f"{source}: sha256 {digest[:12]}… is not a traffic window a signed monitoring check of {name} recorded "
            "as production evidence that passed against a version's evaluation generations; a production verdict "
            "compares only with a baseline the audit trail vouches for: omit --baseline (the version's evaluation "
            "generations, which its signed evaluation bound), pass a window govern monitor checked that way and "
            "passed, or record this check as a rehearsal (--rehearsal)"
        )
    event = vouching[-1]
    return {"baseline_checked_event": str(event.seq), "baseline_checked_version": event.subject.version}


def baseline_window(path: str | Path, name: str | None = None) -> Baseline:
    """An earlier traffic window as the baseline (every request in the file counts). With ``name`` (a production
    check of a version of that model) the window must be one the trail vouches for (:func:`require_checked_window`);
    the file is read once, and the bytes checked are the bytes compared with."""
    window = read_window(path)
    vouched = {} if name is None else require_checked_window(name, window.sha256, str(path))
    label = f"traffic window {path}" + (
        f" (checked and passed: event #{vouched['baseline_checked_event']})" if vouched else " (not vouched for)"
    )
    return Baseline(window=window, label=label, evidence={"baseline_sha256": window.sha256, **vouched})


# --------------------------------------------------------------------------- checking


def check_window(
    name: str,
    version: str | int,
    traffic: str | Path,
    *,
    baseline: str | Path | None = None,
    policy_path: str | Path | None = None,
    scanner: Any = None,
    reward_model: Any = "registry",
    embed: checks.Embedder | None = None,
    rehearsal: bool = False,
) -> MonitorResult:
    """Apply every rule of the monitoring policy to ``traffic`` (this version's requests) against the baseline.

    ``scanner`` (a :class:`governance.pii.PiiScanner`), ``reward_model`` (a
    :class:`governance.monitoring.models.RewardModel`, None for none) and
    ``embed`` default to the project's: the PII policy, the registered reward
    model the policy names, all-MiniLM-L6-v2.

    ``rehearsal`` records the window as a rehearsal (never production
    evidence). A window dated before the version's registration in the audit
    trail, or after now, is refused (:class:`~governance.errors.DataError`)
    unless it is a rehearsal.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    last = [started]

    def lap(label: str) -> None:
        now = time.perf_counter()
        timings[label] = round(now - last[0], 4)
        last[0] = now

    version = str(version)
    policy_path = Path(policy_path or monitoring_policy_path())
    # The rules decide which drift opens an incident: only the reviewed version counts, parsed from the bytes checked
    policy = load_reviewed_policy(policy_path, MonitoringPolicy, "monitoring policy")
    rules = policy.rules
    checks.compile_patterns(rules.refusal_rate)  # a bad regex is a policy error before any work
    window = read_window(traffic, model=name, version=version)
    if len(window) < policy.min_window:
        counts = sorted(window.versions.items())
        others = ", ".join(f"{m} v{v}: {n}" for (m, v), n in counts if (m, v) != (name, version))
        how = (
            f"; the file holds no traffic of {name} v{version}: export its serving logs in the traffic shape "
            "(docs/how-to/monitoring.md, 'The traffic shape'), or rehearse with a synthetic window: "
            "python scripts/make_traffic_sample.py "
            f"--model {name} --version {version} --out traffic/"
            if len(window) == 0
            else ""
        )
        raise DataError(
            f"{traffic}: {len(window)} requests of {name} v{version} (min_window {policy.min_window} in {policy_path})"
            + (f"; {window.skipped_other_versions} requests of other versions skipped ({others})" if others else "")
            + how
        )
    # What the window can be evidence of, before minutes of scoring
    subject = f"{name} v{version}"
    moment = dt.datetime.now(dt.UTC)
    now = moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    standing = judge_window(
        window.span(),
        subject=subject,
        registered_at=registration_time(name, version),
        checked_at=moment.isoformat().replace("+00:00", "Z"),  # to the microsecond, as the requests are dated
        rehearsal=rehearsal,
    )
    if standing.kind == REFUSED:
        raise DataError(
            f"{traffic}: not evidence about {subject}: {'; '.join(standing.reasons)}; export the version's own "
            "serving logs, or record the file as a rehearsal (govern monitor --rehearsal), which is never counted "
            "as the version's production record"
        )
    # A production verdict compares only with what the trail vouches for (M6, M7); a rehearsal with any file
    if baseline is None:
        base = recorded_generations(name, version)
    else:
        base = baseline_window(baseline, name if standing.is_production else None)
    if len(base.window) == 0:
        raise DataError(f"{base.label}: empty baseline")
    lap("read")
    seed = policy.seed
    results = [
        checks.length_drift(window, base.window, rules.length_drift, subject),
        checks.refusal_rate(window, base.window, rules.refusal_rate, subject),
    ]
    lap("length_and_refusals")
    # PII: the project's scanner under policies/pii.yaml
    if scanner is None:
        scanner = project_scanner(policy_path.parent / "pii.yaml")
    results.append(checks.pii(window, rules.pii, subject, scanner=scanner, seed=seed))
    lap("pii")
    # Preference drift: the registered reward model
    if reward_model == "registry":
        from governance.monitoring.models import load_reward_model

        reward_model = load_reward_model(rules.preference_drift.reward_model)
    if reward_model is None:
        results.append(
            checks.not_measured(
                rules.preference_drift,
                subject,
                f"no registered reward model {rules.preference_drift.reward_model} at {registry.tracking_uri()}",
            )
        )
    else:
        results.append(
            checks.preference_drift(
                window,
                base.window,
                rules.preference_drift,
                subject,
                score=reward_model.score,
                seed=seed,
                scorer_name=reward_model.label,
            )
        )
    lap("preference")
    # Embedding drift: all-MiniLM-L6-v2 from its wheel, loaded only for texts the baseline's cache lacks
    store = embedding_store(base, embed)
    results.append(
        checks.embedding_drift(
            window,
            base.window,
            rules.embedding_drift,
            subject,
            embed=store.vectors,
            embed_baseline=lambda texts: store.vectors(texts, baseline=True),
            seed=seed,
        )
    )
    store.save()
    lap("embedding")
    results += [
        checks.feedback_rate(window, rules.feedback_rate, subject),
        checks.latency_p95(window, rules.latency_p95, subject),
        checks.cost(window, rules.cost, subject),
    ]
    lap("feedback_latency_cost")
    evidence = {
        "traffic_sha256": window.sha256,  # the bytes the window was read from, not the path read again
        "monitoring_policy_sha256": policy.sha256,  # the reviewed bytes the rules were parsed from
        **_pii_policy_evidence(scanner),
        **base.evidence,
        "baseline_embeddings_sha256": store.baseline_sha256,
    }
    if reward_model is not None:
        evidence["reward_model"] = reward_model.label
        if reward_model.model_sha256:
            evidence["reward_model_sha256"] = reward_model.model_sha256
    return MonitorResult(
        name=name,
        version=version,
        window=window,
        baseline=base,
        policy=policy,
        policy_path=policy_path,
        results=results,
        checked_at=now,
        seconds=time.perf_counter() - started,
        evidence=evidence,
        timings=timings,
        standing=standing,
    )


def _pii_policy_evidence(scanner: Any) -> dict[str, str]:
    """The hash of the PII policy bytes the window was scanned under (a scanner whose policy came from a file)."""
    digest = getattr(getattr(scanner, "policy", None), "sha256", None)
    return {"pii_policy_sha256": digest} if isinstance(digest, str) and digest else {}


def project_scanner(pii_path: Path) -> Any:
    """The PII gate's scanner under ``pii_path``, imported as the ``pii_scan`` stage imports it.

    presidio imports its optional transformers NLP engine (and with it torch:
    seconds) although the policy's spaCy engine never calls it; the gate's
    stage process blocks both, so here they are blocked while presidio loads,
    then unblocked for the rules that do use torch (the encoder, the reward
    model). A module already imported is left as it is.
    """
    import sys

    blocked = [name for name in ("torch", "transformers") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # Python's documented "import fails" marker
    try:
        from governance.pii import PiiScanner
        from governance.policy import load_reviewed_policy
        from governance.policy.pii import PiiPolicy

        # What counts as personal data in the window decides the pii rule: only the reviewed policy, as the gate
        policy = load_reviewed_policy(pii_path, PiiPolicy, "PII policy (what the monitor counts as personal data)")
        return PiiScanner(policy, pii_path)
    finally:
        for name in blocked:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


def embedding_store(base: Baseline, embed: checks.Embedder | None) -> EmbeddingStore:
    """Vectors for the drift rule: the project's encoder with the baseline's cache, or ``embed`` as given.

    An encoder passed in has no known identity, so nothing of it is cached
    (each distinct text is still embedded once).
    """
    if embed is not None:
        return EmbeddingStore(embed)
    from governance.monitoring import models

    baseline_sha256 = base.evidence.get("baseline_sha256") or base.evidence.get("baseline_generations_sha256", "")
    folder = cache_dir()
    model_id = models.encoder_id()
    key = cache_key(baseline_sha256, model_id)
    path = folder / f"embeddings-{key}.npz" if folder is not None and baseline_sha256 else None
    return EmbeddingStore(models.embed, model_id=model_id, key=key, path=path)


def recommend_rollback(name: str, version: str) -> str:
    """What a deny recommends: the target ``govern rollback`` would choose now (never acted on here)."""
    from governance.approvals import ALIAS_PRODUCTION, default_rollback_target, model_state

    state = model_state(name)
    holder = state.alias_holder(ALIAS_PRODUCTION)
    if holder != version:
        return (
            f"{name} v{version} does not hold production (production is "
            f"{'v' + holder if holder else 'unset'}); stop routing traffic to it"
        )
    target = default_rollback_target(name, state)
    if target is None:
        return f"no earlier approved production version of {name} to roll back to; open an incident"
    return f'roll back {name} to v{target}: govern rollback {name} --to {target} --reason "..."'


# --------------------------------------------------------------------------- the record


def render_drift_report(result: MonitorResult, out_dir: str | Path) -> Path:
    """``drift_report.html``: verdict, rules, masked PII counts, window-vs-baseline histograms (inline SVG)."""
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup

    from governance.monitoring.charts import distributions_svg

    by_id = {r.rule_id: r for r in result.results}
    rules = result.policy.rules
    panels = [
        {"title": "Response length", "xlabel": "characters", **by_id[rules.length_drift.id].series},
        {"title": "Reward-model score", "xlabel": "score", **(by_id[rules.preference_drift.id].series or {})},
        {
            "title": "Embedding distance",
            "xlabel": "cosine distance to baseline centroid",
            **by_id[rules.embedding_drift.id].series,
        },
    ]
    svg = distributions_svg(panels)
    env = Environment(
        loader=PackageLoader("governance.monitoring", "templates"), autoescape=select_autoescape(["html", "j2"])
    )
    summary = result.summary()
    html = env.get_template("drift_report.html.j2").render(
        name=result.name,
        version=result.version,
        verdict=result.verdict,
        blocking=summary["blocking"],
        recommendation=result.recommendation,
        window=summary["window"],
        evidence=summary["evidence"],
        baseline=summary["baseline"],
        policy=summary["policy"],
        checked_at=result.checked_at,
        rules=summary["rules"],
        warnings=summary["warnings"],
        pii=by_id[rules.pii.id].details,
        distributions=Markup(svg) if svg else None,
    )
    out = Path(out_dir) / "drift_report.html"
    out.write_text(html, encoding="utf-8")
    return out


def _log_run(result: MonitorResult, report: Path, summary_file: Path) -> str:
    """One MLflow run, in the version's experiment, tagged with the version; returns its id."""
    client = registry.client()
    mv = registry.get_version(result.name, result.version)
    with registry.registry_errors(f"logging the monitoring run of {result.name} v{result.version}"):
        experiment_id = (
            client.get_run(mv.run_id).info.experiment_id if mv.run_id else registry.ensure_experiment("monitoring")
        )
        run = client.create_run(
            experiment_id,
            run_name=f"monitor {result.name} v{result.version}",
            tags={
                "stage": "monitor",
                "monitor.model": result.name,
                "monitor.version": result.version,
                "monitor.verdict": result.verdict,
                "monitor.window": result.window.source,
            },
        )
        run_id = run.info.run_id
        try:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in sorted(result.metrics().items())])
            client.log_param(run_id, "monitoring_policy_version", result.policy.version)
            client.log_artifact(run_id, str(report), artifact_path="monitoring")
            client.log_artifact(run_id, str(summary_file), artifact_path="monitoring")
        except BaseException:
            client.set_terminated(run_id, status="FAILED")
            raise
        client.set_terminated(run_id)
    return run_id


def record_check(result: MonitorResult, *, identity: Identity | None = None) -> trail.Event:
    """Make the verdict a record: MLflow run + drift report, then the ``monitoring_checked`` trail event."""
    # Never append to (or judge from) a trail that does not verify
    trail.require_intact()
    identity = identity or current_identity()
    if result.rehearsal:
        result.recommendation = (
            f"rehearsal: not evidence about {result.name} v{result.version}'s production traffic; nothing to act on"
        )
    elif not result.passed:
        result.recommendation = recommend_rollback(result.name, result.version)
    scratch = Path(tempfile.mkdtemp(prefix="govern-monitor-"))
    report = render_drift_report(result, scratch)
    summary_file = scratch / "monitoring.json"
    summary_file.write_text(json.dumps(result.summary(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    run_id = _log_run(result, report, summary_file)
    summary = result.summary()
    from governance.approvals import load_approvals_policy

    roles = ",".join(load_approvals_policy().roles_of(identity.user)) or "monitor"
    event = trail.record(
        "monitoring_checked",
        actor=identity.user,
        identity_method=_method(identity),
        role=roles,
        subject=trail.Subject(model=result.name, version=result.version),
        reason=f"{'rehearsal' if result.rehearsal else 'monitoring'} window {result.window.source}: {result.verdict}"
        + (f" ({', '.join(summary['blocking'])})" if summary["blocking"] else ""),
        evidence={**result.evidence, "mlflow_run": run_id, "drift_report_sha256": sha256_file(report)},
        details={
            **identity.details(),
            "verdict": result.verdict,
            "window": summary["window"],
            "evidence": summary["evidence"],
            "baseline": summary["baseline"],
            "policy_version": result.policy.version,
            "rules": [
                {k: r[k] for k in ("rule_id", "severity", "status", "observed", "threshold", *checks.EVIDENCE_KEYS)}
                for r in summary["rules"]
            ],
            "blocking": summary["blocking"],
            "recommendation": result.recommendation or "",
        },
    )
    registry.mirror_version_tags(
        result.name,
        result.version,
        {
            TAG_MONITORING: ("rehearsal " if result.rehearsal else "")
            + f"{result.verdict} #{event.seq} {event.timestamp[:19]}Z run {run_id}"
        },
    )
    from governance.registry_anchors import anchor_committed_event

    anchor_committed_event(result.name)  # a monitoring verdict moves the model's trail-head anchor too
    log.info(
        "monitoring of %s v%s: %s (event #%d, run %s)", result.name, result.version, result.verdict, event.seq, run_id
    )
    return event


def _method(identity: Identity) -> str:
    """How the trail records who acted: authenticated by the MLflow server, or a local name nobody checked."""
    return "mlflow-basic-auth" if identity.source == "mlflow-basic-auth" else "local-unverified"
