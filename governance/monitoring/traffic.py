"""Production request logs in the documented shape, read into a window the monitoring rules can judge.

One record per request, JSON Lines or Parquet (any format
:func:`governance.records.iter_records` reads)::

    {"request_id": "r-1", "timestamp": "2026-11-20T10:00:00Z", "model": "govllm-sft", "version": "3",
     "prompt": "..." | [{"role": "user", "content": "..."}], "response": "...",
     "latency_ms": 812, "tokens_in": 41, "tokens_out": 96, "cost": 0.0004, "feedback": -1,
     "rehearsal": false}

The last six fields are optional; other fields (trace ids, user ids) are
ignored and never read. ``"rehearsal": true`` marks a synthetic request (the
shipped sample under ``data/traffic/`` carries it): a window holding one is
judged and recorded as a rehearsal, never as the version's production record
(:mod:`governance.monitoring.evidence`). A bad record is one :class:`~governance.errors.DataError`
naming file, line and field — never the value, which may be personal data.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from governance.errors import DataError
from governance.records import ReadDigest, Record, iter_records


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    role: str = Field(min_length=1)
    content: str


class TrafficRecord(BaseModel):
    """One served request. Unknown fields are ignored: gateways add their own."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    request_id: str = Field(min_length=1)
    timestamp: dt.datetime
    model: str = Field(min_length=1)
    version: str = Field(min_length=1)
    prompt: str | list[Message]
    response: str
    latency_ms: float | None = Field(default=None, ge=0)
    tokens_in: int | None = Field(default=None, ge=0)
    tokens_out: int | None = Field(default=None, ge=0)
    cost: float | None = Field(default=None, ge=0)
    feedback: Literal[-1, 0, 1] | None = None
    #: A synthetic or rehearsal request, not one a user sent to the version (scripts/make_traffic_sample.py)
    rehearsal: bool = False

    @field_validator("version", mode="before")
    @classmethod
    def _version_number(cls, value: Any) -> Any:
        # Registries number versions; a log that writes 3 instead of "3" means the same version.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is None or value.utcoffset() != dt.timedelta(0):
            raise ValueError("must be ISO-8601 in UTC (end with Z or +00:00)")
        return value

    def prompt_messages(self) -> list[dict[str, str]]:
        if isinstance(self.prompt, str):
            return [{"role": "user", "content": self.prompt}]
        return [{"role": m.role, "content": m.content} for m in self.prompt]

    def prompt_text(self) -> str:
        if isinstance(self.prompt, str):
            return self.prompt
        return "\n".join(m.content for m in self.prompt)


@dataclass
class Window:
    """The requests the rules judge, column by column (a 100k-request window stays small)."""

    source: str
    prompts: list[list[dict[str, str]]] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    feedback: list[int] = field(default_factory=list)
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    skipped_other_versions: int = 0
    #: Requests marked ``"rehearsal": true``: any makes the window a rehearsal, never production evidence
    rehearsal_records: int = 0
    versions: Counter = field(default_factory=Counter)
    #: SHA-256 of the bytes the window was read from (:func:`read_window`); None for one built from generations
    sha256: str | None = None

    def __len__(self) -> int:
        return len(self.responses)

    def add(self, record: TrafficRecord, line: int) -> None:
        self.prompts.append(record.prompt_messages())
        self.responses.append(record.response)
        self.lines.append(line)
        if record.latency_ms is not None:
            self.latency_ms.append(record.latency_ms)
        if record.cost is not None:
            self.cost.append(record.cost)
        if record.feedback is not None:
            self.feedback.append(record.feedback)
        self.rehearsal_records += record.rehearsal
        self.first = record.timestamp if self.first is None else min(self.first, record.timestamp)
        self.last = record.timestamp if self.last is None else max(self.last, record.timestamp)

    def prompt_texts(self) -> list[str]:
        return ["\n".join(m["content"] for m in messages) for messages in self.prompts]

    def span(self) -> dict[str, Any]:
        """Plain facts about the window, for records and reports (no content)."""
        return {
            "source": self.source,
            "requests": len(self),
            "first": self.first.isoformat().replace("+00:00", "Z") if self.first else None,
            "last": self.last.isoformat().replace("+00:00", "Z") if self.last else None,
            "skipped_other_versions": self.skipped_other_versions,
            "rehearsal_records": self.rehearsal_records,
        }


def parse_record(record: Record, path: Path) -> TrafficRecord:
    """Validate one raw record; the error names file, line and field, never the value."""
    try:
        return TrafficRecord.model_validate(record.data)
    except ValidationError as exc:
        errors = _one_per_field(exc.errors())
        first = errors[0]
        where = ".".join(str(p) for p in first["loc"]) or "(record)"
        problem = "required field is missing" if first["type"] == "missing" else first["msg"]
        more = len(errors) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''} in this record)" if more else ""
        raise DataError(f"{path}:{record.line}: {where}: {problem}{suffix}") from None


def _one_per_field(errors: list) -> list:
    """pydantic reports a value that fits neither side of ``prompt: str | list[Message]`` once per side; say it once."""
    out, seen_prompt = [], False
    for error in errors:
        if error["loc"] and error["loc"][0] == "prompt" and error["type"] != "missing":
            if seen_prompt:
                continue
            seen_prompt = True
            nested = [p for p in error["loc"][1:] if isinstance(p, int) or p in ("role", "content")]
            error = {
                "loc": ("prompt", *nested),
                "type": "prompt",
                "msg": "expected a string or a list of chat messages ({role, content} objects with string values)",
            }
        out.append(error)
    return out


def read_window(path: str | Path, *, model: str | None = None, version: str | None = None) -> Window:
    """Read a traffic file; with ``model``/``version``, keep only that version's requests (others are counted)."""
    path = Path(path)
    window = Window(source=str(path))
    digest = ReadDigest()  # the window binds the bytes it was read from (Window.sha256)
    for raw in iter_records(path, digest=digest):  # nesting depth, UTF-8, JSON errors: one line naming file and line
        record = parse_record(raw, path)
        window.versions[(record.model, record.version)] += 1
        if (model is not None and record.model != model) or (version is not None and record.version != str(version)):
            window.skipped_other_versions += 1
            continue
        window.add(record, raw.line)
    window.sha256 = digest.sha256
    return window


def window_from_generations(generations: list[dict[str, Any]], source: str) -> Window:
    """A baseline window from an evaluation's ``generations.json`` (``completion`` and, if recorded, ``prompt``)."""
    window = Window(source=source)
    for index, item in enumerate(generations, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("completion"), str):
            raise DataError(f"{source}: item {index}: completion: expected a string")
        prompt = item.get("prompt")
        if isinstance(prompt, list):
            messages = [{"role": str(m.get("role", "user")), "content": str(m.get("content", ""))} for m in prompt]
        else:
            messages = [{"role": "user", "content": prompt if isinstance(prompt, str) else ""}]
        window.prompts.append(messages)
        window.responses.append(item["completion"])
        window.lines.append(index)
    return window
