"""Build the presidio AnalyzerEngine a PII policy asks for, and say exactly what it runs.

The engine holds only the recognizers for the entity types the policy scans
(presidio's own predefined ones plus the policy's custom PatternRecognizers),
the NLP engine the policy names (presidio's ``SpacyNlpEngine`` over an
installed spaCy package, running only the NER component and what it reads; or
``no_op``), and a context enhancer that reads context words from the text
itself, so policy context words work without lemmas.
:class:`EngineInfo` lists what actually runs, including the spaCy model's
package version and a SHA-256 over its installed files; decisions and reports
copy it, so nothing claims a PERSON or LOCATION detection that did not happen,
and a reviewer can tell which model made the ones that did.

Trust boundary: the spaCy model is loaded from a private copy of its data
folder, hashed as the copy is made (:func:`governance.lineage.hashed_copy`), so
the digest recorded is the digest of what runs; where the policy pins it
(``nlp_engine.model_sha256``, and ``name_gazetteer.sha256`` for the name
lists), another digest is refused before anything is scanned. The installed
package sits in a virtual environment any local user can write to: without the
pin, a model changed there after install (``requirements-models.lock`` checks
the wheel's hash only then) would scan with only its digest to show it. Model
output is never logged: only counts.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# presidio's e-mail validator calls tldextract, which would fetch the public-suffix list
# over the network: governance/__init__.py has set TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS
# (governance.offline) before this module can be imported.
import regex
from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from presidio_analyzer.nlp_engine import (
    NerModelConfiguration,
    NlpArtifacts,
    NlpEngine,
    NlpEngineProvider,
    SpacyNlpEngine,
)
from presidio_analyzer.predefined_recognizers import PhoneRecognizer

from governance.errors import ConfigError
from governance.lineage import hashed_copy
from governance.pii.normalise import use_pinned_suffix_list
from governance.policy.pii import ContextConfig, EntityContext, NerWindows, PiiPolicy

log = logging.getLogger(__name__)

#: Entity types only an NER model (spaCy) detects; they need ``engine: spacy``.
NER_ENTITIES = frozenset({"PERSON", "LOCATION", "ORGANIZATION", "NRP", "DATE_TIME"})

_WORD = regex.compile(r"\w+")
#: Words after a match describe it only up to the end of its sentence ("... 3725550148. The model ships"); in
#: chat an emoticon ends one too ("call 3725550148 :) The model ships").
_SENTENCE_END = regex.compile(r"[.!?](?=\s|$)|\n|(?<!\S)[:;]-?[()DPp](?=\s|$)")


class _WithholdArguments(logging.Filter):
    """Strip the arguments from presidio's log records: some carry the raw matched text.

    (``IbanRecognizer`` logs ``"Failed to validate text %s"`` with the value.)
    The message template is kept, so the event is still visible.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = f"{record.msg} [arguments withheld: may contain raw text]"
            record.args = ()
        return True


