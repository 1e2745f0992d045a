"""Scan every string field of every record for PII, streaming, and locate each finding.

:class:`PiiScanner` reads a dataset with :func:`governance.records.iter_records`
and :func:`governance.records.iter_text_fields` (chat messages, chosen and
rejected turns, completions, system prompts, metadata: every string), normalises
each field (:mod:`governance.pii.normalise`: full-width digits, spelled-out numbers,
"(at)" addresses, markup and case undone), runs the presidio analyzer on what that
writes, maps results back to the field as written, keeps results at or above the policy's score
threshold for their entity, and merges overlapping results into one finding
(see :func:`resolve`). A :class:`FileScan` holds counts, the first location per
entity, masked listings (capped), when asked the spans to redact, and the SHA-256
of exactly the bytes the scan read (a :class:`~governance.records.ReadDigest`):
the only hash a decision about the file may bind, since the path can hold other
bytes a moment later. Raw values never leave this module: listings carry masked
shapes and snippets.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from presidio_analyzer import RecognizerResult
from tqdm import tqdm

from governance.errors import DataError
from governance.pii.engine import PiiEngine, build_engine
from governance.pii.kinds import KIND_FIELDS
from governance.pii.mask import mask_value, snippet
from governance.pii.names import NameRecognizer
from governance.pii.normalise import NormalisedText, TextNormaliser
from governance.pii.windows import WindowedAnalyzer
from governance.policy.pii import EntityRule, PiiPolicy
from governance.records import ReadDigest, Record, iter_records, iter_text_fields, text_values

log = logging.getLogger(__name__)

#: Overlapping findings keep the strictest action first.
ACTION_RANK = {"deny": 0, "redact": 1, "allow": 2}

_INDEX = re.compile(r"\[\d+\]")


def field_pattern(path: str) -> str:
    """``messages[2].content`` -> ``messages[*].content``: how findings are counted by field."""
    return _INDEX.sub("[*]", path)


@dataclass(frozen=True, slots=True)
class Finding:
    """One PII finding: where it is and what it is, never what it says."""

    file: str
    line: int
    field: str
    entity: str
    start: int
    end: int
    score: float
    action: str
    rule_id: str
    also: tuple[str, ...] = ()

    def location(self) -> str:
        return f"line {self.line}, field {self.field}"


@dataclass(frozen=True, slots=True)
class FieldFinding:
    """A resolved finding within one text (no file or record yet)."""

    entity: str
    start: int
    end: int
    score: float
    rule: EntityRule
    also: tuple[str, ...]


@dataclass
class ListedFinding:
    """A finding as the report lists it: location, masked shape and masked context."""

    finding: Finding
    masked: str
    snippet: str

    def to_dict(self) -> dict[str, Any]:
        f = self.finding
        return {
            "file": f.file,
            "line": f.line,
            "field": f.field,
            "entity": f.entity,
            "also": list(f.also),
            "start": f.start,
            "end": f.end,
            "score": round(f.score, 4),
            "action": f.action,
            "rule_id": f.rule_id,
            "masked": self.masked,
            "snippet": self.snippet,
        }


@dataclass
class EntityTally:
    findings: int = 0
    records: int = 0
    first: Finding | None = None


@dataclass
class FileScan:
    """What scanning one file found: complete counts, capped listings, redaction spans."""

    path: str
    #: SHA-256 of the bytes the scan read and judged, set once the whole file was read
    sha256: str | None = None
    records: int = 0
    text_fields: int = 0
    records_with_findings: int = 0
    findings: int = 0
    by_entity: dict[str, EntityTally] = field(default_factory=dict)
    by_field: Counter = field(default_factory=Counter)
    listed: list[ListedFinding] = field(default_factory=list)
    #: records holding at least one finding of each action, and the first such finding
    records_by_action: Counter = field(default_factory=Counter)
    first_by_action: dict[str, Finding] = field(default_factory=dict)
    #: line -> [(field path, start, end, entity)] for findings whose action is redact
    redactions: dict[int, list[tuple[str, int, int, str]]] = field(default_factory=dict)

    @property
    def redacted_records(self) -> int:
        return len(self.redactions)

    def entity_records(self, entity: str) -> int:
        tally = self.by_entity.get(entity)
        return tally.records if tally else 0

    def first_of(self, entity: str) -> Finding | None:
        tally = self.by_entity.get(entity)
        return tally.first if tally else None

    def add(
        self,
        finding: Finding,
        record_entities: set[str],
        budget: ListingBudget,
        keep_redactions: bool,
        sink: Callable[[Finding], None] | None,
        listing: Callable[[], tuple[str, str]],
    ) -> None:
        """Count one finding of the record being scanned (``record_entities``: its entities so far).

        Tallies, the sink, its redaction span when kept, and, while the budget lasts, its listing:
        ``listing`` gives the masked shape and snippet, and is called only then.
        """
        self.findings += 1
        tally = self.by_entity.setdefault(finding.entity, EntityTally())
        tally.findings += 1
        if tally.first is None:
            tally.first = finding
        self.first_by_action.setdefault(finding.action, finding)
        if finding.entity not in record_entities:
            record_entities.add(finding.entity)
            tally.records += 1
        self.by_field[(field_pattern(finding.field), finding.entity)] += 1
        if sink is not None:
            sink(finding)
        if keep_redactions and finding.action == "redact":
            self.redactions.setdefault(finding.line, []).append(
                (finding.field, finding.start, finding.end, finding.entity)
            )
        if budget.remaining > 0:
            budget.remaining -= 1
            masked, context = listing()
            self.listed.append(ListedFinding(finding=finding, masked=masked, snippet=context))

    def end_record(self, record_entities: set[str], record_actions: set[str]) -> None:
        """Count the record whose findings were just added (nothing if it had none)."""
        if record_entities:
            self.records_with_findings += 1
            self.records_by_action.update(record_actions)


@dataclass
class ListingBudget:
    """How many findings may still be listed one by one (shared by the files of one report)."""

    remaining: int


def resolve(
    results: list[RecognizerResult], rules: dict[str, EntityRule], priority: dict[str, int]
) -> list[FieldFinding]:
    """Policy view of one text's analyzer results.

    Results below their entity's ``score_threshold`` are dropped. Overlapping
    results become one finding covering their union, labelled by the result
    whose action is strictest (deny > redact > allow), then the longest, then
    the entity listed first in the policy, then the highest score: an e-mail
    address is one EMAIL_ADDRESS finding, not also a URL ``jane.do``; a
    Luhn-valid card number that libphonenumber also accepts is a CREDIT_CARD.
    """
    kept = []
    for result in results:
        rule = rules.get(result.entity_type)
        if rule is not None and result.score >= rule.score_threshold:
            kept.append((result, rule))
    if not kept:
        return []
    kept.sort(key=lambda item: (item[0].start, item[0].end))
    groups: list[list[tuple[RecognizerResult, EntityRule]]] = []
    group_end = -1
    for item in kept:
        if groups and item[0].start < group_end:
            groups[-1].append(item)
            group_end = max(group_end, item[0].end)
        else:
            groups.append([item])
            group_end = item[0].end
    findings = []
    for group in groups:
        result, rule = min(
            group,
            key=lambda item: (
                ACTION_RANK[item[1].action],
                -(item[0].end - item[0].start),
                priority[item[0].entity_type],
                -item[0].score,
            ),
        )
        others = tuple(sorted({r.entity_type for r, _ in group} - {result.entity_type}))
        findings.append(
            FieldFinding(
                entity=result.entity_type,
                start=min(r.start for r, _ in group),
                end=max(r.end for r, _ in group),
                score=result.score,
                rule=rule,
                also=others,
            )
        )
    return findings


#: Records scanned together (one prefilter scan for all their string fields): at most this many, and
#: no more once their text reaches BATCH_CHARS characters. Hyperscan's tables stay in the cache across a
#: batch, and the per-scan costs are paid once per batch, not once per record.
BATCH_RECORDS = 64
BATCH_CHARS = 1 << 20

T = TypeVar("T")

#: KIND_FIELDS as sets: a record's keys hold one of them (a C-level subset test per record).
_KIND_KEY_SETS = {kind: tuple(frozenset(keys) for keys in alternatives) for kind, alternatives in KIND_FIELDS.items()}


def _in_original(normalised: NormalisedText, found: list[FieldFinding]) -> list[FieldFinding]:
    """Findings in a normalised text as findings in the text as written (each covering what it was read from)."""
    if not normalised.moved or not found:
        return found
    out = []
    for finding in found:
        start, end = normalised.span(finding.start, finding.end)
        out.append(dataclasses.replace(finding, start=start, end=end))
    return out


def in_batches(items: Iterable[T], chars: Callable[[T], int]) -> Iterator[list[T]]:
    """``items`` in batches of :data:`BATCH_RECORDS`, or fewer once ``chars`` of them reach :data:`BATCH_CHARS`.

    A bad record (a :class:`DataError` while reading ``items``) still lets the items before it
    through, as one at a time would have, then raises.
    """
    batch: list[T] = []
    size = 0
    try:
        for item in items:
            batch.append(item)
            size += chars(item)
            if len(batch) >= BATCH_RECORDS or size >= BATCH_CHARS:
                yield batch
                batch, size = [], 0
    except DataError:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


def check_kind(record: Record, kind: str, path: Path) -> None:
    """A record lacking its kind's top-level fields is malformed input (or the wrong ``--kind``)."""
    alternatives = KIND_FIELDS[kind]
    keys = record.data.keys()
    if not any(keys >= fields for fields in _KIND_KEY_SETS[kind]):
        expected = " or ".join("+".join(keys) for keys in alternatives)
        raise DataError(
            f"{path}:{record.line}: a {kind} record needs top-level {expected}; "
            f"found {', '.join(sorted(map(str, record.data))) or 'no fields'} (wrong --kind or wrong file?)"
        )


