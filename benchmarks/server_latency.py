"""`govern` latency against a real basic-auth MLflow server, without and with the auth app's credential cache.

    python benchmarks/server_latency.py                   # 3 rounds: show, approve x2, promote, report
    python benchmarks/server_latency.py --rounds 1 --no-report   # the lean smoke run

Starts two ``mlflow server --app-name basic-auth`` side by side on 127.0.0.1,
each with its own fresh PostgreSQL backend store and PostgreSQL audit trail
(``tests/server/server_support.py``, as the server tests start theirs; one
worker, as docs/how-to/team-setup.md runs it, ``--workers 0`` for MLflow's default of 4):

* **before**: ``basic_auth.ini`` without ``auth_cache_ttl_seconds`` (MLflow's
  default: every request re-checks the password hash);
* **after**: with ``auth_cache_ttl_seconds = 60``, the documented configuration.

For each, as the team doc sets a team up (untimed): accounts through the REST
API (a service account, two reviewers with EDIT, a release manager with
MANAGE), a git checkout with the shipped policies naming them and pinning the
server, a reviewed trail-signing key; then, as the service account, one pending
version per round registered the way tests/server/test_server_approvals.py does
(a run, a tiny artifact, the lineage tags, the registration in the trail) and,
unless ``--no-report``, one version built as the SFT spine records it
(tests/governance/report_support.py: real gates, evaluation, loss history) for
``govern report``. Then, round by round, before and after interleaved so a busy
machine slows both alike, each command runs as a fresh process with its user's
credentials: ``govern show``, ``govern approve`` by the first and the second
reviewer, ``govern promote`` by the release manager, ``govern report``.

Prints per command the median wall time and client CPU time (user + system of
the ``govern`` process), the server's CPU time spent on it (all its processes,
read from /proc; its idle rate is printed too), the number of HTTP requests the
command made, the median latency of one and the total spent waiting on them
(each request timed in the client from sending it to the last read of its body)
— before, after, and the ratio before/after — then the requests per command by
endpoint. Goal (issue 41): every action <= 3 s median with the documented
configuration.

Measured on the shared 2-core box (MLflow 3.17.2, uvicorn 0.54.0, other jobs
running), default run (3 rounds, about 6 minutes), wall medians before -> after:

* MLflow's default 4 workers, as team-setup.md §1 runs it (load average 3.0-3.3):
  show 1.85 -> 0.87 s, approve 7.12 -> 2.49 s (1st reviewer) and 6.93 -> 2.90 s
  (2nd), promote 9.58 -> 3.30 s, report 28.18 -> 8.25 s.
* ``--workers 1`` (load average 6.8-7.5): show 2.31 -> 0.74 s, approve 6.71 ->
  2.57 s and 8.12 -> 2.77 s, promote 11.06 -> 2.94 s, report 24.47 -> 4.17 s.

What a request costs. Before: 0.31-0.42 s median, about 0.3 s of it server CPU
(approve: 4.05 s for 12 requests; report: 18.86 s for 67): MLflow's basic-auth
app verifies the password (werkzeug's scrypt, ~70 ms CPU here) in its
before-request hook and again in each permission check, 2 to 5 times per
request (counted once with a hook on ``check_password_hash``, not by this
script). After, one worker: 11-19 ms. After, 4 workers: 31-63 ms, because
uvicorn's multi-worker listener leaves Nagle's algorithm on (uvicorn issue
#3149) and every request after the first on a kept-alive connection waits
~40 ms for the client's delayed ACK: the report's 67 requests took 3.82 s there
against 0.93 s on one worker. What was left after was the client: approve and
promote spent 1.9-2.1 s of CPU, of which ``import mlflow`` (printed as the
client floor) is 1.2-1.5 s — their tag and alias writes go through
MlflowClient, whose every write also reads the registered model first (MLflow
3 checks it is not a prompt: 3 of approve's 12 requests; the version list is
read twice, 2 more); the report spends 2.9-3.1 s of CPU, and 55 of its 67
requests are 11 artifact downloads through MLflow's ``runs:/`` URIs, five
requests each (two runs/get, a logged-models search, a listing, the file).

``--code-before REF`` compares code instead of configuration: both servers
cache credentials, the before side runs ``governance/`` as committed at REF.
The report's direct artifact downloads (the run's artifact root read once per
run, ``governance/registry.py``), measured so with ``--workers 1``, 3 rounds,
load average 10.2 -> 6.2: report 67 -> 35 requests, 3.05 -> 1.10 s waiting on
them, 15.84 -> 11.53 s wall; show, approve and promote unchanged (5, 12-14, 22).

No MLflow in the client against a server (its registry writes, run reads and
served-artifact downloads through the REST API; what a command reads twice
read once), ``--code-before da045cf``, 5 rounds, one worker, load average
6.1 -> 3.9: show 0.46 -> 0.48 s (7 -> 3 requests), approve 2.10 -> 0.63 s and
2.30 -> 0.66 s (12-14 -> 8-9), promote 2.27 -> 0.67 s (22 -> 11), report
3.20 -> 1.38 s (37 -> 22); client CPU of an action 1.8 -> 0.44 s, of the
report 2.59 -> 1.10 s. At load 9.0 -> 5.5: 0.79 -> 0.79, 3.10 -> 1.05,
3.26 -> 1.05, 3.45 -> 1.12, 4.44 -> 1.89 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # tests.server.server_support
if str(REPO / "tests" / "e2e") not in sys.path:
    sys.path.insert(0, str(REPO / "tests" / "e2e"))  # commit_reviewed, pipeline_env

from e2e_support import commit_reviewed, pipeline_env  # noqa: E402

from tests.server.server_support import MlflowServer, admin_connection, running_server  # noqa: E402

GOAL_S = 3.0
TRAINER = "svc-trainer"
REVIEWERS = ("rev-ana", "rev-ben")
RELEASER = "rel-dee"
#: The two servers: auth_cache_ttl_seconds in basic_auth.ini (None: not set, MLflow's default of no cache).
CONFIGS = {"before": None, "after": 60}
APPROVE_MODEL = "bench-approve"
#: Seconds over which the servers' idle CPU is read (a command's server CPU includes that much per second).
IDLE_WINDOW_S = 5

#: Run in the checkout as the service account (untimed): the versions the rounds approve and promote, and the
#: report's version. Prints the report version's name and number last.
SETUP = """
import sys
from pathlib import Path
sys.path[:0] = [{tests!r}, {e2e!r}]
from governance import approvals, registry

