"""Windows events (``"type": "windows"``), SPEC section 5.

Signature ID ``<provider_name>:<event_id>``, Name = ``task_name`` (else ``task_category``, else
the task number), Severity from the level table, then the ``Mas*`` extensions in the source's
order, each only when present.

This is the hot path of a realistic deployment (most events are Windows events), so the checks
are table-driven: one dict lookup and one type test per field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from azs_syslog.errors import EventError
from azs_syslog.events.common import (
    COMMON_FIELDS,
    LEVEL_SEVERITY,
    Event,
    check_uint,
    finish,
    parse_level,
    wrong_type,
)

# Value kinds.
STR: Final = 0  # a string
UINT: Final = 1  # a non-negative integer
LIST: Final = 2  # a string, or an array of strings / integers / nulls joined with "!!"
KEYWORDS: Final = 3  # a string, or an integer shown as 0x%016X
LEVEL: Final = 4  # a level number or name; MasLevel is always the number

USER_DATA_SUFFIX: Final = " Xpath: /Event/UserData/*"

# (JSON field, CEF key, kind), in the order the extensions are written (the source's table).
EXTENSIONS: Final[tuple[tuple[str, str, int], ...]] = (
    ("channel", "MasChannel", STR),
    ("computer", "MasComputer", STR),
    ("correlation_activity_id", "MasCorrelationActivityID", STR),
    ("correlation_related_activity_id", "MasCorrelationRelatedActivityID", STR),
    ("event_data", "MasEventData", LIST),
    ("event_description", "MasEventDescription", STR),
    ("event_id", "MasEventID", UINT),
    ("event_record_id", "MasEventRecordID", UINT),
    ("execution_process_id", "MasExecutionProcessID", UINT),
    ("execution_thread_id", "MasExecutionThreadID", UINT),
    ("keywords", "MasKeywords", KEYWORDS),
    ("keyword_name", "MasKeywordName", STR),
    ("level", "MasLevel", LEVEL),
    ("opcode", "MasOpcode", UINT),
    ("opcode_name", "MasOpcodeName", STR),
    ("provider_event_source_name", "MasProviderEventSourceName", STR),
    ("provider_guid", "MasProviderGuid", STR),
    ("provider_name", "MasProviderName", STR),
    ("security_user_id", "MasSecurityUserId", STR),
    ("task", "MasTask", UINT),
    ("task_category", "MasTaskCategory", STR),
    ("user_data", "MasUserData", LIST),
    ("version", "MasVersion", UINT),
)
REQUIRED: Final = ("provider_name", "event_id", "level")
# task_name is the Name of the header, not an extension.
FIELDS: Final = COMMON_FIELDS | {field for field, _, _ in EXTENSIONS} | {"task_name"}
RESERVED: Final = frozenset({key for _, key, _ in EXTENSIONS} | {"rt"})

_KIND: Final = {field: (index, kind) for index, (field, _, kind) in enumerate(EXTENSIONS)}
_KEYS: Final = tuple(key for _, key, _ in EXTENSIONS)
_ALL_PRESENT: Final = tuple(range(len(EXTENSIONS)))
# Tuples of the CEF keys for a set of present fields, shared between events of one shape.
_keys_cache: dict[tuple[int, ...], tuple[str, ...]] = {}


def _join_list(field: str, items: list[Any]) -> str:
    parts = []
    for index, item in enumerate(items):
        if type(item) is str:
            parts.append(item)
        elif type(item) is int:
            parts.append(str(item))
        elif item is None:
            parts.append("")
        else:
            raise wrong_type(f"{field}[{index}]", "a string, an integer or null", item)
    return "!!".join(parts)


def _convert(field: str, kind: int, value: Any) -> str:
    """The slow path of the field loop: anything that is not a plain string."""
    if kind == UINT:
        return str(check_uint(field, value))
    if kind == LEVEL:
        return str(parse_level(value))
    if kind == LIST:
        if type(value) is list:
            text = _join_list(field, value)
            return text + USER_DATA_SUFFIX if field == "user_data" else text
        raise wrong_type(field, "a string or an array", value)
    if kind == KEYWORDS:
        if type(value) is int:
            # PowerShell's Get-WinEvent gives keywords as a signed Int64; show the bit mask in
            # hex as Event Viewer does [project].
            return f"0x{value & 0xFFFFFFFFFFFFFFFF:016X}"
        raise wrong_type(field, "a string or an integer", value)
    raise wrong_type(field, "a string", value)


def parse_windows(obj: Mapping[str, Any]) -> Event:
    slots: list[str | None] = [None] * len(EXTENSIONS)
    common = 0
    kinds = _KIND
    for field, value in obj.items():
        spec = kinds.get(field)
        if spec is None:
            if field in FIELDS:
                common += 1
                continue
            raise EventError("unknown field for type 'windows'", field=field)
        index, kind = spec
        if type(value) is str and kind != UINT and kind != LEVEL:
            slots[index] = value
        else:
            slots[index] = _convert(field, kind, value)
    for field in REQUIRED:
        if field not in obj:
            raise EventError("is required but missing", field=field)
    present = tuple(i for i, v in enumerate(slots) if v)
    if present == _ALL_PRESENT:
        keys: tuple[str, ...] = _KEYS
    else:
        cached = _keys_cache.get(present)
        if cached is None:
            cached = tuple(_KEYS[i] for i in present)
            if len(_keys_cache) < 4096:
                _keys_cache[present] = cached
        keys = cached
    if not obj["provider_name"]:
        raise EventError("must not be empty", field="provider_name")
    values: list[str] = [v for v in slots if v]
    level = parse_level(obj["level"])
    event = Event(
        "windows",
        f"{obj['provider_name']}:{obj['event_id']}",
        _name(obj),
        LEVEL_SEVERITY[level],
        keys,
        values,
        level=level,
    )
    if common > 1:  # beyond "type"
        return finish(obj, event, RESERVED)
    return event


def _name(obj: Mapping[str, Any]) -> str:
    """task_name, else task_category, else the task number (0 when absent) [project]."""
    if "task_name" in obj:
        name = obj["task_name"]
        if type(name) is not str:
            raise wrong_type("task_name", "a string", name)
        if name:
            return name
    name = obj.get("task_category")
    if name:
        return str(name)
    return str(obj.get("task", 0))
