"""Attest a registered model version at registration; verify it before anything acts on it.

At registration (:func:`attest_registered_version`) the version's registered
files — the ``model/`` artifacts of its training run, re-read from the
artifact store and checked against the training manifest's hash — are signed
with ``model-signing`` and described by a DSSE-signed in-toto/SLSA statement.
Both go beside them in the run, in a folder of that attestation's own
(``provenance/v<version>-<statement digest>/model.sig`` and ``statement.dsse.json``,
:func:`provenance_folder`): one training run may back several versions (the
same weights registered under a second model, two writers attesting one
version at once), and none may overwrite the files another's registration
recorded. Their SHA-256 go into the version's lineage tags and into the
trail's ``model_registered`` evidence, which names the folder in turn.

Verification (:func:`verify_version`) checks what deployments load: the files
at the version's download URI (``storage_location``, else ``source`` — what
``models:/NAME/VERSION`` and so ``models:/NAME@production`` serve), not the run
the version names. The registry row saying where that is must still equal the
``source``, ``storage_location`` and ``run_id`` the trail froze at registration.

Trust boundary: verification believes the trail (the digests and served
location recorded at registration) and the trusted public key; MLflow tags
and registry columns are only compared with it. A version served from
elsewhere, or whose files, signature or statement differ from what the trail
recorded, is refused with the first difference named. Once any version in the
trail was registered signed, an unsigned version is refused outright
(:func:`require_verified`): signing cannot be downgraded away.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance import registry, registry_view, trail
from governance.errors import ArtifactTampered, PolicyViolation, RegistryError
from governance.lineage import hashed_copy, sha256_dir, sha256_file
from governance.provenance import keys
from governance.provenance.signing import file_digests, sign_model_dir, verify_model_dir
from governance.provenance.statement import build_statement, open_envelope, payload_of, sign_statement

log = logging.getLogger(__name__)

MODEL_ARTIFACT = "model"
PROVENANCE_ARTIFACT = "provenance"
SIGNATURE_FILE = "model.sig"
STATEMENT_FILE = "statement.dsse.json"
#: Version tags (display) and trail evidence keys (truth) of the attestation.
TAG_SIGNATURE = "lineage.signature_sha256"
TAG_STATEMENT = "lineage.statement_sha256"
TAG_SIGNING_KEY = "lineage.signing_key_sha256"
EVIDENCE_KEYS = {"signature_sha256": TAG_SIGNATURE, "statement_sha256": TAG_STATEMENT, "signing_key": TAG_SIGNING_KEY}


@dataclass(frozen=True)
class Verified:
    """What :func:`verify_version` checked."""

    name: str
    version: str
    files: int
    weights_sha256: dict[str, str]
    signing_key: str
    #: Every registered file (relative path → SHA-256) as the verified statement names it and the served files hash
    subjects: dict[str, str] = dataclasses.field(default_factory=dict)
    #: The run holding ``provenance/`` (signature and statement), where a reviewer fetches them
    provenance_run_id: str = ""
    #: The artifact folder of that run holding this version's signature and statement
    provenance_folder: str = "provenance"

    def line(self) -> str:
        return (
            f"{self.name} v{self.version}: {self.files} registered files match their signature and provenance "
            f"statement (key {self.signing_key[:16]})"
        )


@contextlib.contextmanager
def _no_progress_bar() -> Iterator[None]:
    """`govern verify` prints one line (or one error line): no MLflow download progress bar."""
    previous = os.environ.get(_PROGRESS_ENV)
    os.environ[_PROGRESS_ENV] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_PROGRESS_ENV, None)
        else:
            os.environ[_PROGRESS_ENV] = previous


_PROGRESS_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def _download(run_id: str, artifact: str, dest: Path) -> Path:
    """The run's ``artifact`` as a local path: read in place from the embedded store's local artifact
    folder (no MLflow import, no copy: verification only reads), else downloaded into ``dest``."""
    if registry_view.store_kind() == "sqlite":
        from urllib.parse import unquote, urlparse

        root = urlparse(registry.rebase_artifact_uri(registry_view.read_run(run_id).info.artifact_uri))
        if root.scheme in ("file", ""):
            local = Path(unquote(root.path)) / artifact
            if not local.exists():
                raise RegistryError(f"downloading {artifact} of run {run_id} failed: no such artifact at {local}")
            return local
    client = registry.client()
    with _no_progress_bar(), registry.registry_errors(f"downloading {artifact} of run {run_id}"):
        return Path(client.download_artifacts(run_id, artifact, str(dest)))


def _fetch(uri: str, dest: Path, what: str) -> Path:
    """The files at artifact ``uri`` as a local path: read in place when the embedded store's artifacts are
    local (verification only reads), else downloaded into ``dest`` with MLflow's own resolver (what
    ``models:/`` does)."""
    if registry_view.store_kind() == "sqlite":
        from urllib.parse import unquote, urlparse

        where = urlparse(registry.rebase_artifact_uri(uri))
        if where.scheme in ("file", ""):
            local = Path(unquote(where.path))
            if not local.exists():
                raise RegistryError(f"downloading {what} failed: nothing at {local}")
            return local
    registry.client()  # sets MLflow's tracking and registry URIs for the resolver
    from mlflow.artifacts import download_artifacts

    with _no_progress_bar(), registry.registry_errors(f"downloading {what}"):
        return Path(download_artifacts(artifact_uri=uri, dst_path=str(dest)))


def provenance_folder(version: str | int, statement_sha256: str) -> str:
    """The run's artifact folder holding one attestation of ``version``: named by the version and its statement's
    digest, so an attestation never overwrites another's (another version from the same run, or another writer
    attesting this version at the same moment), and the trail's recorded digest finds the one it recorded."""
    return f"{PROVENANCE_ARTIFACT}/v{version}-{statement_sha256[:16]}"


