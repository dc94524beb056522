"""What a failed handshake means, for an operator: ``explain_handshake_error`` turns an
exception of the handshake (or of the first read after it) into a ``TransportError`` with a
cause, a message and a fix.

Python's ``ssl`` does not say whether the server asked for a client certificate, nor show the
certificates it sent when verification failed. ``recorder`` is hung on the context's private
``_msg_callback`` to collect both in a ``HandshakeRecord``; ``certificates_from_message``
parses the Certificate handshake message it keeps. When a failure needs the server's
certificate anyway, ``fetch_peer_certificate`` gets it with a second, unverified handshake
(nothing is sent over it).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azs_syslog.errors import TransportError
from azs_syslog.transport.tls.names import sni_name, summarize

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


def recorder(record: HandshakeRecord) -> Callable[..., None]:
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


def reason_text(exc: BaseException) -> str:
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
            f"{server_name} rejected the client certificate ({reason_text(exc)}): it does not "
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
        f"the TLS handshake with {server_name} failed: {reason_text(exc)}",
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
