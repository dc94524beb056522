"""The per-line hot path: one JSON line -> framed syslog bytes under a ``RenderSettings``.

``send-event`` and the worker's socket input render each event once, at the edge (see
docs/architecture.md); the worker renders a queued batch again only when the settings it was
rendered under (``RenderSettings.key``) are no longer the current ones.

Speed (SPEC section 10): the constant parts are built once per ``Renderer``; the timestamp once
per second; the escaped CEF header once per (signature, name, severity); extension values are
checked for characters to escape in one scan; the message is encoded and measured once.
"""

from __future__ import annotations

import json.scanner
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from azs_syslog import cef, syslog
from azs_syslog.errors import ConfigError
from azs_syslog.events import DECODER, Event, load_json, parse_event
from azs_syslog.events.common import sanitize_host

if TYPE_CHECKING:
    from azs_syslog.config import Config

_scan_once: Final[Callable[[str, int], tuple[Any, int]]] = json.scanner.make_scanner(
    DECODER  # type: ignore[arg-type]  # typeshed has the argument's class wrong
)
OUTPUT_SEVERITIES: Final = ("Default", "Verbose")
# Windows levels the Default OutputSeverity forwards: Critical, Error, Warning.
DEFAULT_LEVELS: Final = frozenset({1, 2, 3})
# Bumped whenever the bytes produced for the same settings change, so queued batches rendered
# by an older release are rendered again.
ENCODING_VERSION: Final = 1


@dataclass(frozen=True)
class RenderSettings:
    """Everything that decides the bytes of a message, besides the event itself."""

    message_format: str = "rfc3164"  # or "rfc5424"
    facility: int = 10  # authpriv
    cef_version: str = "0"  # or "0.0"
    max_message_size: int = 8192  # bytes of the syslog message, framing excluded
    output_severity: str = "Default"  # or "Verbose"
    framing: str = "octet-counting"  # or "lf", or "none" (UDP: one message per datagram)

    def __post_init__(self) -> None:
        if self.message_format not in syslog.MESSAGE_FORMATS:
            raise ConfigError(
                f"unknown message format {self.message_format!r} (rfc3164 or rfc5424)",
                field="message_format",
            )
        if type(self.facility) is not int or not 0 <= self.facility <= 23:
            raise ConfigError(
                f"facility must be a number from 0 to 23, not {self.facility!r}", field="facility"
            )
        if self.cef_version not in cef.CEF_VERSIONS:
            raise ConfigError(
                f"unknown CEF version label {self.cef_version!r} (0 or 0.0)", field="cef_version"
            )
        if type(self.max_message_size) is not int or not (
            syslog.MIN_MESSAGE_SIZE <= self.max_message_size <= 16 * 1024 * 1024
        ):
            raise ConfigError(
                f"maximum message size must be {syslog.MIN_MESSAGE_SIZE} to 16777216 bytes, "
                f"not {self.max_message_size!r}",
                field="max_message_size",
            )
        severity = next(
            (s for s in OUTPUT_SEVERITIES if s.lower() == str(self.output_severity).lower()), None
        )
        if severity is None:
            raise ConfigError(
                f"output severity must be Default or Verbose, not {self.output_severity!r}",
                field="output_severity",
            )
        object.__setattr__(self, "output_severity", severity)
        if self.framing not in syslog.FRAMINGS:
            raise ConfigError(
                f"unknown framing {self.framing!r} (octet-counting, lf or none)", field="framing"
            )

    @classmethod
    def from_config(cls, config: Config) -> RenderSettings:
        """The settings of a configuration: framing ``none`` over UDP; no server configured ->
        the defaults, except the OutputSeverity (a client setting)."""
        severity = config.client.output_severity
        server = config.server
        if server is None:
            return cls(output_severity=severity)
        return cls(
            message_format=server.message_format,
            facility=server.facility,
            cef_version=server.cef_version,
            max_message_size=server.max_message_size,
            output_severity=severity,
            framing="none" if server.use_udp else server.framing,
        )

    @property
    def key(self) -> str:
        """A stable fingerprint of every field (stored with queued batches)."""
        return (
            f"v{ENCODING_VERSION}:{self.message_format}:{self.facility}:{self.cef_version}:"
            f"{self.max_message_size}:{self.output_severity}:{self.framing}"
        )


