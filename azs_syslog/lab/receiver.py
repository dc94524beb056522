"""The lab receiver behind ``azs-syslog listen``: framing detection and strict message checks.

This is a tool for labs and troubleshooting, not a SIEM: it keeps nothing, and a message it
has shown is gone. It answers one question, "is what arrives here well-formed CEF inside
syslog?", for the four transports of SPEC section 2.

Three layers, each usable on its own:

* ``StreamFramer`` splits a TCP/TLS byte stream into messages. The framing is detected per
  connection from the first byte: a digit means octet counting (RFC 6587 ``LEN SP MSG``), ``<``
  means LF (non-transparent) framing. Anything else, a bad octet count or an oversize message
  is flagged; the framer then resynchronises on the next LF and detects again. Memory is
  bounded by the maximum message size whatever arrives.
* ``parse_message`` checks and decodes one message: the syslog header (PRI, then RFC 3164 or
  RFC 5424) and the CEF payload (seven header fields, only ``\\\\`` and ``\\|`` escapes in the
  header; ``key=value`` extensions with keys ``[A-Za-z0-9_]+`` and only the escapes ``\\\\``
  ``\\=`` ``\\n`` ``\\r`` in values). Every failure is a ``Problem`` with a stable code; the
  parser never raises on any input.
* ``Listener`` serves UDP, TCP or TLS (optionally requiring a client certificate) on a
  background thread and hands out ``ReceivedMessage`` objects through a queue or a callback.
"""

from __future__ import annotations

import errno
import queue
import re
import selectors
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azs_syslog.config.vocabulary import MONTHS as _MONTHS
from azs_syslog.errors import CertificateError, TransportError

if TYPE_CHECKING:
    import ssl

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
_PARTIAL = (OVERSIZE, TRUNCATED, UNEXPECTED_TLS)
# OpenSSL's reasons when the client does not speak TLS at all.
_NOT_TLS_REASONS = ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNKNOWN_PROTOCOL", "RECORD_LAYER")

# How much of a discarded (oversize) message is kept to show the operator what it was.
_SAMPLE_SIZE = 256
# RFC 6587: MSG-LEN = NONZERO-DIGIT *DIGIT. Nine digits is far beyond any sane message.
_MAX_COUNT_DIGITS = 9

_PRI_RE = re.compile(r"<(\d{1,3})>")
_RFC3164_RE = re.compile(
    r"(?P<mon>[A-Za-z]{3}) (?P<day>[ 0-9]\d) (?P<hh>\d\d):(?P<mm>\d\d):(?P<ss>\d\d) "
    r"(?P<host>\S+) (?P<msg>.*)",
    re.DOTALL,
)
_RFC5424_RE = re.compile(
    r"(?P<version>\d{1,2}) (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) "
    r"(?P<msgid>\S+) (?P<rest>.*)",
    re.DOTALL,
)
_RFC3339_RE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)",
)
_PRINTUSASCII_RE = re.compile(r"[!-~]+")
# SD-NAME: printable US-ASCII except '=', SP, ']' and '"'.
_SD_NAME_RE = re.compile(r"[!#-<>-\\^-~]{1,32}")
_SD_PARAM_RE = re.compile(r' [!#-<>-\\^-~]{1,32}="')
# An RFC 3164 TAG ("app:" or "app[123]:") that some relays put before the CEF payload.
_TAG_RE = re.compile(r"[A-Za-z0-9_./-]{1,48}(?:\[[^\]\s]{0,32}\])?: ?(?=CEF:)")
_KEY_RE = re.compile(r"[A-Za-z0-9_]+")
_CEF_SEVERITY_NAMES = ("unknown", "low", "medium", "high", "very-high")
_HEADER_NAMES = (
    "Version",
    "Device Vendor",
    "Device Product",
    "Device Version",
    "Signature ID",
    "Name",
    "Severity",
)
_EXTENSION_ESCAPES = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}


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
            "syslog": {
                "format": self.header_format,
                "pri": self.pri,
                "facility": self.facility,
                "severity": self.severity,
                "timestamp": self.timestamp,
                "host": self.host,
                "app_name": self.app_name,
                "procid": self.procid,
                "msgid": self.msgid,
                "structured_data": self.structured_data,
            },
            "cef": {
                "version": self.cef_version,
                "vendor": self.vendor,
                "product": self.product,
                "device_version": self.device_version,
                "signature_id": self.signature_id,
                "name": self.name,
                "severity": self.cef_severity,
                "extensions": dict(self.extensions),
            },
            "message": self.text,
        }


