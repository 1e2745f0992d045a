"""Signing and verifying a model folder with OpenSSF ``model-signing`` (key mode, offline).

The signature is a Sigstore bundle whose DSSE payload lists every file of the
folder with its SHA-256: the same file any outsider verifies with
``model_signing verify key --public_key KEY.pub --signature model.sig MODEL_DIR``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from governance.errors import ArtifactTampered
from governance.lineage import sha256_file


def file_digests(model_dir: str | Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file in a folder (the statement's subjects)."""
    root = Path(model_dir)
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def sign_model_dir(model_dir: str | Path, signature_path: str | Path, private_key_path: str | Path) -> str:
    """Sign every file of ``model_dir`` into ``signature_path``; returns the signature file's SHA-256."""
    from model_signing import signing

    signature_path = Path(signature_path)
    signature_path.parent.mkdir(parents=True, exist_ok=True)
    signing.Config().use_elliptic_key_signer(private_key=Path(private_key_path)).sign(
        Path(model_dir), signature_path
    )
    return sha256_file(signature_path)


def verify_model_dir(model_dir: str | Path, signature_path: str | Path, public_key_path: str | Path) -> None:
    """Verify ``model_dir`` against its signature; raise :class:`ArtifactTampered` naming the first bad file."""
    from model_signing import verifying

    try:
        verifying.Config().use_elliptic_key_verifier(public_key=Path(public_key_path)).verify(
            Path(model_dir), Path(signature_path)
        )
    except ValueError as exc:
        raise ArtifactTampered(_first_problem(str(exc), signature_path)) from None


def _first_problem(message: str, signature_path: str | Path) -> str:
    """model_signing's mismatch message ("Signature mismatch: [...]") as one line naming the file."""
    for marker, what in (("Hash mismatch for '", "differs from its signature"), ("Extra files found", "")):
        if marker in message:
            if what:
                name = message.split(marker, 1)[1].split("'", 1)[0]
                return f"{name}: {what} ({Path(signature_path).name})"
            files = message.split(marker, 1)[1].split(": ", 1)[1].split("'", 1)[0].split('"', 1)[0]
            return f"{files.rstrip(']')}: not in the signature ({Path(signature_path).name})"
    if "Missing files" in message:
        files = message.split("Missing files", 1)[1].split(": ", 1)[1].split("'", 1)[0].split('"', 1)[0]
        return f"{files.rstrip(']')}: signed but missing ({Path(signature_path).name})"
    return f"{Path(signature_path).name}: signature does not verify under the trusted key ({message[:200]})"


def digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
