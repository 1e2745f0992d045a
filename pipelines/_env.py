"""The environment a stage process runs in: offline, with threads from the machine (stdlib only:
``governance.offline`` is stdlib too).

``pipelines._common`` applies it when a stage starts; ``pipelines._stage_server`` computes
the same environment before a stage starts, to choose (or start) a stage server whose
libraries were imported under it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from governance.offline import OFFLINE_ENV as LIBRARY_OFFLINE_ENV

# Nothing in the pipeline may reach the network: hub downloads, telemetry (Hugging Face's,
# MLflow's, DVC's) and tldextract's suffix-list fetch are governance.offline's one list.
OFFLINE_ENV = {
    **LIBRARY_OFFLINE_ENV,
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "DISABLE_MLFLOW_INTEGRATION": "FALSE",
    "TOKENIZERS_PARALLELISM": "false",
    # Idle OpenMP threads sleep instead of spinning: on a shared 2-core box spinning threads
    # made train_sft 5x slower (100 s vs 20 s with another process on the second core). Measured
    # (tiny MLP, 1500 steps, load average 20 on 2 cores): 2 threads ACTIVE 309 s, 1 thread 15-19 s,
    # 2 threads PASSIVE 6-10 s.
    "OMP_WAIT_POLICY": "PASSIVE",
}


def machine_threads(environ: Mapping[str, str] = os.environ) -> int:
    """Intra-op threads for one process: the CPUs it may run on, shared by the processes of its node.

    ``accelerate launch`` starts ``LOCAL_WORLD_SIZE`` processes per machine; each gets its share.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = environ.get("LOCAL_WORLD_SIZE", "1")
    return max(1, cpus // (int(local) if local.isdigit() and int(local) > 0 else 1))


def caller_chose_threads(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether whoever started the stage set ``OMP_NUM_THREADS``.

    ``accelerate launch`` exports ``OMP_NUM_THREADS=1`` to its workers when its own caller
    set none (its default outside ``use_cpu`` configs), which would pin every train_* stage
    to one core. Under the launcher (its ``ACCELERATE_DYNAMO_BACKEND`` is in the environment)
    the caller's choice is therefore read from the launcher's starting environment
    (``/proc/<parent>/environ``); where that cannot be read, the value is taken as chosen.
    """
    if "OMP_NUM_THREADS" not in environ:
        return False
    if "ACCELERATE_DYNAMO_BACKEND" not in environ:
        return True
    try:
        launcher_env = Path(f"/proc/{os.getppid()}/environ").read_bytes().split(b"\0")
    except OSError:
        return True
    return any(entry.startswith(b"OMP_NUM_THREADS=") for entry in launcher_env)


#: Where DVC runs an experiment outside the workspace: ``<project>/.dvc/tmp/exps/standalone/<tmpdir>``
#: (``dvc exp run --temp``) or ``<project>/.dvc/tmp/exps/<tmpdir>`` (queued experiments): DVC 3's
#: ``EXEC_TMP_DIR`` under ``repo.tmp_dir``.
DVC_TEMP_EXPERIMENT_PARENT = (".dvc", "tmp", "exps")


def project_store(cwd: Path) -> str | None:
    """The embedded MLflow store of the project an experiment runs for, when ``cwd`` is DVC's scratch copy.

    ``sqlite:///mlflow.db`` is relative: in the scratch copy of ``dvc exp run --temp`` (and of queued
    experiments) it would name a new, empty registry and trail, deleted with the copy, where the gate
    decisions that DVC restores from its run cache were never recorded. The experiment belongs in the
    project's registry and trail, as one run in the workspace does.
    """
    parts = cwd.resolve().parts
    width = len(DVC_TEMP_EXPERIMENT_PARENT)
    for start in range(1, len(parts) - width):  # something below exps/: the scratch copy, or a folder in it
        if parts[start : start + width] == DVC_TEMP_EXPERIMENT_PARENT:
            return f"sqlite:///{Path(*parts[:start]) / 'mlflow.db'}"
    return None


def stage_environ(environ: Mapping[str, str], cwd: Path | None = None) -> dict[str, str]:
    """``environ`` as a stage process sets it for itself: the offline settings, threads
    from the machine unless the caller set them (an explicit ``OMP_NUM_THREADS`` wins), and in
    DVC's scratch copy of an experiment the project's embedded store (:func:`project_store`)
    unless ``MLFLOW_TRACKING_URI`` is set."""
    env = dict(environ)
    for key, value in OFFLINE_ENV.items():
        env.setdefault(key, value)
    if not caller_chose_threads(env):
        env["OMP_NUM_THREADS"] = str(machine_threads(env))
    if not env.get("MLFLOW_TRACKING_URI") and (store := project_store(cwd or Path.cwd())):
        env["MLFLOW_TRACKING_URI"] = store
    return env
