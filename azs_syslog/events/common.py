"""What every event type shares: the parsed event, field checks, times, levels, extensions.

Validation is table-driven and cheap on purpose: this runs once per event on the hot path of
``send-event`` (SPEC section 10). Every error names the field it is about.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from azs_syslog.errors import EventError

# Fields every event type accepts (SPEC section 5).
COMMON_FIELDS: Final = frozenset({"type", "time", "host", "extensions"})

# A CEF extension key (SPEC section 6).
CEF_KEY_RE: Final = re.compile(r"[A-Za-z0-9_]+\Z")


@dataclass(slots=True, eq=False, repr=False)
class Event:
    """One validated input event, already mapped onto the CEF fields of SPEC section 5.

    ``type`` is the input type (``pep``, ``windows``, ...); ``keys`` and ``values`` are the
    extension pairs in order (values not escaped, never empty, strings or integers written in
    decimal; ``rt`` is not among them, the encoder adds it from ``time_ms``); ``time_ms`` is
    the event time (ms since the epoch) or ``None`` when the input has no ``"time"``; ``host``
    the input ``"host"`` or ``None``;
    ``level`` the Windows level (0-5) for the OutputSeverity filter, ``None`` for every other
    type (they are always forwarded).
    """

    type: str
    signature_id: str
    name: str
    severity: int
    keys: tuple[str, ...]
    values: list[str | int]
    time_ms: int | None = None
    host: str | None = None
    level: int | None = None

    @property
    def extensions(self) -> list[tuple[str, str]]:
        """The extension pairs in order (``rt`` excluded), as text, for people and tests."""
        return [(key, str(value)) for key, value in zip(self.keys, self.values, strict=True)]

    def __repr__(self) -> str:
        return (
            f"Event(type={self.type!r}, signature_id={self.signature_id!r}, name={self.name!r}, "
            f"severity={self.severity}, extensions={self.extensions!r}, time_ms={self.time_ms}, "
            f"host={self.host!r}, level={self.level})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return all(getattr(self, slot) == getattr(other, slot) for slot in self.__slots__) and (
            list(self.keys) == list(other.keys)
        )

    __hash__ = None  # type: ignore[assignment]


K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


def remember(cache: dict[K, V], key: K, value: V, limit: int = 4096) -> V:
    """Store ``value`` in ``cache`` and return it; a cache at ``limit`` entries is emptied
    first (the caches of the hot paths are bounded that way: cheap, and a real producer's
    working set is far smaller)."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value


# --- Windows-style levels (SPEC section 5, severity tables) --------------------------------

# Level number -> CEF severity: Undefined 0, Critical 10, Error 8, Warning 5, Information 2,
# Verbose 0.
LEVEL_SEVERITY: Final = (0, 10, 8, 5, 2, 0)
LEVEL_NAMES: Final = {
    "undefined": 0,
    "logalways": 0,
    "critical": 1,
    "error": 2,
    "warning": 3,
    "information": 4,
    "informational": 4,
    "verbose": 5,
}


def parse_level(value: object, field: str = "level") -> int:
    """A Windows level given by number (0-5) or by name (case-insensitive) -> its number."""
    if type(value) is int:
        if 0 <= value <= 5:
            return value
        raise EventError(f"level {value} is out of range (0-5)", field=field)
    if type(value) is str:
        level = LEVEL_NAMES.get(value.lower())
        if level is not None:
            return level
        raise EventError(
            f"unknown level {value!r} (expected 0-5 or one of Undefined, Critical, Error, "
            "Warning, Information, Verbose)",
            field=field,
        )
    raise wrong_type(field, "a level number (0-5) or name", value)


# --- field checks ----------------------------------------------------------------------------


def json_type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def wrong_type(field: str, expected: str, value: object) -> EventError:
    return EventError(f"must be {expected}, not {json_type_name(value)}", field=field)


def missing(field: str) -> EventError:
    return EventError("is required but missing", field=field)


def unknown_fields(
    obj: Mapping[str, Any], allowed: frozenset[str], type_name: str, event: str | None = None
) -> None:
    """Raise naming the first field of ``obj`` that ``allowed`` does not hold (of the type
    ``type_name``, or of its event ``event``)."""
    for key in obj:
        if key not in allowed:
            what = f"type {type_name!r}" if event is None else f"{type_name} event {event!r}"
            raise EventError(f"unknown field for {what}", field=key)


