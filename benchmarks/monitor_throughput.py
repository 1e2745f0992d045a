"""Monitoring throughput: ``govern monitor``'s checks on a generated window of production traffic.

    python benchmarks/monitor_throughput.py                    # 100k requests vs a 2k-request baseline
    python benchmarks/monitor_throughput.py --records 10000    # quicker

Generates a JSON Lines request log like a gateway writes (chat prompts,
support answers of varied length, ~3% refusals, ~1% of prompts with a planted
fake e-mail address or phone number, latency, tokens, cost, feedback on half
the requests) and an earlier 2,000-request window as the baseline, then runs
:func:`governance.monitoring.check_window` under the shipped
``policies/monitoring.yaml`` and prints records/s overall and per step, and
peak RSS (``resource.getrusage``). Every rule runs: the PII scanner on every
prompt and response (``pii.sample_size: null``), all-MiniLM-L6-v2 on the
policy's sample (2,000 per side). The reward model is left out (it needs a
registered model; its cost is bounded by ``preference_drift.sample_size``, not
by the window) unless ``--reward-model NAME`` names one registered at
``MLFLOW_TRACKING_URI``. Nothing is recorded (no MLflow run, no trail event).

``--startup`` measures what a reviewer waits for instead: ``govern monitor``'s
check of the shipped 200-request window (``data/traffic/window.jsonl`` against
``data/traffic/baseline.jsonl``) as a fresh process each time, imports and
model loading included, for the code at ``--before`` and ``--after`` (git
revisions, default HEAD, each run from a ``git archive`` of it), interleaved and repeated
(the machine is shared and noisy), cold and warm baseline-embedding cache.
It prints each variant's median and the ratio, and checks that every variant
reached the same verdicts (rule status, observed value, message).

    python benchmarks/monitor_throughput.py --startup --repeat 3

Measured on the development box (2 CPU cores shared with 7 other agents, load
average ~10, so each process got a fraction of a core): 100k requests (51 MB)
against 2k: 1,266 s, 79 records/s overall; reading 4,500 records/s, length and
refusal tests 7,700 records/s, PII scanning of every prompt and response 298
records/s (335 s), embeddings of the 2 x 2,000 sampled responses 895 s (the
encoder on a contended CPU); peak RSS 1,048 MiB (presidio, torch and the
encoder loaded; the window's columns are a small part). The PII and embedding
steps dominate; embeddings are bounded by ``sample_size``, PII by the window.
A second run (load average 15-25, idle OpenMP threads passive): 1,155 s wall,
87 records/s, peak RSS 1,034 MiB, but only 179 s of CPU for the whole process
(generation and imports included): about 560+ records/s of one core's work.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from governance.monitoring import check_window  # noqa: E402

TOPICS = [
    "reset my online banking password",
    "freeze a lost debit card",
    "dispute a card transaction",
    "raise my daily card limit",
    "set up a standing order",
    "open a joint account",
    "understand an insurance deductible",
    "move money to an easy saver account",
]
STEPS = [
    "Open the app and sign in.",
    "Tap the menu and choose the right section.",
    "Check the details shown on the screen.",
    "Confirm with your passcode.",
    "You will get a confirmation message within a minute.",
    "If anything looks wrong, contact an adviser from the Help tab.",
    "Changes apply immediately on working days.",
]
REFUSAL = "I'm sorry, but I can't help with that request."


def request(rng: random.Random, index: int, start: dt.datetime) -> dict:
    topic = rng.choice(TOPICS)
    prompt = f"How do I {topic}?"
    if rng.random() < 0.01:
        prompt += rng.choice([f" Reply to sam{index}@example.com.", f" Call 415-555-01{index % 90 + 10:02d}."])
    if rng.random() < 0.03:
        response = REFUSAL
    else:
        response = f"To {topic}: " + " ".join(rng.sample(STEPS, rng.randint(2, len(STEPS))))
    tokens_in, tokens_out = len(prompt) // 4 + 10, len(response) // 4
    return {
        "request_id": f"req-{index:07d}",
        "timestamp": (start + dt.timedelta(seconds=index)).isoformat().replace("+00:00", "Z"),
        "model": "govllm-sft",
        "version": "1",
        "prompt": [{"role": "user", "content": prompt}],
        "response": response,
        "latency_ms": round(rng.lognormvariate(6.4, 0.4), 1),
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "cost": round((tokens_in * 0.5 + tokens_out * 1.5) / 1e6, 8),
        "feedback": rng.choice([1, 1, 1, 1, 0, -1]) if rng.random() < 0.5 else None,
    }


def write_log(path: Path, n: int, seed: int, start: dt.datetime) -> int:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for index in range(n):
            handle.write(json.dumps(request(rng, index, start)) + "\n")
    return path.stat().st_size


#: The last commit before ``govern monitor`` loaded models per rule and cached baseline embeddings.
BEFORE_LAZY_MODELS = "8f7d6e4"

_CHECK = """
import json, sys, time
started = time.perf_counter()
from governance.monitoring import check_window
result = check_window("govllm-sft", "1", sys.argv[1], baseline=sys.argv[2], policy_path=sys.argv[3], reward_model=None)
rules = [{k: r[k] for k in ("rule_id", "status", "observed", "message")} for r in result.summary()["rules"]]
heavy = [m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules]
print(json.dumps({"in_process": time.perf_counter() - started, "timings": result.timings, "rules": rules,
                  "heavy": heavy}))
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _check_once(code_root: Path, cache: Path, env: dict[str, str]) -> tuple[float, float, dict]:
    """(wall, CPU seconds, outcome) of one ``check_window`` of the shipped window in a fresh interpreter
    importing from ``code_root``. CPU (user + system) is less moved by other jobs on a shared machine."""
    window, baseline = REPO / "data/traffic/window.jsonl", REPO / "data/traffic/baseline.jsonl"
    cpu, started = _children_cpu(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHECK, str(window), str(baseline), str(code_root / "policies/monitoring.yaml")],
        cwd=cache.parent,  # one folder for every variant: messages name the (absent) store under it
        env={**env, "PYTHONPATH": str(code_root), "GOVERN_MONITOR_CACHE": str(cache)},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"monitor_throughput: the check at {code_root} failed:\n{done.stderr[-3000:]}")
    wall = time.perf_counter() - started
    return wall, _children_cpu() - cpu, json.loads(done.stdout.strip().splitlines()[-1])


