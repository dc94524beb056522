"""``listen`` over real sockets: the four transports, malformed input, the CLI."""

from __future__ import annotations

import json
import random
import selectors
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from azs_syslog.errors import CertificateError, TransportError
from azs_syslog.lab import pki
from azs_syslog.lab.receiver import Listener, ReceivedMessage, server_ssl_context
from tests.conftest import run_cli
from tests.receivers import TestPKI
from tests.support import octet_frame as octet
from tests.support import start_cli

WAIT = 10.0  # seconds; generous for a loaded 2-core machine, never reached when things work


def cef_message(n: int = 1, *, extensions: str | None = None) -> bytes:
    ext = extensions if extensions is not None else f"Who=admin WhichIP=10.0.0.{n} cn1={n}"
    return (
        "<85>Nov 26 10:00:00 azs-node1 CEF:0|Microsoft|Microsoft Azure Stack Hub|1.0|"
        f"Microsoft-AzureStack-PrivilegedEndpoint: 1000|PrivilegedEndpointAccessedEvent|5|{ext}"
    ).encode()


def one(listener: Listener) -> ReceivedMessage:
    messages = listener.collect(1, WAIT)
    assert messages, "no message arrived"
    return messages[0]


@dataclass
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_client_cert: Path  # from a CA the server does not trust
    other_client_key: Path


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    files = TestPKI.create(tmp_path_factory.mktemp("tls"), ca_name="listen test CA")
    client_cert, client_key = files.issue("lab-client", "lab-client", client=True)
    stranger = pki.issue(pki.make_ca("some other CA"), "stranger", client=True)
    other_cert, other_key = stranger.write(files.directory, "stranger")
    return TlsFiles(
        files.ca_file,
        files.server_cert,
        files.server_key,
        client_cert,
        client_key,
        other_cert,
        other_key,
    )


