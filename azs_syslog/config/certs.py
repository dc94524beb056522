"""Client certificates (PKCS#12 / PFX import and its checks, SPEC section 3) and CA bundles.

Everything here works on bytes in memory and raises ``CertificateError`` naming the cause;
storing the result is ``install_client_certificate``, which goes through ``config`` (locked,
atomic, mode 0600). Passwords are used once to open the PFX and never kept, logged or shown.
This module imports cryptography, so only the commands that handle certificates import it.
"""

from __future__ import annotations

import datetime as dt
import pathlib
from dataclasses import dataclass, field, replace

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from azs_syslog import paths
from azs_syslog.config.model import ClientCertificate, Config
from azs_syslog.config.store import load_config, stale_client_files, update_config
from azs_syslog.config.vocabulary import EXPIRY_WARNING_DAYS, OutputSeverity
from azs_syslog.errors import CertificateError

MAX_PFX_BYTES = 1024 * 1024  # a PFX is a few KiB; anything this big is not one
MAX_CA_BUNDLE_BYTES = 4 * 1024 * 1024

_EXPORT_FIX = (
    "export the certificate again as a PFX that includes its private key "
    "(Windows: Export-PfxCertificate; OpenSSL: openssl pkcs12 -export -inkey KEY -in CERT)"
)


@dataclass(frozen=True)
class ClientBundle:
    """A checked client certificate, ready to store. The key is never shown in a repr."""

    subject: str
    issuer: str
    thumbprint: str
    not_before: dt.datetime
    not_after: dt.datetime
    chain_pem: bytes  # the certificate first, then its issuers towards the root
    key_pem: bytes = field(repr=False)
    warnings: tuple[str, ...] = ()


def thumbprint(cert: x509.Certificate) -> str:
    """SHA-1 of the DER encoding, upper-case hex without separators, as Windows shows it."""
    # SHA-1 here is an identifier (what operators compare with certmgr), not a security check.
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):  # name, key type or signature
        return False
    return True


def _public_key_der(key: object) -> bytes:
    public_key = key.public_key()  # type: ignore[attr-defined]
    der: bytes = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def load_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    """One or more certificates from PEM (or a single DER certificate)."""
    if len(data) > MAX_CA_BUNDLE_BYTES:
        raise CertificateError(f"{source} is too large to be a certificate file")
    if b"-----BEGIN" in data:
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise CertificateError(
                f"{source} holds no readable PEM certificate",
                fix="give a file with one or more '-----BEGIN CERTIFICATE-----' blocks",
            ) from None
    else:
        try:
            certificates = [x509.load_der_x509_certificate(data)]
        except ValueError:
            raise CertificateError(
                f"{source} is not a certificate (neither PEM nor DER)",
                fix="give a file with one or more '-----BEGIN CERTIFICATE-----' blocks",
            ) from None
    return certificates


def check_ca_bundle(
    data: bytes, source: str, *, now: dt.datetime | None = None
) -> tuple[bytes, tuple[str, ...]]:
    """Check a ``--trusted-ca`` file: every certificate must be a CA (or self-signed).

    Returns the bundle as clean PEM (certificates only: anything else in the file, such as a
    private key, is not copied) and warnings (an expired CA).
    """
    moment = now or dt.datetime.now(dt.UTC)
    warnings: list[str] = []
    pem = b""
    for cert in load_certificates(data, source):
        if not _is_ca(cert) and cert.issuer != cert.subject:
            raise CertificateError(
                f"{describe(cert)} in {source} is not a CA certificate",
                fix="give the certificate of the CA that issued the server's certificate",
            )
        if cert.not_valid_after_utc < moment:
            warnings.append(
                f"the CA {describe(cert)} in {source} expired on "
                f"{rfc3339(cert.not_valid_after_utc)}; certificates it issued will not verify"
            )
        pem += cert.public_bytes(serialization.Encoding.PEM)
    return pem, tuple(warnings)


