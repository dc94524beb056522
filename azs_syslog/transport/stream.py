"""The stream sender: syslog over TCP, or over TLS once ``connecting.tls_handshake`` verified
the server. One blob of framed messages goes out in one ``send`` loop (never a Python loop per
message); a write that the server does not read waits in the ``IoWatch`` and fails after the
write timeout without progress.
"""

from __future__ import annotations

import contextlib
import fcntl
import select
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from azs_syslog.errors import TransportError
from azs_syslog.transport.base import (
    SIOCOUTQ,
    TLS_WRITE_CHUNK,
    ConnectionInfo,
    IoWatch,
    Sender,
    StopRequested,
    Timeouts,
    send_failed_error,
    write_stalled_error,
)

if TYPE_CHECKING:
    import ssl

    from azs_syslog.config import ServerSettings
    from azs_syslog.transport.connecting import TlsSession


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

    @property
    def sock(self) -> socket.socket:
        """The connected (and verified) socket: ``diagnose`` opens a RELP session on it."""
        return self._sock

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
            return write_stalled_error(
                label, self._timeouts.write, server="the server", again="sends again"
            )
        if isinstance(exc, (ConnectionError, EOFError)) or type(exc).__name__ == "SSLEOFError":
            return TransportError(
                f"{label} closed the connection while data was being sent",
                step="send",
                cause="connection-lost",
                fix="look at the syslog server's log; the forwarder reconnects and sends again",
            )
        return send_failed_error(label, exc, "the forwarder reconnects and sends again")

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
