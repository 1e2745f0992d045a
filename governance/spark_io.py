"""Spark plumbing the gates share: one session per process, and a dataset file as numbered records.

A gate on Spark must judge the same records, under the same numbers, as the
local readers of :mod:`governance.records`: JSON Lines are read as text lines
numbered from 1 (blank lines keep their number and are skipped by the UDFs),
Parquet as rows numbered from 1 in file order, each row as one JSON text.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
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


def is_local_master(master: str) -> bool:
    """Whether Spark's executors run in this process's machine (``local``, ``local[4]``, ``local[*, 2]``)."""
    return master == "local" or master.startswith("local[")


@contextlib.contextmanager
def judged_file(spark: Any, path: str | Path) -> Iterator[tuple[Path, str]]:
    """The file a gate's Spark pass reads, and the SHA-256 its decision binds.

    On a local master the executors run on this machine and read a private copy of the file hashed as it was
    made (:func:`governance.lineage.hashed_file_copy`): the bytes scanned are the bytes bound, whatever the path
    holds meanwhile. On a cluster the executors read the path themselves (storage every executor sees), which the
    driver cannot hash as they read it: the file is hashed before the pass and refused if it hashes otherwise
    after (a swap that is put back in between is not seen: the local engine, or a local master, binds what it read).
    """
    from governance.lineage import hashed_file_copy, sha256_file

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if is_local_master(str(spark.sparkContext.master)):
        with hashed_file_copy(path) as (copy, digest):
            yield copy, digest
        return
    before = sha256_file(path)
    yield path, before
    if sha256_file(path) != before:
        raise DataError(f"{path}: changed while it was scanned; nothing is bound to it, re-run the scan")


def records_frame(spark: Any, path: str | Path, *, label: str | Path | None = None) -> Any:
    """``(line long, value string)``: the file's records as JSON texts, numbered as iter_records numbers them.

    ``label`` is the name messages give the file (the original of a private copy read in its place)."""
    from pyspark.sql import functions as F

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{label or path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = spark.read.parquet(str(path.resolve()))  # the JVM resolves relative paths against its own cwd
        frame = frame.select(F.to_json(F.struct(*[F.col(c) for c in frame.columns])).alias("value"))
    elif suffix == ".jsonl":
        # Spark's text source replaces bytes that are not UTF-8 with U+FFFD: refuse them first, as the local engine does
        require_utf8_lines(path, label=label)
        frame = spark.read.text(str(path.resolve()))
    else:
        raise ConfigError(f"{label or path}: engine spark reads JSON Lines and Parquet; use engine local for {suffix}")
    numbered = frame.rdd.zipWithIndex().map(lambda pair: (pair[1] + 1, pair[0]["value"]))
    return spark.createDataFrame(numbered, "line long, value string")
