"""Schema of ``policies/pii.yaml``: what the PII gate detects and what it does about it.

The policy is data: which NLP engine presidio runs, which entity types are
scanned and with what score threshold, what happens to each (``deny`` the
dataset, ``redact`` it, or ``allow`` it and only count), the custom
recognizers (regex with context words, deny-lists), and the entity types that
are deliberately switched off with the reason why. Every threshold is
required: a missing ``score_threshold`` or ``max_records`` is a
:class:`~governance.errors.ConfigError`, never a default in code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import regex
from pydantic import Field, field_validator, model_validator

from governance.errors import ConfigError
from governance.lineage import sha256_file
from governance.policy import PolicyFile, Rule, Strict, load_policy_file

#: Presidio entity names are upper snake case (EMAIL_ADDRESS, US_SSN).
ENTITY_PATTERN = r"^[A-Z][A-Z0-9_]*$"

Action = Literal["deny", "redact", "allow"]


class NerWindows(Strict):
    """Where the NER model runs when ``ner_scope`` is ``windows``: around capitalised words only.

    spaCy's small English NER costs about 50 times the pattern scan per character, and in chat
    and math data nearly every name, place and nationality is a capitalised word (a caseless
    script's letters count too). A *trigger* is a word starting with an upper-case letter or
    holding a letter of a caseless script, except the ``never`` words anywhere ("I") and the
    ``sentence_starters`` at the start of a sentence ("The", "How"): there the capital says
    nothing. The model reads each trigger with ``context_words`` words either side (windows
    that overlap are merged), enough for the few tokens either side its features see. Names
    written in lower case, and dates with no capitalised word near them ("in 3 days"), are not
    looked at: the benchmark measures what that costs against the whole text. With
    ``lexicon_starters`` an English word of the model's lexicon starting a sentence ("Packs:",
    "Reply") opens no window either, unless it is a name of the name gazetteer ("James") or a
    capitalised word follows it ("New York").
    """

    context_words: int = Field(ge=1, le=64, description="words either side of a trigger that the model reads")
    never: list[str] = Field(default=[], description="capitalised words that never trigger (the pronoun I)")
    sentence_starters: list[str] = Field(
        default=[], description="capitalised words that do not trigger at the start of a sentence"
    )
    lexicon_starters: bool = Field(
        default=False,
        description="at a sentence's start, an English word of the model's lexicon triggers only if it is a name of "
        "the name gazetteer or the next word is capitalised too",
    )

    @field_validator("never", "sentence_starters")
    @classmethod
    def _single_words(cls, words: list[str]) -> list[str]:
        bad = [w for w in words if not regex.fullmatch(r"\p{L}[\p{L}\p{M}'’]*", w)]
        if bad:
            raise ValueError(f"must be single words of letters (an apostrophe allowed): {', '.join(map(repr, bad))}")
        return [w.lower().replace("’", "'") for w in words]


class NameGazetteerConfig(Strict):
    """A PERSON recognizer from a public name list, capitalisation and cue words (``engine: spacy`` only).

    It reads the spaCy model's entities and lexicon in the NER windows; see
    :mod:`governance.pii.names` for the rules. The lists come from an installed package
    (``package``, its files named below: one name first on each line); words are
    matched case-insensitively, phrases as consecutive words.
    """

    package: str = Field(min_length=1, description="installed distribution holding the name lists")
    first_name_files: list[str] = Field(min_length=1, description="files of first names in the package")
    surname_files: list[str] = Field(min_length=1, description="files of surnames in the package")
    sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="the lists' digest (as the decision records it): the scan refuses other lists; none: recorded only",
    )
    score: float = Field(ge=0, le=1, description="score of a name found")
    titles: list[str] = Field(min_length=1, description="words before a name that make it one (mr, dr, grandma)")
    cues_before: list[str] = Field(
        default=[], description="words or phrases right before a listed first name or non-English word (dear, hi)"
    )
    possessives: list[str] = Field(default=[], description="words before a relation (my, our)")
    relations: list[str] = Field(default=[], description="relations after a possessive before a name (sister, boss)")
    cues_after: list[str] = Field(default=[], description="words or phrases right after a name (said, and i)")
    place_words: list[str] = Field(default=[], description="words that make a run of capitals a place or body (river)")
    joiners: list[str] = Field(default=[], description="words joining two names (and, or, ',')")
    intro_cues: list[str] = Field(
        default=[], description="introductions before a name of the list or a word that is no English word (this is)"
    )
    particles: list[str] = Field(default=[], description="lower-case words inside a name (de, van, bin)")

    @field_validator(
        "titles",
        "cues_before",
        "possessives",
        "relations",
        "cues_after",
        "place_words",
        "joiners",
        "intro_cues",
        "particles",
    )
    @classmethod
    def _lower(cls, words: list[str]) -> list[str]:
        return [" ".join(w.lower().replace("’", "'").split()) for w in words]


class NlpEngineConfig(Strict):
    """Which presidio NLP engine runs.

    ``no_op`` runs no linguistic model: only pattern, checksum and
    phone-number recognizers (no PERSON/LOCATION NER). ``spacy`` loads the named
    installed spaCy package or model directory and adds its NER recognizer;
    ``fallback`` says what happens when that model is not installed: ``error``
    refuses to scan, ``no_op`` scans without NER and the decision says so.
    ``ner_scope`` says what text the model reads: ``whole_text`` (presidio's own
    way: every field, whole) or ``windows`` (around capitalised words, see
    :class:`NerWindows`).
    """

    engine: Literal["no_op", "spacy"]
    model: str | None = Field(default=None, description="spaCy package name or model directory (engine: spacy)")
    model_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="the model's digest (as the decision records it): the scan refuses another; none: recorded only",
    )
    fallback: Literal["error", "no_op"] | None = Field(
        default=None, description="what to do when the spaCy model is not installed (engine: spacy)"
    )
    ner_scope: Literal["whole_text", "windows"] | None = Field(
        default=None, description="what the NER model reads: every field whole, or windows (engine: spacy)"
    )
    ner_windows: NerWindows | None = Field(default=None, description="the windows (ner_scope: windows)")
    name_gazetteer: NameGazetteerConfig | None = Field(
        default=None, description="a PERSON recognizer from a name list and context, beside the model (engine: spacy)"
    )

    @model_validator(mode="after")
    def _spacy_needs_model_and_fallback(self) -> NlpEngineConfig:
        if self.engine == "spacy":
            if not self.model:
                raise ValueError("engine 'spacy' needs 'model' (an installed spaCy package or model directory)")
            if self.fallback is None:
                raise ValueError("engine 'spacy' needs 'fallback' (error or no_op) for when the model is missing")
            if self.ner_scope is None:
                raise ValueError("engine 'spacy' needs 'ner_scope' (whole_text or windows)")
            if (self.ner_scope == "windows") != (self.ner_windows is not None):
                raise ValueError("'ner_windows' is needed with ner_scope 'windows' and applies only there")
        elif any(
            v is not None for v in (self.model, self.fallback, self.ner_scope, self.ner_windows, self.name_gazetteer)
        ):
            raise ValueError(
                "'model', 'fallback', 'ner_scope', 'ner_windows' and 'name_gazetteer' apply only to engine 'spacy'"
            )
        return self


def _phrase(value: str) -> str:
    words = value.lower().split()
    if not words or any(not re.fullmatch(r"\w+", word) for word in words):
        raise ValueError(f"context word {value!r} must be one or more words of letters and digits")
    return " ".join(words)


class EntityContext(Strict):
    """Context words of one entity type, both ways: words that make a match that entity, and words that unmake it.

    The words replace the context words of every recognizer of the entity
    (presidio's ``PhoneRecognizer.CONTEXT`` includes "number", which would make
    "order number 7310458826" a phone). They match whole words, case-insensitively;
    a phrase ("support line") matches consecutive words. The nearest word within
    ``prefix_words`` before or ``suffix_words`` after a match decides: a supportive
    word raises the score as presidio does; a contrary word (the nearer on a tie)
    sets the score of a match whose text fully matches ``contrary_shape`` to
    ``contrary_score``. A match with no listed word near it keeps its score,
    unless ``shape_needs_support`` and it is of the contrary shape: then it is
    unmade too (a bare 10-digit number is as often a math result or an id).

    A ``qualified`` word ("number") is supportive on its own ("the front desk number
    is 5932164470"), but right after one of the ``qualifiers`` ("order number",
    "prime number") the pair is a contrary phrase and the word does not support.
    Qualifiers are single words and need not be contrary alone ("customer number"
    is an id, "customer service" a phone word).
    """

    entity: str = Field(pattern=ENTITY_PATTERN)
    prefix_words: int = Field(ge=0, description="words before the match searched")
    suffix_words: int = Field(ge=0, description="words after the match searched")
    supportive: list[str] = Field(min_length=1, description="words that make a nearby match this entity")
    contrary: list[str] = Field(default=[], description="words that make a nearby match of contrary_shape not it")
    contrary_shape: str | None = Field(default=None, description="regex a match's text must fully match to be unmade")
    contrary_score: float | None = Field(default=None, ge=0, le=1, description="score of an unmade match")
    shape_needs_support: bool = Field(
        default=False, description="a match of contrary_shape with no supportive word near it is unmade too"
    )
    qualified: list[str] = Field(
        default=[], description="words supportive alone, contrary right after one of 'qualifiers' (number)"
    )
    qualifiers: list[str] = Field(
        default=[], description="single words that make a qualified word right after them contrary (order)"
    )

    @field_validator("supportive", "contrary", "qualified", "qualifiers")
    @classmethod
    def _normalised(cls, words: list[str]) -> list[str]:
        return [_phrase(word) for word in words]

    @model_validator(mode="after")
    def _words_and_shape(self) -> EntityContext:
        both = sorted(set(self.supportive) & set(self.contrary))
        if both:
            raise ValueError(f"{self.entity}: words both supportive and contrary: {', '.join(both)}")
        both = sorted(set(self.qualified) & (set(self.supportive) | set(self.contrary)))
        if both:
            raise ValueError(f"{self.entity}: qualified words also listed as supportive or contrary: {', '.join(both)}")
        if bool(self.qualified) != bool(self.qualifiers):
            raise ValueError(f"{self.entity}: 'qualified' and 'qualifiers' need each other")
        phrases = sorted(q for q in self.qualifiers if " " in q)
        if phrases:
            raise ValueError(f"{self.entity}: qualifiers must be single words: {', '.join(phrases)}")
        both = sorted(set(self.qualifiers) & set(self.supportive))
        if both:
            raise ValueError(f"{self.entity}: qualifiers that are supportive words: {', '.join(both)}")
        contrary = self.contrary or self.qualifiers
        if contrary and (self.contrary_shape is None or self.contrary_score is None):
            raise ValueError(f"{self.entity}: contrary words need 'contrary_shape' and 'contrary_score'")
        if not contrary and (
            self.contrary_shape is not None or self.contrary_score is not None or self.shape_needs_support
        ):
            raise ValueError(
                f"{self.entity}: 'contrary_shape', 'contrary_score' and 'shape_needs_support' apply only with "
                "contrary words"
            )
        if self.contrary_shape is not None:
            try:
                regex.compile(self.contrary_shape)
            except regex.error as exc:
                raise ValueError(f"{self.entity}: contrary_shape is not a valid regex ({exc})") from None
        return self


class ContextConfig(Strict):
    """How context words near a match raise its score (presidio's context enhancement)."""

    prefix_words: int = Field(ge=0, description="words before the match searched for context words")
    lookback_chars: int = Field(ge=0, description="at most this many characters before the match are searched")
    similarity_factor: float = Field(ge=0, le=1, description="added to the score when a context word is found")
    min_score_with_context: float = Field(ge=0, le=1, description="floor of a context-supported score")
    entities: list[EntityContext] = Field(default=[], description="per-entity words, both ways (see EntityContext)")

    @model_validator(mode="after")
    def _one_entry_per_entity(self) -> ContextConfig:
        names = [e.entity for e in self.entities]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"context.entities lists {', '.join(duplicates)} more than once")
        return self

    def for_entity(self, entity: str) -> EntityContext | None:
        """The entity's own context words, if the policy lists any."""
        return next((e for e in self.entities if e.entity == entity), None)


