"""Lineage facts: content hashes, DVC lock entries, git state, environment.

Everything a model version's provenance is made of is computed here, once, so
training stages, registration and reports agree on the same values.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from governance.errors import ConfigError, PolicyViolation
from governance.files import write_atomic

_CHUNK = 1 << 20
#: Files a model folder's hash leaves out (:func:`sha256_dir`): they describe the model and are written after.
MODEL_DESCRIPTION_FILES = ("manifest.json", "README.md")
#: The base_model stage's MLflow run artifact with its build's wall time, machine and energy: facts of one
#: execution, kept out of the model folder, whose dvc.lock hash must be the same for every re-run
BASE_RUN_CONTEXT_FILE = "run_context.json"
#: libyaml's safe loader where PyYAML has it (same YAML 1.1 reading as ``yaml.safe_load``, ~7x faster):
#: dvc.lock runs to thousands of lines.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes, streamed."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def md5_file(path: str | Path) -> str:
    """MD5 of a file's bytes: DVC 3's content hash for a file out or dep."""
    digest = hashlib.md5()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_dir(path: str | Path, exclude: tuple[str, ...] = MODEL_DESCRIPTION_FILES) -> str:
    """SHA-256 over a directory's files (relative path and content), order-independent.

    ``manifest.json`` and ``README.md`` (the model card) are excluded by default:
    they describe the content and are written after the hash is taken.
    """
    root = Path(path)
    files = (p for p in root.rglob("*") if p.is_file() and p.name not in exclude)
    return sha256_of_file_digests({p.relative_to(root).as_posix(): sha256_file(p) for p in files})


def read_pinned(path: Path, sha256: str, *, missing: str, pinned_by: str, remedy: str) -> bytes:
    """A pinned file's bytes (a judge file, the sentence encoder's), read once and returned only if they hash to
    ``sha256``; else a ConfigError naming ``path`` (``missing``: what is absent; ``pinned_by``: who pins it;
    ``remedy``: what to do)."""
    if not path.is_file():
        raise ConfigError(f"{path}: {missing}")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ConfigError(f"{path}: sha256 {actual[:12]}… is not {pinned_by} {sha256[:12]}…{remedy}")
    return data


@contextlib.contextmanager
def hashed_copy(path: str | Path, exclude: tuple[str, ...] = MODEL_DESCRIPTION_FILES) -> Iterator[tuple[Path, str]]:
    """A private copy of a folder and its :func:`sha256_dir`, computed from exactly the bytes written to the copy.

    What a stage loads a model from: each file is read once, hashed as it is
    copied, and the model is then loaded from the copy, so the hash a stage
    checks and records is the hash of what it loaded. A file swapped in the
    original folder after it was read, during the load, and swapped back is
    never loaded. The copy lives in a new folder only its owner can open
    (``tempfile.mkdtemp``, mode 0700, in ``TMPDIR``: a sticky ``/tmp``, where
    nobody else can rename it either) and is deleted on exit. It costs the
    folder's size on that disk for the length of a load.
    """
    root = Path(path)
    with _private_folder() as scratch:
        digests: dict[str, str] = {}
        for source in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in exclude):
            relative = source.relative_to(root)
            target = scratch / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            digests[relative.as_posix()] = _copy_hashing(source, target)
        yield scratch, sha256_of_file_digests(digests, exclude)


@contextlib.contextmanager
def hashed_file_copy(path: str | Path) -> Iterator[tuple[Path, str]]:
    """A private copy of one file (same name, in a new 0700 folder in ``TMPDIR``, deleted on exit) and the SHA-256
    of exactly the bytes written to it: for a reader that opens the file itself (Spark's executors on this
    machine), so what it parses is what is bound."""
    source = Path(path)
    with _private_folder() as scratch:
        target = scratch / source.name
        yield target, _copy_hashing(source, target)


@contextlib.contextmanager
def _private_folder() -> Iterator[Path]:
    """A new folder only its owner can open (``tempfile.mkdtemp``: mode 0700, in ``TMPDIR``), deleted on exit."""
    import shutil
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="governed-copy-"))
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _copy_hashing(source: Path, target: Path) -> str:
    """Copy ``source`` to a new file ``target`` in one read; the SHA-256 of the bytes written."""
    digest = hashlib.sha256()
    with source.open("rb") as reader, target.open("xb") as writer:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
    return digest.hexdigest()


def sha256_of_file_digests(digests: dict[str, str], exclude: tuple[str, ...] = MODEL_DESCRIPTION_FILES) -> str:
    """:func:`sha256_dir` from ``{relative path: file sha256}`` (a provenance statement's subjects), without
    the files: a folder hash is recomputed from the statement the same way as from the folder."""
    from pathlib import PurePosixPath

    digest = hashlib.sha256()
    for relative in sorted(digests, key=PurePosixPath):  # the order sha256_dir's sorted paths have
        if PurePosixPath(relative).name not in exclude:
            digest.update(relative.encode() + b"\0" + digests[relative].encode() + b"\n")
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_json(value: Any) -> str:
    """Hash of a JSON-able value in canonical form (sorted keys, no spaces)."""
    return sha256_text(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str))


def git_state(repo: str | Path = ".") -> dict[str, Any]:
    """The commit and dirty flag of the checkout, or ``unknown`` outside git.

    Decided from the files' bytes against the commit's tree with git's environment cleaned
    (:func:`governance.git_trust.checkout_state`): an edit hidden from ``git status`` (``--assume-unchanged``,
    ``--skip-worktree``, a clean filter, ``GIT_INDEX_FILE`` or ``GIT_DIR`` of one's own) is still dirty.
    """
    from governance.git_trust import checkout_state

    state = checkout_state(repo)
    return {"commit": state["commit"], "dirty": state["dirty"]}


def lock_file_hash(repo: str | Path = ".") -> str:
    """SHA-256 of the environment lock (``requirements.lock``) the project installs from."""
    path = Path(repo) / "requirements.lock"
    if not path.is_file():
        raise ConfigError(f"{path}: environment lock missing; it is part of every model's lineage")
    return sha256_file(path)


def environment() -> dict[str, Any]:
    """Hardware and key library versions for the run record."""
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "accelerator": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }
    for name in ("transformers", "trl", "peft", "datasets", "accelerate", "mlflow"):
        module = sys.modules.get(name)
        if module is not None:
            info[name] = getattr(module, "__version__", "unknown")
            continue
        # Not imported by this process (MLflow, before a training stage starts its run): the installed
        # distribution's version, without paying seconds for an import
        try:
            info[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return info


def dvc_lock_stage(stage: str, lock_path: str | Path = "dvc.lock") -> dict[str, Any]:
    """The ``dvc.lock`` entry of a stage (deps and outs with their md5), or {} if not locked yet."""
    path = Path(lock_path)
    try:
        stat = path.stat()
    except OSError:
        return {}
    if not path.is_file():
        return {}
    stages = _dvc_lock_stages(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    return copy.deepcopy(stages.get(stage, {}))


@functools.lru_cache(maxsize=2)
def _dvc_lock_stages(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    """The parsed ``stages`` of a lock file, once per file version: a register stage reads it for six
    stages and the report stage for seven (a 3.4k-line lock parses in ~25 ms)."""
    data = yaml.load(Path(path).read_text(), Loader=_Loader) or {}  # noqa: S506 - a safe loader
    return data.get("stages") or {}


def dvc_hashes(paths: list[str | Path]) -> dict[str, str]:
    """DVC-compatible md5 for each file path (what ``dvc.lock`` records for it)."""
    return {str(Path(p)): md5_file(p) for p in paths}


def write_manifest(out_dir: str | Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` into an output folder: provenance travels with artifacts."""
    body = json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"
    return write_atomic(Path(out_dir) / "manifest.json", body)


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    path = Path(out_dir) / "manifest.json"
    if not path.is_file():
        raise ConfigError(f"{path}: manifest missing; run the stage that writes {out_dir} first")
    return json.loads(path.read_text())


def model_folder(model_dir: str | Path) -> tuple[dict[str, Any], Path]:
    """A stage output's manifest and the folder its ``model_path`` names (the output itself by default), which
    must be a folder."""
    manifest = read_manifest(model_dir)
    folder = Path(manifest.get("model_path", model_dir))
    if not folder.is_dir():
        stage = manifest.get("stage") or "the stage that wrote it"
        raise ConfigError(
            f"{Path(model_dir) / 'manifest.json'}: model_path {folder} is not a folder; re-run it: dvc repro -f {stage}"
        )
    return manifest, folder


def verified_model_sha256(model_dir: str | Path) -> str:
    """The SHA-256 of a parent model's files as a stage loads them, recomputed, never copied from its manifest.

    Hashes the whole folder the manifest's ``model_path`` names (weights,
    config, tokenizer files, chat template) with :func:`sha256_dir` and refuses,
    in one line naming the manifest and both hashes, when the manifest claims
    another: the model changed after its stage recorded it (e.g. a template
    edited and ``dvc commit``-ed), so a lineage copied from the manifest would
    name a parent that is not what trained.
    """
    manifest_path = Path(model_dir) / "manifest.json"
    manifest, folder = model_folder(model_dir)
    stage = manifest.get("stage") or "the stage that wrote it"
    claimed, actual = str(manifest.get("model_sha256")), sha256_dir(folder)
    if claimed != actual:
        raise PolicyViolation(
            f"{manifest_path}: the parent's manifest claims model_sha256 {claimed[:12]}…, its files ({folder}) "
            f"hash to {actual[:12]}…; the model changed after {stage} recorded it, re-run it: dvc repro -f {stage}"
        )
    return actual


def policy_versions(policy_dir: str | Path = "policies") -> dict[str, dict[str, str]]:
    """``{file: {"version", "sha256"}}`` for every policy file in force."""
    out: dict[str, dict[str, str]] = {}
    for path in sorted(Path(policy_dir).glob("*.yaml")):
        try:
            data = yaml.load(path.read_text(), Loader=_Loader) or {}  # noqa: S506 - a safe loader
        except yaml.YAMLError:
            raise ConfigError(f"{path}: invalid YAML") from None
        version = data.get("version") if isinstance(data, dict) else None
        out[str(path)] = {"version": str(version), "sha256": sha256_file(path)}
    return out


def file_refs(paths: list[str | Path]) -> dict[str, dict[str, str]]:
    """``{path: {"sha256", "md5"}}``: our hash and DVC's, for every input file."""
    return {str(Path(p)): {"sha256": sha256_file(p), "md5": md5_file(p)} for p in paths}
