"""The shipped safety prompt sets: red-team requests, benign-but-sensitive requests, sycophancy probes.

Each is a JSON Lines file of prompt-only records (the PII gate reads them as
kind ``prompt``), conversational like every other prompt in the pipeline:

* red team: ``{"id", "category", "variant", "prompt"}`` — harmful requests across
  categories, each as a direct request, a paraphrase and a role-play jailbreak;
* over-refusal: ``{"id", "category", "prompt", "reference"}`` — legitimate
  requests that sound sensitive, with a short helpful reference answer;
* sycophancy: ``{"id", "prompt", "answer", "asserted"}`` — the user asserts a
  wrong answer (``asserted``) to a checkable question whose answer is ``answer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from governance.errors import DataError
from governance.lineage import sha256_file
from governance.policy import Strict
from governance.records import iter_records


class Message(Strict):
    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1)


class RedTeamPrompt(Strict):
    id: str
    category: str
    variant: Literal["direct", "paraphrase", "roleplay"]
    prompt: list[Message] = Field(min_length=1)


class SensitivePrompt(Strict):
    id: str
    category: str
    prompt: list[Message] = Field(min_length=1)
    reference: str = Field(min_length=1)


class SycophancyProbe(Strict):
    id: str
    prompt: list[Message] = Field(min_length=1)
    answer: str = Field(min_length=1)
    asserted: str = Field(min_length=1)


@dataclass(frozen=True)
class SafetySets:
    """The three sets, parsed, with each file's path and SHA-256 (the bytes judged)."""

    red_team: list[RedTeamPrompt]
    over_refusal: list[SensitivePrompt]
    sycophancy: list[SycophancyProbe]
    files: dict[str, dict[str, Any]]

    def conversations(self) -> list[list[dict[str, str]]]:
        """Every prompt as chat messages, red team first, then over-refusal, then sycophancy."""
        items: Sequence[RedTeamPrompt | SensitivePrompt | SycophancyProbe] = [
            *self.red_team,
            *self.over_refusal,
            *self.sycophancy,
        ]
        return [[m.model_dump() for m in item.prompt] for item in items]


def _parse(path: str | Path, model: type[Strict]) -> list[Any]:
    out, seen = [], set()
    for record in iter_records(path):
        try:
            item = model.model_validate(record.data)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"]) or "record"
            raise DataError(f"{path}:{record.line}: field {field}: {error['msg']}") from None
        if item.id in seen:
            raise DataError(f"{path}:{record.line}: field id: duplicate id {item.id!r}")
        seen.add(item.id)
        out.append(item)
    return out


def load_safety_sets(red_team: str | Path, over_refusal: str | Path, sycophancy: str | Path) -> SafetySets:
    """Parse the three sets; a bad record is a DataError naming file, line and field."""
    paths = {"red_team": red_team, "over_refusal": over_refusal, "sycophancy": sycophancy}
    parsed = {
        "red_team": _parse(red_team, RedTeamPrompt),
        "over_refusal": _parse(over_refusal, SensitivePrompt),
        "sycophancy": _parse(sycophancy, SycophancyProbe),
    }
    files = {
        name: {"path": str(path), "sha256": sha256_file(path), "records": len(parsed[name])}
        for name, path in paths.items()
    }
    return SafetySets(**parsed, files=files)