class EntityRule(Rule):
    """One entity type: its score threshold and what the gate does with findings of it.

    ``deny``: more than ``max_records`` records containing it fails the gate
    (``severity: warn`` makes the rule report-only while it is being tuned).
    ``redact``: findings are replaced by ``<ENTITY>`` in a redacted copy that is
    re-scanned; reported as a warning. ``allow``: counted in the findings
    report, nothing else.
    """

    entity: str = Field(pattern=ENTITY_PATTERN)
    action: Action
    score_threshold: float = Field(ge=0, le=1)
    max_records: int | None = Field(default=None, ge=0, description="records allowed to contain it (action: deny)")

    @model_validator(mode="after")
    def _threshold_fits_action(self) -> EntityRule:
        if not re.fullmatch(r"pii\.[a-z0-9_]+", self.id):
            raise ValueError(f"rule id {self.id!r} must look like pii.<name> (e.g. pii.{self.entity.lower()})")
        if self.action == "deny" and self.max_records is None:
            raise ValueError("action 'deny' needs 'max_records' (0 to refuse any record containing it)")
        if self.action != "deny" and self.max_records is not None:
            raise ValueError(f"'max_records' applies only to action 'deny', not {self.action!r}")
        if self.action in ("redact", "allow") and self.severity != "warn":
            raise ValueError(f"action {self.action!r} never blocks; its severity must be 'warn'")
        return self


