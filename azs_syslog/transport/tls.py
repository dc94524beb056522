"""TLS for the syslog client: the ``SSLContext``, the server name check, and what a failure means.

Rules (SPEC section 2):

* TLS 1.2 at least (1.3 when both sides offer it); never plain text instead.
* Trust: the system store plus the ``--trusted-ca`` bundle. Any certificate in that bundle is
  an anchor (``VERIFY_X509_PARTIAL_CHAIN``), so an operator may trust an intermediate CA or
  the server's own self-signed certificate **[project]**.
* Name check, done here rather than by OpenSSL (``check_hostname`` is off): the configured name
  against the subjectAltName dNSName entries (a DNS name) or iPAddress entries (an IP literal);
  the subject CN only when the certificate has no subjectAltName extension at all; a wildcard
  only as the whole left-most label of a name with at least three labels. OpenSSL differs in
  two ways we do not want: it falls back to the CN whenever no SAN entry *of the checked type*
  exists (a certificate with only IP SANs would match a DNS name through its CN), and it never
  matches an IP literal without an iPAddress SAN. The check runs right after the handshake,
  before a single byte of data is written; on a mismatch the connection is closed.
* ``skip_cn_check``: the chain is verified, the name is not. ``skip_certificate_check``:
  nothing is verified, the connection is still encrypted.
* The client certificate is loaded whenever one is configured.

The failure explanations need the server's certificate even when it was refused; they fetch it
with a second, unverified handshake (nothing is sent over it).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azs_syslog.errors import TransportError

if TYPE_CHECKING:
    from cryptography import x509

    from azs_syslog.config import ClientSettings, ServerSettings

_HANDSHAKE = 22
_CERTIFICATE = 11
_CERTIFICATE_REQUEST = 13

# OpenSSL verify codes (X509_V_ERR_*).
_EXPIRED = 10
_NOT_YET_VALID = 9
_UNKNOWN_ISSUER = frozenset({2, 18, 19, 20, 21})

_PROTOCOL_REASONS = frozenset(
    {
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "UNSUPPORTED_PROTOCOL",
        "NO_PROTOCOLS_AVAILABLE",
        "UNKNOWN_PROTOCOL",
        "VERSION_TOO_LOW",
        "NO_CIPHERS_AVAILABLE",
        "SSLV3_ALERT_HANDSHAKE_FAILURE_PROTOCOL",
    }
)
_CLIENT_CERT_REJECTED_REASONS = frozenset(
    {
        "TLSV1_ALERT_UNKNOWN_CA",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "TLSV1_ALERT_ACCESS_DENIED",
        "TLSV1_ALERT_DECRYPT_ERROR",
    }
)

SET_CLIENT_FIX = (
    "import the client certificate the server expects: "
    "azs-syslog set-syslog-client --pfx-file CLIENT.pfx"
)


@dataclass
class HandshakeRecord:
    """What the handshake showed, collected by OpenSSL's message callback."""

    certificate_requested: bool = False
    server_certificate_message: bytes | None = None
    client_certificate_configured: bool = False

    @property
    def client_certificate_sent(self) -> bool:
        return self.certificate_requested and self.client_certificate_configured


@dataclass
class ClientContext:
    """An ``SSLContext`` for one connection and the record of its handshake."""

    context: ssl.SSLContext
    record: HandshakeRecord = field(default_factory=HandshakeRecord)

    def stop_recording(self) -> None:
        """Detach the message callback: after the handshake it would only cost time per record."""
        self.context._msg_callback = None  # type: ignore[attr-defined]


def _recorder(record: HandshakeRecord) -> Callable[..., None]:
    def on_message(
        conn: Any, direction: str, version: Any, content_type: int, msg_type: int, data: bytes
    ) -> None:
        if content_type != _HANDSHAKE or direction != "read":
            return
        if msg_type == _CERTIFICATE_REQUEST:
            record.certificate_requested = True
        elif msg_type == _CERTIFICATE and record.server_certificate_message is None:
            record.server_certificate_message = bytes(data)

    return on_message


