"""A real receiver reads our messages: rsyslog parses the header fields we intend.

rsyslog runs in the foreground with its own configuration, work directory and pid file on a
loopback port it picks itself; it is stopped by its PID.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from azs_syslog.encode.render import Renderer, RenderSettings
from tests.receivers import rsyslogd_with
from tests.support import wait_until
from tests.test_cef_golden import SPEC_EVENTS

pytestmark = pytest.mark.rsyslog
FIELDS = "%hostname%|%syslogfacility%|%syslogseverity%|%timereported:::date-rfc3339%"
TEMPLATE = FIELDS + "|%app-name%|%msgid%|%msg%"


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    work = tmp_path / "rsyslog"
    work.mkdir()
    out = work / "out.log"
    port_file = work / "port"
    config = f"""
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imtcp")
template(name="fields" type="string" string="{TEMPLATE}\\n")
ruleset(name="in") {{
  action(type="omfile" file="{out}" template="fields")
}}
input(type="imtcp" port="0" address="127.0.0.1" listenPortFileName="{port_file}"
      ruleset="in")
"""
    with rsyslogd_with(work, config, port_file) as (port, _):
        yield port, out


def _read_lines(out: Path, count: int) -> list[str]:
    def lines() -> list[str]:
        found = out.read_text(encoding="utf-8").splitlines() if out.exists() else []
        return found if len(found) >= count else []

    return wait_until(lines, 15, "rsyslog to write every message")


@pytest.mark.parametrize("message_format", ["rfc3164", "rfc5424"])
def test_rsyslog_parses_our_headers(rsyslog: tuple[int, Path], message_format: str) -> None:
    port, out = rsyslog
    renderer = Renderer(
        RenderSettings(message_format=message_format, output_severity="Verbose"),
        default_host="unused",
    )
    events = [event for event, _, _ in SPEC_EVENTS]
    nasty = {"type": "arm", "AzsOperationName": "op|x", "AzsDescription": "a=b\\c\nd\r\x00e 日本"}
    nasty |= {"time": "2026-11-26T10:00:00.123Z", "host": "testhost"}
    events.append(nasty)
    framed = [renderer.render_line(json.dumps(event), 0) for event in events]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"".join(m for m in framed if m is not None))
    lines = _read_lines(out, len(events))
    assert len(lines) == len(events)
    for line, event, message in zip(lines, events, framed, strict=True):
        assert message is not None
        host, facility, severity, stamp, app, msgid, msg = line.split("|", 6)
        assert host == "testhost"
        assert facility == "10"
        pri = int(message.split(b">", 1)[0].split(b"<", 1)[1])
        assert int(severity) == pri % 8
        assert stamp.startswith("2026-11-26T10:00:00")
        cef = message.split(b" CEF:", 1)[1].decode("utf-8")
        if message_format == "rfc5424":
            assert app == "azs-syslog"
            assert msgid == event["type"]
            assert msg == "CEF:" + cef
        else:
            # RFC 3164 has no APP-NAME: rsyslog takes "CEF:" as the TAG; the rest is intact.
            assert msg.endswith(cef.split("|", 1)[1])
