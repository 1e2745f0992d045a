"""Datasets in their published shapes: every format auto-detected and named, every reader, exact errors.

The fixtures are written here in each published shape (a few records each), not
copied from public datasets.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from governance.datasets import DatasetParams, prepare_dataset
from governance.datasets.formats import formats_for
from governance.errors import ConfigError, DataError

KEEP = ("source", "license")
#: What the preference/KTO stages carry: annotation provenance for the validation gate
PROVENANCE = ("annotator_id", "guideline_version", "ratings", "source", "license")
U, A, S = "user", "assistant", "system"


def _m(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


#: (format, kind, raw records, the canonical first record without its id)
CASES = [
    (
        "messages",
        "sft",
        [{"id": "a", "messages": [_m(U, " Hi "), _m(A, "Hello.")], "license": "cc0"}],
        {"messages": [_m(U, "Hi"), _m(A, "Hello.")], "license": "cc0"},
    ),
    (
        "messages",  # OpenAI fine-tuning: content as a list of text parts
        "sft",
        [{"messages": [_m(S, "Be brief."), {"role": U, "content": [{"type": "text", "text": "Hi"}]}, _m(A, "Yo")]}],
        {"messages": [_m(S, "Be brief."), _m(U, "Hi"), _m(A, "Yo")]},
    ),
    (
        "openai_chat",
        "sft",
        [
            {
                "title": "t",
                "current_node": "n3",
                "mapping": {
                    "n0": {"id": "n0", "message": None, "parent": None, "children": ["n1"]},
                    "n1": {
                        "message": {"author": {"role": S}, "content": {"content_type": "text", "parts": [""]}},
                        "parent": "n0",
                        "children": ["n2"],
                    },
                    "n2": {
                        "message": {"author": {"role": U}, "content": {"content_type": "text", "parts": ["2+2?"]}},
                        "parent": "n1",
                        "children": ["n3"],
                    },
                    "n3": {
                        "message": {"author": {"role": A}, "content": {"content_type": "text", "parts": ["4"]}},
                        "parent": "n2",
                        "children": [],
                    },
                },
            }
        ],
        {"messages": [_m(U, "2+2?"), _m(A, "4")]},
    ),
    (
        "sharegpt",
        "sft",
        [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}], "system": "Be kind"}],
        {"messages": [_m(S, "Be kind"), _m(U, "Hi"), _m(A, "Hello")]},
    ),
    (
        "alpaca",
        "sft",
        [{"instruction": "Add.", "input": "2 and 3", "output": "5"}],
        {"messages": [_m(U, "Add.\n\n2 and 3"), _m(A, "5")]},
    ),
    (
        "prompt_completion",
        "sft",
        [{"prompt": "Q?", "completion": "A."}],
        {"messages": [_m(U, "Q?"), _m(A, "A.")]},
    ),
    (
        "preference",
        "preference",
        [{"prompt": "Q?", "chosen": "Good.", "rejected": "Bad.", "annotator_id": "ann-1"}],
        {"prompt": [_m(U, "Q?")], "chosen": [_m(A, "Good.")], "rejected": [_m(A, "Bad.")], "annotator_id": "ann-1"},
    ),
    (
        "preference",  # UltraFeedback-binarized: the prompt repeated inside both conversations
        "preference",
        [{"prompt": "Q?", "chosen": [_m(U, "Q?"), _m(A, "Good.")], "rejected": [_m(U, "Q?"), _m(A, "Bad.")]}],
        {"prompt": [_m(U, "Q?")], "chosen": [_m(A, "Good.")], "rejected": [_m(A, "Bad.")]},
    ),
    (
        "preference_implicit",
        "preference",
        [{"chosen": [_m(U, "Q?"), _m(A, "Good.")], "rejected": [_m(U, "Q?"), _m(A, "Bad.")]}],
        {"prompt": [_m(U, "Q?")], "chosen": [_m(A, "Good.")], "rejected": [_m(A, "Bad.")]},
    ),
    (
        "hh_rlhf",
        "preference",
        [
            {
                "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Help?\n\nAssistant: Sure.",
                "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Help?\n\nAssistant: No.",
            }
        ],
        {
            "prompt": [_m(U, "Hi"), _m(A, "Hello!"), _m(U, "Help?")],
            "chosen": [_m(A, "Sure.")],
            "rejected": [_m(A, "No.")],
        },
    ),
    (
        "kto",
        "kto",
        [{"prompt": "Q?", "completion": "A.", "label": "true"}],
        {"prompt": [_m(U, "Q?")], "completion": [_m(A, "A.")], "label": True},
    ),
    (
        "gsm8k",
        "prompt",
        [{"question": "Ann has 3 apples and buys 1,200 more. How many?", "answer": "3 + 1200 = 1203\n#### 1,203"}],
        {"prompt": [_m(U, "Ann has 3 apples and buys 1,200 more. How many?")], "answer": "1203"},
    ),
    (
        "prompt",
        "prompt",
        [{"prompt": [_m(S, "Solve."), _m(U, "1+1?")], "answer": 2}],
        {"prompt": [_m(S, "Solve."), _m(U, "1+1?")], "answer": "2"},
    ),
]


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((json.dumps(r) if not isinstance(r, str) else r) + "\n" for r in rows))
    return path


def _prepare(path, kind, fmt="auto", **extra):
    keep = PROVENANCE if kind in ("preference", "kto") else KEEP
    return prepare_dataset(DatasetParams(input=str(path), format=fmt, **extra), kind, keep, "prepare_x")


def _strip_id(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "id"}


def test_every_format_has_a_case():
    assert {c[0] for c in CASES} == {
        f.name for kind in ("sft", "preference", "kto", "prompt") for f in formats_for(kind)
    }


@pytest.mark.parametrize(("fmt", "kind", "rows", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_format_is_detected_and_converted(tmp_path, fmt, kind, rows, expected):
    prepared = _prepare(_jsonl(tmp_path / "raw.jsonl", rows), kind)
    assert (prepared.format.name, prepared.detected) == (fmt, True)
    assert _strip_id(prepared.rows[0]) == expected
    assert prepared.manifest()["format"] == {"name": fmt, "kind": kind, "detected": True}
    # Named explicitly, the same records convert the same way
    named = _prepare(tmp_path / "raw.jsonl", kind, fmt)
    assert (named.format.name, named.detected, named.rows) == (fmt, False, prepared.rows)


def test_records_without_id_get_a_stable_content_hash_and_exact_duplicates_are_counted(tmp_path):
    rows = [{"prompt": f"Q{i}?", "completion": "A."} for i in range(3)] + [{"prompt": "Q0?", "completion": " A. "}]
    prepared = _prepare(_jsonl(tmp_path / "raw.jsonl", rows), "sft")
    ids = [r["id"] for r in prepared.rows]
    assert len(ids) == 3 and all(i.startswith("h") and len(i) == 17 for i in ids)
    # The id is the content's, not the position's: reordering the file gives the same ids
    assert sorted(ids) == sorted(r["id"] for r in _prepare(_jsonl(tmp_path / "again.jsonl", rows[::-1]), "sft").rows)
    assert prepared.curation.to_json() == [
        {"step": "read", "rows_in": 4, "dropped": 0, "changed": 0, "rows_out": 4},
        {"step": "convert prompt_completion → sft records", "rows_in": 4, "dropped": 0, "changed": 4, "rows_out": 4},
        {"step": "strip whitespace of message contents", "rows_in": 4, "dropped": 0, "changed": 1, "rows_out": 4},
        {"step": "content-hash id for records without one", "rows_in": 4, "dropped": 0, "changed": 4, "rows_out": 4},
        {
            "step": "drop exact duplicates (same content-hash id)",
            "rows_in": 4,
            "dropped": 1,
            "changed": 0,
            "rows_out": 3,
        },
    ]


def test_columns_map_a_dataset_s_own_names(tmp_path):
    rows = [{"uid": "x1", "question_text": "Why?", "reply": "Because."}]
    prepared = _prepare(
        _jsonl(tmp_path / "raw.jsonl", rows),
        "sft",
        columns={"id": "uid", "prompt": "question_text", "completion": "reply"},
    )
    assert prepared.rows == [{"id": "x1", "messages": [_m(U, "Why?"), _m(A, "Because.")]}]
    with pytest.raises(DataError) as err:
        _prepare(tmp_path / "raw.jsonl", "sft", columns={"prompt": "question"})
    assert (
        str(err.value)
        == f"{tmp_path}/raw.jsonl:1: field question: required field is missing (columns: prompt: question)"
    )


@pytest.mark.parametrize(
    ("kind", "first", "bad", "message"),
    [
        ("sft", CASES[0][2][0], {"id": "b", "prompt": "x"},
         "field messages: required field is missing (format messages)"),
        ("sft", CASES[3][2][0], {"conversations": [{"from": "robot", "value": "x"}]},
         "field conversations[0].from: 'robot' is not one of system, human, user, gpt, assistant, chatgpt, bard, bing, "
         "model"),
        ("sft", CASES[4][2][0], {"instruction": "x", "output": ["x"]},
         "field output: expected a string, got list (format alpaca)"),
        ("sft", CASES[2][2][0], {"mapping": {"a": {"message": None, "parent": "zz"}}, "current_node": "a"},
         "field mapping.'zz': broken parent chain"),
        ("sft", CASES[1][2][0], {"messages": [{"role": U, "content": [{"type": "image_url"}]}]},
         "field messages[0].content[0]: only text parts are supported, got type 'image_url'"),
        ("preference", CASES[9][2][0], {"chosen": "Human: hi", "rejected": "\n\nHuman: hi\n\nAssistant: x"},
         "field chosen: transcript does not end with an Assistant turn"),
        ("preference", CASES[9][2][0], {"chosen": "no turns here", "rejected": "\n\nHuman: a\n\nAssistant: b"},
         'field chosen: not an HH-RLHF transcript (expected "\\n\\nHuman:" turns)'),
        ("preference", CASES[8][2][0], {"chosen": [_m(A, "x")], "rejected": [_m(A, "y")]},
         "field prompt: required (or chosen/rejected conversations sharing a user turn)"),
        ("kto", CASES[10][2][0], {"prompt": "Q", "completion": "A", "label": 1},
         "field label: expected a boolean (true = desirable), got a int"),
        ("prompt", CASES[11][2][0], {"question": "Q", "answer": "no final line"},
         "field answer: expected a GSM8K answer ending in '#### <number>'"),
        ("prompt", CASES[12][2][0], {"prompt": [{"role": "bot", "content": "x"}]},
         "field prompt[0].role: 'bot' is not one of system, user, assistant"),
    ],
)  # fmt: skip
def test_a_bad_record_names_file_line_and_field(tmp_path, kind, first, bad, message):
    path = _jsonl(tmp_path / "raw.jsonl", [first, bad])
    with pytest.raises(DataError) as err:
        _prepare(path, kind)
    assert str(err.value) == f"{path}:2: {message}"


def test_no_format_fits_and_an_unknown_format_name(tmp_path):
    path = _jsonl(tmp_path / "raw.jsonl", [{"text": "x", "meta": 1}])
    with pytest.raises(DataError) as err:
        _prepare(path, "sft")
    assert str(err.value) == (
        f"{path}: no sft format fits the first record's fields (meta, text); set format: to one of messages, "
        "openai_chat, sharegpt, alpaca, prompt_completion, or map fields with columns:"
    )
    with pytest.raises(ConfigError) as err:
        _prepare(path, "sft", "hh_rlhf")
    assert str(err.value) == (
        "params.yaml: prepare_x.format: 'hh_rlhf' is not a sft format (options: auto, messages, openai_chat, "
        "sharegpt, alpaca, prompt_completion)"
    )


def test_gzip_inputs_of_each_type_and_errors_name_the_compressed_file(tmp_path):
    rows = [{"id": f"r{i}", "instruction": f"Say {i}.", "output": str(i)} for i in range(3)]
    jsonl = tmp_path / "a.jsonl.gz"
    jsonl.write_bytes(gzip.compress(_jsonl(tmp_path / "a.jsonl", rows).read_bytes()))
    plain_csv = tmp_path / "b.csv"
    with plain_csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "instruction", "output"])
        writer.writeheader()
        writer.writerows(rows)
    csv_gz = tmp_path / "b.csv.gz"
    csv_gz.write_bytes(gzip.compress(plain_csv.read_bytes()))
    json_gz = tmp_path / "c.json.gz"
    json_gz.write_bytes(gzip.compress(json.dumps(rows).encode()))  # Alpaca ships one JSON array
    for path in (jsonl, csv_gz, json_gz):
        prepared = _prepare(path, "sft")
        assert prepared.format.name == "alpaca" and [r["id"] for r in prepared.rows] == ["r0", "r1", "r2"]
        assert prepared.source.reader.startswith("gzip+")
        assert list(prepared.manifest()["inputs"]) == [str(path)]
    broken = tmp_path / "d.jsonl.gz"
    broken.write_bytes(gzip.compress(b'{"id": "x", "instruction": "a", "output": "b"}\n{"id": \n'))
    with pytest.raises(DataError) as err:
        _prepare(broken, "sft")
    assert str(err.value) == f"{broken}:2: invalid JSON (Expecting value at column 8)"


def test_a_save_to_disk_folder_with_its_card(tmp_path):
    from datasets import Dataset, DatasetDict, DatasetInfo

    rows = [{"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"} for i in range(4)]
    info = DatasetInfo(description="Grade-school maths, written by hand.", license="mit", homepage="https://x.test")
    folder = tmp_path / "gsm"
    DatasetDict(
        {"train": Dataset.from_list(rows, info=info), "test": Dataset.from_list(rows[:1], info=info)}
    ).save_to_disk(str(folder))
    (folder / "README.md").write_text(
        "---\nlicense: mit\npretty_name: Tiny GSM\n---\n# Tiny GSM\n\nCollected by tests.\n"
    )
    prepared = _prepare(folder, "prompt", card={"license": "mit", "source": "our team"})
    assert prepared.format.name == "gsm8k" and len(prepared.rows) == 4 and prepared.rows[3]["answer"] == "4"
    assert prepared.card["malformed"]["action"] == "fail"  # no data policy given: the strict reading
    assert {key: value for key, value in prepared.card.items() if key != "malformed"} == {
        "name": "Tiny GSM",
        "license": "mit",
        "source": "https://x.test",  # the publisher's; the team's differing "our team" is kept as a conflict (C2)
        "collection": "Collected by tests.",
        "origin": {"name": "README.md", "license": "README.md", "source": "dataset_info", "collection": "README.md"},
        "missing": [],
        "conflicts": {"source": {"published": "https://x.test", "published_in": "dataset_info", "params": "our team"}},
    }
    assert prepared.source.reader == "save_to_disk" and all(
        len(h["sha256"]) == 64 for h in prepared.source.hashes.values()
    )
    assert len(_prepare(folder, "prompt", split="test").rows) == 1
    with pytest.raises(DataError) as err:
        _prepare(folder, "prompt", split="validation")
    assert str(err.value) == f"{folder}: no split 'validation' (splits: test, train); set split:"


def test_a_dataset_loaded_by_the_datasets_library_with_its_readme_card(tmp_path):
    """``hf:<name>`` goes through ``datasets.load_dataset`` offline; a local dataset folder stands in for the cache."""
    folder = tmp_path / "kto-data"
    folder.mkdir()
    rows = [{"prompt": f"Q{i}?", "completion": "A.", "label": bool(i % 2)} for i in range(4)]
    _jsonl(folder / "train.jsonl", rows)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n\nLabelled by two annotators.\n")
    prepared = _prepare(f"hf:{folder}", "kto")
    assert prepared.format.name == "kto" and [r["label"] for r in prepared.rows] == [False, True, False, True]
    assert prepared.source.reader == "hf_cache" and prepared.source.hashes
    assert prepared.card["license"] == "apache-2.0" and prepared.card["collection"] == "Labelled by two annotators."
    assert prepared.card["missing"] == ["source"]


def _hub_cached_dataset(home: Path, repo_id: str, config: str, rows: list[dict], card: str) -> None:
    """Leave in ``home`` what ``load_dataset(repo_id, config)`` leaves after a download from the Hub.

    The datasets cache holds the prepared Arrow files under
    ``<namespace>___<name>/<config>/<version>/<commit>/`` (built here by the same
    packaged Parquet builder the Hub path uses, with the repo's identity), and the
    hub cache holds the repository snapshot with its README (the dataset card).
    Nothing is mocked: the reader then goes through ``datasets``' own offline lookup.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets.packaged_modules.parquet.parquet import Parquet

    commit = "0f" * 20
    namespace, name = repo_id.split("/")
    snapshot = home / "hub" / f"datasets--{namespace}--{name}" / "snapshots" / commit
    (snapshot / config).mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text(commit)
    parquet = snapshot / config / "train-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    (snapshot / "README.md").write_text(card)
    builder = Parquet(
        cache_dir=str(home / "datasets"),
        data_files={"train": str(parquet)},
        dataset_name=name,
        config_name=config,
        config_id=config,
        hash=commit,
    )
    builder.repo_id = repo_id  # where a Hub download files it: <namespace>___<name>
    builder._cache_dir = builder._build_cache_dir()
    builder.download_and_prepare()


def test_a_dataset_in_the_local_hugging_face_cache_is_read_offline_with_its_card(tmp_path, monkeypatch):
    """``hf:<namespace>/<name>`` reads a Hub dataset that an earlier download left in the cache, offline."""
    import datasets.config
    import huggingface_hub.constants

    home = tmp_path / "hf"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    rows = [
        {"question": "Ann has 3 pens and buys 2 more. How many pens?", "answer": "3 + 2 = 5\n#### 5"},
        {"question": "A box holds 12 eggs; 4 break. How many are left?", "answer": "12 - 4 = 8\n#### 8"},
        {"question": "Tom reads 6 pages a day for 3 days. How many pages?", "answer": "6 * 3 = 18\n#### 18"},
    ]
    card = "---\nlicense: mit\npretty_name: Acme Tiny GSM\n---\n# Acme Tiny GSM\n\nWritten by the tests.\n"
    _hub_cached_dataset(home, "acme/tiny-gsm", "main", rows, card)

    prepared = _prepare("hf:acme/tiny-gsm", "prompt", config="main")

    assert prepared.format.name == "gsm8k" and [r["answer"] for r in prepared.rows] == ["5", "8", "18"]
    assert prepared.source.reader == "hf_cache"
    (arrow,) = prepared.source.hashes
    assert arrow == "hf:acme/tiny-gsm/tiny-gsm-train.arrow" and len(prepared.source.hashes[arrow]["sha256"]) == 64
    assert prepared.card["name"] == "Acme Tiny GSM" and prepared.card["license"] == "mit"
    assert prepared.card["collection"] == "Written by the tests."
    # A name the cache does not hold is one line naming it, never a network call
    with pytest.raises(DataError) as err:
        _prepare("hf:acme/not-downloaded", "prompt")
    assert str(err.value).startswith("hf:acme/not-downloaded: not a dataset in the local Hugging Face cache (")
    assert str(err.value).endswith("); the pipeline runs offline: download it first or give a file")


def test_openai_fine_tuning_weights_are_honoured_or_refused(tmp_path):
    """OpenAI's ``weight: 0`` ('do not train on this message') is never dropped silently."""
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello", "weight": 1}]
    prepared = _prepare(_jsonl(tmp_path / "ok.jsonl", [{"messages": turns}]), "sft")
    assert prepared.rows[0]["messages"][1] == {"role": "assistant", "content": "Hello"}
    path = _jsonl(tmp_path / "w0.jsonl", [{"messages": turns}, {"messages": [turns[0], dict(turns[1], weight=0)]}])
    with pytest.raises(DataError) as err:
        _prepare(path, "sft")
    assert str(err.value) == (
        f"{path}:2: field messages[1].weight: 0 (OpenAI's 'do not train on this message') cannot be honoured: "
        "TRL trains on every assistant message; remove the message (and the turns after it) or set weight 1"
    )
    path = _jsonl(tmp_path / "w2.jsonl", [{"messages": [dict(turns[0], weight=1), turns[1]]}])
    with pytest.raises(DataError) as err:
        _prepare(path, "sft")
    expected = f"{path}:1: field messages[0].weight: 1 — OpenAI's weight is 0 or 1 on an assistant message"
    assert str(err.value) == expected


def test_attack_a_licence_in_params_never_restates_the_publishers(tmp_path):
    """C2: ``prepare_*.card.license: apache-2.0`` over a dataset whose README publishes ``cc-by-nc-4.0``: the params
    block won field by field, and the report's rights table stated apache-2.0. Params fill only what the publisher
    left empty; a differing value is kept as a conflict, and the report states the publisher's with it."""
    from governance.datasets.cards import DatasetCard, build_card
    from governance.datasets.readers import Source
    from governance.report.chain import _rights

    (tmp_path / "README.md").write_text("---\nlicense: cc-by-nc-4.0\n---\n\nScraped forum posts.\n")
    declared = DatasetCard(license="apache-2.0", source="team upload", rights_reservation="robots.txt honoured")
    card = build_card(Source(spec=str(tmp_path), reader="jsonl", folder=tmp_path), declared)
    assert card["license"] == "cc-by-nc-4.0" and card["origin"]["license"] == "README.md"
    assert card["source"] == "team upload" and card["origin"]["source"] == "params"  # filled where nothing was
    assert card["conflicts"] == {
        "license": {"published": "cc-by-nc-4.0", "published_in": "README.md", "params": "apache-2.0"}
    }
    assert _rights("data/x.jsonl", card)["licence"] == (
        "cc-by-nc-4.0 (from README.md; params declare 'apache-2.0' instead, which is not reviewed and not stated)"
    )
    assert _rights("data/x.jsonl", {"license": "mit"}, {"cc-by-nc-4.0": 3, "not recorded": 2})["licence"] == (
        "mit; the records themselves carry cc-by-nc-4.0"
    )
    same = build_card(Source(spec=str(tmp_path), reader="jsonl", folder=tmp_path), DatasetCard(license="cc-by-nc-4.0"))
    assert "conflicts" not in same
