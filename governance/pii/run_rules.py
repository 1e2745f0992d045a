"""Windows for presidio's pattern recognizers: runs of characters a match can consist of, holding a trigger.

Each windowed recognizer has a *run class*: a set of characters every one of
its matches consists of (``\\S`` for e-mail, URL, IP; digits, ``-``, space for
credit cards; ...). A match therefore lies inside one maximal run of such
characters. A run is bounded by characters that no match can contain or start
at, so the recognizer's left-to-right scan is in the same state at a run's
start whether it began at the start of the text or of the run. The window is
the run plus one character either side, so look-behinds, look-aheads and
``\\b`` see the same neighbours as in the whole text.

Each also has a *trigger*: a cheap pattern every match must contain (``@``
for e-mail; 13 digits with single separators for a card). Runs without a
trigger cannot hold a match and are skipped; on typical text that is nearly
all of them. :func:`pattern_rule` gives presidio's predefined recognizers
their rule (only with presidio's default patterns and flags); :func:`pattern_gate`
gives the others (the policy's own regexes and deny-lists) the patterns that
must match somewhere in a text for them to run on it at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import regex
from presidio_analyzer import EntityRecognizer, PatternRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    CryptoRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    UrlRecognizer,
    UsSsnRecognizer,
)

from governance.pii.prefilter import translate

Span = tuple[int, int]


def run_bounds(boundary: re.Pattern | regex.Pattern, text: str, start: int, end: int) -> Span:
    """The maximal run around ``[start, end)`` of characters that ``boundary`` does not match.

    ``boundary`` matches single characters (a class), so the last one before ``start`` is the
    first one in the reversed text before it, searched in growing chunks.
    """
    after = boundary.search(text, end)
    run_end = after.start() if after else len(text)
    low, step = start, 64
    while True:
        chunk_start = max(0, low - step)
        before = boundary.search(text[chunk_start:low][::-1])
        if before is not None:
            return low - before.start(), run_end
        if chunk_start == 0:
            return 0, run_end
        low, step = chunk_start, step * 4


@dataclass
class RunRule:
    """Windows for one recognizer: runs (bounded by ``boundary``) that contain a ``trigger``."""

    name: str
    boundary: re.Pattern | regex.Pattern
    triggers: Callable[[str], Iterator[Span]]
    #: the trigger's source (pattern, flags), for the multi-pattern prefilter
    trigger_source: tuple[str, int]

    def prefilter_expressions(self) -> list[str]:
        """Hyperscan expressions matching wherever the trigger does (see :mod:`governance.pii.prefilter`)."""
        return [translate(*self.trigger_source, "regex")]

    @staticmethod
    def analyze_window(recognizer: EntityRecognizer, window: str, entities: list[str]) -> list[RecognizerResult]:
        """The recognizer's own results in one window."""
        return recognizer.analyze(text=window, entities=entities, nlp_artifacts=None) or []

    def windows(self, text: str) -> list[Span]:
        spans: list[Span] = []
        covered_to = -1
        for start, end in self.triggers(text):
            if start < covered_to:
                continue
            run_start, run_end = run_bounds(self.boundary, text, start, end)
            spans.append((max(0, run_start - 1), min(len(text), run_end + 1)))
            covered_to = run_end
        return spans


def _rule(name: str, boundary: re.Pattern | regex.Pattern, trigger: regex.Pattern) -> RunRule:
    return RunRule(name, boundary, _regex_triggers(trigger), (trigger.pattern, trigger.flags))


def _regex_triggers(pattern: regex.Pattern) -> Callable[[str], Iterator[Span]]:
    def triggers(text: str) -> Iterator[Span]:
        for match in pattern.finditer(text):
            yield match.span()

    return triggers


def _literal_trigger(literal: str) -> Callable[[str], Iterator[Span]]:
    def triggers(text: str) -> Iterator[Span]:
        index = text.find(literal)
        while index >= 0:
            yield index, index + len(literal)
            index = text.find(literal, index + len(literal))

    return triggers


