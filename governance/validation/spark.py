"""The validation gate on Spark: the same derived columns, the same GX suites, the same decision.

    spark = governance.spark_io.spark_session({"master": "local[2]"})
    decision = run_validation_gate(kind="sft", train=..., eval_path=..., policy_path=..., waivers_path=...,
                                   stage="validate_sft", scan_file=spark_file_scanner(spark))

:func:`spark_file_scanner` returns what :func:`~governance.validation.gate.validate_dataset`
calls once per file. It reads the file as a DataFrame (see
:mod:`governance.spark_io`), derives each record's checked values with the
same :func:`~governance.validation.schema.derive` in a pandas UDF (a
structural error is the same one-line :class:`DataError`, first by line),
marks duplicates with a window over the normalised-text hash (the first
occurrence by line is not a duplicate, as in the streaming pass) and eval
prompts found in the train file with a join, then runs the row suite through
great-expectations' **Spark datasource** on the whole DataFrame. Counts, first
failing lines, lengths and the annotation sample feed the same dataset-level
measurements and summary suite as the local engine; only ``details.engine``
and the per-file ``chunks`` (one Spark batch) say which engine ran.

Trust boundary: executors see raw records; only derived values (flags,
lengths, hashes, annotation ids and scores) leave them, as in the local gate.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from governance.errors import DataError
from governance.policy.data import AnyKindPolicy
from governance.records import MAX_RECORD_BYTES, loads_record
from governance.spark_io import judged_file, records_frame
from governance.validation import expectations as ge
from governance.validation.schema import Derived, Rating, derive

DERIVED_SCHEMA = (
    "line long, error string, min_text_chars long, turn_order_ok boolean, chars long, dup_key string, "
    "prompt_key string, chosen_differs boolean, label boolean, has_provenance boolean, "
    "answer_present boolean, answer_numeric boolean, annotation string"
)


def _derive_batches(kind: str, label: str, annotated: bool) -> Callable:
    def derive_batches(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd

        for batch in batches:
            rows = []
            for line, raw in zip(batch["line"], batch["value"], strict=True):
                line = int(line)
                if raw is None or not raw.strip():
                    continue  # a blank JSONL line is no record, as in iter_records
                try:
                    size = len(raw.encode("utf-8"))
                    if size > MAX_RECORD_BYTES:
                        raise DataError(
                            f"{label}:{line}: record is {size} bytes (max {MAX_RECORD_BYTES}); "
                            "split it or check the file is JSON Lines"
                        )
                    data = loads_record(raw, f"{label}:{line}")
                    if not isinstance(data, dict):
                        raise DataError(f"{label}:{line}: expected a JSON object per line, got {type(data).__name__}")
                    d = derive(kind, data, line, label)
                except DataError as exc:
                    rows.append({"line": line, "error": str(exc)})
                    continue
                rows.append(
                    {
                        "line": line,
                        "min_text_chars": d.min_text_chars,
                        "turn_order_ok": d.turn_order_ok,
                        "chars": d.chars,
                        "dup_key": str(d.dup_key),
                        "prompt_key": str(d.prompt_key),
                        "chosen_differs": d.chosen_differs,
                        "label": d.label,
                        "has_provenance": d.has_provenance,
                        "answer_present": d.answer_present,
                        "answer_numeric": d.answer_numeric,
                        "annotation": json.dumps(
                            {
                                "annotator_id": d.annotator_id,
                                "guideline_version": d.guideline_version,
                                "ratings": [dataclasses.asdict(r) for r in d.ratings],
                            }
                        )
                        if annotated
                        else None,
                    }
                )
            frame = pd.DataFrame(rows, columns=[c.split()[0] for c in DERIVED_SCHEMA.split(", ")])
            yield frame.astype(object).where(frame.notna(), None)

    return derive_batches


@functools.cache
def _spark_batch_definition() -> Any:
    """The whole-DataFrame batch definition of a Spark datasource in the gate's GX context."""
    source = ge._context().data_sources.add_spark("governance_validation_spark")
    return source.add_dataframe_asset("records").add_batch_definition_whole_dataframe("whole_dataframe")


