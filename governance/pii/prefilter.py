"""One multi-pattern scan per batch of records says which recognizers can match which fields (hyperscan).

:class:`~governance.pii.windows.WindowedAnalyzer` runs each recognizer only
where its *trigger* (or, for a policy regex, one of its own patterns) matches.
Searching every trigger of every recognizer in every field with Python's
regex engines was most of the scan's time. :class:`Prefilter` compiles one
hyperscan database holding, per recognizer, a pattern that matches wherever
its trigger or patterns can (a *superset*), scans all string fields of a
batch of records joined by ``\\n`` in one call, and reports per field the
recognizers that fired. Only those run, on only those fields; everything else is skipped
without Python ever looking at it.

Why the hyperscan patterns never miss what Python would find:

* Patterns are translated from the Python source (``re._parser``), never
  re-typed. Every character set (a literal, a class, ``.``, ``\\d``, ``\\w``)
  becomes an explicit list of code-point ranges computed by running the
  *original* engine (``re`` or ``regex``) with the original flags over every
  code point, so case folding and Unicode tables are the original engine's,
  not hyperscan's. Hyperscan runs in UTF-8 mode on the encoded text.
* Assertions (``\\b``, ``^``, ``$``, look-arounds) are dropped, which can only
  widen what matches; everything else that is not plainly a regular
  construct (back-references, conditionals) makes the translation refuse, and
  that recognizer then runs on every text, as before.
* A match anywhere in a field ends inside that field, and hyperscan reports
  every end offset at which some match of a pattern ends, so marking the field
  holding each reported end is enough; a match that crosses the ``\\n``
  between fields only marks one field too many.
* The phone trigger (a libphonenumber candidate with enough word characters
  that may hold a valid number, :class:`~governance.pii.phone_rule.PhoneRule`)
  is not a regular language; :func:`phone_superset` gives regular patterns
  that every such candidate contains (see its docstring).

A text that cannot be encoded as UTF-8 (lone surrogates from JSON escapes)
marks every recognizer for that text: correct, just slower.

ASCII fast path. Most of the scan's time is hyperscan's UTF-8 automaton for
Unicode classes (every script's digits and letters). A second database holds
the same expressions with every class cut down to its ASCII code points and
scans bytes, not UTF-8. A text goes to it when each of its non-ASCII
characters is *inert*: in exactly the database's classes that ``?`` is in (a
``×`` or ``≈`` in math text is, like ``?``, in no digit, word or space class
and in every negated one). Such a text, encoded with ``?`` for every
non-ASCII character (``str.encode("ascii", "replace")``, one byte per
character), is matched by each expression exactly where the original is: each
character is in the same classes as the one it replaces, and the expressions
hold nothing but classes, ASCII literals and ``^``. Any other text (an
accented letter, a non-ASCII digit, a surrogate) is scanned on the UTF-8
database, joined with the other such texts of its batch.

Without hyperscan installed :func:`build_prefilter` returns None and the
analyzer searches triggers in Python, with the same results.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import json
import logging
import operator
import os
import re
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path

import regex

from governance.files import read_private

log = logging.getLogger(__name__)

_PLANE_START = (0, 0xE000)


@functools.lru_cache(maxsize=1)
def _planes() -> tuple[str, str]:
    """Every code point that can occur in a Python str encoded as UTF-8 (no surrogates), in order."""
    return "".join(map(chr, range(0, 0xD800))), "".join(map(chr, range(0xE000, 0x110000)))


#: Separator between the fields of one record in the joined scan.
SEPARATOR = b"\n"


#: Constructs the regex module reads otherwise than re does (re would read most of them as literals).
_REGEX_ONLY = (
    "[:", "\\p", "\\P", "\\N", "\\X", "\\G", "\\K", "(?|", "(?V", "(?r", "(?f", "(?(", "{e", "{i", "{d", "{s", "(*",
)  # fmt: skip


class Untranslatable(ValueError):
    """A pattern construct the translation does not carry over (the recognizer then always runs)."""


@functools.lru_cache(maxsize=4096)
def code_point_ranges(char_class: str, flags: int, engine: str) -> tuple[tuple[int, int], ...]:
    """The code points a one-character pattern matches under ``flags``, as (first, last) ranges.

    Computed by the original engine (``"re"`` or ``"regex"``) over every code
    point, so its own case folding and Unicode tables decide; kept on disk by
    :class:`RangeTable` (~8 ms a class, a hundred classes for the shipped policy).
    """
    table = RangeTable.shared()
    key = f"{engine}|{flags}|{char_class}"
    if (known := table.get(key)) is not None:
        return known
    ranges = _computed_ranges(char_class, flags, engine)
    table.put(key, ranges)
    return ranges


def _computed_ranges(char_class: str, flags: int, engine: str) -> tuple[tuple[int, int], ...]:
    compile_ = regex.compile if engine == "regex" else re.compile
    pattern = compile_(f"(?:{char_class})+", flags)
    ranges: list[tuple[int, int]] = []
    for plane, offset in zip(_planes(), _PLANE_START, strict=True):
        for match in pattern.finditer(plane):
            start, end = match.span()
            if ranges and ranges[-1][1] + 1 == start + offset:
                ranges[-1] = (ranges[-1][0], end - 1 + offset)
            else:
                ranges.append((start + offset, end - 1 + offset))
    return tuple(ranges)


def hs_class(ranges: Sequence[tuple[int, int]]) -> str:
    """A hyperscan (UTF-8 mode) character class for code-point ranges; never-matching when empty."""
    if not ranges:
        raise Untranslatable("a character set that matches nothing")
    parts = [f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges]
    return "[" + "".join(parts) + "]"


#: A character class as :func:`hs_class` writes it, and one range in it.
_HS_CLASS = re.compile(r"\[((?:\\x\{[0-9a-f]+\}(?:-\\x\{[0-9a-f]+\})?)+)\]")
_HS_RANGE = re.compile(r"\\x\{([0-9a-f]+)\}(?:-\\x\{([0-9a-f]+)\})?")
#: Classes of ASCII digits only (the national-number tries write them): no non-ASCII character and no
#: "?" is in one, or (negated) both are.
_DIGIT_CLASS = re.compile(r"\[\^?[0-9\-]+\]")
#: What an expression may hold besides those classes for its ASCII form to read as it does: ASCII digits,
#: grouping, alternation, repetition and ``^`` (outside a class "?" and "^" are never literals).
_ASCII_SYNTAX = re.compile(r"[0-9()?:|*{},^]*")
#: What ``str.encode("ascii", "replace")`` writes for a non-ASCII character.
_REPLACEMENT = ord("?")


def _class_ranges(body: str) -> tuple[tuple[int, int], ...]:
    return tuple((int(low, 16), int(high or low, 16)) for low, high in _HS_RANGE.findall(body))


def ascii_form(expressions: Sequence[str]) -> tuple[list[str], tuple[tuple[int, int], ...]] | None:
    """The expressions with every class cut to ASCII, and the non-ASCII code points that are not inert.

    A code point is *inert* when it is in exactly the classes ``?`` is in; replaced by ``?``, it
    leaves every match where it was (see the module docstring). None when an expression holds
    something other than :func:`hs_class` classes and ASCII syntax (then there is no ASCII path).
    """
    non_ascii = ((0x80, 0x10FFFF),)
    unsafe: set[tuple[int, int]] = set()
    out = []
    for expression in expressions:
        if not _ASCII_SYNTAX.fullmatch(_DIGIT_CLASS.sub("", _HS_CLASS.sub("", expression))):
            return None

        def cut(match: re.Match) -> str:
            ranges = _class_ranges(match.group(1))
            holds_replacement = any(low <= _REPLACEMENT <= high for low, high in ranges)
            # Non-ASCII code points whose membership here differs from "?"'s.
            unsafe.update(subtract(non_ascii, ranges) if holds_replacement else intersect(ranges, non_ascii))
            ascii_ranges = intersect(ranges, ((0, 0x7F),))
            # Byte 0x80 never occurs in the ASCII scan: a class with no ASCII member matches nothing there.
            return hs_class(ascii_ranges) if ascii_ranges else "[\\x{80}]"

        out.append(_HS_CLASS.sub(cut, expression))
    return out, _merge(sorted(unsafe))


def _merge(ranges: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for low, high in ranges:
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return tuple(merged)


def intersect(a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Code points in both range lists."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        low, high = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if low <= high:
            out.append((low, high))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def subtract(a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Code points in ``a`` and not in ``b``."""
    out = []
    for low, high in a:
        for b_low, b_high in b:
            if b_high < low or b_low > high:
                continue
            if b_low > low:
                out.append((low, b_low - 1))
            low = b_high + 1
            if low > high:
                break
        if low <= high:
            out.append((low, high))
    return tuple(out)


