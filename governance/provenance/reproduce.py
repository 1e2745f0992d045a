"""Re-create a registered version from its recorded inputs and compare the weights, bit for bit.

``govern reproduce NAME VERSION``:

1. reads what the registration recorded — the training run's commit, stage and
   data hashes (MLflow), the model hash (the trail's ``model_registered``
   evidence) and the per-file digests (the signed statement, when signed);
2. checks the version's commit out in a temporary ``git worktree`` of the
   checkout, sharing its DVC cache, so params, code and DVC-tracked data are
   restored by hash exactly as they were;
3. re-runs the lineage with ``dvc repro --force --no-run-cache`` up to the
   training stage, against a scratch MLflow store and audit trail (nothing is
   registered twice);
4. compares: the gated data hashes (dvc.lock of the re-run vs the version's
   ``lineage.data.*.md5``), the environment (the lock file's hash, the
   installed packages vs ``requirements.lock``, and every installed file vs
   its package's ``RECORD``: :mod:`governance.environment`), and the weights (SHA-256 of
   every file vs the statement; the folder hash vs the trail).

Exit 0 bit-exact, 1 naming what differs, 2 when inputs are missing (unknown
commit, a stage that cannot run). The result is a ``reproduction_checked``
trail event, shown in the audit report.

Floating-point kernels may differ between CPU models: a mismatch of weights
with equal data and environment on another machine is reported as such.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from governance import registry, trail
from governance.environment import environment_differences, installed_file_differences
from governance.errors import EXIT_DENIED, EXIT_OK, EXIT_USAGE, ArtifactTampered
from governance.lineage import sha256_dir, sha256_file
from governance.provenance.signing import file_digests
from governance.trained import trained_event

log = logging.getLogger(__name__)

#: A stage may train for a while on a real model; the tiny default takes seconds.
REPRO_TIMEOUT_S = int(os.environ.get("GOVERN_REPRODUCE_TIMEOUT", "7200"))


@dataclass
class Reproduction:
    """The outcome of one reproduction: what was compared and what differed."""

    name: str
    version: str
    commit: str
    stage: str
    exit_code: int = EXIT_OK
    differences: list[str] = field(default_factory=list)
    missing: str | None = None
    weights_sha256: str | None = None
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        return {EXIT_OK: "bit-exact", EXIT_DENIED: "differs"}.get(self.exit_code, "inputs missing")

    def line(self) -> str:
        head = f"{self.name} v{self.version}: reproduction from {self.commit[:12]} ({self.stage}) {self.verdict}"
        if self.missing:
            return f"{head}: {self.missing}"
        if self.differences:
            return f"{head}: " + "; ".join(self.differences)
        return f"{head}: weights sha256 {str(self.weights_sha256)[:12]}… match the registered ones"


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """git as the review check runs it (no caller ``GIT_*`` variable, no replace refs, no grafts): the worktree
    checked out is the recorded commit's own tree, not one ``git replace`` substituted for it."""
    from governance.git_trust import git_environment

    return subprocess.run(["git", "-c", "core.useReplaceRefs=false", *args], cwd=repo, env=git_environment(),
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _registered_subjects(name: str, version: str) -> dict[str, str]:
    from governance.provenance.statement import payload_of
    from governance.provenance.version import registered_envelope

    try:
        statement = payload_of(registered_envelope(name, version))
    except ArtifactTampered as exc:  # an unsigned version still reproduces by folder hash
        log.info("%s v%s: no signed statement (%s); comparing the folder hash only", name, version, exc)
        return {}
    return {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}


def reproduce_version(name: str, version: str | int, *, repo: Path = Path("."), keep: bool = False) -> Reproduction:
    """Re-run a version's lineage from its commit and compare; records a ``reproduction_checked`` event."""
    import time

    version = str(version)
    started = time.perf_counter()
    mv = registry.get_version(name, version)
    run = registry.client().get_run(mv.run_id)
    tags = {**run.data.tags, **(mv.tags or {})}
    stage = run.data.tags.get("stage", "")
    commit = tags.get("lineage.git_commit", "unknown")
    registered = trail.events(model=name, version=version, event_types=["model_registered"])
    model_sha256 = registered[0].evidence.get("model_sha256") if registered else tags.get("lineage.model_sha256")
    # The commit and dirty flag as the training stage signed them (model_trained), not the run's editable tags
    signed = trained_event(stage, model_sha256, run_id=mv.run_id) if stage and model_sha256 else None
    if signed is not None:
        commit = signed.evidence["git_commit"]
        tags = {**tags, "lineage.git_dirty": signed.evidence["git_dirty"]}
    result = Reproduction(name, version, commit, stage)
    repo = Path(repo).resolve()
    if not stage.startswith("train_"):
        result.missing = f"the version's run {mv.run_id} names no training stage (tag stage={stage!r})"
    elif commit == "unknown" or _git(repo, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        result.missing = f"commit {commit[:12]} is not in the git checkout at {repo}"
    if result.missing:
        result.exit_code = EXIT_USAGE
        return _record(result, started)
    if tags.get("lineage.git_dirty") == "True":
        result.differences.append("trained from a checkout with uncommitted changes: the commit alone may not match")
    scratch = Path(tempfile.mkdtemp(prefix="govern-reproduce-"))
    worktree = scratch / "worktree"
    try:
        added = _git(repo, "worktree", "add", "--detach", str(worktree), commit)
        if added.returncode != 0:
            result.missing = f"git worktree add failed: {added.stderr.strip().splitlines()[-1][:200]}"
            result.exit_code = EXIT_USAGE
            return _record(result, started)
        _reproduce_in(worktree, repo, scratch, stage, tags, model_sha256, _registered_subjects(name, version), result)
    finally:
        if keep:
            log.warning("worktree kept at %s", worktree)
        else:
            _git(repo, "worktree", "remove", "--force", str(worktree))
            shutil.rmtree(scratch, ignore_errors=True)
    return _record(result, started)


def _reproduce_in(
    worktree: Path,
    repo: Path,
    scratch: Path,
    stage: str,
    tags: dict[str, str],
    model_sha256: str | None,
    subjects: dict[str, str],
    result: Reproduction,
) -> None:
    # Nothing of the team's trail reaches the scratch run: its checkpoint file (GOVERN_TRAIL_CHECKPOINT) would
    # get the scratch trail's heads anchored into it, and every later check of the real trail would then refuse
    scratch_only = ("MLFLOW_", "GOVERN_AUDIT", "GOVERN_TRAIL_", "OPENLINEAGE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(scratch_only)}
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{scratch / 'mlflow.db'}",
        GOVERN_AUDIT_URL=f"sqlite:///{scratch / 'audit.db'}",
        # The stages' set-up check: this store is the reproduction's own, not a team.env left out (a team's
        # committed policy pins its server and signing key; the re-run records and signs nothing there)
        GOVERN_REPRODUCTION_SCRATCH=str(scratch),
        GOVERN_OPENLINEAGE_FILE=str(scratch / "openlineage.jsonl"),
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        DVC_NO_ANALYTICS="1",
    )
    # The environment: the lock at the commit is the one recorded, and it is what is installed
    lock = worktree / "requirements.lock"
    if not lock.is_file():
        result.missing = "requirements.lock missing at the commit"
        result.exit_code = EXIT_USAGE
        return
    if tags.get("lineage.lock_sha256") and sha256_file(lock) != tags["lineage.lock_sha256"]:
        result.differences.append("environment lock: requirements.lock at the commit differs from the recorded hash")
    installed = environment_differences(lock)
    if installed:
        result.differences.append(f"environment lock: {len(installed)} package(s) differ, first {installed[0]}")
    # ... and what is installed is what those packages installed (no file edited in place, no stray start-up hook)
    result.differences += [f"environment: {line}" for line in installed_file_differences().lines()]
    # Share the checkout's DVC cache: data is restored by hash, never re-downloaded or guessed
    cache = repo / ".dvc" / "cache"
    if cache.is_dir():
        subprocess.run(["dvc", "cache", "dir", "--local", str(cache)], cwd=worktree, env=env, capture_output=True)
    repro = subprocess.run(
        ["dvc", "repro", "--force", "--no-run-cache", stage],
        cwd=worktree,
        env=env,
        capture_output=True,
        text=True,
        timeout=REPRO_TIMEOUT_S,
    )
    if repro.returncode != 0:
        last = [line for line in (repro.stderr + repro.stdout).splitlines() if line.strip()][-1:] or ["no output"]
        result.missing = f"dvc repro {stage} failed: {last[0][:300]}"
        result.exit_code = EXIT_USAGE
        return
    # The data the re-run trained on, by DVC's hash, against the version's lineage tags
    lock_entry = ((yaml.safe_load((worktree / "dvc.lock").read_text()) or {}).get("stages") or {}).get(stage) or {}
    for dep in lock_entry.get("deps") or []:
        recorded = tags.get(f"lineage.data.{Path(dep['path']).name}.md5")
        if recorded and dep.get("md5") != recorded:
            result.differences.append(f"data hash: {dep['path']} md5 {dep.get('md5')} (registered {recorded})")
    # The weights
    params = yaml.safe_load((worktree / "params.yaml").read_text()) or {}
    out_dir = worktree / str(((params.get(stage) or {}).get("trl") or {}).get("output_dir", f"artifacts/{stage}"))
    result.weights_sha256 = sha256_dir(out_dir)
    actual = file_digests(out_dir)
    for file in sorted(set(subjects) | set(actual)):
        if file == "manifest.json" and subjects.get(file) != actual.get(file):
            # The manifest describes inputs, not weights; name it separately, after the weights
            continue
        if subjects.get(file) != actual.get(file) and subjects:
            what = "weights" if file.endswith((".safetensors", ".bin", ".gguf", ".pt")) else "file"
            result.differences.append(
                f"{what}: {file} sha256 {str(actual.get(file))[:12]}… (registered {str(subjects.get(file))[:12]}…)"
            )
    if not subjects and model_sha256 and result.weights_sha256 != model_sha256:
        result.differences.append(
            f"weights: folder sha256 {result.weights_sha256[:12]}… (registered {model_sha256[:12]}…)"
        )
    if subjects and subjects.get("manifest.json") != actual.get("manifest.json"):
        registered_manifest = repo / out_dir.relative_to(worktree) / "manifest.json"
        if _same_content(registered_manifest, subjects["manifest.json"], out_dir / "manifest.json"):
            result.differences.append(f"{_RUN_CONTEXT_NOTE} (wall time, environment, energy)")
        else:
            result.differences.append("file: manifest.json differs (lineage facts recorded with the weights)")
    result.exit_code = EXIT_DENIED if _substantive(result.differences) else EXIT_OK


#: What the base model's stage records of its own run inside the ``base`` block every descendant's manifest carries
#: (``pipelines/base_model.py``): how long it ran, on what, drawing how much energy. Another run of the same bytes
#: records other values, as a training stage's own run context lives in its MLflow run, not in its manifest.
_BASE_RUN_CONTEXT = ("wall_seconds", "environment", "energy")
_RUN_CONTEXT_NOTE = "manifest.json: only the base model's run context differs"


def _same_content(registered: Path, registered_sha256: str, reproduced: Path) -> bool:
    """Whether the registered manifest (this checkout's copy, believed only when it has the hash the signed statement
    names) and the reproduced one differ only in the base model's run context."""
    import json

    try:
        if sha256_file(registered) != registered_sha256:
            return False
        theirs, ours = (json.loads(path.read_text(encoding="utf-8")) for path in (registered, reproduced))
    except (OSError, ValueError):
        return False
    return _without_base_run_context(theirs) == _without_base_run_context(ours)


def _without_base_run_context(manifest: object) -> object:
    if not isinstance(manifest, dict):
        return manifest
    base = manifest.get("base")
    if not isinstance(base, dict) or not isinstance(base.get("training"), dict):
        return manifest
    training = {k: v for k, v in base["training"].items() if k not in _BASE_RUN_CONTEXT}
    return {**manifest, "base": {**base, "training": training}}


def _substantive(differences: list[str]) -> bool:
    return any(not d.startswith(("trained from a checkout", _RUN_CONTEXT_NOTE)) for d in differences)


def _record(result: Reproduction, started: float) -> Reproduction:
    """The result as a ``reproduction_checked`` trail event (through the trail's one writer)."""
    import time

    from governance.identity import current_identity

    result.seconds = round(time.perf_counter() - started, 1)
    identity = current_identity()
    trail.record(
        "reproduction_checked",
        actor=identity.user,
        identity_method="mlflow-basic-auth" if identity.source == "mlflow-basic-auth" else "local-unverified",
        role="reproducer",
        subject=trail.Subject(model=result.name, version=result.version),
        reason=f"reproduction {result.verdict}",
        evidence={
            "commit": result.commit,
            **({"weights_sha256": result.weights_sha256} if result.weights_sha256 else {}),
        },
        details={
            **identity.details(),
            "verdict": result.verdict,
            "stage": result.stage,
            "differences": result.differences,
            "missing": result.missing,
            "seconds": result.seconds,
            "machine": _machine(),
        },
    )
    from governance.registry_anchors import anchor_committed_event

    anchor_committed_event(result.name)  # a reproduction moves the model's trail-head anchor too
    return result


def _machine() -> str:
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return cpu
