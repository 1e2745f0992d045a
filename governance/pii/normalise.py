"""Undo the usual disguises of PII before the scanner reads a text, remembering where each character came from.

presidio's recognizers read ``４１１１ １１１１ １１１１ １１１１`` as no card, ``jane (at) example (dot) com`` as no
e-mail address and ``john smith`` as no name. :class:`TextNormaliser` rewrites a text in five steps, each
reading what the one before wrote:

1. *Unicode*: NFKC, character by character with its combining marks (full-width digits and ``＠``,
   mathematical digits, ligatures); any other decimal digit as its ASCII digit (Arabic-Indic ``٤``); format
   characters dropped (zero-width spaces and joiners, soft hyphens, bidi marks).
2. *Markup*: inline HTML formatting tags (``J<b>ohn</b>``, ``<span class=x>``) and Markdown emphasis touching a
   Latin letter (``Jo**hn**``, ``_jane_``) removed. Redaction tags (``<EMAIL_ADDRESS>``) are left alone.
3. *Spelled-out digits*: a run of digit words (``four one one one``, ``double five``, ``oh`` not first),
   digit groups allowed among them (``415 five five five 0103``), holding at least :data:`MIN_SPELLED_WORDS`
   words and :data:`MIN_SPELLED_DIGITS` digits, written as digits; a space between them dropped, a hyphen,
   comma or slash written ``-`` (a group break, as ``4111-1111-…`` is read). A number word in prose ("one of
   the two") is no run.
4. *E-mail addresses in words*: ``(at)``, ``[at]``, ``{at}``, `` at ``, `` @ `` and ``(dot)``, ``[.]``,
   `` dot `` written ``@`` and ``.`` (``jane@example[.]com`` too), only where what follows the at is a domain
   whose last label is a public suffix (tldextract's bundled list, which presidio's e-mail validator reads
   too). With the bare word `` at `` the domain must spell a dot out too and the local part be no stop word or
   usual verb before "at": "meet at the station", "look at example.com", "find us at shop dot com" stay as
   they are.
5. *Names without case* (``john smith``, ``JANE DOE``, "thanks mark"): recased where the name recognizer would
   take them for names if they were capitalised (:meth:`~governance.pii.names.NameRecognizer.caseless_names`);
   run only when the policy runs that recognizer. Recasing keeps every position.

Every rewrite records, per character it writes, the span of the original text it stands for
(:class:`NormalisedText`), so a finding in the normalised text maps back to the characters that were written
("jane (at) example (dot) com" whole, each full-width digit): redaction, masking and the report's offsets are
in the original text.

Most texts need none of it. One hyperscan scan of a batch of texts (or, without hyperscan, Python's ``re``)
finds those where steps 2-4 may change something, and a set lookup those holding a first name written without
case; only those, and texts step 1 changes or with a letter that is not ASCII, are rewritten, and in them a step
runs only where its trigger fires. Each trigger is a superset of what its step rewrites (every pattern reads ASCII
characters only), so skipping never skips a rewrite.

Trust boundary: texts are untrusted; nothing here logs them or quotes them in an exception.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import logging
import re
import unicodedata
from collections.abc import Sequence
from typing import Protocol

log = logging.getLogger(__name__)

#: A run of spelled-out digits is read as a number only if it holds this many digits, at least this many of them
#: written as words ("415 five five five 0103"): a phone has 7 digits or more, a card 13 or more; counting ("one,
#: two, three") and number words in prose ("one or two", "two, three times") are shorter.
MIN_SPELLED_DIGITS = 7
MIN_SPELLED_WORDS = 2

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "nought": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
#: "oh" and "nought" do not start a run: "oh, one two three ..." does not start with a zero.
_NOT_FIRST = frozenset({"oh", "nought"})
_REPEATS = {"double": 2, "triple": 3}

_WORD_ALTERNATIVES = "|".join(sorted(_DIGIT_WORDS, key=len, reverse=True))
#: What may stand between two tokens of a run: blanks, or a hyphen, comma or slash with blanks around it, or a
#: dot between two tokens (not a sentence's end).
_SEPARATOR = r"(?:[ \t]*[\-,/][ \t]*|[ \t]+|\.)"
_SPELLED_WORD = rf"(?:(?:double|triple)[ \t]+)?(?:{_WORD_ALTERNATIVES})(?![a-z])"
_SPELLED_TOKEN = rf"{_SPELLED_WORD}|[0-9]+"
#: A run holds a digit word (digit groups alone are left as written): groups, then a word, then any tokens.
_SPELLED_RUN = re.compile(
    rf"(?<![\w@.])(?:[0-9]+{_SEPARATOR})*(?:{_SPELLED_WORD})(?:{_SEPARATOR}(?:{_SPELLED_TOKEN}))+(?![\w@])",
    re.IGNORECASE | re.ASCII,
)
_SPELLED_PART = re.compile(rf"(?P<token>{_SPELLED_TOKEN})|(?P<separator>{_SEPARATOR})", re.IGNORECASE | re.ASCII)

#: The forms of "@" and "." in an address written out (case-insensitive).
_AT_BRACKETED = r"[ \t]*[\(\[\{<][ \t]*(?:at|@)[ \t]*[\)\]\}>][ \t]*"
_AT_WORD = r"[ \t]+at[ \t]+"
_AT_SPACED = r"[ \t]+@[ \t]*|[ \t]*@[ \t]+"
_DOT_SPELLED = r"[ \t]*[\(\[\{<][ \t]*(?:dot|\.)[ \t]*[\)\]\}>][ \t]*|[ \t]+dot[ \t]+"
_DOT = rf"(?:{_DOT_SPELLED}|\.)"
_LABEL = r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"
_ADDRESS_AFTER_AT = re.compile(
    rf"(?P<at>{_AT_BRACKETED}|{_AT_WORD}|{_AT_SPACED}|@)(?P<domain>{_LABEL}(?:{_DOT}{_LABEL})+)(?![a-z0-9\-@]|\.[a-z0-9])",
    re.IGNORECASE | re.ASCII,
)
_LOCAL_BEFORE_AT = re.compile(
    rf"(?<![\w.%+\-])[\w%+\-]+(?:(?:{_DOT_SPELLED}|\.)[\w%+\-]+)*\Z", re.IGNORECASE | re.ASCII
)
_DOT_FORM = re.compile(_DOT_SPELLED, re.IGNORECASE | re.ASCII)
#: Words that come before " at " in prose, not a mailbox: "look at example dot com" is a web site. (Stop words
#: are left out too: "find us at", "email me at".)
_PROSE_BEFORE_AT = frozenset(
    "look looks looking looked visit visiting shop shopping work works working worked stay staying stayed live "
    "lives living lived sign signed log logged order ordered buy bought book booked available online find found "
    "posted hosted listed published sold arrive arrived".split()
)

#: Inline HTML formatting tags: they mark text up, they never stand for a character of it.
_INLINE_TAG = re.compile(
    r"</?(?:b|i|u|s|em|strong|span|mark|small|big|sub|sup|del|ins|strike|font|a|code|tt|kbd|q|abbr|cite|dfn|samp|"
    r"var|bdi|bdo|wbr)(?:[ \t\n][^<>\n]*)?/?>",
    re.IGNORECASE | re.ASCII,
)
#: Markdown emphasis touching a letter, or a redaction tag (which stays whole: ``<PHONE_NUMBER>``).
_EMPHASIS = re.compile(r"(?P<tag><[A-Z]+(?:_[A-Z]+)*>)|(?<=[A-Za-z])[*_~`]+|[*_~`]+(?=[A-Za-z])")

#: What a step may change in an ASCII text, as hyperscan expressions that Python's ``re`` reads alike
#: (case-insensitive), each a superset of its step's rewrites. ``\n`` is no character of any of them, so
#: texts joined by it are matched as one at a time.
_TRIGGER_WORDS = f"{_WORD_ALTERNATIVES}|double|triple"
TRIGGERS = (
    # markup
    r"</?(?:b|i|u|s|em|strong|span|mark|small|big|sub|sup|del|ins|strike|font|a|code|tt|kbd|q|abbr|cite|dfn|samp|"
    r"var|bdi|bdo|wbr)[ \t\n/>]|[a-z][*_~`]|[*_~`][a-z]",
    # spelled-out digits: a digit word beside another token
    rf"(?:{_TRIGGER_WORDS}){_SEPARATOR}(?:{_TRIGGER_WORDS}|[0-9])|[0-9]{_SEPARATOR}(?:{_TRIGGER_WORDS})",
    # an address written out: an at and a domain's first label and dot, or an "@" and a dot spelled out later
    rf"(?:{_AT_BRACKETED}|{_AT_WORD}|{_AT_SPACED}){_LABEL}{_DOT}|@[a-z0-9.\-]*(?:{_DOT_SPELLED})",
)
#: The id of the names trigger (a strong cue before a word), after the three steps' own.
_NAMES = len(TRIGGERS)
#: Words as the name trigger looks them up (those written without case kept): maximal runs of ASCII letters.
_LETTER_RUNS = re.compile(r"[A-Za-z]{2,}")
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_NON_ASCII_RUN = re.compile(r".?[^\x00-\x7f]+", re.DOTALL)
_SEPARATOR_JOIN = "\n"

#: What the decision records the scanner does to a text before scanning it.
DESCRIPTION = (
    "NFKC, other decimal digits as ASCII, format characters dropped; inline HTML tags and Markdown emphasis "
    f"touching a Latin letter removed; runs of {MIN_SPELLED_WORDS}+ spelled-out digit words ({MIN_SPELLED_DIGITS}+ "
    "digits) as digits; (at)/(dot), ' at '/' dot ' addresses with a public suffix as @ and .; findings mapped back "
    "to the original characters"
)
NAMES_DESCRIPTION = "; names in lower case or capitals recased for the name recognizer"


class CaselessNames(Protocol):
    """What step 5 needs of the name recognizer (:class:`~governance.pii.names.NameRecognizer`)."""

    def caseless_triggers(self) -> frozenset[str]: ...

    def caseless_cue_expression(self) -> str: ...

    def caseless_names(
        self, text: str, present: frozenset[str] | None = None, cues: bool = True
    ) -> list[tuple[int, int]]: ...


class NormalisedText:
    """A text as the scanner reads it, and where each of its characters came from in the original."""

    __slots__ = ("original", "text", "_starts", "_ends")

    def __init__(self, original: str, text: str, starts: list[int] | None = None, ends: list[int] | None = None):
        self.original = original
        self.text = text
        #: per character of ``text``, the start and end in ``original`` of what it stands for; None: the same
        #: positions (nothing rewritten, or only recased)
        self._starts = starts
        self._ends = ends

    @property
    def moved(self) -> bool:
        """Whether any position differs from the original's."""
        return self._starts is not None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that ``text[start:end]`` stands for (covering every character of it)."""
        if self._starts is None:
            return start, end
        if end <= start:
            at = self._starts[start] if start < len(self._starts) else len(self.original)
            return at, at
        return self._starts[start], self._ends[end - 1]


class _Rewrite:
    """A text being rewritten step by step, with the original span of each of its characters."""

    def __init__(self, original: str):
        self.original = original
        self.text = original
        self.starts: list[int] | None = None
        self.ends: list[int] | None = None

    def apply(self, edits: Sequence[tuple[int, int, str]]) -> None:
        """Replace each ``(start, end, new)`` span of the current text (sorted, not overlapping) by ``new``.

        Every character of ``new`` stands for the whole span replaced.
        """
        if not edits:
            return
        text, starts, ends = self.text, self.starts, self.ends
        pieces: list[str] = []
        new_starts: list[int] = []
        new_ends: list[int] = []
        cursor = 0

        def keep(low: int, high: int) -> None:
            if low >= high:
                return
            pieces.append(text[low:high])
            if starts is None:
                new_starts.extend(range(low, high))
                new_ends.extend(range(low + 1, high + 1))
            else:
                new_starts.extend(starts[low:high])
                new_ends.extend(ends[low:high])

        for start, end, new in edits:
            keep(cursor, start)
            if new:
                pieces.append(new)
                first = start if starts is None else starts[start]
                last = end if ends is None else ends[end - 1]
                new_starts.extend([first] * len(new))
                new_ends.extend([last] * len(new))
            cursor = end
        keep(cursor, len(text))
        self.text = "".join(pieces)
        self.starts, self.ends = new_starts, new_ends

    def recase(self, spans: Sequence[tuple[int, int]]) -> None:
        """Capitalise each span's first letter and lower-case the rest (positions unchanged)."""
        if not spans:
            return
        text = self.text
        pieces, cursor = [], 0
        for start, end in spans:
            word = text[start:end]
            titled = word[:1].upper() + word[1:].lower()
            if len(titled) != len(word):  # a letter whose case changes its length ("ß"): left as written
                continue
            pieces.append(text[cursor:start])
            pieces.append(titled)
            cursor = end
        pieces.append(text[cursor:])
        self.text = "".join(pieces)

    def result(self) -> NormalisedText:
        return NormalisedText(self.original, self.text, self.starts, self.ends)


