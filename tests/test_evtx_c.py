"""The compiled reading of ``.evtx`` records (``_speedups.evtx_json``, inputs/evtx.py) writes
exactly the JSON text of the Python map, ``orjson.dumps(fast_event(data))``, or None (the Python
map then reads the record): on every record of the fixtures (real logs), on variants of them
that it reads or leaves to Python, and in the whole output of ``format-event`` and
``send-event``."""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import Result

from azs_syslog.encode.render import COMPILED
from azs_syslog.inputs import evtx as evtx_input
from azs_syslog.inputs.evtx import fast_event
from tests.support import run_cli
from tests.test_evtx_fast import EVTX_FILES, record_xml

if COMPILED:
    from azs_syslog.encode._speedups import evtx_json

pytestmark = pytest.mark.skipif(
    not COMPILED and not os.environ.get("CI"),
    reason="azs_syslog.encode._speedups is not built",
)


def python_line(xml: str) -> str | None:
    """The JSON text of the Python map; None where it gives none (not its layout, or an event
    that JSON cannot hold)."""
    event = fast_event(xml)
    if event is None:
        return None
    try:
        return orjson.dumps(event).decode()
    except TypeError:
        return None


def check(xml: str) -> bool:
    """The compiled text is None or the Python one; True when it is the Python one."""
    line = evtx_json(xml)
    if line is not None:
        assert line == python_line(xml), xml
    return line is not None


@pytest.mark.parametrize("path", EVTX_FILES, ids=lambda path: path.name)
def test_every_fixture_record_is_the_python_text_or_none(path: Path) -> None:
    for xml in record_xml(path):
        check(xml)


def test_most_records_take_the_compiled_path() -> None:
    records = [xml for path in EVTX_FILES for xml in record_xml(path)]
    taken = sum(check(xml) for xml in records)
    # Those left to Python (17 of 4692): <Binary>, an entity, a control.
    assert taken > 0.99 * len(records), (taken, len(records))


def sub(pattern: str, new: str) -> Callable[[str], str]:
    return lambda xml: re.sub(pattern, new, xml, count=1)


