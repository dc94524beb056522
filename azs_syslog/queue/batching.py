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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import Protocol, TypedDict, TypeVar, cast

from azs_syslog.errors import EventError, QueueError
from azs_syslog.events.record import Chunk
from azs_syslog.queue import Queue, now_ms
from azs_syslog.queue.builder import BatchBuilder, LineRenderer, Run
from azs_syslog.queue.committer import Commit, Committer

DEFAULT_BATCH_EVENTS = 2000
DEFAULT_BATCH_BYTES = 4 << 20  # wire + raw: ~2,000 realistic events
DEFAULT_MAX_DELAY = 0.15  # seconds an accepted event may wait for its commit


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


_T = TypeVar("_T")


def _until_stop(records: Iterator[_T], stop: StopRequest) -> Iterator[_T]:
    """``records`` (or chunks of them) until ``stop`` is requested (checked before each);
    while waiting for the next one, ``stop.reading`` is set, so a stop signal may interrupt
    the wait (``KeyboardInterrupt``, which ends the input here)."""
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

    Once :meth:`start` ran, a full batch is committed by a thread of its own
    (``committer.py``: its raw lines compressed, the row written and fsynced, without the GIL)
    while the producer renders the next one; one batch at most is in flight, and how it ended
    is counted when the next one is handed over or at :meth:`close`. (A writer thread was once
    measured slower: then every event was a statement handing the GIL back and forth; a
    batch is one commit of a few statements.) A flusher thread commits a batch whose oldest
    event has waited ``max_delay``.

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
        self._committer: Committer | None = None
        self._error: BaseException | None = None
        self.last_line = 0  # the last record handled whole by :meth:`feed`
        # Events filtered out by the renderer (OutputSeverity) but not added: rendered before
        # a failed commit was known (``enqueue_records`` reports the filtered of those added).
        self.unqueued_filtered = 0

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
                    self._commit(full=True)
                except QueueError:
                    return False  # recorded in ``failure``
        return True

    def feed(self, chunks: Iterator[Chunk], stop: StopRequest | None = None) -> None:
        """Add the records of ``chunks`` (see ``inputs.reader.iter_record_chunks``), as
        :meth:`add` does one by one, until they end, a commit fails (``failure``) or ``stop``
        is requested (checked before each chunk; a ``KeyboardInterrupt`` while waiting for the
        next one ends the input too). Sets ``last_line``: the number of the last record
        handled whole.

        This is ``send-event``'s loop. The records of a chunk (those one read gave) are
        rendered together outside the lock, by a ``map`` (no Python step per event but the
        renderer's own), then handed to the batch under the lock once: per event, the
        Python around the renderer cost as much as the rest of the encoder (measured by
        benchmarks/send_event_stages.py). A chunk of one record takes :meth:`add`."""
        if stop is not None:
            chunks = _until_stop(chunks, stop)
        for numbers, records in chunks:
            if self._error is not None and self._error is not self.failure:
                raise self._error
            if len(records) == 1:
                self.add(numbers[0], records[0])
            else:
                self._add_chunk(numbers, cast(list[str | bytes], records))
            self.last_line = numbers[-1]
            if self.failure is not None:
                break

    def _add_chunk(self, numbers: list[int], records: list[str | bytes]) -> None:
        """Render the records of a chunk (texts, or bytes) and add them, as :meth:`add` would
        one by one: each run up to a rejected record is rendered by a ``map`` and handed over
        at once."""
        renderer = self.builder.renderer
        render = renderer.render_line
        # Renderer.render_lines: the same results, a run of lines in one compiled call.
        render_lines = getattr(renderer, "render_lines", None)
        accepted = time.time_ns() // 1_000_000
        start = 0
        while start < len(records):
            lines = records[start:] if start else records
            framed: list[bytes | None] = []
            truncated = renderer.truncated
            error: BaseException | None = None
            try:
                if render_lines is not None:
                    render_lines(lines, accepted, framed)
                else:
                    framed.extend(map(render, lines, repeat(accepted)))
            except BaseException as exc:  # framed holds the messages before it
                error = exc
            end = start + len(framed)
            run = Run(numbers[start:end], lines[: len(framed)], framed)
            run.truncated = renderer.truncated - truncated
            handed = self._hand_over(run, accepted) if framed else 0
            if error is not None and not isinstance(error, EventError):
                raise error  # what was rendered before it is added, as one by one
            if self.failure is None and error is not None:
                with self._lock:
                    if self.failure is None:
                        self._reject(numbers[end], error_reason(error))
                        handed += 1
            if self.failure is not None:  # the rest of the chunk is not queued
                self.unqueued_filtered += framed[handed:].count(None)
                if start + handed < len(records):
                    self._not_queued(len(records) - start - handed, numbers[start + handed])
                return
            start = end + 1

    def _hand_over(self, run: Run, accepted_ms: int) -> int:
        """Add a rendered run to the batch, committing each batch it fills; returns how many
        of its events were added before a commit failed (all of them, when none failed)."""
        handed = 0
        with self._lock:
            if self.failure is not None:  # the flusher's commit failed meanwhile
                return 0
            builder = self.builder
            while run.lines:
                room = self.batch_events - len(builder)
                bytes_room = self.batch_bytes - builder.nbytes
                count = len(run.lines)
                if count >= room or run.nbytes >= bytes_room:
                    count = run.filling(room, bytes_room)
                head, run = run.split(count) if count < len(run.lines) else (run, Run([], [], []))
                if self._first_line is None:
                    self._first_line = head.numbers[0]
                builder.extend(head, accepted_ms)
                handed += count
                if len(builder) >= self.batch_events or builder.nbytes >= self.batch_bytes:
                    try:
                        self._commit(full=True)
                    except QueueError:  # recorded in ``failure``
                        break
        return handed

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

    def _commit(self, *, full: bool = False) -> None:
        """Commit the batch built so far: hand it to the committing thread once the batch in
        flight is settled (or, without the thread, commit it here). The thread is started at
        the first ``full`` batch after :meth:`start`: an input of one batch has nothing to
        overlap its commit with (measured: a thread for it only costs). A ``QueueError`` is
        recorded in ``failure`` (with the events it left out in ``not_queued``) and raised,
        here or at the next commit; no later commit is tried, and what was built meanwhile is
        not queued either."""
        self._settle()
        if self.failure is not None:
            self._drop_builder()
            raise self.failure
        batch, truncated = self.builder.take_pending()
        first_line, self._first_line = self._first_line, None
        if batch is None and not self._pending_rejected and not truncated:
            return
        commit = Commit(batch, self._pending_rejected, truncated, first_line)
        self._pending_rejected = 0
        if full and self._committer is None and self._flusher is not None:
            self._committer = Committer(self._store)
        if self._committer is not None:
            self._committer.hand_over(commit)
            return
        try:
            self._store(commit)
        except QueueError as exc:
            commit.error = exc
        self._apply(commit)
        if self.failure is not None:
            raise self.failure

    def _store(self, commit: Commit) -> None:
        """Append a commit to the queue (in the committing thread, when there is one)."""
        batch = commit.batch.seal() if commit.batch is not None else None
        self.queue.append_batch(batch, rejected=commit.rejected, truncated=commit.truncated)

    def _settle(self) -> None:
        """Wait for the commit in flight, if any, and count how it ended."""
        if self._committer is not None:
            commit = self._committer.settle()
            if commit is not None:
                self._apply(commit)

    def _apply(self, commit: Commit) -> None:
        """Count a commit that ran: accepted, or (a ``QueueError``) not queued; any other
        error is raised."""
        batch, error = commit.batch, commit.error
        if error is None:
            self.truncated += commit.truncated
            if batch is not None:
                self.accepted += batch.count
            return
        if not isinstance(error, QueueError):
            raise error
        if self.failure is None:
            self.failure = error
        if batch is not None:
            self._not_queued(batch.count, commit.first_line)
            self.unqueued_filtered += batch.filtered

    def _drop_builder(self) -> None:
        """After a failed commit: what was built since is not queued."""
        batch, _ = self.builder.take_pending()
        if batch is not None:
            self._not_queued(batch.count, self._first_line)
            self.unqueued_filtered += batch.filtered
        self._first_line = None

    # --- the flusher thread

    def start(self) -> None:
        """Start the flusher thread, and let full batches be committed by a thread of their
        own (``committer.py``); without them, each batch is committed in the producing thread,
        when it is full."""
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
        """Stop the flusher, commit the rest and wait for the commits. Raises what the
        flusher or a commit met, if anything (except a failed commit, which stays in
        ``failure``)."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
            self._flusher = None
        try:
            if self._error is not None and self._error is not self.failure:
                raise self._error
            with self._lock, contextlib.suppress(QueueError):  # recorded in ``failure``
                self._commit()
        finally:
            with self._lock:
                if self._committer is not None:
                    self._committer.stop()
                    self._settle()
                    self._committer = None
