"""Real services for the server tests: PostgreSQL on 127.0.0.1 and a basic-auth ``mlflow server``.

Once per session: a fresh PostgreSQL database for MLflow's backend store, a
``basic_auth.ini`` whose user store lives in a temporary folder and whose admin
credentials are generated here, and ``mlflow server --app-name basic-auth`` on
a free port, waited on until ``/health`` answers; a second fresh database,
created while the server boots, holds the audit trail. Everything created is
dropped or stopped at the end. ``GOVERN_TEST_PG`` overrides where PostgreSQL
is (default ``postgresql://postgres@127.0.0.1:5432/test``, trust auth); the
tests are skipped, saying why, when it cannot be reached. The server and
database helpers live in ``server_support.py`` (importable without pytest, for
``benchmarks/server_latency.py``); the fixtures are here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import server_support
from tests.server.server_support import (  # noqa: F401 - re-exported: the server tests import them from here
    ADMIN_DSN,
    SERVER_START_TIMEOUT_S,
    MlflowServer,
    database_url,
    free_port,
    fresh_database,
)
from tests.server.server_support import admin_connection as _admin_connection
from tests.server.server_support import stop as _stop  # noqa: F401 - re-exported for test_plain_server


@pytest.fixture(scope="session")
def postgres() -> str:
    """The admin DSN, or a skip saying PostgreSQL is not reachable."""
    try:
        _admin_connection().close()
    except Exception as exc:  # any driver error means: no database to test against
        pytest.skip(f"PostgreSQL not reachable at {ADMIN_DSN} ({exc.__class__.__name__}); set GOVERN_TEST_PG")
    return ADMIN_DSN


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


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory, postgres) -> Iterator[MlflowServer]:
    """``mlflow server --app-name basic-auth`` with a PostgreSQL backend store, started once per session."""
    with running_server(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server


def running_server(root: Path) -> contextlib.AbstractContextManager[MlflowServer]:
    """A basic-auth MLflow server (PostgreSQL backend, served artifacts under ``root``) and its own trail
    database, stopped and dropped on exit. A team's server is one of these: its registry and its trail
    belong together, so ``govern audit verify`` sees no other test's models. A server that does not come
    up fails the test (``pytest.fail``) with its log's tail."""
    return server_support.running_server(root, fail=pytest.fail)
