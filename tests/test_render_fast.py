"""The fused path of ``Renderer.render_line`` (Windows events of a known shape), compiled
(``_speedups``) and pure-Python, gives exactly the bytes, counts and errors of the reference
path ``parse_event`` + ``render_event``."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azs_syslog.encode.render import COMPILED, Renderer, RenderSettings, may_hold_controls
from azs_syslog.errors import EventError
from azs_syslog.events import load_json, parse_event
from azs_syslog.events.windows import EXTENSIONS, KEYWORDS, LEVEL, LIST, NAMES, STR, UINT
from tests.cef_decoder import RAW_CONTROL_RE, decode_syslog, value_decoded

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ACCEPTED_MS = 1795687200777
# Both fused paths. In CI the compiled one must be built (the test command installs a C
# compiler): a missing one fails there; elsewhere it is skipped.
PATHS = pytest.mark.parametrize(
    "compiled",
    [
        pytest.param(
            True,
            id="compiled",
            marks=pytest.mark.skipif(
                not COMPILED and not os.environ.get("CI"),
                reason="azs_syslog.encode._speedups is not built",
            ),
        ),
        pytest.param(False, id="python"),
    ],
)

# Text that needs every kind of escaping, lone surrogates and non-ASCII included.
# Control characters (docs/cef-mapping.md) and their neighbours in UTF-8 (U+00A0-U+00BF share
# the lead byte of the C1 controls, U+2000-U+2FFF that of U+2028 / U+2029).
CONTROLS = "\t\x0b\x0c\x1b\x1c\x1f\x7f\x80\x85\x9b\x9f\xa0\xbf\u2027\u2028\u2029\u202a"
TEXT = (
    st.text(max_size=40)
    | st.sampled_from(["", "a\\b", "x=y", "\r\n", "\x00", "\ud800", "é|", "\x1b[1m\x85\u2028"])
    | st.text(st.sampled_from([*CONTROLS, "a", "=", "\\", "\n", "é"]), max_size=12)
)
ODD: st.SearchStrategy[Any] = st.sampled_from(
    [None, True, False, 1.5, -1, 0, [], {}, ["a", 1, None], [""], "", "x"]
)
UINTS = st.integers(0, 2**70) | st.integers(-5, -1)
# What event_data holds in real records: strings (empty ones too), integers, booleans, nulls.
ITEMS = TEXT | st.integers(-(2**65), 2**65) | st.booleans() | st.none()


def value_of(kind: int) -> st.SearchStrategy[Any]:
    """A value of the kind's usual JSON type (most of the time valid), or anything."""
    usual: st.SearchStrategy[Any] = {
        STR: TEXT,
        UINT: UINTS,
        LIST: TEXT | st.lists(TEXT, max_size=4) | st.lists(ITEMS, max_size=4),
        KEYWORDS: TEXT | st.integers(-(2**63), 2**64),
        LEVEL: st.integers(-1, 7),
        NAMES: st.lists(TEXT, max_size=4),
    }[kind]
    return st.one_of(usual, usual, usual, usual, ODD)  # mostly the usual type


TIMES = st.sampled_from(
    [
        "2026-11-26T10:00:00.123Z",
        "2026-11-26T10:00:59.999Z",
        "2026-11-26T10:00:00Z",
        "2026-11-26T11:00:00.5+01:00",
        "2026-13-26T10:00:00.123Z",
        "not a time",
        "",
    ]
)
HOSTS = st.sampled_from(["azs-node01.local", "h=1\\x", "bad host", "", "é"])


@st.composite
def windows_events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "windows"}
    for field, _, kind in EXTENSIONS:
        if field in ("provider_name", "event_id", "level") or draw(st.booleans()):
            event[field] = draw(value_of(kind))
    data = event.get("event_data")
    if "event_data_names" in event and type(data) is list and draw(st.booleans()):
        event["event_data_names"] = draw(st.lists(TEXT, min_size=len(data), max_size=len(data)))
    if draw(st.booleans()):
        event["task_name"] = draw(st.one_of(TEXT, TEXT, ODD))
    if draw(st.booleans()):
        event["time"] = draw(st.one_of(TIMES, TIMES, ODD))
    if draw(st.booleans()):
        event["host"] = draw(st.one_of(HOSTS, HOSTS, ODD))
    if draw(st.integers(0, 9)) == 0:
        event["extensions"] = draw(st.dictionaries(st.sampled_from(["a", "b c"]), TEXT))
    if draw(st.integers(0, 19)) == 0:
        event["unknown"] = 1
    if draw(st.integers(0, 19)) == 0:
        event["type"] = draw(st.sampled_from(["arm", "Windows", 1]))
    order = draw(st.permutations(list(event)))
    return {field: event[field] for field in order}