def _needs_unicode_step(text: str) -> bool:
    """Whether step 1 changes a text (not NFKC, or a format character or a non-ASCII digit in it)."""
    if not unicodedata.is_normalized("NFKC", text):
        return True
    return any(_kind_of(c) == "changed" for c in set("".join(_NON_ASCII.findall(text))))


def _non_ascii_letters(text: str) -> bool:
    """Whether a text holds a letter (or a mark) that is not ASCII ("é", "ж"; not "×" or "≈")."""
    if text.isascii():
        return False
    return any(_kind_of(c) == "letter" for c in set("".join(_NON_ASCII.findall(text))))


def _plain_text(text: str) -> bool:
    """Whether step 1 leaves a text as it is and every letter of it is ASCII (the triggers then read it whole)."""
    if text.isascii():
        return True
    if not unicodedata.is_normalized("NFKC", text):
        return False
    return all(_kind_of(c) == "inert" for c in set("".join(_NON_ASCII.findall(text))))


@functools.lru_cache(maxsize=65536)
def _kind_of(character: str) -> str:
    """What a non-ASCII character is to the normaliser: ``changed`` by step 1 (NFKC, a format character, a
    digit), a ``letter`` (or mark), or ``inert`` ("×", "≈", "€": no step reads it)."""
    if _plain(character) != character or unicodedata.category(character) == "Cf" or character.isdecimal():
        return "changed"
    if character.isalpha() or unicodedata.combining(character) or unicodedata.category(character).startswith("M"):
        return "letter"
    return "inert"


