"""Reading JSON, JSON lines and arrays (iter_records)."""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Iterator

from azs_syslog.events.record import Record
from azs_syslog.inputs.reader import iter_records


def read(text: str | bytes) -> list[Record]:
    """Every record of ``text`` (bytes: read as a binary stream)."""
    return list(iter_records(io.BytesIO(text) if isinstance(text, bytes) else io.StringIO(text)))


def test_json_lines_skip_blank_lines_and_keep_line_numbers() -> None:
    text = '{"a": 1}\n\n   \n{"b": 2}\nnot json\n{"c": 3}\n'
    assert read(text) == [
        (1, '{"a": 1}'),
        (4, '{"b": 2}'),
        (5, "not json"),
        (6, '{"c": 3}'),
    ]


def test_binary_lines_and_invalid_utf8() -> None:
    records = read(b'{"a": 1}\r\n\xff\xfe\n{"b": "\xc3\xa9"}\n')
    assert records == [(1, '{"a": 1}'), (2, b"\xff\xfe\n"), (3, '{"b": "é"}')]


def test_array_elements_carry_their_line() -> None:
    text = '[\n  {"a": 1},\n  {"b": 2}, {"c": 3},\n  5\n]\n'
    assert read(text) == [
        (2, {"a": 1}),
        (3, {"b": 2}),
        (3, {"c": 3}),
        (4, "5"),
    ]
    assert read("[]") == []
    broken = read('[{"a": 1},\n{"b": ]')
    assert broken[0] == (1, {"a": 1})
    assert broken[1][0] == 2
    assert isinstance(broken[1][1], str)


def test_pretty_printed_objects() -> None:
    text = json.dumps({"a": 1, "b": [1, 2]}, indent=2) + "\n" + json.dumps({"c": 3}, indent=2)
    records = read(text)
    assert records == [(1, {"a": 1, "b": [1, 2]}), (8, {"c": 3})]
    bad = read('{\n  "a": ,\n}\n{"ok": 1}\n')
    assert bad[0][0] == 1
    assert isinstance(bad[0][1], str)
    assert bad[-1] == (4, '{"ok": 1}')
    unfinished = read('{\n  "a": 1,\n')
    assert unfinished == [(1, '{\n  "a": 1,')]


def test_json_lines_stream_without_waiting_for_eof() -> None:
    """Each line is yielded as soon as it is read: a pipe that stays open still flows."""
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "rb", buffering=0)
    writer = os.fdopen(write_fd, "wb", buffering=0)
    received: list[tuple[int, object]] = []
    got_first = threading.Event()

    def consume() -> None:
        records: Iterator[tuple[int, object]] = iter_records(reader)
        for record in records:
            received.append(record)
            got_first.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        writer.write(b'{"first": 1}\n')
        assert got_first.wait(timeout=10), "the first line was not yielded before EOF"
        assert received == [(1, '{"first": 1}')]
        writer.write(b'{"second": 2}\n')
    finally:
        writer.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert received == [(1, '{"first": 1}'), (2, '{"second": 2}')]
    reader.close()


def test_invalid_utf8_in_arrays_and_objects_is_not_replaced() -> None:
    # In an array, likewise: no array can be read as text, so each line is reported on its
    # own, and the one that is not UTF-8 as bytes.
    records = read(b'[\n{"a": "\xff"}\n]\n')
    assert records == [(1, "["), (2, b'{"a": "\xff"}\n'), (3, "]")]
    # In a pretty-printed object, the line that is not UTF-8 is reported on its own, as bytes.
    records = read(b'{\n"a": "\xff"\n}\n')
    assert records == [(1, "{"), (2, b'"a": "\xff"\n'), (3, "}")]