def named_event(obj: Mapping[str, Any], table: Mapping[str, T], type_name: str) -> tuple[str, T]:
    """The ``"event"`` of ``obj`` and its entry in ``table``; raises naming the known ones."""
    name = require_str(obj, "event")
    entry = table.get(name)
    if entry is None:
        raise EventError(
            f"unknown {type_name} event {name!r} (expected one of {', '.join(table)})",
            field="event",
        )
    return name, entry


def add_text(keys: list[str], values: list[str | int], key: str, text: str) -> None:
    """Append the pair ``key=text``, unless ``text`` is empty (every empty value is left
    out)."""
    if text:
        keys.append(key)
        values.append(text)


def require_str(obj: Mapping[str, Any], field: str) -> str:
    value = obj.get(field)
    if type(value) is str:
        return value
    if value is None and field not in obj:
        raise missing(field)
    raise wrong_type(field, "a string", value)


def optional_str(obj: Mapping[str, Any], field: str) -> str | None:
    value = obj.get(field)
    if value is None:
        if field in obj:
            raise wrong_type(field, "a string", value)
        return None
    if type(value) is str:
        return value
    raise wrong_type(field, "a string", value)


def check_uint(field: str, value: object) -> int:
    if type(value) is int and value >= 0:
        return value
    if type(value) is int:
        raise EventError(f"must not be negative ({value})", field=field)
    raise wrong_type(field, "a non-negative integer", value)


# --- time ------------------------------------------------------------------------------------

_TIME_RE: Final = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:([Zz])|([+-])(\d\d):(\d\d))\Z",
    re.ASCII,
)
_seconds_cache: dict[str, int] = {}
_utc_ms_cache: dict[str, int] = {}  # "YYYY-MM-DDThh:mm:ss" of a "Z" time -> epoch ms
# "000".."999" -> that number of milliseconds.
MILLIS: Final = {f"{n:03d}": n for n in range(1000)}


def parse_time(value: object, field: str = "time") -> int:
    """An RFC 3339 date-time -> milliseconds since the epoch (fraction truncated to ms).

    A leap second (``:60``) is read as ``:59`` of the same minute. The epoch seconds of each
    distinct "date, time, offset" are cached: events of one batch usually share the second.
    """
    if type(value) is not str:
        raise wrong_type(field, "an RFC 3339 date-time string", value)
    if len(value) == 24 and value[23] == "Z" and value[19] == ".":
        # The common "2026-11-26T10:00:00.123Z", its second seen before: two dict lookups.
        base = _utc_ms_cache.get(value[:19])
        if base is not None:
            millis = MILLIS.get(value[20:23])
            if millis is not None:
                return base + millis
    match = _TIME_RE.match(value)
    if match is None:
        raise EventError(
            f"{value!r} is not an RFC 3339 date-time (e.g. 2026-11-26T10:00:00.123Z)",
            field=field,
        )
    frac = match.group(7)
    key = value[:19] + (value[-6:] if match.group(9) else "Z")
    seconds = _seconds_cache.get(key)
    if seconds is None:
        seconds = remember(_seconds_cache, key, _epoch_seconds(match, value, field))
    if match.group(8):
        remember(_utc_ms_cache, value[:19], seconds * 1000)
    if frac:
        return seconds * 1000 + int((frac + "00")[:3])
    return seconds * 1000


def _epoch_seconds(match: re.Match[str], value: str, field: str) -> int:
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    if second == 60:
        second = 59
    offset = 0
    if match.group(9):
        off_h, off_m = int(match.group(10)), int(match.group(11))
        if off_h > 23 or off_m > 59:
            raise EventError(f"{value!r} has an invalid UTC offset", field=field)
        offset = (off_h * 60 + off_m) * 60
        if match.group(9) == "-":
            offset = -offset
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise EventError(f"{value!r} is not a valid date-time: {exc}", field=field) from None
    seconds = int(moment.timestamp()) - offset
    if not _FIRST_SECOND <= seconds <= _LAST_SECOND:
        raise EventError(f"{value!r} is outside the years 0001-9999 in UTC", field=field)
    return seconds


