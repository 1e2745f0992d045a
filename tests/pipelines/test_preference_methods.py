"""Preference-family stages (reward model, DPO, KTO, ORPO) on a tiny model, end to end.

Real TRL trainers, a real tiny Qwen2 built by the base_model stage and tuned by
train_sft, real gate decisions, a real MLflow store and audit trail. The models
are trained once per module (a few steps each) and checked by many tests; the
held-out metrics are recomputed here independently of pipelines/_preference.py.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml
from corpus_support import CORPUS_PARAMS, gate_corpus, write_corpus
from e2e_support import commit_reviewed
from safety_support import gate_safety_sets, lower_eval_budgets, publish_passing_gates, safety_params

from governance.approvals.state import version_state
from governance.evaluation import check_metrics, load_eval_policy
from governance.gates import Violation, dataset_ref, decide, publish_decision, read_decision
from governance.lineage import read_manifest, sha256_file
from governance.records import read_records
from governance.statistics import Groups, Outcomes, ratio_of_sums, shares
from pipelines import (
    base_model,
    evaluate_dpo,
    evaluate_kto,
    evaluate_orpo,
    evaluate_rm,
    evaluate_sft,
    prepare_kto,
    prepare_preference,
    prepare_sft,
    register,
    train_dpo,
    train_kto,
    train_orpo,
    train_rm,
    train_sft,
)
from pipelines._preference import (
    ResponseScore,
    implicit_reward_metrics,
    log_odds,
    rank_auc,
    scored_pairs,
    separation_metrics,
    split_key,
)
from pipelines._training import with_run_context

REPO = Path(__file__).resolve().parents[2]
METHODS = ("rm", "dpo", "kto", "orpo")
CAUSAL = ("dpo", "kto", "orpo")
TRAIN = {"rm": train_rm, "dpo": train_dpo, "kto": train_kto, "orpo": train_orpo}
EVALUATE = {"rm": evaluate_rm, "dpo": evaluate_dpo, "kto": evaluate_kto, "orpo": evaluate_orpo}
DATASET = {"rm": "preference", "dpo": "preference", "kto": "kto", "orpo": "preference"}

# --------------------------------------------------------------------------- fixture data

TOPICS = [
    ("reset my password", "Open Settings, choose Security, then Reset password and follow the link we e-mail you."),
    ("order a new card", "Open Cards, choose Replace card and confirm your address; it arrives within five days."),
    ("close my account", "Move your balance out first, then choose Close account under Settings."),
    ("update my address", "Open Profile, edit Address and confirm with the code we text you."),
    ("dispute a charge", "Open the payment, choose Dispute and tell us what went wrong."),
    ("freeze my card", "Open Cards and switch on Freeze; you can switch it off again at any time."),
    ("change my PIN", "Open Cards, choose Change PIN and enter the new PIN twice."),
    ("download a statement", "Open Statements, pick the month and choose Download PDF."),
]
PHRASINGS = [
    "How do I {t}?",
    "Can you tell me how to {t}?",
    "I need to {t}.",
    "Please explain how to {t}.",
    "What is the way to {t}?",
]
RUDE = ["No.", "Not my problem.", "Ask someone else.", "Figure it out yourself."]


def _items() -> list[tuple[str, str, str]]:
    """(question, good answer, rude answer) for 40 distinct prompts."""
    return [
        (phrasing.format(t=topic), answer, RUDE[i % len(RUDE)])
        for i, (phrasing, (topic, answer)) in enumerate((p, t) for p in PHRASINGS for t in TOPICS)
    ]


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _raw_data(root: Path) -> None:
    items = _items()
    _write_jsonl(
        root / "raw/sft.jsonl",
        [{"id": f"s{i}", "messages": _user(q) + _assistant(good)} for i, (q, good, _) in enumerate(items)],
    )
    _write_jsonl(
        root / "raw/preference.jsonl",
        [
            {
                "id": f"p{i}",
                "prompt": _user(q),
                "chosen": _assistant(good),
                "rejected": _assistant(bad),
                "annotator_id": "ann-1",
                "guideline_version": "v1",
                "ratings": [{"annotator_id": "ann-1", "chosen_score": 5, "rejected_score": 1}],
            }
            for i, (q, good, bad) in enumerate(items)
        ],
    )
    _write_jsonl(
        root / "raw/kto.jsonl",
        [
            {
                "id": f"k{i}",
                "prompt": _user(q),
                "completion": _assistant(good if i % 2 == 0 else bad),
                "label": i % 2 == 0,
                "annotator_id": "ann-1",
                "guideline_version": "v1",
                "ratings": [{"annotator_id": "ann-1", "label": i % 2 == 0}],
            }
            for i, (q, good, bad) in enumerate(items)
        ],
    )
    lines = [q for q, _, _ in items] + [good for _, good, _ in items] + RUDE + ["You are a helpful assistant."]
    write_corpus(root, lines * 3)


# --------------------------------------------------------------------------- params

FAST_TRL = {
    "max_steps": 3,
    "per_device_train_batch_size": 4,
    "learning_rate": 0.01,  # large, so three steps visibly move a tiny model
    "warmup_steps": 0,
    "logging_steps": 1,
    "report_to": [],
}


def _sections() -> dict:
    """The shipped params.yaml sections, shrunk to fixture data and a few steps."""
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    names = ["project", "base_model", "prepare_sft", "train_sft", "evaluate_sft", "register_sft"]
    for method in METHODS:
        names += [f"train_{method}", f"evaluate_{method}", f"register_{method}"]
    names += ["prepare_preference", "prepare_kto"]
    sections = {name: json.loads(json.dumps(shipped[name])) for name in names}
    sections["project"] = "preftest"
    sections["base_model"].update(
        **CORPUS_PARAMS,
        vocab_size=600,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
    )
    for dataset in ("sft", "preference", "kto"):
        sections[f"prepare_{dataset}"].update(input=f"raw/{dataset}.jsonl", eval_fraction=0.25)
    sections["train_sft"]["train_file"] = "data/prepared/sft/train.jsonl"
    sections["train_sft"]["eval_file"] = sections["evaluate_sft"]["eval_file"] = "data/prepared/sft/eval.jsonl"
    sections["train_sft"]["trl"].update(FAST_TRL)
    for name in [n for n in sections if n.startswith("train_")]:
        sections[name]["launch"]["config_file"] = str(REPO / sections[name]["launch"]["config_file"])
    sections["evaluate_sft"]["max_new_tokens"] = 4
    for method in METHODS:
        dataset = DATASET[method]
        train, evaluate = sections[f"train_{method}"], sections[f"evaluate_{method}"]
        train["train_file"] = f"data/prepared/{dataset}/train.jsonl"
        train["eval_file"] = evaluate["eval_file"] = f"data/prepared/{dataset}/eval.jsonl"
        train["trl"].update(FAST_TRL)
        if method in CAUSAL:
            evaluate.update(generation_prompts=2, max_new_tokens=8)
        # Policies reuse the SFT parent's recorded safety completions; no reward-model second opinion (kept lean)
        evaluate["safety"] = safety_params(parent_evaluation="artifacts/evaluate_sft" if method in CAUSAL else None)
    sections["evaluate_sft"]["safety"] = safety_params()
    return sections


def _write_params(root: Path, **changes: dict) -> dict:
    sections = _sections()
    for section, values in changes.items():
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(sections[section].get(key), dict):
                sections[section][key].update(value)
            else:
                sections[section][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(sections, sort_keys=False))
    return sections


# --------------------------------------------------------------------------- the workspace


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Base model, SFT model (registered), prepared and gated preference/KTO data, one MLflow store."""
    root = tmp_path_factory.mktemp("preference")
    shutil.copytree(REPO / "policies", root / "policies")
    lower_eval_budgets(root / "policies")  # evaluated on a few prompts and tokens, to stay fast
    commit_reviewed(root)  # the policies decide only as the reviewed version
    shutil.copy(REPO / "requirements.lock", root / "requirements.lock")
    _raw_data(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("GOVERN_AUDIT_URL", f"sqlite:///{root / 'audit.db'}")
        mp.setenv("GOVERN_USER", "trainer-bot")
        _write_params(root)
        gate_corpus()
        for stage in (base_model, prepare_sft, prepare_preference, prepare_kto):
            assert stage.main([]) == 0
        for dataset in ("sft", "preference", "kto"):
            publish_passing_gates(dataset)
        gate_safety_sets(root)
        assert train_sft.main([]) == 0
        assert evaluate_sft.main([]) == 0
        assert register.main(["sft"]) == 0
        yield root


@pytest.fixture
def ws(workspace, monkeypatch):
    """The workspace as cwd, its MLflow store and trail in force, params reset."""
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workspace / 'mlflow.db'}")
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{workspace / 'audit.db'}")
    monkeypatch.setenv("GOVERN_USER", "trainer-bot")
    _write_params(workspace)
    return workspace


