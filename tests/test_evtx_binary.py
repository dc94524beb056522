"""The C reader of ``.evtx`` records' binary XML (``_speedups.evtx_chunk``, inputs/evtx.py)
gives, for each chunk it reads, exactly the records the ``evtx`` parser gives for that chunk:
the same EventRecordIDs, the same JSON text byte for byte (the parser's XML mapped by
``evtx_json`` / ``event_xml``), on every chunk of the fixtures (real logs). A chunk it is not sure
of (damaged, or holding a value it does not write) is left to the parser, and a whole import
reads, reports and numbers everything as the parser alone does. Damaged chunks whose checksums
were made to hold never crash it; the reading thread ends with the import, however it ends."""

from __future__ import annotations

import io
import os
import random
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from azs_syslog.encode.render import COMPILED
from azs_syslog.inputs import evtx as evtx_input
from azs_syslog.inputs.evtx import CHUNK, FILE_HEADER
from azs_syslog.switching import SWITCH_INTERVAL

pytestmark = pytest.mark.skipif(
    not COMPILED and not os.environ.get("CI"),
    reason="azs_syslog.encode._speedups is not built",
)

FIXTURES = Path(__file__).parent / "fixtures"
EVTX_FILES = sorted(FIXTURES.glob("evtx/*.evtx")) + sorted(FIXTURES.glob("evtx_more/*.evtx"))
READER = "azs-syslog-evtx-reader"


def evtx_chunk(chunk: bytes) -> tuple[list[int], list[str]] | None:
    from azs_syslog.encode._speedups import evtx_chunk as read

    return read(chunk)


def chunks_of(path: Path) -> tuple[bytes, list[bytes]]:
    data = path.read_bytes()
    whole = (len(data) - FILE_HEADER) // CHUNK
    starts = (FILE_HEADER + index * CHUNK for index in range(whole))
    return data[:FILE_HEADER], [data[start : start + CHUNK] for start in starts]


def by_parser(header: bytes, chunk: bytes, index: int) -> tuple[list[Any], list[str]]:
    """The parser's records of one chunk, and what it reported skipped."""
    skipped: list[str] = []
    records = evtx_input._records(io.BytesIO(header + chunk), skipped.append, 0, index)
    out: list[Any] = []
    for _ in range(10_000):  # bounded: a chunk holds at most a few hundred
        try:
            out.append(next(records))
        except StopIteration:
            return out, skipped
    raise AssertionError("too many records in a chunk")


# The records of each file the C reader must read itself: every readable one but those of a
# damaged chunk (Application_no_crc32 has no checksums: read here, but not in an import).
MUST_READ = {
    "security.evtx": 2261,
    "sysmon.evtx": 358,
    "system.evtx": 1881,
    "sample-with-irregular-bool-values.evtx": 3028,
    "TerminalServices-RemoteConnectionManager-damaged-record.evtx": 1774 - 61,
    "Security_short_selected.evtx": 7,
    "new-user-security.evtx": 4,
    "MSExchange_Management_wec.evtx": 1,  # elements without a dependency identifier
    "Application_no_crc32.evtx": 17,
    "sample_with_a_bad_chunk_magic.evtx": 270 - 14 - 13 - 114,
}


@pytest.mark.parametrize("path", EVTX_FILES, ids=lambda path: path.name)
def test_each_chunk_read_is_the_parsers(path: Path) -> None:
    header, chunks = chunks_of(path)
    read = 0
    for index, chunk in enumerate(chunks):
        found = evtx_chunk(chunk)
        if found is None:
            continue
        numbers, lines = found
        records, skipped = by_parser(header, chunk, index)
        assert not skipped, f"chunk {index}: the parser skipped {skipped}, the reader read it"
        assert list(zip(numbers, lines, strict=True)) == records, f"chunk {index}"
        for line in lines:
            assert orjson.loads(line)["type"] == "windows"
        read += len(numbers)
    if path.name in MUST_READ:
        intact = sum(evtx_input._intact(memoryview(chunk)) for chunk in chunks)
        assert read == MUST_READ[path.name], f"{intact} intact chunks of {len(chunks)}"


def import_of(source: str | io.BytesIO) -> tuple[list[tuple[int, Any]], list[str]]:
    skipped: list[str] = []
    return list(evtx_input.iter_evtx_events(source, skipped.append)), skipped


def parser_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evtx_input, "evtx_chunk", lambda chunk: None)


