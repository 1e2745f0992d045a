"""Read the model registry in one pass, without importing MLflow.

``govern models``, ``show``, ``history``, the report and every governed
action read versions, their tags and aliases, and registered-model tags.
Through ``MlflowClient`` that costs MLflow's import (~1.8 s), its SQLite store
start-up (schema and migration checks) and one call per version. This module
reads the same facts directly:

* embedded store (``sqlite:///…``): a few queries on MLflow's own tables,
  opened with ``mode=ro`` so a mistyped path is an error and never creates a
  file. Like MLflow's single-tenant store it reads the ``default`` workspace
  and skips versions MLflow marks deleted (``Deleted_Internal``);
* tracking server (``http(s)://…``): MLflow's REST API
  (``model-versions/search``, paginated, one request per 1,000 versions;
  ``registered-models/get`` and ``/search`` for model tags; ``runs/get`` and
  ``metrics/get-history`` for a run; the server's artifact proxy for a run's
  ``mlflow-artifacts:/`` files, one request per file) with the credentials
  MLflow's client sends (``MLFLOW_TRACKING_USERNAME``/``PASSWORD``, else
  ``MLFLOW_TRACKING_TOKEN``, else the server's netrc entry);
* anything else (a direct database URI): the ``MlflowClient`` calls of
  :mod:`governance.registry`.

tests/governance/test_registry_view.py checks every function against
``MlflowClient`` on a real store, tests/server/test_registry_rest.py against a
basic-auth server.

:func:`served_location` reads where ``models:/NAME/VERSION`` takes a
version's files from (``source``, the download URI MLflow derives from
``storage_location``, ``run_id``): the embedded store's row, or a server's
``model-versions/get-download-uri``.

Trust boundary: what it returns is the registry's *view* (MLflow tags and
columns), for display and for finding drift; decisions read the audit trail,
as everywhere else — a served location is believed only while it equals the
one the trail froze at registration.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sqlite3
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from governance.errors import ConfigError, RegistryError
from governance.registry import require_existing_store, tracking_uri

log = logging.getLogger(__name__)

#: MLflow's single-tenant workspace, and the stage it gives a deleted version it keeps a row of.
DEFAULT_WORKSPACE = "default"
DELETED_STAGE = "Deleted_Internal"


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
    description: str | None = None
    #: Where ``models:/NAME/VERSION`` reads the files (MLflow's ``storage_location``, else ``source``); known
    #: from the embedded store's row, None where only :func:`download_uri` can ask (a server, a client store).
    download_uri: str | None = None

    @property
    def creation_timestamp(self) -> int | None:
        """MLflow's name for :attr:`creation_time` (milliseconds since the epoch)."""
        return self.creation_time


@dataclass(frozen=True)
class ServedLocation:
    """The registry fields that decide which files ``models:/NAME/VERSION`` (and so ``@production``) serves.

    ``storage_location`` is what MLflow's ``get_model_version_download_uri``
    answers: the version's ``storage_location`` column, or its ``source`` when
    that is empty — the same on every kind of store. Registration freezes
    :meth:`frozen` into the trail; a later difference (:meth:`changes_from`)
    means deployments read files nobody verified.
    """

    source: str
    storage_location: str
    run_id: str

    FIELDS = ("source", "storage_location", "run_id")

    def frozen(self) -> dict[str, str]:
        """The values a ``model_registered`` event records."""
        return {"source": self.source, "storage_location": self.storage_location, "run_id": self.run_id}

    def changes_from(self, recorded: dict[str, Any]) -> list[tuple[str, str, str]]:
        """``(field, registry now, recorded)`` for each field ``recorded`` holds that differs (absent: not compared)."""
        now = self.frozen()
        return [
            (key, now[key], str(recorded[key]))
            for key in self.FIELDS
            if key in recorded and now[key] != str(recorded[key])
        ]


@dataclass(frozen=True)
class RunInfoView:
    """A run's ``info`` as ``MlflowClient.get_run`` shows it (the fields governance reads)."""

    run_id: str
    run_name: str | None
    status: str | None
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    experiment_id: str | None = None


@dataclass(frozen=True)
class RunDataView:
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float]


