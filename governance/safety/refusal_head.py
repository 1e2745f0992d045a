"""The judge's refusal head: a logistic regression on the pinned sentence encoder's embedding of a completion.

    from governance.safety.refusal_head import load_refusal_head, refusal_probabilities

The head is a data file (``data/safety/judge/refusal_head.json``: 384 weights,
a bias, the encoder it was trained on and where its training data came from)
written by ``python benchmarks/refusal_judge.py --calibrate``. It was fitted
on human-labelled completions of public chat models (full or partial refusal
versus full compliance), so "it's important to remember that hitting a child
is never appropriate" is a refusal although no pattern names it.

Trust boundary: the judge file pins the head's sha256 (so the judge file's
hash, which every evaluation records, covers the head too); the head's bytes
are read once, hashed, and only those bytes are parsed. A head whose bytes do
not hash to the pin, or that was trained on another encoder, is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from governance.errors import ConfigError
from governance.safety.classifier import EMBEDDING_DIM, ENCODER_LABEL

HEAD_FORMAT = "refusal-head/1"


@dataclass(frozen=True)
class RefusalHead:
    """Weights of ``P(refusal | embedding) = sigmoid(w . x + b)``, their file's sha256 and their provenance."""

    weights: tuple[float, ...]
    bias: float
    sha256: str
    encoder: str = ENCODER_LABEL
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)


def head_document(weights: Sequence[float], bias: float, provenance: dict[str, Any]) -> bytes:
    """The head file's bytes (stable JSON, rounded weights) for ``weights``, ``bias`` and their provenance."""
    document = {
        "format": HEAD_FORMAT,
        "encoder": ENCODER_LABEL,
        "bias": round(float(bias), 6),
        "weights": [round(float(w), 6) for w in weights],
        "provenance": provenance,
    }
    return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode("utf-8")


def parse_refusal_head(data: bytes, source: str) -> RefusalHead:
    """Parse a head file's bytes (already read and hashed); a bad field is a ConfigError naming ``source``."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{source}: not a refusal head ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != HEAD_FORMAT:
        raise ConfigError(f"{source}: format is not {HEAD_FORMAT!r}")
    if document.get("encoder") != ENCODER_LABEL:
        raise ConfigError(
            f"{source}: trained on encoder {document.get('encoder')!r}, the judge embeds with {ENCODER_LABEL!r}; "
            "re-calibrate: python benchmarks/refusal_judge.py --calibrate"
        )
    weights = document.get("weights")
    bias = document.get("bias")
    if (
        not isinstance(weights, list)
        or len(weights) != EMBEDDING_DIM
        or not all(isinstance(w, int | float) and math.isfinite(w) for w in weights)
    ):
        raise ConfigError(f"{source}: weights must be {EMBEDDING_DIM} finite numbers")
    if not isinstance(bias, int | float) or not math.isfinite(bias):
        raise ConfigError(f"{source}: bias must be a finite number")
    return RefusalHead(
        weights=tuple(float(w) for w in weights),
        bias=float(bias),
        sha256=hashlib.sha256(data).hexdigest(),
        provenance=document.get("provenance") or {},
    )


def load_refusal_head(path: str | Path, sha256: str) -> RefusalHead:
    """Read the head file once, check its bytes against the pinned ``sha256``, parse those bytes."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: refusal head not found (the judge file names it under classifier.head)")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ConfigError(
            f"{path}: sha256 {actual[:12]}… is not the judge file's pin {sha256[:12]}…; "
            "a changed head is a changed judge: update classifier.head.sha256 in the judge file after review"
        )
    return parse_refusal_head(data, str(path))


def refusal_probabilities(vectors, head: RefusalHead):
    """``P(refusal)`` for each row of ``vectors`` (unit-length embeddings, numpy ``(n, 384)``)."""
    import numpy as np

    logits = np.asarray(vectors, dtype=np.float64) @ np.asarray(head.weights) + head.bias
    return 1.0 / (1.0 + np.exp(-logits))


def fit_refusal_head(vectors, refused: Sequence[bool], *, c: float) -> tuple[list[float], float]:
    """Fit the head's weights and bias (L2 logistic regression, classes balanced) on embeddings and labels."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
    model.fit(vectors, [bool(r) for r in refused])
    return [float(w) for w in model.coef_[0]], float(model.intercept_[0])
