"""params.yaml survives `dvc exp run -S`: DVC's rewrite changes no value the stages read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from governance.policy import load_yaml
from pipelines._training import strategy_off_words

REPO = Path(__file__).resolve().parents[2]


def _set(data: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        data = data[key]
    data[leaf] = value


@pytest.mark.parametrize(
    ("key", "value"),
    [("train_sft.trl.learning_rate", 1e-3), ("train_dpo.trl.beta", 0.2), ("prepare_sft.eval_fraction", 0.2)],
)
def test_dvc_set_param_rewrites_only_the_value_it_sets(tmp_path, key, value):
    from dvc.utils.serialize import modify_yaml  # what `dvc exp run -S key=value` writes params.yaml with

    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    before = load_yaml(params)
    with modify_yaml(params) as data:
        _set(data, key, value)
    text = params.read_text()
    assert 'save_strategy: "no"' not in text and "save_strategy: no " in text  # DVC drops the quotes ...
    after = load_yaml(params)
    _set(before, key, value)
    assert after == before  # ... and every value still reads the same (save_strategy is the string "no")
    assert after["train_sft"]["trl"]["save_strategy"] == "no"


def test_yaml_1_2_scalars(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("a: no\nb: off\nc: 1e-3\nd: 3.0e-3\ne: true\nf: 42\ng: yes\n")
    assert load_yaml(path) == {"a": "no", "b": "off", "c": 0.001, "d": 0.003, "e": True, "f": 42, "g": "yes"}


def test_trl_strategy_off_words_mean_no():
    from trl import SFTConfig

    options = {"save_strategy": False, "eval_strategy": "off", "logging_strategy": "steps", "bf16": False}
    assert strategy_off_words(SFTConfig, options) == {
        "save_strategy": "no",
        "eval_strategy": "no",
        "logging_strategy": "steps",
        "bf16": False,  # a real boolean option keeps its boolean
    }


def test_a_mistyped_trl_number_is_one_config_line():
    from trl import SFTConfig

    from governance.errors import ConfigError
    from pipelines._training import trl_config

    with pytest.raises(ConfigError) as err:
        trl_config(SFTConfig, {"output_dir": "x", "max_steps": "ten"}, "train_sft")
    assert str(err.value) == "params.yaml: train_sft.trl.max_steps: 'ten' is not an int"


def test_a_value_trl_refuses_names_its_option(tmp_path):
    """TRL's check names the value only ('bogus is not a valid SchedulerType'); the error names the option too."""
    from trl import SFTConfig

    from governance.errors import ConfigError
    from pipelines._training import trl_config

    options = {"output_dir": str(tmp_path), "lr_scheduler_type": "bogus", "save_strategy": "no", "eval_strategy": "no"}
    with pytest.raises(ConfigError) as err:
        trl_config(SFTConfig, options, "train_sft")  # "no" stands in "not a valid": it must not be taken
    assert str(err.value).startswith(
        "params.yaml: train_sft.trl.lr_scheduler_type: bogus is not a valid SchedulerType, please select one of"
    )