def guard_presidio_logs() -> None:
    """Install the argument-withholding filter on presidio's loggers (idempotent)."""
    for name in ("presidio-analyzer", "presidio-anonymizer"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _WithholdArguments) for f in logger.filters):
            logger.addFilter(_WithholdArguments())


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class WordWindowContextEnhancer(ContextAwareEnhancer):
    """Presidio context enhancement that reads context words from the raw text.

    presidio's default (lemma-based) enhancer needs NLP tokens, which the
    ``no_op`` engine does not produce, so policy context words would silently
    do nothing. This enhancer looks at the last ``prefix_words`` words that
    start within ``lookback_chars`` characters before a match, and matches the
    recognizer's context words as case-insensitive substrings (presidio's
    default ``substring`` mode), raising the score by ``similarity_factor`` to
    at least ``min_score_with_context``.

    An entity listed under the policy's ``context.entities`` is decided by its
    own words instead, both ways (see
    :class:`~governance.policy.pii.EntityContext`): whole words and phrases
    within its own word counts before and after the match (each side bounded by
    ``lookback_chars``, the words after also by the end of the sentence); the
    nearest listed word decides, supportive raising the score as above,
    contrary (nearer, or as near) setting the score of a match of the contrary
    shape to ``contrary_score`` (as does no word at all under
    ``shape_needs_support``). A qualified word ("number") supports unless the word
    right before it in the text is one of the entity's qualifiers; that pair
    ("order number") is contrary instead. Context only ever reads the text within
    that fixed distance of the match.
    """

    def __init__(self, config: ContextConfig):
        super().__init__(
            context_similarity_factor=config.similarity_factor,
            min_score_with_context_similarity=config.min_score_with_context,
            context_prefix_count=config.prefix_words,
            context_suffix_count=0,
        )
        self.lookback_chars = config.lookback_chars
        self.entity_words = {entry.entity: _EntityWords(entry) for entry in config.entities}

    def _words_in(self, text: str, low: int, high: int) -> list[regex.Match]:
        words = list(_WORD.finditer(text, low, high))
        # A word cut by the window's edge is not a word of the text.
        if words and low > 0 and words[0].start() == low and _WORD.match(text, low - 1, low):
            words = words[1:]
        if words and high < len(text) and words[-1].end() == high and _WORD.match(text, high, high + 1):
            words = words[:-1]
        return words

    def words_before(self, text: str, start: int, count: int | None = None) -> list[str]:
        """The lower-cased words searched for context words of a match starting at ``start``."""
        count = self.context_prefix_count if count is None else count
        if not count:
            return []
        words = self._words_in(text, max(0, start - self.lookback_chars), start)
        return [m.group().lower() for m in words[-count:]]

    def words_after(self, text: str, end: int, count: int) -> list[str]:
        """The lower-cased words after a match ending at ``end`` (nearest first), up to the sentence's end."""
        if not count:
            return []
        high = min(len(text), end + self.lookback_chars)
        stop = _SENTENCE_END.search(text, end, high)
        words = self._words_in(text, end, stop.start() if stop else high)
        return [m.group().lower() for m in words[:count]]

    def _raise(self, result: RecognizerResult, supportive: str) -> None:
        result.score = min(
            max(result.score + self.context_similarity_factor, self.min_score_with_context_similarity),
            ContextAwareEnhancer.MAX_SCORE,
        )
        if result.analysis_explanation is not None:
            result.analysis_explanation.set_supportive_context_word(supportive)
            result.analysis_explanation.set_improved_score(result.score)

    def enhance_using_context(
        self,
        text: str,
        raw_results: list[RecognizerResult],
        nlp_artifacts: NlpArtifacts,
        recognizers: list[EntityRecognizer],
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        """Raise (or, for an entity's contrary words, lower) the scores of results by the words around them."""
        results = [_copy_result(result) for result in raw_results]
        by_id = {recognizer.id: recognizer for recognizer in recognizers}
        extra = [word.lower() for word in context or []]
        for result in results:
            metadata = result.recognition_metadata or {}
            if metadata.get(RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY):
                continue
            own = self.entity_words.get(result.entity_type)
            if own is not None:
                before = self.words_before(text, result.start, own.entry.prefix_words)
                after = self.words_after(text, result.end, own.entry.suffix_words)
                verdict, word = own.decide(before + extra, after, text[result.start : result.end])
                if verdict == "supportive":
                    self._raise(result, word)
                elif verdict == "contrary":
                    result.score = own.entry.contrary_score
                continue
            recognizer = by_id.get(metadata.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY))
            if recognizer is None or not recognizer.context:
                continue
            words = self.words_before(text, result.start) + extra
            supportive = next(
                (cw for cw in recognizer.context if any(cw.lower() in word for word in words)),
                "",
            )
            if supportive:
                self._raise(result, supportive)
        return results


