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

The modules: ``frames`` (the codec, the constants), ``sender`` (the session of a sender) and
``session`` (opening it, ``connect``); this package re-exports their public names.
"""

from __future__ import annotations

from azs_syslog.transport.relp.frames import (
    HEADER,
    MAX_FRAME_DATA,
    MAX_HEADER,
    MAX_TXNR,
    PLAIN_PORT_FIX,
    QUICKACK,
    RECV_SIZE,
    RELP_VERSION,
    SOFTWARE,
    WINDOW,
    Frame,
    FrameReader,
    ProtocolViolation,
    RelpConnectionInfo,
    describe_offers,
    encode,
    next_txnr,
    offers_text,
    parse_response,
    unframe,
)
from azs_syslog.transport.relp.sender import RelpSender
from azs_syslog.transport.relp.session import connect, open_session, start_session

__all__ = [
    "HEADER",
    "MAX_FRAME_DATA",
    "MAX_HEADER",
    "MAX_TXNR",
    "PLAIN_PORT_FIX",
    "QUICKACK",
    "RECV_SIZE",
    "RELP_VERSION",
    "SOFTWARE",
    "WINDOW",
    "Frame",
    "FrameReader",
    "ProtocolViolation",
    "RelpConnectionInfo",
    "RelpSender",
    "connect",
    "describe_offers",
    "encode",
    "next_txnr",
    "offers_text",
    "open_session",
    "parse_response",
    "start_session",
    "unframe",
]