client = registry.client()
experiment = registry.ensure_experiment("server-latency")
client.create_registered_model({model!r})
for _ in range({rounds}):
    run = client.create_run(experiment)
    client.log_text(run.info.run_id, "tiny weights", "model/weights.txt")
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(
        {model!r},
        source=f"{{run.info.artifact_uri}}/model",
        run_id=run.info.run_id,
        tags={{
            "lineage.trained_by": {trainer!r},
            "lineage.registered_by": {trainer!r},
            "lineage.risk_tier": "medium",
            "lineage.gate_decisions": "passed",
        }},
    ).version
    approvals.record_registration(
        {model!r}, str(version), evidence={{"model_sha256": "ab" * 32}}, gate_status="passed", eval_status="passed"
    )
if {report}:
    from report_support import build_version
    built = build_version(Path("."), project="bench-report")
    print(built.name, built.version)
"""

#: Times every HTTP request of the process into ``BENCH_REQUEST_LOG`` (one JSON line each, written at exit:
#: method, path, status, seconds from sending the request to the last read of its response's body).
#: http.client underlies both requests (MLflow's client, the identity check) and urllib (governance's REST
#: reads), so nothing is missed; the body counts because a server can send it well after the headers.
REQUEST_HOOK = """
import atexit, http.client, json, os, time

_log = os.environ.get("BENCH_REQUEST_LOG")
_timed = []  # [method, path, status, started, last read]
_put, _get = http.client.HTTPConnection.putrequest, http.client.HTTPConnection.getresponse


def putrequest(self, method, url, *args, **kwargs):
    self._bench = [method, url.split("?")[0], 0, time.perf_counter(), None]
    return _put(self, method, url, *args, **kwargs)


def getresponse(self):
    response = _get(self)
    entry = self._bench
    entry[2], entry[4] = response.status, time.perf_counter()
    response._bench = entry
    _timed.append(entry)
    return response


def _reading(read):
    def timed_read(self, *args, **kwargs):
        try:
            return read(self, *args, **kwargs)
        finally:
            if getattr(self, "_bench", None) is not None:
                self._bench[4] = time.perf_counter()

    return timed_read


def _write():
    with open(_log, "a") as handle:
        for method, path, status, started, done in _timed:
            handle.write(json.dumps([method, path, status, done - started]) + "\\n")


if _log:
    http.client.HTTPConnection.putrequest, http.client.HTTPConnection.getresponse = putrequest, getresponse
    for _name in ("read", "read1", "readinto", "readline"):
        setattr(http.client.HTTPResponse, _name, _reading(getattr(http.client.HTTPResponse, _name)))
    atexit.register(_write)
