"""``.evtx`` files -> our Windows events: read directly in C, or by the ``evtx`` parser.

A chunk whose checksums hold is read by the C reader of the records' binary XML when built
(``evtx_chunk``, encode/_speedups_evtx_binary.c: about five times faster); it maps each record
as ``inputs/event_xml.py`` maps Event XML, and gives up on a chunk holding anything it does not
read for sure. Every other chunk is read by the ``evtx`` parser (Rust, on PyPI), which renders
each record as Event XML, read fast in the parser's own layout (``inputs/evtx_layout.py``; in
C when built). Both give the same JSON text of our format for a record (tests/test_evtx_binary.py),
which the renderer's fused path reads (``Renderer.render_line``) and the queue keeps as the raw
line. A damaged chunk or record does not end the file: the parser skips it and goes on with the
next, and ``on_skip`` is told which one and why.

A file is a 4 KiB header and chunks of 64 KiB, each readable on its own (its own strings and
templates). So a range of chunks is read as a file of its own, the header then those chunks
(:func:`iter_evtx_part`): how ``send-event --jobs`` splits an ``.evtx`` file between processes
(``queue/jobs.py``), with the same events, the same numbers and the same reports of damaged
parts as one process reading it whole.
"""

from __future__ import annotations

import io
import itertools
import os
import re
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final, cast

from azs_syslog.events.record import FILE_CHUNK, Chunk, in_chunks
from azs_syslog.inputs.evtx_layout import fast_event, slow_event

try:  # the usual layout's JSON text, written in C (the same text as fast_event's, dumped)
    from azs_syslog.encode._speedups import evtx_json
except ImportError:  # not built: fast_event reads every record

    def evtx_json(data: str, /) -> str | None:
        return None


try:  # a chunk's records read from their binary XML, in C
    from azs_syslog.encode._speedups import evtx_chunk

    BUILT = True
except ImportError:  # not built: the parser reads every chunk
    BUILT = False

    def evtx_chunk(chunk: bytes | bytearray | memoryview, /) -> tuple[list[int], list[str]] | None:
        return None


__all__ = [
    "chunk_count",
    "fast_event",
    "iter_evtx_chunks",
    "iter_evtx_events",
    "iter_evtx_part",
    "read_part",
    "slow_event",
    "split_chunks",
]

Skip = Callable[[str], None]
Events = Generator[tuple[int, str | dict[str, Any]], None, None]

FILE_HEADER: Final = 4096
CHUNK: Final = 65536
# Chunks a part reads with one parser: 4 MiB in memory at a time, whatever the part's size.
GROUP: Final = 64
# Chunks the reading thread reads ahead of the one being rendered (at most about a MiB of
# records' texts for real logs). It reads when one process imports a file and the machine has
# another core for it; with ``--jobs``, the processes are the parallel part and each reads its
# chunks itself (measured on two vCPUs, 93,840 records: one process 74,000-75,500 ->
# 77,700-79,700 records/s with the thread; --jobs 2 99,600-102,100 with a thread in each process
# against 103,200-103,600 without). 12 rather than 4: the rendering waits less for a reader
# that the committing thread and the system delay now and then (78,300-80,500 against
# 75,000-77,900 records/s, three runs each in turn; 32 gained nothing more).
AHEAD: Final = 12
AHEAD_ALONE: Final = (os.cpu_count() or 1) > 1

_RECORD_RE: Final = re.compile(r"Failed to parse record number (\d+)")
_CHUNK_RE: Final = re.compile(r"Failed to parse chunk number (\d+)")
_NOISE: Final = (
    "An error occurred while trying to deserialize evtx stream.: ",
    "Failed to parse chunk header: ",
)


def iter_evtx_events(source: str | BinaryIO, on_skip: Skip) -> Events:
    """``(EventRecordID, our event)`` for each readable record of an ``.evtx`` file (a path,
    or a binary stream read whole). The event is its JSON text (a dict only if it cannot be
    written as JSON)."""
    yield from _one_by_one(iter_evtx_chunks(source, on_skip))


