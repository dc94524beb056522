"""What the receiver hands out: a ``ReceivedMessage`` and the ``Problem`` codes it can carry.

The codes and types here are shared by the framer, the checks and the listener, which all
import this module (and not each other's) for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024
PROTOCOLS = ("udp", "tcp", "tls")

# Problem codes: stable, short, used for counting and in --json output.
BAD_FRAMING = "bad-framing"
BAD_OCTET_COUNT = "bad-octet-count"
OVERSIZE = "oversize"
TRUNCATED = "truncated"
INVALID_UTF8 = "invalid-utf8"
BAD_PRI = "bad-pri"
BAD_SYSLOG_HEADER = "bad-syslog-header"
NOT_CEF = "not-cef"
BAD_CEF_VERSION = "bad-cef-version"
BAD_CEF_HEADER_COUNT = "bad-cef-header-count"
BAD_HEADER_ESCAPE = "bad-header-escape"
EMPTY_HEADER_FIELD = "empty-header-field"
BAD_CEF_SEVERITY = "bad-cef-severity"
BAD_EXTENSION = "bad-extension"
BAD_EXTENSION_KEY = "bad-extension-key"
BAD_EXTENSION_ESCAPE = "bad-extension-escape"
UNESCAPED_EQUALS = "unescaped-equals"
DUPLICATE_KEY = "duplicate-key"
RAW_NEWLINE = "raw-newline"
UNEXPECTED_TLS = "unexpected-tls"
PROBLEM_CODES = (
    BAD_FRAMING,
    BAD_OCTET_COUNT,
    OVERSIZE,
    TRUNCATED,
    INVALID_UTF8,
    BAD_PRI,
    BAD_SYSLOG_HEADER,
    NOT_CEF,
    BAD_CEF_VERSION,
    BAD_CEF_HEADER_COUNT,
    BAD_HEADER_ESCAPE,
    EMPTY_HEADER_FIELD,
    BAD_CEF_SEVERITY,
    BAD_EXTENSION,
    BAD_EXTENSION_KEY,
    BAD_EXTENSION_ESCAPE,
    UNESCAPED_EQUALS,
    DUPLICATE_KEY,
    RAW_NEWLINE,
    UNEXPECTED_TLS,
)
# Only a part of the message is here (or none of it is syslog): further checks would be noise.
PARTIAL = (OVERSIZE, TRUNCATED, UNEXPECTED_TLS)

# How much of a discarded (oversize) message is kept to show the operator what it was.
SAMPLE_SIZE = 256

# The JSON view's key for each syslog and CEF attribute of a ``ReceivedMessage``, in order.
_SYSLOG_KEYS = (
    ("format", "header_format"),
    ("pri", "pri"),
    ("facility", "facility"),
    ("severity", "severity"),
    ("timestamp", "timestamp"),
    ("host", "host"),
    ("app_name", "app_name"),
    ("procid", "procid"),
    ("msgid", "msgid"),
    ("structured_data", "structured_data"),
)
_CEF_KEYS = (
    ("version", "cef_version"),
    ("vendor", "vendor"),
    ("product", "product"),
    ("device_version", "device_version"),
    ("signature_id", "signature_id"),
    ("name", "name"),
    ("severity", "cef_severity"),
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a message: a stable ``code`` and a short ``detail`` for people."""

    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "detail": self.detail}


@dataclass
class Frame:
    """One message cut out of a stream (or one datagram), with any framing problem."""

    payload: bytes
    framing: str  # "octet-counting", "lf", "datagram", or "unknown"
    problems: list[Problem] = field(default_factory=list)


@dataclass
class ReceivedMessage:
    """A received message, decoded as far as it goes, with everything found wrong with it."""

    raw: bytes
    text: str
    transport: str = ""
    peer: str = ""
    framing: str = ""
    received_at: float = 0.0
    peer_certificate: str | None = None
    # syslog header
    header_format: str | None = None  # "rfc3164" or "rfc5424"
    pri: int | None = None
    facility: int | None = None
    severity: int | None = None  # the syslog severity (0-7)
    timestamp: str | None = None
    host: str | None = None
    app_name: str | None = None
    procid: str | None = None
    msgid: str | None = None
    structured_data: str | None = None
    # CEF
    cef_version: str | None = None
    vendor: str | None = None
    product: str | None = None
    device_version: str | None = None
    signature_id: str | None = None
    name: str | None = None
    cef_severity: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)
    errors: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the raw bytes as text, undecodable bytes replaced)."""
        cef: dict[str, Any] = {key: getattr(self, name) for key, name in _CEF_KEYS}
        cef["extensions"] = dict(self.extensions)
        return {
            "received_at": self.received_at,
            "transport": self.transport,
            "peer": self.peer,
            "peer_certificate": self.peer_certificate,
            "framing": self.framing,
            "size": len(self.raw),
            "valid": self.valid,
            "errors": [p.to_dict() for p in self.errors],
            "notes": list(self.notes),
            "syslog": {key: getattr(self, name) for key, name in _SYSLOG_KEYS},
            "cef": cef,
            "message": self.text,
        }


def preview(text: str, limit: int = 60) -> str:
    """``text`` quoted for a problem's detail, cut at ``limit`` characters."""
    shown = text if len(text) <= limit else text[:limit] + "…"
    return repr(shown)