def _open_pfx(
    data: bytes, password: str
) -> tuple[object | None, x509.Certificate | None, list[x509.Certificate]]:
    if not data:
        raise CertificateError("the PFX is empty", fix=_EXPORT_FIX)
    if len(data) > MAX_PFX_BYTES:
        raise CertificateError("the data is too large to be a PFX (PKCS#12) bundle")
    try:
        key, cert, others = pkcs12.load_key_and_certificates(data, password.encode())
    except ValueError as exc:
        if "password" in str(exc).lower():
            # One line, no fix: the message is the fix (another password, or another file).
            raise CertificateError(
                "the PFX password is wrong (or the file is not a PKCS#12 bundle)"
            ) from None
        raise CertificateError("the data is not a PFX (PKCS#12) bundle", fix=_EXPORT_FIX) from None
    return key, cert, list(others)


def _order_chain(leaf: x509.Certificate, others: list[x509.Certificate]) -> list[x509.Certificate]:
    """The leaf, then each issuer found in ``others``, towards the root."""
    chain = [leaf]
    remaining = list(others)
    while remaining:
        current = chain[-1]
        if current.issuer == current.subject:
            break  # reached a root
        issuer = next((c for c in remaining if _issued_by(current, c)), None)
        if issuer is None:
            break
        chain.append(issuer)
        remaining.remove(issuer)
    return chain


def _check_chains_to_root(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    roots: list[x509.Certificate],
    source: str,
    moment: dt.datetime,
) -> None:
    from cryptography.x509 import verification

    # Client certificates often have no subjectAltName and issuing CAs vary in their extensions:
    # check the path (signatures, validity, CA constraints), not the web PKI's profile.
    ca_policy = verification.ExtensionPolicy.permit_all().require_present(
        x509.BasicConstraints, verification.Criticality.AGNOSTIC, None
    )
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store(roots))
        .time(moment.replace(tzinfo=None))
        .extension_policies(
            ca_policy=ca_policy, ee_policy=verification.ExtensionPolicy.permit_all()
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, intermediates)
    except verification.VerificationError as exc:
        names = "; ".join(describe(root) for root in roots)
        detail = str(exc)
        reason = "" if "candidates exhausted" in detail else f" ({detail.split(' (')[0]})"
        raise CertificateError(
            f"the client certificate does not chain to the root CA in {source} ({names}){reason}",
            fix="use a client certificate issued under the root provided at deployment, and "
            "include its intermediate CAs in the PFX",
        ) from None


