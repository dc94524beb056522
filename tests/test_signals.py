"""Signals, interruptible network calls, the status timer and UDP pacing, against real sockets
and a real rsyslog on 127.0.0.1.

The forwarder's signal handlers only set flags; the loop is woken through a wake-up
descriptor. A stop must never wait for a network timeout (a server that never answers the TLS
ClientHello, a server that accepts and never reads), a second signal forces it, and the status
file must stay true while the loop is blocked.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from azs_syslog import transport
from azs_syslog.config import ClientSettings, ServerSettings
from azs_syslog.forwarder import status as st
from azs_syslog.forwarder.snapshot import StatusSnapshot
from azs_syslog.forwarder.worker import Worker, WorkerOptions
from azs_syslog.queue import Queue
from tests.receivers import RsyslogReceiver, TestPKI
from tests.support import (
    Forwarder,
    discard_audit_events,
    run_cli,
    send_events,
    set_server,
    step_until,
    wait_until,
)

Factory = Callable[..., RsyslogReceiver]
Forwarders = Callable[[], Forwarder]
STOP_WITHIN = 5.0  # seconds: SIGTERM to exit, whatever the loop is waiting on


def queue_events(count: int) -> None:
    send_events(0, count, time_text=None)


def accounted() -> int:
    """Events still queued plus events confirmed (sent or filtered)."""
    with Queue(durable=False) as queue:
        counts = queue.counters()
        return queue.depth().events + counts["sent"] + counts["filtered"]


def blocked_on(worker: Forwarder, what: str) -> dict[str, Any] | None:
    data = st.read_status()
    if data and worker.proc is not None and data.get("pid") == worker.proc.pid:
        blocked = data.get("blocked")
        if isinstance(blocked, dict) and blocked.get("on") == what:
            return data
    return None


def stop_and_time(worker: Forwarder, signals: Sequence[int]) -> float:
    assert worker.proc is not None
    started = time.monotonic()
    for number in signals:
        worker.proc.send_signal(number)
    assert worker.proc.wait(timeout=15) == 0
    return time.monotonic() - started


def blocked_writer(forwarder: Forwarders, port: int) -> tuple[Forwarder, dict[str, Any]]:
    """10,000 events queued for the TCP server on ``port`` that never reads, and a forwarder
    blocked writing them; its status then."""
    queue_events(10_000)  # ~8 MB: more than the socket buffers of both ends hold
    set_tcp_server(port)
    worker = forwarder()
    status = wait_until(lambda: blocked_on(worker, "write"), 60, "a blocked write in the status")
    return worker, status


@pytest.fixture
def not_reading() -> Iterator[int]:
    """A TCP server that accepts (the kernel does) and never reads: its buffers fill, then
    every write blocks. Yields the port."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        yield listener.getsockname()[1]


class TlsNotReading:
    """A TLS server that completes the handshake, then never reads: the client's writes block
    once both sides' buffers are full."""

    def __init__(self, pki: TestPKI) -> None:
        import ssl

        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(pki.server_cert, pki.server_key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.listener.settimeout(60)
        self.port: int = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
            conn.settimeout(30)
            self.connections.append(self.context.wrap_socket(conn, server_side=True))
        except OSError:
            return  # closed by the test

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=10)
        for conn in self.connections:
            conn.close()


@contextlib.contextmanager
def configure(kind: str, tmp_path: Path) -> Iterator[None]:
    """Point the configuration at a server of ``kind`` (tcp or tls) that never reads."""
    if kind == "tcp":
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            set_tcp_server(listener.getsockname()[1])
            yield
        return
    pki = TestPKI.create(tmp_path / "pki")
    server = TlsNotReading(pki)
    try:
        set_server(server.port, "--trusted-ca", str(pki.ca_file))
        discard_audit_events()  # the counts below are exact
        yield
    finally:
        server.close()


def set_tcp_server(port: int) -> None:
    set_server(port, "--no-encryption")
    discard_audit_events()  # the counts below are exact


# --- the health rule ---------------------------------------------------------------------------


def test_a_blocked_write_is_unhealthy_after_a_few_seconds() -> None:
    now = time.time()
    base = {"pid": os.getpid(), "updated": now, "state": st.CONNECTED, "queue": {"events": 9}}
    short = {**base, "blocked": {"on": "write", "since_ms": int((now - 2) * 1000)}}
    assert st.evaluate(StatusSnapshot.from_json(short), now=now).healthy
    long = {**base, "blocked": {"on": "write", "since_ms": int((now - 12) * 1000)}}
    health = st.evaluate(StatusSnapshot.from_json(long), now=now)
    assert (health.healthy, health.running) == (False, True)
    assert health.reason == "sending is blocked for 12 s: the server is not reading"
    handshake = {**base, "state": st.CONNECTING}
    handshake["blocked"] = {"on": "tls handshake", "since_ms": int((now - 7) * 1000)}
    health = st.evaluate(StatusSnapshot.from_json(handshake), now=now)
    assert "TLS handshake is blocked for 7 s" in health.reason


