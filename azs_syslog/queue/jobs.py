"""``send-event --jobs N``: several producer processes for one big file.

The file is cut into ``N`` parts (:class:`Part`): a JSON-lines file at line boundaries
(:func:`split_lines`), an ``.evtx`` file at chunk boundaries (the caller cuts it: inputs sit
above this room). Each process reads, renders and commits its own part
(:func:`azs_syslog.queue.ingest.enqueue_chunks`), and the parent sums what they report.
"""

from __future__ import annotations

import contextlib
import os
import queue as queue_module
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from azs_syslog.errors import QueueError
from azs_syslog.events.record import (
    MAX_LINE_BYTES,
    Chunk,
    Record,
    in_chunks,
    read_to_line_end,
    too_long_line,
)
from azs_syslog.queue import Queue
from azs_syslog.queue.batching import Rejection
from azs_syslog.queue.builder import LineRenderer
from azs_syslog.queue.ingest import IngestFailure, IngestResult, enqueue_chunks

RenderingFactory = Callable[[], tuple[LineRenderer, str]]


class Part(NamedTuple):
    """A part of a file: where it starts and ends (bytes of a JSON-lines file, chunks of an
    ``.evtx`` file), the number of its first line or record and of its last (None: to the
    end of the file), which a report of what was not queued names."""

    start: int
    end: int
    first: int
    last: int | None


# A part's records in chunks, as its producer reads them: (file, part, on_skip).
PartReader = Callable[[Path, Part, Callable[[str], None]], Iterator[Chunk]]
# Told how far the producers are, every 0.1 s: (done, records read, rejected, skipped), "done"
# in the units the caller's ``units`` counts (records unless it says otherwise).
Progress = Callable[[int, int, int, int], None]


