"""Who is acting: GOVERN_USER / OS user locally, the server-verified MLflow user against a tracking server.

The full basic-auth flow runs against a real ``mlflow server`` in tests/server;
here a minimal HTTP endpoint stands in for servers that answer differently.
"""

from __future__ import annotations

import getpass
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from governance.errors import ConfigError, PermissionDenied, RegistryError
from governance.identity import current_identity, current_user, verify_server_user


@pytest.fixture
def endpoint():
    """An HTTP server whose answer to users/get each test sets: (status, body)."""
    answer: dict = {"status": 200, "body": {}}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            answer["path"] = self.path
            answer["authorization"] = self.headers.get("Authorization")
            body = json.dumps(answer["body"]).encode()
            self.send_response(answer["status"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", answer
    server.shutdown()
    server.server_close()


def test_local_store_uses_govern_user_then_the_os_user(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("GOVERN_USER", "alice")
    assert current_identity().user == "alice" and current_identity().source == "local"
    monkeypatch.delenv("GOVERN_USER")
    assert current_user() == getpass.getuser()


def test_a_server_needs_credentials(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.setenv("GOVERN_USER", "alice")  # not an identity against a server
    with pytest.raises(ConfigError) as info:
        current_identity()
    assert str(info.value) == (
        "MLflow at http://mlflow.internal:5000 needs your credentials: set MLFLOW_TRACKING_USERNAME and "
        "MLFLOW_TRACKING_PASSWORD (governance actions are recorded under the user the server authenticates)"
    )


def test_the_server_confirms_the_user(endpoint, monkeypatch):
    url, answer = endpoint
    answer["body"] = {"user": {"id": 3, "username": "bob", "is_admin": False}}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret")
    monkeypatch.setenv("GOVERN_USER", "alice")
    identity = current_identity()
    assert (identity.user, identity.source, identity.server) == ("bob", "mlflow-basic-auth", url)
    assert answer["path"] == "/api/2.0/mlflow/users/get?username=bob"
    assert answer["authorization"] == "Basic Ym9iOnMzY3JldA=="  # bob:s3cret


def test_server_answers_become_one_line_errors(endpoint):
    url, answer = endpoint
    answer["status"] = 401
    with pytest.raises(PermissionDenied) as info:
        verify_server_user(url, "bob", "wrong")
    assert str(info.value) == (
        f"MLflow at {url} rejected the credentials of 'bob' (MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD); "
        "check the password"
    )
    answer["status"] = 404
    with pytest.raises(ConfigError) as info:
        verify_server_user(url, "bob", "pw")
    assert str(info.value) == (
        f"MLflow at {url} does not authenticate users (no basic-auth app); governance actions need "
        "`mlflow server --app-name basic-auth`"
    )
    answer.update(status=200, body={"user": {"username": "mallory"}})
    with pytest.raises(PermissionDenied, match="confirmed user 'mallory', not 'bob'"):
        verify_server_user(url, "bob", "pw")
    with pytest.raises(RegistryError) as info:
        verify_server_user("http://127.0.0.1:9", "bob", "pw")
    assert str(info.value) == "cannot reach http://127.0.0.1:9 to verify user 'bob' (ConnectionError)"
