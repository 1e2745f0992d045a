"""benchmarks/server_latency.py: its measuring parts in the default run, the whole benchmark opt-in.

The request hook and the server-CPU reading are checked here in seconds. The
benchmark itself starts two basic-auth servers on PostgreSQL and times real
``govern`` processes (minutes on the shared 2-core box): ``pytest -m server_slow``.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
import server_latency  # noqa: E402 - the benchmark is a script beside the others, not a package


class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        self.send_response(404 if self.path.startswith("/missing") else 200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        if self.path.startswith("/slow-body"):  # the headers at once, the body later (as a stalled server sends it)
            self.wfile.flush()
            time.sleep(1.0)
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_the_request_hook_times_requests_and_urllib_alike_to_the_end_of_the_body(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    script = tmp_path / "client.py"
    script.write_text(
        server_latency.REQUEST_HOOK
        + "import requests, urllib.request, urllib.error\n"
        + f"requests.get({url + '/api/2.0/mlflow/users/get?username=a'!r}, timeout=10)\n"
        + f"urllib.request.urlopen({url + '/api/2.0/mlflow/registered-models/get?name=m'!r}, timeout=10).read()\n"
        + f"requests.get({url + '/missing'!r}, timeout=10)\n"
        + f"requests.get({url + '/slow-body'!r}, timeout=10).content\n"
    )
    log = tmp_path / "requests.jsonl"
    try:
        done = subprocess.run(
            [sys.executable, str(script)], env={**os.environ, "BENCH_REQUEST_LOG": str(log)}, capture_output=True
        )
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr.decode()[-1000:]
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert [entry[:3] for entry in logged] == [
        ["GET", "/api/2.0/mlflow/users/get", 200],
        ["GET", "/api/2.0/mlflow/registered-models/get", 200],
        ["GET", "/missing", 404],
        ["GET", "/slow-body", 200],
    ]
    assert all(0 < entry[3] < 10 for entry in logged)
    assert logged[-1][3] >= 1.0 > max(entry[3] for entry in logged[:-1])


def test_server_cpu_counts_every_process_of_a_group():
    group = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
         "time.sleep(30)"],
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = 100
        while server_latency.server_cpu_seconds(group.pid) < 0.25 and deadline:
            threading.Event().wait(0.1)
            deadline -= 1
        assert 0.25 <= server_latency.server_cpu_seconds(group.pid) < 5
    finally:
        group.kill()
        group.wait()


@pytest.mark.server
@pytest.mark.server_slow
def test_the_benchmark_runs_one_round_against_two_real_servers(request, tmp_path):
    """Both servers, their accounts and versions, one round of show, approve x2, promote (no report): minutes."""
    if "server_slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("opt-in: pytest -m server_slow (two mlflow servers and a round of govern commands: minutes)")
    out = tmp_path / "samples.json"
    command = [sys.executable, "benchmarks/server_latency.py", "--rounds", "1", "--no-report", "--workers", "1"]
    done = subprocess.run([*command, "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    samples = json.loads(out.read_text())
    for side in ("before", "after"):
        assert set(samples[side]) == {
            "govern show",
            "govern approve (1st reviewer)",
            "govern approve (2nd reviewer)",
            "govern promote",
        }
        promote = samples[side]["govern promote"]
        assert promote["requests"][0] > 0 and len(promote["latencies"]) == promote["requests"][0]
    assert "before: no auth_cache_ttl_seconds, after: auth_cache_ttl_seconds = 60" in done.stdout
    assert "client floor: import mlflow" in done.stdout