# --- the real forwarder ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tcp", "tls"])
def test_blocked_write_status_is_true_and_sigterm_stops_within_5_s(
    tmp_path: Path, kind: str, forwarder: Forwarders
) -> None:
    queue_events(10_000)  # ~8 MB: more than the socket buffers of both ends hold
    with configure(kind, tmp_path):
        check_blocked_write_then_stop(forwarder)


def blocked_report(worker: Forwarder) -> dict[str, Any] | None:
    """``forwarder status --json`` once it says the write is blocked. Until then the status
    stays fresh: running, never "stopped"."""
    report = run_cli(["forwarder", "status", "--json"])
    data: dict[str, Any] = json.loads(report.stdout)
    assert data["running"] is True, data["reason"]
    assert data["status"]["state"] != st.STOPPED
    assert worker.proc is not None and worker.proc.poll() is None
    if "sending is blocked" not in data["reason"]:
        return None
    assert report.exit_code == 1
    return data


def check_blocked_write_then_stop(forwarder: Forwarders) -> None:
    worker = forwarder()
    wait_until(lambda: blocked_on(worker, "write"), 60, "a blocked write in the status")
    # After a few seconds, unhealthy and saying why.
    data = wait_until(lambda: blocked_report(worker), 30, "the status to say the write blocks")
    assert data["healthy"] is False
    assert data["reason"].endswith("s: the server is not reading")
    assert data["status"]["blocked"]["on"] == "write"
    table = run_cli(["forwarder", "status"])
    assert table.exit_code == 1
    assert "sending is blocked for" in table.stdout
    assert "UNHEALTHY" in table.stdout

    assert stop_and_time(worker, [signal.SIGTERM]) < STOP_WITHIN
    assert accounted() == 10_000  # every event still queued, or confirmed
    final = st.read_status()
    assert final is not None and final["state"] == st.STOPPED and final["blocked"] is None
    assert "Traceback" not in worker.log.read_text()


def test_a_second_signal_forces_the_stop_during_a_blocked_write(
    not_reading: int, forwarder: Forwarders
) -> None:
    worker, _ = blocked_writer(forwarder, not_reading)
    assert stop_and_time(worker, [signal.SIGTERM, signal.SIGINT]) < STOP_WITHIN
    assert accounted() == 10_000
    log = worker.log.read_text()
    assert "second signal" in log
    assert "Traceback" not in log
    # Nothing was lost: the next run sends the same events again to a reading server.
    with Queue(durable=False) as queue:
        assert queue.depth().events > 0


def test_sigterm_during_a_hung_tls_handshake_keeps_the_queue(
    tmp_path: Path, forwarder: Forwarders
) -> None:
    pki = TestPKI.create(tmp_path / "pki")
    queue_events(50)
    with socket.create_server(("127.0.0.1", 0)) as hung:  # accepts, never answers the hello
        set_server(hung.getsockname()[1], "--trusted-ca", str(pki.ca_file))
        discard_audit_events()  # the counts below are exact
        worker = forwarder()
        data = wait_until(lambda: blocked_on(worker, "tls handshake"), 30, "a blocked handshake")
        assert data["state"] == st.CONNECTING
        assert stop_and_time(worker, [signal.SIGTERM]) < STOP_WITHIN
    with Queue(durable=False) as queue:
        assert queue.depth().events == 50
    assert "Traceback" not in worker.log.read_text()


def test_sighup_during_a_blocked_write_does_not_break_it(
    not_reading: int, forwarder: Forwarders
) -> None:
    """A wake-up that is not a stop (SIGHUP) leaves the blocked write waiting."""
    worker, first = blocked_writer(forwarder, not_reading)
    assert worker.proc is not None
    worker.proc.send_signal(signal.SIGHUP)
    later = wait_until(
        lambda: (d := blocked_on(worker, "write")) and d["updated"] > first["updated"] + 1.5 and d,
        30,
        "a fresh status after SIGHUP",
    )
    assert later["blocked"]["since_ms"] == first["blocked"]["since_ms"]  # the same write
    assert stop_and_time(worker, [signal.SIGTERM]) < STOP_WITHIN


# --- in-process: a signal while the worker is inside _close ------------------------------------


class SignallingSender:
    """A real TCP connection to a reading sink whose ``close`` receives SIGTERM, SIGINT and
    SIGHUP while it runs: a handler that raised would cut the close short."""

    def __init__(self, server: ServerSettings, client: ClientSettings, worker: list[Worker]):
        self._inner = transport.connect(server, client)
        self.info = self._inner.info
        self._worker = worker
        self.closes_finished = 0

    def send(self, wire: bytes | memoryview, lengths: Sequence[int]) -> None:
        self._inner.send(wire, lengths)
        os.kill(os.getpid(), signal.SIGTERM)  # the stop that leads to close()

    def unacknowledged_bytes(self) -> int:
        return self._inner.unacknowledged_bytes()

    def peer_closed(self) -> bool:
        return self._inner.peer_closed()

    def close(self, *, timeout: float = 2.0) -> None:
        worker = self._worker[0]
        os.kill(os.getpid(), signal.SIGINT)  # the second signal: forces the stop
        os.kill(os.getpid(), signal.SIGHUP)
        # Python runs handlers between bytecodes of the main thread: by the time this loop
        # sees the flag, the handlers have run inside this very method.
        wait_until(lambda: worker.forced and worker.reload_requested, 5, "the handlers")
        self._inner.close(timeout=timeout)
        self.closes_finished += 1