def iter_evtx_chunks(source: str | BinaryIO, on_skip: Skip) -> Iterator[Chunk]:
    """The same records in chunks of FILE_CHUNK (the last one shorter: ``Enqueuer.feed``)."""
    if isinstance(source, str):
        return _regroup(_part(source, 0, chunk_count(source), on_skip, AHEAD_ALONE))
    return _regroup(_in_memory(source.read(), on_skip))


def _in_memory(data: bytes, on_skip: Skip) -> Iterator[Chunk]:
    header = data[:FILE_HEADER]
    _check_header(header)
    last = yield from _chunks(data[FILE_HEADER:], header, on_skip, 0, 0, AHEAD_ALONE)
    _report_cut(len(data), last, on_skip)


def _regroup(pieces: Iterable[Chunk], size: int = FILE_CHUNK) -> Iterator[Chunk]:
    """Records in lists of any length -> in chunks of ``size`` (the last one shorter)."""
    numbers: list[int] = []
    items: list[Any] = []
    for more_numbers, more_items in pieces:
        numbers += more_numbers
        items += more_items
        while len(numbers) >= size:
            yield numbers[:size], items[:size]
            del numbers[:size], items[:size]
    if numbers:
        yield numbers, items


def chunk_count(path: str | Path) -> int:
    """How many chunks an ``.evtx`` file has room for (the last one may be cut short)."""
    size = Path(path).stat().st_size
    return max(0, -(-(size - FILE_HEADER) // CHUNK))


def iter_evtx_part(path: str | Path, first: int, end: int, on_skip: Skip) -> Events:
    """As :func:`iter_evtx_events`, the records of chunks ``first`` to ``end`` (excluded) of
    the file at ``path``. A damaged part is reported as reading the whole file reports it."""
    yield from _one_by_one(_part(path, first, end, on_skip, AHEAD_ALONE))


def _one_by_one(chunks: Iterable[Chunk]) -> Events:
    for numbers, items in chunks:
        yield from zip(numbers, items, strict=True)


def _part(path: str | Path, first: int, end: int, on_skip: Skip, ahead: bool) -> Iterator[Chunk]:
    """The records of chunks ``first`` to ``end`` (excluded) of the file at ``path``, GROUP
    chunks read at a time (so much in memory, whatever the file's size); by a thread reading
    ahead if ``ahead``."""
    with Path(path).open("rb") as handle:
        header = handle.read(FILE_HEADER)
        _check_header(header)
        last = _last_record_before(handle, first)
        for group in range(first, end, GROUP):
            handle.seek(FILE_HEADER + group * CHUNK)
            data = handle.read(min(GROUP, end - group) * CHUNK)
            if not data:
                break
            last = yield from _chunks(data, header, on_skip, last, group, ahead)
        if end == chunk_count(path):
            _report_cut(handle.seek(0, io.SEEK_END), last, on_skip)


def _check_header(header: bytes) -> None:
    """Raise as the parser does for a file that does not start with an ``.evtx`` header."""
    from evtx import PyEvtxParser

    from azs_syslog.errors import EventError

    try:
        PyEvtxParser(io.BytesIO(header))
    except (RuntimeError, OSError) as exc:
        raise EventError(f"is not a readable EVTX file: {_describe(str(exc), 0)}") from None


def _chunks(
    data: bytes, header: bytes, on_skip: Skip, last: int, first_chunk: int, ahead: bool
) -> Generator[Chunk, None, int]:
    """The records of ``data``, chunks of a file (chunk ``first_chunk`` first) behind its
    ``header``, a chunk at a time: each intact one read by ``evtx_chunk`` (in a thread reading
    ahead if ``ahead``), the others (and those it doubts) by the parser, which reports what is
    damaged. Returns the EventRecordID of the last record read (``last`` if none)."""
    view = memoryview(data)
    pieces = [view[index * CHUNK : (index + 1) * CHUNK] for index in range(len(data) // CHUNK)]
    start = 0  # the first chunk not read yet
    for index, found in enumerate(_read_ahead(pieces, ahead)):
        if found is None:
            continue
        if start < index:
            last = yield from _by_parser(
                header + data[start * CHUNK : index * CHUNK], on_skip, last, first_chunk + start
            )
        start = index + 1
        numbers, lines = found
        if numbers:
            yield numbers, cast(list[Any], lines)
            last = numbers[-1]
    if start * CHUNK < len(data):  # with the end of a file cut short (_report_cut)
        last = yield from _by_parser(
            header + data[start * CHUNK :], on_skip, last, first_chunk + start
        )
    return last


def _read_ahead(
    pieces: list[memoryview], ahead: bool
) -> Generator[tuple[list[int], list[str]] | None, None, None]:
    """``_read_chunk`` of each piece, in order; if ``ahead``, read by a thread of its own up
    to AHEAD pieces ahead (the C reader and the checksums run without the GIL: on another core
    while this thread renders)."""
    if not ahead or not BUILT or len(pieces) < 2:
        yield from map(_read_chunk, pieces)
        return
    import queue
    import threading

    from azs_syslog.switching import fast_switching

    results: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()
    room = threading.Semaphore(AHEAD)
    stop = threading.Event()

    def read() -> None:
        for piece in pieces:
            room.acquire()
            if stop.is_set():
                return
            try:
                results.put((True, _read_chunk(piece)))
            except BaseException as exc:  # raised in the reading thread, given to this one
                results.put((False, exc))
                return

    thread = threading.Thread(target=read, name="azs-syslog-evtx-reader", daemon=True)
    fast_switching(True)
    try:
        thread.start()
        for _ in pieces:
            ok, found = results.get()
            room.release()
            if not ok:
                raise found
            yield found
    finally:
        stop.set()
        room.release()
        thread.join()
        fast_switching(False)


def _read_chunk(chunk: memoryview) -> tuple[list[int], list[str]] | None:
    """A chunk's records read by ``evtx_chunk``; None when it is damaged or doubts them (or
    is not built)."""
    return evtx_chunk(chunk) if BUILT and _intact(chunk) else None


def _intact(chunk: memoryview) -> bool:
    """Whether a chunk's header and records are as written (their checksums hold)."""
    free = int.from_bytes(chunk[0x30:0x34], "little")
    if chunk[:8].tobytes() != b"ElfChnk\0" or not 0x200 <= free <= CHUNK:
        return False
    header = zlib.crc32(chunk[0x80:0x200], zlib.crc32(chunk[:0x78]))
    return header == int.from_bytes(chunk[0x7C:0x80], "little") and zlib.crc32(
        chunk[0x200:free]
    ) == int.from_bytes(chunk[0x34:0x38], "little")


def _by_parser(
    data: bytes, on_skip: Skip, last: int, first_chunk: int
) -> Generator[Chunk, None, int]:
    """The records of a file's header and chunks (``first_chunk`` first), read by the parser;
    returns the EventRecordID of the last one (``last`` if none)."""
    for numbers, items in in_chunks(_records(io.BytesIO(data), on_skip, last, first_chunk)):
        yield numbers, items
        last = numbers[-1]
    return last


def _report_cut(size: int, last: int, on_skip: Skip) -> None:
    """A file that ends inside a chunk (a copy cut short): the parser reads the chunks before
    it and says nothing of that one, whose records are lost; say it."""
    rest = (size - FILE_HEADER) % CHUNK
    if size > FILE_HEADER and rest:
        chunk = (size - FILE_HEADER) // CHUNK
        on_skip(
            f"chunk {chunk}{_after(last)} skipped, its records unreadable: the file ends "
            f"{rest} bytes into it, of {CHUNK} (cut short?)"
        )


def split_chunks(path: str | Path, parts: int) -> list[tuple[int, int, int, int | None]]:
    """Cut an ``.evtx`` file into about ``parts`` ranges of whole chunks (``queue.jobs.Part``:
    first chunk, end, the EventRecordID of the first record and of the last, from the chunks'
    headers; None for the last part: to the end)."""
    count = chunk_count(path)
    parts = max(1, min(parts, count))
    bounds = [count * k // parts for k in range(parts + 1)]
    with Path(path).open("rb") as handle:
        lasts = [_last_record_before(handle, bound) for bound in bounds]
    return [
        (start, end, lasts[k] + 1, lasts[k + 1] if k + 1 < parts else None)
        for k, (start, end) in enumerate(itertools.pairwise(bounds))
    ]


def read_part(path: Path, part: Any, on_skip: Skip) -> Iterator[Chunk]:
    """A ``queue.jobs.Part`` of an ``.evtx`` file (``split_chunks``), its records in chunks."""
    return _regroup(_part(path, part.start, part.end, on_skip, ahead=False))


def _last_record_before(handle: BinaryIO, chunk: int) -> int:
    """The EventRecordID of the last record of the nearest readable chunk before ``chunk``
    (as its header says), 0 if none."""
    for before in range(chunk - 1, -1, -1):
        handle.seek(FILE_HEADER + before * CHUNK)
        head = handle.read(0x28)
        if len(head) == 0x28 and head[:8] == b"ElfChnk\0":
            return int.from_bytes(head[0x20:0x28], "little")
    return 0


def _records(
    target: Any, on_skip: Skip, last: int, first_chunk: int
) -> Generator[tuple[int, str | dict[str, Any]], None, int]:
    """The events of one parser's file (chunk ``first_chunk`` of the whole file first);
    returns the EventRecordID of the last one read (``last`` if none). (Taken a chunk at a
    time by a C loop, they came no faster: measured.)"""
    from evtx import PyEvtxParser

    from azs_syslog.errors import EventError

    try:
        records = PyEvtxParser(target).records()
    except (RuntimeError, OSError) as exc:
        raise EventError(f"is not a readable EVTX file: {_describe(str(exc), 0)}") from None
    while True:
        try:
            record: Any = next(records)
        except StopIteration:
            return last
        except RuntimeError as exc:  # the parser's error for a damaged chunk or record
            on_skip(_describe(str(exc), last, first_chunk))
            continue
        last = record["event_record_id"]
        data = record["data"]
        line = evtx_json(data)  # the usual layout, in C (or None)
        yield last, (line if line is not None else _line_of(data))


def _line_of(data: str) -> str | dict[str, Any]:
    """Our event's JSON text from a record's XML that ``evtx_json`` doubts (or did not read:
    not built), by ``evtx_layout``; the event itself if it cannot be written as JSON."""
    from orjson import dumps

    # The records' XML is written by the parser itself (text escaped, no declarations or
    # entities possible): read here directly, or by the standard parser (not defusedxml:
    # event_xml.py).
    event = fast_event(data) or slow_event(data)
    try:
        return dumps(event).decode()
    except TypeError:
        return event


def _describe(message: str, last: int, first_chunk: int = 0) -> str:
    """One line for a damaged part: which record or chunk, where, and the parser's reason
    (a chunk numbered in the whole file, the parser's file starting at ``first_chunk``)."""
    reason = message.replace("\n", " ")
    for noise in _NOISE:
        reason = reason.replace(noise, "")
    after = _after(last)
    match = _RECORD_RE.search(reason)
    if match is not None:
        detail = reason[match.end() :].lstrip(": ")
        return f"record {match.group(1)} skipped, damaged: {detail}"
    match = _CHUNK_RE.search(reason)
    if match is not None:
        detail = reason[match.end() :].lstrip(": ")
        chunk = int(match.group(1)) + first_chunk
        return f"chunk {chunk}{after} skipped, its records unreadable: {detail}"
    return f"the record after record {last} skipped, damaged: {reason}"


def path_of(stream: object) -> str | None:
    """The file behind ``stream``, when it is a regular file (the parser reads it itself)."""
    name = getattr(stream, "name", None)
    if isinstance(name, str) and Path(name).is_file():
        return name
    return None


def _after(last: int) -> str:
    return f" (after record {last})" if last else " (before the first record)"
