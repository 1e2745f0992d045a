"""Gate decisions: what every gate returns, publishes, and what training, registration and the report require.

A gate (PII scan, validation, evaluation) returns :class:`Violation` objects,
never a boolean. :func:`decide` applies waivers and turns them into a
:class:`GateDecision`, bound to the SHA-256 of the exact files it judged. A
gate stage hands it to :func:`publish_decision`, which records a signed
``gate_decision`` (``eval_decision`` for the evaluation gate) event in the
audit trail — subject ``gate:<stage>`` with the decision file's SHA-256,
evidence the SHA-256 of every judged file and of the policy — and then writes
the JSON (a DVC metric). :func:`require_passed_gates` is what a training
stage calls before it touches data; :func:`read_published_decision` is how
the register stage reads the evaluation's decision, and
:func:`require_recorded_gates` how it checks the decisions a model was trained
under.

Trust boundary: a decision file is data anyone with write access to the
working tree can edit (its hash in ``dvc.lock`` too). It is believed only when
the audit trail verifies and holds a signed event that published exactly its
bytes; the judged files are then recomputed against the hashes that event
signed. The JSON itself carries no timestamp or run id (it is DVC-hashed); when
and by whom it was published is the event's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from governance.errors import ConfigError, DataError, PolicyViolation
from governance.files import write_atomic
from governance.lineage import sha256_file

if TYPE_CHECKING:  # the trail (SQLAlchemy) is imported where a decision is published or checked
    from governance.records import Record
    from governance.trail import Event

Severity = Literal["deny", "warn"]


class Violation(BaseModel):
    """One rule's finding: rule id, severity, the object judged and a message.

    ``message`` names the object, the observed value and the threshold; it is
    rendered conftest-style by :meth:`line`.
    """

    model_config = ConfigDict(frozen=True)

    rule_id: str
    severity: Severity
    subject: str
    message: str
    waived_by: str | None = None

    def line(self) -> str:
        tag = f"{self.severity}  {self.rule_id}  {self.subject}: {self.message}"
        return tag + (f"  [waived by {self.waived_by}]" if self.waived_by else "")


class Waiver(BaseModel):
    """A recorded exception to one rule: who granted it, why, and until when."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule_id: str
    granted_by: str
    reason: str
    expires: dt.date
    subject: str | None = Field(default=None, description="limit the waiver to one subject (file path)")

    def covers(self, violation: Violation, today: dt.date) -> bool:
        return (
            violation.rule_id == self.rule_id
            and today <= self.expires
            and (self.subject is None or self.subject == violation.subject)
        )


class WaiverFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    waivers: list[Waiver] = []


#: The one file gate waivers come from, in the policy folder: never a path from params.
WAIVERS_FILE = "waivers.yaml"
#: Evidence keys of the decisive files a decision was judged under: ``reviewed:<path>`` -> SHA-256 of their bytes.
REVIEWED_KEY = "reviewed:"
#: Evidence key of the commit the decisive files were reviewed at.
REVIEWED_COMMIT_KEY = "reviewed_commit"
#: The ref that commit was resolved from: ``origin/main`` (or the named ``GOVERN_REVIEWED_REF``), or ``HEAD`` where
#: the unnamed default fell back to the checkout's own commit (a sandbox, or a clone whose protected ref is gone)
REVIEWED_REF_KEY = "reviewed_ref"
#: Who signed that commit, as git verified it against the team's signers (``GOVERN_REVIEW_SIGNERS``), where named.
REVIEWED_SIGNER_KEY = "reviewed_signed_by"


def gate_waivers_path() -> Path:
    """``policies/waivers.yaml`` (in ``GOVERN_POLICY_DIR`` if set: it counts only where it is the reviewed file)."""
    from governance.policy.approvals import policy_dir

    return policy_dir() / WAIVERS_FILE


def read_waiver_file(path: str | Path, data: bytes | None = None) -> list[Waiver]:
    """Parse a waiver file, or ``data`` read from it (a missing one holds none). Believes nothing: callers decide
    what counts, from the bytes parsed."""
    from governance.policy import parse_yaml, validate_model

    path = Path(path)
    if data is None:
        if not path.is_file():
            return []
        data = path.read_bytes()
    return validate_model(parse_yaml(data, path), WaiverFile, str(path)).waivers


