"""What makes a configuration valid: server names, the settings that contradict each other,
the ranges of the numbers; and ``build_server``, the one way from given values to valid
``ServerSettings``. Every refusal is a ``ConfigError`` whose field names the property
(``server -> MaxMessageSize``): the loader adds the file, the command line the option.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from azs_syslog.config.model import ClientSettings, Config, ServerSettings
from azs_syslog.config.vocabulary import (
    CEF_VERSIONS,
    CONFIG_FRAMINGS,
    CONFIG_VERSION,
    MAX_FAILOVER_AFTER,
    MAX_HEARTBEAT_INTERVAL,
    MAX_MESSAGE_SIZE,
    MAX_UDP_MESSAGE_SIZE,
    MAX_UDP_RATE,
    MESSAGE_FORMATS,
    MIN_MESSAGE_SIZE,
    OUTPUT_SEVERITIES,
)
from azs_syslog.errors import ConfigError


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
    "ServerName": "--server-name",
    "ServerPort": "--server-port",
    "UseUDP": "--use-udp",
    "NoEncryption": "--no-encryption",
    "SkipCertificateCheck": "--skip-certificate-check",
    "SkipCNCheck": "--skip-cn-check",
    "TrustedCA": "--trusted-ca",
    "UseRELP": "--use-relp",
    "MessageFormat": "--message-format",
    "Framing": "--framing",
    "Facility": "--facility",
    "MaxMessageSize": "--max-message-size",
    "CefVersion": "--cef-version",
    "UdpRate": "--udp-rate",
    "HeartbeatInterval": "--heartbeat-interval",
    "FailoverServerName": "--failover-server-name",
    "FailoverServerPort": "--failover-server-port",
    "FailoverAfter": "--failover-after",
}

_Fail = Callable[[str, str], ConfigError]


def server_conflict(given: Mapping[str, object], *, in_file: bool = False) -> Conflict | None:
    """The first rule of ``SERVER_CONFLICTS`` that the settings ``given`` (property -> value,
    truthy when set) break, or None; ``in_file``: only the rules a file is held to."""
    for rule in SERVER_CONFLICTS:
        if in_file and not rule.in_file:
            continue
        if given.get(rule.first) and given.get(rule.second):
            return rule
    return None


def build_server(given: Mapping[str, Any]) -> ServerSettings:
    """Valid ``ServerSettings`` from ``given`` (attribute -> value; None: the default).

    Names are normalized as stored (``[::1]`` -> ``::1``), the message format and framing
    lower-cased, and UDP implies no encryption. ``ConfigError`` names the property.
    """
    values = {name: value for name, value in given.items() if value is not None}
    for attribute, prop in (
        ("server_name", "ServerName"),
        ("failover_server_name", "FailoverServerName"),
    ):
        if attribute in values:
            try:
                values[attribute] = normalize_server_name(values[attribute])
            except ValueError as exc:
                raise ConfigError(str(exc), field=f"server -> {prop}") from None
    for attribute in ("message_format", "framing"):
        if attribute in values:
            values[attribute] = values[attribute].lower()
    if values.get("use_udp"):
        values["no_encryption"] = True
    server = ServerSettings(**values)
    check_server(server)
    return server


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
    _check_transport(server, fail)
    for prop, valid, message in _value_checks(server):
        if not valid:
            raise fail(prop, message)
    _check_failover(server, fail)


def _check_transport(server: ServerSettings, fail: _Fail) -> None:
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


def _value_checks(server: ServerSettings) -> tuple[tuple[str, bool, str], ...]:
    """(property, valid, why not) of each single value, in the order they are reported."""

    def in_range(value: int, low: int, high: int, unit: str = "") -> tuple[bool, str]:
        return low <= value <= high, f"{value} is out of range ({low}-{high}{unit})"

    def one_of(value: str, choices: tuple[str, ...]) -> tuple[bool, str]:
        return value in choices, f"must be one of {', '.join(choices)}"

    udp = server.use_udp
    return (
        ("MessageFormat", *one_of(server.message_format, MESSAGE_FORMATS)),
        ("Framing", *one_of(server.framing, CONFIG_FRAMINGS)),
        ("Facility", *in_range(server.facility, 0, 23)),
        (
            "MaxMessageSize",
            *in_range(
                server.max_message_size,
                MIN_MESSAGE_SIZE,
                MAX_UDP_MESSAGE_SIZE if udp else MAX_MESSAGE_SIZE,
                " bytes for UDP" if udp else " bytes",
            ),
        ),
        ("CefVersion", *one_of(server.cef_version, CEF_VERSIONS)),
        ("UdpRate", *in_range(server.udp_rate, 0, MAX_UDP_RATE, " events/s")),
        (
            "HeartbeatInterval",
            *in_range(server.heartbeat_interval, 0, MAX_HEARTBEAT_INTERVAL, " seconds"),
        ),
    )


def _check_failover(server: ServerSettings, fail: _Fail) -> None:
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
        error = fail(
            "FailoverServerName", "FailoverServerName and FailoverServerPort name the server itself"
        )
        error.fix = "give a second server, or drop FailoverServerName and FailoverServerPort"
        raise error
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
