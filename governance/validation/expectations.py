"""great-expectations plumbing: one ephemeral context per process, suites, and result parsing.

Two kinds of suites are run, both through a real GX 1.x ephemeral context with
a pandas data source and a whole-DataFrame batch definition:

* **row suites** on each chunk of derived rows (one row per record, indexed by
  the record's line number), one expectation per row-level check; GE's
  ``unexpected_count`` and ``partial_unexpected_index_list`` give the failing
  count and the first failing line, summed over chunks;
* **summary suites** on a one-row DataFrame of dataset-level measurements
  (row count, rates, shares, agreement) with the policy thresholds; each rule's
  verdict is the ``success`` of its expectation here.

Building a GX context costs seconds of imports, so :func:`batch_definition`
builds it once per process and every validation reuses it.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

# GE logs its own import-time bookkeeping at INFO (hundreds of lines per process);
# only its warnings and errors belong in a stage's log.
logging.getLogger("great_expectations").setLevel(logging.WARNING)

#: How much of each result GE returns: counts plus the first 20 failing indices.
RESULT_FORMAT = "SUMMARY"


@dataclass(frozen=True)
class Outcome:
    """One expectation's result, reduced to what the gate needs."""

    key: str
    expectation: str
    success: bool
    element_count: int
    unexpected_count: int
    first_index: int | None
    observed: Any


@functools.cache
def _context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        # In memory only: no data docs site (and no temp directory) for a gate run.
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        # The gate draws its own progress bar; GE's per-metric bars would flood stderr.
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


@functools.cache
def batch_definition() -> Any:
    """The cached whole-DataFrame batch definition of the process-wide ephemeral context."""
    context = _context()
    source = context.data_sources.add_pandas("governance_validation")
    asset = source.add_dataframe_asset("records")
    return asset.add_batch_definition_whole_dataframe("whole_dataframe")


def ge_version() -> str:
    import great_expectations as gx

    return str(gx.__version__)


def in_set(key: str, column: str, values: list[Any]) -> Any:
    """``expect_column_values_to_be_in_set`` tagged with the check ``key``."""
    import great_expectations as gx

    return gx.expectations.ExpectColumnValuesToBeInSet(column=column, value_set=values, meta={"key": key})


def between(key: str, column: str, min_value: float | None = None, max_value: float | None = None) -> Any:
    """``expect_column_values_to_be_between`` (inclusive) tagged with the check ``key``."""
    import great_expectations as gx

    return gx.expectations.ExpectColumnValuesToBeBetween(
        column=column, min_value=min_value, max_value=max_value, meta={"key": key}
    )


def not_null(key: str, column: str) -> Any:
    """``expect_column_values_to_not_be_null`` tagged with the check ``key``."""
    import great_expectations as gx

    return gx.expectations.ExpectColumnValuesToNotBeNull(column=column, meta={"key": key})


def run_suite(
    name: str, frame: pd.DataFrame, expectations: list[Any], *, index_column: str | None = None
) -> dict[str, Outcome]:
    """Validate ``frame`` against a suite of tagged expectations; outcomes by key.

    With ``index_column`` (the record's line number), GE reports failing rows by
    that column's value, so ``Outcome.first_index`` is the first failing line.

    A GE exception (a missing column, an unsupported type) is a bug in the gate,
    not a finding about the data, so it is raised rather than counted.
    """
    import great_expectations as gx

    suite = gx.ExpectationSuite(name=name, expectations=expectations)
    batch = batch_definition().get_batch(batch_parameters={"dataframe": frame})
    result_format: dict[str, Any] = {"result_format": RESULT_FORMAT}
    if index_column is not None:
        result_format["unexpected_index_column_names"] = [index_column]
    result = batch.validate(suite, result_format=result_format)
    outcomes: dict[str, Outcome] = {}
    for item in result.results:
        config = item.expectation_config
        info = item.exception_info or {}
        if info.get("raised_exception"):
            raise RuntimeError(f"great_expectations could not evaluate {config.type}: {info.get('exception_message')}")
        details = item.result or {}
        indices = [
            int(entry[index_column]) if isinstance(entry, dict) and index_column else int(entry)
            for entry in details.get("partial_unexpected_index_list") or []
        ]
        key = config.meta["key"]
        outcomes[key] = Outcome(
            key=key,
            expectation=config.type,
            success=bool(item.success),
            element_count=int(details.get("element_count", len(frame))),
            unexpected_count=int(details.get("unexpected_count", 0) or 0),
            first_index=min(indices) if indices else None,
            observed=details.get("observed_value"),
        )
    return outcomes