@pytest.fixture(scope="module")
def trained(workspace):
    """Train and evaluate each method once (lazily), in the module's workspace and store."""
    done: set[str] = set()

    def get(method: str) -> Path:
        if method not in done:
            with pytest.MonkeyPatch.context() as mp:
                mp.chdir(workspace)
                mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workspace / 'mlflow.db'}")
                mp.setenv("GOVERN_AUDIT_URL", f"sqlite:///{workspace / 'audit.db'}")
                mp.setenv("GOVERN_USER", "trainer-bot")
                _write_params(workspace)
                assert TRAIN[method].main([]) == 0
                assert EVALUATE[method].main([]) == 0
            done.add(method)
        return workspace

    return get


def _tensors(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(model_dir / "model.safetensors")


def _error_line(capsys) -> str:
    """The stage's one-line error (the last line of stderr; progress bars may precede it)."""
    return capsys.readouterr().err.strip().splitlines()[-1]


# --------------------------------------------------------------------------- independent scoring


def _score(policy, parent, tokenizer, prompt: list[dict], response: list[dict]) -> dict:
    """Sum log-probs of a response under policy and parent, and the summed per-token KL, from scratch."""
    import torch

    prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=False)
    full_ids = tokenizer.apply_chat_template(prompt + response, tokenize=True, return_dict=False)
    assert full_ids[: len(prompt_ids)] == prompt_ids
    ids = torch.tensor([full_ids])
    out = {"tokens": len(full_ids) - len(prompt_ids)}
    dists = {}
    with torch.no_grad():
        for name, model in (("policy", policy), ("parent", parent)):
            logps = model(input_ids=ids).logits[0, :-1].float().log_softmax(-1)[len(prompt_ids) - 1 :]
            dists[name] = logps
            out[name] = float(logps.gather(-1, ids[0, len(prompt_ids) :, None]).sum())
    out["kl"] = float((dists["policy"].exp() * (dists["policy"] - dists["parent"])).sum())
    return out


def _causal_pair(root: Path, method: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    policy = AutoModelForCausalLM.from_pretrained(root / f"artifacts/train_{method}").eval()
    parent = AutoModelForCausalLM.from_pretrained(root / "artifacts/train_sft").eval()
    return policy, parent, AutoTokenizer.from_pretrained(root / f"artifacts/train_{method}")


def _independent_metrics(root: Path, method: str) -> dict[str, float]:
    """The primary held-out metrics of a method, recomputed without pipelines/_preference.py."""
    eval_rows = [r.data for r in read_records(root / f"data/prepared/{DATASET[method]}/eval.jsonl")]
    if method == "rm":
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(root / "artifacts/train_rm").eval()
        tokenizer = AutoTokenizer.from_pretrained(root / "artifacts/train_rm")

        def reward(messages):
            ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)
            with torch.no_grad():
                return float(model(input_ids=torch.tensor([ids])).logits[0, 0])

        margins = [reward(r["prompt"] + r["chosen"]) - reward(r["prompt"] + r["rejected"]) for r in eval_rows]
        return {"accuracy": sum(m > 0 for m in margins) / len(margins), "mean_margin": sum(margins) / len(margins)}
    policy, parent, tokenizer = _causal_pair(root, method)
    beta = read_manifest(root / f"artifacts/train_{method}")["beta"]
    if method == "kto":
        scores = [_score(policy, parent, tokenizer, r["prompt"], r["completion"]) for r in eval_rows]
        rewards = [beta * (s["policy"] - s["parent"]) for s in scores]
        good = [x for x, r in zip(rewards, eval_rows, strict=True) if r["label"]]
        bad = [x for x, r in zip(rewards, eval_rows, strict=True) if not r["label"]]
        wins = sum((g > b) + 0.5 * (g == b) for g in good for b in bad)
        return {
            "reward_separation": sum(good) / len(good) - sum(bad) / len(bad),
            "reward_auc": wins / (len(good) * len(bad)),
            "kl_to_parent": sum(s["kl"] for s, r in zip(scores, eval_rows, strict=True) if r["label"])
            / sum(s["tokens"] for s, r in zip(scores, eval_rows, strict=True) if r["label"]),
        }
    chosen = [_score(policy, parent, tokenizer, r["prompt"], r["chosen"]) for r in eval_rows]
    rejected = [_score(policy, parent, tokenizer, r["prompt"], r["rejected"]) for r in eval_rows]
    kl = sum(c["kl"] for c in chosen) / sum(c["tokens"] for c in chosen)
    if method == "dpo":
        margins = [
            beta * ((c["policy"] - c["parent"]) - (r["policy"] - r["parent"]))
            for c, r in zip(chosen, rejected, strict=True)
        ]
        return {
            "reward_accuracy": sum(m > 0 for m in margins) / len(margins),
            "reward_margin": sum(margins) / len(margins),
            "kl_to_parent": kl,
        }

    def odds(score, key):
        mean = score[key] / score["tokens"]
        return mean - math.log(1 - math.exp(mean))

    ratios = [odds(c, "policy") - odds(r, "policy") for c, r in zip(chosen, rejected, strict=True)]
    parent_ratios = [odds(c, "parent") - odds(r, "parent") for c, r in zip(chosen, rejected, strict=True)]
    return {
        "log_odds_accuracy": sum(x > 0 for x in ratios) / len(ratios),
        "mean_log_odds_ratio": sum(ratios) / len(ratios),
        "log_odds_ratio_gain": (sum(ratios) - sum(parent_ratios)) / len(ratios),
        "kl_to_parent": kl,
    }


