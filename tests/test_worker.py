"""The worker loop, driven step by step, against real sockets on 127.0.0.1.

These tests isolate the worker from the renderer and the TLS transport (tested in their own
modules, and end to end with rsyslog in test_forwarder_rsyslog.py): a tiny renderer frames
``{"id": N}`` lines, and a plain TCP/UDP sender writes to a real socket sink.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from azs_syslog import paths, transport
from azs_syslog.config import ClientSettings, Config, ServerSettings
from azs_syslog.config.vocabulary import OutputSeverity
from azs_syslog.encode.pipeline import Rendering
from azs_syslog.encode.render import Renderer, RenderSettings
from azs_syslog.errors import EventError
from azs_syslog.events.forwarder import QUEUE_OVERFLOW, SIGNATURE_PREFIX
from azs_syslog.forwarder import status as st
from azs_syslog.forwarder.worker import Worker, WorkerOptions
from azs_syslog.inputs.socket_input import SocketInput
from azs_syslog.queue import Queue, QueueLimits
from azs_syslog.queue.ingest import enqueue_records
from azs_syslog.transport import Sender

# --- a tiny renderer ---------------------------------------------------------------------------


class IdRenderer(Renderer):
    """Renders ``{"id": N, "level": L}`` lines as ``<13>id=N`` (octet-counted, or bare for
    UDP). With ``only_errors``, events of level > 3 are filtered out (like
    OutputSeverity=Default). The forwarder's own events (the gap warning) are rendered by the
    real renderer under the same framing."""

    def __init__(self, *, framing: str = "octet-counting", only_errors: bool = False) -> None:
        super().__init__(RenderSettings(framing=framing))
        self.framing = framing
        self.only_errors = only_errors

    def render_line(self, line: str | bytes, accepted_ms: int) -> bytes | None:
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise EventError("not JSON") from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), int):
            raise EventError("is required", field="id")
        if self.only_errors and obj.get("level", 4) > 3:
            return None
        body = b"<13>id=%d" % obj["id"]
        if self.framing == "none":
            return body
        return b"%d %s" % (len(body), body)


def id_rendering(config: Config) -> Rendering:
    server = config.server
    framing = "none" if server and server.use_udp else "octet-counting"
    only_errors = config.client.output_severity == "Default"
    renderer = IdRenderer(framing=framing, only_errors=only_errors)
    key = f"{framing}/{only_errors}"
    return Rendering(key, renderer.settings, renderer)


# --- a plain sender over a real socket ---------------------------------------------------------


@dataclass(frozen=True)
class Info:
    transport: str
    server: str


def plain_connect(server: ServerSettings, client: ClientSettings) -> Sender:
    """The real transport, with short timeouts so that a refused connection fails fast."""
    return transport.connect(server, client, timeouts=transport.Timeouts(5.0, 5.0, 5.0))


# --- a real socket sink ------------------------------------------------------------------------


class Sink:
    """Listens on 127.0.0.1 (TCP: octet-counted frames; UDP: datagrams); records messages.
    ``stop()`` closes the listener and every connection; ``start()`` listens again on the
    same port."""

    def __init__(self, udp: bool = False) -> None:
        self.udp = udp
        self.messages: list[bytes] = []
        self.port = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._stop = threading.Event()

    def start(self) -> Sink:
        self._stop.clear()
        kind = socket.SOCK_DGRAM if self.udp else socket.SOCK_STREAM
        sock = socket.socket(socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.udp:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        sock.settimeout(0.1)
        self._socks.append(sock)
        target = self._receive_datagrams if self.udp else self._accept
        thread = threading.Thread(target=target, args=(sock,), daemon=True)
        if not self.udp:
            sock.listen(16)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.close()
        self._threads, self._socks = [], []

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(0.1)
            self._socks.append(conn)
            thread = threading.Thread(target=self._read_stream, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _read_stream(self, conn: socket.socket) -> None:
        buffer = b""
        while not self._stop.is_set():
            try:
                data = conn.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                conn.close()
                return
            buffer += data
            while True:
                space = buffer.find(b" ")
                if space < 0:
                    break
                size = int(buffer[:space])
                if len(buffer) < space + 1 + size:
                    break
                with self._lock:
                    self.messages.append(buffer[space + 1 : space + 1 + size])
                buffer = buffer[space + 1 + size :]
        conn.close()

    def _receive_datagrams(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append(data)

    def ids(self) -> list[int]:
        with self._lock:
            return [int(m.split(b"=")[1]) for m in self.messages if m.startswith(b"<13>id=")]


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


# --- helpers -----------------------------------------------------------------------------------


class Source:
    """A configuration source the test changes at will."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def __call__(self) -> Config:
        return self.config


