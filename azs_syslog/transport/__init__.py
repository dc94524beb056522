"""UDP / TCP / TLS senders behind one small interface.

``connect(server, client)`` returns a ``Sender``; ``Sender.send(wire, lengths)`` writes a blob
of already-framed messages: one ``sendall`` for TCP and TLS (never a Python loop per message),
one datagram per message for UDP. Every failure is a ``TransportError`` whose ``step`` says
where it failed (``dns``, ``connect``, ``tls``, ``verify``, ``send``) and whose ``cause`` says
why, with a message and a fix for an operator (SPEC section 8).

The steps are public (``resolve``, ``open_stream``, ``tls_handshake``) so that
``test-syslog-server`` can report them one by one.

No call blocks in the kernel for long: the sockets are non-blocking, and every wait (connect,
TLS handshake, a write the server does not read, the graceful close, a UDP pause for pacing) is
a ``poll`` on the socket *and* on the caller's wake-up descriptor, in slices of at most
``SLICE`` seconds (``IoWatch``). A stop requested by a signal handler is therefore noticed at
once, and the call gives up by raising ``StopRequested``; the timeouts and their explanations
are those of a blocking call.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from azs_syslog.errors import TransportError

if TYPE_CHECKING:
    import ssl

    from azs_syslog.config import ClientSettings, ServerSettings
    from azs_syslog.transport.tls import ClientContext

SIOCOUTQ = 0x5411  # Linux: bytes in the send queue not yet acknowledged by the peer
KEEPALIVE_IDLE = 30
KEEPALIVE_INTERVAL = 10
KEEPALIVE_COUNT = 3
UDP_SEND_BUFFER = 4 * 1024 * 1024
# TLS 1.3: a server that refuses the client certificate says so only after the client's side of
# the handshake is done. Wait this long for that verdict when the server asked for one.
CLIENT_CERTIFICATE_VERDICT_WAIT = 0.4
# The longest a blocking call waits in the kernel before it looks at its deadlines again.
SLICE = 0.2
# TLS writes go out in pieces this large, so that a write that stalls is seen as stalled (a
# no-progress timeout) rather than as one long SSL_write.
TLS_WRITE_CHUNK = 256 * 1024
# A UDP sender that is paced may save up this many seconds' worth of datagrams and send them
# back to back: small enough for a receiver's default socket buffer (about 200 KiB).
UDP_BURST_SECONDS = 0.01


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    handshake: float = 10.0
    write: float = 30.0


@dataclass(frozen=True)
class ConnectionInfo:
    transport: str  # "udp" | "tcp" | "tls"
    server: str  # "host:port" as configured
    peer_address: str  # the address actually connected to
    tls_version: str | None = None
    cipher: str | None = None
    server_subject: str | None = None
    server_not_after: str | None = None  # RFC 3339 UTC
    client_certificate_sent: bool = False
    # Of the certificates the server presented (its chain), the one that expires first.
    server_chain_first_subject: str | None = None
    server_chain_first_not_after: str | None = None  # RFC 3339 UTC


class Sender(Protocol):
    info: ConnectionInfo

    def send(self, wire: bytes | memoryview, lengths: Sequence[int]) -> None: ...

    def unacknowledged_bytes(self) -> int: ...

    def peer_closed(self) -> bool: ...

    def close(self, *, timeout: float = 2.0) -> None: ...


Address = tuple[int, tuple[Any, ...]]  # (family, sockaddr)


class StopRequested(Exception):
    """A blocking network call gave up because its caller asked it to (``IoWatch``).

    Raised by the call itself once it is awake again, never from a signal handler."""


class IoWatch:
    """What the blocking network calls of one worker watch besides their own socket.

    ``wake_fd`` (optional) becomes readable when something happened: the worker's signal
    handlers write to it (``signal.set_wakeup_fd``). A waiting call then reads it empty and asks
    ``give_up_at()`` by when (``time.monotonic``) it must give up, or None to carry on until its
    own timeout; past that time it raises ``StopRequested``. ``give_up_at`` is also asked
    every ``SLICE`` seconds, so a caller without a wake-up descriptor is obeyed too.

    While a call waits without progress it records what it waits on and since when
    (``blocked``: ``(what, ms since the epoch)``), so that a status written by another thread
    can tell a blocked forwarder from a healthy one.
    """

    def __init__(
        self,
        wake_fd: int | None = None,
        give_up_at: Callable[[], float | None] | None = None,
    ) -> None:
        self.wake_fd = wake_fd
        self.give_up_at: Callable[[], float | None] = give_up_at or (lambda: None)
        self.blocked: tuple[str, int] | None = None

    def wait(self, sock: socket.socket | None, *, write: bool, until: float, what: str) -> None:
        """Return when ``sock`` is readable (writable if ``write``); with ``sock`` None, sleep
        until ``until`` and return. Raises ``TimeoutError`` at ``until`` (a socket only) and
        ``StopRequested`` when the caller gives up."""
        if self.blocked is None:
            self.blocked = (what, time.time_ns() // 1_000_000)
        poller = select.poll()
        if sock is not None:
            poller.register(sock, select.POLLOUT if write else select.POLLIN)
        if self.wake_fd is not None:
            poller.register(self.wake_fd, select.POLLIN)
        while True:
            now = time.monotonic()
            give_up = self.give_up_at()
            if give_up is not None and now >= give_up:
                raise StopRequested(what)
            remaining = until - now
            if remaining <= 0:
                if sock is None:
                    return
                raise TimeoutError(errno.ETIMEDOUT, "timed out")
            limit = min(remaining, SLICE)
            if give_up is not None:
                limit = min(limit, max(give_up - now, 0.0))
            woken = False
            for fd, _ in poller.poll(limit * 1000):
                if fd == self.wake_fd:
                    woken = True
                elif sock is not None:
                    return  # ready, or an error that the next call on the socket reports
            if woken:
                self.clear_wakeups()

    def pause(self, seconds: float, *, what: str = "pause") -> None:
        """Sleep ``seconds`` (no busy wait), giving up like ``wait``; not a blocked state."""
        blocked = self.blocked
        try:
            self.wait(None, write=False, until=time.monotonic() + seconds, what=what)
        finally:
            self.blocked = blocked

    def clear_wakeups(self) -> None:
        """Read the wake-up descriptor empty (it is only a doorbell: the flags say why)."""
        if self.wake_fd is None:
            return
        with contextlib.suppress(OSError):
            while os.read(self.wake_fd, 4096):
                pass

    def done(self) -> None:
        """The blocking call returned or made progress: it is not blocked any more."""
        self.blocked = None


def _connect_socket(
    sock: socket.socket, sockaddr: tuple[Any, ...], timeout: float, watch: IoWatch
) -> None:
    """``sock.connect(sockaddr)`` with ``timeout``, waiting in ``watch``. Raises ``OSError``
    (``TimeoutError`` at the timeout) or ``StopRequested``."""
    sock.setblocking(False)
    try:
        code = sock.connect_ex(sockaddr)
        if code in (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK, errno.EINTR):
            watch.wait(sock, write=True, until=time.monotonic() + timeout, what="connect")
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    finally:
        watch.done()
    if code:
        raise OSError(code, os.strerror(code))


def server_label(server: ServerSettings) -> str:
    host = server.server_name
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{server.server_port}"


def format_address(sockaddr: tuple[Any, ...]) -> str:
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


# -- the steps ----------------------------------------------------------------------------------


def resolve(server: ServerSettings) -> list[Address]:
    """The addresses of the server, in the resolver's order (duplicates removed)."""
    kind = socket.SOCK_DGRAM if server.transport == "udp" else socket.SOCK_STREAM
    host = server.server_name.strip("[]")
    try:
        infos = socket.getaddrinfo(host, server.server_port, type=kind)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise TransportError(
            f"cannot resolve the server name {server.server_name!r}: {reason}",
            step="dns",
            cause="dns",
            fix="check the name (azs-syslog set-syslog-server --server-name ...) and this "
            "machine's DNS settings",
        ) from exc
    addresses: list[Address] = []
    for family, _, _, _, sockaddr in infos:
        entry = (int(family), tuple(sockaddr))
        if entry not in addresses:
            addresses.append(entry)
    return addresses


