"""A training or evaluate stage's model: loading it (with its adapter) and saving it.

The model a stage starts from is the one its parent stage's manifest names
(:func:`base_model_path`); what it saves is a full model with any LoRA
adapter merged in, so the next stage loads it without peft.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from governance.errors import ConfigError, DataError, PolicyViolation
from governance.lineage import hashed_copy, model_folder, read_manifest
from pipelines._training.config import AdapterParams, peft_config


def base_model_path(model_dir: str | Path) -> Path:
    """Where the model recorded by a base/parent stage's manifest lives."""
    manifest = read_manifest(model_dir)
    return Path(manifest.get("model_path", model_dir))


#: The attribute every model :func:`load_model` returns carries: the sha256 of the files it was loaded from.
LOADED_SHA256 = "governed_loaded_sha256"


@contextlib.contextmanager
def recorded_model(
    model_dir: str | Path, what: str = "model", *, expect_sha256: str | None = None
) -> Iterator[tuple[Path, str]]:
    """The model a stage output's manifest records, as a private copy to load from, and its sha256.

    The copy is hashed as it is made (:func:`governance.lineage.hashed_copy`) and must hash to the
    ``model_sha256`` the manifest records, so the model a stage loads is the model its lineage, its
    evaluation's decision and the registry name: files changed since the stage that wrote them are
    refused, and a swap while the stage loads never reaches the copy it loads from.

    ``expect_sha256`` is the hash the calling stage has already recorded for this model (its decision's
    ``model_sha256``, its lineage's parent): the copy must hash to it too. The manifest is read again here, so
    without it a manifest swapped between the stage's first read and this one (``model_path`` pointed at other
    files with their own hash) would load other weights than the ones the stage records, and swap back unseen.
    """
    manifest, path = model_folder(model_dir)
    recorded = manifest.get("model_sha256")
    with hashed_copy(path) as (copy, digest):
        if recorded is not None and digest != recorded:
            stage = manifest.get("stage") or "the stage that wrote it"
            raise PolicyViolation(
                f"{path}: the {what}'s files hash to {digest[:12]}… but {Path(model_dir) / 'manifest.json'} "
                f"recorded {str(recorded)[:12]}…; it changed after {stage} wrote it, nothing loaded: "
                f"re-run it, dvc repro -f {stage}"
            )
        if expect_sha256 is not None and digest != expect_sha256:
            raise PolicyViolation(
                f"{path}: the {what} about to be loaded hashes to {digest[:12]}…, but this stage recorded "
                f"{expect_sha256[:12]}… for {model_dir} when it started: {Path(model_dir) / 'manifest.json'} or the "
                "files it names changed while the stage ran; nothing loaded, nothing recorded: re-run the stage"
            )
        yield copy, digest


#: The attribute a 4-bit base loaded by :func:`load_model` carries: (its folder, that folder's sha256 when loaded).
QLORA_SOURCE = "governed_qlora_source"

#: TRL's ``model_init_kwargs`` the training stages apply when they load a model (:func:`load_model`).
APPLIED_INIT_KWARGS = frozenset({"attn_implementation", "dtype"})


def load_model(
    model_dir: str | Path,
    adapter: AdapterParams | None = None,
    section: str = "",
    *,
    expect_sha256: str | None = None,
    auto_class=None,
    init_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
):
    """Load model and tokenizer from a stage output (or the path its manifest names).

    ``expect_sha256`` is the hash the stage records for the model (its decision's, its lineage's parent): the
    files loaded must have it (:func:`recorded_model`). Every stage passes it.

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
    path = base_model_path(model_dir)
    # Loaded from a private copy hashed as it was made: the model loaded is the model the manifest records
    with recorded_model(model_dir, expect_sha256=expect_sha256) as (copy, digest):
        try:
            tokenizer = AutoTokenizer.from_pretrained(copy)
            model = (auto_class or AutoModelForCausalLM).from_pretrained(copy, **kwargs)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot load model ({str(exc).splitlines()[0][:200]})") from None
    name_as_loaded(model, tokenizer, path, digest)
    # A QLoRA base is read again, unquantised, to merge the adapter into (save_model), and must hash the same
    if "quantization_config" in kwargs:
        setattr(model, QLORA_SOURCE, (str(path), digest))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def name_as_loaded(model, tokenizer, path: Path, digest: str) -> None:
    """Name a model loaded from a private copy by its folder (what its config saves), and keep the copy's hash."""
    model.config._name_or_path = str(path)  # else peft's adapter_config.json and TRL's card name the deleted copy
    tokenizer.name_or_path = str(path)
    setattr(model, LOADED_SHA256, digest)