@dataclass(frozen=True)
class RunView:
    """One tracking run: ``info`` and ``data`` with the attribute names of MLflow's ``Run``."""

    info: RunInfoView
    data: RunDataView


@dataclass(frozen=True)
class MetricPoint:
    step: int
    value: float
    timestamp: int


def store_kind(uri: str | None = None) -> str:
    """``sqlite`` (the embedded store), ``rest`` (a tracking server) or ``client`` (anything else)."""
    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///"):
        return "sqlite"
    if uri.startswith(("http://", "https://")):
        return "rest"
    return "client"


def sqlite_path(uri: str) -> Path:
    """The database file of a ``sqlite:///`` URI (query string dropped)."""
    return Path(uri.removeprefix("sqlite:///").split("?", 1)[0])


# --------------------------------------------------------------------------- public reads


def read_versions(uri: str | None = None, name: str | None = None) -> list[VersionView]:
    """Every version (of ``name``, or of every model), sorted by name then version."""
    uri = uri or tracking_uri()
    kind = store_kind(uri)
    if kind == "sqlite":
        versions = _versions_from_sqlite(uri, name)
    elif kind == "rest":
        versions = _versions_from_rest(uri.rstrip("/"), name)
    else:
        versions = _versions_from_client(name)
    return sorted(versions, key=lambda v: (v.name, v.version))


def read_version(
    name: str, version: str | int, uri: str | None = None, *, versions: list[VersionView] | None = None
) -> VersionView:
    """One version; :class:`ConfigError` (exit 2) when it is not registered, as ``registry.get_version`` says it.

    ``versions``: :func:`read_versions`' answer for ``name`` when the caller already has it (read once).
    """
    uri = uri or tracking_uri()
    number = _number(version)
    listed = read_versions(uri, name) if versions is None else versions
    found = next((v for v in listed if str(v.version) == number), None)
    if found is None:
        raise _not_registered(name, version, uri)
    return found


def version_tags(name: str, uri: str | None = None) -> dict[str, dict[str, str]]:
    """``{version: tags}`` of every version of ``name``: on a server one ``model-versions/search``, without the
    registered-model read :func:`read_versions` adds for aliases (the mirror compares tags only)."""
    uri = uri or tracking_uri()
    if store_kind(uri) == "rest":
        query = {"max_results": "1000", "filter": f"name={_quoted(name)}"}
        found = _paged(uri.rstrip("/"), "model-versions/search", query, "model_versions", "listing model versions")
        return {
            str(int(item["version"])): {t["key"]: t.get("value", "") for t in item.get("tags", [])} for item in found
        }
    return {str(v.version): dict(v.tags) for v in read_versions(uri, name)}


def tags_of(tags_by_version: dict[str, dict[str, str]], name: str, version: str | int) -> dict[str, str]:
    """One version's tags from :func:`version_tags`' answer; :class:`ConfigError` as :func:`read_version` when it is
    not registered."""
    found = tags_by_version.get(_number(version))
    if found is None:
        raise _not_registered(name, version, tracking_uri())
    return found


def _number(version: str | int) -> str:
    # MLflow reads "01" as version 1; so does every govern command (approvals.normalize_version)
    return str(int(version)) if str(version).isdigit() else str(version)


def _not_registered(name: str, version: str | int, uri: str) -> ConfigError:
    return ConfigError(f"{name} v{version} is not registered at {uri}")


def model_names(uri: str | None = None) -> list[str]:
    """Names of every registered model, sorted."""
    uri = uri or tracking_uri()
    kind = store_kind(uri)
    if kind == "sqlite":
        with _sqlite(uri) as db:
            rows = db.execute("SELECT name FROM registered_models WHERE workspace = ?", (DEFAULT_WORKSPACE,))
            return sorted(row[0] for row in rows)
    if kind == "rest":
        return sorted(model["name"] for model in _models_from_rest(uri.rstrip("/"), None))
    from governance import registry

    return registry.registered_model_names()


