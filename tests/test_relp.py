"""RELP against the reference implementation (rsyslog's imrelp, librelp), plain, TLS and mutual
TLS; and, for the answers rsyslog cannot be made to give (a refusal, ``serverclose`` mid-stream,
silence), a minimal scripted RELP peer on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from azs_syslog.config import ClientSettings, Config, ServerSettings
from azs_syslog.errors import TransportError
from azs_syslog.forwarder import status as st
from azs_syslog.forwarder.worker import Worker, WorkerOptions
from azs_syslog.transport import Timeouts, relp
from tests.conftest import run_cli
from tests.receivers import RsyslogReceiver, TestPKI, rsyslog_factory
from tests.support import (
    Forwarder,
    assert_none_missing,
    expected_messages,
    send_events,
    wait_for_ids,
)
from tests.test_forwarder_refusals import CASES, check_refusal

__all__ = ["rsyslog_factory"]

Factory = Callable[..., RsyslogReceiver]
SHORT = Timeouts(connect=2.0, handshake=2.0, write=2.0)


# --- the frame codec ---------------------------------------------------------------------------


def test_frames_are_encoded_and_parsed_as_librelp_does() -> None:
    assert relp.encode(1, "open", b"a=b") == b"1 open 3 a=b\n"
    assert relp.encode(7, "close") == b"7 close 0\n"
    reader = relp.FrameReader()
    assert reader.feed(b"2 rsp 6 200 O") == []
    assert reader.feed(b"K\n0 serverclose 0\n3 rsp") == [
        relp.Frame(2, "rsp", b"200 OK"),
        relp.Frame(0, "serverclose", b""),
    ]
    assert reader.feed(b" 17 500 queue is full\n") == [relp.Frame(3, "rsp", b"500 queue is full")]
    with pytest.raises(relp.ProtocolViolation):
        relp.FrameReader().feed(b"<13>Nov 29 hello\n")
    # A frame that says "no data" but goes on with a space is a violation, not a crash.
    with pytest.raises(relp.ProtocolViolation, match="does not end with LF: b'1 rsp 0 '"):
        relp.FrameReader().feed(b"1 rsp 0 x")
    code, text, offers = relp.parse_response(b"200 OK\nrelp_version=0\ncommands=syslog")
    assert (code, text, offers) == (200, "OK", (("relp_version", "0"), ("commands", "syslog")))


def test_transaction_numbers_wrap_to_one() -> None:
    assert relp.next_txnr(1) == 2
    assert relp.next_txnr(relp.MAX_TXNR) == 1


def test_syslog_framing_is_taken_off() -> None:
    blob = b"5 <13>a2 <1"
    assert [bytes(m) for m in relp.unframe(memoryview(blob), [7, 4], "octet-counting")] == [
        b"<13>a",
        b"<1",
    ]
    blob = b"<13>a\n<1\n"
    assert [bytes(m) for m in relp.unframe(memoryview(blob), [6, 3], "lf")] == [b"<13>a", b"<1"]


# --- against rsyslog's imrelp ------------------------------------------------------------------


def relp_receiver(factory: Factory, mode: str, pki: TestPKI, **kw: object) -> RsyslogReceiver:
    if mode == "plain":
        return factory("relp", **kw)
    authmode = "x509/certvalid" if mode == "mtls" else "anon"
    return factory("relp", pki=pki, relp_tls=True, authmode=authmode, **kw)


def configure_relp(mode: str, receiver: RsyslogReceiver, pki: TestPKI, tmp: Path) -> None:
    args = ["set-syslog-server", "--server-name", "127.0.0.1", "--server-port", str(receiver.port)]
    args.append("--use-relp")
    if mode == "plain":
        args.append("--no-encryption")
    else:
        args += ["--trusted-ca", str(pki.ca_file)]
    result = run_cli(args)
    assert result.exit_code == 0, result.stderr
    if mode == "mtls":
        pfx = tmp / "client.pfx"
        pfx.write_bytes(pki.client.to_pfx(b"test-password"))
        result = run_cli(["set-syslog-client", "--pfx-file", str(pfx)], input="test-password\n")
        assert result.exit_code == 0, result.stderr


@pytest.mark.rsyslog
@pytest.mark.parametrize("mode", ["plain", "tls", "mtls"])
def test_receiver_killed_mid_stream_loses_nothing_and_duplicates_at_most_a_window(
    mode: str,
    rsyslog_factory: Factory,
    forwarder: Callable[[], Forwarder],
    pki: TestPKI,
    tmp_path: Path,
) -> None:
    count = 20_000
    receiver = relp_receiver(rsyslog_factory, mode, pki)
    configure_relp(mode, receiver, pki, tmp_path)
    send_events(0, count)
    worker = forwarder()
    outages = 0
    for at in (2000, 8000):  # two outages; the second only if the stream is still going
        if len(receiver.wait_for_lines(at, timeout=60)) >= count and outages:
            break
        receiver.kill()
        outages += 1
        assert len(receiver.lines()) < count, "the kill did not happen mid-stream"
        worker.wait_for(lambda s: s["state"] == "backing off" and s["last_error"] is not None)
        error = worker.status()["last_error"]
        assert isinstance(error, dict) and error["message"] and error["fix"]
        receiver.start()  # same port
    ids = wait_for_ids(receiver, range(count), timeout=120)
    duplicates = assert_none_missing(ids, range(count))
    assert duplicates <= relp.WINDOW * outages
    worker.wait_for(lambda s: s["queue"]["events"] == 0)
    status = worker.status()
    counts = status["counts"]
    assert isinstance(counts, dict)
    assert counts["sent"] >= count
    # Exactly what was not answered went out again: what arrived twice was resent.
    assert counts["resent"] >= duplicates
    assert counts["resent"] <= relp.WINDOW * outages
    connection = status["connection"]
    assert isinstance(connection, dict)
    assert connection["transport"] == "relp"
    assert connection["relp_offers"]["commands"] == "syslog"
    assert (connection["tls_version"] is not None) is (mode != "plain")
    assert connection["client_certificate_sent"] is (mode == "mtls")
    assert status["server"]["transport"] == ("relp-tcp" if mode == "plain" else "relp-tls")


@pytest.mark.rsyslog
def test_delivery_is_byte_exact_and_in_order(
    rsyslog_factory: Factory,
    forwarder: Callable[[], Forwarder],
    pki: TestPKI,
    tmp_path: Path,
) -> None:
    receiver = relp_receiver(rsyslog_factory, "tls", pki)
    configure_relp("tls", receiver, pki, tmp_path)
    send_events(0, 3000)
    forwarder()
    receiver.wait_for_lines(3000, timeout=60)
    assert receiver.lines() == expected_messages(0, 3000)


@pytest.mark.rsyslog
def test_test_syslog_server_reports_the_open_handshake(
    rsyslog_factory: Factory,
    pki: TestPKI,
    tmp_path: Path,
) -> None:
    receiver = relp_receiver(rsyslog_factory, "mtls", pki)
    configure_relp("mtls", receiver, pki, tmp_path)
    result = run_cli(["test-syslog-server", "--send-test-event", "--json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    steps = {step["name"]: step for step in json.loads(result.stdout)["steps"]}
    assert steps["relp"]["status"] == "ok"
    assert steps["relp"]["details"]["offers"]["relp_version"] == "0"
    assert "librelp" in steps["relp"]["details"]["offers"]["relp_software"]
    assert steps["send"]["status"] == "ok"
    assert "200 OK" in steps["send"]["summary"]
    assert len(receiver.wait_for_lines(1)) == 1
    shown = run_cli(["get-syslog-server", "--json"])
    assert json.loads(shown.stdout)["UseRELP"] is True
    assert json.loads(shown.stdout)["Transport"] == "relp-tls"


@pytest.mark.rsyslog
def test_relp_aimed_at_a_plain_syslog_port_is_explained(
    rsyslog_factory: Factory,
) -> None:
    receiver = rsyslog_factory("tcp")
    server = ServerSettings("127.0.0.1", receiver.port, no_encryption=True, use_relp=True)
    with pytest.raises(TransportError) as caught:
        relp.connect(server, ClientSettings(), timeouts=SHORT)
    assert caught.value.cause == "relp-no-answer"
    assert "imrelp" in (caught.value.fix or "")


@pytest.mark.rsyslog
def test_relp_aimed_at_a_syslog_tls_port_is_explained(
    rsyslog_factory: Factory,
    pki: TestPKI,
) -> None:
    receiver = rsyslog_factory("tls", pki=pki)
    # RELP with TLS: the handshake passes (a TLS syslog port), the open is never answered.
    server = ServerSettings("localhost", receiver.port, trusted_ca=str(pki.ca_file), use_relp=True)
    with pytest.raises(TransportError) as caught:
        relp.connect(server, ClientSettings(), timeouts=SHORT)
    assert caught.value.cause == "relp-no-answer"
    # RELP without TLS at a TLS port: the server drops the non-TLS bytes.
    plain = ServerSettings("127.0.0.1", receiver.port, no_encryption=True, use_relp=True)
    with pytest.raises(TransportError) as caught:
        relp.connect(plain, ClientSettings(), timeouts=SHORT)
    assert caught.value.cause in ("relp-closed", "relp-no-answer")
    assert caught.value.message and caught.value.fix


@pytest.mark.rsyslog
def test_plain_relp_aimed_at_a_relp_tls_port_is_explained(
    rsyslog_factory: Factory,
    pki: TestPKI,
) -> None:
    receiver = relp_receiver(rsyslog_factory, "tls", pki)
    plain = ServerSettings("127.0.0.1", receiver.port, no_encryption=True, use_relp=True)
    with pytest.raises(TransportError) as caught:
        relp.connect(plain, ClientSettings(), timeouts=SHORT)
    assert caught.value.cause in ("relp-closed", "relp-no-answer")
    assert "TLS" in caught.value.message or "TLS" in (caught.value.fix or "")


# The TLS refusal matrix, once over RELP (imrelp's TLS; the TLS 1.1-only server through
# imrelp's tls.tlscfgcmd, the same OpenSSL configuration commands).
RELP_CASES = dict(CASES)


@pytest.mark.rsyslog
@pytest.mark.parametrize("name", list(RELP_CASES))
def test_tls_refusal_matrix_over_relp(
    name: str, rsyslog_factory: Factory, pki: TestPKI, tmp_path: Path
) -> None:
    check_refusal(RELP_CASES[name], rsyslog_factory, pki, tmp_path, "relp")


# --- a scripted peer, for the answers rsyslog does not give on demand ------------------------


class ScriptedPeer:
    """A RELP server on 127.0.0.1 that answers ``open`` like librelp and every ``syslog`` frame
    with ``answer(n)`` (n counts syslog frames from 1 over all sessions): ``"200 OK"``, another
    status (a refusal), ``"serverclose"`` (ends the session), or ``None`` (silence)."""

    def __init__(self, answer: Callable[[int], str | None]) -> None:
        self.answer = answer
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.server.settimeout(0.2)
        self.port: int = self.server.getsockname()[1]
        self.accepted: list[bytes] = []  # the messages answered 200, in order
        self.sessions = 0
        self.frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.sessions += 1
            with conn, contextlib.suppress(OSError):  # the client may leave mid-answer
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        reader = relp.FrameReader()
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            for frame in reader.feed(data):
                if frame.command == "open":
                    body = b"200 OK\nrelp_version=0\nrelp_software=scripted\ncommands=syslog"
                    conn.sendall(relp.encode(frame.txnr, "rsp", body))
                    continue
                if frame.command == "close":
                    conn.sendall(relp.encode(frame.txnr, "rsp"))
                    conn.sendall(relp.encode(0, "serverclose"))
                    return
                self.frames += 1
                answer = self.answer(self.frames)
                if answer is None:
                    continue
                if answer == "serverclose":
                    conn.sendall(relp.encode(0, "serverclose"))
                    # Read on until the client closes: closing with its frames unread would
                    # reset the connection, and the client might lose our answers unread.
                    conn.shutdown(socket.SHUT_WR)
                    while time.monotonic() < deadline and conn.recv(65536):
                        pass
                    return
                if answer.startswith("200"):
                    self.accepted.append(frame.data)
                conn.sendall(relp.encode(frame.txnr, "rsp", answer.encode()))

    def close(self) -> None:
        self._stop.set()
        self.server.close()
        self._thread.join(timeout=5)


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[int], str | None]], ScriptedPeer]]:
    peers: list[ScriptedPeer] = []

    def make(answer: Callable[[int], str | None]) -> ScriptedPeer:
        peer = ScriptedPeer(answer)
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        peer.close()


def enqueue(count: int) -> None:
    from azs_syslog.encode.render import Renderer, RenderSettings
    from azs_syslog.queue import Queue
    from azs_syslog.queue.ingest import enqueue_records

    settings = RenderSettings()
    lines = (
        (
            i,
            json.dumps(
                {
                    "type": "pep",
                    "event": "PrivilegedEndpointAccessed",
                    "who": f"op{i}",
                    "which_ip": "10.0.0.1",
                }
            ),
        )
        for i in range(count)
    )
    with Queue() as queue:
        enqueue_records(lines, queue, Renderer(settings), settings.key)
        assert queue.depth().events == count


def run_until(worker: Worker, done: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(min(worker.step(), 0.02))
    assert done(), worker.status().as_json()


def relp_config(port: int) -> Config:
    return Config(server=ServerSettings("127.0.0.1", port, no_encryption=True, use_relp=True))


@pytest.mark.parametrize("answer", ["500 queue full", "serverclose"])
def test_refusal_and_serverclose_are_explained_and_exactly_the_unanswered_go_again(
    answer: str,
    scripted: Callable[[Callable[[int], str | None]], ScriptedPeer],
) -> None:
    count = 300
    peer = scripted(lambda n: answer if n == 101 else "200 OK")
    enqueue(count)
    options = WorkerOptions(socket_input=False, backoff_initial=0.05, backoff_max=0.1)
    worker = Worker(lambda: relp_config(peer.port), options=options)
    errors: list[dict[str, Any]] = []
    try:

        def delivered() -> bool:
            error: Any = worker.status().as_json()["last_error"]
            if error and not errors:
                errors.append(error)
            return worker.queue.depth().events == 0 and not worker.inflight

        run_until(worker, delivered)
        status: dict[str, Any] = worker.status().as_json()
    finally:
        worker.close()
    assert errors, "the refusal was in the status"
    error = errors[0]
    cause = "relp-refused" if answer.startswith("500") else "relp-serverclose"
    assert error["cause"] == cause
    assert error["fix"]
    if cause == "relp-refused":
        assert "500 queue full" in str(error["message"])
    assert peer.sessions >= 2
    # Every message arrived; the first 100 were answered and not sent again.
    assert len(set(peer.accepted)) == count
    if cause == "relp-serverclose":
        assert len(peer.accepted) == count  # nothing was answered after the serverclose
    else:
        # The peer went on answering 200 after its refusal; the client stopped reading at the
        # refusal, so those (at most a window) arrive twice.
        assert len(peer.accepted) - count <= relp.WINDOW
    assert status["counts"]["sent"] == count
    assert status["counts"]["resent"] == count - 100


def test_a_peer_that_goes_silent_is_explained() -> None:
    peer = ScriptedPeer(lambda n: None)
    try:
        server = relp_config(peer.port).server
        assert server is not None
        sender = relp.connect(server, ClientSettings(), timeouts=SHORT, window=4)
        message = b"3 <1>"
        with pytest.raises(TransportError) as caught:
            for _ in range(10):  # the window (4) fills; the fifth waits for an answer
                sender.send(message, [len(message)])
        sender.close(timeout=0.2)
    finally:
        peer.close()
    assert caught.value.cause == "relp-no-answer"
    assert "answered none of 4 RELP frames" in caught.value.message


def test_a_peer_that_never_answers_open_backs_the_forwarder_off() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        worker = Worker(
            lambda: relp_config(port),
            options=WorkerOptions(socket_input=False),
            connect=lambda s, c: relp.connect(s, c, timeouts=SHORT),
        )
        try:
            run_until(worker, lambda: worker.state == st.BACKING_OFF)
            error: Any = worker.status().as_json()["last_error"]
        finally:
            worker.close()
    finally:
        with contextlib.suppress(OSError):
            listener.close()
    assert error["cause"] == "relp-no-answer"
    assert error["step"] == "relp"
    assert "answered no RELP open" in error["message"]


def test_use_relp_with_use_udp_is_a_usage_error_naming_both() -> None:
    result = run_cli(
        [
            "set-syslog-server",
            "--server-name",
            "x.example",
            "--server-port",
            "1",
            "--use-relp",
            "--use-udp",
        ]
    )
    assert result.exit_code == 2
    assert "--use-relp" in result.stderr and "--use-udp" in result.stderr


def test_powershell_spelling_and_old_files_stay_valid() -> None:
    result = run_cli(
        ["Set-SyslogServer", "-ServerName", "x.example", "-ServerPort", "2514", "-UseRELP"]
    )
    assert result.exit_code == 0, result.stderr
    shown = json.loads(run_cli(["get-syslog-server", "--json"]).stdout)
    assert shown["UseRELP"] is True
    from azs_syslog.config import parse_config

    old = {"version": 1, "server": {"ServerName": "x.example", "ServerPort": 514}}
    assert parse_config(json.dumps(old)).server.use_relp is False  # type: ignore[union-attr]


# --- TCP: acknowledgements looked at between the batches of a send -----------------------------


def test_tcp_batches_acknowledged_during_a_send_leave_the_replay_set() -> None:
    from tests.test_worker import Sink, Source, enqueue, make_worker, tcp_config
    from tests.test_worker import run_until as run_worker_until

    sink = Sink().start()
    try:
        enqueue(0, 4000)  # 8 batches of 500: one fetch
        worker = make_worker(Source(tcp_config(sink.port)), confirm_delay=0.0)
        try:
            run_worker_until(worker, lambda: worker.sender is not None)
            worker.step()  # one send of the whole fetch, confirming as it goes
            # Nothing confirmed during the send is left marked in flight in the queue.
            assert worker.queue.inflight_ids() == [i.batch_id for i in worker.inflight]
            run_worker_until(worker, lambda: worker.queue.depth().events == 0)
            assert worker.queue.inflight_ids() == []
            assert worker.queue.counters()["sent"] == 4000
            assert worker.queue.counters()["resent"] == 0
        finally:
            worker.close()
    finally:
        sink.stop()