def _same_patterns(recognizer: EntityRecognizer, cls: type) -> bool:
    """The recognizer is exactly the predefined class, with presidio's default patterns."""
    if type(recognizer) is not cls:
        return False
    own = [(p.name, p.regex) for p in recognizer.patterns]
    default = [(p.name, p.regex) for p in cls.PATTERNS]
    return own == default


#: Flags that change only case and line handling; patterns under other flags
#: (VERBOSE, ASCII, ...) read differently, so such recognizers scan whole texts.
_KNOWN_FLAGS = regex.DOTALL | regex.MULTILINE | regex.IGNORECASE


def pattern_rule(recognizer: EntityRecognizer) -> RunRule | None:
    """The window rule of a predefined pattern recognizer, or None to scan whole texts.

    Run classes and triggers are compiled with the recognizer's own flags, so
    case-insensitive matching widens them exactly as it widens the patterns.
    """
    flags = getattr(recognizer, "global_regex_flags", None)
    if flags is None or flags & ~_KNOWN_FLAGS:
        return None
    if _same_patterns(recognizer, IbanRecognizer):
        return _rule(
            "iban",
            regex.compile(r"[^A-Z0-9 \-]", flags),
            regex.compile(r"[A-Z]{2}[0-9]{2}(?:[ -]?[A-Z0-9]{4}){2}", flags),
        )
    # No whitespace can be part of these recognizers' matches.
    no_space = regex.compile(r"\s", flags)
    if _same_patterns(recognizer, EmailRecognizer):
        return RunRule("email", no_space, _literal_trigger("@"), ("@", 0))
    if _same_patterns(recognizer, UrlRecognizer):
        # Every URL match has a host character, a dot and a top-level domain of 2+ letters.
        return _rule("url", no_space, regex.compile(r"[a-z0-9.\-][.][a-z]{2}", flags))
    if _same_patterns(recognizer, IpRecognizer):
        # IPv4: d.ddd.d somewhere; every IPv6 form has two colons at most 4 hex digits apart.
        return _rule("ip", no_space, regex.compile(r"[0-9]\.[0-9]{1,3}\.[0-9]|:[0-9a-f]{0,4}:", flags))
    if _same_patterns(recognizer, CryptoRecognizer):
        return _rule(
            "crypto",
            regex.compile(r"[^a-zA-HJ-NP-Z0-9]", flags),
            # Runs of 26+ (a match's length), found from their first character only.
            regex.compile(r"(?<![a-zA-HJ-NP-Z0-9])[a-zA-HJ-NP-Z0-9]{26,}", flags),
        )
    if _same_patterns(recognizer, CreditCardRecognizer):
        # 13 to 19 digits, at most one '-' or ' ' between two digits.
        return _rule("credit_card", regex.compile(r"[^\d\- ]", flags), regex.compile(r"\d(?:[- ]?\d){12}", flags))
    if _same_patterns(recognizer, UsSsnRecognizer):
        # Every SSN pattern is 9 digits with at most one '-', ' ' or '.' between two digits.
        return _rule("us_ssn", regex.compile(r"[^\d\- .]", flags), regex.compile(r"\d(?:[- .]?\d){8}", flags))
    return None


def pattern_gate(recognizer: EntityRecognizer) -> list[regex.Pattern] | None:
    """A pattern recognizer's patterns (deny-list included), compiled as presidio compiles them.

    Only for recognizers whose ``analyze`` is ``PatternRecognizer.analyze`` (the policy's own, presidio's
    DateRecognizer): it reports only where a pattern matches (a subclass's ``validate_result`` can only drop
    a match). None for anything else (a subclass may override ``analyze``): those always run.
    """
    if not isinstance(recognizer, PatternRecognizer) or not recognizer.patterns:
        return None
    if type(recognizer).analyze is not PatternRecognizer.analyze:
        return None
    flags = recognizer.global_regex_flags
    return [regex.compile(pattern.regex, flags=flags) for pattern in recognizer.patterns]
