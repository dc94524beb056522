"""The Unix-socket input under abuse: each scenario run against a real ``forwarder run`` child
(or, for the supervisor, a real ``SocketInput`` in this process), over real Unix sockets.

Bounds checked here (docs/security.md states them for operators): at most 128 connections;
replies waiting for one client at most 64 KiB before the input stops reading from it; a
client that floods invalid lines and never reads grows the forwarder by less than 16 MiB; a
half-closed client costs no CPU while its replies wait.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import select
import shutil
import socket
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

import pytest

from azs_syslog import paths
from azs_syslog.config import Config
from azs_syslog.forwarder.common import default_rendering
from azs_syslog.inputs.socket_input import MAX_CONNECTIONS, SocketInput
from azs_syslog.queue import Queue, QueueLimits
from tests.receivers import RsyslogReceiver, rsyslog_factory  # noqa: F401
from tests.support import Forwarder, Forwarders, configure, events, wait_for_ids
from tests.tmpfs import fill, mounted_tmpfs

EVENT = b'{"type":"pep","event":"PrivilegedEndpointAccessed","who":"a","which_ip":"10.0.0.1"}\n'
REFUSAL = b"error 0 too many connections (%d, the limit); try again later\n" % MAX_CONNECTIONS
GUIDE = (Path(__file__).resolve().parent.parent / "docs" / "troubleshooting.md").read_text()


# --- helpers -----------------------------------------------------------------------------------


class LimitedForwarder(Forwarder):
    """``forwarder run`` with its open-files limit lowered (``nofile``), as a unit's
    ``LimitNOFILE=`` would."""

    def __init__(self, log: Path, nofile: int | None) -> None:
        def lower_limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        super().__init__(log, preexec_fn=lower_limit)
        self.nofile = nofile

    def start(self) -> Self:
        super().start()
        wait_until(paths.socket_file().exists, 30, "the forwarder's socket", self)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


@pytest.fixture
def forwarders(forwarders_started: Forwarders) -> Callable[..., LimitedForwarder]:
    def make(nofile: int | None = None) -> LimitedForwarder:
        log = forwarders_started.next_log()
        return forwarders_started.start(LimitedForwarder(log, nofile))

    return make


def normal(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\d+", "N", text)).strip()


def assert_documented(log: str, start: str, end: str) -> None:
    """The log line from ``start`` up to ``end`` is shown in docs/troubleshooting.md."""
    at = log.index(start)
    text = log[at : log.index(end, at) + len(end)]
    assert normal(text) in normal(GUIDE), f"docs/troubleshooting.md does not show: {text}"


def wait_until(
    condition: Callable[[], object],
    timeout: float,
    what: str,
    forwarder: Forwarder | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if forwarder is not None and forwarder.proc is not None:
            assert forwarder.proc.poll() is None, forwarder.log.read_text()
        if time.monotonic() > deadline:
            log = forwarder.log.read_text() if forwarder is not None else ""
            raise AssertionError(f"timed out waiting for {what}; log: {log}")
        time.sleep(0.05)


def connect(path: Path | None = None, timeout: float = 10) -> socket.socket:
    """A blocking client whose connect, sends and receives give up after ``timeout``
    (a Unix-socket connect waits while the listen backlog is full)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    whole, fraction = divmod(timeout, 1)
    limit = struct.pack("ll", int(whole), int(fraction * 1e6))
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, limit)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, limit)
    try:
        conn.connect(str(path or paths.socket_file()))
    except OSError:
        conn.close()
        raise
    return conn


def one_event(path: Path | None = None) -> bytes:
    """Send one valid event on a new connection; the first reply line (or b'' at a close)."""
    with connect(path) as conn:
        conn.sendall(EVENT)
        reply = b""
        while not reply.endswith(b"\n"):
            data = conn.recv(200)
            if not data:
                break
            reply += data
        return reply


