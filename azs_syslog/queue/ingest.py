"""Enqueueing: input records → framed syslog bytes → batches → the durable queue.

Shared by ``send-event`` (a file or a pipe) and the worker's Unix-socket input. Each accepted
line is rendered once, here, in the producer's process (docs/architecture.md); the batch keeps
the raw line too, so the worker can render it again under new settings.

Events the OutputSeverity filter leaves out are still queued (raw only): the filter applies at
send time, so a later switch to Verbose still forwards them.

A batch is committed when it holds ``max_events`` events or ``max_bytes`` bytes, or when its
oldest event has waited ``max_delay`` seconds: a long-running ``send-event -`` pipe commits as
it goes, even when the producer pauses (a flusher thread watches the clock).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue as queue_module
import signal
import sys
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from azs_syslog.errors import EventError, QueueError
from azs_syslog.queue import NewBatch, Queue, encode_raw, now_ms

DEFAULT_BATCH_EVENTS = 2000
DEFAULT_BATCH_BYTES = 4 << 20  # wire + raw: ~2,000 realistic events
DEFAULT_MAX_DELAY = 0.15  # seconds an accepted event may wait for its commit


class LineRenderer(Protocol):
    """What ingest needs of ``render.Renderer``."""

    truncated: int

    def render_line(self, line: str | bytes, accepted_ms: int) -> bytes | None: ...


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str


RejectCallback = Callable[[Rejection], None]


class BatchBuilder:
    """Accumulates rendered events for one batch.

    ``generation`` and ``level`` are the configuration generation the renderer's settings
    come from and the security level configured at acceptance; every batch records them, so
    the worker never sends it under an older configuration or a weaker transport.
    """

    def __init__(
        self, renderer: LineRenderer, render_key: str, *, generation: int = 0, level: int = 0
    ) -> None:
        self.renderer = renderer
        self.render_key = render_key
        self.generation = generation
        self.level = level
        self._wire: list[bytes] = []
        self._lengths = array("I")
        self._raw: list[bytes] = []
        self._times = array("q")
        self.nbytes = 0
        self.truncated_at_start = renderer.truncated

    def __len__(self) -> int:
        return len(self._raw)

    @property
    def created_ms(self) -> int | None:
        return self._times[0] if self._times else None

    def add(self, line: str | bytes, accepted_ms: int) -> None:
        """Render and add one line; raises ``EventError`` (and adds nothing) when invalid."""
        framed = self.renderer.render_line(line, accepted_ms)
        raw = line.encode("utf-8") if isinstance(line, str) else line
        if framed is not None:
            self._wire.append(framed)
            self._lengths.append(len(framed))
            self.nbytes += len(framed)
        self._raw.append(raw)
        self._times.append(accepted_ms)
        self.nbytes += len(raw) + 12

    def take(self) -> tuple[NewBatch | None, int]:
        """The batch built so far and the number of events truncated while building it;
        the builder starts over."""
        truncated = self.renderer.truncated - self.truncated_at_start
        batch = None
        if self._raw:
            batch = NewBatch(
                count=len(self._raw),
                created_ms=self._times[0],
                render_key=self.render_key,
                wire=b"".join(self._wire),
                lengths=self._lengths.tobytes(),
                raw=encode_raw(self._times, self._raw),
                generation=self.generation,
                level=self.level,
            )
        self._wire = []
        self._lengths = array("I")
        self._raw = []
        self._times = array("q")
        self.nbytes = 0
        self.truncated_at_start = self.renderer.truncated
        return batch, truncated


def error_reason(exc: EventError) -> str:
    """The reason of a rejection, without the line prefix (the caller reports the line)."""
    return f"{exc.field}: {exc.message}" if exc.field else exc.message


class Enqueuer:
    """Renders records into batches and commits them to the queue.

    Commits run in the producing thread. (A separate writer thread was measured slower: each
    SQLite statement hands the GIL back and forth with the rendering thread, and that convoy
    costs more than the write it would hide.) A flusher thread, started by :meth:`start`,
    commits a batch whose oldest event has waited ``max_delay``.

    ``accepted`` counts committed (durable) events; after :meth:`close` returns, every
    accepted event is on disk.
    """

    def __init__(
        self,
        queue: Queue,
        renderer: LineRenderer,
        render_key: str,
        *,
        batch_events: int = DEFAULT_BATCH_EVENTS,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        max_delay: float = DEFAULT_MAX_DELAY,
        on_reject: RejectCallback | None = None,
        generation: int = 0,
        level: int = 0,
    ) -> None:
        self.queue = queue
        self.builder = BatchBuilder(renderer, render_key, generation=generation, level=level)
        self.batch_events = batch_events
        self.batch_bytes = batch_bytes
        self.max_delay = max_delay
        self.on_reject = on_reject
        self.accepted = 0  # committed, i.e. durable
        self.rejected = 0
        self.truncated = 0
        # After a failed commit nothing more is added (what is queued stays a prefix of the
        # input): the failure, the events it left out, and the first line not queued.
        self.failure: QueueError | None = None
        self.not_queued = 0
        self.first_line_not_queued: int | None = None
        self._first_line: int | None = None  # of the batch being built
        self._pending_rejected = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._error: BaseException | None = None

    # --- producing

    def add(self, line_no: int, record: str | bytes | dict[str, object]) -> bool:
        """Add one input record (a JSON text, or an already parsed object). Returns whether it
        was accepted (it becomes durable at the next commit). After a failed commit
        (``failure`` is set) nothing is added: the record is counted in ``not_queued``."""
        if self._error is not None and self._error is not self.failure:
            raise self._error
        line: str | bytes
        if isinstance(record, dict):
            try:
                line = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
            except RecursionError:  # parsed near the parser's limit, too deep to write back
                self.reject(line_no, "invalid JSON: nested too deeply")
                return False
        else:
            line = record
        with self._lock:
            if self.failure is not None:
                self._not_queued(1, line_no)
                return False
            try:
                self.builder.add(line, now_ms())
            except EventError as exc:
                self._reject(line_no, error_reason(exc))
                return False
            if self._first_line is None:
                self._first_line = line_no
            if len(self.builder) >= self.batch_events or self.builder.nbytes >= self.batch_bytes:
                try:
                    self._commit()
                except QueueError:
                    return False  # recorded in ``failure``
        return True

    def reject(self, line_no: int, reason: str) -> None:
        """Count a record refused before rendering (e.g. unparsable input)."""
        with self._lock:
            self._reject(line_no, reason)

    def _reject(self, line_no: int, reason: str) -> None:
        self.rejected += 1
        self._pending_rejected += 1
        if self.on_reject is not None:
            self.on_reject(Rejection(line_no, reason))

    def flush(self) -> None:
        """Commit whatever is pending."""
        with self._lock:
            self._commit()

    def _not_queued(self, events: int, first_line: int | None) -> None:
        self.not_queued += events
        if self.first_line_not_queued is None:
            self.first_line_not_queued = first_line

    def _commit(self) -> None:
        """Commit the batch built so far. A ``QueueError`` is recorded in ``failure`` (with
        the batch's events in ``not_queued``) and raised; no later commit is tried."""
        if self.failure is not None:
            raise self.failure
        batch, truncated = self.builder.take()
        first_line, self._first_line = self._first_line, None
        if batch is None and not self._pending_rejected and not truncated:
            return
        try:
            self.queue.append_batch(batch, rejected=self._pending_rejected, truncated=truncated)
        except QueueError as exc:
            self.failure = exc
            self._not_queued(batch.count if batch is not None else 0, first_line)
            raise
        self._pending_rejected = 0
        self.truncated += truncated
        if batch is not None:
            self.accepted += batch.count

    # --- the flusher thread

    def start(self) -> None:
        if self._flusher is None:
            self._flusher = threading.Thread(
                target=self._flush_when_due, name="azs-syslog-flusher", daemon=True
            )
            self._flusher.start()

    def _flush_when_due(self) -> None:
        tick = max(self.max_delay / 3, 0.01)
        while not self._stop.wait(tick):
            try:
                with self._lock:
                    created = self.builder.created_ms
                    if created is not None and now_ms() - created >= self.max_delay * 1000:
                        self._commit()
            except BaseException as exc:  # surfaced to the producer at its next add/close
                self._error = exc
                return

    def close(self) -> None:
        """Stop the flusher and commit the rest. Raises what the flusher met, if anything
        (except a failed commit, which stays in ``failure``)."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
            self._flusher = None
        if self._error is not None and self._error is not self.failure:
            raise self._error
        if self.failure is None:
            with contextlib.suppress(QueueError):  # recorded in ``failure``
                self.flush()


class IngestFailure(QueueError):
    """The queue stopped taking events part-way through an input (a full disk, say).

    ``result`` counts what was durably queued before the failure (a prefix of the input for
    one process); ``not_queued`` the events of the input that were not; ``first_lines`` the
    first line not queued of each part of the input (one part unless ``--jobs``);
    ``rest_unread``: the input (a pipe) was not read to its end, so ``not_queued`` counts only
    what had been read. ``cause`` is the queue's own error; ``interrupted``: no error, the
    producers were asked to stop (SIGTERM / SIGINT). ``rejections``: those of ``--jobs``.
    """

    def __init__(
        self,
        cause: QueueError,
        result: IngestResult,
        not_queued: int,
        first_lines: list[int],
        *,
        rest_unread: bool = False,
        interrupted: bool = False,
        rejections: list[Rejection] | None = None,
        ranges: list[tuple[int, int | None]] | None = None,
    ) -> None:
        super().__init__(cause.message, fix=cause.fix)
        self.cause = cause
        self.result = result
        self.not_queued = not_queued
        self.first_lines = first_lines
        self.rest_unread = rest_unread
        self.interrupted = interrupted
        self.rejections = rejections or []
        # The lines not queued, first to last (None: to the end of the input).
        self.ranges = ranges if ranges is not None else [(first, None) for first in first_lines]


class StopSignals:
    """SIGTERM and SIGINT for one producer reading its input (``send-event`` without
    ``--jobs``): the handler records the signal; only while the producer waits for its next
    record (a quiet pipe) does it also interrupt that wait, so a record is never half handled
    and the report of what was queued is exact."""

    def __init__(self) -> None:
        self.requested: str | None = None
        self.reading = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = signal.Signals(signum).name
        if self.reading:
            raise KeyboardInterrupt(self.requested)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self  # signals reach the main thread only: nothing to install here
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _next_record(
    records: Iterator[tuple[int, str | bytes | dict[str, object]]], stop: StopSignals | None
) -> tuple[int, str | bytes | dict[str, object]] | None:
    if stop is None:
        return next(records, None)
    stop.reading = True
    try:
        if stop.requested is not None:
            return None
        return next(records, None)
    finally:
        stop.reading = False


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    rejected: int
    truncated: int
    # Of ``accepted``: Windows events below the OutputSeverity threshold, queued (the worker
    # renders them again under the severity it runs with) but not sent under this one.
    filtered: int = 0


def enqueue_records(
    records: Iterable[tuple[int, str | bytes | dict[str, object]]],
    queue: Queue,
    renderer: LineRenderer,
    render_key: str,
    *,
    on_reject: RejectCallback | None = None,
    batch_events: int = DEFAULT_BATCH_EVENTS,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    max_delay: float = DEFAULT_MAX_DELAY,
    generation: int = 0,
    level: int = 0,
    read_to_end: bool = True,
    stop: StopSignals | None = None,
) -> IngestResult:
    """Render and durably enqueue ``records`` (``(line_no, record)`` pairs, as
    ``inputs.reader.iter_records`` yields them). When this returns, every accepted event is on disk.
    ``generation`` / ``level``: see :class:`BatchBuilder`.

    An ``EventError`` raised by the record iterator itself (input that cannot be split into
    records) is reported as a rejection of that line and ends the input.

    When the queue stops taking events (a full disk), nothing more is rendered and
    ``IngestFailure`` says how many events were queued before and how many were not: the rest
    of ``records`` is counted when ``read_to_end`` (a file; not a pipe, which may never end).

    ``stop`` (see :class:`StopSignals`): a SIGTERM or SIGINT ends the input after the record
    being handled; what is rendered is committed and ``IngestFailure`` (``interrupted``) says
    from which line on nothing was queued.
    """
    enqueuer = Enqueuer(
        queue,
        renderer,
        render_key,
        batch_events=batch_events,
        batch_bytes=batch_bytes,
        max_delay=max_delay,
        on_reject=on_reject,
        generation=generation,
        level=level,
    )
    enqueuer.start()
    filtered_before = getattr(renderer, "filtered", 0)
    rest = iter(records)
    last_line = 0  # the last line handed to the enqueuer whole
    try:
        try:
            while stop is None or stop.requested is None:
                item = _next_record(rest, stop)
                if item is None:
                    break
                enqueuer.add(*item)
                last_line = item[0]
                if enqueuer.failure is not None:
                    break
        except EventError as exc:
            enqueuer.reject(exc.line or 0, error_reason(exc))
        except KeyboardInterrupt:
            pass  # a stop signal while waiting for input: ``stop.requested`` says which
    finally:
        enqueuer.close()
    result = IngestResult(
        enqueuer.accepted,
        enqueuer.rejected,
        enqueuer.truncated,
        getattr(renderer, "filtered", 0) - filtered_before,
    )
    if stop is not None and stop.requested is not None and enqueuer.failure is None:
        raise IngestFailure(
            QueueError(f"stopped by {stop.requested} before the end of the input"),
            result,
            0,
            [last_line + 1],
            rest_unread=True,
            interrupted=True,
        )
    if enqueuer.failure is None:
        return result
    if read_to_end:
        with contextlib.suppress(EventError):
            for line_no, _record in rest:
                enqueuer._not_queued(1, line_no)
    first = enqueuer.first_line_not_queued
    raise IngestFailure(
        enqueuer.failure,
        result,
        enqueuer.not_queued,
        [] if first is None else [first],
        rest_unread=not read_to_end,
    )


# --- several producer processes for one big JSON-lines file -----------------------------------

RenderingFactory = Callable[[], tuple[LineRenderer, str]]


def split_lines(path: Path, parts: int) -> list[tuple[int, int, int]]:
    """Cut a file into about ``parts`` byte ranges at line boundaries: ``(start, end,
    number of the first line)``."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        starts = [0]
        for k in range(1, parts):
            handle.seek(max(size * k // parts, starts[-1]))
            if handle.tell() > 0:
                handle.seek(handle.tell() - 1)
                handle.readline()  # to the start of the next line
            position = handle.tell()
            if starts[-1] < position < size:
                starts.append(position)
        ranges: list[tuple[int, int, int]] = []
        handle.seek(0)
        line, offset = 1, 0
        for index, start in enumerate(starts):
            while offset < start:
                chunk = handle.read(min(1 << 24, start - offset))
                line += chunk.count(b"\n")
                offset += len(chunk)
            end = starts[index + 1] if index + 1 < len(starts) else size
            ranges.append((start, end, line))
    return ranges


def _read_range(path: Path, start: int, end: int, first_line: int) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        handle.seek(start)
        position, line_no = start, first_line - 1
        for raw in handle:
            if position >= end:
                return
            position += len(raw)
            line_no += 1
            line = raw.strip()
            if line:
                yield line_no, line


@dataclass(frozen=True)
class PartResult:
    """What one producer process of ``enqueue_jsonl_file`` did with its part of the file.

    ``failure``: the queue's error (message, fix) when it stopped taking events; ``stopped``:
    the process was asked to stop (SIGTERM/SIGINT) before the end of its part. In both cases
    ``not_queued`` counts the events of the part left out, from ``first_line_not_queued``.
    """

    part: int
    result: IngestResult
    rejections: list[Rejection]
    not_queued: int = 0
    first_line_not_queued: int | None = None
    failure: tuple[str, str | None] | None = None
    stopped: bool = False


_stop_requested = False  # set by the signal handlers of a producer process


def _request_stop(signum: int, frame: object) -> None:
    global _stop_requested
    _stop_requested = True


def _until_stopped(records: Iterator[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
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
    part: tuple[int, int, int],
    make_rendering: RenderingFactory,
    results: Any,
    origin: tuple[int, int],
    parent: int,
    index: int,
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
        generation, level = origin
        records = _read_range(path, *part)
        report: PartResult
        try:
            with Queue() as queue:
                result = enqueue_records(
                    _until_stopped(records),
                    queue,
                    renderer,
                    key,
                    on_reject=rejections.append,
                    generation=generation,
                    level=level,
                )
            report = PartResult(index, result, rejections)
            if _stopping():
                not_queued, first = 0, None
                for line_no, _line in records:
                    not_queued += 1
                    first = line_no if first is None else first
                report = PartResult(index, result, rejections, not_queued, first, stopped=True)
        except IngestFailure as exc:
            # Counted to the end of the part, even if a stop cut the counting short.
            rest = [line_no for line_no, _line in records]
            firsts = exc.first_lines + rest[:1]
            report = PartResult(
                index,
                exc.result,
                rejections,
                exc.not_queued + len(rest),
                firsts[0] if firsts else None,
                failure=(exc.message, exc.fix),
            )
        except QueueError as exc:  # the queue could not even be opened: nothing queued
            lines = [line_no for line_no, _line in records]
            report = PartResult(
                index,
                IngestResult(0, len(rejections), 0),
                rejections,
                len(lines),
                lines[0] if lines else None,
                failure=(exc.message, exc.fix),
            )
        results.put(("ok", report))
    except BaseException as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}"))


class _StopFlag:
    """Set by the parent's SIGTERM / SIGINT handlers while it waits for its producers."""

    def __init__(self) -> None:
        self.signum = 0

    def __call__(self, signum: int, frame: object) -> None:
        self.signum = signum


def enqueue_jsonl_file(
    path: Path,
    jobs: int,
    make_rendering: RenderingFactory,
    *,
    generation: int = 0,
    level: int = 0,
) -> tuple[IngestResult, list[Rejection]]:
    """Enqueue a JSON-lines file (one event object per line) with ``jobs`` producer
    processes, each rendering and committing its own part of the file. Batches of different
    parts interleave in the queue, so events may be sent in a different order than the file's
    (each event keeps its own time). Returns the totals and the rejections, by line.

    The producers never outlive this process: they are killed by the kernel when it dies, and
    a SIGTERM or SIGINT it receives is passed on to them; each then commits what it has
    rendered and stops. ``IngestFailure`` (its cause says why: a full disk, or ``Interrupted``)
    then gives the exact totals, summed over the producers.

    ``generation`` / ``level``: see :class:`BatchBuilder` (the same for every part).
    """
    import multiprocessing

    context = multiprocessing.get_context("fork")
    results = context.Queue()
    parts = split_lines(path, jobs)
    children = [
        context.Process(
            target=_produce_range,
            args=(path, part, make_rendering, results, (generation, level), os.getpid(), index),
        )
        for index, part in enumerate(parts)
    ]
    stop = _StopFlag()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, stop)
    reports: list[PartResult] = []
    problems: list[str] = []
    try:
        for child in children:
            child.start()
        forwarded = False
        pending = len(children)
        while pending:
            if stop.signum and not forwarded:
                forwarded = True
                for child in children:
                    if child.pid is not None and child.exitcode is None:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(child.pid, signal.SIGTERM)
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
        for child in children:
            child.join()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    accepted = sum(report.result.accepted for report in reports)
    rejected = sum(report.result.rejected for report in reports)
    truncated = sum(report.result.truncated for report in reports)
    filtered = sum(report.result.filtered for report in reports)
    rejections = sorted(
        (rejection for report in reports for rejection in report.rejections),
        key=lambda rejection: rejection.line,
    )
    result = IngestResult(accepted, rejected, truncated, filtered)
    if problems:
        raise QueueError(
            f"{len(problems)} of {len(children)} producer processes failed: {problems[0]}",
            fix=f"{accepted} events were queued by the others; check the free disk space",
        )
    failed = [report for report in reports if report.failure is not None]
    stopped = [report for report in reports if report.stopped and report.not_queued]
    if not failed and not stopped:
        return result, rejections
    left_out = failed + stopped
    ranges: list[tuple[int, int | None]] = sorted(
        (
            report.first_line_not_queued,
            parts[report.part + 1][2] - 1 if report.part + 1 < len(parts) else None,
        )
        for report in left_out
        if report.first_line_not_queued is not None
    )
    if failed:
        message, fix = failed[0].failure or ("", None)
        cause = QueueError(message, fix=fix)
    else:
        name = signal.Signals(stop.signum).name if stop.signum else "a signal"
        cause = QueueError(f"stopped by {name} before the end of the input")
    merged: list[tuple[int, int | None]] = []
    for first, last in ranges:  # one range where one part's follows on from another's
        if merged and merged[-1][1] is not None and merged[-1][1] + 1 == first:
            merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    raise IngestFailure(
        cause,
        result,
        sum(report.not_queued for report in left_out),
        [first for first, _last in ranges],
        ranges=merged,
        interrupted=not failed,
        rejections=rejections,
    )