def primer(event: dict[str, Any]) -> dict[str, Any]:
    """A valid event with the same fields (and, where valid, the same JSON types)."""
    kinds = {field: kind for field, _, kind in EXTENSIONS}
    out: dict[str, Any] = {}
    for field, value in event.items():
        kind = kinds.get(field)
        if kind is None:
            out[field] = {
                "type": "windows",
                "task_name": "Task",
                "time": "2026-11-26T10:00:01.000Z",
                "host": "primer-host",
                "extensions": {"k": "v"},
                "unknown": 1,
            }[field]
        elif kind in (UINT, LEVEL):
            out[field] = 3
        elif kind == LIST and type(value) is list:
            out[field] = ["p", "q"]
        elif kind == KEYWORDS and type(value) is int:
            out[field] = 5
        elif kind == NAMES:
            data = event.get("event_data")
            out[field] = (
                ["n", "m"] if type(data) is list else [] if "event_data" not in event else ["n"]
            )
        else:
            out[field] = "primer"
    return out


def reference(settings_: RenderSettings, event: Any) -> tuple[str, Any, int, int]:
    renderer = Renderer(settings_, default_host="default-host")
    try:
        result = renderer.render_event(parse_event(event), ACCEPTED_MS)
    except EventError as exc:
        return ("error", (str(exc), exc.field), 0, 0)
    return ("ok", result, renderer.filtered, renderer.truncated)


def primed(settings_: RenderSettings, first: str, *, compiled: bool) -> Renderer:
    """A renderer that has rendered ``first`` twice: its shape's plan made, then used."""
    renderer = Renderer(settings_, default_host="default-host", compiled=compiled)
    for _ in range(2):
        renderer.render_line(first, ACCEPTED_MS)
    return renderer


def fused(renderer: Renderer, line: str) -> tuple[str, Any, int, int]:
    filtered, truncated = renderer.filtered, renderer.truncated
    try:
        result = renderer.render_line(line, ACCEPTED_MS)
    except EventError as exc:
        return ("error", (str(exc), exc.field), 0, 0)
    return ("ok", result, renderer.filtered - filtered, renderer.truncated - truncated)


def taken_fused(renderer: Renderer, line: str) -> tuple[tuple[str, Any, int, int], bool]:
    """``fused(renderer, line)``, and whether the line stayed on the fused path."""
    taken: list[str] = []
    reference_path = renderer._reference

    def spy(line: str, accepted_ms: int) -> bytes | None:
        taken.append(line)
        return reference_path(line, accepted_ms)

    renderer._reference = spy  # type: ignore[method-assign]
    try:
        return fused(renderer, line), not taken
    finally:
        del renderer._reference


@PATHS
@SETTINGS
@given(
    event=windows_events(),
    message_format=st.sampled_from(["rfc3164", "rfc5424"]),
    framing=st.sampled_from(["octet-counting", "lf", "none"]),
    severity=st.sampled_from(["Default", "Verbose"]),
    limit=st.sampled_from([480, 600, 8192]),
    version=st.sampled_from(["0", "0.0"]),
    ascii_only=st.booleans(),
    names=st.booleans(),
)
def test_fused_path_equals_reference(
    compiled: bool,
    event: dict[str, Any],
    message_format: str,
    framing: str,
    severity: str,
    limit: int,
    version: str,
    ascii_only: bool,
    names: bool,
) -> None:
    settings_ = RenderSettings(
        message_format=message_format,
        framing=framing,
        output_severity=severity,
        max_message_size=limit,
        cef_version=version,
        event_data_names=names,
    )
    renderer = Renderer(settings_, default_host="default-host", compiled=compiled)
    first = primer(event)
    # Not ASCII-only: DEL, C1 controls, U+2028 and U+2029 stand raw in the JSON text.
    line = json.dumps(event, ensure_ascii=ascii_only)
    for _ in range(2):  # compile the shape's plan, then use it
        # An error: a shape no event can have (unknown field, extensions with a bad key).
        with contextlib.suppress(EventError):
            renderer.render_line(json.dumps(first), ACCEPTED_MS)
    expected = reference(settings_, json.loads(line))
    assert fused(renderer, line) == expected
    assert fused(renderer, line) == expected  # and again, the plan now current


