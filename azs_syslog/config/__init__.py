"""The persisted configuration: what ``set-syslog-server`` / ``set-syslog-client`` write and the
forwarder worker reads.

CONTRACT (shared by every part of the package; change only with care):
* ``Config``, ``ServerSettings``, ``ClientSettings``, ``ClientCertificate`` are frozen
  dataclasses. ``Config.server is None`` means "not configured" (forwarding stops).
* ``load_config()`` returns the current ``Config`` (an empty one when no file exists) or raises
  ``ConfigError`` naming the file and the field.
* ``update_config(change)`` reads, applies ``change(old) -> new``, validates and writes the file
  atomically under an exclusive lock; on any error the file is left untouched.
* Every successful write increments ``Config.generation`` (a file without one is generation 0).
  Producers record the generation each queued batch was rendered for; the worker uses it to
  tell a batch rendered for a newer configuration than its own (docs/architecture.md).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from azs_syslog import paths
from azs_syslog.config.facility import FACILITIES as FACILITIES
from azs_syslog.config.facility import facility_name as facility_name
from azs_syslog.config.facility import parse_facility as parse_facility
from azs_syslog.errors import ConfigError

CONFIG_VERSION = 1

MESSAGE_FORMATS = ("rfc3164", "rfc5424")
FRAMINGS = ("octet-counting", "lf")
OUTPUT_SEVERITIES = ("Default", "Verbose")
CEF_VERSIONS = ("0", "0.0")
DEFAULT_FACILITY = 10  # authpriv
DEFAULT_MAX_MESSAGE_SIZE = 8192
EXPIRY_WARNING_DAYS = 30  # a client certificate closer to its end than this is warned about
# RFC 3164 / RFC 5424: every receiver must accept 480 octets; above 64 KiB - 1 a message stops
# being a syslog message anyone accepts. A UDP datagram carries at most 65507 bytes over IPv4.
MIN_MESSAGE_SIZE = 480
MAX_MESSAGE_SIZE = 65535
MAX_UDP_MESSAGE_SIZE = 65507
# UDP pacing, in datagrams (events) a second; 0 sends as fast as the socket takes them. UDP has
# no flow control: a receiver that falls behind drops datagrams in its kernel buffer, unseen.
# The default is what a stock rsyslog on loopback (default receive buffer) absorbs without loss,
# with a margin (docs/operations.md, "UDP pacing").
DEFAULT_UDP_RATE = 2000
MAX_UDP_RATE = 1_000_000
MAX_HEARTBEAT_INTERVAL = 86400
# Failover: seconds of failed connections to the primary server before the forwarder delivers
# to the failover server (docs/operations.md, "Failover"). Long enough that a server restart
# or a short network blip does not split the event stream between two receivers.
DEFAULT_FAILOVER_AFTER = 60
MAX_FAILOVER_AFTER = 86400


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


# ---------------------------------------------------------------------------------------------
# Validation of single values (shared by the CLI, which validates before writing, and the loader)


def is_ip_address(name: str) -> bool:
    """True when ``name`` is an IPv4 or IPv6 literal (no brackets)."""
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def normalize_server_name(name: str) -> str:
    """Return ``name`` as stored, or raise ``ValueError`` saying what is wrong with it.

    Accepted: an RFC 1123 host name (a trailing dot is dropped) or an IPv4 / IPv6 literal
    (``[::1]`` is accepted and stored as ``::1``).
    """
    value = name.strip()
    if value.startswith("[") and value.endswith("]"):
        inner = value[1:-1]
        if ":" in inner and is_ip_address(inner):
            return inner
        raise ValueError(f"{name!r} is not an IPv6 address")
    if is_ip_address(value):
        return value
    if not value:
        raise ValueError("the server name is empty")
    host = value[:-1] if value.endswith(".") else value
    if len(host) > 253:
        raise ValueError(f"{name!r} is longer than 253 characters")
    labels = host.split(".")
    for label in labels:
        if not label:
            raise ValueError(f"{name!r} has an empty label")
        if len(label) > 63:
            raise ValueError(f"{name!r} has a label longer than 63 characters")
        if not all(c.isascii() and (c.isalnum() or c == "-") for c in label):
            raise ValueError(
                f"{name!r} is neither a host name (letters, digits, '-' and '.') nor an IP address"
            )
        if label.startswith("-") or label.endswith("-"):
            raise ValueError(f"{name!r} has a label that starts or ends with '-'")
    if labels[-1].isdigit():
        # 10.0.0.256 or 10.0.0: all-numeric names are mistyped addresses, not host names.
        raise ValueError(f"{name!r} is not a valid IPv4 address")
    return host


class Conflict(NamedTuple):
    """Two settings that contradict each other; ``why`` and ``fix`` are templates over the two
    names (options on the command line, properties in the file)."""

    first: str
    second: str
    why: str
    fix: str
    # Refused in a configuration file too. The rules about --skip-certificate-check are not:
    # files written before they existed may hold both settings, which then mean what
    # --skip-certificate-check says (nothing verified), and a forwarder must not stop on them.
    in_file: bool = True


# Settings that contradict each other, in one place: set-syslog-server refuses them as a usage
# error naming both options, and check_server refuses a file holding them naming the field.
_TLS_ONLY_WHY = "{second} applies only to TLS, and {first} turns encryption off"
_TLS_ONLY_FIX = "drop {second}, or drop {first} to send over TLS"
SERVER_CONFLICTS: tuple[Conflict, ...] = (
    *(
        Conflict(plain, tls_only, _TLS_ONLY_WHY, _TLS_ONLY_FIX)
        for plain in ("UseUDP", "NoEncryption")
        for tls_only in ("SkipCertificateCheck", "SkipCNCheck", "TrustedCA")
    ),
    Conflict(
        "UseUDP",
        "UseRELP",
        "RELP runs over TCP (or TLS) and needs the answers {first} cannot carry",
        "drop {first} for RELP, or {second} for UDP",
    ),
    Conflict(
        "UseUDP",
        "FailoverServerName",
        "UDP has no connection that could fail, so the failover server would never be used",
        "drop {first} to send over TLS (or TCP), or drop the failover server",
    ),
    Conflict(
        "SkipCertificateCheck",
        "TrustedCA",
        "{first} verifies no certificate, so the CA given with {second} would never be used",
        "to verify the server against that CA, drop {first}; to verify nothing, drop {second}",
        in_file=False,
    ),
    Conflict(
        "SkipCertificateCheck",
        "SkipCNCheck",
        "{first} skips every check of the server's certificate, the name check of {second} "
        "included",
        "to verify the chain but not the name, drop {first}; to verify nothing, drop {second}",
        in_file=False,
    ),
)
# The option of each property, for the command line's words.
SERVER_OPTIONS = {
    "UseUDP": "--use-udp",
    "NoEncryption": "--no-encryption",
    "SkipCertificateCheck": "--skip-certificate-check",
    "SkipCNCheck": "--skip-cn-check",
    "TrustedCA": "--trusted-ca",
    "UseRELP": "--use-relp",
    "FailoverServerName": "--failover-server-name",
}


def server_conflict(given: Mapping[str, object], *, in_file: bool = False) -> Conflict | None:
    """The first rule of ``SERVER_CONFLICTS`` that the settings ``given`` (property -> value,
    truthy when set) break, or None; ``in_file``: only the rules a file is held to."""
    for rule in SERVER_CONFLICTS:
        if in_file and not rule.in_file:
            continue
        if given.get(rule.first) and given.get(rule.second):
            return rule
    return None


def check_server(server: ServerSettings, *, path: str | None = None) -> None:
    """Raise ``ConfigError`` (field ``server -> Property``) if ``server`` is not consistent."""

    def fail(prop: str, message: str) -> ConfigError:
        return ConfigError(message, path=path, field=f"server -> {prop}")

    try:
        normalized = normalize_server_name(server.server_name)
    except ValueError as exc:
        raise fail("ServerName", str(exc)) from None
    if normalized != server.server_name:
        raise fail("ServerName", f"write {normalized!r}, not {server.server_name!r}")
    if not 1 <= server.server_port <= 65535:
        raise fail("ServerPort", f"{server.server_port} is not a port number (1-65535)")
    conflict = server_conflict(
        {
            "UseUDP": server.use_udp,
            "NoEncryption": server.no_encryption,
            "SkipCertificateCheck": server.skip_certificate_check,
            "SkipCNCheck": server.skip_cn_check,
            "TrustedCA": server.trusted_ca is not None,
            "UseRELP": server.use_relp,
            "FailoverServerName": server.failover_server_name is not None,
        },
        in_file=True,
    )
    if conflict is not None:
        first, second, why = conflict.first, conflict.second, conflict.why
        raise fail(
            second, f"cannot be combined with {first}: " + why.format(first=first, second=second)
        )
    if server.transport != "tls":
        for prop, value in (
            ("SkipCertificateCheck", server.skip_certificate_check),
            ("SkipCNCheck", server.skip_cn_check),
            ("TrustedCA", server.trusted_ca is not None),
        ):
            if value:
                raise fail(prop, f"applies only to TLS, but the transport is {server.transport}")
    if server.message_format not in MESSAGE_FORMATS:
        raise fail("MessageFormat", f"must be one of {', '.join(MESSAGE_FORMATS)}")
    if server.framing not in FRAMINGS:
        raise fail("Framing", f"must be one of {', '.join(FRAMINGS)}")
    if not 0 <= server.facility <= 23:
        raise fail("Facility", f"{server.facility} is out of range (0-23)")
    limit = MAX_UDP_MESSAGE_SIZE if server.use_udp else MAX_MESSAGE_SIZE
    if not MIN_MESSAGE_SIZE <= server.max_message_size <= limit:
        raise fail(
            "MaxMessageSize",
            f"{server.max_message_size} is out of range ({MIN_MESSAGE_SIZE}-{limit} bytes"
            + (" for UDP" if server.use_udp else "")
            + ")",
        )
    if server.cef_version not in CEF_VERSIONS:
        raise fail("CefVersion", f"must be one of {', '.join(CEF_VERSIONS)}")
    if not 0 <= server.udp_rate <= MAX_UDP_RATE:
        raise fail("UdpRate", f"{server.udp_rate} is out of range (0-{MAX_UDP_RATE} events/s)")
    if not 0 <= server.heartbeat_interval <= MAX_HEARTBEAT_INTERVAL:
        raise fail(
            "HeartbeatInterval",
            f"{server.heartbeat_interval} is out of range (0-{MAX_HEARTBEAT_INTERVAL} seconds)",
        )
    _check_failover(server, fail)


def _check_failover(server: ServerSettings, fail: Callable[[str, str], ConfigError]) -> None:
    name, port = server.failover_server_name, server.failover_server_port
    if (name is None) != (port is None):
        missing = "FailoverServerPort" if port is None else "FailoverServerName"
        given = "FailoverServerName" if port is None else "FailoverServerPort"
        raise fail(missing, f"is missing: {given} needs it")
    if name is not None:
        try:
            normalized = normalize_server_name(name)
        except ValueError as exc:
            raise fail("FailoverServerName", str(exc)) from None
        if normalized != name:
            raise fail("FailoverServerName", f"write {normalized!r}, not {name!r}")
    if port is not None and not 1 <= port <= 65535:
        raise fail("FailoverServerPort", f"{port} is not a port number (1-65535)")
    if name == server.server_name and port == server.server_port:
        raise fail("FailoverServerName", "is the primary server itself")
    if not 1 <= server.failover_after <= MAX_FAILOVER_AFTER:
        raise fail(
            "FailoverAfter",
            f"{server.failover_after} is out of range (1-{MAX_FAILOVER_AFTER} seconds)",
        )


def check_client(client: ClientSettings, *, path: str | None = None) -> None:
    """Raise ``ConfigError`` (field ``client -> Property``) if ``client`` is not valid."""
    if client.output_severity not in OUTPUT_SEVERITIES:
        raise ConfigError(
            f"must be one of {', '.join(OUTPUT_SEVERITIES)}",
            path=path,
            field="client -> OutputSeverity",
        )


def check_config(config: Config, *, path: str | None = None) -> None:
    if config.version != CONFIG_VERSION:
        raise ConfigError(
            f"unsupported version {config.version!r} (this azs-syslog reads version "
            f"{CONFIG_VERSION})",
            path=path,
            field="version",
        )
    if config.server is not None:
        check_server(config.server, path=path)
    check_client(config.client, path=path)


# ---------------------------------------------------------------------------------------------
# The file format: JSON, the cmdlet's property names


def server_to_dict(server: ServerSettings) -> dict[str, Any]:
    return {
        "ServerName": server.server_name,
        "ServerPort": server.server_port,
        "NoEncryption": server.no_encryption,
        "SkipCertificateCheck": server.skip_certificate_check,
        "SkipCNCheck": server.skip_cn_check,
        "UseUDP": server.use_udp,
        "TrustedCA": server.trusted_ca,
        "MessageFormat": server.message_format,
        "Framing": server.framing,
        "Facility": server.facility,
        "MaxMessageSize": server.max_message_size,
        "CefVersion": server.cef_version,
        "UdpRate": server.udp_rate,
        "UseRELP": server.use_relp,
        "EventDataNames": server.event_data_names,
        "SequenceNumbers": server.sequence_numbers,
        "HeartbeatInterval": server.heartbeat_interval,
        # Only with a failover server: files (and get-syslog-server) without one keep the
        # shape they had before failover existed.
        **(
            {
                "FailoverServerName": server.failover_server_name,
                "FailoverServerPort": server.failover_server_port,
                "FailoverAfter": server.failover_after,
            }
            if server.has_failover
            else {}
        ),
    }


def certificate_to_dict(cert: ClientCertificate) -> dict[str, Any]:
    return {
        "Subject": cert.subject,
        "Issuer": cert.issuer,
        "Thumbprint": cert.thumbprint,
        "NotBefore": cert.not_before,
        "NotAfter": cert.not_after,
        "ChainFile": cert.chain_file,
        "KeyFile": cert.key_file,
    }


def client_to_dict(client: ClientSettings) -> dict[str, Any]:
    return {
        "Certificate": (
            certificate_to_dict(client.certificate) if client.certificate is not None else None
        ),
        "OutputSeverity": client.output_severity,
    }


def config_to_dict(config: Config) -> dict[str, Any]:
    return {
        "version": config.version,
        "generation": config.generation,
        "server": server_to_dict(config.server) if config.server is not None else None,
        "client": client_to_dict(config.client),
    }


_SERVER_FIELDS: dict[str, tuple[str, type]] = {
    "ServerName": ("server_name", str),
    "ServerPort": ("server_port", int),
    "NoEncryption": ("no_encryption", bool),
    "SkipCertificateCheck": ("skip_certificate_check", bool),
    "SkipCNCheck": ("skip_cn_check", bool),
    "UseUDP": ("use_udp", bool),
    "TrustedCA": ("trusted_ca", str),
    "MessageFormat": ("message_format", str),
    "Framing": ("framing", str),
    "Facility": ("facility", int),
    "MaxMessageSize": ("max_message_size", int),
    "CefVersion": ("cef_version", str),
    "UdpRate": ("udp_rate", int),  # absent in files written before it existed: the default
    "UseRELP": ("use_relp", bool),
    "EventDataNames": ("event_data_names", bool),  # the same
    "SequenceNumbers": ("sequence_numbers", bool),  # likewise
    "HeartbeatInterval": ("heartbeat_interval", int),  # likewise
    # Absent in files written before failover existed: no failover server.
    "FailoverServerName": ("failover_server_name", str),
    "FailoverServerPort": ("failover_server_port", int),
    "FailoverAfter": ("failover_after", int),
}
_REQUIRED_SERVER_FIELDS = ("ServerName", "ServerPort")
_OPTIONAL_NONE = frozenset({"TrustedCA", "FailoverServerName", "FailoverServerPort"})

_CERTIFICATE_FIELDS: dict[str, str] = {
    "Subject": "subject",
    "Issuer": "issuer",
    "Thumbprint": "thumbprint",
    "NotBefore": "not_before",
    "NotAfter": "not_after",
    "ChainFile": "chain_file",
    "KeyFile": "key_file",
}

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false"}


def _object(value: object, where: str, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError("must be a JSON object", path=path, field=where)
    return value


def _typed(value: object, expected: type, where: str, path: str) -> Any:
    # bool is a subclass of int: "ServerPort": true must not pass as 1.
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    raise ConfigError(
        f"must be {_TYPE_NAMES[expected]}, not {json.dumps(value)}", path=path, field=where
    )


def _unknown_keys(data: Mapping[str, Any], known: Iterable[str], where: str, path: str) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        field_name = f"{where} -> {unknown[0]}" if where else unknown[0]
        raise ConfigError("unknown setting", path=path, field=field_name)


def _parse_server(value: object, path: str) -> ServerSettings | None:
    if value is None:
        return None
    data = _object(value, "server", path)
    _unknown_keys(data, _SERVER_FIELDS, "server", path)
    for name in _REQUIRED_SERVER_FIELDS:
        if name not in data:
            raise ConfigError("is missing", path=path, field=f"server -> {name}")
    kwargs: dict[str, Any] = {}
    for name, (attribute, expected) in _SERVER_FIELDS.items():
        if name not in data or (name in _OPTIONAL_NONE and data[name] is None):
            continue
        kwargs[attribute] = _typed(data[name], expected, f"server -> {name}", path)
    return ServerSettings(**kwargs)


def _parse_client(value: object, path: str) -> ClientSettings:
    if value is None:
        return ClientSettings()
    data = _object(value, "client", path)
    _unknown_keys(data, ("Certificate", "OutputSeverity"), "client", path)
    severity = _typed(data.get("OutputSeverity", "Default"), str, "client -> OutputSeverity", path)
    certificate = None
    raw_cert = data.get("Certificate")
    if raw_cert is not None:
        cert_data = _object(raw_cert, "client -> Certificate", path)
        _unknown_keys(cert_data, _CERTIFICATE_FIELDS, "client -> Certificate", path)
        kwargs: dict[str, str] = {}
        for name, attribute in _CERTIFICATE_FIELDS.items():
            where = f"client -> Certificate -> {name}"
            if name not in cert_data:
                raise ConfigError("is missing", path=path, field=where)
            kwargs[attribute] = _typed(cert_data[name], str, where, path)
        certificate = ClientCertificate(**kwargs)
    return ClientSettings(certificate=certificate, output_severity=severity)


def parse_config(text: str | bytes, *, path: str = "<config>") -> Config:
    """Parse and validate the file's contents; ``ConfigError`` names ``path`` and the field."""
    try:
        data = json.loads(text)
    except UnicodeDecodeError:
        raise ConfigError("is not UTF-8 text", path=path, fix=_FIX_BROKEN) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            path=path,
            fix=_FIX_BROKEN,
        ) from None
    try:
        root = _object(data, "(top level)", path)
        if "version" not in root:
            raise ConfigError("is missing", path=path, field="version")
        version = _typed(root["version"], int, "version", path)
        if version != CONFIG_VERSION:
            raise ConfigError(
                f"unsupported version {version} (this azs-syslog reads version {CONFIG_VERSION})",
                path=path,
                field="version",
            )
        _unknown_keys(root, ("version", "generation", "server", "client"), "", path)
        # Files written before generations existed have none: generation 0.
        generation = _typed(root.get("generation", 0), int, "generation", path)
        if generation < 0:
            raise ConfigError(f"{generation} is negative", path=path, field="generation")
        config = Config(
            version=version,
            server=_parse_server(root.get("server"), path),
            client=_parse_client(root.get("client"), path),
            generation=generation,
        )
        check_config(config, path=path)
    except ConfigError as exc:
        exc.fix = exc.fix or _FIX_BROKEN
        raise
    return config


