"""Mechanics every training stage shares: TRL config from params, adapters, model I/O, lineage.

Each ``train_*`` module stays readable top to bottom (TRL's own stance); what
must be *consistent* between them lives here, once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from governance.errors import ConfigError, GovernanceError
from governance.gates import GateDecision
from governance.hardware import hardware_facts
from governance.identity import current_user
from governance.lineage import (
    environment,
    file_refs,
    git_state,
    lock_file_hash,
    policy_versions,
    read_manifest,
    sha256_dir,
    sha256_file,
    sha256_json,
    write_manifest,
)
from governance.policy import Strict
from governance.registry import flatten, latest_model_run, tracking_uri
from governance.run_process import RunProcess
from pipelines._common import PARAMS_FILE, load_all_params, project_name, without_optional_backends

log = logging.getLogger(__name__)


class AdapterParams(Strict):
    """The LoRA/QLoRA switch every training stage carries.

    ``method: none`` trains all weights; ``lora`` wraps the model with
    ``peft.LoraConfig(**lora)``; ``qlora`` also loads the base in 4-bit with
    bitsandbytes, which needs a CUDA GPU.
    """

    method: Literal["none", "lora", "qlora"]
    lora: dict[str, Any] = {}


#: How YAML files spell "off" for TRL's strategy options, whose off value is the string "no".
OFF_WORDS = ("no", "off", "false")


def strategy_off_words(config_class: type, options: dict[str, Any]) -> dict[str, Any]:
    """``save_strategy: off`` or ``false`` (or a ``no`` some YAML 1.1 tool read as a boolean) → ``"no"``.

    Only options whose type is a transformers ``*Strategy`` enum are touched;
    a real boolean option keeps its boolean.
    """
    fields = getattr(config_class, "__dataclass_fields__", {})
    out = dict(options)
    for key, value in options.items():
        if key not in fields or "Strategy" not in str(fields[key].type):
            continue
        if value is False or (isinstance(value, str) and value.strip().lower() in OFF_WORDS):
            out[key] = "no"
    return out


def check_scalar_types(config_class: type, options: dict[str, Any], section: str) -> None:
    """A number or boolean TRL option given a value of another type is a one-line ConfigError.

    TRL's dataclasses do not check types, so ``dvc exp run -S train_sft.trl.max_steps=ten``
    would otherwise surface as a ``TypeError`` deep inside the trainer. Only options typed
    ``int``, ``float`` or ``bool`` (optionally ``| None``) are checked; an int is a valid float.
    """
    import types

    fields = getattr(config_class, "__dataclass_fields__", {})
    for key, value in options.items():
        if key not in fields or value is None:
            continue
        kind = fields[key].type
        if isinstance(kind, types.UnionType):
            members = [t for t in kind.__args__ if t is not type(None)]
            kind = members[0] if len(members) == 1 else None
        if kind not in (int, float, bool):
            continue
        ok = (
            isinstance(value, bool)
            if kind is bool
            else isinstance(value, int | float)
            and not isinstance(value, bool)
            and (kind is float or value == int(value))
        )
        if not ok:
            raise ConfigError(
                f"params.yaml: {section}.trl.{key}: {value!r} is not a{'n' if kind is int else ''} {kind.__name__}"
            )


def trl_config(config_class: type, trl: dict[str, Any], section: str):
    """Build a TRL config from params unchanged; TRL's own checks run.

    Two device-dependent defaults are filled in on a machine without CUDA:
    TRL defaults ``bf16=True``, which a CPU-only torch cannot train in, so an
    unset ``bf16`` becomes ``False``; and in a multi-process launch (accelerate's
    workers, ``WORLD_SIZE`` > 1) an unset ``use_cpu`` becomes ``True``, so the
    workers join one gloo process group instead of training alone. Unknown keys
    fail with the key.
    """
    import torch

    options = strategy_off_words(config_class, trl)
    check_scalar_types(config_class, options, section)
    if "bf16" not in options and not torch.cuda.is_available():
        options["bf16"] = False
    if "use_cpu" not in options and not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        options["use_cpu"] = True
    try:
        return config_class(**options)
    except TypeError as exc:
        raise ConfigError(f"params.yaml: {section}.trl: {exc} (options are {config_class.__name__}'s)") from None
    except ValueError as exc:
        raise ConfigError(f"params.yaml: {section}.trl{_offending_key(options, str(exc))}: {exc}") from None


def _offending_key(options: dict[str, Any], message: str) -> str:
    """``.key`` of the one option whose text value TRL's ValueError names, else ''.

    TRL's checks (``bogus is not a valid SchedulerType``) name the value, not the option;
    the user's params name the option, so the error points at the line to fix. A value
    counts when the message starts with it or quotes it, else when it stands as a whole
    word (``"no"`` must not match "not").
    """
    texts = {key: value for key, value in options.items() if isinstance(value, str) and value}
    for named in (
        lambda v: message.startswith(f"{v} ") or f"'{v}'" in message or f'"{v}"' in message,
        lambda v: re.search(rf"(?<![\w.-]){re.escape(v)}(?![\w.-])", message) is not None,
    ):
        keys = [key for key, value in texts.items() if named(value)]
        if len(keys) == 1:
            return f".{keys[0]}"
    return ""


def peft_config(adapter: AdapterParams, section: str):
    """``peft.LoraConfig`` for lora/qlora, or None for full fine-tuning."""
    if adapter.method == "none":
        return None
    import torch
    from peft import LoraConfig

    if adapter.method == "qlora" and not torch.cuda.is_available():
        raise ConfigError(
            f"params.yaml: {section}.adapter.method: qlora needs a CUDA GPU (bitsandbytes 4-bit); "
            "this machine has none: use method: lora"
        )
    try:
        return LoraConfig(**adapter.lora)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"params.yaml: {section}.adapter.lora: {exc}") from None


#: Optional backends transformers imports whenever installed and no training stage calls:
#: scipy for object-detection losses (~0.45 s of imports).
UNUSED_BACKENDS = ("scipy",)


def leave_out_unused_backends(section: str, params_file: Path = PARAMS_FILE) -> None:
    """For a training stage's ``__main__`` only: libraries it never calls stay unimported (~1 CPU s).

    transformers and TRL import scipy and peft as optional backends whenever they are
    installed (peft alone ~0.8 s). scipy is left out always, peft when the section's
    ``adapter.method`` is ``none`` (full fine-tuning never builds an adapter). An unreadable
    params file leaves everything in: the stage itself then reports it.
    """
    try:
        method = (load_all_params(params_file).get(section) or {}).get("adapter", {}).get("method")
    except (GovernanceError, AttributeError):
        method = None
    without_optional_backends(*UNUSED_BACKENDS, *(["peft"] if method == "none" else []))


def base_model_path(model_dir: str | Path) -> Path:
    """Where the model recorded by a base/parent stage's manifest lives."""
    manifest = read_manifest(model_dir)
    return Path(manifest.get("model_path", model_dir))


