"""The EVTX input's direct reading of the parser's XML layout (``inputs.evtx.fast_event``)
gives exactly what the XML parser and ``event_from_element`` give (``slow_event``): the same
fields, values and order, for every record of the fixtures (real logs) and for variants of them
that hold what the layout may hold (entities, line ends, controls), or what it reads no further
(another entity, a comment, a self-closing or prefixed element, RenderingInfo), which must take
the XML parser instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from evtx import PyEvtxParser

from azs_syslog.inputs.detect import open_input
from azs_syslog.inputs.evtx import fast_event, slow_event

FIXTURES = Path(__file__).parent / "fixtures" / "evtx"
EVTX_FILES = sorted(FIXTURES.glob("*.evtx"))


def record_xml(path: Path) -> list[str]:
    records = PyEvtxParser(str(path)).records()
    out: list[str] = []
    for _ in range(100_000):  # bounded: the fixtures hold a few thousand
        try:
            record: Any = next(records)
            out.append(record["data"])
        except StopIteration:
            return out
        except RuntimeError:
            continue
    raise AssertionError("too many records")


# (what is changed, the change, whether the direct reading may still take the record)
VARIANTS: list[tuple[str, str, str, bool]] = [
    ("the five entities", "</Data>", "&amp;x&lt;&gt;&quot;&apos;</Data>", True),
    ("CR LF and CR in a value", "</Data>", "a\r\nb\rc</Data>", True),
    ("a control character in a value", "</Data>", "x\x01y</Data>", True),
    ("a blank value of a tab and LF", "<Data>\n    </Data>", "<Data>\t\n</Data>", True),
    ("an entity in an attribute", 'Name="', 'Name="a&amp;b', True),
    ("a character reference", "</Data>", "&#65;</Data>", False),
    ("a line end in an attribute", 'ProcessID="', 'ProcessID=" \r\n', False),
    ("a white-space control in a value", "</Data>", "\x1c</Data>", False),
    ("a self-closing element", "<Data>\n    </Data>", "<Data/>", False),
    ("a comment", "</Data>", "<!-- c --></Data>", False),
    (
        "RenderingInfo",
        "  </EventData>\n",
        '  </EventData>\n  <RenderingInfo Culture="en">\n    <Message>hi</Message>\n'
        "  </RenderingInfo>\n",
        False,
    ),
    (
        "a prefixed System element",
        "</Computer>",
        '</Computer>\n    <x:Computer xmlns:x="u">other</x:Computer>',
        False,
    ),
    ("a number with blanks", "<EventID>", "<EventID>  ", True),
    ("a self-closing UserData element", "</listenerName>", "</listenerName>\n      <e/>", False),
    (
        "text in EventData itself",
        "  <EventData>\n  </EventData>\n",
        "  <EventData>t</EventData>\n",
        False,
    ),
]


def variants(xml: str, changed: bool) -> Iterator[tuple[str, str, bool]]:
    yield "as written", xml, True
    if not changed:
        return
    for label, old, new, readable in VARIANTS:
        if old in xml:
            yield label, xml.replace(old, new, 1), readable


@pytest.mark.parametrize("path", EVTX_FILES, ids=lambda path: path.name)
def test_direct_reading_equals_the_xml_parser(path: Path) -> None:
    direct = 0
    records = record_xml(path)
    assert records
    for index, xml in enumerate(records):
        in_layout = fast_event(xml) is not None
        for label, text, readable in variants(xml, changed=index % 3 == 0):
            fast = fast_event(text)
            if fast is None:
                assert not (readable and in_layout), label
                continue
            if label == "as written":
                direct += 1
            slow = slow_event(text)
            assert fast == slow, (label, text)
            assert list(fast) == list(slow), (label, text)  # the same order: the same JSON
    # Nearly every real record is read directly (those that are not hold a white-space control
    # or an EventData with an attribute).
    assert direct >= 0.97 * len(records), (direct, len(records))


def test_records_not_in_the_layout_take_the_xml_parser() -> None:
    xml = record_xml(FIXTURES / "security.evtx")[5]
    assert fast_event(xml) is not None
    for label, old, new, readable in VARIANTS:
        if not readable and old in xml:
            changed = xml.replace(old, new, 1)
            assert fast_event(changed) is None, label
    assert fast_event(xml.replace('encoding="utf-8"', 'encoding="UTF-8"')) is None


def test_evtx_input_yields_json_text_of_our_event() -> None:
    """Each event is handed on as the JSON text of our format (what the renderer's fused
    path and the queue's raw line take), the same object the XML parser's mapping gives."""
    path = FIXTURES / "new-user-security.evtx"
    with path.open("rb") as stream:
        opened = open_input(stream, "evtx", lambda problem: None)
        records = list(opened.records)
    assert len(records) == len(record_xml(path))
    for (_, record), xml in zip(records, record_xml(path), strict=True):
        assert isinstance(record, str)
        assert record == orjson.dumps(slow_event(xml)).decode()
