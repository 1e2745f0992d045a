"""How long a reviewer or release owner waits: approve, promote and rollback against the local SQLite store.

    python benchmarks/registry_ops.py [--rounds 5] [--json out.json]

In a scratch folder (its own ``mlflow.db`` and the ``audit.db`` beside it, the
shipped ``policies/approvals.yaml``), each round registers two fresh versions
of one model (untimed: a run, a tiny artifact, the lineage tags, the trail
record), then times, wall-clock and in-process, exactly what ``govern`` runs
after argument parsing:

* **approve** — identity, policy, registry preflight, the trail append under
  its lock, the ``governance.*`` tags mirrored (two reviewers per version);
* **promote** — the same, plus the promotion rules and the ``production`` alias;
* **rollback** — the previous production version found in the trail, re-checked,
  the alias moved back.

One warm-up operation runs first, untimed, so interpreter imports and MLflow's
store initialisation are not counted (a ``govern`` process pays those once,
before any of these). Goal: every operation ≤ 1 s; exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 1.0


def register(name: str) -> str:
    """A version as the register stage leaves it (untimed set-up)."""
    from governance import approvals, registry

    client = registry.client()
    experiment = registry.ensure_experiment("registry-ops-benchmark")
    run = client.create_run(experiment)
    client.log_text(run.info.run_id, "tiny weights", "model/weights.txt")
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    version = str(
        client.create_model_version(
            name,
            source=f"{run.info.artifact_uri}/model",
            run_id=run.info.run_id,
            tags={
                "lineage.trained_by": "trainer",
                "lineage.registered_by": "ci-bot",
                "lineage.risk_tier": "medium",
                "lineage.gate_decisions": "passed",
            },
        ).version
    )
    approvals.record_registration(
        name, version, actor="ci-bot", evidence={"model_sha256": "ab" * 32}, gate_status="passed", eval_status="passed"
    )
    return version


def timed(samples: dict[str, list[float]], op: str, user: str, call) -> None:
    os.environ["GOVERN_USER"] = user
    start = time.perf_counter()
    call()
    samples[op].append(time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="fresh version pairs to time (default: %(default)s)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="registry-ops-"))
    try:
        (scratch / "policies").mkdir()
        for name in ("approvals.yaml", "waivers.yaml"):
            shutil.copy(REPO / "policies" / name, scratch / "policies" / name)
        os.environ.update(
            {
                "MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlflow.db'}",
                "GOVERN_POLICY_DIR": str(scratch / "policies"),
            }
        )
        os.environ.pop("GOVERN_AUDIT_URL", None)  # the default: audit.db beside mlflow.db
        from governance import approvals, trail

        # Warm-up: imports, the MLflow schema, the audit tables
        warm = register("warmup")
        timed({"warmup": []}, "warmup", "alice", lambda: approvals.approve("warmup", warm, reason="warm-up"))

        samples: dict[str, list[float]] = {"approve": [], "promote": [], "rollback": []}
        for round_ in range(args.rounds):
            name = f"bench-{round_}"
            first, second = register(name), register(name)
            for version in (first, second):
                for reviewer in ("alice", "bob"):
                    timed(samples, "approve", reviewer, partial(approvals.approve, name, version, reason="ok"))
                timed(samples, "promote", "dana", partial(approvals.promote, name, version))
            timed(samples, "rollback", "dana", partial(approvals.rollback, name, reason="benchmark"))
        verification = trail.verify()
        if not verification.ok:
            print(verification.line(), file=sys.stderr)  # noqa: T201
            return 1

        figures = {
            op: {
                "n": len(values),
                "median_s": round(statistics.median(values), 4),
                "max_s": round(max(values), 4),
            }
            for op, values in samples.items()
        }
        print(f"{'operation':<10} {'n':>3} {'median':>9} {'max':>9}   goal <= {GOAL_S:.1f} s")  # noqa: T201
        for op, figure in figures.items():
            verdict = "ok" if figure["max_s"] <= GOAL_S else "SLOW"
            print(  # noqa: T201
                f"{op:<10} {figure['n']:>3} {figure['median_s']:>8.3f}s {figure['max_s']:>8.3f}s   {verdict}"
            )
        events = len(trail.events())
        print(f"audit trail: {events} events, chain verified ({trail.audit_url()})")  # noqa: T201
        if args.json is not None:
            args.json.write_text(json.dumps({"goal_s": GOAL_S, "operations": figures}, indent=2) + "\n")
        return 0 if all(f["max_s"] <= GOAL_S for f in figures.values()) else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
