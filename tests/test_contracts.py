"""Contracts that keep the repo's shape: stages ↔ modules ↔ params, policies ↔ schemas, layering."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from governance.policy import load_policy_file

REPO = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())

#: Every policy file and the schema that parses it; a new policy file needs an entry.
POLICY_SCHEMAS = {
    "eval.yaml": "governance.policy.eval:EvalPolicy",
    "pii.yaml": "governance.policy.pii:PiiPolicy",
    "data.yaml": "governance.policy.data:DataPolicy",
    "approvals.yaml": "governance.policy.approvals:ApprovalsPolicy",
    "objectives.yaml": "governance.policy.objectives:ObjectivesPolicy",
    "waivers.yaml": "governance.gates:WaiverFile",
    "report.yaml": "governance.report.policy:ReportPolicy",
    "trail_keys.yaml": "governance.policy.trail_keys:TrailKeysPolicy",
    "monitoring.yaml": "governance.policy.monitoring:MonitoringPolicy",
}


def _stage_module(cmd: str) -> str:
    # `python -m pipelines.X ...`, or for train_* stages `python -m pipelines._launch ... -m pipelines.X`
    words = cmd.split()
    assert words[:2] == ["python", "-m"], cmd
    module = words[len(words) - 1 - words[::-1].index("-m") + 1]
    assert module.startswith("pipelines."), cmd
    return module


def _params_model(module) -> type[BaseModel]:
    own = [
        cls
        for name, cls in inspect.getmembers(module, inspect.isclass)
        if name.endswith("Params") and cls.__module__ == module.__name__ and issubclass(cls, BaseModel)
    ]
    assert len(own) == 1, f"{module.__name__} should define exactly one *Params model, found {own}"
    return own[0]


@pytest.mark.parametrize("stage", sorted(DVC))
def test_every_stage_has_its_module_and_valid_params_section(stage):
    module = importlib.import_module(_stage_module(DVC[stage]["cmd"]))
    assert (module.__doc__ or "").strip(), f"{module.__name__} needs a docstring saying how to run it"
    assert stage in PARAMS, f"params.yaml has no section {stage!r} for stage {stage!r}"
    _params_model(module).model_validate(PARAMS[stage])


@pytest.mark.parametrize("path", sorted((REPO / "policies").glob("*.yaml")), ids=lambda p: p.name)
def test_every_policy_file_validates(path):
    assert path.name in POLICY_SCHEMAS, f"{path.name} has no schema registered in POLICY_SCHEMAS"
    module, name = POLICY_SCHEMAS[path.name].split(":")
    policy = load_policy_file(path, getattr(importlib.import_module(module), name))
    assert policy.version


def test_governance_never_imports_pipelines():
    offenders = []
    for file in (REPO / "governance").rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{file.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] == "pipelines"]
    assert offenders == []