def recorded_provenance_folder(version: str | int, recorded: dict[str, str]) -> str:
    """Where the attestation the trail recorded should lie (:func:`provenance_folder`; ``provenance/`` itself
    for a registration that recorded no statement digest)."""
    statement = recorded.get("statement_sha256")
    return provenance_folder(version, statement) if statement else PROVENANCE_ARTIFACT


def _download_provenance(
    run_id: str, version: str, recorded: dict[str, str], item: str, dest: Path
) -> tuple[Path, str]:
    """``item`` (a file, or ``""`` for the folder) of the recorded attestation, and the folder it came from.

    Registrations attested before each attestation had a folder of its own keep theirs in ``provenance/``
    itself: read from there when the recorded folder is absent. Either way what is read is then checked
    against the digests the trail recorded, so the fallback trusts nothing new.
    """
    folders = dict.fromkeys([recorded_provenance_folder(version, recorded), PROVENANCE_ARTIFACT])
    for folder in folders:
        try:
            return _download(run_id, f"{folder}/{item}".rstrip("/"), dest), folder
        except RegistryError:
            continue
    raise RegistryError(f"no {PROVENANCE_ARTIFACT}/ {item or 'folder'} in run {run_id}")


def event_summary(event: trail.Event) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "event_type": event.event_type,
        "hash": event.hash,
        "actor": event.actor,
        "timestamp": event.timestamp,
    }


def _rfc3339(ms: int | None) -> str | None:
    import datetime as dt

    if not ms:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_summary(run_id: str) -> dict[str, Any]:
    """An MLflow run as the statement's run details name it."""
    run = registry.client().get_run(run_id)
    return {
        "run_id": run_id,
        "stage": run.data.tags.get("stage"),
        "started": _rfc3339(run.info.start_time),
        "finished": _rfc3339(run.info.end_time),
    }