def _plain(segment: str) -> str:
    """One character and its combining marks, as the scanner reads them (step 1)."""
    out = unicodedata.normalize("NFKC", segment)
    if out.isascii():
        return out
    return "".join(
        "" if unicodedata.category(c) == "Cf" else str(unicodedata.decimal(c)) if c.isdecimal() else c for c in out
    )


def unicode_edits(text: str) -> list[tuple[int, int, str]]:
    """Step 1's edits: per character (with its combining marks) whose NFKC, digits or format differ."""
    if text.isascii():
        return []
    edits = []
    for match in _NON_ASCII_RUN.finditer(text):
        run = match.group()
        if not _needs_unicode_step(run):
            continue
        offset, index = match.start(), 0
        while index < len(run):
            end = index + 1
            while end < len(run) and unicodedata.combining(run[end]):
                end += 1
            segment = run[index:end]
            plain = _plain(segment)
            if plain != segment:
                edits.append((offset + index, offset + end, plain))
            index = end
    return edits


def markup_edits(text: str) -> list[tuple[int, int, str]]:
    """Step 2's edits: inline HTML tags and Markdown emphasis touching a letter, removed."""
    spans = []
    if "<" in text:
        spans = [(m.start(), m.end()) for m in _INLINE_TAG.finditer(text)]
    spans += [(m.start(), m.end()) for m in _EMPHASIS.finditer(text) if m.group("tag") is None]
    if not spans:
        return []
    spans.sort()
    edits: list[tuple[int, int, str]] = []
    for start, end in spans:
        if edits and start < edits[-1][1]:
            if end > edits[-1][1]:
                edits[-1] = (edits[-1][0], end, "")
            continue
        edits.append((start, end, ""))
    return edits


