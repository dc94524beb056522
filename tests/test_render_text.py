"""The compiled path's text reader (``_speedups.render_text``): for a Windows event of a known
shape it reads the JSON text itself, and gives exactly what ``_speedups.render`` gives for the
object orjson makes of the same text, or doubts (``None``) and leaves the line to that path.
Whatever it does, ``render_line`` gives the bytes and errors of the pure-Python and reference
paths."""

from __future__ import annotations

import contextlib
import json
import tracemalloc
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from azs_syslog.encode.render import COMPILED, Renderer, RenderSettings
from azs_syslog.errors import EventError
from azs_syslog.events.common import parse_time
from tests.test_render_fast import ACCEPTED_MS, SETTINGS, primer, windows_events

pytestmark = pytest.mark.skipif(not COMPILED, reason="azs_syslog.encode._speedups is not built")

BASE: dict[str, Any] = {
    "type": "windows",
    "time": "2026-11-26T10:00:01.250Z",
    "host": "azs-node01",
    "provider_name": "Microsoft-Windows-Security-Auditing",
    "event_id": 4688,
    "level": 4,
    "task": 13312,
    "task_name": "Process Creation",
    "keywords": 9232379236109516800,
    "channel": "Security",
    "event_data": ["S-1-5-18", "C:\\Windows\\x.exe", 4, True, False, None, ""],
    "event_data_names": ["a", "b", "c", "d", "e", "f", "g"],
    "user_data": "",
}
LINE = json.dumps(BASE, separators=(",", ":"))


def outcome(renderer: Renderer, line: str) -> tuple[str, Any]:
    try:
        return ("ok", renderer.render_line(line, ACCEPTED_MS))
    except EventError as exc:
        return ("error", (str(exc), exc.field))


def renderers(first: str, **settings: Any) -> tuple[Renderer, Renderer]:
    """A compiled and a pure-Python renderer, each with the plan of ``first``'s shape made."""
    made = []
    for compiled in (True, False):
        renderer = Renderer(RenderSettings(**settings), default_host="h", compiled=compiled)
        for _ in range(2):
            with contextlib.suppress(EventError):
                renderer.render_line(first, ACCEPTED_MS)
        made.append(renderer)
    return made[0], made[1]


def render_text(renderer: Renderer, line: Any) -> Any:
    from azs_syslog.encode import _speedups

    return _speedups.render_text(line, renderer._native)


def render_object(renderer: Renderer, line: str) -> Any:
    """What the pure-Python fused path (the plan of the line's shape) returns for the line as
    orjson parses it, the time in epoch ms where the text reader gives it so (``None``: no
    plan, or a doubt)."""
    obj = orjson.loads(line)
    plan = renderer._plans.get(tuple(obj)) if type(obj) is dict else None
    fields = None if plan is None else plan.fields(line, obj)
    if fields is None:
        return None
    time = fields[2]
    if type(time) is str and len(time) == 24 and time.endswith("Z") and time[19] == ".":
        with contextlib.suppress(EventError):
            time = parse_time(time)
    return (*fields[:2], time, *fields[3:])


def within_64_bits(value: Any) -> bool:
    """Every integer of ``value`` one that orjson reads and the text reader takes."""
    if type(value) is int:
        return -(2**63) <= value < 2**64
    if type(value) is list:
        return all(within_64_bits(item) for item in value)
    return True


def holds_surrogate(value: Any) -> bool:
    if type(value) is str:
        return any("\ud800" <= char <= "\udfff" for char in value)
    if type(value) is list:
        return any(holds_surrogate(item) for item in value)
    return False