#: Where a LoRA/QLoRA stage output keeps its trained adapter, beside the merged model (peft's format).
ADAPTER_DIR = "adapter"


def save_model(model, tokenizer, out_dir: str | Path) -> None:
    """Save a full model (LoRA merged in) so the next stage can start from it.

    A LoRA or QLoRA model also keeps its adapter in ``<out_dir>/adapter`` (the
    model's hash and its registered artifacts cover it). A QLoRA adapter is not
    merged into the 4-bit base as peft's ``merge_and_unload`` would do it: that
    rounds the merged weights back to 4 bits and leaves a model only
    bitsandbytes can load. As peft's and transformers' QLoRA guides advise, the
    base is loaded again unquantised, in the dtype its unquantised layers had,
    and the adapter merged into it: a dense model that the evaluation, the next
    stage and the registry load without bitsandbytes. The lineage keeps the
    4-bit config the adapter trained under. (Dequantising the trained NF4 weights
    in memory instead is not exact on a CPU: bitsandbytes 0.50 repacks them for
    its CPU kernel at an evaluation step, with the scales cast to bf16.)
    """
    out_dir = Path(out_dir)
    peft = sys.modules.get("peft")  # a PeftModel exists only where peft was imported
    if peft is not None and isinstance(model, peft.PeftModel):
        model.save_pretrained(out_dir / ADAPTER_DIR)
        (out_dir / ADAPTER_DIR / "README.md").unlink(missing_ok=True)  # peft's empty card; the stage writes its own
        model = _merged_dense(model, out_dir / ADAPTER_DIR) if _is_quantized(model) else model.merge_and_unload()
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def _is_quantized(model) -> bool:
    return getattr(model.get_base_model().config, "quantization_config", None) is not None


def _merged_dense(model, adapter_dir: Path):
    """The trained adapter (its weights in memory, not the copy in ``adapter_dir``) merged into the QLoRA
    base loaded again without quantisation.

    The base is read again from disk, through a private copy that must hash to what the stage loaded in 4 bits
    (:func:`load_model`): a base swapped during training, or while it is read again, is refused, not merged.
    """
    import copy

    import peft

    base = model.get_base_model()
    source, digest = getattr(base, QLORA_SOURCE, (None, None))
    if source is None:
        raise ConfigError(f"{adapter_dir}: the QLoRA base was not loaded by load_model; its source is unknown")
    config = copy.deepcopy(base.config)  # the stage's own settings (num_labels, pad token), without 4 bits
    for attribute in ("quantization_config", "_pre_quantization_dtype"):
        config.__dict__.pop(attribute, None)
    dtype = base.get_input_embeddings().weight.dtype  # the dtype the unquantised layers loaded in
    with hashed_copy(source) as (copy, now):
        if now != digest:
            raise DataError(
                f"{source}: the QLoRA base changed while the stage trained on it (sha256 {digest[:12]}… when loaded, "
                f"{now[:12]}… now); nothing merged: re-run the stage"
            )
        dense = type(base).from_pretrained(copy, config=config, dtype=dtype)
    dense.config._name_or_path = source
    # The adapter as it trained, from memory: the copy just written to adapter_dir is not read back
    name = model.active_adapter
    trained = {k: v.detach().clone() for k, v in peft.get_peft_model_state_dict(model, adapter_name=name).items()}
    merged = peft.get_peft_model(dense, model.peft_config[name], adapter_name=name)
    peft.set_peft_model_state_dict(merged, trained, adapter_name=name)
    return merged.merge_and_unload()