def tcp_config(port: int, *, udp: bool = False, severity: OutputSeverity = "Verbose") -> Config:
    server = ServerSettings("127.0.0.1", port, no_encryption=True, use_udp=udp)
    return Config(server=server, client=ClientSettings(output_severity=severity))


def enqueue(first: int, count: int, *, config: Config | None = None, **extra: Any) -> None:
    rendering = id_rendering(config or Config(client=ClientSettings(output_severity="Verbose")))
    lines = [
        (n + 1, json.dumps({"id": i, **extra})) for n, i in enumerate(range(first, first + count))
    ]
    with Queue() as queue:
        result = enqueue_records(lines, queue, rendering.renderer, rendering.key, batch_events=500)
    assert result.accepted == count


class FakeClock:
    """The worker's monotonic clock in these tests: it moves only when the test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_worker(source: Callable[[], Config], **options: Any) -> Worker:
    opts = WorkerOptions(**{"confirm_delay": 0.2, "socket_input": False, **options})
    return Worker(
        source,
        options=opts,
        connect=plain_connect,
        make_rendering=id_rendering,
        clock=FakeClock(),
    )


# A fake second lasts this long in real time: the sockets and the receivers, which read and
# acknowledge in real time, get a moment between two steps.
REAL_PER_FAKE_SECOND = 0.04


def pause(worker: Worker, seconds: float) -> None:
    """Let ``seconds`` pass for the worker: its fake clock moves on at once, real time by
    ``REAL_PER_FAKE_SECOND`` of it."""
    clock = worker.clock
    assert isinstance(clock, FakeClock), "the worker was not made with a FakeClock"
    clock.advance(seconds)
    time.sleep(seconds * REAL_PER_FAKE_SECOND)


def run_until(worker: Worker, done: Callable[[], bool], timeout: float = 30.0) -> None:
    """Step the worker until ``done()``, moving its fake clock by each wait it asks for;
    bounded by ``timeout`` real seconds."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out; worker state {worker.state}"
        wait = worker.step()
        if wait:
            pause(worker, wait)


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (real time, bounded) for ``condition``: what a receiver reads, it reads in real
    time, while the worker's replay window passes on its fake clock."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def wait_for_ids(sink: Sink, count: int, timeout: float = 10.0) -> list[int]:
    """The ids ``sink`` has read, once it has read ``count`` different ones."""
    eventually(lambda: len(set(sink.ids())) >= count, timeout)
    return sink.ids()


def drained(worker: Worker) -> Callable[[], bool]:
    return lambda: worker.queue.depth().events == 0


def assert_complete(ids: list[int], expected: range) -> int:
    """No event missing; returns the number of duplicates."""
    assert set(ids) == set(expected), f"missing: {sorted(set(expected) - set(ids))[:10]}"
    return len(ids) - len(set(ids))


# --- tests -------------------------------------------------------------------------------------


def test_delivers_everything_in_order_and_counts(sink: Sink) -> None:
    enqueue(0, 5000)
    worker = make_worker(Source(tcp_config(sink.port)))
    try:
        run_until(worker, drained(worker))
        assert wait_for_ids(sink, 5000) == list(range(5000))
        counts = worker.queue.counters()
        assert counts["sent"] == 5000
        assert counts["accepted"] == 5000
        assert counts["resent"] == 0
        assert worker.state == st.CONNECTED
        status = worker.status()
        assert status.queue is not None and status.queue.events == 0
        assert status.counts.sent == 5000
        assert st.evaluate(status).healthy
    finally:
        worker.close()


def test_batches_wait_for_the_replay_window_before_leaving_the_queue(sink: Sink) -> None:
    enqueue(0, 100)
    worker = make_worker(Source(tcp_config(sink.port)), confirm_delay=30.0)
    try:
        run_until(worker, lambda: len(sink.ids()) == 100)
        worker.step()
        assert worker.queue.depth().events == 100  # written, acknowledged, still kept
        assert worker.queue.inflight_ids()
    finally:
        worker.close()
    with Queue() as queue:  # a restart sends them again, counted as resent
        assert queue.inflight_ids() == []
        assert queue.counters()["resent"] == 100


def test_receiver_down_at_start_then_up(sink: Sink) -> None:
    port = sink.port
    sink.stop()
    enqueue(0, 1000)
    worker = make_worker(Source(tcp_config(port)), backoff_initial=0.05, backoff_max=0.2)
    try:
        run_until(worker, lambda: worker.last_error is not None)
        assert worker.state == st.BACKING_OFF
        assert worker.last_error is not None and worker.last_error.cause == "refused"
        run_until(worker, lambda: worker.state == st.BACKING_OFF and worker.backoff >= 0.2)
        sink.start()
        run_until(worker, drained(worker))
        assert wait_for_ids(sink, 1000) == list(range(1000))
    finally:
        worker.close()


