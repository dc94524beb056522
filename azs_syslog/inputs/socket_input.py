"""The forwarder's Unix-socket input: JSON lines in, ``error N`` / ``ok N`` replies out.

Any local producer in the service's group may connect, so the input is written to survive a
careless or hostile one: every buffer has a bound, a client whose replies are not being read
is no longer read from, the number of connections has a cap (a client beyond it is told so
and closed), running out of file descriptors pauses accepting instead of failing, and a
supervisor restarts the input after any failure (closing the socket while it is down, so
producers fail at once instead of hanging). The bounds are stated in docs/security.md.

This module is the listener, the supervisor and the loop that accepts and serves connections;
one connection's lines and replies, and the commit that answers them, are ``socket_protocol``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from azs_syslog import paths
from azs_syslog.encode.pipeline import RUNTIME_DIR_MODE, Rendering
from azs_syslog.errors import AzsSyslogError
from azs_syslog.inputs.socket_protocol import MAX_LINE as MAX_LINE
from azs_syslog.inputs.socket_protocol import OUT_HIGH, Client, Committer, Log
from azs_syslog.inputs.socket_protocol import SOCKET_COMMIT_EVENTS as SOCKET_COMMIT_EVENTS
from azs_syslog.queue import Queue, QueueLimits

MAX_CONNECTIONS = 128
ACCEPTS_PER_TURN = 64
ACCEPT_PAUSE = 0.5  # seconds without accepting after EMFILE / ENFILE
ACCEPT_RECOVERED_AFTER = 5.0  # seconds without EMFILE / ENFILE before the problem is over
IDLE_WAIT = 0.2  # the loop's longest sleep: how soon a stop is seen
RESTART_INITIAL = 0.5
RESTART_MAX = 30.0
RESTART_RESET_AFTER = 60.0  # a life this long resets the restart backoff

# accept() failing for want of a file descriptor or kernel memory: pause, keep serving.
_ACCEPT_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# accept() failing for one connection only (it went away before we took it).
_ACCEPT_TRANSIENT_ERRNOS = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})


class SocketInput:
    """JSON lines on a Unix-domain socket (mode 0660), acknowledged once durable.

    Protocol [project]: the producer writes JSON lines; lines are numbered from 1 on each
    connection. After each commit the worker answers ``error N reason`` for every rejected
    line, then ``ok N``: every line up to N not reported as an error is durably queued. A
    producer that writes one line and waits gets ``ok 1``; a streaming producer gets one
    ``ok`` per commit (up to a few thousand lines). When a commit fails, every line of it
    that would have been accepted is answered ``error N queue unavailable: <cause>``. A
    connection refused (too many connections) gets one ``error 0 <reason>`` line and is
    closed.

    ``error`` is the input's current problem, or None: a failure the supervisor is
    restarting from, commits failing, or accepting paused for want of file descriptors.
    """

    def __init__(
        self,
        path: Path,
        *,
        queue_path: Path,
        limits: QueueLimits,
        log: Log | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.path = path
        self.queue_path = queue_path
        self.limits = limits
        self._log_to: Log = log or (lambda message: None)
        self.max_connections = max_connections
        self.rendering: Rendering | None = None
        # Called in the input's thread before each commit: the rendering for the configuration
        # in force now (see the worker's ``_socket_refresh``); None: ``rendering`` as set.
        self.refresh: Callable[[Rendering | None], Rendering | None] | None = None
        self.restarts = 0
        self.refused = 0  # connections refused over the cap, in total
        self._failure: BaseException | None = None  # what stopped the last life
        self._committer = Committer(self.log)
        self._accept_problem: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._clients: dict[int, Client] = {}
        self._accept_paused_until: float | None = None
        self._accept_failed_at = 0.0
        self._at_cap = False
        paths.ensure_private_dir(path.parent, mode=RUNTIME_DIR_MODE)
        self.server = self._listen()

    def log(self, message: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed log must not stop the input
            self._log_to(message)

    @property
    def error(self) -> BaseException | None:
        return self._failure or self._committer.problem or self._accept_problem

    # --- the listening socket

    def _listen(self) -> socket.socket:
        path = self.path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # stale: the pid-file lock proves no other worker owns it
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o117)
        try:
            server.bind(str(path))
        except OSError as exc:
            server.close()
            raise AzsSyslogError(
                f"cannot listen on the socket {path}: {exc.strerror or exc}",
                fix="a Unix socket path must be shorter than 108 bytes: use a shorter "
                "AZS_SYSLOG_HOME"
                if len(str(path)) >= 100
                else "check the directory's permissions",
            ) from exc
        finally:
            os.umask(old_umask)
        try:
            path.chmod(0o660)
            server.listen(64)
        except OSError:
            server.close()
            raise
        server.setblocking(False)
        return server

    def _close_listener(self) -> None:
        """Producers fail at once (no such file) instead of waiting in the backlog."""
        with contextlib.suppress(OSError):
            self.server.close()
        with contextlib.suppress(OSError):
            self.path.unlink()

    # --- start, stop, the supervisor

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._supervise, name="azs-syslog-socket", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
        self._close_listener()

    def _supervise(self) -> None:
        """Run the input; after any failure, close the socket, wait, and start it again."""
        delay = RESTART_INITIAL
        while True:
            started = time.monotonic()
            try:
                self._serve()
                return  # stopped
            except Exception as exc:
                self._failure = _failed(exc)
                self._close_listener()
                self.log(
                    f"socket input failed: {_describe(exc)}; its socket is closed (producers"
                    f" fail at once); restarting in {delay:g} s"
                )
            if time.monotonic() - started >= RESTART_RESET_AFTER:
                delay = RESTART_INITIAL
            while True:  # wait, then listen again
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, RESTART_MAX)
                try:
                    self.server = self._listen()
                    break
                except Exception as exc:
                    self._failure = _failed(exc)
                    self.log(
                        f"socket input cannot listen again: {_describe(exc)};"
                        f" retrying in {delay:g} s"
                    )
            self.restarts += 1
            self.log(f"socket input listening again on {self.path} (restart {self.restarts})")

    # --- one life of the input

    def _serve(self) -> None:
        queue = Queue(self.queue_path, limits=self.limits, durable=True)
        try:
            with selectors.DefaultSelector() as selector:
                self._clients = {}
                self._accept_paused_until = None
                try:
                    selector.register(self.server, selectors.EVENT_READ, None)
                    # Listening, with the queue open: what stopped the last life is over.
                    self._failure = None
                    while not self._stop.is_set():
                        self._turn(selector, queue)
                finally:
                    for client in self._clients.values():
                        client.conn.close()  # its producer sees the close without an ``ok``
                    self._clients = {}
        finally:
            queue.close()

    def _turn(self, selector: selectors.BaseSelector, queue: Queue) -> None:
        busy = self.rendering is not None and any(
            client.wants_commit() for client in self._clients.values()
        )
        timeout = 0.0 if busy else IDLE_WAIT
        if self._accept_paused_until is not None:
            timeout = min(timeout, max(0.0, self._accept_paused_until - time.monotonic()))
        for key, events in selector.select(timeout):
            if key.data is None:
                self._accept(selector)
                continue
            client: Client = key.data
            if events & selectors.EVENT_READ:
                client.read()
            if events & selectors.EVENT_WRITE:
                client.flush_out()
        if self._accept_paused_until is not None and time.monotonic() >= self._accept_paused_until:
            self._resume_accepting(selector)
        self._accept_recovered()
        self._commit(queue)
        for client in list(self._clients.values()):
            client.flush_out()
            if client.finished():
                self._drop(selector, client)
            else:
                self._update_interest(selector, client)

    # --- connections

    def _accept(self, selector: selectors.BaseSelector) -> None:
        for _ in range(ACCEPTS_PER_TURN):
            try:
                conn, _ = self.server.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in _ACCEPT_RESOURCE_ERRNOS:
                    self._pause_accepting(selector, exc)
                    return
                if exc.errno in _ACCEPT_TRANSIENT_ERRNOS:
                    continue
                raise
            if len(self._clients) >= self.max_connections:
                self._refuse(conn)
                continue
            if self._at_cap:
                self._at_cap = False
                self.log("socket input: below its connection limit again")
            conn.setblocking(False)
            client = Client(conn)
            self._clients[id(client)] = client
            self._update_interest(selector, client)

    def _refuse(self, conn: socket.socket) -> None:
        self.refused += 1
        if not self._at_cap:
            self._at_cap = True
            self.log(
                f"socket input: {self.max_connections} producers connected, the limit;"
                " refusing new connections until one closes"
            )
        with contextlib.suppress(OSError):
            conn.setblocking(False)
            conn.send(
                b"error 0 too many connections (%d, the limit); try again later\n"
                % self.max_connections
            )
        conn.close()

    def _pause_accepting(self, selector: selectors.BaseSelector, exc: OSError) -> None:
        """Out of file descriptors (or kernel memory): stop accepting for a moment; the
        producers already connected are served, new ones wait in the listen backlog."""
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(self.server)
        self._accept_failed_at = time.monotonic()
        self._accept_paused_until = self._accept_failed_at + ACCEPT_PAUSE
        if self._accept_problem is None:
            name = errno.errorcode.get(exc.errno or 0, "?")
            self._accept_problem = AzsSyslogError(
                f"not accepting connections: {exc.strerror or exc} ({name});"
                f" {len(self._clients)} producers connected",
                fix="raise the open-files limit (LimitNOFILE=) or find what holds the files",
            )
            self.log(
                f"socket input: {self._accept_problem}; serving those, trying again every"
                f" {ACCEPT_PAUSE:g} s (raise LimitNOFILE= if this recurs)"
            )

    def _resume_accepting(self, selector: selectors.BaseSelector) -> None:
        self._accept_paused_until = None
        selector.register(self.server, selectors.EVENT_READ, None)

    def _accept_recovered(self) -> None:
        """The descriptor shortage is over once accepting has worked for a while (one free
        descriptor is soon taken by the next connection in the backlog: no flapping log)."""
        if (
            self._accept_problem is not None
            and self._accept_paused_until is None
            and time.monotonic() - self._accept_failed_at >= ACCEPT_RECOVERED_AFTER
        ):
            self._accept_problem = None
            self.log("socket input: accepting connections again")

    def _update_interest(self, selector: selectors.BaseSelector, client: Client) -> None:
        """Read only from a client whose replies are being taken and whose buffer has room;
        never wait for reading on one that has finished writing (a half-closed socket is
        always readable: waiting on it would spin)."""
        events = 0
        if not client.eof and len(client.buffer) <= MAX_LINE and len(client.out) < OUT_HIGH:
            events |= selectors.EVENT_READ
        if client.out:
            events |= selectors.EVENT_WRITE
        if events == client.interest:
            return
        if client.interest == 0:
            selector.register(client.conn, events, client)
        elif events == 0:
            selector.unregister(client.conn)
        else:
            selector.modify(client.conn, events, client)
        client.interest = events

    def _drop(self, selector: selectors.BaseSelector, client: Client) -> None:
        if client.interest:
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(client.conn)
        client.conn.close()
        del self._clients[id(client)]

    # --- committing (socket_protocol.Committer)

    def _commit(self, queue: Queue) -> None:
        if not any(c.wants_commit() for c in self._clients.values()):
            return
        if self.refresh is not None:
            # The configuration the lines are accepted under is the file's at this commit,
            # not the one the worker has applied (it may still be draining the old one).
            self.rendering = self.refresh(self.rendering)
        if self.rendering is not None:
            self._committer.commit(queue, self.rendering, list(self._clients.values()))


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _failed(exc: BaseException) -> AzsSyslogError:
    """What ``forwarder status`` shows while the supervisor restarts the input."""
    failure = AzsSyslogError(
        f"the socket input failed ({_describe(exc)}); its socket is closed while it restarts",
        fix="see the forwarder's log",
    )
    failure.__cause__ = exc
    return failure
