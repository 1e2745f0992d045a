"""Provenance anyone can verify: signed model files, in-toto/SLSA statements, reproduction.

- :mod:`~governance.provenance.keys` — the artifact signing key (EC P-256) and the trusted public key.
- :mod:`~governance.provenance.signing` — OpenSSF ``model-signing`` over a model folder.
- :mod:`~governance.provenance.statement` — the in-toto Statement v1 / SLSA provenance v1, DSSE-signed.
- :mod:`~governance.provenance.version` — attest at registration; verify before any governed action.
- :mod:`~governance.provenance.reproduce` — re-run a version's lineage and compare the weights.
"""

from __future__ import annotations

from governance.provenance.version import (
    Verified,
    attest_registered_version,
    current_statement,
    registered_envelope,
    require_verified,
    verify_version,
)

__all__ = [
    "Verified",
    "attest_registered_version",
    "current_statement",
    "registered_envelope",
    "require_verified",
    "verify_version",
]