def _copy_result(result: RecognizerResult) -> RecognizerResult:
    """A copy of a result the enhancer may change (``copy.deepcopy`` was a tenth of a scan's time).

    Its explanation and metadata hold only strings and numbers, so copying them one level deep is a deep copy.
    """
    copied = copy.copy(result)
    if result.analysis_explanation is not None:
        copied.analysis_explanation = copy.copy(result.analysis_explanation)
    if result.recognition_metadata is not None:
        copied.recognition_metadata = dict(result.recognition_metadata)
    return copied


class _EntityWords:
    """One entity's supportive and contrary words, matched as whole words and phrases.

    A qualified word ("number") is supportive unless the word right before it in the text is one of the
    qualifiers ("order"); that pair ("order number") is a contrary phrase instead.
    """

    def __init__(self, entry: EntityContext):
        self.entry = entry
        qualifiers = frozenset(entry.qualifiers)
        #: (phrase, kind, words that may not come right before it in the text)
        self.phrases: list[tuple[tuple[str, ...], str, frozenset[str]]] = (
            [(tuple(w.split()), "supportive", frozenset()) for w in entry.supportive]
            + [(tuple(w.split()), "supportive", qualifiers) for w in entry.qualified]
            + [(tuple(w.split()), "contrary", frozenset()) for w in entry.contrary]
            + [((q, *w.split()), "contrary", frozenset()) for w in entry.qualified for q in entry.qualifiers]
        )
        self.shape = regex.compile(entry.contrary_shape) if entry.contrary_shape else None
        # Phrases by the word nearest the match, in the order above (the first listed wins a tie):
        # outward from the match, a phrase before it reads reversed.
        self._outward: dict[bool, dict[str, list[tuple[tuple[str, ...], str, str, frozenset[str]]]]] = {
            True: {},
            False: {},
        }
        for phrase, kind, unless_after in self.phrases:
            for preceding, wanted in ((True, phrase[::-1]), (False, phrase)):
                self._outward[preceding].setdefault(wanted[0], []).append(
                    (wanted, kind, " ".join(phrase), unless_after)
                )
        self._kinds = len({kind for _, kind, _ in self.phrases})

    def _nearest(self, words: list[str], preceding: bool) -> dict[str, tuple[int, str]]:
        """Per kind, the (distance, phrase) nearest the match; ``words`` run outward from the match."""
        by_first = self._outward[preceding]
        nearest: dict[str, tuple[int, str]] = {}
        for distance, word in enumerate(words):
            for wanted, kind, phrase, unless_after in by_first.get(word, ()):
                if kind in nearest or tuple(words[distance : distance + len(wanted)]) != wanted:
                    continue
                if unless_after:
                    # The word before the phrase in the text: further out before the match, nearer after it.
                    at = distance + len(wanted) if preceding else distance - 1
                    if 0 <= at < len(words) and words[at] in unless_after:
                        continue
                nearest[kind] = (distance, phrase)
            if len(nearest) == self._kinds:
                break
        return nearest

    def decide(self, before: list[str], after: list[str], matched: str) -> tuple[str | None, str]:
        """``("supportive" | "contrary" | None, word)`` for a match with these words around it."""
        found = self._nearest(before[::-1], preceding=True)
        for kind, (distance, word) in self._nearest(after, preceding=False).items():
            if kind not in found or distance < found[kind][0]:
                found[kind] = (distance, word)
        shaped = self.shape is not None and self.shape.fullmatch(matched) is not None
        contrary = found.get("contrary") if shaped else None
        supportive = found.get("supportive")
        if contrary is not None and (supportive is None or contrary[0] <= supportive[0]):
            return "contrary", contrary[1]
        if supportive is not None:
            return "supportive", supportive[1]
        if shaped and self.entry.shape_needs_support:
            return "contrary", ""
        return None, ""


