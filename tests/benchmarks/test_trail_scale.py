"""benchmarks/trail_scale.py end to end at a few hundred events: every figure it prints comes from a clean run.

The million-event run is the benchmark's job (minutes); this keeps its paths, ``--before`` included, working.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_trail_scale_measures_a_small_sqlite_trail_side_by_side_with_a_commit(tmp_path):
    out = tmp_path / "trail_scale.json"
    command = [sys.executable, "benchmarks/trail_scale.py", "--events", "300", "--stores", "sqlite"]
    command += ["--appends", "3", "--checks", "1", "--before", "HEAD", "--json", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (store,) = json.loads(out.read_text())["stores"]
    assert store["full_verify"]["exit_code"] == 0
    assert store["full_verify"]["output"].startswith("audit trail intact: 300 events, head ")
    assert store["full_verify_before"]["before_events_per_cpu_s"] > 0 and store["full_verify_before"]["ratio"] > 0
    assert store["events_after"] == 300 + 1 + 100 + 3  # each action-check sample appended 0, 1 and 100 events
