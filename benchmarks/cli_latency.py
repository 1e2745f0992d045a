"""`govern` latency on the embedded store, each figure beside its floors, measured side by side.

    python benchmarks/cli_latency.py                 # 3 models x 3 versions, median of 5
    python benchmarks/cli_latency.py --repeat 9

Builds a private embedded store (SQLite ``mlflow.db`` and ``audit.db`` in a
temp folder) with a few registered versions, then times, interleaved round by
round so a busy machine slows every figure alike:

* floors: ``python -c pass`` (interpreter start-up), ``import mlflow`` (what
  any command that reads the registry pays), and ``govern --help`` with every
  command module imported (what each command paid before commands imported
  only their own module);
* ``governance.registry_view.read_versions()`` (every version, tags and
  aliases in one pass without MLflow: what a listing command can adopt);
* ``govern models``, ``govern show NAME 1``, ``govern history NAME``.

Prints medians in seconds and each command's ratio to the ``import mlflow``
floor, with the load average. Goal (issue 15): models/show/approve <= 1.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SETUP = """
import sys
from governance import registry
for m in range({models}):
    name = f"bench-{{m}}"
    for v in range({versions}):
        with registry.stage_run("bench", f"train_{{m}}") as run:
            import mlflow
            mlflow.log_text("weights", "model/weights.txt")
        registry.register_version(name, run_id=run.info.run_id, artifact_path="model",
                                  lineage_key=f"{{m}}-{{v}}", tags={{"method": "sft"}})
"""


def _time(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[-400:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="cli-latency-") as tmp:
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db",
            "GOVERN_AUDIT_URL": f"sqlite:///{tmp}/audit.db",
            "HF_HUB_OFFLINE": "1",
            "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
        }
        # Store with models x versions registered versions
        os.chdir(tmp)  # mlartifacts/ lands in the temp folder
        setup = SETUP.format(models=args.models, versions=args.versions)
        subprocess.run([sys.executable, "-c", setup], cwd=tmp, env={**env, "PYTHONPATH": str(REPO)}, check=True)
        govern = [sys.executable, "-c", "import sys; from governance.cli import main; sys.exit(main())"]
        figures = {
            "python start-up (floor)": [sys.executable, "-c", "pass"],
            "import mlflow (floor)": [sys.executable, "-c", "import mlflow"],
            "every govern module imported": [
                sys.executable,
                "-c",
                "from governance.cli import build_parser; build_parser()",
            ],
            "registry_view.read_versions": [
                sys.executable,
                "-c",
                "from governance.registry_view import read_versions; read_versions()",
            ],
            "govern models": [*govern, "models"],
            "govern show bench-0 1": [*govern, "show", "bench-0", "1"],
            "govern history bench-0": [*govern, "history", "bench-0"],
        }
        times: dict[str, list[float]] = {name: [] for name in figures}
        for _ in range(args.repeat):
            for name, command in figures.items():
                times[name].append(_time(command, env))
    floor = statistics.median(times["import mlflow (floor)"])
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; medians of {args.repeat}")  # noqa: T201
    for name, values in times.items():
        median = statistics.median(values)
        goal = "  (goal <= 1.5 s)" if name.startswith("govern ") else ""
        print(f"{name:32s} {median:6.2f} s   {median / floor:5.2f}x import mlflow{goal}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
