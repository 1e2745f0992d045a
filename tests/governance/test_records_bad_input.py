"""One record can never crash a reader: any nesting depth or size is one line naming file:line, exit 2."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from governance.cli import main
from governance.errors import DataError
from governance.records import MAX_NESTING_DEPTH, iter_records, loads_record, nesting_depth, read_records

DEEP = b"[" * 200_000 + b"]" * 200_000


def _write(tmp_path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_nesting_depth_ignores_brackets_inside_strings():
    assert nesting_depth(b'{"a": "' + b"[" * 500 + b'", "b": [1, [2]]}') == 3
    assert nesting_depth(b'{"a": "x\\"' + b"{" * 500 + b'"}') == 1
    assert nesting_depth(b"[" * 70 + b"]" * 70) == 70


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"m": ' + DEEP + b"}\n", ":2: JSON nested 200001 levels deep (max 64); flatten the record"),
        (b'{"m": ' + b"[" * 65 + b"]" * 65 + b"}\n", ":2: JSON nested 66 levels deep (max 64); flatten the record"),
        (
            b'{"n": ' + b"7" * 5000 + b"}\n",
            ":2: invalid JSON value (Exceeds the limit (4300 digits) for integer string conversion: value has 5000 "
            "digits; use sys.set_int_max_str_digits() to increase the limit)",
        ),
    ],
    ids=["deep", "just-over", "huge-int"],
)
def test_jsonl_line_that_would_blow_up_is_one_data_error(tmp_path, content, message):
    path = _write(tmp_path, "d.jsonl", b'{"m": "fine"}\n' + content)
    with pytest.raises(DataError) as err:
        read_records(path)
    assert str(err.value) == f"{path}{message}"


def test_nesting_at_the_limit_is_read(tmp_path):
    inner = b"[" * (MAX_NESTING_DEPTH - 1) + b"]" * (MAX_NESTING_DEPTH - 1)
    [record] = read_records(_write(tmp_path, "d.jsonl", b'{"m": ' + inner + b"}\n"))
    assert record.line == 1


def test_json_array_csv_and_parquet_refuse_deep_records(tmp_path):
    array = _write(tmp_path, "d.json", b'[{"m": ' + DEEP + b"}]")
    with pytest.raises(DataError) as err:
        read_records(array)
    assert str(err.value) == f"{array}: JSON nested 200001 levels deep in a record (max 64); flatten the record"

    csv_file = _write(tmp_path, "d.csv", b'messages\n"' + b"[" * 100 + b"]" * 100 + b'"\n')
    with pytest.raises(DataError) as err:
        read_records(csv_file)
    assert str(err.value) == f"{csv_file}:2: JSON nested 100 levels deep (max 64); flatten the record"

    # A CSV field over csv's default 128 KiB limit is a field, not a crash without a line.
    big = _write(tmp_path, "big.csv", b"text\n" + b"x" * 200_000 + b"\n")
    assert [len(r.data["text"]) for r in iter_records(big)] == [200_000]

    value: object = "leaf"
    for _ in range(MAX_NESTING_DEPTH + 1):
        value = [value]
    table = pa.table({"m": [value]})
    parquet = tmp_path / "d.parquet"
    pq.write_table(table, parquet)
    with pytest.raises(DataError) as err:
        read_records(parquet)
    assert str(err.value) == f"{parquet}: columns nested deeper than 64 levels; flatten the schema"


def test_loads_record_names_where():
    with pytest.raises(DataError) as err:
        loads_record("{", "x.jsonl:9")
    assert str(err.value) == "x.jsonl:9: invalid JSON (Expecting property name enclosed in double quotes at column 2)"
    assert loads_record('{"a": [1]}', "x.jsonl:1") == {"a": [1]}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"n": 123456789012345678901234567890, "m": -9223372036854775809}',  # beyond 64 bits: exact ints
        b'{"n": 18446744073709551615, "f": 1e-400, "g": 0.1, "z": -0}',
        b'{"n": NaN, "i": Infinity, "big": 1e400}',  # json accepts these; orjson does not
        b'{"s": "\\ud83d\\ude00 pair", "a": 1, "a": 2}',  # a surrogate pair escape; the last duplicate key wins
        b'\xef\xbb\xbf{"bom": true}',
    ],
)
def test_loads_record_gives_jsons_values(raw):
    # orjson reads most records; where it would differ (or refuses) json's value is the one returned.
    value, expected = loads_record(raw, "x.jsonl:1"), json.loads(raw)
    assert repr(value) == repr(expected)
    assert [type(v) for v in value.values()] == [type(v) for v in expected.values()]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"a": 1,}', "x.jsonl:3: invalid JSON (Expecting property name enclosed in double quotes at column 9)"),
        (b'{"a": "x\x01"}', "x.jsonl:3: invalid JSON (Invalid control character at column 9)"),
        (b'{"a": 00}', "x.jsonl:3: invalid JSON (Expecting ',' delimiter at column 8)"),
        # A line cut short is reported at its end, not at "column 1" of the line after its line break.
        (b'{"a": [1\n', "x.jsonl:3: invalid JSON (Expecting ',' delimiter at column 9)"),
        (b'{"a": \r\n', "x.jsonl:3: invalid JSON (Expecting value at column 7)"),
        ('{"a": "é", \n', "x.jsonl:3: invalid JSON (Expecting property name enclosed in double quotes at column 12)"),
    ],
)
def test_loads_record_keeps_jsons_messages(raw, message):
    with pytest.raises(DataError) as err:
        loads_record(raw, "x.jsonl:3")
    assert str(err.value) == message


def test_govern_validate_exits_2_with_one_line_for_a_deep_record(tmp_path, capsys):
    good = {"messages": [{"role": "user", "content": "2 + 2?"}, {"role": "assistant", "content": "4"}]}
    path = _write(tmp_path, "sft.jsonl", (json.dumps(good) + "\n").encode() + b'{"messages": ' + DEEP + b"}\n")
    assert main(["validate", str(path), "--kind", "sft"]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"govern: {path}:2: JSON nested 200001 levels deep (max 64); flatten the record\n"


def test_a_lone_surrogate_escape_is_one_line_naming_the_field(tmp_path, capsys):
    """JSON's ``\\ud800`` parses, but no UTF-8 writer takes it: refused at read, never a traceback later."""
    pair = b'{"messages": [{"role": "user", "content": "ok \\ud83d\\ude00"}, {"role": "assistant", "content": "y"}]}\n'
    lone = b'{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "caf\\u00e9 \\udc80"}]}\n'
    assert read_records(_write(tmp_path, "pair.jsonl", pair))[0].data["messages"][0]["content"] == "ok \U0001f600"
    path = _write(tmp_path, "sft.jsonl", pair + lone)
    expected = (
        f"{path}:2: field messages[1].content: value holds a lone UTF-16 surrogate (\\udc80) at character 5; "
        "not valid Unicode, fix the escape"
    )
    with pytest.raises(DataError) as err:
        read_records(path)
    assert str(err.value) == expected
    assert main(["validate", str(path), "--kind", "sft"]) == 2
    assert capsys.readouterr().err == f"govern: {expected}\n"
    assert main(["pii", "scan", str(path), "--kind", "sft"]) == 2
    assert capsys.readouterr().err == f"govern: {expected}\n"
    # A key, and a record of a JSON array file
    array = _write(tmp_path, "d.json", b'[{"a": 1}, {"\\ud800": "v"}]')
    with pytest.raises(DataError) as err:
        read_records(array)
    assert str(err.value) == (
        f"{array}: record 2: field \\ud800: key holds a lone UTF-16 surrogate (\\ud800) at character 0; "
        "not valid Unicode, fix the escape"
    )


def test_a_raw_control_character_reads_once_as_at_column():
    with pytest.raises(DataError) as err:
        loads_record('{"a": "x\ny"}', "x.jsonl:3")
    assert str(err.value) == "x.jsonl:3: invalid JSON (Invalid control character at column 9)"
