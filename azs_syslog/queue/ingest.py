"""Enqueueing: input records → framed syslog bytes → batches → the durable queue.

Shared by ``send-event`` (a file or a pipe) and the worker's Unix-socket input. Each accepted
line is rendered once, here, in the producer's process (docs/architecture.md); the batch keeps
the raw line too, so the worker can render it again under new settings.

The batches themselves are built and committed by :mod:`azs_syslog.queue.batching`;
``send-event --jobs N`` (several producer processes for one file) is
:mod:`azs_syslog.queue.jobs`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Unpack

from azs_syslog.errors import EventError, QueueError
from azs_syslog.events.record import Chunk
from azs_syslog.queue import Queue
from azs_syslog.queue.batching import (
    DEFAULT_BATCH_BYTES,
    DEFAULT_BATCH_EVENTS,
    DEFAULT_MAX_DELAY,
    Enqueuer,
    EnqueuerOptions,
    RejectCallback,
    Rejection,
    error_reason,
)
from azs_syslog.queue.builder import BatchBuilder, LineRenderer

__all__ = [
    "DEFAULT_BATCH_BYTES",
    "DEFAULT_BATCH_EVENTS",
    "DEFAULT_MAX_DELAY",
    "BatchBuilder",
    "Enqueuer",
    "EnqueuerOptions",
    "IngestFailure",
    "IngestResult",
    "LineRenderer",
    "RejectCallback",
    "Rejection",
    "StopSignals",
    "enqueue_chunks",
    "enqueue_records",
    "error_reason",
]


_LIST_CHUNK = 256  # records of a list rendered together (enqueue_records)


class IngestFailure(QueueError):
    """The queue stopped taking events part-way through an input (a full disk, say).

    ``result`` counts what was durably queued before the failure (a prefix of the input for
    one process); ``not_queued`` the events of the input that were not; ``first_lines`` the
    first line not queued of each part of the input (one part unless ``--jobs``);
    ``rest_unread``: the input (a pipe) was not read to its end, so ``not_queued`` counts only
    what had been read. ``cause`` is the queue's own error; ``interrupted``: no error, the
    producers were asked to stop (SIGTERM / SIGINT). ``rejections`` and ``skipped`` (damaged
    parts of the input): those of ``--jobs``.
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
        skipped: list[str] | None = None,
    ) -> None:
        super().__init__(cause.message, fix=cause.fix)
        self.cause = cause
        self.result = result
        self.not_queued = not_queued
        self.first_lines = first_lines
        self.rest_unread = rest_unread
        self.interrupted = interrupted
        self.rejections = rejections or []
        self.skipped = skipped or []
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


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    rejected: int
    truncated: int
    # Of ``accepted``: Windows events below the OutputSeverity threshold, queued (the worker
    # renders them again under the severity it runs with) but not sent under this one.
    filtered: int = 0


def enqueue_records(
    records: Iterable[tuple[int, str | bytes | dict[str, object]]], *args: Any, **options: Any
) -> IngestResult:
    """:func:`enqueue_chunks` for ``(line_no, record)`` pairs (as
    ``inputs.reader.iter_records`` yields them): one chunk each, or, for a list (nothing to
    wait for), a chunk per run of texts."""
    return enqueue_chunks(_chunked(records), *args, **options)


def _chunked(records: Iterable[tuple[int, str | bytes | dict[str, object]]]) -> Iterator[Chunk]:
    if not isinstance(records, list | tuple):
        for line_no, record in records:
            yield [line_no], [record]
        return
    numbers: list[int] = []
    texts: list[str | bytes | dict[str, object]] = []
    for line_no, record in records:
        if isinstance(record, dict) or len(numbers) >= _LIST_CHUNK:
            if numbers:
                yield numbers, texts
            numbers, texts = [], []
            if isinstance(record, dict):  # a parsed object comes alone (see Enqueuer.feed)
                yield [line_no], [record]
                continue
        numbers.append(line_no)
        texts.append(record)
    if numbers:
        yield numbers, texts


def enqueue_chunks(
    chunks: Iterable[Chunk],
    queue: Queue,
    renderer: LineRenderer,
    render_key: str,
    *,
    read_to_end: bool = True,
    stop: StopSignals | None = None,
    **options: Unpack[EnqueuerOptions],
) -> IngestResult:
    """Render and durably enqueue the records of ``chunks`` (as
    ``inputs.reader.iter_record_chunks`` yields them: the records read together, rendered
    together). When this returns, every accepted event is on disk.
    ``options``: those of :class:`Enqueuer` (``generation`` / ``level``: see
    :class:`BatchBuilder`).

    An ``EventError`` raised by the record iterator itself (input that cannot be split into
    records) is reported as a rejection of that line and ends the input.

    When the queue stops taking events (a full disk), nothing more is rendered and
    ``IngestFailure`` says how many events were queued before and how many were not: the rest
    of ``records`` is counted when ``read_to_end`` (a file; not a pipe, which may never end).

    ``stop`` (see :class:`StopSignals`): a SIGTERM or SIGINT ends the input after the record
    being handled; what is rendered is committed and ``IngestFailure`` (``interrupted``) says
    from which line on nothing was queued.
    """
    enqueuer = Enqueuer(queue, renderer, render_key, **options)
    enqueuer.start()
    filtered_before = getattr(renderer, "filtered", 0)
    rest = iter(chunks)
    try:
        try:
            enqueuer.feed(rest, stop)
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
        getattr(renderer, "filtered", 0) - filtered_before - enqueuer.unqueued_filtered,
    )
    if stop is not None and stop.requested is not None and enqueuer.failure is None:
        raise IngestFailure(
            QueueError(f"stopped by {stop.requested} before the end of the input"),
            result,
            0,
            [enqueuer.last_line + 1],
            rest_unread=True,
            interrupted=True,
        )
    if enqueuer.failure is None:
        return result
    if read_to_end:
        with contextlib.suppress(EventError):
            for numbers, _records in rest:
                enqueuer._not_queued(len(numbers), numbers[0])
    first = enqueuer.first_line_not_queued
    raise IngestFailure(
        enqueuer.failure,
        result,
        enqueuer.not_queued,
        [] if first is None else [first],
        rest_unread=not read_to_end,
    )