@dataclass(frozen=True)
class RecognizerInfo:
    """A recognizer that runs: its name, the entity types it reports, where it comes from."""

    name: str
    entities: tuple[str, ...]
    source: str  # "presidio", "policy" or "nlp:<engine>"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "entities": list(self.entities), "source": self.source}


@dataclass(frozen=True)
class EngineInfo:
    """What the engine really runs, for decisions and reports."""

    nlp_engine: str
    nlp_model: str | None
    requested_nlp_engine: str
    requested_nlp_model: str | None
    fallback_reason: str | None
    recognizers: tuple[RecognizerInfo, ...]
    context_enhancer: str
    entities_scanned: tuple[str, ...]
    entities_not_scanned: dict[str, str] = field(default_factory=dict)
    #: the spaCy model that ran: package version, SHA-256 over its installed files, the components run,
    #: and what text it read (``whole_text`` or a description of the windows); None without NER
    nlp_model_version: str | None = None
    nlp_model_sha256: str | None = None
    nlp_components: tuple[str, ...] = ()
    ner_scope: str | None = None
    #: the name list the NameGazetteerRecognizer reads: package, version, SHA-256 of its files, sizes; None without
    name_gazetteer: dict[str, Any] | None = None
    #: the English-word lexicon the name rules and NER windows read (the model's lemmatizer tables), with its size
    ner_lexicon: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "nlp_engine": self.nlp_engine,
            "nlp_model": self.nlp_model,
            "nlp_model_version": self.nlp_model_version,
            "nlp_model_sha256": self.nlp_model_sha256,
            "nlp_components": list(self.nlp_components),
            "ner_scope": self.ner_scope,
            "name_gazetteer": self.name_gazetteer,
            "ner_lexicon": self.ner_lexicon,
            "requested_nlp_engine": self.requested_nlp_engine,
            "requested_nlp_model": self.requested_nlp_model,
            "fallback_reason": self.fallback_reason,
            "recognizers": [r.to_dict() for r in self.recognizers],
            "context_enhancer": self.context_enhancer,
            "entities_scanned": list(self.entities_scanned),
            "entities_not_scanned": dict(self.entities_not_scanned),
        }


@dataclass
class PiiEngine:
    """A configured presidio AnalyzerEngine, the entity types to ask it for, and what it runs."""

    analyzer: AnalyzerEngine
    language: str
    entities: list[str]
    recognizers: list[EntityRecognizer]
    info: EngineInfo
    #: where NER reads a text (policy ``nlp_engine.ner_windows``); None: whole texts
    ner_windows: NerWindows | None = None
    #: English words of the spaCy model's lexicon (NER windows at a sentence's start; the name rules)
    ner_lexicon: frozenset[str] = frozenset()
    #: the name list of the NameGazetteerRecognizer, when the policy runs one
    name_gazetteer: Any = None

    def analyze(self, text: str) -> list[RecognizerResult]:
        """presidio's own ``AnalyzerEngine.analyze`` over one text (the reference result)."""
        return self.analyzer.analyze(text, language=self.language, entities=self.entities)


def spacy_model_installed(model: str) -> bool:
    """Whether a spaCy package of that name, or a model directory at that path, exists."""
    import spacy.util

    return bool(spacy.util.is_package(model)) or Path(model).is_dir()


@dataclass(frozen=True)
class SpacyModel:
    """A loaded spaCy pipeline with only what its NER needs enabled, and what identifies it."""

    nlp: Any  # spacy.language.Language
    version: str
    sha256: str
    components: tuple[str, ...]
    #: the labels its entity components predict (PERSON, GPE, ...) and the presidio entities they map to
    labels: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    #: English words of the model's lemmatizer lexicon (lower case; empty without a lookup lemmatizer)
    lexicon: frozenset[str] = frozenset()
    #: the language's stop words (spaCy's ``Defaults.stop_words``), lower case; also in ``lexicon``
    stop_words: frozenset[str] = frozenset()