def _escape(code: int) -> str:
    return re.escape(chr(code))


def _class_text(op, av) -> str:
    """Python source of one character-set node of ``re._parser``'s tree."""
    import re._constants as c

    categories = {
        c.CATEGORY_DIGIT: r"\d",
        c.CATEGORY_NOT_DIGIT: r"\D",
        c.CATEGORY_SPACE: r"\s",
        c.CATEGORY_NOT_SPACE: r"\S",
        c.CATEGORY_WORD: r"\w",
        c.CATEGORY_NOT_WORD: r"\W",
    }
    if op is c.LITERAL:
        return f"[{_escape(av)}]"
    if op is c.NOT_LITERAL:
        return f"[^{_escape(av)}]"
    if op is c.ANY:
        return "."
    if op is c.IN:
        body = []
        for item_op, item in av:
            if item_op is c.NEGATE:
                body.append("^")
            elif item_op is c.LITERAL:
                body.append(_escape(item))
            elif item_op is c.RANGE:
                body.append(f"{_escape(item[0])}-{_escape(item[1])}")
            elif item_op is c.CATEGORY and item in categories:
                body.append(categories[item])
            else:
                raise Untranslatable(f"class item {item_op}")
        return "[" + "".join(body) + "]"
    raise Untranslatable(f"not a character set: {op}")


