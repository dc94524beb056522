"""Certificate expiry as the worker sees it: the client certificate it presents and the
certificates the server presented, checked at every connection, reported in the status file
(and so in ``forwarder status`` and the metrics) and warned about from
``EXPIRY_WARNING_DAYS`` days before the end.

Days left are whole days, rounded down: a certificate that ends in 10 days and 3 hours has 10
days left; one that ended an hour ago has -1.
"""

from __future__ import annotations

import calendar
import math
import time
from dataclasses import dataclass
from pathlib import Path

from azs_syslog.config import EXPIRY_WARNING_DAYS as EXPIRY_WARNING_DAYS
from azs_syslog.config import ClientCertificate
from azs_syslog.forwarder.snapshot import CertificateEnd
from azs_syslog.transport import ConnectionInfo

CLIENT = "client"
SERVER = "server"
SERVER_CHAIN = "server chain"

CLIENT_FIX = "import a renewed certificate: azs-syslog set-syslog-client --pfx-file NEW.pfx"
SERVER_FIX = "have the server's certificate (or the CA that issued it) renewed on the server"


def parse_rfc3339(text: str | None) -> float | None:
    """Seconds since the epoch of ``YYYY-MM-DDTHH:MM:SSZ``; None when it is not that."""
    if not text:
        return None
    try:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


@dataclass(frozen=True)
class Expiry:
    """One certificate's end of validity."""

    role: str  # CLIENT, SERVER or SERVER_CHAIN
    subject: str
    not_after: str  # RFC 3339, UTC
    not_after_s: float
    checked_ms: int
    thumbprint: str | None = None

    def days_left(self, now: float) -> int:
        return math.floor((self.not_after_s - now) / 86400)

    def expired(self, now: float) -> bool:
        return now >= self.not_after_s

    def warning(self, now: float) -> str | None:
        """The one line to say, or None while more than ``EXPIRY_WARNING_DAYS`` days are left."""
        days = self.days_left(now)
        if days >= EXPIRY_WARNING_DAYS:
            return None
        what = {
            CLIENT: "the client certificate",
            SERVER: "the server's certificate",
            SERVER_CHAIN: "a certificate in the server's chain",
        }.get(self.role, self.role)
        name = self.subject + (f", thumbprint {self.thumbprint}" if self.thumbprint else "")
        fix = CLIENT_FIX if self.role == CLIENT else SERVER_FIX
        if self.expired(now):
            refused = (
                "the server may refuse the connection"
                if self.role == CLIENT
                else "the certificate check fails"
            )
            return f"{what} ({name}) expired on {self.not_after}: {refused}; fix: {fix}"
        return (
            f"{what} ({name}) expires in {days} day{'' if days == 1 else 's'}, on"
            f" {self.not_after}; fix: {fix}"
        )

    def end(self, now: float) -> CertificateEnd:
        """For the status: the end, and the days left at ``now``."""
        return CertificateEnd(
            self.subject,
            self.thumbprint,
            self.not_after,
            self.not_after_s,
            self.days_left(now),
            self.expired(now),
            self.checked_ms,
        )


def client_expiry(certificate: ClientCertificate, checked_ms: int) -> Expiry | None:
    """The client certificate's end, read from the chain file the configuration names (the
    file the connection presents); the configuration's record of it when the file cannot be
    read (the connection then reports that problem itself)."""
    not_after = certificate.not_after
    subject = certificate.subject
    try:
        from cryptography import x509

        with Path(certificate.chain_file).open("rb") as handle:
            leaf = x509.load_pem_x509_certificate(handle.read())
        moment = leaf.not_valid_after_utc
        not_after = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        subject = leaf.subject.rfc4514_string() or subject
    except (OSError, ValueError):
        pass
    seconds = parse_rfc3339(not_after)
    if seconds is None:
        return None
    return Expiry(CLIENT, subject, not_after, seconds, checked_ms, certificate.thumbprint)


def server_expiries(info: ConnectionInfo, checked_ms: int) -> list[Expiry]:
    """The server's certificate and the first of its chain to expire, from a connection's
    ``ConnectionInfo`` (nothing for a connection without TLS)."""
    found: list[Expiry] = []
    for role, subject, not_after in (
        (SERVER, info.server_subject, info.server_not_after),
        (SERVER_CHAIN, info.server_chain_first_subject, info.server_chain_first_not_after),
    ):
        seconds = parse_rfc3339(not_after if isinstance(not_after, str) else None)
        if seconds is not None and isinstance(not_after, str):
            found.append(Expiry(role, str(subject or "?"), not_after, seconds, checked_ms))
    return found
