"""The MLflow side: tracking runs, registered model versions and their tags.

MLflow is a *view* of governance state: versions carry lineage tags and an
approval status mirrored from the audit trail. The default store is the
embedded SQLite file ``mlflow.db`` with artifacts in ``mlartifacts/``;
``MLFLOW_TRACKING_URI`` points at a server instead. Every call that talks to
the store turns connection failures into :class:`RegistryError` naming the URI.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from governance.errors import ConfigError, RegistryError

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_ARTIFACT_DIR = "mlartifacts"

#: Tag names on a model version. ``governance.*`` tags are the mirrored view of
#: the audit trail; ``lineage.*`` tags are facts fixed at registration.
TAG_APPROVAL_STATUS = "governance.approval_status"
TAG_LINEAGE_KEY = "lineage.key"

#: Fail fast when a server is unreachable instead of MLflow's long retry loop.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
#: No usage telemetry to MLflow's servers from a governance tool (its thread posts records in the background).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def is_not_found(exc: Exception) -> bool:
    """Whether an MLflow client error says the model, version or alias does not exist."""
    code = str(getattr(exc, "error_code", ""))
    return code == "RESOURCE_DOES_NOT_EXIST" or "RESOURCE_DOES_NOT_EXIST" in str(exc) or "not found" in str(exc)


_not_found = is_not_found


#: How a store answers the second of two writers inserting the same key at once (PostgreSQL, SQLite, MySQL).
KEY_RACE = ("duplicate key value violates unique constraint", "UNIQUE constraint failed", "Duplicate entry")


def _upsert(write: Callable[[], Any], attempts: int = 5) -> None:
    """Run one MLflow tag or alias write; again when another writer inserted the same key in between.

    MLflow's SQL store writes a tag or an alias with ``session.merge``: it looks the key up, then
    inserts or updates. Two writers setting a key nobody set yet (two clones registering the same
    weights, both mirroring the trail) both look, both insert, and the second insert fails on the
    primary key; the server rolls that transaction back and answers BAD_REQUEST. The key now exists,
    so the same call again updates it: the store ends as if the writes had come one after the other.
    """
    for attempt in range(attempts):
        try:
            write()
            return
        except Exception as exc:
            if attempt == attempts - 1 or not _is_mlflow_error(exc) or not any(m in str(exc) for m in KEY_RACE):
                raise
            log.info("a concurrent writer set the same key first; writing again (attempt %d)", attempt + 2)
            time.sleep(0.05 * (attempt + 1))


def tracking_uri() -> str:
    """The tracking URI in force: ``MLFLOW_TRACKING_URI`` or the local SQLite store."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        # A relative SQLite path is resolved once, so sub-processes agree on it.
        uri = "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    return uri


#: Pipeline stages create the embedded store on their first run; ``govern`` only reads one
#: (see :func:`existing_store_only`).
_CREATE_MISSING_STORE = True


@contextlib.contextmanager
def existing_store_only() -> Iterator[None]:
    """Within it, a SQLite tracking URI whose file does not exist is an error, not a new empty store.

    MLflow creates any SQLite file it is pointed at, so a mistyped
    ``MLFLOW_TRACKING_URI`` would show an empty registry (or record an approval
    in a new one). The ``govern`` CLI runs every command inside this; ``dvc
    repro`` stages do not, because their first run is what creates the store.
    """
    global _CREATE_MISSING_STORE
    before, _CREATE_MISSING_STORE = _CREATE_MISSING_STORE, False
    try:
        yield
    finally:
        _CREATE_MISSING_STORE = before


def require_existing_store(uri: str | None = None) -> None:
    """Raise :class:`RegistryError` when a SQLite store's file does not exist."""
    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
        if not path.is_file():
            raise RegistryError(
                f"{uri}: no MLflow store at {path}; check MLFLOW_TRACKING_URI for a typo "
                "(govern never creates a store: the first `dvc repro` does)"
            )


