"""Build (or identify) the base model every training stage starts from.

    dvc repro base_model          # or: python -m pipelines.base_model

With ``name_or_path: builtin:tiny`` (the default) this trains a byte-level BPE
tokenizer on the shipped corpus (the copy its PII gate cleared: the stage
refuses to train unless ``pii_scan_corpus`` and ``validate_corpus`` passed
those exact bytes, as every ``train_*`` stage refuses), wraps it as a ``PreTrainedTokenizerFast`` with a
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

The manifest's ``base`` block is what every descendant's lineage carries as its
base model (:func:`pipelines._training.lineage.training_lineage`): for the
built-in model the corpus (hash, records, card with licence and
rights-reservation statement, curation, both gate decisions by hash) and what
training it cost (wall time, hardware, energy record); for a model the project
did not train, that its training data is outside the project's control.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from governance.energy import GpuEnergyMeter, energy_record
from governance.errors import ConfigError
from governance.hardware import hardware_facts
from governance.lineage import BASE_RUN_CONTEXT_FILE, environment, sha256_dir, sha256_file, write_manifest
from governance.mlflow_run import MlflowRun
from governance.policy import Strict
from governance.training_data import GatedData, read_gated_data
from pipelines._common import load_params, project_name, require_ready_setup, stage_main
from pipelines._training.lineage import dataset_provenance

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


#: What the form says of the training data of a base model the project did not train
OUTSIDE_CONTROL = (
    "outside the project's control: {name} was trained by its publisher on data this project has not seen, "
    "gated or licensed; see the publisher's own documentation"
)


class BaseModelParams(Strict):
    name_or_path: str
    license: str
    out_dir: str
    corpus: str  # builtin only: the tokenizer corpus, the copy its PII gate cleared
    gate_decisions: list[str]  # builtin only: the corpus's gate decisions (every gate policies/report.yaml requires)
    seed: int
    vocab_size: int = Field(gt=len(SPECIAL_TOKENS))
    hidden_size: int = Field(gt=0)
    intermediate_size: int = Field(gt=0)
    num_hidden_layers: int = Field(gt=0)
    num_attention_heads: int = Field(gt=0)
    num_key_value_heads: int = Field(gt=0)
    max_position_embeddings: int = Field(gt=0)


def train_tokenizer(lines: list[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on the corpus's ``lines``, wrapped for transformers."""
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
    tokenizer.train_from_iterator([line for line in lines if line.strip()], trainer=trainer)
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


def card_licence(model_path: Path) -> str | None:
    """The licence a model folder's card declares (``README.md`` front matter, as the Hugging Face hub publishes it:
    ``license``, or ``license_name`` where that is ``other``), or None where it has no card or the card names none."""
    from huggingface_hub.repocard import metadata_load

    readme = model_path / "README.md"
    if not readme.is_file():
        return None
    try:
        card = metadata_load(readme) or {}
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"{readme}: the model card's front matter is not valid YAML ({str(exc).splitlines()[0]})"
        ) from None
    declared = card.get("license")
    if isinstance(declared, list):
        declared = ", ".join(str(d) for d in declared) or None
    if isinstance(declared, str) and declared.lower() == "other" and card.get("license_name"):
        declared = str(card["license_name"])
    return str(declared) if declared else None


#: The licence files a model folder may hold (as hub repositories and source repositories name them), first found read
LICENCE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "LICENCE", "LICENCE.md", "COPYING")


def file_licence(model_path: Path) -> tuple[str, str | None] | None:
    """A model folder's licence file and the SPDX id its text is (``identify``'s ``license_id``: the text, its
    copyright line and spacing set aside, matched against the licences choosealicense.com lists, within 5% edit
    distance), or None where the folder has none. A text it does not recognise (a model's own terms: Llama's,
    Gemma's) is ``(name, None)``: nothing is claimed from it."""
    from identify.identify import license_id

    for name in LICENCE_FILES:
        path = model_path / name
        if path.is_file():
            try:
                return name, license_id(str(path))
            except (UnicodeDecodeError, OSError) as exc:
                raise ConfigError(f"{path}: the model's licence file cannot be read as text ({exc})") from None
    return None


def check_declared_licence(given: str, declared: str | None, where: str) -> None:
    """Refuse a params licence that contradicts the one the weights are published under (``where`` declares it)."""
    if declared and declared.lower() != given.lower():
        raise ConfigError(
            f"params.yaml: base_model.license: {given!r} but {where} declares {declared!r}; "
            "record the licence the weights are published under"
        )