# --------------------------------------------------------------------------- training and evaluation


@pytest.mark.parametrize("method", METHODS)
def test_trained_model_differs_from_its_parent_and_records_lineage(ws, trained, method):
    trained(method)
    parent_dir = ws / ("artifacts/base_model" if method == "rm" else "artifacts/train_sft")
    out = ws / f"artifacts/train_{method}"
    model, parent = _tensors(out), _tensors(parent_dir)
    shared = sorted(set(model) & set(parent))
    assert shared, "the trained model should keep the parent's backbone weights (by name)"
    assert any(not model[k].equal(parent[k]) for k in shared), "training left every weight unchanged"
    assert not any("lora_" in k for k in model), "adapters must be merged into the saved model"
    manifest = read_manifest(out)
    assert manifest["stage"] == f"train_{method}" and manifest["method"] == method
    assert manifest["parent"]["model_sha256"] == read_manifest(parent_dir)["model_sha256"]
    assert manifest["parent"]["stage"] == ("base_model" if method == "rm" else "train_sft")
    assert [(g["stage"], g["passed"]) for g in manifest["gates"]] == [
        (f"pii_scan_{DATASET[method]}", True),
        (f"validate_{DATASET[method]}", True),
    ]
    assert "run_id" not in manifest  # run-dependent facts live in the MLflow run, found by model hash
    run = mlflow.MlflowClient().get_run(with_run_context(manifest)["run_id"])
    assert run.data.tags["stage"] == f"train_{method}"
    assert run.data.tags["lineage.parent_model_sha256"] == manifest["parent"]["model_sha256"]
    assert run.data.tags["lineage.model_sha256"] == manifest["model_sha256"]
    assert run.data.params["pipeline.trl.max_steps"] == "3"


@pytest.mark.parametrize("method", METHODS)
def test_recorded_metrics_are_computed_from_the_trained_model(ws, trained, method):
    trained(method)
    out = ws / f"artifacts/evaluate_{method}"
    metrics = json.loads((out / "metrics.json").read_text())
    rules = metrics.pop("rules")  # each rule's n, interval, p-value and verdict, beside the metrics
    independent = _independent_metrics(ws, method)
    for name, value in independent.items():
        assert metrics[name] == pytest.approx(value, rel=1e-3, abs=1e-5), name
    # Not the parent's numbers: a policy scored against itself has zero margin and zero drift
    if method == "rm":
        assert metrics["mean_margin"] != 0
    else:
        assert metrics["kl_to_parent"] > 0
        assert metrics["generation_length_ratio_vs_parent"] > 0
    # The evaluation is bound to this model and its training run, and both runs hold the numbers
    model_manifest, eval_manifest = read_manifest(ws / f"artifacts/train_{method}"), read_manifest(out)
    assert eval_manifest["model_sha256"] == model_manifest["model_sha256"]
    assert "training_run_id" not in eval_manifest
    model_manifest = with_run_context(model_manifest)
    decision = read_decision(out / "decision.json")
    assert decision.gate == "eval" and decision.details["method"] == method
    assert decision.details["metrics"] == metrics
    assert set(rules) == {r["rule_id"] for r in decision.details["results"]}
    assert all(rules[r["rule_id"]]["verdict"] == r["status"] for r in decision.details["results"])
    client = mlflow.MlflowClient()
    training = client.get_run(model_manifest["run_id"]).data.metrics
    assert {k: training[f"heldout.{k}"] for k in metrics} == pytest.approx(metrics)
    [eval_run] = client.search_runs(
        [client.get_experiment_by_name("preftest").experiment_id],
        filter_string=f"tags.stage = 'evaluate_{method}'",
    )
    assert eval_run.data.metrics == pytest.approx(metrics)


@pytest.mark.parametrize("method", METHODS)
def test_registration_names_the_method_and_resolves_the_parent_version(ws, trained, method):
    trained(method)
    assert register.main([method]) == 0
    registration = json.loads((ws / f"artifacts/register_{method}/registration.json").read_text())
    assert registration["name"] == f"preftest-{method}"
    version = mlflow.MlflowClient().get_model_version(registration["name"], registration["version"])
    expected_parent = "builtin:tiny" if method == "rm" else "preftest-sft v1"
    assert version.tags["lineage.parent_model"] == expected_parent
    passed = read_decision(ws / f"artifacts/evaluate_{method}/decision.json").passed
    assert version.tags["governance.eval_status"] == ("passed" if passed else "eval_failed")
    assert version.tags["lineage.model_sha256"] == read_manifest(ws / f"artifacts/train_{method}")["model_sha256"]


def test_attack_a_method_in_params_other_than_the_one_trained_is_refused(ws, trained, capsys):
    """G4: `-S register_dpo.method=sft` registers the DPO policy as `<project>-sft`, under SFT's lowest approval tier
    (`min_tier_by_method`), as if it were the SFT model. The method is the one the signed evaluation judged."""
    trained("dpo")
    out = "artifacts/register_dpo_as_sft"
    _write_params(ws, register_dpo={"method": "sft", "out_dir": out})
    before = {(v.name, v.version) for v in mlflow.MlflowClient().search_model_versions()}
    assert register.main(["dpo"]) == 1
    assert _error_line(capsys).endswith(
        "PolicyViolation: params.yaml: register_dpo.method: sft, but the model was trained as dpo and its evaluation "
        "(evaluate_dpo) judged it under the dpo rules; the registered name and the approval tier follow the method "
        "trained: set method to the one trained"
    )
    assert not (ws / out).exists()
    assert {(v.name, v.version) for v in mlflow.MlflowClient().search_model_versions()} == before