def _lexicon(nlp: Any) -> frozenset[str]:
    """The words of the pipeline's lemmatizer tables (``lemma_index``, ``lemma_exc``), lower case.

    en_core_web_sm's rule lemmatizer ships WordNet's English words by part of speech; a disabled
    component's tables are still there. Words with spaces or underscores (phrases) are left out.
    """
    words: set[str] = set()
    for name in nlp.component_names:
        lookups = getattr(nlp.get_pipe(name), "lookups", None)
        if lookups is None:
            continue
        for table_name in ("lemma_index", "lemma_exc"):
            if not lookups.has_table(table_name):
                continue
            table = lookups.get_table(table_name)
            for key, values in table.items():
                words.update(v for v in values if isinstance(v, str))
                if table_name == "lemma_exc" and isinstance(key, str):
                    words.add(key)
    return frozenset(w.lower() for w in words if w and "_" not in w and " " not in w)


def _model_data_folder(model: str) -> tuple[Path, str]:
    """The folder holding a spaCy model's ``config.cfg`` (a package's data folder, or the model directory) and the
    model's version (the package's, else its meta.json's)."""
    import spacy.util

    if spacy.util.is_package(model):
        from importlib.metadata import version as dist_version

        root, version = Path(spacy.util.get_package_path(model)), dist_version(model)
    else:
        root, version = Path(model), None
    if (root / "config.cfg").is_file():
        return root, version or str(spacy.util.load_meta(root / "meta.json").get("version", "unknown"))
    folders = sorted(p for p in root.iterdir() if (p / "config.cfg").is_file())
    if len(folders) != 1:
        raise ValueError(f"{root} holds {len(folders)} model folders (a config.cfg in each), not one")
    return folders[0], version or "unknown"


#: spaCy components that set ``doc.ents``: the statistical NER and the rule-based entity ruler.
_ENTITY_FACTORIES = frozenset({"ner", "beam_ner", "entity_ruler"})


@functools.lru_cache(maxsize=4)
def load_spacy_model(model: str) -> SpacyModel:
    """Load an installed spaCy package (or model directory) once per process, NER only.

    Only the NER components run (``ner``, or an ``entity_ruler``), with any shared ``tok2vec`` they
    listen to (en_core_web_sm's NER has its own): the tagger, parser and lemmatizer would double the
    cost for nothing the gate reads (its context enhancer reads words from the text, not lemmas). The pipeline is
    shared by every engine of the process; the scan only reads it.
    """
    import spacy

    folder, version = _model_data_folder(model)
    # Loaded from a private copy hashed as it is made: the digest recorded (and checked against the policy's pin)
    # is the digest of the bytes loaded, whatever happens to the installed folder meanwhile
    with hashed_copy(folder, exclude=()) as (copy, sha256):
        nlp = spacy.load(copy)
    stop_words = frozenset(w.lower() for w in nlp.Defaults.stop_words)
    lexicon = _lexicon(nlp) | stop_words
    recognizers = [name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory in _ENTITY_FACTORIES]
    if not recognizers:
        raise ValueError(f"it has no NER component (components: {', '.join(nlp.pipe_names) or 'none'})")
    listened = [
        name for name, pipe in nlp.pipeline if any(r in getattr(pipe, "listening_components", ()) for r in recognizers)
    ]
    nlp.select_pipes(enable=[name for name in nlp.pipe_names if name in recognizers or name in listened])
    labels = sorted({label for name in recognizers for label in getattr(nlp.get_pipe(name), "labels", ())})
    mapping = NerModelConfiguration().model_to_presidio_entity_mapping
    return SpacyModel(
        nlp=nlp,
        version=version,
        sha256=sha256,
        components=tuple(nlp.pipe_names),
        labels=tuple(labels),
        entities=tuple(sorted({mapping[label] for label in labels if label in mapping})),
        lexicon=lexicon,
        stop_words=stop_words,
    )


