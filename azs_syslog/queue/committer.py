"""Committing a batch behind the producer: one batch in flight while the next one is built.

A commit is mostly work that needs no interpreter: zlib compresses the batch's raw lines
(``encode_raw``) and SQLite writes the row and waits for its fsync, both with the GIL
released. Done in the producing thread, that work stops the rendering for as long as it
lasts (about a third of a ``.evtx`` import's time per event, measured); done in a thread of
its own, it runs on another core while the producer renders the next batch
(benchmarks/evtx_import.py).

While a committing thread runs, the interpreter switches threads every 0.1 ms
(``azs_syslog.switching``). At most one batch is in flight: the producer hands a batch over only
once the previous one is settled, so memory holds two batches at most, and the producer learns
how a commit ended at a fixed point (when it hands over the next batch, or when it closes),
never in the middle of a batch: what it reports (which lines were rejected, from which line on
nothing was queued) does not depend on the timing of the two threads.
"""

from __future__ import annotations

import queue as queue_module
import threading
from array import array
from collections.abc import Callable

from azs_syslog.queue import NewBatch, encode_raw
from azs_syslog.switching import fast_switching


class PendingBatch:
    """A batch as the producer built it, before its parts are joined and its raw lines
    compressed (:meth:`seal`, done by whoever commits it)."""

    __slots__ = (
        "created_ms",
        "generation",
        "lengths",
        "level",
        "raw",
        "render_key",
        "times",
        "wire",
    )

    def __init__(
        self,
        render_key: str,
        wire: list[bytes],
        lengths: array[int],
        raw: list[str | bytes],
        times: array[int],
        *,
        generation: int,
        level: int,
    ) -> None:
        self.render_key = render_key
        self.wire = wire
        self.lengths = lengths
        self.raw = raw
        self.times = times
        self.created_ms = times[0]
        self.generation = generation
        self.level = level

    @property
    def count(self) -> int:
        return len(self.raw)

    @property
    def filtered(self) -> int:
        """Its events the severity filter left out of the wire (raw only)."""
        return len(self.raw) - len(self.wire)

    def seal(self) -> NewBatch:
        return NewBatch(
            count=len(self.raw),
            created_ms=self.created_ms,
            render_key=self.render_key,
            wire=b"".join(self.wire),
            lengths=self.lengths.tobytes(),
            raw=encode_raw(self.times, self.raw),
            generation=self.generation,
            level=self.level,
        )


class Commit:
    """One commit: a batch (or None: counters only), the rejections and truncations counted
    since the last one, and the number of the batch's first input line. ``error`` is what
    the commit raised, once it ran."""

    __slots__ = ("batch", "error", "first_line", "rejected", "truncated")

    def __init__(
        self, batch: PendingBatch | None, rejected: int, truncated: int, first_line: int | None
    ) -> None:
        self.batch = batch
        self.rejected = rejected
        self.truncated = truncated
        self.first_line = first_line
        self.error: BaseException | None = None


class Committer:
    """A thread that runs ``store`` on each :class:`Commit` handed to it, one at a time.

    :meth:`hand_over` gives it the next commit; :meth:`settle` waits for the one in flight
    and returns it (its ``error`` set if ``store`` raised), or None when none is. The caller
    hands over a commit only after settling the previous one (``Enqueuer._commit``)."""

    def __init__(self, store: Callable[[Commit], None]) -> None:
        self._store = store
        self._todo: queue_module.SimpleQueue[Commit | None] = queue_module.SimpleQueue()
        self._done: queue_module.SimpleQueue[Commit] = queue_module.SimpleQueue()
        self._in_flight: Commit | None = None
        self._thread = threading.Thread(target=self._run, name="azs-syslog-committer", daemon=True)
        self._stopped = False
        fast_switching(True)
        self._thread.start()

    def hand_over(self, commit: Commit) -> None:
        if self._in_flight is not None:
            raise RuntimeError("a commit is in flight: settle it first")
        self._in_flight = commit
        self._todo.put(commit)

    def settle(self) -> Commit | None:
        commit, self._in_flight = self._in_flight, None
        if commit is not None:
            self._done.get()
        return commit

    def stop(self) -> None:
        """Wait for the commit in flight (its outcome stays to be settled) and end the thread
        (once; again, nothing)."""
        if self._stopped:
            return
        self._stopped = True
        self._todo.put(None)
        self._thread.join()
        fast_switching(False)

    def _run(self) -> None:
        while True:
            commit = self._todo.get()
            if commit is None:
                return
            try:
                self._store(commit)
            except BaseException as exc:  # settled by the producer
                commit.error = exc
            self._done.put(commit)
