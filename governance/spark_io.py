"""Spark plumbing the gates share: one session per process, and a dataset file as numbered records.

A gate on Spark must judge the same records, under the same numbers, as the
local readers of :mod:`governance.records`: JSON Lines are read as text lines
numbered from 1 (blank lines keep their number and are skipped by the UDFs),
Parquet as rows numbered from 1 in file order, each row as one JSON text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from governance.errors import ConfigError, DataError
from governance.records import require_utf8_lines


def spark_session(settings: dict[str, Any]) -> Any:
    """One SparkSession per process, from ``spark:`` params (``master``, ``app_name``, ``conf``)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("engine: spark needs pyspark (pip install pyspark)") from None
    builder = SparkSession.builder.master(str(settings.get("master", "local[2]"))).appName(
        str(settings.get("app_name", "governance-gates"))
    )
    # Arrow moves the record batches to and from the pandas UDFs; quiet UI for a batch job
    conf = {"spark.sql.execution.arrow.pyspark.enabled": "true", "spark.ui.showConsoleProgress": "false"}
    conf.update({str(k): str(v) for k, v in (settings.get("conf") or {}).items()})
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def records_frame(spark: Any, path: str | Path) -> Any:
    """``(line long, value string)``: the file's records as JSON texts, numbered as iter_records numbers them."""
    from pyspark.sql import functions as F

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = spark.read.parquet(str(path.resolve()))  # the JVM resolves relative paths against its own cwd
        frame = frame.select(F.to_json(F.struct(*[F.col(c) for c in frame.columns])).alias("value"))
    elif suffix == ".jsonl":
        # Spark's text source replaces bytes that are not UTF-8 with U+FFFD: refuse them first, as the local engine does
        require_utf8_lines(path)
        frame = spark.read.text(str(path.resolve()))
    else:
        raise ConfigError(f"{path}: engine spark reads JSON Lines and Parquet; use engine local for {suffix}")
    numbered = frame.rdd.zipWithIndex().map(lambda pair: (pair[1] + 1, pair[0]["value"]))
    return spark.createDataFrame(numbered, "line long, value string")
