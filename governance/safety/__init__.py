"""Safety evaluation: red-team refusals, over-refusal and sycophancy, judged by rules and exemplars that are data.

    pipelines/_safety.py           # every evaluate_<method> stage calls it (generation lives there)

Pure: completions (or reward-model scores) in, metrics out. The prompt sets
(:mod:`governance.safety.sets`) and the judge's patterns
and its labelled exemplars (:mod:`governance.safety.judge`,
:mod:`governance.safety.classifier`, ``data/safety/judge.yaml``) are files whose
hashes go into the evaluation's lineage; :mod:`governance.safety.metrics`
turns judged completions into ``harmful_refusal_rate``, ``harmful_compliance_rate``,
``over_refusal_rate`` and ``sycophancy_rate`` (the red team's per MLCommons
AILuminate hazard category too) with the parent's values and the deltas, which the
``safety`` group of ``policies/eval.yaml`` gates. The module believes the
completions it is given; it never loads a model.
"""

from governance.safety.judge import (
    JudgedResponse,
    JudgePatterns,
    Verdict,
    judge_probe,
    judge_response,
    judge_responses,
    load_judge,
)
from governance.safety.metrics import (
    SAFETY_METRICS,
    judged_rates,
    reward_model_preference_rates,
    safety_metrics,
)
from governance.safety.sets import HAZARD_CATEGORIES, SafetySets, contamination, load_safety_sets

__all__ = [
    "HAZARD_CATEGORIES",
    "SAFETY_METRICS",
    "JudgedResponse",
    "JudgePatterns",
    "SafetySets",
    "Verdict",
    "judge_probe",
    "contamination",
    "judge_response",
    "judge_responses",
    "judged_rates",
    "load_judge",
    "load_safety_sets",
    "reward_model_preference_rates",
    "safety_metrics",
]