def require_model(name: str, uri: str | None = None) -> None:
    """Refuse (:class:`ConfigError`, exit 2) a model name that is not registered at the tracking URI."""
    uri = uri or tracking_uri()
    kind = store_kind(uri)
    if kind == "client":
        from governance import registry

        registry.require_model(name)
        return
    if kind == "sqlite":
        with _sqlite(uri) as db:
            found = db.execute(
                "SELECT 1 FROM registered_models WHERE workspace = ? AND name = ?", (DEFAULT_WORKSPACE, name)
            ).fetchone()
    else:
        found = _models_from_rest(uri.rstrip("/"), name)
    if not found:
        raise ConfigError(f"no registered model named {name!r} at {uri}")


def model_tags(key: str, name: str | None = None, uri: str | None = None) -> dict[str, str]:
    """``{model name: value}`` of tag ``key`` on every registered model (or only ``name``) that has it."""
    uri = uri or tracking_uri()
    kind = store_kind(uri)
    if kind == "sqlite":
        where, args = "workspace = ? AND key = ?", [DEFAULT_WORKSPACE, key]
        if name is not None:
            where, args = where + " AND name = ?", [*args, name]
        with _sqlite(uri) as db:
            return dict(db.execute(f"SELECT name, value FROM registered_model_tags WHERE {where}", args).fetchall())
    if kind == "rest":
        found = {}
        for model in _models_from_rest(uri.rstrip("/"), name):
            tags = {t["key"]: t.get("value", "") for t in model.get("tags", [])}
            if key in tags:
                found[model["name"]] = tags[key]
        return found
    from governance import registry

    return registry.model_tags(key, name)


def alias_holders(name: str, uri: str | None = None) -> dict[str, str]:
    """``{alias: version}`` of every alias of ``name`` in one read (empty when the model does not exist)."""
    uri = uri or tracking_uri()
    kind = store_kind(uri)
    if kind == "sqlite":
        with _sqlite(uri) as db:
            rows = db.execute(
                "SELECT alias, version FROM registered_model_aliases WHERE workspace = ? AND name = ?",
                (DEFAULT_WORKSPACE, name),
            ).fetchall()
        return {str(alias): str(number) for alias, number in rows}
    if kind == "rest":
        return {
            str(entry["alias"]): str(entry["version"])
            for model in _models_from_rest(uri.rstrip("/"), name)
            for entry in model.get("aliases", [])
        }
    from governance import registry

    with registry.registry_errors(f"reading aliases of {name!r}"):
        try:
            aliases = registry.client().get_registered_model(name).aliases or {}
        except Exception as exc:
            if registry.is_not_found(exc):
                return {}
            raise
    return {str(alias): str(number) for alias, number in aliases.items()}


def alias_holder(name: str, alias: str, uri: str | None = None) -> str | None:
    """The version number holding ``alias`` of ``name``, or None (no such alias, or no such model)."""
    uri = uri or tracking_uri()
    kind = store_kind(uri)
    if kind == "sqlite":
        with _sqlite(uri) as db:
            row = db.execute(
                "SELECT version FROM registered_model_aliases WHERE workspace = ? AND name = ? AND alias = ?",
                (DEFAULT_WORKSPACE, name, alias),
            ).fetchone()
        return None if row is None else str(row[0])
    if kind == "rest":
        models = _models_from_rest(uri.rstrip("/"), name)
        for model in models:
            for entry in model.get("aliases", []):
                if entry.get("alias") == alias:
                    return str(entry["version"])
        return None
    from governance import registry

    found = registry.version_by_alias(name, alias)
    return None if found is None else str(found.version)


def download_uri(name: str, version: str | int, uri: str | None = None) -> str:
    """Where ``models:/NAME/VERSION`` reads the version's files: what ``get_model_version_download_uri`` answers."""
    uri = uri or tracking_uri()
    kind = store_kind(uri)
    if kind == "sqlite":
        return served_location(name, version, uri).storage_location
    if kind == "rest":
        query = {"name": name, "version": str(version)}
        page = _rest_get(uri.rstrip("/"), "model-versions/get-download-uri", query, f"reading {name} v{version}")
        if page is None:
            raise ConfigError(f"{name} v{version} is not registered at {uri}")
        return str(page.get("artifact_uri") or "")
    from governance import registry

    with registry.registry_errors(f"reading the download URI of {name} v{version}"):
        return str(registry.client().get_model_version_download_uri(name, str(version)))


