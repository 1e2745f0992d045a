"""What the pipeline costs when there is nothing (or everything) to do: no-op ``dvc repro`` vs its floors.

    python benchmarks/dag_latency.py [--repeats 5] [--full] [--workdir DIR] [--json out.json]

In a scratch copy of the checkout (the tracked files as a new git repo, as a
clone gives) the default DAG is reproduced once — timed and broken down per
stage with ``--full``, untimed otherwise. Then each of these is run
``--repeats`` times, interleaved (drift on a shared machine hits all alike),
and the medians are printed side by side:

* ``python -c pass`` — the interpreter's own start-up, the floor of any stage;
* ``dvc --version`` — DVC's import and CLI start-up;
* ``dvc status`` in an empty DVC repository — opening a repo with no stages;
* ``dvc status`` here — checking every stage of the pipeline (no lock written);
* ``dvc repro`` here, with nothing changed — the figure the goal is about (≤ 3 s).

``--full`` prints the full DAG's wall time and, per stage, the wall time from
DVC's "Running stage" line to the next one (the stage's process plus DVC's
hashing of its deps and outs) next to the time between its OpenLineage START
and COMPLETE events (the stage's own work after its imports). The machine's
load average is printed with every figure: on a shared machine absolute
seconds mean little without it.

Measured 2026-11-22, 2 CPU cores shared with three other jobs (load average 4-10), 39 stages,
medians of 5 (CPU seconds are user + system of the command and its children)::

                                    wall       CPU
    python -c pass                0.10 s    0.03 s
    dvc --version                 0.54 s    0.17 s
    dvc status (no stages)        1.64 s    0.52 s
    dvc status (pipeline)         5.73 s    1.82 s
    dvc repro (no-op)             7.90 s    2.48 s   before: 5.8-6.4 s CPU (DVC's YAML in pure Python)
    full DAG                       921 s     327 s   before: 869 s wall, 383 s CPU (load 4-5)

On an idle machine a no-op repro's wall time is about its CPU time (DVC runs in one thread):
~2.5 s against the goal of 3 s (issue 15: 5.0 s before).

Measured 2026-11-23 on an idle 2-core machine (load average ~1, nothing else running), each
checkout's own copy of this script, ``--full``:

                                    wall       CPU
    full DAG, fd08b9d (11-23 01:47)  524 s     543 s   hyperscan compiled per gate stage
    full DAG, 8c342b7                 335 s     380 s   run process, GC, prefilter cache
    full DAG, OpenLineage w/o client  334 s     382 s   light stages ~0.3-0.5 s faster each
    python -c pass                  0.05 s    0.05 s
    dvc status (pipeline)           2.44 s    2.41 s
    dvc repro (no-op)               3.45 s    3.38 s   goal ≤ 3 s: not met on this machine

Where the 335 s went (before issue 15's speed work): per stage, a fresh interpreter importing
its libraries is most of the fixed cost (an evaluate stage: ~9 of its ~12 s are importing torch,
transformers and MLflow and opening the SQLite store; a validate stage: ~4 of ~6 s are importing
great-expectations), and DVC rewrites dvc.lock after every stage with ruamel's round-trip
(pure-Python) loader and dumper: 0.97 s + 0.54 s of CPU for the full 3.4k-line lock, so
~30 s over a fresh run whose lock grows from empty.

Issue 15's speed work, measured 2026-11-23 14:55-15:08 on one 2-CPU machine shared with two other
engineers' jobs (load average 3 at the start, 5-6.5 most of the time). Wall seconds of the same
code swing by 15% between runs here, CPU seconds (DVC and every process of a stage, per stage
from ``/proc``) by 5-10%, so before (9bd5e06) and after (branch ``speed``) were started together,
side by side, ``--full --repeats 5``: both saw the same load (and each slowed the other)::

                                     before            after
                                   wall     CPU     wall     CPU
    full DAG, 39 stages             737     262      615     244
      train_* (7)                 290.0   111.9    212.4    94.9   launcher: -1.8 CPU s a stage
      evaluate_* (7)              184.6    63.5    153.9    63.5   MLflow in the run process
      register_* (7)               82.6    25.6     74.9    24.9
      validate_* (5)               69.8    22.1     59.3    20.5   GX without pyspark/SQLAlchemy
      pii_scan_* (6)               56.2    18.7     57.3    19.4   (not changed here)
      prepare_* (5)                22.3     6.3     17.5     5.9
      base_model                   11.2     4.7     11.3     4.7
      report                       17.1     8.1     25.7     8.7
    python -c pass                 0.05    0.03     0.11    0.03
    dvc status (pipeline)          3.40    1.74     7.01    1.75   (the after side measured at
    dvc repro (no-op)              4.96    2.36     9.99    2.43    load 6, before at load 6.5)

One at a time the same afternoon (load 3-4): before 290 s wall / 228 s CPU; after without the
launcher change 295 s / 220 s and 338 s / 238 s (load above 4 from half-way). The no-op, which this work does not touch:
3.2-3.8 s wall, 2.13-2.17 s CPU (``dvc status`` 2.4-2.5 s, 1.55-1.6 s CPU).

Integrated main (speed, PII and fixture-learning branches together), 2026-11-23 15:30-15:53, on
this session's machine with nothing else running (load average ~1; the fixture now trains SFT
for 120 steps at batch 16 and GRPO/RLOO for 40/24 steps, ~41 CPU s more training than above):
a fresh clone's ``dvc repro`` of 698ad45 (``/usr/bin/time``), and the no-op there, 5 runs::

                                    wall       CPU
    full DAG, 39 stages            227.6 s    276.5 s   goal ≤ 300 s: met
    dvc status (pipeline)          1.58-1.77  1.54-1.75
    dvc repro (no-op)              2.35-2.71  2.31-2.49   median 2.52 s; goal ≤ 3 s: met

What changed:

* ``train_*``: ``pipelines._launch`` starts a one-process stage (``configs/accelerate/single.yaml``)
  with the command and environment accelerate's simple launcher builds (a test compares the
  two) without importing torch first: ~0.1 instead of ~1.9 CPU s before each training stage
  starts: ~12 s of wall over the DAG on an idle machine (estimated from the CPU; it runs
  before the stage, on one core), 78 s less measured here under load 5-6. Any other config or
  option still runs accelerate's launcher.
* ``evaluate_*``: MLflow moved to the run process, as training's (spawned first; the training
  run's context, the stage's run and the training run's ``heldout.*`` metrics and files go
  through it). CPU is unchanged (the run process re-imports pandas and numpy the stage had
  shared, offset by leaving scipy, and pandas where unused, out of the stage); the gain is
  wall where the second core is free (expected ~1-1.5 s a stage on an idle machine, not
  measured: none was idle); none measurable one at a time at load 3-4.
* ``validate_*`` (local engine): great-expectations' pyspark and SQLAlchemy left out, -0.3 to
  -0.7 CPU s. ``register_*`` and the run process: MLflow's pyspark and scipy left out (~0.15 s)
  (the run process and the skipped backends were removed later: they did not pay, see
  ``benchmarks/mechanisms.py`` and docs/explanation/performance.md);
  ``dvc.lock`` parsed once per process instead of once per stage asked for.

What is left (CPU per stage after): DVC's own work around each stage (hash deps and outs,
rewrite ``dvc.lock``), ~0.5-0.9 s, as a ``prepare_*`` stage shows (0.9-1.2 s CPU for ~0.4 s of
its own imports); the imports each stage needs (torch and transformers in 15 stages, ~3 s;
great-expectations ~2.5 s in 5; MLflow ~1.5 s in each ``register_*``, which creates the
version through ``MlflowClient``); the report's 14 matplotlib charts (~4 s). Shrinking the lock
by tracking policy files as file deps instead of their values would save ~5 s and lose DVC's
per-key invalidation, so the lock keeps the values; splitting the pipeline into several
dvc.yaml files (one lock each) or one process for several stages are the larger levers; the
second is now the stage server (below). The no-op's ~2.1 s CPU is DVC's: 53 params-file
reads (~0.45 s), interpolating 225 ``${...}`` in dvc.yaml twice, and reading the lock; ``dvc status`` alone is ~1.6 s.

The stage server (``pipelines/_stage_server.py``; ``--stage-server off`` turns it off), measured
2026-11-24 on an idle 2-core machine (load ~1), fresh copies one after the other, ``--full``.
CPU seconds include the stage servers' (their preloading and every stage they forked), read
from ``/proc`` (a server is not a child of DVC)::

                                  server off        server on
                                 wall     CPU     wall     CPU
    full DAG, 39 stages         245.9     316    172.3     229   (176 CPU s of it in servers)
      validate_* (per stage)    4.6-5.0          1.5-1.9
      register_* (per stage)    3.5-4.1          1.7-2.1
      evaluate_* (per stage)    6.5-8.1          3.7-4.4
    dvc repro (no-op)            2.77    2.73     2.95    2.90   (not touched: no stage runs)

The same day, before the server, on the same machine: 269.4 s (the UTF-8 prefilter database
compiled eagerly, ~10 s); 254.8 s after it was made lazy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_NOOP_SECONDS = 3.0
GOAL_FULL_SECONDS = 300.0


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GOVERN_"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="",
        DO_NOT_TRACK="1",
        DVC_NO_ANALYTICS="1",
        GOVERN_USER="pipeline-bot",
    )
    env.update(STAGE_SERVER_ENV)
    return env


#: ``GOVERN_STAGE_SERVER`` and a private ``XDG_RUNTIME_DIR`` (this run's own stage servers, started
#: cold as on a fresh machine), set by ``main``.
STAGE_SERVER_ENV: dict[str, str] = {}


def stage_servers(run_dir: str) -> list[int]:
    """Pids of the stage servers whose sockets are under ``run_dir`` (``pipelines._stage_server``)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(b"_stage_server.py") for part in cmdline) and any(
            part.startswith(run_dir.encode()) for part in cmdline
        ):
            pids.append(int(proc.name))
    return pids


