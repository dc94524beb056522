"""Windows logs in: EVTX files, Windows Event XML, PowerShell Get-WinEvent exports.

Every fixture file (real logs from the evtx parser's test corpus, tests/fixtures/evtx) goes
through every path: the .evtx directly; its records as Event XML (the evtx package's own XML
output, with and without an <Events> root); as a PowerShell ConvertTo-Json export built from
them; as our own JSON. ``format-event`` must give the same bytes for the same record on every
path, and every message must decode in the strict decoder of the tests with one
``MasEventData`` value per EventData item.
"""

from __future__ import annotations

import codecs
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import fromstring

import pytest
from evtx import PyEvtxParser

from azs_syslog.inputs.detect import open_input
from azs_syslog.queue import Queue
from tests.cef_decoder import decode_syslog
from tests.conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "evtx"
EVTX_FILES = sorted(FIXTURES.glob("*.evtx"))
DAMAGED = {
    "sysmon.evtx": ["chunk 9 (after record 2099)", "chunk 16 (after record 2099)"],
    "TerminalServices-RemoteConnectionManager-damaged-record.evtx": [
        "record 463011 skipped",
        "the record after record 463010 skipped",
    ],
    "sample_with_a_bad_chunk_magic.evtx": ["chunk 6 (after record 46741)", "chunk 10"],
}
NS = "{http://schemas.microsoft.com/win/2004/08/events/event}"
VERBOSE = ["--output-severity", "Verbose"]
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
USER_DATA = re.compile(r" MasUserData=(.*?) Xpath: /Event/UserData/\*(?= Mas[A-Za-z]+=|$)")
SOURCE_NAME = re.compile(r" MasProviderEventSourceName=.*?(?= Mas[A-Za-z]+=|$)")


def evtx_records(path: Path) -> list[tuple[int, str]]:
    """``(EventRecordID, XML)`` of every readable record, from the evtx package directly."""
    records = PyEvtxParser(str(path)).records()
    out: list[tuple[int, str]] = []
    for _ in range(100_000):  # bounded: the fixtures hold a few thousand
        try:
            record: Any = next(records)
        except StopIteration:
            return out
        except RuntimeError:
            continue
        out.append((record["event_record_id"], record["data"]))
    raise AssertionError("too many records")


def mapped_events(path: Path) -> list[dict[str, Any]]:
    """Our Windows events for the records of ``path`` (what the EVTX input yields)."""
    with path.open("rb") as stream:
        opened = open_input(stream, "evtx", lambda problem: None)
        return [
            json.loads(record) if isinstance(record, str) else record
            for _, record in opened.records
            if isinstance(record, str | dict)
        ]


def format_messages(args: list[str], data: bytes | None = None) -> tuple[int, list[str], str]:
    """``format-event --json``: the exit code, the messages in order, and stderr."""
    result = run_cli(["format-event", *VERBOSE, "--json", *args], input=data)
    messages = []
    for line in result.stdout.splitlines():
        item = json.loads(line)
        if "message" in item:
            messages.append(item["message"])
    return result.exit_code, messages, result.stderr


# --- building the other inputs from the same records ----------------------------------------


def event_xml(path: Path, *, root: bool) -> str:
    text = "".join(xml for _, xml in evtx_records(path))
    return f"<Events>{text}</Events>" if root else text


def typed(value: Any) -> Any:
    """A value as a typed producer gives it: canonical integers and booleans as such."""
    if isinstance(value, str):
        if value.isdigit() and value.isascii() and str(int(value)) == value:
            return int(value)
        if value in ("true", "false"):
            return value == "true"
    return value