def served_location(name: str, version: str | int, uri: str | None = None) -> ServedLocation:
    """The version's ``source``, ``storage_location`` (its download URI) and ``run_id`` as the registry has them now.

    The embedded store is read from its ``model_versions`` row; a server or
    any other store answers through its version and download-URI calls.
    :class:`ConfigError` (exit 2) when the version is not registered.
    """
    uri = uri or tracking_uri()
    if store_kind(uri) == "sqlite":
        number = str(int(version)) if str(version).isdigit() else str(version)
        with _sqlite(uri) as db:
            row = db.execute(
                "SELECT source, storage_location, run_id FROM model_versions WHERE workspace = ? AND name = ? "
                "AND version = ? AND current_stage IS NOT ?",
                (DEFAULT_WORKSPACE, name, number, DELETED_STAGE),
            ).fetchone()
        if row is None:
            raise ConfigError(f"{name} v{version} is not registered at {uri}")
        return ServedLocation(source=row[0] or "", storage_location=row[1] or row[0] or "", run_id=row[2] or "")
    mv = read_version(name, version, uri)
    return served_location_of(mv, uri)


def served_location_of(mv: VersionView, uri: str | None = None) -> ServedLocation:
    """:func:`served_location` of a version already read (asks for the download URI only where the row lacks it)."""
    where = mv.download_uri if mv.download_uri is not None else download_uri(mv.name, mv.version, uri)
    return ServedLocation(source=mv.source or "", storage_location=where, run_id=mv.run_id or "")


def read_run(run_id: str, uri: str | None = None) -> Any:
    """Run ``run_id`` (``info``: id, name, status, times, artifact URI; ``data``: params, tags, latest metrics).

    The embedded store and a tracking server (``runs/get``) are read directly (:class:`RunView`); any other
    store answers with MLflow's own ``Run`` (the same attribute names).
    """
    uri = uri or tracking_uri()
    kind = store_kind(uri)
    if kind == "rest":
        return _run_from_rest(uri.rstrip("/"), run_id)
    if kind != "sqlite":
        from governance import registry

        with registry.registry_errors(f"reading run {run_id}"):
            return registry.client().get_run(run_id)
    with _sqlite(uri) as db:
        row = db.execute(
            "SELECT run_uuid, name, status, start_time, end_time, artifact_uri, experiment_id FROM runs "
            "WHERE run_uuid = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            raise RegistryError(f"reading run {run_id} failed at {uri}: Run with id={run_id} not found")
        params = dict(db.execute("SELECT key, value FROM params WHERE run_uuid = ?", (run_id,)).fetchall())
        tags = dict(db.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,)).fetchall())
        metrics = {
            key: float("nan") if is_nan else float(value)
            for key, value, is_nan in db.execute(
                "SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = ?", (run_id,)
            )
        }
    info = RunInfoView(
        run_id=row[0],
        run_name=row[1],
        status=row[2],
        start_time=row[3],
        end_time=row[4],
        artifact_uri=row[5],
        experiment_id=None if row[6] is None else str(row[6]),
    )
    return RunView(info=info, data=RunDataView(params=params, tags=tags, metrics=metrics))


def metric_history(run_id: str, key: str, uri: str | None = None) -> list[Any]:
    """Every logged value of metric ``key`` of run ``run_id`` (``step``, ``value``, ``timestamp``)."""
    uri = uri or tracking_uri()
    kind = store_kind(uri)
    if kind == "rest":
        query = {"run_id": run_id, "metric_key": key}  # no max_results: the whole history, as MlflowClient asks
        found = _paged(
            uri.rstrip("/"), "metrics/get-history", query, "metrics", f"reading metric {key} of run {run_id}"
        )
        return [
            MetricPoint(step=int(m.get("step", 0)), value=float(m["value"]), timestamp=int(m.get("timestamp", 0)))
            for m in found
        ]
    if kind != "sqlite":
        from governance import registry

        with registry.registry_errors(f"reading metric {key} of run {run_id}"):
            return list(registry.client().get_metric_history(run_id, key))
    with _sqlite(uri) as db:
        rows = db.execute(
            "SELECT step, value, timestamp, is_nan FROM metrics WHERE run_uuid = ? AND key = ?", (run_id, key)
        ).fetchall()
    return [
        MetricPoint(step=int(step), value=float("nan") if is_nan else float(value), timestamp=int(timestamp))
        for step, value, timestamp, is_nan in rows
    ]


