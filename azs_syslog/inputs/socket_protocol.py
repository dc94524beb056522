"""One connection of the socket input, and the commit that answers it (``socket_input``).

A connection's lines are read into a bounded buffer, cut at newlines (a line longer than
``MAX_LINE`` is rejected and discarded as it comes), rendered into one batch shared by every
connection with lines waiting, committed in one transaction, and answered: ``error N reason``
for each rejected line, then ``ok N``. Replies waiting for a client are bounded too: above
``OUT_HIGH`` its lines wait unparsed and it is not read from.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from collections.abc import Callable, Sequence

from azs_syslog.encode.pipeline import Rendering
from azs_syslog.errors import EventError, QueueError
from azs_syslog.queue import NewBatch, Queue, now_ms
from azs_syslog.queue.ingest import BatchBuilder, error_reason

MAX_LINE = 1 << 20
SOCKET_COMMIT_EVENTS = 2000  # events per commit, at most (one batch)
COMMIT_BYTES = 4 << 20  # rendered + raw bytes per commit, at most (one batch)
READ_CHUNK = 1 << 18  # one recv; a client is read from only while it holds <= MAX_LINE
READS_PER_TURN = 16  # recv calls per client per loop turn: the others get their turn
OUT_HIGH = 1 << 16  # replies waiting for a client: above this, its lines wait unparsed
MAX_REASON = 200  # characters of a rejection reason in a reply line
MAX_FAILURE_REASON = 100  # characters of a commit failure's reason (one per accepted line)
_SQLITE_FULL = 13

Log = Callable[[str], None]
# (line number, its reply) in line order; the reply is None for a line accepted.
Replies = list[tuple[int, bytes | None]]
AddLine = Callable[[BatchBuilder, int, bytes], "bytes | None"]


class Client:
    """One producer's connection: what it wrote not yet parsed, the replies not yet sent."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = bytearray()
        self.line_no = 0
        self.out = bytearray()
        self.skipping = False  # discarding the rest of an over-long line
        self.eof = False  # the producer has finished writing (closed or half-closed)
        self.broken = False  # the connection failed: drop everything, close
        self.dirty = False  # the buffer may hold lines not yet parsed
        self.interest = 0  # the selector events registered for it (0: not registered)

    def wants_commit(self) -> bool:
        return self.dirty and not self.broken and len(self.out) < OUT_HIGH

    def finished(self) -> bool:
        return self.broken or (self.eof and not self.dirty and not self.out)

    def read(self) -> None:
        for _ in range(READS_PER_TURN):
            if len(self.buffer) > MAX_LINE or len(self.out) >= OUT_HIGH:
                return
            try:
                data = self.conn.recv(READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                self.broken = True
                return
            if not data:
                self.eof = True
                self.dirty = True  # a last line without its newline still counts
                return
            self.buffer += data
            self.dirty = True

    def flush_out(self) -> None:
        if not self.out or self.broken:
            return
        while self.out:
            try:
                sent = self.conn.send(self.out)
            except BlockingIOError:
                return
            except OSError:
                self.out.clear()
                self.broken = True
                return
            del self.out[:sent]
        self.out = bytearray()  # all sent: give back a large reply buffer's memory

    def parse(self, builder: BatchBuilder, add_line: AddLine, lines: Replies) -> int:
        """Take the complete lines into ``builder`` (by ``add_line``) while the batch and the
        replies have room, each with its reply into ``lines`` (empty when called); returns how
        many were rejected."""
        budget = OUT_HIGH - len(self.out)  # reply bytes this client may still be given
        buffer = self.buffer
        start = 0
        while budget > 0 and len(builder) < SOCKET_COMMIT_EVENTS and builder.nbytes < COMMIT_BYTES:
            end = buffer.find(b"\n", start)
            line: bytes | None
            if end < 0:
                start, line = self._tail(start, lines)
                if line is None:
                    break
            else:
                line = bytes(buffer[start:end]).rstrip(b"\r")
                start = end + 1
                if self.skipping:  # the end of an over-long line
                    self.skipping = False
                    continue
                if len(line) > MAX_LINE:  # arrived whole, with its newline, in one read
                    self._too_long(lines)
                    continue
            self.line_no += 1
            if not line.strip():
                continue  # blank: numbered, skipped
            reply = add_line(builder, self.line_no, line)
            lines.append((self.line_no, reply))
            if reply is not None:
                budget -= len(reply)
        if start:
            del buffer[:start]
            if not buffer:
                self.buffer = bytearray()  # give back a large buffer's memory
        return sum(1 for _, reply in lines if reply is not None)

    def _tail(self, start: int, lines: Replies) -> tuple[int, bytes | None]:
        """No newline after ``start``: where parsing goes on, and the last line of a producer
        that closed without a final newline (None: nothing to take now)."""
        self.dirty = False  # nothing complete left: wait for more
        end = len(self.buffer)
        rest = end - start
        if self.skipping:
            return end, None  # more of an over-long line: discard it as it comes
        if rest > MAX_LINE:
            # An over-long line: reject it now and discard it up to its newline.
            self._too_long(lines)
            self.skipping = True
            return end, None
        if self.eof and rest:  # closed without a final newline: the last line still counts
            return end, bytes(self.buffer[start:])
        return (end if self.eof else start), None

    def _too_long(self, lines: Replies) -> None:
        self.line_no += 1
        lines.append(
            (self.line_no, b"error %d line longer than %d bytes\n" % (self.line_no, MAX_LINE))
        )


class Committer:
    """Commits the waiting lines of every connection in one transaction, then answers each.

    ``problem`` is the last commit's failure while commits fail (None once one works again).
    """

    def __init__(self, log: Log) -> None:
        self.log = log
        self.problem: QueueError | None = None
        self._next_first = 0
        self._failed_lines: set[str] = set()  # exception types already logged for a line

    def commit(self, queue: Queue, rendering: Rendering, clients: Sequence[Client]) -> None:
        """Parse the waiting lines of every client that has some (bounded: one batch, and
        no more replies per client than ``OUT_HIGH``), commit them in one transaction, then
        answer each client."""
        builder = BatchBuilder(
            rendering.renderer,
            rendering.key,
            generation=rendering.generation,
            level=rendering.level,
        )
        replies, rejected = self._parse(builder, clients)
        batch, truncated = builder.take()
        failure: str | None = None
        if batch is not None or rejected or truncated:
            failure = self._append(queue, batch, rejected, truncated)
        for client, lines in replies:  # only now is every accepted line durable (or not)
            out = client.out
            for line_no, reply in lines:
                if reply is not None:
                    out += reply
                elif failure is not None:
                    out += b"error %d %s\n" % (line_no, failure.encode())
            out += b"ok %d\n" % client.line_no

    def _parse(
        self, builder: BatchBuilder, clients: Sequence[Client]
    ) -> tuple[list[tuple[Client, Replies]], int]:
        """Each client's lines into ``builder``, in turns (a different client first each
        time): the replies per client that gave lines, and how many lines were rejected."""
        replies: list[tuple[Client, Replies]] = []
        rejected = 0
        self._next_first = (self._next_first + 1) % max(1, len(clients))  # fair turns
        for client in [*clients[self._next_first :], *clients[: self._next_first]]:
            if not client.wants_commit():
                continue
            if len(builder) >= SOCKET_COMMIT_EVENTS or builder.nbytes >= COMMIT_BYTES:
                break  # the rest next turn (the loop does not sleep while work waits)
            first = client.line_no
            lines: Replies = []
            rejected += client.parse(builder, self._add_line, lines)
            if client.line_no != first:
                replies.append((client, lines))
        return replies, rejected

    def _append(
        self, queue: Queue, batch: NewBatch | None, rejected: int, truncated: int
    ) -> str | None:
        """Commit; the reason for each accepted line's ``error`` reply when it fails."""
        try:
            queue.append_batch(batch, rejected=rejected, truncated=truncated)
        except QueueError as exc:
            failure = _queue_reason(exc)
            if self.problem is None:
                self.log(
                    f"socket input: cannot commit to the queue: {exc}; producers are"
                    f" answered 'error N {failure}' until it works again"
                )
            self.problem = exc
            return failure
        if self.problem is not None:
            self.log("socket input: committing to the queue again")
        self.problem = None
        return None

    def _add_line(self, builder: BatchBuilder, line_no: int, line: bytes) -> bytes | None:
        """Render and add one line; returns its ``error`` reply, or None when accepted."""
        try:
            builder.add(line, now_ms())
        except EventError as exc:
            reason = " ".join(error_reason(exc).split())[:MAX_REASON]
            return f"error {line_no} {reason}\n".encode()
        except Exception as exc:
            # A line the renderer cannot handle is that line's problem, not every producer's.
            kind = type(exc).__name__
            if kind not in self._failed_lines:
                self._failed_lines.add(kind)
                self.log(f"socket input: a line could not be rendered ({kind}: {exc})")
            return f"error {line_no} cannot be rendered ({kind})\n".encode()
        return None


def _queue_reason(exc: QueueError) -> str:
    """A short reason for a reply line: ``queue unavailable: disk full`` and the like."""
    cause = exc.__cause__
    if isinstance(cause, sqlite3.Error) and getattr(cause, "sqlite_errorcode", None) == (
        _SQLITE_FULL
    ):
        return "queue unavailable: disk full"
    if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
        return "queue unavailable: disk full"
    text = str(cause) if cause is not None else str(exc)
    if "disk is full" in text:
        return "queue unavailable: disk full"
    return "queue unavailable: " + " ".join(text.split())[:MAX_FAILURE_REASON]
