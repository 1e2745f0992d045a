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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--baseline-records", type=int, default=2_000)
    parser.add_argument("--reward-model", metavar="NAME", help="score with this registered reward model too")
    args = parser.parse_args(argv)
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