"""
#: The `govern` entry point, its requests timed.
GOVERN_MAIN = REQUEST_HOOK + "import sys\nfrom governance.cli import main\nsys.exit(main())\n"


@dataclass
class Measured:
    """One command's samples over the rounds."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    in_requests: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # every request of every round
    endpoints: Counter = field(default_factory=Counter)  # over all rounds


@dataclass
class Side:
    """One server and the checkout that acts on it."""

    label: str
    server: MlflowServer
    workdir: Path
    env: dict[str, str]
    report_version: list[str] | None = None
    idle_cpu_per_s: float = 0.0  # the server's own work with no request (its job consumers, uvicorn)
    results: dict[str, Measured] = field(default_factory=dict)

    def user_env(self, user: str) -> dict[str, str]:
        return {**self.env, "MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": self.server.passwords[user]}


def server_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in the server's process group (uvicorn and its workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
                total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def prepare(side_label: str, server: MlflowServer, root: Path, code: Path = REPO) -> tuple[Path, dict[str, str]]:
    """Accounts on ``server`` and a checkout whose reviewed policies name them and pin the server; its commands
    import ``governance`` from ``code`` (this checkout, or ``--code-before``'s export)."""
    from governance import trail

    for user in (TRAINER, *REVIEWERS):
        server.create_user(user, edit_models=True)
    server.create_user(RELEASER, edit_models=False)
    server.grant(RELEASER, "*", "MANAGE")  # as the team doc grants it
    workdir = root / f"checkout-{side_label}"
    shutil.copytree(REPO / "policies", workdir / "policies")
    approvals_file = workdir / "policies/approvals.yaml"
    policy = yaml.safe_load(approvals_file.read_text())
    policy["roles"].update(
        reviewer=list(REVIEWERS),
        release_manager=[RELEASER],
        objective_owner=[REVIEWERS[0]],
        waiver_authority=[RELEASER],
    )
    policy["authentication"].update(server=server.url, tls_sha256_fingerprint=None)
    approvals_file.write_text(yaml.safe_dump(policy, sort_keys=False))
    key = trail.generate_key()
    key_file = root / f"trail-{side_label}.key"
    key_file.write_bytes(key.pem())
    key_file.chmod(0o600)
    keys_file = workdir / "policies/trail_keys.yaml"
    keys = yaml.safe_load(keys_file.read_text())
    keys["keys"] = [
        *(keys.get("keys") or []),
        {
            "id": key.key_id,
            "public_key": key.public_b64,
            "owner": "server latency benchmark",
            "valid_from": "2026-01-01",
        },
    ]
    keys_file.write_text(yaml.safe_dump(keys, sort_keys=False))
    commit_reviewed(workdir)
    env = pipeline_env(workdir)
    env.pop("GOVERN_USER", None)  # against a server, who acts is who the server authenticates
    env.update(
        MLFLOW_TRACKING_URI=server.url,
        GOVERN_AUDIT_URL=server.audit_url,
        GOVERN_TRAIL_KEY_FILE=str(key_file),
        GOVERN_TRAIL_CHECKPOINT=str(root / f"audit-{side_label}.checkpoint.jsonl"),
        GOVERN_STAGE_SERVER="off",
        PYTHONPATH=str(code),
    )
    return workdir, env


def populate(side: Side, rounds: int, report: bool) -> None:
    """The rounds' pending versions and the report's version, registered as the service account (untimed)."""
    script = side.workdir / ".bench_setup.py"
    # Scripts run from files: pyspark (imported by the gates) exits a `python -c` process it takes for a doctest
    script.write_text(
        SETUP.format(
            tests=str(REPO / "tests" / "governance"),
            e2e=str(REPO / "tests" / "e2e"),
            model=APPROVE_MODEL,
            rounds=rounds,
            trainer=TRAINER,
            report=report,
        )
    )
    made = subprocess.run(
        [sys.executable, str(script)], cwd=side.workdir, env=side.user_env(TRAINER), capture_output=True, text=True
    )
    if made.returncode != 0:
        raise SystemExit(f"[{side.label}] registering the versions failed: {made.stderr.strip()[-1500:]}")
    if report:
        side.report_version = made.stdout.split()[-2:]