def adopt_orphans() -> None:
    """Become the reaper of orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``): a stage server
    (started by a stage that then exits) becomes this process's child, so once it exits and is
    reaped (:func:`reap_orphans`) its CPU time counts in ``RUSAGE_CHILDREN``."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def reap_orphans() -> None:
    """Reap adopted descendants that have exited (call only when no ``subprocess`` child is running)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def servers_cpu(run_dir: str | None = None) -> float:
    """CPU seconds of this run's stage servers (``run_dir``: their ``XDG_RUNTIME_DIR``, default this
    run's): their preloading and the stages they forked and reaped."""
    run_dir = run_dir or STAGE_SERVER_ENV.get("XDG_RUNTIME_DIR")
    if not run_dir:
        return 0.0
    return sum(cpu for cpu in map(process_cpu, stage_servers(run_dir)) if cpu == cpu)


def fresh_copy(dest: Path) -> Path:
    """The tracked files of the checkout, as a new git repo (what a clone gives)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in filter(None, files.split("\0")):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "benchmark copy"],
    ):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    return dest


def empty_dvc_repo(dest: Path) -> Path:
    """A git + DVC repository with no stages: the floor of ``dvc status``."""
    dest.mkdir(parents=True, exist_ok=True)
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"]):
        subprocess.run(cmd, cwd=dest, env=environment(), check=True, capture_output=True)
    return dest


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.2f}/{five:.2f} (1/5 min), {os.cpu_count()} CPUs"


def children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes so far: barely moved by other jobs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], cwd: Path, what: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one command, or exit with its error."""
    cpu, start = children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=environment(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"dag_latency: {what} failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    return seconds, children_cpu() - cpu


def process_cpu(pid: int) -> float:
    """CPU seconds of a running process and of its children it has waited for (Linux ``/proc``), or NaN."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    # utime, stime, cutime, cstime: fields 14-17 of proc(5), counted from the state field (3)
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def full_repro(work: Path) -> dict:
    """``dvc repro`` from nothing, with the wall and CPU time of each stage from DVC's own progress lines."""
    cpu, start = children_cpu(), time.perf_counter()
    marks: list[tuple[str, float, float]] = []
    lines: list[str] = []
    with subprocess.Popen(
        ["dvc", "repro"], cwd=work, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Running stage '"):
                marks.append((line.split("'")[1], time.perf_counter() - start, process_cpu(proc.pid) + servers_cpu()))
    total = time.perf_counter() - start
    server_cpu = servers_cpu()
    total_cpu = children_cpu() - cpu + server_cpu
    if proc.returncode != 0:
        raise SystemExit(f"dag_latency: dvc repro failed (exit {proc.returncode}):\n{''.join(lines)[-3000:]}")
    stages = {}
    for index, (stage, began, began_cpu) in enumerate(marks):
        ended, ended_cpu = marks[index + 1][1:] if index + 1 < len(marks) else (total, total_cpu)
        # DVC's CPU (its hashing, the lock rewrite) plus the stage's processes, from this stage's line to the next
        stages[stage] = {"wall": round(ended - began, 2), "cpu": round(ended_cpu - began_cpu, 2)}
    for stage, seconds in lineage_seconds(work / "openlineage" / "events.jsonl").items():
        stages.setdefault(stage, {})["in_stage"] = round(seconds, 2)
    return {
        "seconds": round(total, 2),
        "cpu_seconds": round(total_cpu, 1),
        "stage_servers_cpu_seconds": round(server_cpu, 1),
        "load": load(),
        "stages": stages,
    }


def lineage_seconds(events: Path) -> dict[str, float]:
    """Per stage: its last START → COMPLETE interval from the OpenLineage events file."""
    starts: dict[str, datetime] = {}
    out: dict[str, float] = {}
    if not events.is_file():
        return out
    for line in events.read_text().splitlines():
        event = json.loads(line)
        name, at = event["job"]["name"], datetime.fromisoformat(event["eventTime"])
        if event["eventType"] == "START":
            starts[name] = at
        elif event["eventType"] == "COMPLETE" and name in starts:
            out[name] = (at - starts[name]).total_seconds()
    return out


def floors_and_noop(work: Path, empty: Path, repeats: int) -> list[dict]:
    python = sys.executable
    cases = [
        ("python -c pass", [python, "-c", "pass"], work),
        ("dvc --version", ["dvc", "--version"], work),
        ("dvc status (no stages)", ["dvc", "status"], empty),
        ("dvc status (pipeline)", ["dvc", "status"], work),
        ("dvc repro (no-op)", ["dvc", "repro"], work),
    ]
    times: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in cases}
    loads = []
    for _ in range(repeats):
        for name, cmd, cwd in cases:
            times[name].append(timed(cmd, cwd, name))
        loads.append(os.getloadavg()[0])
    return [
        {
            "what": name,
            "median_seconds": round(statistics.median(wall for wall, _ in values), 3),
            "median_cpu_seconds": round(statistics.median(cpu for _, cpu in values), 3),
            "runs": [round(wall, 3) for wall, _ in values],
            "load_1min": [round(v, 2) for v in loads],
        }
        for name, values in times.items()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command; medians are reported")
    parser.add_argument("--full", action="store_true", help="also time the full DAG from nothing, per stage")
    parser.add_argument("--workdir", type=Path, help="scratch directory, kept and reused; default a temporary one")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--stage-server", choices=("on", "off"), default="on", help="stages forked from a warm server (the default)"
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dag-latency-") as tmp:
        run_dir = Path(tmp) / "run"
        run_dir.mkdir(mode=0o700)
        STAGE_SERVER_ENV.update(GOVERN_STAGE_SERVER=args.stage_server, XDG_RUNTIME_DIR=str(run_dir))
        work = args.workdir or Path(tmp) / "repo"
        fresh = not (work / ".git").is_dir()
        if fresh:
            work.mkdir(parents=True, exist_ok=True)
            fresh_copy(work)
        result: dict = {"repeats": args.repeats}
        if args.full:
            if not fresh:
                raise SystemExit(f"dag_latency: --full needs a fresh copy; {work} exists (drop --workdir or remove it)")
            print(f"full dvc repro in {work} ({load()}) ...", file=sys.stderr)  # noqa: T201
            result["full"] = full_repro(work)
        else:
            print(f"dvc repro in {work}, untimed ...", file=sys.stderr)  # noqa: T201
            timed(["dvc", "repro"], work, "dvc repro")
        result["noop"] = floors_and_noop(work, empty_dvc_repo(Path(tmp) / "empty"), args.repeats)
        result["load_end"] = load()
        result["stage_server"] = args.stage_server
        for pid in stage_servers(str(run_dir)):  # none left behind: they would idle for a minute
            os.kill(pid, signal.SIGTERM)

    stages = (result.get("full") or {}).get("stages") or {}
    if stages:
        print(f"{'stage':24} {'wall s':>7} {'CPU s':>7} {'in-stage s':>10}")  # noqa: T201
        for stage, row in stages.items():
            print(  # noqa: T201
                f"{stage:24} {row.get('wall', float('nan')):7.1f} {row.get('cpu', float('nan')):7.1f}"
                f" {row.get('in_stage', float('nan')):10.1f}"
            )
        full = result["full"]
        print(  # noqa: T201
            f"full DAG: {full['seconds']:.1f} s wall, {full['cpu_seconds']:.0f} s CPU"
            f" ({full['stage_servers_cpu_seconds']:.0f} s of it in stage servers), for {len(stages)} stages "
            f"(stage server {result['stage_server']}) "
            f"(goal ≤ {GOAL_FULL_SECONDS:.0f} s; "
            f"{full['load']} at the end)"
        )
    print(f"median of {args.repeats}, interleaved; {result['load_end']} at the end")  # noqa: T201
    print(f"{'':24} {'wall':>9} {'CPU':>13}")  # noqa: T201
    for row in result["noop"]:
        loads = ", ".join(f"{v:.1f}" for v in row["load_1min"])
        goal = f"   goal ≤ {GOAL_NOOP_SECONDS:.0f} s" if row["what"] == "dvc repro (no-op)" else ""
        print(  # noqa: T201
            f"{row['what']:24} {row['median_seconds']:7.2f} s wall {row['median_cpu_seconds']:6.2f} s CPU"
            f"   (load {loads}){goal}"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
