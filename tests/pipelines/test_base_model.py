"""The base_model stage: the offline tiny default, and a local model directory in its place."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import yaml
from corpus_support import CORPUS_GATES, CORPUS_PARAMS, gate_corpus, write_corpus
from e2e_support import commit_reviewed

from governance.errors import PolicyViolation
from governance.lineage import sha256_dir
from pipelines import base_model

REPO = Path(__file__).resolve().parents[2]

WORDS = "the bank card account claim policy reset password what is how do plus minus answer thank you".split()


def _params(tmp_path, **overrides):
    rng = random.Random(0)
    write_corpus(tmp_path, [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(400)])
    section = {
        "name_or_path": "builtin:tiny",
        "license": "apache-2.0",
        "out_dir": str(tmp_path / "base"),
        **CORPUS_PARAMS,
        "seed": 7,
        "vocab_size": 300,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 128,
        **overrides,
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"project": "t", "base_model": section}))
    return section


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """A checkout with the reviewed policies, its own store and trail: where the corpus's gates are published."""
    monkeypatch.chdir(tmp_path)
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GOVERN_REVIEWED_REF", "GOVERN_POLICY_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("GOVERN_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("GOVERN_USER", "trainer-bot")
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    commit_reviewed(tmp_path)
    return tmp_path


def _gated(tmp_path, **overrides):
    section = _params(tmp_path, **overrides)
    gate_corpus()
    return section


def test_builtin_model_is_offline_deterministic_and_chat_ready(in_tmp):
    _gated(in_tmp)
    assert base_model.main([]) == 0
    first = json.loads((in_tmp / "base/manifest.json").read_text())
    assert first["kind"] == "builtin" and first["model_sha256"] == sha256_dir(in_tmp / "base")
    # What every descendant's lineage carries: the corpus by hash with both gate decisions, and what training cost
    base = first["base"]
    assert base["trained_by_project"] is True and base["model_sha256"] == first["model_sha256"]
    assert base["corpus"]["records"] == 400 and base["corpus"]["path"] == CORPUS_PARAMS["corpus"]
    assert [(g["gate"], g["stage"], g["passed"]) for g in base["corpus"]["gates"]] == [
        ("pii", "pii_scan_corpus", True),
        ("validation", "validate_corpus", True),
    ]
    assert [g["decision"] for g in base["corpus"]["gates"]] == CORPUS_GATES
    # What this build cost (time, machine, energy) is a fact of one execution: the stage's MLflow run holds it,
    # found by the model's hash, and the hashed folder does not, so a re-run leaves dvc.lock's hash unchanged
    assert set(base["training"]) == {"what"}
    from governance.lineage import BASE_RUN_CONTEXT_FILE
    from governance.registry import client, latest_model_run

    run = latest_model_run("t", "base_model", first["model_sha256"])
    context = json.loads(
        Path(client().download_artifacts(run.info.run_id, BASE_RUN_CONTEXT_FILE, str(in_tmp))).read_text()
    )
    assert context["wall_seconds"] > 0 and context["environment"]["cpu_logical_cores"]
    assert context["energy"]["method"] != "nvml" or context["energy"]["joules"] is not None
    assert run.data.metrics["wall_seconds"] == context["wall_seconds"]
    manifest_bytes, folder_hash = (in_tmp / "base/manifest.json").read_bytes(), sha256_dir(in_tmp / "base", exclude=())
    assert base_model.main([]) == 0
    assert (in_tmp / "base/manifest.json").read_bytes() == manifest_bytes  # byte for byte, as DVC hashes it
    assert sha256_dir(in_tmp / "base", exclude=()) == folder_hash

    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(in_tmp / "base")
    model = AutoModelForCausalLM.from_pretrained(in_tmp / "base")
    assert model.config.model_type == "qwen2"
    chat = [{"role": "user", "content": "what is the card"}, {"role": "assistant", "content": "the card"}]
    encoded = tokenizer.apply_chat_template(chat, return_dict=True, return_assistant_tokens_mask=True)
    # Only the assistant turn (its text and <|im_end|>) is marked for assistant-only loss
    assert 0 < sum(encoded["assistant_masks"]) < len(encoded["input_ids"])
    assert tokenizer.decode(encoded["input_ids"]).startswith("<|im_start|>system")


def test_ungated_corpus_trains_nothing(in_tmp):
    """The tokenizer corpus is a dataset like every other: no passed gates for its bytes, no base model."""
    _params(in_tmp)
    with pytest.raises(PolicyViolation):
        base_model.main.__wrapped__([])
    assert not (in_tmp / "base/manifest.json").exists()
    # Gated, then changed: the bytes read are not the bytes the gates passed
    gate_corpus()
    with open(in_tmp / CORPUS_PARAMS["corpus"], "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "x", "text": "appended after the gates"}) + "\n")
    with pytest.raises(PolicyViolation, match="pii_scan_corpus|changed|sha256|hash"):
        base_model.main.__wrapped__([])


def test_local_directory_is_recorded_not_copied(in_tmp):
    _gated(in_tmp)
    assert base_model.main([]) == 0
    built = in_tmp / "base"
    external = in_tmp / "external"
    built.rename(external)
    _params(in_tmp, name_or_path=str(external))
    assert base_model.main([]) == 0
    manifest = json.loads((in_tmp / "base/manifest.json").read_text())
    assert manifest["kind"] == "external" and manifest["model_path"] == str(external.resolve())
    # A model the project did not train: its training data is outside the project's control, and says so
    assert manifest["base"]["trained_by_project"] is False
    assert manifest["base"]["training_data"].startswith(f"outside the project's control: {external}")
    assert manifest["model_sha256"] == sha256_dir(external)
    assert sorted(p.name for p in (in_tmp / "base").iterdir()) == ["manifest.json"]

    from pipelines._training import load_model

    model, tokenizer = load_model(in_tmp / "base")
    assert model.config.vocab_size == len(tokenizer)


def _built_elsewhere(in_tmp: Path) -> Path:
    """The built-in model, built once and moved to a folder of its own: an external model to point params at."""
    _gated(in_tmp)
    assert base_model.main([]) == 0
    external = in_tmp / "external"
    (in_tmp / "base").rename(external)
    return external


def test_a_licence_in_params_never_replaces_the_model_cards(in_tmp, capsys, monkeypatch):
    """A model folder's card (README.md front matter, as the hub publishes it) states the weights' licence: params
    may restate it, never contradict it (the report and model card would state params' value); a hub id's cached
    snapshot records the hub commit it was downloaded at."""
    import huggingface_hub.constants

    external = _built_elsewhere(in_tmp)
    (external / "README.md").write_text("---\nlicense: other\nlicense_name: llama3.1\n---\n# A model\n")
    _params(in_tmp, name_or_path=str(external), license="apache-2.0")
    assert base_model.main([]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"base_model: ConfigError: params.yaml: base_model.license: 'apache-2.0' but {external}'s model card "
        "(README.md) declares 'llama3.1'; record the licence the weights are published under"
    )
    assert not (in_tmp / "base/manifest.json").exists()
    _params(in_tmp, name_or_path=str(external), license="Llama3.1")
    assert base_model.main([]) == 0
    base = json.loads((in_tmp / "base/manifest.json").read_text())["base"]
    assert base["license_declared_by"] == "model card (README.md)" and "hub_revision" not in base

    (external / "README.md").write_text("---\nlicense: [unclosed\n---\n")
    assert base_model.main([]) == 2
    assert f"{external / 'README.md'}: the model card's front matter is not valid YAML" in capsys.readouterr().err

    # The same folder as the hub cache holds it: models--org--name/snapshots/<commit>, refs/main naming the commit
    (external / "README.md").write_text("---\nlicense: apache-2.0\n---\n")
    commit = "0123456789abcdef0123456789abcdef01234567"
    cached = in_tmp / "hub/models--someorg--tiny"
    shutil.copytree(external, cached / "snapshots" / commit)
    (cached / "refs").mkdir()
    (cached / "refs/main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(in_tmp / "hub"))
    _params(in_tmp, name_or_path="someorg/tiny", license="apache-2.0")
    assert base_model.main([]) == 0
    manifest = json.loads((in_tmp / "base/manifest.json").read_text())
    assert manifest["base"]["hub_revision"] == commit and manifest["model_sha256"] == sha256_dir(external)


MIT_TEXT = """MIT License

Copyright (c) 2026 Some Lab

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def test_a_licence_in_params_never_replaces_the_model_folders_licence_file(in_tmp, capsys):
    """A folder with no card but a LICENSE file: its text, matched to an SPDX id, states the licence as a card
    does; a text no matcher knows (a model's own terms) is named in the lineage and claims nothing."""
    external = _built_elsewhere(in_tmp)
    (external / "LICENSE").write_text(MIT_TEXT)
    _params(in_tmp, name_or_path=str(external), license="apache-2.0")
    assert base_model.main([]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"base_model: ConfigError: params.yaml: base_model.license: 'apache-2.0' but {external}'s LICENSE declares "
        "'MIT'; record the licence the weights are published under"
    )
    assert not (in_tmp / "base/manifest.json").exists()
    _params(in_tmp, name_or_path=str(external), license="mit")
    assert base_model.main([]) == 0
    base = json.loads((in_tmp / "base/manifest.json").read_text())["base"]
    assert base["license_declared_by"] == "LICENSE (its text)"
    assert base["license_file"] == {"name": "LICENSE", "spdx": "MIT"}
    # a model's own terms: named, not read as a licence
    (external / "LICENSE").write_text("LLAMA 3.1 COMMUNITY LICENSE AGREEMENT\nVersion Release Date: July 23, 2024\n")
    _params(in_tmp, name_or_path=str(external), license="llama3.1")
    assert base_model.main([]) == 0
    base = json.loads((in_tmp / "base/manifest.json").read_text())["base"]
    assert base["license_file"] == {"name": "LICENSE", "spdx": None} and base["license_declared_by"] is None
    (external / "LICENSE").write_bytes(b"\xff\xfe\x00binary")
    assert base_model.main([]) == 2
    assert f"{external / 'LICENSE'}: the model's licence file cannot be read as text" in capsys.readouterr().err


def test_missing_model_path_is_one_clear_error(in_tmp, capsys):
    _params(in_tmp, name_or_path="/nonexistent/model")
    assert base_model.main([]) == 2
    err = capsys.readouterr().err
    expected = "base_model: ConfigError: params.yaml: base_model.name_or_path: /nonexistent/model: directory not found"
    assert expected in err


def test_uncached_hub_id_says_offline(in_tmp, capsys):
    _params(in_tmp, name_or_path="someorg/not-cached-model")
    assert base_model.main([]) == 2
    assert "neither a local directory nor a model in the local Hugging Face cache" in capsys.readouterr().err


def test_params_typo_names_the_key(in_tmp, capsys):
    _params(in_tmp, hiden_size=3)
    assert base_model.main([]) == 2
    assert "params.yaml: base_model: hiden_size: unknown key (typo?)" in capsys.readouterr().err