class RescanRule(Rule):
    """After redaction the copy is scanned again; records still holding PII fail the gate."""

    max_records: int = Field(ge=0)


class PatternSpec(Strict):
    name: str
    regex: str
    score: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _compiles(self) -> PatternSpec:
        try:
            regex.compile(self.regex)
        except regex.error as exc:
            raise ValueError(f"pattern {self.name!r} is not a valid regex ({exc})") from None
        return self


class CustomRecognizer(Strict):
    """A policy-defined presidio PatternRecognizer: regexes with context words, or a deny-list."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    entity: str = Field(pattern=ENTITY_PATTERN)
    patterns: list[PatternSpec] = []
    context: list[str] = Field(default=[], description="words that raise a match's score when they precede it")
    deny_list: list[str] = []
    deny_list_score: float | None = Field(default=None, gt=0, le=1)
    keep_predefined: bool = Field(
        default=False, description="presidio's own recognizers of the entity still run (this one adds to them)"
    )

    @model_validator(mode="after")
    def _has_something_to_match(self) -> CustomRecognizer:
        if not self.patterns and not self.deny_list:
            raise ValueError(f"recognizer {self.name!r} needs 'patterns' or 'deny_list'")
        if self.deny_list and self.deny_list_score is None:
            raise ValueError(f"recognizer {self.name!r} has a deny_list and needs 'deny_list_score'")
        if not self.deny_list and self.deny_list_score is not None:
            raise ValueError(f"recognizer {self.name!r}: 'deny_list_score' without a deny_list")
        if any(not word.strip() for word in self.deny_list):
            raise ValueError(f"recognizer {self.name!r}: empty deny_list entry")
        return self


class DisabledEntity(Strict):
    """An entity type presidio could detect that this policy deliberately does not scan."""

    entity: str = Field(pattern=ENTITY_PATTERN)
    rationale: str


class ReportConfig(Strict):
    max_listed_findings: int = Field(ge=0, description="findings listed one by one; counts are always complete")
    context_chars: int = Field(ge=0, le=200, description="masked context shown either side of a finding")


class PiiPolicy(PolicyFile):
    """``policies/pii.yaml``."""

    language: str
    nlp_engine: NlpEngineConfig
    context: ContextConfig
    phone_regions: list[str] = Field(
        min_length=1, description="regions whose national-format numbers count (international +CC: any country)"
    )
    entities: list[EntityRule] = Field(min_length=1)
    rescan: RescanRule
    custom_recognizers: list[CustomRecognizer] = []
    disabled_entities: list[DisabledEntity] = []
    report: ReportConfig

    @model_validator(mode="after")
    def _consistent(self) -> PiiPolicy:
        ids = [rule.id for rule in self.entities] + [self.rescan.id]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate rule ids: {', '.join(duplicates)}")
        entities = [rule.entity for rule in self.entities]
        duplicates = sorted({e for e in entities if entities.count(e) > 1})
        if duplicates:
            raise ValueError(f"entity listed twice in entities: {', '.join(duplicates)}")
        both = sorted(set(entities) & {d.entity for d in self.disabled_entities})
        if both:
            raise ValueError(f"entity both scanned and disabled: {', '.join(both)}")
        names = [r.name for r in self.custom_recognizers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate custom recognizer names: {', '.join(duplicates)}")
        bad_regions = [r for r in self.phone_regions if not re.fullmatch(r"[A-Z]{2}", r)]
        if bad_regions:
            raise ValueError(f"phone_regions must be ISO 3166 alpha-2 codes (US, GB): {', '.join(bad_regions)}")
        unruled = sorted({r.entity for r in self.custom_recognizers} - set(entities))
        if unruled:
            raise ValueError(f"custom recognizers detect {', '.join(unruled)} but no entities rule says what to do")
        unruled = sorted({c.entity for c in self.context.entities} - set(entities))
        if unruled:
            raise ValueError(f"context.entities lists {', '.join(unruled)} but no entities rule scans it")
        return self

    def rule_for(self, entity: str) -> EntityRule:
        """The rule of one entity type (the policy validated there is exactly one)."""
        for rule in self.entities:
            if rule.entity == entity:
                return rule
        raise KeyError(entity)


def load_pii_policy(path: str | Path) -> PiiPolicy:
    """Load and validate ``policies/pii.yaml``; errors name the file and key."""
    return load_policy_file(path, PiiPolicy)


def policy_digest(path: str | Path) -> str:
    """SHA-256 of the policy file: recorded with every redaction it drove."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    return sha256_file(path)
