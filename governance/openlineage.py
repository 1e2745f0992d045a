"""OpenLineage run events for every pipeline stage: START, then COMPLETE or FAIL.

Each stage execution is one OpenLineage run of the job named like the stage
(namespace: ``OPENLINEAGE_NAMESPACE``, default the project name). Its input and
output datasets are the stage's ``deps`` and ``outs``/``metrics`` in
``dvc.yaml`` (namespace ``file``, name the path relative to the repository), and
the final event carries run facets for what governance decided:

- ``governance_gate`` — a gate's verdict (gate, passed, counts, policy version, decision SHA-256);
- ``mlflow_run`` — the MLflow run the stage logged (run id, experiment, tracking URI without credentials);
- ``registered_version`` — the model version a ``register_*`` stage registered;
- ``source`` — the git commit and dirty flag of the checkout that ran it;
- ``errorMessage`` (the standard facet) on FAIL.

Transport: by default the OpenLineage client's file transport appends JSON
lines to ``openlineage/events.jsonl`` in the repository (git-ignored, not a DVC
output). Setting ``OPENLINEAGE_URL`` (HTTP, e.g. Marquez), ``OPENLINEAGE_CONFIG``
or any ``OPENLINEAGE__TRANSPORT__*`` variable hands configuration to the client
itself; ``OPENLINEAGE_DISABLED=true`` turns emission off. Lineage is
observability, not evidence: a failing transport is logged and never fails a
stage (the trail and dvc.lock are the evidence).

Cost: importing the client and parsing dvc.yaml take a noticeable fraction of a second, so :meth:`StageLineage.begin`
imports and emits START on a background thread while the stage loads its own
libraries; :meth:`StageLineage.finish` joins it and emits the final event.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

DEFAULT_EVENTS_PATH = Path("openlineage/events.jsonl")
EVENTS_PATH_ENV = "GOVERN_OPENLINEAGE_FILE"
NAMESPACE_ENV = "OPENLINEAGE_NAMESPACE"
DATASET_NAMESPACE = "file"
PRODUCER = "https://github.com/governed-post-training/governance"
SCHEMA_BASE = "https://github.com/governed-post-training/governance/schemas/openlineage"

#: libyaml's loader where installed: dvc.yaml and params.yaml parse ten times faster than in pure Python.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_INTERPOLATION = re.compile(r"\$\{([A-Za-z0-9_.]+)\}")


def _lookup(params: dict[str, Any], dotted: str) -> str:
    value: Any = params
    for part in dotted.split("."):
        value = value[part]
    return str(value)


def _paths(entries: list[Any] | None, params: dict[str, Any]) -> list[str]:
    out = []
    for entry in entries or []:
        path = entry if isinstance(entry, str) else next(iter(entry))
        try:
            out.append(_INTERPOLATION.sub(lambda m: _lookup(params, m.group(1)), path))
        except (KeyError, TypeError):
            continue  # an entry params.yaml cannot resolve is DVC's error to report, not lineage's
    return out


def stage_io(stage: str, dvc_yaml: Path = Path("dvc.yaml"), params_yaml: Path = Path("params.yaml")):
    """``(inputs, outputs)``: the stage's deps and its outs + metrics, interpolated from params.yaml."""
    if not dvc_yaml.is_file():
        return [], []
    stages = (yaml.load(dvc_yaml.read_text(), Loader=_Loader) or {}).get("stages") or {}
    params = yaml.load(params_yaml.read_text(), Loader=_Loader) if params_yaml.is_file() else {}
    spec = stages.get(stage) or {}
    outputs = _paths(spec.get("outs"), params or {}) + _paths(spec.get("metrics"), params or {})
    return _paths(spec.get("deps"), params or {}), outputs


def _configured_elsewhere() -> bool:
    return any(k == "OPENLINEAGE_URL" or k == "OPENLINEAGE_CONFIG" or k.startswith("OPENLINEAGE__") for k in os.environ)


def _client():
    from openlineage.client import OpenLineageClient

    if _configured_elsewhere():
        return OpenLineageClient()
    from openlineage.client.transport.file import FileConfig, FileTransport

    path = Path(os.environ.get(EVENTS_PATH_ENV) or DEFAULT_EVENTS_PATH)
    path.parent.mkdir(parents=True, exist_ok=True)
    return OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(path), append=True)))


def _facet_classes() -> dict[str, type]:
    """The project's custom run facets (attrs classes, as the client's own facets are)."""
    import attr
    from openlineage.client.generated.base import RunFacet

    def facet(name: str, fields: dict[str, Any]) -> type:
        attributes = {key: attr.field(default=default) for key, default in fields.items()}
        cls = attr.make_class(name, attributes, bases=(RunFacet,))
        cls._get_schema = staticmethod(lambda: f"{SCHEMA_BASE}/{name}.json")
        return cls

    return {
        "governance_gate": facet(
            "GovernanceGateRunFacet",
            {"gate": "", "passed": False, "counts": {}, "policyPath": "", "policyVersion": "", "decision": "",
             "decisionSha256": ""},
        ),
        "mlflow_run": facet("MlflowRunRunFacet", {"runId": "", "experimentId": "", "trackingUri": ""}),
        "registered_version": facet("RegisteredVersionRunFacet", {"name": "", "version": "", "created": False}),
        "source": facet("SourceRunFacet", {"gitCommit": "", "gitDirty": False}),
    }  # fmt: skip


