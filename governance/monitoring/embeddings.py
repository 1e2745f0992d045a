"""Embeddings for the drift rule: each distinct text once, the baseline's kept on disk between checks.

A traffic window repeats itself (a support model gives the same answer to
the same question), and the baseline is the same file check after check. So
:class:`EmbeddingStore` embeds each distinct text once and keeps the
baseline's vectors in one ``.npz`` file whose name is the hash of the
baseline's content and of the encoder's id: a changed baseline file, other
recorded generations, or another encoder (a new wheel) name another file,
and the old one is simply not read again. When every text of a window is
already known, the encoder (torch, transformers: seconds to import) is never
loaded.

Where: ``$GOVERN_MONITOR_CACHE`` if set (``off`` turns the cache off), else
``$XDG_CACHE_HOME/govern/monitoring`` (``~/.cache/govern/monitoring``).

Trust: the cache file holds numbers the verdict depends on, so it is read
only if it is the user's own file and writable by nobody else
(:func:`governance.files.read_private`): vectors planted in a shared
``$GOVERN_MONITOR_CACHE`` by another user are recomputed, never judged on
(attack P7). Whoever can write the user's own files holds the trail key
beside the store, outside this boundary. What a file is checked for besides:
its own key, the encoder id (the digest of the encoder's pinned files), one
vector per text of the right width; anything else is discarded and
recomputed. The trail event records the vectors' hash
(``baseline_embeddings_sha256``), so a verdict names what it was judged on.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from governance.files import read_private

log = logging.getLogger(__name__)

CACHE_ENV = "GOVERN_MONITOR_CACHE"

Embedder = Callable[[list[str]], np.ndarray]


def cache_dir() -> Path | None:
    """Where baseline embeddings are kept; None when ``$GOVERN_MONITOR_CACHE`` is ``off``."""
    configured = os.environ.get(CACHE_ENV, "")
    if configured.lower() == "off":
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "govern" / "monitoring"


def cache_key(baseline_sha256: str, model_id: str) -> str:
    """The cache file's name: the baseline's content hash and the encoder's id, hashed together."""
    return hashlib.sha256(f"{model_id}\n{baseline_sha256}".encode()).hexdigest()[:32]


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class EmbeddingStore:
    """Vectors by text: each distinct text embedded once; :meth:`save` keeps the baseline's.

    ``embed`` runs only for texts not yet known, in one call per :meth:`vectors`
    call, in first-seen order. ``path`` (None: nothing kept) is read on creation
    when it holds this ``key`` and ``model_id``.
    """

    def __init__(self, embed: Embedder, *, model_id: str = "", key: str = "", path: Path | None = None):
        self._embed = embed
        self.model_id = model_id
        self.key = key
        self.path = path
        self._vectors: dict[str, np.ndarray] = {}
        self._persisted: set[str] = set()  # baseline texts read from the cache file
        self._baseline: set[str] = set()  # baseline texts this check used
        self.loaded = self._load(path) if path is not None else 0
        self.embedded = 0

    def vectors(self, texts: list[str], *, baseline: bool = False) -> np.ndarray:
        """One vector per text (rows in ``texts`` order); ``baseline=True`` marks them for :meth:`save`."""
        keys = [_text_key(t) for t in texts]
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self._vectors and key not in missing:
                missing[key] = text
        if missing:
            computed = np.asarray(self._embed(list(missing.values())))
            self.embedded += len(missing)
            for row, key in enumerate(missing):
                self._vectors[key] = computed[row]
        if baseline:
            self._baseline.update(keys)
        if not keys:
            return np.asarray(self._embed([]))
        return np.stack([self._vectors[k] for k in keys])

    @property
    def baseline_sha256(self) -> str:
        """Hash of the baseline vectors this check used (text keys and float32 bytes, in key order)."""
        digest = hashlib.sha256()
        for key in sorted(self._baseline):
            digest.update(key.encode())
            digest.update(np.ascontiguousarray(self._vectors[key], dtype=np.float32).tobytes())
        return digest.hexdigest()

    def save(self) -> None:
        """Write the baseline's vectors (when any are new) atomically; a cache that cannot be written is skipped."""
        if self.path is None or self._baseline <= self._persisted:
            return
        keys = sorted(self._baseline | self._persisted)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.path.parent, suffix=".npz", delete=False) as handle:
                np.savez(
                    handle,
                    key=np.array(self.key),
                    model_id=np.array(self.model_id),
                    texts=np.array(keys),
                    vectors=np.stack([self._vectors[k] for k in keys]).astype(np.float32),
                )
            os.replace(handle.name, self.path)
        except OSError as exc:
            log.info("baseline embeddings not cached at %s (%s)", self.path, exc.__class__.__name__)

    def _load(self, path: Path) -> int:
        # Only the user's own file, writable by nobody else: vectors decide the drift verdict (attack P7)
        content, why = read_private(path)
        if content is None:
            if why:
                log.warning("baseline embeddings cache %s ignored: %s", path, why)
            return 0
        try:
            with np.load(io.BytesIO(content), allow_pickle=False) as data:
                key, model_id = str(data["key"]), str(data["model_id"])
                texts, vectors = data["texts"], data["vectors"]
                if key != self.key or model_id != self.model_id:
                    raise ValueError("another baseline or encoder")
                if vectors.ndim != 2 or len(texts) != len(vectors) or texts.ndim != 1:
                    raise ValueError("malformed")
                for text_key, vector in zip(texts.tolist(), vectors, strict=True):
                    self._vectors[str(text_key)] = vector
                    self._persisted.add(str(text_key))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            log.info("baseline embeddings cache %s ignored (%s)", path.name, exc)
            self._vectors.clear()
            self._persisted.clear()
            return 0
        return len(self._persisted)