def test_connection_lost_mid_stream_resends_without_loss(sink: Sink) -> None:
    enqueue(0, 20_000)
    # The replay window is on the worker's fake clock, but the sink reads in real time: 30 fake
    # seconds (1.2 s, see pause) outlast what the sink has acknowledged and not yet read when
    # it is stopped.
    worker = make_worker(
        Source(tcp_config(sink.port)), confirm_delay=30.0, backoff_initial=0.05, backoff_max=0.1
    )
    try:
        run_until(worker, lambda: len(sink.ids()) >= 3000)
        sink.stop()  # closes every connection: what was in flight is resent
        run_until(worker, lambda: worker.state == st.BACKING_OFF)
        sink.start()
        run_until(worker, drained(worker))
        duplicates = assert_complete(wait_for_ids(sink, 20_000), range(20_000))
        resent = worker.queue.counters()["resent"]
        assert resent > 0  # the batches inside the replay window went out again
        assert resent >= duplicates
    finally:
        worker.close()


def test_udp_confirms_at_once() -> None:
    udp_sink = Sink(udp=True).start()
    try:
        config = tcp_config(udp_sink.port, udp=True)
        enqueue(0, 300, config=config)
        worker = make_worker(Source(config), confirm_delay=30.0)
        try:
            run_until(worker, drained(worker))
            deadline = time.monotonic() + 10
            while len(udp_sink.ids()) < 300 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert sorted(udp_sink.ids()) == list(range(300))
        finally:
            worker.close()
    finally:
        udp_sink.stop()


def test_removed_server_keeps_queueing_then_delivers(sink: Sink) -> None:
    source = Source(tcp_config(sink.port))
    enqueue(0, 500)
    worker = make_worker(source)
    try:
        run_until(worker, drained(worker))
        source.config = Config(client=ClientSettings(output_severity="Verbose"))
        worker.reload_requested = True
        run_until(worker, lambda: worker.state == st.NOT_CONFIGURED and worker.sender is None)
        enqueue(500, 700)
        for _ in range(5):
            worker.step()
        assert worker.queue.depth().events == 700
        assert not st.evaluate(worker.status()).healthy
        source.config = tcp_config(sink.port)
        worker.reload_requested = True
        run_until(worker, drained(worker))
        assert wait_for_ids(sink, 1200) == list(range(1200))
    finally:
        worker.close()


def test_severity_change_applies_to_events_not_yet_sent(sink: Sink) -> None:
    default = tcp_config(sink.port, severity="Default")
    enqueue(0, 10, config=default, level=4)  # queued under Default: filtered out of the wire
    enqueue(10, 10, config=default, level=2)
    source = Source(tcp_config(sink.port, severity="Verbose"))
    worker = make_worker(source)
    try:
        run_until(worker, drained(worker))
        assert wait_for_ids(sink, 20) == list(range(20))  # re-rendered under Verbose: all of them
        counts = worker.queue.counters()
        assert counts["rerendered"] == 20
        assert counts["sent"] == 20
    finally:
        worker.close()


def test_filtered_events_are_counted_not_sent(sink: Sink) -> None:
    default = tcp_config(sink.port, severity="Default")
    enqueue(0, 10, config=default, level=4)
    enqueue(10, 5, config=default, level=1)
    worker = make_worker(Source(default))
    try:
        run_until(worker, drained(worker))
        assert wait_for_ids(sink, 5) == list(range(10, 15))
        assert worker.queue.counters()["filtered"] == 10
    finally:
        worker.close()


def test_full_queue_gap_is_reported_once(sink: Sink) -> None:
    limits = QueueLimits(max_events=1000)
    with Queue(limits=limits) as queue:
        rendering = id_rendering(Config(client=ClientSettings(output_severity="Verbose")))
        for start in range(0, 3000, 500):
            lines = [(1, json.dumps({"id": i})) for i in range(start, start + 500)]
            enqueue_records(lines, queue, rendering.renderer, rendering.key)
    worker = make_worker(Source(tcp_config(sink.port)), limits=limits)
    try:
        run_until(worker, drained(worker))
        for _ in range(5):
            worker.step()
        signature = (SIGNATURE_PREFIX + QUEUE_OVERFLOW).encode()
        warnings = [m for m in sink.messages if signature in m]
        assert len(warnings) == 1
        assert b"cnt=2000 " in warnings[0]
        assert wait_for_ids(sink, 1000) == list(range(2000, 3000))
        assert worker.queue.counters()["dropped"] == 2000
        assert worker.queue.pending_gap() is None
    finally:
        worker.close()


