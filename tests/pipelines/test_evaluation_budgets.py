"""B3: an evaluation's size is the policy's. ``policies/eval.yaml`` ``budgets`` sets, per method, the least number of
held-out prompts generated from and the least generation and scoring budgets; params may raise them, never lower
them. Before, ``-S evaluate_dpo.generation_prompts=1`` turned the verbosity rule's deny into "insufficient evidence"
(a warning): n=8 denied a 6.9x length ratio, n=1 warned; a budget of a few tokens made every length ratio about 1."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from e2e_support import commit_reviewed

from governance.errors import PolicyViolation
from governance.evaluation import require_budgets
from pipelines import evaluate_dpo, evaluate_grpo, evaluate_kto, evaluate_orpo, evaluate_rlhf, evaluate_rm, evaluate_sft

REPO = Path(__file__).resolve().parents[2]
STAGES = {"sft": evaluate_sft, "grpo": evaluate_grpo, "rlhf": evaluate_rlhf, "dpo": evaluate_dpo,
          "orpo": evaluate_orpo, "kto": evaluate_kto, "rm": evaluate_rm}  # fmt: skip


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A checkout whose reviewed eval policy is the shipped one, with the shipped params."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").mkdir()
    shutil.copy(REPO / "policies/eval.yaml", tmp_path / "policies/eval.yaml")
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    commit_reviewed(tmp_path)
    return tmp_path


def test_the_shipped_params_meet_every_floor(checkout):
    params = yaml.safe_load(Path("params.yaml").read_text())
    policy = yaml.safe_load(Path("policies/eval.yaml").read_text())
    assert set(policy["budgets"]) == set(STAGES)
    for method, floors in policy["budgets"].items():
        section = params[f"evaluate_{method}"]
        require_budgets(method, section["policy"], {key: section[key] for key in floors})


SMALLER = [("dpo", "generation_prompts", 1), ("kto", "max_new_tokens", 4), ("rm", "max_length", 16),
           ("grpo", "max_new_tokens", 2)]  # fmt: skip


@pytest.mark.parametrize(("method", "key", "value"), SMALLER)
def test_attack_a_smaller_evaluation_is_refused_before_anything_is_read(checkout, capsys, method, key, value):
    params = yaml.safe_load(Path("params.yaml").read_text())
    floor = yaml.safe_load(Path("policies/eval.yaml").read_text())["budgets"][method][key]
    params[f"evaluate_{method}"][key] = value
    Path("params.yaml").write_text(yaml.safe_dump(params))
    assert STAGES[method].main([]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"evaluate_{method}: PolicyViolation: params.yaml: evaluate_{method}.{key}: {value} is below the floor "
        f"policies/eval.yaml sets (budgets.{method}.{key}: {floor}); an evaluation's size is the policy's, so "
        f"that its rules decide on the evidence they were written for: raise it to at least {floor}, or lower "
        "the floor in a reviewed change"
    )
    assert not Path(f"artifacts/evaluate_{method}").exists()


def test_an_unreviewed_floor_is_refused(checkout):
    policy = Path("policies/eval.yaml")
    policy.write_text(policy.read_text().replace("generation_prompts: 8", "generation_prompts: 1", 1))
    with pytest.raises(PolicyViolation, match="not the reviewed version"):
        require_budgets("dpo", "policies/eval.yaml", {"generation_prompts": 1})
