"""The train_* stages' launcher: ``accelerate launch``, without importing torch for one local process.

    python -m pipelines._launch --quiet --config_file configs/accelerate/single.yaml --num_processes 1 \\
        -m pipelines.train_sft

accelerate's launcher (``python -m accelerate.commands.launch``) imports accelerate and so torch
(~1.7 CPU s) before it starts the stage, which then imports torch itself. For one process on one
machine with no distributed backend (``distributed_type: "NO"``, accelerate's *simple launcher*)
all the launcher does is start ``python -m <module>`` with a few environment variables. This
module sets exactly those (``tests/pipelines/test_launch.py`` compares them with what accelerate's
own launcher gives the stage) and starts the stage the same way, as a child process whose failure
exits 1 (``--quiet``). Any other configuration, config key or option is handed to accelerate's
launcher unchanged, so multi-process, DeepSpeed and FSDP runs are accelerate's own.

The config file is read once: its bytes go to a private copy (a new 0700 folder, deleted when the run
ends) that both launchers read, and their SHA-256 to the stage (``GOVERNED_ACCELERATE_CONFIG_SHA256``),
which records it as the config that ran and refuses when the configured file no longer has it. A config
swapped just while the launcher reads it, and back, would otherwise run under one config while the
lineage records the other's hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ACCELERATE_LAUNCH = [sys.executable, "-m", "accelerate.commands.launch"]
#: The SHA-256 of the accelerate config bytes the launch ran with, in the stage's environment
CONFIG_SHA256_ENV = "GOVERNED_ACCELERATE_CONFIG_SHA256"

#: Config keys the simple case may carry. Any other key (dynamo_config, gpu_ids, fsdp/deepspeed
#: settings, ...) may change what accelerate does: accelerate's launcher then runs.
SIMPLE_CONFIG_KEYS = frozenset(
    {
        "compute_environment",
        "debug",
        "distributed_type",
        "downcast_bf16",  # TPU only
        "machine_rank",
        "main_training_function",  # notebook launcher only
        "mixed_precision",
        "num_machines",
        "num_processes",
        "rdzv_backend",  # multi-machine only
        "same_network",  # multi-machine only
        "tpu_env",
        "tpu_use_cluster",
        "tpu_use_sudo",
        "use_cpu",
    }
)


def simple_launch(argv: list[str], environ: dict[str, str]) -> tuple[list[str], dict[str, str]] | None:
    """The stage's command and environment as accelerate's simple launcher builds them, or None.

    None unless ``argv`` is exactly ``--quiet --config_file F --num_processes 1 -m MODULE [ARGS]``
    and ``F`` asks for one local process with no distributed backend, no mixed-precision
    backend beyond ``no``/``fp16``/``bf16``, no CPU mode (accelerate sizes threads from physical
    cores there) and no debug mode.
    """
    if "-m" not in argv:
        return None
    split = argv.index("-m")
    options, (module, *args) = argv[:split], argv[split + 1 :] or [""]
    if not module or len(options) != 5 or options[0] != "--quiet":
        return None
    named = dict(zip(options[1::2], options[2::2], strict=True))
    if set(named) != {"--config_file", "--num_processes"} or named["--num_processes"] != "1":
        return None
    config = _read_config(named["--config_file"])
    if (
        config is None
        or not set(config) <= SIMPLE_CONFIG_KEYS
        or config.get("compute_environment", "LOCAL_MACHINE") != "LOCAL_MACHINE"
        or config.get("distributed_type") != "NO"
        or config.get("num_machines", 1) != 1
        or config.get("num_processes", -1) not in (-1, 1)
        or config.get("use_cpu", False) is not False
        or config.get("debug", False) is not False
        or config.get("tpu_use_cluster", False) is not False
        or str(config.get("mixed_precision", "no")).lower() not in ("no", "fp16", "bf16")
    ):
        return None
    threads = environ.get("OMP_NUM_THREADS", "1")
    if not threads.isdigit():
        return None  # accelerate's reading of it (int(), or its default when negative) decides
    env = dict(environ)
    env.update(
        {
            "ACCELERATE_USE_CPU": "False",
            "ACCELERATE_MIXED_PRECISION": str(config.get("mixed_precision", "no")).lower(),
            "ACCELERATE_DYNAMO_BACKEND": "NO",
            "ACCELERATE_DYNAMO_MODE": "default",
            "ACCELERATE_DYNAMO_USE_FULLGRAPH": "False",
            "ACCELERATE_DYNAMO_USE_DYNAMIC": "False",
            "ACCELERATE_DYNAMO_USE_REGIONAL_COMPILATION": "False",
            # accelerate exports the caller's OMP_NUM_THREADS, or 1 (see pipelines._env.caller_chose_threads)
            "OMP_NUM_THREADS": str(int(threads)),
        }
    )
    return [sys.executable, "-m", module, *args], env


def _read_config(path: str) -> dict[str, Any] | None:
    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return None  # accelerate's launcher reports it
    return config if isinstance(config, dict) else None


def missing_engine(argv: list[str]) -> str | None:
    """One line naming the config file and the package its engine needs but this machine lacks, or None.

    accelerate's launcher raises a traceback for a DeepSpeed config without the ``deepspeed`` package;
    the user's mistake (a ZeRO config on a machine without it) deserves one line naming the file and the fix.
    """
    import importlib.util

    if "--config_file" not in argv[: argv.index("-m") if "-m" in argv else len(argv)]:
        return None
    path = argv[argv.index("--config_file") + 1]
    config = _read_config(path) or {}
    if config.get("distributed_type") == "DEEPSPEED" and importlib.util.find_spec("deepspeed") is None:
        return (
            f"ConfigError: {path}: distributed_type DEEPSPEED needs the deepspeed package, which is not "
            "installed: pip install deepspeed on the GPU machine (docs/how-to/scaling-out.md), or choose "
            "another launch.config_file in params.yaml"
        )
    return None


@contextlib.contextmanager
def config_read_once(argv: list[str]) -> Iterator[tuple[list[str], str | None]]:
    """``argv`` with ``--config_file`` pointed at a private copy of the config's bytes, read once, and their
    SHA-256 (``None``, argv unchanged, where there is no readable config: the launcher reports it)."""
    end = argv.index("-m") if "-m" in argv else len(argv)
    if "--config_file" not in argv[:end] or argv.index("--config_file") + 1 >= end:
        yield argv, None
        return
    at = argv.index("--config_file") + 1
    try:
        data = Path(argv[at]).read_bytes()
    except OSError:
        yield argv, None
        return
    with tempfile.TemporaryDirectory(prefix="accelerate-config-") as folder:  # mkdtemp: only its owner opens it
        copy = Path(folder) / Path(argv[at]).name
        copy.write_bytes(data)
        yield [*argv[:at], str(copy), *argv[at + 1 :]], hashlib.sha256(data).hexdigest()


def _run(cmd: list[str], env: dict[str, str]) -> int:
    """Start ``cmd`` as a child and wait for it (a Ctrl-C reaches both; the child ends its run itself)."""
    process = subprocess.Popen(cmd, env=env)
    try:
        return process.wait()
    except KeyboardInterrupt:
        return process.wait()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    problem = missing_engine(argv)
    if problem is not None:
        module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else "launch"
        print(f"{module.rsplit('.', 1)[-1]}: {problem}", file=sys.stderr)  # noqa: T201 (the stage's one line)
        return 1
    with config_read_once(argv) as (launched, digest):
        environ = dict(os.environ)
        if digest is not None:
            environ[CONFIG_SHA256_ENV] = digest
        simple = simple_launch(launched, environ)
        if simple is None:
            return _run([*ACCELERATE_LAUNCH, *launched], environ)
        # As accelerate's simple launcher: the stage is a child of this process; with --quiet a failure exits 1
        cmd, env = simple
        return 0 if _run(cmd, env) == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
