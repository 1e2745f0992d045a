"""What each speed mechanism saves on real stages: every one switched off in turn, side by side.

    python benchmarks/mechanisms.py [--repeats 3] [--stages prepare_sft,pii_scan_sft,...] [--workdir DIR]

The mechanism left, with its off-switch:

* the stage server (``pipelines/_stage_server.py``): stages forked from a warm process that
  has imported torch, transformers, TRL, MLflow... — ``GOVERN_STAGE_SERVER=off``.

Measured with this script and removed because they did not pay (docs/explanation/performance.md
keeps the figures): the run process that owned a stage's MLflow run (``GOVERN_RUN_PROCESS=off``),
optional backends left out through ``sys.modules`` (``GOVERN_SKIP_BACKENDS=off``) and the
garbage-collector settings of stage processes (``GOVERN_STAGE_GC=off``). To measure a new
mechanism, give it an off-switch and a line in :data:`VARIANTS`.

In a scratch copy of the checkout's last commit (``git archive HEAD`` as a
new git repo: commit what you measure) the chain up to the chosen stages is
reproduced once, untimed. Then, ``--repeats`` times, every stage is re-run with
``dvc repro -f -s STAGE`` under "all on" (the default) and under each
mechanism switched off, the variants' order rotated every round (drift on a
shared machine hits all alike). Stage servers get a private runtime
directory and a long idle timeout, so "all on" always meets a warm one, as
stages of one ``dvc repro`` do. Printed: each variant's median wall seconds
per stage, its difference from "all on" (the mechanism's saving) and that
difference as a share of the stage.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dag_latency import (  # noqa: E402
    STAGE_SERVER_ENV,
    children_cpu,
    environment,
    load,
    servers_cpu,
    stage_servers,
)

REPO = Path(__file__).resolve().parents[1]

#: Variant name -> (environment it sets, what the mechanism does).
VARIANTS: dict[str, tuple[dict[str, str], str]] = {
    "all on": ({}, "the default"),
    "stage server": ({"GOVERN_STAGE_SERVER": "off"}, "stages forked from a warm pre-importing server"),
}

#: Cheap stages of the default DAG (one each of prepare, PII gate, validation, evaluation) and one training stage.
DEFAULT_STAGES = ("prepare_sft", "pii_scan_sft", "validate_sft", "evaluate_sft", "train_sft")


def committed_copy(dest: Path) -> Path:
    """The checkout's last commit (``git archive HEAD``) as a new git repo: others' unfinished edits stay out."""
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "benchmark copy"],
    ):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    return dest


def run_stage(work: Path, stage: str, extra: dict[str, str], run_dir: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of ``dvc repro -f -s STAGE`` with ``extra`` in the environment; exits on failure.

    CPU is user + system of DVC, the stage and its processes, and of the stage servers (a stage a
    server forks is the server's child, not DVC's): less moved by other jobs than wall time.
    """
    cpu, server_cpu, started = children_cpu(), servers_cpu(str(run_dir)), time.perf_counter()
    done = subprocess.run(
        ["dvc", "repro", "-f", "-s", stage], cwd=work, env={**environment(), **extra}, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"mechanisms: {stage} failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    return seconds, children_cpu() - cpu + max(servers_cpu(str(run_dir)) - server_cpu, 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stages", default=",".join(DEFAULT_STAGES))
    parser.add_argument("--workdir", type=Path, help="keep the scratch copy here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="write the measurements here too")
    args = parser.parse_args(argv)
    stages = [s for s in args.stages.split(",") if s]
    root = args.workdir or Path(tempfile.mkdtemp(prefix="mechanisms-"))
    work, run_dir = root / "repo", root / "run"
    work.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(mode=0o700, exist_ok=True)
    STAGE_SERVER_ENV.update(XDG_RUNTIME_DIR=str(run_dir), GOVERN_STAGE_SERVER_IDLE_SECONDS="1800")
    if not (work / "dvc.yaml").is_file():  # a kept --workdir is reused as it is
        committed_copy(work)
    print(f"scratch copy: {work}; {load()}", flush=True)  # noqa: T201
    started = time.perf_counter()
    done = subprocess.run(["dvc", "repro", *stages], cwd=work, env=environment(), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"mechanisms: dvc repro {' '.join(stages)} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    print(f"chain reproduced in {time.perf_counter() - started:.0f} s (untimed for the table)", flush=True)  # noqa: T201
    names = list(VARIANTS)
    times: dict[str, dict[str, dict[str, list[float]]]] = {
        stage: {name: {"wall": [], "cpu": []} for name in names} for stage in stages
    }
    try:
        for round_ in range(args.repeats):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for stage in stages:
                for name in order:
                    wall, cpu = run_stage(work, stage, VARIANTS[name][0], run_dir)
                    times[stage][name]["wall"].append(wall)
                    times[stage][name]["cpu"].append(cpu)
                    print(  # noqa: T201
                        f"round {round_ + 1} {stage:<14} {name + ' off' if name != 'all on' else name:<22} "
                        f"{wall:6.1f} s wall {cpu:6.1f} s CPU  {load()}",
                        flush=True,
                    )
    finally:
        for pid in stage_servers(str(run_dir)):
            subprocess.run(["kill", str(pid)], check=False)
    table: dict[str, dict] = {}
    for measure in ("wall", "cpu"):
        print(f"\nmedian {measure} seconds of {args.repeats}; saving = (mechanism off) - (all on)\n")  # noqa: T201
        print(f"{'stage':<14} {'all on':>7}  " + "  ".join(f"{n + ' off':>26}" for n in names[1:]))  # noqa: T201
        for stage in stages:
            base = statistics.median(times[stage]["all on"][measure])
            cells = []
            row = table.setdefault(stage, {}).setdefault(measure, {"all on": base})
            for name in names[1:]:
                off = statistics.median(times[stage][name][measure])
                saving = off - base
                row[name] = {"off": off, "saving": saving, "percent": 100 * saving / off if off else 0.0}
                cells.append(f"{off:6.1f} ({saving:+5.1f} s {100 * saving / off if off else 0:+4.0f}%)")
            print(f"{stage:<14} {base:7.1f}  " + "  ".join(f"{c:>26}" for c in cells))  # noqa: T201
    if args.json:
        args.json.write_text(json.dumps({"stages": table, "raw": times, "load": load()}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
