"""Batching: rendered events gathered into batches and committed to the durable queue.

A batch is committed when it holds ``max_events`` events or ``max_bytes`` bytes, or when its
oldest event has waited ``max_delay`` seconds: a long-running ``send-event -`` pipe commits as
it goes, even when the producer pauses (a flusher thread watches the clock).

Events the OutputSeverity filter leaves out are still queued (raw only): the filter applies at
send time, so a later switch to Verbose still forwards them.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypedDict

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
Record = str | bytes | dict[str, object]  # a JSON text, or an already parsed object


class StopRequest(Protocol):
    """What :meth:`Enqueuer.feed` needs of ``ingest.StopSignals``."""

    requested: str | None
    reading: bool


def as_text(line: bytes) -> str | bytes:
    """A JSON line read as bytes, as text when that changes nothing but the speed: the
    renderer's fused path takes text only (bytes go down the reference path, several times
    slower), and for a line that starts with ``{``, holds no NUL and is valid UTF-8,
    ``json.loads`` of the bytes and of the text are the same (no BOM, no UTF-16/32 to detect,
    no surrogates to let pass). Any other line stays bytes, to be read as before."""
    if line[:1] == b"{" and b"\x00" not in line:
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return line


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
        if isinstance(line, str):
            framed = self.renderer.render_line(line, accepted_ms)
            raw = line.encode("utf-8")
        else:
            framed = self.renderer.render_line(as_text(line), accepted_ms)
            raw = line
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
        # Emptied in place: Enqueuer.feed holds on to their append methods.
        self._wire.clear()
        del self._lengths[:]
        self._raw.clear()
        del self._times[:]
        self.nbytes = 0
        self.truncated_at_start = self.renderer.truncated
        return batch, truncated


def _until_stop(
    records: Iterator[tuple[int, Record]], stop: StopRequest
) -> Iterator[tuple[int, Record]]:
    """``records`` until ``stop`` is requested (checked before each); while waiting for the
    next record, ``stop.reading`` is set, so a stop signal may interrupt the wait
    (``KeyboardInterrupt``, which ends the input here)."""
    while True:
        stop.reading = True  # before the check: a signal between the two still interrupts
        try:
            item = None if stop.requested is not None else next(records, None)
        except KeyboardInterrupt:
            return
        finally:
            stop.reading = False
        if item is None:
            return
        yield item


def error_reason(exc: EventError) -> str:
    """The reason of a rejection, without the line prefix (the caller reports the line)."""
    return f"{exc.field}: {exc.message}" if exc.field else exc.message


class EnqueuerOptions(TypedDict, total=False):
    """The keyword options of :class:`Enqueuer`, which ``enqueue_records`` passes on."""

    batch_events: int
    batch_bytes: int
    max_delay: float
    on_reject: RejectCallback | None
    generation: int
    level: int


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
        self.last_line = 0  # the last record handled whole by :meth:`feed`

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

    def feed(self, records: Iterator[tuple[int, Record]], stop: StopRequest | None = None) -> None:
        """Add the records of ``records`` one by one, as :meth:`add` does, until they end, a
        commit fails (``failure``) or ``stop`` is requested (checked before each record; a
        ``KeyboardInterrupt`` while waiting for the next one ends the input too). Sets
        ``last_line``: the number of the last record handled whole.

        This is ``send-event``'s loop: :meth:`add` and ``BatchBuilder.add`` written out, with
        their lookups hoisted, because their call layers cost as much per event as the
        encoder's own Python (measured with a profile)."""
        if stop is not None:
            records = _until_stop(records, stop)
        builder, lock, time_ns = self.builder, self._lock, time.time_ns
        render, raws = builder.renderer.render_line, builder._raw
        wire_append, lengths_append = builder._wire.append, builder._lengths.append
        raw_append, times_append = raws.append, builder._times.append
        batch_events, batch_bytes = self.batch_events, self.batch_bytes
        for line_no, record in records:
            if self._error is not None and self._error is not self.failure:
                raise self._error
            if isinstance(record, dict):
                self.add(line_no, record)  # written back as JSON first: the rare case
            else:
                with lock:
                    if self.failure is not None:  # the flusher's commit failed meanwhile
                        self._not_queued(1, line_no)
                        self.last_line = line_no
                        break
                    accepted = time_ns() // 1_000_000
                    try:
                        framed = render(
                            record if isinstance(record, str) else as_text(record), accepted
                        )
                    except EventError as exc:
                        self._reject(line_no, error_reason(exc))
                        self.last_line = line_no
                        continue
                    raw = record.encode("utf-8") if isinstance(record, str) else record
                    size = len(raw) + 12
                    if framed is not None:
                        wire_append(framed)
                        lengths_append(len(framed))
                        size += len(framed)
                    raw_append(raw)
                    times_append(accepted)
                    builder.nbytes += size
                    if self._first_line is None:
                        self._first_line = line_no
                    if len(raws) >= batch_events or builder.nbytes >= batch_bytes:
                        with contextlib.suppress(QueueError):  # recorded in ``failure``
                            self._commit()
            self.last_line = line_no
            if self.failure is not None:
                break

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
