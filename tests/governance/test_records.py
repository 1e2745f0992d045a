import json

import pytest

from governance.errors import DataError
from governance.records import (
    iter_records,
    iter_text_fields,
    read_records,
    require_utf8_lines,
    text_values,
    write_jsonl,
)


def write(tmp_path, name, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_jsonl_records_carry_their_line_numbers(tmp_path):
    path = write(tmp_path, "d.jsonl", b'{"a": 1}\n\n{"a": 2}\n')
    assert [(r.line, r.data["a"]) for r in iter_records(path)] == [(1, 1), (3, 2)]


def test_invalid_json_names_file_and_line(tmp_path):
    path = write(tmp_path, "d.jsonl", b'{"a": 1}\n{"a": \n')
    with pytest.raises(DataError, match=r"d\.jsonl:2: invalid JSON"):
        read_records(path)


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = write(tmp_path, "d.jsonl", b'{"a": 1}\n{"a": "\xff"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:2: invalid UTF-8"):
        read_records(path)


@pytest.mark.parametrize("chunk_bytes", [4, 7, 1 << 20])
def test_utf8_check_without_parsing_names_the_same_line_and_byte_as_the_reader(tmp_path, chunk_bytes):
    """What Spark's engine runs before its text reader (which would replace the byte with U+FFFD)."""
    good = '{"a": "café ✓"}\n'.encode()
    path = write(tmp_path, "d.jsonl", good * 3 + b'{"a": "caf\xe9"}\n' + good)
    with pytest.raises(DataError) as reader:
        read_records(path)
    with pytest.raises(DataError) as checker:
        require_utf8_lines(path, chunk_bytes=chunk_bytes)  # chunks far smaller than a line, or the whole file
    assert str(checker.value) == str(reader.value) == (
        f"{path}:4: invalid UTF-8 at byte 10 of the line; re-encode the file as UTF-8"
    )
    clean = write(tmp_path, "ok.jsonl", good * 5 + good.rstrip(b"\n"))  # no newline at the end
    require_utf8_lines(clean, chunk_bytes=chunk_bytes)
    last = write(tmp_path, "last.jsonl", good * 2 + b'{"a": "\xff"}')  # the bad byte on a last line without newline
    with pytest.raises(DataError, match=r"last\.jsonl:3: invalid UTF-8 at byte 7 of the line"):
        require_utf8_lines(last, chunk_bytes=chunk_bytes)


def test_wrong_top_level_shape(tmp_path):
    path = write(tmp_path, "d.jsonl", b"[1, 2]\n")
    with pytest.raises(DataError, match=r"d\.jsonl:1: expected a JSON object per line, got list"):
        read_records(path)


def test_empty_file_is_an_error(tmp_path):
    path = write(tmp_path, "d.jsonl", b"")
    with pytest.raises(DataError, match=r"d\.jsonl: no records \(empty file\)"):
        read_records(path)


def test_huge_record_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("governance.records.MAX_RECORD_BYTES", 100)
    path = write(tmp_path, "d.jsonl", b'{"a": "' + b"x" * 200 + b'"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:1: record is 210 bytes \(max 100\)"):
        read_records(path)


def test_csv_decodes_nested_json_and_counts_header_line(tmp_path):
    path = write(tmp_path, "d.csv", b'id,messages\nx,"[{""role"": ""user"", ""content"": ""hi""}]"\n')
    (record,) = read_records(path)
    assert record.line == 2 and record.data["messages"][0]["content"] == "hi"


def test_parquet_round_trip(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"prompt": ["a", "b"], "answer": ["1", "2"]}), path)
    assert [r.data for r in read_records(path)] == [{"prompt": "a", "answer": "1"}, {"prompt": "b", "answer": "2"}]


def test_unsupported_suffix(tmp_path):
    path = write(tmp_path, "d.txt", b"x")
    with pytest.raises(DataError, match=r"unsupported file type '\.txt'"):
        read_records(path)


def test_text_fields_have_readable_paths():
    record = {
        "id": 3,
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        "x": {"y": "z"},
    }
    assert list(iter_text_fields(record)) == [
        ("messages[0].role", "system"),
        ("messages[0].content", "s"),
        ("messages[1].role", "user"),
        ("messages[1].content", "u"),
        ("x.y", "z"),
    ]
    # Strings in lists and lists of lists, keys that are not strings, and a bare string; numbers, booleans
    # and nulls are not text.
    other = {"tags": ["a", 1, None, ["b", {"c": "d"}]], 7: {"k": True, "v": "w"}, "": "empty key"}
    assert list(iter_text_fields(other)) == [
        ("tags[0]", "a"),
        ("tags[3][0]", "b"),
        ("tags[3][1].c", "d"),
        ("7.v", "w"),
        ("", "empty key"),
    ]
    assert list(iter_text_fields("plain", "prompt")) == [("prompt", "plain")]
    # text_values walks the same way without building paths: the same strings in the same order.
    for value in (record, other, "plain", [], {"a": [[["x"], "y"], {"b": ["z", 2]}]}):
        assert text_values(value) == [text for _, text in iter_text_fields(value)]


def test_write_jsonl_is_atomic_and_sorted(tmp_path):
    path = tmp_path / "out" / "d.jsonl"
    assert write_jsonl(path, [{"b": 1, "a": 2}]) == 1
    assert path.read_text() == json.dumps({"a": 2, "b": 1}) + "\n"
    assert not list(path.parent.glob("*.tmp"))
