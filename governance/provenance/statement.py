"""The provenance statement of a model version: in-toto Statement v1, SLSA provenance v1, DSSE-signed.

:func:`build_statement` is a pure function of recorded values (the training
manifest, the MLflow runs, the trail events, the stage commands): subjects are
the registered model files with their SHA-256; resolved dependencies are the
base/parent model, every gated dataset (DVC md5 and SHA-256 of the gated
bytes), the gate decisions, the code commit, the environment lock and the
policy files; the build definition is the stage commands and params; run
details are the MLflow runs and the trail events.

:func:`sign_statement` wraps it in a DSSE envelope (payload type
``application/vnd.in-toto+json``) signed with the artifact key, as
``cosign verify-blob-attestation`` and ``in-toto`` verifiers expect;
:func:`open_envelope` verifies an envelope under a public key and returns the
statement. Trust: only a statement whose envelope verifies is believed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from governance.errors import ArtifactTampered

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
#: How a model version is built: a DVC stage of this pipeline (params + command), then registration.
BUILD_TYPE = "https://github.com/governed-post-training/buildtypes/dvc-stage/v1"
BUILDER_ID = "https://github.com/governed-post-training/builders/dvc-repro/v1"


def _descriptor(name: str, digest: dict[str, str] | None = None, uri: str = "", **annotations: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if uri:
        out["uri"] = uri
    if digest:
        out["digest"] = {k: str(v) for k, v in digest.items() if v}
    notes = {k: v for k, v in annotations.items() if v is not None}
    if notes:
        out["annotations"] = notes
    return out


def resolved_dependencies(trained: dict[str, Any]) -> list[dict[str, Any]]:
    """What the training consumed, each with its digest, from the training manifest (+ run context)."""
    deps: list[dict[str, Any]] = []
    parent, base = trained.get("parent") or {}, trained.get("base") or {}
    deps.append(
        _descriptor(
            f"parent_model:{parent.get('name_or_path') or parent.get('dir')}",
            # sha256 over the folder's (path, file sha256) list: governance.lineage.sha256_dir
            {"sha256": parent.get("model_sha256")},
            role="parent_model",
            stage=parent.get("stage"),
            license=parent.get("license"),
            digest_of="governance.lineage.sha256_dir (manifest.json and README.md excluded)",
        )
    )
    if base.get("name_or_path") and base.get("name_or_path") != parent.get("name_or_path"):
        deps.append(_descriptor(f"base_model:{base['name_or_path']}", role="base_model", license=base.get("license")))
    for path, ref in sorted((trained.get("datasets") or {}).items()):
        deps.append(_descriptor(path, {"sha256": ref.get("sha256"), "md5": ref.get("md5")}, role="training_data"))
    for gate in trained.get("gates") or []:
        deps.append(
            _descriptor(
                gate["decision"],
                {"sha256": gate.get("decision_sha256")},
                role="gate_decision",
                stage=gate.get("stage"),
                passed=gate.get("passed"),
                policy_version=gate.get("policy_version"),
            )
        )
    commit = trained.get("git_commit")
    if commit and commit != "unknown":
        deps.append(_descriptor("source", {"gitCommit": commit}, role="code", dirty=trained.get("git_dirty")))
    deps.append(_descriptor("requirements.lock", {"sha256": trained.get("lock_sha256")}, role="environment_lock"))
    for path, ref in sorted((trained.get("policies") or {}).items()):
        deps.append(_descriptor(path, {"sha256": ref.get("sha256")}, role="policy", version=ref.get("version")))
    for name, digest in sorted((trained.get("reward_functions") or {}).items()):
        deps.append(_descriptor(f"reward_function:{name}", {"sha256": digest}, role="reward_function"))
    return deps


def build_statement(
    *,
    name: str,
    version: str,
    subjects: dict[str, str],
    trained: dict[str, Any],
    commands: dict[str, str],
    runs: dict[str, dict[str, Any]],
    trail_events: list[dict[str, Any]],
    environment: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The in-toto Statement v1 (SLSA provenance v1 predicate) of one registered version.

    ``subjects``: registered file path (relative to the model folder) → SHA-256.
    ``commands``: DVC stage name → its command. ``runs``: role → MLflow run
    (``run_id``, ``stage``, ``started``, ``finished`` as RFC 3339). ``trail_events``:
    the version's trail events (``seq``, ``event_type``, ``hash``, ``actor``, ``timestamp``).
    """
    training_run = runs.get("training") or {}
    metadata = {"invocationId": training_run.get("run_id", "")}
    if training_run.get("started"):
        metadata["startedOn"] = training_run["started"]
    if training_run.get("finished"):
        metadata["finishedOn"] = training_run["finished"]
    byproducts = [
        _descriptor(f"mlflow_run:{role}", uri=f"runs:/{run['run_id']}", stage=run.get("stage"))
        for role, run in sorted(runs.items())
    ]
    byproducts += [
        _descriptor(
            f"trail_event:{event['seq']}:{event['event_type']}",
            {"sha256": event["hash"]},
            actor=event.get("actor"),
            timestamp=event.get("timestamp"),
        )
        for event in trail_events
    ]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": path, "digest": {"sha256": digest}} for path, digest in sorted(subjects.items())],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "registered_model": {"name": name, "version": str(version)},
                    "stage": trained.get("stage"),
                    "params": trained.get("params") or {},
                    "params_sha256": trained.get("params_sha256"),
                    "commands": dict(sorted(commands.items())),
                },
                "internalParameters": {"environment": dict(sorted((environment or {}).items()))},
                "resolvedDependencies": resolved_dependencies(trained),
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID},
                "metadata": metadata,
                "byproducts": byproducts,
            },
        },
    }


def sign_statement(statement: dict[str, Any], private_key) -> dict[str, Any]:
    """A DSSE envelope (JSON dict) of the statement, signed with ``private_key`` (ECDSA P-256)."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import CryptoSigner

    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    envelope = Envelope(payload=payload, payload_type=PAYLOAD_TYPE, signatures={})
    envelope.sign(CryptoSigner(private_key))
    return envelope.to_dict()


def open_envelope(envelope: dict[str, Any], public_key, source: str | Path = "statement") -> dict[str, Any]:
    """Verify a DSSE envelope under ``public_key`` and return its in-toto statement.

    Raises :class:`ArtifactTampered` when no signature verifies or the payload is not a statement.
    """
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError
    from securesystemslib.signer import SSlibKey

    try:
        parsed = Envelope.from_dict(envelope)
        parsed.verify([SSlibKey.from_crypto(public_key)], 1)
    except (VerificationError, KeyError, ValueError) as exc:
        raise ArtifactTampered(f"{source}: DSSE signature does not verify under the trusted key ({exc})") from None
    if parsed.payload_type != PAYLOAD_TYPE:
        raise ArtifactTampered(f"{source}: payload type {parsed.payload_type!r}, expected {PAYLOAD_TYPE}")
    statement = json.loads(parsed.payload)
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != SLSA_PROVENANCE_V1:
        raise ArtifactTampered(f"{source}: not an in-toto v1 statement with an SLSA provenance v1 predicate")
    return statement


def payload_of(envelope: dict[str, Any]) -> dict[str, Any]:
    """The statement inside an envelope, unverified (for display only)."""
    return json.loads(base64.b64decode(envelope["payload"]))
