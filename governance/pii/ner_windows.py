"""Where the NER model reads a text: windows around capitalised words, or the whole text.

spaCy's NER costs tens of times the pattern scan per character; in chat and math
data nearly every name, place and nationality is a capitalised word.
:class:`NerWindowFinder` finds those words (policy ``nlp_engine.ner_windows``)
and the few words either side of each that the model reads. The model's
predictions in a window can differ from those in the whole text;
``benchmarks/pii_accuracy.py --ner`` measures both against hand labels.
"""

from __future__ import annotations

from collections.abc import Callable

import regex

from governance.policy.pii import NerWindows

Span = tuple[int, int]

#: A word as the NER windows read it: letters (with marks, digits and apostrophes inside).
_NER_WORD = r"[\p{L}\p{M}\p{Nd}'’]"
#: A trigger candidate: a word starting with an upper- or title-case letter or a caseless-script letter.
_NER_TRIGGER = regex.compile(rf"(?<!{_NER_WORD})(?:[\p{{Lu}}\p{{Lt}}\p{{Lo}}]){_NER_WORD}*")
#: What may stand between a sentence's end and its first word: spaces, opening quotes and brackets, bullets.
_SENTENCE_LEAD = frozenset(" \t\r\f\v\"'“‘«([{*-•–—#>")
_SENTENCE_ENDS = frozenset(".!?:;…\n")
_SPAN = regex.compile(r"\S+")
#: A capitalised word right after a trigger's word ("Buenos Aires", "Carmen Delgado").
_NEXT_CAPITAL = regex.compile(r"[ \t]+\p{Lu}")
#: Inflections read back to a lexicon word: (ending, replacement).
_INFLECTIONS = (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"), ("ly", ""))


def english_word(word: str, lexicon: frozenset[str]) -> bool:
    """Whether a lower-case word is a word of ``lexicon`` or a regular inflection of one ("packs", "checked")."""
    if word in lexicon:
        return True
    return any(
        word.endswith(ending) and len(word) > len(ending) + 2 and word[: -len(ending)] + replacement in lexicon
        for ending, replacement in _INFLECTIONS
    )


def sentence_start(text: str, start: int) -> bool:
    """Whether the word at ``start`` begins a sentence (only spaces, quotes and bullets after its end)."""
    index = start - 1
    while index >= 0 and text[index] in _SENTENCE_LEAD:
        index -= 1
    return index < 0 or text[index] in _SENTENCE_ENDS or "\n" in text[index + 1 : start]


class NerWindowFinder:
    """Where the NER model reads a text: around capitalised words (``ner_scope: windows``) or all of it.

    See :class:`~governance.policy.pii.NerWindows` for what triggers a window. A window is the
    trigger with ``context_words`` whitespace-separated words either side; windows that overlap or
    touch are merged. ``None`` windows (``whole_text``) means the whole text, if it holds any word.
    """

    def __init__(
        self,
        config: NerWindows | None,
        lexicon: frozenset[str] = frozenset(),
        names: Callable[[str], bool] | None = None,
    ):
        """``lexicon``: English words (``lexicon_starters``); ``names``: whether a word is a name of the gazetteer."""
        self.config = config
        self.never = frozenset(config.never) if config else frozenset()
        self.starters = frozenset(config.sentence_starters) if config else frozenset()
        self.reach = 48 * config.context_words if config else 0
        self.lexicon = lexicon if config is not None and config.lexicon_starters else frozenset()
        self.names = names

    sentence_start = staticmethod(sentence_start)

    def triggers(self, text: str) -> list[Span]:
        """The spans of the words that trigger a window."""
        found = []
        for match in _NER_TRIGGER.finditer(text):
            word = match.group().lower().replace("’", "'")
            if word in self.never:
                continue
            if (word in self.starters or self.lexicon) and sentence_start(text, match.start()):
                if word in self.starters or self._common_starter(text, word, match.end()):
                    continue
            found.append(match.span())
        return found

    def _common_starter(self, text: str, word: str, end: int) -> bool:
        """An English word starting a sentence, not a name of the list, no capitalised word after it."""
        if not self.lexicon or not english_word(word.removesuffix("'s"), self.lexicon):
            return False
        if self.names is not None and self.names(word.removesuffix("'s")):
            return False
        return _NEXT_CAPITAL.match(text, end) is None

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
PERSON_TAG_PATTERN = regex.compile(regex.escape(PERSON_TAG))
