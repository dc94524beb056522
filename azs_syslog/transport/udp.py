"""The UDP sender: exactly one datagram per message, optionally paced (a token bucket), and the
connected UDP socket it sends on."""

from __future__ import annotations

import contextlib
import errno
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from azs_syslog.errors import TransportError
from azs_syslog.transport import base
from azs_syslog.transport.base import (
    Address,
    ConnectionInfo,
    IoWatch,
    Sender,
    Timeouts,
    format_address,
    send_failed_error,
)
from azs_syslog.transport.connecting import connect_error

if TYPE_CHECKING:
    from azs_syslog.config import ServerSettings


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
        self._bucket = TokenBucket(rate, rate * base.UDP_BURST_SECONDS) if rate > 0 else None
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
            port = label.rsplit(":", 1)[-1]
            return TransportError(
                f"{label} answered that nothing listens on UDP port {port} (ICMP port unreachable)",
                step="send",
                cause="refused",
                fix="check the port (set-syslog-server --server-port) and that the syslog "
                "server is running",
            )
        return send_failed_error(label, exc.strerror or exc, "check the network path to the server")

    def unacknowledged_bytes(self) -> int:
        return 0

    def peer_closed(self) -> bool:
        return False  # UDP has no connection to lose

    def close(self, *, timeout: float = 2.0) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


def connect_udp(
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
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, base.UDP_SEND_BUFFER)
        sock.connect(sockaddr)
    except OSError as exc:
        sock.close()
        raise connect_error(server, addresses[:1], exc, 0) from exc
    return DatagramSender(
        sock,
        ConnectionInfo("udp", label, format_address(sockaddr)),
        rate=getattr(server, "udp_rate", 0),
        watch=watch,
        write_timeout=timeouts.write,
    )