@PATHS
def test_fused_path_is_taken_and_shapes_alternate(compiled: bool) -> None:
    """Two shapes in turn, each through its own plan, same bytes as the reference."""
    renderer = Renderer(
        RenderSettings(output_severity="Verbose"), default_host="h", compiled=compiled
    )
    assert renderer.compiled is compiled
    a = {"type": "windows", "provider_name": "P", "event_id": 1, "level": 4, "channel": "C"}
    b = {"type": "windows", "provider_name": "P", "event_id": 2, "level": 2, "task": 7}
    c = {"level": 2, "type": "windows", "event_id": 3, "provider_name": "Q", "task": 8}
    for _ in range(3):
        for event in (a, b, c):
            expected = Renderer(
                RenderSettings(output_severity="Verbose"), default_host="h"
            ).render_object(event, 5)
            assert renderer.render_line(json.dumps(event), 5) == expected
    assert renderer._fast is not None
    assert len(renderer._plans) == 3  # b and c have the same fields: either plan serves both


# The fields the edge-value tests start from (each adds its own).
EDGE_BASE: dict[str, Any] = {
    "type": "windows",
    "provider_name": "P",
    "event_id": 4688,
    "level": 4,
    "channel": "Security",
    "event_data": ["a", "b"],
}


@pytest.mark.parametrize(
    "change",
    [
        {"event_record_id": -1},
        {"level": 9},
        {"level": True},
        {"channel": ""},
        {"event_data": []},
        {"event_data": ["a", 1, None]},
        {"event_data": 5},
        {"time": "2026-11-26T10:00:00.1234+25:00"},
        {"host": "a b"},
        {"type": "arm"},
        {"task_name": ""},
        {"channel": "x" * 9000},
        {"channel": "\ud800"},
        {"channel": "a=b\\c\r\n\x00"},
        {"level": 0},
        {"level": 2},
        {},
    ],
)
@pytest.mark.parametrize("severity", ["Default", "Verbose"])
@PATHS
def test_fused_path_edge_values(compiled: bool, change: dict[str, Any], severity: str) -> None:
    base = {
        **EDGE_BASE,
        "event_record_id": 7,
        "task_name": "T",
        "task": 3,
        "time": "2026-11-26T10:00:00.123Z",
        "host": "h1",
    }
    settings_ = RenderSettings(output_severity=severity)
    renderer = primed(settings_, json.dumps(base), compiled=compiled)
    event = {**base, **change}
    expected = reference(settings_, event)
    assert fused(renderer, json.dumps(event)) == expected


@pytest.mark.parametrize(
    "value",
    [
        "a\\u003db",
        "a\\u003Db",
        "\\u003d",
        "x\\u0000y\\r\\n\\\\",
        "\\u00e9\\u003d",
        "\\\\u003d",
        "-1",
        " lead",
        "",
    ],
)
@PATHS
def test_fused_path_json_escapes(compiled: bool, value: str) -> None:
    """Escapes in the JSON text itself: \\u003d is an "=" although the line holds none."""
    settings_ = RenderSettings(output_severity="Verbose")
    template = (
        '{"type": "windows", "provider_name": "P", "event_id": 1, "level": 4, '
        '"channel": "%s", "computer": "%s"}'
    )
    renderer = primed(settings_, template % ("c", "d"), compiled=compiled)
    for line in (template % (value, "d"), template % ("c", value)):
        expected = reference(settings_, json.loads(line))
        assert fused(renderer, line) == expected


