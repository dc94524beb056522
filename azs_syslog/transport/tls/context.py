"""The ``SSLContext`` of a connection to the syslog server: TLS 1.2 at least, the trust (the
system store plus ``--trusted-ca``, any certificate in it an anchor), the client certificate
whenever one is configured, and the handshake recorder (see ``explain``)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from azs_syslog.errors import TransportError
from azs_syslog.transport.tls.explain import HandshakeRecord, reason_text, recorder

if TYPE_CHECKING:
    from azs_syslog.config import ClientSettings, ServerSettings


@dataclass
class ClientContext:
    """An ``SSLContext`` for one connection and the record of its handshake."""

    context: ssl.SSLContext
    record: HandshakeRecord = field(default_factory=HandshakeRecord)

    def stop_recording(self) -> None:
        """Detach the message callback: after the handshake it would only cost time per record."""
        self.context._msg_callback = None  # type: ignore[attr-defined]


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
                    f"the trusted CA file {server.trusted_ca} cannot be read: {reason_text(exc)}",
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
                f"the stored client certificate cannot be loaded: {reason_text(exc)}",
                step="tls",
                cause="client-certificate-unreadable",
                fix="import it again: azs-syslog set-syslog-client --pfx-file CLIENT.pfx",
            ) from exc
        result.record.client_certificate_configured = True
    ctx._msg_callback = recorder(result.record)  # type: ignore[attr-defined]
    return result
