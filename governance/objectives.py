"""Training objectives are approved by hash before any stage optimises them.

A GRPO reward function, or the recipe of an RLHF reward model, *is* what the
policy learns to maximise, so it is governed like a release. An objective is
identified by its stage, its name and a SHA-256: for a function, of its source
and of what each global name its code uses is bound to (:func:`objective_hashes`),
run from the bytes hashed (:func:`load_objective_module`). It counts as approved when the audit trail holds
an ``objective_approved`` event for that exact hash — written by
``govern approve-objective STAGE`` (:func:`approve_objective`) or, for an
approval made in code review, by :func:`require_approved_objective` itself the
first time it accepts a hash listed in ``policies/objectives.yaml`` (the commit
that added the entry is recorded as the evidence). Changing a reward
function's code changes its hash and stops the stage until someone approves
the new one.

``approve-objective`` needs the *current* hashes of a stage's objectives, but
governance never imports pipelines statically: ``policies/objectives.yaml``
names, per stage, a module to import by string (``reward_module`` with the
function names, given directly or read from ``params.yaml``) or a
``module:function`` that returns the hashes (``hashes_from``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from governance import trail
from governance.errors import ConfigError, GovernanceError, PermissionDenied, PolicyViolation
from governance.identity import Identity, current_identity
from governance.policy import load_reviewed_policy, load_yaml, read_reviewed_policy
from governance.policy.approvals import ApprovalsPolicy
from governance.policy.objectives import CodeReviewApproval, ObjectivesPolicy
from governance.policy.review import Review, commit_adding
from governance.trail import Event, Subject

log = logging.getLogger(__name__)

PARAMS_FILE = Path("params.yaml")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ObjectiveApproval:
    """One approved objective hash and the trail event that records it."""

    stage: str
    objective: str
    sha256: str
    approved_by: str
    reason: str
    source: Literal["cli", "code_review"]
    evidence: dict[str, str] = field(default_factory=dict)
    event_seq: int = 0
    event_hash: str = ""
    created: bool = False

    @classmethod
    def from_event(cls, event: Event) -> ObjectiveApproval:
        stage, _, name = event.subject.objective.partition(":")
        return cls(
            stage=stage,
            objective=name,
            sha256=event.subject.objective_hash,
            approved_by=event.actor,
            reason=event.reason,
            source=event.details.get("source", "cli"),
            evidence=dict(event.evidence),
            event_seq=event.seq,
            event_hash=event.hash,
            created=event.created,
        )


def objective_hashes(functions: Iterable[Callable[..., Any]] | Mapping[str, Callable[..., Any]]) -> dict[str, str]:
    """``{name: sha256 of the function's source and of what its names are bound to}`` (:func:`objective_text`);
    names are ``__name__`` unless a mapping gives them."""
    items = functions.items() if isinstance(functions, Mapping) else ((None, f) for f in functions)
    out: dict[str, str] = {}
    for given, function in items:
        name = given or getattr(function, "__name__", None)
        if not name:
            raise ConfigError(f"objective {function!r} has no name; pass a mapping of name -> function")
        out[name] = hashlib.sha256(objective_text(function, name).encode("utf-8")).hexdigest()
    return out


def objective_text(function: Callable[..., Any], name: str) -> str:
    """What an objective's hash covers: the function's source, then one line per global name its code uses and
    what the name is bound to when it runs (``re = module re``, ``DataError = governance.errors.DataError``), and
    for a function or class of its own module, that one's source and bindings too.

    The source alone let a change to what is rewarded slip past an approved hash: the same body reads ``Decimal``
    or a helper from its module, and ``Decimal = lambda text: ...`` further down (or a changed helper) changes
    every reward while the body's text, and so its hash, stays the approved one.
    """
    seen: set[int] = set()

    def describe(obj: Any, label: str) -> list[str]:
        if id(obj) in seen:
            return []
        seen.add(id(obj))
        try:
            lines = [inspect.getsource(obj)]
        except (OSError, TypeError):
            what = "its source code" if obj is function else f"the source of {label}"
            raise ConfigError(f"objective {name}: cannot read {what}, so it cannot be hashed and approved") from None
        code = getattr(obj, "__code__", None)
        if code is None:  # a class: its methods' code
            codes = [v.__code__ for v in vars(obj).values() if hasattr(v, "__code__")]
        else:
            codes = [code]
        names: set[str] = set()
        while codes:
            current = codes.pop()
            names.update(current.co_names)
            codes.extend(c for c in current.co_consts if hasattr(c, "co_names"))
        module_globals = getattr(obj, "__globals__", None) or vars(inspect.getmodule(obj) or object())
        own = getattr(obj, "__module__", None)
        for bound in sorted(names & set(module_globals)):
            value = module_globals[bound]
            if inspect.ismodule(value):
                lines.append(f"# {bound} = module {value.__name__}")
            elif (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == own:
                lines.append(f"# {bound} = {own}.{value.__qualname__}:")
                lines.extend(describe(value, f"{own}.{value.__qualname__}"))
            elif inspect.isfunction(value) or inspect.isclass(value) or inspect.isbuiltin(value):
                lines.append(f"# {bound} = {value.__module__}.{value.__qualname__}")
            else:
                lines.append(f"# {bound} = {type(value).__name__} {value!r}")
        return lines

    return "\n".join(describe(function, name))


def load_objective_module(module_name: str) -> ModuleType:
    """A module of objectives, executed from its source file's bytes read once: the code that runs is the code
    :func:`objective_hashes` hashes.

    An import runs whatever ``__pycache__`` holds for the file (a stale ``.pyc`` with the source's size and mtime
    runs other code than the source shows), and ``inspect.getsource`` reads the file again when asked: a file
    swapped after the import hashed as approved while other code trained. Here the bytes are read once, compiled
    with no bytecode cache under a name of their own, and the same lines are what ``inspect`` returns.
    """
    import linecache
    import types

    spec = importlib.util.find_spec(module_name)
    origin = getattr(spec, "origin", None)
    if spec is None or not origin or not str(origin).endswith(".py"):
        raise ConfigError(f"{module_name}: no Python source file to load the objectives from")
    data = Path(origin).read_bytes()
    filename = f"<objectives {module_name} sha256:{hashlib.sha256(data).hexdigest()}>"
    source = data.decode("utf-8")
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    module = types.ModuleType(module_name)
    module.__file__ = filename
    exec(compile(source, filename, "exec", dont_inherit=True), module.__dict__)  # noqa: S102 - the reviewed file
    return module


# --------------------------------------------------------------------------- policy files


def objectives_policy_path() -> Path:
    from governance.approvals import policy_dir

    return policy_dir() / "objectives.yaml"


def load_objectives_policy(path: str | Path | None = None) -> ObjectivesPolicy:
    """Parse and validate ``policies/objectives.yaml``, only as its reviewed version (it decides: see below)."""
    return read_objectives_policy(path)[0]


def read_objectives_policy(path: str | Path | None = None) -> tuple[ObjectivesPolicy, Review]:
    """The objectives policy and its review: refused unless it is the reviewed version.

    It decides whether a stage may optimise an objective (``rules.approved_hash.severity``: deny or warn), which
    hashes were approved in code review (``approved``) and which module ``approve-objective`` imports to hash a
    stage's objectives, so like a gate policy it counts only as committed at the reviewed ref, and what is parsed
    is the buffer checked (:func:`governance.policy.read_reviewed_policy`).
    """
    return read_reviewed_policy(path or objectives_policy_path(), ObjectivesPolicy, "objectives policy")


def _approvals_policy() -> ApprovalsPolicy:
    """Who may approve an objective: the reviewed approvals policy only, as for who may grant a gate waiver
    (:func:`governance.gates.load_waivers`). An uncommitted edit that gives oneself ``objective_owner`` is refused."""
    from governance.policy.approvals import approvals_policy_path

    what = "approvals policy (who may approve objectives)"
    return load_reviewed_policy(approvals_policy_path(), ApprovalsPolicy, what)


def _key(stage: str, name: str) -> str:
    return f"{stage}:{name}"


# --------------------------------------------------------------------------- current hashes of a stage


def _import(module_name: str, what: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{what}: cannot import {module_name} ({exc})") from None


def _load_objectives(module_name: str, what: str) -> ModuleType:
    try:
        return load_objective_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{what}: cannot import {module_name} ({exc})") from None


def current_objective_hashes(stage: str, policy: ObjectivesPolicy | None = None) -> dict[str, str]:
    """The hashes of a stage's objectives as its code stands now, found as ``stages.<stage>`` says."""
    path = objectives_policy_path()
    policy = policy or load_objectives_policy(path)
    entry = policy.stages.get(stage)
    if entry is None:
        raise ConfigError(
            f"{path}: stages.{stage}: not declared, so its objectives cannot be hashed here; declare it, or "
            f"pass the hash the stage reported: govern approve-objective {stage} --objective NAME --sha256 HASH"
        )
    where = f"{path}: stages.{stage}"
    if entry.hashes_from:
        module_name, function_name = entry.hashes_from.split(":")
        provider = getattr(_import(module_name, f"{where}.hashes_from"), function_name, None)
        if not callable(provider):
            raise ConfigError(f"{where}.hashes_from: {module_name} has no function {function_name}")
        hashes = provider()
        if not isinstance(hashes, dict) or not all(isinstance(v, str) for v in hashes.values()):
            raise ConfigError(f"{where}.hashes_from: {entry.hashes_from} must return a dict of name -> sha256")
        return dict(hashes)
    names = entry.functions
    if names is None:
        names = _params_list(entry.params_key or "", where)
    module = _load_objectives(entry.reward_module or "", f"{where}.reward_module")
    functions = {}
    for name in names:
        function = getattr(module, name, None)
        if not callable(function):
            raise ConfigError(f"{where}: {entry.reward_module} has no function {name}")
        functions[name] = function
    return objective_hashes(functions)


def _params_list(key: str, where: str) -> list[str]:
    value: Any = load_yaml(PARAMS_FILE)
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ConfigError(f"{where}.params_key: {PARAMS_FILE} has no {key}")
        value = value[part]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.params_key: {PARAMS_FILE}: {key} must be a list of function names")
    return value


# --------------------------------------------------------------------------- code-review approvals


def _code_review_problem(
    entry: CodeReviewApproval, review: Review, approvals: ApprovalsPolicy
) -> tuple[str | None, str | None, str | None]:
    """(commit, role, problem) of a code-review entry of the reviewed policy: usable when problem is None.

    The commit is the one in the reviewed history that added the entry's hash (:func:`commit_adding`): recorded as
    the approval's evidence, it is on the reviewed branch, never a local commit of one's own.
    """
    path = review.path
    role = approvals.acting_role(entry.approved_by, "approve_objective")
    if role is None:
        allowed = ", ".join(approvals.permissions["approve_objective"])
        return (
            None,
            None,
            (
                f"is listed in {path} as approved by {entry.approved_by}, who holds no role allowed to approve "
                f"objectives (allowed: {allowed})"
            ),
        )
    commit = commit_adding(review, entry.sha256)
    if commit is None:
        return None, role, f"is listed in {path} but no git commit adds it; commit it through code review"
    return commit, role, None


def _record_code_review(entry: CodeReviewApproval, commit: str, role: str) -> Event:
    key = _key(entry.stage, entry.objective)

    def guard(events: list[Event]) -> Event | None:
        return next(
            (e for e in events if e.event_type == "objective_approved" and e.subject.objective_hash == entry.sha256),
            None,
        )

    return trail.record(
        "objective_approved",
        actor=entry.approved_by,
        role=role,
        subject=Subject(objective=key, objective_hash=entry.sha256),
        reason=entry.reason,
        evidence={"git_commit": commit, "sha256": entry.sha256},
        details={"stage": entry.stage, "objective": entry.objective, "source": "code_review"},
        guard=guard,
    )


# --------------------------------------------------------------------------- the checks


def trail_approval(stage: str, name: str, sha256: str) -> ObjectiveApproval | None:
    """The recorded approval of exactly this hash for this stage's objective, if any."""
    for event in trail.events(objective=_key(stage, name), event_types=["objective_approved"]):
        if event.subject.objective_hash == sha256:
            return ObjectiveApproval.from_event(event)
    return None


def require_approved_objective(stage: str, hashes: dict[str, str]) -> list[ObjectiveApproval]:
    """Refuse unless every ``{name: sha256}`` of ``stage`` is approved; returns the approvals for lineage.

    A hash approved in code review (listed in ``policies/objectives.yaml``,
    committed, by a member of a role allowed ``approve_objective``) is recorded
    in the audit trail the first time it is used. Raises
    :class:`PolicyViolation` naming the objective, its hash and how to approve
    it; the refusal is recorded as ``permission_denied``.
    """
    if not hashes:
        raise ConfigError(f"{stage}: no objectives given; a stage that optimises a reward must name them")
    policy, review = read_objectives_policy()
    path = review.path
    approvals_policy: ApprovalsPolicy | None = None
    approved: list[ObjectiveApproval] = []
    problems: list[str] = []
    for name, sha in hashes.items():
        found = trail_approval(stage, name, sha)
        if found is not None:
            approved.append(found)
            continue
        entries = [e for e in policy.approved if e.stage == stage and e.objective == name and e.sha256 == sha]
        detail = "which is not approved"
        for entry in entries:
            approvals_policy = approvals_policy or _approvals_policy()
            commit, role, problem = _code_review_problem(entry, review, approvals_policy)
            if problem is None and commit and role:
                approved.append(ObjectiveApproval.from_event(_record_code_review(entry, commit, role)))
                break
            detail = problem or detail
        else:
            problems.append(f"objective {name} has sha256 {sha} {detail}")
    if not problems:
        return approved
    rule = policy.rules.approved_hash
    message = (
        f"{stage}: {problems[0]} ({rule.id}); review it, then run "
        f"`govern approve-objective {stage} --reason TEXT` or list the hash in {path} in a reviewed commit"
    )
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more unapproved: {', '.join(p.split()[1] for p in problems[1:])})"
    if rule.severity == "warn":
        log.warning("warn  %s", message)
        return approved
    _record_refusal(stage, hashes, message, rule.id)
    raise PolicyViolation(message)


