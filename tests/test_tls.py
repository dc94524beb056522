"""The server name rule (RFC 5425 section 5.2 / RFC 6125) and the TLS helpers."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from azs_syslog import config
from azs_syslog.config import ClientCertificate, ClientSettings, ServerSettings
from azs_syslog.errors import TransportError
from azs_syslog.lab import pki
from azs_syslog.transport import tls

SAN = tls.CertificateNames


@pytest.mark.parametrize(
    ("name", "names", "expected"),
    [
        ("syslog.example.com", SAN(dns_names=("syslog.example.com",), has_san=True), True),
        ("SysLog.Example.COM.", SAN(dns_names=("syslog.example.com",), has_san=True), True),
        ("other.example.com", SAN(dns_names=("syslog.example.com",), has_san=True), False),
        # wildcards: only the whole left-most label, exactly one label, never a public-ish suffix
        ("a.example.com", SAN(dns_names=("*.example.com",), has_san=True), True),
        ("example.com", SAN(dns_names=("*.example.com",), has_san=True), False),
        ("a.b.example.com", SAN(dns_names=("*.example.com",), has_san=True), False),
        ("a.com", SAN(dns_names=("*.com",), has_san=True), False),
        ("foo.example.com", SAN(dns_names=("f*.example.com",), has_san=True), False),
        ("a.b.example.com", SAN(dns_names=("a.*.example.com",), has_san=True), False),
        # IP literals: iPAddress entries only
        ("127.0.0.1", SAN(ip_addresses=("127.0.0.1",), has_san=True), True),
        ("127.0.0.1", SAN(dns_names=("127.0.0.1",), has_san=True), False),
        ("127.0.0.1", SAN(common_names=("127.0.0.1",)), False),
        ("::1", SAN(ip_addresses=("0:0:0:0:0:0:0:1",), has_san=True), True),
        ("[::1]", SAN(ip_addresses=("::1",), has_san=True), True),
        ("10.0.0.1", SAN(dns_names=("*.0.0.1",), has_san=True), False),
        # the CN counts only when there is no subjectAltName at all
        ("syslog.example.com", SAN(common_names=("syslog.example.com",)), True),
        (
            "syslog.example.com",
            SAN(ip_addresses=("10.0.0.1",), common_names=("syslog.example.com",), has_san=True),
            False,
        ),
        ("a.example.com", SAN(common_names=("*.example.com",)), True),
        ("", SAN(common_names=("",)), False),
    ],
)
def test_name_rule(name: str, names: tls.CertificateNames, expected: bool) -> None:
    assert tls.name_matches(name, names) is expected


def test_names_read_from_real_certificates() -> None:
    ca = pki.make_ca()
    with_san = pki.issue(ca, "cn.example.com", dns_names=("a.example.com",), ip_addresses=("::1",))
    der = with_san.cert.public_bytes(serialization.Encoding.DER)
    names = tls.certificate_names(tls.load_der(der))
    assert names == SAN(("a.example.com",), ("::1",), ("cn.example.com",), has_san=True)
    assert names.presented() == ["a.example.com", "::1"]
    tls.check_server_name("a.example.com", der)
    with pytest.raises(TransportError) as caught:
        tls.check_server_name("cn.example.com", der)
    assert caught.value.cause == "name-mismatch"
    assert "a.example.com, ::1" in caught.value.message

    cn_only = pki.issue(ca, "cn.example.com")
    der = cn_only.cert.public_bytes(serialization.Encoding.DER)
    tls.check_server_name("cn.example.com", der)
    summary = tls.summarize(der)
    assert summary.subject == "CN=cn.example.com"
    assert summary.names.presented() == ["cn.example.com"]
    assert not summary.expired and summary.not_after.endswith("Z")


def _certificate_message(ders: list[bytes], *, tls13: bool) -> bytes:
    entries = b""
    for der in ders:
        entries += len(der).to_bytes(3, "big") + der
        if tls13:
            entries += b"\x00\x00"  # no extensions
    body = (b"\x00" if tls13 else b"") + len(entries).to_bytes(3, "big") + entries
    return b"\x0b" + len(body).to_bytes(3, "big") + body


@pytest.mark.parametrize("tls13", [True, False])
def test_chain_parsed_from_the_certificate_message(tls13: bool) -> None:
    ca = pki.make_ca()
    leaf = pki.issue(ca, "localhost")
    ders = [c.public_bytes(serialization.Encoding.DER) for c in (leaf.cert, ca.cert)]
    assert tls.certificates_from_message(_certificate_message(ders, tls13=tls13)) == ders
    assert tls.certificates_from_message(b"\x0b\x00\x00\x05junk!") == []
    assert tls.certificates_from_message(None) == []


def test_sni_only_for_dns_names() -> None:
    assert tls.sni_name("syslog.example.com") == "syslog.example.com"
    assert tls.sni_name("192.0.2.1") is None
    assert tls.sni_name("2001:db8::1") is None


def test_context_rules(tmp_path: Path) -> None:
    ca = pki.make_ca()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.cert_pem())
    client = pki.issue(ca, "client", client=True)
    chain, key = client.write(tmp_path, "client")
    certificate = ClientCertificate("CN=client", "CN=ca", "00", "x", "y", str(chain), str(key))

    strict = tls.client_context(
        ServerSettings("localhost", 6514, trusted_ca=str(ca_file)), ClientSettings(certificate)
    )
    ctx = strict.context
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is False  # our own rule runs after the handshake
    assert strict.record.client_certificate_configured

    loose = tls.client_context(
        ServerSettings("localhost", 6514, skip_certificate_check=True), ClientSettings()
    )
    assert loose.context.verify_mode == ssl.CERT_NONE
    assert loose.context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_unreadable_files_are_explained(tmp_path: Path) -> None:
    with pytest.raises(TransportError) as caught:
        tls.client_context(
            ServerSettings("localhost", 6514, trusted_ca=str(tmp_path / "missing.pem")),
            ClientSettings(),
        )
    assert (caught.value.step, caught.value.cause) == ("tls", "trusted-ca-unreadable")
    missing = ClientCertificate("s", "i", "t", "a", "b", str(tmp_path / "c"), str(tmp_path / "k"))
    with pytest.raises(TransportError) as caught:
        tls.client_context(ServerSettings("localhost", 6514), ClientSettings(missing))
    assert (caught.value.step, caught.value.cause) == ("tls", "client-certificate-unreadable")
    assert "set-syslog-client" in (caught.value.fix or "")


LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
# A DNS name, never an IP address ("0.0.0.0" is all digits and dots): an address is matched
# against the certificate's IP addresses only (RFC 6125), tested apart.
NAME = (
    st.lists(LABEL, min_size=2, max_size=5)
    .map(".".join)
    .filter(lambda n: not config.is_ip_address(n))
)


@given(NAME, NAME)
def test_name_rule_properties(name: str, other: str) -> None:
    assert tls.name_matches(name, SAN(dns_names=(name,), has_san=True))
    assert tls.name_matches(name.upper() + ".", SAN(dns_names=(name,), has_san=True))
    assert tls.name_matches(name, SAN(dns_names=(other,), has_san=True)) is (name == other)
    # a wildcard stands for exactly the left-most label
    wildcard = "*." + name.split(".", 1)[1]
    expected = name.count(".") >= 2
    assert tls.name_matches(name, SAN(dns_names=(wildcard,), has_san=True)) is expected
    assert not tls.name_matches("x." + name, SAN(dns_names=(wildcard,), has_san=True))
