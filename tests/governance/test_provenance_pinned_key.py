"""The model-signing key an outsider and ``govern verify`` trust is pinned: committed in git under policies/keys/.

The attack, as it was done: replace the registered weights, re-sign them with
one's own key and replace ``keys/model_signing.pub`` beside the store; the
README's old outsider check (``--public_key keys/model_signing.pub``) passed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from governance.errors import ArtifactTampered, ConfigError
from governance.provenance import keys
from governance.provenance.signing import sign_model_dir, verify_model_dir

PINNED = "policies/keys/model_signing.pub"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder (the cwd) with the embedded store's key beside ``mlflow.db`` and one signed model."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    for name in (keys.KEY_ENV, keys.PUBLIC_KEY_ENV, "GOVERN_POLICY_DIR"):
        monkeypatch.delenv(name, raising=False)
    model = tmp_path / "v1" / "model"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(bytes(range(256)) * 16)
    (model / "config.json").write_text('{"model_type": "qwen2"}\n')
    sign_model_dir(model, tmp_path / "v1" / "provenance" / "model.sig", keys.signing_key_path())
    return tmp_path


def git(folder, *args: str) -> str:
    command = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.org", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def pin(project) -> None:
    """What the README says: copy the public half under policies/keys/ and commit it."""
    (project / "policies" / "keys").mkdir(parents=True)
    shutil.copy(project / "keys" / "model_signing.pub", project / PINNED)
    git(project, "init", "-q")
    git(project, "add", PINNED)
    git(project, "commit", "-q", "-m", "pin the model signing key")


def outsider_check(project, public_key) -> subprocess.CompletedProcess:
    """The README's outsider check: the public model_signing CLI over the downloaded files."""
    command = [
        sys.executable, "-m", "model_signing", "verify", "key", str(project / "v1" / "model"),
        "--signature", str(project / "v1" / "provenance" / "model.sig"), "--public_key", str(public_key),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_re_signed_weights_pass_the_unpinned_check_and_fail_the_pinned_one(project):
    pin(project)
    assert keys.trusted_public_key().label() == f"pinned ({PINNED}, committed in git)"
    # The attacker: new weights, their own key, re-signed, and their public half beside the store
    (project / "v1" / "model" / "model.safetensors").write_bytes(b"backdoored" * 100)
    for name in ("model_signing.key", "model_signing.pub"):
        (project / "keys" / name).unlink()
    keys._create_default_key(project / "keys" / "model_signing.key")
    sign_model_dir(project / "v1" / "model", project / "v1" / "provenance" / "model.sig", "keys/model_signing.key")
    assert outsider_check(project, project / "keys" / "model_signing.pub").returncode == 0  # the old README
    (project / "pinned.pub").write_text(git(project, "show", f"HEAD:{PINNED}"))  # the README now
    refused = outsider_check(project, project / "pinned.pub")
    assert refused.returncode != 0
    with pytest.raises(ArtifactTampered, match=r"^model.sig: signature does not verify under the trusted key"):
        verify_model_dir(
            project / "v1" / "model", project / "v1" / "provenance" / "model.sig", keys.trusted_public_key_path()
        )
    # …and govern will not sign anything more with a key that is not the pinned one
    with pytest.raises(ConfigError) as info:
        keys.signing_key_path()
    assert str(info.value).startswith(f"{project / 'keys' / 'model_signing.key'}: its public key ")
    assert str(info.value).endswith(
        f"is not the pinned key {PINNED} ({keys.fingerprint(keys.load_public_key(project / PINNED))[:16]}); "
        "sign with the pinned key's private half, or pin this key in a reviewed commit"
    )


def test_a_pinned_key_that_is_not_committed_is_refused(project):
    (project / "policies" / "keys").mkdir(parents=True)
    shutil.copy(project / "keys" / "model_signing.pub", project / PINNED)
    with pytest.raises(ConfigError) as info:
        keys.trusted_public_key()
    assert str(info.value) == (
        f"{PINNED}: not pinned (not a git checkout); the trusted public key is the one committed in git: "
        "commit it in a reviewed change, or restore the committed file"
    )
    git(project, "init", "-q")
    with pytest.raises(ConfigError, match=r"^policies/keys/model_signing.pub: not pinned \(not committed\); "):
        keys.trusted_public_key()
    git(project, "add", PINNED)
    git(project, "commit", "-q", "-m", "pin")
    assert keys.trusted_public_key().pinned
    # Swapped in the working tree after the commit: refused, not trusted
    (project / PINNED).write_text((project / PINNED).read_text().replace("A", "B", 1))
    with pytest.raises(ConfigError, match=r"^policies/keys/model_signing.pub: not pinned \(uncommitted change\); "):
        keys.trusted_public_key_path()


def test_a_configured_signing_key_requires_the_pinned_key(project, monkeypatch):
    monkeypatch.setenv(keys.KEY_ENV, str(project / "keys" / "model_signing.key"))
    with pytest.raises(ConfigError) as info:
        keys.trusted_public_key()
    assert str(info.value) == (
        f"{keys.KEY_ENV} is set but no public key is pinned at {PINNED}: commit the key's public half there; "
        "only the embedded default verifies with an unpinned local key"
    )
    with pytest.raises(ConfigError) as info:
        keys.signing_key_path()
    assert str(info.value) == (
        f"{keys.KEY_ENV}={project / 'keys' / 'model_signing.key'}: no pinned public key at {PINNED}; commit this "
        "key's public half there (the commit is the evidence of which key is the project's), then sign"
    )
    pin(project)
    assert keys.signing_key_path() == project / "keys" / "model_signing.key"
    assert keys.trusted_public_key().pinned


def test_a_public_key_named_by_a_setting_is_refused(project, monkeypatch):
    monkeypatch.setenv(keys.PUBLIC_KEY_ENV, str(project / "keys" / "model_signing.pub"))
    with pytest.raises(ConfigError) as info:
        keys.trusted_public_key()
    assert str(info.value) == (
        f"{keys.PUBLIC_KEY_ENV}={project / 'keys' / 'model_signing.pub'}: a public key named by a setting is not "
        f"pinned; unset it and commit the key as {PINNED}"
    )


def test_the_embedded_default_without_a_pin_is_labelled_not_pinned(project):
    trusted = keys.trusted_public_key()
    assert (trusted.path, trusted.pinned) == (project / "keys" / "model_signing.pub", False)
    assert trusted.label() == (
        f"local key {project / 'keys' / 'model_signing.pub'}, not pinned (commit it as {PINNED} to pin it)"
    )
