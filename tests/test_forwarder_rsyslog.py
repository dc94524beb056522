"""End to end: send-event → queue → ``forwarder run`` (a real process) → rsyslog.

Every event carries a unique MasEventRecordID, so a test counts what is missing and what
arrived twice. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from azs_syslog import paths
from azs_syslog.queue import Queue
from tests.conftest import REPO_ROOT, discard_audit_events, run_cli
from tests.receivers import RsyslogReceiver, TestPKI, rsyslog_factory  # noqa: F401
from tests.test_send_event import windows_event

pytestmark = pytest.mark.rsyslog

EVENT_TIME = "2026-11-26T10:00:00.123Z"
RECORD_ID = re.compile(rb"MasEventRecordID=(\d+)")


# --- helpers -----------------------------------------------------------------------------------


def events(first: int, count: int) -> str:
    return "".join(
        windows_event(i, time_text=EVENT_TIME) + "\n" for i in range(first, first + count)
    )


def send_events(first: int, count: int) -> None:
    result = run_cli(["send-event", "-"], input=events(first, count))
    assert result.exit_code == 0, result.stderr


def configure(mode: str, receiver: RsyslogReceiver, pki: TestPKI | None, tmp: Path) -> None:
    """Point the configuration at ``receiver`` in one of SPEC §2's four configurations."""
    args = ["set-syslog-server", "--server-name", "127.0.0.1", "--server-port", str(receiver.port)]
    if mode == "udp":
        args.append("--use-udp")
    elif mode == "tcp":
        args.append("--no-encryption")
    else:
        assert pki is not None
        args += ["--trusted-ca", str(pki.ca_file)]
    result = run_cli(args)
    assert result.exit_code == 0, result.stderr
    if mode == "mtls":
        assert pki is not None
        pfx = tmp / "client.pfx"
        pfx.write_bytes(pki.client.to_pfx(b"test-password"))
        result = run_cli(
            ["set-syslog-client", "--pfx-file", str(pfx), "--output-severity", "Verbose"],
            input="test-password\n",
        )
        assert result.exit_code == 0, result.stderr
    discard_audit_events()  # these tests count the events queued and sent exactly


@pytest.fixture
def receivers(
    tmp_path: Path,
    rsyslog_factory: Callable[..., RsyslogReceiver],  # noqa: F811
) -> Iterator[Callable[[str, TestPKI | None], RsyslogReceiver]]:
    """``receivers(mode, pki)``: a started rsyslog for ``mtls``, ``tls``, ``tcp`` or ``udp``."""
    udp: list[RsyslogReceiver] = []

    def make(mode: str, pki: TestPKI | None) -> RsyslogReceiver:
        if mode == "udp":
            receiver = RsyslogReceiver(tmp_path / f"rsyslog-big-udp-{len(udp)}", "udp")
            udp.append(receiver)
            return receiver.start()
        if mode == "tcp":
            return rsyslog_factory("tcp")
        authmode = "x509/certvalid" if mode == "mtls" else "anon"
        return rsyslog_factory("tls", pki=pki, authmode=authmode)

    yield make
    for receiver in udp:
        receiver.stop()


def expected_messages(first: int, count: int) -> list[bytes]:
    """What ``format-event`` prints for these events under the current configuration."""
    result = run_cli(["format-event", "-"], input=events(first, count))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout_bytes.split(b"\n")
    assert lines[-1] == b""
    return lines[:-1]


def record_ids(lines: list[bytes]) -> Counter[int]:
    ids: Counter[int] = Counter()
    for line in lines:
        match = RECORD_ID.search(line)
        if match:
            ids[int(match.group(1))] += 1
    return ids


def wait_for_ids(receiver: RsyslogReceiver, expected: range, timeout: float = 60) -> Counter[int]:
    deadline = time.monotonic() + timeout
    while True:
        ids = record_ids(receiver.lines())
        if set(expected) <= set(ids) or time.monotonic() > deadline:
            return ids
        time.sleep(0.1)


def assert_none_missing(ids: Counter[int], expected: range) -> int:
    missing = sorted(set(expected) - set(ids))
    assert not missing, f"{len(missing)} missing, e.g. {missing[:10]}"
    return sum(ids.values()) - len(ids)


