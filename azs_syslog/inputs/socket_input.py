"""The forwarder's Unix-socket input: JSON lines in, ``error N`` / ``ok N`` replies out."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path
from typing import Any

from azs_syslog import paths
from azs_syslog.errors import AzsSyslogError, EventError
from azs_syslog.ingest import BatchBuilder, error_reason
from azs_syslog.pipeline import RUNTIME_DIR_MODE, Rendering
from azs_syslog.queue import Queue, QueueLimits, now_ms

MAX_LINE = 1 << 20
SOCKET_COMMIT_EVENTS = 2000


class _Client:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = bytearray()
        self.line_no = 0
        self.out = bytearray()
        self.skipping = False  # discarding the rest of an over-long line
        self.closed = False


class SocketInput:
    """JSON lines on a Unix-domain socket (mode 0660), acknowledged once durable.

    Protocol [project]: the producer writes JSON lines; lines are numbered from 1 on each
    connection. After each commit the worker answers ``error N reason`` for every rejected
    line, then ``ok N``: every line up to N not reported as an error is durably queued. A
    producer that writes one line and waits gets ``ok 1``; a streaming producer gets one
    ``ok`` per commit (up to a few thousand lines).
    """

    def __init__(self, path: Path, *, queue_path: Path, limits: QueueLimits) -> None:
        self.path = path
        self.queue_path = queue_path
        self.limits = limits
        self.rendering: Rendering | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        paths.ensure_private_dir(path.parent, mode=RUNTIME_DIR_MODE)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # stale: the pid-file lock proves no other worker owns it
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o117)
        try:
            self.server.bind(str(path))
        except OSError as exc:
            self.server.close()
            raise AzsSyslogError(
                f"cannot listen on the socket {path}: {exc.strerror or exc}",
                fix="a Unix socket path must be shorter than 108 bytes: use a shorter "
                "AZS_SYSLOG_HOME"
                if len(str(path)) >= 100
                else "check the directory's permissions",
            ) from exc
        finally:
            os.umask(old_umask)
        path.chmod(0o660)
        self.server.listen(64)
        self.server.setblocking(False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="azs-syslog-socket", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
        with contextlib.suppress(OSError):
            self.server.close()
        with contextlib.suppress(OSError):
            self.path.unlink()

    def _run(self) -> None:
        import selectors

        queue = Queue(self.queue_path, limits=self.limits, durable=True)
        selector = selectors.DefaultSelector()
        selector.register(self.server, selectors.EVENT_READ, None)
        clients: dict[int, _Client] = {}
        try:
            while not self._stop.is_set():
                ready = selector.select(timeout=0.2)
                touched: list[_Client] = []
                for key, _ in ready:
                    if key.data is None:
                        self._accept(selector, clients)
                        continue
                    client: _Client = key.data
                    self._read(client)
                    touched.append(client)
                if touched:
                    self._commit(queue, touched)
                for client in list(clients.values()):
                    self._flush_out(client)
                    if client.closed and not client.out:
                        with contextlib.suppress(KeyError, ValueError):
                            selector.unregister(client.conn)
                        client.conn.close()
                        del clients[id(client)]
        except BaseException as exc:
            self.error = exc
        finally:
            for client in clients.values():
                client.conn.close()
            selector.close()
            queue.close()

    def _accept(self, selector: Any, clients: dict[int, _Client]) -> None:
        import selectors

        try:
            conn, _ = self.server.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        client = _Client(conn)
        clients[id(client)] = client
        selector.register(conn, selectors.EVENT_READ, client)

    def _read(self, client: _Client) -> None:
        for _ in range(16):  # bounded: other clients get their turn
            try:
                data = client.conn.recv(1 << 18)
            except BlockingIOError:
                return
            except OSError:
                client.closed = True
                return
            if not data:
                client.closed = True
                return
            client.buffer += data
            if len(client.buffer) > 4 * MAX_LINE:
                return

    def _commit(self, queue: Queue, clients: list[_Client]) -> None:
        rendering = self.rendering
        if rendering is None:
            return
        builder = BatchBuilder(rendering.renderer, rendering.key)
        replies: list[tuple[_Client, list[bytes], int]] = []
        rejected = 0
        for client in clients:
            errors: list[bytes] = []
            last = client.line_no
            while True:
                end = client.buffer.find(b"\n")
                if end < 0:
                    if len(client.buffer) > MAX_LINE:
                        # An over-long line: reject it now and discard it up to its newline.
                        if not client.skipping:
                            client.line_no += 1
                            errors.append(
                                b"error %d line longer than %d bytes\n" % (client.line_no, MAX_LINE)
                            )
                            rejected += 1
                        client.skipping = True
                        client.buffer.clear()
                    break
                line = bytes(client.buffer[:end]).rstrip(b"\r")
                del client.buffer[: end + 1]
                if client.skipping:
                    client.skipping = False
                    continue
                client.line_no += 1
                if line.strip():
                    rejected += self._add_line(builder, client, line, errors)
            if client.closed and client.buffer and not client.skipping:
                # The producer closed without a final newline: the last line still counts.
                line = bytes(client.buffer)
                client.buffer.clear()
                client.line_no += 1
                if line.strip():
                    rejected += self._add_line(builder, client, line, errors)
            if client.line_no != last:
                replies.append((client, errors, client.line_no))
        batch, truncated = builder.take()
        if batch is not None or rejected or truncated:
            queue.append_batch(batch, rejected=rejected, truncated=truncated)
        for client, errors, upto in replies:  # only now is every accepted line durable
            client.out += b"".join(errors) + b"ok %d\n" % upto

    @staticmethod
    def _add_line(builder: BatchBuilder, client: _Client, line: bytes, errors: list[bytes]) -> int:
        try:
            builder.add(line, now_ms())
        except EventError as exc:
            reason = " ".join(error_reason(exc).split())
            errors.append(f"error {client.line_no} {reason}\n".encode())
            return 1
        return 0

    def _flush_out(self, client: _Client) -> None:
        while client.out:
            try:
                sent = client.conn.send(client.out)
            except BlockingIOError:
                return
            except OSError:
                client.out.clear()
                client.closed = True
                return
            del client.out[:sent]