def test_a_realistic_line_is_read_from_its_text() -> None:
    compiled, python = renderers(LINE, output_severity="Verbose", event_data_names=True)
    fields = render_text(compiled, LINE)
    assert fields is not None
    assert fields == render_object(compiled, LINE)
    extensions, level, time_ms, host, name, provider, event_id, category, task = fields
    assert (level, host, name, provider, event_id, category, task) == (
        4,
        "azs-node01",
        "Process Creation",
        "Microsoft-Windows-Security-Auditing",
        4688,
        None,
        13312,
    )
    assert time_ms == 1795687201250  # read as epoch ms, as render() does
    assert b" MasEventData=S-1-5-18!!C:\\\\Windows\\\\x.exe!!4!!true!!false!!!!" in extensions
    assert b" MasKeywords=0x8020000000000000" in extensions
    assert b"MasEventDataNames=a!!b!!c!!d!!e!!f!!g" in extensions
    assert outcome(compiled, LINE) == outcome(python, LINE)


@SETTINGS
@given(
    event=windows_events(),
    layout=st.sampled_from(["compact", "spaced", "indented", "ascii"]),
    names=st.booleans(),
)
def test_text_reader_equals_the_python_fused_path(
    event: dict[str, Any], layout: str, names: bool
) -> None:
    """On any event and any JSON layout: the same fields as the pure-Python fused path on
    orjson's objects, the text reader taken wherever that path is and nothing stops it, and
    render_line's result that of the pure-Python path."""
    dump = {
        "compact": lambda obj: json.dumps(obj, separators=(",", ":"), ensure_ascii=False),
        "spaced": lambda obj: json.dumps(obj, ensure_ascii=False),
        "indented": lambda obj: json.dumps(obj, indent=2, ensure_ascii=False),
        "ascii": json.dumps,
    }[layout]
    compiled, python = renderers(
        dump(primer(event)), output_severity="Verbose", event_data_names=names
    )
    line = dump(event)
    text = render_text(compiled, line)
    try:
        native = render_object(compiled, line)
    except orjson.JSONDecodeError:  # lone surrogates: orjson refuses them
        native = None
    if text is not None:
        assert text == native
    elif native is not None:
        values = list(event.values())
        assert not within_64_bits(values) or holds_surrogate(values)
    assert outcome(compiled, line) == outcome(python, line)