def _require_pin(policy_path: str, field: str, what: str, actual: str, pinned: str | None) -> None:
    """Refuse a model or list whose digest is not the one the policy pins at ``nlp_engine.<field>`` (attack P5);
    ``what`` names it with its verb ("spaCy model 'm' 3.8.0 hashes")."""
    if pinned is not None and actual != pinned:
        raise ConfigError(
            f"{policy_path}: nlp_engine.{field}: {what} to {actual[:12]}…, not the pinned {pinned[:12]}…; reinstall it "
            "(pip install --require-hashes --no-deps -r requirements-models.lock) or pin another in a reviewed change"
        )


def _nlp_engine(
    policy: PiiPolicy, policy_path: str
) -> tuple[NlpEngine, str, str | None, str | None, SpacyModel | None]:
    """Create the NLP engine; returns it, its name, its model, why it fell back (if it did), the spaCy model."""
    config = policy.nlp_engine
    no_op = {"nlp_engine_name": "no_op", "models": [{"lang_code": policy.language, "model_name": "none"}]}
    if config.engine == "no_op":
        return NlpEngineProvider(nlp_configuration=no_op).create_engine(), "no_op", None, None, None
    model = str(config.model)
    if not spacy_model_installed(model):
        reason = f"spaCy model {model!r} is not installed"
        if config.fallback == "error":
            raise ConfigError(
                f"{policy_path}: nlp_engine.model: {reason}; install it (make's set-up installs "
                "requirements-models.lock: pip install --require-hashes --no-deps -r requirements-models.lock) "
                "or set nlp_engine.engine: no_op (pattern recognizers only, no PERSON/LOCATION)"
            )
        log.warning("%s; scanning without NER (nlp_engine.fallback: no_op)", reason)
        return NlpEngineProvider(nlp_configuration=no_op).create_engine(), "no_op", None, reason, None
    try:
        loaded = load_spacy_model(model)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{policy_path}: nlp_engine.model: cannot load spaCy model {model!r} ({exc})") from None
    _require_pin(
        policy_path,
        "model_sha256",
        f"spaCy model {model!r} {loaded.version} hashes",
        loaded.sha256,
        config.model_sha256,
    )
    # presidio's spaCy engine over the pipeline loaded above (its own load() would load it again, and
    # download a missing one). Model labels the policy cannot ask for (CARDINAL, MONEY, ...) are ignored
    # rather than warned about once per entity.
    mapping = NerModelConfiguration().model_to_presidio_entity_mapping
    labels = loaded.labels
    engine = SpacyNlpEngine(
        models=[{"lang_code": policy.language, "model_name": model}],
        ner_model_configuration=NerModelConfiguration(labels_to_ignore=sorted(x for x in labels if x not in mapping)),
    )
    engine.nlp = {policy.language: loaded.nlp}
    return engine, "spacy", model, None, loaded


def describe_ner_scope(policy: PiiPolicy) -> str:
    """What text the NER model reads, as the decision records it."""
    config = policy.nlp_engine
    if config.ner_scope != "windows" or config.ner_windows is None:
        return "whole_text"
    windows = config.ner_windows
    return (
        f"windows: {windows.context_words} words either side of each capitalised word (or caseless-script "
        f"word), except {len(windows.never)} words anywhere and {len(windows.sentence_starters)} at a "
        "sentence's start"
        + (
            ", and there English words of the model's lexicon that are no listed name and have no capital after"
            if windows.lexicon_starters
            else ""
        )
    )


def _custom_recognizer(spec, language: str) -> PatternRecognizer:
    return PatternRecognizer(
        supported_entity=spec.entity,
        name=spec.name,
        supported_language=language,
        patterns=[Pattern(name=p.name, regex=p.regex, score=p.score) for p in spec.patterns] or None,
        deny_list=list(spec.deny_list) or None,
        deny_list_score=spec.deny_list_score if spec.deny_list_score is not None else 1.0,
        context=list(spec.context) or None,
    )


