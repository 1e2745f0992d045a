"""Schema of ``policies/trail_keys.yaml``: the public keys that may sign audit-trail events.

A key listed here is reviewed in git — its public half, who holds the
private half and from when it may sign — but only while the file is committed
and unchanged in the working tree (:func:`governance.policy.review.review_status`;
:mod:`governance.trail.signing` asks). A listing that is not committed, or a
copy outside a git checkout, is trusted only as "not reviewed in git", like
the embedded local key. The ``id`` is the key's fingerprint (``ed25519:`` and
the first 16 hex digits of the SHA-256 of the raw public key), checked against
``public_key`` so a copy-paste slip fails loudly here rather than as a
"forged" event later.

Trust boundary: this module parses and checks the file's shape; it believes
nothing about who wrote it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib

from pydantic import Field, field_validator, model_validator

from governance.policy import PolicyFile, Strict


def fingerprint(raw_public_key: bytes) -> str:
    """The key id of a raw 32-byte Ed25519 public key."""
    return "ed25519:" + hashlib.sha256(raw_public_key).hexdigest()[:16]


class TrailKey(Strict):
    """One public key that may sign trail events."""

    id: str = Field(pattern=r"^ed25519:[0-9a-f]{16}$")
    public_key: str = Field(description="raw 32-byte Ed25519 public key, base64")
    owner: str = Field(min_length=1, description="who holds the private half (a person or a secret store)")
    valid_from: dt.date = Field(description="events dated before this day may not carry this key")

    @field_validator("public_key")
    @classmethod
    def _is_ed25519(cls, value: str) -> str:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("public_key is not base64") from None
        if len(raw) != 32:
            raise ValueError(f"public_key decodes to {len(raw)} bytes; an Ed25519 public key has 32")
        return value

    @model_validator(mode="after")
    def _id_is_the_fingerprint(self) -> TrailKey:
        expected = fingerprint(base64.b64decode(self.public_key))
        if self.id != expected:
            raise ValueError(f"id {self.id} does not match public_key (its fingerprint is {expected})")
        return self


class TrailKeysPolicy(PolicyFile):
    """``policies/trail_keys.yaml``."""

    keys: list[TrailKey]

    @model_validator(mode="after")
    def _unique_ids(self) -> TrailKeysPolicy:
        ids = [key.id for key in self.keys]
        duplicates = sorted({key_id for key_id in ids if ids.count(key_id) > 1})
        if duplicates:
            raise ValueError(f"key ids listed twice: {', '.join(duplicates)}")
        return self
