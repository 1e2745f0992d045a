"""A training or evaluate stage's model: loading it (with its adapter) and saving it.

The model a stage starts from is the one its parent stage's manifest names
(:func:`base_model_path`); what it saves is a full model with any LoRA
adapter merged in, so the next stage loads it without peft.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from governance.errors import ConfigError
from governance.lineage import read_manifest
from pipelines._training.config import AdapterParams, peft_config


def base_model_path(model_dir: str | Path) -> Path:
    """Where the model recorded by a base/parent stage's manifest lives."""
    manifest = read_manifest(model_dir)
    return Path(manifest.get("model_path", model_dir))


#: TRL's ``model_init_kwargs`` the training stages apply when they load a model (:func:`load_model`).
APPLIED_INIT_KWARGS = frozenset({"attn_implementation", "dtype"})


def load_model(
    model_dir: str | Path,
    adapter: AdapterParams | None = None,
    section: str = "",
    *,
    auto_class=None,
    init_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
):
    """Load model and tokenizer from a stage output (or the path its manifest names).

    ``auto_class`` is transformers' Auto class to load with (default
    ``AutoModelForCausalLM``; a reward model passes
    ``AutoModelForSequenceClassification`` and ``num_labels=1``); ``kwargs`` go
    to its ``from_pretrained``. ``init_kwargs`` is TRL's ``model_init_kwargs``
    from the stage's ``trl`` params (``attn_implementation``, ``dtype`` as a
    name), applied as TRL applies it when it loads a model itself. A QLoRA
    ``adapter`` loads the weights in 4 bits.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = base_model_path(model_dir)
    for key, value in (init_kwargs or {}).items():
        if key == "quantization_config":
            raise ConfigError(
                f"params.yaml: {section}.trl.model_init_kwargs.quantization_config: use {section}.adapter.method: qlora"
            )
        if key not in APPLIED_INIT_KWARGS:
            # trust_remote_code would run a model folder's own Python, revision/token reach for a hub: none of
            # that may ride in on a params override, so only what changes how the same weights compute passes
            raise ConfigError(
                f"params.yaml: {section}.trl.model_init_kwargs.{key}: not applied by the stages "
                f"(they apply {', '.join(sorted(APPLIED_INIT_KWARGS))})"
            )
        if key == "attn_implementation" and "/" in str(value):  # "kernels-community/...": a kernel from a hub
            raise ConfigError(
                f"params.yaml: {section}.trl.model_init_kwargs.attn_implementation: {value!r} names a Hub kernel; "
                "the stages load offline: use sdpa, eager, flex_attention or an installed flash_attention_2"
            )
        if key == "dtype" and isinstance(value, str) and value != "auto":
            if not isinstance(getattr(torch, value, None), torch.dtype):
                raise ConfigError(f"params.yaml: {section}.trl.model_init_kwargs.dtype: {value!r} is not a torch dtype")
            value = getattr(torch, value)
        kwargs[key] = value
    kwargs.setdefault("dtype", torch.float32 if not torch.cuda.is_available() else torch.bfloat16)
    if adapter is not None and adapter.method == "qlora":
        peft_config(adapter, section)  # raises the clear CPU error first
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = (auto_class or AutoModelForCausalLM).from_pretrained(path, **kwargs)
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