def _phone_recognizer(default: PhoneRecognizer, policy: PiiPolicy, policy_path: str) -> PhoneRecognizer:
    """presidio's phone recognizer for the policy's regions (its default eight flag decimals in math data)."""
    import phonenumbers

    unknown = [r for r in policy.phone_regions if r not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ConfigError(f"{policy_path}: phone_regions: libphonenumber does not know {', '.join(unknown)}")
    return PhoneRecognizer(
        context=list(default.context or PhoneRecognizer.CONTEXT),
        supported_language=default.supported_language,
        supported_regions=tuple(policy.phone_regions),
        leniency=default.leniency,
    )


def build_engine(policy: PiiPolicy, policy_path: str | Path = "policies/pii.yaml") -> PiiEngine:
    """Build the analyzer for a policy; an entity no recognizer can detect is a ConfigError.

    An NER entity (PERSON, ...) under a policy whose spaCy model is missing and
    whose ``fallback`` is ``no_op`` is not scanned; it is listed in
    ``info.entities_not_scanned`` with the reason, and the gate warns about it.
    """
    policy_path = str(policy_path)
    guard_presidio_logs()
    use_pinned_suffix_list()  # presidio's e-mail validator reads only the pinned public-suffix list, no cache
    nlp_engine, nlp_name, nlp_model, fallback_reason, spacy_model = _nlp_engine(policy, policy_path)
    language = policy.language
    wanted = {rule.entity for rule in policy.entities}

    registry = RecognizerRegistry(supported_languages=[language])
    with _quiet("presidio-analyzer"):
        # presidio warns once per recognizer of another language it skips; that is expected here.
        registry.load_predefined_recognizers(languages=[language], nlp_engine=nlp_engine)
    # A custom recognizer replaces presidio's for its entity, unless it says it adds to them.
    custom_entities = {spec.entity for spec in policy.custom_recognizers if not spec.keep_predefined}
    kept: list[EntityRecognizer] = []
    sources: dict[str, str] = {}
    for recognizer in registry.recognizers:
        entities = set(recognizer.supported_entities) & (wanted - custom_entities)
        if not entities:
            continue
        if isinstance(recognizer, PhoneRecognizer):
            recognizer = _phone_recognizer(recognizer, policy, policy_path)
        kept.append(recognizer)
        is_nlp = type(recognizer).__name__ in ("SpacyRecognizer", "StanzaRecognizer", "TransformersRecognizer")
        sources[recognizer.id] = f"nlp:{nlp_name}" if is_nlp else "presidio"
    for spec in policy.custom_recognizers:
        recognizer = _custom_recognizer(spec, language)
        kept.append(recognizer)
        sources[recognizer.id] = "policy"
    gazetteer = None
    names_config = policy.nlp_engine.name_gazetteer
    if names_config is not None and spacy_model is not None and "PERSON" in wanted - custom_entities:
        from governance.pii.names import NameRecognizer, load_name_gazetteer

        try:
            gazetteer = load_name_gazetteer(
                names_config.package, tuple(names_config.first_name_files), tuple(names_config.surname_files)
            )
        except ConfigError as exc:
            raise ConfigError(f"{policy_path}: {exc}") from None
        what = f"the name lists of {gazetteer.package} {gazetteer.version} hash"
        _require_pin(policy_path, "name_gazetteer.sha256", what, gazetteer.sha256, names_config.sha256)
        recognizer = NameRecognizer(names_config, gazetteer, spacy_model.lexicon, spacy_model.stop_words, language)
        kept.append(recognizer)
        sources[recognizer.id] = f"gazetteer:{gazetteer.package}=={gazetteer.version}+nlp:{nlp_name}"
    registry.recognizers = kept

    def detects(recognizer: EntityRecognizer) -> list[str]:
        """What a recognizer can report: an NER recognizer only what its model's labels map to, sorted
        (presidio lists them from a set, in an order that changes from process to process)."""
        if sources[recognizer.id].startswith("nlp:"):
            return sorted(e for e in recognizer.supported_entities if e in ner_entities)
        return list(recognizer.supported_entities)

    ner_entities = set(spacy_model.entities) if spacy_model else set()
    covered = {e for r in kept for e in detects(r)}
    not_scanned: dict[str, str] = {}
    for index, rule in enumerate(policy.entities):
        if rule.entity in covered:
            continue
        if rule.entity in NER_ENTITIES and fallback_reason:
            not_scanned[rule.entity] = f"{fallback_reason}; nlp_engine.fallback is no_op, so no NER ran"
            continue
        hint = (
            "it needs an NER model: set nlp_engine.engine: spacy with an installed model"
            if rule.entity in NER_ENTITIES
            else "add a custom_recognizers entry for it or fix the name"
        )
        raise ConfigError(
            f"{policy_path}: entities.{index}.entity: no recognizer detects {rule.entity!r} with nlp_engine "
            f"{nlp_name!r}; {hint}"
        )

    analyzer = AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp_engine,
        supported_languages=[language],
        context_aware_enhancer=WordWindowContextEnhancer(policy.context),
    )
    entities = [rule.entity for rule in policy.entities if rule.entity in covered]
    infos = tuple(
        RecognizerInfo(
            name=r.name,
            entities=tuple(e for e in detects(r) if e in wanted),
            source=sources[r.id],
        )
        for r in kept
    )
    info = EngineInfo(
        nlp_engine=nlp_name,
        nlp_model=nlp_model,
        requested_nlp_engine=policy.nlp_engine.engine,
        requested_nlp_model=policy.nlp_engine.model,
        fallback_reason=fallback_reason,
        recognizers=infos,
        context_enhancer=(
            f"WordWindowContextEnhancer(prefix_words={policy.context.prefix_words}, "
            f"lookback_chars={policy.context.lookback_chars}, similarity_factor={policy.context.similarity_factor}, "
            f"min_score_with_context={policy.context.min_score_with_context}"
            + "".join(
                f", {e.entity}: {len(e.supportive)} supportive/{len(e.contrary)} contrary words, "
                f"{len(e.qualified)} qualified by {len(e.qualifiers)} qualifiers"
                for e in policy.context.entities
            )
            + ")"
        ),
        entities_scanned=tuple(entities),
        entities_not_scanned=not_scanned,
        nlp_model_version=spacy_model.version if spacy_model else None,
        nlp_model_sha256=spacy_model.sha256 if spacy_model else None,
        nlp_components=spacy_model.components if spacy_model else (),
        ner_scope=describe_ner_scope(policy) if spacy_model else None,
        name_gazetteer=gazetteer.to_dict() if gazetteer else None,
        ner_lexicon=(
            f"{nlp_model} lemmatizer tables lemma_index + lemma_exc and stop words ({len(spacy_model.lexicon)} words)"
            if spacy_model and (gazetteer or _lexicon_starters(policy))
            else None
        ),
    )
    log.info(
        "PII engine: nlp %s, %d recognizers for %s",
        nlp_name,
        len(kept),
        ", ".join(entities),
    )
    ner_windows = policy.nlp_engine.ner_windows if policy.nlp_engine.ner_scope == "windows" else None
    return PiiEngine(
        analyzer=analyzer,
        language=language,
        entities=entities,
        recognizers=kept,
        info=info,
        ner_windows=ner_windows,
        ner_lexicon=spacy_model.lexicon if spacy_model else frozenset(),
        name_gazetteer=gazetteer,
    )


def _lexicon_starters(policy: PiiPolicy) -> bool:
    windows = policy.nlp_engine.ner_windows
    return policy.nlp_engine.ner_scope == "windows" and windows is not None and windows.lexicon_starters