def _redacted(uri: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", uri)


def _run_process_run() -> dict[str, str] | None:
    """The run a run process of this process last ended (see :mod:`governance.run_process`), if any."""
    import sys

    run_process = sys.modules.get("governance.run_process")
    return run_process.last_run() if run_process is not None else None


def governance_facets(outputs: list[str], earlier_run: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """What the stage decided, read back from its outputs and its MLflow run (plain dicts).

    The run is the one this stage's run process ended (a training stage's), unless that is
    ``earlier_run`` (ended before the stage began), else the last run MLflow ran in this process.
    """
    import sys

    facets: dict[str, dict[str, Any]] = {}
    for path in outputs:
        file = Path(path)
        if file.name == "decision.json" and file.is_file():
            try:
                raw = file.read_bytes()
                decision = json.loads(raw)
            except (OSError, ValueError):
                continue
            facets["governance_gate"] = {
                "gate": str(decision.get("gate", "")),
                "passed": bool(decision.get("passed")),
                "counts": decision.get("counts") or {},
                "policyPath": str(decision.get("policy_path", "")),
                "policyVersion": str(decision.get("policy_version", "")),
                "decision": path,
                "decisionSha256": hashlib.sha256(raw).hexdigest(),
            }
        elif file.name == "registration.json" and file.is_file():
            try:
                registration = json.loads(file.read_text())
            except (OSError, ValueError):
                continue
            facets["registered_version"] = {
                "name": str(registration.get("name", "")),
                "version": str(registration.get("version", "")),
                "created": bool(registration.get("created")),
            }
    ended = _run_process_run()
    if ended is not None and ended is not earlier_run:
        facets["mlflow_run"] = {
            "runId": ended["run_id"],
            "experimentId": ended["experiment_id"],
            "trackingUri": _redacted(ended["tracking_uri"]),
        }
        return facets
    mlflow = sys.modules.get("mlflow")
    try:
        run = mlflow.last_active_run() if mlflow is not None else None
    except Exception as exc:  # the run facet is optional: a stale or unreachable run never loses the event
        log.warning("OpenLineage: MLflow run facet left out (%s)", str(exc).splitlines()[0][:200])
        run = None
    if run is not None:
        facets["mlflow_run"] = {
            "runId": run.info.run_id,
            "experimentId": str(run.info.experiment_id),
            "trackingUri": _redacted(mlflow.get_tracking_uri()),
        }
    return facets


class StageLineage:
    """One stage execution as an OpenLineage run: :meth:`begin` emits START, :meth:`finish` the end."""

    def __init__(self, stage: str, namespace: str | None = None):
        self.stage, self.namespace = stage, namespace
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self._client = None
        self._run_id: str | None = None
        self._thread: threading.Thread | None = None
        self._earlier_run = _run_process_run()

    @classmethod
    def begin(cls, stage: str, namespace: str | None = None) -> StageLineage | None:
        """Start emitting (START on a background thread); None when emission is disabled."""
        if os.environ.get("OPENLINEAGE_DISABLED", "").lower() in ("1", "true", "yes"):
            return None
        lineage = cls(stage, namespace)
        lineage._thread = threading.Thread(target=lineage._emit_start, name="openlineage-start", daemon=True)
        lineage._thread.start()
        return lineage

    def _event(self, state: str, *, facets: dict[str, Any] | None = None, with_outputs: bool = True):
        from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
        from openlineage.client.uuid import generate_new_uuid

        self._run_id = self._run_id or str(generate_new_uuid())
        import datetime as dt

        return RunEvent(
            eventType=getattr(RunState, state),
            eventTime=dt.datetime.now(dt.UTC).isoformat(),
            run=Run(runId=self._run_id, facets=facets or {}),
            job=Job(namespace=self.namespace, name=self.stage),
            producer=PRODUCER,
            inputs=[InputDataset(namespace=DATASET_NAMESPACE, name=p) for p in self.inputs],
            outputs=[OutputDataset(namespace=DATASET_NAMESPACE, name=p) for p in self.outputs] if with_outputs else [],
        )

    def _emit(self, event) -> None:
        try:
            if self._client is None:
                self._client = _client()
            self._client.emit(event)
        except Exception as exc:  # lineage is observability: a broken transport never fails a stage
            log.warning("OpenLineage %s event of %s not emitted: %s", event.eventType, self.stage, exc)

    def _emit_start(self) -> None:
        try:
            self.namespace = self.namespace or os.environ.get(NAMESPACE_ENV) or _project_namespace()
            self.inputs, self.outputs = stage_io(self.stage)
            event = self._event("START")
        except Exception as exc:  # see _emit
            log.warning("OpenLineage START event of %s not built: %s", self.stage, exc)
            return
        self._emit(event)

    def finish(self, exit_code: int, error: str | None = None) -> None:
        """Emit COMPLETE (exit 0) or FAIL (anything else) with the governance facets."""
        if self._thread is not None:
            self._thread.join()
        try:
            self.namespace = self.namespace or os.environ.get(NAMESPACE_ENV) or _project_namespace()
            classes = _facet_classes()
            facets: dict[str, Any] = {
                key: classes[key](**value) for key, value in governance_facets(self.outputs, self._earlier_run).items()
            }
            facets["source"] = classes["source"](**_source())
            if exit_code != 0:
                from openlineage.client.facet_v2 import error_message_run

                facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                    message=error or f"exit code {exit_code}", programmingLanguage="python"
                )
            event = self._event("COMPLETE" if exit_code == 0 else "FAIL", facets=facets)
        except Exception as exc:  # see _emit
            log.warning("OpenLineage final event of %s not built: %s", self.stage, exc)
            return
        self._emit(event)


def _project_namespace() -> str:
    try:
        project = (yaml.load(Path("params.yaml").read_text(), Loader=_Loader) or {}).get("project")
    except (OSError, yaml.YAMLError):
        project = None
    return str(project or "governed-post-training")


def _source() -> dict[str, Any]:
    from governance.lineage import git_state

    git = git_state()
    return {"gitCommit": str(git["commit"]), "gitDirty": bool(git["dirty"])}
