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
    check_host_cached,
    check_uint,
    finish,
    parse_level,
    parse_time,
    remember,
    wrong_type,
)
from azs_syslog.events.source import define, expression
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

# field -> (its position in EXTENSIONS, its kind); field -> its CEF key.
FIELD_KINDS: Final = {field: (index, kind) for index, (field, _, kind) in enumerate(EXTENSIONS)}
FIELD_KEYS: Final = {field: key for field, key, _ in EXTENSIONS}
# The JSON types a value of each kind may have.
ALLOWED_TYPES: Final[dict[int, tuple[type, ...]]] = {
    STR: (str,),
    UINT: (int,),
    LIST: (str, list),
    KEYWORDS: (str, int),
    LEVEL: (int, str),
    NAMES: (list,),
}
_KEYS: Final = tuple(key for _, key, _ in EXTENSIONS)
_ALL_PRESENT: Final = tuple(range(len(EXTENSIONS)))
# Tuples of the CEF keys for a set of present fields, shared between events of one shape.
_keys_cache: dict[tuple[int, ...], tuple[str, ...]] = {}


# --- the rules of the values (every path applies these, the compiled one mirrors them) -----


def join_list(field: str, items: list[Any]) -> str:
    """An array of strings, integers, booleans and nulls joined with ``!!``."""
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


# The rules of the written values, as Python source (``events/source.py``): ``{value}`` is the
# raw value, ``{out}`` the name its text goes to, ``{field}`` the field's name (a constant of
# EXTENSIONS). ``list_text`` and ``keywords_text`` are compiled from them, and
# encode/plan_code.py inlines them in the code it generates for each shape of event.
# An array: strings alone in one C-level step, else ``join_list`` (which may raise EventError).
LIST_RULE: Final = """\
try:
    {out} = "!!".join({value})
except TypeError:  # integers, booleans or nulls among the strings
    {out} = join_list({field}, {value})
"""
# event_data_names: strings alone (raises TypeError otherwise), joined.
NAMES_RULE: Final = '{out} = "!!".join({value})\n'
# Keywords given as an integer: PowerShell's Get-WinEvent gives them as a signed Int64; show
# the bit mask in hex as Event Viewer does [project].
KEYWORDS_RULE: Final = '{out} = "0x%016X" % ({value} & 0xFFFFFFFFFFFFFFFF)\n'
# The text appended to an array value of these fields.
SUFFIXES: Final = {"user_data": USER_DATA_SUFFIX}

# ``list_text(field, items)``: the text of an array value (LIST_RULE), with its suffix.
list_text: Final[Callable[[str, list[Any]], str]] = define(
    "list_text",
    "field, items",
    expression(LIST_RULE, out="text", value="items", field="field")
    + 'return text + SUFFIXES.get(field, "")\n',
    {"join_list": join_list, "SUFFIXES": SUFFIXES},
)
# ``keywords_text(value)``: integer keywords as written (KEYWORDS_RULE).
keywords_text: Final[Callable[[int], str]] = define(
    "keywords_text",
    "value",
    expression(KEYWORDS_RULE, out="text", value="value") + "return text\n",
    {},
)


def convert_values(
    raw: tuple[Any, ...], lists: tuple[tuple[int, str], ...], keywords_index: int
) -> list[Any]:
    """The raw values of a planned shape (their types already checked) as written: the arrays
    at ``lists`` (position, field) joined, the integer keywords at ``keywords_index`` (-1:
    none) in hex. Raises ``EventError`` for an array item of another type."""
    values = list(raw)
    for index, field in lists:
        values[index] = list_text(field, raw[index])
    if keywords_index >= 0:
        values[keywords_index] = keywords_text(raw[keywords_index])
    return values


def default_name(provider: object, task: Any, event_id: object) -> str:
    """The Name of an event without task_name or task_category: the name of the task from the
    table of ``windows_tasks`` (Security-Auditing, Sysmon), else the task number [project]."""
    known = known_task_name(provider, task, event_id)
    return str(task) if known is None else known


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
            return list_text(field, value)
        raise wrong_type(field, "a string or an array", value)
    if kind == KEYWORDS:
        if type(value) is int:
            return keywords_text(value)
        raise wrong_type(field, "a string or an integer", value)
    raise wrong_type(field, "a string", value)


