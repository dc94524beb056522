"""The code generated for each shape of Windows event (the pure-Python fused path,
``encode/plan_code.py``): every kind and JSON type of field, odd shapes, escaping, the names it
is made of; the same bytes as the reference path and the same fields as the compiled path; no
event data in its source; the rules it inlines are those the reference path runs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azs_syslog.encode.json_text import RAW_CONTROLS, plain_json
from azs_syslog.encode.plan import NATIVE_RETURNED, layout, render_plan
from azs_syslog.encode.plan_code import fields_source
from azs_syslog.encode.render import COMPILED, Renderer, RenderSettings
from azs_syslog.errors import EventError
from azs_syslog.events import source
from azs_syslog.events.common import parse_time
from azs_syslog.events.windows import (
    EXTENSIONS,
    FIELD_KINDS,
    KEYWORDS,
    LEVEL,
    LIST,
    NAMES,
    STR,
    UINT,
    USER_DATA_SUFFIX,
    join_list,
    keywords_text,
    list_text,
)
from tests.test_render_fast import ACCEPTED_MS, TEXT, reference, taken_fused, windows_events

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BASE: dict[str, Any] = {"type": "windows", "provider_name": "P", "event_id": 4688, "level": 4}
# Values of each kind, of each JSON type a plan takes: empty ones, ones to escape, odd items.
VALUES: dict[int, list[Any]] = {
    STR: ["text", "", "a=b", "C:\\Windows", "x\x1by", "é\u2028"],
    UINT: [0, 7, 2**64 - 1],
    LIST: ["one", "", ["a", "b"], [], [""], ["a", 1, None, True, False], ["a=b", "c\\d"]],
    KEYWORDS: ["0x8020000000000000", "", 0, -1, 2**63],
    LEVEL: [0, 2, 5],
    NAMES: [["n"], ["a=b"], [""]],
}
CASES = [
    (field, value)
    for field, _, kind in EXTENSIONS
    if field not in BASE
    for value in VALUES[kind]
    if field != "event_data_names"
]


def renderer_for(names: bool = False, *, compiled: bool = False) -> Renderer:
    settings_ = RenderSettings(output_severity="Verbose", event_data_names=names)
    return Renderer(settings_, default_host="default-host", compiled=compiled)


@pytest.mark.parametrize(("field", "value"), CASES, ids=[f"{f}={v!r}" for f, v in CASES])
def test_generated_code_for_every_kind_of_field(field: str, value: Any) -> None:
    """Each field, with each JSON type its kind takes (empty, escaped, typed array items),
    through the generated code of its shape: the reference's bytes, without a detour."""
    event = {**BASE, field: value}
    renderer = renderer_for()
    for _ in range(2):  # the first line of a shape makes its plan (reference path)
        renderer.render_line(json.dumps(BASE | {field: value}), ACCEPTED_MS)
    settings_ = renderer.settings
    result, stayed = taken_fused(renderer, json.dumps(event))
    assert result == reference(settings_, event)
    assert stayed


@pytest.mark.parametrize("names", [False, True], ids=["names-checked", "names-written"])
@pytest.mark.parametrize(
    "data", [["a", "b"], ["a", 1], [None, True], ["x=y", "C:\\p"], ["", ""]], ids=repr
)
def test_generated_code_for_event_data_names(names: bool, data: list[Any]) -> None:
    """event_data_names written (MasEventDataNames) or only checked: one name per value,
    strings only, else a doubt (the reference explains)."""
    renderer = renderer_for(names)
    first = {**BASE, "event_data": ["p", "q"], "event_data_names": ["n", "m"]}
    for _ in range(2):
        renderer.render_line(json.dumps(first), ACCEPTED_MS)
    for names_value in (["a=b", "c"], ["n", ""], ["n"], ["n", 2]):
        event = {**first, "event_data": data, "event_data_names": names_value}
        result, stayed = taken_fused(renderer, json.dumps(event))
        assert result == reference(renderer.settings, event)
        assert stayed == (len(names_value) == len(data) and names_value[-1] != 2)


ODD_SHAPES: list[dict[str, Any]] = [
    BASE,  # the required fields alone
    {"level": 1, "event_id": 1, "provider_name": "P", "type": "windows"},  # reversed
    {**BASE, "time": "2026-11-26T10:00:00.123Z", "host": "h", "task_name": ""},
    {**BASE, "user_data": ["u", 1]},  # the suffix
    {**BASE, "user_data": "plain"},  # a string: no suffix
    {**BASE, "keywords": -(2**63)},
    {
        field: (BASE[field] if field in BASE else VALUES[kind][0])
        for field, _, kind in reversed(EXTENSIONS)
        if field != "event_data_names"
    }
    | {"type": "windows", "event_data": ["a", "b", "c", "d", "e", "f", "g"]},
]


@pytest.mark.parametrize("names", [False, True], ids=["names-off", "names-on"])
@pytest.mark.parametrize("event", ODD_SHAPES, ids=range(len(ODD_SHAPES)))
def test_generated_code_for_odd_shapes(event: dict[str, Any], names: bool) -> None:
    """Shapes with the fewest fields, every field, fields in any order, extras present."""
    renderer = renderer_for(names)
    line = json.dumps(event)
    for _ in range(2):
        renderer.render_line(line, ACCEPTED_MS)
    result, stayed = taken_fused(renderer, line)
    assert result == reference(renderer.settings, event)
    assert stayed


