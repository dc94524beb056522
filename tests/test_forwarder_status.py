from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from azs_syslog import paths
from azs_syslog import status as st
from tests.conftest import REPO_ROOT, run_cli
from tests.test_send_event import windows_event


def fresh(**fields: object) -> dict[str, object]:
    data: dict[str, object] = {
        "pid": os.getpid(),
        "updated": time.time(),
        "state": st.CONNECTED,
        "queue": {"events": 0},
        "config_problem": None,
    }
    data.update(fields)
    return data


def test_health_rules() -> None:
    assert st.evaluate(fresh()).healthy
    assert st.evaluate(fresh(state=st.NOT_CONFIGURED)).healthy
    unconfigured = st.evaluate(fresh(state=st.NOT_CONFIGURED, queue={"events": 5}))
    assert (unconfigured.healthy, unconfigured.running) == (False, True)
    assert not st.evaluate(fresh(state=st.BACKING_OFF)).healthy
    assert not st.evaluate(fresh(config_problem="config.json: server -> ServerPort: bad")).healthy
    stale = st.evaluate(fresh(updated=time.time() - 60))
    assert (stale.healthy, stale.running) == (False, False)
    assert "stale" in stale.reason
    gone = st.evaluate(fresh(pid=2**22 + 12345))
    assert (gone.healthy, gone.running) == (False, False)
    assert not st.evaluate(None).running
    assert not st.evaluate(fresh(state=st.STOPPED)).running


def test_status_file_is_written_atomically_and_privately() -> None:
    st.write_status(fresh())
    path = paths.status_file()
    assert path.stat().st_mode & 0o777 == 0o600
    assert st.read_status() == json.loads(path.read_text())
    path.write_text("{not json")
    assert st.read_status() is None


def test_status_command_without_a_forwarder() -> None:
    result = run_cli(["forwarder", "status", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["running"] is False
    assert report["status"] is None
    run_cli(["send-event", "-"], input=windows_event(1) + "\n")
    table = run_cli(["forwarder", "status"])
    assert table.exit_code == 1
    assert "Queued" in table.stdout
    assert "1 events" in table.stdout


def start_forwarder(log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.Popen(
        [sys.executable, "-m", "azs_syslog", "forwarder", "run"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        env=env,
    )


def wait_for_state(
    proc: subprocess.Popen[bytes], state: str, timeout: float = 30
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None
        data = st.read_status()
        if data and data.get("pid") == proc.pid and data.get("state") == state:
            return data
        time.sleep(0.05)
    raise AssertionError(f"no {state!r} status; last {st.read_status()}")


def test_sigterm_while_backing_off_exits_0_quickly(tmp_path: Path) -> None:
    from socket import socket

    with socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_cli(
        [
            "set-syslog-server",
            "--server-name",
            "127.0.0.1",
            "--server-port",
            str(port),
            "--no-encryption",
        ]
    )
    assert result.exit_code == 0, result.stderr
    proc = start_forwarder(tmp_path / "forwarder.log")
    try:
        data = wait_for_state(proc, st.BACKING_OFF)
        error = data["last_error"]
        assert isinstance(error, dict) and error["cause"] == "refused"
        status = run_cli(["forwarder", "status", "--json"])
        assert status.exit_code == 1
        assert json.loads(status.stdout)["running"] is True
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    final = st.read_status()
    assert final is not None and final["state"] == st.STOPPED
    assert not paths.pid_file().exists()
    assert not paths.socket_file().exists()
    log = (tmp_path / "forwarder.log").read_text()
    assert "retrying in" in log
    assert "Traceback" not in log


def test_sighup_reloads_at_once(tmp_path: Path) -> None:
    proc = start_forwarder(tmp_path / "forwarder.log")
    try:
        wait_for_state(proc, st.NOT_CONFIGURED)
        result = run_cli(
            [
                "set-syslog-server",
                "--server-name",
                "127.0.0.1",
                "--server-port",
                "9",
                "--no-encryption",
            ]
        )
        assert result.exit_code == 0
        proc.send_signal(signal.SIGHUP)
        data = wait_for_state(proc, st.BACKING_OFF, timeout=5)
        assert data["server"] == {"name": "127.0.0.1", "port": 9, "transport": "tcp"}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_sigterm_during_a_hung_tls_handshake_exits_0_quickly(tmp_path: Path) -> None:
    import socket

    from tests.receivers import TestPKI

    pki = TestPKI.create(tmp_path / "pki")
    with socket.create_server(("127.0.0.1", 0)) as hung:  # accepts, never answers the hello
        port = hung.getsockname()[1]
        result = run_cli(
            [
                "set-syslog-server",
                "--server-name",
                "127.0.0.1",
                "--server-port",
                str(port),
                "--trusted-ca",
                str(pki.ca_file),
            ]
        )
        assert result.exit_code == 0, result.stderr
        proc = start_forwarder(tmp_path / "forwarder.log")
        try:
            wait_for_state(proc, st.CONNECTING)
            deadline = time.monotonic() + 10
            while ((st.read_status() or {}).get("blocked") or {}).get("on") != "tls handshake":
                assert time.monotonic() < deadline, "the handshake never showed as blocked"
                time.sleep(0.05)  # polling the status file: inside the 10 s handshake wait
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
            assert time.monotonic() - started < 5
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert "Traceback" not in (tmp_path / "forwarder.log").read_text()