# --------------------------------------------------------------------------------------------
# Framing


class StreamFramer:
    """Cut a TCP/TLS byte stream into messages; detect the framing per connection.

    ``feed`` returns the complete frames so far, ``close`` whatever is left when the peer goes.
    Never raises, never holds more than about ``max_size`` bytes.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_size = max_size
        self.mode: str | None = None  # None until detected (again, after an error)
        self._buffer = bytearray()
        self._skip = 0  # bytes of an oversize octet-counted message still to discard
        self._discard_line = False  # discarding the rest of an oversize LF line
        self._pending: Problem | None = None  # framing problem carried by the next LF frame
        self.abandoned = False  # the peer is not speaking syslog at all: close the connection
        self._at_start = True  # nothing of the connection consumed yet
        self._scanned = 0  # bytes of the buffer already searched for LF

    def feed(self, data: bytes) -> list[Frame]:
        if self.abandoned:
            return []
        self._buffer += data
        frames: list[Frame] = []
        while self._step(frames):
            pass
        return frames

    def close(self) -> list[Frame]:
        """The peer has closed: report a message left incomplete."""
        frames: list[Frame] = []
        buffer = bytes(self._buffer)
        self._buffer.clear()
        if self._discard_line or self._skip:
            return frames
        if self.mode == "octet-counting" and buffer:
            frames.append(
                Frame(
                    buffer,
                    "octet-counting",
                    [Problem(TRUNCATED, "the connection closed in the middle of a message")],
                )
            )
        elif buffer.rstrip(b"\r\n") or self._pending:
            # LF framing: a last message without its LF is accepted, as rsyslog does.
            problems = [self._pending] if self._pending else []
            frames.append(Frame(buffer.rstrip(b"\r\n"), self.mode or "lf", problems))
        self._pending = None
        return frames

    def _step(self, frames: list[Frame]) -> bool:
        """Consume what can be consumed; False when more data is needed."""
        buffer = self._buffer
        if self._skip:
            count = min(self._skip, len(buffer))
            del buffer[:count]
            self._skip -= count
            return bool(buffer) and not self._skip
        if self._discard_line:
            end = buffer.find(b"\n")
            if end < 0:
                buffer.clear()
                return False
            del buffer[: end + 1]
            self._discard_line = False
            self.mode = None
            return True
        if not buffer:
            return False
        if self.mode is None:
            first = buffer[0]
            if first in b"\r\n":  # stray line ends between messages
                del buffer[:1]
                return True
            at_start, self._at_start = self._at_start, False
            if first == 0x16 and at_start:  # a TLS handshake record
                self._buffer.clear()
                self.abandoned = True
                frames.append(
                    Frame(
                        b"",
                        "unknown",
                        [
                            Problem(
                                UNEXPECTED_TLS,
                                "the peer started a TLS handshake on a plain TCP listener; "
                                "listen with --protocol tls (connection closed)",
                            )
                        ],
                    )
                )
                return False
            if 0x30 <= first <= 0x39:
                self.mode = "octet-counting"
            elif first == 0x3C:  # '<'
                self.mode = "lf"
            else:
                self.mode = "lf"
                self._pending = Problem(
                    BAD_FRAMING,
                    f"a message starts with {_show_byte(first)}, neither a digit (octet "
                    "counting) nor '<' (LF framing); resynchronised at the next LF",
                )
        if self.mode == "octet-counting":
            return self._step_octet_counting(frames)
        return self._step_lf(frames)

    def _step_octet_counting(self, frames: list[Frame]) -> bool:
        buffer = self._buffer
        head = bytes(buffer[: _MAX_COUNT_DIGITS + 1])
        digits = len(head) - len(head.lstrip(b"0123456789"))
        if digits == len(head) and digits <= _MAX_COUNT_DIGITS:
            return False  # the length is still arriving
        problem: str | None = None
        if digits == 0:
            problem = f"expected an octet count, found {_show_byte(head[0])}"
        elif digits > _MAX_COUNT_DIGITS:
            problem = f"octet count longer than {_MAX_COUNT_DIGITS} digits"
        elif head[digits] != 0x20:
            problem = f"octet count followed by {_show_byte(head[digits])}, not a space"
        elif head[0] == 0x30:
            problem = f"octet count {head[:digits].decode()!r} is zero or has a leading zero"
        if problem is not None:
            # The count is unusable, so the message boundary is lost: resynchronise on LF.
            self.mode = "lf"
            self._pending = Problem(BAD_OCTET_COUNT, problem + "; resynchronised at the next LF")
            return True
        count = int(head[:digits])
        start = digits + 1
        if count > self.max_size:
            sample = bytes(buffer[start : start + _SAMPLE_SIZE])
            frames.append(
                Frame(
                    sample,
                    "octet-counting",
                    [
                        Problem(
                            OVERSIZE,
                            f"{count} bytes announced, over the limit of {self.max_size}; "
                            "discarded",
                        )
                    ],
                )
            )
            del buffer[:start]
            self._skip = count
            return True
        if len(buffer) < start + count:
            return False
        frames.append(Frame(bytes(buffer[start : start + count]), "octet-counting"))
        del buffer[: start + count]
        return True

    def _step_lf(self, frames: list[Frame]) -> bool:
        buffer = self._buffer
        # Resume the search where the last one stopped: a line arriving a byte at a time must
        # not be scanned again from its start on every byte.
        end = buffer.find(b"\n", self._scanned, self.max_size + 2)
        if end < 0:
            self._scanned = len(buffer)
            if len(buffer) > self.max_size + 1:
                self._scanned = 0
                frames.append(self._oversize_lf(bytes(buffer[:_SAMPLE_SIZE])))
                buffer.clear()
                self._discard_line = True
            return False
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        self._scanned = 0
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.max_size:
            frames.append(self._oversize_lf(line[:_SAMPLE_SIZE]))
            self.mode = None
            return True
        problems: list[Problem] = []
        if self._pending is not None:
            problems.append(self._pending)
            self._pending = None
            self.mode = None  # detect the framing again from the next message
        if line or problems:
            frames.append(Frame(line, "lf", problems))
        return True

    def _oversize_lf(self, sample: bytes) -> Frame:
        problems = [Problem(OVERSIZE, f"no LF within {self.max_size} bytes; line discarded")]
        if self._pending is not None:
            problems.insert(0, self._pending)
            self._pending = None
        return Frame(sample, "lf", problems)


def _show_byte(value: int) -> str:
    char = chr(value)
    return repr(char) if char.isprintable() and value < 0x80 else f"byte 0x{value:02x}"


# --------------------------------------------------------------------------------------------
# Message checks


def parse_message(
    payload: bytes,
    *,
    transport: str = "",
    peer: str = "",
    framing: str = "",
    problems: list[Problem] | None = None,
    received_at: float | None = None,
    peer_certificate: str | None = None,
) -> ReceivedMessage:
    """Check and decode one syslog message carrying CEF. Never raises."""
    if payload.endswith(b"\n") and framing in ("datagram", "octet-counting"):
        # Many senders end a datagram or an octet-counted message with LF; it is not content.
        payload = payload[:-2] if payload.endswith(b"\r\n") else payload[:-1]
    errors = list(problems or [])
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = payload.decode("utf-8", errors="replace")
        errors.append(Problem(INVALID_UTF8, f"invalid UTF-8 at byte {exc.start}"))
    message = ReceivedMessage(
        raw=payload,
        text=text,
        transport=transport,
        peer=peer,
        framing=framing,
        received_at=time.time() if received_at is None else received_at,
        peer_certificate=peer_certificate,
        errors=errors,
    )
    if any(p.code in _PARTIAL for p in errors):
        return message
    try:
        _check(message, text)
    except Exception as exc:  # pragma: no cover - a bug here must not stop the receiver
        message.errors.append(Problem("internal-error", f"{type(exc).__name__}: {exc}"))
    return message


def _check(message: ReceivedMessage, text: str) -> None:
    if not text:
        message.errors.append(Problem(BAD_PRI, "empty message"))
        return
    payload = _check_syslog_header(message, text)
    if payload is None:
        return
    if message.header_format == "rfc3164" and not payload.startswith("CEF:"):
        tag = _TAG_RE.match(payload)
        if tag:
            message.notes.append(f"syslog TAG {tag.group(0).strip()!r} before the CEF payload")
            payload = payload[tag.end() :]
    if not payload.startswith("CEF:"):
        message.errors.append(
            Problem(NOT_CEF, f"the message does not start with 'CEF:': {_preview(payload)}")
        )
        return
    _check_cef(message, payload[4:])


def _check_syslog_header(message: ReceivedMessage, text: str) -> str | None:
    """Check PRI and the RFC 3164 / 5424 header; return the MSG part, or None to stop."""
    pri_match = _PRI_RE.match(text)
    if pri_match is None:
        message.errors.append(
            Problem(BAD_PRI, f"no <PRI> at the start of the message: {_preview(text)}")
        )
        return _fallback_cef(text)
    digits = pri_match.group(1)
    pri = int(digits)
    if len(digits) > 1 and digits.startswith("0"):
        message.errors.append(Problem(BAD_PRI, f"PRI <{digits}> has a leading zero"))
    elif pri > 191:
        message.errors.append(Problem(BAD_PRI, f"PRI <{digits}> is out of range 0-191"))
    else:
        message.pri = pri
        message.facility, message.severity = divmod(pri, 8)
    rest = text[pri_match.end() :]
    if rest[:1].isdigit() and re.match(r"\d{1,2} ", rest):
        return _check_rfc5424(message, rest, text)
    return _check_rfc3164(message, rest, text)


def _check_rfc3164(message: ReceivedMessage, rest: str, text: str) -> str | None:
    match = _RFC3164_RE.match(rest)
    problem: str | None = None
    if match is None:
        problem = f"expected 'Mmm dd hh:mm:ss HOST ' after the PRI: {_preview(rest)}"
    else:
        day = match.group("day").strip()
        if match.group("mon") not in _MONTHS:
            problem = f"{match.group('mon')!r} is not a month (Jan..Dec)"
        elif not day.isdigit() or not 1 <= int(day) <= 31:
            problem = f"day {match.group('day')!r} is out of range"
        elif (
            int(match.group("hh")) > 23
            or int(match.group("mm")) > 59
            or int(match.group("ss")) > 60
        ):
            problem = f"time {match.group('hh')}:{match.group('mm')}:{match.group('ss')} is invalid"
        elif match.group("host").startswith("CEF:"):
            problem = "no HOSTNAME between the timestamp and the CEF payload"
        elif not match.group("host").isprintable():
            problem = f"HOSTNAME {_preview(match.group('host'))} has control characters"
    if problem is not None or match is None:
        message.errors.append(Problem(BAD_SYSLOG_HEADER, f"RFC 3164 header: {problem}"))
        return _fallback_cef(text)
    message.header_format = "rfc3164"
    if match.group("day").startswith("0"):
        message.notes.append("day of month padded with 0; RFC 3164 pads it with a space")
    message.timestamp = rest[:15]
    message.host = match.group("host")
    return match.group("msg")


def _check_rfc5424(message: ReceivedMessage, rest: str, text: str) -> str | None:
    match = _RFC5424_RE.match(rest)
    problem: str | None = None
    msg = ""
    if match is None:
        problem = f"expected 'VERSION TIMESTAMP HOST APP PROCID MSGID SD': {_preview(rest)}"
    else:
        fields = match.groupdict()
        limits = (("host", 255), ("app", 48), ("procid", 128), ("msgid", 32))
        if fields["version"] != "1":
            problem = f"version {fields['version']!r} is not 1"
        elif fields["ts"] != "-" and not _valid_rfc3339(fields["ts"]):
            problem = f"timestamp {fields['ts']!r} is not RFC 3339"
        else:
            for name, limit in limits:
                value = fields[name]
                if len(value) > limit or not _PRINTUSASCII_RE.fullmatch(value):
                    problem = f"{name.upper()} {_preview(value)} is invalid"
                    break
        if problem is None:
            sd, msg_part, sd_problem = _split_structured_data(fields["rest"])
            if sd_problem is not None:
                problem = f"STRUCTURED-DATA: {sd_problem}"
            else:
                message.structured_data = sd
                msg = msg_part
    if problem is not None or match is None:
        message.errors.append(Problem(BAD_SYSLOG_HEADER, f"RFC 5424 header: {problem}"))
        return _fallback_cef(text)
    message.header_format = "rfc5424"
    message.timestamp = match.group("ts")
    message.host = match.group("host")
    message.app_name = match.group("app")
    message.procid = match.group("procid")
    message.msgid = match.group("msgid")
    if msg.startswith("\ufeff"):
        message.notes.append("MSG starts with a UTF-8 BOM")
        msg = msg[1:]
    return msg


def _valid_rfc3339(value: str) -> bool:
    import datetime as dt

    if not _RFC3339_RE.fullmatch(value):
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _split_structured_data(rest: str) -> tuple[str, str, str | None]:
    """Split ``SD [SP MSG]``; return (sd, msg, problem)."""
    if rest.startswith("-"):
        end = 1
    elif rest.startswith("["):
        end = 0
        while end < len(rest) and rest[end] == "[":
            end = _skip_sd_element(rest, end)
            if end < 0:
                return "", "", "unterminated or malformed [element]"
    else:
        return "", "", f"expected '-' or '[': {_preview(rest)}"
    if end == len(rest):
        return rest, "", None
    if rest[end] != " ":
        return "", "", f"expected a space after the STRUCTURED-DATA, found {rest[end]!r}"
    return rest[:end], rest[end + 1 :], None


def _skip_sd_element(text: str, start: int) -> int:
    """Index after the SD-ELEMENT at ``start`` (which is '['), or -1 if it is malformed."""
    sd_id = _SD_NAME_RE.match(text, start + 1)
    if sd_id is None:
        return -1
    index = sd_id.end()
    while index < len(text) and text[index] == " ":
        param = _SD_PARAM_RE.match(text, index)
        if param is None:
            return -1
        index = param.end()
        while index < len(text) and text[index] != '"':
            index += 2 if text[index] == "\\" else 1
        if index >= len(text):
            return -1
        index += 1  # the closing quote
    if index < len(text) and text[index] == "]":
        return index + 1
    return -1


def _fallback_cef(text: str) -> str | None:
    """After a bad syslog header, still decode a CEF payload if there is one."""
    index = text.find("CEF:")
    return text[index:] if index >= 0 else None


def _check_cef(message: ReceivedMessage, body: str) -> None:
    """Check ``body`` (the text after ``CEF:``): seven header fields, then the extensions."""
    fields: list[str] = []
    current: list[str] = []
    bad_escapes: list[str] = []
    index = 0
    while index < len(body) and len(fields) < 7:
        char = body[index]
        if char == "\\":
            following = body[index + 1 : index + 2]
            if following in ("\\", "|"):
                current.append(following)
                index += 2
                continue
            bad_escapes.append(f"\\{following}" if following else "\\ at the end")
            current.append(char)
        elif char == "|":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    if bad_escapes:
        message.errors.append(
            Problem(
                BAD_HEADER_ESCAPE,
                f"invalid escape {bad_escapes[0]!r} in the CEF header (only \\\\ and \\| are "
                "allowed)",
            )
        )
    if len(fields) < 7:
        message.errors.append(
            Problem(
                BAD_CEF_HEADER_COUNT,
                f"the CEF header has {len(fields)} of 7 '|'-terminated fields (Version, "
                "Device Vendor, Device Product, Device Version, Signature ID, Name, Severity)",
            )
        )
    for name, value in zip(_HEADER_NAMES, fields, strict=False):
        _set_header_field(message, name, value)
    if any("\r" in value or "\n" in value for value in fields):
        message.errors.append(Problem(RAW_NEWLINE, "a CR or LF inside a CEF header field"))
    if len(fields) == 7:
        _check_extensions(message, body[index:])


def _set_header_field(message: ReceivedMessage, name: str, value: str) -> None:
    if name == "Version":
        message.cef_version = value
        if value == "0.0":
            message.notes.append("CEF version written as 0.0 (the source's form); strict is 0")
        elif value != "0":
            message.errors.append(
                Problem(BAD_CEF_VERSION, f"CEF version {value!r}, expected 0 (or 0.0)")
            )
        return
    if name == "Severity":
        message.cef_severity = value
        known = value.isdigit() and int(value) <= 10 and (value == "0" or value[0] != "0")
        if not known and value.lower() not in _CEF_SEVERITY_NAMES:
            message.errors.append(
                Problem(
                    BAD_CEF_SEVERITY,
                    f"severity {value!r} is not 0-10 or Unknown/Low/Medium/High/Very-High",
                )
            )
        return
    attribute = {
        "Device Vendor": "vendor",
        "Device Product": "product",
        "Device Version": "device_version",
        "Signature ID": "signature_id",
        "Name": "name",
    }[name]
    setattr(message, attribute, value)
    if not value and name != "Device Version":
        message.errors.append(Problem(EMPTY_HEADER_FIELD, f"the CEF {name} is empty"))


def _check_extensions(message: ReceivedMessage, text: str) -> None:
    """Decode ``key=value`` pairs strictly; record each problem once per kind."""
    chars: list[str] = []  # decoded characters
    literal: list[bool] = []  # True for a character that came from an escape
    bad_escapes: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            following = text[index + 1 : index + 2]
            decoded = _EXTENSION_ESCAPES.get(following)
            if decoded is None:
                bad_escapes.append(f"\\{following}" if following else "\\ at the end")
                chars.append("\\")
                literal.append(True)
                index += 1
                continue
            chars.append(decoded)
            literal.append(True)
            index += 2
            continue
        chars.append(char)
        literal.append(False)
        index += 1
    found: dict[str, Problem] = {}

    def flag(code: str, detail: str) -> None:
        found.setdefault(code, Problem(code, detail))

    if bad_escapes:
        flag(
            BAD_EXTENSION_ESCAPE,
            f"invalid escape {bad_escapes[0]!r} in an extension value (only \\\\ \\= \\n \\r "
            "are allowed)",
        )

    pairs: list[tuple[str, int, int]] = []  # key, value start, value end (exclusive)
    value_start: int | None = None
    start = 0
    while start < len(chars) and chars[start] == " " and not literal[start]:
        start += 1
    last_space = -1  # kept as we go: searching back from each '=' would be quadratic
    for position, char in enumerate(chars):
        if literal[position] or char not in " =":
            continue
        if char == " ":
            last_space = position
            continue
        lower = start if value_start is None else value_start
        space = last_space if last_space >= lower else lower - 1
        if value_start is None:
            if space >= lower:
                flag(
                    BAD_EXTENSION,
                    f"text before the first key: {_preview(''.join(chars[start:space]))}",
                )
            key_start = space + 1
        else:
            if space < lower or space == position - 1:
                flag(
                    UNESCAPED_EQUALS,
                    f"an unescaped '=' inside the value of {pairs[-1][0]!r} (write \\=)",
                )
                continue
            key_start = space + 1
            key, previous_start, _ = pairs[-1]
            pairs[-1] = (key, previous_start, space)
        key = "".join(chars[key_start:position])
        if not _KEY_RE.fullmatch(key) or any(literal[key_start:position]):
            flag(
                BAD_EXTENSION_KEY, f"invalid extension key {_preview(key)} (keys are [A-Za-z0-9_]+)"
            )
        pairs.append((key, position + 1, len(chars)))
        value_start = position + 1
    if not pairs and "".join(chars).strip():
        flag(BAD_EXTENSION, f"no key=value pairs in the extension: {_preview(text)}")
    for key, value_begin, value_end in pairs:
        raw_value = chars[value_begin:value_end]
        flags = literal[value_begin:value_end]
        while raw_value and raw_value[-1] == " " and not flags[-1]:
            raw_value.pop()
            flags.pop()
        if any(c in "\r\n" and not lit for c, lit in zip(raw_value, flags, strict=True)):
            flag(RAW_NEWLINE, f"an unescaped CR or LF in the value of {key!r} (write \\r \\n)")
        if key in message.extensions:
            flag(DUPLICATE_KEY, f"extension key {key!r} appears more than once")
            continue
        message.extensions[key] = "".join(raw_value)
    message.errors.extend(found.values())


def _preview(text: str, limit: int = 60) -> str:
    shown = text if len(text) <= limit else text[:limit] + "…"
    return repr(shown)


# --------------------------------------------------------------------------------------------
# Server


def server_ssl_context(
    cert_file: str, key_file: str, client_ca: str | None = None
) -> ssl.SSLContext:
    """A TLS ≥ 1.2 server context; with ``client_ca``, a client certificate is required."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2

    def no_password() -> bytes:
        raise CertificateError(
            f"the server key {key_file} is encrypted",
            fix="give an unencrypted PEM key to this lab tool",
        )

    try:
        context.load_cert_chain(cert_file, key_file, password=no_password)
    except (OSError, ssl.SSLError) as exc:
        raise CertificateError(
            f"cannot load the server certificate {cert_file} and key {key_file}: "
            f"{getattr(exc, 'strerror', None) or exc}",
            fix="give a PEM certificate (with its chain) and the matching PEM key",
        ) from exc
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise CertificateError(
                f"cannot load the client CA bundle {client_ca}: "
                f"{getattr(exc, 'strerror', None) or exc}",
                fix="give the PEM certificate of the CA that issues the client certificates",
            ) from exc
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass
class Counts:
    """What the listener has seen so far."""

    received: int = 0
    valid: int = 0
    malformed: int = 0
    dropped: int = 0  # not taken from a full queue in time
    connections: int = 0
    handshake_failures: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_transport: Counter[str] = field(default_factory=Counter)
    by_peer: Counter[str] = field(default_factory=Counter)
    malformed_by_peer: Counter[str] = field(default_factory=Counter)
    connection_errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "valid": self.valid,
            "malformed": self.malformed,
            "dropped": self.dropped,
            "connections": self.connections,
            "handshake_failures": self.handshake_failures,
            "malformed_by_reason": dict(self.by_reason),
            "by_transport": dict(self.by_transport),
            "by_peer": dict(self.by_peer),
            "malformed_by_peer": dict(self.malformed_by_peer),
        }


