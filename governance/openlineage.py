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

Transport: by default each event is appended as one JSON line to
``openlineage/events.jsonl`` in the repository (git-ignored, not a DVC output),
exactly as the client's file transport writes it (``Serde.to_json``: keys
sorted, one line per event). Setting ``OPENLINEAGE_URL`` (HTTP, e.g. Marquez),
``OPENLINEAGE_CONFIG`` or any ``OPENLINEAGE__TRANSPORT__*`` variable hands the
same event, rebuilt as openlineage-python's ``RunEvent`` (its validators run),
to the client with its own configuration; ``OPENLINEAGE_DISABLED=true`` turns
emission off. Lineage is observability, not evidence: a failing transport is
logged and never fails a stage (the trail and dvc.lock are the evidence).

Cost: importing openlineage-python pulls in every transport it has (requests,
httpx, asyncio, fsspec: ~0.4-0.6 s of CPU), which was the larger part of a
cheap stage's run and, over the 39 stages of the default DAG, ~20 s. So the
events are built as plain JSON following the 2-0-2 ``RunEvent`` schema and
the client is imported only when it is the transport;
``tests/governance/test_openlineage.py`` checks both that the JSON parses back
into the client's models and that it is what the client serialises for the
same event. :meth:`StageLineage.begin` builds and writes START on a background
thread while the stage loads its own libraries; :meth:`StageLineage.finish`
joins it and emits the final event.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
import uuid
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


EVENT_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
ERROR_FACET_SCHEMA = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"

#: The project's custom run facets: JSON name -> (schema name, field defaults), as in the 2-0-2 facet convention.
CUSTOM_FACETS: dict[str, tuple[str, dict[str, Any]]] = {
    "governance_gate": (
        "GovernanceGateRunFacet",
        {"gate": "", "passed": False, "counts": {}, "policyPath": "", "policyVersion": "", "decision": "",
         "decisionSha256": ""},
    ),
    "mlflow_run": ("MlflowRunRunFacet", {"runId": "", "experimentId": "", "trackingUri": ""}),
    "registered_version": ("RegisteredVersionRunFacet", {"name": "", "version": "", "created": False}),
    "source": ("SourceRunFacet", {"gitCommit": "", "gitDirty": False}),
}  # fmt: skip