def detect_kind(path: str | Path) -> str:
    """The dataset kind whose fields the file's first record has (kto before sft: both have a prompt)."""
    path = Path(path)
    records = iter_records(path)
    try:
        first = next(records)
    finally:
        records.close()
    for kind in ("preference", "kto", "sft", "prompt"):
        if any(all(key in first.data for key in keys) for keys in KIND_FIELDS[kind]):
            return kind
    raise DataError(
        f"{path}:{first.line}: cannot tell the dataset kind from fields "
        f"{', '.join(sorted(map(str, first.data))) or '(none)'}; pass --kind"
    )


class PiiScanner:
    """Scans datasets under one PII policy; build once, scan many files (engine creation is slow)."""

    def __init__(
        self,
        policy: PiiPolicy,
        policy_path: str | Path = "policies/pii.yaml",
        *,
        engine: PiiEngine | None = None,
        windowed: bool = True,
        normalise: bool = True,
    ):
        """``normalise=False`` scans texts as written, disguises and all: only to measure what normalising adds
        (``benchmarks/pii_accuracy.py``); the gate always normalises, and its decision says so."""
        self.policy = policy
        self.policy_path = str(policy_path)
        self.engine = engine or build_engine(policy, policy_path)
        self.windowed = WindowedAnalyzer(self.engine) if windowed else None
        self.rules = {rule.entity: rule for rule in policy.entities}
        self.priority = {rule.entity: index for index, rule in enumerate(policy.entities)}
        names = next((r for r in self.engine.recognizers if isinstance(r, NameRecognizer)), None)
        self.normaliser = TextNormaliser(names) if normalise else None

    def analyze(self, text: str) -> list[RecognizerResult]:
        """presidio's results for one text as written (windowed: identical, faster); no normalising."""
        return self.windowed.analyze(text) if self.windowed is not None else self.engine.analyze(text)

    def analyze_context(self, text: str) -> list[RecognizerResult]:
        """What a report's masked context is re-scanned with: the windowed analyzer's pattern recognizers.

        The field's own findings (NER included) are masked in it already; a cut value can only turn into
        something a pattern recognizer sees. Without the windowed analyzer, presidio's whole analysis. The
        context is normalised as fields are; results are in its own offsets.
        """
        [normalised] = self.normalise([text])
        if self.windowed is not None:
            results = self.windowed.analyze(normalised.text, ner=False)
        else:
            results = self.engine.analyze(normalised.text)
        if normalised.moved:
            for result in results:
                result.start, result.end = normalised.span(result.start, result.end)
        return results

    def normalise(self, texts: Sequence[str]) -> list[NormalisedText]:
        """The texts as the recognizers read them (:mod:`governance.pii.normalise`), each with its offset map."""
        if self.normaliser is None:
            return [NormalisedText(text, text) for text in texts]
        return self.normaliser.normalise_many(texts)

    def findings_in(self, text: str) -> list[FieldFinding]:
        """The policy's findings in one text, in its own offsets (read normalised)."""
        [normalised] = self.normalise([text])
        return _in_original(normalised, resolve(self.analyze(normalised.text), self.rules, self.priority))

    def findings_in_many(self, texts: list[str]) -> list[list[FieldFinding]]:
        """The policy's findings in each text, in its own offsets (read normalised; one prefilter scan for all:
        the fields of a batch of records)."""
        if self.windowed is None:
            return [self.findings_in(text) for text in texts]
        normalised = self.normalise(texts)
        return [
            _in_original(read, resolve(results, self.rules, self.priority)) if results else []
            for read, results in zip(normalised, self.windowed.analyze_many([n.text for n in normalised]), strict=True)
        ]

    @property
    def prefilter_engine(self) -> str:
        """What finds the windows worth analysing: ``hyperscan``, ``python`` or ``none`` (whole texts)."""
        return self.windowed.prefilter_engine if self.windowed is not None else "none"

    def iter_records(self, path: str | Path, kind: str, *, digest: ReadDigest | None = None) -> Iterator[Record]:
        """The records of a file, each checked for its kind's fields; errors name file:line.

        With ``digest``, every byte read is hashed into it (:func:`governance.records.iter_records`).
        """
        path = Path(path)
        if kind not in KIND_FIELDS:
            raise DataError(f"{path}: unknown dataset kind {kind!r} (expected one of {', '.join(KIND_FIELDS)})")
        for record in iter_records(path, digest=digest):
            check_kind(record, kind, path)
            yield record

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
        """Scan one file, streaming; memory grows only with listed findings and redaction spans.

        ``label`` names the file in findings and reports when it is scanned at a
        temporary path (the staged cleared copy). The result's ``sha256`` is of the
        bytes read for the scan, never of the path hashed again.
        """
        path = Path(path)
        scan = FileScan(path=label or str(path))
        budget = budget or ListingBudget(self.policy.report.max_listed_findings)
        # progress=True shows a bar on a terminal (stderr); tqdm stays silent when stderr is a log file.
        bar = tqdm(
            desc=f"pii {path.name}",
            unit=" rec",
            file=sys.stderr,
            disable=None if progress else True,
            mininterval=2.0,
            leave=False,
        )
        digest = ReadDigest()
        try:
            records = ((record, text_values(record.data)) for record in self.iter_records(path, kind, digest=digest))
            for batch in in_batches(records, lambda item: sum(map(len, item[1]))):
                self._scan_batch(scan, batch, budget, keep_redactions, sink)
                bar.update(len(batch))
        finally:
            bar.close()
        scan.sha256 = digest.sha256  # every record was read: the reader took the whole file
        log.info(
            "scanned %s: %d records, %d text fields, %d findings in %d records",
            path,
            scan.records,
            scan.text_fields,
            scan.findings,
            scan.records_with_findings,
        )
        return scan

    def _scan_batch(
        self,
        scan: FileScan,
        batch: list[tuple[Record, list[str]]],
        budget: ListingBudget,
        keep_redactions: bool,
        sink: Callable[[Finding], None] | None,
    ) -> None:
        """Scan the string fields of a batch of records at once (one prefilter scan), then tally record by record."""
        if not batch:
            return
        found_in = self.findings_in_many([text for _record, texts in batch for text in texts])
        offset = 0
        for record, texts in batch:
            scan.records += 1
            scan.text_fields += len(texts)
            found = found_in[offset : offset + len(texts)]
            offset += len(texts)
            if any(found):
                self._record_findings(scan, record, texts, found, budget, keep_redactions, sink)

    def _record_findings(
        self,
        scan: FileScan,
        record: Record,
        texts: list[str],
        found_in: list[list[FieldFinding]],
        budget: ListingBudget,
        keep_redactions: bool,
        sink: Callable[[Finding], None] | None,
    ) -> None:
        record_entities: set[str] = set()
        record_actions: set[str] = set()
        # Field paths only for a record with findings (the same walk, so the same order).
        paths = [field_path for field_path, _ in iter_text_fields(record.data)]
        for field_path, text, found in zip(paths, texts, found_in, strict=True):
            known = [(f.start, f.end, f.entity) for f in found]
            for item in found:
                finding = Finding(
                    file=scan.path,
                    line=record.line,
                    field=field_path,
                    entity=item.entity,
                    start=item.start,
                    end=item.end,
                    score=item.score,
                    action=item.rule.action,
                    rule_id=item.rule.id,
                    also=item.also,
                )
                listing = functools.partial(self._listing, text, item, known)
                scan.add(finding, record_entities, budget, keep_redactions, sink, listing)
                record_actions.add(finding.action)
        scan.end_record(record_entities, record_actions)

    def _listing(self, text: str, item: FieldFinding, known: list[tuple[int, int, str]]) -> tuple[str, str]:
        """A finding's masked shape and masked context, as reports list it."""
        masked = mask_value(item.entity, text[item.start : item.end])
        context = snippet(
            text, item.start, item.end, item.entity, known, self.policy.report.context_chars, self.analyze_context
        )
        return masked, context