def _is_mlflow_store(path: Path) -> bool:
    """Whether ``path`` is a SQLite file holding MLflow's tables (read-only look; never changes it)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            found = db.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                "AND name IN ('alembic_version', 'experiments', 'registered_models')"
            ).fetchone()
    except sqlite3.Error:
        return False
    return found is not None and found[0] == 3


def refuse_second_store(uri: str | None = None) -> None:
    """Refuse to create a SQLite store in a folder that already holds another MLflow store.

    The rule for pipeline stages (which create the embedded store on their
    first run): a store is created only in a folder that has none, so
    ``sqlite:///mlfow.db`` beside an existing ``mlflow.db`` is a typo, not a
    second registry that would silently split the project's runs and
    versions. A second store, when wanted, gets its own folder.
    """
    uri = uri or tracking_uri()
    if not uri.startswith("sqlite:///"):
        return
    path = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
    if path.exists() or not path.parent.is_dir():
        return
    others = sorted(p for p in path.parent.glob("*.db") if p.is_file() and _is_mlflow_store(p))
    if others:
        raise ConfigError(
            f"{uri}: no MLflow store at {path}, but {others[0]} beside it is one; a store is created only in a "
            f"folder that has none (a typo in MLFLOW_TRACKING_URI?): point it at {others[0]}, or give a second "
            "store its own folder"
        )


def is_local_store(uri: str | None = None) -> bool:
    uri = uri or tracking_uri()
    return not uri.startswith(("http://", "https://", "databricks"))


def rebase_artifact_uri(uri: str, store_uri: str | None = None) -> str:
    """A local artifact URI recorded under another folder's ``mlartifacts/``, read from this store's.

    MLflow records absolute ``file://`` artifact locations, so a copied (or
    moved) project folder would read the original's artifacts. For the embedded
    store, anything recorded under a folder named :data:`DEFAULT_ARTIFACT_DIR`
    is resolved against the ``mlartifacts/`` beside the store file at read
    time when it exists there. Other URIs (servers, S3, a custom location) are returned unchanged.
    """
    store_uri = store_uri or tracking_uri()
    if not (store_uri.startswith("sqlite:///") and uri.startswith("file://")):
        return uri
    from urllib.parse import unquote, urlparse

    recorded = Path(unquote(urlparse(uri).path))
    parts = recorded.parts
    if DEFAULT_ARTIFACT_DIR not in parts:
        return uri
    index = len(parts) - 1 - parts[::-1].index(DEFAULT_ARTIFACT_DIR)
    here = Path(store_uri.removeprefix("sqlite:///").split("?", 1)[0]).parent / DEFAULT_ARTIFACT_DIR
    rebased = here.joinpath(*parts[index + 1 :])
    # The copy's own artifacts win; a store whose runs logged elsewhere (another
    # working directory) still reads them where they were recorded.
    return rebased.as_uri() if rebased != recorded and rebased.exists() else uri


def client():
    """An ``MlflowClient`` for the configured store (tracking and registry alike).

    Its ``download_artifacts`` reads a local store's artifacts from beside the
    store (see :func:`rebase_artifact_uri`), wherever the folder was copied.
    """
    uri = tracking_uri()
    if not _CREATE_MISSING_STORE:
        require_existing_store(uri)
    else:
        refuse_second_store(uri)
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return _project_client_class()(tracking_uri=uri, registry_uri=uri)


#: Each run's recorded artifact root, read once per process and store: MLflow never changes a run's
#: ``artifact_uri``. A report downloads a dozen artifacts of two or three runs, and MLflow's own
#: ``download_artifacts(run_id, ...)`` resolves a ``runs:/`` URI for each (the run read twice, a logged-model
#: search, a listing, then the file: 5 requests, 55 of the report's 67 against a server).
_ARTIFACT_ROOTS: dict[tuple[str, str], str] = {}


def _project_client_class():
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    class ProjectClient(MlflowClient):
        """``MlflowClient`` whose artifact reads go straight to the run's artifact root (read once per run), and on
        a local store follow the store's folder (see :func:`rebase_artifact_uri`)."""

        def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
            store = self._tracking_client.tracking_uri
            root = _ARTIFACT_ROOTS.get((store, run_id))
            if root is None:
                root = _ARTIFACT_ROOTS[(store, run_id)] = self.get_run(run_id).info.artifact_uri
            if store.startswith("sqlite:///"):
                root = rebase_artifact_uri(root, store)
            return download_artifacts(artifact_uri=f"{root.rstrip('/')}/{path.lstrip('/')}", dst_path=dst_path)

    return ProjectClient


