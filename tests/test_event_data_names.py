"""MasEventDataNames (``--event-data-names``): off by default, the Azure Stack Hub format stays
exact; on, the names of the EventData values follow MasEventData, in the same order and joined
the same way, from our JSON's ``event_data_names`` and from ``<Data Name="...">``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from azs_syslog.encode.render import COMPILED, Renderer, RenderSettings
from azs_syslog.errors import EventError
from azs_syslog.events import parse_event
from tests.cef_decoder import decode_syslog
from tests.conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "evtx"
HEAD = (
    "<86>Nov 26 10:00:00 testhost CEF:0|Microsoft|Microsoft Azure Stack Hub|1.0|"
    "Microsoft-Windows-Security-Auditing:4624|Logon|2|rt=1795687200123 MasChannel=Security "
)
EVENT: dict[str, Any] = {
    "type": "windows",
    "time": "2026-11-26T10:00:00.123Z",
    "channel": "Security",
    "event_data": ["S-1-5-18", "SYSTEM", "", 5, True, None, "a=b\\c"],
    "event_data_names": [
        "SubjectUserSid",
        "SubjectUserName",
        "SubjectDomainName",
        "LogonType",
        "Elevated",
        "IpPort",
        "Odd=Name",
    ],
    "event_id": 4624,
    "level": 4,
    "provider_name": "Microsoft-Windows-Security-Auditing",
    "task": 12544,
}
DATA = r"MasEventData=S-1-5-18!!SYSTEM!!!!5!!true!!!!a\=b\\c"
NAMES = (
    "MasEventDataNames=SubjectUserSid!!SubjectUserName!!SubjectDomainName!!LogonType!!"
    r"Elevated!!IpPort!!Odd\=Name"
)
TAIL = (
    "MasEventID=4624 MasLevel=4 MasProviderName=Microsoft-Windows-Security-Auditing MasTask=12544"
)
PATHS = [False, True] if COMPILED else [False]


def renders(event: dict[str, Any], *, names: bool) -> set[bytes | None]:
    """The message by every path: reference (an Event), pure-Python and compiled fused paths
    (each after the shape's plan is made)."""
    settings = RenderSettings(output_severity="Verbose", framing="none", event_data_names=names)
    line = json.dumps(event)
    out = {Renderer(settings, default_host="testhost").render_event(parse_event(event), 0)}
    for compiled in PATHS:
        renderer = Renderer(settings, default_host="testhost", compiled=compiled)
        out |= {renderer.render_line(line, 0) for _ in range(3)}
    return out


def test_golden_without_names_is_the_azure_stack_hub_format() -> None:
    assert renders(EVENT, names=False) == {f"{HEAD}{DATA} {TAIL}".encode()}


def test_golden_with_names_follows_mas_event_data() -> None:
    assert renders(EVENT, names=True) == {f"{HEAD}{DATA} {NAMES} {TAIL}".encode()}
    message = f"{HEAD}{DATA} {NAMES} {TAIL}"
    extensions = decode_syslog(message.encode()).cef.ext()
    values = extensions["MasEventData"].split("!!")
    names = extensions["MasEventDataNames"].split("!!")
    assert dict(zip(names, values, strict=True)) == {
        "SubjectUserSid": "S-1-5-18",
        "SubjectUserName": "SYSTEM",
        "SubjectDomainName": "",
        "LogonType": "5",
        "Elevated": "true",
        "IpPort": "",
        "Odd=Name": "a=b\\c",
    }


def test_names_that_join_to_nothing_are_left_out() -> None:
    event = {**EVENT, "event_data": ["x"], "event_data_names": [""]}
    assert renders(event, names=True) == {f"{HEAD}MasEventData=x {TAIL}".encode()}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"event_data_names": ["a"]}, "has 1 names for the 7 values of event_data"),
        ({"event_data_names": "SubjectUserSid"}, "must be an array of strings"),
        ({"event_data_names": ["a", 1, "c", "d", "e", "f", "g"]}, "event_data_names[1]"),
        ({"event_data": "one", "event_data_names": ["a", "b"]}, "has 2 names for the 1 values"),
    ],
)
@pytest.mark.parametrize("names", [False, True])
def test_bad_names_are_refused_on_every_path(
    change: dict[str, Any], problem: str, names: bool
) -> None:
    """Checked whether written or not: a producer's mistake shows up at once."""
    event = {**EVENT, **change}
    settings = RenderSettings(output_severity="Verbose", event_data_names=names)
    with pytest.raises(EventError, match="event_data_names") as reference:
        Renderer(settings, default_host="h").render_event(parse_event(event), 0)
    assert problem in str(reference.value)
    for compiled in PATHS:
        renderer = Renderer(settings, default_host="h", compiled=compiled)
        renderer.render_line(json.dumps(EVENT), 0)
        renderer.render_line(json.dumps(EVENT), 0)  # the plan of EVENT's shape is made
        with pytest.raises(EventError) as fused:
            renderer.render_line(json.dumps(event), 0)
        assert str(fused.value) == str(reference.value)


def test_evtx_names_through_format_event() -> None:
    """A Security .evtx record: its <Data Name> in MasEventDataNames with the option, nothing
    without it (and the rest of the message the same)."""
    path = str(FIXTURES / "security.evtx")
    base = ["format-event", "--output-severity", "Verbose", "--json", path]
    without = run_cli(base)
    with_names = run_cli([*base, "--event-data-names"])
    assert without.exit_code == with_names.exit_code == 0, with_names.stderr
    plain = [json.loads(line) for line in without.stdout.splitlines()]
    named = [json.loads(line) for line in with_names.stdout.splitlines()]
    assert len(plain) == len(named) > 100
    logon = next(
        item for item in named if "|Microsoft-Windows-Security-Auditing:4624|" in item["message"]
    )
    extensions = decode_syslog(logon["message"].encode()).cef.ext()
    names = extensions["MasEventDataNames"].split("!!")
    values = extensions["MasEventData"].split("!!")
    assert names[:4] == ["SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId"]
    assert len(names) == len(values)
    assert not any("MasEventDataNames=" in item["message"] for item in plain)
    for left, right in zip(plain, named, strict=True):
        message = right["message"]
        if " MasEventDataNames=" in message:
            start = message.index(" MasEventDataNames=")
            end = message.index(" Mas", start + 1)
            message = message[:start] + message[end:]
        assert left["message"] == message


def test_event_xml_fills_names_and_powershell_has_none(tmp_path: Path) -> None:
    xml = (
        '<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>'
        '<Provider Name="P"/><EventID>7</EventID><Level>2</Level></System><EventData>'
        '<Data Name="First">a</Data><Data>b</Data><Data Name="Third">c</Data>'
        "</EventData></Event>"
    )
    file = tmp_path / "export.xml"
    file.write_text(xml)
    result = run_cli(["format-event", "--event-data-names", str(file)])
    assert result.exit_code == 0, result.stderr
    assert " MasEventData=a!!b!!c MasEventDataNames=First!!!!Third " in result.stdout
    powershell = tmp_path / "ps.json"
    powershell.write_text(
        json.dumps([{"Id": 7, "ProviderName": "P", "Level": 2, "Properties": [{"Value": "a"}]}])
    )
    result = run_cli(["format-event", "--event-data-names", str(powershell)])
    assert result.exit_code == 0, result.stderr
    assert " MasEventData=a " in result.stdout and "MasEventDataNames" not in result.stdout
