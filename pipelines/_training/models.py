"""A training or evaluate stage's model: loading it (with its adapter), saving it, and the imports it skips.

The model a stage starts from is the one its parent stage's manifest names
(:func:`base_model_path`); what it saves is a full model with any LoRA
adapter merged in, so the next stage loads it without peft.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from governance.errors import ConfigError, GovernanceError
from governance.lineage import read_manifest
from pipelines._common import PARAMS_FILE, load_all_params, without_optional_backends
from pipelines._training.config import AdapterParams, peft_config

#: Optional backends transformers imports whenever installed and no training stage calls:
#: scipy for object-detection losses (~0.45 s of imports).
UNUSED_BACKENDS = ("scipy",)


def leave_out_unused_backends(section: str, params_file: Path = PARAMS_FILE) -> None:
    """For a training stage's ``__main__`` only: libraries it never calls stay unimported (~1 CPU s).

    transformers and TRL import scipy and peft as optional backends whenever they are
    installed (peft alone ~0.8 s). scipy is left out always, peft when the section's
    ``adapter.method`` is ``none`` (full fine-tuning never builds an adapter). An unreadable
    params file leaves everything in: the stage itself then reports it.
    """
    try:
        method = (load_all_params(params_file).get(section) or {}).get("adapter", {}).get("method")
    except (GovernanceError, AttributeError):
        method = None
    without_optional_backends(*UNUSED_BACKENDS, *(["peft"] if method == "none" else []))


def base_model_path(model_dir: str | Path) -> Path:
    """Where the model recorded by a base/parent stage's manifest lives."""
    manifest = read_manifest(model_dir)
    return Path(manifest.get("model_path", model_dir))


def load_causal_lm(model_dir: str | Path, adapter: AdapterParams | None = None, section: str = ""):
    """Load model and tokenizer from a stage output (or the path its manifest names)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = base_model_path(model_dir)
    kwargs: dict[str, Any] = {"dtype": torch.float32 if not torch.cuda.is_available() else torch.bfloat16}
    if adapter is not None and adapter.method == "qlora":
        peft_config(adapter, section)  # raises the clear CPU error first
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot load model ({str(exc).splitlines()[0][:200]})") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def save_model(model, tokenizer, out_dir: str | Path) -> None:
    """Save a full model (LoRA merged in) so the next stage can start from it."""
    peft = sys.modules.get("peft")  # a PeftModel exists only where peft was imported
    if peft is not None and isinstance(model, peft.PeftModel):
        model = model.merge_and_unload()
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