_BIND_FAILURES = {
    errno.EADDRINUSE: (
        "in-use",
        "another program has this port: choose a free one with --port (0 picks any)",
    ),
    errno.EACCES: (
        "permission",
        "ports below 1024 need privileges: use a higher --port and point the sender at it",
    ),
    errno.EADDRNOTAVAIL: (
        "address",
        "give --bind an address of this machine (127.0.0.1 or ::1 for a lab)",
    ),
}


def format_peer(address: Any) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _peer_host(peer: str) -> str:
    return peer.rsplit(":", 1)[0].strip("[]")


class Listener:
    """Receive syslog messages on one address and check each of them.

    ``start()`` binds and serves on background threads; messages arrive in ``messages`` (a
    bounded queue; read it with ``get``/``collect``) or, when ``on_message`` is given, through
    that callback (called from the serving threads, one call at a time). ``stop()`` closes
    everything. ``port`` is the bound port (useful with port 0).
    """

    def __init__(
        self,
        protocol: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        on_message: Callable[[ReceivedMessage], None] | None = None,
        on_connection_error: Callable[[str], None] | None = None,
        queue_size: int = 100_000,
        max_connections: int = 64,
        handshake_timeout: float = 10.0,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")
        if (protocol == "tls") != (ssl_context is not None):
            raise ValueError("an ssl_context is needed for tls, and only for tls")
        self.protocol = protocol
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.max_message_size = max_message_size
        self.on_message = on_message
        self.on_connection_error = on_connection_error
        self.messages: queue.Queue[ReceivedMessage] = queue.Queue(maxsize=queue_size)
        self.counts = Counts()
        self.max_connections = max_connections
        self.handshake_timeout = handshake_timeout
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._workers: set[threading.Thread] = set()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Listener:
        """Bind, then serve on a background thread. Raises ``TransportError`` if binding fails."""
        self._socket = self._bind()
        self.port = self._socket.getsockname()[1]
        self._thread = threading.Thread(
            target=self._serve, name=f"azs-syslog-listen-{self.protocol}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        for worker in list(self._workers):
            worker.join(max(0.0, deadline - time.monotonic()))
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> Listener:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return format_peer((self.host, self.port))

    # -- consuming ----------------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> ReceivedMessage:
        """The next message; raises ``queue.Empty`` after ``timeout`` seconds."""
        return self.messages.get(timeout=timeout)

    def collect(self, count: int, timeout: float) -> list[ReceivedMessage]:
        """Up to ``count`` messages, waiting at most ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        collected: list[ReceivedMessage] = []
        while len(collected) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                collected.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                break
        return collected

    # -- serving ------------------------------------------------------------------------------

    def _bind(self) -> socket.socket:
        kind = socket.SOCK_DGRAM if self.protocol == "udp" else socket.SOCK_STREAM
        try:
            family, _, _, _, address = socket.getaddrinfo(self.host, self.port, type=kind)[0]
            sock = socket.socket(family, kind)
        except OSError as exc:
            raise TransportError(
                f"cannot listen on {self.host}: {exc.strerror or exc}",
                step="bind",
                cause="address",
                fix="give --bind an IP address of this machine (127.0.0.1 or ::1 for a lab)",
            ) from exc
        try:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            else:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            sock.bind(address)
            if kind == socket.SOCK_STREAM:
                sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            cause, fix = _BIND_FAILURES.get(
                exc.errno or 0, ("bind", "choose another --port or --bind address")
            )
            raise TransportError(
                f"cannot listen on {self.protocol} {format_peer((self.host, self.port))}: "
                f"{exc.strerror or exc}",
                step="bind",
                cause=cause,
                fix=fix,
            ) from exc
        return sock

    def _serve(self) -> None:
        assert self._socket is not None
        selector = selectors.DefaultSelector()
        selector.register(self._socket, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                if not selector.select(timeout=0.1):
                    continue
                if self.protocol == "udp":
                    self._read_datagrams()
                else:
                    self._accept()
            if self.protocol == "udp":
                self._read_datagrams()  # what arrived before stop() is still delivered
        finally:
            selector.close()

    def _read_datagrams(self) -> None:
        assert self._socket is not None
        for _ in range(1000):  # drain what is there, but let stop() be noticed
            try:
                data, address = self._socket.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            problems: list[Problem] = []
            if len(data) > self.max_message_size:
                problems.append(
                    Problem(
                        OVERSIZE,
                        f"a {len(data)}-byte datagram, over the limit of {self.max_message_size}",
                    )
                )
                data = data[:_SAMPLE_SIZE]
            self._deliver(
                parse_message(
                    data,
                    transport="udp",
                    peer=format_peer(address),
                    framing="datagram",
                    problems=problems,
                )
            )

    def _accept(self) -> None:
        assert self._socket is not None
        try:
            conn, address = self._socket.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._connection_error(f"accept failed: {exc.strerror or exc}")
            return
        self._workers = {w for w in self._workers if w.is_alive()}
        if len(self._workers) >= self.max_connections:
            conn.close()
            self._connection_error(
                f"{format_peer(address)}: refused, {self.max_connections} connections already open"
            )
            return
        with self._lock:
            self.counts.connections += 1
        worker = threading.Thread(
            target=self._handle_connection,
            args=(conn, format_peer(address)),
            name=f"azs-syslog-listen-{format_peer(address)}",
            daemon=True,
        )
        self._workers.add(worker)
        worker.start()

    def _handle_connection(self, conn: socket.socket, peer: str) -> None:
        import ssl

        stream: socket.socket = conn
        peer_certificate: str | None = None
        try:
            conn.setblocking(True)
            if self.ssl_context is not None:
                conn.settimeout(self.handshake_timeout)
                try:
                    stream = self.ssl_context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    with self._lock:
                        self.counts.handshake_failures += 1
                    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
                    if any(marker in reason for marker in _NOT_TLS_REASONS):
                        reason += " (the client does not speak TLS: plain TCP? see --protocol)"
                    self._connection_error(f"{peer}: TLS handshake failed: {reason}")
                    return
                peer_certificate = _subject_of(stream)
            stream.settimeout(0.2)
            self._read_stream(stream, peer, peer_certificate)
        finally:
            stream.close()

    def _read_stream(self, stream: socket.socket, peer: str, peer_certificate: str | None) -> None:
        import ssl

        framer = StreamFramer(self.max_message_size)
        while not self._stop.is_set():
            try:
                data = stream.recv(65536)
            except TimeoutError:
                continue
            except ssl.SSLError as exc:
                self._connection_error(f"{peer}: TLS error: {exc.reason or exc}")
                data = b""
            except OSError as exc:
                self._connection_error(f"{peer}: connection error: {exc.strerror or exc}")
                data = b""
            frames = framer.feed(data) if data else framer.close()
            for frame in frames:
                self._deliver(
                    parse_message(
                        frame.payload,
                        transport=self.protocol,
                        peer=peer,
                        framing=frame.framing,
                        problems=frame.problems,
                        peer_certificate=peer_certificate,
                    )
                )
            if not data or framer.abandoned:
                return

    def _deliver(self, message: ReceivedMessage) -> None:
        with self._lock:
            counts = self.counts
            counts.received += 1
            counts.by_transport[message.transport] += 1
            host = _peer_host(message.peer)
            counts.by_peer[host] += 1
            if message.valid:
                counts.valid += 1
            else:
                counts.malformed += 1
                counts.malformed_by_peer[host] += 1
                for code in dict.fromkeys(p.code for p in message.errors):
                    counts.by_reason[code] += 1
            if self.on_message is not None:
                self.on_message(message)
                return
            try:
                self.messages.put_nowait(message)
            except queue.Full:
                counts.dropped += 1

    def _connection_error(self, text: str) -> None:
        with self._lock:
            if len(self.counts.connection_errors) < 1000:
                self.counts.connection_errors.append(text)
            if self.on_connection_error is not None:
                self.on_connection_error(text)


def _subject_of(stream: socket.socket) -> str | None:
    getpeercert = getattr(stream, "getpeercert", None)
    if getpeercert is None:
        return None
    certificate = getpeercert()
    if not certificate:
        return None
    parts = [f"{key}={value}" for rdn in certificate.get("subject", ()) for key, value in rdn]
    return ", ".join(parts) or None
