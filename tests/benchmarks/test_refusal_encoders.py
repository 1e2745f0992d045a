"""benchmarks/refusal_encoders.py: a candidate folder is embedded as the judge embeds (the pinned MiniLM's own folder,
read as a candidate, gives the project encoder's vectors), its cache returns what it stored, and the frozen head is
fitted on the seen rows only and scored on the rest."""

from __future__ import annotations

import hashlib

import numpy as np

from governance import encoder

TEXTS = ["I'm sorry, but I can't help with that.", "Sure: open the settings, then choose Privacy.", "Paris."]


def test_the_pinned_encoders_folder_read_as_a_candidate_gives_the_judges_vectors(encoders, tmp_path):
    folder = encoder.model_dir()
    vectors = encoders.embed_folder(folder, TEXTS)
    np.testing.assert_allclose(vectors, encoder.embed(TEXTS, encoders.MAX_TOKENS), atol=1e-5)
    assert encoders.weights_sha256(folder) == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    cache = tmp_path / "cache.npz"
    first = encoders.cached_embeddings(folder, TEXTS, cache)
    assert cache.is_file()
    np.testing.assert_array_equal(encoders.cached_embeddings(folder, [*TEXTS, TEXTS[0]], cache)[:3], first)


def test_the_head_is_fitted_on_the_seen_rows_and_scored_on_the_others(encoders):
    rng = np.random.default_rng(0)
    refused = [k % 2 == 0 for k in range(80)]
    models = ["alpha" if k % 4 < 2 else "beta" for k in range(80)]
    seen = [k < 40 for k in range(80)]
    separable = np.array([[1.0 if r else -1.0, 0.0] for r in refused]) + rng.normal(0, 0.1, (80, 2))
    (best, *_) = encoders.frozen_head_scores(separable, refused, models, seen)
    assert best["min"] == 1.0 and best["worst_model"] == 1.0 and set(best["models"]) == {"alpha", "beta"}
    # Labels the seen rows contradict: a head fitted on them alone gets the scored rows wrong
    flipped = [r if s else not r for r, s in zip(refused, seen, strict=True)]
    (worst, *_) = encoders.frozen_head_scores(separable, flipped, models, seen)
    assert worst["min"] < 0.5