# (what is changed, how, whether the compiled path takes it: True, False, or None for either),
# each applied where the record has what it changes, on records the compiled path takes.
VARIANTS: list[tuple[str, Callable[[str], str], bool | None]] = [
    ("the five entities", sub("</Data>", "&amp;x&lt;&gt;&quot;&apos;</Data>"), False),
    ("CR LF in a value", sub("</Data>", "a\r\nb</Data>"), True),
    ("CR and LF in a value", sub("</Data>", "a\rb\nc\r\r\nd\r</Data>"), True),
    ("a value of lines and tabs", sub("</Data>", "\n\t\tx\n</Data>"), True),
    (
        "a blank value of a tab and CR LF",
        sub(r"(<Data[^>]*>)[^<\n]+(</Data>)", "\\1\t\r\n\\2"),
        True,
    ),
    ("lines with non-ASCII", sub("</Data>", "\u00e9\nx</Data>"), True),
    ("lines of non-ASCII blanks", sub(r"(<Data[^>]*>)[^<\n]+(</Data>)", "\\1\n\u00a0\\2"), False),
    ("lines ending in non-ASCII", sub(r"(<Data[^>]*>)[^<\n]+(</Data>)", "\\1\n\u00e9\\2"), False),
    ("CR in a name", sub('<Data Name="', '<Data Name="\r'), False),
    ("CR in System", sub("</Computer>", "\r</Computer>"), False),
    ("a control in a value", sub("</Data>", "x\x01y</Data>"), False),
    ("a white-space control", sub("</Data>", "\x1c</Data>"), False),
    ("a tab in a value", sub("</Data>", "a\tb</Data>"), True),
    ("a quote and a backslash in a value", sub("</Data>", 'a"b\\\\c</Data>'), True),
    ("'>' in a value", sub("</Data>", "a>b</Data>"), False),
    ("'<' in a name", sub('Name="', 'Name="a<'), False),
    ("a tab in a name", sub('<Data Name="', '<Data Name="\t'), False),
    ("non-ASCII in a value", sub(r"(<Data[^>]*>[^<\n]+)<", "\\1é\u20ac\U0001f600<"), True),
    ("a private-use character", sub("</Data>", "\uf701</Data>"), False),
    ("U+FFFD", sub("</Data>", "\ufffd</Data>"), False),
    ("a lone surrogate", sub("</Data>", "\ud800</Data>"), False),
    ("an empty Data", sub(r"(<Data[^>]*>)[^<\n]+(</Data>)", r"\1\2"), True),
    ("a blank Data", sub(r"(<Data[^>]*>)[^<\n]+(</Data>)", "\\1\n    \\2"), True),
    ("a Data without Name", sub(r'<Data Name="[^"]*">', "<Data>"), True),
    ("a Data with an empty Name", sub(r'<Data Name="[^"]*">', '<Data Name="">'), True),
    (
        "Binary in EventData",
        sub("  </EventData>", "    <Binary>00</Binary>\n  </EventData>"),
        False,
    ),
    ("text in EventData", sub("  <EventData>\n", "  <EventData>t\n"), False),
    ("odd spacing", sub("    <EventID", "   <EventID"), False),
    ("a blank line in System", sub("    <Level>", "\n    <Level>"), False),
    ("no Version", sub(r"    <Version>[^\n]*\n", ""), True),
    ("no Level, Task, Opcode", sub(r"(?s)    <Level>.*?    <Keywords>", "    <Keywords>"), True),
    ("no Keywords", sub(r"    <Keywords>[^\n]*\n", ""), True),
    ("no TimeCreated", sub(r"    <TimeCreated[^\n]*\n    </TimeCreated>\n", ""), True),
    ("no Correlation", sub(r"    <Correlation[^\n]*\n    </Correlation>\n", ""), True),
    ("no Execution", sub(r"    <Execution[^\n]*\n    </Execution>\n", ""), True),
    ("no Channel, Computer", sub(r"(?s)    <Channel>.*?    <Security", "    <Security"), True),
    ("no Security", sub(r"    <Security[^\n]*\n    </Security>\n", ""), True),
    ("blank numbers", sub(r"<Version>[0-9]+<", "<Version>\n    <"), True),
    ("an empty Channel", sub(r"<Channel>[^<]*<", "<Channel><"), False),
    ("a blank Computer", sub(r"<Computer>[^<]*<", "<Computer>\n    <"), False),
    ("a Qualifiers attribute", sub("<EventID>", '<EventID Qualifiers="16384">'), True),
    ("leading zeros", sub("<EventID>", "<EventID>000"), True),
    ("a 19-digit number", sub(r"<EventRecordID>[0-9]+", "<EventRecordID>9" + "8" * 18), True),
    ("a 20-digit number", sub(r"<EventRecordID>[0-9]+", "<EventRecordID>" + "1" * 20), False),
    ("a 40-digit number", sub(r"<EventRecordID>[0-9]+", "<EventRecordID>" + "9" * 40), False),
    ("a sign", sub(r"<Level>[0-9]+", "<Level>-1"), False),
    ("a letter in a number", sub(r"<Task>[0-9]+", "<Task>12a"), False),
    ("blanks around a number", sub(r"<EventID>([0-9]+)", r"<EventID> \1 "), False),
    ("Arabic-Indic digits", sub(r"<Opcode>[0-9]+", "<Opcode>\u0661"), False),
    ("a letter in a process id", sub(r'ProcessID="[0-9]*"', 'ProcessID="4x"'), False),
    ("an empty process id", sub(r'ProcessID="[0-9]*"', 'ProcessID=""'), True),
    ("lower-case keywords", sub(r"<Keywords>0x([0-9A-F]+)", r"<Keywords>0X\1ab"), None),
    ("short keywords", sub(r"<Keywords>[^<]+", "<Keywords>0x1f"), True),
    ("padded keywords", sub(r"<Keywords>0x", "<Keywords>0x000000"), True),
    ("17-digit keywords", sub(r"<Keywords>[^<]+", "<Keywords>0x1" + "0" * 16), False),
    ("decimal keywords", sub(r"<Keywords>[^<]+", "<Keywords>128"), False),
    ("keywords in blanks", sub(r"<Keywords>([^<]+)", r"<Keywords> \1"), False),
    ("a bare 0x", sub(r"<Keywords>[^<]+", "<Keywords>0x"), False),
    ("a time in seconds", sub(r'SystemTime="([^."]+)\.[0-9]+Z"', r'SystemTime="\1Z"'), True),
    ("a time in tenths", sub(r'SystemTime="([^."]+\.[0-9])[0-9]*Z"', r'SystemTime="\1Z"'), True),
    ("a time in ns", sub(r'SystemTime="([^."]+\.)[0-9]*Z"', r'SystemTime="\g<1>123456789Z"'), True),
    ("a lower-case time", sub(r'SystemTime="([^T"]+)T([^"]+)Z"', r'SystemTime="\1t\2z"'), True),
    ("a time with an offset", sub(r'SystemTime="([^"]+)Z"', r'SystemTime="\1+01:00"'), False),
    ("a time with a dot only", sub(r'SystemTime="([^."]+)[^"]*"', r'SystemTime="\1.Z"'), False),
    ("a date of other digits", sub(r'SystemTime="[0-9]', 'SystemTime="\u0662'), False),
    ("an empty time", sub(r'SystemTime="[^"]*"', 'SystemTime=""'), True),
    ("a GUID in braces", sub(r'Guid="([^{"][^"]*)"', r'Guid="{\1}"'), True),
    (
        "a lower-case GUID",
        lambda xml: re.sub(r'Guid="([^"]+)"', lambda m: f'Guid="{m[1].lower()}"', xml, count=1),
        True,
    ),
    ("a GUID in blanks", sub(r'Guid="([^"]+)"', r'Guid=" \1"'), False),
    ("a GUID in double braces", sub(r'Guid="([^"]+)"', r'Guid="{{\1}}"'), False),
    ("an empty GUID", sub(r'Guid="[^"]+"', 'Guid=""'), True),
    ("an activity id", sub("<Correlation>", '<Correlation ActivityID="{ab-CD}">'), True),
    (
        "both activity ids",
        sub("<Correlation>", '<Correlation ActivityID="a1" RelatedActivityID="{B2}">'),
        True,
    ),
    (
        "an event source name",
        sub(r"(<Provider (?:(?!EventSourceName)[^>])*)>", r'\1 EventSourceName="S">'),
        True,
    ),
    (
        "attributes in another order",
        sub(r'(<Provider Name="[^"]*") (Guid="[^"]*")', r"\2 \1"),
        False,
    ),
    ("an empty provider name", sub(r'<Provider Name="[^"]*"', '<Provider Name=""'), True),
    ("a user id", sub("<Security>", '<Security UserID="S-1-5-18">'), True),
    ("an empty user id", sub("<Security>", '<Security UserID="">'), True),
    ("a tab in an attribute", sub('Name="', 'Name="\t'), False),
    ("RenderingInfo", sub("</Event>\n", "  <RenderingInfo/>\n</Event>\n"), False),
    ("no data part", sub(r"(?s)  <(EventData|UserData)>.*</Event>\n", "</Event>\n"), None),
    (
        "an empty EventData",
        sub(r"(?s)  <EventData>.*</Event>\n", "  <EventData>\n  </EventData>\n</Event>\n"),
        True,
    ),
    ("something after the event", lambda xml: xml + " ", False),
    ("another declaration", sub('encoding="utf-8"', 'encoding="UTF-8"'), False),
]
# UserData (a record of the TerminalServices fixture: <EventXML><listenerName>..).
USER_VARIANTS: list[tuple[str, Callable[[str], str], bool | None]] = [
    ("an empty leaf", sub(r"(<listenerName>)[^<]*", r"\1"), True),
    ("a blank leaf", sub(r"(<listenerName>)[^<]*", "\\1\n      "), None),
    ("a leaf of LF and text", sub(r"(<listenerName>)[^<]*", "\\1\nx"), False),
    (
        "a nested leaf",
        sub("</EventXML>", "  <a>\n        <b>x</b>\n      </a>\n    </EventXML>"),
        True,
    ),
    ("more leaves", sub("</EventXML>", "  <c>1</c>\n      <d></d>\n    </EventXML>"), True),
    ("a tab in a leaf", sub(r"(<listenerName>)", "\\1\t"), True),
    ("CR in a leaf", sub(r"(<listenerName>)", "\\1\r"), False),
    ("a self-closing element", sub("</EventXML>", "  <e/>\n    </EventXML>"), False),
    ("a comment", sub("</EventXML>", "<!-- c -->\n    </EventXML>"), False),
    ("text beside elements", sub("</EventXML>", "t\n    </EventXML>"), False),
    ("an end tag too many", sub("</EventXML>", "</EventXML></x>"), False),
    ("a start tag too many", sub("</EventXML>", "<x></EventXML>"), False),
    ("a tab between elements", sub("\n    </EventXML>", "\t\n    </EventXML>"), True),
    ("no element", sub(r"(?s)  <UserData>.*  </UserData>", "  <UserData>\n  </UserData>"), None),
]