def time_command(side: Side, name: str, user: str, argv: list[str], govern_main: Path, request_log: Path) -> None:
    """Run ``govern argv`` as ``user`` in a fresh process; record wall, CPU, server CPU and its requests."""
    request_log.unlink(missing_ok=True)
    env = {**side.user_env(user), "BENCH_REQUEST_LOG": str(request_log)}
    server_before = server_cpu_seconds(side.server.pid)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(govern_main), *argv], cwd=side.workdir, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_after = server_cpu_seconds(side.server.pid)
    if done.returncode != 0:
        raise SystemExit(
            f"[{side.label}] govern {' '.join(argv)} as {user} exited {done.returncode}: {done.stderr[-800:]}"
        )
    requests = [json.loads(line) for line in request_log.read_text().splitlines()] if request_log.exists() else []
    measured = side.results.setdefault(name, Measured())
    measured.wall.append(wall)
    measured.cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    measured.server_cpu.append(server_after - server_before)
    measured.requests.append(len(requests))
    measured.in_requests.append(sum(seconds for *_, seconds in requests))
    measured.latencies.extend(seconds for *_, seconds in requests)
    measured.endpoints.update(f"{method} {path}" for method, path, *_ in requests)


def time_floor(side: Side, floor: Measured) -> None:
    """``python -c 'import mlflow'`` in the checkout: what a command that writes through MlflowClient pays first."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mlflow"], cwd=side.workdir, env=side.env, check=True)
    floor.wall.append(time.perf_counter() - started)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    floor.cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))


def one_round(side: Side, round_: int, govern_main: Path, request_log: Path) -> None:
    version = str(round_ + 1)
    steps = [
        ("govern show", REVIEWERS[0], ["show", APPROVE_MODEL, version]),
        ("govern approve (1st reviewer)", REVIEWERS[0], ["approve", APPROVE_MODEL, version, "--reason", "benchmark"]),
        ("govern approve (2nd reviewer)", REVIEWERS[1], ["approve", APPROVE_MODEL, version, "--reason", "benchmark"]),
        ("govern promote", RELEASER, ["promote", APPROVE_MODEL, version]),
    ]
    if side.report_version:
        out = side.workdir.parent / f"report-{side.label}-{round_}"
        steps.append(("govern report", REVIEWERS[0], ["report", *side.report_version, "--out", str(out)]))
    for name, user, argv in steps:
        time_command(side, name, user, argv, govern_main, request_log)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_table(
    sides: dict[str, Side],
    rounds: int,
    load: tuple[float, float],
    workers: str,
    floor: Measured,
    compared: str = "before: no auth_cache_ttl_seconds, after: auth_cache_ttl_seconds = 60",
) -> None:
    before, after = sides["before"], sides["after"]
    print(  # noqa: T201
        f"load average {load[0]:.1f} before, {load[1]:.1f} after, on {os.cpu_count()} cores; medians of {rounds} "
        f"round(s); basic-auth mlflow server, {workers} worker(s), PostgreSQL backend and trail; {compared}"
    )
    header = f"{'':30s} {'wall s':>13s} {'ratio':>6s} {'cpu s':>11s} {'server cpu s':>13s} {'requests':>9s}"
    print(header + f" {'per request s':>13s} {'in requests s':>13s}")  # noqa: T201
    print(f"{'':30s} {'before after':>13s} {'':>6s} {'bef.  after':>11s} {'before after':>13s} {'bef. aft.':>9s}"  # noqa: T201
          f" {'before after':>13s} {'before after':>13s}")  # fmt: skip
    for name, b in before.results.items():
        a = after.results[name]
        wall_b, wall_a = median(b.wall), median(a.wall)
        goal = "" if wall_a <= GOAL_S else f"  over the {GOAL_S:.0f} s goal"
        print(  # noqa: T201
            f"{name:30s} {wall_b:6.2f} {wall_a:6.2f} {wall_b / wall_a:5.1f}x {median(b.cpu):5.2f} {median(a.cpu):5.2f}"
            f" {median(b.server_cpu):6.2f} {median(a.server_cpu):6.2f}"
            f" {median(b.requests):4.0f} {median(a.requests):4.0f}"
            f" {median(b.latencies):6.3f} {median(a.latencies):6.3f}"
            f" {median(b.in_requests):6.2f} {median(a.in_requests):6.2f}{goal}"
        )
    print(  # noqa: T201
        f"{'client floor: import mlflow':30s} {median(floor.wall):6.2f} wall, {median(floor.cpu):5.2f} cpu "
        "(for scale: govern commands against a server no longer import MLflow)"
    )
    print(  # noqa: T201
        f"{'server idle (no request)':30s} {before.idle_cpu_per_s:6.3f} {after.idle_cpu_per_s:6.3f} cpu s per s "
        "(included in the server cpu column)"
    )
    for side in (before, after):
        print(f"\nrequests per command ({side.label}; endpoint: count per run):")  # noqa: T201
        for name, measured in side.results.items():
            counts = measured.endpoints.most_common()
            print(f"  {name}: " + ", ".join(f"{endpoint} {count / rounds:g}" for endpoint, count in counts))  # noqa: T201


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds (each approves and promotes a fresh version)")
    parser.add_argument("--no-report", action="store_true", help="skip building and timing a report")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="the servers' --workers (default 1, as docs/how-to/team-setup.md runs it; 0: MLflow's own default)",
    )
    parser.add_argument("--json", type=Path, help="also write every sample here")
    parser.add_argument(
        "--code-before",
        metavar="REF",
        help="compare code, not configuration: both servers cache credentials (the documented set-up); the before "
        "side's commands run governance/ as committed at REF (git archive), the after side's this checkout's",
    )
    args = parser.parse_args(argv)
    configs = {"before": 60, "after": 60} if args.code_before else CONFIGS
    try:
        admin_connection().close()
    except Exception as exc:  # any driver error means: no database to start a server on
        raise SystemExit(f"PostgreSQL not reachable ({exc.__class__.__name__}: {exc}); set GOVERN_TEST_PG") from exc

    with tempfile.TemporaryDirectory(prefix="server-latency-") as tmp_name, contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        started = time.perf_counter()
        # Both servers boot at once (each takes a minute on a busy 2-core box)
        code = {"before": REPO, "after": REPO}
        compared = "before: no auth_cache_ttl_seconds, after: auth_cache_ttl_seconds = 60"
        if args.code_before:
            code["before"] = _export(args.code_before, tmp / "code-before")
            compared = (
                f"both auth_cache_ttl_seconds = 60; before: governance/ at {args.code_before}, after: this checkout"
            )
        with ThreadPoolExecutor(len(configs)) as pool:
            entered = {
                label: pool.submit(
                    stack.enter_context,
                    running_server(_mkdir(tmp / f"server-{label}"), auth_cache_ttl_s=ttl, workers=args.workers or None),
                )
                for label, ttl in configs.items()
            }
            servers = {label: future.result() for label, future in entered.items()}
        # Both sides import their own bytecode, as an installed govern does (the environment's
        # PYTHONDONTWRITEBYTECODE would otherwise make one side compile its modules on every command)
        for root in dict.fromkeys(code.values()):
            _compile(root)
        sides = {}
        for label, server in servers.items():
            workdir, env = prepare(label, server, tmp, code[label])
            sides[label] = Side(label=label, server=server, workdir=workdir, env=env)
        with ThreadPoolExecutor(len(sides)) as pool:
            list(pool.map(lambda side: populate(side, args.rounds, not args.no_report), sides.values()))
        print(f"servers up and populated in {time.perf_counter() - started:.0f} s", file=sys.stderr)  # noqa: T201
        govern_main = tmp / "govern_main.py"
        govern_main.write_text(GOVERN_MAIN)
        # What the servers burn with no request, read over the same seconds for both
        idle_from = {label: server_cpu_seconds(side.server.pid) for label, side in sides.items()}
        time.sleep(IDLE_WINDOW_S)
        for label, side in sides.items():
            side.idle_cpu_per_s = (server_cpu_seconds(side.server.pid) - idle_from[label]) / IDLE_WINDOW_S
        floor = Measured()
        load_before = os.getloadavg()
        for round_ in range(args.rounds):
            time_floor(sides["after"], floor)
            order = list(sides.values()) if round_ % 2 == 0 else list(reversed(sides.values()))
            for side in order:
                one_round(side, round_, govern_main, tmp / f"requests-{side.label}.jsonl")
            print(f"round {round_ + 1} done at {time.perf_counter() - started:.0f} s", file=sys.stderr)  # noqa: T201
        load_after = os.getloadavg()
    workers = str(args.workers or "MLflow's default")
    print_table(sides, args.rounds, (load_before[0], load_after[0]), workers, floor, compared)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    label: {
                        name: {k: v for k, v in vars(m).items() if k != "endpoints"} for name, m in s.results.items()
                    }
                    for label, s in sides.items()
                },
                indent=1,
            )
        )
    return 0


def _export(ref: str, dest: Path) -> Path:
    """``governance/`` as committed at ``ref``, exported to ``dest`` (an importable root)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", ref, "governance"], cwd=REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _compile(root: Path) -> None:
    """Write the bytecode of ``root/governance`` (quietly; a file that does not compile fails its command anyway)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "governance")], check=False)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