class Forwarder:
    """``azs-syslog forwarder run`` in a child process."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Forwarder:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO_ROOT)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "azs_syslog", "forwarder", "run"],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
            )
        return self

    def status(self) -> dict[str, object]:
        try:
            data = json.loads(paths.status_file().read_text())
        except (OSError, ValueError):
            return {}
        assert isinstance(data, dict)
        return data

    def wait_for(self, predicate: Callable[[dict[str, object]], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            status = self.status()
            if status.get("pid") == self.proc.pid and predicate(status):
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out; last status {self.status()}; log {self.log.read_text()}")

    def terminate(self, timeout: float = 10) -> tuple[int, float]:
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def forwarder(tmp_path: Path) -> Iterator[Callable[[], Forwarder]]:
    started: list[Forwarder] = []

    def make() -> Forwarder:
        worker = Forwarder(tmp_path / f"forwarder-{len(started)}.log").start()
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop_quietly()


@pytest.fixture
def pki(tmp_path: Path) -> TestPKI:
    return TestPKI.create(tmp_path / "pki")


def queue_depth() -> int:
    with Queue() as queue:
        return queue.depth().events


# --- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["mtls", "tls", "tcp", "udp"])
def test_four_configurations_deliver_byte_exact(
    mode: str,
    receivers: Callable[[str, TestPKI | None], RsyslogReceiver],
    forwarder: Callable[[], Forwarder],
    pki: TestPKI,
    tmp_path: Path,
) -> None:
    count = 10_000
    receiver = receivers(mode, pki)
    configure(mode, receiver, pki, tmp_path)
    send_events(0, count)
    worker = forwarder()
    ids = wait_for_ids(receiver, range(count))
    assert_none_missing(ids, range(count))
    assert sorted(receiver.lines()) == sorted(expected_messages(0, count))
    if mode != "udp":
        assert receiver.lines() == expected_messages(0, count)  # in order, too
    worker.wait_for(lambda s: s["queue"]["events"] == 0 and s["state"] == "connected")  # type: ignore[index]
    status = worker.status()
    connection = status["connection"]
    assert isinstance(connection, dict)
    if mode in ("tls", "mtls"):
        assert connection["tls_version"] in ("TLSv1.2", "TLSv1.3")
        assert connection["client_certificate_sent"] is (mode == "mtls")
    healthy = run_cli(["forwarder", "status", "--json"])
    assert healthy.exit_code == 0, healthy.stdout
    assert json.loads(healthy.stdout)["healthy"] is True
    code, elapsed = worker.terminate()
    assert code == 0
    assert elapsed < 5
    stopped = run_cli(["forwarder", "status", "--json"])
    assert stopped.exit_code == 1
    assert json.loads(stopped.stdout)["running"] is False


def test_receiver_down_at_start_then_up(
    receivers: Callable[[str, TestPKI | None], RsyslogReceiver],
    forwarder: Callable[[], Forwarder],
    pki: TestPKI,
    tmp_path: Path,
) -> None:
    receiver = receivers("tls", pki)
    configure("tls", receiver, pki, tmp_path)
    receiver.stop()
    send_events(0, 3000)
    worker = forwarder()
    worker.wait_for(lambda s: s["state"] == "backing off" and s["last_error"] is not None)
    assert run_cli(["forwarder", "status"]).exit_code == 1
    receiver.start()
    ids = wait_for_ids(receiver, range(3000))
    assert assert_none_missing(ids, range(3000)) == 0


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_receiver_restarted_mid_stream_loses_nothing(
    how: str,
    receivers: Callable[[str, TestPKI | None], RsyslogReceiver],
    forwarder: Callable[[], Forwarder],
    pki: TestPKI,
    tmp_path: Path,
) -> None:
    count = 60_000
    receiver = receivers("tls", pki)
    configure("tls", receiver, pki, tmp_path)
    send_events(0, count)
    worker = forwarder()
    receiver.wait_for_lines(2000, timeout=30)
    getattr(receiver, how)()  # SIGTERM or SIGKILL while events stream
    received = len(receiver.lines())
    time.sleep(0.5)
    receiver.start()  # same port
    ids = wait_for_ids(receiver, range(count), timeout=120)
    duplicates = assert_none_missing(ids, range(count))
    assert received < count, "the restart did not happen mid-stream"
    worker.wait_for(lambda s: s["queue"]["events"] == 0)  # type: ignore[index]
    counts = worker.status()["counts"]
    assert isinstance(counts, dict)
    assert counts["resent"] >= duplicates


def test_worker_killed_mid_stream_and_restarted_loses_nothing(
    receivers: Callable[[str, TestPKI | None], RsyslogReceiver],
    forwarder: Callable[[], Forwarder],
    pki: TestPKI,
    tmp_path: Path,
) -> None:
    count = 60_000
    receiver = receivers("tls", pki)
    configure("tls", receiver, pki, tmp_path)
    send_events(0, count)
    first = forwarder()
    receiver.wait_for_lines(2000, timeout=30)
    first.kill()
    assert len(receiver.lines()) < count, "the kill did not happen mid-stream"
    second = forwarder()
    ids = wait_for_ids(receiver, range(count), timeout=120)
    assert_none_missing(ids, range(count))
    second.wait_for(lambda s: s["queue"]["events"] == 0)  # type: ignore[index]


def test_udp_to_tls_while_running_and_remove_then_set_again(
    receivers: Callable[[str, TestPKI | None], RsyslogReceiver],
    forwarder: Callable[[], Forwarder],
    pki: TestPKI,
    tmp_path: Path,
) -> None:
    udp = receivers("udp", None)
    tls = receivers("tls", pki)
    configure("udp", udp, None, tmp_path)
    worker = forwarder()
    worker.wait_for(lambda s: s["state"] == "connected")
    send_events(0, 2000)
    wait_for_ids(udp, range(2000))
    configure("tls", tls, pki, tmp_path)
    changed = time.monotonic()
    worker.wait_for(
        lambda s: s["state"] == "connected" and (s["server"] or {}).get("transport") == "tls",  # type: ignore[attr-defined]
        timeout=10,
    )
    assert time.monotonic() - changed < 2.5
    send_events(2000, 2000)
    ids = record_ids(udp.lines()) + wait_for_ids(tls, range(2000, 4000))
    assert_none_missing(ids, range(4000))

    assert run_cli(["set-syslog-server", "--remove"]).exit_code == 0
    worker.wait_for(lambda s: s["state"] == "not configured", timeout=10)
    send_events(4000, 3000)
    time.sleep(1.0)
    assert queue_depth() == 3000  # kept while no server is configured
    assert run_cli(["forwarder", "status"]).exit_code == 1
    configure("tls", tls, pki, tmp_path)
    ids = wait_for_ids(tls, range(4000, 7000))
    assert_none_missing(ids, range(4000, 7000))
    code, elapsed = worker.terminate()
    assert (code, elapsed < 5) == (0, True)


def test_socket_input_end_to_end_and_one_worker_per_home(
    receivers: Callable[[str, TestPKI | None], RsyslogReceiver],
    forwarder: Callable[[], Forwarder],
    tmp_path: Path,
) -> None:
    import socket

    receiver = receivers("tcp", None)
    configure("tcp", receiver, None, tmp_path)
    worker = forwarder()
    worker.wait_for(lambda s: s["state"] == "connected")
    second = forwarder()
    assert second.proc is not None
    assert second.proc.wait(timeout=30) == 1
    assert "already running" in second.log.read_text()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(20)
        conn.connect(str(paths.socket_file()))
        conn.sendall(events(0, 500).encode() + b"bad\n")
        conn.shutdown(socket.SHUT_WR)
        replies = b""
        while data := conn.recv(65536):
            replies += data
    assert b"error 501 " in replies
    assert replies.endswith(b"ok 501\n")
    ids = wait_for_ids(receiver, range(500))
    assert assert_none_missing(ids, range(500)) == 0
    code, elapsed = worker.terminate()
    assert code == 0 and elapsed < 5


def test_full_queue_drops_the_oldest_and_warns_once(
    receivers: Callable[[str, TestPKI | None], RsyslogReceiver],
    forwarder: Callable[[], Forwarder],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZS_SYSLOG_QUEUE_MAX_EVENTS", "1000")
    receiver = receivers("tcp", None)
    configure("tcp", receiver, None, tmp_path)
    for first in (0, 600, 1200):  # each send-event commits one batch of 600
        send_events(first, 600)
    assert queue_depth() == 600
    forwarder()
    ids = wait_for_ids(receiver, range(1200, 1800))
    assert set(ids) == set(range(1200, 1800))
    warnings = [line for line in receiver.wait_for_lines(601) if b"QueueOverflow" in line]
    assert len(warnings) == 1
    assert b"|Microsoft-AzureStack-Forwarder: QueueOverflow|QueueOverflow|5|" in warnings[0]
    assert b" cnt=1200 " in warnings[0]
    status = run_cli(["forwarder", "status", "--json"])
    assert json.loads(status.stdout)["status"]["counts"]["dropped"] == 1200