@contextlib.contextmanager
def pinned(path: Path) -> Iterator[Path]:
    """A name for the file at ``path`` now: ``/proc/self/fd/N`` of a descriptor held open
    while in the ``with`` (the producers, forked, inherit it), so that the split and every
    producer read this one file even if another takes its name meanwhile (a log rotated);
    ``path`` itself where there is no ``/proc``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        held = Path(f"/proc/self/fd/{fd}")
        yield held if held.exists() else path
    finally:
        os.close(fd)


def split_lines(path: Path, parts: int) -> list[Part]:
    """Cut a file into about ``parts`` byte ranges at line boundaries."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        starts = [0]
        for k in range(1, parts):
            handle.seek(max(size * k // parts, starts[-1]))
            if handle.tell() > 0:
                handle.seek(handle.tell() - 1)
                while handle.readline(1 << 20)[-1:] not in (b"\n", b""):
                    pass  # to the start of the next line, a MiB at a time (a line may be long)
            position = handle.tell()
            if starts[-1] < position < size:
                starts.append(position)
        ranges: list[tuple[int, int, int]] = []  # start, end, first line
        handle.seek(0)
        line, offset = 1, 0
        for index, start in enumerate(starts):
            while offset < start:
                chunk = handle.read(min(1 << 24, start - offset))
                line += chunk.count(b"\n")
                offset += len(chunk)
            end = starts[index + 1] if index + 1 < len(starts) else size
            ranges.append((start, end, line))
    return [
        Part(start, end, first, ranges[k + 1][2] - 1 if k + 1 < len(ranges) else None)
        for k, (start, end, first) in enumerate(ranges)
    ]


def read_lines(path: Path, part: Part, on_skip: Callable[[str], None]) -> Iterator[Chunk]:
    """The lines of a part, in chunks (``Enqueuer.feed``; a file: nothing to wait for)."""
    return in_chunks(_lines_in_range(path, part.start, part.end, part.first))


def _lines_in_range(path: Path, start: int, end: int, first_line: int) -> Iterator[Record]:
    """The non-blank lines of a part, stripped, with their numbers; a line longer than
    ``MAX_LINE_BYTES`` as ``too_long_line`` (skipped, not kept)."""
    with path.open("rb") as handle:
        handle.seek(start)
        position, line_no = start, first_line - 1
        while position < end and (raw := handle.readline(MAX_LINE_BYTES + 1)):
            position += len(raw)
            line_no += 1
            if len(raw) > MAX_LINE_BYTES and raw[-1:] != b"\n":
                more, ended = read_to_line_end(handle.readline)
                position += more
                yield line_no, too_long_line(len(raw) + more - ended)
                continue
            line = raw.strip()
            if line:
                yield line_no, line


@dataclass(frozen=True)
class PartResult:
    """What one producer process of ``enqueue_jsonl_file`` did with its part of the file.

    ``failure``: the queue's error (message, fix) when it stopped taking events; ``stopped``:
    the process was asked to stop (SIGTERM/SIGINT) before the end of its part. In both cases
    ``not_queued`` counts the events of the part left out, from ``first_line_not_queued``.
    ``skipped``: the damaged parts of the input it skipped (an ``.evtx`` file's).
    """

    part: int
    result: IngestResult
    rejections: list[Rejection]
    skipped: list[str]
    not_queued: int = 0
    first_line_not_queued: int | None = None
    failure: tuple[str, str | None] | None = None
    stopped: bool = False


_stop_requested = False  # set by the signal handlers of a producer process


def _request_stop(signum: int, frame: object) -> None:
    global _stop_requested
    _stop_requested = True


def _until_stopped(records: Iterator[Chunk]) -> Iterator[Chunk]:
    """``records`` until a stop is requested; what is left stays in ``records``."""
    if _stopping():
        return
    for record in records:
        yield record
        if _stopping():
            return


def _stopping() -> bool:
    return _stop_requested


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent dies, whatever kills the parent
    (SIGKILL included): the transaction being written is then rolled back, whole."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request: go now
        os._exit(1)


def _produce_range(
    path: Path,
    part: Part,
    read_part: PartReader,
    make_rendering: RenderingFactory,
    results: Any,
    origin: tuple[int, int],
    parent: int,
    index: int,
    shown: tuple[Any, Callable[[Chunk], int] | None],
) -> None:
    global _stop_requested
    _die_with_parent(parent)
    # SIGTERM / SIGINT (forwarded by the parent, or a Ctrl-C to the whole process group): stop
    # reading, commit what is rendered, report. Only a flag is set here. A signal that came
    # before this point went to the parent's handler inherited by the fork: honour it too.
    for signum in (signal.SIGTERM, signal.SIGINT):
        inherited = signal.signal(signum, _request_stop)
        if isinstance(inherited, _StopFlag) and inherited.signum:
            _stop_requested = True
    try:
        renderer, key = make_rendering()
        rejections: list[Rejection] = []
        skipped: list[str] = []
        generation, level = origin
        counters, units = shown
        records = _counted(
            read_part(path, part, skipped.append), counters, 4 * index, units, rejections, skipped
        )
        report: PartResult
        try:
            with Queue() as queue:
                result = enqueue_chunks(
                    _until_stopped(records),
                    queue,
                    renderer,
                    key,
                    on_reject=rejections.append,
                    generation=generation,
                    level=level,
                )
            report = PartResult(index, result, rejections, skipped)
            if _stopping():
                not_queued, first = 0, None
                for numbers, _lines in records:
                    not_queued += len(numbers)
                    first = numbers[0] if first is None else first
                report = PartResult(
                    index, result, rejections, skipped, not_queued, first, stopped=True
                )
        except IngestFailure as exc:
            # Counted to the end of the part, even if a stop cut the counting short.
            rest = [line_no for numbers, _lines in records for line_no in numbers]
            firsts = exc.first_lines + rest[:1]
            report = PartResult(
                index,
                exc.result,
                rejections,
                skipped,
                exc.not_queued + len(rest),
                firsts[0] if firsts else None,
                failure=(exc.message, exc.fix),
            )
        except QueueError as exc:  # the queue could not even be opened: nothing queued
            lines = [line_no for numbers, _lines in records for line_no in numbers]
            report = PartResult(
                index,
                IngestResult(0, len(rejections), 0),
                rejections,
                skipped,
                len(lines),
                lines[0] if lines else None,
                failure=(exc.message, exc.fix),
            )
        results.put(("ok", report))
    except BaseException as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def _counted(
    chunks: Iterator[Chunk],
    counters: Any,
    at: int,
    units: Callable[[Chunk], int] | None,
    rejections: list[Rejection],
    skipped: list[str],
) -> Iterator[Chunk]:
    """``chunks``, counted in this producer's four slots of ``counters`` (shared with the
    parent) as each is handed on: done, records, rejected, skipped."""
    for chunk in chunks:
        yield chunk
        counters[at] += units(chunk) if units is not None else len(chunk[0])
        counters[at + 1] += len(chunk[0])
        counters[at + 2] = len(rejections)
        counters[at + 3] = len(skipped)


class _StopFlag:
    """Set by the parent's SIGTERM / SIGINT handlers while it waits for its producers."""

    def __init__(self) -> None:
        self.signum = 0

    def __call__(self, signum: int, frame: object) -> None:
        self.signum = signum


def enqueue_file(
    path: Path,
    parts: list[Part],
    read_part: PartReader,
    make_rendering: RenderingFactory,
    *,
    generation: int = 0,
    level: int = 0,
    on_progress: Progress | None = None,
    units: Callable[[Chunk], int] | None = None,
) -> tuple[IngestResult, list[Rejection], list[str]]:
    """Enqueue a file with one producer process per part (``read_part`` reads a part), each
    rendering and committing its own part; ``on_progress`` is told how far they are (in
    ``units`` of each chunk read: records unless given). Batches of different parts
    interleave in the queue, so events may be sent in a different order than the file's
    (each event keeps its own time). Returns the totals, the rejections (by line or record)
    and the damaged parts skipped (in the file's order).

    The producers never outlive this process: they are killed by the kernel when it dies, and
    a SIGTERM or SIGINT it receives is passed on to them; each then commits what it has
    rendered and stops. ``IngestFailure`` (its cause says why: a full disk, or ``Interrupted``)
    then gives the exact totals, summed over the producers.

    ``generation`` / ``level``: see :class:`BatchBuilder` (the same for every part).
    """
    import multiprocessing

    context = multiprocessing.get_context("fork")
    results = context.Queue()
    origin = (generation, level)
    counters = context.Array("q", 4 * len(parts), lock=False)  # each producer writes its own
    shown = (counters, units)
    parent = os.getpid()
    children = [
        context.Process(
            target=_produce_range,
            args=(path, part, read_part, make_rendering, results, origin, parent, index, shown),
        )
        for index, part in enumerate(parts)
    ]

    def tick() -> None:
        if on_progress is not None:
            on_progress(*(sum(counters[slot::4]) for slot in range(4)))

    stop = _StopFlag()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, stop)
    try:
        for child in children:
            child.start()
        reports, problems = _collect(children, results, stop, tick)
        for child in children:
            child.join()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return _summarize(reports, problems, parts, stop)


def _collect(
    children: list[Any], results: Any, stop: _StopFlag, tick: Callable[[], None]
) -> tuple[list[PartResult], list[str]]:
    """Wait for every producer's report (passing a stop signal on to them once, and calling
    ``tick`` every 0.1 s at most); returns the reports and the problems of those that failed
    or were killed."""
    reports: list[PartResult] = []
    problems: list[str] = []
    forwarded = False
    pending = len(children)
    while pending:
        tick()
        if stop.signum and not forwarded:
            forwarded = True
            _forward_stop(children)
        try:
            status, payload = results.get(timeout=0.1)
        except queue_module.Empty:
            if any(child.exitcode is None for child in children):
                continue
            # Every producer has exited; one killed without a word never reports.
            try:
                status, payload = results.get(timeout=1.0)
            except queue_module.Empty:
                problems += ["a producer process was killed"] * pending
                break
        pending -= 1
        if status == "ok":
            reports.append(payload)
        else:
            problems.append(str(payload))
    return reports, problems


def _forward_stop(children: list[Any]) -> None:
    for child in children:
        if child.pid is not None and child.exitcode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)


