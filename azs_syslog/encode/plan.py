"""The renderer's fused path for Windows events: a ``RenderPlan`` per shape of event.

``Renderer.render_line`` goes one step further than ``events.windows.parse_windows`` for the shapes
it sees most: a ``RenderPlan`` lets it check a Windows event and write its extensions without
building an ``Event`` at all, in one call of the compiled ``_speedups.render_text`` (on the JSON
text; driven by ``RenderPlan.native_spec``) or in ``RenderPlan.fields`` (on the objects orjson makes
of it), a function generated for the shape (``plan_code.py``). Both apply the rules of
``events.windows`` (the field table, the types of each kind, ``LIST_RULE``, ``KEYWORDS_RULE``: the
generated code inlines them). A plan covers shapes without ``"extensions"`` whose values have the
types the first event of the shape had (strings, empty or not, non-negative integers, arrays of
strings, integers, booleans and nulls, an integer level); anything else, or any doubt, goes through
``parse_event`` + ``render_event`` (the reference).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from azs_syslog.encode.json_text import may_hold_controls as may_hold_controls
from azs_syslog.encode.json_text import plain_json as plain_json
from azs_syslog.encode.plan_code import make_fields
from azs_syslog.events.windows import (
    ALLOWED_TYPES,
    EXTENSIONS,
    FIELD_KEYS,
    FIELD_KINDS,
    KEYWORDS,
    LEVEL,
    LIST,
    NAMES,
    STR,
    UINT,
    USER_DATA_SUFFIX,
)

# The kinds of the compiled path (azs_syslog/encode/_speedups.c, which names them K_*).
NATIVE_STR: Final = 0  # a string, written (left out when empty)
NATIVE_UINT: Final = 1  # an integer >= 0, written
NATIVE_LEVEL: Final = 2  # an integer 0-5, written
NATIVE_LIST: Final = 3  # an array of strings/integers/booleans/nulls, written joined with "!!"
NATIVE_KEYWORDS: Final = 4  # an integer, written as 0x%016X
NATIVE_TYPE: Final = 5  # "windows", not written
NATIVE_TEXT: Final = 6  # a string, not written
NATIVE_REQUIRED: Final = 7  # a non-empty string, written (provider_name)
NATIVE_NAMES: Final = 8  # an array of strings as long as the NATIVE_LIST before it
NATIVE_TIME: Final = 9  # a string, returned as epoch ms when "YYYY-MM-DDThh:mm:ss.mmmZ"
# The values the compiled path returns beside the extensions (None when absent), in order;
# ``RenderPlan.fields`` returns the same.
NATIVE_RETURNED: Final = (
    "level",
    "time",
    "host",
    "task_name",
    "provider_name",
    "event_id",
    "task_category",
    "task",
)
_NATIVE_KINDS: Final = {
    (STR, str): NATIVE_STR,
    (UINT, int): NATIVE_UINT,
    (LEVEL, int): NATIVE_LEVEL,
    (LIST, str): NATIVE_STR,
    (LIST, list): NATIVE_LIST,
    (KEYWORDS, str): NATIVE_STR,
    (KEYWORDS, int): NATIVE_KEYWORDS,
    (NAMES, list): NATIVE_NAMES,
}
_NATIVE_EXTRA: Final = {
    "type": NATIVE_TYPE,
    "time": NATIVE_TIME,
    "event_data_names": NATIVE_NAMES,
    "host": NATIVE_TEXT,
    "task_name": NATIVE_TEXT,
}
# A plan's types: those of events.windows but the level, a number here (a name: reference).
_RENDER_TYPES: Final = {**ALLOWED_TYPES, LEVEL: (int,)}

NativeEntry = tuple[str, int, bytes | None, int, str | None]
# What ``_speedups.render_text`` and ``RenderPlan.fields`` return: the extension pairs (UTF-8), then
# the values named by NATIVE_RETURNED.
Fields = tuple[bytes, int, Any, Any, Any, str, int, Any, Any]


class RenderPlan:
    """How to check and write the Windows events of one shape (a set of fields) in one go.

    ``fields(line, obj)``: what ``_speedups.render_text`` returns for ``line``, in Python, on
    ``obj`` parsed from JSON text ``line`` (a time as it is, not in epoch ms); ``None`` when ``obj``
    is of another shape or in any doubt. A function generated for the shape
    (``plan_code.make_fields``). ``names``: write ``event_data_names``
    (``RenderSettings.event_data_names``).
    """

    __slots__ = ("fields", "native", "native_spec", "size")

    def __init__(self, shape: tuple[str, ...], types: dict[str, type], names: bool = False) -> None:
        fields, extra = layout(shape, names)
        self.size = len(shape)
        self.fields: Callable[[str, dict[str, Any]], Fields | None] = make_fields(
            self.size, fields, extra, types, NATIVE_RETURNED
        )
        self.native: object = None  # the compiled plan, made by the renderer
        # The same checks and pairs for the compiled path: _speedups.compile_plan's arguments.
        self.native_spec = (
            self.size,
            len(NATIVE_RETURNED),
            _native_entries(fields, extra, types),
            shape,
        )


def layout(shape: tuple[str, ...], names: bool) -> tuple[list[str], list[str]]:
    """The fields of ``shape`` a plan writes as extensions, in order, and those it only reads
    or checks (``type``, ``time``, ``host``, ``task_name``, and ``event_data_names`` when
    ``names`` is false)."""
    fields = [
        field
        for field, _, _ in EXTENSIONS
        if field in shape and (names or field != "event_data_names")
    ]
    extra: list[str] = [f for f in ("type", "time", "host", "task_name") if f in shape]
    if not names and "event_data_names" in shape:
        extra.append("event_data_names")
    return fields, extra


class NoPlan:
    """The plan before the first one: no event matches it."""

    native: object = None

    @staticmethod
    def fields(line: str, obj: dict[str, Any]) -> Fields | None:
        return None


def _native_entries(
    fields: list[str], extra: list[str], types: dict[str, type]
) -> tuple[NativeEntry, ...]:
    """The entries of ``_speedups.compile_plan``: (field, NATIVE_* kind, `` key=`` or None
    when not written, its slot in NATIVE_RETURNED or -1, the text appended or None)."""
    returned = {field: slot for slot, field in enumerate(NATIVE_RETURNED)}
    entries: list[NativeEntry] = [
        (
            field,
            NATIVE_REQUIRED
            if field == "provider_name"
            else _NATIVE_KINDS[FIELD_KINDS[field][1], types[field]],
            f" {FIELD_KEYS[field]}=".encode(),
            returned.get(field, -1),
            USER_DATA_SUFFIX if field == "user_data" else None,
        )
        for field in fields
    ]
    entries += [
        (field, _NATIVE_EXTRA[field], None, returned.get(field, -1), None) for field in extra
    ]
    if "event_data_names" in extra:
        # Checked right after event_data, whose length it must match.
        names_entry = entries.pop()
        entries.insert(fields.index("event_data") + 1, names_entry)
    return tuple(entries)


def render_plan(obj: Mapping[str, Any], names: bool = False) -> RenderPlan | None:
    """A ``RenderPlan`` for Windows events shaped like ``obj`` (already accepted by
    ``parse_windows``), or ``None`` when its shape is not one the plans cover. ``names``:
    write ``event_data_names`` (``MasEventDataNames``)."""
    if obj.get("type") != "windows" or "extensions" in obj:
        return None
    types = {field: type(value) for field, value in obj.items()}
    for field, value_type in types.items():
        spec = FIELD_KINDS.get(field)
        allowed = (str,) if spec is None else _RENDER_TYPES[spec[1]]
        if value_type not in allowed:
            return None
    if "event_data_names" in types and types.get("event_data") is not list:
        return None  # names for one string value (or none): the reference path
    return RenderPlan(tuple(obj), types, names)
