"""Presidio's results at a fraction of the cost: run each recognizer only where it can match.

``AnalyzerEngine.analyze`` runs every recognizer over every whole text.
:class:`WindowedAnalyzer` gives the same results (same entity, start, end and
score; the benchmark asserts it) by running each recognizer only on small
windows of the text where it can match, mapping offsets back, and then applying
presidio's own post-processing (context enhancement over the whole text, score
thresholds, ``EntityRecognizer.remove_duplicates``) to the collected results.
This module only puts the pieces together; where the windows come from:

* presidio's predefined pattern recognizers (e-mail, URL, IP, card, IBAN, SSN,
  crypto): runs of the characters a match can consist of, holding a trigger
  (:mod:`governance.pii.run_rules`);
* presidio's PhoneRecognizer: candidates derived from libphonenumber itself
  (:mod:`governance.pii.phone_rule`), ruled in or out by its metadata
  (:mod:`governance.pii.national_numbers`);
* recognizers without such a rule (custom policy regexes and deny-lists,
  anything re-configured) run on the whole text, exactly as presidio runs them;
  a pattern recognizer that keeps presidio's ``PatternRecognizer.analyze`` (the
  policy's own, presidio's DateRecognizer) only on texts where one of its
  patterns, compiled with its flags as presidio compiles them, matches at all
  (:func:`~governance.pii.run_rules.pattern_gate`).

NER (presidio's SpacyRecognizer) is the exception to "the same results": with
``nlp_engine.ner_scope: whole_text`` the model reads every text whole, as
presidio does, and with ``windows`` only the windows around capitalised words
that :class:`~governance.pii.ner_windows.NerWindowFinder` finds; the model's
predictions in a window can differ from those in the whole text, and
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

import logging

from presidio_analyzer import EntityRecognizer, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngineProvider
from presidio_analyzer.predefined_recognizers import EmailRecognizer, SpacyRecognizer

from governance.pii.engine import PiiEngine
from governance.pii.names import NameRecognizer
from governance.pii.ner_windows import PERSON_TAG, PERSON_TAG_PATTERN, PERSON_TAG_READS_AS, NerWindowFinder
from governance.pii.phone_rule import PhoneRule, phone_rule
from governance.pii.prefilter import Prefilter, RangeTable, Untranslatable, hyperscan_available, translate
from governance.pii.run_rules import RunRule, pattern_gate, pattern_rule

log = logging.getLogger(__name__)


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
        self.plans: list[tuple[EntityRecognizer, RunRule | PhoneRule | None]] = []
        for recognizer in self.recognizers:
            rule = phone_rule(recognizer) or pattern_rule(recognizer)
            self.plans.append((recognizer, rule))
        # Whole-text policy regex recognizers run only where one of their own patterns matches at
        # all: presidio's PatternRecognizer finds nothing in a text none of its patterns matches.
        self.gates = {id(r): pattern_gate(r) for r, rule in self.plans if rule is None}
        # NER recognizers read the model's entities: they run on the NER windows, batched (see _ner_many).
        self._ner_plans = frozenset(
            i for i, (r, _rule) in enumerate(self.plans) if isinstance(r, SpacyRecognizer | NameRecognizer)
        )
        self.windowed = [r.name for r, rule in self.plans if rule is not None]
        self.whole_text = [
            r.name for i, (r, rule) in enumerate(self.plans) if rule is None and i not in self._ner_plans
        ]
        self.ner = [self.plans[i][0].name for i in sorted(self._ner_plans)]
        gazetteer = next((r for r in self.recognizers if isinstance(r, NameRecognizer)), None)
        self.ner_windows = (
            NerWindowFinder(engine.ner_windows, engine.ner_lexicon, gazetteer.is_name if gazetteer else None)
            if engine.info.nlp_engine == "spacy"
            else None
        )
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
        phone = [i for i, (_r, rule) in enumerate(self.plans) if isinstance(rule, PhoneRule)]
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
        RangeTable.shared().save()
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
        tags = iter([[(m.start(), m.end()) for m in PERSON_TAG_PATTERN.finditer(piece)] for piece in originals])
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
                for plan in sorted(self._ner_plans):
                    recognizer = self.plans[plan][0]
                    if not piece_artifacts.entities and isinstance(recognizer, SpacyRecognizer):
                        continue  # it reports only the model's entities
                    results = recognizer.analyze(text=piece, entities=entities, nlp_artifacts=piece_artifacts) or []
                    if piece_tags:
                        results = [r for r in results if not any(a <= r.start and r.end <= b for a, b in piece_tags)]
                    found[index].extend(self._tag(results, recognizer, start))
        return found

    def analyze(self, text: str, *, ner: bool = True) -> list[RecognizerResult]:
        """Results identical to ``AnalyzerEngine.analyze(text, language, entities)`` (NER: in its windows).

        ``ner=False``: the pattern recognizers only (a report's context re-scan: the field's NER findings are
        masked already, and the model reading a cut of 24 characters would only guess with less context).
        """
        [ner_results] = self._ner_many([text]) if ner else [[]]
        if self.prefilter is None:
            return self._analyze(text, self._all_plans, None, ner_results)
        fired, ends = self.prefilter.fired_with_ends([text], self._phone_plan)
        if not fired[0] and not ner_results:
            return []
        return self._analyze(text, fired[0], ends[0] if ends is not None else None, ner_results)

    def _analyze(
        self,
        text: str,
        plans: frozenset[int],
        phone_ends: list[int] | None = None,
        ner: list[RecognizerResult] | None = None,
    ) -> list[RecognizerResult]:
        """presidio's results, running only ``plans`` (indices into ``self.plans``; the others cannot match).

        ``phone_ends``: where the prefilter's phone expressions matched (see :meth:`PhoneRule.candidates_near`).
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