def open_stream(
    server: ServerSettings,
    addresses: Sequence[Address],
    timeout: float,
    *,
    watch: IoWatch | None = None,
) -> socket.socket:
    """A TCP connection to the first address that accepts, with keepalive on (the socket is
    returned with ``timeout`` set)."""
    watch = watch or IoWatch()
    failure: OSError | None = None
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            _connect_socket(sock, sockaddr, timeout, watch)
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        except BaseException:
            sock.close()
            raise
        sock.settimeout(timeout)
        enable_keepalive(sock)
        return sock
    raise _connect_error(server, addresses, failure, timeout)


def enable_keepalive(sock: socket.socket) -> None:
    """Notice a dead peer within about a minute of silence (30 s + 3 x 10 s)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
    ):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def _connect_error(
    server: ServerSettings,
    addresses: Sequence[Address],
    exc: OSError | None,
    timeout: float,
) -> TransportError:
    label = server_label(server)
    tried = ", ".join(format_address(a) for _, a in addresses) or "no address"
    check_port = (
        "check the port (azs-syslog set-syslog-server --server-port ...), that the syslog "
        "server is running, and that no firewall blocks it"
    )
    if isinstance(exc, ConnectionRefusedError):
        return TransportError(
            f"{label} refused the connection ({tried}): nothing listens on port "
            f"{server.server_port}",
            step="connect",
            cause="refused",
            fix=check_port,
        )
    if isinstance(exc, TimeoutError):
        return TransportError(
            f"no answer from {label} within {timeout:g} s ({tried})",
            step="connect",
            cause="timeout",
            fix="check the address and port; a firewall may be dropping the packets",
        )
    if exc is not None and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return TransportError(
            f"{label} is unreachable ({tried}): {exc.strerror}",
            step="connect",
            cause="unreachable",
            fix="check the address and this machine's routes",
        )
    reason = exc.strerror if exc is not None and exc.strerror else str(exc)
    return TransportError(
        f"cannot connect to {label} ({tried}): {reason}",
        step="connect",
        cause="connect-failed",
        fix=check_port,
    )


@dataclass
class TlsSession:
    """A finished handshake: the TLS socket, what it showed, the server's certificate (DER)."""

    sock: ssl.SSLSocket
    context: ClientContext
    peer_certificate: bytes | None