def _is_mlflow_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an ``MlflowException``, without importing MLflow (~2 s) to find out.

    Such an exception exists only once ``mlflow.exceptions`` is imported, so a
    command that never imported MLflow (the embedded store read directly) pays nothing.
    """
    module = sys.modules.get("mlflow.exceptions")
    return module is not None and isinstance(exc, module.MlflowException)


@contextlib.contextmanager
def registry_errors(action: str) -> Iterator[None]:
    """Turn MLflow/transport failures into one clear :class:`RegistryError` line."""
    try:
        yield
    except Exception as exc:
        if not _is_mlflow_error(exc):
            if isinstance(exc, OSError | ConnectionError):
                raise RegistryError(
                    f"{action} failed: cannot reach {tracking_uri()} ({exc.__class__.__name__})"
                ) from None
            raise
        message = str(exc.message if hasattr(exc, "message") else exc).splitlines()[0][:300]  # type: ignore[attr-defined]
        raise RegistryError(f"{action} failed at {tracking_uri()}: {message}") from None


def ensure_experiment(name: str) -> str:
    """Get or create the pipeline's experiment; local stores keep artifacts in ``mlartifacts/``."""
    mlflow_client = client()
    with registry_errors(f"opening experiment {name!r}"):
        experiment = mlflow_client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = None
        if is_local_store():
            location = Path(DEFAULT_ARTIFACT_DIR).resolve().as_uri()
        try:
            return mlflow_client.create_experiment(name, artifact_location=location)
        except Exception as exc:  # another writer (a second clone, CI) created it in between: use theirs
            if "RESOURCE_ALREADY_EXISTS" not in f"{getattr(exc, 'error_code', '')} {exc}":
                raise
            experiment = mlflow_client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id


@contextlib.contextmanager
def stage_run(experiment: str, stage: str, tags: dict[str, str] | None = None) -> Iterator[Any]:
    """One MLflow run per stage execution, tagged ``stage=<stage>``; failed runs end FAILED."""
    import mlflow

    client()  # sets the URIs
    experiment_id = ensure_experiment(experiment)
    with registry_errors(f"starting the MLflow run for {stage}"):
        run = mlflow.start_run(experiment_id=experiment_id, run_name=stage, tags={"stage": stage, **(tags or {})})
    try:
        yield run
    except BaseException:
        with contextlib.suppress(Exception):
            mlflow.end_run(status="FAILED")
        raise
    else:
        with registry_errors(f"closing the MLflow run for {stage}"):
            mlflow.end_run()