def our_json_lines(events: list[dict[str, Any]]) -> bytes:
    lines = []
    for event in events:
        event = dict(event)
        if "event_data" in event:
            event["event_data"] = [typed(value) for value in event["event_data"]]
        lines.append(json.dumps(event, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode()


POWERSHELL_NAMES = {
    "event_id": "Id",
    "provider_name": "ProviderName",
    "channel": "LogName",
    "computer": "MachineName",
    "level": "Level",
    "version": "Version",
    "task": "Task",
    "task_name": "TaskDisplayName",
    "opcode": "Opcode",
    "opcode_name": "OpcodeDisplayName",
    "event_record_id": "RecordId",
    "execution_process_id": "ProcessId",
    "execution_thread_id": "ThreadId",
    "event_description": "Message",
}


def powershell_record(event: dict[str, Any], index: int) -> dict[str, Any]:
    """What ``Get-WinEvent | ConvertTo-Json -Depth 3`` writes for ``event`` (5.1 style on even
    records, PowerShell 7 style on odd ones)."""
    record: dict[str, Any] = {"Qualifiers": None, "ContainerLog": "x.evtx", "Bookmark": {}}
    for field, name in POWERSHELL_NAMES.items():
        if field in event:
            record[name] = event[field]
    if "provider_guid" in event:
        record["ProviderId"] = event["provider_guid"].lower()
    if "correlation_activity_id" in event:
        record["ActivityId"] = "{" + event["correlation_activity_id"].lower() + "}"
    if "keywords" in event:
        mask = int(event["keywords"], 16)
        record["Keywords"] = mask - (1 << 64) if mask >= 1 << 63 else mask
    if "security_user_id" in event:
        record["UserId"] = {"BinaryLength": 12, "Value": event["security_user_id"]}
    record["KeywordsDisplayNames"] = []
    if "time" in event:
        moment = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        millis = int(moment.timestamp() * 1000 + 0.5)
        if index % 2:
            record["TimeCreated"] = moment.isoformat(timespec="microseconds")
        else:
            record["TimeCreated"] = f"/Date({millis})/"
    # PowerShell's Properties are the values of EventData, or of UserData when the event has
    # that instead: they become MasEventData either way.
    values = event.get("event_data", event.get("user_data", []))
    record["Properties"] = [{"Value": typed(value)} for value in values]
    return record


def powershell_view(message: str) -> str:
    """``message`` as the PowerShell path writes it: no MasProviderEventSourceName, and the
    UserData values as MasEventData."""
    message = SOURCE_NAME.sub("", message)
    match = USER_DATA.search(message)
    if match is None:
        return message
    message = message[: match.start()] + message[match.end() :]
    head, sep, tail = message.partition(" MasEventID=")
    return f"{head} MasEventData={match.group(1)}{sep}{tail}"


def powershell_json(events: list[dict[str, Any]]) -> bytes:
    records = [powershell_record(event, i) for i, event in enumerate(events)]
    return json.dumps(records, indent=4, ensure_ascii=False).encode("utf-8-sig")


# --- every path, the same bytes ---------------------------------------------------------------


@pytest.mark.parametrize("path", EVTX_FILES, ids=lambda path: path.name)
def test_every_path_gives_the_same_messages(path: Path, tmp_path: Path) -> None:
    code, from_evtx, stderr = format_messages([str(path)])
    readable = evtx_records(path)
    assert from_evtx, stderr
    # One rejected record in the bad-chunk file has no provider (a half-overwritten record).
    assert len(from_evtx) >= len(readable) - 1
    assert code == (3 if path.name in DAMAGED or len(from_evtx) < len(readable) else 0), stderr

    events = mapped_events(path)
    inputs = {
        "xml": event_xml(path, root=False).encode(),
        "xml-root-utf16": codecs.BOM_UTF16_LE + event_xml(path, root=True).encode("utf-16-le"),
        "powershell": powershell_json(events),
        "json": our_json_lines(events),
    }
    for name, data in inputs.items():
        file = tmp_path / f"{path.stem}.{name}"
        file.write_bytes(data)
        _, messages, stderr = format_messages([str(file)])
        assert len(messages) == len(from_evtx), (name, stderr[-2000:])
        expected = from_evtx
        if name == "powershell":
            # An EventLogRecord has no EventSourceName property, and its Properties do not
            # say whether they were EventData or UserData (docs/cef-mapping.md).
            expected = [powershell_view(message) for message in from_evtx]
        for index, (left, right) in enumerate(zip(expected, messages, strict=True)):
            assert left == right, (name, index, left, right)


def assert_cef(message: str, name: str, extensions: dict[str, str]) -> None:
    """The message's CEF name is ``name`` and it has these extensions, with these values."""
    cef = decode_syslog(message.encode()).cef
    found = dict(cef.extensions)
    assert cef.name == name
    assert {key: found.get(key) for key in extensions} == extensions


@pytest.mark.parametrize("path", EVTX_FILES, ids=lambda path: path.name)
def test_every_message_decodes_with_one_value_per_event_data_item(path: Path) -> None:
    _, messages, _ = format_messages([str(path)])
    counts = {}
    for _, xml in evtx_records(path):
        # Control characters in the data make the XML ill-formed; they do not change counts.
        event = fromstring(CONTROL.sub("?", xml))
        record_id = int((event.findtext(f"{NS}System/{NS}EventRecordID") or "").strip() or -1)
        event_data = event.find(f"{NS}EventData")
        counts[record_id] = None if event_data is None else len(event_data)
    assert messages
    for message in messages:
        cef = decode_syslog(message.encode()).cef
        extensions = dict(cef.extensions)
        count = counts[int(extensions["MasEventRecordID"])]
        if "MasEventData" in extensions:
            assert count is not None
            assert len(extensions["MasEventData"].split("!!")) == count, message
        else:
            assert not count or count == 1, message  # none, or one empty value


def test_security_and_sysmon_events_have_named_cef_names() -> None:
    names: dict[str, set[str]] = {}
    for file in ("security.evtx", "sysmon.evtx", "new-user-security.evtx"):
        _, messages, _ = format_messages([str(FIXTURES / file)])
        for message in messages:
            cef = decode_syslog(message.encode()).cef
            provider = cef.signature_id.split(":")[0]
            names.setdefault(provider, set()).add(cef.name)
    security = names["Microsoft-Windows-Security-Auditing"]
    sysmon = names["Microsoft-Windows-Sysmon"]
    assert not [name for name in security | sysmon if name.isdigit()], names
    assert {"Logon", "Special Logon", "Security State Change"} <= security
    assert {"Process Create", "Network connection detected"} <= sysmon


# --- damaged files ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_damaged_file_imports_everything_readable_and_exits_3(name: str) -> None:
    path = FIXTURES / name
    readable = len(evtx_records(path))
    result = run_cli(["send-event", str(path)])
    assert result.exit_code == 3, result.stderr
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped: ")]
    assert skipped
    for expected in DAMAGED[name]:
        assert any(expected in line and str(path) in line for line in skipped), result.stderr
    accepted = int(re.search(r"accepted (\d+) event", result.stderr).group(1))  # type: ignore[union-attr]
    rejected = len([line for line in result.stderr.splitlines() if line.startswith("rejected:")])
    assert accepted + rejected == readable
    assert f"skipped {len(skipped)} damaged part" in result.stderr
    with Queue() as queue:
        assert queue.depth().events == accepted


def test_damaged_file_json_report_names_the_skipped_parts() -> None:
    path = FIXTURES / "TerminalServices-RemoteConnectionManager-damaged-record.evtx"
    result = run_cli(["send-event", "--json", str(path)])
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    assert report["accepted"] == 1774
    assert any("record 463011" in problem for problem in report["skipped"])


# --- XML --------------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<Event><System><Provider Name="&lol3;"/><EventID>1</EventID><Level>2</Level></System></Event>
"""


def external_entity(secret: Path) -> bytes:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE e [ <!ENTITY xxe SYSTEM "file://{secret}"> ]>\n'
        '<Event><System><Provider Name="p"/><EventID>1</EventID><Level>2</Level></System>'
        "<EventData><Data>&xxe;</Data></EventData></Event>\n"
    ).encode()


@pytest.mark.parametrize("kind", ["billion-laughs", "external-entity", "entity-after-events"])
@pytest.mark.parametrize("command", ["send-event", "format-event"])
def test_xml_bombs_and_external_entities_are_refused(
    kind: str, command: str, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    data = {
        "billion-laughs": BILLION_LAUGHS,
        "external-entity": external_entity(secret),
        "entity-after-events": (
            b'<Event><System><Provider Name="p"/><EventID>1</EventID><Level>2</Level>'
            b"</System></Event>\n" + BILLION_LAUGHS.split(b"\n", 1)[1]
        ),
    }[kind]
    file = tmp_path / "bomb.xml"
    file.write_bytes(data)
    result = run_cli([command, *([] if command == "send-event" else VERBOSE), str(file)])
    assert result.exit_code in (1, 3)
    assert "TOP-SECRET" not in result.stdout + result.stderr
    assert "lollol" not in result.stdout + result.stderr
    problems = [line for line in result.stderr.splitlines() if "refused" in line]
    assert len(problems) == 1, result.stderr
    assert "entity" in problems[0]
    assert "Traceback" not in result.stderr


RENDERED_XML = """<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>\
<Provider Name='Microsoft-Windows-Security-Auditing'\
 Guid='{54849625-5478-4994-a5ba-3e3b0328c30d}'/>\
<EventID>4624</EventID><Version>2</Version><Level>0</Level><Task>12544</Task><Opcode>0</Opcode>\
<Keywords>0x8020000000000000</Keywords><TimeCreated SystemTime='2026-11-26T10:00:00.1234567Z'/>\
<EventRecordID>26637</EventRecordID>\
<Correlation ActivityID='{c8f40d7c-3764-423b-a4fa-c994442238af}'/>\
<Execution ProcessID='4' ThreadID='5432'/><Channel>Security</Channel>\
<Computer>azs-node01</Computer>\
<Security/></System><EventData><Data Name='SubjectUserSid'>S-1-5-18</Data>\
<Data Name='Elevated'>true</Data><Data Name='Empty'/><Data Name='X'>a=b</Data></EventData>\
<RenderingInfo Culture='en-US'><Message>An account was successfully logged on.</Message>\
<Level>Information</Level><Task>Logon</Task><Opcode>Info</Opcode><Channel>Security</Channel>\
<Provider>Microsoft Windows security auditing.</Provider><Keywords><Keyword>Audit Success</Keyword>\
</Keywords></RenderingInfo></Event>"""

RENDERED_NAMES = {
    "MasEventDescription": "An account was successfully logged on.",
    "MasOpcodeName": "Info",
    "MasKeywordName": "Audit Success",
}
RENDERED_SYSTEM = {
    "MasProviderGuid": "54849625-5478-4994-A5BA-3E3B0328C30D",
    "MasCorrelationActivityID": "C8F40D7C-3764-423B-A4FA-C994442238AF",
    "MasEventData": "S-1-5-18!!true!!!!a=b",
    "rt": "1795687200123",
}


def test_rendered_xml_maps_rendering_info() -> None:
    # wevtutil writes the events back to back, without a root or line breaks.
    data = (RENDERED_XML + RENDERED_XML.replace("26637", "26638")).encode()
    code, messages, stderr = format_messages(["-"], data)
    assert code == 0, stderr
    assert len(messages) == 2
    # RenderingInfo gives the description and the names; System and EventData the rest.
    assert_cef(messages[0], "Logon", RENDERED_NAMES)
    assert_cef(messages[0], "Logon", RENDERED_SYSTEM)


def test_xml_that_breaks_keeps_what_came_before() -> None:
    data = (RENDERED_XML + "<Event><System><Provider Name='p'/></Sys").encode()
    result = run_cli(["send-event", "-"], input=data)
    assert result.exit_code == 3
    assert "accepted 1 event" in result.stderr
    assert "skipped: <stdin>: line 1: the XML breaks off (" in result.stderr


def test_xml_of_something_else_is_one_clear_line() -> None:
    result = run_cli(["format-event", "-"], input=b"<html><body/></html>")
    assert result.exit_code != 0
    assert "is not Windows event XML: <html>" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


# --- PowerShell -------------------------------------------------------------------------------

POWERSHELL_51 = {
    "Id": 3,
    "Version": 5,
    "Qualifiers": None,
    "Level": 4,
    "Task": 3,
    "Opcode": 0,
    "Keywords": -9223372036854775808,
    "RecordId": 1747,
    "ProviderName": "Microsoft-Windows-Sysmon",
    "ProviderId": "5770385f-c22a-43e0-bf4c-06f5698ffbd9",
    "LogName": "Microsoft-Windows-Sysmon/Operational",
    "ProcessId": 2284,
    "ThreadId": 3456,
    "MachineName": "DESKTOP-2KGM189",
    "UserId": {"BinaryLength": 12, "AccountDomainSid": None, "Value": "S-1-5-18"},
    "TimeCreated": "/Date(1795687200123)/",
    "ActivityId": None,
    "RelatedActivityId": None,
    "ContainerLog": "microsoft-windows-sysmon/operational",
    "MatchedQueryIds": [],
    "Bookmark": {},
    "LevelDisplayName": "Information",
    "OpcodeDisplayName": "Info",
    "TaskDisplayName": "Network connection detected (rule: NetworkConnect)",
    "KeywordsDisplayNames": [],
    "Properties": [{"Value": "tcp"}, {"Value": True}, {"Value": 443}, {"Value": None}],
    "Message": "Network connection detected:\r\nRuleName: -",
}
POWERSHELL_CEF = {
    "MasEventData": "tcp!!true!!443!!",
    "MasKeywords": "0x8000000000000000",
    "MasSecurityUserId": "S-1-5-18",
    "MasProviderGuid": "5770385F-C22A-43E0-BF4C-06F5698FFBD9",
    "MasEventDescription": "Network connection detected:\r\nRuleName: -",
    "rt": "1795687200123",
}


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-8-sig", "utf-8"])
def test_powershell_export_in_every_windows_encoding(encoding: str) -> None:
    text = json.dumps([POWERSHELL_51], indent=4)
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(encoding, b"")
    code, messages, stderr = format_messages(["-"], bom + text.encode(encoding))
    assert code == 0, stderr
    assert decode_syslog(messages[0].encode()).cef.signature_id == "Microsoft-Windows-Sysmon:3"
    assert_cef(messages[0], "Network connection detected (rule: NetworkConnect)", POWERSHELL_CEF)


def test_powershell_export_with_the_default_depth_is_refused() -> None:
    shallow = dict(POWERSHELL_51, Properties=["System.Diagnostics.Eventing.Reader.EventProperty"])
    data = json.dumps([shallow, shallow], indent=4).encode("utf-16")
    for command in (["send-event", "-"], ["format-event", "-"]):
        result = run_cli(command, input=data)
        assert result.exit_code in (1, 3)
        problems = [line for line in result.stderr.splitlines() if "-Depth 3" in line]
        assert len(problems) == 1, result.stderr
    with Queue() as queue:
        assert queue.depth().events == 0


# --- our JSON in the Windows encodings, with booleans ----------------------------------------

OUR_EVENT = {
    "type": "windows",
    "time": "2026-11-26T10:00:00.123Z",
    "provider_name": "Microsoft-Windows-Sysmon",
    "event_id": 3,
    "level": 4,
    "event_data": ["tcp", True, False, 443, None, "x"],
}


@pytest.mark.parametrize(
    "bom,encoding",
    [
        (b"", "utf-8"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-le", "utf-16-be"],
)
def test_our_json_in_every_windows_encoding(bom: bytes, encoding: str) -> None:
    text = "".join(json.dumps(dict(OUR_EVENT, event_record_id=i)) + "\r\n" for i in range(3))
    data = bom + text.encode(encoding)
    code, messages, stderr = format_messages(["-"], data)
    assert code == 0, stderr
    assert len(messages) == 3
    assert "MasEventData=tcp!!true!!false!!443!!!!x " in messages[0]
    assert " Process Create|" not in messages[0] and "|Network connection detected|" in messages[0]
    result = run_cli(["send-event", "-"], input=data)
    assert result.exit_code == 0, result.stderr
    assert "accepted 3 events" in result.stderr


def test_input_format_forced_on_the_wrong_file_is_one_clear_line(tmp_path: Path) -> None:
    file = tmp_path / "events.jsonl"
    file.write_text(json.dumps(OUR_EVENT) + "\n")
    result = run_cli(["send-event", "--input-format", "evtx", str(file)])
    assert result.exit_code == 1
    assert "is not a readable EVTX file" in result.stderr
    assert "Traceback" not in result.stderr


def test_evtx_from_standard_input() -> None:
    data = (FIXTURES / "sysmon.evtx").read_bytes()
    result = run_cli(["send-event", "-"], input=data)
    assert result.exit_code == 3, result.stderr
    assert "accepted 358 events from standard input (" in result.stderr
    assert "), skipped 8 damaged parts; the queue now holds 358 events" in result.stderr
    assert "skipped: <stdin>: chunk 9 (after record 2099)" in result.stderr


@pytest.mark.parametrize("kind", ["evtx", "utf-8-bom", "utf-16"])
def test_jobs_reads_other_inputs_in_one_process(kind: str, tmp_path: Path) -> None:
    """--jobs splits JSON lines in UTF-8 without a BOM, and .evtx files of several chunks;
    anything else it reads in one process."""
    if kind == "evtx":
        file, count = FIXTURES / "new-user-security.evtx", 4
    else:
        file, count = tmp_path / "events.jsonl", 3
        text = "".join(json.dumps(dict(OUR_EVENT, event_record_id=i)) + "\n" for i in range(3))
        file.write_bytes(
            codecs.BOM_UTF8 + text.encode() if kind == "utf-8-bom" else text.encode("utf-16")
        )
    result = run_cli(["send-event", "--jobs", "2", str(file)])
    assert result.exit_code == 0, result.stderr
    # An .evtx file is split at its 64 KiB chunks (tests/test_evtx_jobs.py): this one has one.
    note = "--jobs splits JSON lines and .evtx files only; reading"
    assert (note in result.stderr) is (kind != "evtx")
    assert f"accepted {count} event" in result.stderr


# --- truncation is never silent ---------------------------------------------------------------

BIG_EVENT = dict(OUR_EVENT, event_data=["x" * 5000, "y" * 5000, "last"])


def test_a_shortened_windows_message_says_so_in_an_extension_and_on_stderr() -> None:
    result = run_cli(["format-event", *VERBOSE, "-"], input=json.dumps(BIG_EVENT) + "\n")
    assert result.exit_code == 0, result.stderr
    message = result.stdout_bytes.rstrip(b"\n")
    assert len(message) <= 8192
    extensions = dict(decode_syslog(message).cef.extensions)
    full = run_cli(
        ["format-event", *VERBOSE, "-"],
        input=json.dumps(dict(BIG_EVENT, event_data=["x", "y", "last"])) + "\n",
    ).stdout_bytes.rstrip(b"\n")
    assert int(extensions["MasTruncated"]) == len(full) + 2 * 4999
    assert extensions["MasEventData"].startswith("xxx")
    assert "line 1: shortened to the maximum message size (8192 bytes)" in result.stderr
    assert "1 event(s) shortened" in result.stderr


def test_format_event_json_reports_truncated() -> None:
    small = json.dumps(OUR_EVENT)
    data = small + "\n" + json.dumps(BIG_EVENT)
    result = run_cli(["format-event", *VERBOSE, "--json", "-"], input=data)
    items = [json.loads(line) for line in result.stdout.splitlines()]
    assert "truncated" not in items[0]
    assert items[1]["truncated"] is True
    assert "MasTruncated=" in items[1]["message"]
    assert "MasTruncated" not in items[0]["message"]


# --- progress on a terminal -------------------------------------------------------------------


def _run_on_a_terminal(args: list[str], home: Path) -> tuple[int, str]:
    """Run the CLI in a child process whose stderr is a pseudo-terminal; return its exit code
    and what it drew there."""
    import os
    import pty
    import select
    import subprocess
    import time

    from tests.support import start_cli

    master, slave = pty.openpty()
    env = {"AZS_SYSLOG_HOME": str(home), "TERM": "xterm", "NO_COLOR": None}
    process = start_cli(args, env=env, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    drawn = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                drawn += chunk
            elif process.poll() is not None:
                break
        code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait(10)
    return code, drawn.decode("utf-8", "replace")


def test_a_long_import_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    code, drawn = _run_on_a_terminal(["send-event", str(FIXTURES / "security.evtx")], tmp_path)
    assert code == 0, drawn
    assert "security.evtx" in drawn and " records, " in drawn and "rejected 0" in drawn
    assert "accepted 2261 events from " in drawn and "the queue now holds 2261 events" in drawn


def test_no_progress_when_stderr_is_not_a_terminal() -> None:
    result = run_cli(["send-event", str(FIXTURES / "security.evtx")])
    assert result.stderr == (
        f"accepted 2261 events from {FIXTURES / 'security.evtx'} (2260 of them filtered: "
        "Windows events below Warning are not sent with OutputSeverity Default; "
        "set-syslog-client --output-severity Verbose sends them); "
        "the queue now holds 2261 events\n"
        "warning: no syslog server is configured: events are queued, not sent, until one is set"
        " (azs-syslog set-syslog-server --server-name NAME --server-port PORT)\n"
    )


def test_an_evtx_file_goes_on_in_chunks_of_its_records() -> None:
    """An .evtx file's records are handed on FILE_CHUNK at a time (rendered and queued
    together), numbered and in order, the same records as one at a time."""
    from azs_syslog.events.record import FILE_CHUNK
    from azs_syslog.inputs.evtx import iter_evtx_events

    path = max(FIXTURES.glob("*.evtx"), key=lambda p: p.stat().st_size)
    with path.open("rb") as stream:
        chunks = list(open_input(stream, "auto", lambda problem: None).chunks)
    sizes = [len(numbers) for numbers, _ in chunks]
    assert len(chunks) >= 2 and set(sizes[:-1]) == {FILE_CHUNK} and 0 < sizes[-1] <= FILE_CHUNK
    together = [record for numbers, items in chunks for record in zip(numbers, items, strict=True)]
    assert together == list(iter_evtx_events(str(path), lambda problem: None))