def _record_refusal(stage: str, hashes: dict[str, str], message: str, rule_id: str) -> None:
    try:
        actor = current_identity().user
    except GovernanceError as exc:  # the refusal stands even if we cannot tell who asked
        log.warning("recording the refusal without a verified user: %s", exc)
        actor = "unknown"
    name, sha = next(iter(hashes.items()))
    trail.record(
        "permission_denied",
        actor=actor,
        role="trainer",
        subject=Subject(objective=_key(stage, name), objective_hash=sha),
        reason=message,
        evidence=dict(hashes),
        details={"action": "train", "rules": [rule_id], "stage": stage},
    )


def approve_objective(
    stage: str,
    *,
    reason: str,
    hashes: dict[str, str] | None = None,
    only: str | None = None,
    identity: Identity | None = None,
) -> list[ObjectiveApproval]:
    """Approve the current hashes of a stage's objectives (or the ``hashes`` given) as the acting user.

    Requires a role allowed ``approve_objective``; a refusal is recorded as
    ``permission_denied``. Idempotent per hash: an approved hash is returned
    with ``created`` False and nothing is appended.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ConfigError("--reason: give a non-empty reason; it is recorded in the audit trail")
    identity = identity or current_identity()
    from governance.approvals import require_preconditions

    require_preconditions("approve_objective")  # never approve onto a broken trail
    approvals_policy = _approvals_policy()
    hashes = dict(hashes) if hashes is not None else current_objective_hashes(stage)
    for name, sha in hashes.items():
        if not _SHA256.match(sha):
            raise ConfigError(f"{stage}: objective {name}: {sha!r} is not a SHA-256 (64 lowercase hex characters)")
    if only is not None:
        if only not in hashes:
            raise ConfigError(f"{stage}: no objective named {only!r} (objectives: {', '.join(sorted(hashes))})")
        hashes = {only: hashes[only]}
    role = approvals_policy.acting_role(identity.user, "approve_objective")
    if role is None:
        allowed = ", ".join(approvals_policy.permissions["approve_objective"])
        held = ", ".join(approvals_policy.roles_of(identity.user)) or "none"
        message = (
            f"approve-objective refused by {approvals_policy.rules.role_required.id}: {stage}: {identity.user} holds "
            f"no role allowed to approve objectives (allowed: {allowed}; {identity.user}'s roles: {held})"
        )
        name, sha = next(iter(hashes.items()))
        trail.record(
            "permission_denied",
            actor=identity.user,
            role=held,
            subject=Subject(objective=_key(stage, name), objective_hash=sha),
            reason=message,
            evidence=dict(hashes),
            details={"action": "approve_objective", "rules": [approvals_policy.rules.role_required.id]},
        )
        raise PermissionDenied(message)
    out = []
    for name, sha in hashes.items():

        def guard(events: list[Event], sha: str = sha) -> Event | None:
            return next(
                (e for e in events if e.event_type == "objective_approved" and e.subject.objective_hash == sha), None
            )

        event = trail.record(
            "objective_approved",
            actor=identity.user,
            role=role,
            subject=Subject(objective=_key(stage, name), objective_hash=sha),
            reason=reason,
            evidence={"sha256": sha},
            details={"stage": stage, "objective": name, "source": "cli", "identity": identity.source},
            guard=guard,
        )
        out.append(ObjectiveApproval.from_event(event))
    return out