def spelled_digit_edits(text: str) -> list[tuple[int, int, str]]:
    """Step 3's edits: runs of spelled-out digits written as digits (see the module docstring)."""
    edits: list[tuple[int, int, str]] = []
    for run in _SPELLED_RUN.finditer(text):
        parts = [
            (m.start(), m.end(), m.lastgroup, m.group()) for m in _SPELLED_PART.finditer(text, run.start(), run.end())
        ]
        tokens = [part for part in parts if part[2] == "token"]
        # An "oh" starting a run is the interjection ("oh, four one ..."), not a zero; one ending it is one.
        while tokens and tokens[0][3].lower() in _NOT_FIRST:
            tokens.pop(0)
        if not tokens:
            continue
        digits = {start: _spelled_digits(token) for start, _end, _kind, token in tokens}
        words = sum(1 for start, _end, _kind, token in tokens if not token.isdigit())
        if words < MIN_SPELLED_WORDS or sum(len(d) for d in digits.values()) < MIN_SPELLED_DIGITS:
            continue
        first, last = tokens[0][0], tokens[-1][1]
        previous_word = None
        for index, (start, end, kind, part) in enumerate(parts):
            if start < first or end > last:
                continue
            if kind == "token":
                if not part.isdigit():
                    edits.append((start, end, digits[start]))
                previous_word = not part.isdigit()
                continue
            following = parts[index + 1][3] if index + 1 < len(parts) else ""
            if not (previous_word or not following.isdigit()):
                continue  # between two digit groups: as written
            written = "-" if any(c in part for c in "-,/") else ""
            if written != part:
                edits.append((start, end, written))
    return edits