_FIRST_SECOND: Final = -62135596800  # 0001-01-01T00:00:00Z
_LAST_SECOND: Final = 253402300799  # 9999-12-31T23:59:59Z


# --- host ------------------------------------------------------------------------------------


def check_host(value: object, field: str = "host") -> str:
    """The syslog HOSTNAME: 1-255 printable US-ASCII characters, no spaces (RFC 5424 §6.2.4).

    Valid in both header formats as it is; anything else is rejected rather than rewritten, so
    that what the SIEM sees is what the producer sent **[project]**.
    """
    if type(value) is not str:
        raise wrong_type(field, "a string", value)
    if not 1 <= len(value) <= 255 or not value.isascii() or not value.isprintable():
        raise EventError(
            f"{value!r} is not a valid syslog host name (1-255 printable US-ASCII characters, "
            "no spaces)",
            field=field,
        )
    if " " in value:
        raise EventError(
            f"{value!r} is not a valid syslog host name (it contains a space)", field=field
        )
    return value


# Host names that passed check_host (the events of one producer share a few).
VALID_HOSTS: Final[set[str]] = set()


def check_host_cached(value: object) -> str:
    """``check_host``, remembering the names that pass (at most 1024)."""
    if type(value) is str and value in VALID_HOSTS:
        return value
    host = check_host(value)
    if len(VALID_HOSTS) >= 1024:
        VALID_HOSTS.clear()
    VALID_HOSTS.add(host)
    return host


def sanitize_host(name: str) -> str:
    """This machine's own host name, made valid for a syslog header: every character outside
    printable US-ASCII becomes ``-``, at most 255 characters, ``localhost`` when empty."""
    cleaned = "".join(c if "!" <= c <= "~" else "-" for c in name)[:255]
    return cleaned or "localhost"


# --- free-form extensions --------------------------------------------------------------------


def scalar_text(value: object, field: str) -> str:
    """A JSON scalar as CEF text: strings as they are, numbers as JSON writes them, booleans as
    ``true`` / ``false`` **[project]**."""
    if type(value) is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return str(value)
    if type(value) is float:
        return float_text(field, value)
    raise wrong_type(field, "a string, number or boolean", value)


def float_text(field: str, value: float) -> str:
    """A JSON number that is not an integer, as Python writes it; out of range is rejected."""
    text = repr(value)
    if text in ("inf", "-inf", "nan"):
        raise EventError("is a number out of range", field=field)
    return text


def add_custom_extensions(
    extensions: object,
    reserved: frozenset[str],
    keys: list[str],
    values: list[str | int],
) -> None:
    """Append the free-form ``"extensions"`` pairs of an event, in input order.

    Keys must be CEF keys (``[A-Za-z0-9_]+``) and must not be one the event type generates
    itself (``reserved``, ``rt`` included): such a collision is rejected, never overridden, so
    a producer can neither hide nor fake a documented field **[project]**. ``null`` and empty
    values are left out, like every empty value.
    """
    if type(extensions) is not dict:
        raise wrong_type("extensions", "an object", extensions)
    for key, value in extensions.items():
        field = f"extensions.{key}"
        if not CEF_KEY_RE.match(key):
            raise EventError(
                "is not a valid CEF extension key (letters, digits and _ only)", field=field
            )
        if key in reserved:
            raise EventError(
                "collides with an extension this event type generates; use the event's own "
                "field instead",
                field=field,
            )
        if value is not None:
            add_text(keys, values, key, scalar_text(value, field))


def finish(
    obj: Mapping[str, Any],
    event: Event,
    reserved: frozenset[str],
) -> Event:
    """Fill in the common fields (time, host, extensions) of ``event`` from ``obj``."""
    value = obj.get("time")
    if value is not None or "time" in obj:
        event.time_ms = parse_time(value)
    value = obj.get("host")
    if value is not None or "host" in obj:
        event.host = check_host(value)
    value = obj.get("extensions")
    if value is not None or "extensions" in obj:
        keys = list(event.keys)
        add_custom_extensions(value, reserved, keys, event.values)
        event.keys = tuple(keys)
    return event


Parser = Callable[[Mapping[str, Any]], Event]
