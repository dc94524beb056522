"""The rsyslog harness itself, driven with bare sockets: it receives byte-exact, restarts on
the same port, and a TLS 1.1-only server really offers only TLS 1.1."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.receivers import TLS11_ONLY, RsyslogReceiver, TestPKI, rsyslog_factory
from tests.support import octet_counted, octet_frame

__all__ = ["rsyslog_factory"]

Factory = Callable[..., RsyslogReceiver]

MESSAGES = [
    b"<134>Nov 26 10:00:00 host CEF:0|a|b|1|x|n|5|k=v\\= n=%d tab\there \xc3\xa9" % i
    for i in range(50)
]


def test_udp_tcp_byte_exact_and_restart(rsyslog_factory: Factory) -> None:
    udp = rsyslog_factory("udp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("127.0.0.1", udp.port))
        for m in MESSAGES:
            s.send(m)
    assert udp.wait_for_lines(len(MESSAGES)) == MESSAGES

    tcp = rsyslog_factory("tcp")
    port = tcp.port
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(octet_counted(MESSAGES[:25])[0] + b"".join(m + b"\n" for m in MESSAGES[25:]))
    assert tcp.wait_for_lines(len(MESSAGES)) == MESSAGES
    tcp.kill()
    assert not tcp.running
    tcp.start()
    assert tcp.port == port
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(octet_frame(MESSAGES[0]))
    assert tcp.wait_for_lines(len(MESSAGES) + 1)[-1] == MESSAGES[0]


def test_tls_mutual_and_tls11_only(rsyslog_factory: Factory, tmp_path: Path) -> None:
    files = TestPKI.create(tmp_path / "pki")
    mutual = rsyslog_factory("tls", pki=files, authmode="x509/certvalid")
    ctx = ssl.create_default_context(cafile=str(files.ca_file))
    ctx.load_cert_chain(files.client_cert, files.client_key)
    with ctx.wrap_socket(
        socket.create_connection(("127.0.0.1", mutual.port)), server_hostname="localhost"
    ) as s:
        s.sendall(octet_counted(MESSAGES)[0])
        s.unwrap()
    assert mutual.wait_for_lines(len(MESSAGES)) == MESSAGES

    old = rsyslog_factory("tls", pki=files, priority_string=TLS11_ONLY)
    modern = ssl.create_default_context(cafile=str(files.ca_file))
    with (
        pytest.raises(ssl.SSLError, match=r"PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL"),
        socket.create_connection(("127.0.0.1", old.port)) as raw,
    ):
        modern.wrap_socket(raw, server_hostname="localhost")


def test_a_taken_port_is_reported(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        receiver = RsyslogReceiver(tmp_path / "busy", "tcp", port=port)
        with pytest.raises(RuntimeError, match="port is taken"):
            receiver.start()
        assert not receiver.running