def _spelled_digits(token: str) -> str:
    """The digits a token of a run stands for: ``"4"``, ``"double five"`` -> ``"55"``, ``"0103"``."""
    if token.isdigit():
        return token
    words = token.lower().split()
    if len(words) == 2:
        return _DIGIT_WORDS[words[1]] * _REPEATS[words[0]]
    return _DIGIT_WORDS[words[0]]


#: tldextract's bundled public-suffix list, by tldextract version: what every e-mail check reads (presidio's
#: validator and :func:`public_suffix_domain`), pinned because the file sits in a writable virtual environment.
SUFFIX_LIST_SHA256 = {"5.4.0": "b69315c085d53972724b8f2df111ffc329b0c84fe0a47d62c8c91655cc774a38"}


@functools.lru_cache(maxsize=1)
def use_pinned_suffix_list() -> str:
    """Make ``tldextract.extract`` (which presidio's e-mail recognizer calls) read only the pinned suffix list.

    tldextract's default extractor reads a disk cache first (``$TLDEXTRACT_CACHE``, else
    ``~/.cache/python-tldextract``), even with no list URLs: a list planted there with no suffixes made every
    e-mail address "not an address" and the PII gate passed them (attack P6). Here the bundled snapshot is read
    once, checked against :data:`SUFFIX_LIST_SHA256` and parsed, and the module's extractor is replaced by one
    built from those suffixes, with no cache and no URL. Returns the list's sha256 (what the scan read).
    """
    import hashlib
    import importlib.metadata
    import pkgutil

    import tldextract.tldextract as extractor_module
    from tldextract.suffix_list import extract_tlds_from_suffix_list

    from governance.errors import ConfigError

    version = importlib.metadata.version("tldextract")
    data = pkgutil.get_data("tldextract", ".tld_set_snapshot") or b""
    digest = hashlib.sha256(data).hexdigest()
    if SUFFIX_LIST_SHA256.get(version) != digest:
        raise ConfigError(
            f"tldextract {version}: its public-suffix list (.tld_set_snapshot) hashes to {digest[:12]}…, not a "
            "pinned list (governance/pii/normalise.py SUFFIX_LIST_SHA256): reinstall the locked tldextract "
            "(make's set-up), or pin this version's list in a reviewed change"
        )
    public, private = extract_tlds_from_suffix_list(data.decode("utf-8"))
    extractor = extractor_module.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)
    extractor._extractor = extractor_module._PublicSuffixListTLDExtractor(
        public_tlds=public, private_tlds=private, extra_tlds=[], include_psl_private_domains=False
    )
    extractor_module.TLD_EXTRACTOR = extractor  # tldextract.extract looks it up at each call
    return digest


