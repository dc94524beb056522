"""Windows events (``"type": "windows"``), SPEC section 5.

Signature ID ``<provider_name>:<event_id>``, Name = ``task_name`` (else ``task_category``, else
the known name of the task, else the task number), Severity from the level table, then the
``Mas*`` extensions in the source's order, each only when present.

This is the hot path of a realistic deployment (most events are Windows events), so the checks
are table-driven: one dict lookup and one type test per field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import Any, Final

from azs_syslog.errors import EventError
from azs_syslog.events.common import (
    COMMON_FIELDS,
    LEVEL_NAMES,
    LEVEL_SEVERITY,
    Event,
    add_custom_extensions,
    check_host,
    check_uint,
    finish,
    parse_level,
    parse_time,
    wrong_type,
)
from azs_syslog.events.windows_tasks import known_task_name

# Value kinds.
STR: Final = 0  # a string
UINT: Final = 1  # a non-negative integer
LIST: Final = 2  # a string, or an array of strings / integers / booleans / nulls joined with "!!"
KEYWORDS: Final = 3  # a string, or an integer shown as 0x%016X
LEVEL: Final = 4  # a level number or name; MasLevel is always the number
NAMES: Final = 5  # an array of strings, one per event_data value, joined with "!!"

# The CEF key of event_data_names, written only when the renderer is asked to
# (``RenderSettings.event_data_names``): off, the Azure Stack Hub format stays exact.
NAMES_KEY: Final = "MasEventDataNames"

USER_DATA_SUFFIX: Final = " Xpath: /Event/UserData/*"

# (JSON field, CEF key, kind), in the order the extensions are written (the source's table).
EXTENSIONS: Final[tuple[tuple[str, str, int], ...]] = (
    ("channel", "MasChannel", STR),
    ("computer", "MasComputer", STR),
    ("correlation_activity_id", "MasCorrelationActivityID", STR),
    ("correlation_related_activity_id", "MasCorrelationRelatedActivityID", STR),
    ("event_data", "MasEventData", LIST),
    ("event_data_names", NAMES_KEY, NAMES),
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
        elif item is True:
            parts.append("true")  # as Windows writes a boolean in Event XML
        elif item is False:
            parts.append("false")
        else:
            raise wrong_type(f"{field}[{index}]", "a string, an integer, a boolean or null", item)
    return "!!".join(parts)


def _event_data_count(obj: Mapping[str, Any]) -> int:
    """How many values ``event_data`` holds (a string is one; absent, none)."""
    data = obj.get("event_data")
    if type(data) is list:
        return len(data)
    return 0 if data is None else 1


def _convert(field: str, kind: int, value: Any) -> str | int:
    """The slow path of the field loop: anything that is not a plain string."""
    if kind == NAMES:
        if type(value) is not list:
            raise wrong_type(field, "an array of strings", value)
        for index, item in enumerate(value):
            if type(item) is not str:
                raise wrong_type(f"{field}[{index}]", "a string", item)
        return "!!".join(value)
    if kind == UINT:
        return check_uint(field, value)
    if kind == LEVEL:
        return parse_level(value)
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


def parse_windows_checked(obj: Mapping[str, Any]) -> Event:
    """The reference path: checks every field and explains what is wrong."""
    slots: list[str | int | None] = [None] * len(EXTENSIONS)
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
        if type(value) is str and kind != UINT and kind != LEVEL and kind != NAMES:
            slots[index] = value
        else:
            slots[index] = _convert(field, kind, value)
    for field in REQUIRED:
        if field not in obj:
            raise EventError("is required but missing", field=field)
    if "event_data_names" in obj:
        names, count = len(obj["event_data_names"]), _event_data_count(obj)
        if names != count:
            raise EventError(
                f"has {names} names for the {count} values of event_data (one name per value)",
                field="event_data_names",
            )
    present = tuple(i for i, v in enumerate(slots) if v is not None and v != "")
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
    values = [v for v in slots if v is not None and v != ""]
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
    """task_name, else task_category, else the name of the task from the table of
    ``windows_tasks`` (Security-Auditing, Sysmon), else the task number (0 when absent)
    [project]."""
    if "task_name" in obj:
        name = obj["task_name"]
        if type(name) is not str:
            raise wrong_type("task_name", "a string", name)
        if name:
            return name
    name = obj.get("task_category")
    if name:
        return str(name)
    task = obj.get("task", 0)
    known = known_task_name(obj.get("provider_name"), task, obj.get("event_id"))
    if known is not None:
        return known
    return str(task)


# --- the fast path ---------------------------------------------------------------------------
#
# A producer sends its events with the same fields in the same order, with the same JSON types.
# The first event of each such shape is checked field by field (``parse_windows_checked``) and
# compiles a ``_Plan``: which fields to take, in which order, what types they must have, what to
# convert. Every later event of that shape is then checked with a few C-level operations; any
# difference at all (another type, a negative number, an unknown level name, an empty value)
# sends it down the reference path, which explains the problem or handles the case.


class _Plan:
    __slots__ = (
        "getter",
        "has_common",
        "keys",
        "keywords_index",
        "level_index",
        "list_indexes",
        "types",
        "uints",
    )

    def __init__(self, shape: tuple[str, ...], types: tuple[type, ...]) -> None:
        fields = [field for field, _, _ in EXTENSIONS if field in shape]
        kinds = [_KIND[field][1] for field in fields]
        self.getter: Callable[[Mapping[str, Any]], tuple[Any, ...]] = itemgetter(*fields)
        self.keys = tuple(_KIND_KEYS[field] for field in fields)
        self.types = types
        self.level_index = fields.index("level")
        self.list_indexes = tuple(
            (i, fields[i] == "user_data")
            for i, kind in enumerate(kinds)
            if kind == LIST and types[i] is list
        )
        self.keywords_index = next(
            (i for i, kind in enumerate(kinds) if kind == KEYWORDS and types[i] is int), -1
        )
        uints = [i for i, kind in enumerate(kinds) if kind == UINT]  # event_id at least
        if len(uints) == 1:
            uints.append(uints[0])  # so that the getter returns a tuple
        self.uints: Callable[[tuple[Any, ...]], tuple[int, ...]] = itemgetter(*uints)
        self.has_common = (
            "time" in shape,
            "host" in shape,
            "extensions" in shape,
            "task_name" in shape,
        )


_KIND_KEYS: Final = {field: key for field, key, _ in EXTENSIONS}
_ALLOWED_TYPES: Final[dict[int, tuple[type, ...]]] = {
    STR: (str,),
    UINT: (int,),
    LIST: (str, list),
    KEYWORDS: (str, int),
    LEVEL: (int, str),
    NAMES: (list,),
}
_plans: dict[tuple[str, ...], _Plan | None] = {}
_valid_hosts: set[str] = set()


def _compile(shape: tuple[str, ...], obj: Mapping[str, Any]) -> _Plan | None:
    """A plan for events shaped like ``obj`` (already checked), or None if none applies."""
    if len(_plans) >= 1024:
        _plans.clear()
    plan = None
    # event_data_names is checked against event_data's length: the checked path only.
    if "event_data_names" not in shape and (
        "task_name" not in shape or type(obj["task_name"]) is str
    ):
        fields = [field for field, _, _ in EXTENSIONS if field in shape]
        types = tuple(type(obj[field]) for field in fields)
        if all(t in _ALLOWED_TYPES[_KIND[f][1]] for f, t in zip(fields, types, strict=True)):
            plan = _Plan(shape, types)
    _plans[shape] = plan
    return plan


def parse_windows(obj: Mapping[str, Any]) -> Event:
    """A Windows event (SPEC section 5); the same result as ``parse_windows_checked``."""
    shape = tuple(obj)
    plan = _plans.get(shape)
    if plan is None:
        if shape in _plans:
            return parse_windows_checked(obj)
        event = parse_windows_checked(obj)  # raises for a bad shape before it is compiled
        _compile(shape, obj)
        return event
    raw = plan.getter(obj)
    if tuple(map(type, raw)) != plan.types or min(plan.uints(raw)) < 0:
        return parse_windows_checked(obj)
    values = list(raw)
    for index, is_user_data in plan.list_indexes:
        try:
            text = "!!".join(raw[index])
        except TypeError:
            return parse_windows_checked(obj)
        values[index] = text + USER_DATA_SUFFIX if is_user_data else text
    if plan.keywords_index >= 0:
        values[plan.keywords_index] = f"0x{raw[plan.keywords_index] & 0xFFFFFFFFFFFFFFFF:016X}"
    level = raw[plan.level_index]
    if type(level) is str:
        level = LEVEL_NAMES.get(level.lower())
        if level is None:
            return parse_windows_checked(obj)
        values[plan.level_index] = level
    elif not 0 <= level <= 5:
        return parse_windows_checked(obj)
    if "" in values:
        return parse_windows_checked(obj)
    has_time, has_host, has_extensions, has_task_name = plan.has_common
    name = obj["task_name"] if has_task_name else ""
    if type(name) is not str:
        return parse_windows_checked(obj)
    if not name:
        name = _name(obj)
    event = Event(
        "windows",
        f"{obj['provider_name']}:{obj['event_id']}",
        name,
        LEVEL_SEVERITY[level],
        plan.keys,
        values,
        parse_time(obj["time"]) if has_time else None,
        None,
        level,
    )
    if has_host:
        host = obj["host"]
        if type(host) is not str or host not in _valid_hosts:
            check_host(host)
            if len(_valid_hosts) >= 1024:
                _valid_hosts.clear()
            _valid_hosts.add(host)
        event.host = host
    if has_extensions:
        keys = list(plan.keys)
        add_custom_extensions(obj["extensions"], RESERVED, keys, values)
        event.keys = tuple(keys)
    return event


# --- the renderer's fused path ---------------------------------------------------------------
#
# ``Renderer.render_line`` goes one step further for the shapes it sees most: a ``RenderPlan``
# lets it check a Windows event and write its extensions without building an ``Event`` at all.
# It covers shapes without ``"extensions"`` whose values have the types the first event of the
# shape had (strings, empty or not, non-negative integers, arrays of strings, integers,
# booleans and nulls, an integer level); anything else, or any doubt, goes through
# ``parse_event`` + ``render_event`` (the reference).


CONVERT_LIST: Final = 0  # "!!".join the array
CONVERT_USER_DATA: Final = 1  # the same, then USER_DATA_SUFFIX
CONVERT_KEYWORDS: Final = 2  # an integer -> 0x%016X
CONVERT_NAMES: Final = 3  # "!!".join an array of strings as long as event_data's

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
# The values the compiled path returns beside the extensions (None when absent), in order.
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


class RenderPlan:
    """How to check and write the Windows events of one shape (a set of fields) in one go.

    ``getter(obj)`` returns the extension values in the order they are written (``count`` of
    them), then ``type``, ``time``, ``host``, ``task_name`` when the shape has them (their
    positions ``time_index``... are -1 otherwise), then ``event_data_names`` when it is
    checked but not written; ``types`` the exact type of each. ``names``: write
    ``event_data_names`` (``RenderSettings.event_data_names``).
    """

    __slots__ = (
        "converts",
        "count",
        "escape_template",
        "event_id_index",
        "getter",
        "host_index",
        "keys",
        "level_index",
        "names_check",
        "native",
        "native_spec",
        "provider_index",
        "size",
        "task_category_index",
        "task_index",
        "task_name_index",
        "template",
        "texts",
        "time_index",
        "type_index",
        "types",
        "uints",
    )

    def __init__(self, shape: tuple[str, ...], types: dict[str, type], names: bool = False) -> None:
        fields = [
            field
            for field, _, _ in EXTENSIONS
            if field in shape and (names or field != "event_data_names")
        ]
        kinds = [_KIND[field][1] for field in fields]
        self.count = len(fields)
        self.size = len(shape)
        extra: list[str] = [
            field for field in ("type", "time", "host", "task_name") if field in shape
        ]
        if not names and "event_data_names" in shape:
            extra.append("event_data_names")
        every = fields + extra
        self.getter: Callable[[Mapping[str, Any]], tuple[Any, ...]] = itemgetter(*every)
        self.types = tuple(types[field] for field in every)
        self.keys = tuple(_KIND_KEYS[field] for field in fields)
        self.type_index = every.index("type")
        self.time_index = every.index("time") if "time" in every else -1
        self.host_index = every.index("host") if "host" in every else -1
        self.task_name_index = every.index("task_name") if "task_name" in every else -1
        self.task_category_index = every.index("task_category") if "task_category" in every else -1
        self.task_index = every.index("task") if "task" in every else -1
        self.provider_index = fields.index("provider_name")
        self.event_id_index = fields.index("event_id")
        self.level_index = fields.index("level")
        # (names, event_data): the positions of the arrays whose lengths must agree.
        self.names_check = (
            (every.index("event_data_names"), every.index("event_data"))
            if "event_data_names" in every
            else None
        )
        # What to do to a raw value before it is written: join an array, write keywords in hex.
        self.converts = tuple(
            (i, CONVERT_USER_DATA if fields[i] == "user_data" else CONVERT_LIST)
            if kind == LIST
            else (i, CONVERT_NAMES)
            if kind == NAMES
            else (i, CONVERT_KEYWORDS)
            for i, kind in enumerate(kinds)
            if (kind in (LIST, NAMES) and types[fields[i]] is list)
            or (kind == KEYWORDS and types[fields[i]] is int)
        )
        # itemgetter of one index returns the item, not a tuple: repeat it.
        uints = [i for i, kind in enumerate(kinds) if kind == UINT] + [self.event_id_index]
        self.uints: Callable[[tuple[Any, ...]], tuple[int, ...]] = itemgetter(*uints)
        # Integers (after the conversions above, only UINT and LEVEL fields) with %d.
        formats = ["%d" if kind in (UINT, LEVEL) else "%s" for kind in kinds]
        self.template = "".join(
            f" {key}={spec}" for key, spec in zip(self.keys, formats, strict=True)
        )
        # The values written as text (not integers): where an "=" can be.
        texts = [i for i, kind in enumerate(kinds) if kind not in (UINT, LEVEL)]
        texts = texts or [self.provider_index]  # provider_name is one: never used
        if len(texts) == 1:
            texts.append(texts[0])
        self.texts: Callable[[tuple[Any, ...]], tuple[str, ...]] = itemgetter(*texts)
        # The cef.encode_extensions template: NUL where "=" goes.
        self.escape_template = self.template.replace("=", "\x00")
        # The same checks and pairs for the compiled path: _speedups.compile_plan's arguments.
        returned = {field: slot for slot, field in enumerate(NATIVE_RETURNED)}
        entries: list[tuple[str, int, bytes | None, int, str | None]] = [
            (
                field,
                NATIVE_REQUIRED if field == "provider_name" else _NATIVE_KINDS[kind, types[field]],
                f" {key}=".encode(),
                returned.get(field, -1),
                USER_DATA_SUFFIX if field == "user_data" else None,
            )
            for field, key, kind in zip(fields, self.keys, kinds, strict=True)
        ]
        entries += [
            (
                field,
                NATIVE_TYPE
                if field == "type"
                else NATIVE_TIME
                if field == "time"
                else NATIVE_NAMES
                if field == "event_data_names"
                else NATIVE_TEXT,
                None,
                returned.get(field, -1),
                None,
            )
            for field in extra
        ]
        if not names and "event_data_names" in shape:
            # Checked right after event_data, whose length it must match.
            names_entry = entries.pop()
            entries.insert(fields.index("event_data") + 1, names_entry)
        self.native: object = None  # the compiled plan, made by the renderer
        self.native_spec: tuple[
            int, int, tuple[tuple[str, int, bytes | None, int, str | None], ...]
        ] = (
            self.size,
            len(NATIVE_RETURNED),
            tuple(entries),
        )

    @property
    def unpacked(self) -> tuple[Any, ...]:
        """The plan as ``Renderer.render_line`` unpacks it, in one step."""
        return (
            self.size,
            self.getter,
            self.types,
            self.type_index,
            self.uints,
            self.count,
            self.level_index,
            self.converts,
            self.task_name_index,
            self.time_index,
            self.host_index,
            self.provider_index,
            self.event_id_index,
            self.keys,
            self.template,
            self.escape_template,
            self.texts,
            self.task_category_index,
            self.task_index,
            self.names_check,
            {},  # the templates of the shape with values left out (empty ones), by key
        )


_RENDER_TYPES: Final[dict[int, tuple[type, ...]]] = {
    STR: (str,),
    UINT: (int,),
    LIST: (str, list),
    KEYWORDS: (str, int),
    LEVEL: (int,),
    NAMES: (list,),
}


def render_plan(obj: Mapping[str, Any], names: bool = False) -> RenderPlan | None:
    """A ``RenderPlan`` for Windows events shaped like ``obj`` (already accepted by
    ``parse_windows``), or ``None`` when its shape is not one the plans cover. ``names``:
    write ``event_data_names`` (``MasEventDataNames``)."""
    if obj.get("type") != "windows" or "extensions" in obj:
        return None
    types = {field: type(value) for field, value in obj.items()}
    for field, value_type in types.items():
        spec = _KIND.get(field)
        allowed = (str,) if spec is None else _RENDER_TYPES[spec[1]]
        if value_type not in allowed:
            return None
    if "event_data_names" in types and types.get("event_data") is not list:
        return None  # names for one string value (or none): the reference path
    return RenderPlan(tuple(obj), types, names)
