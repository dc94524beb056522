"""What every sender shares: the ``Sender`` interface, its constants and records, the
``IoWatch`` that every blocking wait goes through, and the explanations common to them.

The lowest module of ``azs_syslog.transport``: the stream (TCP/TLS), UDP and RELP senders and
the connecting steps all build on it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from azs_syslog.errors import TransportError

if TYPE_CHECKING:
    from azs_syslog.config import ServerSettings

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
            limit = self._next_slice(until, what, timeout=sock is not None)
            if limit is None:
                return  # the pause is over
            if self._poll(poller, limit):
                return  # ready, or an error that the next call on the socket reports

    def _next_slice(self, until: float, what: str, *, timeout: bool) -> float | None:
        """How long the next poll may last; None when ``until`` passed and that is no
        ``timeout`` (a pause). Raises ``StopRequested`` or, with ``timeout``, ``TimeoutError``."""
        now = time.monotonic()
        give_up = self.give_up_at()
        if give_up is not None and now >= give_up:
            raise StopRequested(what)
        remaining = until - now
        if remaining <= 0:
            if not timeout:
                return None
            raise TimeoutError(errno.ETIMEDOUT, "timed out")
        limit = min(remaining, SLICE)
        if give_up is not None:
            limit = min(limit, max(give_up - now, 0.0))
        return limit

    def _poll(self, poller: select.poll, limit: float) -> bool:
        """Poll up to ``limit`` seconds; True when the socket (not the doorbell) is ready."""
        woken = False
        for fd, _ in poller.poll(limit * 1000):
            if fd != self.wake_fd:
                return True
            woken = True
        if woken:
            self.clear_wakeups()
        return False

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


def server_label(server: ServerSettings) -> str:
    host = server.server_name
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{server.server_port}"


def format_address(sockaddr: tuple[Any, ...]) -> str:
    host, port = sockaddr[0], sockaddr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def connected_peer(raw: socket.socket, label: str) -> tuple[Any, ...]:
    """The peer of a socket just connected. A server that accepts and at once resets (one
    being killed or restarted) leaves it unconnected: that is a lost connection, explained,
    and ``raw`` is closed; never a bare ``OSError``."""
    try:
        return tuple(raw.getpeername())
    except OSError as exc:
        with contextlib.suppress(OSError):
            raw.close()
        raise TransportError(
            f"{label} closed the connection as soon as it was opened ({exc.strerror or exc})",
            step="connect",
            cause="connection-lost",
            fix="look at the syslog server's log; the forwarder connects again",
        ) from exc


# -- explanations shared by the senders ---------------------------------------------------------


def write_stalled_error(label: str, timeout: float, *, server: str, again: str) -> TransportError:
    """No byte of a write was taken for ``timeout`` seconds. ``server`` names the receiver
    ("the server", "the RELP server"), ``again`` what the forwarder does after reconnecting."""
    return TransportError(
        f"{label} accepted no data for {timeout:g} s",
        step="send",
        cause="timeout",
        fix=f"{server} is overloaded or the path to it is broken; the forwarder reconnects and "
        f"{again}",
    )


def send_failed_error(label: str, reason: object, fix: str) -> TransportError:
    """A write failed for a reason that has no explanation of its own."""
    return TransportError(
        f"sending to {label} failed: {reason}", step="send", cause="send-failed", fix=fix
    )