def corpus_record(corpus: GatedData, records: int, decision_paths: list[str]) -> dict[str, Any]:
    """The corpus as the base model's lineage carries it: hash, records, provenance and gate decisions by hash."""
    path = corpus.paths[0]
    provenance = dataset_provenance(corpus).get(path, {})  # counted in the buffer the tokenizer reads
    return {
        "path": path,
        "sha256": corpus["corpus"].sha256,
        "records": records,
        "card": provenance.get("card"),
        "raw_inputs": provenance.get("inputs"),
        "curation": provenance.get("curation"),
        "licenses": provenance.get("licenses"),
        "gates": [
            {
                "gate": d.gate,
                "stage": d.stage,
                "passed": d.passed,
                "policy_version": d.policy_version,
                "counts": d.counts,
                "decision": str(p),
                "decision_sha256": sha256_file(p),
            }
            for d, p in zip(corpus.decisions, decision_paths, strict=True)
        ],
    }


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
    run_context = None  # the builtin base's build only: a model the project did not build has none
    if params.name_or_path == BUILTIN:
        # Refuse to train on a corpus its gates did not pass; read it once, that buffer is what trains
        corpus = read_gated_data("base_model", {"corpus": params.corpus}, params.gate_decisions)
        lines = [str(record.data["text"]) for record in corpus["corpus"].records()]
        started = time.perf_counter()
        meter = GpuEnergyMeter.for_this_process(rank=0)
        meter.start()
        # Train the tokenizer, then a seeded tiny Qwen2 sized to its vocabulary
        tokenizer = train_tokenizer(lines, params.vocab_size)
        model = build_tiny_model(tokenizer, params)
        energy = energy_record(meter.stop(), seconds=meter.seconds, reason=meter.reason)
        # This execution's facts (time, machine, energy): the stage's MLflow run, never the hashed folder, whose
        # bytes (dvc.lock) must be the same for every re-run, as a trained model's are (RUN_CONTEXT_KEYS)
        run_context = {
            "wall_seconds": round(time.perf_counter() - started, 3),
            "environment": {**environment(), **hardware_facts()},
            "energy": energy,
        }
        model.save_pretrained(out_dir, safe_serialization=True)
        tokenizer.save_pretrained(out_dir)
        model_path, kind = out_dir, "builtin"
        model_hash = sha256_dir(out_dir)
        corpus_ref = corpus_record(corpus, len(lines), params.gate_decisions)
        extra = {
            "corpus": corpus_ref,
            "parameters": model.num_parameters(),
            "base": {
                "name_or_path": params.name_or_path,
                "license": params.license,
                "model_sha256": model_hash,
                "trained_by_project": True,
                "training": {
                    "what": "byte-level BPE tokenizer trained on the corpus; weights randomly initialised "
                    f"(seed {params.seed}), not trained",
                },
                "corpus": corpus_ref,
            },
        }
    elif params.name_or_path.lower().endswith(".gguf"):
        # Dequantize the GGUF into an HF folder; the GGUF file's hash and declared licence are the identity
        gguf = Path(params.name_or_path).expanduser()
        if not gguf.is_file():
            raise ConfigError(f"params.yaml: base_model.name_or_path: {gguf}: file not found")
        declared = gguf_identity(gguf)
        check_declared_licence(params.license, str(declared.get("license") or "") or None, gguf.name)
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
                "trained_by_project": False,
                "training_data": OUTSIDE_CONTROL.format(name=params.name_or_path),
            },
        }
    else:
        # Record identity and content hash of an external model; nothing is copied
        model_path, kind = resolve_external_model(params.name_or_path), "external"
        # The card's licence is the publisher's: params may restate it, never replace it (as for a GGUF file)
        declared = card_licence(model_path)
        check_declared_licence(params.license, declared, f"{params.name_or_path}'s model card (README.md)")
        licence_file = file_licence(model_path)  # and its licence file's text, where it is one a matcher knows
        if licence_file is not None:
            check_declared_licence(params.license, licence_file[1], f"{params.name_or_path}'s {licence_file[0]}")
        model_hash = sha256_dir(model_path)
        extra = {
            "base": {
                "name_or_path": params.name_or_path,
                "license": params.license,
                "license_declared_by": ", ".join(
                    [
                        *(["model card (README.md)"] if declared else []),
                        *([f"{licence_file[0]} (its text)"] if licence_file and licence_file[1] else []),
                    ]
                )
                or None,  # fmt: skip
                # A licence file whose text no matcher knows is named, never read as a licence
                **({"license_file": {"name": licence_file[0], "spdx": licence_file[1]}} if licence_file else {}),
                # A hub id resolves to a cached snapshot: its folder is named by the hub commit it was downloaded at
                **({"hub_revision": model_path.name} if model_path.parent.name == "snapshots" else {}),
                "model_sha256": model_hash,
                "trained_by_project": False,
                "training_data": OUTSIDE_CONTROL.format(name=params.name_or_path),
            }
        }
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
    if run_context is not None:
        log_run_context(model_hash, run_context)
    log.info("base model %s (%s) sha256 %s", params.name_or_path, kind, model_hash[:12])
    return 0


def log_run_context(model_hash: str, run_context: dict[str, Any]) -> None:
    """The build's wall time, machine and energy as the stage's MLflow run (tagged with the model's hash, as a
    training run is): the report's chain finds them there (:func:`governance.report.chain.base_run_context`)."""
    run = MlflowRun(project_name())
    tags = {"lineage.model_sha256": model_hash, "lineage.energy.method": run_context["energy"]["method"]}
    run.start("base_model", tags)
    try:
        run.log(metrics={"wall_seconds": run_context["wall_seconds"]})
        run.log_dict(run_context, BASE_RUN_CONTEXT_FILE)
    except BaseException:
        run.end("FAILED")
        raise
    run.end()


if __name__ == "__main__":
    raise SystemExit(main())