def translate(pattern: str, flags: int, engine: str, char_set: Callable[[str, int], str] | None = None) -> str:
    """A hyperscan (UTF-8) expression matching wherever ``pattern`` matches under ``flags``.

    ``char_set(class_text, flags)`` may replace how a character set is written
    (default: the code points the original engine matches). Raises
    :class:`Untranslatable` for constructs it does not carry over.
    """
    import re._constants as c
    import re._parser as parser

    if engine == "regex":
        # Syntax the regex module reads and re reads differently (POSIX classes, properties, fuzzy
        # matching, version 1 sets) would be translated wrongly: refuse it.
        marker = next((m for m in _REGEX_ONLY if m in pattern), None)
        if marker is not None or flags & regex.VERSION1:
            raise Untranslatable(f"regex-only syntax {marker or 'VERSION1'!r}")
    # re._parser reads the syntax; regex-only flags (VERSION0, ...) do not change it.
    parse_flags = flags & (re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE | re.ASCII)
    try:
        tree = parser.parse(pattern, parse_flags)
    except re.error as exc:
        raise Untranslatable(f"re cannot parse it ({exc})") from None
    # The flags that decide which characters match; inline flags are folded in by the parser.
    char_flags = flags | tree.state.flags

    def write_set(op, av) -> str:
        text = _class_text(op, av)
        if char_set is not None:
            return char_set(text, char_flags & ~re.VERBOSE)
        return hs_class(code_point_ranges(text, char_flags & ~re.VERBOSE, engine))

    def walk(items) -> str:
        out = []
        for op, av in items:
            if op in (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN):
                out.append(write_set(op, av))
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
                low, high, sub = av
                body = walk(sub)
                if not body:
                    continue
                upper = "" if high is c.MAXREPEAT else str(high)
                out.append(f"(?:{body}){{{low},{upper}}}")
            elif op is c.SUBPATTERN:
                sub_flags = av[1] & ~av[2]
                if sub_flags & ~(re.IGNORECASE | re.MULTILINE | re.DOTALL) or av[2] & re.IGNORECASE:
                    raise Untranslatable("scoped flags")
                if sub_flags & re.IGNORECASE and not char_flags & re.IGNORECASE:
                    raise Untranslatable("scoped IGNORECASE")
                out.append(f"(?:{walk(av[3])})")
            elif op is c.ATOMIC_GROUP:
                out.append(f"(?:{walk(av)})")  # the non-atomic group matches at least as much
            elif op is c.BRANCH:
                out.append("(?:" + "|".join(walk(branch) for branch in av[1]) + ")")
            elif op in (c.AT, c.ASSERT, c.ASSERT_NOT):
                continue  # dropping an assertion only widens the match
            else:
                raise Untranslatable(f"construct {op}")
        return "".join(out)

    expression = walk(tree)
    if not expression:
        raise Untranslatable("matches the empty string")
    return expression


@functools.lru_cache(maxsize=10)
def _digits_of_value(value: int) -> tuple[tuple[int, int], ...]:
    """The code points Python's ``\\d`` matches that libphonenumber reads as ``value``."""
    import unicodedata

    ranges = code_point_ranges(r"\d", re.UNICODE, "re")
    return tuple((c, c) for low, high in ranges for c in range(low, high + 1) if unicodedata.digit(chr(c), -1) == value)


