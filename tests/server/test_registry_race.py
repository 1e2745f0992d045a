"""Writers registering the same lineage at the same moment against one ``mlflow server`` keep one version.

Four threads pass a barrier and call :func:`governance.registry.register_version` at once for a model
nobody registered yet: each may create the registered model and a version; whoever holds a higher
number than another writer's for the same lineage deletes its own (``registry._settle_duplicates``).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from governance import registry

pytestmark = pytest.mark.server

WRITERS = 4


@pytest.fixture
def as_admin(mlflow_server, monkeypatch):
    """The server's client as its admin, and a run holding tiny weights under ``model/``."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow_server.admin[1])
    client = registry.client()
    run_id = client.create_run(registry.ensure_experiment("race-tests")).info.run_id
    client.log_text(run_id, "tiny weights", "model/weights.txt")
    return client, run_id


def test_writers_registering_one_lineage_at_once_keep_one_version(as_admin):
    client, run_id = as_admin
    barrier = threading.Barrier(WRITERS)

    def register(_: int) -> tuple[str, bool]:
        barrier.wait()
        version, created = registry.register_version(
            "race-model", run_id=run_id, artifact_path="model", lineage_key="lineage-1", tags={}
        )
        return str(version.version), created

    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(register, range(WRITERS)))
    kept = {version for version, _ in results}
    assert len(kept) == 1, results
    assert [v.version for v in client.search_model_versions("name = 'race-model'")] == [kept.pop()]
    assert sum(created for _, created in results) == 1, results


ROUNDS = 5


def test_writers_tagging_one_version_at_once_all_succeed(as_admin):
    """MLflow writes a tag or alias as select-then-insert: two writers setting a new key at once race on its key.

    The one whose insert comes second gets the store's unique-key violation back (PostgreSQL:
    ``duplicate key value violates unique constraint "model_version_tag_pk"``); the CI run of two
    clones registering the same weights once failed there. Each round, writers pass a barrier and set
    the same new keys on one version, on its registered model and the same alias: every call succeeds and
    the store holds one row per key.
    """
    client, run_id = as_admin
    version, _ = registry.register_version(
        "race-tagged", run_id=run_id, artifact_path="model", lineage_key="lineage-tagged", tags={}
    )
    barrier = threading.Barrier(WRITERS)

    def write(round_: int, writer: int) -> None:
        barrier.wait()
        registry.set_version_tags("race-tagged", version.version, {f"governance.k{round_}.{i}": "v" for i in range(4)})
        registry.set_model_tag("race-tagged", f"governance.m{round_}", str(writer))
        registry.set_alias("race-tagged", f"a{round_}", version.version)

    for round_ in range(ROUNDS):
        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(lambda w, r=round_: write(r, w), range(WRITERS)))
    tags = client.get_model_version("race-tagged", version.version).tags
    assert {k for k in tags if k.startswith("governance.k")} == {
        f"governance.k{r}.{i}" for r in range(ROUNDS) for i in range(4)
    }
    model = client.get_registered_model("race-tagged")
    assert {k for k in model.tags if k.startswith("governance.m")} == {f"governance.m{r}" for r in range(ROUNDS)}
    assert set(model.aliases) == {f"a{r}" for r in range(ROUNDS)}
