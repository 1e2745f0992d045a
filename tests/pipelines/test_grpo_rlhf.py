"""GRPO (verifiable rewards) and RLHF (RLOO on a learned reward model) stages on a tiny model.

Real TRL trainers, a real tiny Qwen2 built by the base_model stage, real gate
decisions, a real MLflow store and audit trail per test. The policy starts
from the base model (standing in for SFT) so no SFT run is needed.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import mlflow
import pytest
import yaml
from corpus_support import CORPUS_PARAMS, gate_corpus, write_corpus
from e2e_support import commit_reviewed
from safety_support import gate_details, gate_safety_sets, lower_eval_budgets, republish_gate_decisions, safety_params

from governance.errors import ConfigError
from governance.evaluation import check_metrics, load_eval_policy
from governance.gates import dataset_ref, decide, publish_decision
from governance.identity import Identity
from governance.lineage import read_manifest, sha256_dir, sha256_file, sha256_json, write_manifest
from governance.objectives import approve_objective, objective_hashes
from governance.statistics import Outcomes, paired, ratio_of_sums, shares
from pipelines import base_model, evaluate_grpo, evaluate_rlhf, train_grpo, train_rlhf
from pipelines._training import with_run_context
from pipelines.evaluate_grpo import (
    Completion,
    degenerate,
    drop_while_reward_rises,
    grpo_metrics,
    kl_to_reference,
    reward_trend,
)
from pipelines.evaluate_rlhf import rlhf_evidence, rlhf_metrics
from pipelines.rewards import correctness_reward, resolve_reward_functions
from pipelines.train_rlhf import require_kl_penalty, reward_model_recipe

REPO = Path(__file__).resolve().parents[2]
APPROVER = Identity(user="erin", source="local")  # an objective_owner in policies/approvals.yaml
SYSTEM = "Solve the problem. Reply with the reasoning, then the final answer as: Answer: <number>"
UNAPPROVED_MESSAGE = (
    "train_grpo: PolicyViolation: train_grpo: objective {name} has sha256 {sha} which is not approved "
    "(objective.approved_hash); review it, then run `govern approve-objective train_grpo --reason TEXT` "
    "or list the hash in policies/objectives.yaml in a reviewed commit"
)

# --------------------------------------------------------------------------- the workspace


def _arithmetic(rng: random.Random, n: int, prefix: str) -> list[dict]:
    rows = []
    for i in range(n):
        a, b = rng.randint(1, 20), rng.randint(1, 20)
        rows.append(
            {
                "id": f"{prefix}{i}",
                "prompt": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"What is {a} plus {b}?"},
                ],
                "answer": str(a + b),
            }
        )
    return rows


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _gate(dataset: str, files: list[Path]) -> list[str]:
    paths = []
    for gate, stage in (("pii", f"pii_scan_{dataset}"), ("validation", f"validate_{dataset}")):
        decision = decide(
            gate=gate,
            stage=stage,
            datasets=[dataset_ref(f) for f in files],
            policy_path=f"policies/{'pii' if gate == 'pii' else 'data'}.yaml",
            policy_version="1.0",
            violations=[],
            details=gate_details(gate, files, dataset),
        )
        path = f"artifacts/{stage}/decision.json"
        publish_decision(decision, path, policy_sha256=sha256_file(REPO / decision.policy_path))  # as the gate read it
        paths.append(path)
    return paths


TRL_COMMON = {
    "max_steps": 2,
    "per_device_train_batch_size": 4,
    "num_generations": 2,
    "max_completion_length": 160,  # long enough that random completions pass the brevity budget: rewards differ
    "learning_rate": 0.01,  # large, so two steps visibly move a tiny model
    "logging_steps": 1,
    "save_strategy": "no",
    "eval_strategy": "no",
    "gradient_checkpointing": False,
    "use_vllm": False,
    "report_to": [],
    "seed": 1,
    "dataloader_num_workers": 0,
}


def _sections() -> dict:
    adapter = {"method": "none", "lora": {}}
    return {
        "project": "rltest",
        "base_model": {
            "name_or_path": "builtin:tiny",
            "license": "apache-2.0",
            "out_dir": "artifacts/base_model",
            **CORPUS_PARAMS,
            "seed": 3,
            "vocab_size": 300,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 256,
        },
        "train_grpo": {
            "base_model": "artifacts/base_model",
            "train_file": "data/grpo/train.jsonl",
            "eval_file": "data/grpo/eval.jsonl",
            "gate_decisions": ["artifacts/pii_scan_grpo/decision.json", "artifacts/validate_grpo/decision.json"],
            "reward_funcs": ["correctness_reward", "brevity_reward"],
            "adapter": adapter,
            "launch": {"num_processes": 1, "config_file": str(REPO / "configs/accelerate/single.yaml")},
            "trl": {**TRL_COMMON, "output_dir": "artifacts/train_grpo", "beta": 0.04},
        },
        "evaluate_grpo": {
            "parent_model": "artifacts/base_model",
            "model_dir": "artifacts/train_grpo",
            "eval_file": "data/grpo/eval.jsonl",
            "out_dir": "artifacts/evaluate_grpo",
            "policy": "policies/eval.yaml",
            "max_new_tokens": 8,
            "safety": safety_params(),
        },
        "train_rlhf": {
            "base_model": "artifacts/base_model",
            "reward_model": "artifacts/train_rm",
            "train_file": "data/rlhf/train.jsonl",
            "eval_file": "data/rlhf/eval.jsonl",
            "gate_decisions": ["artifacts/pii_scan_rlhf/decision.json", "artifacts/validate_rlhf/decision.json"],
            "adapter": adapter,
            "launch": {"num_processes": 1, "config_file": str(REPO / "configs/accelerate/single.yaml")},
            "trl": {**TRL_COMMON, "output_dir": "artifacts/train_rlhf", "beta": 0.05},
        },
        "evaluate_rlhf": {
            "parent_model": "artifacts/base_model",
            "model_dir": "artifacts/train_rlhf",
            "reward_model": "artifacts/train_rm",
            "eval_file": "data/rlhf/eval.jsonl",
            "out_dir": "artifacts/evaluate_rlhf",
            "policy": "policies/eval.yaml",
            "max_new_tokens": 8,
            "safety": safety_params(reward_model="artifacts/train_rm"),
        },
    }


def _write_params(root: Path, **changes: dict) -> dict:
    sections = _sections()
    for section, values in changes.items():
        for key, value in values.items():
            if key == "trl":
                sections[section]["trl"].update(value)
            else:
                sections[section][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(sections, sort_keys=False))
    return sections


def _build_reward_model(root: Path) -> None:
    """A reward model as train_rm leaves it: a one-logit head on the base model, with its manifest."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    out = root / "artifacts/train_rm"
    model = AutoModelForSequenceClassification.from_pretrained(root / "artifacts/base_model", num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(root / "artifacts/base_model")
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    params = {"base_model": "artifacts/base_model", "trl": {"output_dir": "artifacts/train_rm", "beta": 0.1}}
    write_manifest(
        out,
        {
            "stage": "train_rm",
            "params": params,
            "params_sha256": sha256_json(params),
            "datasets": {"data/preference/train.jsonl": {"sha256": "a" * 64, "md5": "b" * 32}},
            "parent": {
                "stage": "base_model",
                "model_sha256": read_manifest(root / "artifacts/base_model")["model_sha256"],
            },
            "base": {"name_or_path": "builtin:tiny", "license": "apache-2.0"},
            "model_sha256": sha256_dir(out),
            "model_path": "artifacts/train_rm",  # relative, as train_rm records it (run from the repo root)
            "run_id": "rm-run",
        },
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """Base model, reward model, gated GRPO/RLHF data and policies in one directory, built once."""
    root = tmp_path_factory.mktemp("rl")
    rng = random.Random(0)
    shutil.copytree(REPO / "policies", root / "policies")
    lower_eval_budgets(root / "policies")  # evaluated on a few prompts and tokens, to stay fast
    objectives = yaml.safe_load((REPO / "policies/objectives.yaml").read_text())
    objectives["approved"] = []  # approvals come from each test's own audit trail
    (root / "policies/objectives.yaml").write_text(yaml.safe_dump(objectives))
    commit_reviewed(root)  # the policies decide only as the reviewed version
    shutil.copy(REPO / "requirements.lock", root / "requirements.lock")
    words = "what is plus answer the account card balance how do i reset my password".split()
    corpus = [f"What is {a} plus {b}? Answer: {a + b}" for a in range(1, 21) for b in range(1, 21)]
    corpus += [" ".join(rng.choice(words) for _ in range(10)) for _ in range(200)]
    write_corpus(root, corpus)
    grpo = [_write_jsonl(root / "data/grpo/train.jsonl", _arithmetic(rng, 16, "t"))]
    grpo.append(_write_jsonl(root / "data/grpo/eval.jsonl", _arithmetic(rng, 6, "e")))
    questions = ["How do I reset my password?", "What is my card balance?", "How do I close the account?"]
    rlhf = [
        _write_jsonl(
            root / f"data/rlhf/{split}.jsonl",
            [{"id": f"{split}{i}", "prompt": [{"role": "user", "content": q}]} for i, q in enumerate(questions * n)],
        )
        for split, n in (("train", 4), ("eval", 2))
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        _write_params(root)
        gate_corpus()
        assert base_model.main([]) == 0
        _gate("grpo", [p.relative_to(root) for p in grpo])
        _gate("rlhf", [p.relative_to(root) for p in rlhf])
        gate_safety_sets(root)
        _build_reward_model(root)
    return root


@pytest.fixture
def ws(workspace, mlflow_store, monkeypatch):
    """The workspace as cwd, with this test's own MLflow store and audit trail; params reset."""
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("GOVERN_USER", "trainer-bot")
    republish_gate_decisions(workspace)  # the gate stages' signed events, in this test's trail
    _write_params(workspace)
    for out in ("train_grpo", "evaluate_grpo", "train_rlhf", "evaluate_rlhf"):
        shutil.rmtree(workspace / "artifacts" / out, ignore_errors=True)
    return workspace


def _weights_differ(a: Path, b: Path) -> bool:
    from safetensors.torch import load_file

    left, right = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return any(not left[k].equal(right[k]) for k in left)


def _error_line(capsys) -> str:
    """The stage's one-line error (the last line of stderr; progress bars may precede it)."""
    return capsys.readouterr().err.strip().splitlines()[-1]


def _run_metrics(run_id: str) -> dict[str, float]:
    return mlflow.MlflowClient().get_run(run_id).data.metrics


# --------------------------------------------------------------------------- GRPO


def test_grpo_trains_from_its_parent_records_reward_hashes_and_evaluates(ws, capsys):
    functions = resolve_reward_functions(["correctness_reward", "brevity_reward"], "train_grpo")
    hashes = objective_hashes(functions)
    approve_objective("train_grpo", reason="reviewed in test", hashes=hashes, identity=APPROVER)

    assert train_grpo.main([]) == 0
    trained = read_manifest(ws / "artifacts/train_grpo")
    parent = read_manifest(ws / "artifacts/base_model")
    # The model moved away from its parent, and its lineage says which objective moved it
    assert trained["model_sha256"] != parent["model_sha256"] == trained["parent"]["model_sha256"]
    assert _weights_differ(ws / "artifacts/train_grpo", ws / "artifacts/base_model")
    assert trained["reward_functions"] == hashes
    assert [g["stage"] for g in trained["gates"]] == ["pii_scan_grpo", "validate_grpo"]
    assert trained["method"] == "grpo" and trained["global_steps"] == 2
    assert [h["step"] for h in trained["reward_history"]] == [1, 2]
    # The model folder holds no run id (its dvc.lock hash must not change per run): MLflow finds the run
    assert "run_id" not in trained
    context = with_run_context(trained)
    tags = mlflow.MlflowClient().get_run(context["run_id"]).data.tags
    assert tags["lineage.reward.correctness_reward.sha256"] == hashes["correctness_reward"]
    # L3: the run context is what the training stage signed (model_trained), not what the run's tags say later
    _attack_l3_edited_run_tags_are_refused(trained, context)
    trained = context

    assert evaluate_grpo.main([]) == 0
    out = ws / "artifacts/evaluate_grpo"
    metrics = json.loads((out / "metrics.json").read_text())
    rules = metrics.pop("rules")  # each rule's n, interval, p-value and verdict, beside the metrics
    decision = json.loads((out / "decision.json").read_text())
    assert set(rules) == {r["rule_id"] for r in decision["details"]["results"]}
    evaluation = read_manifest(out)
    generations = json.loads((out / "generations.json").read_text())
    # The recorded metrics are the computed ones: recomputed from the generations and the training log
    answers = [g["answer"] for g in generations]
    assert (
        metrics["accuracy"] == sum(correctness_reward(None, [g["completion"] for g in generations], answer=answers)) / 6
    )
    assert (
        metrics["parent_accuracy"]
        == sum(correctness_reward(None, [g["parent_completion"] for g in generations], answer=answers)) / 6
    )
    assert metrics["train_reward_first"] == trained["reward_history"][0]["reward"]
    assert metrics["eval_prompts"] == 6 and metrics["kl_to_parent"] > 0
    # An undefined metric (nan in metrics.json) is recorded as null in the decision: "not measurable"
    undefined = {k: None for k, v in metrics.items() if isinstance(v, float) and math.isnan(v)}
    assert decision["details"]["metrics"] == {**metrics, **undefined} and decision["stage"] == "evaluate_grpo"
    policy = load_eval_policy(ws / "policies/eval.yaml")
    assert {r["rule_id"] for r in decision["details"]["results"]} == {
        r.id for r in [*policy.methods["grpo"], *policy.safety.for_method("grpo", with_parent=True)]
    }
    assert "eval.safety.harmful_compliance_vs_base" not in {r["rule_id"] for r in decision["details"]["results"]}
    assert evaluation["model_sha256"] == trained["model_sha256"]
    assert "training_run_id" not in evaluation
    # ... and the same values sit on the evaluation run and, as heldout.*, on the training run
    training_run = _run_metrics(trained["run_id"])
    assert {k: training_run[f"heldout.{k}"] for k in metrics} == pytest.approx(metrics, nan_ok=True)


def _attack_l3_edited_run_tags_are_refused(manifest: dict, context: dict) -> None:
    """Attack L3: train from edited code (recorded dirty), then ``set_tag(run, "lineage.git_dirty", "False")``
    and the commit and user likewise. Before, registration read the tags back and the version, its signed
    provenance statement and the report said "commit X, no uncommitted changes, trained by alice"."""
    from governance import trail
    from governance.errors import ConfigError

    [signed] = [e for e in trail.events(event_types=["model_trained"]) if e.evidence["run_id"] == context["run_id"]]
    assert signed.subject.objective_hash == manifest["model_sha256"] and signed.role == "training stage"
    assert {k: signed.evidence[k] for k in ("git_commit", "trained_by")} == {
        k: context[k] for k in ("git_commit", "trained_by")
    }
    assert signed.evidence["git_dirty"] == str(context["git_dirty"])
    client = mlflow.MlflowClient()
    for tag, forged in (("lineage.git_dirty", str(not context["git_dirty"])), ("lineage.trained_by", "alice")):
        genuine = client.get_run(context["run_id"]).data.tags[tag]
        client.set_tag(context["run_id"], tag, forged)
        with pytest.raises(ConfigError) as refused:
            with_run_context(manifest)
        assert str(refused.value).startswith(f"MLflow run {context['run_id']} (train_grpo): tag {tag} is {forged!r}")
        assert f"but the training stage signed {genuine!r} (trail event #{signed.seq})" in str(refused.value)
        client.set_tag(context["run_id"], tag, genuine)
    assert with_run_context(manifest) == context


def test_grpo_refuses_an_unapproved_reward_function_naming_it_its_hash_and_the_fix(ws, capsys):
    functions = resolve_reward_functions(["correctness_reward", "brevity_reward"], "train_grpo")
    hashes = objective_hashes(functions)
    approve_objective(
        "train_grpo",
        reason="only this one",
        hashes={"correctness_reward": hashes["correctness_reward"]},
        identity=APPROVER,
    )

    assert train_grpo.main([]) == 1
    assert _error_line(capsys) == UNAPPROVED_MESSAGE.format(name="brevity_reward", sha=hashes["brevity_reward"])
    assert not (ws / "artifacts/train_grpo").exists()


def test_grpo_refuses_a_changed_reward_function_until_its_new_hash_is_approved(ws, capsys):
    approve_objective(
        "train_grpo",
        reason="old code",
        hashes={"correctness_reward": "0" * 64, "brevity_reward": "1" * 64},
        identity=APPROVER,
    )
    assert train_grpo.main([]) == 1
    current = objective_hashes(resolve_reward_functions(["correctness_reward"], "train_grpo"))["correctness_reward"]
    assert UNAPPROVED_MESSAGE.format(name="correctness_reward", sha=current) in capsys.readouterr().err


def test_grpo_refuses_an_unknown_reward_function_name(ws, capsys):
    _write_params(ws, train_grpo={"reward_funcs": ["correctness_reward", "length_reward"]})
    assert train_grpo.main([]) == 2
    assert "train_grpo.reward_funcs: unknown reward function 'length_reward'" in capsys.readouterr().err


# --------------------------------------------------------------------------- RLHF


def test_rlhf_trains_against_the_approved_reward_model_and_evaluates(ws):
    recipe = sha256_json(reward_model_recipe(read_manifest(ws / "artifacts/train_rm")))
    assert train_rlhf.current_objective_hashes() == {"reward_model_recipe": recipe}
    approve_objective("train_rlhf", reason="recipe reviewed", identity=APPROVER)  # finds it via hashes_from

    assert train_rlhf.main([]) == 0
    trained = read_manifest(ws / "artifacts/train_rlhf")
    assert trained["model_sha256"] != trained["parent"]["model_sha256"]
    assert _weights_differ(ws / "artifacts/train_rlhf", ws / "artifacts/base_model")
    rm = read_manifest(ws / "artifacts/train_rm")
    assert trained["reward_functions"] == {"reward_model_recipe": recipe, "reward_model": rm["model_sha256"]}
    assert trained["algorithm"] == "rloo" and trained["beta"] == 0.05
    assert len(trained["reward_history"]) == 2 and all("kl" in h for h in trained["reward_history"])

    assert evaluate_rlhf.main([]) == 0
    out = ws / "artifacts/evaluate_rlhf"
    metrics = json.loads((out / "metrics.json").read_text())
    metrics.pop("rules")
    generations = json.loads((out / "generations.json").read_text())
    # The recorded metrics are the computed ones
    assert metrics["reward_model_score"] == pytest.approx(sum(g["score"] for g in generations) / 6)
    assert metrics["parent_reward_model_score"] == pytest.approx(sum(g["parent_score"] for g in generations) / 6)
    assert metrics["eval_prompts"] == 6 and metrics["kl_to_parent"] >= 0
    decision = json.loads((out / "decision.json").read_text())
    assert decision["details"]["metrics"] == metrics
    assert read_manifest(out)["reward_model_sha256"] == rm["model_sha256"]
    assert read_manifest(out)["model_sha256"] == trained["model_sha256"]
    training_run = _run_metrics(with_run_context(trained)["run_id"])
    assert {k: training_run[f"heldout.{k}"] for k in metrics} == pytest.approx(metrics, nan_ok=True)


@pytest.mark.parametrize("beta", [0.0, -0.1])
def test_rlhf_refuses_training_without_a_kl_penalty(ws, capsys, beta):
    _write_params(ws, train_rlhf={"trl": {"beta": beta}})
    assert train_rlhf.main([]) == 2
    assert _error_line(capsys) == (
        f"train_rlhf: ConfigError: params.yaml: train_rlhf.trl.beta: {beta} — RLHF against a learned reward model "
        "needs a KL penalty to the SFT reference (beta > 0), or the policy drifts to whatever the reward model "
        "over-scores; set e.g. beta: 0.05"
    )
    assert not (ws / "artifacts/train_rlhf").exists()


def test_require_kl_penalty_accepts_a_positive_beta():
    require_kl_penalty(0.01, "train_rlhf")
    with pytest.raises(ConfigError):
        require_kl_penalty(0.0, "train_rlhf")


def test_rlhf_refuses_an_unapproved_reward_model_recipe(ws, capsys):
    recipe = sha256_json(reward_model_recipe(read_manifest(ws / "artifacts/train_rm")))
    assert train_rlhf.main([]) == 1
    assert _error_line(capsys) == (
        f"train_rlhf: PolicyViolation: train_rlhf: objective reward_model_recipe has sha256 {recipe} which is not "
        "approved (objective.approved_hash); review it, then run `govern approve-objective train_rlhf --reason TEXT` "
        "or list the hash in policies/objectives.yaml in a reviewed commit"
    )


def test_rlhf_refuses_a_reward_model_altered_after_training(ws, capsys):
    extra = ws / "artifacts/train_rm/added_after_training.txt"
    extra.write_text("not what was trained")
    try:
        assert train_rlhf.main([]) == 1
        err = capsys.readouterr().err
    finally:
        extra.unlink()
    assert "train_rlhf: PolicyViolation: artifacts/train_rm: the reward model's files hash to" in err
    assert "it changed after train_rm wrote it, nothing loaded: re-run it, dvc repro -f train_rm" in err


def test_reward_model_recipe_changes_with_params_and_data_but_not_with_the_weights():
    manifest = {
        "stage": "train_rm",
        "params_sha256": "p" * 64,
        "datasets": {"b.jsonl": {"sha256": "2" * 64, "md5": "x"}, "a.jsonl": {"sha256": "1" * 64, "md5": "y"}},
        "parent": {"stage": "base_model", "model_sha256": "m" * 64},
        "base": {"name_or_path": "builtin:tiny"},
        "model_sha256": "w" * 64,
    }
    recipe = sha256_json(reward_model_recipe(manifest))
    assert sha256_json(reward_model_recipe({**manifest, "model_sha256": "v" * 64})) == recipe
    assert sha256_json(reward_model_recipe({**manifest, "params_sha256": "q" * 64})) != recipe
    changed_data = {**manifest, "datasets": {**manifest["datasets"], "a.jsonl": {"sha256": "3" * 64, "md5": "y"}}}
    assert sha256_json(reward_model_recipe(changed_data)) != recipe
    with pytest.raises(
        ConfigError, match=r"reward model manifest: missing lineage field 'params_sha256'; re-run train_rm"
    ):
        reward_model_recipe({k: v for k, v in manifest.items() if k != "params_sha256"})


# --------------------------------------------------------------------------- metrics and the eval policy rules


def _completion(tokens: int, text: str = "x") -> Completion:
    return Completion(prompt_ids=[1, 2], completion_ids=list(range(tokens)), text=text)


def test_reward_trend_is_the_fitted_rise_and_needs_a_logged_reward():
    assert reward_trend([{"reward": 0.0}, {"reward": 1.0}, {"reward": 2.0}])["train_reward_trend"] == pytest.approx(2.0)
    assert reward_trend([{"reward": 1.0}, {"reward": 0.0}])["train_reward_trend"] == pytest.approx(-1.0)
    assert reward_trend([{"reward": 5.0}])["train_reward_trend"] == 0.0
    with pytest.raises(ConfigError, match=r"no logged training reward"):
        reward_trend([{"loss": 1.0}])


def test_drop_while_reward_rises_counts_only_drops_under_a_rising_reward():
    assert drop_while_reward_rises(0.3, -0.2) == pytest.approx(0.2)
    assert drop_while_reward_rises(0.3, 0.1) == 0.0
    assert drop_while_reward_rises(-0.3, -0.2) == 0.0  # falling reward: a regression, but not hacking


def test_grpo_metrics_from_completions():
    tuned = [_completion(4, "Answer: 3"), _completion(8, "Answer: 5")]
    parent = [_completion(4, "Answer: 3"), _completion(4, "Answer: 4")]
    history = [{"reward": 0.1}, {"reward": 0.5}]
    metrics = grpo_metrics(tuned=tuned, parent=parent, answers=["3", "4"], kl=0.25, history=history)
    assert metrics["accuracy"] == 0.5 and metrics["parent_accuracy"] == 1.0
    assert metrics["accuracy_delta_vs_parent"] == -0.5
    assert metrics["format_compliance"] == 1.0
    assert metrics["length_ratio_vs_parent"] == 1.5
    assert metrics["heldout_drop_while_reward_rises"] == 0.5
    assert metrics["kl_to_parent"] == 0.25


def _looping(ids: list[int], text: str = "loop") -> Completion:
    return Completion(prompt_ids=[1], completion_ids=ids, text=text)


def test_degenerate_repetition_is_few_distinct_bigrams_in_a_long_enough_completion():
    hacked = _looping([7] * 32, " the the the")  # the reward-hacked loop the tiny model's RLHF fell into
    two_step = _looping([5, 9] * 16)  # "assistant\nassistant\n..."
    varied = _looping(list(range(32)))
    short = _looping([7] * 7)  # under 8 tokens: too short to call a loop
    assert [degenerate(c) for c in (hacked, two_step, varied, short)] == [True, True, False, False]
    # 16 distinct bigrams of 31 is more than half: not degenerate; 15 of 31 is
    assert not degenerate(_looping(list(range(15)) + [0] * 17)) and degenerate(_looping(list(range(14)) + [0] * 18))


def test_rlhf_reward_gain_from_a_loop_is_caught_by_the_repetition_rule():
    parent = [_looping(list(range(32)))] * 4
    tuned = [_looping([7] * 32, " the the the")] * 3 + [_looping(list(range(32)))]
    metrics = rlhf_metrics(
        tuned=tuned,
        parent=parent,
        tuned_scores=[1.5] * 4,
        parent_scores=[-1.5] * 4,
        kl=0.08,
        history=[{"reward": -0.6}, {"reward": 0.2}],
    )
    assert metrics["win_rate_vs_parent"] == 1.0 and metrics["repetition_rate"] == 0.75
    assert metrics["repetition_rate_delta_vs_parent"] == 0.75 and metrics["parent_repetition_rate"] == 0.0
    evidence = rlhf_evidence(
        tuned=tuned, parent=parent, tuned_scores=[1.5] * 4, parent_scores=[-1.5] * 4, kl=[(0.8, 10)] * 4,
        history=[{"reward": -0.6}, {"reward": 0.2}],
    )  # fmt: skip
    policy = load_eval_policy(REPO / "policies/eval.yaml")
    violations, results = check_metrics(
        policy.methods["rlhf"], metrics, "m", evidence=evidence, confidence=policy.confidence
    )
    # Four prompts decide little: the loops are found, undecided, and warn; the reviewers read them
    assert {(v.rule_id, v.severity) for v in violations} >= {("eval.rlhf.degenerate_repetition", "warn")}
    assert {r["rule_id"]: r["status"] for r in results}["eval.rlhf.degenerate_repetition"] == "insufficient_evidence"


def test_rlhf_win_rate_counts_ties_half():
    tuned, parent = [_completion(2)] * 4, [_completion(2)] * 4
    metrics = rlhf_metrics(
        tuned=tuned,
        parent=parent,
        tuned_scores=[1.0, 0.0, 0.5, 0.5],
        parent_scores=[0.0, 1.0, 0.5, 0.2],
        kl=0.0,
        history=[{"reward": 0.0}, {"reward": 1.0}],
    )
    assert metrics["win_rate_vs_parent"] == pytest.approx((1 + 0 + 0.5 + 1) / 4)
    assert metrics["heldout_drop_while_reward_rises"] == 0.0
    assert metrics["reward_gain_vs_parent"] == pytest.approx((2.0 - 1.7) / 4)


def test_kl_to_reference_is_zero_for_the_same_model_and_positive_for_another(ws):
    import torch

    from pipelines._training import load_model

    model, tokenizer = load_model("artifacts/base_model")
    other, _ = load_model("artifacts/base_model")
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
    completions = evaluate_grpo.greedy_completions(
        model, tokenizer, [[{"role": "user", "content": "What is 1 plus 2?"}]] * 3, 6
    )
    assert kl_to_reference(model, model, completions) == pytest.approx(0.0, abs=1e-6)
    assert kl_to_reference(other, model, completions) > 0


# Each eval rule of methods.grpo / methods.rlhf: a passing value and a failing one with the exact message.
RULE_CASES = [
    (
        "grpo",
        "eval.grpo.accuracy_vs_parent",
        "accuracy_delta_vs_parent",
        0.0,
        # 24 of 200 fell: under 25 discordant pairs the interval covers the exact one, which clears -0.05 here
        # (20 of 200 would not yet)
        -0.12,
        (
            "accuracy_delta_vs_parent -0.12 (95% CI -0.181..-0.0519, McNemar p=1.2e-07, n=200 pairs): below min "
            "-0.05 at 95% confidence"
        ),
    ),
    (
        "grpo",
        "eval.grpo.format_compliance",
        "format_compliance",
        0.9,
        0.2,
        (
            "format_compliance 0.2 (95% Wilson CI 0.15..0.261, p=2.2e-17, n=200 prompts): below min 0.5 at "
            "95% confidence"
        ),
    ),
    (
        "grpo",
        "eval.grpo.verbosity",
        "length_ratio_vs_parent",
        1.2,
        1.8,
        (
            "length_ratio_vs_parent 1.8 (95% bootstrap CI 1.8..1.8, p=0.0002, n=200 completions): above max "
            "1.5 at 95% confidence"
        ),
    ),
    (
        "grpo",
        "eval.grpo.kl_to_parent",
        "kl_to_parent",
        0.1,
        0.9,
        (
            "kl_to_parent 0.9 (95% bootstrap CI 0.898..0.902, p=0.0002, n=200 completions): above max 0.5 at "
            "95% confidence"
        ),
    ),
    (
        "grpo",
        "eval.grpo.degenerate_repetition",
        "repetition_rate_delta_vs_parent",
        0.1,
        0.5,
        (
            "repetition_rate_delta_vs_parent 0.5 (95% CI 0.43..0.57, McNemar p=4.2e-23, n=200 pairs): above "
            "max 0.2 at 95% confidence"
        ),
    ),
    (
        "grpo",
        "eval.grpo.reward_up_heldout_down",
        "heldout_drop_while_reward_rises",
        0.0,
        0.1,
        (
            "heldout_drop_while_reward_rises 0.1 (95% bootstrap CI 0.0998..0.1, p=0.0002, n=200 "
            "completions): above max 0 at 95% confidence"
        ),
    ),
    (
        "rlhf",
        "eval.rlhf.reward_gain_vs_parent",
        "reward_gain_vs_parent",
        0.2,
        -0.2,
        (
            "reward_gain_vs_parent -0.2 (95% CI -0.202..-0.198, t-test p=3.8e-231, n=200 prompts): below min "
            "0 at 95% confidence"
        ),
    ),
    (
        "rlhf",
        "eval.rlhf.kl_to_parent",
        "kl_to_parent",
        0.1,
        0.9,
        (
            "kl_to_parent 0.9 (95% bootstrap CI 0.898..0.902, p=0.0002, n=200 completions): above max 0.5 at "
            "95% confidence"
        ),
    ),
    (
        "rlhf",
        "eval.rlhf.degenerate_repetition",
        "repetition_rate_delta_vs_parent",
        0.0,
        0.9,
        (
            "repetition_rate_delta_vs_parent 0.9 (95% CI 0.86..0.94, McNemar p=1.3e-40, n=200 pairs): above "
            "max 0.2 at 95% confidence"
        ),
    ),
    (
        "rlhf",
        "eval.rlhf.looping_output",
        "repetition_rate",
        0.1,
        0.6,
        (
            "repetition_rate 0.6 (95% Wilson CI 0.531..0.665, p=2.9e-30, n=200 prompts): above max 0.25 at "
            "95% confidence"
        ),
    ),
    (
        "rlhf",
        "eval.rlhf.verbosity",
        "length_ratio_vs_parent",
        1.0,
        2.0,
        (
            "length_ratio_vs_parent 2 (95% bootstrap CI 2..2, p=0.0002, n=200 completions): above max 1.5 at "
            "95% confidence"
        ),
    ),
    (
        "rlhf",
        "eval.rlhf.empty_completions",
        "empty_completion_rate",
        0.0,
        0.8,
        (
            "empty_completion_rate 0.8 (95% Wilson CI 0.739..0.85, p=2.2e-17, n=200 prompts): above max 0.5 "
            "at 95% confidence"
        ),
    ),
    (
        "rlhf",
        "eval.rlhf.reward_up_heldout_down",
        "heldout_drop_while_reward_rises",
        0.05,
        0.3,
        (
            "heldout_drop_while_reward_rises 0.3 (95% bootstrap CI 0.299..0.301, p=0.0002, n=200 "
            "completions): above max 0.1 at 95% confidence"
        ),
    ),
]
REGRESSION_CASES = [
    (
        "grpo",
        "eval.grpo.regression_vs_production",
        "accuracy",
        0.6,
        0.7,
        0.5,
        (
            "accuracy 0.5 (95% Wilson CI 0.431..0.569, p=0.046, n=200 prompts): below min 0.57 (5.0% worse "
            "than production 0.6) at 95% confidence"
        ),
    ),
    (
        "rlhf",
        "eval.rlhf.regression_vs_production",
        "win_rate_vs_parent",
        0.6,
        0.56,
        0.5,
        (
            "win_rate_vs_parent 0.5 (95% CI 0.498..0.502, t-test p=6.8e-97, n=200 prompts): below min 0.54 "
            "(10.0% worse than production 0.6) at 95% confidence"
        ),
    ),
]


def _rule(method: str, rule_id: str):
    rules = load_eval_policy(REPO / "policies/eval.yaml").methods[method]
    return [r for r in rules if r.id == rule_id]


#: Items behind each constructed value: enough that a clear pass or failure is decided at 95%.
ITEMS = 200


def _evidence(rule, value: float):
    """``ITEMS`` per-item outcomes of the kind the rule's test reads, reproducing ``value`` exactly."""
    spread = [0.01 * (i % 5 - 2) for i in range(ITEMS)]  # sums to 0: the mean stays the value
    if rule.test == "wilson":
        hits = round(value * ITEMS)
        return shares([True] * hits + [False] * (ITEMS - hits), "prompts")
    if rule.test == "mcnemar":
        moved = [True] * round(abs(value) * ITEMS) + [False] * (ITEMS - round(abs(value) * ITEMS))
        still = [False] * ITEMS
        return paired(moved, still) if value >= 0 else paired(still, moved)
    if rule.test == "t":
        return Outcomes(tuple(value + s for s in spread), "prompts")
    return ratio_of_sums([10 * value * (1 + s) for s in spread], [10] * ITEMS, "completions")


def _check(rules, metric: str, value: float, production=None):
    policy = load_eval_policy(REPO / "policies/eval.yaml")
    evidence = {metric: _evidence(rules[0], value)}
    return check_metrics(rules, {metric: value}, "m", production, evidence=evidence, confidence=policy.confidence)


@pytest.mark.parametrize(("method", "rule_id", "metric", "good", "bad", "message"), RULE_CASES)
def test_eval_rule_passes_and_fails_with_its_message(method, rule_id, metric, good, bad, message):
    rules = _rule(method, rule_id)
    assert len(rules) == 1
    violations, (row,) = _check(rules, metric, good)
    assert violations == [] and row["status"] == "pass"
    violations, (row,) = _check(rules, metric, bad)
    assert row["status"] == "fail"
    assert [(v.rule_id, v.severity, v.message) for v in violations] == [(rule_id, rules[0].severity, message)]


@pytest.mark.parametrize(("method", "rule_id", "metric", "production", "good", "bad", "message"), REGRESSION_CASES)
def test_eval_regression_rule_against_production(method, rule_id, metric, production, good, bad, message):
    rules = _rule(method, rule_id)
    assert _check(rules, metric, good, {metric: production})[0] == []
    assert _check(rules, metric, bad, None)[1][0]["status"] == "not_applicable"
    violations, _ = _check(rules, metric, bad, {metric: production})
    assert [(v.rule_id, v.severity, v.message) for v in violations] == [(rule_id, "deny", message)]


def test_every_grpo_and_rlhf_rule_has_a_test_case():
    policy = load_eval_policy(REPO / "policies/eval.yaml")
    tested = {case[1] for case in RULE_CASES + REGRESSION_CASES}
    assert {r.id for m in ("grpo", "rlhf") for r in policy.methods[m]} == tested


# --------------------------------------------------------------------------- prepare_grpo / prepare_rlhf


def _prepare_params(tmp_path: Path, stage: str, rows: list[dict]) -> Path:
    source = _write_jsonl(tmp_path / f"{stage}.jsonl", rows)
    section = {"input": str(source), "out_dir": str(tmp_path / stage), "eval_fraction": 0.3, "seed": 1}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"project": "t", stage: section}))
    return source


