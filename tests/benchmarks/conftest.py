"""Shared by the refusal judge benchmark's tests: the benchmark script, imported as a module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("refusal_judge", REPO / "benchmarks/refusal_judge.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("refusal_judge", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module