def attest_registered_version(
    name: str,
    version: str,
    *,
    trained: dict[str, Any],
    commands: dict[str, str],
    runs: dict[str, str],
) -> dict[str, str]:
    """Sign a newly registered version's files and statement; return the trail evidence.

    ``trained`` is the training manifest with its run context (``run_id``,
    ``git_commit``…); ``commands`` the DVC stage commands of its lineage;
    ``runs`` role → MLflow run id (``training``, ``evaluation``). Idempotent: a
    version already attested returns its recorded digests and signs nothing.
    """
    version = str(version)
    mv = registry.get_version(name, version)
    tags = mv.tags or {}
    if all(tags.get(tag) for tag in EVIDENCE_KEYS.values()):
        return {key: tags[tag] for key, tag in EVIDENCE_KEYS.items()}
    key_path = keys.signing_key_path()
    private_key = keys.load_private_key(key_path)
    served = registry_view.served_location(name, version)
    with tempfile.TemporaryDirectory(prefix="attest-") as tmp, contextlib.ExitStack() as stack:
        # Sign what models:/NAME/VERSION serves, and only when it is exactly the bytes the pipeline trained
        # and DVC locked, never a copy that drifted
        served_dir = _fetch(served.storage_location, Path(tmp) / "registered", f"{name} v{version}")
        # Checked, signed and listed from one private copy (the embedded store serves the files in place, where
        # they could be swapped between the check and the signature, so that the key signed other bytes)
        model_dir = stack.enter_context(hashed_copy(served_dir, exclude=()))[0]
        registered = sha256_dir(model_dir)
        if registered != trained["model_sha256"]:
            raise ArtifactTampered(
                f"{name} v{version}: registered files hash to {registered[:12]}… but the training manifest "
                f"recorded {trained['model_sha256'][:12]}…; refusing to sign"
            )
        out = Path(tmp) / PROVENANCE_ARTIFACT
        signature_sha256 = sign_model_dir(model_dir, out / SIGNATURE_FILE, key_path)
        statement = build_statement(
            name=name,
            version=version,
            subjects=file_digests(model_dir),
            trained=trained,
            commands=commands,
            runs={role: run_summary(run_id) for role, run_id in runs.items() if run_id},
            trail_events=[event_summary(e) for e in trail.events(model=name, version=version)],
            environment={k.removeprefix("env."): v for k, v in _run_tags(mv.run_id).items() if k.startswith("env.")},
        )
        envelope = sign_statement(statement, private_key)
        (out / STATEMENT_FILE).write_text(json.dumps(envelope, indent=2, sort_keys=True) + "\n")
        evidence = {
            "signature_sha256": signature_sha256,
            "statement_sha256": sha256_file(out / STATEMENT_FILE),
            "signing_key": keys.fingerprint(private_key.public_key()),
        }
        folder = provenance_folder(version, evidence["statement_sha256"])
        with registry.registry_errors(f"logging the provenance of {name} v{version}"):
            registry.client().log_artifacts(mv.run_id, str(out), artifact_path=folder)
    registry.set_version_tags(name, version, {tag: evidence[key] for key, tag in EVIDENCE_KEYS.items()})
    log.info("signed %s v%s (signature %s)", name, version, signature_sha256[:12])
    return evidence


def lineage_commands(trained: dict[str, Any], also: tuple[str, ...] = (), lock_path: str | Path = "dvc.lock") -> dict:
    """The ``dvc.lock`` command of every stage in a trained model's lineage (training, gates, parent, ``also``)."""
    from governance.lineage import dvc_lock_stage

    stages = [trained.get("stage"), (trained.get("parent") or {}).get("stage")]
    stages += [gate.get("stage") for gate in trained.get("gates") or []] + list(also)
    out = {}
    for stage in filter(None, stages):
        cmd = dvc_lock_stage(stage, lock_path).get("cmd")
        if cmd:
            out[stage] = cmd if isinstance(cmd, str) else " && ".join(cmd)
    return out


def _run_tags(run_id: str) -> dict[str, str]:
    return registry.client().get_run(run_id).data.tags


#: Rule ids a refused verification is recorded under (``permission_denied`` details ``rules``).
RULE_VERIFIED = "provenance.verified"
RULE_SIGNED = "provenance.signed"


def registration_event(name: str, version: str | int) -> trail.Event:
    """The version's ``model_registered`` event; :class:`ArtifactTampered` when the trail has none."""
    registered = trail.events(model=name, version=str(version), event_types=["model_registered"])
    if not registered:
        raise ArtifactTampered(f"{name} v{version}: no model_registered event in the audit trail")
    return registered[0]