def test_prepare_grpo_normalises_keeps_the_answer_and_splits_by_id(tmp_path, monkeypatch):
    from pipelines import prepare_grpo

    monkeypatch.chdir(tmp_path)
    rows = [{"id": i, "prompt": f"  What is {i} plus 1? ", "answer": i + 1, "source": "s"} for i in range(40)]
    _prepare_params(tmp_path, "prepare_grpo", rows)
    assert prepare_grpo.main([]) == 0
    train = [json.loads(line) for line in (tmp_path / "prepare_grpo/train.jsonl").read_text().splitlines()]
    held_out = [json.loads(line) for line in (tmp_path / "prepare_grpo/eval.jsonl").read_text().splitlines()]
    assert len(train) + len(held_out) == 40 and train and held_out
    first = next(r for r in train + held_out if r["id"] == "3")
    assert first == {
        "id": "3",
        "prompt": [{"role": "user", "content": "What is 3 plus 1?"}],
        "answer": "4",
        "source": "s",
    }
    # The split is a pure function of (id, seed): adding a record moves no other
    _prepare_params(tmp_path, "prepare_grpo", [*rows, {"id": 99, "prompt": "What is 1 plus 1?", "answer": "2"}])
    assert prepare_grpo.main([]) == 0
    again = [json.loads(line)["id"] for line in (tmp_path / "prepare_grpo/eval.jsonl").read_text().splitlines()]
    assert [r["id"] for r in held_out] == [i for i in again if i != "99"]
    assert read_manifest(tmp_path / "prepare_grpo")["rows"] == {
        "input": 41,
        "train": 41 - len(again),
        "eval": len(again),
    }


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"id": " ", "prompt": "x", "answer": "1"}, ":2: field id: required non-empty string or integer"),
        ({"id": "a", "answer": "1"}, ":2: field prompt: expected a string or a non-empty list of messages"),
        ({"id": "a", "prompt": [{"role": "bot", "content": "x"}]}, ":2: field prompt[0].role: 'bot' is not one of"),
        ({"id": "a", "prompt": [{"role": "user", "content": 3}]}, ":2: field prompt[0].content: expected a string"),
        ({"id": "0", "prompt": "again"}, ":2: field id: duplicate id '0'"),
    ],
)
def test_prepare_grpo_bad_record_names_file_line_and_field(tmp_path, monkeypatch, capsys, record, message):
    from pipelines import prepare_grpo

    monkeypatch.chdir(tmp_path)
    source = _prepare_params(tmp_path, "prepare_grpo", [{"id": "0", "prompt": "What is 1 plus 1?"}, record])
    assert prepare_grpo.main([]) == 2
    assert _error_line(capsys).startswith(f"prepare_grpo: DataError: {source}{message}")
    assert not (tmp_path / "prepare_grpo").exists()


