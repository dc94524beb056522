from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from azs_syslog import paths
from azs_syslog.forwarder import status as st
from azs_syslog.forwarder.snapshot import ServerStatus, StatusSnapshot
from tests import status_documents as documents
from tests.conftest import run_cli
from tests.support import start_cli
from tests.test_send_event import windows_event

FIXTURES = Path(__file__).parent / "fixtures" / "forwarder_status"


def fresh(**fields: object) -> StatusSnapshot:
    data: dict[str, object] = {
        "pid": os.getpid(),
        "updated": time.time(),
        "state": st.CONNECTED,
        "queue": {"events": 0},
        "config_problem": None,
    }
    data.update(fields)
    return StatusSnapshot.from_json(data)


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
    assert st.read_snapshot() == first
    second = fresh()
    st.write_status(second)
    again = path.stat()
    assert (again.st_ino, again.st_size) == (info.st_ino, info.st_size)  # in place
    assert st.read_snapshot() == second
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


# --- the status file and the outputs, byte for byte --------------------------------------------


@pytest.mark.parametrize("document", [documents.FULL, documents.UNCONFIGURED])
def test_the_status_document_reads_back_byte_for_byte(document: dict[str, object]) -> None:
    """A document as the worker writes it (tests/status_documents.py, in its order) is what
    the typed snapshot reads and writes again, and what the status file holds."""
    snapshot = StatusSnapshot.from_json(document)
    assert json.dumps(snapshot.as_json(), indent=2) == json.dumps(document, indent=2)
    st.write_status(snapshot)
    text = paths.status_file().read_text().rstrip()
    token = json.loads(text)["write"]
    expected = json.dumps({"write": token, **document, "write_check": token}, indent=2)
    assert text == expected


def test_the_worker_writes_the_document_it_always_wrote() -> None:
    """Every key, in the order and of the type an unconfigured worker wrote before the status
    was typed (fixtures/forwarder_status/worker_document_shape.json)."""
    from azs_syslog.config import Config
    from azs_syslog.forwarder.worker import Worker, WorkerOptions

    def shape(value: object) -> object:
        if isinstance(value, dict):
            return {key: shape(item) for key, item in value.items()}
        return type(value).__name__

    worker = Worker(Config, options=WorkerOptions(socket_input=False))
    try:
        worker.step()
        document = json.loads(json.dumps(worker.status().as_json()))  # as the file holds it
    finally:
        worker.close()
    expected = json.loads((FIXTURES / "worker_document_shape.json").read_text())
    assert json.dumps(shape(document)) == json.dumps(expected)


