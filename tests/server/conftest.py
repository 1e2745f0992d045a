"""Real services for the server tests: PostgreSQL on 127.0.0.1 and a basic-auth ``mlflow server``.

Once per session: a fresh PostgreSQL database for MLflow's backend store, a
``basic_auth.ini`` whose user store lives in a temporary folder and whose admin
credentials are generated here, and ``mlflow server --app-name basic-auth`` on
a free port, waited on until ``/health`` answers; a second fresh database,
created while the server boots, holds the audit trail. Everything created is
dropped or stopped at the end. ``GOVERN_TEST_PG`` overrides where PostgreSQL
is (default ``postgresql://postgres@127.0.0.1:5432/test``, trust auth); the
tests are skipped, saying why, when it cannot be reached.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

ADMIN_DSN = os.environ.get("GOVERN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SERVER_START_TIMEOUT_S = 240


def _admin_connection():
    import psycopg2

    conn = psycopg2.connect(ADMIN_DSN, connect_timeout=5)
    conn.autocommit = True
    return conn


@pytest.fixture(scope="session")
def postgres() -> str:
    """The admin DSN, or a skip saying PostgreSQL is not reachable."""
    try:
        _admin_connection().close()
    except Exception as exc:  # any driver error means: no database to test against
        pytest.skip(f"PostgreSQL not reachable at {ADMIN_DSN} ({exc.__class__.__name__}); set GOVERN_TEST_PG")
    return ADMIN_DSN


def database_url(name: str) -> str:
    base = ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{name}".replace("postgresql://", "postgresql+psycopg2://", 1)


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """CREATE a uniquely named database, yield its SQLAlchemy URL, DROP it (closing stray sessions)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = _admin_connection()
    try:
        with conn.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield database_url(name)
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture
def pg_database(postgres) -> Iterator[str]:
    """A fresh PostgreSQL database for one test (SQLAlchemy URL), dropped afterwards."""
    with fresh_database("govern_test") as url:
        yield url


def _trail_signing_env(folder: Path, policy_dir: Path) -> dict[str, str]:
    """What a PostgreSQL trail needs to sign: a key file, its reviewed entry in trail_keys.yaml, a checkpoint."""
    from governance import trail

    key = trail.generate_key()
    key_file = folder / "trail.key"
    key_file.write_bytes(key.pem())
    key_file.chmod(0o600)
    policy_dir.mkdir(parents=True, exist_ok=True)
    (policy_dir / "trail_keys.yaml").write_text(
        f'version: "1.0"\nkeys:\n  - id: {key.key_id}\n    public_key: {key.public_b64}\n'
        "    owner: server tests\n    valid_from: 2026-01-01\n"
    )
    return {
        "GOVERN_TRAIL_KEY_FILE": str(key_file),
        "GOVERN_TRAIL_CHECKPOINT": str(folder / "audit.checkpoint.jsonl"),
        "GOVERN_POLICY_DIR": str(policy_dir),
    }


@pytest.fixture(scope="session")
def trail_signing_env():
    """``(folder, policy_dir) -> env``: a PostgreSQL trail's reviewed signing key and checkpoint, as variables."""
    return _trail_signing_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class MlflowServer:
    """A running basic-auth MLflow server and its admin credentials."""

    url: str
    admin: tuple[str, str]
    log_path: Path
    audit_url: str
    passwords: dict[str, str] = field(default_factory=dict)

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        response = requests.request(method, self.url + path, auth=self.admin, timeout=60, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")
        return response

    def create_user(self, username: str, *, edit_models: bool) -> str:
        """Create a user (password generated); ``edit_models`` grants EDIT on every registered model."""
        password = secrets.token_urlsafe(12)
        self.api("POST", "/api/2.0/mlflow/users/create", json={"username": username, "password": password})
        if edit_models:
            self.grant(username, "*", "EDIT")
        self.passwords[username] = password
        return password

    def grant(self, username: str, model: str, permission: str) -> None:
        self.api(
            "POST",
            "/api/3.0/mlflow/users/permissions/grant",
            json={
                "username": username,
                "resource_type": "registered_model",
                "resource_id": model,
                "permission": permission,
            },
        )

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory, postgres) -> Iterator[MlflowServer]:
    """``mlflow server --app-name basic-auth`` with a PostgreSQL backend store, started once per session."""
    with running_server(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


@contextlib.contextmanager
def running_server(root: Path) -> Iterator[MlflowServer]:
    """A basic-auth MLflow server (PostgreSQL backend, served artifacts under ``root``) and its own trail
    database, stopped and dropped on exit. A team's server is one of these: its registry and its trail
    belong together, so ``govern audit verify`` sees no other test's models."""
    admin = ("admin", secrets.token_urlsafe(16))
    ini = root / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{root / 'basic_auth.db'}\n"
        f"admin_username = {admin[0]}\n"
        f"admin_password = {admin[1]}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # Verify each user's password hash once a minute, not on every request (MLflow's opt-in cache):
        # the concurrency test sends hundreds of authenticated requests to one worker.
        "auth_cache_ttl_seconds = 60\n"
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING_", "MLFLOW_AUTH_"))}
    env.update(
        {
            "MLFLOW_AUTH_CONFIG_PATH": str(ini),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
            # Webhooks (govern watch, tests/server/test_watch.py): the receiver is http on 127.0.0.1, which MLflow
            # refuses by default (https only, public addresses only); the webhook secret is stored encrypted under
            # a fixed key (unset: a random one per process); the webhook list is cached 1 s, not 60 s, so a
            # webhook created after an earlier test's deliveries is called at once.
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "MLFLOW_WEBHOOK_CACHE_TTL": "1",
        }
    )
    log_path = root / "server.log"
    with contextlib.ExitStack() as stack:
        backend = stack.enter_context(fresh_database("govern_mlflow"))
        log = stack.enter_context(log_path.open("wb"))
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--app-name",
                "basic-auth",
                "--backend-store-uri",
                backend,
                "--serve-artifacts",  # artifacts go through the server (mlflow-artifacts: URIs), never a shared path
                "--artifacts-destination",
                str(root / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: the uvicorn worker is stopped with it
        )
        stack.callback(_stop, process)  # runs before the databases are dropped
        audit_url = stack.enter_context(fresh_database("govern_audit"))  # while the server boots
        server = MlflowServer(url=f"http://127.0.0.1:{port}", admin=admin, log_path=log_path, audit_url=audit_url)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited with {process.returncode}:\n{server.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(server.url + "/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not healthy after {SERVER_START_TIMEOUT_S}s:\n{server.log_tail()}")
            time.sleep(0.5)
        yield server


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group; SIGKILL it if it lingers (its databases are dropped next)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=3)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
