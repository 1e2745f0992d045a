"""Offline, provably: every ``govern`` command and a pipeline stage run with outbound network refused.

The guard (tests/no_network/sitecustomize.py) is loaded at interpreter start-up through
``PYTHONPATH`` in the child processes, so it is in place before any project or library import, and
it records every non-loopback name lookup, connect or send, even where a library swallows the refusal
and falls back (tldextract does). The children start without the offline variables and with an empty
tldextract cache: whatever keeps them offline must be set by the project itself (governance.offline),
and a cached suffix list must not hide a fetch. ``govern monitor`` used to fetch the public-suffix
list because presidio was imported before the variables were set (issue 28).

Commands are enumerated from the ``govern`` parser, so a new command fails here until it is given
arguments in :data:`COMMANDS`. They run in one interpreter through ``governance.cli.main`` (one
interpreter per command would cost seconds each on two cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_support import commit_reviewed

from governance.cli import build_parser
from tests.governance.report_support import build_version

REPO = Path(__file__).resolve().parents[2]
GUARD = REPO / "tests/no_network"
NAME = "rpt-sft"

#: Every variable that keeps a library offline: removed from the children's environment.
OFFLINE_VARIABLES = (
    "HF_HUB_OFFLINE",
    "HF_HUB_DISABLE_TELEMETRY",
    "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS",
    "MLFLOW_DISABLE_TELEMETRY",
    "DVC_NO_ANALYTICS",
    "DO_NOT_TRACK",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
)

MONITORING_POLICY = "policies/monitoring.yaml"

#: (command as the parser names it, user, argv), in the order they run: a version registered by the
#: fixture (v1) and a second one (v2) go through review, release, monitoring and an incident.
#: (The monitor decides under the checkout's reviewed copy of the monitoring policy, which build_version commits.)
COMMANDS: list[tuple[str, str, list[str]]] = [
    ("models", "nobody", ["models", NAME]),
    ("show", "nobody", ["show", NAME, "1"]),
    ("validate", "nobody", ["validate", "data/prepared/sft/train.jsonl", "--kind", "sft", "--quiet"]),
    ("pii scan", "nobody", ["pii", "scan", "data/prepared/sft/train.jsonl"]),
    ("approve", "alice", ["approve", NAME, "1", "--reason", "lineage reviewed"]),
    ("approve", "bob", ["approve", NAME, "1", "--reason", "evaluation reviewed"]),
    ("promote", "dana", ["promote", NAME, "1"]),
    ("approve", "alice", ["approve", NAME, "2", "--reason", "lineage reviewed"]),
    ("approve", "bob", ["approve", NAME, "2", "--reason", "evaluation reviewed"]),
    ("canary", "dana", ["canary", NAME, "2"]),
    ("canary-end", "dana", ["canary-end", NAME]),
    ("promote", "dana", ["promote", NAME, "2"]),
    ("rollback", "dana", ["rollback", NAME, "--reason", "canary regression"]),
    ("monitor", "mona", ["monitor", NAME, "1", "--traffic", "traffic/window.jsonl", "--policy", MONITORING_POLICY]),
    ("incident open", "dana", ["incident", "open", NAME, "1", "--severity", "low", "--reason", "tone"]),
    ("incident list", "nobody", ["incident", "list", NAME]),
    ("incident close", "dana", ["incident", "close", "{incident}", "--reason", "fixed in prompt"]),
    ("history", "nobody", ["history", NAME]),
    ("report", "nobody", ["report", NAME, "1", "--out", "reports"]),
    ("verify", "nobody", ["verify", NAME, "1"]),
    ("provenance", "nobody", ["provenance", NAME, "1", "--out", "provenance.json"]),
    ("reproduce", "nobody", ["reproduce", NAME, "1", "--repo", "."]),
    ("reject", "carol", ["reject", NAME, "2", "--reason", "rolled back"]),
    ("withdraw", "dana", ["withdraw", NAME, "--reason", "end of test"]),
    ("reconcile", "dana", ["reconcile", NAME, "--reason", "check"]),
    ("watch", "dana", ["watch", "--once"]),
    ("approve-objective", "erin", ["approve-objective", "train_grpo", "--reason", "reviewed"]),
    ("policy-change", "dana", ["policy-change", "--old", "old_approvals.yaml", "--reason", "unchanged"]),
    ("doctor", "nobody", ["doctor"]),
    ("audit verify", "nobody", ["audit", "verify"]),
    ("audit export", "nobody", ["audit", "export", "--out", "trail.jsonl"]),
    ("audit key", "nobody", ["audit", "key"]),
    ("audit rotate-key", "dana", ["audit", "rotate-key", "--reason", "scheduled"]),
]

#: Runs each COMMANDS entry through governance.cli.main in this one interpreter; writes exit codes.
_RUNNER = """
import contextlib, io, json, os, re, sys, traceback
commands = json.loads(open(sys.argv[1]).read())
from governance.cli import main
results = []
incident = "INC-?"
for entry in commands:
    entry["argv"] = [incident if word == "{incident}" else word for word in entry["argv"]]
    os.environ["GOVERN_USER"] = entry["user"]
    os.environ["NO_NETWORK_CONTEXT"] = "govern " + " ".join(entry["argv"])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(entry["argv"])
        except SystemExit as exc:
            code = exc.code
        except Exception:  # a crash is that command's result; the others still run
            code = "crash"
            err.write(traceback.format_exc())
    incident = next(iter(re.findall(r"opened (INC-[0-9]+)", out.getvalue())), incident)
    results.append({"argv": entry["argv"], "code": code, "output": (out.getvalue() + err.getvalue())[-600:]})
