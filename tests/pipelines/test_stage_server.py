"""Stages forked from a warm stage server: the caller's directory, environment, arguments, streams,
exit status and signals; the stage's own code read afresh; fresh interpreters where it is not used.

A probe package stands in for ``pipelines`` in a scratch project (the server serves whatever
``pipelines.<stage>`` the caller's directory holds), and the server preloads one small stdlib
module instead of torch and MLflow (``GOVERN_STAGE_SERVER_PRELOAD``), so the test stays light.
The full pipeline runs through real servers in the e2e tests (``tests/e2e``, server on).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines import _stage_server
from pipelines._stage_server import server_identity

REPO = Path(__file__).resolve().parents[2]
PRELOADED = "xml.dom.minidom"  # imported by the server only: a stage that sees it ran in a server child

PROBE = """
import json, os, sys
VERSION = __VERSION__
if len(sys.argv) > 1 and sys.argv[1] == "exit":
    print("leaving with", sys.argv[2], file=sys.stderr)
    raise SystemExit(int(sys.argv[2]))
if len(sys.argv) > 1 and sys.argv[1] == "crash":
    raise RuntimeError("probe crashed")
if len(sys.argv) > 1 and sys.argv[1] == "sleep":
    print(json.dumps({"pid": os.getpid()}), flush=True)
    import time
    time.sleep(60)