# name -> (the status file, the lock held, the pid in the pid file, a queue file, the time)
SCENARIOS: dict[str, tuple[dict[str, object] | None, bool, int | None, bool, float | None]] = {
    "stopped_full": (documents.FULL, False, None, False, None),
    "stale_running_full": ({**documents.FULL, "blocked": None}, True, documents.PID, True, None),
    "stopped_unconfigured": (documents.UNCONFIGURED, False, None, False, None),
    "no_status_running": (None, True, None, False, None),
    "running_current_full": (documents.FULL, True, documents.PID, False, documents.UPDATED + 1),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_forwarder_status_outputs_are_unchanged(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``forwarder status`` and ``forwarder status --json``, as they were before the status
    was typed (fixtures/forwarder_status/<name>.json, written by that release)."""
    document, lock, lock_pid, queue, now = SCENARIOS[name]
    if document is not None:
        st.write_status(StatusSnapshot.from_json(document))
    if queue:
        from azs_syslog.queue import Queue

        Queue().close()
    monkeypatch.setattr(st, "worker_lock_held", lambda path=None: lock)
    monkeypatch.setattr(st, "pid_in_file", lambda path=None: lock_pid)
    if now is not None:
        monkeypatch.setattr(time, "time", lambda: now)
    text = run_cli(["forwarder", "status"])
    as_json = run_cli(["forwarder", "status", "--json"])
    expected = json.loads((FIXTURES / f"{name}.json").read_text())
    assert (text.exit_code, as_json.exit_code) == (expected["text_code"], expected["json_code"])
    assert text.stdout == expected["text"]
    assert text.stderr == expected["text_err"]
    assert as_json.stdout == expected["json"]


# --- a real forwarder process ------------------------------------------------------------------


def start_forwarder(log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as stderr:
        return start_cli(["forwarder", "run"], stdout=subprocess.DEVNULL, stderr=stderr)


@contextlib.contextmanager
def forwarder(log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A forwarder process, killed at the end if the test did not stop it."""
    proc = start_forwarder(log)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> float:
    """Send ``sig``; the process exits 0; returns how long it took."""
    started = time.monotonic()
    proc.send_signal(sig)
    assert proc.wait(timeout=10) == 0
    return time.monotonic() - started


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.05)


def wait_for(
    proc: subprocess.Popen[bytes],
    predicate: Callable[[StatusSnapshot], bool],
    timeout: float = 30,
) -> StatusSnapshot:
    """The first status of ``proc`` for which ``predicate`` holds (the process must live)."""
    found: list[StatusSnapshot] = []

    def seen() -> bool:
        assert proc.poll() is None
        data = st.read_snapshot()
        if data is not None and data.pid == proc.pid and predicate(data):
            found.append(data)
        return bool(found)

    wait_until(seen, f"status condition (last {st.read_snapshot()})", timeout)
    return found[0]


def wait_for_state(
    proc: subprocess.Popen[bytes], state: str, timeout: float = 30
) -> StatusSnapshot:
    return wait_for(proc, lambda data: data.state == state, timeout)


def closed_port() -> int:
    from socket import socket

    with socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def set_server(port: int, *options: str) -> None:
    result = run_cli(
        [
            *("set-syslog-server", "--server-name", "127.0.0.1"),
            *("--server-port", str(port)),
            *(options or ("--no-encryption",)),
        ]
    )
    assert result.exit_code == 0, result.stderr


def test_sigterm_while_backing_off_exits_0_quickly(tmp_path: Path) -> None:
    set_server(closed_port())
    with forwarder(tmp_path / "forwarder.log") as proc:
        data = wait_for_state(proc, st.BACKING_OFF)
        assert data.last_error is not None and data.last_error.cause == "refused"
        status = run_cli(["forwarder", "status", "--json"])
        assert status.exit_code == 1
        assert json.loads(status.stdout)["running"] is True
        assert stop(proc) < 5
    final = st.read_snapshot()
    assert final is not None and final.state == st.STOPPED
    assert not paths.pid_file().exists()
    assert not paths.socket_file().exists()
    log = (tmp_path / "forwarder.log").read_text()
    assert "retrying in" in log
    assert "Traceback" not in log


def test_sighup_reloads_at_once(tmp_path: Path) -> None:
    with forwarder(tmp_path / "forwarder.log") as proc:
        wait_for_state(proc, st.NOT_CONFIGURED)
        set_server(9)
        proc.send_signal(signal.SIGHUP)
        data = wait_for_state(proc, st.BACKING_OFF, timeout=5)
        assert data.server == ServerStatus("127.0.0.1", 9, "tcp")
        stop(proc, signal.SIGINT)


def test_sigterm_during_a_hung_tls_handshake_exits_0_quickly(tmp_path: Path) -> None:
    import socket

    from tests.receivers import TestPKI

    pki = TestPKI.create(tmp_path / "pki")
    with socket.create_server(("127.0.0.1", 0)) as hung:  # accepts, never answers the hello
        set_server(hung.getsockname()[1], "--trusted-ca", str(pki.ca_file))
        with forwarder(tmp_path / "forwarder.log") as proc:
            wait_for_state(proc, st.CONNECTING)
            # Inside the 10 s handshake wait.
            wait_for(
                proc,
                lambda data: data.blocked is not None and data.blocked.on == "tls handshake",
                timeout=10,
            )
            assert stop(proc) < 5
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
    with forwarder(tmp_path / "forwarder.log") as proc:

        def locked() -> bool:
            assert proc.poll() is None
            return st.worker_lock_held() is True

        wait_until(locked, "the worker's lock")
        report = run_cli(["forwarder", "status", "--json"])
        assert report.exit_code == 1
        data = json.loads(report.stdout)
        assert data["running"] is True
        assert "not been updated since it started" in data["reason"]
        table = run_cli(["forwarder", "status"])
        assert "running" in table.stdout and "stopped" not in table.stdout
        stop(proc)
    log = (tmp_path / "forwarder.log").read_text()
    assert log.count("cannot write the status file") == 1, log
    assert "Traceback" not in log
    assert json.loads(run_cli(["forwarder", "status", "--json"]).stdout)["running"] is False


def test_last_error_is_forgotten_when_its_server_is_replaced_or_removed(tmp_path: Path) -> None:
    first, second = closed_port(), closed_port()
    set_server(first)
    with forwarder(tmp_path / "forwarder.log") as proc:
        data = wait_for(proc, lambda d: d.last_error is not None)
        assert data.last_error is not None and data.last_error.server == f"127.0.0.1:{first} tcp"
        set_server(second)
        data = wait_for(proc, lambda d: d.server is not None and d.server.port == second)
        error = data.last_error
        assert error is None or (error.server is not None and str(second) in error.server)
        assert run_cli(["set-syslog-server", "--remove"]).exit_code == 0
        data = wait_for(proc, lambda d: d.state == st.NOT_CONFIGURED)
        assert data.last_error is None
        table = run_cli(["forwarder", "status"])
        assert "Last error" not in table.stdout
        stop(proc)


def test_a_forwarder_that_is_gone_shows_no_connection(tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:  # a TCP peer that accepts
        server.settimeout(30)
        set_server(server.getsockname()[1])
        with forwarder(tmp_path / "forwarder.log") as proc:
            wait_for(proc, lambda d: d.state == st.CONNECTED and d.connection is not None)
            connected = run_cli(["forwarder", "status"])
            assert "Connected to" in connected.stdout
            proc.kill()  # SIGKILL: its last status still says connected
            proc.wait(timeout=10)
        last = st.read_snapshot()
        assert last is not None and last.connection is not None
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


def test_sigterm_the_moment_the_lock_shows_it_running_exits_0(tmp_path: Path) -> None:
    """The pid-file lock says "running" before the worker's own handlers are in: a stop
    signal in that window stops it cleanly (exit 0, the usual last line), it does not kill it."""
    log = tmp_path / "forwarder.log"
    with forwarder(log) as proc:
        deadline = time.monotonic() + 30
        while st.worker_lock_held() is not True:  # as tight as a supervisor polling the lock
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        stop(proc)
    assert "forwarder stopped" in log.read_text()


def test_an_audit_record_that_could_not_reach_its_server_is_shown(tmp_path: Path) -> None:
    """Re-pointing forwarding while the forwarder cannot reach the server being left: that
    server's ConfigurationChanged record is counted, and ``forwarder status`` says so (text
    and --json), so the operator knows that SIEM was not told."""
    first, second = closed_port(), closed_port()
    set_server(first)
    with forwarder(tmp_path / "forwarder.log") as proc:
        wait_for(proc, lambda d: d.last_error is not None)  # never connected to the first
        set_server(second)
        # Both records meant for the first server: the one of its own configuration and the
        # one saying forwarding left it.
        data = wait_for(proc, lambda d: d.audit.undelivered >= 2)
        assert data.audit.undelivered == 2
        shown = " ".join(run_cli(["forwarder", "status"]).stdout.split())
        assert (
            "Audit events 2 could not reach the server they were for (it was replaced or"
            " removed while the forwarder was not connected to it); see the log"
        ) in shown
        as_json = json.loads(run_cli(["forwarder", "status", "--json"]).stdout)
        assert as_json["status"]["audit"] == {"undelivered": 2}
        stop(proc)
    log = " ".join((tmp_path / "forwarder.log").read_text().split())
    assert "(ConfigurationChanged) could not be sent to the server" in log