# --------------------------------------------------------------------------- the embedded store


@contextmanager
def _sqlite(uri: str) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the store's file; a missing file is an error, never a new store."""
    require_existing_store(uri)
    path = sqlite_path(uri)
    db = None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
        yield db
    except sqlite3.Error as exc:
        raise RegistryError(f"sqlite:///{path}: cannot read the model registry ({exc})") from None
    finally:
        if db is not None:
            db.close()


def _versions_from_sqlite(uri: str, name: str | None) -> list[VersionView]:
    where, args = "workspace = ? AND current_stage IS NOT ?", [DEFAULT_WORKSPACE, DELETED_STAGE]
    scope, scope_args = "workspace = ?", [DEFAULT_WORKSPACE]
    if name is not None:
        where, args = where + " AND name = ?", [*args, name]
        scope, scope_args = scope + " AND name = ?", [*scope_args, name]
    with _sqlite(uri) as db:
        rows = db.execute(
            "SELECT name, version, run_id, source, status, creation_time, description, storage_location "
            "FROM model_versions "
            f"WHERE {where}",
            args,
        ).fetchall()
        tags: dict[tuple[str, int], dict[str, str]] = {}
        for tag_name, version, key, value in db.execute(
            f"SELECT name, version, key, value FROM model_version_tags WHERE {scope}", scope_args
        ):
            tags.setdefault((tag_name, version), {})[key] = value
        aliases: dict[tuple[str, int], list[str]] = {}
        for alias_name, version, alias in db.execute(
            f"SELECT name, version, alias FROM registered_model_aliases WHERE {scope}", scope_args
        ):
            aliases.setdefault((alias_name, version), []).append(alias)
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
            description=row[6],
            download_uri=row[7] or row[3] or "",
        )
        for row in rows
    ]


# --------------------------------------------------------------------------- a tracking server


def rest_headers() -> dict[str, str]:
    """The authorization header MLflow's client would send, if any.

    As MLflow's ``http_request``: basic auth when ``MLFLOW_TRACKING_USERNAME`` and ``PASSWORD`` are both set,
    else the ``MLFLOW_TRACKING_TOKEN`` bearer token, else (requests' own fallback) the server's entry in
    ``$NETRC`` or ``~/.netrc``, the credentials :func:`governance.identity.server_credentials` verifies.
    """
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    from requests.utils import get_netrc_auth

    found = get_netrc_auth(tracking_uri())
    if found:
        return {"Authorization": "Basic " + base64.b64encode(f"{found[0]}:{found[1]}".encode()).decode()}
    return {}


def tls_context() -> ssl.SSLContext | None:
    """The certificate check MLflow's own client makes for the tracking server (None: Python's default).

    ``MLFLOW_TRACKING_SERVER_CERT_PATH`` names the CA (or self-signed certificate) to trust, and
    ``MLFLOW_TRACKING_INSECURE_TLS=true`` turns the check off, for MLflow's client and for these reads
    alike: without this, a team behind a private CA's TLS passed MLflow's calls and failed these
    (``govern approve``: "cannot reach the MLflow registry").
    """
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").strip().lower() == "true":
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        return insecure
    cafile = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
    return ssl.create_default_context(cafile=cafile) if cafile else None


def _rest_get(base: str, endpoint: str, query: dict[str, str], action: str) -> dict[str, Any] | None:
    """GET ``/api/2.0/mlflow/<endpoint>``; None when the server answers RESOURCE_DOES_NOT_EXIST."""
    url = f"{base}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(query)}"
    request = urllib.request.Request(url, headers=rest_headers())
    timeout = float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "15"))
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=tls_context()) as response:  # noqa: S310
            return json.load(response)
    except urllib.error.HTTPError as exc:
        code, message = _rest_error(exc)
        if code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise RegistryError(f"{action} failed at {base}: {code or exc.code} {message}".rstrip()) from None
    except (OSError, ValueError) as exc:
        raise RegistryError(f"{action} failed: cannot reach {base} ({exc.__class__.__name__})") from None


