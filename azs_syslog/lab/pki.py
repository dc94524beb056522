"""A throwaway certificate authority: CA, server and client certificates, PKCS#12 bundles.

Used by ``azs-syslog demo`` and by the tests (which always generate their certificates at run
time). Keys are EC P-256: fast to generate, accepted by OpenSSL, rsyslog and Python's ssl.
Nothing here is meant for production certificates.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Issued:
    """A certificate, its private key and the chain above it (issuer first, root last)."""

    cert: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def chain_pem(self) -> bytes:
        """The certificate followed by its chain, PEM."""
        return b"".join(
            c.public_bytes(serialization.Encoding.PEM) for c in (self.cert, *self.chain)
        )

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        """Write ``<stem>.pem`` (certificate + chain) and ``<stem>-key.pem`` (mode 0600)."""
        cert_path = directory / f"{stem}.pem"
        key_path = directory / f"{stem}-key.pem"
        cert_path.write_bytes(self.chain_pem())
        key_path.touch(mode=0o600)
        key_path.write_bytes(self.key_pem())
        return cert_path, key_path

    def to_pfx(self, password: bytes | None, *, include_key: bool = True) -> bytes:
        """A PKCS#12 bundle of the certificate, its chain and (normally) its key."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return pkcs12.serialize_key_and_certificates(
            name=b"azs-syslog",
            key=self.key if include_key else None,
            cert=self.cert,
            cas=list(self.chain) or None,
            encryption_algorithm=encryption,
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


# What a CA key is for: signing certificates and CRLs (and signatures); nothing else.
_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_cert_sign=True,
    crl_sign=True,
    **dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement"), False
    ),
    encipher_only=False,  # both only mean something with key_agreement
    decipher_only=False,
)


def _builder(
    common_name: str,
    issuer: x509.Name | None,
    key: PrivateKey,
    start: dt.datetime,
    end: dt.datetime,
    *,
    ca: bool,
) -> x509.CertificateBuilder:
    """What every certificate here has: its names (no ``issuer``: self-signed), its key, a
    random serial number, its validity and whether it is a CA."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )


def make_ca(
    common_name: str = "azs-syslog test CA",
    *,
    days: int = 30,
    issuer: Issued | None = None,
) -> Issued:
    """A CA certificate: self-signed (a root) or, with ``issuer``, an intermediate."""
    key = new_key()
    now = _now()
    builder = (
        _builder(
            common_name,
            issuer.cert.subject if issuer else None,
            key,
            now - dt.timedelta(minutes=5),
            now + dt.timedelta(days=days),
            ca=True,
        )
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    signer = issuer.key if issuer else key
    cert = builder.sign(signer, hashes.SHA256())
    chain = (issuer.cert, *issuer.chain) if issuer else ()
    return Issued(cert, key, chain)


def issue(
    ca: Issued,
    common_name: str,
    *,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    server: bool = False,
    client: bool = False,
    eku: tuple[x509.ObjectIdentifier, ...] | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    days: int = 30,
) -> Issued:
    """A leaf certificate signed by ``ca``.

    ``server`` / ``client`` add the serverAuth / clientAuth extended key usages; ``eku`` sets
    them explicitly instead (an empty tuple leaves the extension out). With neither names nor
    addresses the certificate has no subjectAltName, so verifiers fall back to the CN.
    """
    key = new_key()
    now = _now()
    start = not_before or now - dt.timedelta(minutes=5)
    end = not_after or now + dt.timedelta(days=days)
    builder = _builder(common_name, ca.cert.subject, key, start, end, ca=False).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
    )
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    usages: tuple[x509.ObjectIdentifier, ...]
    if eku is not None:
        usages = eku
    else:
        usages = ((ExtendedKeyUsageOID.SERVER_AUTH,) if server else ()) + (
            (ExtendedKeyUsageOID.CLIENT_AUTH,) if client else ()
        )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    return Issued(cert, key, (ca.cert, *ca.chain))
