"""The worker's writes to the queue that wait for space: written at once when the queue can be
written, else kept in order (with what they concern in memory) and written when it can; and
the record of the files a full disk keeps the worker from writing."""

from __future__ import annotations

import os
from pathlib import Path

from azs_syslog import fserrors
from azs_syslog.errors import AzsSyslogError, QueueError
from azs_syslog.forwarder import status as st
from azs_syslog.forwarder.base import WorkerBase
from azs_syslog.forwarder.common import QUEUE_RETRY, DiskFull, LastError, updates
from azs_syslog.forwarder.owed import QueueWrite, owed_writes
from azs_syslog.forwarder.pidfile import write_pid
from azs_syslog.queue import Queue


class QueueBook(WorkerBase):
    def _queue_write(self, write: QueueWrite) -> bool:
        """Write ``write`` to the queue now, or keep it (in order, behind the others owed) when
        the queue cannot be written. True when it was written."""
        if write.kind == "confirm" and self.sequence_ranges:
            self._sequence_delivered(write.ids)
        if self.backlog or self.queue.read_only:
            self.backlog.append(write)
            return False
        try:
            result = self._apply_write(write)
        except QueueError as exc:
            self.backlog.append(write)
            self._queue_failed(exc)
            return False
        self._written(write, result)
        return True

    def _apply_write(self, write: QueueWrite) -> int:
        queue = self.queue
        if write.kind == "requeue":
            return queue.requeue_sent()
        if write.kind == "mark":
            queue.mark_sent(write.ids, write.at_ms)
        elif write.kind == "confirm":
            return queue.confirm(write.ids, sent=write.sent, filtered=write.filtered)
        elif write.kind == "counters":
            queue.add_counters(**dict(write.counts))
        elif write.kind == "clear_gap":
            assert write.gap is not None
            queue.clear_gap(write.gap)
        return 0

    def _written(self, write: QueueWrite, result: int) -> None:
        if write.kind == "requeue" and write.at_ms == -1 and result:
            self.log(f"{result} events sent before but not confirmed go out again (resent)")
        elif write.kind == "confirm":
            self.delivered_ids.difference_update(write.ids)
        elif write.kind == "clear_gap":
            self.gap_clear_owed = False

    def _inherited_writes(self) -> list[QueueWrite]:
        try:
            previous = st.read_snapshot(self.options.status_path)
        except AzsSyslogError:
            return []
        if previous is None or previous.pid == os.getpid() or previous.owed is None:
            return []
        return owed_writes(previous.owed)

    def _flush_backlog(self) -> None:
        """Reopen the queue if only a read-only view of it could be opened, then write what is
        owed, oldest first; stop at the first failure (tried again in QUEUE_RETRY)."""
        if self.queue.read_only:
            try:
                queue = Queue(self.queue.path, limits=self.options.limits, durable=False)
            except QueueError as exc:
                self._queue_failed(exc)
                return
            self.queue.close()
            self.queue = queue
        written = 0
        while self.backlog:
            write = self.backlog[0]
            try:
                result = self._apply_write(write)
            except QueueError as exc:
                self._queue_failed(exc)
                return
            del self.backlog[0]
            written += 1
            self._written(write, result)
        if written:
            self.log(f"the queue can be written again: {updates(written)} owed, written")
        self._queue_ok()
        if written:
            self.write_status()  # its "owed" is obsolete now: never to be applied twice

    def _queue_failed(self, exc: QueueError) -> None:
        if fserrors.is_disk_full(exc, self.queue.path):
            self._disk_full_begins("queue", self.queue.path)
            return
        if self._logged_problem != exc.message:
            self._logged_problem = exc.message
            self.log(
                f"{exc.message}; delivering what can be read, writing the queue again in "
                f"{QUEUE_RETRY:.0f} s" + (f"; fix: {exc.fix}" if exc.fix else "")
            )
        self.last_error = LastError(exc.message, "queue-error", exc.fix, "queue", self.now_ms())

    def _queue_ok(self) -> None:
        self._logged_problem = None
        self._disk_full_ends("queue")

    def _disk_full_begins(self, what: str, path: Path) -> None:
        """Record (and log, once per episode and file) that ``path`` cannot be written."""
        with self._lock:
            if what in self.disk_full:
                return
            self.disk_full[what] = DiskFull(what, path, self.now_ms())
            fix = fserrors.disk_full_fix(path, forwarder=True)
            message = f"disk full: cannot write the {what} {path}"
            self.last_error = LastError(message, "disk-full", fix, what, self.now_ms())
        self.log(f"{message}; fix: {fix}")

    def _disk_full_ends(self, what: str) -> None:
        with self._lock:
            if self.disk_full.pop(what, None) is None:
                return
            everything = not self.disk_full
        self.log(
            f"the {what} can be written again"
            + ("; the disk-full condition is over" if everything else "")
        )

    def _write_pid(self) -> None:
        try:
            write_pid(self.pid_lock)
        except OSError as exc:
            if fserrors.is_disk_full(exc):
                self._disk_full_begins("pid file", self.pid_lock.path)
            return
        self._disk_full_ends("pid file")
