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


def test_writers_registering_one_lineage_at_once_keep_one_version(mlflow_server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow_server.admin[1])
    client = registry.client()
    run_id = client.create_run(registry.ensure_experiment("race-tests")).info.run_id
    client.log_text(run_id, "tiny weights", "model/weights.txt")
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