def replaced(old: str, new: str) -> str:
    assert old in LINE
    return LINE.replace(old, new, 1)


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(replaced('"event_id":4688', '"event_id":04688'), id="leading-zero"),
        pytest.param(replaced('"event_id":4688', '"event_id":4688.0'), id="fraction"),
        pytest.param(replaced('"event_id":4688', '"event_id":4688e0'), id="exponent"),
        pytest.param(replaced('"event_id":4688', '"event_id":-4688'), id="negative"),
        pytest.param(replaced('"event_id":4688', '"event_id":"4688"'), id="string-number"),
        pytest.param(replaced('"event_id":4688', '"event_id":true'), id="boolean-number"),
        pytest.param(replaced('"event_id":4688', '"event_id":null'), id="null-number"),
        pytest.param(replaced('"event_id":4688', '"event_id":18446744073709551616'), id="2**64"),
        pytest.param(replaced('"level":4', '"level":6'), id="level-6"),
        pytest.param(
            replaced('"keywords":9232379236109516800', '"keywords":-9223372036854775809'),
            id="below-64-bits",
        ),
        pytest.param(replaced('"channel":"Security"', '"channel":"Sec\turity"'), id="raw-tab"),
        pytest.param(replaced('"channel":"Security"', '"channel":"Sec\\xurity"'), id="bad-escape"),
        pytest.param(replaced('"channel":"Security"', '"channel":"\\u12G4"'), id="bad-hex"),
        pytest.param(replaced('"channel":"Security"', '"channel":"\\ud800"'), id="lone-high"),
        pytest.param(replaced('"channel":"Security"', '"channel":"\\udc00x"'), id="lone-low"),
        pytest.param(replaced('"channel":"Security"', '"channel":"\\ud800\\u0041"'), id="no-low"),
        pytest.param(replaced('"channel":"Security"', '"channel":{"a":1}'), id="object"),
        pytest.param(replaced('"channel":"Security"', '"channel":["Security"]'), id="array"),
        pytest.param(replaced('"S-1-5-18"', '["S-1-5-18"]'), id="nested-array"),
        pytest.param(replaced('"S-1-5-18"', '{"S":1}'), id="object-item"),
        pytest.param(replaced('"S-1-5-18",', '"S-1-5-18",,'), id="double-comma"),
        pytest.param(replaced('null,""]', 'null,""'), id="unclosed-array"),
        pytest.param(replaced('"type"', '"t\\u0079pe"'), id="escaped-key"),
        pytest.param(replaced('"type":"windows"', '"type":"win\\u0064ows"'), id="escaped-type"),
        pytest.param(replaced('"type":"windows"', '"type":"Windows"'), id="other-type"),
        pytest.param(replaced('"channel":', '"channel":"x","channel":'), id="duplicate-key"),
        pytest.param(replaced('"channel"', '"channels"'), id="other-key"),
        pytest.param(replaced('"event_data_names":["a",', '"event_data_names":['), id="names"),
        pytest.param(replaced('"event_data_names":["a"', '"event_data_names":[1'), id="name-int"),
        pytest.param(
            replaced('"provider_name":"Microsoft-Windows-Security-Auditing"', '"provider_name":""'),
            id="empty-provider",
        ),
        pytest.param(LINE + "x", id="trailing-text"),
        pytest.param(LINE + ",", id="trailing-comma"),
        pytest.param(LINE + "{}", id="second-object"),
        pytest.param(LINE[:-1], id="unclosed"),
        pytest.param(LINE[:-1] + ',"extra":"x"}', id="extra-field"),
        pytest.param(LINE[: LINE.index(',"user_data"')] + "}", id="missing-field"),
        pytest.param(
            json.dumps({**{k: v for k, v in BASE.items() if k != "type"}, "type": "windows"}),
            id="other-order",
        ),
        pytest.param(LINE.replace("Security", "Sec\ud800urity"), id="raw-surrogate"),
        pytest.param("[" + LINE + "]", id="not-an-object"),
    ],
)
def test_text_reader_doubts_and_render_line_still_agrees(line: str) -> None:
    """Anything outside JSON or the plan: the text reader doubts; the line's result is the
    pure-Python path's (the same bytes, or the same error)."""
    compiled, python = renderers(LINE, output_severity="Verbose", event_data_names=True)
    assert render_text(compiled, line) is None
    assert outcome(compiled, line) == outcome(python, line)


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(LINE + "\n", id="line-end"),
        pytest.param(" \t\r\n" + LINE + " \r\n", id="white-space"),
        pytest.param(
            replaced('"channel":"Security"', '"channel":"\\ud83d\\ude00 \\u00e9"'), id="pair"
        ),
        pytest.param(
            replaced('"channel":"Security"', '"channel":"a\\u0000b\\u001bc\\u2028"'), id="ctl"
        ),
        pytest.param(
            replaced('"channel":"Security"', '"channel":"\\"\\\\\\/\\b\\f\\n\\r\\t="'), id="esc"
        ),
        pytest.param(replaced('"channel":"Security"', '"channel":"\x7f\x85\u2029é"'), id="raw"),
        pytest.param(replaced('"event_id":4688', '"event_id":0'), id="zero"),
        pytest.param(replaced('"event_id":4688', '"event_id":-0'), id="minus-zero"),
        pytest.param(replaced('"task":13312', '"task":18446744073709551615'), id="2**64-1"),
        pytest.param(replaced('"keywords":9232379236109516800', '"keywords":-1'), id="kw-1"),
        pytest.param(replaced('"host":"azs-node01"', '"host":"h\\u00e9"'), id="escaped-host"),
        pytest.param(
            replaced('"time":"2026-11-26T10:00:01.250Z"', '"time":"2026-11-26T11:00:01+01:00"'),
            id="offset-time",
        ),
        pytest.param(
            replaced(
                '"time":"2026-11-26T10:00:01.250Z"', '"time":"2026-11-26T10:00:01.25\\u0030Z"'
            ),
            id="escaped-time",
        ),
        pytest.param(replaced('"level":4', '"level":1'), id="level-1"),
        pytest.param(replaced("[", "[ ").replace(",4,", " , 4 ,"), id="spaced-array"),
    ],
)
def test_text_reader_takes_json_it_can_and_equals_the_python_fused_path(line: str) -> None:
    compiled, python = renderers(LINE, output_severity="Verbose", event_data_names=True)
    text = render_text(compiled, line)
    assert text is not None
    assert text[0] == render_object(compiled, line)[0]
    assert outcome(compiled, line) == outcome(python, line)