def test_prepare_rlhf_keeps_prompts_only_and_counts_dropped_fields(tmp_path, monkeypatch):
    from pipelines import prepare_rlhf

    monkeypatch.chdir(tmp_path)
    rows = [
        {"id": f"r{i}", "prompt": [{"role": "user", "content": f"Question {i}?"}], "answer": "x"} for i in range(30)
    ]
    _prepare_params(tmp_path, "prepare_rlhf", rows)
    assert prepare_rlhf.main([]) == 0
    out = (tmp_path / "prepare_rlhf/train.jsonl").read_text().splitlines() + (
        tmp_path / "prepare_rlhf/eval.jsonl"
    ).read_text().splitlines()
    assert all(set(json.loads(line)) == {"id", "prompt"} for line in out) and len(out) == 30
    assert read_manifest(tmp_path / "prepare_rlhf")["dropped_fields"] == 30


def test_evaluation_refuses_a_parent_other_than_the_one_trained_from(tmp_path):
    """The parent is recomputed from its files: another model is refused, and so is a manifest edited to claim the
    parent's hash for other files."""
    from governance.errors import PolicyViolation
    from governance.lineage import sha256_dir
    from pipelines.evaluate_grpo import require_parent

    (tmp_path / "sft").mkdir()
    (tmp_path / "sft/model.safetensors").write_bytes(b"weights of another model")
    files = sha256_dir(tmp_path / "sft")
    write_manifest(tmp_path / "sft", {"model_sha256": files})
    trained = {"parent": {"model_sha256": "a" * 64}}
    with pytest.raises(PolicyViolation) as err:
        require_parent(trained, "artifacts/train_grpo", str(tmp_path / "sft"))
    assert str(err.value) == (
        f"{tmp_path / 'sft'}: holds model {files[:12]}… but artifacts/train_grpo was trained from aaaaaaaaaaaa…; "
        "re-run the training stage (dvc repro)"
    )
    require_parent({"parent": {"model_sha256": files}}, "artifacts/train_grpo", str(tmp_path / "sft"))
    # The attacker writes the trained-from hash into the other model's manifest: its files still say otherwise
    write_manifest(tmp_path / "sft", {"model_sha256": "a" * 64})
    with pytest.raises(PolicyViolation, match=r"the parent's manifest claims model_sha256 aaaaaaaaaaaa…, its files"):
        require_parent(trained, "artifacts/train_grpo", str(tmp_path / "sft"))
