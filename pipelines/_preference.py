"""What the preference-family stages share: record shapes, the split, TRL datasets, scoring.

``prepare_preference``/``prepare_kto`` convert records with :mod:`governance.datasets`
and split them with :func:`split_key`; ``train_rm``/``train_dpo``/``train_kto``/
``train_orpo`` load the gated files as TRL datasets (:func:`load_pairs`,
:func:`load_unpaired`); the ``evaluate_*`` stages score held-out data under the
trained model and its parent (:func:`score_responses`, :func:`reward_scores`),
turn the scores into metrics with the pure functions below (and, beside each,
the per-item outcomes the evaluation gate's intervals read: ``*_evidence``), and
publish them with :func:`publish_evaluation`, exactly as ``evaluate_sft`` does.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance.errors import ConfigError, DataError, PolicyViolation
from governance.evaluation import metrics_record
from governance.gates import DatasetRef, GateDecision, publish_decision
from governance.lineage import read_manifest, verified_model_sha256, write_manifest
from governance.records import iter_records
from governance.statistics import Evidence, Groups, Outcomes, Resampled, ratio_of_sums, shares
from governance.validation.schema import normalized_hash
from pipelines._training import AdapterParams, load_model, log_evaluation, with_run_context, write_generations

log = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant")
#: Fields carried from raw to prepared records: the validation gate judges
#: annotation provenance and inter-rater agreement from them.
PROVENANCE_KEYS = ("annotator_id", "guideline_version", "ratings", "source", "license")

Messages = list[dict[str, str]]


# --- records ------------------------------------------------------------------------------------


def split_key(prompt: Messages, record_id: str, split_by: str) -> str:
    """What the train/eval split hashes: the record id, or the normalised user text of the prompt.

    Splitting by prompt keeps every record that shares a prompt on the same
    side, so the validation gate's ``data.train_eval_overlap`` rule (which uses
    the same normalisation) holds by construction.
    """
    if split_by == "id":
        return record_id
    return str(normalized_hash("\n".join(m["content"] for m in prompt if m["role"] == "user")))


# --- TRL datasets -------------------------------------------------------------------------------


def _columns(path: str | Path, columns: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for record in iter_records(path):
        missing = [c for c in columns if c not in record.data]
        if missing:
            raise DataError(f"{path}:{record.line}: field {missing[0]}: required field is missing")
        rows.append({c: record.data[c] for c in columns})
    return rows


def load_pairs(path: str | Path):
    """Gated preference pairs as a ``datasets.Dataset`` of TRL's explicit-prompt shape.

    Columns ``prompt``, ``chosen``, ``rejected`` (lists of messages); the
    provenance columns stay behind (the trainers would refuse unknown columns).
    """
    from datasets import Dataset

    return Dataset.from_list(_columns(path, ("prompt", "chosen", "rejected")))


def load_unpaired(path: str | Path):
    """Gated KTO examples as a ``datasets.Dataset`` of ``prompt``, ``completion``, ``label``."""
    from datasets import Dataset

    return Dataset.from_list(_columns(path, ("prompt", "completion", "label")))


@contextmanager
def trainer_errors(section: str) -> Iterator[None]:
    """A TRL trainer's refusal of its arguments (``ValueError``) as a one-line :class:`ConfigError`."""
    try:
        yield
    except ValueError as exc:
        raise ConfigError(f"params.yaml: {section}: {str(exc).splitlines()[0][:300]}") from None


def trl_default(config_class: type, option: str) -> Any:
    """The default TRL gives ``option`` in ``config_class`` (e.g. ``DPOConfig.beta``)."""
    return config_class.__dataclass_fields__[option].default


# --- models -------------------------------------------------------------------------------------


