"""The server-name rule of RFC 5425 section 5.2 / RFC 6125, and what a certificate shows.

The configured name is checked here rather than by OpenSSL (``check_hostname`` is off): against
the subjectAltName dNSName entries (a DNS name) or iPAddress entries (an IP literal); the
subject CN only when the certificate has no subjectAltName extension at all; a wildcard only as
the whole left-most label of a name with at least three labels. See the package docstring for
why OpenSSL's own check is not used.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from azs_syslog.config import is_ip_address
from azs_syslog.errors import TransportError

if TYPE_CHECKING:
    from cryptography import x509


def sni_name(server_name: str) -> str | None:
    """The name for SNI (and OpenSSL's ``server_hostname``): DNS names only."""
    return None if is_ip_address(server_name.strip("[]")) else server_name


# -- certificates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateNames:
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    common_names: tuple[str, ...] = ()
    has_san: bool = False

    def presented(self) -> list[str]:
        """The names a verifier considers: the SAN entries, or the CN when there is no SAN."""
        if self.has_san:
            return [*self.dns_names, *self.ip_addresses]
        return list(self.common_names)


@dataclass(frozen=True)
class CertificateSummary:
    subject: str
    issuer: str
    not_before: str  # RFC 3339, UTC
    not_after: str
    expired: bool
    not_yet_valid: bool
    names: CertificateNames


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_der(der: bytes) -> x509.Certificate:
    from cryptography import x509

    return x509.load_der_x509_certificate(der)


def certificate_names(cert: x509.Certificate) -> CertificateNames:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    common_names = tuple(
        str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    )
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return CertificateNames(common_names=common_names)
    dns = tuple(san.get_values_for_type(x509.DNSName))
    ips = tuple(str(a) for a in san.get_values_for_type(x509.IPAddress))
    return CertificateNames(dns, ips, common_names, has_san=True)


def summarize(der: bytes) -> CertificateSummary:
    cert = load_der(der)
    now = dt.datetime.now(dt.UTC)
    return CertificateSummary(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=_rfc3339(cert.not_valid_before_utc),
        not_after=_rfc3339(cert.not_valid_after_utc),
        expired=cert.not_valid_after_utc < now,
        not_yet_valid=cert.not_valid_before_utc > now,
        names=certificate_names(cert),
    )


# -- the name check -----------------------------------------------------------------------------


def name_matches(server_name: str, names: CertificateNames) -> bool:
    """RFC 5425 section 5.2 / RFC 6125: see the module docstring."""
    literal = server_name.strip("[]")
    try:
        address = ipaddress.ip_address(literal)
    except ValueError:
        address = None
    if address is not None:
        for candidate in names.ip_addresses:
            try:
                if ipaddress.ip_address(candidate) == address:
                    return True
            except ValueError:
                continue
        return False
    host = _normalize(server_name)
    if not host:
        return False
    candidates = names.dns_names if names.has_san else names.common_names
    return any(_dns_name_matches(pattern, host) for pattern in candidates)


def _normalize(name: str) -> str:
    name = name.rstrip(".").lower()
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return name


def _dns_name_matches(pattern: str, host: str) -> bool:
    pattern = pattern.rstrip(".").lower()
    pattern_labels = pattern.split(".")
    host_labels = host.split(".")
    if len(pattern_labels) != len(host_labels) or not all(host_labels):
        return False
    first, rest = pattern_labels[0], pattern_labels[1:]
    if any("*" in label or not label for label in rest):
        return False
    if first == "*":
        return len(pattern_labels) >= 3 and rest == host_labels[1:]
    if "*" in first:
        return False  # partial wildcards (f*.example.com) are not honoured
    return pattern_labels == host_labels


def check_server_name(server_name: str, der: bytes) -> None:
    """Raise ``TransportError(step="verify", cause="name-mismatch")`` unless the name matches."""
    names = certificate_names(load_der(der))
    if name_matches(server_name, names):
        return
    raise name_mismatch_error(server_name, names)


def name_mismatch_error(server_name: str, names: CertificateNames) -> TransportError:
    presented = names.presented()
    shown = ", ".join(presented) if presented else "no names at all"
    source = "its subjectAltName" if names.has_san else "its subject CN (it has no subjectAltName)"
    fix = (
        "connect by a name the certificate holds (set-syslog-server --server-name NAME), or "
        f"re-issue the server certificate with a subjectAltName for {server_name}"
    )
    if is_ip_address(server_name.strip("[]")):
        fix += (
            "; for a server given by IP address, set-syslog-server --skip-cn-check verifies "
            "the chain but not the name"
        )
    return TransportError(
        f"the server certificate is not valid for {server_name!r}: {source} holds {shown}",
        step="verify",
        cause="name-mismatch",
        fix=fix,
    )