@pytest.mark.parametrize("ascii_only", [True, False], ids=["escaped", "raw"])
@pytest.mark.parametrize("char", list(CONTROLS), ids=[f"U+{ord(c):04X}" for c in CONTROLS])
@PATHS
def test_fused_path_control_characters(compiled: bool, char: str, ascii_only: bool) -> None:
    """Each control character, alone, amid text, beside "=", "\\" and a multi-byte character,
    in a string and a list field: the fused path gives the reference's bytes, and no control
    reaches the message raw."""
    settings_ = RenderSettings(output_severity="Verbose")
    base = {"type": "windows", "provider_name": "P", "event_id": 1, "level": 4}
    renderer = primed(
        settings_, json.dumps(base | {"channel": "c", "event_data": ["d"]}), compiled=compiled
    )
    for text in (char, f"a{char}b", f"={char}\\", f"é{char}{char}日", f"{char}x=y{char}"):
        event = base | {"channel": text, "event_data": [text, "z"]}
        line = json.dumps(event, ensure_ascii=ascii_only)
        expected = reference(settings_, json.loads(line))
        assert fused(renderer, line) == expected
        message = expected[1]
        assert isinstance(message, bytes)
        assert not RAW_CONTROL_RE.search(message.decode())
        decoded = decode_syslog(message.split(b" ", 1)[1])
        assert decoded.cef.ext()["MasChannel"] == value_decoded(text)


@pytest.mark.parametrize(
    "value",
    [
        "18446744073709551616",  # 2**64: orjson reads a float, json an integer
        "18446744073709551615",
        "-9223372036854775809",
        "1000000000000000000000000000000",
        "1e400",  # orjson refuses it, json reads inf
        "1.0",
        "NaN",
        "Infinity",
        '"\\ud800"',  # a lone surrogate: orjson refuses it
        '["\\udc00", "a"]',
        '["a", 18446744073709551616]',
        "true",
        "null",
    ],
)
@pytest.mark.parametrize("field", ["event_record_id", "keywords", "event_data", "event_id"])
@PATHS
def test_fused_path_where_orjson_and_json_differ(compiled: bool, field: str, value: str) -> None:
    """The fused path parses with orjson, which reads some texts differently from json (or
    refuses them): such a line gives exactly what the json-parsed reference gives."""
    settings_ = RenderSettings(output_severity="Verbose")
    fields = {
        "type": '"windows"',
        "provider_name": '"P"',
        "event_id": "4688",
        "level": "4",
        "keywords": "5",
        "event_data": '["a", "b"]',
        "event_record_id": "7",
    }
    first = "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"
    renderer = primed(settings_, first, compiled=compiled)
    line = "{" + ", ".join(f'"{k}": {value if k == field else v}' for k, v in fields.items()) + "}"
    try:
        parsed = load_json(line)
    except EventError as exc:  # NaN, Infinity
        expected: tuple[str, Any, int, int] = ("error", (str(exc), exc.field), 0, 0)
    else:
        expected = reference(settings_, parsed)
    assert fused(renderer, line) == expected


BIG = "é😀\\=\r\n\x00|\t" + "C:\\Windows\\System32\\" * 40


@pytest.mark.parametrize(
    "change",
    [
        {"channel": BIG},  # past the compiled path's 4 KiB stack buffer
        {"event_data": [BIG] * 30},
        {"user_data": [BIG, "", "x"]},
        {"user_data": [""]},
        {"user_data": ["", ""]},
        {"user_data": "text"},
        {"event_data": [""] * 3},
        {"keywords": -1},
        {"keywords": 0},
        {"keywords": 2**64 - 1},
        {"keywords": -(2**63)},
        {"event_record_id": 2**63 - 1},
        {"event_record_id": 2**63},
        {"event_record_id": 2**64 - 1},
        {"event_record_id": 0},
        {"level": 5},
        {"level": 6},
        {"level": -1},
        {"level": False},
        {"task_name": BIG},
        {"host": "h\u00e9"},
    ],
)
@PATHS
def test_fused_path_large_and_odd_values(compiled: bool, change: dict[str, Any]) -> None:
    """Values that take the compiled path's rarer branches: a growing buffer, escapes in
    multibyte text, 64-bit edges, lists with empty items."""
    base = {
        **EDGE_BASE,
        "user_data": ["u"],
        "keywords": 5,
        "event_record_id": 7,
        "task_name": "T",
        "host": "h1",
    }
    settings_ = RenderSettings(output_severity="Verbose", max_message_size=1 << 20)
    renderer = primed(settings_, json.dumps(base), compiled=compiled)
    event = {**base, **change}
    expected = reference(settings_, event)
    assert fused(renderer, json.dumps(event)) == expected
    assert fused(renderer, json.dumps(event, ensure_ascii=False)) == expected