def served(path: Path | None = None) -> bool:
    """A new producer gets ``ok 1`` for one event (False while refused or not listening)."""
    try:
        return one_event(path) == b"ok 1\n"
    except OSError:
        return False


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_until(conn: socket.socket, done: Callable[[bytes], bool], timeout: float) -> bytes:
    conn.settimeout(timeout)
    deadline = time.monotonic() + timeout
    data = b""
    while not done(data):
        assert time.monotonic() < deadline, data[-300:]
        chunk = conn.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    return data


@contextlib.contextmanager
def open_files_limit(wanted: int) -> Iterator[None]:
    """This test process may hold ``wanted`` descriptors (restored afterwards)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the open-files hard limit ({hard}) is below {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --- connections -------------------------------------------------------------------------------


def test_connections_beyond_the_cap_are_refused_with_a_line(
    forwarders: Callable[..., LimitedForwarder],
) -> None:
    """1,100 idle connections against nofile=1024 once killed the input (EMFILE): now the
    first 128 are served, the others are told why and closed, and the input carries on."""
    worker = forwarders(nofile=1024)
    conns: list[socket.socket] = []
    with open_files_limit(1400):
        try:
            for _ in range(1100):
                conns.append(connect())
            refused: dict[socket.socket, bytes] = {}
            poller = select.poll()  # select() stops at descriptor 1023
            by_fd = {conn.fileno(): conn for conn in conns}
            for fd in by_fd:
                poller.register(fd, select.POLLIN)
            deadline = time.monotonic() + 60
            while len(refused) < 1100 - MAX_CONNECTIONS and time.monotonic() < deadline:
                for fd, _ in poller.poll(500):
                    poller.unregister(fd)
                    refused[by_fd[fd]] = read_until(by_fd[fd], lambda data: False, 10)  # to EOF
            assert len(refused) == 1100 - MAX_CONNECTIONS
            assert set(refused.values()) == {REFUSAL}
            kept = [conn for conn in conns if conn not in refused]
            assert len(kept) == MAX_CONNECTIONS
            # The connections inside the cap are served, and a new one is refused.
            kept[0].sendall(EVENT)
            assert read_until(kept[0], lambda data: data.endswith(b"\n"), 10) == b"ok 1\n"
            with connect() as refused_now:  # told at once, before writing anything
                assert read_until(refused_now, lambda data: False, 10) == REFUSAL
            for conn in kept[-10:]:
                conn.close()
            wait_until(served, 30, "a new producer served after others closed", worker)
        finally:
            for conn in conns:
                conn.close()
    log = worker.log.read_text()
    assert log.count("refusing new connections") == 1
    assert_documented(log, "socket input: ", "until one closes")
    assert_documented(REFUSAL.decode(), "error 0", "later")
    assert "below its connection limit again" in log
    worker.wait_for(lambda status: status.get("socket_error") is None)
    code, _ = worker.terminate()
    assert code == 0


def test_running_out_of_file_descriptors_pauses_accepting_only(
    forwarders: Callable[..., LimitedForwarder],
) -> None:
    """With fewer descriptors than the cap, accept() fails with EMFILE: the input stops
    accepting for a moment, says so once, keeps serving the producers it has, and accepts
    again when descriptors are free."""
    worker = forwarders(nofile=64)
    assert one_event() == b"ok 1\n"
    conns: list[socket.socket] = []
    try:
        for _ in range(100):  # fewer than the cap, more than 64 descriptors
            conns.append(connect())
        wait_until(lambda: "Too many open files" in worker.log.read_text(), 30, "EMFILE", worker)
        conns[0].sendall(EVENT)  # one accepted before the shortage: still served
        assert read_until(conns[0], lambda data: data.endswith(b"\n"), 10) == b"ok 1\n"
    finally:
        for conn in conns:
            conn.close()
    wait_until(served, 30, "a new producer served after the shortage", worker)
    wait_until(
        lambda: "accepting connections again" in worker.log.read_text(), 30, "recovery", worker
    )
    worker.wait_for(lambda status: status.get("socket_error") is None, timeout=30)
    log = worker.log.read_text()
    assert log.count("Too many open files") == 1, log  # said once, not at every retry
    assert_documented(log, "socket input: not accepting", "if this recurs)")
    assert "accepting connections again" in log
    code, _ = worker.terminate()
    assert code == 0


# --- a producer that does not read its replies -------------------------------------------------


def test_unread_replies_stop_the_reading_and_keep_memory_bounded(
    forwarders: Callable[..., LimitedForwarder],
) -> None:
    """16 MiB of invalid lines, replies never read, once grew the forwarder to 604 MB. Now
    the input stops reading from that producer once 64 KiB of replies wait: the producer's
    writes block, the forwarder grows by less than 16 MiB, and others are served."""
    worker = forwarders()
    assert one_event() == b"ok 1\n"
    baseline = peak = rss_bytes(worker.pid)
    flood = b"x\n" * 32768
    sent = 0
    with connect() as conn:
        conn.setblocking(False)
        deadline = time.monotonic() + 120
        while sent < 16 << 20 and time.monotonic() < deadline:
            try:
                sent += conn.send(flood)
            except BlockingIOError:
                _, writable, _ = select.select([], [conn], [], 3.0)
                if not writable:
                    break  # the forwarder no longer reads from us
            peak = max(peak, rss_bytes(worker.pid))
        peak = max(peak, rss_bytes(worker.pid))
        assert sent < 16 << 20, "the forwarder read 16 MiB whose replies were not read"
        assert peak - baseline < 16 << 20, (baseline, peak)
        assert one_event() == b"ok 1\n"  # another producer is served
        # Reading the replies lets the forwarder read again: the acknowledged line grows.
        conn.setblocking(True)
        first = read_until(conn, lambda data: b"\nok " in data, 30)
        oks = [int(n) for n in re.findall(rb"^ok (\d+)$", first, re.M)]
        assert oks
        more = read_until(conn, lambda data: len(re.findall(rb"^ok ", data, re.M)) >= 3, 30)
        later = [int(n) for n in re.findall(rb"^ok (\d+)$", more, re.M)]
        assert later[-1] > oks[-1]
        odd = [
            line
            for line in (first + more).split(b"\n")[:-1]
            if not re.fullmatch(rb"(error \d+ invalid JSON: .*|ok \d+)", line)
        ]
        assert not odd, odd[:3]
    assert peak - baseline < 16 << 20
    code, _ = worker.terminate()
    assert code == 0


def test_half_close_after_invalid_lines_costs_no_cpu(
    forwarders: Callable[..., LimitedForwarder],
) -> None:
    """A producer that half-closes after invalid lines, not reading, once made the loop spin
    at 100 % CPU. Now the forwarder idles until the replies are read, then flushes them all
    and closes."""
    worker = forwarders()
    count = 50_000  # replies (~1 MiB) far beyond the socket buffers
    with connect() as conn:
        conn.sendall(b"x\n" * count)
        conn.shutdown(socket.SHUT_WR)
        # Once the replies it could hand over are written, the forwarder must go idle.
        deadline = time.monotonic() + 60
        idle = False
        while not idle and time.monotonic() < deadline:
            before = cpu_seconds(worker.pid)
            time.sleep(1.0)  # a measurement window, not a synchronisation
            idle = cpu_seconds(worker.pid) - before < 0.1
        assert idle, "the forwarder keeps burning CPU on a half-closed producer"
        before = cpu_seconds(worker.pid)
        time.sleep(2.0)  # a measurement window
        assert cpu_seconds(worker.pid) - before < 0.2
        assert one_event() == b"ok 1\n"
        replies = read_until(conn, lambda data: False, 60)  # all of them, then the close
    lines = replies.split(b"\n")
    assert lines[-1] == b""
    assert lines[-2] == b"ok %d" % count
    assert sum(1 for line in lines if line.startswith(b"error ")) == count
    code, _ = worker.terminate()
    assert code == 0


# --- a commit that fails -----------------------------------------------------------------------


@pytest.mark.rsyslog
def test_a_full_disk_is_answered_per_line_and_the_input_recovers(
    forwarders: Callable[..., LimitedForwarder],
    rsyslog_factory: Callable[..., RsyslogReceiver],  # noqa: F811
    tmp_path: Path,
) -> None:
    """The queue on a full file system: every line that would have been accepted is answered
    ``error N queue unavailable: disk full``; the input stays up, and when space returns it
    accepts again. Exactly the acknowledged events reach rsyslog."""
    receiver = rsyslog_factory("tcp")
    configure("tcp", receiver, None, tmp_path)
    with mounted_tmpfs(paths.queue_file().parent, 8192) as state:
        worker = forwarders()
        try:
            with connect() as conn:
                conn.sendall(events(0, 10).encode())
                assert read_until(conn, lambda data: b"ok 10\n" in data, 30) == b"ok 10\n"
                wait_for_ids(receiver, range(10))
                with Queue() as queue:  # delivered and confirmed: the worker is idle
                    wait_until(lambda: queue.depth().events == 0, 30, "confirmed", worker)
                filler = fill(state)
                conn.sendall(events(100, 2000).encode())
                replies = read_until(conn, lambda data: data.endswith(b"ok 2010\n"), 60)
                lines = replies.split(b"\n")[:-1]
                assert lines[-1] == b"ok 2010"
                errors = [line for line in lines if not line.startswith(b"ok ")]
                assert errors == [
                    b"error %d queue unavailable: disk full" % n for n in range(11, 2011)
                ]
                assert worker.proc is not None and worker.proc.poll() is None
                filler.unlink()
                conn.sendall(events(10, 10).encode())
                assert read_until(conn, lambda data: b"\n" in data, 30) == b"ok 2020\n"
            ids = wait_for_ids(receiver, range(20))
            assert set(ids) == set(range(20))  # acknowledged: delivered; refused: not
            log = worker.log.read_text()
            assert log.count("socket input: cannot commit to the queue") == 1
            assert_documented(log, "database or disk is full; producers", "works again")
            assert "committing to the queue again" in log
            worker.wait_for(lambda status: status.get("socket_error") is None)
            code, _ = worker.terminate()
            assert code == 0
        finally:
            worker.stop_quietly()  # before the file system goes


# --- the supervisor ----------------------------------------------------------------------------


def test_the_supervisor_restarts_a_failed_input_with_its_socket_closed_meanwhile() -> None:
    """Any failure of the input (here: its queue cannot be opened) closes the socket, so
    producers fail at once instead of hanging; the problem is what ``forwarder status``
    shows; the input comes back by itself when the cause is gone."""
    short_dir = Path(tempfile.mkdtemp(prefix="azs-", dir="/tmp"))  # AF_UNIX paths are short
    path = short_dir / "in.sock"
    blocker = short_dir / "state"
    blocker.write_text("a file where the queue's directory should be\n")
    messages: list[str] = []
    socket_input = SocketInput(
        path, queue_path=blocker / "queue.sqlite3", limits=QueueLimits(), log=messages.append
    )
    socket_input.rendering = default_rendering(Config())
    socket_input.start()
    try:
        wait_until(lambda: socket_input.error is not None and not path.exists(), 10, "failure")
        assert "the socket input failed" in str(socket_input.error)
        assert "restarting" in " ".join(messages)
        with pytest.raises(OSError):
            one_event(path)  # at once: no socket to wait on
        blocker.unlink()
        blocker.mkdir()
        wait_until(lambda: served(path), 60, "the input back")
        assert socket_input.error is None
        assert socket_input.restarts >= 1
        assert any("listening again" in message for message in messages)
        with Queue(blocker / "queue.sqlite3") as queue:
            assert queue.depth().events == 1
    finally:
        socket_input.stop()
        shutil.rmtree(short_dir)
    assert not path.exists()
