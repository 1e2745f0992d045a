"""Read-only access to a training run's artifacts, and the small conversions of what MLflow records.

:class:`RunArtifacts` reads a run's files in place where its artifacts are a
local folder and downloads them once otherwise; a corrupt JSON artifact is a
:class:`~governance.errors.DataError` naming it. Nothing here decides what a
fact means: the section modules do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from governance import registry, registry_view

log = logging.getLogger(__name__)


def iso_ms(timestamp_ms: int | None) -> str | None:
    """An MLflow millisecond timestamp as ISO-8601 UTC (seconds)."""
    if not timestamp_ms:
        return None
    return dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC).isoformat(timespec="seconds")


def flat(prefix: str, value: Any) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``, keeping leaf values (lists stay lists)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flat(f"{prefix}.{key}" if prefix else str(key), item))
        return out
    return {prefix: value}


class RunArtifacts:
    """Read-only access to one run's artifacts.

    A run whose artifacts are a local folder (the embedded store's
    ``mlartifacts/``, read beside a copied store: ``registry.rebase_artifact_uri``)
    is read in place, never through MLflow; a run whose artifacts the tracking
    server serves (``mlflow-artifacts:/…``, the team set-up) is downloaded once
    per file into a scratch folder straight from the server's artifact proxy;
    any other artifact store is downloaded once with ``MlflowClient``.
    """

    def __init__(self, run_id: str, artifact_uri: str, scratch: Path) -> None:
        self.run_id, self.scratch = run_id, scratch
        self.local_root = local_folder(registry.rebase_artifact_uri(artifact_uri))
        self.served_root = None if self.local_root is not None else registry_view.served_artifact_path(artifact_uri)
        self._fetched: dict[str, Path | None] = {}
        self._bytes: dict[str, bytes | None] = {}

    def fetch(self, path: str) -> Path | None:
        """Local path of an artifact file or folder, or None when the run has no such artifact."""
        if path in self._fetched:
            return self._fetched[path]
        if self.local_root is not None:
            local: Path | None = (self.local_root / path).resolve()
            # Only inside the run's folder (a recorded gate folder never points elsewhere)
            if not (local.is_relative_to(self.local_root) and local.exists()):
                log.info("run %s has no artifact %s", self.run_id, path)
                local = None
            self._fetched[path] = local
            return local
        if self.served_root is not None:
            self._fetched[path] = registry_view.fetch_served_artifact(self.served_root, path, self.scratch)
            return self._fetched[path]
        from mlflow.exceptions import MlflowException

        try:
            downloaded = registry.client().download_artifacts(self.run_id, path, str(self.scratch))
        except (MlflowException, OSError) as exc:
            log.info("run %s has no artifact %s (%s)", self.run_id, path, exc.__class__.__name__)
            downloaded = None
        self._fetched[path] = Path(downloaded) if downloaded else None
        return self._fetched[path]

    def read(self, path: str) -> bytes | None:
        """An artifact file's bytes, read once per report: what :meth:`json` parses and :meth:`sha256` hashes are
        the same bytes (a file swapped between a parse and a hash would be stated from one and vouched for by the
        signed event matching the other). None when absent."""
        if path not in self._bytes:
            local = self.fetch(path)
            self._bytes[path] = local.read_bytes() if local is not None and local.is_file() else None
        return self._bytes[path]

    def json(self, path: str) -> Any:
        """Parsed JSON artifact, None when absent; a corrupt one is a DataError naming it."""
        data = self.read(path)
        if data is None:
            return None
        try:
            return json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            from governance.errors import DataError

            raise DataError(f"run {self.run_id}: artifact {path} is not valid JSON") from None

    def sha256(self, path: str) -> str | None:
        data = self.read(path)
        return hashlib.sha256(data).hexdigest() if data is not None else None

    def children(self, folder: str) -> list[str]:
        """Names of the sub-folders/files directly under ``folder`` (empty when absent)."""
        local = self.fetch(folder)
        if local is None or not local.is_dir():
            return []
        return sorted(p.name for p in local.iterdir())


def local_folder(artifact_uri: str) -> Path | None:
    """The folder of a ``file://`` (or plain path) artifact URI that exists here; None for a remote store."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(artifact_uri)
    if parsed.scheme not in ("file", ""):
        return None
    folder = Path(unquote(parsed.path)).resolve()
    return folder if folder.is_dir() else None
