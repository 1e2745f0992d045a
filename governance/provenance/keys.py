"""The artifact signing key: where it lives, how it is created, which public key is trusted.

Model folders are signed with OpenSSF ``model-signing`` in key mode, which needs
an elliptic-curve key; provenance statements are signed with the same key as
DSSE envelopes. Configuration follows the audit trail's:

- ``GOVERN_SIGNING_KEY``: path to a PEM EC private key (P-256) — production
  keeps it in a secret store and mounts it for the registering job only.
- unset, with the embedded store: ``keys/model_signing.key`` beside the local
  MLflow store (``mlflow.db``), created on first use with mode 0600, outside
  any database; its public half is exported to ``keys/model_signing.pub``.

Verification trusts ``GOVERN_SIGNING_PUBLIC_KEY`` if set, else a public key
committed as ``policies/keys/model_signing.pub`` (production: the commit that
adds it is the evidence of which key is the project's), else the public half of
the configured signing key. What is believed: a signature that verifies under
the trusted public key. What is only displayed: the key fingerprint in tags.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from governance.errors import ConfigError

KEY_ENV = "GOVERN_SIGNING_KEY"
PUBLIC_KEY_ENV = "GOVERN_SIGNING_PUBLIC_KEY"
#: A production public key committed to the repository; trusted over the local default when present.
COMMITTED_PUBLIC_KEY = Path("policies/keys/model_signing.pub")
DEFAULT_KEY_NAME = "keys/model_signing.key"
DEFAULT_PUBLIC_NAME = "keys/model_signing.pub"


def _store_dir() -> Path:
    """The folder of the local MLflow store the embedded default keeps its key beside."""
    tracking = os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    if tracking.startswith("sqlite:///"):
        return Path(tracking.removeprefix("sqlite:///")).resolve().parent
    if tracking.startswith("file:") or "://" not in tracking:
        return Path(tracking.removeprefix("file://").removeprefix("file:")).resolve().parent
    raise ConfigError(
        f"{KEY_ENV} is not set: with MLflow at {tracking} the signing key must be provided "
        f"(a PEM EC P-256 private key: openssl ecparam -name prime256v1 -genkey -noout -out key.pem)"
    )


def signing_key_path(create: bool = True) -> Path:
    """The private key that signs artifacts; the embedded default is created on first use (0600)."""
    configured = os.environ.get(KEY_ENV)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ConfigError(f"{KEY_ENV}={path}: no such key file")
        return path
    path = _store_dir() / DEFAULT_KEY_NAME
    if not path.is_file() and create:
        _create_default_key(path)
    return path


def _create_default_key(path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    try:
        # Two first uses at once: the first key written wins, the other is discarded
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    export_public_key(path, path.parent / Path(DEFAULT_PUBLIC_NAME).name)


def load_private_key(path: Path):
    """The private key object (EC only: model_signing's key signer needs one)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not a readable unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{path}: model signing needs an elliptic-curve key (P-256), not {type(key).__name__}")
    return key


def export_public_key(private_path: Path, public_path: Path) -> Path:
    """Write the PEM public half of a private key (what an outsider needs to verify)."""
    from cryptography.hazmat.primitives import serialization

    public = load_private_key(private_path).public_key()
    public_path.write_bytes(
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return public_path


def trusted_public_key_path() -> Path:
    """The public key verification trusts (see the module docstring for the order)."""
    configured = os.environ.get(PUBLIC_KEY_ENV)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ConfigError(f"{PUBLIC_KEY_ENV}={path}: no such public key file")
        return path
    if COMMITTED_PUBLIC_KEY.is_file():
        return COMMITTED_PUBLIC_KEY
    private = signing_key_path(create=False)
    if not private.is_file():
        raise ConfigError(
            f"no public key to verify with: set {PUBLIC_KEY_ENV}, commit {COMMITTED_PUBLIC_KEY}, "
            f"or provide the signing key ({KEY_ENV})"
        )
    public = private.with_name(Path(DEFAULT_PUBLIC_NAME).name)
    if not public.is_file():
        export_public_key(private, public)
    return public


def load_public_key(path: Path):
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_public_key(path.read_bytes())
    except ValueError as exc:
        raise ConfigError(f"{path}: not a PEM public key ({exc})") from None


def fingerprint(public_key) -> str:
    """SHA-256 of the DER public key: the key's identity in tags, the trail and the statement."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()
