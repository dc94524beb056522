"""Reading JSON, JSON lines and arrays (iter_records, and iter_record_chunks: the same records
a block of lines at a time)."""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from azs_syslog.events.record import Chunk, Record
from azs_syslog.inputs.detect import open_input
from azs_syslog.inputs.reader import iter_record_chunks, iter_records


def flat(chunks: Iterator[Chunk]) -> list[Record]:
    return [pair for numbers, records in chunks for pair in zip(numbers, records, strict=True)]


def read(text: str | bytes) -> list[Record]:
    """Every record of ``text`` (bytes: read as a binary stream). The chunked reader, given
    the same bytes in blocks of 1, 2, 3 or all lines, must find the same records."""
    records = list(iter_records(io.BytesIO(text) if isinstance(text, bytes) else io.StringIO(text)))
    data = text if isinstance(text, bytes) else text.encode()
    lines = io.BytesIO(data).readlines()
    for size in (1, 2, 3, max(1, len(lines))):
        blocks = [b"".join(lines[i : i + size]) for i in range(0, len(lines), size)]
        chunks = list(iter_record_chunks(blocks))
        assert all(numbers for numbers, _ in chunks)  # no empty chunk
        assert all(
            not isinstance(record, dict)
            for _, found in chunks
            if len(found) > 1
            for record in found
        )  # a parsed object comes alone
        assert flat(iter(chunks)) == records, size
    if data[:3] != b"\xef\xbb\xbf" and data[:2] not in (b"\xff\xfe", b"\xfe\xff"):
        assert list(open_input(io.BytesIO(data), "json", lambda p: None).records) == records
    return records


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


def _flows_before_eof(
    buffering: int, consume: Callable[[BinaryIO], Iterable[Record]], writes: tuple[bytes, bytes]
) -> None:
    """Through a pipe kept open: what ``consume`` makes of the first write is handed on before
    the second is written; both lines in the end."""
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "rb", buffering=buffering)
    writer = os.fdopen(write_fd, "wb", buffering=0)
    received: list[Record] = []
    got_first = threading.Event()

    def run() -> None:
        for record in consume(reader):
            received.append(record)
            got_first.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        writer.write(writes[0])
        assert got_first.wait(timeout=10), "the first line was not handed on before EOF"
        assert received == [(1, '{"first": 1}')]
        writer.write(writes[1])
    finally:
        writer.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert received == [(1, '{"first": 1}'), (2, '{"second": 2}')]
    reader.close()


def test_json_lines_stream_without_waiting_for_eof() -> None:
    """Each line is yielded as soon as it is read: a pipe that stays open still flows."""
    _flows_before_eof(0, iter_records, (b'{"first": 1}\n', b'{"second": 2}\n'))


def _chunked(reader: BinaryIO) -> Iterator[Record]:
    for chunk in open_input(reader, "auto", lambda problem: None).chunks:
        yield from zip(*chunk, strict=True)


def test_chunks_of_a_pipe_come_as_its_lines_arrive() -> None:
    """A chunk is what one read gave: the first line is handed on before more is written."""
    _flows_before_eof(-1, _chunked, (b'{"first": 1}\n{"sec', b'ond": 2}\n'))


def test_chunks_mix_json_lines_with_invalid_lines_and_a_last_line_without_newline() -> None:
    data = b'{"a": 1}\n\xff\n  \n{"b": 2}\r\nnope\n{"c": 3}'
    assert read(data) == [
        (1, '{"a": 1}'),
        (2, b"\xff\n"),
        (4, '{"b": 2}'),
        (5, "nope"),
        (6, '{"c": 3}'),
    ]
    # JSON lines, then a pretty-printed object, then JSON lines again (read line by line).
    text = '{"a": 1}\n{"b": 2}\n{\n  "c": 3\n}\n{"d": 4}\n[{"e": 5}]\n'
    assert read(text) == [
        (1, '{"a": 1}'),
        (2, '{"b": 2}'),
        (3, {"c": 3}),
        (6, '{"d": 4}'),
        (7, {"e": 5}),
    ]


def test_invalid_utf8_in_arrays_and_objects_is_not_replaced() -> None:
    # In an array, likewise: no array can be read as text, so each line is reported on its
    # own, and the one that is not UTF-8 as bytes.
    records = read(b'[\n{"a": "\xff"}\n]\n')
    assert records == [(1, "["), (2, b'{"a": "\xff"}\n'), (3, "]")]
    # In a pretty-printed object, the line that is not UTF-8 is reported on its own, as bytes.
    records = read(b'{\n"a": "\xff"\n}\n')
    assert records == [(1, "{"), (2, b'"a": "\xff"\n'), (3, "}")]