def load_causal_lm(model_dir: str | Path, adapter: AdapterParams | None = None, section: str = ""):
    """Load model and tokenizer from a stage output (or the path its manifest names)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = base_model_path(model_dir)
    kwargs: dict[str, Any] = {"dtype": torch.float32 if not torch.cuda.is_available() else torch.bfloat16}
    if adapter is not None and adapter.method == "qlora":
        peft_config(adapter, section)  # raises the clear CPU error first
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot load model ({str(exc).splitlines()[0][:200]})") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def save_model(model, tokenizer, out_dir: str | Path) -> None:
    """Save a full model (LoRA merged in) so the next stage can start from it."""
    peft = sys.modules.get("peft")  # a PeftModel exists only where peft was imported
    if peft is not None and isinstance(model, peft.PeftModel):
        model = model.merge_and_unload()
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def training_lineage(
    *,
    stage: str,
    params: dict[str, Any],
    data_files: list[str | Path],
    decisions: list[GateDecision],
    decision_paths: list[str | Path],
    parent_dir: str | Path,
    topology: Topology | None = None,
) -> dict[str, Any]:
    """Everything a trained model's provenance is made of, computed before training.

    ``distributed`` says how many processes trained it, how (accelerate's
    distributed type) and under which accelerate config (its SHA-256): the
    process count shapes the global batch, so it is part of the model's content.
    """
    parent = read_manifest(parent_dir)
    git = git_state()
    distributed = {k: v for k, v in topology.to_dict().items() if k != "rank"} if topology else None
    return {
        "provenance": dataset_provenance(data_files, decisions),
        "stage": stage,
        "distributed": distributed,
        "params": params,
        "params_sha256": sha256_json(params),
        "datasets": file_refs(data_files),
        "gates": [
            {
                "gate": d.gate,
                "stage": d.stage,
                "passed": d.passed,
                "policy_version": d.policy_version,
                "counts": d.counts,
                "decision": str(p),
                "decision_sha256": sha256_file(p),
            }
            for d, p in zip(decisions, decision_paths, strict=True)
        ],
        "parent": {
            "stage": parent.get("stage"),
            "dir": str(parent_dir),
            "name_or_path": parent.get("name_or_path", parent.get("base_name_or_path", str(parent_dir))),
            "model_sha256": parent.get("model_sha256"),
            "license": parent.get("license"),
        },
        # The base model's identity, licence and content hash, carried down from the base_model stage's manifest
        "base": parent.get(
            "base",
            {
                "name_or_path": parent.get("name_or_path"),
                "license": parent.get("license"),
                "model_sha256": parent.get("model_sha256"),
            },
        ),
        "trained_by": current_user(),
        "git_commit": git["commit"],
        "git_dirty": git["dirty"],
        "lock_sha256": lock_file_hash(),
        "policies": policy_versions(),
        "environment": {**environment(), **hardware_facts()},
    }


def dataset_provenance(data_files: list[str | Path], decisions: list[GateDecision]) -> dict[str, Any]:
    """Where each gated training file came from: the prepared file and raw inputs, rows,
    curation steps, and the sources and licences its records declare."""
    from collections import Counter

    from governance.records import iter_records

    prepared_by_name: dict[str, str] = {}
    for decision in decisions:
        for ref in decision.details.get("inputs", []) or []:
            prepared_by_name[Path(ref["path"]).name] = ref["path"]
    out: dict[str, Any] = {}
    for file in data_files:
        sources: Counter[str] = Counter()
        licenses: Counter[str] = Counter()
        for record in iter_records(file):
            sources[str(record.data.get("source", "not recorded"))] += 1
            licenses[str(record.data.get("license", "not recorded"))] += 1
        entry: dict[str, Any] = {"sources": dict(sources), "licenses": dict(licenses)}
        prepared = prepared_by_name.get(Path(file).name)
        manifest_path = Path(prepared).parent / "manifest.json" if prepared else None
        if manifest_path is not None and manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text())
            entry.update(
                prepared_from=prepared,
                stage=manifest.get("stage"),
                inputs=manifest.get("inputs"),
                rows=manifest.get("rows"),
                curation=manifest.get("curation"),
                format=manifest.get("format"),
                card=manifest.get("card"),
            )
        out[str(file)] = entry
    return out


def log_lineage_to_run(run: RunProcess, lineage: dict[str, Any]) -> None:
    """Log lineage as params (``pipeline.*``) and tags (``lineage.*``) of the stage's run.

    Params and tags go in one batch (MLflow splits it into requests of 100 of each):
    every request re-reads the run from the store, so fewer requests cost less.
    """
    params = flatten("pipeline", lineage["params"])
    params["pipeline.params_sha256"] = lineage["params_sha256"]
    tags = {
        "lineage.git_commit": lineage["git_commit"],
        "lineage.git_dirty": str(lineage["git_dirty"]),
        "lineage.trained_by": str(lineage["trained_by"]),
        "lineage.lock_sha256": lineage["lock_sha256"],
        "lineage.parent_model_sha256": str(lineage["parent"]["model_sha256"]),
        "lineage.gates": ",".join(f"{g['stage']}={'passed' if g['passed'] else 'denied'}" for g in lineage["gates"]),
    }
    tags.update({f"lineage.distributed.{k}": str(v) for k, v in (lineage.get("distributed") or {}).items()})
    tags.update({f"lineage.data.{Path(p).name}.md5": ref["md5"] for p, ref in lineage["datasets"].items()})
    tags.update({f"lineage.policy.{Path(p).stem}": ref["version"] for p, ref in lineage["policies"].items()})
    tags.update({f"env.{k}": str(v) for k, v in lineage["environment"].items()})
    run.log(params=params, tags=tags)
    run.log_dict(lineage, "lineage.json")
    # The gate decisions (and PII findings beside them) travel with the run, so a
    # reviewer's `govern report` needs only the tracking server, not this checkout.
    for gate in lineage["gates"]:
        decision = Path(gate["decision"])
        run.log_artifact(decision, artifact_path=f"gates/{gate['stage']}")
        findings = decision.with_name("findings.json")
        if findings.is_file():
            run.log_artifact(findings, artifact_path=f"gates/{gate['stage']}")


class Stopwatch:
    """Wall time of a block, for the manifest and the report."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = round(time.perf_counter() - self.start, 3)


