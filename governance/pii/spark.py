"""The PII gate on Spark: the same presidio scanner in pandas UDFs, the same report and decision.

    spark = governance.spark_io.spark_session({"master": "local[2]"})
    scanner = SparkPiiScanner(policy, "policies/pii.yaml", spark)
    result = run_pii_gate(inputs, kind="sft", policy_path=..., stage=..., scanner=scanner)

:class:`SparkPiiScanner` is a :class:`~governance.pii.scan.PiiScanner` whose
``scan_file`` reads the input as a DataFrame (JSON Lines as text lines numbered
like :func:`governance.records.iter_records` numbers them, Parquet as rows in
file order) and runs the analyzer in a pandas UDF (``mapInPandas``). Each
Python worker builds one scanner from the broadcast policy (the "broadcast
engine") and calls its public ``findings_in_many`` on the string fields of
each record (one prefilter scan per record, as locally), so changes to the
scanner flow into the UDF unchanged: fields are normalised on the worker as
locally (:mod:`governance.pii.normalise`), and the spans it sends back are in the
field as written. The driver folds the per-record
findings, in line order, into the same :class:`~governance.pii.scan.FileScan`
the local engine builds; :func:`~governance.pii.gate.run_pii_gate` then
redacts, re-scans (on Spark too) and decides exactly as it does locally, so
decision, findings and cleared bytes are the same.

Trust boundary: executors see raw text; only spans, masked shapes and masked
snippets leave them (what ``findings.json`` lists), never a raw value. Inputs
and the staged cleared copy are read by path: on a cluster they must be on a
filesystem every executor sees. JSON Lines are decoded by Spark, which replaces
invalid UTF-8 instead of refusing it; the local engine names such a line.
What the executors parse is what the decision binds: on a local master they read
a private copy of the file hashed as it was made; on a cluster, where they read
the path themselves, the driver hashes the file before and after the scan and
refuses a file that changed in between (:func:`governance.spark_io.judged_file`).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from governance.errors import DataError
from governance.pii.kinds import KIND_FIELDS
from governance.pii.mask import mask_value, snippet
from governance.pii.scan import (
    FileScan,
    Finding,
    ListingBudget,
    PiiScanner,
    check_kind,
    in_batches,
)
from governance.policy.pii import PiiPolicy
from governance.records import MAX_RECORD_BYTES, Record, iter_text_fields, loads_record
from governance.spark_io import judged_file, records_frame

log = logging.getLogger(__name__)

#: What each record's UDF row carries back to the driver.
RESULT_SCHEMA = "line long, text_fields long, error string, findings string"


@functools.cache
def _worker_scanner(policy_json: str, policy_path: str) -> PiiScanner:
    """The scanner of one Python worker, built once from the broadcast policy (engine creation is slow)."""
    return PiiScanner(PiiPolicy.model_validate_json(policy_json), policy_path)


def _read_record(line: int, raw: str, kind: str, label: str) -> tuple[dict[str, Any] | None, str | None]:
    """One line's record, or the error the local scan would raise for it (naming file:line)."""
    path = Path(label)
    try:
        if len(raw.encode("utf-8")) > MAX_RECORD_BYTES:
            raise DataError(
                f"{path}:{line}: record is {len(raw.encode('utf-8'))} bytes (max {MAX_RECORD_BYTES}); "
                "split it or check the file is JSON Lines"
            )
        data = loads_record(raw, f"{path}:{line}")
        if not isinstance(data, dict):
            raise DataError(f"{path}:{line}: expected a JSON object per line, got {type(data).__name__}")
        check_kind(Record(line, data), kind, path)
    except DataError as exc:
        return None, str(exc)
    return data, None


def _scan_records(
    scanner: PiiScanner, records: list[tuple[int, list[tuple[str, str]]]], context_chars: int
) -> list[tuple[int, int, None, str | None]]:
    """Result rows of a batch of records (line, string fields): one prefilter scan for all their fields,
    as the local scan batches them; findings masked, as the local scan lists them."""
    found_in = scanner.findings_in_many([text for _line, fields in records for _path, text in fields])
    rows = []
    offset = 0
    for line, fields in records:
        found_all = []
        for (field_path, text), found in zip(fields, found_in[offset : offset + len(fields)], strict=True):
            known = [(f.start, f.end, f.entity) for f in found]
            for item in found:
                found_all.append(
                    {
                        "field": field_path,
                        "entity": item.entity,
                        "start": item.start,
                        "end": item.end,
                        "score": item.score,
                        "action": item.rule.action,
                        "rule_id": item.rule.id,
                        "also": list(item.also),
                        "masked": mask_value(item.entity, text[item.start : item.end]),
                        "snippet": snippet(
                            text, item.start, item.end, item.entity, known, context_chars, scanner.analyze_context
                        ),
                    }
                )
        offset += len(fields)
        rows.append((line, len(fields), None, json.dumps(found_all) if found_all else None))
    return rows