def load_reward_model(
    model_dir: str | Path, adapter: AdapterParams | None = None, section: str = "", *, expect_sha256: str | None = None
):
    """A sequence-classification model with one output (the reward) and its tokenizer.

    From a base model the score head is new (seeded by the caller); from a
    trained reward model it is the trained one. ``expect_sha256``: as :func:`load_model`'s.
    """
    from transformers import AutoModelForSequenceClassification

    model, tokenizer = load_model(
        model_dir,
        adapter,
        section,
        expect_sha256=expect_sha256,
        auto_class=AutoModelForSequenceClassification,
        num_labels=1,
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def recorded_beta(trained: dict[str, Any], model_dir: str | Path) -> float:
    """The β the policy was trained with, as its manifest records it (the implicit reward's scale)."""
    beta = trained.get("beta")
    if not isinstance(beta, int | float) or isinstance(beta, bool):
        raise ConfigError(f"{model_dir}/manifest.json: no beta recorded; re-run the training stage (dvc repro)")
    return float(beta)


def require_parent(trained: dict[str, Any], model_dir: str | Path, reference_dir: str | Path) -> dict[str, Any]:
    """The reference's manifest, refusing unless it holds the very model ``model_dir`` was trained from.

    The reference's hash is recomputed from its files (:func:`governance.lineage.verified_model_sha256`), never
    copied from its manifest: a params change pointing the comparison at another model, or that model's manifest
    edited to claim the parent's hash, is refused before any comparison is made. Every evaluation that compares
    with a parent (``*_vs_parent`` rules, a reference's log-probabilities) checks this first.
    """
    actual = verified_model_sha256(reference_dir)
    expected = trained.get("parent", {}).get("model_sha256")
    if actual != expected:
        raise PolicyViolation(
            f"{reference_dir}: holds model {actual[:12]}… but {model_dir} was trained "
            f"from {str(expected)[:12]}…; re-run the training stage (dvc repro)"
        )
    return read_manifest(reference_dir)


# --- scoring ------------------------------------------------------------------------------------


def encode_response(tokenizer, prompt: Messages, response: Messages, max_length: int) -> tuple[list[int], int]:
    """Token ids of prompt + response under the chat template, and where the response starts.

    The prompt and the response text are tokenized separately (as TRL's
    preference trainers do), so the boundary never moves with a BPE merge;
    the sequence keeps its start when longer than ``max_length``.
    """
    prompt_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full_text = tokenizer.apply_chat_template(prompt + response, tokenize=False)
    if not full_text.startswith(prompt_text):
        raise ConfigError("the tokenizer's chat template does not render a prompt as a prefix of its conversation")
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(full_text[len(prompt_text) :], add_special_tokens=False)["input_ids"]
    ids = (prompt_ids + response_ids)[:max_length]
    return ids, min(len(prompt_ids), len(ids))


@dataclass(frozen=True)
class ResponseScore:
    """One response scored under a policy and its reference (the parent model).

    ``policy_logp`` and ``reference_logp`` are summed over the response
    tokens; ``kl`` is the summed per-token KL(policy ‖ reference) of the
    next-token distributions along the response.
    """

    policy_logp: float
    reference_logp: float
    tokens: int
    kl: float


def score_responses(
    policy, reference, tokenizer, items: Sequence[tuple[Messages, Messages]], max_length: int
) -> list[ResponseScore | None]:
    """Score ``(prompt, response)`` items; None where truncation left no response token."""
    import torch

    policy.eval()
    reference.eval()
    scores: list[ResponseScore | None] = []
    with torch.no_grad():
        for prompt, response in items:
            ids, start = encode_response(tokenizer, prompt, response, max_length)
            if start >= len(ids) or start < 1:
                scores.append(None)
                continue
            input_ids = torch.tensor([ids], device=policy.device)
            targets = input_ids[0, start:]
            logps = []
            for model in (policy, reference):
                logits = model(input_ids=input_ids.to(model.device)).logits[0, start - 1 : -1].float()
                logps.append(logits.log_softmax(-1).to(targets.device))
            policy_logps, reference_logps = logps
            kl = (policy_logps.exp() * (policy_logps - reference_logps)).sum(-1)
            scores.append(
                ResponseScore(
                    policy_logp=float(policy_logps.gather(-1, targets[:, None]).sum()),
                    reference_logp=float(reference_logps.gather(-1, targets[:, None]).sum()),
                    tokens=len(ids) - start,
                    kl=float(kl.sum()),
                )
            )
    return scores


def reward_scores(model, tokenizer, conversations: Sequence[Messages], max_length: int) -> list[float]:
    """The reward model's scalar score of each chat-templated conversation (kept to ``max_length``)."""
    import torch

    model.eval()
    rewards = []
    with torch.no_grad():
        for messages in conversations:
            text = tokenizer.apply_chat_template(messages, tokenize=False)
            ids = tokenizer(text, add_special_tokens=False)["input_ids"][:max_length]
            out = model(input_ids=torch.tensor([ids], device=model.device))
            rewards.append(float(out.logits[0, 0]))
    return rewards


def generate(model, tokenizer, prompts: Sequence[Messages], max_new_tokens: int) -> list[str]:
    """Greedy completions of conversational prompts, one left-padded batch (deterministic, so runs compare)."""
    import torch

    if not prompts:
        return []
    model.eval()
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    encoded = {k: v.to(model.device) for k, v in encoded.items()}
    with torch.no_grad():
        generated = model.generate(
            **encoded, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    start = encoded["input_ids"].shape[1]
    return [tokenizer.decode(row[start:], skip_special_tokens=True) for row in generated]


# --- metrics (pure) -----------------------------------------------------------------------------


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def scored_pairs(
    chosen: Sequence[ResponseScore | None], rejected: Sequence[ResponseScore | None]
) -> tuple[list[ResponseScore], list[ResponseScore]]:
    """Keep the pairs where both responses kept at least one token."""
    kept = [(c, r) for c, r in zip(chosen, rejected, strict=True) if c is not None and r is not None]
    return [c for c, _ in kept], [r for _, r in kept]


def implicit_rewards(scores: Sequence[ResponseScore], beta: float) -> list[float]:
    """DPO's implicit reward of each response: β · (log π(y|x) − log π_ref(y|x))."""
    return [beta * (s.policy_logp - s.reference_logp) for s in scores]


def implicit_reward_metrics(chosen: Sequence[ResponseScore], rejected: Sequence[ResponseScore], beta: float) -> dict:
    """Accuracy and mean margin of the implicit reward on held-out pairs (DPO's own eval metrics)."""
    reward_c, reward_r = implicit_rewards(chosen, beta), implicit_rewards(rejected, beta)
    return {
        "reward_accuracy": _mean([float(c > r) for c, r in zip(reward_c, reward_r, strict=True)]),
        "reward_margin": _mean([c - r for c, r in zip(reward_c, reward_r, strict=True)]),
        "chosen_reward": _mean(reward_c),
        "rejected_reward": _mean(reward_r),
    }


def log_odds(logp_sum: float, tokens: int) -> float:
    """ORPO's log odds of a response: log(p / (1 − p)) with p the per-token mean probability."""
    mean = min(logp_sum / tokens, -1e-6)  # p < 1, or the odds are infinite
    return mean - math.log1p(-math.exp(mean))


def log_odds_metrics(chosen: Sequence[ResponseScore], rejected: Sequence[ResponseScore]) -> dict:
    """ORPO's log-odds ratio (chosen over rejected) under the policy and under its parent."""
    out = {}
    for prefix, attr in (("", "policy_logp"), ("parent_", "reference_logp")):
        ratios = [
            log_odds(getattr(c, attr), c.tokens) - log_odds(getattr(r, attr), r.tokens)
            for c, r in zip(chosen, rejected, strict=True)
        ]
        out[f"{prefix}log_odds_accuracy"] = _mean([float(x > 0) for x in ratios])
        out[f"{prefix}mean_log_odds_ratio"] = _mean(ratios)
    out["log_odds_ratio_gain"] = out["mean_log_odds_ratio"] - out["parent_mean_log_odds_ratio"]
    return out


def drift_metrics(scores: Sequence[ResponseScore]) -> dict:
    """How far the policy moved from its parent on held-out responses, per token.

    ``kl_to_parent``: mean per-token KL(policy ‖ parent) along the responses;
    ``logp_change_per_token``: mean change of the responses' log-likelihood
    (negative: the policy finds the held-out good answers less likely).
    """
    tokens = sum(s.tokens for s in scores)
    return {
        "kl_to_parent": sum(s.kl for s in scores) / tokens if tokens else float("nan"),
        "logp_change_per_token": sum(s.policy_logp - s.reference_logp for s in scores) / tokens
        if tokens
        else float("nan"),
    }


def rank_auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(a random positive scores above a random negative), ties counting half."""
    if not positives or not negatives:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def separation_metrics(scores: Sequence[ResponseScore], labels: Sequence[bool], beta: float) -> dict:
    """KTO: implicit rewards of desirable vs undesirable held-out completions."""
    rewards = implicit_rewards(scores, beta)
    desirable = [r for r, label in zip(rewards, labels, strict=True) if label]
    undesirable = [r for r, label in zip(rewards, labels, strict=True) if not label]
    return {
        "desirable_reward": _mean(desirable),
        "undesirable_reward": _mean(undesirable),
        "reward_separation": _mean(desirable) - _mean(undesirable),
        "reward_auc": rank_auc(desirable, undesirable),
    }


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson correlation; 0 when either side is constant."""
    mx, my = _mean(xs), _mean(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else 0.0


def reward_model_metrics(
    chosen: Sequence[float], rejected: Sequence[float], chosen_chars: Sequence[int], rejected_chars: Sequence[int]
) -> dict:
    """Pairwise accuracy and margin of a reward model, with its length bias as counter-metric."""
    return {
        "accuracy": _mean([float(c > r) for c, r in zip(chosen, rejected, strict=True)]),
        "mean_margin": _mean([c - r for c, r in zip(chosen, rejected, strict=True)]),
        "reward_length_correlation": pearson([*chosen, *rejected], [*chosen_chars, *rejected_chars]),
        "longer_is_chosen_rate": _mean([float(c > r) for c, r in zip(chosen_chars, rejected_chars, strict=True)]),
    }


def verbosity_metrics(policy_texts: Sequence[str], parent_texts: Sequence[str]) -> dict:
    """Mean length of greedy generations against the parent's on the same prompts (reward hacking by length)."""
    policy_chars = _mean([len(t) for t in policy_texts])
    parent_chars = _mean([len(t) for t in parent_texts])
    return {
        "mean_generation_chars": policy_chars,
        "parent_mean_generation_chars": parent_chars,
        "generation_length_ratio_vs_parent": policy_chars / max(parent_chars, 1.0),
        "empty_generation_rate": _mean([float(not t.strip()) for t in policy_texts]),
    }


def response_chars(messages: Messages) -> int:
    return sum(len(m["content"]) for m in messages)


# --- evidence (pure): the per-item outcomes behind each gated metric -----------------------------


def implicit_reward_evidence(
    chosen: Sequence[ResponseScore], rejected: Sequence[ResponseScore], beta: float
) -> dict[str, Evidence]:
    """Per pair: whether the chosen response's implicit reward is higher, and the margin."""
    reward_c, reward_r = implicit_rewards(chosen, beta), implicit_rewards(rejected, beta)
    pairs = list(zip(reward_c, reward_r, strict=True))
    return {
        "reward_accuracy": shares([c > r for c, r in pairs], "pairs"),
        "reward_margin": Outcomes(tuple(c - r for c, r in pairs), "pairs"),
    }


def log_odds_evidence(chosen: Sequence[ResponseScore], rejected: Sequence[ResponseScore]) -> dict[str, Evidence]:
    """Per pair: whether the policy's log-odds ratio favours the chosen response, and its gain over the parent's."""
    policy, parent = [], []
    for c, r in zip(chosen, rejected, strict=True):
        policy.append(log_odds(c.policy_logp, c.tokens) - log_odds(r.policy_logp, r.tokens))
        parent.append(log_odds(c.reference_logp, c.tokens) - log_odds(r.reference_logp, r.tokens))
    return {
        "log_odds_accuracy": shares([x > 0 for x in policy], "pairs"),
        "log_odds_ratio_gain": Outcomes(tuple(a - b for a, b in zip(policy, parent, strict=True)), "pairs"),
    }


def drift_evidence(scores: Sequence[ResponseScore]) -> dict[str, Evidence]:
    """Per response: its summed KL and log-likelihood change, over its tokens (the per-token metrics are ratios)."""
    tokens = [s.tokens for s in scores]
    return {
        "kl_to_parent": ratio_of_sums([s.kl for s in scores], tokens, "responses"),
        "logp_change_per_token": ratio_of_sums([s.policy_logp - s.reference_logp for s in scores], tokens, "responses"),
    }


def length_ratio(policy_lengths, parent_lengths) -> float:
    """Mean length of the policy's generations over the parent's (the parent's mean floored at 1)."""
    import numpy as np

    return float(np.mean(policy_lengths)) / max(float(np.mean(parent_lengths)), 1.0)


def verbosity_evidence(policy_texts: Sequence[str], parent_texts: Sequence[str]) -> dict[str, Evidence]:
    """Per prompt: both models' generation lengths, paired (the ratio of their means is the metric)."""
    lengths = (tuple(float(len(t)) for t in policy_texts), tuple(float(len(t)) for t in parent_texts))
    return {
        "generation_length_ratio_vs_parent": Resampled(lengths, length_ratio, True, "prompts"),
        "empty_generation_rate": shares([not t.strip() for t in policy_texts], "prompts"),
    }


def auc(positives, negatives) -> float:
    """:func:`rank_auc` on arrays: P(a random positive scores above a random negative), ties counting half."""
    import numpy as np

    positives, negatives = np.asarray(positives, dtype=float), np.asarray(negatives, dtype=float)
    if not positives.size or not negatives.size:
        return float("nan")
    above = (positives[:, None] > negatives[None, :]).mean()
    tied = (positives[:, None] == negatives[None, :]).mean()
    return float(above + 0.5 * tied)


def separation_evidence(scores: Sequence[ResponseScore], labels: Sequence[bool], beta: float) -> dict[str, Evidence]:
    """KTO: the implicit rewards of desirable and of undesirable completions, two independent groups."""
    rewards = implicit_rewards(scores, beta)
    desirable = tuple(r for r, label in zip(rewards, labels, strict=True) if label)
    undesirable = tuple(r for r, label in zip(rewards, labels, strict=True) if not label)
    return {
        "reward_separation": Groups(desirable, undesirable, "completions"),
        "reward_auc": Resampled((desirable, undesirable), auc, False, "completions"),
    }


def length_correlation(rewards, lengths) -> float:
    """:func:`pearson` of rewards and lengths, on the arrays the bootstrap resamples."""
    return pearson([float(x) for x in rewards], [float(x) for x in lengths])


def reward_model_evidence(
    chosen: Sequence[float], rejected: Sequence[float], chosen_chars: Sequence[int], rejected_chars: Sequence[int]
) -> dict[str, Evidence]:
    """Per held-out pair: ranked right, and the margin; per response: its reward and length (the correlation)."""
    pairs = list(zip(chosen, rejected, strict=True))
    rewards = tuple(float(x) for x in [*chosen, *rejected])
    lengths = tuple(float(x) for x in [*chosen_chars, *rejected_chars])
    return {
        "accuracy": shares([c > r for c, r in pairs], "pairs"),
        "mean_margin": Outcomes(tuple(c - r for c, r in pairs), "pairs"),
        "reward_length_correlation": Resampled((rewards, lengths), length_correlation, True, "responses"),
    }


# --- publishing ---------------------------------------------------------------------------------


def publish_evaluation(
    *,
    stage: str,
    method: str,
    out_dir: str | Path,
    metrics: dict[str, float],
    decision: GateDecision,
    trained: dict[str, Any],
    params: dict[str, Any],
    eval_file: DatasetRef,
    generations: list[dict[str, str]] | None = None,
    bound: dict[str, str] | None = None,
) -> None:
    """Write metrics.json (with each rule's n, interval, p-value and verdict), decision.json, manifest.json
    (and generations.json), and log them to MLflow.

    ``bound`` is evidence the decision's signed event binds besides the model (the bytes of the ``safety.json``
    the stage wrote, as ``SafetyResult.write`` returns it).

    As ``evaluate_sft``: the stage's own MLflow run gets the metrics and the
    files; the training run gets the metrics as ``heldout.*`` and the files.
    """
    out_dir = Path(out_dir)
    trained = with_run_context(trained)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = metrics_record(metrics, decision.details.get("results") or [])
    (out_dir / "metrics.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    bound = dict(bound or {})
    if generations is not None:
        bound |= write_generations(out_dir, generations)
    # A signed eval_decision event for this model, then the file: register believes it only through the event
    evidence = {**bound, "model_sha256": trained["model_sha256"]}
    publish_decision(decision, out_dir / "decision.json", evidence=evidence)
    write_manifest(
        out_dir,
        {
            "stage": stage,
            "model_sha256": trained["model_sha256"],
            "eval_file": {"path": eval_file.path, "sha256": eval_file.sha256},  # the bytes evaluated, one read
            "decision_passed": decision.passed,
            "params": params,
        },
    )
    log_evaluation(stage=stage, method=method, out_dir=out_dir, metrics=metrics, trained=trained)
    for line in decision.summary_lines():
        log.warning("%s", line)
