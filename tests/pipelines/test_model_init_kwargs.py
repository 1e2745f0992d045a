"""TRL's ``model_init_kwargs`` in a training stage's ``trl`` params: the stage loads the model, so it applies them.

TRL reads ``SFTConfig.model_init_kwargs`` only when it loads a model by name; the stages
pass a loaded model, so :func:`pipelines._training.models.load_model` applies them (the
GPU profile's ``attn_implementation: flex_attention``). Checked on a tiny saved Qwen2:
the loaded model has the attention and dtype asked for; a dtype that is not one, or a
quantisation config (QLoRA is ``adapter.method``), or any other option (``trust_remote_code``
would run a model folder's own code), is refused naming the field.
"""

from __future__ import annotations

import re

import pytest
import torch
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

from governance.errors import ConfigError
from governance.lineage import write_manifest
from pipelines._training.models import load_model


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny")
    config = Qwen2Config(
        vocab_size=300, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1,
    )  # fmt: skip
    Qwen2ForCausalLM(config).save_pretrained(path)
    AutoTokenizer.from_pretrained("tests/fixtures/smollm2_tokenizer").save_pretrained(path)
    write_manifest(path, {"model_path": str(path)})  # as a stage's output folder records it
    return path


def test_the_stage_loads_the_model_with_trls_model_init_kwargs(tiny_model_dir):
    model, _ = load_model(tiny_model_dir, init_kwargs={"attn_implementation": "eager", "dtype": "bfloat16"})
    assert model.config._attn_implementation == "eager"
    assert next(model.parameters()).dtype == torch.bfloat16
    default, _ = load_model(tiny_model_dir)
    assert default.config._attn_implementation == "sdpa"  # transformers' default when nothing is asked


@pytest.mark.parametrize(
    ("init_kwargs", "message"),
    [
        ({"dtype": "bfloat17"}, "train_sft.trl.model_init_kwargs.dtype: 'bfloat17' is not a torch dtype"),
        ({"quantization_config": {"load_in_4bit": True}}, "use train_sft.adapter.method: qlora"),
        # a model folder's own Python must not be switched on by a params override
        (
            {"trust_remote_code": True},
            "train_sft.trl.model_init_kwargs.trust_remote_code: not applied by the stages "
            "(they apply attn_implementation, dtype)",
        ),
        ({"revision": "main"}, "train_sft.trl.model_init_kwargs.revision: not applied by the stages"),
        (
            {"attn_implementation": "kernels-community/flash-attn"},
            "train_sft.trl.model_init_kwargs.attn_implementation: 'kernels-community/flash-attn' names a Hub kernel",
        ),
    ],
)
def test_a_bad_model_init_kwarg_is_refused_naming_the_field(tiny_model_dir, init_kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_model(tiny_model_dir, section="train_sft", init_kwargs=init_kwargs)