def _run_row_suite(name: str, frame: Any, expectations: list[Any]) -> dict[str, ge.Outcome]:
    """The row suite on a Spark DataFrame through GX's Spark datasource; outcomes by check key."""
    import great_expectations as gx

    suite = gx.ExpectationSuite(name=name, expectations=expectations)
    batch = _spark_batch_definition().get_batch(batch_parameters={"dataframe": frame})
    result_format = {"result_format": "SUMMARY", "unexpected_index_column_names": ["line"]}
    result = batch.validate(suite, result_format=result_format)
    outcomes = {}
    for item in result.results:
        config = item.expectation_config
        info = item.exception_info or {}
        if info.get("raised_exception"):
            raise RuntimeError(f"great_expectations could not evaluate {config.type}: {info.get('exception_message')}")
        details = item.result or {}
        partial = details.get("partial_unexpected_index_list") or []
        indices = [int(e["line"]) if isinstance(e, dict) else int(e) for e in partial]
        key = config.meta["key"]
        outcomes[key] = ge.Outcome(
            key=key,
            expectation=config.type,
            success=bool(item.success),
            element_count=int(details.get("element_count", 0)),
            unexpected_count=int(details.get("unexpected_count", 0) or 0),
            first_index=min(indices) if indices else None,
            observed=details.get("observed_value"),
        )
    return outcomes


def spark_file_scanner(spark: Any) -> Callable[..., tuple[Any, set[int]]]:
    """What ``validate_dataset`` calls per file (``scan_file=``), running on ``spark``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from governance.validation.gate import FileScan, Tally, _row_expectation, row_checks

    def scan_file(path: Path, **options: Any) -> tuple[FileScan, set[int]]:
        # The executors read the bytes the decision binds (a private copy on a local master; see judged_file)
        with judged_file(spark, path) as (source, digest):
            scan, prompts = scan_source(path, source, **options)
        scan.sha256 = digest
        return scan, prompts

    def scan_source(
        path: Path,
        source: Path,
        *,
        role: str,
        kind: str,
        policy: AnyKindPolicy,
        chunk_rows: int,
        train_prompts: set[int] | None,
        annotation: Any,
        progress: bool,
    ) -> tuple[FileScan, set[int]]:
        checks = row_checks(kind, policy, role=role)
        scan = FileScan(path=str(path), role=role, tallies={c.key: Tally() for c in checks})
        derived = records_frame(spark, source, label=path).mapInPandas(
            _derive_batches(kind, str(path), annotation is not None), DERIVED_SCHEMA
        )
        derived = derived.cache()
        try:
            error = derived.where("error is not null").orderBy("line").limit(1).collect()
            if error:
                raise DataError(error[0]["error"])
            tokens = policy.length_bounds.unit == "approx_tokens"
            length = F.floor((F.col("chars") + 3) / 4) if tokens else F.col("chars")
            first = Window.partitionBy("dup_key").orderBy("line")
            rows = derived.select(
                "*",
                length.cast("long").alias("length"),
                (F.row_number().over(first) > 1).alias("is_duplicate"),
            )
            if role == "eval":
                known = spark.createDataFrame([(str(k),) for k in (train_prompts or set())], "prompt_key string")
                known = known.select("prompt_key", F.lit(True).alias("in_train"))
                rows = rows.join(F.broadcast(known), on="prompt_key", how="left").fillna(False, ["in_train"])
            rows = rows.orderBy("line").cache()
            totals = rows.agg(
                F.count("*"),
                F.sum("length"),
                F.min("length"),
                F.max("length"),
                F.sum(F.when(F.col("label"), 1).otherwise(0)),
            ).collect()[0]
            scan.rows = int(totals[0])
            if scan.rows == 0:
                raise DataError(f"{path}: no records (empty file)")
            scan.length_sum, scan.length_min, scan.length_max, scan.desirable = (int(v or 0) for v in totals[1:])
            # The row suite through GX's Spark datasource, as one batch
            suite = [_row_expectation(check, policy) for check in checks]
            for key, outcome in _run_row_suite(f"{kind}_{role}_rows", rows, suite).items():
                tally = scan.tallies[key]
                tally.expectation = outcome.expectation
                tally.unexpected = outcome.unexpected_count
                tally.first_line = outcome.first_index
            scan.chunks = 1
            prompts = (
                {int(r["prompt_key"]) for r in rows.select("prompt_key").distinct().toLocalIterator()}
                if role == "train"
                else set()
            )
            if annotation is not None:
                for row in rows.select("annotation").toLocalIterator():
                    item = json.loads(row["annotation"])
                    annotation.add(_annotation_view(item), labels=kind == "kto")
            rows.unpersist()
        finally:
            derived.unpersist()
        return scan, prompts

    scan_file.engine = {"name": "spark", "spark": spark.version, "master": spark.sparkContext.master}
    return scan_file


def _annotation_view(item: dict[str, Any]) -> Derived:
    """A Derived carrying only what AnnotationTally reads (ids, versions, ratings)."""
    return Derived(
        line=0,
        turn_order_ok=True,
        min_text_chars=0,
        chars=0,
        dup_key=0,
        prompt_key=0,
        annotator_id=item["annotator_id"],
        guideline_version=item["guideline_version"],
        ratings=[Rating(**r) for r in item["ratings"]],
    )