def load_waivers(path: str | Path | None = None) -> list[Waiver]:
    """The gate waivers that count: from the reviewed waiver file, each granted by a holder of ``grant_waiver``.

    Like approval waivers, a gate waiver is a record someone reviewed: the file
    must be the reviewed version (else the gate refuses, naming the file), and
    whoever ``granted_by`` names must hold a role the reviewed approvals policy
    allows to ``grant_waiver`` (else the gate refuses, naming the waiver). A
    missing file means no waivers. ``path`` exists for tools that read another
    file for display; gates call this without one.
    """
    from governance.policy import parse_yaml, validate_model
    from governance.policy.review import read_reviewed

    path = Path(path) if path is not None else gate_waivers_path()
    if not path.is_file():
        return []
    review = read_reviewed(path)
    waivers = read_waiver_file(path, review.data)
    if not waivers:
        return []
    if not review.reviewed:
        raise PolicyViolation(review.refusal("waiver file"))
    from governance.policy.approvals import ApprovalsPolicy, approvals_policy_path

    approvals = read_reviewed(approvals_policy_path())
    if not approvals.reviewed:
        raise PolicyViolation(approvals.refusal("approvals policy (who may grant a waiver)"))
    policy = validate_model(parse_yaml(approvals.data, approvals.path), ApprovalsPolicy, str(approvals.path))
    for number, waiver in enumerate(waivers, start=1):
        if policy.acting_role(waiver.granted_by, "grant_waiver") is None:
            allowed = ", ".join(policy.permissions.get("grant_waiver", [])) or "nobody"  # type: ignore[call-overload]
            raise PolicyViolation(
                f"{path}: waiver {number} ({waiver.rule_id}) is granted_by {waiver.granted_by}, who holds no role "
                f"allowed to grant_waiver in {approvals.path} (allowed: {allowed}); remove it, or have a "
                "waiver authority grant it in a reviewed change"
            )
    return waivers


def bind_reviewed_files(decision: GateDecision, policy_sha256: str | None = None) -> dict[str, str]:
    """Evidence binding a decision to the reviewed files it was judged under; refuses any that is not reviewed.

    The gate's policy always; the waiver file when it holds waivers; every
    instrument the decision names (the safety judge, the sets' sources file).
    Each must be the reviewed version now (one line naming the file otherwise),
    and the policy's and each instrument's reviewed bytes must be what the gate
    used (``policy_sha256``, the instrument's hash), so an edit between the
    gate's read and this check is refused too.
    """
    from governance.policy.review import read_reviewed

    reviews = [read_reviewed(decision.policy_path)]
    if not reviews[0].data and not Path(decision.policy_path).is_file():
        raise ConfigError(
            f"{decision.policy_path}: policy of the {decision.gate} gate not found; a decision is published "
            "with the SHA-256 of the policy it was judged under"
        )
    waivers = gate_waivers_path()
    if waivers.is_file() and (any(v.waived_by for v in decision.violations) or load_waivers(waivers)):
        reviews.append(read_reviewed(waivers))
    for review in reviews:
        if not review.reviewed:
            raise PolicyViolation(review.refusal(f"{decision.gate} gate's file"))
    for instrument in decision.instruments:
        review = read_reviewed(instrument.path)
        if not review.reviewed:
            raise PolicyViolation(review.refusal(f"{decision.gate} gate's instrument"))
        if review.sha256 != instrument.sha256:
            raise PolicyViolation(
                f"{instrument.path}: the {decision.stage} stage read it as sha256 {instrument.sha256[:12]}…, but the "
                f"reviewed file holds {review.sha256[:12]}…: it changed while the stage ran; re-run the stage"
            )
        reviews.append(review)
    if policy_sha256 is not None and policy_sha256 != reviews[0].sha256:
        raise PolicyViolation(
            f"{decision.policy_path}: the {decision.gate} gate judged under sha256 {policy_sha256[:12]}…, but the "
            f"reviewed file holds {reviews[0].sha256[:12]}…: it changed while the gate ran; re-run the gate"
        )
    return {
        **{f"{REVIEWED_KEY}{Path(r.path)}": r.sha256 for r in reviews},
        REVIEWED_COMMIT_KEY: str(reviews[0].commit),
        REVIEWED_REF_KEY: str(reviews[0].ref),
        **({REVIEWED_SIGNER_KEY: reviews[0].signer} if reviews[0].signer else {}),
    }


