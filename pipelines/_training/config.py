"""TRL's and PEFT's config objects, built from a stage's params unchanged (TRL's own checks run).

A user's mistake in ``params.yaml`` (a string where TRL wants a number, an
unknown option, a value TRL refuses) becomes one :class:`ConfigError` naming
``<section>.trl.<key>``, never a traceback from inside the trainer.
"""

from __future__ import annotations

import importlib.util
import os
import re
from typing import Any, Literal

from governance.errors import ConfigError
from governance.policy import Strict


class AdapterParams(Strict):
    """The LoRA/QLoRA switch every training stage carries.

    ``method: none`` trains all weights; ``lora`` wraps the model with
    ``peft.LoraConfig(**lora)``; ``qlora`` also loads the base in 4-bit with
    bitsandbytes (the ``[gpu]`` extra; bitsandbytes 0.50 also computes 4-bit on a CPU, slowly).
    """

    method: Literal["none", "lora", "qlora"]
    lora: dict[str, Any] = {}


#: How YAML files spell "off" for TRL's strategy options, whose off value is the string "no".
OFF_WORDS = ("no", "off", "false")


def strategy_off_words(config_class: type, options: dict[str, Any]) -> dict[str, Any]:
    """``save_strategy: off`` or ``false`` (or a ``no`` some YAML 1.1 tool read as a boolean) → ``"no"``.

    Only options whose type is a transformers ``*Strategy`` enum are touched;
    a real boolean option keeps its boolean.
    """
    fields = getattr(config_class, "__dataclass_fields__", {})
    out = dict(options)
    for key, value in options.items():
        if key not in fields or "Strategy" not in str(fields[key].type):
            continue
        if value is False or (isinstance(value, str) and value.strip().lower() in OFF_WORDS):
            out[key] = "no"
    return out


def check_scalar_types(config_class: type, options: dict[str, Any], section: str) -> None:
    """A number or boolean TRL option given a value of another type is a one-line ConfigError.

    TRL's dataclasses do not check types, so ``dvc exp run -S train_sft.trl.max_steps=ten``
    would otherwise surface as a ``TypeError`` deep inside the trainer. Only options typed
    ``int``, ``float`` or ``bool`` (optionally ``| None``) are checked; an int is a valid float.
    """
    import types

    fields = getattr(config_class, "__dataclass_fields__", {})
    for key, value in options.items():
        if key not in fields or value is None:
            continue
        kind = fields[key].type
        if isinstance(kind, types.UnionType):
            members = [t for t in kind.__args__ if t is not type(None)]
            kind = members[0] if len(members) == 1 else None
        if kind not in (int, float, bool):
            continue
        ok = (
            isinstance(value, bool)
            if kind is bool
            else isinstance(value, int | float)
            and not isinstance(value, bool)
            and (kind is float or value == int(value))
        )
        if not ok:
            raise ConfigError(
                f"params.yaml: {section}.trl.{key}: {value!r} is not a{'n' if kind is int else ''} {kind.__name__}"
            )


def trl_config(config_class: type, trl: dict[str, Any], section: str):
    """Build a TRL config from params unchanged; TRL's own checks run.

    Two device-dependent defaults are filled in on a machine without CUDA:
    TRL defaults ``bf16=True``, which a CPU-only torch cannot train in, so an
    unset ``bf16`` becomes ``False``, unless the accelerate launch asked for bf16
    (``mixed_precision: bf16``: ``ACCELERATE_MIXED_PRECISION``), which DeepSpeed
    requires the TRL config to match (CPU autocast); and in a multi-process launch (accelerate's
    workers, ``WORLD_SIZE`` > 1) an unset ``use_cpu`` becomes ``True``, so the
    workers join one gloo process group instead of training alone. Unknown keys
    fail with the key.
    """
    import torch

    options = strategy_off_words(config_class, trl)
    check_scalar_types(config_class, options, section)
    if "bf16" not in options and not torch.cuda.is_available():
        # The launch's mixed_precision where accelerate set one (a DeepSpeed config checks that the two agree)
        options["bf16"] = os.environ.get("ACCELERATE_MIXED_PRECISION") == "bf16"
    if "use_cpu" not in options and not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        options["use_cpu"] = True
    try:
        return config_class(**options)
    except TypeError as exc:
        raise ConfigError(f"params.yaml: {section}.trl: {exc} (options are {config_class.__name__}'s)") from None
    except ValueError as exc:
        raise ConfigError(f"params.yaml: {section}.trl{_offending_key(options, str(exc))}: {exc}") from None


def _offending_key(options: dict[str, Any], message: str) -> str:
    """``.key`` of the one option whose text value TRL's ValueError names, else ''.

    TRL's checks (``bogus is not a valid SchedulerType``) name the value, not the option;
    the user's params name the option, so the error points at the line to fix. A value
    counts when the message starts with it or quotes it, else when it stands as a whole
    word (``"no"`` must not match "not").
    """
    texts = {key: value for key, value in options.items() if isinstance(value, str) and value}
    for named in (
        lambda v: message.startswith(f"{v} ") or f"'{v}'" in message or f'"{v}"' in message,
        lambda v: re.search(rf"(?<![\w.-]){re.escape(v)}(?![\w.-])", message) is not None,
    ):
        keys = [key for key, value in texts.items() if named(value)]
        if len(keys) == 1:
            return f".{keys[0]}"
    return ""


def peft_config(adapter: AdapterParams, section: str):
    """``peft.LoraConfig`` for lora/qlora, or None for full fine-tuning."""
    if adapter.method == "none":
        return None
    from peft import LoraConfig

    if adapter.method == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError(
            f"params.yaml: {section}.adapter.method: qlora needs bitsandbytes (4-bit), which is not installed: "
            "make gpu on a CUDA machine (docs/how-to/gpu.md), or use method: lora"
        )
    try:
        return LoraConfig(**adapter.lora)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"params.yaml: {section}.adapter.lora: {exc}") from None