def serialize_config(config: Config) -> bytes:
    return (json.dumps(config_to_dict(config), indent=2) + "\n").encode()


_FIX_BROKEN = (
    "correct that setting in the file, or delete the file and run set-syslog-server / "
    "set-syslog-client again"
)

# ---------------------------------------------------------------------------------------------
# Files: private, atomic, locked

LOCK_TIMEOUT = 30.0  # seconds; a command never waits forever for another one


def write_private_file(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``: mode 0600, in a 0700 directory, fsynced.

    A reader sees either the old file or the new one, never a mix.
    """
    directory = paths.ensure_private_dir(path.parent)
    temporary = directory / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        temporary.replace(path)
    except OSError as exc:
        with suppress(OSError):
            temporary.unlink()
        raise _file_error(path, exc, "write", "cannot be written") from None
    _fsync_directory(directory)


def remove_private_file(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _file_error(path, exc, "remove", "cannot be removed") from None
    _fsync_directory(path.parent)


def _file_error(path: Path, exc: OSError, action: str, what: str) -> ConfigError:
    """A ConfigError for a failed file operation: for a refused permission it names the user,
    the refusing path's owner and mode, and the fix; for a full disk, the fix is space."""
    from azs_syslog import fserrors

    if fserrors.is_permission_error(exc):
        message, fix, _ = fserrors.access_problem(path, action, write=action != "read")
        return ConfigError(message, fix=fix)
    if fserrors.is_disk_full(exc):
        return ConfigError(
            f"{what}: {exc.strerror}", path=str(path), fix=fserrors.disk_full_fix(path)
        )
    return ConfigError(f"{what}: {exc.strerror}", path=str(path))


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def config_lock(timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the exclusive configuration lock (``flock`` on ``paths.config_lock_file()``)."""
    lock_path = paths.config_lock_file()
    paths.ensure_private_dir(lock_path.parent)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise _file_error(lock_path, exc, "open", "cannot be opened") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                if time.monotonic() >= deadline:
                    raise ConfigError(
                        f"another azs-syslog command has held the lock for {timeout:.0f} s",
                        path=str(lock_path),
                        fix="wait for it to finish, then run this command again",
                    ) from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def load_config(path: Path | None = None) -> Config:
    """The current configuration (of ``path``, by default the configuration file); an empty
    one when no file exists."""
    path = path or paths.config_file()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config()
    except PermissionError as exc:
        raise _file_error(path, exc, "read", "cannot be read") from None
    except OSError as exc:
        raise ConfigError(
            f"cannot be read: {exc.strerror}",
            path=str(path),
            fix="check the file's owner and permissions (it should be mode 0600)",
        ) from None
    return parse_config(raw, path=str(path))


# Set by a command that records its changes (the ``set-*`` commands, through
# ``audit.recording``): called under the lock with (old, new) after validation and before
# anything is written, so what it records is durable before the change is. While it is set, a
# change that changes nothing writes nothing (the generation stays).
change_recorder: ContextVar[Callable[[Config, Config], None] | None] = ContextVar(
    "change_recorder", default=None
)


def _companions_unchanged(write_files: Mapping[Path, bytes], remove_files: Iterable[Path]) -> bool:
    """Whether the companion files already hold ``write_files`` and ``remove_files`` are gone."""
    for file_path, data in write_files.items():
        try:
            if file_path.read_bytes() != data:
                return False
        except OSError:
            return False
    return not any(file_path.exists() for file_path in remove_files)


def update_config(
    change: Callable[[Config], Config],
    *,
    write_files: Mapping[Path, bytes] | None = None,
    remove_files: Iterable[Path] = (),
    cleanup: Callable[[Config, Config], Iterable[Path]] | None = None,
) -> Config:
    """Apply ``change`` to the current configuration and save the result, under the lock.

    ``write_files`` (written before the configuration, so it never names a missing file) and
    ``remove_files`` (removed after it, once nothing refers to them) are companion files such
    as the client certificate. Nothing is written if ``change`` or validation fails.
    ``cleanup(old, new)`` names more files to remove after the write, under the same lock
    (so that it sees what a concurrent command wrote before it, never after).

    The written configuration's generation is the old one plus one: under the lock, so two
    writers never produce the same generation.
    """
    record = change_recorder.get()
    remove_files = tuple(remove_files)
    with config_lock():
        old = load_config()
        new = replace(change(old), generation=old.generation + 1)
        check_config(new)
        if record is not None:
            if new == old and _companions_unchanged(write_files or {}, remove_files):
                return old  # nothing to change: nothing written, nothing recorded
            record(old, new)
        for file_path, data in (write_files or {}).items():
            write_private_file(file_path, data)
        write_private_file(paths.config_file(), serialize_config(new))
        for file_path in (*remove_files, *(cleanup(old, new) if cleanup else ())):
            remove_private_file(file_path)
    return new


# ---------------------------------------------------------------------------------------------
# The changes the set-* commands make


def set_server(server: ServerSettings, *, trusted_ca_pem: bytes | None = None) -> Config:
    """Replace the server settings (as Set-SyslogServer does); store the trusted CA bundle.

    Settings not given are back to their defaults; a trusted CA stored earlier is removed
    unless a new one is given.
    """
    ca_path = paths.trusted_ca_file()
    write_files: dict[Path, bytes] = {}
    remove_files: tuple[Path, ...] = ()
    if trusted_ca_pem is not None:
        server = replace(server, trusted_ca=str(ca_path))
        write_files[ca_path] = trusted_ca_pem
    else:
        server = replace(server, trusted_ca=None)
        remove_files = (ca_path,)
    check_server(server)
    return update_config(
        lambda old: replace(old, server=server),
        write_files=write_files,
        remove_files=remove_files,
    )


def remove_server() -> Config:
    """Forget the server (forwarding stops) and the trusted CA stored with it."""
    return update_config(
        lambda old: replace(old, server=None), remove_files=(paths.trusted_ca_file(),)
    )


def set_output_severity(severity: str) -> Config:
    return update_config(
        lambda old: replace(old, client=replace(old.client, output_severity=severity))
    )


def remove_client_certificate(*, output_severity: str | None = None) -> Config:
    """Forget the client certificate and delete its PEM files."""

    def change(old: Config) -> Config:
        client = replace(old.client, certificate=None)
        if output_severity is not None:
            client = replace(client, output_severity=output_severity)
        return replace(old, client=client)

    return update_config(change, cleanup=lambda old, new: stale_client_files(new))


def stale_client_files(new: Config, old: Config | None = None) -> list[Path]:
    """The stored client certificate files that neither ``new`` nor ``old`` names: every pair
    in the pairs' directory and the fixed names of earlier releases. The pair ``old`` names is
    kept until the next change: a worker that read the previous configuration an instant
    before the switch may be loading that pair for a connection."""
    keep: set[Path] = set()
    for config in (new, old):
        cert = config.client.certificate if config is not None else None
        if cert is not None:
            keep.update((Path(cert.chain_file), Path(cert.key_file)))
    candidates = [paths.client_chain_file(), paths.client_key_file()]
    directory = paths.client_certificates_dir()
    try:
        candidates.extend(
            sorted(
                entry
                for entry in directory.iterdir()
                if entry.name.endswith((paths.CLIENT_CHAIN_SUFFIX, paths.CLIENT_KEY_SUFFIX))
            )
        )
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _file_error(directory, exc, "read", "cannot be read") from None
    return [path for path in candidates if path not in keep and path.exists()]