def _summarize(
    reports: list[PartResult],
    problems: list[str],
    parts: list[Part],
    stop: _StopFlag,
) -> tuple[IngestResult, list[Rejection], list[str]]:
    """The totals of the producers' reports, or ``IngestFailure`` when some part was left out
    (a failed commit, or a stop)."""
    result = IngestResult(
        sum(report.result.accepted for report in reports),
        sum(report.result.rejected for report in reports),
        sum(report.result.truncated for report in reports),
        sum(report.result.filtered for report in reports),
    )
    rejections = sorted(
        (rejection for report in reports for rejection in report.rejections),
        key=lambda rejection: rejection.line,
    )
    skipped = [
        problem
        for report in sorted(reports, key=lambda report: report.part)
        for problem in report.skipped
    ]
    if problems:
        raise QueueError(
            f"{len(problems)} of {len(parts)} producer processes failed: {problems[0]}",
            fix=f"{result.accepted} events were queued by the others; check the free disk space",
        )
    failed = [report for report in reports if report.failure is not None]
    stopped = [report for report in reports if report.stopped and report.not_queued]
    if not failed and not stopped:
        return result, rejections, skipped
    left_out = failed + stopped
    # By first number only: the record numbers of an .evtx file's parts may meet (a log
    # that wrapped around), and a part's last is None at the end of the file.
    ranges: list[tuple[int, int | None]] = sorted(
        (
            (report.first_line_not_queued, parts[report.part].last)
            for report in left_out
            if report.first_line_not_queued is not None
        ),
        key=lambda span: span[0],
    )
    if failed:
        message, fix = failed[0].failure or ("", None)
        cause = QueueError(message, fix=fix)
    else:
        name = signal.Signals(stop.signum).name if stop.signum else "a signal"
        cause = QueueError(f"stopped by {name} before the end of the input")
    raise IngestFailure(
        cause,
        result,
        sum(report.not_queued for report in left_out),
        [first for first, _last in ranges],
        ranges=_merge(ranges),
        interrupted=not failed,
        rejections=rejections,
        skipped=skipped,
    )


def _merge(ranges: list[tuple[int, int | None]]) -> list[tuple[int, int | None]]:
    """One range where one part's follows on from another's."""
    merged: list[tuple[int, int | None]] = []
    for first, last in ranges:
        if merged and merged[-1][1] is not None and merged[-1][1] + 1 == first:
            merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged
