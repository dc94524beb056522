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
from azs_syslog.errors import ConfigError, EventError
from azs_syslog.events import DECODER, Event, load_json, parse_event
from azs_syslog.events.common import (
    LEVEL_SEVERITY,
    check_host,
    parse_time,
    sanitize_host,
)
from azs_syslog.events.windows import USER_DATA_SUFFIX, RenderPlan, _valid_hosts, render_plan
from azs_syslog.events.windows import _name as windows_name

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
        # The fused path of render_line: shape -> plan (None: not covered), the last plan used,
        # CEF headers by (provider, event id, name, severity).
        self._plans: dict[tuple[str, ...], RenderPlan | None] = {}
        self._plan: RenderPlan | None = None
        self._fast_headers: dict[tuple[str, int, str, int], str] = {}

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
                elif type(obj) is dict:
                    framed = self._render_fast(obj, line, accepted_ms)
                    if framed is not None:
                        return framed or None  # b"": filtered
        else:
            obj = load_json(line)
        # Values can hold a character to escape (\\ = CR LF NUL) only if the JSON text holds a
        # backslash (JSON writes CR, LF and NUL as escapes) or "=": most lines hold neither.
        plain = type(line) is str and "\\" not in line and "=" not in line
        return self.render_event(parse_event(obj), accepted_ms, plain)

    def _render_fast(self, obj: dict[str, Any], line: str, accepted_ms: int) -> bytes | None:
        """The fused path of Windows events of a known shape (``windows.RenderPlan``): the
        framed message, ``b""`` when the OutputSeverity filter drops it, or ``None`` when it
        does not apply (``render_line`` then goes the reference way, which explains errors)."""
        plan = self._plan
        if plan is None or len(obj) != plan.size:
            shape = tuple(obj)
            if shape not in self._plans:
                event = parse_event(obj)  # raises for an invalid event
                if len(self._plans) >= 1024:
                    self._plans.clear()
                self._plans[shape] = render_plan(obj) if event.type == "windows" else None
                return None
            plan = self._plans[shape]
            if plan is None:
                return None
            self._plan = plan
        try:
            raw = plan.getter(obj)
        except KeyError:  # the same size, other fields
            self._plan = None
            return self._render_fast(obj, line, accepted_ms)
        # Every check of parse_windows, in a few C-level operations; any doubt -> None.
        if (
            tuple(map(type, raw)) != plan.types
            or raw[plan.type_index] != "windows"
            or min(plan.uints(raw)) < 0
            or "" in plan.strings(raw)
        ):
            return None
        count = plan.count
        level = raw[plan.level_index]
        if not 0 <= level <= 5:
            return None
        list_indexes = plan.list_indexes
        if list_indexes or plan.keywords_index >= 0:
            values: Any = list(raw[:count])
            for index, is_user_data in list_indexes:
                try:
                    text = "!!".join(values[index])
                except TypeError:  # integers or nulls: the reference path
                    return None
                if not text:
                    return None
                values[index] = text + USER_DATA_SUFFIX if is_user_data else text
            index = plan.keywords_index
            if index >= 0:
                values[index] = f"0x{values[index] & 0xFFFFFFFFFFFFFFFF:016X}"
            values = tuple(values)
        else:
            values = raw[:count]
        index = plan.task_name_index
        name = raw[index] if index >= 0 else ""
        if not name:
            name = windows_name(obj)
        try:
            index = plan.time_index
            time_ms = parse_time(raw[index]) if index >= 0 else accepted_ms
            index = plan.host_index
            if index >= 0:
                host = raw[index]
                if host not in _valid_hosts:
                    check_host(host)
                    if len(_valid_hosts) >= 1024:
                        _valid_hosts.clear()
                    _valid_hosts.add(host)
            else:
                host = self.default_host
        except EventError:
            return None
        if level not in DEFAULT_LEVELS and not self._verbose:
            self.filtered += 1
            return b""
        severity = LEVEL_SEVERITY[level]
        header_key = (raw[plan.provider_index], raw[plan.event_id_index], name, severity)
        cef_header = self._fast_headers.get(header_key)
        if cef_header is None:
            cef_header = cef.header(
                self._version, f"{header_key[0]}:{header_key[1]}", name, severity
            )
            if len(self._fast_headers) >= 4096:
                self._fast_headers.clear()
            self._fast_headers[header_key] = cef_header
        if "\\" in line or "=" in line:
            extensions = cef.encode_extensions(plan.keys, plan.escape_template, list(values))
        else:
            extensions = plan.template % values
        seconds = time_ms // 1000
        if seconds != self._second:
            self._second = seconds
            self._stamp = (
                syslog.rfc5424_seconds(seconds)
                if self._rfc5424
                else syslog.rfc3164_timestamp(seconds)
            )
        if self._rfc5424:
            text = (
                f"{self._pri[severity]}{self._stamp}.{time_ms % 1000:03d}Z {host} "
                f"{syslog.APP_NAME} - windows - {cef_header}rt={time_ms}{extensions}"
            )
        else:
            text = f"{self._pri[severity]}{self._stamp} {host} {cef_header}rt={time_ms}{extensions}"
        try:
            message = text.encode()
        except UnicodeEncodeError:
            return None
        if len(message) > self._limit:
            return None
        framing = self._framing
        if framing == "octet-counting":
            return b"%d %b" % (len(message), message)
        if framing == "lf":
            return message + b"\n"
        return message

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
