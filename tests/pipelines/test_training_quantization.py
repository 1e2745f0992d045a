"""QLoRA's 4-bit base: its config in the lineage, and the adapter merged into the base unquantised.

The first tests set the config on a tiny Qwen2 as transformers sets it when it loads with
``quantization_config`` and read it back through the LoRA wrapper. The last quantises a tiny
Qwen2 for real with bitsandbytes (its CPU backend), in its own interpreter: bitsandbytes lives
beside the venv (``.venv/qlora-cpu``, installed by ``make test``), as peft binds its 4-bit
layers at import.
"""

from __future__ import annotations

from pathlib import Path

import pytest
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


# --------------------------------------------------------------------------- a real 4-bit base (bitsandbytes on CPU)

QLORA_SITE = Path(__file__).resolve().parents[2] / ".venv" / "qlora-cpu"  # make test installs bitsandbytes here

MERGE_CHECK = """
import sys, torch
from pathlib import Path
from transformers import Qwen2Config, Qwen2ForCausalLM
from peft import get_peft_model
from governance.errors import DataError
from governance.lineage import write_manifest
from pipelines._training.config import AdapterParams, peft_config
from pipelines._training.models import load_model, save_model

root = Path(sys.argv[1])
torch.manual_seed(0)
config = Qwen2Config(vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                     num_key_value_heads=2)
Qwen2ForCausalLM(config).save_pretrained(root / "base")
write_manifest(root / "base", {"stage": "base_model"})
class Tokenizer:
    pad_token = "<pad>"
    def save_pretrained(self, out): (Path(out) / "tokenizer.json").write_text("{}")
import transformers
transformers.AutoTokenizer.from_pretrained = lambda *a, **k: Tokenizer()  # the tiny base has no tokenizer
adapter = AdapterParams(method="qlora", lora={"r": 4, "target_modules": "all-linear", "init_lora_weights": False})
def trained():
    model, _ = load_model(root / "base", adapter, "train_sft")
    return get_peft_model(model, peft_config(adapter, "train_sft"))
ids = torch.randint(0, 96, (1, 10))
model = trained()
with torch.no_grad():
    lora = model(input_ids=ids).logits
    with model.disable_adapter():
        base = model(input_ids=ids).logits
save_model(model, Tokenizer(), root / "out")
merged = Qwen2ForCausalLM.from_pretrained(root / "out")
with torch.no_grad():
    dense = merged(input_ids=ids).logits
print("adapter", (lora - base).abs().max().item(), "merged", (dense - lora).abs().max().item())
# A base swapped while the stage trained is refused, not merged
model = trained()
weights = root / "base" / "model.safetensors"
weights.write_bytes(weights.read_bytes()[:-8] + bytes(8))
try:
    save_model(model, Tokenizer(), root / "swapped")
except DataError as exc:
    print("refused", exc)
"""


def test_a_qlora_adapter_merges_into_its_base_unquantised_and_a_swapped_base_is_refused(tmp_path):
    import os
    import subprocess
    import sys

    if not (QLORA_SITE / "bitsandbytes").is_dir():
        pytest.skip(f"{QLORA_SITE}: no bitsandbytes (make test installs it there)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(QLORA_SITE), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-c", MERGE_CHECK, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [figures] = [line.split() for line in result.stdout.splitlines() if line.startswith("adapter ")]
    adapter_effect, merged_error = float(figures[1]), float(figures[3])
    # The dense merge computes what trained, up to the 4-bit rounding of the base: far less than the adapter's effect
    assert merged_error < 0.2 * adapter_effect, result.stdout
    [refusal] = [line for line in result.stdout.splitlines() if line.startswith("refused ")]
    assert "the QLoRA base changed while the stage trained on it" in refusal and "nothing merged" in refusal
    assert not (tmp_path / "swapped" / "model.safetensors").exists()