def startup(before: str, after: str, repeat: int) -> int:
    """Before/after wall time of checking the shipped 200-request window, fresh process each time."""
    import statistics

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    labels = ("before", "after, cold cache", "after, warm cache")
    times: dict[str, list[float]] = {label: [] for label in labels}
    cpus: dict[str, list[float]] = {label: [] for label in labels}
    outcomes: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="monitor-startup-") as tmp:
        # Both sides from commits (``git archive``): others' unfinished edits in the checkout stay out
        trees = {}
        for side, rev in (("before", before), ("after", after)):
            trees[side] = Path(tmp) / side
            trees[side].mkdir()
            archive = subprocess.run(
                ["git", "archive", rev, "governance", "policies"], cwd=REPO, capture_output=True, check=True
            )
            subprocess.run(["tar", "-x", "-C", str(trees[side])], input=archive.stdout, check=True)
        # The checks run in one folder, a checkout where both sides' policies are committed: the monitor decides
        # only under a reviewed policy, and every variant's messages name the same (absent) store
        git = ["git", "-C", tmp, "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
        for args in (["init", "-q"], ["add", "before/policies", "after/policies"], ["commit", "-qm", "policies"]):
            subprocess.run([*git, *args], check=True, capture_output=True)
        old_tree, new_tree = trees["before"], trees["after"]
        for round_ in range(repeat):
            cold = Path(tmp) / f"cache-{round_}"
            for label, root, cache in (
                ("before", old_tree, cold),
                ("after, cold cache", new_tree, cold),
                ("after, warm cache", new_tree, cold),
            ):
                wall, cpu, outcome = _check_once(root, cache, env)
                times[label].append(wall)
                cpus[label].append(cpu)
                outcomes[label] = outcome
                steps = ", ".join(f"{k} {v:.1f}" for k, v in outcome["timings"].items() if v >= 0.05)
                print(  # noqa: T201
                    f"round {round_ + 1} {label:<18} {wall:6.1f} s wall {cpu:6.1f} s CPU  "
                    f"({steps}; loaded: {outcome['heavy']}; load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
    reference = outcomes["before"]["rules"]
    same = all(o["rules"] == reference for o in outcomes.values())
    print(f"\nmedian of {repeat}, {REPO / 'data/traffic/window.jsonl'} (200 requests):")  # noqa: T201
    for measure, values in (("wall", times), ("CPU", cpus)):
        medians = {label: statistics.median(v) for label, v in values.items()}
        for label, value in medians.items():
            ratio = medians["before"] / value if value else float("inf")
            print(f"  {measure:<4} {label:<18} {value:6.1f} s   {ratio:4.1f}x less than before")  # noqa: T201
    print(f"same verdicts, observed values and messages in every variant: {'yes' if same else 'NO'}")  # noqa: T201
    return 0 if same else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--baseline-records", type=int, default=2_000)
    parser.add_argument("--reward-model", metavar="NAME", help="score with this registered reward model too")
    parser.add_argument("--startup", action="store_true", help="before/after wall time on the shipped window")
    parser.add_argument("--before", default=BEFORE_LAZY_MODELS, metavar="REV", help="git revision to compare with")
    parser.add_argument("--after", default="HEAD", metavar="REV", help="git revision measured as after")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if args.startup:
        return startup(args.before, args.after, args.repeat)
    with tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp:
        window, baseline = Path(tmp) / "window.jsonl", Path(tmp) / "baseline.jsonl"
        size = write_log(window, args.records, 13, dt.datetime(2026, 11, 20, tzinfo=dt.UTC))
        write_log(baseline, args.baseline_records, 7, dt.datetime(2026, 11, 13, tzinfo=dt.UTC))
        reward_model = None
        if args.reward_model:
            from governance.monitoring.models import load_reward_model

            reward_model = load_reward_model(args.reward_model)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        result = check_window(
            "govllm-sft",
            "1",
            window,
            baseline=baseline,
            policy_path=REPO / "policies/monitoring.yaml",
            reward_model=reward_model,
        )
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = len(result.window)
    print(f"window: {n:,} requests ({size / 1e6:.1f} MB JSONL), baseline {len(result.baseline.window):,}")  # noqa: T201
    print(f"verdict: {result.verdict}; " + ", ".join(f"{r.rule_id.split('.')[-1]} {r.status}" for r in result.results))  # noqa: T201
    print(f"total: {seconds:.1f} s, {n / seconds:,.0f} records/s")  # noqa: T201
    for step, step_seconds in result.timings.items():
        rate = f"{n / step_seconds:,.0f} records/s" if step_seconds > 0 else "-"
        print(f"  {step:<24} {step_seconds:8.2f} s  {rate}")  # noqa: T201
    print(f"peak RSS: {peak:,.0f} MiB (before checking: {rss_before:,.0f} MiB)")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
