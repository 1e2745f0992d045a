"""Real services for the server tests and benchmarks: PostgreSQL on 127.0.0.1 and a basic-auth ``mlflow server``.

Importable without pytest (``benchmarks/server_latency.py`` starts servers with
it): :func:`running_server` starts ``mlflow server --app-name basic-auth`` with
a fresh PostgreSQL database as its backend store and a second fresh database
for the audit trail, and stops and drops everything on exit. ``tests/server/conftest.py``
turns these into fixtures. ``GOVERN_TEST_PG`` overrides where PostgreSQL is
(default ``postgresql://postgres@127.0.0.1:5432/test``, trust auth).
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import requests

ADMIN_DSN = os.environ.get("GOVERN_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SERVER_START_TIMEOUT_S = 240
#: What the tests (and the team doc) set: each user's password hash verified once a minute, not on every request.
AUTH_CACHE_TTL_S = 60


class ServerStartError(RuntimeError):
    """The server exited or never answered ``/health``; the message ends with its log's tail."""


def admin_connection():
    """An autocommit connection to PostgreSQL as its admin (``ADMIN_DSN``)."""
    import psycopg2

    conn = psycopg2.connect(ADMIN_DSN, connect_timeout=5)
    conn.autocommit = True
    return conn


def database_url(name: str) -> str:
    base = ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{name}".replace("postgresql://", "postgresql+psycopg2://", 1)


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """CREATE a uniquely named database, yield its SQLAlchemy URL, DROP it (closing stray sessions)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = admin_connection()
    try:
        with conn.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield database_url(name)
    finally:
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


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
    editors: set[str] = field(default_factory=set)  # users granted EDIT on every registered model
    pid: int = 0  # the server's process group (its workers are in it)

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        response = requests.request(method, self.url + path, auth=self.admin, timeout=60, **kwargs)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path}: HTTP {response.status_code} {response.text[:300]}")
        return response

    def create_user(self, username: str, *, edit_models: bool) -> str:
        """Create a user (password generated); ``edit_models`` grants EDIT on every registered model.

        The server is the session's: a user another test module already created is kept (its password), and
        given EDIT if asked, so the modules run in any order and in one process (``python -m pytest -q``)."""
        if username in self.passwords:
            if edit_models and username not in self.editors:
                self.grant(username, "*", "EDIT")
                self.editors.add(username)
            return self.passwords[username]
        password = secrets.token_urlsafe(12)
        self.api("POST", "/api/2.0/mlflow/users/create", json={"username": username, "password": password})
        if edit_models:
            self.grant(username, "*", "EDIT")
            self.editors.add(username)
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


def _raise(message: str) -> NoReturn:
    raise ServerStartError(message)


@contextlib.contextmanager
def running_server(
    root: Path,
    *,
    auth_cache_ttl_s: int | None = AUTH_CACHE_TTL_S,
    workers: int | None = 1,
    fail: Callable[[str], NoReturn] = _raise,
) -> Iterator[MlflowServer]:
    """A basic-auth MLflow server (PostgreSQL backend, served artifacts under ``root``) and its own trail
    database, stopped and dropped on exit. A team's server is one of these: its registry and its trail
    belong together, so ``govern audit verify`` sees no other test's models.

    ``auth_cache_ttl_s``: the auth app's ``auth_cache_ttl_seconds`` (``None``: not in the ini, MLflow's
    default of no cache). ``workers``: ``--workers`` (``None``: not passed, MLflow's default, as the team doc
    runs it). ``fail`` is called with the reason when the server does not come up (tests pass ``pytest.fail``).
    """
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
        + (f"auth_cache_ttl_seconds = {auth_cache_ttl_s}\n" if auth_cache_ttl_s is not None else "")
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
                *(["--workers", str(workers)] if workers is not None else []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: the uvicorn worker is stopped with it
        )
        stack.callback(stop, process)  # runs before the databases are dropped
        audit_url = stack.enter_context(fresh_database("govern_audit"))  # while the server boots
        server = MlflowServer(
            url=f"http://127.0.0.1:{port}", admin=admin, log_path=log_path, audit_url=audit_url, pid=process.pid
        )
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                fail(f"mlflow server exited with {process.returncode}:\n{server.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(server.url + "/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                fail(f"mlflow server not healthy after {SERVER_START_TIMEOUT_S}s:\n{server.log_tail()}")
            time.sleep(0.5)
        yield server


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group; SIGKILL it if it lingers (its databases are dropped next)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=3)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
