"""Signed model versions: verify intact files, name a flipped byte, refuse to promote it, emit the statement."""

from __future__ import annotations

import itertools
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from governance import approvals, registry, trail
from governance.cli import main as govern
from governance.errors import ArtifactTampered, PolicyViolation
from governance.identity import Identity
from governance.lineage import sha256_dir, sha256_file
from governance.provenance import attest_registered_version, verify_version
from governance.provenance.statement import open_envelope
from governance.provenance.version import provenance_folder

REPO = Path(__file__).resolve().parents[2]
_names = itertools.count(1)
FILES = {
    "model.safetensors": bytes(range(256)) * 64,
    "config.json": b'{"model_type": "qwen2", "hidden_size": 64}\n',
    "manifest.json": b'{"stage": "train_sft"}\n',
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite MLflow store per module (creating one costs seconds); each test signs its own model."""
    root = tmp_path_factory.mktemp("provenance")
    patch = pytest.MonkeyPatch()
    patch.chdir(root)  # the local store keeps artifacts in ./mlartifacts, its signing key in ./keys
    patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    for var in ("GOVERN_SIGNING_KEY", "GOVERN_SIGNING_PUBLIC_KEY", "MLFLOW_TRACKING_USERname"):
        patch.delenv(var, raising=False)
    registry.ensure_experiment("govllm")
    yield root
    patch.undo()


@pytest.fixture
def signed(store, tmp_path, monkeypatch):
    """One version registered as the register stage does it: artifacts, tags, signature, statement, trail."""
    name, run_id, model, stored = logged_model(tmp_path, monkeypatch)
    return name, register_signed(name, run_id, model), stored


def logged_model(tmp_path: Path, monkeypatch) -> tuple[str, str, Path, Path]:
    """A model's files logged to a finished training run, with a trail and policies of its own: the model's name to
    register, the run id, the local folder and the run's artifact folder (the embedded store serves it in place)."""
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    policies = tmp_path / "policies"
    policies.mkdir()
    for name in ("approvals.yaml", "waivers.yaml"):
        shutil.copy(REPO / "policies" / name, policies / name)
    monkeypatch.setenv("GOVERN_POLICY_DIR", str(policies))
    monkeypatch.setenv("GOVERN_USER", "ci-bot")
    model = tmp_path / "model"
    model.mkdir()
    for file, data in FILES.items():
        (model / file).write_bytes(data)
    client = registry.client()
    run = client.create_run(registry.ensure_experiment("govllm"), tags={"stage": "train_sft"})
    client.log_artifacts(run.info.run_id, str(model), "model")
    client.set_terminated(run.info.run_id)
    stored = Path(urlparse(client.get_run(run.info.run_id).info.artifact_uri).path)
    return f"govllm-sft-{next(_names)}", run.info.run_id, model, stored


def register_signed(name: str, run_id: str, model: Path) -> str:
    """Register ``run_id``'s model as ``name``, sign it and record it in the trail, as the register stage does."""
    version, _ = registry.register_version(
        name,
        run_id=run_id,
        artifact_path="model",
        lineage_key="k1",
        tags={
            "lineage.trained_by": "trainer",
            "lineage.registered_by": "ci-bot",
            "lineage.risk_tier": "medium",
            "lineage.gate_decisions": "passed",
        },
    )
    trained = {
        "stage": "train_sft",
        "model_sha256": sha256_dir(model),
        "run_id": run_id,
        "params": {"trl": {"seed": 42, "max_steps": 60}},
        "params_sha256": "p" * 64,
        "datasets": {"artifacts/pii_scan_sft/data/train.jsonl": {"sha256": "a" * 64, "md5": "b" * 32}},
        "gates": [
            {
                "stage": "pii_scan_sft",
                "decision": "artifacts/pii_scan_sft/decision.json",
                "decision_sha256": "c" * 64,
                "passed": True,
                "policy_version": "3",
            }
        ],
        "parent": {"stage": "base_model", "name_or_path": "builtin:tiny", "model_sha256": "d" * 64},
        "base": {"name_or_path": "builtin:tiny", "license": "apache-2.0"},
        "git_commit": "e" * 40,
        "git_dirty": False,
        "lock_sha256": "f" * 64,
        "policies": {"policies/pii.yaml": {"version": "3", "sha256": "0" * 64}},
    }
    evidence = attest_registered_version(
        name,
        str(version.version),
        trained=trained,
        commands={"train_sft": "python -m pipelines.train_sft"},
        runs={"training": run_id},
    )
    approvals.record_registration(
        name,
        str(version.version),
        actor="ci-bot",
        evidence={**evidence, "model_sha256": trained["model_sha256"]},
        gate_status="passed",
        eval_status="passed",
    )
    return str(version.version)


def provenance_of(stored: Path, name: str, version: str) -> Path:
    """The run's folder holding the signature and statement the trail recorded for ``name`` v``version``."""
    registered = trail.events(model=name, version=version, event_types=["model_registered"])[0]
    return stored / provenance_folder(version, registered.evidence["statement_sha256"])


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_an_intact_version_verifies(signed, capsys):
    name, version, stored = signed
    assert govern(["verify", name, version]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{name} v{version}: 3 registered files match their signature and provenance statement")
    tags = registry.get_version(name, version).tags
    registered = trail.events(model=name, version=version, event_types=["model_registered"])[0]
    assert registered.evidence["signature_sha256"] == sha256_file(provenance_of(stored, name, version) / "model.sig")
    assert tags["lineage.signature_sha256"] == registered.evidence["signature_sha256"]


@pytest.mark.parametrize("file", sorted(FILES))
def test_one_flipped_byte_is_named_and_blocks_promotion(signed, capsys, file):
    name, version, stored = signed
    for user in ("alice", "bob"):
        approvals.approve(name, version, reason=f"reviewed by {user}", identity=Identity(user=user, source="local"))
    target = stored / "model" / file
    expected = sha256_file(target)
    flip_byte(target)
    assert govern(["verify", name, version]) == 1
    assert capsys.readouterr().err == (
        f"govern: {name} v{version}: model/{file}: sha256 {sha256_file(target)[:12]}… differs from the "
        f"provenance statement's {expected[:12]}…\n"
    )
    with pytest.raises(ArtifactTampered, match=f"model/{file}: sha256"):
        approvals.promote(name, version, identity=Identity(user="dana", source="local"))
    assert trail.events(model=name, event_types=["promoted"]) == []


def test_a_replaced_signature_is_refused(signed):
    name, version, stored = signed
    provenance = provenance_of(stored, name, version)
    (provenance / "model.sig").write_text("{}")
    with pytest.raises(ArtifactTampered) as info:
        verify_version(name, version)
    assert str(info.value) == (
        f"{name} v{version}: {provenance.relative_to(stored)}/model.sig differs from the one recorded in the audit "
        "trail at registration"
    )


def test_a_second_version_from_the_same_run_leaves_the_first_verifiable(signed):
    """The same weights registered under a second model (a new method label, a second writer's clone) sign
    into the same training run: each attestation keeps its own folder there, so neither overwrites the
    signature and statement the other's registration recorded in the trail."""
    name, version, stored = signed
    run_id = registry.get_version(name, version).run_id
    twin = register_signed(f"{name}-twin", run_id, stored / "model")
    assert verify_version(f"{name}-twin", twin).provenance_run_id == run_id
    first = verify_version(name, version)
    assert (
        stored / first.provenance_folder
        == provenance_of(stored, name, version)
        != provenance_of(stored, name + "-twin", twin)
    )


def test_a_version_signed_before_attestations_had_their_own_folder_still_verifies(signed):
    """Registrations from before keep their signature and statement in ``provenance/`` itself: read there,
    and checked against the recorded digests all the same."""
    name, version, stored = signed
    folder = provenance_of(stored, name, version)
    for file in folder.iterdir():
        file.rename(stored / "provenance" / file.name)
    folder.rmdir()
    assert verify_version(name, version).provenance_folder == "provenance"
    (stored / "provenance/model.sig").write_text("{}")
    with pytest.raises(ArtifactTampered, match="provenance/model.sig differs from the one recorded"):
        verify_version(name, version)


def test_the_statement_is_in_toto_slsa_and_binds_the_weights(signed, tmp_path):
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement

    from governance.provenance.keys import load_public_key, trusted_public_key_path

    name, version, stored = signed
    out = tmp_path / "out" / "statement.json"
    assert govern(["provenance", name, version, "--out", str(out)]) == 0
    statement = open_envelope(json.loads(out.read_text()), load_public_key(trusted_public_key_path()))
    # The schemas' required fields, checked by the in-toto attestation bindings (unknown fields fail)
    parsed = Statement.copy_from_pb(json_format.ParseDict(statement, statement_pb2.Statement()))
    parsed.validate()
    predicate = json_format.ParseDict(statement["predicate"], provenance_pb2.Provenance())
    assert predicate.build_definition.build_type.startswith("https://")
    assert predicate.build_definition.external_parameters["commands"]["train_sft"] == "python -m pipelines.train_sft"
    assert predicate.run_details.builder.id.startswith("https://")
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects["model.safetensors"] == sha256_file(stored / "model/model.safetensors")
    deps = {d["name"]: d for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert deps["artifacts/pii_scan_sft/data/train.jsonl"]["digest"] == {"sha256": "a" * 64, "md5": "b" * 32}
    assert deps["source"]["digest"] == {"gitCommit": "e" * 40}
    assert deps["requirements.lock"]["digest"] == {"sha256": "f" * 64}
    byproducts = [b["name"] for b in statement["predicate"]["runDetails"]["byproducts"]]
    assert "trail_event:1:model_registered" in byproducts and "mlflow_run:training" in byproducts


def test_an_outsider_verifies_with_the_public_model_signing_cli(signed, store):
    """What the README tells a reviewer: the public CLI, the public key, the downloaded files."""
    name, version, stored = signed
    public = store / "keys" / "model_signing.pub"
    command = [
        sys.executable, "-m", "model_signing", "verify", "key", str(stored / "model"),
        "--signature", str(provenance_of(stored, name, version) / "model.sig"), "--public_key", str(public),
    ]  # fmt: skip
    ok = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr + ok.stdout
    flip_byte(stored / "model" / "config.json")
    bad = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "config.json" in bad.stdout + bad.stderr


# --------------------------------------------------------------------------- what is verified is what is served


def redirect(store: Path, name: str, version: str, uri: str, columns: tuple[str, ...]) -> None:
    """The attack of issue 31: one UPDATE of the version's row in the SQLite MLflow store."""
    with sqlite3.connect(store / "mlflow.db") as db:
        for column in columns:
            db.execute(f"UPDATE model_versions SET {column} = ? WHERE name = ? AND version = ?", (uri, name, version))


def tampered_copy(stored: Path, where: Path) -> str:
    """A copy of the registered model folder with one flipped byte in the weights; its file URI."""
    shutil.copytree(stored / "model", where)
    flip_byte(where / "model.safetensors")
    return where.as_uri()


def denials(name: str) -> list[trail.Event]:
    return trail.events(model=name, event_types=["permission_denied"])


@pytest.mark.parametrize("columns", [("source", "storage_location"), ("storage_location",)])
def test_a_version_pointed_at_tampered_weights_is_refused_drift_and_recorded(signed, store, tmp_path, capsys, columns):
    name, version, stored = signed
    for user in ("alice", "bob"):
        approvals.approve(name, version, reason=f"reviewed by {user}", identity=Identity(user=user, source="local"))
    registered = trail.events(model=name, version=version, event_types=["model_registered"])[0]
    frozen = registry.client().get_model_version(name, version).source
    assert registered.details["source"] == registered.details["storage_location"] == frozen
    assert registered.details["run_id"] == registry.client().get_model_version(name, version).run_id
    evil = tampered_copy(stored, tmp_path / "evil" / "model")
    redirect(store, name, version, evil, columns)
    # The attack is real: what a deployment loading models:/NAME/VERSION downloads is the tampered copy
    from mlflow.artifacts import download_artifacts

    served = Path(download_artifacts(f"models:/{name}/{version}", dst_path=str(tmp_path / "served")))
    assert (served / "model.safetensors").read_bytes() == (tmp_path / "evil/model/model.safetensors").read_bytes()
    field = columns[0]
    refusal = (
        f"{name} v{version}: registry {field} is {evil} but the audit trail recorded {frozen} at registration; "
        f"models:/{name}/{version} serves files that were never verified (restore {field} in the MLflow store)"
    )
    # govern verify: refused, and the refusal is in the trail
    capsys.readouterr()
    assert govern(["verify", name, version]) == 1
    assert capsys.readouterr().err == f"govern: {refusal}\n"
    recorded = denials(name)[-1]
    assert (recorded.reason, recorded.details["action"], recorded.details["rules"]) == (
        refusal,
        "verify",
        ["provenance.verified"],
    )
    # promote: refused naming the field, recorded, production untouched
    with pytest.raises(ArtifactTampered) as info:
        approvals.promote(name, version, identity=Identity(user="dana", source="local"))
    assert str(info.value) == f"promote refused by provenance.verified: {refusal}"
    assert trail.events(model=name, event_types=["promoted"]) == []
    assert registry.version_by_alias(name, "production") is None
    denied = denials(name)[-1]
    assert (denied.actor, denied.reason, denied.details["action"]) == ("dana", str(info.value), "promote")
    # Recording the refusals kept the trail intact and anchored at its new head
    anchors, _ = approvals.registry_anchors(name)
    trail.require_intact(anchors=anchors)
    assert [a.seq for a in anchors] == [trail.head().seq] == [denied.seq]
    # audit verify: the moved row is drift, named in full, with how to repair it
    assert govern(["audit", "verify"]) == 1
    mine = [line for line in capsys.readouterr().err.splitlines() if f"registry drift: {name} " in line]
    repair = "(repair: set {f} of " + f"{name} v{version} back in the MLflow store; govern reconcile cannot)"
    assert mine == [
        f"govern: registry drift: {name} v{version}: {f}: registry says {evil}, trail says {frozen} "
        + repair.format(f=f)
        for f in columns
    ]
    # reconcile cannot move it and says so (exit 1); nothing claims a repair
    assert govern(["reconcile", name]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"govern: not repaired: {name} v{version}: {f}: registry says {evil}, trail says {frozen} " + repair.format(f=f)
        for f in columns
    ]
    assert trail.events(model=name, event_types=["registry_reconciled"]) == []
    # govern show names it beside the version (its served location is the only one show asks the registry for)
    from governance.cli.approvals import show_facts

    assert [line for line in show_facts(name, version)["drift"] if " v" + version + ": " in line] == [
        f"{name} v{version}: {f}: registry says {evil}, trail says {frozen}" for f in columns
    ]


def test_the_files_at_the_download_uri_are_checked_not_the_runs_copy(signed, store, tmp_path):
    """The run's model/ is intact; the registry serves the same path but its files were swapped in place."""
    name, version, stored = signed
    frozen = registry.client().get_model_version(name, version).source
    assert registry.client().get_model_version_download_uri(name, version) == frozen
    flip_byte(stored / "model" / "model.safetensors")
    with pytest.raises(ArtifactTampered, match=r"model/model.safetensors: sha256 .* differs from the provenance"):
        verify_version(name, version)


def test_an_unsigned_version_is_refused_once_signing_exists(signed, tmp_path, capsys):
    """The downgrade: register a version around the signature (no attestation) and ask for its approval."""
    name, version, _stored = signed
    model = tmp_path / "unsigned"
    shutil.copytree(Path(urlparse(registry.client().get_model_version(name, version).source).path), model)
    flip_byte(model / "model.safetensors")
    client = registry.client()
    run = client.create_run(registry.ensure_experiment("govllm"), tags={"stage": "train_sft"})
    client.log_artifacts(run.info.run_id, str(model), "model")
    unsigned, _ = registry.register_version(
        name,
        run_id=run.info.run_id,
        artifact_path="model",
        lineage_key="k2",
        tags={"lineage.trained_by": "trainer", "lineage.registered_by": "ci-bot", "lineage.risk_tier": "medium"},
    )
    unsigned = str(unsigned.version)
    approvals.record_registration(
        name, unsigned, actor="ci-bot", evidence={"model_sha256": "ab" * 32}, gate_status="passed", eval_status="passed"
    )
    first = trail.events(model=name, version=version, event_types=["model_registered"])[0]
    refusal = (
        f"{name} v{unsigned}: registered without a signature, but signing is in force since {name} v{version} "
        f"(trail event #{first.seq}); an unsigned version cannot be approved or deployed: register a signed version"
    )
    with pytest.raises(PolicyViolation) as info:
        approvals.approve(name, unsigned, reason="looks fine", identity=Identity(user="alice", source="local"))
    assert str(info.value) == f"approve refused by provenance.signed: {refusal}"
    assert trail.events(model=name, version=unsigned, event_types=["approved"]) == []
    denied = denials(name)[-1]
    assert (denied.actor, denied.details["action"], denied.details["rules"]) == (
        "alice",
        "approve",
        ["provenance.signed"],
    )
    capsys.readouterr()
    assert govern(["verify", name, unsigned]) == 1
    assert capsys.readouterr().err == (
        f"govern: {name} v{unsigned}: registered without a signature; nothing to verify its files by\n"
    )


def test_a_second_writers_attestation_tags_give_way_to_what_the_trail_recorded(signed):
    """Two writers attesting one version at once each tag it, then record; the trail keeps the first
    registration, and the version's tags (what the MLflow UI shows) end as the trail recorded them."""
    name, version, _stored = signed
    recorded = trail.events(model=name, version=version, event_types=["model_registered"])[0].evidence
    loser = {"lineage.signature_sha256": "9" * 64, "lineage.statement_sha256": "8" * 64}
    registry.set_version_tags(name, version, loser)  # the second writer's attestation, after the first recorded
    again = approvals.record_registration(
        name,
        version,
        actor="ci-bot",
        evidence={key: recorded[key] for key in ("signature_sha256", "statement_sha256", "signing_key")},
        gate_status="passed",
        eval_status="passed",
    )
    assert not again.created
    tags = registry.get_version(name, version).tags
    assert tags["lineage.signature_sha256"] == recorded["signature_sha256"]
    assert tags["lineage.statement_sha256"] == recorded["statement_sha256"]
    assert verify_version(name, version).signing_key == recorded["signing_key"]


def test_attack_weights_swapped_between_the_check_and_the_signature_are_never_signed(store, tmp_path, monkeypatch):
    """A1: the embedded store serves a version's files in place; attestation hashed them against the training
    manifest, then signed and listed them by reading them again. Weights swapped in between, and back after, were
    signed with the project's key: an outsider's ``model_signing verify`` accepted them, and the genuine files then
    failed their signature. Attestation now checks, signs and lists one private copy."""
    import governance.provenance.version as version_module

    name, run_id, model, stored = logged_model(tmp_path, monkeypatch)
    served = stored / "model"
    weights = served / "model.safetensors"
    genuine = weights.read_bytes()
    real_sign = version_module.sign_model_dir

    def swapped_while_signing(model_dir, signature_path, key_path):
        weights.write_bytes(b"tampered" + genuine[8:])
        try:
            return real_sign(model_dir, signature_path, key_path)
        finally:
            weights.write_bytes(genuine)

    monkeypatch.setattr(version_module, "sign_model_dir", swapped_while_signing)
    version = register_signed(name, run_id, model)
    assert weights.read_bytes() == genuine  # swapped back
    verify_version(name, version)  # the genuine files carry the signature: the tampered bytes were never signed
    weights.write_bytes(b"tampered" + genuine[8:])
    try:
        with pytest.raises(ArtifactTampered):
            verify_version(name, version)
    finally:
        weights.write_bytes(genuine)