def test_compiled_path_is_built_in_ci() -> None:
    """The test command installs a C compiler: in CI the compiled path must be there."""
    if not os.environ.get("CI"):
        pytest.skip("only CI requires the compiled path")
    assert COMPILED


@pytest.mark.skipif(not COMPILED, reason="azs_syslog.encode._speedups is not built")
def test_compiled_path_keeps_reference_counts() -> None:
    """Rendering the same line many times leaves the reference counts of the line, the plan
    and the text the plan hands back as they were (no leak, no premature release), whether the
    result is kept or dropped."""
    import sys

    renderer = Renderer(RenderSettings(output_severity="Verbose"), default_host="h", compiled=True)
    value = "x" * 50
    items = ["a\\b", "c"]
    event = {"type": "windows", "provider_name": value, "event_id": 1, "level": 4}
    event.update({"channel": value, "event_data": items, "time": "2026-11-26T10:00:00.123Z"})
    line = json.dumps(event)
    for _ in range(2):
        renderer.render_line(line, ACCEPTED_MS)
    from azs_syslog.encode import _speedups

    plan = renderer._native
    first = _speedups.render_text(line, plan)
    assert first is not None
    provider = first[5]  # the plan keeps the last text it returned, and returns it again
    del first
    before = (sys.getrefcount(line), sys.getrefcount(plan), sys.getrefcount(provider))
    kept = [_speedups.render_text(line, plan) for _ in range(1000)]
    assert all(result is not None and result[5] is provider for result in kept)
    del kept
    for _ in range(1000):
        _speedups.render_text(line, plan)
    bad = line.replace('"level": 4', '"level": 9')
    for _ in range(1000):
        assert _speedups.render_text(bad, plan) is None
    del bad
    assert (sys.getrefcount(line), sys.getrefcount(plan), sys.getrefcount(provider)) == before


@pytest.mark.skipif(not COMPILED, reason="azs_syslog.encode._speedups is not built")
@pytest.mark.parametrize(
    "args",
    [
        (1, 1, (("f", 99, None, -1, None),)),  # unknown kind
        (1, 1, (("f", 0, None, 1, None),)),  # return slot out of range
        (1, 1, (("f", 0, "not bytes", -1, None),)),
        (1, 1, (("f", 0, None, -1, b"not str"),)),
        (1, 1, ((b"f", 0, None, -1, None),)),
        (1, 1, (("f", 0, None),)),
        (-1, 1, ()),
        (1, 1, ["not a tuple"]),
    ],
)
def test_compiled_plan_rejects_bad_entries(args: tuple[Any, ...]) -> None:
    from azs_syslog.encode import _speedups

    with pytest.raises((TypeError, ValueError)):
        _speedups.compile_plan(*args)
    with pytest.raises(ValueError):
        _speedups.render_text("{}", "not a plan")


@SETTINGS
@given(values=st.lists(TEXT, max_size=4), ascii_only=st.booleans())
def test_may_hold_controls_has_no_false_negative(values: list[str], ascii_only: bool) -> None:
    """The fused path's cheap look at the JSON text never misses a control character a value
    holds (other than CR, LF and NUL, which have their own rules)."""
    line = json.dumps({"type": "windows", "values": values}, ensure_ascii=ascii_only)
    held = any(
        RAW_CONTROL_RE.search(value.replace("\r", "").replace("\n", "").replace("\x00", ""))
        for value in values
    )
    if held:
        assert may_hold_controls(line)
    if "\\" not in line and "\x7f" not in line and line.isascii():
        assert not may_hold_controls(line)
    assert not may_hold_controls(json.dumps({"path": "C:\\Windows\\temp\\x", "q": '"/'}))


