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

The modules: ``context`` (the ``SSLContext``), ``names`` (the name check and what a
certificate shows), ``explain`` (what a failure means); this package re-exports their public
names.
"""

from __future__ import annotations

from azs_syslog.transport.tls.context import ClientContext, client_context
from azs_syslog.transport.tls.explain import (
    SET_CLIENT_FIX,
    HandshakeRecord,
    certificates_from_message,
    explain_handshake_error,
    fetch_peer_certificate,
)
from azs_syslog.transport.tls.names import (
    CertificateNames,
    CertificateSummary,
    certificate_names,
    check_server_name,
    load_der,
    name_matches,
    name_mismatch_error,
    sni_name,
    summarize,
)

__all__ = [
    "SET_CLIENT_FIX",
    "CertificateNames",
    "CertificateSummary",
    "ClientContext",
    "HandshakeRecord",
    "certificate_names",
    "certificates_from_message",
    "check_server_name",
    "client_context",
    "explain_handshake_error",
    "fetch_peer_certificate",
    "load_der",
    "name_matches",
    "name_mismatch_error",
    "sni_name",
    "summarize",
]