def _slots(obj: Mapping[str, Any]) -> tuple[list[str | int | None], int]:
    """The value of each extension field (``None``: absent), and how many common fields the
    event has; raises for an unknown field or a bad value."""
    slots: list[str | int | None] = [None] * len(EXTENSIONS)
    common = 0
    kinds = FIELD_KINDS
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
    return slots, common


def _check_present(obj: Mapping[str, Any]) -> None:
    """The required fields are there, provider_name is not empty, and event_data_names has one
    name per value of event_data."""
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


def _keys_of(present: tuple[int, ...]) -> tuple[str, ...]:
    """The CEF keys of the fields at ``present`` (one tuple for every event of one shape)."""
    if present == _ALL_PRESENT:
        return _KEYS
    cached = _keys_cache.get(present)
    if cached is None:
        cached = tuple(_KEYS[i] for i in present)
        if len(_keys_cache) < 4096:
            _keys_cache[present] = cached
    return cached


def parse_windows_checked(obj: Mapping[str, Any]) -> Event:
    """The reference path: checks every field and explains what is wrong."""
    slots, common = _slots(obj)
    _check_present(obj)
    keys = _keys_of(tuple(i for i, v in enumerate(slots) if v is not None and v != ""))
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


def _event_data_count(obj: Mapping[str, Any]) -> int:
    """How many values ``event_data`` holds (a string is one; absent, none)."""
    data = obj.get("event_data")
    if type(data) is list:
        return len(data)
    return 0 if data is None else 1


def _name(obj: Mapping[str, Any]) -> str:
    """task_name, else task_category, else ``default_name`` (task 0 when absent) [project]."""
    if "task_name" in obj:
        name = obj["task_name"]
        if type(name) is not str:
            raise wrong_type("task_name", "a string", name)
        if name:
            return name
    name = obj.get("task_category")
    if name:
        return str(name)
    return default_name(obj.get("provider_name"), obj.get("task", 0), obj.get("event_id"))


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
        "lists",
        "types",
        "uints",
    )

    def __init__(self, shape: tuple[str, ...], types: tuple[type, ...]) -> None:
        fields = [field for field, _, _ in EXTENSIONS if field in shape]
        kinds = [FIELD_KINDS[field][1] for field in fields]
        self.getter: Callable[[Mapping[str, Any]], tuple[Any, ...]] = itemgetter(*fields)
        self.keys = tuple(FIELD_KEYS[field] for field in fields)
        self.types = types
        self.level_index = fields.index("level")
        self.lists = tuple(
            (i, fields[i]) for i, kind in enumerate(kinds) if kind == LIST and types[i] is list
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


_plans: dict[tuple[str, ...], _Plan | None] = {}


def _compile(shape: tuple[str, ...], obj: Mapping[str, Any]) -> _Plan | None:
    """A plan for events shaped like ``obj`` (already checked), or None if none applies."""
    plan = None
    # event_data_names is checked against event_data's length: the checked path only.
    if "event_data_names" not in shape and (
        "task_name" not in shape or type(obj["task_name"]) is str
    ):
        fields = [field for field, _, _ in EXTENSIONS if field in shape]
        types = tuple(type(obj[field]) for field in fields)
        if all(t in ALLOWED_TYPES[FIELD_KINDS[f][1]] for f, t in zip(fields, types, strict=True)):
            plan = _Plan(shape, types)
    return remember(_plans, shape, plan, 1024)


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
    try:
        values = convert_values(raw, plan.lists, plan.keywords_index)
    except EventError:  # the checked path says which field is wrong first
        return parse_windows_checked(obj)
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
    return _fast_event(obj, plan, values, level)


def _fast_event(obj: Mapping[str, Any], plan: _Plan, values: list[Any], level: int) -> Event:
    """The event of ``parse_windows``'s fast path, from the values of its plan."""
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
        check_host_cached(obj["host"]) if has_host else None,
        level,
    )
    if has_extensions:
        keys = list(plan.keys)
        add_custom_extensions(obj["extensions"], RESERVED, keys, values)
        event.keys = tuple(keys)
    return event