open(sys.argv[2], "w").write(json.dumps(results))
"""


def parser_commands() -> set[str]:
    """Every leaf command of ``govern``, as ``"incident open"``."""

    def walk(parser: argparse.ArgumentParser, prefix: tuple[str, ...]) -> set[str]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return set().union(*(walk(sub, (*prefix, name)) for name, sub in action.choices.items()))
        return {" ".join(prefix)}

    return walk(build_parser(), ())


def test_every_command_has_arguments_in_the_no_network_run():
    missing = parser_commands() - {command for command, _, _ in COMMANDS}
    assert not missing, f"tests/governance/test_offline.py: COMMANDS: add an argv for {sorted(missing)}"


def _guarded_env(workdir: Path, log: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARIABLES}
    env.update(
        PYTHONPATH=os.pathsep.join([str(GUARD), str(REPO)]),
        NO_NETWORK_LOG=str(log),
        # An empty cache: a suffix list cached by an earlier (online) run would hide a fetch
        TLDEXTRACT_CACHE=str(workdir / "tldextract-cache"),
        # The reviewed copy in the checkout the commands run in (registered: build_version committed it there)
        GOVERN_POLICY_DIR=str(workdir / "policies"),
    )
    return env


def _attempts(log: Path) -> list[str]:
    if not log.exists():
        return []
    attempts = []
    for record in map(json.loads, log.read_text().splitlines()):
        # Where the project's code led to it (its innermost frame), then the library frame that tried
        ours = [frame for frame in record["stack"] if f"{REPO}/governance/" in frame or f"{REPO}/pipelines/" in frame]
        where = "".join(ours[-1:] + record["stack"][-1:])
        attempts.append(f"{record['context']}: {record['call']} {record['host']}:{record['port']}\n{where}")
    return attempts


def _traffic_for(name: str, version: str, path: Path) -> None:
    """The shipped window (planted e-mail addresses and a phone number in prompts) addressed to ``name``."""
    rows = [json.loads(line) for line in (REPO / "data/traffic/window.jsonl").read_text().splitlines()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({**row, "model": name, "version": version}) + "\n" for row in rows[:60]))


def test_the_guard_records_and_refuses_an_outbound_connection(tmp_path):
    log = tmp_path / "attempts.jsonl"
    probe = (
        "import socket, urllib.request\n"
        "try:\n    urllib.request.urlopen('http://example.com', timeout=2)\nexcept OSError as exc:\n    print(exc)\n"
        "server = socket.create_server(('127.0.0.1', 0)); socket.create_connection(server.getsockname()).close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=_guarded_env(tmp_path, log), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "outbound network refused by the test guard: getaddrinfo example.com:80" in done.stdout
    (attempt,) = _attempts(log)  # loopback is allowed: a local MLflow server would be one
    assert attempt.startswith(f"{sys.executable} -c ")


@pytest.fixture
def registered(tmp_path, monkeypatch, mlflow_store):
    """Two registered versions of ``rpt-sft`` (real gates, a training run, evaluation), built in this process."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GOVERN_POLICY_DIR", str(REPO / "policies"))
    build_version(Path("."))
    second = tmp_path / "second"
    second.mkdir()
    monkeypatch.chdir(second)
    build_version(Path("."), lineage_key="k2")
    monkeypatch.chdir(tmp_path)
    _traffic_for(NAME, "1", tmp_path / "traffic/window.jsonl")
    # The approvals policy as it stood before a (here: comment-only) change
    old = (REPO / "policies/approvals.yaml").read_text() + "# earlier revision\n"
    (tmp_path / "old_approvals.yaml").write_text(old)
    # Commands run where a checkout would be: its policies and params.yaml
    if not (tmp_path / "policies").exists():  # build_version left the reviewed copy there
        (tmp_path / "policies").symlink_to(REPO / "policies")
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def test_every_govern_command_and_a_stage_run_without_the_network(registered):
    workdir = registered
    log = workdir / "attempts.jsonl"
    env = _guarded_env(workdir, log)
    commands = [{"user": user, "argv": argv} for _, user, argv in COMMANDS]
    (workdir / "commands.json").write_text(json.dumps(commands))
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, "commands.json", "results.json"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((workdir / "results.json").read_text())
    # A stage, as dvc.yaml runs it: the PII gate over the safety prompt sets (presidio, the trail)
    stage_dir = workdir / "stage"
    shutil.copytree(REPO / "data/safety", stage_dir / "data/safety")
    shutil.copy(REPO / "params.yaml", stage_dir / "params.yaml")
    shutil.copytree(REPO / "policies", stage_dir / "policies")
    commit_reviewed(stage_dir)  # a checkout: the gate decides only under the reviewed policy
    env["NO_NETWORK_CONTEXT"] = "python -m pipelines.pii_scan safety"
    stage = subprocess.run(
        [sys.executable, "-m", "pipelines.pii_scan", "safety"],
        cwd=stage_dir, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    attempts = _attempts(log)
    assert not attempts, f"{len(attempts)} outbound network attempts:\n" + "\n".join(attempts[:5])
    # Each command ran to its end: done (0), or refused with its one-line reason where the fixture
    # cannot give it more (1: a version registered unsigned; 2: its commit is not in this folder, or
    # no version was registered under the --old policy)
    refusals = {"verify": 1, "provenance": 1, "reproduce": 2, "policy-change": 2}
    failed = [
        f"govern {' '.join(r['argv'])}: exit {r['code']}: {r['output'][-400:]}"
        for r in results
        if r["code"] != refusals.get(r["argv"][0], 0)
    ]
    assert not failed, "\n".join(failed)
    assert stage.returncode == 0, stage.stderr[-3000:]
    assert json.loads((stage_dir / "artifacts/pii_scan_safety/decision.json").read_text())["passed"] is True
