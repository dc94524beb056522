"""The lab receiver behind ``azs-syslog listen``: framing detection and strict message checks.

This is a tool for labs and troubleshooting, not a SIEM: it keeps nothing, and a message it
has shown is gone. It answers one question, "is what arrives here well-formed CEF inside
syslog?", for the four transports of SPEC section 2.

Three layers, each usable on its own, over the shared types of ``message``:

* ``framing.StreamFramer`` splits a TCP/TLS byte stream into messages, detecting octet
  counting or LF framing per connection, with memory bounded by the maximum message size.
* ``checks.parse_message`` checks and decodes one message (the syslog header there, the CEF
  header and extensions in ``cef``); every failure is a ``Problem`` with a stable code, and it
  never raises.
* ``listener.Listener`` serves UDP, TCP or TLS (optionally requiring a client certificate) on
  a background thread and hands out ``ReceivedMessage`` objects through a queue or a
  callback; ``summary.Counts`` is its tally.

The problem codes themselves (``BAD_PRI`` ...) are constants of ``message``.
"""

from __future__ import annotations

from azs_syslog.lab.receiver.checks import parse_message
from azs_syslog.lab.receiver.framing import StreamFramer
from azs_syslog.lab.receiver.listener import Listener, server_ssl_context
from azs_syslog.lab.receiver.message import (
    DEFAULT_MAX_MESSAGE_SIZE,
    PROBLEM_CODES,
    PROTOCOLS,
    Frame,
    Problem,
    ReceivedMessage,
)
from azs_syslog.lab.receiver.summary import Counts, format_peer

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "PROBLEM_CODES",
    "PROTOCOLS",
    "Counts",
    "Frame",
    "Listener",
    "Problem",
    "ReceivedMessage",
    "StreamFramer",
    "format_peer",
    "parse_message",
    "server_ssl_context",
]
