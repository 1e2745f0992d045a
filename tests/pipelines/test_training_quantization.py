"""QLoRA's 4-bit base in the lineage: the quantisation config read off the model that trained, through peft.

bitsandbytes needs CUDA, so no model here is really quantised: the config is set on a
tiny Qwen2 as transformers sets it when it loads with ``quantization_config``
(``model.config.quantization_config``), and read back through the LoRA wrapper.
"""

from __future__ import annotations

import torch
from peft import LoraConfig, get_peft_model
from transformers import BitsAndBytesConfig, Qwen2Config, Qwen2ForCausalLM

from pipelines._training.recording import quantization_record


def _tiny() -> Qwen2ForCausalLM:
    config = Qwen2Config(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1,
    )  # fmt: skip
    return Qwen2ForCausalLM(config)


def test_an_unquantised_model_records_none():
    assert quantization_record(_tiny()) is None


def test_the_4bit_config_is_read_through_the_lora_wrapper_as_json():
    model = _tiny()
    # What pipelines/_training/models.py passes for adapter.method: qlora
    model.config.quantization_config = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
    )
    wrapped = get_peft_model(model, LoraConfig(r=2, target_modules="all-linear", task_type="CAUSAL_LM"))
    record = quantization_record(wrapped)
    assert record["quant_method"] == "bitsandbytes"
    assert record["load_in_4bit"] is True and record["bnb_4bit_quant_type"] == "nf4"
    assert record["bnb_4bit_compute_dtype"] == "bfloat16"  # a dtype becomes its name: JSON, as the lineage is