def apply(xml: str, variants: list[tuple[str, Callable[[str], str], bool | None]]) -> list[str]:
    applied = []
    for label, change, taken in variants:
        varied = change(xml)
        if varied == xml:
            continue
        applied.append(label)
        compiled = check(varied)
        if taken is not None:
            assert compiled == taken, label
    return applied


def test_variants_are_the_python_text_or_none() -> None:
    applied: set[str] = set()
    for path in EVTX_FILES:
        records = record_xml(path)
        for xml in records[:: max(1, len(records) // 25)]:  # ~25 a file, the first included
            if evtx_json(xml) is None:
                continue
            applied.update(apply(xml, VARIANTS))
            if "<UserData>" in xml and "<listenerName>" in xml:
                applied.update(apply(xml, USER_VARIANTS))
    every = {label for label, _, _ in VARIANTS + USER_VARIANTS}
    assert applied == every, sorted(every - applied)


def test_random_edits_are_the_python_text_or_none() -> None:
    rng = random.Random(20261130)  # the same edits on every run
    records = [xml for path in EVTX_FILES for xml in record_xml(path)[:60]]
    alphabet = '<>/"=&;\n\t\r {}-.:xX0179aFzZT\x01\xe9\uf701'
    taken = 0
    for _ in range(4000):
        xml = rng.choice(records)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(xml))
            cut = rng.choice((0, 0, 1, 5))
            new = "".join(rng.choices(alphabet, k=rng.randint(0, 3)))
            xml = xml[:at] + new + xml[at + cut :]
        taken += check(xml)
    assert taken > 100  # edits in values: the compiled path still reads them


def test_not_a_str_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        evtx_json(b"<?xml")  # type: ignore[arg-type]
    assert evtx_json("") is None


def outputs(monkeypatch: pytest.MonkeyPatch, home: Path, compiled: bool) -> list[Any]:
    """What format-event prints and send-event queues (each raw line) for every fixture file."""
    from azs_syslog.queue import Queue

    seen: list[Any] = []
    with monkeypatch.context() as patch:
        patch.setenv("AZS_SYSLOG_HOME", str(home))
        if not compiled:
            patch.setattr(evtx_input, "evtx_json", lambda data: None)
        for path in EVTX_FILES:
            for args in (["format-event", "--output-severity", "Verbose"], ["send-event"]):
                result: Result = run_cli([*args, str(path)])
                seen.append((args[0], path.name, result.exit_code, result.stdout, result.stderr))
        with Queue() as queue:
            batches = queue.next_batches(100_000)  # cut by time as well: their lines compared
            seen.extend(raw for b in batches for _, raw in queue.load_raw(b.id) or ())
    return seen


def test_format_and_send_event_give_the_same_output(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    compiled = outputs(monkeypatch, tmp_path / "compiled", compiled=True)
    python = outputs(monkeypatch, tmp_path / "python", compiled=False)
    assert len(compiled) > 4000  # the queued lines of every readable record, and the outputs
    assert compiled == python