def test_text_reader_of_an_empty_event_data_and_names() -> None:
    event = {**BASE, "event_data": [], "event_data_names": []}
    line = json.dumps(event)
    compiled, python = renderers(line, output_severity="Verbose", event_data_names=True)
    assert render_text(compiled, line) == render_object(compiled, line)
    assert outcome(compiled, line) == outcome(python, line)


def test_text_reader_needs_a_str_and_a_plan_with_the_shape() -> None:
    from azs_syslog.encode import _speedups

    compiled, _ = renderers(LINE, output_severity="Verbose")
    assert render_text(compiled, LINE.encode()) is None
    without_shape = _speedups.compile_plan(1, 8, (("type", 5, None, -1, None),))
    assert _speedups.render_text('{"type":"windows"}', without_shape) is None
    with_shape = _speedups.compile_plan(1, 8, (("type", 5, None, -1, None),), ("type",))
    assert _speedups.render_text('{"type":"windows"}', with_shape) == (b"",) + (None,) * 8
    assert _speedups.render_text('{"type":"window"}', with_shape) is None
    # A shape that names a field twice, or one without an entry: never read from the text.
    twice = _speedups.compile_plan(
        2, 8, (("type", 5, None, -1, None), ("host", 6, None, 2, None)), ("type", "type")
    )
    assert _speedups.render_text('{"type":"windows","type":"windows"}', twice) is None
    with pytest.raises(TypeError):
        _speedups.compile_plan(1, 8, (("type", 5, None, -1, None),), ["type"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        _speedups.render_text(LINE, "not a plan")


def test_text_reader_holds_no_memory() -> None:
    """Rendering the same lines many times, kept or dropped, leaves no memory behind."""
    escaped = replaced('"channel":"Security"', '"channel":"\\u00e9\\n' + "x" * 5000 + '"')
    compiled, _ = renderers(LINE, output_severity="Verbose", event_data_names=True)
    for _ in range(200):  # warm up: caches, free lists
        render_text(compiled, LINE)
        render_text(compiled, escaped)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5000):
            assert render_text(compiled, LINE) is not None
            assert render_text(compiled, escaped) is not None
            assert render_text(compiled, LINE[:-1]) is None
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 64 * 1024


# -- render_message: the whole message in one call ------------------------------------------


def render_message(renderer: Renderer, line: str, accepted_ms: int = ACCEPTED_MS) -> Any:
    from azs_syslog.encode import _speedups

    return _speedups.render_message(line, renderer._native, renderer._context, accepted_ms)


MESSAGE_CASES = [
    pytest.param({}, id="as-is"),
    pytest.param({"task_name": ""}, id="name-from-task"),
    pytest.param({"task_name": "", "task_category": "Category"}, id="name-from-category"),
    pytest.param({"host": None}, id="no-host"),
    pytest.param({"time": None}, id="no-time"),
    pytest.param({"time": "1969-12-31T23:59:58.750Z"}, id="before-1970"),
    pytest.param({"time": "0001-01-01T00:00:00.001Z"}, id="year-1"),
    pytest.param({"time": "9999-12-31T23:59:59.999Z"}, id="year-9999"),
    pytest.param({"level": 2}, id="error-level"),
    pytest.param({"level": 0}, id="level-0"),
    pytest.param({"provider_name": "P|rov\\ider=é"}, id="header-escapes"),
    pytest.param({"task_name": "Ná|me"}, id="non-ascii-name"),
    pytest.param({"channel": "x" * 9000}, id="too-long"),
]


def event_line(change: dict[str, Any]) -> str:
    event = {**BASE, **change}
    return json.dumps({k: v for k, v in event.items() if v is not None})


@pytest.mark.parametrize("change", MESSAGE_CASES)
@pytest.mark.parametrize("message_format", ["rfc3164", "rfc5424"])
@pytest.mark.parametrize("severity", ["Default", "Verbose"])
@pytest.mark.parametrize("framing", ["octet-counting", "lf", "none"])
def test_render_message_equals_the_python_path(
    change: dict[str, Any], message_format: str, severity: str, framing: str
) -> None:
    """Once the renderer's caches hold what the event needs, the whole message comes from one
    C call (False when filtered, the count kept), with the pure-Python path's bytes; a message
    over the limit, or a cache miss, is left to the Python path."""
    line = event_line(change)
    settings_ = {"message_format": message_format, "output_severity": severity}
    compiled, python = renderers(line, framing=framing, **settings_)
    expected = outcome(python, line)
    assert outcome(compiled, line) == expected
    assert compiled.filtered == python.filtered
    direct = render_message(compiled, line)
    if severity == "Default" and change.get("level", BASE["level"]) not in (1, 2, 3):
        assert direct is False
        assert expected == ("ok", None)
    elif "channel" in change:
        assert direct is None
        assert compiled.truncated == python.truncated == 3
    else:
        assert type(direct) is bytes
        assert compiled._frame(direct) == expected[1]


def test_render_message_leaves_a_cache_miss_or_an_unchecked_host_to_python() -> None:
    line = event_line({})
    compiled, python = renderers(line, output_severity="Verbose")
    assert type(render_message(compiled, line)) is bytes
    # Another minute, another name, another host: each one a cache the C call does not fill.
    for change in (
        {"time": "2026-11-26T10:07:01.250Z"},
        {"task_name": "Another"},
        {"host": "never-seen-host"},
        {"time": "2026-11-26T11:00:01+01:00"},
    ):
        other = event_line(change)
        assert render_message(compiled, other) is None
        assert outcome(compiled, other) == outcome(python, other)
        if "+01:00" not in other:  # a time in another form is always the Python path's
            assert type(render_message(compiled, other)) is bytes
    # A time not in epoch milliseconds' range: the Python path says what it is.
    assert render_message(compiled, line, 2**70) is None


def test_render_message_filters_by_the_settings_levels() -> None:
    for level, kept in ((1, True), (2, True), (3, True), (4, False), (5, False), (0, False)):
        line = event_line({"level": level})
        compiled, python = renderers(line, output_severity="Default")
        assert outcome(compiled, line) == outcome(python, line)
        direct = render_message(compiled, line)
        assert (type(direct) is bytes) if kept else (direct is False)


@pytest.mark.parametrize(
    ("old", "new", "checked"),
    [
        pytest.param('"S-1-5-18"', '"S-1-\\u00e9"', False, id="escaped-item"),
        pytest.param('"S-1-5-18"', '"S-1-\\ud800"', True, id="lone-surrogate-item"),
        pytest.param('"channel": "Security"', '"channel":"\\udc00"', True, id="lone-surrogate"),
        pytest.param('"S-1-5-18"', '{"a":1}', True, id="object-item"),
        pytest.param('"a", "b"', '"a", 2', True, id="int-name"),
        pytest.param('"a", "b", ', '"a", ', True, id="names-short"),
        pytest.param('"channel": "Security"', '"channel": 3', True, id="int-channel"),
        pytest.param('"channel": "Security"', '"channel": ""', False, id="empty-channel"),
    ],
)
def test_an_event_the_filter_drops_is_checked_as_one_it_sends(
    old: str, new: str, checked: bool
) -> None:
    """An event of a level not sent has its string and array pairs checked, not written
    (text_fields' `written`): every doubt the written event would raise is raised, so its
    outcome (filtered, or the error that rejects it) is the pure-Python path's."""
    for level, severity in ((4, "Default"), (0, "Default"), (1, "Default"), (4, "Verbose")):
        line = event_line({"level": level}).replace(old, new, 1)
        assert line != event_line({"level": level})
        compiled, python = renderers(LINE, output_severity=severity, event_data_names=True)
        assert outcome(compiled, line) == outcome(python, line)
        assert compiled.filtered == python.filtered
        direct = render_message(compiled, line)
        if checked:
            assert direct is None  # a doubt: the Python path decides
        else:
            sent = severity == "Verbose" or level == 1
            assert (type(direct) is bytes) if sent else (direct is False)


def test_compile_context_checks_its_arguments() -> None:
    from azs_syslog.encode import _speedups

    good: list[Any] = [(b"<1>",) * 11, (0,) * 6, 1, False, 100, b" ", "h", {}, {}, {}, set()]
    assert _speedups.compile_context(*good) is not None
    for index, bad in (
        (0, (b"<1>",) * 10),
        (0, ("<1>",) * 11),
        (1, (0,) * 5),
        (1, (11,) * 6),
        (4, -1),
        (5, " "),
        (10, {}),
    ):
        with pytest.raises((TypeError, ValueError)):
            _speedups.compile_context(*good[:index], bad, *good[index + 1 :])  # type: ignore[call-arg]
    compiled, _ = renderers(LINE, output_severity="Verbose")
    with pytest.raises(ValueError):
        _speedups.render_message(LINE, compiled._native, "not a context", ACCEPTED_MS)
    with pytest.raises(TypeError):
        _speedups.render_message(LINE, compiled._native)  # type: ignore[call-arg]


def test_render_message_holds_no_memory() -> None:
    compiled, _ = renderers(LINE, output_severity="Verbose", event_data_names=True)
    miss = event_line({"task_name": "Never cached"})
    for _ in range(200):
        render_message(compiled, LINE)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5000):
            assert type(render_message(compiled, LINE)) is bytes
            assert render_message(compiled, miss) is None
            assert render_message(compiled, LINE[:-1]) is None
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 64 * 1024


