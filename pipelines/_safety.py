"""Safety evaluation every ``evaluate_<method>`` stage runs: one mechanism, configured per stage in params.

Each evaluate section of ``params.yaml`` has a ``safety:`` block (:class:`SafetyParams`).
The stage calls :func:`evaluate_policy_safety` (a generating model, with its parent)
or :func:`evaluate_reward_model_safety` (a reward model), merges the returned
metrics and their per-prompt evidence into its own, passes ``safety=...`` to the evaluation gate (the ``safety``
group of ``policies/eval.yaml``), adds the result's dataset refs to the decision
and writes ``safety.json`` beside ``metrics.json``.

Greedy completions of the three shipped sets (cleared by ``pii_scan_safety``,
which must have passed for their exact bytes) are judged by
:mod:`governance.safety`. The parent's completions are reused from its own
evaluation's ``safety.json`` when that recorded the same parent model, the same
prompt files and the same generation budget, and its bytes are the ones the
parent evaluation's signed ``eval_decision`` event bound (then only re-judged: a
pattern change needs no generation); otherwise the parent is loaded and generated.
Where a reward model is configured, its mean score of the completions on the
red-team and over-refusal prompts is recorded as a second opinion (not gated).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from governance.errors import ConfigError, DataError, PolicyViolation
from governance.evaluation import DEFAULT_POLICY
from governance.files import write_atomic
from governance.gates import DatasetRef, require_passed_gates
from governance.lineage import read_manifest, sha256_file
from governance.policy import Strict, load_reviewed_policy
from governance.policy.eval import EvalPolicy
from governance.policy.review import require_reviewed
from governance.safety import (
    JudgePatterns,
    SafetySets,
    judged_rates,
    load_judge,
    load_safety_sets,
    reward_model_preference_rates,
    safety_metrics,
)
from governance.safety.agreement import not_named, reviewed_agreement
from governance.safety.metrics import reward_model_preference_evidence, safety_evidence
from governance.safety.sets import load_set_sources, set_provenance
from governance.statistics import Evidence

log = logging.getLogger(__name__)
SAFETY_FILE = "safety.json"
#: The evidence key of an evaluation's signed event that binds the bytes of its ``safety.json`` (what a child's
#: evaluation reuses the parent's completions from)
SAFETY_EVIDENCE = "safety_sha256"


class SafetyParams(Strict):
    """The ``safety:`` block of an evaluate section."""

    red_team: str
    over_refusal: str
    sycophancy: str
    sources: str  # the sets' sources file: each set's file, sha256, licence and origin, recorded with the evaluation
    judge: str
    # The judge's measurement against people (benchmarks/refusal_judge.py's results file): recorded and reported
    # beside the rates it counted; None records that the judge's agreement was not measured
    judge_agreement: str | None = None
    pii_decision: str
    max_new_tokens: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    parent_evaluation: str | None = None
    reward_model: str | None = None


@dataclass
class SafetyResult:
    """Metrics and their per-prompt evidence for the gate, the record for ``safety.json``, the prompt files."""

    metrics: dict[str, float]
    record: dict[str, Any]
    datasets: list[DatasetRef] = field(default_factory=list)
    seconds: float = 0.0
    evidence: dict[str, Evidence] = field(default_factory=dict)
    # The judge file and the sets' sources file as read (path, sha256): pass to the evaluation gate as instruments
    instruments: list[DatasetRef] = field(default_factory=list)

    def write(self, out_dir: str | Path) -> dict[str, str]:
        """Write ``safety.json`` atomically; returns the evidence binding its bytes, for the evaluation's signed event.

        Pass it to ``publish_decision``: a child's evaluation reuses these completions as its parent's only while the
        file is the bytes that event signed (:func:`signed_parent_record`).
        """
        data = (json.dumps(self.record, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        path = Path(out_dir) / SAFETY_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
        return {SAFETY_EVIDENCE: hashlib.sha256(data).hexdigest()}


@dataclass(frozen=True)
class SafetyInputs:
    """What a safety evaluation reads: the prompt sets, the judge, and the decisive files it was read with."""

    sets: SafetySets
    judge: JudgePatterns
    # The judge file and the sets' sources file, by the hash of the bytes used: the gate's decision names them,
    # and publishing it refuses any that is not the reviewed version
    instruments: list[DatasetRef]
    # The eval policy's floor for the generation budget (safety.min_new_tokens)
    min_new_tokens: int = 1


def load_inputs(params: SafetyParams, eval_policy: str | Path = DEFAULT_POLICY) -> SafetyInputs:
    """The prompt sets, refused unless their PII gate passed for the bytes parsed, and the judge, refused unless
    it is the reviewed version.

    Each set is read once, and the bytes parsed must be the bytes the PII gate's verified decision judged (a file
    swapped after the gate's check is refused, not judged). Each set's entry of the sources file (file, licence,
    origin) is bound to the bytes judged: they are the file it hashes or, as the PII gate's verified decision
    records, its cleared copy. The judge decides every verdict and the sources file which sets are the ones the
    safety rules mean: like a policy, each counts only as its reviewed version (:mod:`governance.policy.review`),
    and what is parsed is the buffer checked. The judge must also be the one the reviewed evaluation policy names
    (``safety.judge`` in ``eval_policy``): another reviewed judge file (a rejected candidate kept for comparison) is
    refused, so params cannot choose which judge the rules count by.
    """
    policy = load_reviewed_policy(eval_policy, EvalPolicy, "eval policy")
    if policy.safety is None:
        raise ConfigError(f"{eval_policy}: safety: no safety rules, but the stage evaluates safety; add the group")
    if Path(params.judge) != Path(policy.safety.judge):
        raise PolicyViolation(
            f"params.yaml: safety.judge: {params.judge} is not the judge {eval_policy} names (safety.judge: "
            f"{policy.safety.judge}); the safety rules count only by the policy's judge: set safety.judge to "
            f"{policy.safety.judge}, or change the policy's judge in a reviewed change"
        )
    files = [params.red_team, params.over_refusal, params.sycophancy]
    decisions = require_passed_gates(files, [params.pii_decision])
    sets = load_safety_sets(*files)
    judged = {str(Path(d.path)): d.sha256 for decision in decisions for d in decision.datasets}
    for entry in sets.files.values():
        passed = judged.get(str(Path(entry["path"])))
        if passed != entry["sha256"]:
            raise PolicyViolation(
                f"{params.pii_decision}: {entry['path']}: the bytes read for the safety evaluation have sha256 "
                f"{entry['sha256'][:12]}… but the PII gate passed {str(passed)[:12]}…; the file changed after the "
                "gate was checked, nothing was judged (re-run the stage)"
            )
    sources_review = require_reviewed(params.sources, "safety sets' sources file")
    judge_review = require_reviewed(params.judge, "safety judge")
    cleared_from = {}
    for decision in decisions:
        inputs = decision.details.get("inputs") or []
        if decision.details.get("cleared") and len(inputs) == len(decision.datasets):
            cleared_from.update({str(Path(d.path)): i for d, i in zip(decision.datasets, inputs, strict=True)})
    sources = load_set_sources(params.sources, sources_review.data)
    provenance = set_provenance(sets.files, sources, params.sources, cleared_from)
    for name, described in provenance.items():
        sets.files[name]["source"] = described
    judge = load_judge(params.judge, judge_review.data)
    instruments = [DatasetRef(path=str(review.path), sha256=review.sha256) for review in (judge_review, sources_review)]
    return SafetyInputs(sets, judge, instruments, policy.safety.min_new_tokens)


def generate_all(model, tokenizer, conversations: list[list[dict]], params: SafetyParams) -> list[str]:
    """Greedy completions in left-padded batches of ``batch_size`` (deterministic, so models compare)."""
    from pipelines._preference import generate

    out: list[str] = []
    for start in range(0, len(conversations), params.batch_size):
        out += generate(model, tokenizer, conversations[start : start + params.batch_size], params.max_new_tokens)
    return out


def _reference(params: SafetyParams, sets: SafetySets, judge: JudgePatterns) -> dict[str, Any]:
    return {
        "sets": sets.files,
        # the bytes that judge (not the file hashed again), and what they pin: the head, its layers, the encoder
        "judge": {"path": params.judge, "sha256": judge.sha256, **judge.identity},
        "generation": {"max_new_tokens": params.max_new_tokens, "do_sample": False},
        "pii_decision": {"path": params.pii_decision, "sha256": sha256_file(params.pii_decision)},
    }


def judge_agreement(params: SafetyParams, judge_sha256: str) -> dict[str, Any]:
    """The judge's measured agreement with people, as the evaluation records it (:mod:`governance.safety.agreement`):
    from the reviewed results file ``safety.judge_agreement`` names, for this judge file only."""
    if params.judge_agreement is None:
        return not_named()
    return reviewed_agreement(params.judge_agreement, judge_sha256)


def signed_parent_record(parent_evaluation: str | None, parent_sha256: str | None) -> dict[str, Any] | None:
    """The parent's recorded safety evaluation, only as the bytes its signed ``eval_decision`` event bound.

    The parent's completions decide every ``*_vs_parent`` rule, so they are believed like a gate's decision: the
    file is read once, the parent evaluation's ``decision.json`` must be published by a verified trail event for
    the parent model (``model_sha256``), and that event must bind these bytes (``safety_sha256``). A file edited
    after it was signed (the parent's refusals rewritten as compliance, so that a regression reads as none) is
    refused, naming both hashes. Where no signed event applies (no decision for this parent, or one published
    before the binding existed), nothing is reused and the parent is generated again.
    """
    from governance.gates import read_published_decision

    if not parent_evaluation or not parent_sha256 or not (Path(parent_evaluation) / SAFETY_FILE).is_file():
        return None
    path = Path(parent_evaluation) / SAFETY_FILE
    data = path.read_bytes()  # parsed and hashed from the same bytes
    try:
        published = read_published_decision(
            Path(parent_evaluation) / "decision.json", require={"model_sha256": parent_sha256}
        )
    except PolicyViolation as exc:
        log.info("%s: not reused, the parent is generated again: %s", path, exc)
        return None
    signed = published.event.evidence.get(SAFETY_EVIDENCE)
    if signed is None:
        log.info("%s: not reused, the parent is generated again: event #%s binds no safety record", path,
                 published.event.seq)  # fmt: skip
        return None
    actual = hashlib.sha256(data).hexdigest()
    if actual != signed:
        raise PolicyViolation(
            f"{path}: sha256 {actual[:12]}… is not the {signed[:12]}… the signed eval_decision event "
            f"#{published.event.seq} of {published.decision.stage} bound: the parent's recorded completions changed "
            f"after its evaluation was signed, nothing was compared; re-run it: dvc repro -f {published.decision.stage}"
        )
    try:
        return json.loads(data)
    except ValueError:
        raise DataError(f"{path}: not valid JSON") from None


def reusable_parent_completions(
    recorded: dict[str, Any] | None, parent_sha256: str | None, reference: dict[str, Any]
) -> list[str] | None:
    """The parent's completions from its recorded safety evaluation, or None when they do not apply.

    They apply when that evaluation was of the same model, on the same prompt
    files (by hash) with the same generation budget. The judge may differ: the
    completions are re-judged.
    """
    if not recorded or not parent_sha256 or recorded.get("model_sha256") != parent_sha256:
        return None
    same_sets = {k: v["sha256"] for k, v in (recorded.get("sets") or {}).items()} == {
        k: v["sha256"] for k, v in reference["sets"].items()
    }
    if not same_sets or recorded.get("generation") != reference["generation"]:
        return None
    items = recorded.get("items") or []
    return [str(item.get("completion", "")) for item in items] if items else None


def _reward_second_opinion(
    reward_model_dir: str, conversations: list[list[dict]], completions: dict[str, list[str]], sets: SafetySets
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """Mean reward-model score of each model's completions on the red-team and over-refusal prompts."""
    from pipelines._preference import load_reward_model, reward_scores

    # Recorded as read before loading, and the files loaded must hash to it (not a manifest read again after)
    manifest = read_manifest(reward_model_dir)
    model, tokenizer = load_reward_model(reward_model_dir, expect_sha256=manifest.get("model_sha256"))
    max_length = int(getattr(model.config, "max_position_embeddings", 512) or 512)
    n_red, n_benign = len(sets.red_team), len(sets.over_refusal)
    metrics: dict[str, float] = {}
    scores: dict[str, list[float]] = {}
    for who, texts in completions.items():
        judged = conversations[: n_red + n_benign]
        chats = [[*c, {"role": "assistant", "content": t}] for c, t in zip(judged, texts, strict=False)]
        scores[who] = reward_scores(model, tokenizer, chats, max_length)
        prefix = "" if who == "model" else "parent_"
        metrics[f"{prefix}reward_model_score_red_team"] = sum(scores[who][:n_red]) / max(n_red, 1)
        metrics[f"{prefix}reward_model_score_over_refusal"] = sum(scores[who][n_red:]) / max(n_benign, 1)
    if "parent" in completions:
        for name in ("reward_model_score_red_team", "reward_model_score_over_refusal"):
            metrics[f"{name}_delta_vs_parent"] = metrics[name] - metrics[f"parent_{name}"]
    return {
        "path": reward_model_dir,
        "model_sha256": manifest.get("model_sha256"),
        "metrics": metrics,
    }, scores


def evaluate_policy_safety(
    params: SafetyParams,
    model,
    tokenizer,
    *,
    model_sha256: str,
    parent_dir: str | Path,
    parent_sha256: str | None,
    eval_policy: str | Path = DEFAULT_POLICY,
) -> SafetyResult:
    """Generate, judge and compare with the parent: the safety metrics of a generating model (judged by the judge
    ``eval_policy`` names)."""
    from pipelines._training import load_model

    started = time.perf_counter()
    inputs = load_inputs(params, eval_policy)
    if params.max_new_tokens < inputs.min_new_tokens:
        raise PolicyViolation(
            f"params.yaml: safety.max_new_tokens: {params.max_new_tokens} is below the floor {eval_policy} sets "
            f"(safety.min_new_tokens: {inputs.min_new_tokens}): completions cut shorter stop before they show whether "
            f"the model goes on to comply; raise it to at least {inputs.min_new_tokens}, or lower the floor in a "
            "reviewed change"
        )
    sets, judge = inputs.sets, inputs.judge
    conversations = sets.conversations()
    reference = _reference(params, sets, judge)
    # How far this judge agrees with people, recorded beside the rates it counts (displayed, never decided on)
    reference["judge"]["agreement"] = judge_agreement(params, reference["judge"]["sha256"])
    # The tuned model's completions
    completions = generate_all(model, tokenizer, conversations, params)
    rates, rows = judged_rates(sets, completions, judge)
    # The parent's: reused from its recorded evaluation where it applies, generated otherwise
    recorded = signed_parent_record(params.parent_evaluation, parent_sha256)
    parent_completions = reusable_parent_completions(recorded, parent_sha256, reference)
    source = f"reused from {Path(params.parent_evaluation or '') / SAFETY_FILE}" if parent_completions else "generated"
    if parent_completions is None:
        parent_model, parent_tokenizer = load_model(parent_dir, expect_sha256=parent_sha256)
        parent_completions = generate_all(parent_model, parent_tokenizer, conversations, params)
        del parent_model
    parent_rates, parent_rows = judged_rates(sets, parent_completions, judge)
    metrics = safety_metrics(rates, parent_rates)
    # Each prompt's verdict for the model and its parent: the gate's intervals and paired tests
    evidence = safety_evidence(rows, parent_rows)
    for name, value in parent_rates.items():
        metrics.setdefault(f"parent_{name}", value)
    # The reward model's second opinion, where one is configured
    second_opinion = None
    if params.reward_model:
        second_opinion, scores = _reward_second_opinion(
            params.reward_model, conversations, {"model": completions, "parent": parent_completions}, sets
        )
        metrics.update(second_opinion["metrics"])
        for who, key in (("model", "reward_model_score"), ("parent", "parent_reward_model_score")):
            for row, score in zip(rows, scores[who], strict=False):
                row[key] = score
    for row, parent_row in zip(rows, parent_rows, strict=True):
        row["parent_completion"] = parent_row["completion"]
        row["parent_verdict"] = parent_row["verdict"]
        row["parent_partial"] = parent_row.get("partial", False)
    seconds = time.perf_counter() - started
    record = {
        "kind": "policy",
        "model_sha256": model_sha256,
        **reference,
        "parent": {"dir": str(parent_dir), "model_sha256": parent_sha256, "completions": source},
        "reward_model": second_opinion,
        "metrics": metrics,
        "items": rows,
    }
    log.info(
        "safety: harmful refusal %.2f (parent %.2f), over-refusal %.2f, sycophancy %.2f; parent %s; %.1fs",
        metrics["harmful_refusal_rate"],
        metrics["parent_harmful_refusal_rate"],
        metrics["over_refusal_rate"],
        metrics["sycophancy_rate"],
        source,
        seconds,
    )
    return SafetyResult(metrics, record, _refs(sets), seconds, evidence, inputs.instruments)


def evaluate_reward_model_safety(
    params: SafetyParams,
    reward_model,
    tokenizer,
    *,
    model_sha256: str,
    max_length: int,
    eval_policy: str | Path = DEFAULT_POLICY,
) -> SafetyResult:
    """A reward model's safety: how it ranks fixed safe and unsafe responses to the same prompts."""
    from pipelines._preference import reward_scores

    started = time.perf_counter()
    inputs = load_inputs(params, eval_policy)
    sets, judge = inputs.sets, inputs.judge
    responses = judge.reward_model_responses

    def chat(prompt, text: str) -> list[dict]:
        return [*(m.model_dump() for m in prompt), {"role": "assistant", "content": text}]

    def score(chats: list[list[dict]]) -> list[float]:
        return reward_scores(reward_model, tokenizer, chats, max_length)

    red_refusal = score([chat(i.prompt, responses.refusal) for i in sets.red_team])
    red_compliance = score([chat(i.prompt, responses.compliance) for i in sets.red_team])
    benign_refusal = score([chat(i.prompt, responses.refusal) for i in sets.over_refusal])
    benign_reference = score([chat(i.prompt, i.reference) for i in sets.over_refusal])
    fill = [{"answer": i.answer, "asserted": i.asserted} for i in sets.sycophancy]
    agree = score([chat(i.prompt, responses.agreement.format(**f)) for i, f in zip(sets.sycophancy, fill, strict=True)])
    correct = score(
        [chat(i.prompt, responses.correction.format(**f)) for i, f in zip(sets.sycophancy, fill, strict=True)]
    )
    ranked = {
        "refusal_vs_compliance": list(zip(red_refusal, red_compliance, strict=True)),
        "refusal_vs_reference": list(zip(benign_refusal, benign_reference, strict=True)),
        "agreement_vs_correction": list(zip(agree, correct, strict=True)),
    }
    metrics = reward_model_preference_rates(**ranked)
    evidence = reward_model_preference_evidence(**ranked)
    items = (
        [
            {"set": "red_team", "id": i.id, "refusal": r, "compliance": c}
            for i, r, c in zip(sets.red_team, red_refusal, red_compliance, strict=True)
        ]
        + [
            {"set": "over_refusal", "id": i.id, "refusal": r, "reference": h}
            for i, r, h in zip(sets.over_refusal, benign_refusal, benign_reference, strict=True)
        ]
        + [
            {"set": "sycophancy", "id": i.id, "agreement": a, "correction": c}
            for i, a, c in zip(sets.sycophancy, agree, correct, strict=True)
        ]
    )
    seconds = time.perf_counter() - started
    record = {
        "kind": "reward_model",
        "model_sha256": model_sha256,
        **_reference(params, sets, judge),
        "parent": None,
        "reward_model": None,
        "metrics": metrics,
        "items": items,
    }
    log.info(
        "safety (reward model): prefers refusal on %.2f of harmful, on %.2f of benign; agreement on %.2f; %.1fs",
        metrics["harmful_refusal_rate"],
        metrics["over_refusal_rate"],
        metrics["sycophancy_rate"],
        seconds,
    )
    return SafetyResult(metrics, record, _refs(sets), seconds, evidence, inputs.instruments)


def _refs(sets: SafetySets) -> list[DatasetRef]:
    """The sets by the hash of the bytes judged (never the paths hashed again)."""
    return [DatasetRef(path=f["path"], sha256=f["sha256"], records=f["records"]) for f in sets.files.values()]
