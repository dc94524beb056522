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

The modules, from the bottom up: ``base`` (the interface, ``IoWatch``, constants), ``tls``
(context, name check, explanations), ``connecting`` (the steps), ``stream`` (TCP/TLS) and
``udp`` (the senders), ``relp`` (RELP over the same steps); this module re-exports the names
callers use and strings the steps together in ``connect``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from azs_syslog.transport.base import (
    CLIENT_CERTIFICATE_VERDICT_WAIT,
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE,
    KEEPALIVE_INTERVAL,
    SIOCOUTQ,
    SLICE,
    TLS_WRITE_CHUNK,
    UDP_BURST_SECONDS,
    UDP_SEND_BUFFER,
    Address,
    ConnectionInfo,
    IoWatch,
    Sender,
    StopRequested,
    Timeouts,
    connected_peer,
    format_address,
    server_label,
)
from azs_syslog.transport.connecting import (
    TlsSession,
    enable_keepalive,
    open_stream,
    resolve,
    tls_handshake,
)
from azs_syslog.transport.stream import StreamSender, tls_sender
from azs_syslog.transport.udp import DatagramSender, TokenBucket, connect_udp

if TYPE_CHECKING:
    from azs_syslog.config import ClientSettings, ServerSettings

__all__ = [
    "CLIENT_CERTIFICATE_VERDICT_WAIT",
    "KEEPALIVE_COUNT",
    "KEEPALIVE_IDLE",
    "KEEPALIVE_INTERVAL",
    "SIOCOUTQ",
    "SLICE",
    "TLS_WRITE_CHUNK",
    "UDP_BURST_SECONDS",
    "UDP_SEND_BUFFER",
    "Address",
    "ConnectionInfo",
    "DatagramSender",
    "IoWatch",
    "Sender",
    "StopRequested",
    "StreamSender",
    "Timeouts",
    "TlsSession",
    "TokenBucket",
    "connect",
    "enable_keepalive",
    "format_address",
    "open_stream",
    "resolve",
    "server_label",
    "tls_handshake",
    "tls_sender",
]

DEFAULT_TIMEOUTS = Timeouts()


def connect(
    server: ServerSettings,
    client: ClientSettings,
    *,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
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
        return connect_udp(server, addresses, label, watch, timeouts)
    raw = open_stream(server, addresses, timeouts.connect, watch=watch)
    peer = format_address(connected_peer(raw, label))
    if server.transport == "tcp":
        return StreamSender(raw, ConnectionInfo("tcp", label, peer), timeouts, watch=watch)
    session = tls_handshake(raw, server, client, timeouts, watch=watch)
    return tls_sender(session, server, label, peer, timeouts, watch=watch)