def _udf(policy_json: Any, policy_path: str, kind: str, label: str, context_chars: int) -> Callable:
    def scan_batches(batches: Iterator[Any]) -> Iterator[Any]:
        import pandas as pd

        scanner = _worker_scanner(policy_json.value, policy_path)
        for batch in batches:
            rows: list[tuple[int, int, str | None, str | None]] = []
            records: list[tuple[int, list[tuple[str, str]]]] = []
            for line, raw in zip(batch["line"], batch["value"], strict=True):
                if raw is None or not raw.strip():
                    continue  # a blank JSONL line is no record, as in iter_records
                data, error = _read_record(int(line), raw, kind, label)
                if error is not None:
                    rows.append((int(line), 0, error, None))
                else:
                    records.append((int(line), list(iter_text_fields(data))))
            # Batched as the local scan batches: one prefilter scan per batch of records.
            for chunk in in_batches(records, lambda record: sum(len(text) for _path, text in record[1])):
                rows += _scan_records(scanner, chunk, context_chars)
            yield pd.DataFrame(rows, columns=["line", "text_fields", "error", "findings"])

    return scan_batches


class SparkPiiScanner(PiiScanner):
    """A PII scanner whose files are scanned on Spark; everything else is the local scanner's."""

    def __init__(self, policy: PiiPolicy, policy_path: str | Path, spark: Any):
        super().__init__(policy, policy_path)
        self.spark = spark
        self._policy = spark.sparkContext.broadcast(policy.model_dump_json())

    def scan_file(
        self,
        path: str | Path,
        kind: str,
        *,
        budget: ListingBudget | None = None,
        keep_redactions: bool = False,
        progress: bool = False,
        sink: Callable[[Finding], None] | None = None,
        label: str | None = None,
    ) -> FileScan:
        """Scan one file on Spark; the same :class:`FileScan` as :meth:`PiiScanner.scan_file`."""
        path = Path(path)
        if kind not in KIND_FIELDS:
            raise DataError(f"{path}: unknown dataset kind {kind!r} (expected one of {', '.join(KIND_FIELDS)})")
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        budget = budget or ListingBudget(self.policy.report.max_listed_findings)
        udf = _udf(self._policy, self.policy_path, kind, str(path), self.policy.report.context_chars)
        # The executors read the bytes the decision binds (a private copy on a local master; see judged_file)
        with judged_file(self.spark, path) as (source, digest):
            scan = FileScan(path=label or str(path), sha256=digest)
            results = records_frame(self.spark, source, label=path).mapInPandas(udf, RESULT_SCHEMA).cache()
            try:
                totals = results.groupBy().agg({"line": "count", "text_fields": "sum"}).collect()[0]
                errors = results.where("error is not null").orderBy("line").limit(1).collect()
                if errors:
                    raise DataError(errors[0]["error"])
                scan.records, scan.text_fields = int(totals[0] or 0), int(totals[1] or 0)
                if scan.records == 0:
                    raise DataError(f"{path}: no records (empty file)")
                found = results.where("findings is not null").select("line", "findings").orderBy("line")
                for row in found.toLocalIterator():
                    self._fold_record(
                        scan, int(row["line"]), json.loads(row["findings"]), budget, keep_redactions, sink
                    )
            finally:
                results.unpersist()
        log.info(
            "scanned %s on spark: %d records, %d text fields, %d findings in %d records",
            path,
            scan.records,
            scan.text_fields,
            scan.findings,
            scan.records_with_findings,
        )
        return scan

    def _fold_record(
        self,
        scan: FileScan,
        line: int,
        found: list[dict[str, Any]],
        budget: ListingBudget,
        keep_redactions: bool,
        sink: Callable[[Finding], None] | None,
    ) -> None:
        """Count one record's findings into ``scan`` in the order the local scan counts them."""
        record_entities: set[str] = set()
        record_actions: set[str] = set()
        for item in found:
            finding = Finding(
                file=scan.path,
                line=line,
                field=item["field"],
                entity=item["entity"],
                start=item["start"],
                end=item["end"],
                score=item["score"],
                action=item["action"],
                rule_id=item["rule_id"],
                also=tuple(item["also"]),
            )
            listing = functools.partial(tuple, (item["masked"], item["snippet"]))  # masked on the worker
            scan.add(finding, record_entities, budget, keep_redactions, sink, listing)
            record_actions.add(finding.action)
        scan.end_record(record_entities, record_actions)
