"""End to end: ``send-event`` of real .evtx files → queue → ``forwarder run`` → a real rsyslog.

Every readable record arrives, byte for byte what ``format-event`` shows for it, and the
Security and Sysmon events carry a named CEF Name (``Logon``, ``Process Create``), not a task
number.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cef_decoder import decode_syslog
from tests.conftest import run_cli
from tests.receivers import RsyslogReceiver, rsyslog_factory  # noqa: F401
from tests.support import Forwarder, configure
from tests.test_windows_inputs import FIXTURES, evtx_records

pytestmark = pytest.mark.rsyslog


def test_evtx_files_arrive_at_rsyslog_with_named_cef_names(
    tmp_path: Path,
    rsyslog_factory: Callable[..., RsyslogReceiver],  # noqa: F811
    forwarder: Callable[[], Forwarder],
) -> None:
    receiver = rsyslog_factory("tcp")
    configure("tcp", receiver, None, tmp_path)
    result = run_cli(["set-syslog-client", "--output-severity", "Verbose"])
    assert result.exit_code == 0, result.stderr

    expected: Counter[bytes] = Counter()
    for name, code in (("security.evtx", 0), ("sysmon.evtx", 3)):
        path = FIXTURES / name
        result = run_cli(["send-event", str(path)])
        assert result.exit_code == code, result.stderr
        assert f"accepted {len(evtx_records(path))} events" in result.stderr
        shown = run_cli(["format-event", str(path)])
        expected.update(shown.stdout_bytes.splitlines())
    assert sum(expected.values()) == 2261 + 358

    worker = forwarder()
    deadline = time.monotonic() + 120
    lines = receiver.lines()
    while len(lines) < sum(expected.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
        lines = receiver.lines()
    worker.terminate()
    received = Counter(lines)
    missing = expected - received
    assert not missing, f"{sum(missing.values())} missing, e.g. {list(missing)[:2]}"

    names: dict[str, set[str]] = {}
    for line in received:
        cef = decode_syslog(line).cef
        names.setdefault(cef.signature_id.split(":")[0], set()).add(cef.name)
    for provider in ("Microsoft-Windows-Security-Auditing", "Microsoft-Windows-Sysmon"):
        numbered = [name for name in names[provider] if name.isdigit()]
        assert not numbered, (provider, numbered)
    assert "Logon" in names["Microsoft-Windows-Security-Auditing"]
    assert "Process Create" in names["Microsoft-Windows-Sysmon"]
