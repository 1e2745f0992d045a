"""What every stage entry point shares: params loading, offline env, the error boundary."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from governance.errors import ConfigError, GovernanceError
from governance.policy import load_yaml, validate_model
from pipelines._env import stage_environ

M = TypeVar("M", bound=BaseModel)

PARAMS_FILE = Path("params.yaml")

# The stage's environment, set before anything imports torch, transformers or MLflow
os.environ.update(stage_environ(os.environ))

log = logging.getLogger("pipelines")


def load_all_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of stage sections at top level")
    return data


def load_params(section: str, model: type[M], path: Path = PARAMS_FILE) -> M:
    """Validate one params.yaml section; a typo names the file and the key path."""
    data = load_all_params(path)
    if section not in data:
        raise ConfigError(f"{path}: section {section!r} is missing")
    return validate_model(data[section], model, f"{path}: {section}")


def require_ready_setup(path: Path = PARAMS_FILE) -> None:
    """Stop, listing every problem at once, when the set-up (server, identity, trail, keys) is not ready.

    Called by the root stages of the DAG (no upstream stage), so a team set-up
    missing a requirement stops before any work instead of one stage at a time
    after training. The risk tiers checked are those the params register.
    """
    from governance.preflight import require_ready

    tiers = [
        section["risk_tier"]
        for section in load_all_params(path).values()
        if isinstance(section, dict) and isinstance(section.get("risk_tier"), str)
    ]
    require_ready(tiers)


def project_name(path: Path = PARAMS_FILE) -> str:
    project = load_all_params(path).get("project")
    if not isinstance(project, str) or not project:
        raise ConfigError(f"{path}: project: required string (names the MLflow experiment and models)")
    return project


def stage_main(func: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """Run a stage's ``main`` with logging set up and governance errors as one line + exit code."""

    @functools.wraps(func)
    def wrapper(argv: list[str] | None = None) -> int:
        return _run_stage(func, argv)

    return wrapper


def _run_stage(func: Callable[[list[str] | None], int], argv: list[str] | None) -> int:
    """Logging, OpenLineage START/end, a governance error as one line and its exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "urllib3", "alembic", "mlflow.store", "presidio-analyzer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    lineage = _begin_lineage(func, argv)
    try:
        code = func(argv)
    except GovernanceError as exc:
        _finish_lineage(lineage, exc.exit_code, f"{exc.__class__.__name__}: {exc}")
        main_spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = func.__module__ if func.__module__ != "__main__" else getattr(main_spec, "name", "stage")
        stage = module.rsplit(".", 1)[-1]
        # Under `accelerate launch` every process fails alike: the main one (rank 0) says it, once
        if os.environ.get("RANK", "0") == "0":
            print(f"{stage}: {exc.__class__.__name__}: {exc}", file=sys.stderr)  # noqa: T201 - stage error line
        return exc.exit_code
    except BaseException as exc:
        _finish_lineage(lineage, 1, exc.__class__.__name__)
        raise
    _finish_lineage(lineage, code)
    return code


def _stage_name(func: Callable, argv: list[str] | None) -> str:
    """The dvc.yaml stage a ``main`` runs: its module's name, plus the dataset/method argument if any."""
    main_spec = getattr(sys.modules["__main__"], "__spec__", None)
    module = func.__module__ if func.__module__ != "__main__" else getattr(main_spec, "name", "stage")
    stage = module.rsplit(".", 1)[-1]
    args = sys.argv[1:] if argv is None else argv
    return f"{stage}_{args[0]}" if len(args) == 1 and args[0].isidentifier() else stage


def _begin_lineage(func: Callable, argv: list[str] | None):
    """OpenLineage START for this stage execution (main process only; see governance.openlineage)."""
    if os.environ.get("RANK", "0") != "0":
        return None
    from governance.openlineage import StageLineage

    return StageLineage.begin(_stage_name(func, argv))


def _finish_lineage(lineage, exit_code: int, error: str | None = None) -> None:
    if lineage is not None:
        lineage.finish(exit_code, error)
