"""Post-deployment monitoring: a window of production traffic judged against a baseline, as a record.

    govern monitor govllm-sft 3 --traffic gateway-2026-11-20.jsonl [--baseline earlier.jsonl]

* :mod:`~governance.monitoring.traffic` — the request-log shape (pydantic) and the window reader;
* :mod:`~governance.monitoring.checks` — the rules of ``policies/monitoring.yaml`` (scipy tests);
* :mod:`~governance.monitoring.models` — the registered reward model and the sentence encoder;
* :mod:`~governance.monitoring.monitor` — baseline, checking, and the record (MLflow run, trail event);
* :mod:`~governance.monitoring.charts` — the drift report's and audit report's SVG charts.

Heavy imports (torch, presidio, transformers) happen on first use.
"""

from governance.monitoring.monitor import (
    MonitorResult,
    check_window,
    load_monitoring_policy,
    recommend_rollback,
    record_check,
)
from governance.monitoring.traffic import TrafficRecord, Window, read_window

__all__ = [
    "MonitorResult",
    "TrafficRecord",
    "Window",
    "check_window",
    "load_monitoring_policy",
    "read_window",
    "record_check",
    "recommend_rollback",
]