def import_pfx(
    data: bytes,
    password: str,
    *,
    root_ca: bytes | None = None,
    root_ca_source: str = "the root CA file",
    now: dt.datetime | None = None,
) -> ClientBundle:
    """Open and check a PFX; raise ``CertificateError`` naming the first problem found.

    Checks: the password, a private key that matches the certificate, the validity period,
    an extended key usage (when present) that allows client authentication and, with
    ``root_ca``, a chain to that root. Expiry within 30 days is a warning, not an error.
    """
    moment = now or dt.datetime.now(dt.UTC)
    key, cert, others = _open_pfx(data, password)
    if cert is None:
        # Some tools write the certificate without the local key id that pairs it with the
        # key; take the end-entity certificate among the rest.
        leaves = [c for c in others if not _is_ca(c)]
        if not leaves:
            raise CertificateError("the PFX holds no client certificate", fix=_EXPORT_FIX)
        cert = leaves[0]
        others = [c for c in others if c is not cert]
    if key is None:
        raise CertificateError("the PFX holds no private key", fix=_EXPORT_FIX)
    if _public_key_der(key) != _public_key_der(cert):
        raise CertificateError(
            f"the private key in the PFX does not match its certificate ({describe(cert)})",
            fix=_EXPORT_FIX,
        )
    if cert.not_valid_before_utc > moment:
        raise CertificateError(
            f"the client certificate ({describe(cert)}) is not valid yet: it is valid from "
            f"{rfc3339(cert.not_valid_before_utc)}",
            fix="check this machine's clock, or use a certificate that is valid now",
        )
    if cert.not_valid_after_utc < moment:
        raise CertificateError(
            f"the client certificate ({describe(cert)}) expired on "
            f"{rfc3339(cert.not_valid_after_utc)}",
            fix="renew the certificate and import the new PFX",
        )
    try:
        usages = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usages = []  # no EKU extension: any usage is allowed
    if usages and not {
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    } & set(usages):
        names = ", ".join(getattr(u, "_name", u.dotted_string) for u in usages)
        raise CertificateError(
            f"the certificate's extended key usage ({names}) does not allow client authentication",
            fix="use a certificate issued with the clientAuth (1.3.6.1.5.5.7.3.2) usage",
        )
    chain = _order_chain(cert, others)
    if root_ca is not None:
        roots = load_certificates(root_ca, root_ca_source)
        _check_chains_to_root(cert, others, roots, root_ca_source, moment)

    warnings: list[str] = []
    left = cert.not_valid_after_utc - moment
    if left < dt.timedelta(days=EXPIRY_WARNING_DAYS):
        warnings.append(
            f"the client certificate expires in {left.days} day(s), on "
            f"{rfc3339(cert.not_valid_after_utc)}; renew it soon"
        )
    if len(chain) < len(others) + 1:
        warnings.append(
            f"{len(others) + 1 - len(chain)} certificate(s) in the PFX are not part of the "
            "client certificate's chain and were not stored"
        )
    key_pem = key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return ClientBundle(
        subject=describe(cert),
        issuer=cert.issuer.rfc4514_string(),
        thumbprint=thumbprint(cert),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        chain_pem=b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain),
        key_pem=key_pem,
        warnings=tuple(warnings),
    )


def _already_installed(bundle: ClientBundle) -> bool:
    """Whether the configured client certificate is this one, its pair holding these bytes."""
    current = load_config().client.certificate
    if current is None or current.thumbprint != bundle.thumbprint:
        return False
    try:
        return (
            pathlib.Path(current.chain_file).read_bytes() == bundle.chain_pem
            and pathlib.Path(current.key_file).read_bytes() == bundle.key_pem
        )
    except (OSError, TypeError):
        return False


def install_client_certificate(
    bundle: ClientBundle, *, output_severity: OutputSeverity | None = None
) -> Config:
    """Store the chain and key (mode 0600) as a new pair and record it in the configuration.

    The pair is written under names of its own before the configuration, and the one atomic
    write of the configuration switches to it: a reader that loads the pair the configuration
    names never sees the new key next to the old chain. Pairs no longer named are removed
    afterwards (the previous one at the next change: see ``config.stale_client_files``)."""
    import secrets

    if _already_installed(bundle):
        # The same certificate again (a pipeline re-running its script): no new pair, so the
        # configuration is unchanged unless the severity is (and nothing is audited).
        def keep(old: Config) -> Config:
            if output_severity is None:
                return old
            return replace(old, client=replace(old.client, output_severity=output_severity))

        return update_config(keep)
    chain_path, key_path = paths.client_pair_files(bundle.thumbprint, secrets.token_hex(4))
    stored = ClientCertificate(
        subject=bundle.subject,
        issuer=bundle.issuer,
        thumbprint=bundle.thumbprint,
        not_before=rfc3339(bundle.not_before),
        not_after=rfc3339(bundle.not_after),
        chain_file=str(chain_path),
        key_file=str(key_path),
    )

    def change(old: Config) -> Config:
        client = replace(old.client, certificate=stored)
        if output_severity is not None:
            client = replace(client, output_severity=output_severity)
        return replace(old, client=client)

    return update_config(
        change,
        write_files={key_path: bundle.key_pem, chain_path: bundle.chain_pem},
        cleanup=lambda old, new: stale_client_files(new, old),
    )
