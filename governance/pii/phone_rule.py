"""Windows for presidio's PhoneRecognizer, derived from libphonenumber's own candidate pattern and metadata.

The phone recognizer hands every number in a text (``2``, ``48/2``, ``3.14``) to
libphonenumber's parser, once per region: on math-heavy chat that is most of
presidio's cost. :class:`PhoneRule` finds the few windows where a valid number
can be, with its run class, trigger and minimum length derived at start-up from
libphonenumber (not copied). libphonenumber gives up on a text after 65,535
failed tries; where a text could reach that limit (a bound computed from its
length) it is scanned whole instead, so the windows never find a number presidio
would have given up before.

In a window libphonenumber's matcher parses each candidate, then its parts
(inner matches), once per region. :meth:`PhoneRule.analyze_window` repeats
presidio's loop over a matcher that first asks
:class:`~governance.pii.national_numbers.NationalNumbers` of every string it
would parse and skips those that cannot hold a valid number, which count as the
failed tries they would have been.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import re
from collections.abc import Callable

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, NumberParseException, PhoneNumberMatcher
from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.predefined_recognizers import PhoneRecognizer

from governance.pii.national_numbers import NationalNumbers
from governance.pii.prefilter import Untranslatable, code_point_ranges, hs_class, intersect, phone_superset
from governance.pii.run_rules import Span, run_bounds

log = logging.getLogger(__name__)

#: libphonenumber's PhoneNumberMatcher stops after this many failed tries per text.
PHONE_MAX_TRIES = 65535

#: sha256 of the source of presidio's ``PhoneRecognizer.analyze`` (2.2.364 to 2.2.366) that
#: :meth:`PhoneRule.analyze_window` repeats; any other source runs presidio's own.
PRESIDIO_PHONE_ANALYZE_SHA256 = "dc228ae284c3d101ef6ba5472ce912c66de2fdecc87080e927b4be24d9b22ac0"


class PhoneRule:
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
      that :class:`NationalNumbers` says may hold a valid number.
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
        self.national = NationalNumbers(recognizer.supported_regions) if recognizer.leniency >= 1 else None
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
        matcher, which first asks :meth:`NationalNumbers.may_hold_number` of every string it would
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
            run_start, run_end = run_bounds(self.boundary, text, end - 1, end)
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
            run_start, run_end = run_bounds(self.boundary, text, start, end)
            low, high = self._narrow(text, run_start, run_end, start, end)
            windows.append((max(0, low - 1), min(len(text), high + 1)))
            covered_to = high
        return windows


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


def _presidio_phone_loop_unchanged() -> bool:
    """Whether presidio's ``PhoneRecognizer.analyze`` is the source ``PhoneRule.analyze_window`` repeats."""
    try:
        source = inspect.getsource(PhoneRecognizer.analyze)
    except (OSError, TypeError):
        return False
    return hashlib.sha256(source.encode("utf-8")).hexdigest() == PRESIDIO_PHONE_ANALYZE_SHA256


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


def phone_rule(recognizer: EntityRecognizer) -> PhoneRule | None:
    if type(recognizer) is not PhoneRecognizer:
        return None
    try:
        return PhoneRule(recognizer)
    except (AttributeError, ImportError, ValueError) as exc:
        # A libphonenumber release with a different matcher: correct, just slower.
        log.warning("phone recognizer runs on whole texts: cannot derive its windows (%s)", exc)
        return None
