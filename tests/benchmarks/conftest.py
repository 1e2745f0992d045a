"""Shared by the benchmarks' tests: a benchmark script, imported as a module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / f"benchmarks/{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    """benchmarks/refusal_judge.py."""
    return _script("refusal_judge")


@pytest.fixture(scope="module")
def inputs():
    """benchmarks/refusal_head_inputs.py."""
    return _script("refusal_head_inputs")


@pytest.fixture(scope="module")
def encoders():
    """benchmarks/refusal_encoders.py."""
    return _script("refusal_encoders")
