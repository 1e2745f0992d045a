"""Whether a phone candidate may hold a number libphonenumber calls valid, without parsing it.

Read from libphonenumber's metadata (number types, possible lengths, dialling
prefixes, national prefix rules) for the regions a PhoneRecognizer is given;
used as the phone windows' trigger and to skip hopeless parses in them
(:mod:`governance.pii.phone_rule`), and by the prefilter's phone expressions
(:func:`governance.pii.prefilter.phone_superset`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import phonenumbers
import regex
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata


class NationalNumbers:
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


def _keeps_digits_contiguous(metadata) -> bool:
    """Whether stripping the region's national prefix leaves a contiguous run of the digits.

    A transform rule that is one back-reference (BR's ``\\2``) keeps a group of the digits; any
    other (AR inserts a 9, MG prepends 20) makes a number whose digits the text does not hold.
    """
    rule = metadata.national_prefix_transform_rule
    return not rule or re.fullmatch(r"\\[1-9]", rule) is not None


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