def test_denied_evaluation_exits_zero_and_registers_as_eval_failed(ws, trained):
    trained("dpo")
    policy = yaml.safe_load((ws / "policies/eval.yaml").read_text())
    [rule] = [r for r in policy["methods"]["dpo"] if r["id"] == "eval.dpo.reward_accuracy"]
    # Prove 99% reward accuracy or be denied: no tiny model can, decided or undecided
    rule.update(min=0.99, on_insufficient="deny")
    (ws / "policies/eval_strict.yaml").write_text(yaml.safe_dump(policy))
    commit_reviewed(ws, "policies/eval_strict.yaml")  # a stricter policy, reviewed: the gate decides under it
    _write_params(
        ws,
        evaluate_dpo={"policy": "policies/eval_strict.yaml", "out_dir": "artifacts/evaluate_dpo_strict"},
        register_dpo={"eval_dir": "artifacts/evaluate_dpo_strict", "out_dir": "artifacts/register_dpo_strict"},
    )
    assert evaluate_dpo.main([]) == 0
    decision = read_decision(ws / "artifacts/evaluate_dpo_strict/decision.json")
    accuracy = json.loads((ws / "artifacts/evaluate_dpo_strict/metrics.json").read_text())["reward_accuracy"]
    assert not decision.passed
    [row] = [r for r in decision.details["results"] if r["rule_id"] == "eval.dpo.reward_accuracy"]
    assert row["outcome"] == "deny"
    [message] = [v.message for v in decision.violations if v.rule_id == "eval.dpo.reward_accuracy"]
    assert message == row["message"] and f"reward_accuracy {accuracy:.4g} (95% Wilson CI " in message
    assert "min 0.99" in message
    assert register.main(["dpo"]) == 0
    registration = json.loads((ws / "artifacts/register_dpo_strict/registration.json").read_text())
    version = mlflow.MlflowClient().get_model_version("preftest-dpo", registration["version"])
    assert version.tags["governance.eval_status"] == "eval_failed"
    # The trail, not the tags, decides: the denial blocks the version whether it was new or the same
    # weights were registered before with a passing evaluation (the lineage key leaves the evaluation
    # out, and a version's lineage tags are its first registration's)
    assert version_state("preftest-dpo", registration["version"]).eval_status == "eval_failed"
    if registration["created"]:
        assert version.tags["lineage.eval_decision"] == "denied"


def test_the_evaluation_decision_binds_the_policy_and_judge_bytes_it_was_judged_under(ws):
    """The eval gate's decision carries the hash of the policy bytes it parsed and names the judge and sources file
    it read (instruments); its signed event binds each as reviewed, so a swap between read and binding is refused."""
    decision = json.loads((ws / "artifacts/evaluate_sft/decision.json").read_text())
    assert decision["policy_sha256"] == sha256_file(ws / "policies/eval.yaml")
    assert [(i["path"], i["sha256"]) for i in decision["instruments"]] == [
        (f, sha256_file(ws / f)) for f in ("data/safety/judge.yaml", "data/safety/sources.yaml")
    ]


def test_an_evaluation_judged_by_another_reviewed_judge_is_refused(ws, capsys):
    """A rejected candidate judge committed for comparison is reviewed, but it is not the judge the eval policy
    names: `-S evaluate_sft.safety.judge=<candidate>` is refused before anything is generated."""
    candidate = "data/safety/candidate_judge.yaml"
    shutil.copy(ws / "data/safety/judge.yaml", ws / candidate)
    commit_reviewed(ws, candidate)
    _write_params(ws, evaluate_sft={"safety": {"judge": candidate}, "out_dir": "artifacts/evaluate_sft_candidate"})
    assert evaluate_sft.main([]) == 1
    assert _error_line(capsys) == (
        f"evaluate_sft: PolicyViolation: params.yaml: safety.judge: {candidate} is not the judge policies/eval.yaml "
        "names (safety.judge: data/safety/judge.yaml); the safety rules count only by the policy's judge: set "
        "safety.judge to data/safety/judge.yaml, or change the policy's judge in a reviewed change"
    )
    assert not (ws / "artifacts/evaluate_sft_candidate").exists()


@pytest.mark.parametrize(
    ("method", "key", "wrong", "trained_from"),
    [
        # `-S evaluate_sft.base_model=artifacts/train_sft` compares the SFT model with itself: every vs-parent change
        # zero, every regression rule passed
        ("sft", "base_model", "train_sft", "base_model"),
        ("dpo", "parent_model", "base_model", "train_sft"),
    ],
)
def test_evaluation_refuses_a_parent_the_policy_was_not_trained_from(
    ws, trained, capsys, method, key, wrong, trained_from
):
    """The parent is recomputed from its files and must be the model the evaluated one was trained from."""
    if method != "sft":  # the workspace trains SFT itself
        trained(method)
    out = f"artifacts/evaluate_{method}_wrong"
    _write_params(ws, **{f"evaluate_{method}": {key: f"artifacts/{wrong}", "out_dir": out}})
    assert {**EVALUATE, "sft": evaluate_sft}[method].main([]) == 1
    held, expected = read_manifest(ws / f"artifacts/{wrong}"), read_manifest(ws / f"artifacts/{trained_from}")
    assert _error_line(capsys) == (
        f"evaluate_{method}: PolicyViolation: artifacts/{wrong}: holds model {held['model_sha256'][:12]}… but "
        f"artifacts/train_{method} was trained from {expected['model_sha256'][:12]}…; re-run the training stage "
        "(dvc repro)"
    )
    assert not (ws / out).exists()


@pytest.mark.parametrize("method", ["sft", "dpo"])
def test_attack_an_evaluation_on_the_training_data_is_refused(ws, trained, capsys, method):
    """E4: `-S evaluate_sft.eval_file=data/prepared/sft/train.jsonl` measures the held-out loss (and DPO's reward
    accuracy) on what the model was trained on, so a model that only memorised passes. The file passed every gate,
    as training data; it is not the split the validation gate held out, so the evaluation refuses before loading a
    model and writes nothing."""
    if method != "sft":  # the workspace trains SFT itself
        trained(method)
    dataset = "sft" if method == "sft" else DATASET[method]
    train_file, out = f"data/prepared/{dataset}/train.jsonl", f"artifacts/evaluate_{method}_on_train"
    _write_params(ws, **{f"evaluate_{method}": {"eval_file": train_file, "out_dir": out}})
    assert {**EVALUATE, "sft": evaluate_sft}[method].main([]) == 1
    validation = f"artifacts/validate_{dataset}/decision.json"
    assert _error_line(capsys) == (
        f"evaluate_{method}: PolicyViolation: {train_file}: not the held-out split of artifacts/train_{method}'s "
        f"training data: its bytes (sha256 {sha256_file(ws / train_file)[:12]}…) are no eval file a validation gate "
        f"the model's training recorded checked against the training file ({validation} held out "
        f"data/prepared/{dataset}/eval.jsonl); an evaluation decides only on held-out data: set eval_file to the "
        "held-out split"
    )
    assert not (ws / out).exists()