@functools.lru_cache(maxsize=4096)
def public_suffix_domain(domain: str) -> bool:
    """Whether a domain has a registrable name under a public suffix, as presidio's e-mail validator reads it."""
    import tldextract

    use_pinned_suffix_list()

    result = tldextract.extract(domain)
    return bool(result.suffix) and bool(result.domain)


@functools.lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


def address_edits(text: str) -> list[tuple[int, int, str]]:
    """Step 4's edits: an address written with at/dot words or brackets, written with ``@`` and ``.``."""
    edits: list[tuple[int, int, str]] = []
    last_end = 0
    for match in _ADDRESS_AFTER_AT.finditer(text):
        at_start, at_end = match.span("at")
        local = _LOCAL_BEFORE_AT.search(text, max(last_end, at_start - 128), at_start)
        if local is None:
            continue
        domain_start, domain_end = match.span("domain")
        dots = [m.span() for m in _DOT_FORM.finditer(text, domain_start, domain_end)]
        if match.group("at") == "@" and not dots:
            continue  # an address as it should be written: nothing to do
        if match.group("at").strip().lower() == "at":
            # Bare words: the dot is spelled out too, and the local part reads as a mailbox, not as prose.
            word = local.group().lower()
            if not dots or word in _stop_words() or word in _PROSE_BEFORE_AT:
                continue
        if not public_suffix_domain(_DOT_FORM.sub(".", match.group("domain")).lower()):
            continue
        edits.extend((start, end, ".") for start, end in (m.span() for m in _DOT_FORM.finditer(text, *local.span())))
        if match.group("at") != "@":
            edits.append((at_start, at_end, "@"))
        edits.extend((start, end, ".") for start, end in dots)
        last_end = domain_end
    return edits


