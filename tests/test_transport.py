"""The senders against a real rsyslog: what arrives, byte for byte, and every refusal explained."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from azs_syslog.config import ClientCertificate, ClientSettings, ServerSettings
from azs_syslog.errors import TransportError
from azs_syslog.transport import Sender, Timeouts, connect
from tests.receivers import TLS11_ONLY, RsyslogReceiver, TestPKI, free_port, rsyslog_factory
from tests.support import lf_framed, octet_counted

__all__ = ["rsyslog_factory"]

Factory = Callable[..., RsyslogReceiver]


def messages(count: int, tag: str = "t") -> list[bytes]:
    return [
        b"<134>Nov 26 10:00:00 host CEF:0|a|b|1|x|n|5|k=v\\=1 tag=%s n=%d caf\xc3\xa9"
        % (tag.encode(), i)
        for i in range(count)
    ]


def client_settings(files: TestPKI | None, stem: str = "client") -> ClientSettings:
    if files is None:
        return ClientSettings()
    certificate = ClientCertificate(
        subject="CN=azs-syslog test client",
        issuer="CN=azs-syslog test CA",
        thumbprint="00",
        not_before="2026-01-01T00:00:00Z",
        not_after="2027-01-01T00:00:00Z",
        chain_file=str(files.directory / f"{stem}.pem"),
        key_file=str(files.directory / f"{stem}-key.pem"),
    )
    return ClientSettings(certificate=certificate)


def tls_server(
    port: int, trusted: TestPKI | None, name: str = "localhost", **kw: Any
) -> ServerSettings:
    return ServerSettings(name, port, trusted_ca=str(trusted.ca_file) if trusted else None, **kw)


def send_all(sender: Sender, wire: bytes | memoryview, lengths: list[int]) -> None:
    try:
        sender.send(wire, lengths)
    finally:
        sender.close()


def refused(server: ServerSettings, client: ClientSettings | None = None) -> TransportError:
    with pytest.raises(TransportError) as caught:
        connect(server, client or ClientSettings(), timeouts=Timeouts(2, 5, 5))
    error = caught.value
    assert error.message and error.fix, "every refusal carries an explanation and a fix"
    return error


@pytest.fixture
def pki_files(tmp_path: Path) -> TestPKI:
    return TestPKI.create(tmp_path / "pki")


def elsewhere_receiver(factory: Factory, pki: TestPKI) -> RsyslogReceiver:
    """A TLS rsyslog whose certificate (from ``pki``) holds only syslog.example.com."""
    cert, key = pki.server_files("elsewhere")
    return factory("tls", cert_file=cert, key_file=key, ca_file=pki.ca_file)


# -- what arrives -------------------------------------------------------------------------------


def test_udp_one_datagram_per_message(rsyslog_factory: Factory) -> None:
    receiver = rsyslog_factory("udp")
    msgs = messages(300, "udp")
    sender = connect(ServerSettings("127.0.0.1", receiver.port, use_udp=True), ClientSettings())
    assert sender.info.transport == "udp"
    assert sender.info.peer_address == f"127.0.0.1:{receiver.port}"
    wire = b"".join(msgs)
    send_all(sender, memoryview(wire), [len(m) for m in msgs])
    assert sender.unacknowledged_bytes() == 0
    assert receiver.wait_for_lines(len(msgs)) == msgs


@pytest.mark.parametrize("framing", ["octet-counting", "lf"])
def test_tcp_byte_exact(rsyslog_factory: Factory, framing: str) -> None:
    receiver = rsyslog_factory("tcp")
    msgs = messages(500, framing)
    wire, lengths = octet_counted(msgs) if framing == "octet-counting" else lf_framed(msgs)
    sender = connect(
        ServerSettings("localhost", receiver.port, no_encryption=True), ClientSettings()
    )
    assert sender.info.transport == "tcp" and sender.info.tls_version is None
    # Two writes: a blob may end anywhere, the receiver sees one stream.
    half = sum(lengths[:250])
    sender.send(wire[:half], lengths[:250])
    send_all(sender, wire[half:], lengths[250:])
    assert receiver.wait_for_lines(len(msgs)) == msgs


def test_tls_server_authentication(rsyslog_factory: Factory, pki_files: TestPKI) -> None:
    receiver = rsyslog_factory("tls", pki=pki_files)
    msgs = messages(400, "tls")
    wire, lengths = octet_counted(msgs)
    sender = connect(tls_server(receiver.port, pki_files), ClientSettings())
    info = sender.info
    assert info.transport == "tls"
    assert info.tls_version in ("TLSv1.2", "TLSv1.3")
    assert info.cipher
    assert info.server_subject == "CN=localhost"
    assert info.server_not_after and info.server_not_after.endswith("Z")
    assert info.client_certificate_sent is False
    send_all(sender, wire, lengths)
    assert receiver.wait_for_lines(len(msgs)) == msgs


@pytest.mark.parametrize("priority", [None, "MaxProtocol=TLSv1.2"], ids=["tls13", "tls12"])
def test_mutual_tls(rsyslog_factory: Factory, pki_files: TestPKI, priority: str | None) -> None:
    receiver = rsyslog_factory(
        "tls", pki=pki_files, authmode="x509/certvalid", priority_string=priority
    )
    msgs = messages(300, "mtls")
    wire, lengths = octet_counted(msgs)
    sender = connect(tls_server(receiver.port, pki_files), client_settings(pki_files))
    assert sender.info.client_certificate_sent is True
    assert sender.info.tls_version == ("TLSv1.2" if priority else "TLSv1.3")
    send_all(sender, wire, lengths)
    assert receiver.wait_for_lines(len(msgs)) == msgs


def test_close_lets_the_receiver_drain(rsyslog_factory: Factory, pki_files: TestPKI) -> None:
    """rsyslog drops what it buffered when a TLS client vanishes; close() must not."""
    receiver = rsyslog_factory("tls", pki=pki_files)
    # ~700-byte messages: with these, a bare close() without close_notify lost most of 1,000.
    msgs = [m + b" pad=" + b"z" * 600 for m in messages(1000, "drain")]
    wire, lengths = octet_counted(msgs)
    sender = connect(tls_server(receiver.port, pki_files), ClientSettings())
    sender.send(wire, lengths)
    sender.close()
    sender.close()  # idempotent, never raises
    assert receiver.wait_for_lines(len(msgs)) == msgs


def test_unacknowledged_bytes_reach_zero(rsyslog_factory: Factory, pki_files: TestPKI) -> None:
    receiver = rsyslog_factory("tls", pki=pki_files)
    sender = connect(tls_server(receiver.port, pki_files), ClientSettings())
    wire, lengths = octet_counted(messages(2000, "ack"))
    sender.send(wire, lengths)
    deadline = time.monotonic() + 10
    while sender.unacknowledged_bytes() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sender.unacknowledged_bytes() == 0
    sender.close()
    assert len(receiver.wait_for_lines(2000)) == 2000


def test_ip_address_matched_through_ip_san(rsyslog_factory: Factory, pki_files: TestPKI) -> None:
    receiver = rsyslog_factory("tls", pki=pki_files)
    sender = connect(tls_server(receiver.port, pki_files, name="127.0.0.1"), ClientSettings())
    assert sender.info.peer_address == f"127.0.0.1:{receiver.port}"
    wire, lengths = octet_counted(messages(3, "ip"))
    send_all(sender, wire, lengths)
    assert len(receiver.wait_for_lines(3)) == 3


def test_certificate_without_san_is_matched_by_cn(
    rsyslog_factory: Factory, pki_files: TestPKI
) -> None:
    cert, key = pki_files.issue("cn-only", "localhost", server=True)
    receiver = rsyslog_factory("tls", cert_file=cert, key_file=key, ca_file=pki_files.ca_file)
    sender = connect(tls_server(receiver.port, pki_files), ClientSettings())
    sender.close()
    assert sender.info.server_subject == "CN=localhost"


def test_cn_is_ignored_when_the_certificate_has_a_san(
    rsyslog_factory: Factory, pki_files: TestPKI
) -> None:
    cert, key = pki_files.issue("ip-only", "localhost", ip_addresses=("127.0.0.1",), server=True)
    receiver = rsyslog_factory("tls", cert_file=cert, key_file=key, ca_file=pki_files.ca_file)
    error = refused(tls_server(receiver.port, pki_files))
    assert (error.step, error.cause) == ("verify", "name-mismatch")
    assert "127.0.0.1" in error.message


# -- refusals -----------------------------------------------------------------------------------


def test_unknown_ca(rsyslog_factory: Factory, pki_files: TestPKI, tmp_path: Path) -> None:
    receiver = rsyslog_factory("tls", pki=pki_files)
    other = TestPKI.create(tmp_path / "other", ca_name="some other CA")
    error = refused(tls_server(receiver.port, other))
    assert (error.step, error.cause) == ("verify", "unknown-ca")
    assert "CN=localhost" in error.message and "azs-syslog test CA" in error.message
    assert error.fix and "--trusted-ca" in error.fix
    assert receiver.lines() == []


def test_name_mismatch_lists_the_names(rsyslog_factory: Factory, pki_files: TestPKI) -> None:
    cert, key = pki_files.issue(
        "elsewhere",
        "syslog.example.com",
        dns_names=("syslog.example.com", "*.example.net"),
        server=True,
    )
    receiver = rsyslog_factory("tls", cert_file=cert, key_file=key, ca_file=pki_files.ca_file)
    error = refused(tls_server(receiver.port, pki_files))
    assert (error.step, error.cause) == ("verify", "name-mismatch")
    assert "syslog.example.com" in error.message and "*.example.net" in error.message
    by_ip = refused(tls_server(receiver.port, pki_files, name="127.0.0.1"))
    assert by_ip.cause == "name-mismatch"
    assert by_ip.fix and "--skip-cn-check" in by_ip.fix
    assert receiver.lines() == [], "nothing may be sent to a server that failed the check"


def test_skip_cn_check_passes_a_mismatch_but_not_an_unknown_ca(
    rsyslog_factory: Factory, pki_files: TestPKI, tmp_path: Path
) -> None:
    receiver = elsewhere_receiver(rsyslog_factory, pki_files)
    sender = connect(
        tls_server(receiver.port, pki_files, name="127.0.0.1", skip_cn_check=True),
        ClientSettings(),
    )
    wire, lengths = octet_counted(messages(5, "skipcn"))
    send_all(sender, wire, lengths)
    assert len(receiver.wait_for_lines(5)) == 5
    other = TestPKI.create(tmp_path / "other", ca_name="some other CA")
    error = refused(tls_server(receiver.port, other, name="127.0.0.1", skip_cn_check=True))
    assert error.cause == "unknown-ca"


def test_skip_certificate_check_passes_both_and_still_encrypts(
    rsyslog_factory: Factory, pki_files: TestPKI, tmp_path: Path
) -> None:
    receiver = elsewhere_receiver(rsyslog_factory, pki_files)
    other = TestPKI.create(tmp_path / "other", ca_name="some other CA")
    sender = connect(
        tls_server(receiver.port, other, skip_certificate_check=True), ClientSettings()
    )
    assert sender.info.tls_version in ("TLSv1.2", "TLSv1.3")
    msgs = messages(5, "skipall")
    wire, lengths = octet_counted(msgs)
    send_all(sender, wire, lengths)
    assert receiver.wait_for_lines(5) == msgs


def test_expired_server_certificate(rsyslog_factory: Factory, pki_files: TestPKI) -> None:
    cert, key = pki_files.server_files("expired")
    receiver = rsyslog_factory("tls", cert_file=cert, key_file=key, ca_file=pki_files.ca_file)
    error = refused(tls_server(receiver.port, pki_files))
    assert (error.step, error.cause) == ("verify", "expired")
    assert "the server certificate has expired" in error.message
    assert "renew" in (error.fix or "")


# TLS 1.3 (the verdict comes after the client's handshake is done) and TLS 1.2 (inside it).
VERSIONS = pytest.mark.parametrize(
    "priority", [None, "MaxProtocol=TLSv1.2"], ids=["tls13", "tls12"]
)


@VERSIONS
def test_server_requires_a_client_certificate(
    rsyslog_factory: Factory, pki_files: TestPKI, priority: str | None
) -> None:
    receiver = rsyslog_factory(
        "tls", pki=pki_files, authmode="x509/certvalid", priority_string=priority
    )
    error = refused(tls_server(receiver.port, pki_files))
    assert (error.step, error.cause) == ("tls", "client-certificate-required")
    assert "set-syslog-client" in (error.fix or "")


@VERSIONS
def test_client_certificate_from_another_ca_is_rejected(
    rsyslog_factory: Factory, pki_files: TestPKI, tmp_path: Path, priority: str | None
) -> None:
    receiver = rsyslog_factory(
        "tls", pki=pki_files, authmode="x509/certvalid", priority_string=priority
    )
    other = TestPKI.create(tmp_path / "other", ca_name="some other CA")
    error = refused(tls_server(receiver.port, pki_files), client_settings(other))
    assert (error.step, error.cause) == ("tls", "client-certificate-rejected")
    assert "rejected the client certificate" in error.message


def test_server_offering_only_tls_1_1(rsyslog_factory: Factory, pki_files: TestPKI) -> None:
    receiver = rsyslog_factory("tls", pki=pki_files, priority_string=TLS11_ONLY)
    error = refused(tls_server(receiver.port, pki_files))
    assert (error.step, error.cause) == ("tls", "protocol-version")
    assert "TLS 1.2" in error.message


def test_connection_refused() -> None:
    port = free_port("127.0.0.1", "tcp")
    error = refused(ServerSettings("127.0.0.1", port))
    assert (error.step, error.cause) == ("connect", "refused")
    assert str(port) in error.message


def test_unresolvable_name_is_a_dns_error() -> None:
    # A label longer than 63 characters fails in the local resolver code: no query leaves.
    error = refused(ServerSettings("a" * 64 + ".example", 6514))
    assert (error.step, error.cause) == ("dns", "dns")


def test_handshake_timeout_against_a_plain_tcp_port(rsyslog_factory: Factory) -> None:
    receiver = rsyslog_factory("tcp")
    with pytest.raises(TransportError) as caught:
        connect(
            ServerSettings("127.0.0.1", receiver.port),
            ClientSettings(),
            timeouts=Timeouts(2, 0.5, 5),
        )
    assert (caught.value.step, caught.value.cause) == ("tls", "timeout")


def test_send_to_a_killed_receiver_fails_with_step_send(
    rsyslog_factory: Factory, pki_files: TestPKI
) -> None:
    receiver = rsyslog_factory("tls", pki=pki_files)
    sender = connect(tls_server(receiver.port, pki_files), ClientSettings())
    receiver.kill()
    wire, lengths = octet_counted(messages(2000, "dead"))
    with pytest.raises(TransportError) as caught:
        for _ in range(100):  # the first writes may still land in the kernel's buffers
            sender.send(wire, lengths)
            time.sleep(0.02)
    assert caught.value.step == "send"
    assert caught.value.cause in ("connection-lost", "send-failed")
    sender.close()


def test_ipv6_loopback(rsyslog_factory: Factory, pki_files: TestPKI) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        free_port("::1", "tcp")
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    receiver = rsyslog_factory("tls", pki=pki_files, host="::1")
    sender = connect(tls_server(receiver.port, pki_files, name="::1"), ClientSettings())
    assert sender.info.peer_address == f"[::1]:{receiver.port}"
    assert sender.info.server.startswith("[::1]:")
    wire, lengths = octet_counted(messages(3, "v6"))
    send_all(sender, wire, lengths)
    assert len(receiver.wait_for_lines(3)) == 3


def test_write_timeout_when_the_peer_stops_reading() -> None:
    # A listener that never accepts: the kernel completes the handshake, then its buffers fill.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        port = listener.getsockname()[1]
        sender = connect(
            ServerSettings("127.0.0.1", port, no_encryption=True),
            ClientSettings(),
            timeouts=Timeouts(2, 2, 0.5),
        )
        blob = b"x" * (64 * 1024 * 1024)
        started = time.monotonic()
        with pytest.raises(TransportError) as caught:
            sender.send(blob, [len(blob)])
        assert (caught.value.step, caught.value.cause) == ("send", "timeout")
        assert time.monotonic() - started < 30
        assert sender.unacknowledged_bytes() > 0
        sender.close(timeout=0.2)


def test_keepalive_is_on(rsyslog_factory: Factory, pki_files: TestPKI) -> None:
    receiver = rsyslog_factory("tls", pki=pki_files)
    sender = connect(tls_server(receiver.port, pki_files), ClientSettings())
    sock: socket.socket = sender._sock  # type: ignore[attr-defined]
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 10
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
    sender.close()


def test_a_late_client_certificate_verdict_surfaces_at_send(
    rsyslog_factory: Factory,
    pki_files: TestPKI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """TLS 1.3: without the post-handshake wait, the refusal shows at the first writes; it
    must still be explained as a client certificate problem."""
    monkeypatch.setattr(
        "azs_syslog.transport.connecting._await_client_certificate_verdict", lambda sock: None
    )
    receiver = rsyslog_factory("tls", pki=pki_files, authmode="x509/certvalid")
    other = TestPKI.create(tmp_path / "other", ca_name="some other CA")
    wire, lengths = octet_counted(messages(100, "late"))
    for client, cause in (
        (ClientSettings(), "client-certificate-required"),
        (client_settings(other), "client-certificate-rejected"),
    ):
        with pytest.raises(TransportError) as caught:
            sender = connect(tls_server(receiver.port, pki_files), client)
            for _ in range(50):
                sender.send(wire, lengths)
                time.sleep(0.02)
        assert (caught.value.step, caught.value.cause) == ("send", cause)
    assert receiver.lines() == []


def test_a_connection_reset_as_soon_as_it_is_opened_is_explained() -> None:
    """A server being killed can accept and reset at once; the socket is then no longer
    connected and ``getpeername`` fails with ENOTCONN: a lost connection, not an OSError."""
    from azs_syslog.transport.base import connected_peer

    listener = socket.create_server(("127.0.0.1", 0))
    raw = socket.create_connection(listener.getsockname(), timeout=5)
    accepted, _ = listener.accept()
    accepted.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    accepted.close()  # an RST
    listener.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the RST reaches the client socket
        try:
            raw.recv(1)
        except OSError:
            break
    with pytest.raises(TransportError) as caught:
        connected_peer(raw, "127.0.0.1:1 tcp")
    assert (caught.value.step, caught.value.cause) == ("connect", "connection-lost")
    assert "closed the connection as soon as it was opened" in caught.value.message
    assert raw.fileno() == -1  # closed