def new_run_id() -> str:
    """A UUIDv7 (RFC 9562: 48-bit Unix milliseconds, version 7, RFC 4122 variant), as the client makes run ids."""
    value = (time.time_ns() // 10**6 & 0xFFFFFFFFFFFF) << 80 | secrets.randbits(76)
    value = value & ~(0xF000 << 64) | 7 << 76
    value = value & ~(0xC000 << 48) | 0x8000 << 48
    return str(uuid.UUID(int=value))


def custom_facet(name: str, values: dict[str, Any]) -> dict[str, Any]:
    """One of :data:`CUSTOM_FACETS` as event JSON: its fields (defaults filled in), producer and schema URL."""
    schema, defaults = CUSTOM_FACETS[name]
    unknown = set(values) - set(defaults)
    if unknown:
        raise ValueError(f"{name} facet has no field(s) {sorted(unknown)}")
    return {"_producer": PRODUCER, "_schemaURL": f"{SCHEMA_BASE}/{schema}.json", **defaults, **values}


def error_facet(message: str) -> dict[str, Any]:
    """The standard ``errorMessage`` run facet."""
    return {
        "_producer": PRODUCER, "_schemaURL": ERROR_FACET_SCHEMA, "message": message, "programmingLanguage": "python",
    }  # fmt: skip


def run_event(
    state: str,
    *,
    run_id: str,
    namespace: str,
    job: str,
    inputs: list[str],
    outputs: list[str],
    facets: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An OpenLineage 2-0-2 RunEvent as the JSON the client's ``Serde`` writes (datasets in namespace ``file``)."""
    import datetime as dt

    return {
        "eventTime": dt.datetime.now(dt.UTC).isoformat(),
        "eventType": state,
        "inputs": [{"facets": {}, "inputFacets": {}, "name": p, "namespace": DATASET_NAMESPACE} for p in inputs],
        "job": {"facets": {}, "name": job, "namespace": namespace},
        "outputs": [{"facets": {}, "name": p, "namespace": DATASET_NAMESPACE, "outputFacets": {}} for p in outputs],
        "producer": PRODUCER,
        "run": {"facets": facets or {}, "runId": run_id},
        "schemaURL": EVENT_SCHEMA,
    }  # fmt: skip


def client_event(event: dict[str, Any]):
    """The same event as openlineage-python's ``RunEvent`` (attrs models: the client's validators run)."""
    import attr
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.facet_v2 import error_message_run
    from openlineage.client.generated.base import RunFacet

    facets: dict[str, Any] = {}
    for key, value in event["run"]["facets"].items():
        fields = {k: v for k, v in value.items() if not k.startswith("_")}
        if key == "errorMessage":
            facets[key] = error_message_run.ErrorMessageRunFacet(producer=value["_producer"], **fields)
            continue
        if key not in CUSTOM_FACETS:  # a facet another producer added (the client's own tags): kept as it is
            facets[key] = value
            continue
        schema, defaults = CUSTOM_FACETS[key]
        cls = attr.make_class(schema, {k: attr.field(default=d) for k, d in defaults.items()}, bases=(RunFacet,))
        cls._get_schema = staticmethod(lambda url=value["_schemaURL"]: url)
        facets[key] = cls(producer=value["_producer"], **fields)
    return RunEvent(
        eventType=getattr(RunState, event["eventType"]),
        eventTime=event["eventTime"],
        run=Run(runId=event["run"]["runId"], facets=facets),
        job=Job(namespace=event["job"]["namespace"], name=event["job"]["name"]),
        producer=event["producer"],
        inputs=[InputDataset(namespace=d["namespace"], name=d["name"]) for d in event["inputs"]],
        outputs=[OutputDataset(namespace=d["namespace"], name=d["name"]) for d in event["outputs"]],
    )


def events_path() -> Path:
    return Path(os.environ.get(EVENTS_PATH_ENV) or DEFAULT_EVENTS_PATH)


def emit(event: dict[str, Any]) -> None:
    """Append the event to the events file, or hand it to the client where one is configured."""
    if _configured_elsewhere():
        from openlineage.client import OpenLineageClient

        OpenLineageClient().emit(client_event(event))
        return
    path = events_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:  # one write of one line: concurrent stages' lines never interleave
        out.write(json.dumps(event, sort_keys=True) + "\n")


def _redacted(uri: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", uri)


def governance_facets(outputs: list[str]) -> dict[str, dict[str, Any]]:
    """What the stage decided, read back from its outputs and its MLflow run (plain dicts).

    The run is the last one MLflow ran in this process (the stage's own).
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
        self._run_id: str | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def begin(cls, stage: str, namespace: str | None = None) -> StageLineage | None:
        """Start emitting (START on a background thread); None when emission is disabled."""
        if os.environ.get("OPENLINEAGE_DISABLED", "").lower() in ("1", "true", "yes"):
            return None
        lineage = cls(stage, namespace)
        lineage._thread = threading.Thread(target=lineage._emit_start, name="openlineage-start", daemon=True)
        lineage._thread.start()
        return lineage

    def _event(self, state: str, *, facets: dict[str, Any] | None = None) -> dict[str, Any]:
        self._run_id = self._run_id or new_run_id()
        return run_event(
            state, run_id=self._run_id, namespace=self.namespace, job=self.stage, inputs=self.inputs,
            outputs=self.outputs, facets=facets,
        )  # fmt: skip

    def _emit(self, event: dict[str, Any]) -> None:
        try:
            emit(event)
        except Exception as exc:  # lineage is observability: a broken transport never fails a stage
            log.warning("OpenLineage %s event of %s not emitted: %s", event["eventType"], self.stage, exc)

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
            facets = {key: custom_facet(key, value) for key, value in governance_facets(self.outputs).items()}
            facets["source"] = custom_facet("source", _source())
            if exit_code != 0:
                facets["errorMessage"] = error_facet(error or f"exit code {exit_code}")
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