class TextNormaliser:
    """Rewrites texts as the scanner reads them (see the module docstring); batch by batch, cheaply.

    ``names``: the policy's name recognizer, for step 5 (None: names keep their case).
    """

    def __init__(self, names: CaselessNames | None = None):
        self.names = names
        self._name_triggers = names.caseless_triggers() if names is not None else frozenset()
        #: the steps' triggers, and (step 3 here: names) where a strong cue names the word after it
        self._triggers = TRIGGERS + ((names.caseless_cue_expression(),) if names is not None else ())
        self._triggers_re = tuple(re.compile(pattern, re.IGNORECASE | re.ASCII) for pattern in self._triggers)
        self._database = _trigger_database(self._triggers)
        self.description = DESCRIPTION + (NAMES_DESCRIPTION if names is not None else "")

    def normalise(self, text: str) -> NormalisedText:
        """One text as the scanner reads it."""
        return self.normalise_many([text])[0]

    def normalise_many(self, texts: Sequence[str]) -> list[NormalisedText]:
        """Each text as the scanner reads it; only texts a step may change are rewritten."""
        out = [NormalisedText(text, text) for text in texts]
        for index in self._may_change(texts):
            out[index] = self._rewrite(texts[index])
        return out

    def _rewrite(self, text: str) -> NormalisedText:
        """Run the steps over one text; steps 2-4 only where their trigger fires in what the step before wrote."""
        rewrite = _Rewrite(text)
        rewrite.apply(unicode_edits(text))
        fired = self._fired(rewrite.text)
        for step, edits_of in enumerate((markup_edits, spelled_digit_edits, address_edits)):
            if step not in fired:
                continue
            edits = edits_of(rewrite.text)
            if edits:
                rewrite.apply(edits)
                fired = self._fired(rewrite.text)
        if self.names is not None:
            if _non_ascii_letters(rewrite.text):
                rewrite.recase(self.names.caseless_names(rewrite.text))
            elif (present := self._names_in(rewrite.text)) or _NAMES in fired:
                rewrite.recase(self.names.caseless_names(rewrite.text, present, cues=_NAMES in fired))
        return rewrite.result()

    def _fired(self, text: str) -> set[int]:
        """The steps (0 markup, 1 spelled digits, 2 addresses, 3 names after a cue) whose trigger matches in ``text``.

        Every trigger and step pattern reads ASCII characters only, so hyperscan over the UTF-8 bytes matches
        where Python's ``re`` matches over the characters.
        """
        if self._database is not None:
            try:
                data = text.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate: Python decides
                data = None
            if data is not None:
                fired: set[int] = set()
                self._database.scan(data, match_event_handler=lambda step, *_: fired.add(step))
                return fired
        return {step for step, pattern in enumerate(self._triggers_re) if pattern.search(text)}

    def _names_in(self, text: str) -> frozenset[str]:
        """The trigger words of the name rules written without case in ``text``, whose letters are all ASCII."""
        words = set(_LETTER_RUNS.findall(text))
        return self._name_triggers.intersection(w.lower() for w in words if w.islower() or w.isupper())

    def _may_change(self, texts: Sequence[str]) -> list[int]:
        """Indices of the texts some step may change: those step 1 changes or that hold a letter that is not
        ASCII (names are then looked up letter by letter), and those a trigger fires in."""
        chosen: set[int] = set()
        if _SEPARATOR_JOIN.join(texts).isascii():
            plain = list(range(len(texts)))
        else:
            plain = []
            for index, text in enumerate(texts):
                if _plain_text(text):
                    plain.append(index)
                else:
                    chosen.add(index)
        if plain:
            chosen.update(self._triggered([texts[i] for i in plain], plain))
        return sorted(chosen)

    def _triggered(self, texts: list[str], indices: list[int]) -> set[int]:
        """Of ``texts`` (at ``indices``; step 1 leaves them as they are, their letters are ASCII), those a trigger
        fires in: one scan of them all, joined by newlines (no trigger reads one)."""
        fired: set[int] = set()
        joined = _SEPARATOR_JOIN.join(texts)
        if self._name_triggers and (present := self._names_in(joined)):
            starts = list(itertools.accumulate((len(text) + 1 for text in texts[:-1]), initial=0))
            for name in present:
                for form in (name, name.upper()):
                    at = joined.find(form)
                    while at >= 0:
                        fired.add(indices[bisect.bisect_right(starts, at) - 1])
                        at = joined.find(form, at + len(form))
        if self._database is None:
            fired.update(
                index
                for index, text in zip(indices, texts, strict=True)
                if any(pattern.search(text) for pattern in self._triggers_re)
            )
            return fired
        try:
            data = joined.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate somewhere: Python's triggers decide, text by text
            fired.update(
                index
                for index, text in zip(indices, texts, strict=True)
                if any(pattern.search(text) for pattern in self._triggers_re)
            )
            return fired
        ends: list[int] = []
        self._database.scan(data, match_event_handler=lambda _step, _start, end, _flags, _context: ends.append(end))
        if ends:
            # Byte offsets: the texts' UTF-8 lengths are needed only now, and only where some text is not ASCII.
            sizes = map(len, texts) if len(data) == len(joined) else (len(text.encode("utf-8")) for text in texts)
            starts = list(itertools.accumulate((size + 1 for size in sizes), initial=0))
            fired.update(indices[bisect.bisect_right(starts, end - 1) - 1] for end in ends)
        return fired


@functools.lru_cache(maxsize=8)
def _trigger_database(triggers: tuple[str, ...]):
    """The hyperscan database of ``triggers`` (case-insensitive, ASCII; ids in order), or None without hyperscan."""
    try:
        import hyperscan
    except ImportError:
        return None
    database = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        database.compile(
            expressions=[pattern.encode("ascii") for pattern in triggers],
            ids=list(range(len(triggers))),
            elements=len(triggers),
            # (Not SINGLEMATCH: the texts of a batch are scanned as one buffer, and each needs its own match.)
            flags=[hyperscan.HS_FLAG_CASELESS] * len(triggers),
        )
    except hyperscan.error as exc:  # the Python triggers then decide, with the same result
        log.info("normaliser: triggers searched in Python (hyperscan: %s)", exc)
        return None
    return database