@pytest.mark.parametrize("method", ["rm", "dpo"])
def test_lora_adapter_trains_and_is_merged(ws, trained, method):
    trained(method)
    out = f"artifacts/lora_{method}"
    _write_params(ws, **{f"train_{method}": {"adapter": {"method": "lora"}, "trl": {"output_dir": out}}})
    assert TRAIN[method].main([]) == 0
    model = _tensors(ws / out)
    parent = _tensors(ws / ("artifacts/base_model" if method == "rm" else "artifacts/train_sft"))
    assert not any("lora_" in k for k in model)
    assert any(not model[k].equal(parent[k]) for k in set(model) & set(parent))
    manifest = read_manifest(ws / out)
    assert manifest["adapter"]["method"] == "lora"
    if method == "dpo":
        assert manifest["reference"] == "parent, adapter disabled"
    else:
        assert "score.weight" in model  # the SEQ_CLS head is trained and saved with the merged model


# --------------------------------------------------------------------------- refusals (no model is loaded)


@pytest.mark.parametrize("method", METHODS)
def test_unpassed_gate_refuses_training(ws, method, capsys):
    dataset = DATASET[method]
    train_file = f"data/prepared/{dataset}/train.jsonl"
    files = [train_file, f"data/prepared/{dataset}/eval.jsonl"]
    denied = decide(
        gate="validation",
        stage=f"validate_{dataset}",
        datasets=[dataset_ref(f) for f in files],
        policy_path="policies/data.yaml",
        policy_version="1.0",
        violations=[
            Violation(rule_id="data.min_rows", severity="deny", subject=train_file, message="30 rows (min 400)")
        ],
    )
    publish_decision(denied, f"artifacts/denied/validate_{dataset}.json")  # denied by the gate itself
    out = f"artifacts/refused_{method}"
    decisions = [f"artifacts/pii_scan_{dataset}/decision.json", f"artifacts/denied/validate_{dataset}.json"]
    _write_params(ws, **{f"train_{method}": {"gate_decisions": decisions, "trl": {"output_dir": out}}})
    assert TRAIN[method].main([]) == 1
    assert _error_line(capsys) == (
        f"train_{method}: PolicyViolation: artifacts/denied/validate_{dataset}.json: validation gate denied 1 rule(s); "
        f"first: deny  data.min_rows  {train_file}: 30 rows (min 400)"
    )
    assert not (ws / out).exists()


def test_data_changed_after_gating_refuses_training(ws, capsys):
    changed = Path("data/prepared/preference/eval.jsonl")
    original = changed.read_bytes()
    try:
        changed.write_bytes(original + original.splitlines(keepends=True)[0])
        gated = read_decision("artifacts/pii_scan_preference/decision.json")
        judged = {ref.path: ref.sha256 for ref in gated.datasets}[str(changed)]
        current = dataset_ref(changed).sha256
        assert train_dpo.main([]) == 1
        assert _error_line(capsys) == (
            f"train_dpo: PolicyViolation: artifacts/pii_scan_preference/decision.json: {changed} has sha256 "
            f"{current[:12]}… but the pii gate passed {judged[:12]}…; the data changed since it was gated, "
            "re-run the gate"
        )
    finally:
        changed.write_bytes(original)


def test_red_team_pii_appended_under_a_rewritten_decision_refuses_training(ws, capsys):
    """Issue 31 at the stage: PII appended to the gated data, its hash rewritten in decision.json; train_dpo refuses."""
    data, decision = Path("data/prepared/preference/train.jsonl"), Path("artifacts/pii_scan_preference/decision.json")
    originals = {data: data.read_bytes(), decision: decision.read_bytes()}
    try:
        before = sha256_file(data)
        rows = originals[data].decode().splitlines()[:30]
        with data.open("a") as handle:
            for i, row in enumerate(rows):
                leak = f"My SSN is 123-45-{6700 + i}, card 4111 1111 1111 1111, mail p{i}@example.com. "
                handle.write(row.replace('"content": "', f'"content": "{leak}', 1) + "\n")
        decision.write_text(decision.read_text().replace(before, sha256_file(data)))
        out = "artifacts/refused_red_team"
        _write_params(ws, train_dpo={"trl": {"output_dir": out}})
        assert train_dpo.main([]) == 1
        assert _error_line(capsys) == (
            f"train_dpo: PolicyViolation: {decision}: no signed gate_decision event in the audit trail matches this "
            f"file (sha256 {sha256_file(decision)[:12]}…): it was not published by the pii_scan_preference stage; "
            "re-run the gate: dvc repro -f pii_scan_preference"
        )
        assert not (ws / out).exists()
    finally:
        for path, content in originals.items():
            path.write_bytes(content)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "rm"])  # rm on a CPU: the test after the next
def test_qlora_fails_clearly_without_bitsandbytes(ws, method, capsys):
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed here: QLoRA is allowed")
    _write_params(ws, **{f"train_{method}": {"adapter": {"method": "qlora"}}})
    assert TRAIN[method].main([]) == 2
    assert _error_line(capsys) == (
        f"train_{method}: ConfigError: params.yaml: train_{method}.adapter.method: qlora needs bitsandbytes (4-bit), "
        "which is not installed: make gpu on a CUDA machine (docs/how-to/gpu.md), or use method: lora"
    )


#: bitsandbytes at requirements-gpu.lock's version, installed beside the venv by `make test` (Makefile)
QLORA_SITE = REPO / ".venv" / "qlora-cpu"


