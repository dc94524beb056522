"""The lab listener: UDP, TCP or TLS sockets served on background threads.

``Listener`` serves UDP, TCP or TLS (optionally requiring a client certificate) on a
background thread, one more thread per connection, and hands out ``ReceivedMessage`` objects
through a queue or a callback. It keeps nothing: a message taken from it is gone.
"""

from __future__ import annotations

import errno
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, InitVar, dataclass, field
from typing import TYPE_CHECKING

from azs_syslog.errors import CertificateError, TransportError
from azs_syslog.lab.receiver.checks import parse_message
from azs_syslog.lab.receiver.framing import StreamFramer
from azs_syslog.lab.receiver.message import (
    DEFAULT_MAX_MESSAGE_SIZE,
    OVERSIZE,
    PROTOCOLS,
    SAMPLE_SIZE,
    Problem,
    ReceivedMessage,
)
from azs_syslog.lab.receiver.summary import Counts, format_peer

if TYPE_CHECKING:
    import ssl

# OpenSSL's reasons when the client does not speak TLS at all.
_NOT_TLS_REASONS = ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL", "RECORD_LAYER")


def server_ssl_context(
    cert_file: str, key_file: str, client_ca: str | None = None
) -> ssl.SSLContext:
    """A TLS ≥ 1.2 server context; with ``client_ca``, a client certificate is required."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2

    def no_password() -> bytes:
        raise CertificateError(
            f"the server key {key_file} is encrypted",
            fix="give an unencrypted PEM key to this lab tool",
        )

    _load(
        lambda: context.load_cert_chain(cert_file, key_file, password=no_password),
        f"the server certificate {cert_file} and key {key_file}",
        "give a PEM certificate (with its chain) and the matching PEM key",
    )
    if client_ca is not None:
        _load(
            lambda: context.load_verify_locations(cafile=client_ca),
            f"the client CA bundle {client_ca}",
            "give the PEM certificate of the CA that issues the client certificates",
        )
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _load(load: Callable[[], None], what: str, fix: str) -> None:
    """Run ``load``; a file it cannot read or use becomes a ``CertificateError`` naming it."""
    import ssl

    try:
        load()
    except (OSError, ssl.SSLError) as exc:
        raise CertificateError(
            f"cannot load {what}: {getattr(exc, 'strerror', None) or exc}", fix=fix
        ) from exc


_BIND_FAILURES = {
    errno.EADDRINUSE: (
        "in-use",
        "another program has this port: choose a free one with --port (0 picks any)",
    ),
    errno.EACCES: (
        "permission",
        "ports below 1024 need privileges: use a higher --port and point the sender at it",
    ),
    errno.EADDRNOTAVAIL: (
        "address",
        "give --bind an address of this machine (127.0.0.1 or ::1 for a lab)",
    ),
}


@dataclass(eq=False, repr=False)
class Listener:
    """Receive syslog messages on one address and check each of them.

    ``start()`` binds and serves on background threads; messages arrive in ``messages`` (a
    bounded queue; read it with ``get``/``collect``) or, when ``on_message`` is given, through
    that callback (called from the serving threads, one call at a time). ``stop()`` closes
    everything. ``port`` is the bound port (useful with port 0).
    """

    protocol: str
    host: str = "127.0.0.1"
    port: int = 0
    _: KW_ONLY
    ssl_context: ssl.SSLContext | None = None
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    on_message: Callable[[ReceivedMessage], None] | None = None
    on_connection_error: Callable[[str], None] | None = None
    queue_size: InitVar[int] = 100_000
    max_connections: int = 64
    handshake_timeout: float = 10.0
    messages: queue.Queue[ReceivedMessage] = field(init=False)
    counts: Counts = field(init=False, default_factory=Counts)

    def __post_init__(self, queue_size: int) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, not {self.protocol!r}")
        if (self.protocol == "tls") != (self.ssl_context is not None):
            raise ValueError("an ssl_context is needed for tls, and only for tls")
        self.messages = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._workers: set[threading.Thread] = set()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Listener:
        """Bind, then serve on a background thread. Raises ``TransportError`` if binding fails."""
        self._socket = self._bind()
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(
            target=self._serve, name=f"azs-syslog-listen-{self.protocol}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        for worker in list(self._workers):
            worker.join(max(0.0, deadline - time.monotonic()))
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> Listener:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return format_peer((self.host, self.port))

    # -- consuming ----------------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> ReceivedMessage:
        """The next message; raises ``queue.Empty`` after ``timeout`` seconds."""
        return self.messages.get(timeout=timeout)

    def collect(self, count: int, timeout: float) -> list[ReceivedMessage]:
        """Up to ``count`` messages, waiting at most ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        collected: list[ReceivedMessage] = []
        while len(collected) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                collected.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                break
        return collected

    # -- serving ------------------------------------------------------------------------------

    def _bind(self) -> socket.socket:
        kind = socket.SOCK_DGRAM if self.protocol == "udp" else socket.SOCK_STREAM
        try:
            family, _, _, _, address = socket.getaddrinfo(self.host, self.port, type=kind)[0]
            sock = socket.socket(family, kind)
        except OSError as exc:
            raise TransportError(
                f"cannot listen on {self.host}: {exc.strerror or exc}",
                step="bind",
                cause="address",
                fix="give --bind an IP address of this machine (127.0.0.1 or ::1 for a lab)",
            ) from exc
        try:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            else:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            sock.bind(address)
            if kind == socket.SOCK_STREAM:
                sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            cause, fix = _BIND_FAILURES.get(
                exc.errno or 0, ("bind", "choose another --port or --bind address")
            )
            raise TransportError(
                f"cannot listen on {self.protocol} {format_peer((self.host, self.port))}: "
                f"{exc.strerror or exc}",
                step="bind",
                cause=cause,
                fix=fix,
            ) from exc
        return sock

    def _serve(self) -> None:
        assert self._socket is not None
        selector = selectors.DefaultSelector()
        selector.register(self._socket, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                if not selector.select(timeout=0.1):
                    continue
                if self.protocol == "udp":
                    self._read_datagrams()
                else:
                    self._accept()
            if self.protocol == "udp":
                self._read_datagrams()  # what arrived before stop() is still delivered
        finally:
            selector.close()

    def _read_datagrams(self) -> None:
        assert self._socket is not None
        for _ in range(1000):  # drain what is there, but let stop() be noticed
            try:
                data, address = self._socket.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            problems: list[Problem] = []
            if len(data) > self.max_message_size:
                problems.append(
                    Problem(
                        OVERSIZE,
                        f"a {len(data)}-byte datagram, over the limit of {self.max_message_size}",
                    )
                )
                data = data[:SAMPLE_SIZE]
            self._deliver(
                parse_message(
                    data,
                    transport="udp",
                    peer=format_peer(address),
                    framing="datagram",
                    problems=problems,
                )
            )

    def _accept(self) -> None:
        assert self._socket is not None
        try:
            conn, address = self._socket.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._connection_error(f"accept failed: {exc.strerror or exc}")
            return
        self._workers = {w for w in self._workers if w.is_alive()}
        if len(self._workers) >= self.max_connections:
            conn.close()
            self._connection_error(
                f"{format_peer(address)}: refused, {self.max_connections} connections already open"
            )
            return
        with self._lock:
            self.counts.connections += 1
        worker = threading.Thread(
            target=self._handle_connection,
            args=(conn, format_peer(address)),
            name=f"azs-syslog-listen-{format_peer(address)}",
            daemon=True,
        )
        self._workers.add(worker)
        worker.start()

    def _handle_connection(self, conn: socket.socket, peer: str) -> None:
        import ssl

        stream: socket.socket = conn
        peer_certificate: str | None = None
        try:
            conn.setblocking(True)
            if self.ssl_context is not None:
                conn.settimeout(self.handshake_timeout)
                try:
                    stream = self.ssl_context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    with self._lock:
                        self.counts.handshake_failures += 1
                    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
                    if any(marker in reason for marker in _NOT_TLS_REASONS):
                        reason += " (the client does not speak TLS: plain TCP? see --protocol)"
                    self._connection_error(f"{peer}: TLS handshake failed: {reason}")
                    return
                peer_certificate = _subject_of(stream)
            stream.settimeout(0.2)
            self._read_stream(stream, peer, peer_certificate)
        finally:
            stream.close()

    def _read_stream(self, stream: socket.socket, peer: str, peer_certificate: str | None) -> None:
        import ssl

        framer = StreamFramer(self.max_message_size)
        while not self._stop.is_set():
            try:
                data = stream.recv(65536)
            except TimeoutError:
                continue
            except ssl.SSLError as exc:
                self._connection_error(f"{peer}: TLS error: {exc.reason or exc}")
                data = b""
            except OSError as exc:
                self._connection_error(f"{peer}: connection error: {exc.strerror or exc}")
                data = b""
            frames = framer.feed(data) if data else framer.close()
            for frame in frames:
                self._deliver(
                    parse_message(
                        frame.payload,
                        transport=self.protocol,
                        peer=peer,
                        framing=frame.framing,
                        problems=frame.problems,
                        peer_certificate=peer_certificate,
                    )
                )
            if not data or framer.abandoned:
                return

    def _deliver(self, message: ReceivedMessage) -> None:
        with self._lock:
            self.counts.record(message)
            if self.on_message is not None:
                self.on_message(message)
                return
            try:
                self.messages.put_nowait(message)
            except queue.Full:
                self.counts.dropped += 1

    def _connection_error(self, text: str) -> None:
        with self._lock:
            if len(self.counts.connection_errors) < 1000:
                self.counts.connection_errors.append(text)
            if self.on_connection_error is not None:
                self.on_connection_error(text)


def _subject_of(stream: socket.socket) -> str | None:
    getpeercert = getattr(stream, "getpeercert", None)
    if getpeercert is None:
        return None
    certificate = getpeercert()
    if not certificate:
        return None
    parts = [f"{key}={value}" for rdn in certificate.get("subject", ()) for key, value in rdn]
    return ", ".join(parts) or None