def latest_model_run(experiment: str, stage: str, model_sha256: str):
    """The latest run of ``stage`` in ``experiment`` that logged model ``model_sha256`` (its tag), or None."""
    store = client()  # the configured store, not whatever tracking URI this process set last
    found = store.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = store.search_runs(
        [found.experiment_id],
        filter_string=f"tags.stage = '{stage}' and tags.`lineage.model_sha256` = '{model_sha256}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def flatten(prefix: str, value: Any) -> dict[str, str]:
    """Flatten nested params to ``a.b.c`` keys with string values (MLflow's param shape)."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(flatten(f"{prefix}.{key}" if prefix else str(key), item))
        return out
    return {prefix: str(value)[:6000]}


def find_version_by_lineage(name: str, lineage_key: str):
    """The existing version of ``name`` registered for ``lineage_key``, if any."""
    mlflow_client = client()
    with registry_errors(f"searching versions of {name!r}"):
        for version in mlflow_client.search_model_versions(f"name = '{name}'"):
            if version.tags.get(TAG_LINEAGE_KEY) == lineage_key:
                return version
    return None


def register_version(
    name: str, *, run_id: str, artifact_path: str, lineage_key: str, tags: dict[str, str], description: str = ""
):
    """Register the run's model artifacts as a new version, pending approval.

    Idempotent by ``lineage_key``: the same lineage registered twice returns
    the first version (``created`` False) and creates nothing. Two writers
    registering the same lineage at once (two clones, one server) both
    create; each then looks again, and the one whose version is not the
    lowest with that key deletes its own and returns the lowest: one version
    stays, whoever finishes first (:func:`_settle_duplicates`).
    """
    existing = find_version_by_lineage(name, lineage_key)
    if existing is not None:
        return existing, False
    mlflow_client = client()
    with registry_errors(f"registering a version of {name!r}"):
        try:
            mlflow_client.get_registered_model(name)
        except Exception as exc:  # RESOURCE_DOES_NOT_EXIST, re-raised below for anything else
            if not _not_found(exc):
                raise
            try:
                mlflow_client.create_registered_model(
                    name, description="Governed model: versions stay pending until approved (govern approve)."
                )
            except Exception as exc:  # another writer created it in between: use theirs
                if "RESOURCE_ALREADY_EXISTS" not in f"{getattr(exc, 'error_code', '')} {exc}":
                    raise
        source = mlflow_client.get_run(run_id).info.artifact_uri.rstrip("/") + "/" + artifact_path
        all_tags = {**tags, TAG_LINEAGE_KEY: lineage_key, TAG_APPROVAL_STATUS: "pending"}
        version = mlflow_client.create_model_version(
            name, source=source, run_id=run_id, tags=all_tags, description=description
        )
        return _settle_duplicates(mlflow_client, name, lineage_key, version)


def _settle_duplicates(mlflow_client: Any, name: str, lineage_key: str, ours: Any) -> tuple[Any, bool]:
    """Keep the lowest version registered for ``lineage_key``; delete ``ours`` if another writer's is lower.

    Version numbers are allocated in order by the store, so a writer that
    created a higher number sees the lower one once its own create returns.
    """
    same = [
        v for v in mlflow_client.search_model_versions(f"name = '{name}'") if v.tags.get(TAG_LINEAGE_KEY) == lineage_key
    ]
    first = min(same or [ours], key=lambda v: int(v.version))
    if int(first.version) >= int(ours.version):
        return ours, True
    log.warning(
        "%s v%s: registered at the same time as v%s for the same lineage by another writer; v%s deleted, v%s kept",
        name,
        ours.version,
        first.version,
        ours.version,
        first.version,
    )
    mlflow_client.delete_model_version(name, str(ours.version))
    return first, False


def list_versions(name: str | None = None) -> list[Any]:
    """All registered versions (of one model, or of every model), newest first per model."""
    mlflow_client = client()
    with registry_errors("listing registered models"):
        models: dict[str, Any] = {}
        if name:
            try:
                models[name] = mlflow_client.get_registered_model(name)
            except Exception:
                raise ConfigError(f"no registered model named {name!r} at {tracking_uri()}") from None
            versions = list(mlflow_client.search_model_versions(f"name = '{name}'"))
        else:
            versions = list(mlflow_client.search_model_versions(""))
        # search_model_versions leaves `aliases` empty; the registered model holds them
        aliases: dict[tuple[str, str], list[str]] = {}
        for model_name in {v.name for v in versions}:
            model = models.get(model_name) or mlflow_client.get_registered_model(model_name)
            for alias, number in (model.aliases or {}).items():
                aliases.setdefault((model_name, str(number)), []).append(alias)
        for version in versions:
            version.aliases = sorted(aliases.get((version.name, str(version.version)), []))
    return sorted(versions, key=lambda v: (v.name, -int(v.version)))


def get_version(name: str, version: str | int):
    mlflow_client = client()
    with registry_errors(f"reading {name} v{version}"):
        try:
            return mlflow_client.get_model_version(name, str(version))
        except Exception as exc:
            if _not_found(exc):
                raise ConfigError(f"{name} v{version} is not registered at {tracking_uri()}") from None
            raise


def set_version_tags(name: str, version: str | int, tags: dict[str, str]) -> None:
    """Mirror governance state onto a version's tags (the MLflow UI's view of the trail)."""
    mlflow_client = client()
    with registry_write_errors(f"tagging {name} v{version}"):
        _tag_version(mlflow_client, name, version, tags)


def _tag_version(mlflow_client: Any, name: str, version: str | int, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        _upsert(lambda key=key, value=value: mlflow_client.set_model_version_tag(name, str(version), key, value))


def version_by_alias(name: str, alias: str):
    """The version holding ``alias``, or None when the model or alias does not exist."""
    mlflow_client = client()
    with registry_errors(f"reading alias {alias!r} of {name!r}"):
        try:
            return mlflow_client.get_model_version_by_alias(name, alias)
        except Exception as exc:
            if _not_found(exc) or "INVALID_PARAMETER_VALUE" in str(exc):
                return None
            raise


#: Evaluation metrics shown on a version in the MLflow UI. Display only: the evaluation gate's production
#: reference is read from the audit trail (:func:`governance.approvals.production_metrics`), never from these.
METRIC_TAG_PREFIX = "metric."


def find_version_by_model_hash(name: str, model_sha256: str):
    """The registered version of ``name`` whose weights hash is ``model_sha256`` (a parent lookup)."""
    mlflow_client = client()
    with registry_errors(f"searching versions of {name!r}"):
        try:
            versions = mlflow_client.search_model_versions(f"name = '{name}'")
        except Exception as exc:
            if _not_found(exc):
                return None
            raise
    matches = [v for v in versions if v.tags.get("lineage.model_sha256") == model_sha256]
    return max(matches, key=lambda v: int(v.version)) if matches else None


# --- Aliases and the governance view (written by governance.approvals, which mirrors the audit trail) ---


@contextlib.contextmanager
def registry_write_errors(action: str, needs: str = "EDIT (or MANAGE)") -> Iterator[None]:
    """Like :func:`registry_errors`, but the server refusing the user is :class:`PermissionDenied` (exit 1).

    ``needs`` is the permission the refusal names: MLflow's basic-auth asks
    EDIT to set an alias or tag, and MANAGE (its delete right) to remove an alias.
    """
    from mlflow.exceptions import MlflowException

    from governance.errors import PermissionDenied

    with registry_errors(action):
        try:
            yield
        except MlflowException as exc:
            if str(getattr(exc, "error_code", "")) in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
                user = os.environ.get("MLFLOW_TRACKING_USERNAME", "this user")
                raise PermissionDenied(
                    f"MLflow at {tracking_uri()} refused {user}: {action} needs {needs} permission "
                    "on the registered model"
                ) from None
            raise


def set_alias(name: str, alias: str, version: str | int) -> None:
    """Point ``alias`` of ``name`` at ``version`` (MLflow aliases; never the deprecated stages)."""
    mlflow_client = client()
    with registry_write_errors(f"setting alias {alias!r} of {name} to v{version}"):
        _upsert(lambda: mlflow_client.set_registered_model_alias(name, alias, str(version)))


def delete_alias(name: str, alias: str) -> None:
    """Remove ``alias`` from ``name``; removing an absent alias is a no-op."""
    mlflow_client = client()
    with registry_write_errors(f"removing alias {alias!r} of {name}", needs="MANAGE"):
        try:
            mlflow_client.delete_registered_model_alias(name, alias)
        except Exception as exc:
            if not _not_found(exc):
                raise


def require_model(name: str) -> None:
    """Refuse (exit 2, nothing recorded) when ``name`` is not a registered model at the tracking URI."""
    mlflow_client = client()
    with registry_errors(f"reading registered model {name!r}"):
        try:
            mlflow_client.get_registered_model(name)
        except Exception as exc:
            if _not_found(exc):
                raise ConfigError(f"no registered model named {name!r} at {tracking_uri()}") from None
            raise


def set_model_tag(name: str, key: str, value: str) -> None:
    """Set one tag on the registered model ``name`` (not on a version)."""
    mlflow_client = client()
    with registry_write_errors(f"tagging registered model {name}"):
        _upsert(lambda: mlflow_client.set_registered_model_tag(name, key, value))


def model_tags(key: str, name: str | None = None) -> dict[str, str]:
    """``{model name: value}`` of tag ``key`` on every registered model (or only ``name``) that has it."""
    mlflow_client = client()
    with registry_errors("reading registered model tags"):
        if name is None:
            models = list(_all_registered_models(mlflow_client))
        else:
            try:
                models = [mlflow_client.get_registered_model(name)]
            except Exception as exc:
                if not _not_found(exc):
                    raise
                models = []
    return {m.name: m.tags[key] for m in models if key in (m.tags or {})}


def _all_registered_models(mlflow_client) -> Iterator[Any]:
    token = None
    while True:
        page = mlflow_client.search_registered_models(max_results=1000, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def registered_model_names() -> list[str]:
    """Names of every registered model at the tracking URI."""
    mlflow_client = client()
    with registry_errors("listing registered models"):
        return sorted(m.name for m in _all_registered_models(mlflow_client))


def mirror_version_tags(name: str, version: str | int, tags: dict[str, str]) -> int:
    """Write the tags whose value differs from the version's current ones; returns how many changed."""
    current = get_version(name, version).tags or {}
    changed = {key: value for key, value in tags.items() if current.get(key) != value}
    mlflow_client = client()
    with registry_write_errors(f"tagging {name} v{version}"):
        _tag_version(mlflow_client, name, version, changed)
    return len(changed)
