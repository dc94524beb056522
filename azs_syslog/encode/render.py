"""The per-line hot path: one JSON line -> framed syslog bytes under a ``RenderSettings``.

``send-event`` and the worker's socket input render each event once, at the edge (see
docs/architecture.md); the worker renders a queued batch again only when the settings it was
rendered under (``RenderSettings.key``) are no longer the current ones.

Speed (docs/performance.md): the constant parts are built once per ``Renderer``; the timestamp once
per second; the escaped CEF header once per (signature, name, severity); extension values are
checked for characters to escape in one scan; the message is encoded and measured once.
Windows events of a shape seen before skip the ``Event`` altogether (``render_line``'s fused
path, docs/performance.md "Encoding").
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from itertools import repeat
from typing import Any, Final, TypeVar

from orjson import loads as _orjson_loads

try:
    from azs_syslog.encode import _speedups
except ImportError:  # built without a C compiler: the pure-Python fused path
    _speedups = None  # type: ignore[assignment]

from azs_syslog.encode import cef, syslog
from azs_syslog.encode.json_text import as_text
from azs_syslog.encode.plan import (
    NATIVE_RETURNED,
    NATIVE_TYPE,
    NoPlan,
    RenderPlan,
    may_hold_controls,
    plain_json,
    render_plan,
)
from azs_syslog.encode.settings import DEFAULT_LEVELS as DEFAULT_LEVELS
from azs_syslog.encode.settings import ENCODING_VERSION as ENCODING_VERSION
from azs_syslog.encode.settings import OUTPUT_SEVERITIES as OUTPUT_SEVERITIES
from azs_syslog.encode.settings import RenderSettings as RenderSettings
from azs_syslog.errors import EventError
from azs_syslog.events import Event, load_json, parse_event
from azs_syslog.events.common import (
    LEVEL_SEVERITY,
    MILLIS,
    VALID_HOSTS,
    check_host_cached,
    parse_time,
    remember,
    sanitize_host,
)
from azs_syslog.events.windows import NAMES_KEY, default_name

# "00".."59" -> the milliseconds of that second of a minute (a leap second "60" is not here:
# parse_time reads it).
_SECOND_MS: Final = {f"{n:02d}": n * 1000 for n in range(60)}
_TWO_DIGITS: Final = tuple(f"{n:02d}" for n in range(60))
# How many compiled plans a renderer tries on a line of another shape than the last one.
_RECENT: Final = 8
K = TypeVar("K")
V = TypeVar("V")

__all__ = [
    "COMPILED",
    "DEFAULT_LEVELS",
    "ENCODING_VERSION",
    "OUTPUT_SEVERITIES",
    "RenderSettings",
    "Renderer",
    "may_hold_controls",
]


def _not_built(*args: object) -> Any:
    raise RuntimeError("azs_syslog.encode._speedups is not built")


def _no_plan() -> object:
    """A compiled plan no event matches (the size of no object: "type" is not in ``{}``)."""
    return _speedups.compile_plan(0, len(NATIVE_RETURNED), (("type", NATIVE_TYPE, None, -1, None),))


# The compiled half of the fused path, when the package was built with it (setup.py).
COMPILED: Final = _speedups is not None
_native_text: Final[Callable[[str, object], tuple[Any, ...] | None]] = (
    _speedups.render_text if _speedups is not None else _not_built
)
_native_message: Final[Callable[[str, object, object, int], bytes | bool | None]] = (
    _speedups.render_message if _speedups is not None else _not_built
)
_native_messages: Final[Callable[..., tuple[int, int]]] = (
    _speedups.render_messages if _speedups is not None else _not_built
)


class _Cache(dict[K, V]):
    """A bounded dict that makes a missing value with ``make`` (at most ``limit`` entries, then
    emptied): a hit is one lookup, without a test or a call, on the hot path."""

    __slots__ = ("limit", "make")

    def __init__(self, make: Callable[[K], V], limit: int = 4096) -> None:
        super().__init__()
        self.make = make
        self.limit = limit

    def __missing__(self, key: K) -> V:
        return remember(self, key, self.make(key), self.limit)


class Renderer:
    """Renders events under one ``RenderSettings``; keeps the counts of its work.

    It caches per-second timestamps, CEF headers and extension templates, so it is not
    thread-safe: use one per thread. A settings change means a new ``Renderer``.
    """

    def __init__(
        self,
        settings: RenderSettings,
        *,
        default_host: str | None = None,
        compiled: bool | None = None,
    ) -> None:
        """``compiled``: use ``_speedups`` (default: when it is built; ``True`` raises
        ``RuntimeError`` when it is not)."""
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
        self._frame = syslog.framer(settings.framing)
        self._verbose = settings.output_severity == "Verbose"
        # The Windows levels the OutputSeverity filter forwards.
        self._levels = frozenset(range(6)) if self._verbose else DEFAULT_LEVELS
        self._names = settings.event_data_names
        # CEF severity -> "<PRI>" (RFC 3164) or "<PRI>1 " (RFC 5424).
        self._pri = tuple(
            f"<{syslog.pri(settings.facility, sev)}>" + ("1 " if self._rfc5424 else "")
            for sev in range(11)
        )
        # The caches of the hot paths, each a dict that makes what it misses (``_Cache``):
        # second -> its syslog timestamp; minute -> the same but ":ss" (real logs move on by
        # seconds between events); the CEF headers by (signature, name, severity) and, for the
        # fused path, by (provider, event id, name, severity); the Name of a Windows event
        # without task_name/task_category by (provider, task, event id).
        self._stamps: _Cache[int, str] = _Cache(self._second_stamp)
        self._minute_stamps: _Cache[int, str] = _Cache(self._minute_stamp)
        self._headers: _Cache[tuple[str, str, int], str] = _Cache(self._header)
        self._fast_headers: _Cache[tuple[str, int, str, int], str] = _Cache(self._fast_header)
        self._task_names: _Cache[tuple[str, int | None, int], str] = _Cache(self._task_name)
        self._keys: tuple[str, ...] = ()
        self._template = ""
        self._plain_template = ""
        # The fused path of render_line: shape -> plan (None: not covered), the last plan used,
        # CEF headers by (provider, event id, name, severity).
        self._plans: dict[tuple[str, ...], RenderPlan | None] = {}
        self._fast: RenderPlan | NoPlan = NoPlan()  # the last plan used
        if compiled and not COMPILED:
            raise RuntimeError(
                "azs_syslog.encode._speedups is not built (no C compiler at install)"
            )
        self.compiled = COMPILED if compiled is None else compiled
        # ... and compiled; at first, one no event matches (so that no test is needed).
        self._native: object = _no_plan() if self.compiled else None
        # The plans used last, newest first (a few shapes take turns in real logs): compiled,
        # a line of another shape than the last one is read from its text by one of these.
        self._recent: tuple[RenderPlan, ...] = ()
        # "YYYY-MM-DDThh:mm" of the "...:ss.mmmZ" times seen -> that minute, in ms. Real logs
        # move on by seconds between events: a cache by second would miss for most of them.
        self._minutes: dict[str, int] = {}
        # Compiled, the whole message is made in C from these settings and caches (it gives
        # up on any cache miss, and the Python path below fills the cache).
        self._context: object = (
            _speedups.compile_context(
                tuple(pri.encode() for pri in self._pri),
                LEVEL_SEVERITY,
                sum(1 << level for level in self._levels),
                self._rfc5424,
                self._limit,
                (f" {syslog.APP_NAME} - windows - " if self._rfc5424 else " ").encode(),
                self.default_host,
                self._minute_stamps,
                self._fast_headers,
                self._task_names,
                VALID_HOSTS,
            )
            if self.compiled
            else None
        )

    # -- the hot path -------------------------------------------------------------------------

    def render_line(self, line: str | bytes, accepted_ms: int) -> bytes | None:
        """One JSON object (text) -> the framed syslog message, or ``None`` when the
        OutputSeverity filter drops it. Raises ``EventError`` naming the field.

        Windows events of a shape seen before take a fused path (``plan.RenderPlan``): no ``Event``,
        every check of ``parse_windows`` and the escaped extension pairs in one call of the compiled
        ``_speedups`` (``render_message``: the whole message from the JSON text, when every cache it
        reads holds what it needs; ``render_text``: the fields from the text) or, without it or when
        it doubts, on the line parsed by orjson in a function generated for the shape
        (``RenderPlan.fields``). Any doubt there sends the event down the reference path
        (``parse_event`` + ``render_event`` on the line as json parses it), which gives the same
        bytes or explains the error; tests/test_render_fast.py and tests/test_render_text.py hold
        the paths to each other. Written with few attribute loads and calls on purpose: every
        Python-level step costs here (the per-event loop of the encoder, measured by
        benchmarks/encode.py); the caches make what they miss (``_Cache``), so a hit costs one
        lookup.
        """
        if type(line) is bytes:  # read by the socket input, --jobs, the worker: as text if it can
            line = as_text(line)
        if type(line) is not str or line[:1] != "{" or "windows" not in line:
            return self.render_event(parse_event(load_json(line)), accepted_ms)
        if self.compiled:  # the whole message in one call, or None: the steps below
            message = _native_message(line, self._native, self._context, accepted_ms)
            if type(message) is bytes:
                return self._frame(message)
            if message is False:
                self.filtered += 1
                return None
        return self._fused(line, accepted_ms)

    def render_lines(self, lines: list[Any], accepted_ms: int, out: list[bytes | None]) -> None:
        """``out.extend(map(self.render_line, lines, repeat(accepted_ms)))``: the same results,
        counts and errors (on an error, ``out`` holds the results before it), with a run of
        lines the compiled ``render_message`` reads taken in one call (no Python step per
        line); each line it leaves (another shape, a doubt, bytes) goes to ``render_line``."""
        if not self.compiled or type(lines) is not list:
            out.extend(map(self.render_line, lines, repeat(accepted_ms)))
            return
        index, count = 0, len(lines)
        while index < count:
            before = len(out)
            try:
                index, filtered = _native_messages(
                    lines, index, self._native, self._context, accepted_ms, self._frame, out
                )
            except BaseException:
                self.filtered += out[before:].count(None)
                raise
            self.filtered += filtered
            if index < count:
                out.append(self.render_line(lines[index], accepted_ms))
                index += 1

    def _fused(self, line: str, accepted_ms: int) -> bytes | None:
        """``render_line``'s fused path, step by step (every step but the first is what the
        compiled ``render_message`` does in one call)."""
        # orjson parses the line three times as fast as json.loads, and gives the same objects
        # except where it refuses (lone surrogates, 1e400, NaN: the reference explains or takes
        # them) or turns an integer beyond 64 bits into a float, which no plan's types allow.
        # So every way out of the fused path parses the line again with the json module.
        # Compiled, the line itself is read (no objects but the values returned).
        fields: tuple[Any, ...] | None = (
            (_native_text(line, self._native) or self._recent_text(line)) if self.compiled else None
        )
        if fields is None:
            try:
                obj = _orjson_loads(line)
            except ValueError:
                return self._reference(line, accepted_ms)
            fields = self._fast.fields(line, obj)
            if fields is None:  # another shape than the last one, or a doubt
                fields = self._other_shape(line, obj)
                if fields is None:
                    return self._reference(line, accepted_ms)
        extensions, level, stamp, host, name, provider, event_id, category, task = fields
        # windows._name: task_name, else task_category, else the known name of the task, else
        # its number.
        name = name or category or self._task_names[provider, task, event_id]
        try:
            # The compiled path reads "YYYY-MM-DDThh:mm:ss.mmmZ" itself.
            time_ms = stamp if type(stamp) is int else self._time_ms(stamp, accepted_ms)
            if host is None:  # most real records: the computer is not the host
                host = self.default_host
            elif host not in VALID_HOSTS:
                host = check_host_cached(host)
        except EventError:
            return self._reference(line, accepted_ms)
        if level not in self._levels:
            self.filtered += 1
            return None
        severity = LEVEL_SEVERITY[level]
        cef_header = self._fast_headers[provider, event_id, name, severity]
        when = self._stamps[time_ms // 1000]
        if self._rfc5424:
            head = (
                f"{self._pri[severity]}{when}.{time_ms % 1000:03d}Z {host} "
                f"{syslog.APP_NAME} - windows - {cef_header}rt={time_ms}"
            )
        else:
            head = f"{self._pri[severity]}{when} {host} {cef_header}rt={time_ms}"
        try:
            message = head.encode() + extensions
        except UnicodeEncodeError:  # lone surrogates
            return self._reference(line, accepted_ms)
        if len(message) > self._limit:
            return self._reference(line, accepted_ms)
        return self._frame(message)

    def _time_ms(self, stamp: str | None, accepted_ms: int) -> int:
        """The event time of the fused path: ``stamp`` (``accepted_ms`` when ``None``) in ms."""
        if stamp is None:
            return accepted_ms
        # "YYYY-MM-DDThh:mm:ss.mmmZ" in a minute seen before: no parse at all.
        utc_ms = len(stamp) == 24 and stamp[16] == ":" and stamp[19::4] == ".Z"
        base = self._minutes.get(stamp[:16])
        if (
            base is not None
            and utc_ms
            and (second := _SECOND_MS.get(stamp[17:19])) is not None
            and (millis := MILLIS.get(stamp[20:23])) is not None
        ):
            return base + second + millis
        time_ms = parse_time(stamp)
        if utc_ms:
            remember(self._minutes, stamp[:16], time_ms - time_ms % 60000)
        return time_ms

    def _other_shape(self, line: str, obj: dict[str, Any]) -> tuple[Any, ...] | None:
        """The fields of an event of another shape than the last one, by its plan (``None``:
        no plan, or a doubt)."""
        plan = self._find_plan(line, obj)
        if plan is None:
            return None
        return plan.fields(line, obj)

    def _recent_text(self, line: str) -> tuple[Any, ...] | None:
        """The fields of a line of another shape than the last one, read from its text by one
        of the plans used last (which becomes the current one), or ``None``."""
        for plan in self._recent:
            if plan is not self._fast and (fields := _native_text(line, plan.native)) is not None:
                self._fast = plan
                self._native = plan.native
                return fields
        return None

    def _reference(self, line: str, accepted_ms: int) -> bytes | None:
        """The reference path for a line the fused path does not take: parsed by json."""
        return self.render_event(parse_event(load_json(line)), accepted_ms, plain_json(line))

    def _find_plan(self, line: str, obj: dict[str, Any]) -> RenderPlan | None:
        """The fused-path plan of ``obj``'s shape (then the current one: ``_fast``, and
        ``_native`` compiled), or ``None``. The first event of a shape is checked by the
        reference path (on the line as json parses it) before its plan is made."""
        shape = tuple(obj)
        if shape not in self._plans:
            checked = load_json(line)
            event = parse_event(checked)  # raises for an invalid event
            plan = render_plan(checked, self._names) if event.type == "windows" else None
            if plan is not None and (type(checked) is not dict or tuple(checked) != shape):
                plan = None
            if plan is not None and self.compiled:
                plan.native = _speedups.compile_plan(*plan.native_spec)
            remember(self._plans, shape, plan, 1024)
            return None
        plan = self._plans[shape]
        if plan is None:
            return None
        self._fast = plan
        self._native = plan.native
        if self.compiled and plan not in self._recent:
            self._recent = (plan, *self._recent[: _RECENT - 1])
        return plan

    def _second_stamp(self, seconds: int) -> str:
        """The syslog timestamp of ``seconds`` (both formats end in ":ss", so the rest is kept
        by minute)."""
        minute, second = divmod(seconds, 60)
        return self._minute_stamps[minute] + _TWO_DIGITS[second]

    def _minute_stamp(self, minute: int) -> str:
        """The syslog timestamp of ``minute`` but its ":ss"."""
        seconds = minute * 60
        if self._rfc5424:
            return syslog.rfc5424_seconds(seconds)[:-2]
        return syslog.rfc3164_timestamp(seconds)[:-2]

    @staticmethod
    def _task_name(key: tuple[str, int | None, int]) -> str:
        """The Name of a Windows event without a task name or category (``windows._name``)."""
        provider, task, event_id = key
        return default_name(provider, 0 if task is None else task, event_id)

    def _header(self, key: tuple[str, str, int]) -> str:
        """The CEF header of an event: (signature ID, name, severity)."""
        return cef.header(self._version, *key)

    def _fast_header(self, key: tuple[str, int, str, int]) -> str:
        """The CEF header of a Windows event: (provider, event id, name, severity)."""
        provider, event_id, name, severity = key
        return cef.header(self._version, f"{provider}:{event_id}", name, severity)

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
        return self._frame(self.message(event, accepted_ms, plain))

    def message(self, event: Event, accepted_ms: int, plain: bool = False) -> bytes:
        """The syslog message of ``event``, unframed, within the size limit."""
        if not self._names and event.type == "windows" and NAMES_KEY in event.keys:
            event = _without_names(event)
        time_ms = event.time_ms
        if time_ms is None:
            time_ms = accepted_ms
        stamp = self._stamps[time_ms // 1000]
        host = event.host or self.default_host
        severity = event.severity
        if self._rfc5424:
            head = (
                f"{self._pri[severity]}{stamp}.{time_ms % 1000:03d}Z {host} "
                f"{syslog.APP_NAME} - {event.type} - "
            )
        else:
            head = f"{self._pri[severity]}{stamp} {host} "
        cef_header = self._headers[event.signature_id, event.name, severity]
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
            message = self._shorten(head, event, time_ms, len(message))
        return message

    # -- the rare paths -----------------------------------------------------------------------

    def _encode_lone_surrogates(self, header: str, event: Event, time_ms: int) -> bytes:
        return _to_utf8(header + cef.extensions(time_ms, event.keys, event.values))

    def _shorten(self, head: str, event: Event, time_ms: int, size: int = 0) -> bytes:
        self.truncated += 1
        prefix = _to_utf8(head + cef.cef_prefix(self._version))
        signature = _to_utf8(cef.escape_header(event.signature_id))
        name = _to_utf8(cef.escape_header(event.name))
        tail = b"|%d|rt=%d" % (event.severity, time_ms)
        if event.type == "windows" and size:
            # Part of the never-cut tail, so that the SIEM can always tell a shortened
            # message, and by how much [project].
            tail += b" MasTruncated=%d" % size
        pairs = [
            (key.encode(), _to_utf8(value))
            for key, value in zip(event.keys, cef.escape_values(event.values), strict=True)
        ]
        return syslog.fit(prefix, signature, name, tail, pairs, self._limit)


def _without_names(event: Event) -> Event:
    """``event`` without its MasEventDataNames pair (the renderer is not asked to write it)."""
    index = event.keys.index(NAMES_KEY)
    trimmed = copy.copy(event)
    trimmed.keys = event.keys[:index] + event.keys[index + 1 :]
    trimmed.values = event.values[:index] + event.values[index + 1 :]
    return trimmed


def _to_utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode()