def tls_handshake(
    raw: socket.socket,
    server: ServerSettings,
    client: ClientSettings,
    timeouts: Timeouts,
    *,
    check_name: bool = True,
    watch: IoWatch | None = None,
) -> TlsSession:
    """Wrap ``raw`` in TLS, verify the server (chain and, unless skipped, name) and wait for a
    TLS 1.3 client-certificate verdict. On failure ``raw`` is closed and the error explained."""
    import ssl

    from azs_syslog.transport import tls

    watch = watch or IoWatch()

    try:
        context = tls.client_context(server, client)
    except TransportError:
        raw.close()
        raise
    peer_sockaddr = raw.getpeername()
    family = raw.family

    def fetch_certificate() -> bytes | None:
        return tls.fetch_peer_certificate(
            peer_sockaddr, family, server.server_name, timeouts.handshake
        )

    def explained(exc: BaseException) -> TransportError:
        return tls.explain_handshake_error(
            exc,
            server_name=server.server_name,
            record=context.record,
            peer_certificate=fetch_certificate,
        )

    raw.setblocking(False)
    try:
        sock = context.context.wrap_socket(
            raw, server_hostname=tls.sni_name(server.server_name), do_handshake_on_connect=False
        )
    except (OSError, ValueError) as exc:
        raw.close()
        raise explained(exc) from exc
    until = time.monotonic() + timeouts.handshake
    try:
        while True:
            try:
                sock.do_handshake()
                break
            except ssl.SSLWantReadError:
                watch.wait(sock, write=False, until=until, what="tls handshake")
            except ssl.SSLWantWriteError:
                watch.wait(sock, write=True, until=until, what="tls handshake")
        sock.settimeout(timeouts.handshake)
    except StopRequested:
        sock.close()
        raise
    except (OSError, ValueError) as exc:
        with contextlib.suppress(OSError):
            sock.close()
        raise explained(exc) from exc
    finally:
        watch.done()
    der: bytes | None = None
    try:
        der = sock.getpeercert(binary_form=True)
        verify_name = check_name and not (server.skip_certificate_check or server.skip_cn_check)
        if verify_name and der is not None:
            tls.check_server_name(server.server_name, der)
        if context.record.certificate_requested and sock.version() == "TLSv1.3":
            _await_client_certificate_verdict(sock)
    except (OSError, ValueError, TransportError) as exc:
        with contextlib.suppress(OSError):
            sock.close()
        raise tls.explain_handshake_error(
            exc,
            server_name=server.server_name,
            record=context.record,
            peer_certificate=lambda: der,
        ) from exc
    context.stop_recording()
    return TlsSession(sock, context, der)


