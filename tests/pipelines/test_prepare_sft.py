"""prepare_sft: TRL conversational normalisation, a stable split, and clear errors."""

from __future__ import annotations

import json

import pytest
import yaml

from pipelines import prepare_sft


def _conv(i, system=False):
    messages = [{"role": "user", "content": f" question {i} "}, {"role": "assistant", "content": f"answer {i}"}]
    if system:
        messages.insert(0, {"role": "system", "content": "be brief"})
    return {"id": f"sft-{i:04d}", "messages": messages, "source": "s", "license": "cc-by-4.0"}


@pytest.fixture
def stage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def run(rows, **overrides):
        raw = tmp_path / "raw.jsonl"
        raw.write_text("".join(json.dumps(r) + "\n" if isinstance(r, dict) else r for r in rows))
        section = {"input": str(raw), "out_dir": "prepared", "eval_fraction": 0.2, "seed": 1, **overrides}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump({"prepare_sft": section}))
        return prepare_sft.main([])

    return run


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_split_is_deterministic_and_stable_when_records_are_added(stage, tmp_path):
    rows = [_conv(i, system=i % 3 == 0) for i in range(100)]
    assert stage(rows) == 0
    eval_ids = {r["id"] for r in _read(tmp_path / "prepared/eval.jsonl")}
    train = _read(tmp_path / "prepared/train.jsonl")
    assert 5 < len(eval_ids) < 40 and len(train) + len(eval_ids) == 100
    assert train[0]["messages"][-1]["role"] == "assistant"
    assert all(m["content"] == m["content"].strip() for r in train for m in r["messages"])
    assert stage(rows + [_conv(i) for i in range(100, 150)]) == 0
    later = {r["id"] for r in _read(tmp_path / "prepared/eval.jsonl")}
    assert eval_ids <= later
    manifest = json.loads((tmp_path / "prepared/manifest.json").read_text())
    assert manifest["rows"] == {"input": 150, "train": 150 - len(later), "eval": len(later)}


def test_prompt_completion_becomes_messages(stage, tmp_path):
    rows = [{"id": i, "prompt": f"p{i}", "completion": f"c{i}"} for i in range(30)]
    assert stage(rows) == 0
    row = _read(tmp_path / "prepared/train.jsonl")[0]
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"id": "x", "messages": [\n', "raw.jsonl:3: invalid JSON"),
        ({"id": "x", "messages": [{"role": "bot", "content": "hi"}]}, "raw.jsonl:3: field messages[0].role: 'bot'"),
        ({"id": "x", "messages": [{"role": "user", "content": None}]}, "messages[0].content: expected"),
        ({"id": "", "messages": [{"role": "user", "content": "x"}]}, "raw.jsonl:3: field id: required"),
        ({"id": "sft-0000", "messages": [{"role": "user", "content": "x"}]}, "raw.jsonl:3: field id: duplicate id"),
    ],
)
def test_bad_records_stop_the_stage_with_file_line_field(stage, tmp_path, capsys, bad, message):
    assert stage([_conv(0), _conv(1), bad]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "prepared/train.jsonl").exists()


def test_a_published_shape_compressed_with_a_card_is_recorded_in_the_manifest(tmp_path, monkeypatch):
    import gzip

    monkeypatch.chdir(tmp_path)
    rows = [
        {"conversations": [{"from": "human", "value": f"Question {i}?"}, {"from": "gpt", "value": f"Answer {i}."}]}
        for i in range(40)
    ]
    raw = tmp_path / "sharegpt.json.gz"
    raw.write_bytes(gzip.compress(json.dumps(rows + rows[:2]).encode()))  # one JSON array, two exact duplicates
    section = {
        "input": str(raw),
        "out_dir": "prepared",
        "eval_fraction": 0.2,
        "seed": 1,
        "card": {"source": "a team export", "license": "cc-by-4.0", "collection": "agents' chats, consented"},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"prepare_sft": section}))
    assert prepare_sft.main([]) == 0
    manifest = json.loads((tmp_path / "prepared/manifest.json").read_text())
    assert manifest["format"] == {"name": "sharegpt", "kind": "sft", "detected": True}
    assert manifest["inputs"][str(raw)]["reader"] == "gzip+json" and len(manifest["inputs"][str(raw)]["sha256"]) == 64
    assert manifest["card"]["license"] == "cc-by-4.0" and manifest["card"]["origin"]["license"] == "params"
    steps = {s["step"]: s for s in manifest["curation"]}
    assert steps["drop exact duplicates (same content-hash id)"]["dropped"] == 2
    assert manifest["curation"][-1]["rows_out"] == manifest["rows"]["input"] == 40
    train = _read(tmp_path / "prepared/train.jsonl")
    assert train[0]["messages"][0]["role"] == "user" and train[0]["id"].startswith("h")