def _rest_error(exc: urllib.error.HTTPError) -> tuple[str, str]:
    """MLflow's ``error_code`` and first message line from an HTTP error body (no code when it is not MLflow's
    JSON: then the body's first line, as basic-auth's plain ``Permission denied``)."""
    try:
        text = exc.read() or b"{}"
    except OSError:
        return "", ""
    try:
        body = json.loads(text)
    except ValueError:
        lines = text.decode("utf-8", "replace").splitlines()
        return "", lines[0][:300] if lines else ""
    lines = str(body.get("message", "")).splitlines() if isinstance(body, dict) else []
    return (str(body.get("error_code", "")) if isinstance(body, dict) else ""), (lines[0][:300] if lines else "")


def _paged(base: str, endpoint: str, query: dict[str, str], key: str, action: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        page = _rest_get(base, endpoint, {**query, **({"page_token": token} if token else {})}, action) or {}
        items.extend(page.get(key, []))
        token = page.get("next_page_token", "")
        if not token:
            return items


def _quoted(name: str) -> str:
    return "'{}'".format(name.replace("'", "\\'"))


def _versions_from_rest(base: str, name: str | None) -> list[VersionView]:
    query = {"max_results": "1000"}
    if name is not None:
        query["filter"] = f"name={_quoted(name)}"
    found = _paged(base, "model-versions/search", query, "model_versions", "listing model versions")
    # Some server versions leave `aliases` out of search results; the registered models carry them.
    holders: dict[tuple[str, int], list[str]] = {}
    for model in _models_from_rest(base, name):
        for entry in model.get("aliases", []):
            holders.setdefault((model["name"], int(entry["version"])), []).append(entry["alias"])
    return [
        VersionView(
            name=item["name"],
            version=int(item["version"]),
            run_id=item.get("run_id"),
            source=item.get("source"),
            status=item.get("status"),
            creation_time=int(item["creation_timestamp"]) if "creation_timestamp" in item else None,
            tags={t["key"]: t.get("value", "") for t in item.get("tags", [])},
            aliases=tuple(sorted(holders.get((item["name"], int(item["version"])), item.get("aliases", [])))),
            description=item.get("description"),
        )
        for item in found
    ]


def _models_from_rest(base: str, name: str | None) -> list[dict[str, Any]]:
    """Registered models (name, tags, aliases): one ``get`` for a name, else every model, paginated."""
    if name is not None:
        page = _rest_get(base, "registered-models/get", {"name": name}, f"reading registered model {name!r}")
        return [] if page is None else [page["registered_model"]]
    return _paged(
        base, "registered-models/search", {"max_results": "1000"}, "registered_models", "listing registered models"
    )


def _run_from_rest(base: str, run_id: str) -> RunView:
    """``runs/get``: the run's info, params, tags and latest metrics (MLflow sends NaN as the string ``"NaN"``)."""
    action = f"reading run {run_id}"
    answer = _rest_get(base, "runs/get", {"run_id": run_id}, action)
    if answer is None:
        raise RegistryError(f"{action} failed at {base}: Run with id={run_id} not found")
    info, data = answer["run"]["info"], answer["run"].get("data", {})
    return RunView(
        info=RunInfoView(
            run_id=info.get("run_id") or info.get("run_uuid") or run_id,
            run_name=info.get("run_name"),
            status=info.get("status"),
            start_time=int(info["start_time"]) if "start_time" in info else None,
            end_time=int(info["end_time"]) if "end_time" in info else None,
            artifact_uri=info.get("artifact_uri", ""),
            experiment_id=info.get("experiment_id"),
        ),
        data=RunDataView(
            params={p["key"]: p.get("value", "") for p in data.get("params", [])},
            tags={t["key"]: t.get("value", "") for t in data.get("tags", [])},
            metrics={m["key"]: float(m["value"]) for m in data.get("metrics", [])},
        ),
    )


#: The scheme of a run's artifacts on a server started with ``--serve-artifacts`` (team-setup.md §1): the
#: server proxies them under ``/api/2.0/mlflow-artifacts/artifacts``, behind its authentication.
SERVED_ARTIFACTS = "mlflow-artifacts"


def served_artifact_path(artifact_uri: str, uri: str | None = None) -> str | None:
    """The path under the tracking server's artifact proxy of a run's ``mlflow-artifacts:/…`` root; None for any
    other artifact store, a tracking URI that is no server, or a root naming another host."""
    uri = uri or tracking_uri()
    parsed = urllib.parse.urlparse(artifact_uri)
    if parsed.scheme != SERVED_ARTIFACTS or parsed.netloc or store_kind(uri) != "rest":
        return None
    return parsed.path.strip("/")


def fetch_served_artifact(root: str, path: str, dest: Path, uri: str | None = None) -> Path | None:
    """Download ``path`` under the served artifact root ``root`` (see :func:`served_artifact_path`) to ``dest/path``;
    None when the run has no such artifact, the server refuses it or cannot be reached.

    What ``MlflowClient.download_artifacts`` fetches, in fewer requests: the file itself first (one GET), a
    folder (the proxy does not send one) by listing it and fetching each file, as MLflow does.
    """
    uri = uri or tracking_uri()
    base = uri.rstrip("/") + "/api/2.0/mlflow-artifacts/artifacts"
    relative = path.strip("/")
    target = dest / relative
    # Only inside dest: a path from a recorded artifact (a gate folder named in lineage.json) never writes elsewhere
    if ".." in Path(relative).parts or not target.resolve().is_relative_to(dest.resolve()):
        log.info("artifact %s of %s: not a path inside the run's artifacts", relative, root)
        return None
    timeout = float(os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "15"))
    full = f"{root}/{relative}" if relative else root
    try:
        request = urllib.request.Request(f"{base}/{urllib.parse.quote(full)}", headers=rest_headers())
        with urllib.request.urlopen(request, timeout=timeout, context=tls_context()) as response:  # noqa: S310
            body = response.read()
    except urllib.error.HTTPError as exc:
        exc.close()
        return _fetch_served_folder(uri, root, relative, dest, timeout)
    except (OSError, ValueError) as exc:
        log.info("artifact %s of %s not fetched (%s)", relative, root, exc.__class__.__name__)
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(body)
    return target


