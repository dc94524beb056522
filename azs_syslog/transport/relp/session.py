"""Opening a RELP session: connect (TCP, then TLS unless --no-encryption, verified as for syslog
over TLS), send ``open`` with our offers, check the server's answer, and hand the socket to a
``RelpSender``."""

from __future__ import annotations

import contextlib
import socket
import time
from typing import TYPE_CHECKING

from azs_syslog.errors import TransportError
from azs_syslog.transport.base import (
    ConnectionInfo,
    IoWatch,
    Timeouts,
    connected_peer,
    format_address,
    server_label,
)
from azs_syslog.transport.connecting import open_stream, resolve, tls_handshake
from azs_syslog.transport.relp import frames
from azs_syslog.transport.relp.sender import RelpSender
from azs_syslog.transport.stream import tls_sender

if TYPE_CHECKING:
    from azs_syslog.config import ClientSettings, ServerSettings
    from azs_syslog.transport.tls import HandshakeRecord


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
    over_tls = tls_record is not None
    try:
        frame = _answer_to_open(sock, label, timeouts, watch, over_tls=over_tls)
    except TimeoutError as exc:
        raise TransportError(
            f"{label} accepted the connection but answered no RELP open within "
            f"{timeouts.handshake:g} s",
            step="relp",
            cause="relp-no-answer",
            fix=frames.PLAIN_PORT_FIX,
        ) from exc
    except frames.ProtocolViolation as exc:
        raise frames.violation_error(label, exc) from exc
    except (OSError, ValueError) as exc:
        if tls_record is not None and type(exc).__name__.startswith("SSL"):
            from azs_syslog.transport import tls

            error = tls.explain_handshake_error(
                exc, server_name=server_name, record=tls_record, peer_certificate=lambda: None
            )
            if error.cause in ("client-certificate-required", "client-certificate-rejected"):
                raise error from exc
        raise _open_closed(label, over_tls) from exc
    return _accepted_offers(label, frame)


def _answer_to_open(
    sock: socket.socket, label: str, timeouts: Timeouts, watch: IoWatch, *, over_tls: bool
) -> frames.Frame:
    """Send ``open`` and return the first frame that comes back. Raises ``TimeoutError`` at
    the handshake timeout, ``ProtocolViolation``, ``OSError`` or ``StopRequested``."""
    reader = frames.FrameReader()
    deadline = time.monotonic() + timeouts.handshake
    sock.settimeout(timeouts.handshake)
    sock.sendall(frames.encode(1, "open", frames.offers_text()))
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
        data = sock.recv(frames.RECV_SIZE)
        if not data:
            raise _open_closed(label, over_tls)
        received = reader.feed(data)
        if received:
            return received[0]


def _accepted_offers(label: str, frame: frames.Frame) -> tuple[tuple[str, str], ...]:
    """The server's offers from its answer to ``open``, unless the answer refuses the session
    or lacks the syslog command."""
    if frame.command == "serverclose":
        raise TransportError(
            f"{label} refused the RELP session (serverclose in answer to open)",
            step="relp",
            cause="relp-serverclose",
            fix="look at the RELP server's log: it may allow only certain clients",
        )
    if frame.command != "rsp" or frame.txnr != 1:
        raise frames.violation_error(
            label, frames.ProtocolViolation(f"answer to open was {frame.txnr} {frame.command}")
        )
    try:
        code, text, offers = frames.parse_response(frame.data)
    except frames.ProtocolViolation as exc:
        raise frames.violation_error(label, exc) from exc
    if code != 200:
        raise TransportError(
            f"{label} refused the RELP session: {code} {text}".rstrip(),
            step="relp",
            cause="relp-refused",
            fix="look at the RELP server's log; it may not support relp_version "
            f"{frames.RELP_VERSION} or the syslog command",
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
        "otherwise " + frames.PLAIN_PORT_FIX,
    )


def start_session(
    sock: socket.socket,
    base: ConnectionInfo,
    timeouts: Timeouts,
    *,
    framing: str,
    tls_record: HandshakeRecord | None = None,
    server_name: str = "",
    window: int = frames.WINDOW,
    watch: IoWatch | None = None,
) -> RelpSender:
    """Open a RELP session on a connected (and, for TLS, verified) ``sock`` and return its
    sender; ``base`` is what the connection showed (``server``, ``peer_address``, the TLS
    details). Raises ``TransportError`` (``open_session``); the socket stays the caller's to
    close then."""
    offers = open_session(
        sock, base.server, timeouts, tls_record=tls_record, server_name=server_name, watch=watch
    )
    info = frames.RelpConnectionInfo(
        transport="relp",
        server=base.server,
        peer_address=base.peer_address,
        tls_version=base.tls_version,
        cipher=base.cipher,
        server_subject=base.server_subject,
        server_not_after=base.server_not_after,
        client_certificate_sent=base.client_certificate_sent,
        relp_offers=offers,
        window=window,
    )
    return RelpSender(sock, info, timeouts, framing=framing, window=window, watch=watch)


def connect(
    server: ServerSettings,
    client: ClientSettings,
    *,
    timeouts: Timeouts | None = None,
    window: int = frames.WINDOW,
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
    peer = format_address(connected_peer(raw, label))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock: socket.socket = raw
    base = ConnectionInfo("relp", label, peer)
    record = None
    if server.transport == "tls":
        session = tls_handshake(raw, server, client, timeouts, watch=watch)
        base = tls_sender(session, server, label, peer, timeouts).info
        sock = session.sock
        record = session.context.record
    try:
        return start_session(
            sock,
            base,
            timeouts,
            framing=server.framing,
            tls_record=record,
            server_name=server.server_name,
            window=window,
            watch=watch,
        )
    except BaseException:
        with contextlib.suppress(OSError):
            sock.close()
        raise
