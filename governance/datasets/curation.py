"""Curation counts: rows in, dropped and changed by each step, rows out.

Every prepare stage records its steps here and writes them to its manifest, so
the report's "before/after curation" is counted, not described.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class CurationStep:
    """One step: how many rows came in, how many it dropped and changed, how many went on."""

    step: str
    rows_in: int
    dropped: int
    changed: int
    rows_out: int


@dataclass
class Curation:
    """The ordered steps of one dataset's preparation."""

    steps: list[CurationStep] = field(default_factory=list)

    def record(self, step: str, rows_in: int, *, dropped: int = 0, changed: int = 0) -> int:
        """Add a step; returns the rows it passes on (``rows_in - dropped``)."""
        rows_out = rows_in - dropped
        self.steps.append(CurationStep(step, rows_in, dropped, changed, rows_out))
        return rows_out

    def to_json(self) -> list[dict]:
        return [asdict(s) for s in self.steps]