def _ascii(ranges: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    return intersect(ranges, ((0, 0x7F),))


def _non_ascii(ranges: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    return intersect(ranges, ((0x80, 0x10FFFF),))


@functools.lru_cache(maxsize=64)
def national_number_expressions(pattern: str, length: int, punctuation: str, flags: int, depth: int = 2) -> list[str]:
    """Where a candidate's digits (``punctuation`` between them) can hold ``length`` digits ``pattern`` accepts.

    ``pattern`` is a national-number pattern of libphonenumber's metadata,
    matched against digits normalised to 0-9. The first expression is exact
    about the first ``depth`` digits (every prefix ``pattern`` can complete,
    found by partial matching) and then takes any digits, ASCII digits and
    ASCII punctuation only; the others catch what that leaves out: a non-ASCII
    digit anywhere, or non-ASCII punctuation after a digit. Digits on both
    sides of an extension word are caught by ``phone_superset``'s extension
    expression. ``depth`` 2: a deeper trie makes hyperscan's automaton, not
    the filter, the cost (three digits: 10x slower for 20% fewer matches).
    """
    compiled = regex.compile(pattern)
    digit = code_point_ranges(r"\d", flags, "re")
    punct = code_point_ranges(f"[{punctuation}]", flags, "re")
    gap = hs_class(_ascii(punct))
    trie: dict = {}
    for number in range(10**depth):
        text = str(number).zfill(depth)
        if compiled.fullmatch(text, partial=True):
            node = trie
            for char in text:
                node = node.setdefault(char, {})

    def write(node: dict) -> str:
        if all(not child for child in node.values()):
            return f"[{''.join(sorted(node))}]"
        branches = [char + (f"{gap}*{write(child)}" if child else "") for char, child in sorted(node.items())]
        return "(?:" + "|".join(branches) + ")"

    expressions = [
        hs_class(_non_ascii(digit)),
        f"{hs_class(digit)}{hs_class(punct)}*{hs_class(_non_ascii(punct))}",
    ]
    if trie:
        rest = f"(?:{gap}*[0-9]){{{length - depth}}}" if length > depth else ""
        expressions.insert(0, write(trie) + rest)
    return expressions


def phone_superset(
    lead_class: str,
    punctuation: str,
    extension: str,
    flags: int,
    dialling_prefixes: Sequence[str],
    min_digits: int,
    national_patterns: Sequence[tuple[int, str]],
    country_codes: Sequence[tuple[str, int]] | None = None,
) -> list[str]:
    """Hyperscan expressions that every triggering libphonenumber candidate contains.

    libphonenumber's candidate pattern is ``(?:LEAD P*)* D+ (?:P* D+)* (?:EXT)?``
    (``lead_class``; ``punctuation`` P, the class body; digit blocks D+;
    the ``extension`` pattern EXT, which ends in digits); the windows' relaxed
    pattern only lifts its repetition limits. A triggering candidate
    (``PhoneRule.candidates``) holds at least ``min_digits`` word characters
    and passes ``NationalNumbers.may_hold_number``: it has a plus sign, or
    three letters, or its digits start with an international dialling prefix at
    a digit block (then a non-zero digit), or a run of them fits a national
    number (7 digits or more: no number type of the reachable regions is
    shorter; ``national_patterns``). Before EXT, its only word characters are
    digits and letters of P ("x"). So it contains one of:

    * a digit followed by EXT (any candidate with an extension);
    * digits separated only by P that a national pattern accepts
      (``national_patterns``: (length, pattern); :func:`national_number_expressions`);
    * a plus sign followed, through lead characters, P and digits, by
      ``min_digits`` word characters;
    * a digit or lead character, then three letters of P, then a digit;
    * ``k`` word characters and a non-digit (the prefix starts a digit block),
      a dialling prefix and the digit after it, then the rest of the
      ``min_digits`` word characters (one pattern per ``k``; the last allows
      any number before).

    With ``country_codes`` ((code, the fewest digits that follow it in a valid
    number), what ``NationalNumbers._international`` requires) the last kind
    is stricter, one pattern per first digit of a country code: the start of
    the text or a non-digit, a dialling prefix's digits, that digit and at
    least as many digits as the codes starting with it need after it,
    punctuation allowed between any two. A record id such as
    ``bench-0015000`` (code 1, whose numbers have 7 digits or more: four) then
    fires nothing.
    """
    engine = "re"
    lead = code_point_ranges(lead_class, flags, engine)
    punct = code_point_ranges(f"[{punctuation}]", flags, engine)
    digit = code_point_ranges(r"\d", flags, engine)
    word = code_point_ranges(r"\w", flags, engine)
    letter = code_point_ranges(r"[^\W\d_]", flags, engine)
    plus = intersect(lead, code_point_ranges("[+\uff0b]", flags, engine))
    main = sorted(set(punct) | set(digit))
    before = sorted(set(punct) | set(digit) | set(lead))
    main_word = sorted(set(digit) | set(intersect(punct, word)))
    d, p = hs_class(digit), hs_class(punct)
    m, b, w = hs_class(main), hs_class(before), hs_class(main_word)
    expressions = [
        f"{d}(?:{translate(extension, flags, engine)})",
        *(
            expression
            for length, pattern in national_patterns
            for expression in national_number_expressions(pattern, length, punctuation, flags)
        ),
        f"{hs_class(plus)}(?:{b}*{w}){{{min_digits}}}",
        f"{hs_class(sorted(set(digit) | set(lead)))}(?:{b}*{hs_class(intersect(punct, letter))}){{3}}{b}*{d}",
    ]
    non_digit = hs_class(subtract(before, digit))
    not_a_digit = hs_class(subtract(((0, 0x10FFFF),), digit))
    non_zero = hs_class(sorted(r for value in range(1, 10) for r in _digits_of_value(value)))
    if country_codes is not None:
        value = {str(v): hs_class(_digits_of_value(v)) for v in range(10)}

        def digits(text: str) -> str:
            return f"{p}*".join(value[character] for character in text)

        prefixes = "|".join(digits(prefix) for prefix in dialling_prefixes)
        # Per first digit of a country code, the fewest digits that follow it in a number.
        fewest: dict[str, int] = {}
        for code, after in country_codes:
            fewest[code[0]] = min(fewest.get(code[0], len(code) - 1 + after), len(code) - 1 + after)
        for first, count in sorted(fewest.items()):
            # (Fewer digits required is still a superset; hyperscan refuses a UTF-8 digit class repeated 9 times.)
            count = min(count, 8)
            tail = f"(?:{p}*{d}){{{count}}}" if count else ""
            expressions.append(f"(?:^|{not_a_digit})(?:{prefixes}){p}*{value[first]}{tail}")
        return expressions
    shortest: dict[str, int] = {}
    for prefix in dialling_prefixes:
        shortest[prefix[0]] = min(len(prefix), shortest.get(prefix[0], len(prefix)))
    for first, length in sorted(shortest.items()):
        first_digit = hs_class(intersect(digit, code_point_ranges(re.escape(first), flags, engine)))
        # The prefix's first digit, the rest of the prefix and the non-zero digit after it.
        rest = f"(?:{p}*{d}){{{length - 1}}}" if length > 1 else ""
        body = f"{first_digit}{rest}{p}*{non_zero}"
        most_before = max(min_digits - length - 1, 0)
        for count in range(most_before + 1):
            after = max(min_digits - count - length - 1, 0)
            # k word characters, the last followed by a non-digit: the prefix starts a digit block.
            repeat = f"(?:{w}{b}*){{{count - 1}}}" if count > 1 else ""
            # (k = 0: the prefix starts the candidate, so no digit precedes it in the text.)
            head = f"{repeat}{w}{b}*{non_digit}" if count else f"(?:^|{not_a_digit})"
            tail = f"(?:{m}*{w}){{{after}}}" if after else ""
            expressions.append(head + body + tail)
    return expressions


class Prefilter:
    """One hyperscan database: per recognizer, where it can match (a superset); scan records with it."""

    engine = "hyperscan"

    def __init__(self, expressions: dict[int, list[str]], always: set[int]):
        """``expressions``: per plan index, its hyperscan patterns; ``always``: plans that run on every text.

        The ASCII database is compiled here; the UTF-8 one only when a text first needs it (one
        holding a non-ASCII character some expression may read): with Unicode digit and word
        classes it takes ten times as long to compile (~10 s uncached), and many corpora never
        need it. A plan whose expressions hyperscan refuses (a pattern too large, ...) runs on
        every text of that path.
        """
        self.always = frozenset(always)
        self.plans = frozenset(plan for plan, exprs in expressions.items() if exprs)
        self._expressions = expressions
        self._utf8: tuple | None = None
        self.ascii_database, self._ascii_plan_of, self._not_inert = self._ascii_path(expressions)
        if self.ascii_database is None and self.plans:
            # Every text takes the UTF-8 path: compile it now.
            refused = self._utf8_path()[2]
            self.always, self.plans = self.always | refused, self.plans - refused

    def _utf8_path(self) -> tuple:
        """The UTF-8 database, its plans by id, and the plans it refused: compiled on first use."""
        if self._utf8 is None:
            self._utf8 = self._compile_each({plan: self._expressions[plan] for plan in self.plans})
        return self._utf8

    def _compile_each(self, expressions: dict[int, list[str]], utf8: bool = True):
        """``_compile``, leaving out the plans hyperscan refuses; and those plans."""
        import hyperscan

        try:
            return (*self._compile(expressions, utf8), frozenset())
        except hyperscan.error:
            refused = set()
            for plan, exprs in expressions.items():
                try:
                    self._compile({plan: exprs}, utf8)
                except hyperscan.error as exc:
                    log.info("prefilter: plan %d runs on every text (hyperscan: %s)", plan, exc)
                    refused.add(plan)
            kept = {plan: exprs for plan, exprs in expressions.items() if plan not in refused}
            return (*self._compile(kept, utf8), frozenset(refused))

    def _ascii_path(self, expressions: dict[int, list[str]]):
        """The ASCII database, its plans by id, and a pattern finding a character that is not inert.

        Plans the ASCII database refuses join ``always``.
        """
        import hyperscan

        if not self.plans:
            return None, [], None
        forms = {plan: ascii_form(exprs) for plan, exprs in expressions.items()}
        if any(form is None for form in forms.values()):
            log.info("prefilter: no ASCII path (an expression holds more than classes and ASCII syntax)")
            return None, [], None
        unsafe = _merge(sorted(r for _exprs, ranges in forms.values() for r in ranges))
        try:
            database, plan_of, refused = self._compile_each({plan: form[0] for plan, form in forms.items()}, utf8=False)
            # Whether a text holds a character that is not inert: one class, scanned in UTF-8 (Python's
            # re takes ten times as long over a class of this many ranges). Surrogates never get here: a
            # text holding one cannot be UTF-8 encoded and takes the UTF-8 path, which marks everything.
            not_inert = None
            if unsafe:
                not_inert = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
                not_inert.compile(
                    expressions=[hs_class(unsafe).encode("utf-8")],
                    ids=[0],
                    elements=1,
                    flags=[hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_SINGLEMATCH],
                )
        except hyperscan.error as exc:
            log.info("prefilter: no ASCII path (hyperscan: %s)", exc)
            return None, [], None
        if database is None:  # every plan refused
            return None, [], None
        self.always, self.plans = self.always | refused, self.plans - refused
        return database, plan_of, not_inert

    @staticmethod
    def _compile(expressions: dict[int, list[str]], utf8: bool = True):
        """The database and, per database id, the plan it stands for.

        Database ids are the plans' ranks in a canonical order (by their sorted patterns):
        plan numbering and some pattern lists follow hash-seeded set order, which differs
        from process to process, and the cached database must not depend on it.
        """
        import hyperscan

        groups = sorted((tuple(sorted(exprs)), plan) for plan, exprs in expressions.items() if exprs)
        patterns, ids = [], []
        for rank, (exprs, _plan) in enumerate(groups):
            for expression in exprs:
                patterns.append(expression.encode("utf-8"))
                ids.append(rank)
        if not patterns:
            return None, []
        flag = (hyperscan.HS_FLAG_UTF8 if utf8 else 0) | hyperscan.HS_FLAG_ALLOWEMPTY
        cached = compiled_database_cache(patterns, ids, flag)
        database = cached.load()
        if database is None:
            database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            database.compile(expressions=patterns, ids=ids, elements=len(patterns), flags=[flag] * len(patterns))
            cached.store(database)
        return database, [plan for _exprs, plan in groups]

    def fired(self, texts: Sequence[str]) -> list[frozenset[int]]:
        """Per text, the plans that may match in it (always-run plans included)."""
        return self.fired_with_ends(texts)[0]

    def fired_with_ends(
        self, texts: Sequence[str], ends_of: int | None = None
    ) -> tuple[list[frozenset[int]], list[list[int] | None] | None]:
        """``fired``, and per text the character offsets where a match of plan ``ends_of`` ends.

        Texts may come from many records: each is scanned on its own path. Those whose every
        non-ASCII character is inert go, joined, to the ASCII database, and only they get offsets
        (a byte is a character there); the others go, joined, to the UTF-8 database and get None.
        Without ``ends_of`` the second item is None. Each offset is one past a match's last
        character: every match of the plan's expressions inside a text ends at one of them.
        """
        if not self.plans or not texts:
            return [self.always] * len(texts), None
        if self.ascii_database is None:
            return self._fired_utf8(texts), None if ends_of is None else [None] * len(texts)
        joined = SEPARATOR.decode().join(texts)
        if joined.isascii():
            return self._fired_ascii(texts, joined.encode("ascii"), ends_of)
        if self._all_inert(joined):
            return self._fired_ascii(texts, joined.encode("ascii", "replace"), ends_of)
        # Some text holds a character that is not inert: route text by text.
        on_ascii = [index for index, text in enumerate(texts) if text.isascii() or self._all_inert(text)]
        fired: list[frozenset[int]] = [self.always] * len(texts)
        ends: list[list[int] | None] | None = None if ends_of is None else [None] * len(texts)
        if on_ascii:
            chosen = [texts[index] for index in on_ascii]
            data = SEPARATOR.decode().join(chosen).encode("ascii", "replace")
            chosen_fired, chosen_ends = self._fired_ascii(chosen, data, ends_of)
            for position, index in enumerate(on_ascii):
                fired[index] = chosen_fired[position]
                if ends is not None:
                    ends[index] = chosen_ends[position]
        kept = set(on_ascii)
        off_ascii = [index for index in range(len(texts)) if index not in kept]
        for index, found in zip(off_ascii, self._fired_utf8([texts[index] for index in off_ascii]), strict=True):
            fired[index] = found
        return fired, ends

    def _fired_utf8(self, texts: Sequence[str]) -> list[frozenset[int]]:
        """``fired`` on the UTF-8 database; a text that cannot be UTF-8 encoded (a lone surrogate) runs every plan."""
        database, plan_of, refused = self._utf8_path()
        fired: list[frozenset[int]] = [self.always | self.plans] * len(texts)
        parts, indices = [], []
        for index, text in enumerate(texts):
            try:
                parts.append(text.encode("utf-8"))
            except UnicodeEncodeError:
                continue
            indices.append(index)
        if parts:
            data = SEPARATOR.join(parts)
            found, _ = self._scan_fields(database, plan_of, data, [len(p) for p in parts], None, self.always | refused)
            for index, plans in zip(indices, found, strict=True):
                fired[index] = plans
        return fired

    def _all_inert(self, joined: str) -> bool:
        """Whether every non-ASCII character of ``joined`` is inert (False if it cannot be UTF-8 encoded)."""
        if self._not_inert is None:
            return True
        try:
            data = joined.encode("utf-8")
        except UnicodeEncodeError:
            return False
        found: list[int] = []
        self._not_inert.scan(data, match_event_handler=lambda *_args: found.append(1))
        return not found

    def _fired_ascii(
        self, texts: Sequence[str], data: bytes, ends_of: int | None
    ) -> tuple[list[frozenset[int]], list[list[int]] | None]:
        """``fired_with_ends`` on the ASCII database: ``data`` holds one byte per character of the joined texts."""
        return self._scan_fields(
            self.ascii_database, self._ascii_plan_of, data, [len(t) for t in texts], ends_of, self.always
        )

    @staticmethod
    def _scan_fields(
        database,
        plan_of: Sequence[int],
        data: bytes,
        lengths: Sequence[int],
        ends_of: int | None,
        always: frozenset[int],
    ) -> tuple[list[frozenset[int]], list[list[int]] | None]:
        """Scan the joined fields once; per field (``lengths`` bytes each, SEPARATOR between), the plans
        that fired (``always`` among them), and (for plan ``ends_of``) the field offsets where its matches end."""
        # Where each field starts (one past the end, last): running sums, in C.
        starts = list(itertools.accumulate(map(operator.add, lengths, itertools.repeat(len(SEPARATOR))), initial=0))
        # Only fields where something matched get a set (most fields see no match).
        hits: dict[int, set[int]] = {}
        ends: dict[int, list[int]] = {}
        single = len(lengths) == 1
        bisect_right = bisect.bisect_right

        def on_match(rank: int, _start: int, end: int, _flags: int, _context: object) -> None:
            # The match's last byte lies in the field that starts at or before it.
            index = 0 if single else bisect_right(starts, end - 1) - 1
            plan = plan_of[rank]
            found = hits.get(index)
            if found is None:
                hits[index] = {plan}
            else:
                found.add(plan)
            if plan == ends_of:
                ends.setdefault(index, []).append(end - starts[index])

        database.scan(data, match_event_handler=on_match)
        fired = [always] * len(lengths)
        for index, found in hits.items():
            fired[index] = always | found
        if ends_of is None:
            return fired, None
        return fired, [ends.get(index, []) for index in range(len(lengths))]


class CompiledDatabaseCache:
    """A compiled hyperscan database on disk, named by the SHA-256 of everything that determines it.

    Compiling the policy's ~30 patterns takes seconds (about half of a small ``pii_scan``
    stage, paid again by every stage and every ``govern pii scan``), while the patterns
    change only with the policy. The file name is the hash of the hyperscan version, the
    mode, the flags, every pattern and its database id, so a changed policy or library never
    meets a stale database; a file that cannot be read or loaded is ignored and compiled
    anew. Written atomically (temp file, rename), so concurrent stages never read half a file.
    The cache is an accelerator only: the database is what compiling the same inputs gives.

    Trust boundary: the database decides which records the PII recognizers read at all, so a
    file is loaded only if it is the user's own and writable by nobody else
    (:func:`governance.files.read_private`): another user's database in a shared
    ``GOVERN_CACHE_DIR`` (one compiled from a pattern that never matches made the gate sign
    "0 findings" over cards and e-mails: attack P7) is compiled anew instead. Whoever can write
    the user's own files can also read the trail's key beside the store: outside this boundary.
    """

    def __init__(self, path: Path | None):
        self.path = path

    def load(self):
        import hyperscan

        if self.path is None:
            return None
        data, why = read_private(self.path)
        if data is None:
            if why:
                log.warning("prefilter: cached database %s ignored: %s", self.path, why)
            return None
        try:
            database = hyperscan.loadb(data, hyperscan.HS_MODE_BLOCK)
            database.scratch = hyperscan.Scratch(database)
        except (OSError, ValueError, TypeError, hyperscan.error) as exc:  # unreadable or not a database of ours
            if not isinstance(exc, FileNotFoundError):
                log.info("prefilter: cached database %s ignored (%s)", self.path.name, exc.__class__.__name__)
            return None
        return database

    def store(self, database) -> None:
        import hyperscan

        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.path.parent, prefix=".tmp-", delete=False) as handle:
                handle.write(hyperscan.dumpb(database))
            os.replace(handle.name, self.path)
        except OSError as exc:  # a read-only home: the scan still runs, it only compiles next time too
            log.info("prefilter: compiled database not cached (%s)", exc.__class__.__name__)


def cache_root() -> Path | None:
    """The prefilter's cache folder: ``GOVERN_CACHE_DIR``, else the user cache; None for ``GOVERN_CACHE_DIR=off``."""
    root = os.environ.get("GOVERN_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "governed-post-training"
    )
    return None if root == "off" else Path(root)


def compiled_database_cache(patterns: list[bytes], ids: list[int], flag: int) -> CompiledDatabaseCache:
    """Where the compiled database of these exact inputs is cached (``GOVERN_CACHE_DIR``, else the user cache).

    ``GOVERN_CACHE_DIR=off`` turns the cache off.
    """
    import hyperscan

    root = cache_root()
    if root is None:
        return CompiledDatabaseCache(None)
    key = hashlib.sha256()
    key.update(f"{hyperscan.__version__}|{hyperscan.HS_MODE_BLOCK}|{flag}|{len(patterns)}".encode())
    for pattern, rank in zip(patterns, ids, strict=True):
        key.update(b"\0%d\0" % rank + pattern)
    return CompiledDatabaseCache(root / "hyperscan" / f"{key.hexdigest()}.hsdb")


class RangeTable:
    """:func:`code_point_ranges` results on disk, one JSON file per Python, ``regex`` and Unicode version.

    A character class's code points depend only on the engine's Unicode tables, which the file name
    pins (``sys.version``, ``regex.__version__``, ``unicodedata.unidata_version``): another
    interpreter or library reads another file. An unreadable or malformed file is ignored and
    recomputed; :meth:`save` writes atomically (temp file, rename) and only when something was
    added. An accelerator only: every entry is what :func:`_computed_ranges` gives.
    """

    _shared: RangeTable | None = None

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict[str, tuple[tuple[int, int], ...]] = {}
        self.added = False
        if path is not None:
            try:
                data, why = read_private(path)
                if data is None:  # missing, or not the user's own (attack P7): computed again
                    if why:
                        log.warning("prefilter: code point table %s ignored: %s", path, why)
                    return
                stored = json.loads(data)
                self.entries = {key: tuple((int(a), int(b)) for a, b in ranges) for key, ranges in stored.items()}
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                if not isinstance(exc, FileNotFoundError):
                    log.info("prefilter: code point table %s ignored (%s)", path.name, exc.__class__.__name__)

    @classmethod
    def shared(cls) -> RangeTable:
        if cls._shared is None:
            root = cache_root()
            versions = f"{sys.version}|{regex.__version__}|{unicodedata.unidata_version}".encode()
            name = f"code-point-ranges-{hashlib.sha256(versions).hexdigest()[:16]}.json"
            cls._shared = cls(None if root is None else root / name)
        return cls._shared

    def get(self, key: str) -> tuple[tuple[int, int], ...] | None:
        return self.entries.get(key)

    def put(self, key: str, ranges: tuple[tuple[int, int], ...]) -> None:
        self.entries[key] = ranges
        self.added = True

    def save(self) -> None:
        if self.path is None or not self.added:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.path.parent, prefix=".tmp-", delete=False) as handle:
                json.dump(self.entries, handle, sort_keys=True)
            os.replace(handle.name, self.path)
            self.added = False
        except OSError as exc:  # a read-only home: it is only computed again next time
            log.info("prefilter: code point table not cached (%s)", exc.__class__.__name__)


def hyperscan_available() -> bool:
    """Whether the hyperscan package can be imported."""
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return False
    return True