def recorded_evidence(name: str, version: str) -> dict[str, str]:
    """The attestation digests the trail's ``model_registered`` event recorded ({} when unsigned)."""
    evidence = registration_event(name, version).evidence
    return {key: evidence[key] for key in EVIDENCE_KEYS if key in evidence}


def _provenance_run(registered: trail.Event, served: registry_view.ServedLocation) -> str:
    """The run holding ``provenance/``: the one the trail froze at registration (older events: the registry's)."""
    return str(registered.details.get("run_id") or served.run_id)


def require_served_as_registered(
    name: str, version: str, registered: trail.Event, served: registry_view.ServedLocation
) -> None:
    """Refuse (:class:`ArtifactTampered`) a version the registry now serves from elsewhere than it was registered.

    Compares the registry's ``source``, ``storage_location`` (download URI) and
    ``run_id`` with the values frozen in ``model_registered``; a registration
    that froze no location (older events) is compared on ``run_id`` alone.
    """
    for field, now, recorded in served.changes_from(registered.details):
        raise ArtifactTampered(
            f"{name} v{version}: registry {field} is {now or '(empty)'} but the audit trail recorded "
            f"{recorded or '(empty)'} at registration; models:/{name}/{version} serves files that were never "
            f"verified (restore {field} in the MLflow store)"
        )


def verify_version(name: str, version: str | int) -> Verified:
    """Check the files ``models:/NAME/VERSION`` serves against its signature and statement, as the trail
    recorded them.

    Raises :class:`ArtifactTampered` (exit 1) naming the registry field that no
    longer points where it did at registration, the first file that differs,
    or the signature/statement that does not match the trail.
    """
    version = str(version)
    registered = registration_event(name, version)
    recorded = {key: registered.evidence[key] for key in EVIDENCE_KEYS if key in registered.evidence}
    if "signature_sha256" not in recorded:
        raise ArtifactTampered(f"{name} v{version}: registered without a signature; nothing to verify its files by")
    # Where deployments read the files must be where they were when the version was signed and registered
    served = registry_view.served_location(name, version)
    require_served_as_registered(name, version, registered, served)
    public_path = keys.trusted_public_key_path()
    public_key = keys.load_public_key(public_path)
    if recorded.get("signing_key") and keys.fingerprint(public_key) != recorded["signing_key"]:
        raise ArtifactTampered(
            f"{name} v{version}: signed with key {recorded['signing_key'][:16]} but the trusted key "
            f"{public_path} is {keys.fingerprint(public_key)[:16]}"
        )
    run_id = _provenance_run(registered, served)
    with tempfile.TemporaryDirectory(prefix="verify-") as tmp:
        # The files models:/NAME/VERSION serves (its download URI), not the run's copy
        try:
            model_dir = _fetch(served.storage_location, Path(tmp) / "registered", f"{name} v{version}")
        except RegistryError as exc:
            raise ArtifactTampered(f"{name} v{version}: the files models:/{name}/{version} serves: {exc}") from None
        try:
            provenance, folder = _download_provenance(run_id, version, recorded, "", Path(tmp) / "provenance")
        except RegistryError:
            raise ArtifactTampered(
                f"{name} v{version}: {recorded_provenance_folder(version, recorded)}/ missing from run artifacts"
            ) from None
        for file, key in ((SIGNATURE_FILE, "signature_sha256"), (STATEMENT_FILE, "statement_sha256")):
            path = provenance / file
            if not path.is_file():
                raise ArtifactTampered(f"{name} v{version}: {folder}/{file} missing from run artifacts")
            if key in recorded and sha256_file(path) != recorded[key]:
                raise ArtifactTampered(
                    f"{name} v{version}: {folder}/{file} differs from the one recorded in the audit trail at "
                    "registration"
                )
        statement = open_envelope(
            json.loads((provenance / STATEMENT_FILE).read_text()), public_key, f"{folder}/{STATEMENT_FILE}"
        )
        expected = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
        actual = file_digests(model_dir)
        for file in sorted(set(expected) | set(actual)):
            if file not in actual:
                raise ArtifactTampered(f"{name} v{version}: {MODEL_ARTIFACT}/{file}: in the statement but missing")
            if file not in expected:
                raise ArtifactTampered(f"{name} v{version}: {MODEL_ARTIFACT}/{file}: not in the provenance statement")
            if actual[file] != expected[file]:
                raise ArtifactTampered(
                    f"{name} v{version}: {MODEL_ARTIFACT}/{file}: sha256 {actual[file][:12]}… differs from the "
                    f"provenance statement's {expected[file][:12]}…"
                )
        # The independent check an outsider runs: model_signing over the same files
        verify_model_dir(model_dir, provenance / SIGNATURE_FILE, public_path)
    weights = {f: d for f, d in expected.items() if f.endswith((".safetensors", ".bin", ".gguf", ".pt"))}
    return Verified(name, version, len(expected), weights, keys.fingerprint(public_key), dict(expected), run_id, folder)


