"""A plain ``mlflow server`` (no basic-auth app, SQLite backend): said for what it is, allowed only by policy.

Needs no PostgreSQL: the server starts in seconds on a SQLite store in a
temporary folder, and is stopped (its process group) at the end.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from governance import preflight
from governance.errors import ConfigError
from governance.identity import current_identity
from tests.server.conftest import SERVER_START_TIMEOUT_S, _stop, free_port

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.server  # a real mlflow server (this one needs no PostgreSQL: ~6 s)


@pytest.fixture(scope="module")
def plain_mlflow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("plain-mlflow")
    port = free_port()
    with (root / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
            + ["--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port)]
            + ["--workers", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"mlflow server exited with {process.returncode}: {(root / 'server.log').read_text()[-2000:]}"
                )
            with contextlib.suppress(requests.RequestException):
                if requests.get(url + "/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not healthy after {SERVER_START_TIMEOUT_S}s")
            time.sleep(0.5)
        yield url
    finally:
        _stop(process)


def test_a_plain_mlflow_server_needs_no_credentials_and_the_policy_decides(plain_mlflow_server, tmp_path, monkeypatch):
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    monkeypatch.setenv("GOVERN_POLICY_DIR", str(tmp_path / "policies"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", plain_mlflow_server)
    monkeypatch.setenv("GOVERN_USER", "alice")
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    policy = tmp_path / "policies" / "approvals.yaml"
    refusal = (
        f"MLflow at {plain_mlflow_server} authenticates nobody (no basic-auth app): the server needs no credentials, "
        f"it is this project that wants an authenticated identity for every risk tier ({policy}: "
        "authentication.unauthenticated_server.risk_tiers: []); list a tier there to allow this server for it "
        "(identities then local, unverified), or start the server with `mlflow server --app-name basic-auth`"
    )
    # What train_sft used to hear as "needs your credentials"
    with pytest.raises(ConfigError) as info:
        current_identity()
    assert str(info.value) == refusal
    checks = {f.check: f for f in preflight.check_server(plain_mlflow_server, [])}
    assert checks["tracking"].ok and checks["clock"].ok
    assert (checks["identity"].ok, checks["identity"].line) == (False, refusal)
    # Allowed for the low tier: the local, unverified user, and only for that tier
    data = yaml.safe_load(policy.read_text())
    data["authentication"]["unauthenticated_server"]["risk_tiers"] = ["low"]
    policy.write_text(yaml.safe_dump(data, sort_keys=False))
    assert current_identity().describe() == "alice (local)"
    assert [f.check for f in preflight.check_server(plain_mlflow_server, ["low"]) if not f.ok] == []
    with pytest.raises(ConfigError, match="wants an authenticated identity for risk tier medium"):
        current_identity(risk_tier="medium")