def _await_client_certificate_verdict(sock: ssl.SSLSocket) -> None:
    """Read briefly: a server that refuses our (missing) certificate sends its alert now."""
    import ssl

    sock.settimeout(CLIENT_CERTIFICATE_VERDICT_WAIT)
    try:
        data = sock.recv(1)
    except (TimeoutError, ssl.SSLWantReadError):
        return
    if data == b"":
        raise ConnectionResetError(errno.ECONNRESET, "the server closed the connection")


def _read_alert(sock: ssl.SSLSocket) -> BaseException | None:
    """The TLS alert waiting in the receive buffer, if there is one."""
    import ssl

    try:
        sock.settimeout(0.2)
        sock.recv(1)
    except ssl.SSLEOFError:
        return None
    except ssl.SSLError as exc:
        return exc
    except (OSError, ValueError):
        return None
    return None


# -- senders ------------------------------------------------------------------------------------


def _unacknowledged(sock: socket.socket) -> int:
    try:
        raw = fcntl.ioctl(sock.fileno(), SIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return 0
    value: int = struct.unpack("i", raw)[0]
    return value


def _drain_until_eof(sock: socket.socket, deadline: float, watch: IoWatch) -> None:
    """Read (and drop) until the peer closes or the deadline passes."""
    sock.setblocking(False)
    while True:
        try:
            if not sock.recv(65536):
                return
        except BlockingIOError:
            watch.wait(sock, write=False, until=deadline, what="close")


class StreamSender:
    """TCP, or TLS when ``sock`` is an ``SSLSocket``."""

    def __init__(
        self,
        sock: socket.socket,
        info: ConnectionInfo,
        timeouts: Timeouts,
        explain: Callable[[BaseException, bool], TransportError | None] | None = None,
        *,
        watch: IoWatch | None = None,
    ) -> None:
        self.info = info
        self._sock = sock
        self._timeouts = timeouts
        self._explain = explain
        self._watch = watch or IoWatch()
        self._sent_any = False
        self._aborted = False  # a write gave up half-way: no graceful close after it
        self._want_write: tuple[type[BaseException], ...] = (BlockingIOError,)
        self._want_read: tuple[type[BaseException], ...] = ()
        self._chunk = 0  # 0: the whole rest in one send()
        if hasattr(sock, "unwrap"):
            import ssl

            self._want_write = (BlockingIOError, ssl.SSLWantWriteError)
            self._want_read = (ssl.SSLWantReadError,)
            self._chunk = TLS_WRITE_CHUNK
        sock.setblocking(False)

    def send(self, wire: bytes | memoryview, lengths: Sequence[int]) -> None:
        """Write all of ``wire``. Waits in the ``IoWatch`` whenever the socket's buffer is full;
        fails when no byte was accepted for the write timeout."""
        sock, watch = self._sock, self._watch
        view = wire if isinstance(wire, memoryview) else memoryview(wire)
        total = len(view)
        position = 0
        until = time.monotonic() + self._timeouts.write
        try:
            sock.setblocking(False)  # peer_closed() or an explanation may have changed it
            while position < total:
                # A TLS write that must be retried is retried with the same piece (OpenSSL).
                end = position + self._chunk if self._chunk else total
                try:
                    written = sock.send(view[position:end])
                except self._want_write:
                    watch.wait(sock, write=True, until=until, what="write")
                    continue
                except self._want_read:
                    watch.wait(sock, write=False, until=until, what="write")
                    continue
                position += written
                until = time.monotonic() + self._timeouts.write
                watch.done()
        except StopRequested:
            self._aborted = True  # the server is not reading: a graceful close would wait too
            raise
        except (OSError, ValueError) as exc:
            self._aborted = True
            raise self._send_error(exc) from exc
        finally:
            watch.done()
        self._sent_any = True

    def _send_error(self, exc: BaseException) -> TransportError:
        if self._explain is not None:
            explained = self._explain(exc, not self._sent_any)
            if explained is not None:
                return explained
        label = self.info.server
        if isinstance(exc, TimeoutError):
            return TransportError(
                f"{label} accepted no data for {self._timeouts.write:g} s",
                step="send",
                cause="timeout",
                fix="the server is overloaded or the path to it is broken; the forwarder "
                "reconnects and sends again",
            )
        if isinstance(exc, (ConnectionError, EOFError)) or type(exc).__name__ == "SSLEOFError":
            return TransportError(
                f"{label} closed the connection while data was being sent",
                step="send",
                cause="connection-lost",
                fix="look at the syslog server's log; the forwarder reconnects and sends again",
            )
        return TransportError(
            f"sending to {label} failed: {exc}",
            step="send",
            cause="send-failed",
            fix="the forwarder reconnects and sends again",
        )

    def unacknowledged_bytes(self) -> int:
        return _unacknowledged(self._sock)

    def peer_closed(self) -> bool:
        """Whether the server closed the connection (EOF, reset, or a TLS close_notify waiting
        to be read). A syslog server never sends application data, so without this a receiver
        killed while we are idle would be noticed only at the next send, after its last
        batches had been confirmed. Never blocks."""
        import ssl

        sock = self._sock
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            if isinstance(sock, ssl.SSLSocket):
                timeout = sock.gettimeout()
                sock.settimeout(0)
                try:
                    # Processes post-handshake messages (TLS 1.3 session tickets): those are
                    # not a close. EOF or close_notify reads as b"".
                    return sock.recv(1) == b""
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    return False
                finally:
                    sock.settimeout(timeout)
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except (OSError, ValueError):
            return True

    def close(self, *, timeout: float = 2.0) -> None:
        """Close gracefully so that the receiver processes everything it already read: TLS
        close_notify (and the peer's answer), then our FIN, then wait for the peer's FIN. Gives
        up early when the ``IoWatch`` says so; after a write that gave up half-way, only closes
        (the batch goes out again on the next connection). Never raises."""
        deadline = time.monotonic() + timeout
        sock = self._sock
        watch = self._watch
        try:
            if not self._aborted:
                if hasattr(sock, "unwrap"):
                    sock = self._unwrap(sock, deadline)
                sock.shutdown(socket.SHUT_WR)
                _drain_until_eof(sock, deadline, watch)
        except (OSError, ValueError, StopRequested):
            pass
        finally:
            watch.done()
            with contextlib.suppress(OSError):
                sock.close()
            with contextlib.suppress(OSError):
                self._sock.close()

    def _unwrap(self, sock: Any, deadline: float) -> socket.socket:
        """Send close_notify and wait for the peer's (non-blocking: ``unwrap`` is retried)."""
        import ssl

        sock.setblocking(False)
        while True:
            try:
                plain: socket.socket = sock.unwrap()
                return plain
            except ssl.SSLWantReadError:
                self._watch.wait(sock, write=False, until=deadline, what="close")
            except ssl.SSLWantWriteError:
                self._watch.wait(sock, write=True, until=deadline, what="close")


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` of them saved up."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.tokens = self.burst
        self._stamp = time.monotonic()

    def take(self, wanted: int) -> tuple[int, float]:
        """Take up to ``wanted`` whole tokens. Returns how many were taken and, when none was,
        how many seconds to sleep before asking again: until half a burst is there, so that
        waking up late (a busy machine) still finds room below the cap and loses no rate."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        taken = min(int(self.tokens), wanted)
        if taken:
            self.tokens -= taken
            return taken, 0.0
        return 0, (max(1.0, min(wanted, self.burst / 2)) - self.tokens) / self.rate


class DatagramSender:
    """UDP: exactly one datagram per message, paced at ``rate`` datagrams a second (0: as fast
    as the socket takes them). A receiver that reads slower than we write loses datagrams in
    its kernel buffer and nobody is told; pacing keeps a drained backlog from being thrown
    away that way."""

    def __init__(
        self,
        sock: socket.socket,
        info: ConnectionInfo,
        *,
        rate: float = 0,
        watch: IoWatch | None = None,
        write_timeout: float = Timeouts.write,
    ) -> None:
        self.info = info
        self._sock = sock
        self._watch = watch or IoWatch()
        self._write_timeout = write_timeout
        self._bucket = TokenBucket(rate, rate * UDP_BURST_SECONDS) if rate > 0 else None
        # Non-blocking (not a timeout, which would add a poll() to every datagram): a full
        # send buffer shows as BlockingIOError and is waited for in the IoWatch.
        sock.setblocking(False)

    def send(self, wire: bytes | memoryview, lengths: Sequence[int]) -> None:
        view = wire if isinstance(wire, memoryview) else memoryview(wire)
        bucket = self._bucket
        start = 0
        try:
            if bucket is None:
                self._send_datagrams(view, 0, lengths)
                return
            index, total = 0, len(lengths)
            while index < total:
                allowed, pause = bucket.take(total - index)
                if not allowed:
                    self._watch.pause(pause)  # no busy wait; a stop cuts it short
                    continue
                start = self._send_datagrams(view, start, lengths[index : index + allowed])
                index += allowed
        except OSError as exc:
            raise self._send_error(exc, lengths_sent=start) from exc

    def _send_datagrams(self, view: memoryview, start: int, lengths: Sequence[int]) -> int:
        """One datagram per length from ``view[start:]``; returns the offset after them."""
        send = self._sock.send
        for length in lengths:
            end = start + length
            try:
                send(view[start:end])
            except BlockingIOError:
                self._send_when_writable(view[start:end])
            start = end
        return start

    def _send_when_writable(self, datagram: memoryview) -> None:
        until = time.monotonic() + self._write_timeout
        try:
            while True:
                self._watch.wait(self._sock, write=True, until=until, what="write")
                try:
                    self._sock.send(datagram)
                    return
                except BlockingIOError:
                    continue
        finally:
            self._watch.done()

    def _send_error(self, exc: OSError, *, lengths_sent: int) -> TransportError:
        label = self.info.server
        if exc.errno == errno.EMSGSIZE:
            return TransportError(
                f"a message is too large for one UDP datagram to {label}",
                step="send",
                cause="message-too-large",
                fix="lower set-syslog-server --max-message-size, or use TCP/TLS",
            )
        if isinstance(exc, ConnectionRefusedError):
            return TransportError(
                f"{label} answered that nothing listens on UDP port "
                f"{self.info.server.rsplit(':', 1)[-1]} (ICMP port unreachable)",
                step="send",
                cause="refused",
                fix="check the port (set-syslog-server --server-port) and that the syslog "
                "server is running",
            )
        return TransportError(
            f"sending to {label} failed: {exc.strerror or exc}",
            step="send",
            cause="send-failed",
            fix="check the network path to the server",
        )

    def unacknowledged_bytes(self) -> int:
        return 0

    def peer_closed(self) -> bool:
        return False  # UDP has no connection to lose

    def close(self, *, timeout: float = 2.0) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


# -- connect ------------------------------------------------------------------------------------


def connect(
    server: ServerSettings,
    client: ClientSettings,
    *,
    timeouts: Timeouts = Timeouts(),
    watch: IoWatch | None = None,
) -> Sender:
    """Connect to ``server`` with its configured transport; see the module docstring.
    ``watch`` stops the blocking steps early and stays with the sender for its writes."""
    watch = watch or IoWatch()
    if server.use_relp:
        from azs_syslog.transport import relp

        return relp.connect(server, client, timeouts=timeouts, watch=watch)
    addresses = resolve(server)
    label = server_label(server)
    if server.transport == "udp":
        return _connect_udp(server, addresses, label, watch, timeouts)
    raw = open_stream(server, addresses, timeouts.connect, watch=watch)
    peer = format_address(raw.getpeername())
    if server.transport == "tcp":
        return StreamSender(raw, ConnectionInfo("tcp", label, peer), timeouts, watch=watch)
    session = tls_handshake(raw, server, client, timeouts, watch=watch)
    return tls_sender(session, server, label, peer, timeouts, watch=watch)


def _connect_udp(
    server: ServerSettings,
    addresses: Sequence[Address],
    label: str,
    watch: IoWatch,
    timeouts: Timeouts,
) -> Sender:
    family, sockaddr = addresses[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, UDP_SEND_BUFFER)
        sock.connect(sockaddr)
    except OSError as exc:
        sock.close()
        raise _connect_error(server, addresses[:1], exc, 0) from exc
    return DatagramSender(
        sock,
        ConnectionInfo("udp", label, format_address(sockaddr)),
        rate=getattr(server, "udp_rate", 0),
        watch=watch,
        write_timeout=timeouts.write,
    )


def _first_to_expire(message: bytes | None) -> tuple[str | None, str | None]:
    """Of the certificates in the server's Certificate message, the subject and not-after of
    the one that expires first (its chain ends when that one does); best effort."""
    from azs_syslog.transport import tls

    first: tuple[str, str] | None = None
    for der in tls.certificates_from_message(message):
        try:
            summary = tls.summarize(der)
        except ValueError:
            continue
        if first is None or summary.not_after < first[1]:  # RFC 3339 UTC sorts as text
            first = (summary.subject, summary.not_after)
    return first if first is not None else (None, None)


def tls_sender(
    session: TlsSession,
    server: ServerSettings,
    label: str,
    peer: str,
    timeouts: Timeouts,
    *,
    watch: IoWatch | None = None,
) -> Sender:
    """The ``Sender`` over a verified TLS session."""
    from azs_syslog.transport import tls

    sock = session.sock
    subject = not_after = None
    if session.peer_certificate:
        summary = tls.summarize(session.peer_certificate)
        subject, not_after = summary.subject, summary.not_after
    record = session.context.record
    first_subject, first_not_after = _first_to_expire(record.server_certificate_message)
    cipher = sock.cipher()
    info = ConnectionInfo(
        "tls",
        label,
        peer,
        tls_version=sock.version(),
        cipher=cipher[0] if cipher else None,
        server_subject=subject,
        server_not_after=not_after,
        client_certificate_sent=record.client_certificate_sent,
        server_chain_first_subject=first_subject,
        server_chain_first_not_after=first_not_after,
    )

    def explain(exc: BaseException, first_send: bool) -> TransportError | None:
        """A TLS 1.3 verdict on the client certificate that came after our wait: the write
        fails, and the server's alert may still be waiting behind it."""
        import ssl

        if not record.certificate_requested:
            return None
        verdict: BaseException | None = exc
        if not isinstance(exc, ssl.SSLError) or isinstance(exc, ssl.SSLEOFError):
            verdict = _read_alert(sock)
            if verdict is None and first_send:
                verdict = exc  # closed at the first write, after asking for a certificate
        if verdict is None:
            return None
        error = tls.explain_handshake_error(
            verdict, server_name=server.server_name, record=record, peer_certificate=lambda: None
        )
        if error.cause not in ("client-certificate-required", "client-certificate-rejected"):
            return None
        return TransportError(error.message, step="send", cause=error.cause, fix=error.fix)

    return StreamSender(sock, info, timeouts, explain, watch=watch)