def first_signed_registration() -> trail.Event | None:
    """The trail's first ``model_registered`` event with a signature: from then on signing is in force."""
    return next((e for e in trail.events(event_types=["model_registered"]) if "signature_sha256" in e.evidence), None)


def require_verified(name: str, version: str | int) -> Verified | None:
    """Refuse a version whose served files no longer match (:class:`ArtifactTampered`), or that is unsigned
    while signing is in force (:class:`PolicyViolation`, rule ``provenance.signed``); both exit 1.

    A one-way guard: once any version in the trail was registered with a
    signature, an unsigned registration is never approved or deployed (an
    attacker cannot register around the signature). An unsigned version in a
    trail that has never seen a signature passes with a warning. A version with
    no registration event is left to the approval policy, which refuses it.
    """
    registered = trail.events(model=name, version=str(version), event_types=["model_registered"])
    if not registered:
        return None  # not registered through the pipeline: the approval policy refuses it on its own terms
    if "signature_sha256" not in registered[0].evidence:
        signed = first_signed_registration()
        if signed is not None:
            raise PolicyViolation(
                f"{name} v{version}: registered without a signature, but signing is in force since "
                f"{signed.subject.model} v{signed.subject.version} (trail event #{signed.seq}); an unsigned "
                "version cannot be approved or deployed: register a signed version"
            )
        log.warning("%s v%s: registered without a signature; its files cannot be verified", name, version)
        return None
    return verify_version(name, version)


def registered_envelope(name: str, version: str | int) -> dict[str, Any]:
    """The DSSE envelope logged at registration, verified against the trail and the trusted key."""
    version = str(version)
    registered = registration_event(name, version)
    recorded = {key: registered.evidence[key] for key in EVIDENCE_KEYS if key in registered.evidence}
    run_id = _provenance_run(registered, registry_view.served_location(name, version))
    with tempfile.TemporaryDirectory(prefix="statement-") as tmp:
        try:
            path, _ = _download_provenance(run_id, version, recorded, STATEMENT_FILE, Path(tmp))
        except RegistryError:
            raise ArtifactTampered(f"{name} v{version}: no provenance statement logged at registration") from None
        if "statement_sha256" in recorded and sha256_file(path) != recorded["statement_sha256"]:
            raise ArtifactTampered(f"{name} v{version}: {STATEMENT_FILE} differs from the one recorded in the trail")
        envelope = json.loads(path.read_text())
    open_envelope(envelope, keys.load_public_key(keys.trusted_public_key_path()), STATEMENT_FILE)
    return envelope


def current_statement(name: str, version: str | int) -> dict[str, Any]:
    """The registration statement with today's trail events of the version in its run details (unsigned)."""
    statement = payload_of(registered_envelope(name, version))
    recorded = statement["predicate"]["runDetails"].get("byproducts", [])
    byproducts = [b for b in recorded if not b["name"].startswith("trail_event:")]
    for event in trail.events(model=name, version=str(version)):
        summary = event_summary(event)
        byproducts.append(
            {
                "name": f"trail_event:{summary['seq']}:{summary['event_type']}",
                "digest": {"sha256": summary["hash"]},
                "annotations": {"actor": summary["actor"], "timestamp": summary["timestamp"]},
            }
        )
    statement["predicate"]["runDetails"]["byproducts"] = byproducts
    return statement
