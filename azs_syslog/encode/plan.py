"""The renderer's fused path for Windows events: a ``RenderPlan`` per shape of event.

``Renderer.render_line`` goes one step further than ``events.windows.parse_windows`` for the
shapes it sees most: a ``RenderPlan`` lets it check a Windows event and write its extensions
without building an ``Event`` at all, in one call of the compiled ``_speedups.render`` (driven
by ``RenderPlan.native_spec``) or, without it, in ``RenderPlan.fields``. Both apply the rules of
``events.windows`` (the field table, the types of each kind, ``list_text``, ``keywords_text``).
A plan covers shapes without ``"extensions"`` whose values have the types the first event of
the shape had (strings, empty or not, non-negative integers, arrays of strings, integers,
booleans and nulls, an integer level); anything else, or any doubt, goes through
``parse_event`` + ``render_event`` (the reference).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import Any, Final

from azs_syslog.encode import cef
from azs_syslog.errors import EventError
from azs_syslog.events.common import remember
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
    convert_values,
)

# Controls a JSON text may hold unescaped (JSON escapes only U+0000-U+001F): DEL, C1, U+2028,
# U+2029. A line holding one takes the escaping path (cef.py maps them).
RAW_CONTROLS: Final = re.compile("[\x7f-\x9f\u2028\u2029]")
# JSON escapes that write no control character but CR and LF (an escaped backslash aside).
_HARMLESS_ESCAPES: Final = frozenset(('"', "/", "n", "r"))


def plain_json(line: str) -> bool:
    """Whether no value of JSON text ``line`` can hold a character CEF escapes in a value
    (``\\`` ``=`` and the controls): JSON writes C0 controls as escapes, so it holds no
    backslash, no ``=`` and none of the controls JSON may hold raw (most lines)."""
    return (
        "\\" not in line
        and "=" not in line
        and "\x7f" not in line
        and (line.isascii() or RAW_CONTROLS.search(line) is None)
    )


def may_hold_controls(line: str) -> bool:
    """Whether the values of JSON text ``line`` may hold a control character other than CR,
    LF and NUL (docs/cef-mapping.md): JSON writes those as escapes other than ``\\\\``,
    ``\\"``, ``\\/``, ``\\n`` and ``\\r`` (``\\t``, ``\\u001b`` ...), or holds them raw (DEL, C1,
    U+2028, U+2029). Cheap where the exact check on the values is not: one split at the
    backslashes (Windows paths hold a few), then a look at the character after each escape.
    A false positive (``\\u00e9``) only costs the exact check."""
    if "\x7f" in line or (not line.isascii() and RAW_CONTROLS.search(line) is not None):
        return True
    pieces = line.split("\\")
    count = len(pieces)
    index = 1
    while index < count:
        piece = pieces[index]
        if not piece:  # an escaped backslash: the piece after its second half is plain text
            index += 2
            continue
        if piece[0] not in _HARMLESS_ESCAPES:
            return True
        index += 1
    return False


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
# What ``_speedups.render`` and ``RenderPlan.fields`` return: the extension pairs (UTF-8), then
# the values named by NATIVE_RETURNED.
Fields = tuple[bytes, int, Any, Any, Any, str, int, Any, Any]


def _index(names: list[str], name: str) -> int:
    return names.index(name) if name in names else -1


def _getter(indexes: list[int]) -> Callable[[tuple[Any, ...]], Any]:
    """``itemgetter`` of ``indexes`` that returns a tuple even for one index."""
    return itemgetter(*indexes, *indexes[:1]) if len(indexes) == 1 else itemgetter(*indexes)


class RenderPlan:
    """How to check and write the Windows events of one shape (a set of fields) in one go.

    ``getter(obj)`` returns the extension values in the order they are written (``count`` of
    them), then ``type``, ``time``, ``host``, ``task_name`` when the shape has them (their
    positions ``time_index``... are -1 otherwise), then ``event_data_names`` when it is
    checked but not written; ``types`` the exact type of each. ``names``: write
    ``event_data_names`` (``RenderSettings.event_data_names``).
    """

    __slots__ = (
        "count",
        "escape_template",
        "event_id_index",
        "getter",
        "host_index",
        "keys",
        "keywords_index",
        "level_index",
        "lists",
        "names_check",
        "native",
        "native_spec",
        "partial",
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
        kinds = [FIELD_KINDS[field][1] for field in fields]
        self.count = len(fields)
        self.size = len(shape)
        extra: list[str] = [f for f in ("type", "time", "host", "task_name") if f in shape]
        if not names and "event_data_names" in shape:
            extra.append("event_data_names")
        every = fields + extra
        self.getter: Callable[[Mapping[str, Any]], tuple[Any, ...]] = itemgetter(*every)
        self.types = tuple(types[field] for field in every)
        self.keys = tuple(FIELD_KEYS[field] for field in fields)
        self.type_index = every.index("type")
        self.time_index = _index(every, "time")
        self.host_index = _index(every, "host")
        self.task_name_index = _index(every, "task_name")
        self.task_category_index = _index(every, "task_category")
        self.task_index = _index(every, "task")
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
        self.lists = tuple(
            (i, field)
            for i, (field, kind) in enumerate(zip(fields, kinds, strict=True))
            if kind in (LIST, NAMES) and types[field] is list
        )
        self.keywords_index = next(
            (i for i, f in enumerate(fields) if f == "keywords" and types[f] is int), -1
        )
        self.uints = _getter([i for i, kind in enumerate(kinds) if kind == UINT])
        # Integers (after the conversions above, only UINT and LEVEL fields) with %d.
        self.template = "".join(
            f" {key}={'%d' if kind in (UINT, LEVEL) else '%s'}"
            for key, kind in zip(self.keys, kinds, strict=True)
        )
        # The values written as text (not integers): where an "=" can be (provider_name is
        # one, so there is always one).
        self.texts = _getter([i for i, kind in enumerate(kinds) if kind not in (UINT, LEVEL)])
        # The cef.encode_extensions template: NUL where "=" goes.
        self.escape_template = self.template.replace("=", "\x00")
        # The templates of the shape with values left out (empty ones), by the positions kept.
        self.partial: dict[tuple[int, ...], tuple[tuple[str, ...], str, str]] = {}
        self.native: object = None  # the compiled plan, made by the renderer
        # The same checks and pairs for the compiled path: _speedups.compile_plan's arguments.
        self.native_spec = (
            self.size,
            len(NATIVE_RETURNED),
            _native_entries(fields, extra, types),
            shape,
        )

    def fields(self, line: str, obj: dict[str, Any]) -> Fields | None:
        """What ``_speedups.render`` returns, in Python, for ``obj`` parsed from JSON text
        ``line``; ``None`` when ``obj`` is of another shape or in any doubt."""
        if len(obj) != self.size:
            return None
        try:
            raw = self.getter(obj)
        except KeyError:
            return None
        level = raw[self.level_index]
        if tuple(map(type, raw)) != self.types or raw[self.type_index] != "windows":
            return None
        if not 0 <= level <= 5 or min(self.uints(raw)) < 0 or not raw[self.provider_index]:
            return None
        if self.names_check is not None and not _names_agree(raw, self.names_check):
            return None
        values = raw[: self.count]
        if self.lists or self.keywords_index >= 0:
            try:
                values = tuple(convert_values(values, self.lists, self.keywords_index))
            except EventError:
                return None
        keys, template, escape_template = self.keys, self.template, self.escape_template
        texts: Callable[[tuple[Any, ...]], Any] = self.texts
        if "" in values:  # left out, as the reference path does
            keep = tuple(i for i, value in enumerate(values) if value != "")
            keys, template, escape_template = self._partial(keep)
            values = tuple(values[i] for i in keep)
            texts = _strings
        extensions = template % values
        if not plain_json(line):
            # A value holds "=" if the line does, or as \u003d: look in the values written as
            # text. Without one, escape the whole text at once (keys hold nothing to escape).
            controls = may_hold_controls(line)
            if "=" in line or "=" in "".join(texts(values)):
                extensions = cef.encode_extensions(
                    keys, escape_template, list(values), controls=controls
                )
            else:
                extensions = cef.escape_extension_text(extensions, controls=controls)
        try:
            encoded = extensions.encode()
        except UnicodeEncodeError:  # lone surrogates
            return None
        return (
            encoded,
            level,
            raw[self.time_index] if self.time_index >= 0 else None,
            raw[self.host_index] if self.host_index >= 0 else None,
            raw[self.task_name_index] if self.task_name_index >= 0 else None,
            raw[self.provider_index],
            raw[self.event_id_index],
            raw[self.task_category_index] if self.task_category_index >= 0 else None,
            raw[self.task_index] if self.task_index >= 0 else None,
        )

    def _partial(self, keep: tuple[int, ...]) -> tuple[tuple[str, ...], str, str]:
        """The keys, template and escape template of the shape with only the values at
        ``keep`` written."""
        templates = self.partial.get(keep)
        if templates is None:
            templates = _partial_templates(self.keys, self.template, keep)
            remember(self.partial, keep, templates, 256)
        return templates


class NoPlan:
    """The plan before the first one: no event matches it."""

    native: object = None

    @staticmethod
    def fields(line: str, obj: dict[str, Any]) -> Fields | None:
        return None


def _names_agree(raw: tuple[Any, ...], check: tuple[int, int]) -> bool:
    """event_data_names holds strings only, one per value of event_data (``check``: their
    positions)."""
    names = raw[check[0]]
    if len(names) != len(raw[check[1]]):
        return False
    try:
        "!!".join(names)  # strings only
    except TypeError:
        return False
    return True


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


def _strings(values: tuple[Any, ...]) -> list[str]:
    """The values written as text (``RenderPlan.texts`` for a shape with values left out)."""
    return [value for value in values if type(value) is str]


def _partial_templates(
    keys: tuple[str, ...], template: str, keep: tuple[int, ...]
) -> tuple[tuple[str, ...], str, str]:
    """The keys, template and escape template of a plan's shape with only the values at
    ``keep`` written (the others are empty: the reference path leaves them out)."""
    pieces = template.split(" ")[1:]  # " Key=%s" each; keys and formats hold no space
    kept = "".join(" " + pieces[i] for i in keep)
    return tuple(keys[i] for i in keep), kept, kept.replace("=", "\x00")


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
