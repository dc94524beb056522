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

import json
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
        self._pending_rejected = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._error: BaseException | None = None

    # --- producing

    def add(self, line_no: int, record: str | bytes | dict[str, object]) -> bool:
        """Add one input record (a JSON text, or an already parsed object). Returns whether it
        was accepted (it becomes durable at the next commit)."""
        if self._error is not None:
            raise self._error
        line: str | bytes = (
            json.dumps(record, ensure_ascii=False, separators=(",", ":"))
            if isinstance(record, dict)
            else record
        )
        with self._lock:
            try:
                self.builder.add(line, now_ms())
            except EventError as exc:
                self._reject(line_no, error_reason(exc))
                return False
            if len(self.builder) >= self.batch_events or self.builder.nbytes >= self.batch_bytes:
                self._commit()
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

    def _commit(self) -> None:
        batch, truncated = self.builder.take()
        if batch is None and not self._pending_rejected and not truncated:
            return
        self.queue.append_batch(batch, rejected=self._pending_rejected, truncated=truncated)
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
        """Stop the flusher and commit the rest. Raises what the flusher met, if anything."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
            self._flusher = None
        if self._error is not None:
            raise self._error
        self.flush()


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    rejected: int
    truncated: int


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
) -> IngestResult:
    """Render and durably enqueue ``records`` (``(line_no, record)`` pairs, as
    ``events.iter_records`` yields them). When this returns, every accepted event is on disk.
    ``generation`` / ``level``: see :class:`BatchBuilder`.

    An ``EventError`` raised by the record iterator itself (input that cannot be split into
    records) is reported as a rejection of that line and ends the input.
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
    try:
        try:
            for line_no, record in records:
                enqueuer.add(line_no, record)
        except EventError as exc:
            enqueuer.reject(exc.line or 0, error_reason(exc))
    finally:
        enqueuer.close()
    return IngestResult(enqueuer.accepted, enqueuer.rejected, enqueuer.truncated)


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


def _produce_range(
    path: Path,
    part: tuple[int, int, int],
    make_rendering: RenderingFactory,
    results: Any,
    origin: tuple[int, int] = (0, 0),
) -> None:
    try:
        renderer, key = make_rendering()
        rejections: list[Rejection] = []
        generation, level = origin
        with Queue() as queue:
            result = enqueue_records(
                _read_range(path, *part),
                queue,
                renderer,
                key,
                on_reject=rejections.append,
                generation=generation,
                level=level,
            )
        results.put(("ok", result, rejections))
    except BaseException as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}", []))


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
    ``generation`` / ``level``: see :class:`BatchBuilder` (the same for every part)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    results = context.Queue()
    parts = split_lines(path, jobs)
    children = [
        context.Process(
            target=_produce_range,
            args=(path, part, make_rendering, results, (generation, level)),
        )
        for part in parts
    ]
    for child in children:
        child.start()
    accepted = rejected = truncated = 0
    rejections: list[Rejection] = []
    problems: list[str] = []
    for _ in children:
        status, result, rejected_lines = results.get()
        if status != "ok":
            problems.append(str(result))
            continue
        accepted += result.accepted
        rejected += result.rejected
        truncated += result.truncated
        rejections += rejected_lines
    for child in children:
        child.join()
    if problems:
        raise QueueError(
            f"{len(problems)} of {len(children)} producer processes failed: {problems[0]}",
            fix="events they accepted before failing are queued; check the free disk space",
        )
    rejections.sort(key=lambda rejection: rejection.line)
    return IngestResult(accepted, rejected, truncated), rejections
