"""End to end: send-event → queue → ``forwarder run`` (a real process) → rsyslog.

Every event carries a unique MasEventRecordID, so a test counts what is missing and what
arrived twice. Every wait is bounded.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from azs_syslog import paths
from azs_syslog.queue import Queue
from tests.receivers import RsyslogReceiver, TestPKI
from tests.support import (
    Forwarder,
    Status,
    assert_none_missing,
    configure,
    events,
    expected_messages,
    record_ids,
    run_cli,
    send_events,
    wait_for_all,
    wait_for_ids,
    wait_until,
)

pytestmark = pytest.mark.rsyslog

Receivers = Callable[[str], RsyslogReceiver]


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def receivers(
    tmp_path: Path, pki: TestPKI, rsyslog_factory: Callable[..., RsyslogReceiver]
) -> Iterator[Receivers]:
    """``receivers(mode)``: a started rsyslog for ``mtls``, ``tls``, ``tcp`` or ``udp``."""
    udp: list[RsyslogReceiver] = []

    def make(mode: str) -> RsyslogReceiver:
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


@pytest.fixture
def configured(receivers: Receivers, pki: TestPKI, tmp_path: Path) -> Receivers:
    """``configured(mode)``: a started rsyslog for ``mode``, the configuration pointed at it."""

    def make(mode: str) -> RsyslogReceiver:
        receiver = receivers(mode)
        configure(mode, receiver, pki, tmp_path)
        return receiver

    return make


def queue_depth() -> int:
    with Queue() as queue:
        return queue.depth().events


def drained(status: Status) -> bool:
    return bool(status["queue"]["events"] == 0)


# --- tests -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["mtls", "tls", "tcp", "udp"])
def test_four_configurations_deliver_byte_exact(
    mode: str, configured: Receivers, forwarder: Callable[[], Forwarder]
) -> None:
    count = 10_000
    receiver = configured(mode)
    send_events(0, count)
    worker = forwarder()
    wait_for_all(receiver, range(count))
    assert sorted(receiver.lines()) == sorted(expected_messages(0, count))
    if mode != "udp":
        assert receiver.lines() == expected_messages(0, count)  # in order, too
    status = worker.wait_for(lambda s: drained(s) and s["state"] == "connected")
    connection = status["connection"]
    assert isinstance(connection, dict)
    if mode in ("tls", "mtls"):
        assert connection["tls_version"] in ("TLSv1.2", "TLSv1.3")
        assert connection["client_certificate_sent"] is (mode == "mtls")
    healthy = run_cli(["forwarder", "status", "--json"])
    assert healthy.exit_code == 0, healthy.stdout
    assert json.loads(healthy.stdout)["healthy"] is True
    worker.stop_cleanly(within=5)
    stopped = run_cli(["forwarder", "status", "--json"])
    assert stopped.exit_code == 1
    assert json.loads(stopped.stdout)["running"] is False


def test_receiver_down_at_start_then_up(
    configured: Receivers, forwarder: Callable[[], Forwarder]
) -> None:
    receiver = configured("tls")
    receiver.stop()
    send_events(0, 3000)
    worker = forwarder()
    worker.wait_for(lambda s: s["state"] == "backing off" and s["last_error"] is not None)
    assert run_cli(["forwarder", "status"]).exit_code == 1
    receiver.start()
    assert wait_for_all(receiver, range(3000)) == 0


@pytest.mark.parametrize("interruption", ["receiver stopped", "receiver killed", "worker killed"])
def test_interrupted_mid_stream_loses_nothing(
    interruption: str, configured: Receivers, forwarder: Callable[[], Forwarder]
) -> None:
    """The receiver stopped (SIGTERM: rsyslog writes what it queued) or killed (SIGKILL: what
    it buffered is lost) and restarted on the same port, or the worker killed and started
    again, while events stream: every event arrives, and every duplicate is counted."""
    count = 60_000
    receiver = configured("tls")
    send_events(0, count)
    worker = forwarder()
    receiver.wait_for_lines(2000, timeout=30)
    if interruption == "worker killed":
        worker.kill()
        received = len(receiver.lines())
        worker = forwarder()
    else:
        if interruption == "receiver killed":
            receiver.kill()
        else:
            receiver.stop()
        received = len(receiver.lines())
        worker.wait_for(lambda s: s["state"] != "connected")  # it noticed the outage
        receiver.start()  # same port
    duplicates = wait_for_all(receiver, range(count), timeout=120)
    assert received < count, "the interruption did not happen mid-stream"
    status = worker.wait_for(drained)
    if interruption != "worker killed":  # the killed worker's resends are its own to count
        assert status["counts"]["resent"] >= duplicates


def test_udp_to_tls_while_running_and_remove_then_set_again(
    receivers: Receivers, forwarder: Callable[[], Forwarder], pki: TestPKI, tmp_path: Path
) -> None:
    udp = receivers("udp")
    tls = receivers("tls")
    configure("udp", udp, None, tmp_path)
    worker = forwarder()
    worker.wait_for(lambda s: s["state"] == "connected")
    send_events(0, 2000)
    wait_for_all(udp, range(2000))
    configure("tls", tls, pki, tmp_path)
    changed = time.monotonic()
    worker.wait_for(
        lambda s: s["state"] == "connected" and (s["server"] or {}).get("transport") == "tls",
        timeout=10,
    )
    assert time.monotonic() - changed < 2.5
    send_events(2000, 2000)
    ids = record_ids(udp.lines()) + wait_for_ids(tls, range(2000, 4000))
    assert_none_missing(ids, range(4000))

    assert run_cli(["set-syslog-server", "--remove"]).exit_code == 0
    worker.wait_for(lambda s: s["state"] == "not configured", timeout=10)
    send_events(4000, 3000)
    # The worker sees the new events and keeps them while no server is configured.
    worker.wait_for(lambda s: s["state"] == "not configured" and s["queue"]["events"] == 3000)
    assert queue_depth() == 3000
    assert run_cli(["forwarder", "status"]).exit_code == 1
    configure("tls", tls, pki, tmp_path)
    wait_for_all(tls, range(4000, 7000))
    worker.stop_cleanly(within=5)


def test_socket_input_end_to_end_and_one_worker_per_home(
    configured: Receivers, forwarder: Callable[[], Forwarder]
) -> None:
    receiver = configured("tcp")
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
        for _ in range(10_000):  # bounded: ends at the forwarder's end of file
            data = conn.recv(65536)
            if not data:
                break
            replies += data
    assert b"error 501 " in replies
    assert replies.endswith(b"ok 501\n")
    assert wait_for_all(receiver, range(500)) == 0
    worker.stop_cleanly(within=5)


def test_full_queue_drops_the_oldest_and_warns_once(
    configured: Receivers, forwarder: Callable[[], Forwarder], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZS_SYSLOG_QUEUE_MAX_EVENTS", "1000")
    receiver = configured("tcp")
    for first in (0, 600, 1200):  # each send-event commits one batch of 600
        send_events(first, 600)
    assert queue_depth() == 600
    forwarder()
    ids = wait_for_ids(receiver, range(1200, 1800))
    assert set(ids) == set(range(1200, 1800))
    lines = wait_until(lambda: len(got := receiver.lines()) >= 601 and got, 10, "601 messages")
    warnings = [line for line in lines if b"QueueOverflow" in line]
    assert len(warnings) == 1
    assert b"|Microsoft-AzureStack-Forwarder: QueueOverflow|QueueOverflow|5|" in warnings[0]
    assert b" cnt=1200 " in warnings[0]
    status = run_cli(["forwarder", "status", "--json"])
    assert json.loads(status.stdout)["status"]["counts"]["dropped"] == 1200