class Renderer:
    """Renders events under one ``RenderSettings``; keeps the counts of its work.

    It caches per-second timestamps, CEF headers and extension templates, so it is not
    thread-safe: use one per thread. A settings change means a new ``Renderer``.
    """

    def __init__(self, settings: RenderSettings, *, default_host: str | None = None) -> None:
        if default_host is None:
            import socket

            default_host = socket.gethostname()
        self.settings = settings
        self.default_host = sanitize_host(default_host)
        self.truncated = 0  # messages shortened to fit max_message_size
        self.filtered = 0  # events dropped by the OutputSeverity filter
        self._rfc5424 = settings.message_format == "rfc5424"
        self._version = settings.cef_version
        self._limit = settings.max_message_size
        self._framing = settings.framing
        self._verbose = settings.output_severity == "Verbose"
        # CEF severity -> "<PRI>" (RFC 3164) or "<PRI>1 " (RFC 5424).
        self._pri = tuple(
            f"<{syslog.pri(settings.facility, sev)}>" + ("1 " if self._rfc5424 else "")
            for sev in range(11)
        )
        self._second = -1
        self._stamp = ""
        self._headers: dict[tuple[str, str, int], str] = {}
        self._keys: tuple[str, ...] = ()
        self._template = ""
        self._plain_template = ""

    # -- the hot path -------------------------------------------------------------------------

    def render_line(self, line: str | bytes, accepted_ms: int) -> bytes | None:
        """One JSON object (text) -> the framed syslog message, or ``None`` when the
        OutputSeverity filter drops it. Raises ``EventError`` naming the field."""
        if type(line) is str and line[:1] == "{":
            # json.loads without its Python wrappers: the C scanner directly (~0.7 us less).
            try:
                obj, end = _scan_once(line, 0)
            except (StopIteration, ValueError, RecursionError):
                obj = load_json(line)  # raises the EventError that explains it
            else:
                if end != len(line) and not line[end:].isspace():
                    obj = load_json(line)
        else:
            obj = load_json(line)
        # Values can hold a character to escape (\\ = CR LF NUL) only if the JSON text holds a
        # backslash (JSON writes CR, LF and NUL as escapes) or "=": most lines hold neither.
        plain = type(line) is str and "\\" not in line and "=" not in line
        return self.render_event(parse_event(obj), accepted_ms, plain)

    def render_object(self, obj: dict[str, Any], accepted_ms: int) -> bytes | None:
        """Same as ``render_line`` for an already parsed object."""
        return self.render_event(parse_event(obj), accepted_ms)

    def render_event(self, event: Event, accepted_ms: int, plain: bool = False) -> bytes | None:
        """Same as ``render_line`` for a parsed event. ``plain``: the caller knows that no
        extension value holds a character to escape."""
        level = event.level
        if level is not None and level not in DEFAULT_LEVELS and not self._verbose:
            self.filtered += 1
            return None
        message = self.message(event, accepted_ms, plain)
        framing = self._framing
        if framing == "octet-counting":
            return b"%d %s" % (len(message), message)
        if framing == "lf":
            return message + b"\n"
        return message

    def message(self, event: Event, accepted_ms: int, plain: bool = False) -> bytes:
        """The syslog message of ``event``, unframed, within the size limit."""
        time_ms = event.time_ms
        if time_ms is None:
            time_ms = accepted_ms
        seconds = time_ms // 1000
        if seconds != self._second:
            self._second = seconds
            self._stamp = (
                syslog.rfc5424_seconds(seconds)
                if self._rfc5424
                else syslog.rfc3164_timestamp(seconds)
            )
        host = event.host or self.default_host
        severity = event.severity
        if self._rfc5424:
            head = (
                f"{self._pri[severity]}{self._stamp}.{time_ms % 1000:03d}Z {host} "
                f"{syslog.APP_NAME} - {event.type} - "
            )
        else:
            head = f"{self._pri[severity]}{self._stamp} {host} "
        header_key = (event.signature_id, event.name, severity)
        cef_header = self._headers.get(header_key)
        if cef_header is None:
            cef_header = cef.header(self._version, event.signature_id, event.name, severity)
            if len(self._headers) >= 4096:
                self._headers.clear()
            self._headers[header_key] = cef_header
        keys = event.keys
        if keys is not self._keys:  # the same tuple for every event of one shape
            self._keys = keys
            self._template = cef.extension_template(keys)
            self._plain_template = self._template.replace("\x00", "=")
        if plain:
            extensions = self._plain_template % tuple(event.values)
        else:
            extensions = cef.encode_extensions(keys, self._template, event.values)
        try:
            message = f"{head}{cef_header}rt={time_ms}{extensions}".encode()
        except UnicodeEncodeError:
            message = self._encode_lone_surrogates(head + cef_header, event, time_ms)
        if len(message) > self._limit:
            message = self._shorten(head, event, time_ms)
        return message

    # -- the rare paths -----------------------------------------------------------------------

    def _encode_lone_surrogates(self, header: str, event: Event, time_ms: int) -> bytes:
        return _to_utf8(header + cef.extensions(time_ms, event.keys, event.values))

    def _shorten(self, head: str, event: Event, time_ms: int) -> bytes:
        self.truncated += 1
        prefix = _to_utf8(head + cef.cef_prefix(self._version))
        signature = _to_utf8(cef.escape_header(event.signature_id))
        name = _to_utf8(cef.escape_header(event.name))
        tail = b"|%d|rt=%d" % (event.severity, time_ms)
        pairs = [
            (key.encode(), _to_utf8(value))
            for key, value in zip(event.keys, cef.escape_values(event.values), strict=True)
        ]
        return syslog.fit(prefix, signature, name, tail, pairs, self._limit)


def _to_utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()