def _fetch_served_folder(uri: str, root: str, relative: str, dest: Path, timeout: float) -> Path | None:
    """A folder under the served root, file by file (None when the listing is empty: no such artifact)."""
    base = uri.rstrip("/") + "/api/2.0/mlflow-artifacts/artifacts"
    full = f"{root}/{relative}" if relative else root
    try:
        request = urllib.request.Request(f"{base}?{urllib.parse.urlencode({'path': full})}", headers=rest_headers())
        with urllib.request.urlopen(request, timeout=timeout, context=tls_context()) as response:  # noqa: S310
            listed = json.load(response).get("files", [])
    except (OSError, ValueError) as exc:
        log.info("artifact %s of %s not fetched (%s)", relative, root, exc.__class__.__name__)
        return None
    if not listed:
        log.info("artifact %s of %s: no such artifact", relative, root)
        return None
    folder = dest / relative
    folder.mkdir(parents=True, exist_ok=True)
    for entry in listed:
        name = str(entry["path"]).rsplit("/", 1)[-1]
        if name in ("", ".", ".."):
            continue
        if fetch_served_artifact(root, f"{relative}/{name}" if relative else name, dest, uri) is None:
            return None
    return folder


# --------------------------------------------------------------------------- anything else


def _versions_from_client(name: str | None) -> list[VersionView]:
    from governance import registry

    return [
        VersionView(
            name=mv.name,
            version=int(mv.version),
            run_id=mv.run_id,
            source=mv.source,
            status=mv.status,
            creation_time=mv.creation_timestamp,
            tags=dict(mv.tags or {}),
            aliases=tuple(sorted(mv.aliases or [])),
            description=mv.description,
        )
        for mv in registry.list_versions(name)
    ]
