from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from azs_syslog import paths
from azs_syslog.forwarder import status as st
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


def test_status_file_is_preallocated_private_and_overwritten_in_place() -> None:
    first = fresh(state=st.CONNECTING)
    st.write_status(first)
    path = paths.status_file()
    info = path.stat()
    assert info.st_mode & 0o777 == 0o600
    assert info.st_size == st.STATUS_FILE_BYTES  # preallocated: later writes need no blocks
    on_disk = json.loads(path.read_text())  # plain JSON (padding is whitespace)
    assert on_disk["write"] == on_disk["write_check"]
    assert st.read_status() == first
    second = fresh()
    st.write_status(second)
    again = path.stat()
    assert (again.st_ino, again.st_size) == (info.st_ino, info.st_size)  # in place
    assert st.read_status() == second
    # A reader that catches a write half done (first and last keys differ) does not take it.
    text = json.loads(path.read_text())
    text["write_check"] = "someone else"
    path.write_text(json.dumps(text))
    assert st.read_status() is None
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
    assert "1 event, " in table.stdout


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


def test_health_follows_the_pid_file_lock_when_it_can_be_probed() -> None:
    old = time.time() - 3600
    running = st.evaluate(fresh(state=st.STOPPED, updated=old), lock=True, lock_pid=None)
    assert (running.healthy, running.running, running.current) == (False, True, False)
    assert "not been updated since" in running.reason and "disk full?" in running.reason
    other = st.evaluate(fresh(pid=1), lock=True, lock_pid=os.getpid())  # an older worker's
    assert (other.running, other.current) == (True, False)
    assert "since it started" in other.reason
    assert st.evaluate(None, lock=True).running
    assert st.evaluate(fresh(), lock=True, lock_pid=os.getpid()).healthy
    # No lock held: not running, whatever an old status and a reused pid say.
    assert not st.evaluate(fresh(), lock=False).running
    full = st.evaluate(fresh(condition=st.DISK_FULL, disk_full={"path": "/x/queue"}), lock=True)
    assert (full.healthy, full.running) == (False, True)
    assert "disk full: /x/queue" in full.reason


def test_pid_file_lock_probe(tmp_path: Path) -> None:
    from azs_syslog.forwarder.pidfile import acquire_pid_file, release_pid_file

    assert st.worker_lock_held() is None  # no pid file
    lock = acquire_pid_file(paths.pid_file())
    try:
        assert st.worker_lock_held() is True
        assert st.pid_in_file() == os.getpid()
    finally:
        release_pid_file(lock)
    assert st.worker_lock_held() is None
    paths.pid_file().write_text("12345\n")  # left by a worker killed with SIGKILL
    assert st.worker_lock_held() is False


def test_status_file_unwritable_forwarder_status_still_says_running(tmp_path: Path) -> None:
    paths.ensure_private_dir(paths.state_dir())
    paths.status_file().mkdir()  # neither writable nor readable as a file
    proc = start_forwarder(tmp_path / "forwarder.log")
    try:
        deadline = time.monotonic() + 30
        while st.worker_lock_held() is not True:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        report = run_cli(["forwarder", "status", "--json"])
        assert report.exit_code == 1
        data = json.loads(report.stdout)
        assert data["running"] is True
        assert "not been updated since it started" in data["reason"]
        table = run_cli(["forwarder", "status"])
        assert "running" in table.stdout and "stopped" not in table.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    log = (tmp_path / "forwarder.log").read_text()
    assert log.count("cannot write the status file") == 1, log
    assert "Traceback" not in log
    assert json.loads(run_cli(["forwarder", "status", "--json"]).stdout)["running"] is False


def closed_port() -> int:
    from socket import socket

    with socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def set_server(port: int) -> None:
    result = run_cli(
        [
            *("set-syslog-server", "--server-name", "127.0.0.1"),
            *("--server-port", str(port), "--no-encryption"),
        ]
    )
    assert result.exit_code == 0, result.stderr


def wait_for(
    proc: subprocess.Popen[bytes], predicate: object, timeout: float = 30
) -> dict[str, object]:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None
        data = st.read_status()
        if data and data.get("pid") == proc.pid and predicate(data):
            return data
        time.sleep(0.05)
    raise AssertionError(f"condition not met; last {st.read_status()}")


def test_last_error_is_forgotten_when_its_server_is_replaced_or_removed(tmp_path: Path) -> None:
    first, second = closed_port(), closed_port()
    set_server(first)
    proc = start_forwarder(tmp_path / "forwarder.log")
    try:
        data = wait_for(proc, lambda d: d.get("last_error") is not None)
        error = data["last_error"]
        assert isinstance(error, dict) and error["server"] == f"127.0.0.1:{first} tcp"
        set_server(second)
        data = wait_for(proc, lambda d: (d.get("server") or {}).get("port") == second)
        error = data["last_error"]
        assert error is None or (isinstance(error, dict) and str(second) in error["server"])
        assert run_cli(["set-syslog-server", "--remove"]).exit_code == 0
        data = wait_for(proc, lambda d: d.get("state") == st.NOT_CONFIGURED)
        assert data["last_error"] is None
        table = run_cli(["forwarder", "status"])
        assert "Last error" not in table.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_a_forwarder_that_is_gone_shows_no_connection(tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:  # a TCP peer that accepts
        server.settimeout(30)
        set_server(server.getsockname()[1])
        proc = start_forwarder(tmp_path / "forwarder.log")
        try:
            wait_for(proc, lambda d: d.get("state") == st.CONNECTED and d.get("connection"))
            connected = run_cli(["forwarder", "status"])
            assert "Connected to" in connected.stdout
            proc.kill()  # SIGKILL: its last status still says connected
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        assert (st.read_status() or {}).get("connection")
        report = run_cli(["forwarder", "status", "--json"])
        data = json.loads(report.stdout)
        assert data["running"] is False
        assert data["status"]["connection"] is None
        assert data["status"]["state"] == st.STOPPED
        table = run_cli(["forwarder", "status"])
        assert "Connected to" not in table.stdout
        assert "stopped" in table.stdout


def test_a_forwarder_in_its_last_moment_is_stopped_not_stale() -> None:
    final = st.evaluate(fresh(state=st.STOPPED), lock=True, lock_pid=os.getpid())
    assert (final.running, final.current) == (False, True)
    assert "it stopped" in final.reason
