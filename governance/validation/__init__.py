"""The data validation gate: great-expectations suites per dataset kind, thresholds from policy.

    govern validate data/raw/sft.jsonl --kind sft --eval eval.jsonl   # or: python -m pipelines.validate sft

Dataset kinds (TRL's formats): ``sft`` (conversational ``messages`` or
``prompt``/``completion``), ``preference`` (``prompt``/``chosen``/``rejected``,
all plain strings or all lists of messages), ``kto`` (``prompt``/``completion``
and a boolean ``label``), ``prompt`` (GRPO: a prompt with a verifiable
``answer``) and ``rlhf`` (prompt only).

Two kinds of failure, kept apart on purpose:

**Structural errors are bad input** (:class:`~governance.errors.DataError`,
exit 2, no decision written). A record that cannot be read as its kind cannot
be judged by a rate: a missing or mistyped required field (``messages``,
``prompt``, ``completion``, ``chosen``, ``rejected``, ``label``), a null
field or message content, a role outside system/user/assistant, a message that
is not an object, text mixed with message lists in one record, a KTO ``label``
that is not a boolean, a ``ratings`` entry without ``annotator_id`` or with a
non-numeric score / non-boolean label, an ``answer`` that is neither string nor
number, plus everything :func:`governance.records.iter_records` refuses
(invalid JSON or UTF-8, a non-object record, an empty file). The message names
``file:line``, the field path and the problem, e.g.
``data/x.jsonl:17: field messages[2].role: 'bot' is not one of system, user, assistant``.
A CSV or Parquet file with the wrong columns fails the same way on its first row.

**Policy rules are findings** with thresholds in ``policies/data.yaml`` (one
section per kind), each a ``deny`` or ``warn`` :class:`~governance.gates.Violation`:

=============================  ==============================================================
``data.min_rows``              rows per file (train and eval minimums)
``data.empty_text``            share of records with an empty or whitespace-only text field
``data.turn_order``            share of records whose well-formed roles are out of order:
                               system optional first, then user/assistant alternating from
                               user, ending with assistant (sft, preference, kto; a
                               conversational prompt must end with user) or with user
                               (``prompt``, ``rlhf``)
``data.length_bounds``         share of records outside [min, max] chars or approx. tokens
                               (ceil(chars / 4)); for preference the prompt plus the longer
                               response, i.e. what the trainer sees
``data.duplicate_rate``        share of records repeating an earlier record of the same file
                               (NFKC, case-folded, whitespace-collapsed text hash)
``data.train_eval_overlap``    share of eval records whose normalised prompt (user turns)
                               also occurs in the train file
``data.chosen_equals_rejected``  preference pairs whose responses are identical
``data.label_balance``         KTO: share of ``label: true`` within [min, max]
``data.answer_present``        GRPO: prompts without a reference ``answer``
``data.answer_numeric``        GRPO: present answers the accuracy reward cannot read as a
                               number (its parsing: Decimal after removing thousands
                               separators; a fraction or a word never matches)
``reward.annotation_provenance``  preference/KTO records lacking ``annotator_id`` or
                               ``guideline_version``
``reward.inter_rater_agreement``  agreement on doubly-annotated items (``ratings`` with two
                               or more annotators): Krippendorff's alpha (interval) over the
                               chosen/rejected scores for preference data, Cohen's kappa over
                               the labels for KTO, pooled over train and eval, with a minimum
                               number of doubly-annotated items
=============================  ==============================================================

Every verdict comes from a great-expectations validation result: per-record
checks are derived columns (``turn_order_ok``, ``length``, ``is_duplicate``...)
asserted by GE expectations on chunks of 100k records (counts and first failing
line summed over chunks, so 1M records stream in bounded memory); the
dataset-level measurements (row counts, rates, shares, agreement) then form a
one-row frame asserted against the policy thresholds by a second GE suite. The
decision's ``details`` record every rule (passed or not, observed value,
threshold, GE expectation type), per-file lengths, and for reward data the
annotation sample: records, doubly-annotated items, annotator count (never
their ids) and guideline versions with counts.
"""

from typing import Any

from governance.validation.agreement import cohen_kappa, krippendorff_alpha_interval
from governance.validation.schema import derive, is_numeric_answer, normalized_hash, turn_order_ok

#: The gate's names load with it on first use (PEP 562): it imports pandas (~0.3 CPU s), which a
#: process that only hashes records (the preference evaluations' ``normalized_hash``) never needs.
_GATE_NAMES = frozenset({"DEFAULT_CHUNK_ROWS", "GATE", "ValidationOutcome", "run_validation_gate", "validate_dataset"})


def __getattr__(name: str) -> Any:
    if name in _GATE_NAMES:
        from governance.validation import gate

        return getattr(gate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "GATE",
    "ValidationOutcome",
    "cohen_kappa",
    "derive",
    "is_numeric_answer",
    "krippendorff_alpha_interval",
    "normalized_hash",
    "run_validation_gate",
    "turn_order_ok",
    "validate_dataset",
]
