"""A line too long, and a pretty-printed object too big: bounded memory and time.

A line of our JSON longer than ``MAX_LINE_BYTES`` (16 MiB) is not read into memory: it is
skipped to its end and rejected with its line number, and the lines after it are read (a file,
a pipe, UTF-16, ``--jobs``). A line that opens a JSON array is one document and is read whole.
A multi-line object is parsed a few times, not once per line (it used to take time in the
square of its lines: a pretty-printed object of 100,000 lines did not finish in ten minutes).
"""

from __future__ import annotations

import codecs
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from azs_syslog.events.record import MAX_LINE_BYTES, too_long_size
from azs_syslog.inputs import reader
from azs_syslog.inputs import text as text_module
from azs_syslog.inputs.text import Peeked
from tests.conftest import run_cli
from tests.support import child_env
from tests.test_reader_resync import pep

TOO_LONG = MAX_LINE_BYTES + 1_000_000


def _long_line(size: int) -> str:
    return '{"type": "pep", "who": "' + "x" * (size - 26) + '"}'


def _file(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    text = "\n".join(lines) + "\n"
    path.write_bytes(
        codecs.BOM_UTF16_LE + text.encode("utf-16-le") if encoding == "utf-16" else text.encode()
    )
    return path


def _reason(size: int) -> str:
    return f"a line of {size:,} bytes, longer than the {MAX_LINE_BYTES:,} allowed: not read"


@pytest.mark.parametrize("how", ["file", "pipe", "jobs", "utf-16"])
def test_a_line_too_long_is_rejected_and_the_next_lines_are_read(how: str, tmp_path: Path) -> None:
    lines = [pep("first"), _long_line(TOO_LONG), pep("third"), pep("fourth")]
    encoding = "utf-16" if how == "utf-16" else "utf-8"
    source = _file(tmp_path / "events.jsonl", lines, encoding)
    args = ["send-event", "--json"]
    if how == "pipe":
        result = run_cli([*args, "-"], input=source.read_bytes())
    else:
        result = run_cli([*args, *(["--jobs", "2"] if how == "jobs" else []), str(source)])
    assert result.exit_code == 3, result.stderr
    report = json.loads(result.stdout)
    assert report["accepted"] == 3
    # Counted in characters for UTF-16 (all ASCII here: the same number).
    assert report["rejected"] == [{"line": 2, "reason": _reason(TOO_LONG)}]


def test_a_long_line_that_opens_an_array_is_read_whole(tmp_path: Path) -> None:
    event = json.loads(pep("in-array"))
    count = MAX_LINE_BYTES // len(json.dumps(event)) + 1000
    array = json.dumps([dict(event, who=f"e{i}") for i in range(count)])
    assert len(array) > MAX_LINE_BYTES
    source = _file(tmp_path / "events.json", [array])
    result = run_cli(["send-event", "--json", str(source)])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["accepted"] == count


def test_a_line_too_long_takes_no_more_memory_than_the_limit(tmp_path: Path) -> None:
    """The CLI in a child process on a line six times the limit: its peak memory stays far
    below the line's size (it used to hold the line four times over)."""
    size = 6 * MAX_LINE_BYTES
    source = _file(tmp_path / "events.jsonl", [_long_line(size), pep("after")])
    script = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run([sys.executable, '-m', 'azs_syslog', 'send-event', '--json',"
        f" {str(source)!r}], capture_output=True)\n"
        "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.stdout.write(done.stdout.decode())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, env=child_env(), timeout=300
    )
    head, _, report = done.stdout.decode().partition("\n")
    code, peak_kib = (int(word) for word in head.split())
    assert code == 3, done.stderr
    assert json.loads(report)["rejected"] == [{"line": 1, "reason": _reason(size)}]
    # Measured: 37 MB for a line of 96 MiB (413 MB before the limit).
    assert peak_kib * 1024 < MAX_LINE_BYTES + (64 << 20) < size


class _CountingDecoder:
    def __init__(self) -> None:
        self.calls = 0
        self._decoder = json.JSONDecoder()

    def raw_decode(self, text: str) -> tuple[Any, int]:
        self.calls += 1
        return self._decoder.raw_decode(text)


def test_a_big_pretty_printed_object_is_parsed_a_few_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = json.loads(pep("pretty"))
    event["details"] = {f"key{i}": i for i in range(20_000)}
    pretty = json.dumps(event, indent=2)
    counting = _CountingDecoder()
    monkeypatch.setattr(reader, "_DECODER", counting)
    records = list(reader.iter_records([*pretty.splitlines(keepends=True), pep("next") + "\n"]))
    assert [number for number, _ in records] == [1, pretty.count("\n") + 2]
    assert records[0][1] == event and json.loads(str(records[1][1]))["who"] == "next"
    # Once a line while it is under 16 KiB (about 900 lines here), then as it grows by a
    # quarter: not once per line (20,000 lines).
    assert counting.calls < 1_000


class _Trickle:
    """A stream that gives at most ``most`` bytes a read, a random number each time."""

    def __init__(self, data: bytes, most: int, rng: random.Random) -> None:
        self.data, self.most, self.rng, self.at = data, most, rng, 0

    def read1(self, size: int = -1) -> bytes:
        count = self.rng.randint(1, self.most)
        piece = self.data[self.at : self.at + count]
        self.at += len(piece)
        return piece

    read = read1


def test_the_block_reader_cuts_every_line_too_long_at_any_read_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lines around the limit (a small one here), read a few bytes at a time or many: each
    line over it (but an array's) becomes ``too_long_line`` with its size, every other line
    comes whole and in order."""
    limit = 1000
    monkeypatch.setattr(text_module, "MAX_LINE_BYTES", limit)
    rng = random.Random(7)
    for _ in range(2000):  # bounded
        lines: list[bytes] = []
        expected: list[bytes | int] = []
        for _ in range(rng.randint(1, 6)):
            size = rng.choice([1, 5, limit - 1, limit, limit + 1, 1500, 3000])
            opens_array = rng.random() < 0.2
            line = (b"[" if opens_array else b"{") + b"x" * (size - 1)
            lines.append(line)
            expected.append(line if size <= limit or opens_array else size)
        data = b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b"")
        stream = _Trickle(data, rng.choice([3, 7, 64, limit // 2]), rng)
        got: list[bytes | int] = []
        for block in Peeked(stream).blocks():  # type: ignore[arg-type]
            pieces = block.split(b"\n")
            if block.endswith(b"\n"):
                pieces.pop()
            for piece in pieces:
                found = too_long_size(piece) if piece[:1] == b"\0" else None
                got.append(piece if found is None else found)
        assert got == expected
