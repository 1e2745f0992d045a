"""Masked renderings of findings: what reports and messages may show instead of PII.

A finding's value is shown only as a shape (``***@***.com``,
``****-****-****-****``) or its tag (``<CREDIT_CARD>``). The context around a
finding is masked again before it is shown: every other finding in the field
is replaced by its tag (even where the context cuts it), the context is
scanned once more for anything the cut may have exposed, and every digit
(any script's, and digit words two or more in a row: "five five") becomes ``#``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from presidio_analyzer import RecognizerResult

_ALNUM = re.compile(r"[^\W_]")
_DIGIT = re.compile(r"\d")
_SPACE = re.compile(r"\s+")
_DIGIT_WORD = r"(?:zero|oh|nought|one|two|three|four|five|six|seven|eight|nine)"
#: Two or more digit words in a row ("five five five"): digits written out, masked as digits are (a cut of a
#: spelled-out number is shorter than the scanner's run, so two words are enough here).
_SPELLED_DIGITS = re.compile(rf"\b{_DIGIT_WORD}(?:(?:[ \t]*[\-,/][ \t]*|[ \t]+){_DIGIT_WORD})+\b", re.IGNORECASE)
_SPELLED_DIGIT = re.compile(rf"\b{_DIGIT_WORD}\b", re.IGNORECASE)


def tag(entity: str) -> str:
    """The placeholder a redaction writes: ``<EMAIL_ADDRESS>``."""
    return f"<{entity}>"


def mask_value(entity: str, value: str) -> str:
    """The value's shape with every letter and digit starred; an e-mail keeps only its top-level domain.

    ``(415) 555-0103`` -> ``(***) ***-****``; ``jane.doe@example.org`` -> ``***@***.org``.
    """
    if entity == "EMAIL_ADDRESS" and value.count("@") == 1:
        tld = value.rsplit(".", 1)[-1] if "." in value.split("@")[1] else ""
        if tld.isalpha() and len(tld) <= 24:
            return f"***@***.{tld}"
    return _ALNUM.sub("*", value)


def _replace_spans(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    """Replace non-overlapping ``(start, end, entity)`` spans by tags (spans clipped to the text)."""
    pieces, cursor = [], 0
    for start, end, entity in sorted(spans):
        start, end = max(start, cursor), min(end, len(text))
        if start >= end:
            continue
        pieces.append(text[cursor:start])
        pieces.append(tag(entity))
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def mask_context(
    text: str,
    offset: int,
    known: Sequence[tuple[int, int, str]],
    analyze: Callable[[str], list[RecognizerResult]] | None,
) -> str:
    """Mask a piece of context cut from a field at ``offset``.

    ``known`` are the field's findings in field coordinates; ``analyze``
    re-scans the piece (a cut can turn part of a value into something a
    recognizer no longer sees in full, or into something new).
    """
    local = [(s - offset, e - offset, entity) for s, e, entity in known if e > offset and s < offset + len(text)]
    masked = _replace_spans(text, local)
    if analyze is not None:
        found = [(r.start, r.end, r.entity_type) for r in analyze(masked)]
        masked = _replace_spans(masked, _non_overlapping(found))
    masked = _DIGIT.sub("#", masked)
    masked = _SPELLED_DIGITS.sub(lambda run: _SPELLED_DIGIT.sub("#", run.group()), masked)
    return _SPACE.sub(" ", masked)


def _non_overlapping(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Longest-first, then leftmost, non-overlapping subset (for masking only)."""
    chosen: list[tuple[int, int, str]] = []
    for span in sorted(spans, key=lambda s: (-(s[1] - s[0]), s[0])):
        if all(span[1] <= other[0] or span[0] >= other[1] for other in chosen):
            chosen.append(span)
    return chosen


def snippet(
    text: str,
    start: int,
    end: int,
    entity: str,
    known: Sequence[tuple[int, int, str]],
    context_chars: int,
    analyze: Callable[[str], list[RecognizerResult]] | None,
) -> str:
    """``…masked left <ENTITY> masked right…`` for one finding of a field."""
    left_start = max(0, start - context_chars)
    right_end = min(len(text), end + context_chars)
    left = mask_context(text[left_start:start], left_start, known, analyze) if context_chars else ""
    right = mask_context(text[end:right_end], end, known, analyze) if context_chars else ""
    return ("…" if left_start > 0 else "") + left + tag(entity) + right + ("…" if right_end < len(text) else "")
