"""The words of the configuration, defined once for the whole package: the syslog and CEF
choices (each a ``Literal`` type and the tuple of its values, derived from it), the month names
of the RFC 3164 timestamp, and the limits and defaults of the numeric settings."""

from __future__ import annotations

from typing import Final, Literal, get_args

MessageFormat = Literal["rfc3164", "rfc5424"]
# The framings a configuration may name (TCP and TLS); "none" is what a message sent over UDP,
# or shown by ``format-event``, gets: one message, no framing.
ConfigFraming = Literal["octet-counting", "lf"]
Framing = Literal[ConfigFraming, "none"]
OutputSeverity = Literal["Default", "Verbose"]
# "0" is valid CEF; the source writes "0.0", offered for byte-for-byte fidelity [project].
CefVersion = Literal["0", "0.0"]

MESSAGE_FORMATS: Final[tuple[MessageFormat, ...]] = get_args(MessageFormat)
CONFIG_FRAMINGS: Final[tuple[ConfigFraming, ...]] = get_args(ConfigFraming)
FRAMINGS: Final[tuple[Framing, ...]] = get_args(Framing)
OUTPUT_SEVERITIES: Final[tuple[OutputSeverity, ...]] = get_args(OutputSeverity)
CEF_VERSIONS: Final[tuple[CefVersion, ...]] = get_args(CefVersion)

# The months of an RFC 3164 timestamp (``Nov  6 09:05:01``), January first.
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

CONFIG_VERSION: Final = 1
DEFAULT_FACILITY: Final = 10  # authpriv
DEFAULT_MAX_MESSAGE_SIZE: Final = 8192
EXPIRY_WARNING_DAYS: Final = 30  # a client certificate closer to its end than this is warned about
# RFC 3164 / RFC 5424: every receiver must accept 480 octets (below it no message is sure to fit
# its header); above 64 KiB - 1 a message stops being a syslog message anyone accepts. A UDP
# datagram carries at most 65507 bytes over IPv4.
MIN_MESSAGE_SIZE: Final = 480
MAX_MESSAGE_SIZE: Final = 65535
MAX_UDP_MESSAGE_SIZE: Final = 65507
# UDP pacing, in datagrams (events) a second; 0 sends as fast as the socket takes them. UDP has
# no flow control: a receiver that falls behind drops datagrams in its kernel buffer, unseen.
# The default is what a stock rsyslog on loopback (default receive buffer) absorbs without loss,
# with a margin (docs/operations.md, "UDP pacing").
DEFAULT_UDP_RATE: Final = 2000
MAX_UDP_RATE: Final = 1_000_000
MAX_HEARTBEAT_INTERVAL: Final = 86400
# Failover: seconds of failed connections to the primary server before the forwarder delivers
# to the failover server (docs/operations.md, "Failover"). Long enough that a server restart
# or a short network blip does not split the event stream between two receivers.
DEFAULT_FAILOVER_AFTER: Final = 60
MAX_FAILOVER_AFTER: Final = 86400
