"""RELP, the Reliable Event Logging Protocol of rsyslog (librelp), client side.

Plain TCP syslog has no application acknowledgement: after a broken connection the forwarder
can only guess what the receiver took. RELP answers every message: a frame is

    TXNR SP COMMAND SP DATALEN [SP DATA] LF

``TXNR`` a transaction number (1..999,999,999, then 1 again), ``DATALEN`` the bytes of
``DATA`` (without ``SP DATA`` when 0). The client opens a session with ``open`` and its offers
(``relp_version=0``, ``relp_software=...``, ``commands=syslog``, one per line); the server
answers every client frame with ``rsp`` under the same transaction number, ``DATA`` being
``CODE [SP TEXT] [LF OFFERS]`` (``200 OK`` for success, ``500 ...`` for a refusal). ``syslog``
carries one message; ``close`` ends the session; ``serverclose`` (transaction number 0) is the
server ending it. Up to a window of ``syslog`` frames may be unanswered at a time.

``RelpSender`` has the ``transport.Sender`` interface: ``send(wire, lengths)`` takes the same
framed blob as TCP (the syslog framing is taken off: RELP frames each message itself);
``unacknowledged_bytes()`` is the part of the blob whose frames are not yet answered ``200``, so
a batch is confirmed exactly when every frame of it was acknowledged. A non-200 answer, a
``serverclose``, a protocol violation or silence is a ``TransportError`` with a cause, a
message and a fix. The socket, TLS, certificate and name checks are those of
``azs_syslog.transport`` and ``azs_syslog.transport.tls``.
"""

from __future__ import annotations

import collections
import contextlib
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from azs_syslog import __version__
from azs_syslog.errors import TransportError
from azs_syslog.transport import (
    ConnectionInfo,
    IoWatch,
    Timeouts,
    format_address,
    open_stream,
    resolve,
    server_label,
    tls_handshake,
    tls_sender,
)

if TYPE_CHECKING:
    from azs_syslog.config import ClientSettings, ServerSettings
    from azs_syslog.transport.tls import HandshakeRecord

RELP_VERSION = "0"
SOFTWARE = f"azs-syslog,{__version__},-"  # name,version,url (librelp's form; no URL here)
MAX_TXNR = 999_999_999
# Frames sent and not yet answered. librelp's own client uses 128; on loopback to rsyslog a
# larger window keeps the receiver, not the round trips, the limit (benchmarks/relp.py).
WINDOW = 1024
MAX_HEADER = 9 + 1 + 32 + 1 + 9 + 1  # TXNR SP COMMAND SP DATALEN SP
MAX_FRAME_DATA = 16 * 1024 * 1024  # what we accept from a server (an rsp is a few hundred bytes)
RECV_SIZE = 65536
QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)

PLAIN_PORT_FIX = (
    "check that the port is the receiver's RELP input (rsyslog: imrelp), not a plain syslog "
    "port (imtcp); or drop --use-relp for a plain syslog port"
)


class ProtocolViolation(Exception):
    """The server sent something that is not a RELP frame."""


class Frame(NamedTuple):
    txnr: int
    command: str
    data: bytes


@dataclass(frozen=True)
class RelpConnectionInfo(ConnectionInfo):
    """A RELP connection: the TLS details (when TLS) and the server's answer to ``open``."""

    relp_offers: tuple[tuple[str, str], ...] = ()
    window: int = WINDOW


def encode(txnr: int, command: str, data: bytes = b"") -> bytes:
    if data:
        return b"%d %s %d %s\n" % (txnr, command.encode(), len(data), data)
    return b"%d %s 0\n" % (txnr, command.encode())


def next_txnr(txnr: int) -> int:
    """Transaction numbers run 1..999,999,999 and then start again at 1 (0 is the server's)."""
    return 1 if txnr >= MAX_TXNR else txnr + 1


HEADER = re.compile(rb"(\d{1,9}) ([A-Za-z]{1,32}) (\d{1,9})([ \n])")


