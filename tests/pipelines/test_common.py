"""pipelines._common: what every stage process shares."""

from __future__ import annotations

import sys

import pytest

from pipelines._common import without_optional_backends


def test_an_optional_backend_left_out_fails_its_import(monkeypatch):
    monkeypatch.delitem(sys.modules, "stage_probe_backend", raising=False)
    without_optional_backends("stage_probe_backend")
    try:
        with pytest.raises(ImportError, match=r"^import of stage_probe_backend halted; None in sys.modules$"):
            import stage_probe_backend  # noqa: F401
    finally:
        del sys.modules["stage_probe_backend"]


def test_a_module_already_imported_is_left_alone():
    import json

    without_optional_backends("json")
    assert sys.modules["json"] is json
    import json as again

    assert again is json