def client_context(files: TlsFiles, *, with_cert: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(files.ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if with_cert:
        context.load_cert_chain(files.client_cert, files.client_key)
    return context


def assert_refused(port: int, client: ssl.SSLContext, n: int) -> None:
    """A TLS client ``client`` is refused by the server on ``port``: its handshake, or (TLS 1.3
    reports a refused client certificate after the handshake) its next read, fails."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    with (
        pytest.raises((ssl.SSLError, ConnectionError)),
        client.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(octet(cef_message(n)))
        assert tls.recv(1) == b""  # pragma: no cover - the server must refuse


@pytest.fixture
def tcp_listener() -> Iterator[Listener]:
    with Listener("tcp", "127.0.0.1", 0) as listener:
        yield listener


# -- the four transports ------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_udp_one_datagram_one_message(host: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with Listener("udp", host, 0) as listener, socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.sendto(cef_message(1), (host, listener.port))
        sock.sendto(cef_message(2) + b"\n", (host, listener.port))
        messages = listener.collect(2, WAIT)
    assert [m.extensions["cn1"] for m in messages] == ["1", "2"]
    assert all(m.valid and m.transport == "udp" and m.framing == "datagram" for m in messages)
    assert messages[0].peer.startswith("[::1]:" if family == socket.AF_INET6 else "127.0.0.1:")
    assert listener.counts.by_transport["udp"] == 2


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_tcp_octet_counting(host: str) -> None:
    with Listener("tcp", host, 0) as listener:
        with socket.create_connection((host, listener.port), timeout=WAIT) as sock:
            # split mid-message: framing must not depend on how TCP segments the stream
            stream = b"".join(octet(cef_message(n)) for n in range(1, 4))
            sock.sendall(stream[:50])
            time.sleep(0.05)
            sock.sendall(stream[50:])
        messages = listener.collect(3, WAIT)
    assert [m.extensions["cn1"] for m in messages] == ["1", "2", "3"]
    assert all(m.valid and m.framing == "octet-counting" for m in messages)


def test_tcp_lf_framing(tcp_listener: Listener) -> None:
    with socket.create_connection(("127.0.0.1", tcp_listener.port), timeout=WAIT) as sock:
        sock.sendall(cef_message(1) + b"\n" + cef_message(2) + b"\r\n")
    messages = tcp_listener.collect(2, WAIT)
    assert [m.extensions["cn1"] for m in messages] == ["1", "2"]
    assert all(m.valid and m.framing == "lf" for m in messages)


def test_framing_is_detected_per_connection(tcp_listener: Listener) -> None:
    """Concurrent connections, one octet-counting and one LF, interleaved."""
    port = tcp_listener.port
    with (
        socket.create_connection(("127.0.0.1", port), timeout=WAIT) as counted,
        socket.create_connection(("127.0.0.1", port), timeout=WAIT) as lines,
    ):
        for n in range(1, 4):
            counted.sendall(octet(cef_message(n)))
            lines.sendall(cef_message(10 + n) + b"\n")
    messages = tcp_listener.collect(6, WAIT)
    assert len(messages) == 6
    assert all(m.valid for m in messages)
    framing_of = {m.extensions["cn1"]: m.framing for m in messages}
    assert framing_of == {
        "1": "octet-counting",
        "2": "octet-counting",
        "3": "octet-counting",
        "11": "lf",
        "12": "lf",
        "13": "lf",
    }
    assert tcp_listener.counts.connections == 2


def lf(message: bytes) -> bytes:
    return message + b"\n"


@pytest.mark.parametrize(
    ("host", "server_name", "framed"),
    [("127.0.0.1", "localhost", octet), ("::1", "::1", lf)],
    ids=["ipv4-octet-counting", "ipv6-lf"],
)
def test_tls_server_authentication(
    tls_files: TlsFiles, host: str, server_name: str, framed: Callable[[bytes], bytes]
) -> None:
    context = server_ssl_context(str(tls_files.server_cert), str(tls_files.server_key))
    with Listener("tls", host, 0, ssl_context=context) as listener:
        client = client_context(tls_files, with_cert=False)
        raw = socket.create_connection((host, listener.port), timeout=WAIT)
        with client.wrap_socket(raw, server_hostname=server_name) as tls:
            tls.sendall(framed(cef_message(1)) + framed(cef_message(2)))
        messages = listener.collect(2, WAIT)
    assert [m.extensions["cn1"] for m in messages] == ["1", "2"]
    assert all(m.valid and m.transport == "tls" for m in messages)
    assert messages[0].peer_certificate is None
    assert messages[0].peer.startswith("[::1]:" if ":" in host else "127.0.0.1:")


def test_mutual_tls_accepts_a_client_certificate_and_refuses_none(tls_files: TlsFiles) -> None:
    context = server_ssl_context(
        str(tls_files.server_cert), str(tls_files.server_key), str(tls_files.ca)
    )
    errors: list[str] = []
    with Listener(
        "tls", "127.0.0.1", 0, ssl_context=context, on_connection_error=errors.append
    ) as listener:
        # without a certificate: refused (TLS 1.3 reports it on the client's next read)
        assert_refused(listener.port, client_context(tls_files, with_cert=False), 1)
        # a certificate from a CA the server does not trust: refused too
        stranger = client_context(tls_files, with_cert=False)
        stranger.load_cert_chain(tls_files.other_client_cert, tls_files.other_client_key)
        assert_refused(listener.port, stranger, 2)
        # with the right certificate: received, and the peer's subject is shown
        raw = socket.create_connection(("127.0.0.1", listener.port), timeout=WAIT)
        with client_context(tls_files).wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(octet(cef_message(3)))
        message = one(listener)
        assert listener.messages.empty()
    assert message.valid
    assert message.extensions["cn1"] == "3"
    assert message.peer_certificate == "commonName=lab-client"
    assert listener.counts.handshake_failures == 2
    assert listener.counts.received == 1
    assert any("TLS handshake failed" in e for e in errors)


# -- malformed input: flagged, counted, and the listener keeps going ------------------------------

# A valid message with one part replaced: (what, by what, the code expected, the case's id).
REPLACED = [
    (b"<85>", b"<999>", "bad-pri", "bad-pri"),
    (b"Nov 26 10:00:00 azs-node1 ", b"", "bad-syslog-header", "missing-syslog-header"),
    (b"Nov 26", b"Nov 99", "bad-syslog-header", "garbled-syslog-header"),
    (b"Stack Hub", b"Stack \\Hub", "bad-header-escape", "header-escape"),
    (b"cn1=1", b"cn1=caf\xe9", "invalid-utf8", "invalid-utf8"),
]
# A valid CEF header with these extensions: (extensions, the code expected, the case's id).
EXTENSIONS = [
    ("Who=admin Which-IP=10.0.0.1", "bad-extension-key", "extension-key"),
    ("msg=a=b Who=admin", "unescaped-equals", "unescaped-equals"),
]
SIX_HEADER_FIELDS = b"<85>Nov 26 10:00:00 h CEF:0|Microsoft|Product|1.0|Sig|Name|a=1"
STREAM_CASES = [
    *(pytest.param(octet(cef_message().replace(a, b)), c, id=i) for a, b, c, i in REPLACED),
    *(pytest.param(octet(cef_message(extensions=x)), c, id=i) for x, c, i in EXTENSIONS),
    pytest.param(octet(b"<85>Nov 26 10:00:00 h just text"), "not-cef", id="not-cef"),
    pytest.param(octet(SIX_HEADER_FIELDS), "bad-cef-header-count", id="six-header-fields"),
    # the framing itself is wrong
    pytest.param(b"12x" + cef_message() + b"\n", "bad-octet-count", id="bad-octet-count"),
    pytest.param(b"junk before the message\n", "bad-framing", id="bad-framing"),
    pytest.param(b"70000 " + b"x" * 70000, "oversize", id="oversize"),
]


@pytest.mark.parametrize(("data", "code"), STREAM_CASES)
def test_malformed_stream_input_is_flagged_and_the_listener_keeps_running(
    tcp_listener: Listener, data: bytes, code: str
) -> None:
    with socket.create_connection(("127.0.0.1", tcp_listener.port), timeout=WAIT) as sock:
        sock.sendall(data)
        # then a valid message, on the same connection
        sock.sendall(octet(cef_message(7)))
    bad, good = tcp_listener.collect(2, WAIT)
    assert not bad.valid
    assert code in [p.code for p in bad.errors], bad.errors
    assert good.valid, good.errors
    assert good.extensions["cn1"] == "7"
    # and a new connection is served too
    with socket.create_connection(("127.0.0.1", tcp_listener.port), timeout=WAIT) as sock:
        sock.sendall(octet(cef_message(8)))
    assert one(tcp_listener).extensions["cn1"] == "8"
    counts = tcp_listener.counts
    assert (counts.received, counts.valid, counts.malformed) == (3, 2, 1)
    assert counts.by_reason[code] == 1


@pytest.mark.parametrize(
    ("data", "code"),
    [
        pytest.param(b"\xff\xfe<85>", "invalid-utf8", id="invalid-utf8"),
        pytest.param(b"x" * 2000, "oversize", id="oversize"),
        pytest.param(
            b"<85>" + cef_message()[4:].replace(b"|5|", b"|"),
            "bad-cef-header-count",
            id="header-fields",
        ),
    ],
)
def test_malformed_datagram_is_flagged(data: bytes, code: str) -> None:
    with (
        Listener("udp", "127.0.0.1", 0, max_message_size=1024) as listener,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
    ):
        sock.sendto(data, ("127.0.0.1", listener.port))
        sock.sendto(cef_message(4), ("127.0.0.1", listener.port))
        bad, good = listener.collect(2, WAIT)
    assert code in [p.code for p in bad.errors]
    assert good.valid


def test_random_bytes_never_stop_the_listener(tcp_listener: Listener) -> None:
    rng = random.Random(5)
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", tcp_listener.port), timeout=WAIT) as sock:
            sock.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))))
    with socket.create_connection(("127.0.0.1", tcp_listener.port), timeout=WAIT) as sock:
        sock.sendall(b"\n" + cef_message(9) + b"\n")
    deadline = time.monotonic() + WAIT
    found = False
    while not found and time.monotonic() < deadline:
        found = any(
            m.valid and m.extensions.get("cn1") == "9" for m in tcp_listener.collect(50, 0.5)
        )
    assert found


def test_tls_sender_on_a_tcp_listener_is_told_and_disconnected(
    tcp_listener: Listener, tls_files: TlsFiles
) -> None:
    raw = socket.create_connection(("127.0.0.1", tcp_listener.port), timeout=WAIT)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        client_context(tls_files, with_cert=False).wrap_socket(raw, server_hostname="localhost")
    raw.close()
    message = one(tcp_listener)
    assert [p.code for p in message.errors] == ["unexpected-tls"]
    assert "--protocol tls" in message.errors[0].detail


def test_plain_sender_on_a_tls_listener_is_explained(tls_files: TlsFiles) -> None:
    context = server_ssl_context(str(tls_files.server_cert), str(tls_files.server_key))
    errors: list[str] = []
    with Listener(
        "tls", "127.0.0.1", 0, ssl_context=context, on_connection_error=errors.append
    ) as listener:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=WAIT) as sock:
            sock.sendall(cef_message(1) + b"\n")
            try:
                closed = sock.recv(100) == b""
            except ConnectionResetError:
                closed = True
            assert closed  # the server closes the connection
        deadline = time.monotonic() + WAIT
        while not errors and time.monotonic() < deadline:
            time.sleep(0.05)
    assert listener.counts.handshake_failures == 1
    assert "does not speak TLS" in errors[0]
    assert listener.counts.received == 0


# -- certificates and binding ---------------------------------------------------------------------


def test_bad_certificate_files_are_explained(tls_files: TlsFiles, tmp_path: Path) -> None:
    with pytest.raises(CertificateError) as caught:
        server_ssl_context(str(tls_files.server_cert), str(tls_files.client_key))
    assert "cannot load the server certificate" in str(caught.value)
    assert caught.value.fix
    encrypted = tmp_path / "encrypted-key.pem"
    from cryptography.hazmat.primitives import serialization

    key = pki.new_key()
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(CertificateError):
        server_ssl_context(str(tls_files.server_cert), str(encrypted))


def test_port_in_use_is_a_transport_error(tcp_listener: Listener) -> None:
    with pytest.raises(TransportError) as caught:
        Listener("tcp", "127.0.0.1", tcp_listener.port).start()
    assert caught.value.fix


# -- the CLI -------------------------------------------------------------------------------


def read_line(stream: IO[bytes], timeout: float = 30) -> str:
    """One line from a child's unbuffered pipe, waiting at most ``timeout`` seconds for it."""
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            if selector.select(timeout=0.5):
                byte = stream.read(1)
                if not byte:
                    break
                line += byte
    return line.decode()


class ListenProcess:
    """``azs-syslog listen`` in a child process, on a free port it reports on stderr."""

    def __init__(self, *args: str) -> None:
        self.proc = start_cli(
            ["listen", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,  # unbuffered, so the selector sees what read(1) has not taken yet
        )
        self.first_line = self._read_first_stderr_line()
        self.port = int(self.first_line.split()[3].rsplit(":", 1)[1].rstrip(";"))

    def _read_first_stderr_line(self) -> str:
        assert self.proc.stderr is not None
        line = read_line(self.proc.stderr)
        assert line.startswith("listening on"), line
        return line

    def finish(self) -> tuple[int, str, str]:
        try:
            stdout, stderr = self.proc.communicate(timeout=30)
        finally:
            if self.proc.poll() is None:  # pragma: no cover - only when a test fails
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode, stdout.decode(), self.first_line + stderr.decode()


def test_cli_json_lines_until_count() -> None:
    listen = ListenProcess("--protocol", "tcp", "--json", "--count", "3", "--timeout", "60")
    with socket.create_connection(("127.0.0.1", listen.port), timeout=WAIT) as sock:
        sock.sendall(octet(cef_message(1)))
        sock.sendall(octet(b"<999>Nov 26 10:00:00 h CEF:0|a|b|c|d|e|5|x=1"))
        sock.sendall(octet(cef_message(3, extensions="msg=a=b")))
    code, stdout, stderr = listen.finish()
    assert code == 0, stderr
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert len(lines) == 3
    assert lines[0]["valid"] is True
    assert lines[0]["cef"]["signature_id"] == "Microsoft-AzureStack-PrivilegedEndpoint: 1000"
    assert lines[0]["cef"]["extensions"] == {"Who": "admin", "WhichIP": "10.0.0.1", "cn1": "1"}
    assert lines[0]["syslog"]["facility"] == 10
    assert lines[0]["transport"] == "tcp"
    assert [e["code"] for e in lines[1]["errors"]] == ["bad-pri"]
    assert [e["code"] for e in lines[2]["errors"]] == ["unescaped-equals"]
    assert "summary: 3 received" in stderr
    assert "1 valid, 2 malformed" in stderr
    assert "bad-pri 1" in stderr and "unescaped-equals 1" in stderr


def test_cli_shows_valid_rows_and_flags_a_malformed_one() -> None:
    """The issue's acceptance check: ``listen --protocol tcp`` shows valid, flags malformed."""
    listen = ListenProcess("--protocol", "tcp", "--count", "2", "--timeout", "60")
    with socket.create_connection(("127.0.0.1", listen.port), timeout=WAIT) as sock:
        sock.sendall(cef_message(1) + b"\n")
        sock.sendall(b"<13>Nov 26 10:00:00 \x1b[31mhost CEF:0|a|b|c|d|e|5|bad-key=1\n")
    code, stdout, stderr = listen.finish()
    assert code == 0, stderr
    valid_row, bad_row = stdout.splitlines()
    assert " ok " in valid_row
    assert "PrivilegedEndpointAccessedEvent" in valid_row and "WhichIP=10.0.0.1" in valid_row
    assert "BAD" in bad_row
    assert "bad-syslog-header" in bad_row and "bad-extension-key" in bad_row
    assert "\x1b" not in stdout  # received control characters never reach the terminal
    assert "summary: 2 received" in stderr


def test_cli_mutual_tls(tls_files: TlsFiles) -> None:
    listen = ListenProcess(
        "--protocol", "tls", "--cert", str(tls_files.server_cert), "--key",
        str(tls_files.server_key), "--require-client-cert", "--client-ca", str(tls_files.ca),
        "--json", "--count", "1", "--timeout", "60",
    )  # fmt: skip
    assert "client certificate required" in listen.first_line
    assert_refused(listen.port, client_context(tls_files, with_cert=False), 1)
    raw = socket.create_connection(("127.0.0.1", listen.port), timeout=WAIT)
    with client_context(tls_files).wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(octet(cef_message(2)))
    code, stdout, stderr = listen.finish()
    assert code == 0, stderr
    (line,) = stdout.splitlines()
    assert json.loads(line)["peer_certificate"] == "commonName=lab-client"
    assert "TLS handshake failed" in stderr
    assert "TLS handshake failures: 1" in stderr


def test_cli_sigterm_stops_with_a_summary() -> None:
    listen = ListenProcess("--protocol", "udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(cef_message(1), ("127.0.0.1", listen.port))
    assert listen.proc.stdout is not None
    row = read_line(listen.proc.stdout)  # shown: received before the signal
    assert " ok " in row
    listen.proc.terminate()
    code, stdout, stderr = listen.finish()
    assert code == 0
    assert "summary: 1 received" in stderr
    assert "udp 1" in stderr
    assert stdout == ""


def test_cli_stops_quietly_when_its_reader_goes_away() -> None:
    """``listen --json | head -1``: no traceback, exit 0."""
    listen = ListenProcess("--protocol", "udp", "--json", "--timeout", "60")
    assert listen.proc.stdout is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(cef_message(1), ("127.0.0.1", listen.port))
        assert json.loads(listen.proc.stdout.readline())["valid"] is True
        listen.proc.stdout.close()  # the reader is gone
        for n in range(2, 40):
            if listen.proc.poll() is not None:
                break
            sock.sendto(cef_message(n), ("127.0.0.1", listen.port))
            time.sleep(0.1)
    assert listen.proc.stderr is not None
    stderr = listen.proc.stderr.read().decode()
    assert listen.proc.wait(timeout=30) == 0, stderr
    assert "Traceback" not in stderr
    assert "summary:" in stderr


def test_cli_timeout_before_count_fails() -> None:
    result = run_cli(["listen", "--port", "0", "--count", "1", "--timeout", "0.3"])
    assert result.exit_code == 1
    assert "timed out after 0.3 s with 0 of 1 messages" in result.stderr
    assert "summary: 0 received" in result.stderr


def test_cli_timeout_alone_exits_0() -> None:
    result = run_cli(["listen", "--protocol", "udp", "--port", "0", "--timeout", "0.3", "--json"])
    assert result.exit_code == 0
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--protocol", "tls"], "--protocol tls needs --cert and --key"),
        (["--protocol", "tcp", "--require-client-cert"], "need --protocol tls"),
        (["--protocol", "udp", "--port", "70000"], "70000"),
    ],
)
def test_cli_usage_errors(args: list[str], complaint: str) -> None:
    result = run_cli(["listen", *args])
    assert result.exit_code == 2
    assert complaint in result.stderr


def test_cli_client_ca_needs_the_flag(tls_files: TlsFiles) -> None:
    files = ["--cert", str(tls_files.server_cert), "--key", str(tls_files.server_key)]
    result = run_cli(["listen", "--protocol", "tls", *files, "--client-ca", str(tls_files.ca)])
    assert result.exit_code == 2
    assert "--client-ca is used only with --require-client-cert" in result.stderr
    result = run_cli(["listen", "--protocol", "tls", *files, "--require-client-cert"])
    assert result.exit_code == 2
    assert "--require-client-cert needs --client-ca" in result.stderr


def test_cli_bad_key_is_an_error_not_a_traceback(tls_files: TlsFiles) -> None:
    result = run_cli(
        ["listen", "--protocol", "tls", "--cert", str(tls_files.server_cert), "--key",
         str(tls_files.client_key), "--port", "0"]
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot load the server certificate")
    assert "fix:" in result.stderr


def test_cli_address_not_on_this_machine_is_an_error() -> None:
    # 192.0.2.1 is TEST-NET-1: never local, so binding fails (nothing is sent anywhere)
    result = run_cli(["listen", "--bind", "192.0.2.1", "--port", "0", "--timeout", "1"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot listen on tcp 192.0.2.1:0")
    assert "fix:" in result.stderr


def test_cli_help_has_examples() -> None:
    result = run_cli(["listen", "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output
    assert "azs-syslog listen --protocol tcp --port 5514" in result.output
    assert "not a SIEM" in result.output