def require_reviewed_bindings(event: Event, source: str) -> None:
    """Refuse unless every decisive file the event was judged under is still the reviewed version, byte for byte.

    Asked at training, registration and wherever a published decision is read:
    an event that binds no reviewed policy (published before the binding, or
    by hand) does not count.
    """
    from governance.policy.review import read_reviewed

    stage = event.details.get("stage", "?")
    bound = {k.removeprefix(REVIEWED_KEY): v for k, v in event.evidence.items() if k.startswith(REVIEWED_KEY)}
    policy = str(event.details.get("policy_path") or "")
    if str(Path(policy)) not in {str(Path(p)) for p in bound}:
        raise PolicyViolation(
            f"{source}: the {stage} decision (event #{event.seq}) does not bind the review of its policy {policy}; "
            f"re-run the gate: dvc repro -f {stage}"
        )
    for path, digest in bound.items():
        review = read_reviewed(path)
        if not review.reviewed:
            raise PolicyViolation(f"{source}: {review.refusal('file')}")
        if review.sha256 != digest:
            raise PolicyViolation(
                f"{source}: {path} is now the reviewed sha256 {review.sha256[:12]}…, but the {stage} decision "
                f"(event #{event.seq}) was judged under {digest[:12]}…; re-run the gate: dvc repro -f {stage}"
            )


class DatasetRef(BaseModel):
    """A file a decision is bound to, by content hash."""

    model_config = ConfigDict(frozen=True)

    path: str
    sha256: str
    records: int | None = None


class GateDecision(BaseModel):
    """The record a gate writes: what was judged, under which policy, and the verdict.

    A pure function of the judged bytes, the policy and the waivers in force: no
    timestamp or run id, so the file's hash in ``dvc.lock`` is reproducible. When
    the gate ran is recorded by the stage's OpenLineage events and MLflow run.
    """

    gate: str
    stage: str
    passed: bool
    datasets: list[DatasetRef]
    policy_path: str
    policy_version: str
    counts: dict[str, int]
    violations: list[Violation]
    details: dict[str, Any] = {}
    # Files besides the policy that decided how the evidence was read (the safety judge, the safety sets' sources
    # file), each by the hash of the bytes that decided: like the policy, each counts only as its reviewed version
    instruments: list[DatasetRef] = []
    # The SHA-256 of the policy bytes the gate parsed (PolicyFile.sha256): publishing refuses unless the reviewed
    # policy is those very bytes, so a policy swapped between the gate's read and the binding is never bound
    policy_sha256: str | None = None

    def summary_lines(self) -> list[str]:
        return [violation.line() for violation in self.violations]