@pytest.mark.parametrize("path", EVTX_FILES, ids=lambda path: path.name)
def test_a_whole_import_is_the_parsers_alone(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records, numbers, order and the reports of damaged parts, from a path and a stream."""
    fast = import_of(str(path))
    assert fast == import_of(io.BytesIO(path.read_bytes()))
    with monkeypatch.context() as patched:
        parser_only(patched)
        assert fast == import_of(str(path))


def test_a_file_cut_short_and_one_of_many_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file ending inside a chunk; a large one (every readable chunk of the fixtures three
    times, behind one header: chunks the reader reads and chunks it leaves to the parser,
    interleaved, across several GROUPs): each as the parser alone reads it."""
    header, _ = chunks_of(EVTX_FILES[0])
    chunks = [chunk for path in EVTX_FILES for chunk in chunks_of(path)[1]]
    big = tmp_path / "big.evtx"
    big.write_bytes(header + b"".join(chunks * 3))
    assert len(chunks) * 3 > 2 * evtx_input.GROUP
    security = (FIXTURES / "evtx" / "security.evtx").read_bytes()
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(security[: FILE_HEADER + 5 * CHUNK + 1000])
    for path in (big, cut):
        fast = import_of(str(path))
        with monkeypatch.context() as patched:
            parser_only(patched)
            assert fast == import_of(str(path)), path.name
    assert import_of(str(cut))[1][-1].startswith("chunk 5 (after record ")


def with_checksums(chunk: bytearray) -> bytes:
    """The chunk with its checksums made to hold again (as if written so)."""
    free = int.from_bytes(chunk[0x30:0x34], "little")
    chunk[0x34:0x38] = zlib.crc32(chunk[0x200:free]).to_bytes(4, "little")
    header = zlib.crc32(bytes(chunk[0x80:0x200]), zlib.crc32(bytes(chunk[:0x78])))
    chunk[0x7C:0x80] = header.to_bytes(4, "little")
    return bytes(chunk)


def damaged(rng: random.Random, chunk: bytes) -> bytes:
    """A chunk with a few bytes of its records or templates changed (flipped, zeroed, or set to
    0xFF), or a size or offset field made large, its checksums made to hold."""
    out = bytearray(chunk)
    free = int.from_bytes(out[0x30:0x34], "little")
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(0x200, max(0x201, free))
        out[at] = rng.choice((out[at] ^ (1 << rng.randrange(8)), 0, 0xFF))
    if rng.random() < 0.3:
        at = rng.randrange(0x200, max(0x201, free - 4))
        out[at : at + 4] = rng.choice((0xFFFFFFFF, 0x7FFFFFFF, 0xFFFF, 0x10000)).to_bytes(
            4, "little"
        )
    return with_checksums(out)


def test_damaged_chunks_never_crash_it() -> None:
    """800 damaged chunks (bounded), each either doubted (the parser reads it) or read into
    JSON objects of our events, one per record it found."""
    rng = random.Random(1129)
    readable = [
        chunk
        for path in EVTX_FILES
        for chunk in chunks_of(path)[1]
        if evtx_chunk(chunk) is not None
    ]
    doubted = 0
    for _ in range(800):
        found = evtx_chunk(damaged(rng, rng.choice(readable)))
        if found is None:
            doubted += 1
            continue
        numbers, lines = found
        assert len(numbers) == len(lines)
        for line in lines:
            assert orjson.loads(line)["type"] == "windows"
    assert 0 < doubted < 800


def test_what_it_leaves_to_the_parser() -> None:
    """Not a chunk of 64 KiB: an error. Not a chunk: None. A chunk without records: none. A
    chunk whose records' sizes disagree (one whose last bytes are zeros, which the parser reads
    and then stops at without a word): None."""
    with pytest.raises(ValueError, match="65536"):
        evtx_chunk(b"ElfChnk\0")
    assert evtx_chunk(bytes(CHUNK)) is None
    _, chunks = chunks_of(FIXTURES / "evtx" / "security.evtx")
    empty = bytearray(chunks[0])
    empty[0x30:0x34] = (0x200).to_bytes(4, "little")
    assert evtx_chunk(bytes(empty)) == ([], [])
    header, chunks = chunks_of(FIXTURES / "evtx" / "sample_with_a_bad_chunk_magic.evtx")
    assert evtx_chunk(chunks[0]) is None and len(by_parser(header, chunks[0], 0)[0]) == 14


def reader_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == READER]


def test_the_reading_thread_ends_with_the_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read to the end, stopped early, or failing in the reading thread: the thread is gone
    after, the switch interval is as it was, and a failure reaches the caller."""
    path = FIXTURES / "evtx" / "security.evtx"
    interval = sys.getswitchinterval()
    events = evtx_input.iter_evtx_events(str(path), lambda problem: None)
    next(events)
    assert reader_threads() and sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    events.close()  # stopped early
    assert not reader_threads() and sys.getswitchinterval() == interval
    assert len(import_of(str(path))[0]) == 2261
    assert not reader_threads()

    calls = 0
    real = getattr(evtx_input, "evtx_chunk")  # noqa: B009 - not in the module's __all__

    def failing(chunk: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise MemoryError("out of memory in the reading thread")
        return real(chunk)

    monkeypatch.setattr(evtx_input, "evtx_chunk", failing)
    with pytest.raises(MemoryError, match="reading thread"):
        import_of(str(path))
    assert not reader_threads() and sys.getswitchinterval() == interval