REAL_BASE: dict[str, Any] = {
    "type": "windows",
    "time": "2026-11-26T10:00:00.123Z",
    "channel": "Microsoft-Windows-Sysmon/Operational",
    "computer": "DESKTOP-1",
    "event_data": ["2026-11-26 10:00:00.100", "C:\\Windows\\a.exe", "0x3e7"],
    "event_data_names": ["UtcTime", "Image", "LogonId"],
    "event_id": 1,
    "event_record_id": 2099,
    "keywords": "0x8000000000000000",
    "level": 4,
    "provider_name": "Microsoft-Windows-Sysmon",
    "task": 1,
    "version": 5,
}


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"event_data": [1, True, False], "event_data_names": ["a", "b", "c"]},
        {"event_data": [None, "", 0], "event_data_names": ["a", "", "c"]},
        {"event_data": ["", "", ""]},
        {"event_data": [None, None, None], "event_data_names": ["", "", ""]},
        {"event_data": [-(2**63), 2**64 - 1, -1]},
        {"event_data": ["a", 1.5, "c"]},
        {"event_data": ["a", {}, "c"]},
        {"event_data": ["a", "b"]},  # names: one too many
        {"event_data_names": ["a", "b", 3]},
        {"event_data_names": ["a=b", "c\\d", "\x1b"]},
        {"event_data": [], "event_data_names": []},
        {"channel": "", "computer": "", "keywords": ""},
        {"provider_name": ""},
        {"time": "2026-02-29T10:00:00.123Z"},  # no such day: parse_time explains
        {"time": "2024-02-29T23:59:59.999Z"},
        {"time": "2026-11-26T10:00:60.123Z"},  # a leap second: parse_time reads it
        {"time": "2026-11-26t10:00:00.123z"},
        {"time": "0001-01-01T00:00:00.000Z"},
        {"time": "1969-12-31T23:59:59.999Z"},
        {"time": "2026-11-26T10:00:00.12Z"},
    ],
)
@pytest.mark.parametrize("names", [False, True], ids=["names-off", "names-on"])
@PATHS
def test_fused_path_real_shapes(compiled: bool, names: bool, change: dict[str, Any]) -> None:
    """What real records hold (integers, booleans, nulls and empty strings in event_data, empty
    optional strings, event_data_names) takes the fused path with the reference's bytes, with
    MasEventDataNames written only when asked for."""
    settings_ = RenderSettings(output_severity="Verbose", event_data_names=names)
    renderer = primed(settings_, json.dumps(REAL_BASE), compiled=compiled)
    event = {**REAL_BASE, **change}
    expected = reference(settings_, event)
    plans = dict(renderer._plans)
    assert fused(renderer, json.dumps(event)) == expected
    assert renderer._plans == plans  # the same shape: no new plan, no reference detour needed
    if expected[0] == "ok" and isinstance(expected[1], bytes):
        assert (b" MasEventDataNames=" in expected[1]) == (
            names and "!!".join(event.get("event_data_names", [])) != ""
        )


@PATHS
def test_fused_path_takes_real_shapes_without_the_reference(compiled: bool) -> None:
    """Typed and empty event_data values no longer send a line down the reference path."""
    settings_ = RenderSettings(output_severity="Verbose")
    renderer = primed(settings_, json.dumps(REAL_BASE), compiled=compiled)
    for data in ([1, True, None], ["", "", ""], [None, None, None], ["a", False, 0]):
        event = {**REAL_BASE, "event_data": data, "channel": ""}
        result, stayed = taken_fused(renderer, json.dumps(event))
        assert result == reference(settings_, event)
        assert stayed


def test_compiled_time_reading_equals_parse_time() -> None:
    """The compiled path reads "YYYY-MM-DDThh:mm:ss.mmmZ" itself: the same milliseconds as
    parse_time for every valid one, and hands every other text back as it is."""
    import random

    from azs_syslog.encode import _speedups
    from azs_syslog.encode.plan import NATIVE_TIME, NATIVE_TYPE
    from azs_syslog.events.common import parse_time

    if not COMPILED:
        pytest.skip("azs_syslog.encode._speedups is not built")
    plan = _speedups.compile_plan(
        2,
        1,
        (("type", NATIVE_TYPE, None, -1, None), ("time", NATIVE_TIME, None, 0, None)),
        ("type", "time"),
    )
    rng = random.Random(11)
    years = [1, 4, 100, 400, 1600, 1900, 1969, 1970, 2000, 2024, 2026, 9999]
    read = 0
    for _ in range(20_000):
        year = rng.choice([*years, rng.randint(1, 9999)])
        text = (
            f"{year:04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}T"
            f"{rng.randint(0, 24):02d}:{rng.randint(0, 60):02d}:{rng.randint(0, 60):02d}."
            f"{rng.randint(0, 999):03d}Z"
        )
        result = _speedups.render_text(json.dumps({"type": "windows", "time": text}), plan)
        assert result is not None
        if type(result[1]) is int:
            read += 1
            assert result[1] == parse_time(text), text
        else:
            assert result[1] == text
    assert read > 5_000  # most are valid