def test_signals_during_close_never_raise_into_it(tmp_path: Path) -> None:
    queue_events(20)
    received: list[bytes] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def read_all() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                while chunk := conn.recv(65536):
                    received.append(chunk)

        reader = threading.Thread(target=read_all, daemon=True)
        reader.start()
        set_tcp_server(port)
        holder: list[Worker] = []
        senders: list[SignallingSender] = []

        def connect(server: ServerSettings, client: ClientSettings) -> transport.Sender:
            sender = SignallingSender(server, client, holder)
            senders.append(sender)
            return sender

        worker = Worker(options=WorkerOptions(socket_input=False), connect=connect)
        holder.append(worker)
        previous = signal.getsignal(signal.SIGTERM)
        summary = worker.run()  # returns: no exception escaped a handler
        assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored
        reader.join(timeout=10)
    assert len(senders) == 1 and senders[0].closes_finished == 1
    assert worker.forced
    assert "events queued" in summary
    assert b"".join(received).count(b"CEF:0|Microsoft|") == 20  # the batch went out whole
    assert accounted() == 20


# --- UDP pacing --------------------------------------------------------------------------------


def udp_pair() -> tuple[socket.socket, socket.socket]:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    receiver.bind(("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.connect(receiver.getsockname())
    return receiver, sender


def test_paced_udp_sleeps_instead_of_spinning() -> None:
    receiver, sock = udp_pair()
    with receiver:
        info = transport.ConnectionInfo("udp", "127.0.0.1:1", "127.0.0.1:1")
        sender = transport.DatagramSender(sock, info, rate=2000)
        datagrams = 1000
        wire = b"x" * (100 * datagrams)
        wall, cpu = time.monotonic(), time.process_time()
        sender.send(wire, [100] * datagrams)
        wall, cpu = time.monotonic() - wall, time.process_time() - cpu
        sender.close()
        # 1,000 at 2,000/s with a 20-datagram burst: about 0.49 s, and mostly asleep.
        assert 0.4 < wall < 5
        assert cpu < wall / 2
        got = 0
        receiver.setblocking(False)
        while select.select([receiver], [], [], 0.5)[0] and got < datagrams:
            receiver.recv(65536)
            got += 1
        assert got == datagrams


def test_a_paced_udp_send_gives_up_when_woken_for_a_stop() -> None:
    receiver, sock = udp_pair()
    wake_r, wake_w = socket.socketpair()
    stop = threading.Event()
    with receiver, wake_r, wake_w:
        wake_r.setblocking(False)
        watch = transport.IoWatch(wake_r.fileno(), lambda: 0.0 if stop.is_set() else None)
        info = transport.ConnectionInfo("udp", "127.0.0.1:1", "127.0.0.1:1")
        sender = transport.DatagramSender(sock, info, rate=100, watch=watch)

        def ring() -> None:
            # Once the first datagrams arrived the send is under way (it would take 100 s).
            select.select([receiver], [], [], 10)
            stop.set()
            wake_w.send(b"\0")

        threading.Thread(target=ring, daemon=True).start()
        started = time.monotonic()
        with pytest.raises(transport.StopRequested):
            sender.send(b"y" * 10_000, [1] * 10_000)
        assert time.monotonic() - started < 2
        sender.close()


def test_udp_backlog_drained_with_default_pacing_to_rsyslog_loses_nothing(
    rsyslog_factory: Factory,
) -> None:
    """A stock rsyslog (the kernel's default receive buffer): unpaced, most of a backlog is
    dropped in its socket buffer (benchmarks/udp_pacing.py); at the default rate, none."""
    receiver = rsyslog_factory("udp", udp_receive_buffer=None)
    count = 4000
    queue_events(count)
    set_server(receiver.port, "--use-udp")
    discard_audit_events()  # the counts below are exact
    worker = Worker(options=WorkerOptions(socket_input=False))
    try:
        step_until(worker, lambda: not worker.queue.depth().events, 60, "the backlog to drain")
        sent = worker.queue.counters()["sent"]
    finally:
        worker.close()
    assert sent == count
    assert len(receiver.wait_for_lines(count, timeout=30)) == count


def test_pacing_reaches_the_sender_from_the_configuration() -> None:
    # UDP connect() sends nothing: port 9 (discard) only names the peer.
    for rate, expected in ((1234, 1234.0), (0, None)):
        server = ServerSettings("127.0.0.1", 9, no_encryption=True, use_udp=True, udp_rate=rate)
        sender = transport.connect(server, ClientSettings())
        try:
            bucket = sender._bucket  # type: ignore[attr-defined]
            assert (bucket.rate if bucket else None) == expected
        finally:
            sender.close()
