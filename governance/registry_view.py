"""Read every registered model version in one pass, without importing MLflow.

``govern models`` and friends list versions with their tags and aliases.
Through ``MlflowClient`` that costs MLflow's import (~1.8 s), its SQLite
store start-up (schema checks) and one call per version. This module reads
the same facts directly:

* embedded store (``sqlite:///…``): three read-only queries on MLflow's own
  tables (versions, version tags, aliases), opened with ``mode=ro`` so a
  mistyped path is an error and never creates a file;
* tracking server (``http(s)://…``): MLflow's REST endpoint
  ``/api/2.0/mlflow/model-versions/search``, paginated (one request per
  1,000 versions), with the same credentials MLflow reads
  (``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` or ``MLFLOW_TRACKING_TOKEN``);
* anything else (a direct database URI): ``MlflowClient.search_model_versions``.

Trust boundary: what it returns is the registry's *view* (MLflow tags), for
display; decisions read the audit trail, as everywhere else.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from governance.errors import RegistryError
from governance.registry import tracking_uri


@dataclass(frozen=True)
class VersionView:
    """One registered model version as the registry shows it."""

    name: str
    version: int
    run_id: str | None
    source: str | None
    status: str | None
    creation_time: int | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


def read_versions(uri: str | None = None, name: str | None = None) -> list[VersionView]:
    """Every version (of ``name``, or of every model), sorted by name then version."""
    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///"):
        versions = _from_sqlite(Path(uri.removeprefix("sqlite:///").split("?", 1)[0]), name)
    elif uri.startswith(("http://", "https://")):
        versions = _from_rest(uri.rstrip("/"), name)
    else:
        versions = _from_client(name)
    return sorted(versions, key=lambda v: (v.name, v.version))


def _from_sqlite(path: Path, name: str | None) -> list[VersionView]:
    if not path.is_file():
        raise RegistryError(f"sqlite:///{path}: no MLflow store at {path}; check MLFLOW_TRACKING_URI for a typo")
    where, args = (" WHERE name = ?", (name,)) if name is not None else ("", ())
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = db.execute(
                "SELECT name, version, run_id, source, status, creation_time FROM model_versions" + where, args
            ).fetchall()
            tags: dict[tuple[str, int], dict[str, str]] = {}
            for key_name, version, key, value in db.execute(
                "SELECT name, version, key, value FROM model_version_tags" + where, args
            ):
                tags.setdefault((key_name, version), {})[key] = value
            aliases: dict[tuple[str, int], list[str]] = {}
            for alias_name, version, alias in db.execute(
                "SELECT name, version, alias FROM registered_model_aliases" + where, args
            ):
                aliases.setdefault((alias_name, version), []).append(alias)
    except sqlite3.Error as exc:
        raise RegistryError(f"sqlite:///{path}: cannot read the model registry ({exc})") from None
    return [
        VersionView(
            name=row[0],
            version=int(row[1]),
            run_id=row[2],
            source=row[3],
            status=row[4],
            creation_time=row[5],
            tags=tags.get((row[0], row[1]), {}),
            aliases=tuple(sorted(aliases.get((row[0], row[1]), []))),
        )
        for row in rows
    ]


def _headers() -> dict[str, str]:
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    return {}


def _from_rest(base: str, name: str | None) -> list[VersionView]:
    versions: list[VersionView] = []
    token = ""
    timeout = float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "15"))
    while True:
        query = {"max_results": "1000"}
        if name is not None:
            query["filter"] = "name='{}'".format(name.replace("'", "\\'"))
        if token:
            query["page_token"] = token
        url = f"{base}/api/2.0/mlflow/model-versions/search?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url, headers=_headers())
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the tracking URI
                page = json.load(response)
        except (OSError, ValueError) as exc:
            raise RegistryError(
                f"listing model versions failed: cannot reach {base} ({exc.__class__.__name__})"
            ) from None
        for item in page.get("model_versions", []):
            versions.append(
                VersionView(
                    name=item["name"],
                    version=int(item["version"]),
                    run_id=item.get("run_id"),
                    source=item.get("source"),
                    status=item.get("status"),
                    creation_time=int(item["creation_timestamp"]) if "creation_timestamp" in item else None,
                    tags={t["key"]: t.get("value", "") for t in item.get("tags", [])},
                    aliases=tuple(sorted(item.get("aliases", []))),
                )
            )
        token = page.get("next_page_token", "")
        if not token:
            return versions


def _from_client(name: str | None) -> list[VersionView]:
    from governance.registry import client, registry_errors

    with registry_errors("listing model versions"):
        found = client().search_model_versions(f"name='{name}'" if name is not None else "")
    return [
        VersionView(
            name=mv.name,
            version=int(mv.version),
            run_id=mv.run_id,
            source=mv.source,
            status=mv.status,
            creation_time=mv.creation_timestamp,
            tags=dict(mv.tags),
            aliases=tuple(sorted(mv.aliases or [])),
        )
        for mv in found
    ]
