"""Presidio's results at a fraction of the cost: run each recognizer only where it can match.

``AnalyzerEngine.analyze`` runs every recognizer over every whole text. On
math-heavy chat data that is slow for one reason above all: the phone
recognizer hands every number in the text (``2``, ``48/2``, ``3.14``) to
libphonenumber's parser, once per region. :class:`WindowedAnalyzer` gives
the same results (same entity, start, end and score; the benchmark asserts it)
by running each recognizer only on small windows of the text where it can
match, mapping offsets back, and then applying presidio's own post-processing
(context enhancement over the whole text, score thresholds,
``EntityRecognizer.remove_duplicates``) to the collected results.

Why a window gives the same matches as the whole text, per recognizer:

* Each windowed recognizer has a *run class*: a set of characters every one of
  its matches consists of (``\\S`` for e-mail, URL, IP; digits, ``-``, space for
  credit cards; ...). A match therefore lies inside one maximal run of such
  characters. A run is bounded by characters that no match can contain or
  start at, so the recognizer's left-to-right scan is in the same state at a
  run's start whether it began at the start of the text or of the run. The
  window is the run plus one character either side, so look-behinds,
  look-aheads and ``\\b`` see the same neighbours as in the whole text.
* Each also has a *trigger*: a cheap pattern every match must contain
  (``@`` for e-mail; 13 digits with single separators for a card; a phone
  candidate with enough digits, a run of which fits a number type of a
  reachable region). Runs without a trigger cannot hold a match and are
  skipped; on typical text that is nearly all of them.
* The phone recognizer's run class, trigger, minimum length and number-type
  patterns are derived at start-up from libphonenumber's own candidate
  pattern and metadata, not copied. libphonenumber gives up on a text after 65,535 failed tries;
  where a text could reach that limit (a bound computed from its length) it
  is scanned whole instead, so the windows never find a number presidio
  would have given up before.
* In a phone window libphonenumber's matcher parses each candidate, then its
  parts (inner matches), once per region. The windows repeat presidio's loop
  over a matcher that first asks :class:`_NationalNumbers` of every string it
  would parse and skips those that cannot hold a valid number (most parts of
  math expressions, card numbers, IP addresses), which count as the failed
  tries they would have been (:meth:`_PhoneRule.analyze_window`).
* Recognizers without such a rule (custom policy regexes and deny-lists,
  anything re-configured) run on the whole text, exactly as presidio runs them;
  a pattern recognizer that keeps presidio's ``PatternRecognizer.analyze`` (the
  policy's own, presidio's DateRecognizer) only on texts where one of its
  patterns, compiled with its flags as presidio compiles them, matches at all.

NER (presidio's SpacyRecognizer) is the exception to "the same results": with
``nlp_engine.ner_scope: whole_text`` the model reads every text whole, as
presidio does, and with ``windows`` only the windows around capitalised words
that :class:`NerWindowFinder` finds (policy ``nlp_engine.ner_windows``); the
model's predictions in a window can differ from those in the whole text, and
``benchmarks/pii_accuracy.py --ner`` measures both against hand labels. Either
way the texts (or windows) of a batch of records go through one ``nlp.pipe``
(presidio's ``SpacyNlpEngine.process_batch``), and the model's entities become
presidio's results through presidio's own ``SpacyRecognizer.analyze``.

Before any of that, one hyperscan scan of all the string fields of a batch of records
(:mod:`governance.pii.prefilter`) says which recognizers' triggers or patterns
can match in which field; a recognizer runs only on those fields. Without
hyperscan the triggers are searched in Python, with the same results.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import phonenumbers
import regex
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, NumberParseException, PhoneMetadata, PhoneNumberMatcher
from presidio_analyzer import EntityRecognizer, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngineProvider
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    CryptoRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
    SpacyRecognizer,
    UrlRecognizer,
    UsSsnRecognizer,
)

from governance.pii.engine import PiiEngine
from governance.pii.prefilter import (
    Prefilter,
    Untranslatable,
    code_point_ranges,
    hs_class,
    hyperscan_available,
    intersect,
    phone_superset,
    translate,
)
from governance.policy.pii import NerWindows

log = logging.getLogger(__name__)

#: libphonenumber's PhoneNumberMatcher stops after this many failed tries per text.
PHONE_MAX_TRIES = 65535

#: sha256 of the source of presidio's ``PhoneRecognizer.analyze`` (2.2.364 to 2.2.366) that
#: :meth:`_PhoneRule.analyze_window` repeats; any other source runs presidio's own.
PRESIDIO_PHONE_ANALYZE_SHA256 = "dc228ae284c3d101ef6ba5472ce912c66de2fdecc87080e927b4be24d9b22ac0"

Span = tuple[int, int]


def _run_bounds(boundary: re.Pattern | regex.Pattern, text: str, start: int, end: int) -> Span:
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
class _RunRule:
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
            run_start, run_end = _run_bounds(self.boundary, text, start, end)
            spans.append((max(0, run_start - 1), min(len(text), run_end + 1)))
            covered_to = run_end
        return spans


def _rule(name: str, boundary: re.Pattern | regex.Pattern, trigger: regex.Pattern) -> _RunRule:
    return _RunRule(name, boundary, _regex_triggers(trigger), (trigger.pattern, trigger.flags))


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


def _pattern_rule(recognizer: EntityRecognizer) -> _RunRule | None:
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
        return _RunRule("email", no_space, _literal_trigger("@"), ("@", 0))
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


class _PhoneRule:
    """Windows for presidio's PhoneRecognizer, derived from libphonenumber itself.

    * run class: every character libphonenumber's candidate pattern
      (``phonenumbermatcher._PATTERN``) can match (digits, its punctuation,
      the extension words), with the same flags;
    * candidate-free stretches: inside such a run, the non-digits between two
      numbers ("`` = ``", "`` apples, ``") belong to no candidate unless
      ``1<stretch>1`` is one (see :meth:`_outside`), so they bound windows too;
    * trigger: a candidate of the relaxed pattern (same pattern, repetition
      limits removed, so it contains every real candidate) holding at least
      ``min_digits`` letters or digits, the fewest any phone number that the
      recognizer's regions (nationally) or any country (internationally) can
      have (letters count: libphonenumber reads vanity letters as digits), and
      that :class:`_NationalNumbers` says may hold a valid number.
    """

    def __init__(self, recognizer: PhoneRecognizer):
        import phonenumbers
        from phonenumbers import phonenumbermatcher

        pattern = phonenumbermatcher._PATTERN
        self.flags = pattern.flags
        self.chars = chars = _class_body(pattern.pattern, pattern.flags)
        self.boundary = re.compile(f"[^{chars}]", pattern.flags)
        self.run_char = re.compile(f"[{chars}]", pattern.flags)
        self.runs = re.compile(f"[{chars}]+", pattern.flags)
        self.relaxed = re.compile(re.sub(r"\{(\d+),\d+\}", r"{\1,}", pattern.pattern), pattern.flags)
        self.word = re.compile(r"\w")
        self.non_digits = re.compile(r"\D+")
        self.min_digits = _min_phone_digits(phonenumbers, recognizer.supported_regions, recognizer.leniency)
        # Validity is only required from leniency VALID (presidio's default) up.
        self.national = _NationalNumbers(recognizer.supported_regions) if recognizer.leniency >= 1 else None
        self._outside_cache: dict[tuple[str, bool, bool], Span | None] = {}
        # Windows skip libphonenumber's hopeless parses only where presidio's loop is the one repeated here.
        self.guarded = self.national is not None and _presidio_phone_loop_unchanged()
        if self.national is not None and not self.guarded:
            log.warning("phone windows run presidio's own PhoneRecognizer.analyze: its source is not the one repeated")

    def prefilter_expressions(self) -> list[str]:
        """Hyperscan expressions every triggering candidate contains (see :func:`phone_superset`)."""
        from phonenumbers import phonenumbermatcher as matcher

        # phone_superset reads the candidate pattern as these parts; a release built otherwise is not read.
        parts = (
            f"(?:{matcher._LEAD_CLASS}{matcher._PUNCTUATION}){matcher._LEAD_LIMIT}{matcher._DIGIT_SEQUENCE}"
            f"(?:{matcher._PUNCTUATION}{matcher._DIGIT_SEQUENCE}){matcher._BLOCK_LIMIT}"
            f"(?:{matcher._EXTN_PATTERNS_FOR_MATCHING})?"
        )
        if matcher._PATTERN.pattern != parts or matcher._PATTERN.flags != self.flags:
            raise Untranslatable("libphonenumber's candidate pattern is not built as phone_superset reads it")
        if self.national is None:
            # Without validity, any candidate with min_digits word characters triggers.
            run = code_point_ranges(f"[{self.chars}]", self.flags, "re")
            word = hs_class(intersect(run, code_point_ranges(r"\w", self.flags, "re")))
            return [f"{word}(?:{hs_class(run)}*{word}){{{max(self.min_digits - 1, 0)}}}"]
        return phone_superset(
            matcher._LEAD_CLASS,
            matcher._VALID_PUNCTUATION,
            matcher._EXTN_PATTERNS_FOR_MATCHING,
            self.flags,
            self.national.dialling_prefixes,
            self.min_digits,
            [(length, pattern.pattern) for length, pattern in self.national.patterns],
            [(str(code), self.national.country_digits(code)[0]) for code in COUNTRY_CODE_TO_REGION_CODE],
        )

    def _outside(self, stretch: str, leading: bool, trailing: bool) -> Span | None:
        """The part ``[a, b)`` of a stretch of non-digits that no candidate can contain.

        A candidate holds digits, starts with a digit or a lead character
        (``(``, ``+``) and ends with a digit or ``#``. So a candidate touching a
        stretch either spans it (then ``1<stretch>1`` is a candidate), or ends
        in its first character (``#``), or starts in it at some ``i`` where
        ``<stretch[i:]>1`` is a candidate. A ``leading`` stretch has no digit
        before it in its run, a ``trailing`` one none after it.
        """
        key = (stretch, leading, trailing)
        if key in self._outside_cache:
            return self._outside_cache[key]
        span: Span | None = None
        if leading or trailing or self.relaxed.fullmatch(f"1{stretch}1") is None:
            first = 0 if leading else 1
            last = len(stretch)
            if not trailing:
                last = next((i for i in range(len(stretch)) if self.relaxed.fullmatch(f"{stretch[i:]}1")), last)
            span = (first, last) if first < last else None
        if len(self._outside_cache) < 65536:
            self._outside_cache[key] = span
        return span

    def candidates(self, text: str) -> tuple[list[Span], int, int]:
        """Triggering candidates, a bound on the numbers the text holds, and the longest candidate."""
        spans: list[Span] = []
        numbers = longest = 0
        min_digits = self.min_digits
        for match in self.relaxed.finditer(text):
            start, end = match.span()
            if end - start > longest:
                longest = end - start
            # Most candidates in math text are short numbers ("12", "3/4"): fewer characters than
            # min_digits means fewer word characters, so they neither count nor trigger.
            if end - start < min_digits:
                continue
            potential = len(self.word.findall(text, start, end))
            if potential >= min_digits:
                numbers += potential // min_digits
                if self.national is None or self.national.may_hold_number(text[start:end]):
                    spans.append((start, end))
        return spans, numbers, longest

    def _narrow(self, text: str, run_start: int, run_end: int, start: int, end: int) -> Span:
        """The part of a run around ``[start, end)`` that no candidate-free stretch cuts."""
        low = run_start
        for stretch in self.non_digits.finditer(text, run_start, run_end):
            first, last = stretch.span()
            outside = self._outside(stretch.group(), first == run_start, last == run_end)
            if outside is None:
                continue
            cut_start, cut_end = first + outside[0], first + outside[1]
            if cut_start < start:
                low = max(low, min(cut_end, start))
            if cut_end > end:
                return low, max(cut_start, end)
        return low, run_end

    def could_give_up(self, text: str, numbers: int, longest: int) -> bool:
        """Whether libphonenumber could run out of tries on this text (then windows could find more).

        Candidates start at distinct characters of the run class (``m`` of
        them); a failed candidate ``c`` costs at most ``7 + 2*len(c)`` tries
        (one per inner-match attempt, each at a separator of ``c``); candidates
        are disjoint except that each number found lets the scan re-read at most
        one candidate. So tries <= 7m + 2(m + numbers * (longest + 1)).
        """
        extra = 2 * numbers * (longest + 1)
        if 9 * len(text) + extra < PHONE_MAX_TRIES:
            return False
        return 9 * self.run_char.subn("", text)[1] + extra >= PHONE_MAX_TRIES

    def analyze_window(self, recognizer: PhoneRecognizer, window: str, entities: list[str]) -> list[RecognizerResult]:
        """``recognizer.analyze(window)``, without the parses that cannot give a valid number.

        presidio's loop, statement for statement (the source it repeats is checked at start-up:
        :data:`PRESIDIO_PHONE_ANALYZE_SHA256`), over :class:`_GuardedMatcher`: libphonenumber's
        matcher, which first asks :meth:`_NationalNumbers.may_hold_number` of every string it would
        parse and verify (a candidate, or a part of one: most of them in math text) and skips what
        cannot hold a valid number. A skipped string counts as a failed try, as it would have.
        """
        if not self.guarded:
            return recognizer.analyze(text=window, entities=entities, nlp_artifacts=None) or []
        results = []
        for region in recognizer.supported_regions:
            may_hold = self.national.for_region(region)
            matcher = _GuardedMatcher(may_hold, window, region, leniency=recognizer.leniency)
            for match in matcher:
                try:
                    parsed_number = phonenumbers.parse(window[match.start : match.end])
                    region = phonenumbers.region_code_for_number(parsed_number)  # rebinds it, as presidio
                    results += [recognizer._get_recognizer_result(match, window, region, None)]
                except NumberParseException:
                    results += [recognizer._get_recognizer_result(match, window, region, None)]
        return EntityRecognizer.remove_duplicates(results)

    def candidates_near(self, text: str, ends: list[int]) -> tuple[list[Span], int, int]:
        """:meth:`candidates` from the runs holding a prefilter match's last character, with bounds.

        Every triggering candidate contains a match of the prefilter's phone expressions
        (:func:`~governance.pii.prefilter.phone_superset`), so it lies in the run of characters
        holding that match's last character, ``ends`` (one past it, as hyperscan reports). In a run
        the relaxed pattern finds what it finds scanning the whole text: a run is bounded by
        characters no candidate holds, so a scan from the run's start is in the same state. The
        counts are bounds for :meth:`could_give_up` (a number has ``min_digits`` of the text's
        characters, and no candidate is longer than its run), so it errs only towards the whole text.
        """
        spans: list[Span] = []
        min_digits = self.min_digits
        scanned_to = -1
        for end in sorted(ends):
            if end <= scanned_to or not 0 < end <= len(text):
                continue
            run_start, run_end = _run_bounds(self.boundary, text, end - 1, end)
            scanned_to = run_end
            for match in self.relaxed.finditer(text, run_start):
                start, stop = match.span()
                if start >= run_end:
                    break
                if stop - start >= min_digits and len(self.word.findall(text, start, stop)) >= min_digits:
                    if self.national is None or self.national.may_hold_number(text[start:stop]):
                        spans.append((start, stop))
        if not spans:
            return spans, 0, 0
        numbers = len(text) // min_digits
        longest = len(text)
        if 9 * len(text) + 2 * numbers * (longest + 1) >= PHONE_MAX_TRIES:
            longest = max(map(len, self.runs.findall(text)))
        return spans, numbers, longest

    def windows(self, text: str, ends: list[int] | None = None) -> list[Span] | None:
        """Windows, or None when libphonenumber could give up on this text (scan it whole).

        ``ends``: where the prefilter's phone matches end in the text, when it says (:meth:`candidates_near`).
        """
        if ends is None:
            spans, numbers, longest = self.candidates(text)
        else:
            spans, numbers, longest = self.candidates_near(text, ends)
            if spans and self.could_give_up(text, numbers, longest):
                spans, numbers, longest = self.candidates(text)  # the bounds were not enough: count exactly
        if not spans:
            return []
        if self.could_give_up(text, numbers, longest):
            return None
        windows: list[Span] = []
        covered_to = -1
        for start, end in spans:
            if start < covered_to:
                continue
            run_start, run_end = _run_bounds(self.boundary, text, start, end)
            low, high = self._narrow(text, run_start, run_end, start, end)
            windows.append((max(0, low - 1), min(len(text), high + 1)))
            covered_to = high
        return windows


class _NationalNumbers:
    """Whether a phone candidate may hold a number libphonenumber calls valid (leniency VALID).

    A valid number's national significant number matches the pattern and a
    possible length of one of its region's number types (fixed line, mobile,
    toll free, ...: what ``is_valid_number`` checks). Parsed in national
    format (no ``+``, no international dialling prefix) its region shares the
    calling code of the recognizer's regions, and its digits are a contiguous
    run of the candidate's digits (prefixes and extensions are only ever cut
    off the ends). Candidates with a ``+`` or three letters (vanity numbers,
    read as digits) may be international: those are always kept.

    Digits that start with a region's international dialling prefix and then a
    non-zero digit parse as international (``_maybe_extract_country_code``):
    the country code is the first of the next one to three digits that
    libphonenumber knows, and the number is valid only if a contiguous run of
    the digits after it fits a number type of one of that code's regions
    (:meth:`_international`). So a record id such as ``0015000`` (``00``, then
    country code 1 and four digits: no NANPA number) is ruled out, not parsed
    once per region. Where the code's main region rewrites numbers while
    stripping its national prefix (``national_prefix_transform_rule``: AR, MG,
    ...) only their count is checked (:meth:`country_digits`).

    Nothing here needs the string to be a whole candidate, so it also rules out
    the parts of one that the matcher parses (:class:`_GuardedMatcher`).
    """

    PLUS = ("+", "\uff0b")
    TYPES = (
        "premium_rate", "toll_free", "shared_cost", "voip", "personal_number",
        "pager", "uan", "voicemail", "fixed_line", "mobile",
    )  # fmt: skip

    def __init__(self, regions) -> None:
        import phonenumbers
        from phonenumbers import PhoneMetadata

        reachable = {
            other
            for region in regions
            for other in phonenumbers.region_codes_for_country_code(phonenumbers.country_code_for_region(region))
        }
        for region in regions:
            metadata = PhoneMetadata.metadata_for_region(region)
            if metadata is not None and not _keeps_digits_contiguous(metadata):
                raise ValueError(f"{region} rewrites national numbers ({metadata.national_prefix_transform_rule!r})")
        self.patterns = self._type_patterns([PhoneMetadata.metadata_for_region(r) for r in sorted(reachable)])
        # Per country code: the fewest digits after it and whether they are contiguous, then (compiled only when
        # enough digits follow: most digits after a prefix are too few, and compiling costs milliseconds) the
        # number-type patterns of its regions.
        self._country_digits: dict[int, tuple[int, bool]] = {}
        self._country_patterns: dict[int, list[tuple[int, re.Pattern]]] = {}
        self.dialling_prefixes = sorted(
            {prefix for region in regions for prefix in _prefix_strings(PhoneMetadata.metadata_for_region(region))}
        )
        self.normalize = phonenumbers.normalize_digits_only
        self.letter = re.compile(r"[^\W\d_]")
        self.blocks = re.compile(r"\d+")
        self._region_checks: dict[str, Callable[[str], bool]] = {}
        #: Whether a parse with any of the regions may give a valid number (the windows' trigger).
        self.may_hold_number = self._cached(self.dialling_prefixes, self.patterns)

    def for_region(self, region: str) -> Callable[[str], bool]:
        """``may_hold_number`` for a parse with this default region only (what the matcher of one region asks).

        Parsed nationally with region R, a number takes R's country code, so it must be valid in one
        of that code's regions; internationally, after R's own dialling prefix. A region
        libphonenumber does not know parses only numbers with a plus sign.
        """
        check = self._region_checks.get(region)
        if check is not None:
            return check
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is None:
            prefixes, patterns = [], []
        else:
            code = metadata.country_code
            prefixes = sorted(_prefix_strings(metadata))
            if code not in self._country_patterns:
                self._country_patterns[code] = self._type_patterns(self._metadata_of_country(code))
            patterns = self._country_patterns[code]
        check = self._region_checks[region] = self._cached(prefixes, patterns)
        return check

    def _cached(self, prefixes: list[str], patterns: list[tuple[int, re.Pattern]]) -> Callable[[str], bool]:
        """:meth:`_may_hold_number` with these prefixes and patterns, answered by string (each window is
        matched once per region, each time asking of the same strings; at most 65,536 kept)."""
        answers: dict[str, bool] = {}

        def check(candidate: str) -> bool:
            answer = answers.get(candidate)
            if answer is None:
                answer = self._may_hold_number(candidate, prefixes, patterns)
                if len(answers) < 65536:
                    answers[candidate] = answer
            return answer

        return check

    def _may_hold_number(self, candidate: str, prefixes: list[str], patterns: list[tuple[int, re.Pattern]]) -> bool:
        """Whether a parse after one of ``prefixes`` or fitting one of ``patterns`` may give a valid number."""
        if any(plus in candidate for plus in self.PLUS) or len(self.letter.findall(candidate)) >= 3:
            return True
        digits, block_starts = "", []
        for block in self.blocks.findall(candidate):
            if len(block) > 20:  # the matcher takes at most 20 digits at a time: it may start mid-block
                return True
            block_starts.append(len(digits))
            # ASCII digits normalise to themselves; libphonenumber's normaliser is a slow Python loop.
            digits += block if block.isascii() else self.normalize(block)
        # A dialling prefix counts where a parsed number can start (a digit block) and
        # a country code follows (they never start with 0).
        for start in block_starts:
            for prefix in prefixes:
                after = start + len(prefix)
                if digits.startswith(prefix, start) and after < len(digits) and digits[after] != "0":
                    if self._international(digits, after):
                        return True
        return self._fits(patterns, digits, 0)

    @staticmethod
    def _fits(patterns: list[tuple[int, re.Pattern]], digits: str, start: int) -> bool:
        """Whether a contiguous run of ``digits[start:]`` fits one of ``patterns`` at its length."""
        for length, pattern in patterns:
            for first in range(start, len(digits) - length + 1):
                if pattern.fullmatch(digits, first, first + length):
                    return True
        return False

    def _international(self, digits: str, after: int) -> bool:
        """Whether ``digits[after:]``, read as following a dialling prefix, may hold a valid number.

        libphonenumber takes the shortest of the next one to three digits that is a country code it
        knows (none: the parse fails); the national number is then what follows, less a national
        prefix or an extension, so a contiguous run of it.
        """
        for size in (1, 2, 3):
            if after + size > len(digits):
                return False
            code = int(digits[after : after + size])
            if code in COUNTRY_CODE_TO_REGION_CODE:
                break
        else:
            return False
        fewest, contiguous = self.country_digits(code)
        if len(digits) - (after + size) < fewest:
            return False
        if not contiguous:
            return True
        if code not in self._country_patterns:
            self._country_patterns[code] = self._type_patterns(self._metadata_of_country(code))
        return self._fits(self._country_patterns[code], digits, after + size)

    def country_digits(self, code: int) -> tuple[int, bool]:
        """The fewest digits after the country code a valid number needs, and whether its number is a
        contiguous run of them (then its patterns are checked too)."""
        if code not in self._country_digits:
            self._country_digits[code] = self._digits_of_country(code)
        return self._country_digits[code]

    @staticmethod
    def _metadata_of_country(code: int) -> list:
        return [
            PhoneMetadata.metadata_for_region_or_calling_code(code, region)
            for region in phonenumbers.region_codes_for_country_code(code)
        ]

    def _digits_of_country(self, code: int) -> tuple[int, bool]:
        """See :meth:`country_digits`.

        A national number has one of its type's possible lengths. Where the code's main region
        rewrites numbers while stripping its national prefix (AR inserts a 9, MG prepends 20) the
        number is the rule's literal digits and groups of the text's digits, so the text holds at
        least its length less those literal digits, not necessarily contiguous.
        """
        main = phonenumbers.region_code_for_country_code(code)
        metadata = self._metadata_of_country(code)
        parsing = PhoneMetadata.metadata_for_region_or_calling_code(code, main)
        if parsing is None or any(m is None for m in metadata):
            return 0, False
        lengths = []
        for region in metadata:
            general = region.general_desc.possible_length
            if not general:  # metadata without lengths: keep the digits rather than guess
                return 0, False
            for name in self.TYPES:
                desc = getattr(region, name)
                if desc is not None and desc.national_number_pattern:
                    lengths += [n for n in desc.possible_length or general if n > 0]
        if not lengths:
            return 0, False
        if _keeps_digits_contiguous(parsing):
            return min(lengths), True
        added = sum(character.isdigit() for character in re.sub(r"\\\d", "", parsing.national_prefix_transform_rule))
        return max(0, min(lengths) - added), False

    @classmethod
    def _type_patterns(cls, regions_metadata) -> list[tuple[int, re.Pattern]]:
        """Per possible length, one pattern: every number type of the given regions at that length."""
        by_length: dict[int, set[str]] = {}
        for metadata in regions_metadata:
            general = metadata.general_desc
            if not general.possible_length:
                raise ValueError(f"no possible lengths for region {metadata.id}")
            for name in cls.TYPES:
                desc = getattr(metadata, name)
                if desc is None or not desc.national_number_pattern:
                    continue
                for length in desc.possible_length or general.possible_length:
                    by_length.setdefault(length, set()).add(f"(?:{desc.national_number_pattern})")
        return sorted((n, re.compile("|".join(sorted(p)))) for n, p in by_length.items() if n > 0)


class _GuardedMatcher(PhoneNumberMatcher):
    """libphonenumber's matcher, skipping the strings ``may_hold_number`` rules out before parsing them.

    ``_parse_and_verify`` is where every match comes from (the whole candidate, then its inner
    groups); returning None there is exactly what a failed parse or verification returns, and the
    callers count the try either way.
    """

    def __init__(self, may_hold_number: Callable[[str], bool], text: str, region: str, leniency: int):
        super().__init__(text, region, leniency=leniency)
        self._may_hold_number = may_hold_number

    def _parse_and_verify(self, candidate, offset):
        if not self._may_hold_number(candidate):
            return None
        return super()._parse_and_verify(candidate, offset)


def _keeps_digits_contiguous(metadata) -> bool:
    """Whether stripping the region's national prefix leaves a contiguous run of the digits.

    A transform rule that is one back-reference (BR's ``\\2``) keeps a group of the digits; any
    other (AR inserts a 9, MG prepends 20) makes a number whose digits the text does not hold.
    """
    rule = metadata.national_prefix_transform_rule
    return not rule or re.fullmatch(r"\\[1-9]", rule) is not None


def _presidio_phone_loop_unchanged() -> bool:
    """Whether presidio's ``PhoneRecognizer.analyze`` is the source ``_PhoneRule.analyze_window`` repeats."""
    try:
        source = inspect.getsource(PhoneRecognizer.analyze)
    except (OSError, TypeError):
        return False
    return hashlib.sha256(source.encode("utf-8")).hexdigest() == PRESIDIO_PHONE_ANALYZE_SHA256


def _prefix_strings(metadata, longest: int = 8) -> set[str]:
    """Every digit string the region's international dialling prefix pattern accepts.

    Enumerated digit by digit, keeping only strings the pattern can still
    complete (``regex`` partial matching); a pattern that accepts strings
    longer than ``longest`` is refused rather than under-enumerated.
    """
    pattern = regex.compile(metadata.international_prefix or "(?!)")
    found: set[str] = set()
    frontier = [""]
    for _ in range(longest):
        frontier = [p + d for p in frontier for d in "0123456789" if pattern.fullmatch(p + d, partial=True)]
        found.update(p for p in frontier if pattern.fullmatch(p))
        if not frontier:
            return found
    raise ValueError(f"dialling prefix of {metadata.id} accepts more than {longest} digits")


def _class_body(pattern: str, flags: int) -> str:
    """A character-class body matching every character a regex without negations can match."""
    import re._constants as c
    import re._parser as parser

    parts: list[str] = []
    categories = {c.CATEGORY_DIGIT: r"\d", c.CATEGORY_SPACE: r"\s", c.CATEGORY_WORD: r"\w"}

    def char(code: int) -> str:
        return re.escape(chr(code))

    def walk(items) -> None:
        for op, av in items:
            if op is c.LITERAL:
                parts.append(char(av))
            elif op is c.IN:
                for item_op, item in av:
                    if item_op is c.LITERAL:
                        parts.append(char(item))
                    elif item_op is c.RANGE:
                        parts.append(f"{char(item[0])}-{char(item[1])}")
                    elif item_op is c.CATEGORY and item in categories:
                        parts.append(categories[item])
                    else:
                        raise ValueError(f"unsupported class item {item_op}")
            elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
                walk(av[2])
            elif op is c.SUBPATTERN:
                walk(av[3])
            elif op is c.BRANCH:
                for branch in av[1]:
                    walk(branch)
            elif op is c.AT:
                continue
            else:
                raise ValueError(f"unsupported regex construct {op}")

    walk(parser.parse(pattern, flags))
    return "".join(parts)


def _min_phone_digits(phonenumbers, regions, leniency: int) -> int:
    """Fewest digits of any phone number the given regions accept (national or international).

    At leniency VALID (presidio's default) and above a number must be valid, so
    its national number has one of the region's possible lengths; at POSSIBLE,
    shorter local-only lengths (numbers dialled without an area code) count too.
    """
    from phonenumbers import PhoneMetadata

    def shortest(metadata) -> int:
        desc = metadata.general_desc
        lengths = list(desc.possible_length or ())
        if leniency < 1:
            lengths += list(desc.possible_length_local_only or ())
        lengths = [n for n in lengths if n > 0]
        # libphonenumber rejects national numbers under 2 digits outright.
        return min(lengths) if lengths else 2

    national = []
    for region in regions:
        code = phonenumbers.country_code_for_region(region)
        for other in phonenumbers.region_codes_for_country_code(code):
            metadata = PhoneMetadata.metadata_for_region(other)
            if metadata is not None:
                national.append(shortest(metadata))
    international = []
    for region in phonenumbers.SUPPORTED_REGIONS:
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is not None:
            international.append(len(str(metadata.country_code)) + shortest(metadata))
    for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        metadata = PhoneMetadata.metadata_for_nongeo_region(code)
        if metadata is not None:
            international.append(len(str(code)) + shortest(metadata))
    return max(2, min(national + international))


def _phone_rule(recognizer: EntityRecognizer) -> _PhoneRule | None:
    if type(recognizer) is not PhoneRecognizer:
        return None
    try:
        return _PhoneRule(recognizer)
    except (AttributeError, ImportError, ValueError) as exc:
        # A libphonenumber release with a different matcher: correct, just slower.
        log.warning("phone recognizer runs on whole texts: cannot derive its windows (%s)", exc)
        return None


def _pattern_gate(recognizer: EntityRecognizer) -> list[regex.Pattern] | None:
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


#: A word as the NER windows read it: letters (with marks, digits and apostrophes inside).
_NER_WORD = r"[\p{L}\p{M}\p{Nd}'’]"
#: A trigger candidate: a word starting with an upper- or title-case letter or a caseless-script letter.
_NER_TRIGGER = regex.compile(rf"(?<!{_NER_WORD})(?:[\p{{Lu}}\p{{Lt}}\p{{Lo}}]){_NER_WORD}*")
#: What may stand between a sentence's end and its first word: spaces, opening quotes and brackets, bullets.
_SENTENCE_LEAD = frozenset(" \t\r\f\v\"'“‘«([{*-•–—#>")
_SENTENCE_ENDS = frozenset(".!?:;…\n")
_SPAN = regex.compile(r"\S+")


class NerWindowFinder:
    """Where the NER model reads a text: around capitalised words (``ner_scope: windows``) or all of it.

    See :class:`~governance.policy.pii.NerWindows` for what triggers a window. A window is the
    trigger with ``context_words`` whitespace-separated words either side; windows that overlap or
    touch are merged. ``None`` windows (``whole_text``) means the whole text, if it holds any word.
    """

    def __init__(self, config: NerWindows | None):
        self.config = config
        self.never = frozenset(config.never) if config else frozenset()
        self.starters = frozenset(config.sentence_starters) if config else frozenset()
        self.reach = 48 * config.context_words if config else 0

    @staticmethod
    def sentence_start(text: str, start: int) -> bool:
        """Whether the word at ``start`` begins a sentence (only spaces, quotes and bullets after its end)."""
        index = start - 1
        while index >= 0 and text[index] in _SENTENCE_LEAD:
            index -= 1
        return index < 0 or text[index] in _SENTENCE_ENDS or "\n" in text[index + 1 : start]

    def triggers(self, text: str) -> list[Span]:
        """The spans of the words that trigger a window."""
        found = []
        for match in _NER_TRIGGER.finditer(text):
            word = match.group().lower().replace("’", "'")
            if word in self.never or (word in self.starters and self.sentence_start(text, match.start())):
                continue
            found.append(match.span())
        return found

    def windows(self, text: str) -> list[Span]:
        """The character spans the model reads, in order, not overlapping."""
        if self.config is None:
            return [(0, len(text))] if _NER_WORD_ANY.search(text) else []
        words = self.config.context_words
        spans: list[Span] = []
        for start, end in self.triggers(text):
            if spans and start < spans[-1][1]:
                # Inside the last window: only its right edge may move.
                spans[-1] = (spans[-1][0], max(spans[-1][1], self._right(text, end, words)))
                continue
            low = max(0, start - self.reach)
            before = [m.span() for m in _SPAN.finditer(text, low, start)]
            if before and before[-1][1] == start:
                # The trigger's own chunk ("<" of "<PERSON>", "(" of "(Marcus"): not a word before it.
                start = before.pop()[0]
            before = [chunk_start for chunk_start, _ in before]
            left = before[-words] if len(before) >= words else (before[0] if before else start)
            if low > 0 and len(before) < words:
                left = low
            right = self._right(text, end, words)
            if spans and left <= spans[-1][1] + 1:
                spans[-1] = (spans[-1][0], max(spans[-1][1], right))
            else:
                spans.append((left, right))
        return spans

    def _right(self, text: str, end: int, words: int) -> int:
        high = min(len(text), end + self.reach)
        after = [m.end() for _, m in zip(range(words + 1), _SPAN.finditer(text, end, high), strict=False)]
        # The first span may be the rest of the trigger's own chunk ("Marcus's,"): it is not a word after it.
        if after and not text[end : end + 1].isspace():
            after = after[1:] if len(after) > words else after
        return after[words - 1] if len(after) >= words else (after[-1] if after else end)


_NER_WORD_ANY = regex.compile(r"[\p{L}\p{Nd}]")
#: What the redactor writes for a name, and what the model reads in its place (a name of the same length).
PERSON_TAG = "<PERSON>"
PERSON_TAG_READS_AS = "Jonathan"
_PERSON_TAG = regex.compile(regex.escape(PERSON_TAG))


class WindowedAnalyzer:
    """``engine.analyze(text)`` with the same results, running recognizers on windows only.

    With ``prefilter`` (the default, when hyperscan is installed) one
    multi-pattern scan per batch of texts says which recognizers can match in
    which text; the others are not run there at all (:mod:`governance.pii.prefilter`).
    ``prefilter_engine`` names what ran: ``"hyperscan"`` or ``"python"``.
    """

    def __init__(self, engine: PiiEngine, *, prefilter: bool = True):
        self.engine = engine
        analyzer = engine.analyzer
        self.recognizers = analyzer.registry.get_recognizers(
            language=engine.language, entities=engine.entities, all_fields=False
        )
        self.plans: list[tuple[EntityRecognizer, _RunRule | _PhoneRule | None]] = []
        for recognizer in self.recognizers:
            rule = _phone_rule(recognizer) or _pattern_rule(recognizer)
            self.plans.append((recognizer, rule))
        # Whole-text policy regex recognizers run only where one of their own patterns matches at
        # all: presidio's PatternRecognizer finds nothing in a text none of its patterns matches.
        self.gates = {id(r): _pattern_gate(r) for r, rule in self.plans if rule is None}
        # NER recognizers read the model's entities: they run on the NER windows, batched (see _ner_many).
        self._ner_plans = frozenset(i for i, (r, _rule) in enumerate(self.plans) if isinstance(r, SpacyRecognizer))
        self.windowed = [r.name for r, rule in self.plans if rule is not None]
        self.whole_text = [
            r.name for i, (r, rule) in enumerate(self.plans) if rule is None and i not in self._ner_plans
        ]
        self.ner = [self.plans[i][0].name for i in sorted(self._ner_plans)]
        self.ner_windows = NerWindowFinder(engine.ner_windows) if engine.info.nlp_engine == "spacy" else None
        self._thresholds = {r.id: r.score_thresholds for r in self.recognizers}
        # Artifacts for everything but NER: the no_op engine's (an empty spaCy Doc, no tokens), built once
        # rather than once per analysed text as presidio's loop does. No recognizer but NER and no context
        # enhancer here reads them (ours reads words from the text), so a scan with the spaCy engine hands
        # them the same empty artifacts rather than running the model on every text for nothing.
        no_op = {"nlp_engine_name": "no_op", "models": [{"lang_code": engine.language, "model_name": "none"}]}
        self._empty_artifacts: NlpArtifacts = (
            NlpEngineProvider(nlp_configuration=no_op).create_engine().process_text(" ", engine.language)
        )
        self._all_plans = frozenset(range(len(self.plans)))
        # presidio's _enhance_using_context first hands each recognizer its own results (grouped in
        # registry order) to its enhance_using_context; EntityRecognizer's returns them unchanged. When
        # no recognizer overrides it and the results are already grouped so, that step is the identity
        # and is skipped (22 list scans per analysed text; the context enhancer still runs as presidio's).
        self._rank = {recognizer.id: rank for rank, recognizer in enumerate(self.recognizers)}
        # (Two recognizers sharing an id would each be handed the other's results: then presidio's step runs.)
        self._context_passthrough = len(self._rank) == len(self.recognizers) and all(
            type(r).enhance_using_context is EntityRecognizer.enhance_using_context for r in self.recognizers
        )
        # presidio compiles a pattern recognizer's regexes on its first call; pay that here, not mid-scan.
        for recognizer in self.recognizers:
            if isinstance(recognizer, PatternRecognizer):
                recognizer.analyze(text=" ", entities=engine.entities, nlp_artifacts=None)
            # ...and its e-mail validator builds tldextract's suffix trie on the first address (0.03 s).
            if isinstance(recognizer, EmailRecognizer):
                recognizer.validate_result("warm.up@example.com")
        self.prefilter = self._build_prefilter() if prefilter and hyperscan_available() else None
        # The phone plan's windows start from where the prefilter's phone expressions matched, when it says.
        # (A plan the prefilter runs on every text has no expressions, so no ends: it is not given any.)
        phone = [i for i, (_r, rule) in enumerate(self.plans) if isinstance(rule, _PhoneRule)]
        scanned = self.prefilter.plans if self.prefilter is not None else frozenset()
        self._phone_plan = phone[0] if phone and phone[0] in scanned else None
        self.prefilter_engine = "hyperscan" if self.prefilter is not None else "python"

    def _build_prefilter(self) -> Prefilter:
        """Per plan, hyperscan expressions where it can match; plans without any run on every text."""
        expressions: dict[int, list[str]] = {}
        always: set[int] = set()
        for index, (recognizer, rule) in enumerate(self.plans):
            if index in self._ner_plans:
                continue  # the NER windows decide where it runs, not the prefilter
            try:
                if rule is not None:
                    expressions[index] = rule.prefilter_expressions()
                elif self.gates.get(id(recognizer)) is not None:
                    expressions[index] = [translate(p.pattern, p.flags, "regex") for p in self.gates[id(recognizer)]]
                else:
                    always.add(index)
            except Untranslatable as exc:
                log.info("prefilter: %s runs on every text (%s)", recognizer.name, exc)
                always.add(index)
        return Prefilter(expressions, always)

    def analyze_many(self, texts: list[str]) -> list[list[RecognizerResult]]:
        """``analyze`` of each text, with one prefilter scan and one ``nlp.pipe`` for all of them (the fields
        of a batch of records)."""
        ner = self._ner_many(texts)
        if self.prefilter is None:
            return [self._analyze(text, self._all_plans, None, found) for text, found in zip(texts, ner, strict=True)]
        fired, ends = self.prefilter.fired_with_ends(texts, self._phone_plan)
        if ends is None:
            ends = [None] * len(texts)
        return [
            self._analyze(text, plans, phone_ends, found) if plans or found else []
            for text, plans, phone_ends, found in zip(texts, fired, ends, ner, strict=True)
        ]

    def _ner_many(self, texts: list[str]) -> list[list[RecognizerResult]]:
        """Per text, presidio's NER results in its windows (text offsets), the windows of all texts in one pipe."""
        if self.ner_windows is None or not self._ner_plans:
            return [[] for _ in texts]
        windows = [self.ner_windows.windows(text) for text in texts]
        # A redaction tag reads to the model as a name of its length, so the words around it keep the
        # context they had before redaction ("a landlord called <PERSON> in Spain" would make "landlord" the
        # PERSON); a result on the tag itself is the tag, not data, and is dropped.
        originals = [text[start:end] for text, spans in zip(texts, windows, strict=True) for start, end in spans]
        pieces = [piece.replace(PERSON_TAG, PERSON_TAG_READS_AS) for piece in originals]
        tags = iter([[(m.start(), m.end()) for m in _PERSON_TAG.finditer(piece)] for piece in originals])
        found: list[list[RecognizerResult]] = [[] for _ in texts]
        if not pieces:
            return found
        nlp_engine = self.engine.analyzer.nlp_engine
        artifacts = nlp_engine.process_batch(pieces, self.engine.language, batch_size=256)
        entities = self.engine.entities
        for index, spans in enumerate(windows):
            for start, _end in spans:
                piece, piece_artifacts = next(artifacts)
                piece_tags = next(tags)
                if not piece_artifacts.entities:
                    continue
                for plan in sorted(self._ner_plans):
                    recognizer = self.plans[plan][0]
                    results = recognizer.analyze(text=piece, entities=entities, nlp_artifacts=piece_artifacts) or []
                    if piece_tags:
                        results = [r for r in results if not any(a <= r.start and r.end <= b for a, b in piece_tags)]
                    found[index].extend(self._tag(results, recognizer, start))
        return found

    def analyze(self, text: str) -> list[RecognizerResult]:
        """Results identical to ``AnalyzerEngine.analyze(text, language, entities)`` (NER: in its windows)."""
        [ner] = self._ner_many([text])
        if self.prefilter is None:
            return self._analyze(text, self._all_plans, None, ner)
        fired, ends = self.prefilter.fired_with_ends([text], self._phone_plan)
        if not fired[0] and not ner:
            return []
        return self._analyze(text, fired[0], ends[0] if ends is not None else None, ner)

    def _analyze(
        self,
        text: str,
        plans: frozenset[int],
        phone_ends: list[int] | None = None,
        ner: list[RecognizerResult] | None = None,
    ) -> list[RecognizerResult]:
        """presidio's results, running only ``plans`` (indices into ``self.plans``; the others cannot match).

        ``phone_ends``: where the prefilter's phone expressions matched (see :meth:`_PhoneRule.candidates_near`).
        ``ner``: the NER recognizers' results in this text (:meth:`_ner_many`), taken in their registry place.
        """
        entities = self.engine.entities
        artifacts = self._empty_artifacts
        raw: list[RecognizerResult] = []
        for index, (recognizer, rule) in enumerate(self.plans):
            if index in self._ner_plans:
                if ner:
                    key = RecognizerResult.RECOGNIZER_IDENTIFIER_KEY
                    raw.extend(r for r in ner if r.recognition_metadata[key] == recognizer.id)
                continue
            if index not in plans:
                continue
            if rule is None:
                windows = None
            elif index == self._phone_plan and phone_ends is not None:
                windows = rule.windows(text, phone_ends)
            else:
                windows = rule.windows(text)
            if windows is None:
                gate = self.gates.get(id(recognizer))
                if gate is not None and not any(pattern.search(text) for pattern in gate):
                    continue
                found = recognizer.analyze(text=text, entities=entities, nlp_artifacts=artifacts)
                raw.extend(self._tag(found or [], recognizer, 0))
                continue
            for start, end in windows:
                found = rule.analyze_window(recognizer, text[start:end], entities)
                raw.extend(self._tag(found, recognizer, start))
        if not raw:
            return []
        if self._context_passthrough and self._grouped(raw):
            analyzer = self.engine.analyzer
            results = analyzer.context_aware_enhancer.enhance_using_context(
                text=text, raw_results=list(raw), nlp_artifacts=artifacts, recognizers=self.recognizers, context=None
            )
        else:
            results = self.engine.analyzer._enhance_using_context(text, raw, artifacts, self.recognizers, None)
        results = [r for r in results if r.score >= self._threshold(r)]
        results = EntityRecognizer.remove_duplicates(results)
        for result in results:
            result.analysis_explanation = None
        return results

    def _grouped(self, raw: list[RecognizerResult]) -> bool:
        """Whether every result names a recognizer of the registry and they come in its order."""
        last = -1
        key = RecognizerResult.RECOGNIZER_IDENTIFIER_KEY
        for result in raw:
            rank = self._rank.get(result.recognition_metadata.get(key))
            if rank is None or rank < last:
                return False
            last = rank
        return True

    @staticmethod
    def _tag(results: list[RecognizerResult], recognizer: EntityRecognizer, offset: int) -> list[RecognizerResult]:
        for result in results:
            result.start += offset
            result.end += offset
            metadata = result.recognition_metadata
            if metadata is None:
                metadata = result.recognition_metadata = {}
            metadata.setdefault(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY, recognizer.id)
            metadata.setdefault(RecognizerResult.RECOGNIZER_NAME_KEY, recognizer.name)
        return results

    def _threshold(self, result: RecognizerResult) -> float:
        """presidio's per-result threshold: recognizer's entity or default threshold, else the engine's."""
        default = self.engine.analyzer.default_score_threshold
        metadata = result.recognition_metadata or {}
        thresholds = self._thresholds.get(metadata.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY))
        if not thresholds:
            return default
        if thresholds.get(result.entity_type) is not None:
            return thresholds[result.entity_type]
        if thresholds.get("default") is not None:
            return thresholds["default"]
        return default