@pytest.mark.parametrize("method", ["dpo"])  # a reward model: QLoRA on a GPU only (the next test)
def test_qlora_trains_on_a_4bit_base_then_a_dense_merge_is_evaluated_and_registered(ws, trained, method):
    """QLoRA end to end on CPU (bitsandbytes 0.50 computes NF4 there): the same stages as on a GPU."""
    from safetensors.torch import load_file

    if not (QLORA_SITE / "bitsandbytes").is_dir():
        pytest.skip(f"{QLORA_SITE.relative_to(REPO)}: no bitsandbytes (make test installs it there)")
    trained(method)  # the workspace's parent and its evaluation exist
    out, evaluation = f"artifacts/qlora_{method}", f"artifacts/evaluate_qlora_{method}"
    registration = f"artifacts/register_qlora_{method}"
    _write_params(
        ws,
        **{
            f"train_{method}": {"adapter": {"method": "qlora"}, "trl": {"output_dir": out}},
            f"evaluate_{method}": {"model_dir": out, "out_dir": evaluation},
            f"register_{method}": {"model_dir": out, "eval_dir": evaluation, "out_dir": registration},
        },
    )
    # The training stage in its own interpreter, with bitsandbytes importable (peft binds its 4-bit layers at import)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(QLORA_SITE), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", f"pipelines.train_{method}"], cwd=ws, env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    manifest = read_manifest(ws / out)
    quantization = manifest["quantization"]  # the 4-bit base's config, in the lineage
    assert quantization["quant_method"] == "bitsandbytes" and quantization["load_in_4bit"] is True
    assert quantization["bnb_4bit_quant_type"] == "nf4"
    # The merged model is dense: no 4-bit config, no quantisation state, the same tensors and dtypes as the
    # same method trained without an adapter, moved from its parent by training
    assert "quantization_config" not in json.loads((ws / out / "config.json").read_text())
    model, full = _tensors(ws / out), _tensors(ws / f"artifacts/train_{method}")
    assert set(model) == set(full)
    assert all(model[k].dtype == full[k].dtype for k in model)
    parent = _tensors(ws / ("artifacts/base_model" if method == "rm" else "artifacts/train_sft"))
    assert any(not model[k].equal(parent[k]) for k in set(model) & set(parent))
    adapter = load_file(ws / out / "adapter/adapter_model.safetensors")
    assert any("lora_" in k for k in adapter)
    if method == "rm":  # the score head, trained in full beside the adapter, is in the merged model as trained
        [score] = [k for k in adapter if "score" in k]
        assert model["score.weight"].equal(adapter[score].to(model["score.weight"].dtype))
    assert json.loads((ws / out / "adapter/adapter_config.json").read_text())["r"] == 8
    # Evaluated and registered like any version, in this process, where bitsandbytes is not importable
    assert EVALUATE[method].main([]) == 0
    assert read_decision(ws / evaluation / "decision.json").details["results"]
    assert register.main([method]) == 0
    registered = json.loads((ws / registration / "registration.json").read_text())
    version = mlflow.MlflowClient().get_model_version(f"preftest-{method}", registered["version"])
    assert version.tags["lineage.model_sha256"] == manifest["model_sha256"]