@SETTINGS
@given(event=windows_events(), names=st.booleans(), ascii_only=st.booleans())
def test_generated_fields_equal_compiled_fields(
    event: dict[str, Any], names: bool, ascii_only: bool
) -> None:
    """Where both fused paths take an event, the generated function returns what the compiled
    ``_speedups.render_text`` returns (which reads a "YYYY-MM-DDThh:mm:ss.mmmZ" time itself)."""
    if not COMPILED:
        pytest.skip("azs_syslog.encode._speedups is not built")
    from azs_syslog.encode import _speedups

    if event.get("type") != "windows" or not {"provider_name", "event_id", "level"} <= set(event):
        return  # render_plan takes only events the reference path accepted
    plan = render_plan(event, names)
    if plan is None:
        return
    line = json.dumps(event, ensure_ascii=ascii_only)
    obj = json.loads(line)
    ours = plan.fields(line, obj)
    theirs = _speedups.render_text(line, _speedups.compile_plan(*plan.native_spec))
    if ours is None or theirs is None:
        return
    assert ours[:2] == theirs[:2] and ours[3:] == theirs[3:]
    assert ours[2] == theirs[2] or (type(theirs[2]) is int and parse_time(ours[2]) == theirs[2])


def source_of(event: dict[str, Any], names: bool = False) -> str:
    shape = tuple(event)
    fields, extra = layout(shape, names)
    types = {field: type(value) for field, value in event.items()}
    return fields_source(len(shape), fields, extra, types, NATIVE_RETURNED)


SECRET = st.text(min_size=1)


@SETTINGS
@given(secret=SECRET, names=st.booleans())
def test_generated_source_holds_no_event_data(secret: str, names: bool) -> None:
    """The source of a shape is made of field names, CEF keys and constants: an event's values
    are not in it, and every event of that shape and those types gets the same source."""
    marked = f"<<{secret}>>"
    event: dict[str, Any] = {"type": "windows", "provider_name": marked, "event_id": 1}
    event |= {"level": 2, "channel": marked, "event_data": [marked, marked]}
    event |= {"event_data_names": [marked, marked], "user_data": [marked], "keywords": marked}
    event |= {"time": marked, "host": marked, "task_name": marked}
    other = {
        field: (
            "plain"
            if type(value) is str
            else ["a", "b"]
            if field in ("event_data", "event_data_names")
            else ["u"]
            if type(value) is list
            else 3
        )
        for field, value in event.items()
    } | {"type": "windows"}
    text = source_of(event, names)
    assert marked not in text
    assert text == source_of(other, names)
    assert render_plan(event, names) is not None


def test_generated_names_are_identifiers() -> None:
    """Names that go into generated source are checked (identifiers only)."""
    assert source.identifier("event_data") == "event_data"
    for bad in ("a b", "x); import os; (", "", "1a", "a-b"):
        with pytest.raises(ValueError, match="not an identifier"):
            source.identifier(bad)
    with pytest.raises(ValueError, match="not an identifier"):
        source.define("a b", "", "return 1\n", {})


def test_define_compiles_each_source_once() -> None:
    """One code object per source text; each function gets its own globals."""
    one = source.define("probe_function", "", "return value\n", {"value": 1})
    two = source.define("probe_function", "", "return value\n", {"value": 2})
    assert one() == 1 and two() == 2
    assert one.__code__ is two.__code__


# --- the rules the generated code inlines are the reference path's ---------------------------

ITEMS = TEXT | st.integers(-(2**65), 2**65) | st.booleans() | st.none()


@SETTINGS
@given(items=st.lists(ITEMS, max_size=5), field=st.sampled_from(["event_data", "user_data"]))
def test_list_text_rule(items: list[Any], field: str) -> None:
    """An array joined with "!!" (strings, integers, true/false, nulls as ""), user_data with
    its suffix: the text the generated code writes too."""
    suffix = USER_DATA_SUFFIX if field == "user_data" else ""
    assert list_text(field, items) == join_list(field, items) + suffix
    with pytest.raises(EventError):
        list_text(field, [*items, 1.5])


@SETTINGS
@given(value=st.integers(-(2**64), 2**65))
def test_keywords_rule(value: int) -> None:
    """Integer keywords: the 64-bit mask in hex, as Event Viewer shows it."""
    text = keywords_text(value)
    assert text == f"0x{value & 0xFFFFFFFFFFFFFFFF:016X}"
    assert len(text) == 18


@SETTINGS
@given(line=st.text(st.sampled_from(["a", "é", "\\", "=", "\x7f", "\x85", "\u2028", '"'])))
def test_plain_json_rule(line: str) -> None:
    """No backslash, "=", DEL, C1 control, U+2028 or U+2029 in the text."""
    assert plain_json(line) == (
        "\\" not in line and "=" not in line and RAW_CONTROLS.search(line) is None
    )


def test_generated_code_for_every_kind_covers_the_table() -> None:
    """Every field of the table but event_data_names (tested on its own) has cases above,
    with every JSON type its kind takes."""
    covered = {(field, type(value)) for field, value in CASES}
    for field, (_, kind) in FIELD_KINDS.items():
        if field in BASE or field == "event_data_names":
            continue
        allowed = {type(value) for value in VALUES[kind]}
        assert {t for f, t in covered if f == field} == allowed