@pytest.mark.parametrize("message_format", ["rfc3164", "rfc5424"])
def test_the_gap_warning_is_the_message_it_always_was(message_format: str) -> None:
    """Rendered by the renderer now; the bytes the hand-built warning had (its MSGID is
    QueueOverflow)."""
    from azs_syslog.encode import cef, syslog
    from azs_syslog.events import forwarder

    renderer = Renderer(
        RenderSettings(message_format=message_format, facility=4, cef_version="0.0", framing="lf"),
        default_host="host1",
    )
    now = 1700000000123
    event = forwarder.queue_overflow(events=2000, first_ms=111, last_ms=222, time_ms=now)
    pri = syslog.pri(4, 5)
    head = (
        syslog.rfc5424_header(pri, now, "host1", "QueueOverflow")
        if message_format == "rfc5424"
        else syslog.rfc3164_header(pri, now, "host1")
    )
    text = cef.escape_value(
        "The forwarder queue was full: 2000 events were dropped, the oldest first"
    )
    body = (
        head
        + cef.header("0.0", "Microsoft-AzureStack-Forwarder: QueueOverflow", "QueueOverflow", 5)
        + f"rt={now} cnt=2000 start=111 end=222 msg={text}"
    )
    assert renderer.render_event(event, now) == syslog.frame(body.encode(), "lf")


def test_bad_config_keeps_the_last_good_one(sink: Sink) -> None:
    from azs_syslog.errors import ConfigError

    good = tcp_config(sink.port)
    calls = {"fail": False}

    def source() -> Config:
        if calls["fail"]:
            raise ConfigError("is not a number", path="config.json", field="server -> ServerPort")
        return good

    enqueue(0, 100)
    worker = Worker(
        source,
        options=WorkerOptions(confirm_delay=0.1, socket_input=False),
        connect=plain_connect,
        make_rendering=id_rendering,
        clock=FakeClock(),
    )
    try:
        run_until(worker, drained(worker))
        calls["fail"] = True
        worker.reload_requested = True
        worker.step()
        assert worker.config_problem is not None and "ServerPort" in worker.config_problem
        enqueue(100, 100)
        run_until(worker, drained(worker))
        assert wait_for_ids(sink, 200) == list(range(200))
        assert not st.evaluate(worker.status()).healthy
    finally:
        worker.close()


def test_config_change_reconnects_within_two_seconds_without_loss(sink: Sink) -> None:
    other = Sink().start()
    try:
        source = Source(tcp_config(sink.port))
        enqueue(0, 3000)
        worker = make_worker(source, confirm_delay=0.3)
        try:
            run_until(worker, lambda: len(sink.ids()) > 0)
            assert source.config.server is not None
            source.config = replace(
                source.config, server=replace(source.config.server, server_port=other.port)
            )
            changed = worker.clock()
            run_until(worker, lambda: len(other.ids()) > 0 or worker.queue.depth().events == 0)
            assert worker.clock() - changed < 2  # CONFIG_POLL: within two seconds
            enqueue(3000, 1000)
            run_until(worker, drained(worker))
            eventually(lambda: len(set(sink.ids() + other.ids())) >= 4000)
            assert_complete(sink.ids() + other.ids(), range(4000))
        finally:
            worker.close()
    finally:
        other.stop()


# --- the Unix-socket input ---------------------------------------------------------------------


def test_socket_input_acks_only_durable_lines(tmp_path: Path) -> None:
    Queue().close()
    short_dir = Path(tempfile.mkdtemp(prefix="azs-", dir="/tmp"))  # AF_UNIX paths are short
    path = short_dir / "in.sock"
    socket_input = SocketInput(path, queue_path=paths.queue_file(), limits=QueueLimits())
    socket_input.rendering = id_rendering(Config(client=ClientSettings(output_severity="Verbose")))
    socket_input.start()
    try:
        assert oct(path.stat().st_mode & 0o777) == "0o660"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(10)
            conn.connect(str(path))
            conn.sendall(b'{"id": 1}\n')
            assert conn.recv(100) == b"ok 1\n"
            with Queue() as queue:  # acknowledged means on disk, visible to another reader
                assert queue.depth().events == 1
            lines = b"".join(
                b'{"id": %d}\n' % i if i != 5 else b"not json\n" for i in range(2, 2001)
            )
            conn.sendall(lines + b"\n" + b'{"nope": 1}')
            conn.shutdown(socket.SHUT_WR)
            replies = b""
            while True:
                data = conn.recv(1 << 16)
                if not data:
                    break
                replies += data
        text = replies.decode()
        assert "error 5 not JSON\n" in text
        assert "error 2002 id: is required\n" in text
        oks = [int(n) for n in re.findall(r"^ok (\d+)$", text, re.M)]
        assert oks and oks[-1] == 2002
        with Queue() as queue:
            assert queue.depth().events == 1 + 1998
            assert queue.counters()["rejected"] == 2
        assert socket_input.error is None
    finally:
        socket_input.stop()
    assert not path.exists()
    assert stat.S_IMODE(short_dir.stat().st_mode) == 0o750  # the group may reach the socket
    short_dir.rmdir()
