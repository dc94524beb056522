"""The configuration model: typed, frozen settings dataclasses and the security levels.

``Config.server is None`` means "not configured" (forwarding stops). What makes a model valid
is in ``azs_syslog.config.rules``; how it is written down, in ``codec`` and ``store``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from azs_syslog.config.vocabulary import (
    CONFIG_VERSION,
    DEFAULT_FACILITY,
    DEFAULT_FAILOVER_AFTER,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_UDP_RATE,
    CefVersion,
    ConfigFraming,
    MessageFormat,
    OutputSeverity,
)


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
    message_format: MessageFormat = "rfc3164"
    framing: ConfigFraming = "octet-counting"
    facility: int = DEFAULT_FACILITY
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    cef_version: CefVersion = "0"
    udp_rate: int = DEFAULT_UDP_RATE  # UDP only
    # RELP (application-level acknowledgement) over TCP, or over TLS unless no_encryption.
    use_relp: bool = False
    # Add MasEventDataNames to Windows events (off: the Azure Stack Hub format exactly).
    event_data_names: bool = False
    # Opt-in additions (docs/operations.md, "Proving that nothing is missing"): a sequence
    # number on every queued message, and a heartbeat every so many seconds (0: none).
    sequence_numbers: bool = False
    heartbeat_interval: int = 0
    # A second server, reached with the same transport and trust, used after ``failover_after``
    # seconds of failed connections to the first (both or neither of name and port).
    failover_server_name: str | None = None
    failover_server_port: int | None = None
    failover_after: int = DEFAULT_FAILOVER_AFTER

    @property
    def has_failover(self) -> bool:
        return self.failover_server_name is not None and self.failover_server_port is not None

    def failover_settings(self) -> ServerSettings:
        """The settings of the failover server: these, with its name and port."""
        assert self.failover_server_name is not None and self.failover_server_port is not None
        return replace(
            self,
            server_name=self.failover_server_name,
            server_port=self.failover_server_port,
            failover_server_name=None,
            failover_server_port=None,
        )

    @property
    def verification(self) -> str:
        """What is verified of the server: ``none`` (no TLS), ``nothing`` (TLS with
        --skip-certificate-check), ``chain`` (--skip-cn-check) or ``chain and name``."""
        if self.transport != "tls":
            return "none"
        if self.skip_certificate_check:
            return "nothing"
        return "chain" if self.skip_cn_check else "chain and name"

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
    output_severity: OutputSeverity = "Default"


# Security levels of a configuration's transport [project]: a batch accepted under one level is
# never sent under a lower one without the operator's consent (``forwarder release-held``).
# A client certificate does not change the level: it proves who we are, not who receives.
LEVEL_CLEAR = 0  # UDP, TCP without encryption, or no server configured
LEVEL_TLS_UNVERIFIED = 1  # TLS with --skip-certificate-check
LEVEL_TLS_VERIFIED = 2  # TLS with the chain verified (with or without the name check)
LEVEL_NAMES = {
    LEVEL_CLEAR: "clear text",
    LEVEL_TLS_UNVERIFIED: "TLS without a certificate check",
    LEVEL_TLS_VERIFIED: "TLS",
}


@dataclass(frozen=True)
class Config:
    version: int = CONFIG_VERSION
    server: ServerSettings | None = None
    client: ClientSettings = field(default_factory=ClientSettings)
    # Incremented by every write (update_config). Not part of equality: two files with the
    # same settings are the same configuration, whatever their generations.
    generation: int = field(default=0, compare=False)

    @property
    def security_level(self) -> int:
        """The security level of the configured transport (``LEVEL_*``)."""
        server = self.server
        if server is None or server.transport != "tls":
            return LEVEL_CLEAR
        if server.skip_certificate_check:
            return LEVEL_TLS_UNVERIFIED
        return LEVEL_TLS_VERIFIED

    def describe_transport(self) -> str:
        """How events leave under this configuration, in a few words (for messages)."""
        server = self.server
        if server is None:
            return "no server"
        if server.transport == "tls":
            return LEVEL_NAMES[self.security_level]
        return server.transport.upper()
