"""The worker's look at certificate ends: the client certificate the configuration names, the
server's certificates from each connection; warnings logged once a UTC day."""

from __future__ import annotations

import time

from azs_syslog.config import ServerSettings
from azs_syslog.errors import TransportError
from azs_syslog.forwarder import expiry as ex
from azs_syslog.forwarder.base import WorkerBase
from azs_syslog.forwarder.common import server_label
from azs_syslog.forwarder.snapshot import CertificateEnd, Certificates
from azs_syslog.transport import ConnectionInfo


class CertificateWatch(WorkerBase):
    def _check_client_certificate(self) -> None:
        """Read the end of the client certificate the configuration names (the pair a
        connection presents): at every connection attempt and configuration change."""
        certificate = self.config.client.certificate if self.config is not None else None
        found = ex.client_expiry(certificate, self.now_ms()) if certificate is not None else None
        if found is None:
            self.expiries.pop(ex.CLIENT, None)
        else:
            self.expiries[ex.CLIENT] = found

    def _check_server_certificates(self, info: ConnectionInfo, server: ServerSettings) -> None:
        found = ex.server_expiries(info, self.now_ms())
        self._expiry_server = server_label(server)
        for role in (ex.SERVER, ex.SERVER_CHAIN):
            self.expiries.pop(role, None)
        for item in found:
            self.expiries[item.role] = item
        self._log_expiry_warnings()

    def expiry_warnings(self, now: float | None = None) -> list[str]:
        moment = self.wall() if now is None else now
        warnings = []
        for item in self.expiries.values():
            text = item.warning(moment)
            if text is not None:
                warnings.append(text)
        return warnings

    def _log_expiry_warnings(self) -> None:
        """Say each certificate warning in the log once per UTC day (and again when it
        changes: a new certificate, or one that has just expired)."""
        moment = self.wall()
        day = time.strftime("%Y-%m-%d", time.gmtime(moment))
        for item in self.expiries.values():
            text = item.warning(moment)
            if text is None:
                continue
            key = f"{item.role}|{item.subject}|{item.not_after}|{item.expired(moment)}"
            if self._expiry_logged.get(key) != day:
                self._expiry_logged[key] = day
                self.log(("error: " if item.expired(moment) else "warning: ") + text)

    def _with_expired_client(self, exc: TransportError) -> TransportError:
        """A failed connection while the client certificate has expired: most likely the
        reason (a server refuses an expired certificate); say so, with the fix."""
        client = self.expiries.get(ex.CLIENT)
        if client is None or not client.expired(self.wall()):
            return exc
        if (
            self.config is None
            or self.config.server is None
            or self.config.server.transport != "tls"
        ):
            return exc
        if exc.cause in ("client-certificate-rejected", "client-certificate-required"):
            message = (
                f"the server refused the client certificate: it expired on {client.not_after}"
                f" ({client.subject}, thumbprint {client.thumbprint})"
            )
        elif exc.step == "tls":
            message = f"{exc.message} (the client certificate expired on {client.not_after})"
        else:
            return exc  # not a TLS problem: the certificate is not what failed
        return TransportError(
            message,
            step=exc.step,
            cause="client-certificate-expired",
            fix=ex.CLIENT_FIX,
        )

    def _certificates_status(self) -> Certificates:
        moment = self.wall()

        def end(role: str) -> CertificateEnd | None:
            found = self.expiries.get(role)
            return None if found is None else found.end(moment)

        return Certificates(
            end(ex.CLIENT),
            end(ex.SERVER),
            end(ex.SERVER_CHAIN),
            ex.EXPIRY_WARNING_DAYS,
            tuple(self.expiry_warnings(moment)),
        )
