"""The persisted configuration: what ``set-syslog-server`` / ``set-syslog-client`` write and the
forwarder worker reads.

CONTRACT (shared by every part of the package; change only with care):
* ``Config``, ``ServerSettings``, ``ClientSettings``, ``ClientCertificate`` are frozen
  dataclasses. ``Config.server is None`` means "not configured" (forwarding stops).
* ``load_config()`` returns the current ``Config`` (an empty one when no file exists) or raises
  ``ConfigError`` naming the file and the field.
* ``update_config(change)`` reads, applies ``change(old) -> new``, validates and writes the file
  atomically under an exclusive lock; on any error the file is left untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

CONFIG_VERSION = 1

MESSAGE_FORMATS = ("rfc3164", "rfc5424")
FRAMINGS = ("octet-counting", "lf")
OUTPUT_SEVERITIES = ("Default", "Verbose")
CEF_VERSIONS = ("0", "0.0")
DEFAULT_FACILITY = 10  # authpriv
DEFAULT_MAX_MESSAGE_SIZE = 8192


@dataclass(frozen=True)
class ServerSettings:
    """Mirror of Set-SyslogServer, plus the project additions."""

    server_name: str
    server_port: int
    no_encryption: bool = False
    skip_certificate_check: bool = False
    skip_cn_check: bool = False
    use_udp: bool = False
    # Path of the stored copy of the --trusted-ca bundle (paths.trusted_ca_file()), or None.
    trusted_ca: str | None = None
    message_format: str = "rfc3164"
    framing: str = "octet-counting"
    facility: int = DEFAULT_FACILITY
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    cef_version: str = "0"

    @property
    def transport(self) -> str:
        """``udp``, ``tcp`` (no encryption) or ``tls``."""
        if self.use_udp:
            return "udp"
        if self.no_encryption:
            return "tcp"
        return "tls"


@dataclass(frozen=True)
class ClientCertificate:
    """What is known of the stored client certificate (the PEM files live in paths)."""

    subject: str
    issuer: str
    thumbprint: str  # SHA-1, upper-case hex, as Windows shows it
    not_before: str  # RFC 3339, UTC
    not_after: str  # RFC 3339, UTC
    chain_file: str
    key_file: str


@dataclass(frozen=True)
class ClientSettings:
    """Mirror of Set-SyslogClient."""

    certificate: ClientCertificate | None = None
    output_severity: str = "Default"


@dataclass(frozen=True)
class Config:
    version: int = CONFIG_VERSION
    server: ServerSettings | None = None
    client: ClientSettings = field(default_factory=ClientSettings)


def load_config() -> Config:
    raise NotImplementedError  # implemented by the cmdlet issue (#2)


def update_config(change: Callable[[Config], Config]) -> Config:
    raise NotImplementedError  # implemented by the cmdlet issue (#2)