MUTATION_CHARS = st.sampled_from(
    [*'{}[]:,"\\ \t\n0123456789-+.eEtrufalsn', "\\u", "\\ud800", "\\udc00", "é", "\x00", "\x7f"]
)


@SETTINGS
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(LINE)), st.integers(0, 3), MUTATION_CHARS), max_size=4
    ),
    severity=st.sampled_from(["Default", "Verbose"]),
)
def test_a_damaged_line_gets_the_python_paths_outcome(
    edits: list[tuple[int, int, str]], severity: str
) -> None:
    """A line damaged anywhere (characters inserted, deleted or replaced): the compiled path's
    result (bytes, filter or error) is the pure-Python path's."""
    line = LINE
    for at, cut, text in edits:
        at = min(at, len(line))
        line = line[:at] + text + line[at + cut :]
    compiled, python = renderers(LINE, output_severity=severity, event_data_names=True)
    for _ in range(2):  # the second time with the caches the first one filled
        assert outcome(compiled, line) == outcome(python, line)
    assert compiled.filtered == python.filtered
    assert compiled.truncated == python.truncated


def test_render_message_doubts_on_a_plan_without_the_required_fields() -> None:
    """A plan not made by the renderer (no level, provider or event id returned): a doubt."""
    from azs_syslog.encode import _speedups

    compiled, _ = renderers(LINE, output_severity="Verbose")
    bare = _speedups.compile_plan(1, 8, (("type", 5, None, -1, None),), ("type",))
    assert _speedups.render_message('{"type":"windows"}', bare, compiled._context, 0) is None
    as_text = _speedups.compile_plan(
        2, 8, (("type", 5, None, -1, None), ("level", 0, None, 0, None)), ("type", "level")
    )
    line = '{"type":"windows","level":"4"}'
    assert _speedups.render_message(line, as_text, compiled._context, 0) is None