def decide(
    *,
    gate: str,
    stage: str,
    datasets: Sequence[DatasetRef],
    policy_path: str | Path,
    policy_version: str,
    violations: Iterable[Violation],
    waivers: Sequence[Waiver] = (),
    details: dict[str, Any] | None = None,
    today: dt.date | None = None,
    instruments: Sequence[DatasetRef] = (),
    policy_sha256: str | None = None,
) -> GateDecision:
    """Apply waivers to violations and decide: passed unless an unwaived deny remains.

    ``instruments`` are the decisive files besides the policy that the evidence was read with (by the hash of the
    bytes that were used): :func:`publish_decision` refuses unless each is the reviewed version. ``policy_sha256``
    is the hash of the policy bytes the gate parsed (its policy's ``sha256``), checked the same way.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    final: list[Violation] = []
    for violation in violations:
        waiver = next((w for w in waivers if violation.severity == "deny" and w.covers(violation, today)), None)
        if waiver is not None:
            violation = violation.model_copy(update={"waived_by": waiver.granted_by})
        final.append(violation)
    counts = {
        "deny": sum(v.severity == "deny" and v.waived_by is None for v in final),
        "warn": sum(v.severity == "warn" for v in final),
        "waived": sum(v.waived_by is not None for v in final),
    }
    return GateDecision(
        gate=gate,
        stage=stage,
        passed=counts["deny"] == 0,
        datasets=list(datasets),
        policy_path=str(policy_path),
        policy_version=policy_version,
        counts=counts,
        violations=final,
        details=details or {},
        instruments=list(instruments),
        policy_sha256=policy_sha256,
    )


def read_judged_records(path: str | Path) -> tuple[list[Record], DatasetRef]:
    """A file's records and its :class:`DatasetRef`, bound to the very bytes they were parsed from (one read).

    What an evaluation judges is what its decision names: a file swapped while
    it is read, or between the read and a separate hash, is never bound to a
    verdict about other bytes.
    """
    from governance.records import ReadDigest, iter_records

    digest = ReadDigest()
    records = list(iter_records(path, digest=digest))
    return records, DatasetRef(path=str(path), sha256=digest.sha256, records=len(records))


def dataset_ref(path: str | Path, records: int | None = None) -> DatasetRef:
    """Bind a file by its SHA-256 (the exact bytes a gate judged)."""
    return DatasetRef(path=str(path), sha256=sha256_file(path), records=records)


#: The trail subject of a gate stage's decisions is ``gate:<stage>``, its hash the decision file's SHA-256.
SUBJECT_PREFIX = "gate:"
#: The gate whose decisions are ``eval_decision`` events; every other gate's are ``gate_decision``.
EVAL_GATE = "eval"
#: Evidence keys of the judged files: ``data:<path>`` -> SHA-256.
DATA_KEY = "data:"
#: Evidence keys of the files a gate read to write the files it judged (the PII gate's inputs): ``input:<path>``.
INPUT_KEY = "input:"
#: The role a gate stage's events are recorded under.
GATE_ROLE = "gate stage"


def decision_event_type(gate: str) -> str:
    """``eval_decision`` for the evaluation gate, ``gate_decision`` for every data gate."""
    return "eval_decision" if gate == EVAL_GATE else "gate_decision"


def decision_bytes(decision: GateDecision) -> bytes:
    """The decision file's exact bytes (sorted keys, no timestamp): what its published SHA-256 is of.

    A decision with no instrument but its policy (every gate but a safety evaluation) omits the empty list, and
    one built without its policy's hash omits that: its bytes are what they were before decisions named them.
    """
    empty = {"instruments"} if not decision.instruments else set()
    empty |= {"policy_sha256"} if decision.policy_sha256 is None else set()
    document = decision.model_dump(mode="json", exclude=empty or None)
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def write_decision(decision: GateDecision, path: str | Path) -> None:
    """Write a decision JSON atomically (never a half-written 'passed'), without publishing it.

    No later step believes a file written only this way: gate stages call
    :func:`publish_decision`. For fixtures and comparisons that need the bytes.
    """
    write_atomic(Path(path), decision_bytes(decision))


def publish_decision(
    decision: GateDecision,
    path: str | Path,
    *,
    evidence: Mapping[str, str] | None = None,
    policy_sha256: str | None = None,
) -> Event:
    """Record ``decision`` as a signed trail event, then write it to ``path`` atomically.

    The event (``gate_decision``, or ``eval_decision`` for the evaluation gate)
    has subject ``gate:<stage>`` with the file's SHA-256, and evidence
    ``decision_sha256``, ``policy_sha256`` (of ``decision.policy_path`` unless
    given) and ``data:<path>`` for every judged file, plus ``evidence`` (e.g.
    the evaluated ``model_sha256``). Idempotent: the same bytes with the same
    evidence append nothing (``created`` False). The event comes first, so a
    trail that refuses leaves no file behind to be mistaken for a decision.
    """
    from governance import trail
    from governance.identity import current_identity

    path = Path(path)
    data = decision_bytes(decision)
    digest = hashlib.sha256(data).hexdigest()
    # Every file that decided must be the reviewed version, bound by hash into the event
    reviewed = bind_reviewed_files(decision, policy_sha256 if policy_sha256 is not None else decision.policy_sha256)
    policy_sha256 = reviewed[f"{REVIEWED_KEY}{Path(decision.policy_path)}"]
    recorded = {
        **(evidence or {}),  # first: what is computed here cannot be overridden
        **reviewed,
        "decision_sha256": digest,
        "policy_sha256": policy_sha256,
        **{f"{DATA_KEY}{Path(ref.path)}": ref.sha256 for ref in decision.datasets},
    }
    kind = decision_event_type(decision.gate)
    verdict = "passed" if decision.passed else f"denied ({decision.counts.get('deny', 0)} rule(s))"

    def already(events: list[Event]) -> Event | None:
        return next(
            (
                e
                for e in events
                if e.event_type == kind and e.subject.objective_hash == digest and e.evidence == recorded
            ),
            None,
        )

    # Who published it: the identity the tracking server authenticated for this run (the service account);
    # the local, unverified user only on the embedded store
    who = current_identity()
    event = trail.record(
        kind,
        actor=who.user,
        role=GATE_ROLE,
        identity_method=who.method,
        subject=trail.Subject(objective=f"{SUBJECT_PREFIX}{decision.stage}", objective_hash=digest),
        reason=f"{decision.stage}: {decision.gate} gate {verdict}",
        evidence=recorded,
        details={
            "gate": decision.gate,
            "stage": decision.stage,
            "passed": decision.passed,
            "counts": dict(decision.counts),
            "policy_path": decision.policy_path,
            "policy_version": decision.policy_version,
            "decision": str(path),
            **who.details(),
        },
        guard=already,
    )
    write_atomic(path, data)
    return event


def _matching_events(kind: str, stage: str, digest: str) -> list[Event]:
    """Stored events of ``kind`` that published the decision of ``stage`` with this SHA-256 (trail verified first)."""
    from governance import trail

    return [
        e
        for e in trail.events(objective=f"{SUBJECT_PREFIX}{stage}", event_types=[kind])
        if e.subject.objective_hash == digest and e.evidence.get("decision_sha256") == digest
    ]


def judged_files(event: Event) -> dict[str, str]:
    """``{path: sha256}`` of the files a published decision judged, as its event signed them."""
    return {k.removeprefix(DATA_KEY): v for k, v in event.evidence.items() if k.startswith(DATA_KEY)}


@dataclass(frozen=True)
class PublishedDecision:
    """A decision file whose exact bytes a verified trail event published."""

    path: Path
    decision: GateDecision
    sha256: str
    event: Event


def read_decision(path: str | Path) -> GateDecision:
    """Parse a decision file. Believes nothing: for display and for a decision checked elsewhere."""
    return _load(path)[0]


def _load(path: str | Path) -> tuple[GateDecision, str]:
    path = Path(path)
    if not path.is_file():
        raise PolicyViolation(f"{path}: gate decision missing; run the gate stage first (dvc repro)")
    data = path.read_bytes()  # parsed and hashed from the same bytes
    try:
        decision = GateDecision.model_validate_json(data)
    except ValueError as exc:
        raise DataError(f"{path}: not a valid gate decision ({exc.__class__.__name__})") from None
    return decision, hashlib.sha256(data).hexdigest()


def _published(path: str | Path, require: Mapping[str, str] | None = None) -> PublishedDecision:
    """The decision at ``path`` and the event that published it; the caller has verified the trail."""
    decision, digest = _load(path)
    kind = decision_event_type(decision.gate)
    found = _matching_events(kind, decision.stage, digest)
    if not found:
        raise PolicyViolation(
            f"{path}: no signed {kind} event in the audit trail matches this file (sha256 {digest[:12]}…): "
            f"it was not published by the {decision.stage} stage; re-run the gate: dvc repro -f {decision.stage}"
        )
    require = dict(require or {})
    for event in reversed(found):
        if all(event.evidence.get(k) == v for k, v in require.items()):
            require_reviewed_bindings(event, str(path))
            return PublishedDecision(Path(path), decision, digest, event)
    latest = found[-1]
    key, wanted = next((k, v) for k, v in require.items() if latest.evidence.get(k) != v)
    raise PolicyViolation(
        f"{path}: the signed {kind} event #{latest.seq} records {key} {str(latest.evidence.get(key))[:12]}…, "
        f"not {wanted[:12]}…; re-run it: dvc repro -f {decision.stage}"
    )


def read_published_decision(path: str | Path, *, require: Mapping[str, str] | None = None) -> PublishedDecision:
    """The decision at ``path``, accepted only when a verified trail event published exactly its bytes.

    ``require`` names evidence the event must carry (e.g. the evaluated
    ``model_sha256``). Raises :class:`~governance.errors.TrailBroken` when the
    trail does not verify, :class:`PolicyViolation` naming the file and its
    SHA-256 when no event matches.
    """
    from governance import trail

    trail.require_intact()
    return _published(path, require)


def require_passed_gates(files: Sequence[str | Path], decision_paths: Sequence[str | Path]) -> list[GateDecision]:
    """Refuse unless each decision was published by its gate stage, passed, and covers the exact bytes of every file.

    Raises :class:`PolicyViolation` naming the decision that no signed trail
    event published, the file whose hash differs, or the first denying rule
    (:class:`~governance.errors.TrailBroken` when the trail does not verify).
    Returns the decisions for lineage.
    """
    from governance import trail

    if not decision_paths:
        raise ConfigError("no gate decisions configured for this stage; a training stage needs at least one")
    missing = [str(f) for f in files if not Path(f).is_file()]
    if missing:
        raise DataError(f"{missing[0]}: training data file not found; run the gate stages that write it (dvc repro)")
    current = {str(Path(f)): sha256_file(f) for f in files}
    trail.require_intact()
    decisions = []
    stages: dict[str, str | Path] = {}
    for decision_path in decision_paths:
        published = _published(decision_path)
        decision = published.decision
        # One gate's decision copied to another gate's path must not stand in for the gate that never ran
        if decision.stage in stages:
            raise PolicyViolation(
                f"{decision_path}: is the {decision.stage} decision again (as {stages[decision.stage]}); each "
                "configured gate decision must come from its own gate stage, re-run them: dvc repro"
            )
        stages[decision.stage] = decision_path
        judged = {str(Path(path)): digest for path, digest in judged_files(published.event).items()}
        for file, digest in current.items():
            if file not in judged:
                raise PolicyViolation(
                    f"{decision_path}: the {decision.gate} gate did not judge {file}; re-run it (dvc repro)"
                )
            if judged[file] != digest:
                raise PolicyViolation(
                    f"{decision_path}: {file} has sha256 {digest[:12]}… but the {decision.gate} gate passed "
                    f"{judged[file][:12]}…; the data changed since it was gated, re-run the gate"
                )
        if not decision.passed:
            first = next(v for v in decision.violations if v.severity == "deny" and not v.waived_by)
            raise PolicyViolation(
                f"{decision_path}: {decision.gate} gate denied {decision.counts['deny']} rule(s); first: {first.line()}"
            )
        decisions.append(decision)
    return decisions


def require_recorded_gates(
    gates: Sequence[Mapping[str, Any]], datasets: Mapping[str, str], *, source: str
) -> list[Event]:
    """The signed events of the gate decisions a model was trained under, as its training manifest lists them.

    ``gates`` are the manifest's entries (``stage``, ``decision``,
    ``decision_sha256``), ``datasets`` its ``{path: sha256}``. Refuses, naming
    ``source``, unless every entry is a decision a verified ``gate_decision``
    event published and every dataset is what that event judged. Whether the
    gates passed is then read from the events (``details.passed``), never from
    the manifest.
    """
    from governance import trail

    if not gates:
        raise PolicyViolation(
            f"{source}: records no gate decisions; only a model trained under its gates is registered "
            "(re-run training: dvc repro)"
        )
    trail.require_intact()
    events = []
    for gate in gates:
        stage, digest = str(gate.get("stage")), str(gate.get("decision_sha256"))
        found = _matching_events("gate_decision", stage, digest)
        if not found:
            raise PolicyViolation(
                f"{source}: the model was trained under {gate.get('decision')} (sha256 {digest[:12]}…), which no "
                f"signed gate_decision event in the audit trail matches: it was not published by the {stage} stage; "
                f"re-run the gate and retrain: dvc repro -f {stage}"
            )
        event = found[-1]
        require_reviewed_bindings(event, source)
        judged = {str(Path(path)): sha for path, sha in judged_files(event).items()}
        for path, sha in datasets.items():
            if judged.get(str(Path(path))) != sha:
                raise PolicyViolation(
                    f"{source}: {path} (sha256 {sha[:12]}…) is not what the signed {stage} decision "
                    f"(event #{event.seq}) judged; re-run the gate and retrain: dvc repro -f {stage}"
                )
        events.append(event)
    return events