class FrameReader:
    """Splits received bytes into frames; keeps an incomplete frame for the next feed."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buffer + data if self._buffer else data
        frames: list[Frame] = []
        pos = 0
        size = len(buf)
        match = HEADER.match
        while pos < size:
            header = match(buf, pos)
            if header is None:
                tail = buf[pos : pos + MAX_HEADER]
                if len(tail) >= MAX_HEADER or not _could_be_header(tail):
                    raise ProtocolViolation(f"not a RELP frame: {tail[:40]!r}")
                break
            length = int(header[3])
            if length > MAX_FRAME_DATA:
                raise ProtocolViolation(f"a frame announces {length} bytes of data")
            start = header.end()
            if length == 0:
                if header[4] != b"\n":
                    raise ProtocolViolation(f"a frame without data does not end with LF: {tail!r}")
                frames.append(Frame(int(header[1]), header[2].decode("ascii"), b""))
                pos = start
                continue
            if header[4] != b" ":
                raise ProtocolViolation("no space before the data")
            if size < start + length + 1:
                break
            if buf[start + length] != 10:
                raise ProtocolViolation("a frame's data is not followed by LF")
            frames.append(
                Frame(int(header[1]), header[2].decode("ascii"), buf[start : start + length])
            )
            pos = start + length + 1
        self._buffer = buf[pos:]
        return frames


def _could_be_header(tail: bytes) -> bool:
    """Whether ``tail`` may still grow into a frame header (digits, SP, letters, SP, digits)."""
    return re.fullmatch(rb"\d{0,9}( [A-Za-z]{0,32}( \d{0,9})?)?", tail) is not None


def parse_response(data: bytes) -> tuple[int, str, tuple[tuple[str, str], ...]]:
    """``CODE [SP TEXT] [LF OFFERS]`` → (code, text, offers as (name, value) pairs)."""
    head, _, rest = data.partition(b"\n")
    code_text, _, text = head.partition(b" ")
    if not code_text.isdigit():
        raise ProtocolViolation(f"an rsp frame without a status code: {data[:40]!r}")
    offers: list[tuple[str, str]] = []
    for line in rest.split(b"\n"):
        if line.strip():
            name, _, value = line.partition(b"=")
            offers.append((name.decode("ascii", "replace"), value.decode("utf-8", "replace")))
    return int(code_text), text.decode("utf-8", "replace"), tuple(offers)


def unframe(wire: memoryview, lengths: Sequence[int], framing: str) -> list[memoryview]:
    """The messages of a syslog blob without their syslog framing."""
    messages: list[memoryview] = []
    start = 0
    if framing == "lf":
        for length in lengths:
            end = start + length
            messages.append(
                wire[start : end - 1] if length and wire[end - 1] == 10 else wire[start:end]
            )
            start = end
        return messages
    data = wire.obj if isinstance(wire.obj, bytes) and len(wire) == len(wire.obj) else bytes(wire)
    find = data.find
    for length in lengths:
        end = start + length
        space = find(b" ", start, min(start + 12, end))
        messages.append(wire[space + 1 : end] if space >= 0 else wire[start:end])
        start = end
    return messages


class RelpSender:
    """A RELP session over a connected (and, for TLS, verified) socket; see the module doc."""

    exact_acknowledgement = True
    info: ConnectionInfo  # a RelpConnectionInfo (typed as the Sender interface has it)

    def __init__(
        self,
        sock: socket.socket,
        info: RelpConnectionInfo,
        timeouts: Timeouts,
        *,
        framing: str,
        window: int = WINDOW,
        txnr: int = 1,
        watch: IoWatch | None = None,
    ) -> None:
        self.info = info
        self._sock = sock
        # Every wait (a full send buffer, a full window) also watches the worker's wake-up
        # descriptor, so a stop never waits for a network timeout.
        self._watch = watch or IoWatch()
        self._timeouts = timeouts
        self._framing = framing
        self._window = window
        self._txnr = txnr  # the last number used (the open)
        self._reader = FrameReader()
        self._pending: collections.OrderedDict[int, int] = collections.OrderedDict()
        self._unacknowledged = 0  # wire bytes of the frames in _pending
        self._written = 0  # wire bytes handed to send()
        self._lost: TransportError | None = None
        self.frames_acknowledged = 0
        self._progress_at = time.monotonic()

    # -- the Sender interface

    def send(self, wire: bytes | memoryview, lengths: Sequence[int]) -> None:
        if self._lost is not None:
            raise self._lost
        view = wire if isinstance(wire, memoryview) else memoryview(wire)
        messages = unframe(view, lengths, self._framing)
        out = bytearray()
        txnr = self._txnr
        pending = self._pending
        window = self._window
        for message, length in zip(messages, lengths, strict=True):
            if len(pending) >= window:
                if out:
                    self._write(out)
                    out.clear()
                # Wait until a quarter of the window is free: not one write per answer.
                while len(pending) > window - max(window // 4, 1):
                    self._pump(wait=self._timeouts.write)
            txnr = 1 if txnr >= MAX_TXNR else txnr + 1
            out += b"%d syslog %d " % (txnr, len(message))
            out += message
            out += b"\n"
            if not pending:
                self._progress_at = time.monotonic()
            pending[txnr] = length
            self._unacknowledged += length
            self._written += length
            self._txnr = txnr
            if len(out) >= 1 << 18:
                self._write(out)
                out.clear()
        if out:
            self._write(out)

    def unacknowledged_bytes(self) -> int:
        """Wire bytes whose frames have not been answered ``200`` yet (reads what arrived)."""
        self._pump(wait=0)
        return self._unacknowledged

    def acknowledged_bytes(self) -> int:
        """Wire bytes handed to ``send`` on this session whose frames were all answered."""
        return self._written - self._unacknowledged

    def written_bytes(self) -> int:
        """Wire bytes handed to ``send`` on this session whose frames were written (or were
        being written when it failed)."""
        return self._written

    def peer_closed(self) -> bool:
        """Reads the answers that arrived; a refusal, ``serverclose`` or EOF raises its
        explained ``TransportError`` (so that the worker's status says why)."""
        self._pump(wait=0)
        return False

    def close(self, *, timeout: float = 2.0) -> None:
        """``close``, then wait (bounded) for its answer and the server's end of the session,
        reading the answers to frames still outstanding on the way; then close the socket."""
        deadline = time.monotonic() + timeout
        sock = self._sock
        try:
            if self._lost is None:
                close_txnr = next_txnr(self._txnr)
                self._txnr = close_txnr
                self._write(encode(close_txnr, "close"))
                while time.monotonic() < deadline:
                    try:
                        if self._pump(
                            wait=max(deadline - time.monotonic(), 0.01), closing=close_txnr
                        ):
                            break
                    except TransportError:
                        break
            if hasattr(sock, "unwrap"):
                sock.settimeout(max(deadline - time.monotonic(), 0.01))
                sock = sock.unwrap()
            sock.shutdown(socket.SHUT_WR)
        except (OSError, ValueError, TransportError):
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            with contextlib.suppress(OSError):
                self._sock.close()

    # -- reading the answers

    def _write(self, data: bytes | bytearray) -> None:
        try:
            self._send_all(data)
        except (OSError, ValueError) as exc:
            # The server may have said why before it closed: read that first.
            with contextlib.suppress(TransportError):
                self._pump(wait=0)
            if self._lost is not None:
                raise self._lost from exc
            raise self._fail(_lost_error(self.info.server, exc, self._timeouts.write)) from exc

    def _send_all(self, data: bytes | bytearray) -> None:
        """Write all of ``data``, waiting in the ``IoWatch`` while the socket's buffer is full;
        ``TimeoutError`` when no byte was taken for the write timeout, ``StopRequested`` when
        the worker gives up."""
        import ssl

        sock, watch = self._sock, self._watch
        view = memoryview(data)
        position = 0
        until = time.monotonic() + self._timeouts.write
        sock.settimeout(0)
        try:
            while position < len(view):
                try:
                    position += sock.send(view[position : position + (1 << 16)])
                except (BlockingIOError, ssl.SSLWantWriteError):
                    watch.wait(sock, write=True, until=until, what="write")
                    continue
                except ssl.SSLWantReadError:
                    watch.wait(sock, write=False, until=until, what="write")
                    continue
                until = time.monotonic() + self._timeouts.write
                watch.done()
        finally:
            watch.done()
            with contextlib.suppress(OSError):
                sock.settimeout(self._timeouts.write)

    def _fail(self, error: TransportError) -> TransportError:
        self._lost = error
        return error

    def _pump(self, *, wait: float, closing: int | None = None) -> bool:
        """Read and handle the frames that arrived; with ``wait`` > 0, block up to that long
        for at least one. Returns True when the answer to ``closing`` (or the end) came."""
        if self._lost is not None:
            raise self._lost
        sock = self._sock
        deadline = time.monotonic() + wait
        got_any = False
        # Non-blocking for the whole pump: over TLS every answer may be its own record, so a
        # read per record is the floor; no timeout juggling or select around each of them.
        sock.settimeout(0)
        try:
            while True:
                data = self._recv()
                if data is None:
                    if got_any or wait <= 0:
                        self._check_progress()
                        return False
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise self._fail(self._silence_error(wait))
                    try:  # a stop (the worker's wake-up) ends the wait: StopRequested
                        self._watch.wait(sock, write=False, until=deadline, what="write")
                    except TimeoutError:
                        pass  # the silence is reported above, on the next turn
                    finally:
                        self._watch.done()
                    continue
                if data == b"":
                    if closing is not None:
                        return True
                    raise self._fail(
                        TransportError(
                            f"{self.info.server} closed the RELP session without serverclose "
                            f"({len(self._pending)} frames unanswered)",
                            step="send",
                            cause="connection-lost",
                            fix="look at the RELP server's log; the forwarder reconnects and "
                            "sends the unanswered frames again",
                        )
                    )
                try:
                    frames = self._reader.feed(data)
                except ProtocolViolation as exc:
                    raise self._fail(_violation_error(self.info.server, exc)) from exc
                for frame in frames:
                    got_any = True
                    if self._handle(frame, closing):
                        return True
        finally:
            if got_any and QUICKACK is not None:
                # Acknowledge the answers at once: the server's next answer waits for our ACK
                # (Nagle), and a delayed ACK would cost 40 ms per round trip.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
            with contextlib.suppress(OSError):
                sock.settimeout(self._timeouts.write)

    def _recv(self) -> bytes | None:
        """What is there to read (b"" at the end), or None when nothing (whole) is there yet.
        The socket is non-blocking here."""
        try:
            return self._sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            if type(exc).__name__ in ("SSLWantReadError", "SSLWantWriteError"):
                return None
            raise self._fail(_lost_error(self.info.server, exc, 0)) from exc

    def _check_progress(self) -> None:
        """Frames outstanding and no answer for the write timeout: the server is stalled."""
        if not self._pending:
            self._progress_at = time.monotonic()
            return
        if time.monotonic() - self._progress_at > self._timeouts.write:
            raise self._fail(self._silence_error(self._timeouts.write))

    def _handle(self, frame: Frame, closing: int | None) -> bool:
        if frame.command == "serverclose":
            if closing is not None:
                return True
            raise self._fail(
                TransportError(
                    f"{self.info.server} ended the RELP session (serverclose) with "
                    f"{len(self._pending)} frames unanswered",
                    step="send",
                    cause="relp-serverclose",
                    fix="the RELP server is shutting down or dropped this client; look at its "
                    "log. The forwarder reconnects and sends the unanswered frames again",
                )
            )
        if frame.command != "rsp":
            raise self._fail(
                _violation_error(
                    self.info.server, ProtocolViolation(f"unexpected command {frame.command!r}")
                )
            )
        if frame.txnr == closing:
            return True
        length = self._pending.get(frame.txnr)
        if length is None:
            raise self._fail(
                _violation_error(
                    self.info.server,
                    ProtocolViolation(f"an answer to transaction {frame.txnr}, which is not open"),
                )
            )
        code, text = 200, "OK"
        if frame.data != b"200 OK":
            try:
                code, text, _ = parse_response(frame.data)
            except ProtocolViolation as exc:
                raise self._fail(_violation_error(self.info.server, exc)) from exc
        if code != 200:
            raise self._fail(
                TransportError(
                    f"{self.info.server} refused a message: RELP answer {code} {text}".rstrip()
                    + f" (transaction {frame.txnr})",
                    step="send",
                    cause="relp-refused",
                    fix="look at the RELP server's log for why it refused (a message too large "
                    "for its maxDataSize, a full queue, ...); the forwarder reconnects and "
                    "sends the unanswered frames again",
                )
            )
        del self._pending[frame.txnr]
        self._unacknowledged -= length
        self._progress_at = time.monotonic()
        self.frames_acknowledged += 1
        return False

    def _silence_error(self, wait: float) -> TransportError:
        return TransportError(
            f"{self.info.server} answered none of {len(self._pending)} RELP frames within "
            f"{wait:g} s",
            step="send",
            cause="relp-no-answer",
            fix="the RELP server is stalled or overloaded (look at its log and queue); the "
            "forwarder reconnects and sends the unanswered frames again",
        )


def _lost_error(label: str, exc: BaseException, timeout: float) -> TransportError:
    if isinstance(exc, TimeoutError):
        return TransportError(
            f"{label} accepted no data for {timeout:g} s",
            step="send",
            cause="timeout",
            fix="the RELP server is overloaded or the path to it is broken; the forwarder "
            "reconnects and sends the unanswered frames again",
        )
    return TransportError(
        f"{label} closed the RELP connection ({exc})",
        step="send",
        cause="connection-lost",
        fix="look at the RELP server's log; the forwarder reconnects and sends the unanswered "
        "frames again",
    )


def _violation_error(label: str, exc: ProtocolViolation) -> TransportError:
    return TransportError(
        f"{label} does not speak RELP: {exc}",
        step="relp",
        cause="relp-protocol",
        fix=PLAIN_PORT_FIX,
    )


# -- the open handshake -------------------------------------------------------------------------


def offers_text() -> bytes:
    return f"relp_version={RELP_VERSION}\nrelp_software={SOFTWARE}\ncommands=syslog".encode()


def open_session(
    sock: socket.socket,
    label: str,
    timeouts: Timeouts,
    *,
    tls_record: HandshakeRecord | None = None,
    server_name: str = "",
    watch: IoWatch | None = None,
) -> tuple[tuple[str, str], ...]:
    """Send ``open`` (transaction 1) and read the answer; returns the server's offers."""
    watch = watch or IoWatch()
    reader = FrameReader()
    deadline = time.monotonic() + timeouts.handshake
    try:
        sock.settimeout(timeouts.handshake)
        sock.sendall(encode(1, "open", offers_text()))
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if not (hasattr(sock, "pending") and sock.pending()):
                try:  # TimeoutError at the deadline; StopRequested on a stop
                    watch.wait(sock, write=False, until=deadline, what="relp open")
                finally:
                    watch.done()
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            data = sock.recv(RECV_SIZE)
            if not data:
                raise _open_closed(label, tls_record is not None)
            frames = reader.feed(data)
            if frames:
                break
    except TimeoutError as exc:
        raise TransportError(
            f"{label} accepted the connection but answered no RELP open within "
            f"{timeouts.handshake:g} s",
            step="relp",
            cause="relp-no-answer",
            fix=PLAIN_PORT_FIX,
        ) from exc
    except ProtocolViolation as exc:
        raise _violation_error(label, exc) from exc
    except (OSError, ValueError) as exc:
        if tls_record is not None and type(exc).__name__.startswith("SSL"):
            from azs_syslog.transport import tls

            error = tls.explain_handshake_error(
                exc, server_name=server_name, record=tls_record, peer_certificate=lambda: None
            )
            if error.cause in ("client-certificate-required", "client-certificate-rejected"):
                raise error from exc
        raise _open_closed(label, tls_record is not None) from exc
    frame = frames[0]
    if frame.command == "serverclose":
        raise TransportError(
            f"{label} refused the RELP session (serverclose in answer to open)",
            step="relp",
            cause="relp-serverclose",
            fix="look at the RELP server's log: it may allow only certain clients",
        )
    if frame.command != "rsp" or frame.txnr != 1:
        raise _violation_error(
            label, ProtocolViolation(f"answer to open was {frame.txnr} {frame.command}")
        )
    try:
        code, text, offers = parse_response(frame.data)
    except ProtocolViolation as exc:
        raise _violation_error(label, exc) from exc
    if code != 200:
        raise TransportError(
            f"{label} refused the RELP session: {code} {text}".rstrip(),
            step="relp",
            cause="relp-refused",
            fix="look at the RELP server's log; it may not support relp_version "
            f"{RELP_VERSION} or the syslog command",
        )
    commands = dict(offers).get("commands", "")
    if "syslog" not in commands.split(","):
        raise TransportError(
            f"{label} opened a RELP session but does not offer the syslog command "
            f"(commands={commands or 'none'})",
            step="relp",
            cause="relp-no-syslog",
            fix="configure the receiver's RELP input for syslog messages (rsyslog: imrelp)",
        )
    return offers


def _open_closed(label: str, over_tls: bool) -> TransportError:
    if over_tls:
        return TransportError(
            f"{label} closed the connection in answer to the RELP open after the TLS handshake",
            step="relp",
            cause="relp-closed",
            fix="check that the port is the receiver's RELP input with TLS (rsyslog: imrelp "
            'with tls="on"), and its log for why it dropped this client',
        )
    return TransportError(
        f"{label} closed the connection in answer to the RELP open: it probably expects TLS "
        "on this port, or is not a RELP port",
        step="relp",
        cause="relp-closed",
        fix="drop --no-encryption if the receiver's RELP input has TLS on; "
        "otherwise " + PLAIN_PORT_FIX,
    )


# -- connect ------------------------------------------------------------------------------------


def connect(
    server: ServerSettings,
    client: ClientSettings,
    *,
    timeouts: Timeouts | None = None,
    window: int = WINDOW,
    watch: IoWatch | None = None,
) -> RelpSender:
    """Connect (TCP, then TLS unless --no-encryption, verified as for syslog over TLS), open a
    RELP session and return its sender."""
    timeouts = timeouts or Timeouts()
    addresses = resolve(server)
    label = server_label(server)
    raw = open_stream(server, addresses, timeouts.connect, watch=watch)
    # Frames go out as soon as the window lets them: without this, Nagle holds a small write
    # until the server's delayed ACK (40 ms) and a small window crawls.
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    peer = format_address(raw.getpeername())
    sock: socket.socket = raw
    base = ConnectionInfo("relp", label, peer)
    record = None
    if server.transport == "tls":
        session = tls_handshake(raw, server, client, timeouts, watch=watch)
        base = tls_sender(session, server, label, peer, timeouts).info
        sock = session.sock
        record = session.context.record
    try:
        offers = open_session(
            sock, label, timeouts, tls_record=record, server_name=server.server_name, watch=watch
        )
    except BaseException:
        with contextlib.suppress(OSError):
            sock.close()
        raise
    info = RelpConnectionInfo(
        transport="relp",
        server=label,
        peer_address=peer,
        tls_version=base.tls_version,
        cipher=base.cipher,
        server_subject=base.server_subject,
        server_not_after=base.server_not_after,
        client_certificate_sent=base.client_certificate_sent,
        relp_offers=offers,
        window=window,
    )
    return RelpSender(sock, info, timeouts, framing=server.framing, window=window, watch=watch)


def describe_offers(offers: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{name}={value}" if value else name for name, value in offers) or "none"