print(json.dumps({
    "version": VERSION,
    "pid": os.getpid(),
    "ppid": os.getppid(),
    "cwd": os.getcwd(),
    "argv": sys.argv[1:],
    "stage": os.environ.get("DVC_STAGE"),
    "preloaded": "__PRELOADED__" in sys.modules,
    "package_file": sys.modules["pipelines"].__file__,
    "name": __name__,
}))
"""


def _probe_source(version: int) -> str:
    return PROBE.replace("__VERSION__", str(version)).replace("__PRELOADED__", PRELOADED)


@pytest.fixture
def project(tmp_path):
    """A scratch project whose ``pipelines`` package has the real server and a probe stage."""
    root = tmp_path / "project"
    (root / "pipelines").mkdir(parents=True)
    for name in ("__init__.py", "_env.py", "_stage_server.py"):
        shutil.copy2(REPO / "pipelines" / name, root / "pipelines" / name)
    (root / "pipelines" / "probe.py").write_text(_probe_source(1))
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if k not in ("GOVERN_STAGE_SERVER", "PYTHONPATH")}
    env.update(XDG_RUNTIME_DIR=str(run_dir), GOVERN_STAGE_SERVER_PRELOAD=PRELOADED)
    yield root, env, run_dir
    for pid in _servers(run_dir):
        os.kill(pid, signal.SIGTERM)


def _servers(run_dir: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"_stage_server.py" in cmdline and str(run_dir).encode() in cmdline:
                pids.append(int(proc.name))
    return pids


def _probe(root: Path, env: dict[str, str], *args: str, options: tuple[str, ...] = ()):
    return subprocess.run(
        [sys.executable, *options, "-m", "pipelines.probe", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _wait_for_server(run_dir: Path) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if list(run_dir.glob("govern-stage-servers-*/*.sock")) and _servers(run_dir):
            return _servers(run_dir)[0]
        time.sleep(0.1)
    raise AssertionError("no stage server started")


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the stage server is Linux-only")


def test_the_first_stage_starts_a_server_and_later_stages_run_in_its_children(project):
    root, env, run_dir = project
    # No server yet: the stage runs in a fresh interpreter (and starts one in the background)
    first = _probe(root, env, "a")
    assert first.returncode == 0, first.stderr
    fresh = json.loads(first.stdout)
    assert fresh["preloaded"] is False and fresh["argv"] == ["a"]
    server = _wait_for_server(run_dir)
    # Now the stage is a child of the server, in the caller's directory, environment and arguments
    # (DVC_STAGE, which DVC sets per stage, is not part of the server's identity: the same server)
    second = _probe(root, {**env, "DVC_STAGE": "probe_x"}, "x", "y z")
    assert second.returncode == 0, second.stderr
    child = json.loads(second.stdout)
    assert child["preloaded"] is True and child["ppid"] == server
    assert child["cwd"] == str(root) and child["argv"] == ["x", "y z"]
    assert child["stage"] == "probe_x" and child["name"] == "__main__"
    # The project's modules come from the caller's checkout, read afresh for every stage
    assert child["package_file"] == str(root / "pipelines" / "__init__.py")
    (root / "pipelines" / "probe.py").write_text(_probe_source(2))
    assert json.loads(_probe(root, env).stdout)["version"] == 2


def test_exit_status_streams_and_crashes_are_the_stages(project):
    root, env, run_dir = project
    _probe(root, env)
    _wait_for_server(run_dir)
    leaving = _probe(root, env, "exit", "3")
    assert (leaving.returncode, leaving.stderr) == (3, "leaving with 3\n")
    crashed = _probe(root, env, "crash")
    assert crashed.returncode == 1
    assert crashed.stderr.splitlines()[0] == "Traceback (most recent call last):"
    assert crashed.stderr.splitlines()[-1] == "RuntimeError: probe crashed"


def test_a_status_sent_right_after_the_pid_is_not_lost():
    """A stage that ends at once: its pid and status may both wait in the caller's socket before the
    caller reads the first; each read takes one message, never a part of the next (the race that
    once failed a quick stage with "the stage server ended before the stage did")."""
    import socket

    server, caller = socket.socketpair()
    with server, caller:
        _stage_server._send(server, {"pid": 41})
        _stage_server._send(server, {"status": 3})
        server.shutdown(socket.SHUT_WR)
        assert _stage_server._receive(caller) == ({"pid": 41}, [])
        assert _stage_server._receive(caller) == ({"status": 3}, [])
        assert _stage_server._receive(caller) == (None, [])
    # The request and its three descriptors, with more behind them: the descriptors come with the request
    server, caller = socket.socketpair()
    with server, caller:
        read_end, write_end = os.pipe()
        _stage_server._send(caller, {"module": "pipelines.x"}, [read_end, write_end, read_end])
        _stage_server._send(caller, {"next": True})
        request, fds = _stage_server._receive(server, with_fds=3)
        assert request == {"module": "pipelines.x"} and len(fds) == 3
        assert _stage_server._receive(server) == ({"next": True}, [])
        for fd in (*fds, read_end, write_end):
            os.close(fd)


def test_a_signal_to_the_caller_reaches_the_stage(project):
    root, env, run_dir = project
    _probe(root, env)
    _wait_for_server(run_dir)
    caller = subprocess.Popen(
        [sys.executable, "-m", "pipelines.probe", "sleep"], cwd=root, env=env, stdout=subprocess.PIPE, text=True
    )
    stage = json.loads(caller.stdout.readline())["pid"]
    assert stage != caller.pid  # the stage is the server's child
    caller.send_signal(signal.SIGTERM)
    assert caller.wait(timeout=30) == -signal.SIGTERM  # the caller dies of the signal its stage died of
    deadline = time.monotonic() + 10
    while Path(f"/proc/{stage}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{stage}").exists()


def test_off_and_interpreter_options_run_the_stage_in_a_fresh_interpreter(project):
    root, env, run_dir = project
    _probe(root, env)
    _wait_for_server(run_dir)
    assert json.loads(_probe(root, {**env, "GOVERN_STAGE_SERVER": "off"}).stdout)["preloaded"] is False
    assert json.loads(_probe(root, env, options=("-X", "importtime")).stdout)["preloaded"] is False
    assert json.loads(_probe(root, {**env, "RANK": "0"}).stdout)["preloaded"] is False  # a distributed launch


def test_the_server_is_chosen_by_what_libraries_read_at_import():
    base = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2", "PATH": "/usr/bin"}
    same = server_identity(base)
    # Per-invocation variables do not start another server...
    assert server_identity({**base, "DVC_STAGE": "train_sft", "PYTEST_CURRENT_TEST": "t"}) == same
    assert server_identity({**base, "ACCELERATE_MIXED_PRECISION": "no", "GOVERN_STAGE_SERVER": "on"}) == same
    # ...anything else does: a library may read it as it imports
    assert server_identity({**base, "HF_HUB_OFFLINE": "0"}) != same
    assert server_identity({**base, "OMP_NUM_THREADS": "1"}) != same
    assert server_identity({**base, "GOVERN_STAGE_SERVER_PRELOAD": "json"}) != same


def test_only_stage_modules_of_the_pipelines_package_are_served():
    assert _stage_server._is_stage_module("pipelines.register")
    for module in ("pipelines._launch", "pipelines", "os", "governance.cli", "pipelines.a.b", "pipelines.x-y"):
        assert not _stage_server._is_stage_module(module)


def test_a_server_killed_under_a_stage_fails_the_stage_and_ends_it(project):
    root, env, run_dir = project
    _probe(root, env)
    server = _wait_for_server(run_dir)
    caller = subprocess.Popen(
        [sys.executable, "-m", "pipelines.probe", "sleep"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stage = json.loads(caller.stdout.readline())["pid"]
    os.kill(server, signal.SIGKILL)
    assert caller.wait(timeout=30) == 1  # no status: no success
    assert caller.stderr.read() == ("pipelines.probe: the stage server ended before the stage did; stage terminated\n")
    deadline = time.monotonic() + 10
    while Path(f"/proc/{stage}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{stage}").exists() or "Z" in Path(f"/proc/{stage}/stat").read_text().split()[2]