def client_context(server: ServerSettings, client: ClientSettings) -> ClientContext:
    """The context for a connection to ``server``: trust, minimum version, client certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False  # the name is checked by check_server_name(), see above
    if server.skip_certificate_check:
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        ctx.load_default_certs()
        if server.trusted_ca:
            try:
                ctx.load_verify_locations(cafile=server.trusted_ca)
            except (OSError, ssl.SSLError) as exc:
                raise TransportError(
                    f"the trusted CA file {server.trusted_ca} cannot be read: {_reason(exc)}",
                    step="tls",
                    cause="trusted-ca-unreadable",
                    fix="give the CA bundle again: "
                    "azs-syslog set-syslog-server ... --trusted-ca CA.pem",
                ) from exc
    result = ClientContext(ctx)
    certificate = client.certificate
    if certificate is not None:
        try:
            ctx.load_cert_chain(certificate.chain_file, certificate.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(
                f"the stored client certificate cannot be loaded: {_reason(exc)}",
                step="tls",
                cause="client-certificate-unreadable",
                fix="import it again: azs-syslog set-syslog-client --pfx-file CLIENT.pfx",
            ) from exc
        result.record.client_certificate_configured = True
    ctx._msg_callback = _recorder(result.record)  # type: ignore[attr-defined]
    return result


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def sni_name(server_name: str) -> str | None:
    """The name for SNI (and OpenSSL's ``server_hostname``): DNS names only."""
    return None if is_ip_literal(server_name) else server_name


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


def certificates_from_message(message: bytes | None) -> list[bytes]:
    """The DER certificates of a TLS 1.2 or 1.3 Certificate handshake message (best effort)."""
    if not message or len(message) < 4 or message[0] != _CERTIFICATE:
        return []
    body = message[4:]
    for tls13 in (True, False):
        certs = _parse_certificate_list(body, tls13)
        if certs:
            return certs
    return []


def _parse_certificate_list(body: bytes, tls13: bool) -> list[bytes]:
    pos = 0
    if tls13:
        if not body:
            return []
        pos = 1 + body[0]  # certificate_request_context
    if pos + 3 > len(body):
        return []
    end = pos + 3 + int.from_bytes(body[pos : pos + 3], "big")
    if end != len(body):
        return []
    pos += 3
    certs: list[bytes] = []
    while pos < end:
        if pos + 3 > end:
            return []
        size = int.from_bytes(body[pos : pos + 3], "big")
        pos += 3
        if pos + size > end or size == 0:
            return []
        certs.append(body[pos : pos + size])
        pos += size
        if tls13:
            if pos + 2 > end:
                return []
            pos += 2 + int.from_bytes(body[pos : pos + 2], "big")
    return certs if pos == end else []


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
    if is_ip_literal(server_name):
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


# -- explaining failures ------------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return str(exc.verify_message)
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    return str(exc) or type(exc).__name__


def fetch_peer_certificate(
    address: tuple[Any, ...], family: int, server_name: str, timeout: float
) -> bytes | None:
    """The server's certificate from an unverified handshake (for explanations only)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.socket(family, socket.SOCK_STREAM) as raw:
            raw.settimeout(timeout)
            raw.connect(address)
            with ctx.wrap_socket(raw, server_hostname=sni_name(server_name)) as tls:
                return tls.getpeercert(binary_form=True)
    except (OSError, ValueError):
        return None


def explain_handshake_error(
    exc: BaseException,
    *,
    server_name: str,
    record: HandshakeRecord,
    peer_certificate: Callable[[], bytes | None],
) -> TransportError:
    """Turn an exception of the handshake (or of the first read after it) into an operator's
    ``TransportError``. ``peer_certificate`` fetches the server's certificate when needed."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _explain_verification(exc, server_name, peer_certificate)
    reason = exc.reason if isinstance(exc, ssl.SSLError) else None
    reason = str(reason or "")
    if isinstance(exc, TimeoutError) or "TIMED OUT" in str(exc).upper():
        return TransportError(
            f"the TLS handshake with {server_name} timed out",
            step="tls",
            cause="timeout",
            fix="check that the server speaks TLS on this port and is not overloaded",
        )
    if reason in _PROTOCOL_REASONS or "PROTOCOL_VERSION" in reason:
        return TransportError(
            f"{server_name} and azs-syslog have no TLS version in common: azs-syslog requires "
            "TLS 1.2 or newer and the server offers only an older one",
            step="tls",
            cause="protocol-version",
            fix="enable TLS 1.2 (or 1.3) on the syslog server; older versions are not accepted",
        )
    if reason == "WRONG_VERSION_NUMBER" or reason == "RECORD_LAYER_FAILURE":
        return TransportError(
            f"{server_name} did not answer with TLS: this port probably takes plain syslog",
            step="tls",
            cause="not-tls",
            fix="use the server's TLS port, or set-syslog-server --no-encryption for a plain "
            "TCP port (not for production)",
        )
    configured = record.client_certificate_configured
    demanded = reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED" or record.certificate_requested
    if demanded and not configured:
        return TransportError(
            f"{server_name} requires a client certificate (mutual TLS) and none is configured",
            step="tls",
            cause="client-certificate-required",
            fix=SET_CLIENT_FIX,
        )
    refused = reason in _CLIENT_CERT_REJECTED_REASONS or _closed_by_peer(exc)
    if record.client_certificate_sent and refused:
        return TransportError(
            f"{server_name} rejected the client certificate ({_reason(exc)}): it does not "
            "trust the CA that issued it, or the certificate is expired or lacks clientAuth",
            step="tls",
            cause="client-certificate-rejected",
            fix="import a client certificate issued by a CA the server trusts: "
            "azs-syslog set-syslog-client --pfx-file CLIENT.pfx",
        )
    if _closed_by_peer(exc):
        return TransportError(
            f"{server_name} closed the connection during the TLS handshake",
            step="tls",
            cause="handshake-closed",
            fix="look at the syslog server's log for why it refused the handshake",
        )
    return TransportError(
        f"the TLS handshake with {server_name} failed: {_reason(exc)}",
        step="tls",
        cause="handshake-failed",
        fix="look at the syslog server's log for why it refused the handshake",
    )


def _closed_by_peer(exc: BaseException) -> bool:
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError)):
        return True
    reason = getattr(exc, "reason", None)
    return reason in ("UNEXPECTED_EOF_WHILE_READING", "EOF") or isinstance(exc, EOFError)


