"""Build (or identify) the base model every training stage starts from.

    dvc repro base_model          # or: python -m pipelines.base_model

With ``name_or_path: builtin:tiny`` (the default) this trains a byte-level BPE
tokenizer on the shipped corpus, wraps it as a ``PreTrainedTokenizerFast`` with a
ChatML chat template carrying ``{% generation %}`` markers (so SFT's
assistant-only loss works) and saves a tiny randomly initialised Qwen2 with a
fixed seed — entirely offline. With an HF model id (from the local cache; the
pipeline runs with ``HF_HUB_OFFLINE=1``) or a local directory, the stage loads
nothing into the output: it records the model's identity and content hash, and
training stages load it from where it is. With a ``.gguf`` file (llama.cpp's
quantized format, how many instruct models are published for local use) the
stage dequantizes it with transformers' GGUF loader into an HF folder in the
output, and records the GGUF file's SHA-256 and its declared licence as the
base model's identity (carried into every descendant's lineage).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import Field

from governance.errors import ConfigError
from governance.lineage import sha256_dir, sha256_file, write_manifest
from governance.policy import Strict
from pipelines._common import load_params, require_ready_setup, stage_main

log = logging.getLogger(__name__)

BUILTIN = "builtin:tiny"

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# ChatML, as Qwen2 uses it, with generation markers around assistant output.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' or (message['role'] == 'system' and not loop.first) %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- elif message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- generation %}"
    "{{- message['content'] + '<|im_end|>\\n' }}"
    "{%- endgeneration %}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)


class BaseModelParams(Strict):
    name_or_path: str
    license: str
    out_dir: str
    corpus: str
    seed: int
    vocab_size: int = Field(gt=len(SPECIAL_TOKENS))
    hidden_size: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    num_hidden_layers: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    num_key_value_heads: int = Field(gt=0)
    max_position_embeddings: int = Field(gt=0)


def train_tokenizer(corpus: Path, vocab_size: int):
    """A byte-level BPE tokenizer trained on ``corpus``, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = [line for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    tokenizer.train_from_iterator(lines, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        # Marked special so decoding with skip_special_tokens drops chat markup
        extra_special_tokens=["<|im_start|>"],
        unk_token=None,
        model_max_length=1 << 30,
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def build_tiny_model(tokenizer, params: BaseModelParams):
    """A randomly initialised Qwen2 causal LM, the same weights for the same seed."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(params.seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=params.hidden_size,
        intermediate_size=params.intermediate_size,
        num_hidden_layers=params.num_hidden_layers,
        num_attention_heads=params.num_attention_heads,
        num_key_value_heads=params.num_key_value_heads,
        max_position_embeddings=params.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


#: GGUF metadata keys recorded as the base model's identity (``general.*`` of the GGUF spec)
GGUF_IDENTITY_KEYS = ("name", "organization", "basename", "finetune", "size_label", "license", "quantization_version")


def gguf_identity(path: Path) -> dict[str, Any]:
    """The ``general.*`` metadata a GGUF file declares about itself (name, licence, ...)."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
    except (ValueError, OSError) as exc:
        raise ConfigError(f"params.yaml: base_model.name_or_path: {path}: not a readable GGUF file ({exc})") from None
    out: dict[str, Any] = {}
    for key in GGUF_IDENTITY_KEYS:
        field = reader.fields.get(f"general.{key}")
        if field is not None:
            out[key] = field.contents()
    file_type = reader.fields.get("general.file_type")
    if file_type is not None:
        out["file_type"] = int(file_type.contents())
    return out


def dequantize_gguf(path: Path, out_dir: Path) -> int:
    """Load a GGUF file with transformers (dequantized to float32) and save it as an HF folder; returns parameters."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(
            path.parent,
            gguf_file=path.name,
            # Dense float32 weights, no GGUF quantizer left on the model: it must save as a plain HF folder
            quantization_config=GgufConfig(dequantize=True),
            dtype=torch.float32,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"params.yaml: base_model.name_or_path: {path}: transformers cannot load this GGUF "
            f"({str(exc).splitlines()[0][:200]})"
        ) from None
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        # The legacy GGUF path unpacks every tensor to float at load time yet leaves the quantizer attached
        if any(not p.is_floating_point() for p in model.parameters()):
            raise ConfigError(f"params.yaml: base_model.name_or_path: {path}: GGUF weights were not dequantized")
        quantizer.remove_quantization_config(model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return model.num_parameters()


def resolve_external_model(name_or_path: str) -> Path:
    """A local directory as-is, or an HF model id from the local cache (never the network)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"params.yaml: base_model.name_or_path: {path} has no config.json; not a model directory")
        return path.resolve()
    if path.is_absolute() or name_or_path.startswith((".", "~")) or name_or_path.count("/") > 1:
        raise ConfigError(f"params.yaml: base_model.name_or_path: {name_or_path}: directory not found")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(name_or_path, local_files_only=True))
    except (LocalEntryNotFoundError, HfHubHTTPError, ValueError, OSError):
        raise ConfigError(
            f"params.yaml: base_model.name_or_path: {name_or_path!r} is neither a local directory nor a model in the "
            "local Hugging Face cache (the pipeline runs offline: download it first, or give a directory)"
        ) from None


