"""PKCS#12 import and CA bundle checks (azs_syslog.config.certs), without the command line."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from azs_syslog.config import certs
from azs_syslog.errors import CertificateError
from azs_syslog.lab import pki
from tests.test_certs_helpers import PASSWORD, Lab


@pytest.fixture(scope="module")
def lab() -> Lab:
    return Lab()


def test_good_pfx_gives_chain_key_and_windows_thumbprint(lab: Lab) -> None:
    leaf = lab.client()
    bundle = certs.import_pfx(leaf.to_pfx(PASSWORD.encode()), PASSWORD)
    expected = leaf.cert.fingerprint(hashes.SHA1()).hex().upper()
    assert bundle.thumbprint == expected
    assert len(bundle.thumbprint) == 40
    assert bundle.thumbprint == bundle.thumbprint.upper()
    assert bundle.subject == "CN=syslog-client.example.com"
    assert bundle.issuer == "CN=azs-syslog test issuing CA"
    chain = x509.load_pem_x509_certificates(bundle.chain_pem)
    assert [c.subject for c in chain] == [
        leaf.cert.subject,
        lab.intermediate.cert.subject,
        lab.root.cert.subject,
    ]
    key = serialization.load_pem_private_key(bundle.key_pem, None)
    assert key.public_key() == leaf.cert.public_key()
    assert bundle.warnings == ()
    assert PASSWORD not in repr(bundle)
    assert "PRIVATE" not in repr(bundle)


def test_unencrypted_pfx_opens_with_empty_password(lab: Lab) -> None:
    bundle = certs.import_pfx(lab.client().to_pfx(None), "")
    assert bundle.thumbprint


@pytest.mark.parametrize(
    ("make", "password", "cause"),
    [
        ("good_pfx", "not the password", "the PFX password is wrong"),
        ("no_key_pfx", PASSWORD, "holds no private key"),
        ("mismatched_key_pfx", PASSWORD, "does not match its certificate"),
        ("expired_pfx", PASSWORD, "expired on"),
        ("not_yet_valid_pfx", PASSWORD, "is not valid yet"),
        ("server_only_eku_pfx", PASSWORD, "does not allow client authentication"),
        ("ca_only_pfx", PASSWORD, "holds no client certificate"),
    ],
)
def test_bad_pfx_is_refused_naming_the_cause(
    lab: Lab, make: str, password: str, cause: str
) -> None:
    data = getattr(lab, make)()
    with pytest.raises(CertificateError) as info:
        certs.import_pfx(data, password)
    assert cause in str(info.value)
    assert "\n" not in str(info.value)


def test_wrong_password_error_is_one_line_without_fix(lab: Lab) -> None:
    with pytest.raises(CertificateError) as info:
        certs.import_pfx(lab.good_pfx(), "wrong")
    assert str(info.value) == "the PFX password is wrong (or the file is not a PKCS#12 bundle)"
    assert info.value.fix is None


def test_not_a_pfx_and_empty_data(lab: Lab) -> None:
    with pytest.raises(CertificateError, match="not a PFX"):
        certs.import_pfx(b"this is not DER at all", PASSWORD)
    with pytest.raises(CertificateError, match="empty"):
        certs.import_pfx(b"", PASSWORD)
    with pytest.raises(CertificateError, match="too large"):
        certs.import_pfx(b"\0" * (certs.MAX_PFX_BYTES + 1), PASSWORD)


def test_eku_absent_or_any_is_accepted(lab: Lab) -> None:
    assert certs.import_pfx(lab.no_eku_pfx(), PASSWORD).thumbprint
    assert certs.import_pfx(lab.any_eku_pfx(), PASSWORD).thumbprint


def test_expiring_within_30_days_is_accepted_with_a_warning(lab: Lab) -> None:
    bundle = certs.import_pfx(lab.expiring_soon_pfx(), PASSWORD)
    assert len(bundle.warnings) == 1
    assert (
        "expires in 9 day(s)" in bundle.warnings[0]
        or "expires in 10 day(s)" in (bundle.warnings[0])
    )


def test_root_ca_chaining(lab: Lab) -> None:
    good = lab.good_pfx()
    bundle = certs.import_pfx(good, PASSWORD, root_ca=lab.root_pem(), root_ca_source="root.pem")
    assert bundle.thumbprint
    # The intermediate itself is an acceptable anchor.
    certs.import_pfx(good, PASSWORD, root_ca=lab.intermediate.cert_pem())
    with pytest.raises(CertificateError) as info:
        certs.import_pfx(good, PASSWORD, root_ca=lab.other_root_pem(), root_ca_source="other.pem")
    assert "does not chain to the root CA in other.pem" in str(info.value)
    assert "CN=some other root" in str(info.value)


def test_root_ca_needs_the_intermediate_in_the_pfx(lab: Lab) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    leaf = lab.client()
    without_chain = pkcs12.serialize_key_and_certificates(
        b"x", leaf.key, leaf.cert, None, serialization.BestAvailableEncryption(PASSWORD.encode())
    )
    with pytest.raises(CertificateError, match="does not chain"):
        certs.import_pfx(without_chain, PASSWORD, root_ca=lab.root_pem())


def test_root_ca_file_must_hold_a_certificate(lab: Lab) -> None:
    with pytest.raises(CertificateError, match="not a certificate"):
        certs.import_pfx(lab.good_pfx(), PASSWORD, root_ca=b"garbage", root_ca_source="r.pem")


def test_unrelated_certificates_in_the_pfx_are_dropped_with_a_warning(lab: Lab) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    leaf = lab.client()
    data = pkcs12.serialize_key_and_certificates(
        b"x",
        leaf.key,
        leaf.cert,
        [lab.other_root.cert, *leaf.chain],
        serialization.BestAvailableEncryption(PASSWORD.encode()),
    )
    bundle = certs.import_pfx(data, PASSWORD)
    assert len(x509.load_pem_x509_certificates(bundle.chain_pem)) == 3
    assert any("not part of" in w for w in bundle.warnings)


def test_check_ca_bundle(lab: Lab) -> None:
    key_pem = lab.root.key_pem()
    pem, warnings = certs.check_ca_bundle(
        lab.root.cert_pem() + key_pem + lab.intermediate.cert_pem(), "ca.pem"
    )
    assert warnings == ()
    assert b"PRIVATE KEY" not in pem  # only the certificates are kept
    assert len(x509.load_pem_x509_certificates(pem)) == 2
    # DER is accepted too.
    der = lab.root.cert.public_bytes(serialization.Encoding.DER)
    assert x509.load_pem_x509_certificates(certs.check_ca_bundle(der, "ca.der")[0])
    # A self-signed server certificate can be pinned as its own anchor.
    self_signed = pki.make_ca("self")
    assert certs.check_ca_bundle(self_signed.cert_pem(), "s.pem")[0]


def test_check_ca_bundle_refuses_leaf_and_garbage(lab: Lab) -> None:
    with pytest.raises(CertificateError, match="is not a CA certificate"):
        certs.check_ca_bundle(lab.client().cert_pem(), "leaf.pem")
    with pytest.raises(CertificateError, match="no readable PEM"):
        certs.check_ca_bundle(b"-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n", "x")
    with pytest.raises(CertificateError, match="neither PEM nor DER"):
        certs.check_ca_bundle(b"hello", "x")


def test_check_ca_bundle_warns_about_an_expired_ca(lab: Lab) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=4000)
    _, warnings = certs.check_ca_bundle(lab.root.cert_pem(), "ca.pem", now=later)
    assert len(warnings) == 1
    assert "expired" in warnings[0]
