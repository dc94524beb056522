"""``azs-syslog demo``: the whole chain over mutual TLS in a throwaway sandbox.

The demo runs as a real child process (``python -m azs_syslog demo``) with its real children
(set-syslog-server, set-syslog-client, forwarder run, send-event, forwarder status) and a real
TLS receiver on 127.0.0.1. The operator's home must come out byte-for-byte unchanged.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from azs_syslog.events import EVENT_TYPES, parse_event
from azs_syslog.lab.children import child_env
from azs_syslog.lab.demo import DemoResult, demo_events, run_demo
from tests.conftest import run_cli, run_cli_process

# Generous: the demo itself says it takes a few seconds, but the suite shares two cores.
DEMO_TIMEOUT = "60"


def snapshot(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every path under ``root`` with its mode and, for files, its bytes."""
    result: dict[str, tuple[int, bytes | None]] = {}
    for path in sorted(root.rglob("*")):
        mode = path.lstat().st_mode
        data = path.read_bytes() if stat.S_ISREG(mode) else None
        result[str(path.relative_to(root))] = (stat.S_IMODE(mode), data)
    return result


def operator_home(home: Path, tmp_path: Path) -> None:
    """A configured home: a server, a client certificate, a queued event."""
    from azs_syslog.lab import pki

    ca = pki.make_ca("operator CA")
    client = pki.issue(ca, "operator forwarder", client=True)
    pfx = tmp_path / "operator.pfx"
    pfx.write_bytes(client.to_pfx(b"operator-secret"))
    assert (
        run_cli(
            ["set-syslog-server", "--server-name", "siem.example.com", "--server-port", "6514"]
        ).exit_code
        == 0
    )
    result = run_cli(
        ["set-syslog-client", "--pfx-file", str(pfx), "--cert-password", "operator-secret"]
    )
    assert result.exit_code == 0, result.output
    event = '{"type": "bcdr", "event": "AuditingManualBackup"}\n'
    queued = run_cli(["send-event", "-"], input=event)
    assert queued.exit_code == 0, queued.output
    assert (home / "config" / "config.json").is_file()


def test_demo_shows_every_type_arriving_and_leaves_the_operator_home_alone(
    azs_home: Path, tmp_path: Path
) -> None:
    operator_home(azs_home, tmp_path)
    before = snapshot(azs_home)
    proc = run_cli_process(
        ["demo", "--timeout", DEMO_TIMEOUT],
        env={"AZS_SYSLOG_CERT_PASSWORD": "operator-secret", "COLUMNS": "160"},
        timeout=120,
    )
    out = proc.stdout.decode()
    err = proc.stderr.decode()
    assert proc.returncode == 0, out + err
    assert snapshot(azs_home) == before
    assert "Events arriving at the receiver" in out
    for kind in EVENT_TYPES:
        assert f" {kind} " in out, f"no {kind} row in the demo's output"
    assert out.count("mutual TLS") >= len(demo_events())
    assert "client certificate sent: yes" in out
    assert f"All {len(demo_events())} events (9 types" in out
    sandbox = next(line for line in out.splitlines() if line.startswith("Sandbox "))
    sandbox_path = Path(sandbox.split()[1])
    assert sandbox_path.name.startswith("azs-syslog-demo-")
    assert not sandbox_path.exists()
    assert str(azs_home) not in out
    assert "operator-secret" not in out + err


def test_demo_json_summary() -> None:
    proc = run_cli_process(["demo", "--json", "--timeout", DEMO_TIMEOUT], timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    summary = json.loads(proc.stdout)
    assert summary["ok"] is True
    assert summary["error"] is None
    assert summary["events_sent"] == summary["events_arrived"] == len(demo_events())
    assert summary["types"] == dict.fromkeys(EVENT_TYPES, True)
    assert summary["client_certificate_sent"] is True
    assert summary["tls_version"] in ("TLSv1.2", "TLSv1.3")
    assert summary["cipher"]
    assert summary["server_certificate"] == "CN=localhost"
    assert summary["sandbox_removed"] is True
    assert not Path(summary["sandbox"]).exists()
    assert summary["forwarder_exit"] == 0
    assert all(a["valid"] and a["client_certificate"] for a in summary["arrivals"])
    assert sorted(a["index"] for a in summary["arrivals"]) == list(range(len(demo_events())))
    # the show went to stderr
    assert "Events arriving at the receiver" in proc.stderr.decode()


def test_demo_events_cover_every_type_and_parse() -> None:
    events = demo_events()
    assert {event["type"] for event in events} == set(EVENT_TYPES)
    parsed = [parse_event(event) for event in events]
    assert len({event["extensions"]["externalId"] for event in events}) == len(events)
    # PEP, REP and WAC variants; an Information-level Windows event that only Verbose forwards
    assert {e["type"] for e in events if "who" in e} == {"pep", "rep", "pep_wac"}
    assert any(e["type"] == "windows" and e["level"] == 4 for e in events)
    assert {e.get("state") for e in events if e["type"] == "alert"} == {"created", "resolved"}
    assert all(p.severity is not None for p in parsed)


def test_children_never_see_the_callers_home_or_password(tmp_path: Path) -> None:
    os.environ["AZS_SYSLOG_CERT_PASSWORD"] = "caller-secret"
    try:
        env = child_env(tmp_path / "demo-home")
    finally:
        del os.environ["AZS_SYSLOG_CERT_PASSWORD"]
    assert env["AZS_SYSLOG_HOME"] == str(tmp_path / "demo-home")
    assert "AZS_SYSLOG_CERT_PASSWORD" not in env
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(Path(__file__).resolve().parent.parent)


class Recorder:
    def __init__(self) -> None:
        self.steps: list[str] = []

    def step(self, text: str) -> None:
        self.steps.append(text)

    def sent(self, accepted: int, total: int) -> None:
        self.steps.append(f"sent {accepted}/{total}")

    def arrived(self, arrival: object, total: int) -> None:
        self.steps.append("arrived")


def test_a_failed_demo_says_why_and_still_cleans_up() -> None:
    recorder = Recorder()
    result: DemoResult = run_demo(recorder, timeout=0.001)
    assert not result.ok
    assert result.error is not None and "time" in result.error
    assert result.removed
    assert not Path(result.sandbox).exists()
    assert recorder.steps[-1] == f"removed {result.sandbox}"


def test_a_failed_demo_exits_1_with_an_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import azs_syslog.lab.demo

    real_run_demo = azs_syslog.lab.demo.run_demo

    def out_of_time(observer: Any, *, timeout: float) -> DemoResult:
        return real_run_demo(observer, timeout=0.001)  # a real run that runs out of time

    monkeypatch.setattr(azs_syslog.lab.demo, "run_demo", out_of_time)
    result = run_cli(["demo", "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["ok"] is False
    assert summary["sandbox_removed"] is True
    assert "error: the demo failed: ran out of time" in result.stderr
    assert "fix: try again with a longer --timeout" in result.stderr
    assert f"cleaned up: {summary['sandbox']} removed" in result.stderr