#: Lineage facts about *this execution* rather than the model's content: they go to the
#: MLflow run (tags and lineage.json), never into the model folder, whose dvc.lock hash
#: must be the same for every bit-exact re-run (another user, commit or machine).
RUN_CONTEXT_KEYS = ("trained_by", "git_commit", "git_dirty", "environment")

#: TRL log entries that measure time, not training: kept in MLflow metrics only.
_TIMING_SUFFIXES = ("_runtime", "_per_second", "step_time")


def content_history(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """TRL's loss history without the wall-clock entries (runtime, samples per second)."""
    return [
        {k: v for k, v in entry.items() if not k.endswith(_TIMING_SUFFIXES)}
        for entry in log_history
        if "loss" in entry or "train_loss" in entry
    ]


def finish_training(
    *,
    out_dir: str | Path,
    lineage: dict[str, Any],
    trainer,
    seconds: float,
    run: RunProcess,
    extra: dict[str, Any],
    final_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Write the trained model's manifest and log the model folder to the run.

    The manifest holds only what the bytes of the model determine (lineage of
    inputs, params, steps, loss history); the run id, wall time, user, commit and
    machine are tags and metrics of the MLflow run, found again with
    :func:`with_run_context`. Returns once the run holds everything (a failed
    write raises here, before the staged model moves into place).
    """
    out_dir = Path(out_dir)
    state = trainer.state
    manifest = {
        **{k: v for k, v in lineage.items() if k not in RUN_CONTEXT_KEYS},
        "model_sha256": sha256_dir(out_dir),
        "num_parameters": sum(p.numel() for p in trainer.model.parameters()),
        # Written in a staging folder (see staged_output); the model lives at final_dir
        "model_path": str(final_dir or out_dir),
        "license": lineage["base"].get("license"),
        "trainer": f"{type(trainer).__module__}.{type(trainer).__qualname__}",
        "global_steps": state.global_step,
        "tokens_seen": getattr(state, "num_input_tokens_seen", None) or None,
        "train_history": content_history(state.log_history),
        **extra,
    }
    write_manifest(out_dir, manifest)
    run.log(metrics={"wall_seconds": seconds}, tags={"lineage.model_sha256": manifest["model_sha256"]})
    run.log_artifacts(out_dir, artifact_path="model")
    run.sync()
    log.debug("model %s logged to run %s", manifest["model_sha256"][:12], run.run_id)
    return manifest


def with_run_context(manifest: dict[str, Any], run_process: RunProcess | None = None) -> dict[str, Any]:
    """A trained model's manifest plus its MLflow training run's context.

    Adds ``run_id``, ``git_commit``, ``git_dirty`` and ``trained_by`` from the
    latest run of the manifest's stage that logged this model hash. Raises
    :class:`ConfigError` when the tracking store holds no such run (the model
    folder came from elsewhere, e.g. a DVC cache, without its MLflow store).
    With the stage's ``run_process``, the run is looked up there and this
    process never imports MLflow.
    """
    stage, digest = manifest.get("stage"), manifest.get("model_sha256")
    if run_process is not None:
        found = run_process.model_run(stage, digest)
        run_id, tags = (found["run_id"], found["tags"]) if found is not None else (None, {})
    else:
        run = latest_model_run(project_name(), stage, digest)
        run_id, tags = (run.info.run_id, run.data.tags) if run is not None else (None, {})
    if run_id is None:
        raise ConfigError(
            f"{manifest.get('model_path')}: no MLflow run of stage {stage} logged model {str(digest)[:12]}… "
            f"in {tracking_uri()}; re-run the stage (dvc repro -f {stage})"
        )
    return {
        **manifest,
        "run_id": run_id,
        "git_commit": tags.get("lineage.git_commit", "unknown"),
        "git_dirty": {"True": True, "False": False}.get(tags.get("lineage.git_dirty", "")),
        "trained_by": tags.get("lineage.trained_by", "unknown"),
    }


def log_evaluation(
    run: RunProcess, *, stage: str, method: str, out_dir: str | Path, metrics: dict[str, float], trained: dict
) -> None:
    """Log an evaluate stage's results through its run process, then end its run.

    The stage's own run (tagged ``stage=<stage>``, ``training_run_id``) gets the
    metrics and the output folder's files under ``evaluation/``; the training
    run gets the metrics as ``heldout.*`` and the same files. ``trained`` carries
    the run context (:func:`with_run_context`). A failed write raises here.
    """
    run.start(stage, {"method": method, "training_run_id": trained["run_id"]})
    run.log(metrics=metrics)
    run.log_artifacts(out_dir, artifact_path="evaluation")
    heldout = {f"heldout.{k}": float(v) for k, v in metrics.items()}
    run.log_to_run(trained["run_id"], metrics=heldout, artifacts=out_dir, artifact_path="evaluation")
    run.end()


# --- One run, many processes: every train_* stage is started by `accelerate launch` ----------


class LaunchParams(Strict):
    """How dvc.yaml launches the stage: ``accelerate launch --config_file C --num_processes N``.

    ``num_processes`` is accelerate's: processes over all machines. The config
    files under ``configs/accelerate/`` leave it to this value (``-1`` there).
    """

    num_processes: int = Field(ge=1)
    config_file: str


class DistributedError(GovernanceError):
    """A process of a multi-process training run failed or was stopped; nothing was written."""


@dataclass(frozen=True)
class Topology:
    """Where this process stands in the run accelerate started."""

    world_size: int
    rank: int
    local_world_size: int
    distributed_type: str
    backend: str | None
    config_file: str
    config_sha256: str

    @property
    def is_main(self) -> bool:
        """The one process that speaks for the run: outputs, manifest, MLflow, lineage."""
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        return self.distributed_type in ("FSDP", "DEEPSPEED")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_topology(config, launch: LaunchParams, adapter: AdapterParams, section: str) -> Topology:
    """This process's rank, the world size and distributed type the trainer will use.

    Reads the distributed state the TRL config set up (accelerate's, from the
    launcher's environment) and hashes the accelerate config named in params.
    Refuses a run whose process count differs from ``launch.num_processes`` (the
    lineage must describe what ran) and LoRA/QLoRA under FSDP/DeepSpeed, whose
    sharded adapter weights this stage cannot merge into one model folder.
    """
    path = Path(launch.config_file)
    if not path.is_file():
        raise ConfigError(
            f"params.yaml: {section}.launch.config_file: {path} not found (configs/accelerate/ holds the shipped ones)"
        )
    config.device  # noqa: B018 - builds TrainingArguments' distributed state (accelerate's PartialState)
    state = config.distributed_state
    topology = Topology(
        world_size=state.num_processes,
        rank=state.process_index,
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
        distributed_type=state.distributed_type.value,
        backend=state.backend,
        config_file=str(path),
        config_sha256=sha256_file(path),
    )
    if topology.world_size != launch.num_processes:
        raise ConfigError(
            f"params.yaml: {section}.launch.num_processes is {launch.num_processes} but this run has "
            f"{topology.world_size} process(es): run it with `dvc repro {section}` (accelerate launch) "
            "or set num_processes to match"
        )
    if topology.sharded and adapter.method != "none":
        raise ConfigError(
            f"params.yaml: {section}.adapter.method: {adapter.method} under {topology.distributed_type} "
            f"({path}) is not supported: sharded adapters cannot be merged into one model; use multi_gpu.yaml (DDP)"
        )
    log.info(
        "%s: process %d of %d (%s, backend %s, %s)",
        section,
        topology.rank,
        topology.world_size,
        topology.distributed_type,
        topology.backend,
        path,
    )
    return topology


@contextlib.contextmanager
def main_process_run(run_process: RunProcess | None, topology: Topology, stage: str, tags: dict[str, str]):
    """The stage's MLflow run on the main process (yields its :class:`RunProcess`), nothing elsewhere (None).

    ``run_process`` is the one the stage started before its imports
    (:func:`governance.run_process.start_run_process`); when it is None on the
    main process, one is started here. The run ends FINISHED when the block
    completes and FAILED when it raises. A SIGTERM (the launcher stopping the
    survivors after one process died) becomes :class:`DistributedError` on
    every process, so the run ends FAILED and staged outputs are removed
    before the process exits.
    """

    lost = (
        f"another training process of {topology.world_size} failed and the launcher stopped this one; "
        "nothing was written"
    )

    previous = signal.signal(signal.SIGTERM, stop_on_sigterm(lost)) if topology.world_size > 1 else None
    try:
        if not topology.is_main:
            if run_process is not None:
                run_process.close()
            yield None
            return
        run = run_process or RunProcess(project_name())
        run_tags = {
            **tags,
            "distributed.world_size": str(topology.world_size),
            "distributed.type": topology.distributed_type,
        }
        try:
            run.start(stage, run_tags)
            yield run
        except BaseException:
            with contextlib.suppress(Exception):
                run.end("FAILED")
            raise
        run.end()
    except RuntimeError as exc:
        if topology.world_size == 1 or not _peer_lost(exc):
            raise
        log.debug("collective failed: %s", str(exc).splitlines()[0][:200])
        raise DistributedError(lost) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def run_callbacks(config, run: RunProcess | None) -> list:
    """TRL's ``report_to: mlflow``, served through the stage's run process; call before building the trainer.

    transformers' ``MLflowCallback`` would import MLflow into the training
    process and log to an MLflow run there; the run lives in the run process
    instead. So ``mlflow`` is taken out of ``config.report_to`` (on every
    process: the callback imports MLflow even where it logs nothing) and, on
    the main process, replaced by :class:`RunReporter`, which sends the same
    params and metrics to the run. Other ``report_to`` entries are left alone.
    """
    report_to = list(config.report_to or [])
    if "mlflow" not in report_to:
        return []
    config.report_to = [name for name in report_to if name != "mlflow"]
    if run is None:
        return []
    from pipelines._reporting import RunReporter

    return [RunReporter(run, report_to=report_to)]


def stop_on_sigterm(message: str) -> Callable[[int, object], None]:
    """A SIGTERM handler that turns the launcher's stop into :class:`DistributedError`, once.

    The launcher sends SIGTERM to the survivors after one process died, often
    while the main process is already failing on the broken collective and
    closing its MLflow run as FAILED. Raising again there would abort that
    clean-up half-way (the run would stay RUNNING), so a SIGTERM that arrives
    while an exception is being handled is ignored: the failure in flight
    already ends the process with the same outcome.
    """

    def stopped(signum: int, frame: object) -> None:
        if sys.exc_info()[1] is not None:
            log.debug("SIGTERM during the clean-up of a failure: letting the clean-up finish")
            return
        raise DistributedError(message)

    return stopped


def _peer_lost(exc: RuntimeError) -> bool:
    """Whether a collective failed because another process of the group went away (gloo/NCCL)."""
    text = str(exc).lower()
    return any(
        phrase in text for phrase in ("connection closed by peer", "connection reset", "gloo", "nccl", "broken pipe")
    )


@contextlib.contextmanager
def staged_output(out_dir: str | Path, topology: Topology):
    """A staging folder beside ``out_dir``, moved into place only when the block succeeds.

    The earlier output stays where it is until the new one is complete (dvc.yaml
    marks the training outs ``persist: true``, so DVC does not delete them before
    the stage runs either): a failed run — a bad ``dvc exp run -S`` value, an
    exception, a SIGTERM turned into one — removes only the staging folder and
    leaves the committed model and its ``dvc.lock`` entry agreeing. A process
    killed outright leaves only ``<out_dir>.partial``, which is no DVC output
    and is cleared by the next run.
    """
    out_dir = Path(out_dir)
    staging = out_dir.with_name(out_dir.name + ".partial")
    existed = out_dir.exists()
    if topology.is_main:
        shutil.rmtree(staging, ignore_errors=True)
    try:
        yield staging
    except BaseException:
        if topology.is_main:
            shutil.rmtree(staging, ignore_errors=True)
            if not existed:  # an (empty) output_dir the trainer made: no output of this run may remain
                shutil.rmtree(out_dir, ignore_errors=True)
        raise
    if topology.is_main:
        # The trainer may have created output_dir (logs); the staged model replaces it whole
        shutil.rmtree(out_dir, ignore_errors=True)
        staging.rename(out_dir)


def save_trained_model(trainer, tokenizer, out_dir: str | Path, topology: Topology) -> None:
    """Save the trained model once, from the main process.

    Under FSDP/DeepSpeed the full state dict is gathered first, a collective
    every process takes part in; with one process or DDP every process holds
    the whole model and the main one saves it (LoRA merged in).
    """
    if topology.sharded:
        state_dict = trainer.accelerator.get_state_dict(trainer.model_wrapped)
        if topology.is_main:
            model = trainer.accelerator.unwrap_model(trainer.model)
            model.save_pretrained(out_dir, state_dict=state_dict, safe_serialization=True)
            tokenizer.save_pretrained(out_dir)
    elif topology.is_main:
        save_model(trainer.model, tokenizer, out_dir)
    trainer.accelerator.wait_for_everyone()