@stage_main
def main(argv: list[str] | None = None) -> int:
    # Every set-up requirement (server, identity, trail, keys) checked before any work: all problems at once
    require_ready_setup()
    params = load_params("base_model", BaseModelParams)
    out_dir = Path(params.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.iterdir():
        if stale.is_file():
            stale.unlink()
    if params.name_or_path == BUILTIN:
        corpus = Path(params.corpus)
        if not corpus.is_file():
            raise ConfigError(f"params.yaml: base_model.corpus: {corpus}: file not found")
        # Train the tokenizer, then a seeded tiny Qwen2 sized to its vocabulary
        tokenizer = train_tokenizer(corpus, params.vocab_size)
        model = build_tiny_model(tokenizer, params)
        model.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)
        model_path, kind = out_dir, "builtin"
        extra = {"corpus": {"path": str(corpus), "sha256": sha256_file(corpus)}, "parameters": model.num_parameters()}
        model_hash = sha256_dir(out_dir)
    elif params.name_or_path.lower().endswith(".gguf"):
        # Dequantize the GGUF into an HF folder; the GGUF file's hash and declared licence are the identity
        gguf = Path(params.name_or_path).expanduser()
        if not gguf.is_file():
            raise ConfigError(f"params.yaml: base_model.name_or_path: {gguf}: file not found")
        declared = gguf_identity(gguf)
        if declared.get("license") and str(declared["license"]).lower() != params.license.lower():
            raise ConfigError(
                f"params.yaml: base_model.license: {params.license!r} but {gguf.name} declares "
                f"{declared['license']!r}; record the licence the weights are published under"
            )
        gguf_sha256 = sha256_file(gguf)
        parameters = dequantize_gguf(gguf, out_dir)
        model_path, kind, model_hash = out_dir, "gguf", sha256_dir(out_dir)
        extra = {
            "parameters": parameters,
            "gguf": {"path": str(gguf), "sha256": gguf_sha256, "metadata": declared},
            # What every descendant's lineage carries as its base model (see pipelines/_training.py)
            "base": {
                "name_or_path": params.name_or_path,
                "license": params.license,
                "model_sha256": model_hash,
                "gguf_sha256": gguf_sha256,
                "format": "gguf",
            },
        }
    else:
        # Record identity and content hash of an external model; nothing is copied
        model_path, kind = resolve_external_model(params.name_or_path), "external"
        model_hash = sha256_dir(model_path)
        extra = {}
    write_manifest(
        out_dir,
        {
            "stage": "base_model",
            "kind": kind,
            "name_or_path": params.name_or_path,
            "model_path": str(model_path),
            "model_sha256": model_hash,
            "license": params.license,
            "params": params.model_dump(),
            **extra,
        },
    )
    log.info("base model %s (%s) sha256 %s", params.name_or_path, kind, model_hash[:12])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
