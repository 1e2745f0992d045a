"""The artifact signing key: where it lives, how it is created, which public key is trusted.

Model folders are signed with OpenSSF ``model-signing`` in key mode, which needs
an elliptic-curve key; provenance statements are signed with the same key as
DSSE envelopes. Configuration follows the audit trail's:

- ``GOVERN_SIGNING_KEY``: path to a PEM EC private key (P-256) — production
  keeps it in a secret store and mounts it for the registering job only.
- unset, with the embedded store: ``keys/model_signing.key`` beside the local
  MLflow store (``mlflow.db``), created on first use with mode 0600, outside
  any database; its public half is exported to ``keys/model_signing.pub``.

Verification trusts the **pinned** public key: ``policies/keys/model_signing.pub``
committed in git and unchanged in the working tree (the commit that adds it is
the evidence of which key is the project's; :mod:`governance.policy.review`).
It is required for anything but the embedded default: with
``GOVERN_SIGNING_KEY`` set, signing and verifying refuse without it, and
signing refuses a key whose public half is not the pinned one. Only the
embedded default, with nothing pinned, verifies with the local
``keys/model_signing.pub`` beside the store, labelled "not pinned": anyone who
can write that folder can re-sign the weights and replace it, so it proves
nothing to an outsider (``govern verify`` still compares its fingerprint with
the one the audit trail recorded at registration). A pinned file that is not
committed, or edited since, is refused, never trusted.
``GOVERN_SIGNING_PUBLIC_KEY`` (a setting naming a key file) is refused: a key
named by a setting is not pinned.

What is believed: a signature that verifies under the pinned key (or, for
the embedded default, under the local key whose fingerprint the trail
recorded). What is only displayed: the key fingerprint in tags.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from governance.errors import ConfigError
from governance.policy.review import review_status

KEY_ENV = "GOVERN_SIGNING_KEY"
#: No longer read: naming a public key by a setting is not pinning it (refused with the fix when set).
PUBLIC_KEY_ENV = "GOVERN_SIGNING_PUBLIC_KEY"
#: The pinned public key, committed to the repository (relative to the project root, or ``GOVERN_POLICY_DIR``).
COMMITTED_PUBLIC_KEY = Path("policies/keys/model_signing.pub")
POLICY_DIR_ENV = "GOVERN_POLICY_DIR"
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


def pinned_public_key_path() -> Path:
    """Where the pinned public key lives: ``policies/keys/model_signing.pub`` (under ``GOVERN_POLICY_DIR`` if set)."""
    policy_dir = os.environ.get(POLICY_DIR_ENV)
    return Path(policy_dir) / "keys" / COMMITTED_PUBLIC_KEY.name if policy_dir else COMMITTED_PUBLIC_KEY


@dataclass(frozen=True)
class TrustedKey:
    """The public key verification trusts, and how: ``pinned`` (committed in git) or the local default's."""

    path: Path
    pinned: bool

    def label(self) -> str:
        if self.pinned:
            return f"pinned ({self.path}, committed in git)"
        return f"local key {self.path}, not pinned (commit it as {pinned_public_key_path()} to pin it)"


def _require_committed(pinned: Path) -> None:
    why = review_status(pinned)
    if why is not None:
        raise ConfigError(
            f"{pinned}: not pinned ({why}); the trusted public key is the one committed in git: "
            "commit it in a reviewed change, or restore the committed file"
        )


def _require_not_configured_public_key() -> None:
    if os.environ.get(PUBLIC_KEY_ENV):
        raise ConfigError(
            f"{PUBLIC_KEY_ENV}={os.environ[PUBLIC_KEY_ENV]}: a public key named by a setting is not pinned; "
            f"unset it and commit the key as {pinned_public_key_path()}"
        )


def signing_key_path(create: bool = True) -> Path:
    """The private key that signs artifacts; the embedded default is created on first use (0600).

    With ``create`` (signing), the key must match the pinned public key when
    one is committed, and a configured key (``GOVERN_SIGNING_KEY``) requires
    one: a signature nobody can verify against the pinned key is refused
    before it is made. ``create=False`` only locates the key.
    """
    configured = os.environ.get(KEY_ENV)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise ConfigError(f"{KEY_ENV}={path}: no such key file")
        if create:
            _require_pinned_signer(path, required=True)
        return path
    path = _store_dir() / DEFAULT_KEY_NAME
    if not path.is_file() and create:
        _create_default_key(path)
    if create:
        _require_pinned_signer(path, required=False)
    return path


def _require_pinned_signer(private_path: Path, *, required: bool) -> None:
    """Refuse to sign with a key that is not the pinned one (or, when ``required``, with nothing pinned)."""
    pinned = pinned_public_key_path()
    if not pinned.is_file():
        if required:
            raise ConfigError(
                f"{KEY_ENV}={private_path}: no pinned public key at {pinned}; commit this key's public half there "
                "(the commit is the evidence of which key is the project's), then sign"
            )
        return
    _require_committed(pinned)
    ours = fingerprint(load_private_key(private_path).public_key())
    theirs = fingerprint(load_public_key(pinned))
    if ours != theirs:
        raise ConfigError(
            f"{private_path}: its public key {ours[:16]} is not the pinned key {pinned} ({theirs[:16]}); "
            "sign with the pinned key's private half, or pin this key in a reviewed commit"
        )


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


def trusted_public_key() -> TrustedKey:
    """The public key verification trusts: the pinned one, else (embedded default only) the local one.

    Refuses (:class:`ConfigError`, one line with the fix) a pinned file that
    is not committed or was edited since, a configured signing key with
    nothing pinned, and ``GOVERN_SIGNING_PUBLIC_KEY``.
    """
    _require_not_configured_public_key()
    pinned = pinned_public_key_path()
    if pinned.is_file():
        _require_committed(pinned)
        return TrustedKey(pinned, pinned=True)
    if os.environ.get(KEY_ENV):
        raise ConfigError(
            f"{KEY_ENV} is set but no public key is pinned at {pinned}: commit the key's public half there; "
            "only the embedded default verifies with an unpinned local key"
        )
    private = signing_key_path(create=False)
    if not private.is_file():
        raise ConfigError(
            f"no public key to verify with: commit the project's public key as {pinned}, "
            f"or provide the signing key ({KEY_ENV})"
        )
    public = private.with_name(Path(DEFAULT_PUBLIC_NAME).name)
    if not public.is_file():
        export_public_key(private, public)
    return TrustedKey(public, pinned=False)


def trusted_public_key_path() -> Path:
    """The path of :func:`trusted_public_key` (for callers that need only the file)."""
    return trusted_public_key().path


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