def test_a_qlora_reward_model_on_a_cpu_is_refused_in_one_line(ws, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: a QLoRA reward model trains")
    _write_params(ws, train_rm={"adapter": {"method": "qlora"}, "trl": {"output_dir": "artifacts/refused_qlora_rm"}})
    assert train_rm.main([]) == 2
    assert _error_line(capsys) == (
        "train_rm: ConfigError: params.yaml: train_rm.adapter.method: qlora trains a reward model on a CUDA GPU only "
        "(TRL's RewardTrainer casts the score head to bf16 while a CPU model computes in fp32): use method: lora"
    )
    assert not (ws / "artifacts/refused_qlora_rm").exists()


def test_trl_refusal_of_its_arguments_is_one_config_line(ws, capsys):
    # KTO's KL estimate pairs completions within a batch; TRL refuses a batch of one
    _write_params(ws, train_kto={"trl": {"per_device_train_batch_size": 1, "output_dir": "artifacts/refused_kto"}})
    assert train_kto.main([]) == 2
    assert _error_line(capsys) == (
        "train_kto: ConfigError: params.yaml: train_kto: Actual (not effective) batch size must be > 1. KTO will not "
        "work properly because the KL term will be equivalent to the implied reward."
    )


# --------------------------------------------------------------------------- evaluation policy rules

#: (method, rule id, passing metrics, failing metrics, production metrics, exact failure message)
RULE_CASES = [
    (
        "rm",
        "eval.rm.accuracy",
        {"accuracy": 0.8},
        {"accuracy": 0.55},
        None,
        ("accuracy 0.55 (95% Wilson CI 0.519..0.581, p=0.0012, n=1000 pairs): below min 0.6 at 95% confidence"),
    ),
    (
        "rm",
        "eval.rm.mean_margin",
        {"mean_margin": 0.4},
        {"mean_margin": -0.25},
        None,
        ("mean_margin -0.25 (95% CI -0.251..-0.249, t-test p=<1e-300, n=1000 pairs): below min 0 at 95% confidence"),
    ),
    (
        "rm",
        "eval.rm.length_bias",
        {"reward_length_correlation": 0.2},
        {"reward_length_correlation": 0.93},
        None,
        (
            "reward_length_correlation 0.93 (95% bootstrap CI 0.929..0.931, p=0.0002, n=1000 pairs): above "
            "max 0.8 at 95% confidence"
        ),
    ),
    (
        "rm",
        "eval.rm.regression_vs_production",
        {"accuracy": 0.88},
        {"accuracy": 0.8},
        {"accuracy": 0.9},
        (
            "accuracy 0.8 (95% Wilson CI 0.774..0.824, p=7.8e-07, n=1000 pairs): below min 0.855 (5.0% worse "
            "than production 0.9) at 95% confidence"
        ),
    ),
    (
        "dpo",
        "eval.dpo.reward_accuracy",
        {"reward_accuracy": 0.9},
        {"reward_accuracy": 0.5},
        None,
        ("reward_accuracy 0.5 (95% Wilson CI 0.469..0.531, p=1.1e-10, n=1000 pairs): below min 0.6 at 95% confidence"),
    ),
    (
        "dpo",
        "eval.dpo.reward_margin",
        {"reward_margin": 1.2},
        {"reward_margin": -0.1},
        None,
        ("reward_margin -0.1 (95% CI -0.101..-0.0991, t-test p=<1e-300, n=1000 pairs): below min 0 at 95% confidence"),
    ),
    (
        "dpo",
        "eval.dpo.kl_to_parent",
        {"kl_to_parent": 0.07},
        {"kl_to_parent": 0.75},
        None,
        ("kl_to_parent 0.75 (95% bootstrap CI 0.749..0.751, p=0.0002, n=1000 pairs): above max 0.5 at 95% confidence"),
    ),
    (
        "dpo",
        "eval.dpo.chosen_likelihood_drop",
        {"logp_change_per_token": 0.04},
        {"logp_change_per_token": -0.9},
        None,
        (
            "logp_change_per_token -0.9 (95% bootstrap CI -0.901..-0.899, p=0.0002, n=1000 pairs): below min "
            "-0.5 at 95% confidence"
        ),
    ),
    (
        "dpo",
        "eval.dpo.verbosity",
        {"generation_length_ratio_vs_parent": 1.07},
        {"generation_length_ratio_vs_parent": 2.25},
        None,
        (
            "generation_length_ratio_vs_parent 2.25 (95% bootstrap CI 2.25..2.25, p=0.0002, n=1000 pairs): "
            "above max 1.5 at 95% confidence"
        ),
    ),
    (
        "dpo",
        "eval.dpo.regression_vs_production",
        {"reward_accuracy": 0.9},
        {"reward_accuracy": 0.7},
        {"reward_accuracy": 0.8},
        (
            "reward_accuracy 0.7 (95% Wilson CI 0.671..0.728, p=8.9e-06, n=1000 pairs): below min 0.76 (5.0% "
            "worse than production 0.8) at 95% confidence"
        ),
    ),
    (
        "kto",
        "eval.kto.reward_separation",
        {"reward_separation": 2.9},
        {"reward_separation": -0.3},
        None,
        (
            "reward_separation -0.3 (95% CI -0.301..-0.299, Welch p=<1e-300, n=2000 completions): below min "
            "0 at 95% confidence"
        ),
    ),
    (
        "kto",
        "eval.kto.reward_auc",
        {"reward_auc": 0.92},
        {"reward_auc": 0.51},
        None,
        ("reward_auc 0.51 (95% bootstrap CI 0.51..0.51, p=0.0002, n=1000 pairs): below min 0.6 at 95% confidence"),
    ),
    (
        "kto",
        "eval.kto.kl_to_parent",
        {"kl_to_parent": 0.05},
        {"kl_to_parent": 0.6},
        None,
        ("kl_to_parent 0.6 (95% bootstrap CI 0.599..0.601, p=0.0002, n=1000 pairs): above max 0.5 at 95% confidence"),
    ),
    (
        "kto",
        "eval.kto.verbosity",
        {"generation_length_ratio_vs_parent": 1.0},
        {"generation_length_ratio_vs_parent": 1.75},
        None,
        (
            "generation_length_ratio_vs_parent 1.75 (95% bootstrap CI 1.75..1.75, p=0.0002, n=1000 pairs): "
            "above max 1.5 at 95% confidence"
        ),
    ),
    (
        "kto",
        "eval.kto.regression_vs_production",
        {"reward_auc": 0.9},
        {"reward_auc": 0.75},
        {"reward_auc": 0.92},
        (
            "reward_auc 0.75 (95% bootstrap CI 0.749..0.751, p=0.0002, n=1000 pairs): below min 0.874 (5.0% "
            "worse than production 0.92) at 95% confidence"
        ),
    ),
    (
        "orpo",
        "eval.orpo.log_odds_accuracy",
        {"log_odds_accuracy": 0.88},
        {"log_odds_accuracy": 0.45},
        None,
        (
            "log_odds_accuracy 0.45 (95% Wilson CI 0.419..0.481, p=3.6e-22, n=1000 pairs): below min 0.6 at "
            "95% confidence"
        ),
    ),
    (
        "orpo",
        "eval.orpo.log_odds_gain",
        {"log_odds_ratio_gain": 0.23},
        {"log_odds_ratio_gain": -0.05},
        None,
        (
            "log_odds_ratio_gain -0.05 (95% CI -0.0509..-0.0491, t-test p=<1e-300, n=1000 pairs): below min "
            "0 at 95% confidence"
        ),
    ),
    (
        "orpo",
        "eval.orpo.kl_to_parent",
        {"kl_to_parent": 0.02},
        {"kl_to_parent": 0.9},
        None,
        ("kl_to_parent 0.9 (95% bootstrap CI 0.899..0.901, p=0.0002, n=1000 pairs): above max 0.5 at 95% confidence"),
    ),
    (
        "orpo",
        "eval.orpo.verbosity",
        {"generation_length_ratio_vs_parent": 1.16},
        {"generation_length_ratio_vs_parent": 1.6},
        None,
        (
            "generation_length_ratio_vs_parent 1.6 (95% bootstrap CI 1.6..1.6, p=0.0002, n=1000 pairs): "
            "above max 1.5 at 95% confidence"
        ),
    ),
    (
        "orpo",
        "eval.orpo.regression_vs_production",
        {"log_odds_accuracy": 0.86},
        {"log_odds_accuracy": 0.6},
        {"log_odds_accuracy": 0.88},
        (
            "log_odds_accuracy 0.6 (95% Wilson CI 0.569..0.63, p=2.4e-90, n=1000 pairs): below min 0.836 "
            "(5.0% worse than production 0.88) at 95% confidence"
        ),
    ),
]


def _rule(method: str, rule_id: str):
    [rule] = [r for r in load_eval_policy(REPO / "policies/eval.yaml").methods[method] if r.id == rule_id]
    return rule


#: Items behind each constructed value: enough that these cases decide at 95% (the rule's interval clears its limit).
ITEMS = 1000


def _evidence(rule, value: float):
    """``ITEMS`` per-item outcomes of the kind the rule's test reads, reproducing ``value`` exactly."""
    spread = [0.01 * (i % 5 - 2) for i in range(ITEMS)]  # sums to 0: the mean stays the value
    if rule.test == "wilson":
        hits = round(value * ITEMS)
        return shares([True] * hits + [False] * (ITEMS - hits), "pairs")
    if rule.test == "t":
        return Outcomes(tuple(value + s for s in spread), "pairs")
    if rule.test == "welch":
        return Groups(tuple(value + s for s in spread), tuple(spread), "completions")
    return ratio_of_sums([10 * value * (1 + s) for s in spread], [10] * ITEMS, "pairs")


def _check(rule, metrics: dict, production):
    evidence = {name: _evidence(rule, value) for name, value in metrics.items()}
    return check_metrics([rule], metrics, "artifacts/m", production, evidence=evidence, confidence=0.95)


@pytest.mark.parametrize(("method", "rule_id", "good", "bad", "production", "message"), RULE_CASES)
def test_eval_rule_passes_and_fails_with_its_message(method, rule_id, good, bad, production, message):
    rule = _rule(method, rule_id)
    violations, results = _check(rule, good, production)
    assert violations == [] and results[0]["status"] == "pass"
    violations, results = _check(rule, bad, production)
    assert [(v.rule_id, v.severity, v.subject, v.message) for v in violations] == [
        (rule_id, rule.severity, "artifacts/m", message)
    ]
    assert results[0]["status"] == "fail"


@pytest.mark.parametrize("method", METHODS)
def test_every_rule_of_the_method_has_a_case_and_a_regression_rule(method):
    rules = load_eval_policy(REPO / "policies/eval.yaml").methods[method]
    assert {r.id for r in rules} == {case[1] for case in RULE_CASES if case[0] == method}
    assert any(r.relative_to == "production" for r in rules)


# --------------------------------------------------------------------------- metric functions


def _s(policy: float, reference: float, tokens: int = 4, kl: float = 0.0) -> ResponseScore:
    return ResponseScore(policy_logp=policy, reference_logp=reference, tokens=tokens, kl=kl)


def test_implicit_reward_metrics_follow_dpo():
    chosen = [_s(-10, -12), _s(-8, -8)]
    rejected = [_s(-15, -12), _s(-7, -8)]
    metrics = implicit_reward_metrics(chosen, rejected, beta=0.5)
    # rewards: chosen 1.0, 0.0; rejected -1.5, 0.5 → margins 2.5, -0.5
    assert metrics == {"reward_accuracy": 0.5, "reward_margin": 1.0, "chosen_reward": 0.5, "rejected_reward": -0.5}


def test_log_odds_and_auc():
    assert log_odds(-math.log(2) * 3, 3) == pytest.approx(0.0)  # mean p = 0.5 → odds 1
    assert rank_auc([3, 2], [1, 2]) == pytest.approx(0.875)
    metrics = separation_metrics([_s(-1, -2), _s(-3, -2)], [True, False], beta=1.0)
    assert metrics == {"desirable_reward": 1.0, "undesirable_reward": -1.0, "reward_separation": 2.0, "reward_auc": 1.0}


def test_pairs_with_a_truncated_away_response_are_dropped_together():
    chosen, rejected = scored_pairs([_s(-1, -1), None, _s(-2, -2)], [_s(-3, -3), _s(-4, -4), None])
    assert chosen == [_s(-1, -1)] and rejected == [_s(-3, -3)]


# --------------------------------------------------------------------------- prepare stages


@pytest.fixture
def prep(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def write(section: str, rows: list[dict], **params) -> Path:
        raw = _write_jsonl(tmp_path / "raw.jsonl", rows)
        defaults = {"input": "raw.jsonl", "out_dir": "out", "eval_fraction": 0.5, "seed": 1, "split_by": "prompt"}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump({section: {**defaults, **params}}))
        return raw

    return write


def test_prepare_preference_keeps_provenance_and_splits_by_prompt(prep, tmp_path):
    rows = [
        {
            "id": f"p{i}",
            "prompt": f"  Question {i % 10}  ",
            "chosen": "Helpful answer.",
            "rejected": [{"role": "assistant", "content": "No."}],
            "annotator_id": "ann-1",
            "guideline_version": "v2",
            "ratings": [{"annotator_id": "ann-1", "chosen_score": 4, "rejected_score": 1}],
        }
        for i in range(40)
    ]
    prep("prepare_preference", rows)
    assert prepare_preference.main([]) == 0
    train = [r.data for r in read_records(tmp_path / "out/train.jsonl")]
    evaluation = [r.data for r in read_records(tmp_path / "out/eval.jsonl")]
    assert len(train) + len(evaluation) == 40 and train and evaluation
    assert train[0]["prompt"] == [{"role": "user", "content": train[0]["prompt"][0]["content"]}]
    assert train[0]["chosen"] == [{"role": "assistant", "content": "Helpful answer."}]
    assert train[0]["annotator_id"] == "ann-1" and train[0]["guideline_version"] == "v2"
    assert train[0]["ratings"] == rows[0]["ratings"]
    # Pairs sharing a prompt stay on one side: no held-out prompt is trained on
    train_prompts = {r["prompt"][0]["content"] for r in train}
    assert not train_prompts & {r["prompt"][0]["content"] for r in evaluation}
    # ... and the split is the key's hash, so it does not depend on the other records
    assert split_key(train[0]["prompt"], "x", "prompt") == split_key(train[0]["prompt"], "y", "prompt")
    manifest = read_manifest(tmp_path / "out")
    assert manifest["rows"] == {"input": 40, "train": len(train), "eval": len(evaluation)}


def test_prepare_preference_extracts_an_implicit_prompt(prep, tmp_path):
    shared = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    rows = [
        {
            "id": i,
            "chosen": [*shared, {"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": "Good."}],
            "rejected": [*shared, {"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": "Bad."}],
        }
        for i in range(8)
    ]
    prep("prepare_preference", rows, split_by="id")
    assert prepare_preference.main([]) == 0
    row = read_records(tmp_path / "out/train.jsonl")[0].data
    assert row["prompt"][:2] == shared and row["prompt"][2]["role"] == "user"
    assert row["chosen"] == [{"role": "assistant", "content": "Good."}]
    assert row["rejected"] == [{"role": "assistant", "content": "Bad."}]


@pytest.mark.parametrize(
    ("section", "row", "message"),
    [
        (
            "prepare_preference",
            {"id": "a", "prompt": "Q", "chosen": [{"role": "bot", "content": "x"}], "rejected": "y"},
            "prepare_preference: DataError: raw.jsonl:2: field chosen[0].role: 'bot' is not one of system, user, "
            "assistant",
        ),
        (
            "prepare_preference",
            {"id": "a", "chosen": "x", "rejected": "y"},
            # The first record fixed the format (explicit prompt): a record not fitting it is an error
            "prepare_preference: DataError: raw.jsonl:2: field prompt: required field is missing (format preference)",
        ),
        (
            "prepare_preference",
            {"id": "p0", "prompt": "Q", "chosen": "x", "rejected": "y"},
            "prepare_preference: DataError: raw.jsonl:2: field id: duplicate id 'p0'",
        ),
        (
            "prepare_kto",
            {"id": "a", "prompt": "Q", "completion": "x", "label": "yes"},
            "prepare_kto: DataError: raw.jsonl:2: field label: expected a boolean (true = desirable), got a str",
        ),
        (
            "prepare_kto",
            {"id": "a", "prompt": "Q", "completion": [{"role": "assistant", "content": 3}], "label": True},
            "prepare_kto: DataError: raw.jsonl:2: field completion[0].content: expected a string, got int",
        ),
    ],
)
def test_prepare_names_file_line_and_field_of_a_bad_record(prep, tmp_path, capsys, section, row, message):
    first = (
        {"id": "p0", "prompt": "Q0", "chosen": "x", "rejected": "y"}
        if section == "prepare_preference"
        else {"id": "k0", "prompt": "Q0", "completion": "x", "label": True}
    )
    prep(section, [first, row])
    module = prepare_preference if section == "prepare_preference" else prepare_kto
    assert module.main([]) == 2
    assert _error_line(capsys) == message
    assert not (tmp_path / "out").exists()


def test_prepare_kto_accepts_csv_label_spellings(prep, tmp_path):
    rows = [
        {"id": i, "prompt": f"Q{i}", "completion": "A.", "label": ["true", "False", True, False][i % 4]}
        for i in range(12)
    ]
    prep("prepare_kto", rows, split_by="id")
    assert prepare_kto.main([]) == 0
    out = [r.data for name in ("train", "eval") for r in read_records(tmp_path / f"out/{name}.jsonl")]
    assert sorted((int(r["id"]), r["label"]) for r in out) == [(i, i % 2 == 0) for i in range(12)]
    assert read_manifest(tmp_path / "out")["rows"]["desirable"] == 6