def _explain_verification(
    exc: ssl.SSLCertVerificationError,
    server_name: str,
    peer_certificate: Callable[[], bytes | None],
) -> TransportError:
    code = exc.verify_code
    der = peer_certificate()
    summary = summarize(der) if der else None
    about = (
        f" (subject {summary.subject}, issued by {summary.issuer}, valid "
        f"{summary.not_before} to {summary.not_after})"
        if summary
        else ""
    )
    if code == _EXPIRED:
        which = (
            "the server certificate"
            if summary is None or summary.expired
            else "a CA certificate in the server's chain"
        )
        return TransportError(
            f"{which} has expired{about}",
            step="verify",
            cause="expired",
            fix="renew the syslog server's certificate (check the clocks of both machines too)",
        )
    if code == _NOT_YET_VALID:
        return TransportError(
            f"the server certificate is not valid yet{about}",
            step="verify",
            cause="not-yet-valid",
            fix="check the clocks of both machines",
        )
    if code in _UNKNOWN_ISSUER:
        return TransportError(
            f"the server certificate is not trusted: it does not chain to a trusted CA{about}",
            step="verify",
            cause="unknown-ca",
            fix="give the CA that issued the server's certificate: "
            "azs-syslog set-syslog-server --server-name ... --server-port ... "
            "--trusted-ca ISSUING-CA.pem",
        )
    return TransportError(
        f"the server certificate failed verification: {exc.verify_message}{about}",
        step="verify",
        cause="untrusted",
        fix="fix the server's certificate chain, "
        "or give its CA with set-syslog-server --trusted-ca",
    )