def mixed_lines() -> list[str | bytes]:
    """Lines render_lines meets: runs of one shape, sent and filtered, another shape, bytes,
    leading white space, another event type, a line too long."""
    sent, dropped = event_line({"level": 2}), event_line({"level": 4})
    other = event_line({"level": 4, "user_data": None, "task_name": None})
    alert = json.dumps(
        {"type": "alert", "state": "resolved", "fault_type_id": "F", "alert_id": "A"}
    )
    return [
        *[dropped] * 20,
        sent,
        *[other] * 3,
        sent.encode(),
        " " + dropped,
        alert,
        event_line({"level": 2, "event_data": ["x" * 3000] * 3, "event_data_names": None}),
        *[dropped, sent] * 10,
    ]


def counting(render: Any, seen: list[object]) -> Any:
    """``render`` (a render_line), each line it is given noted in ``seen``."""

    def counted(line: str | bytes, accepted_ms: int) -> bytes | None:
        seen.append(line)
        return render(line, accepted_ms)

    return counted


@pytest.mark.parametrize("severity", ["Default", "Verbose"])
@pytest.mark.parametrize("limit", [2048, 65536])
def test_render_lines_is_render_line_on_each(severity: str, limit: int) -> None:
    """The same messages, filtered and truncated counts as render_line one line at a time;
    the same error for an invalid line, with the messages before it in ``out``."""
    from itertools import repeat

    lines = mixed_lines()
    bad = event_line({"level": 4, "event_id": "x"})
    for case in (lines, [*lines[:27], bad, *lines[27:]], [bad]):
        made = []
        taken_alone: list[object] = []
        for batched in (True, False):
            renderer = Renderer(
                RenderSettings(output_severity=severity, max_message_size=limit),
                default_host="h",
            )
            out: list[bytes | None] = []
            error = None
            singles: list[object] = []
            renderer.render_line = counting(renderer.render_line, singles)  # type: ignore[method-assign]
            try:
                if batched:
                    renderer.render_lines(list(case), ACCEPTED_MS, out)
                else:
                    out.extend(map(renderer.render_line, case, repeat(ACCEPTED_MS)))
            except EventError as exc:
                error = (str(exc), exc.field)
            made.append((out, error, renderer.filtered, renderer.truncated))
            taken_alone = singles if batched else taken_alone
        assert made[0] == made[1]
        if case is lines:  # the compiled call took most lines (each shape's first: Python)
            assert len(taken_alone) < len(lines) // 2, taken_alone
            assert made[0][1] is None and len(made[0][0]) == len(lines)
            assert made[0][2] > 0 if severity == "Default" else made[0][2] == 0
            assert made[0][3] > 0 if limit == 2048 else made[0][3] == 0
        else:
            assert made[0][1] is not None


def test_render_messages_checks_its_arguments() -> None:
    from azs_syslog.encode import _speedups

    renderer = Renderer(RenderSettings(), default_host="h")
    for _ in range(2):  # the plan of LINE's shape made, its host checked
        renderer.render_line(LINE, ACCEPTED_MS)
    args = (0, renderer._native, renderer._context, ACCEPTED_MS, renderer._frame)
    with pytest.raises(TypeError, match="two lists"):
        _speedups.render_messages((LINE,), *args, [])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="two lists"):
        _speedups.render_messages([LINE], *args, ())  # type: ignore[arg-type]
    out: list[bytes | None] = []
    assert _speedups.render_messages([LINE, b"x", LINE], *args, out) == (1, 1)
    assert out == [None]  # level 4: not sent under Default
