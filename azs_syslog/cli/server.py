"""``set-syslog-server`` and ``get-syslog-server``: Set-SyslogServer and Get-SyslogServer.

Everything is validated before anything is written: a rejected command leaves the stored
files as they were. Conflicting flags are usage errors (exit 2) that name both flags; a value
the configuration refuses (``config.build_server``) is a usage error that names its option.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from azs_syslog import config
from azs_syslog.cli.options import (
    cef_version_option,
    existing_file_option,
    facility_option,
    flag_options,
    framing_option,
    message_format_option,
    number_option,
)
from azs_syslog.cli.output import (
    UsageProblem,
    emit_json,
    json_option,
    note,
    print_properties,
    warn,
)
from azs_syslog.errors import ConfigError

_TRANSPORT_LABELS = {
    "tls": "TLS over TCP",
    "tcp": "TCP, no encryption",
    "udp": "UDP, no encryption",
}
_RELP_LABELS = {
    "tls": "RELP over TLS (every message acknowledged)",
    "tcp": "RELP over TCP, no encryption (every message acknowledged)",
}
# What is verified of the server (ServerSettings.verification), in words.
_VERIFICATION = {
    "none": "nothing verified",
    "nothing": "server certificate NOT verified",
    "chain": "server certificate chain verified, name not checked",
    "chain and name": "server certificate and name verified",
}
# A property of the configuration, where a message names one: the command line names options.
_PROPERTY = re.compile(r"\b(" + "|".join(config.SERVER_OPTIONS) + r")\b")


def _transport_label(server: config.ServerSettings) -> str:
    if server.use_relp:
        return _RELP_LABELS[server.transport]
    return _TRANSPORT_LABELS[server.transport]


def _as_options(text: str) -> str:
    return _PROPERTY.sub(lambda match: config.SERVER_OPTIONS[match.group(1)], text)


def _refused(exc: ConfigError) -> click.UsageError:
    """The usage error of a value the configuration refuses: one that names its option, or,
    when the rule is about two settings (it has a fix), one that names both."""
    if exc.fix:
        return UsageProblem(_as_options(exc.message), fix=_as_options(exc.fix))
    option = config.SERVER_OPTIONS[(exc.field or "").rpartition(" -> ")[2]]
    return click.BadParameter(exc.message, param_hint=f"'{option}'")


def _conflict(first: str, second: str, why: str, *, fix: str | None = None) -> click.UsageError:
    return UsageProblem(f"{first} and {second} cannot be combined: {why}", fix=fix)


@click.command("set-syslog-server")
@click.option(
    "--server-name",
    metavar="NAME",
    help="FQDN or IP address of the syslog server (required unless --remove).",
)
@number_option(
    "--server-port",
    1,
    65535,
    "PORT",
    "Port the syslog server listens on, 1-65535 (required unless --remove).",
)
@flag_options(
    ("--no-encryption", "Send over TCP in clear text. Not for production."),
    (
        "--skip-certificate-check",
        "Do not verify the server's certificate at all (still encrypted). Never in production.",
    ),
    (
        "--skip-cn-check",
        "Verify the server's certificate chain but not its name (for a server given by IP).",
    ),
    ("--use-udp", "Send over UDP (implies no encryption). Not for production."),
    (
        "--use-relp",
        "Send over RELP (rsyslog's imrelp): the server answers every message, so nothing is "
        "lost or sent twice by guesswork. TLS unless --no-encryption.",
    ),
    ("--remove", "Remove the server configuration; forwarding stops."),
)
@existing_file_option(
    "--trusted-ca",
    "FILE",
    "PEM file of CA certificates to trust besides the system store (copied). TLS only.",
)
@message_format_option("Syslog header format. Default: rfc3164.")
@framing_option(config.CONFIG_FRAMINGS, "Message framing on TCP and TLS. Default: octet-counting.")
@facility_option("Syslog facility: a name (authpriv, local0, ...) or 0-23. Default: authpriv (10).")
@click.option(
    "--max-message-size",
    type=int,
    metavar="BYTES",
    help=f"Longest message in bytes, {config.MIN_MESSAGE_SIZE}-{config.MAX_MESSAGE_SIZE} "
    f"({config.MAX_UDP_MESSAGE_SIZE} with UDP). Default: {config.DEFAULT_MAX_MESSAGE_SIZE}.",
)
@cef_version_option(
    "CEF version label in the header: 0 (valid CEF, default) or 0.0 (as the source shows)."
)
@number_option(
    "--udp-rate",
    0,
    config.MAX_UDP_RATE,
    "EVENTS_PER_SECOND",
    "UDP only: send at most this many events a second, so that a receiver that reads "
    f"slower does not lose them; 0 = unpaced. Default: {config.DEFAULT_UDP_RATE}.",
)
@flag_options(
    (
        "--event-data-names",
        "Add MasEventDataNames to Windows events: the names of the MasEventData values, in "
        "the same order, joined the same way. Off by default (the Azure Stack Hub format).",
    ),
    (
        "--sequence-numbers",
        "Add a sequence number and a stream id to every message (cn1=N cn1Label=seq "
        "cs1=ID cs1Label=stream), so the SIEM can prove none is missing. Off by default: the "
        "Azure Stack Hub format stays exact.",
    ),
)
@number_option(
    "--heartbeat-interval",
    0,
    config.MAX_HEARTBEAT_INTERVAL,
    "SECONDS",
    "Send a Heartbeat event this often while connected (0 or absent: none).",
)
@click.option(
    "--failover-server-name",
    metavar="NAME",
    help="FQDN or IP address of a second server, used when the first cannot be reached "
    "(same transport, trust and client certificate). Needs --failover-server-port.",
)
@number_option(
    "--failover-server-port",
    1,
    65535,
    "PORT",
    "Port of the failover server, 1-65535. Needs --failover-server-name.",
)
@number_option(
    "--failover-after",
    1,
    config.MAX_FAILOVER_AFTER,
    "SECONDS",
    "Seconds of failed connections to the first server before events go to the "
    f"failover server. Default: {config.DEFAULT_FAILOVER_AFTER}.",
)
@json_option
def set_syslog_server(**settings: Any) -> None:
    """Set the syslog server events are forwarded to (Set-SyslogServer).

    Running it again replaces the whole server configuration: settings not given go back to
    their defaults. The default is TLS with the server's certificate and name verified.

    \b
    Examples:
      azs-syslog set-syslog-server --server-name siem.example.com --server-port 6514
      azs-syslog set-syslog-server --server-name 10.0.0.5 --server-port 6514 --skip-cn-check
      azs-syslog set-syslog-server --server-name 10.0.0.5 --server-port 514 --use-udp
      azs-syslog set-syslog-server --server-name siem.example.com --server-port 2514 --use-relp
      azs-syslog set-syslog-server --server-name siem1.example.com --server-port 6514 \\
        --failover-server-name siem2.example.com --failover-server-port 6514
      azs-syslog set-syslog-server --remove
    """
    as_json: bool = settings.pop("as_json")
    # In the order of --help (click passes the options given first, in the order typed).
    order = [param.name for param in click.get_current_context().command.params]
    settings = {name: settings[name] for name in order if name in settings}
    if settings.pop("remove"):
        others = [
            _flag(name)
            for name, value in settings.items()
            if value is not None and value is not False
        ]
        if others:
            raise _conflict(
                "--remove",
                others[0],
                "--remove deletes the server configuration and takes no other setting",
                fix="run --remove alone, or drop it to set the server",
            )
        _remove(as_json)
        return
    _check_usage(settings)
    trusted_ca: Path | None = settings.pop("trusted_ca")
    try:
        server = config.build_server(settings)
    except ConfigError as exc:
        raise _refused(exc) from None
    trusted_ca_pem, ca_warnings = _read_trusted_ca(trusted_ca)
    from azs_syslog.forwarder import audit

    with audit.recording("set-syslog-server", trusted_ca_pem=trusted_ca_pem) as recorded:
        new = config.set_server(server, trusted_ca_pem=trusted_ca_pem)
    assert new.server is not None
    if not recorded.changed:
        note(f"unchanged: the syslog server is already {_summary(new)}")
    else:
        for message in ca_warnings:
            warn(message)
        _warn_about_security(new.server)
        note(f"syslog server set: {_summary(new)}")
    if as_json:
        emit_json(server_view(new.server))


def _read_trusted_ca(trusted_ca: Path | None) -> tuple[bytes | None, Sequence[str]]:
    """The checked PEM bundle of ``--trusted-ca`` and what to warn about, or (None, ())."""
    if trusted_ca is None:
        return None, ()
    from azs_syslog.config import certs

    try:
        data = trusted_ca.read_bytes()
    except OSError as exc:
        raise click.FileError(str(trusted_ca), exc.strerror) from None
    return certs.check_ca_bundle(data, str(trusted_ca))


def _check_usage(settings: dict[str, Any]) -> None:
    """What the options given say together: both the name and the port, no conflicting
    options, a failover server whole."""
    missing = [
        flag
        for flag in ("--server-name", "--server-port")
        if settings[flag[2:].replace("-", "_")] is None
    ]
    if missing:
        raise click.UsageError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required "
            "(or --remove to delete the server configuration)"
        )
    _check_conflicts(settings)
    _check_failover(
        settings["failover_server_name"],
        settings["failover_server_port"],
        settings["failover_after"],
    )


def _check_conflicts(settings: dict[str, Any]) -> None:
    # The rules are config.SERVER_CONFLICTS: the same ones a configuration file is held to.
    conflict = config.server_conflict(
        {
            prop: settings[option[2:].replace("-", "_")]
            for prop, option in config.SERVER_OPTIONS.items()
        }
    )
    if conflict is not None:
        first = config.SERVER_OPTIONS[conflict.first]
        second = config.SERVER_OPTIONS[conflict.second]
        raise _conflict(
            first,
            second,
            conflict.why.format(first=first, second=second),
            fix=conflict.fix.format(first=first, second=second),
        )
    if settings["udp_rate"] is not None and not settings["use_udp"]:
        raise UsageProblem(
            "--udp-rate applies only to UDP", fix="add --use-udp, or drop --udp-rate"
        )
    if settings["use_relp"] and settings["framing"] is not None:
        raise _conflict(
            "--use-relp", "--framing", "RELP frames every message itself", fix="drop --framing"
        )
    if settings["use_udp"] and settings["framing"] is not None:
        raise _conflict(
            "--use-udp",
            "--framing",
            "UDP always sends exactly one message per datagram",
            fix="drop --framing",
        )


def _check_failover(name: str | None, port: int | None, after: int | None) -> None:
    """Usage errors for half a failover server (its name and port are checked as values by
    ``config.build_server``)."""
    if name is None and port is None:
        if after is not None:
            raise UsageProblem(
                "--failover-after applies only with a failover server",
                fix="add --failover-server-name and --failover-server-port, or drop "
                "--failover-after",
            )
        return
    if name is None or port is None:
        given, missing = (
            ("--failover-server-name", "--failover-server-port")
            if port is None
            else ("--failover-server-port", "--failover-server-name")
        )
        raise UsageProblem(
            f"{given} needs {missing}: a failover server has a name and a port",
            fix=f"add {missing}, or drop {given}",
        )


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _remove(as_json: bool) -> None:
    from azs_syslog.forwarder import audit

    with audit.recording("set-syslog-server --remove") as recorded:
        config.remove_server()
    if not recorded.changed:
        note("unchanged: no syslog server was configured")
    else:
        note("syslog server removed; forwarding stops")
        if recorded.batch_ids:
            server = recorded.servers[0]
            delivery = audit.wait_for_delivery(recorded.batch_ids[0], server)
            if delivery.sent:
                note(f"the SIEM at {server} was told of the removal (ConfigurationChanged sent)")
            else:
                warn(f"the removal could not be recorded at the SIEM: {delivery.reason}")
    if as_json:
        emit_json(None)


def _warn_about_security(server: config.ServerSettings) -> None:
    if server.use_udp:
        warn(
            "UDP sends events in clear text, unauthenticated and without delivery "
            "confirmation; not for production (use TLS: drop --use-udp)"
        )
    elif server.no_encryption:
        warn(
            "events are sent in clear text and the server is not authenticated; not for "
            "production (use TLS: drop --no-encryption)"
        )
    elif server.skip_certificate_check:
        warn(
            "the server's certificate will not be verified: events are encrypted but may go "
            "to an impostor; never use --skip-certificate-check in production"
        )
    elif server.skip_cn_check and not config.is_ip_address(server.server_name):
        note(
            "note: --skip-cn-check is meant for a server given by IP address; for a DNS name, "
            "prefer a server certificate that holds the name"
        )


def _verification(server: config.ServerSettings) -> str:
    return _VERIFICATION[server.verification]


def _summary(current: config.Config) -> str:
    server = current.server
    assert server is not None
    text = (
        f"{server.server_name} port {server.server_port}, "
        f"{_transport_label(server)} ({_verification(server)})"
    )
    if server.has_failover:
        text += (
            f"; failover to {server.failover_server_name} port {server.failover_server_port}"
            f" after {server.failover_after} s without a connection"
        )
    if current.client.certificate is not None:
        if server.transport == "tls":
            text += "; the client certificate is presented (mutual authentication)"
        else:
            text += "; the stored client certificate is not used without TLS"
    return text


def server_view(server: config.ServerSettings) -> dict[str, Any]:
    """What get-syslog-server shows: the cmdlet's properties, then the project additions."""
    view = config.server_to_dict(server)
    view["Transport"] = f"relp-{server.transport}" if server.use_relp else server.transport
    return view


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"  # as PowerShell shows a switch
    return "" if value is None else str(value)


def _udp_rate_text(rate: int) -> str:
    return "unpaced (0)" if rate == 0 else f"{rate} events/s"


@click.command("get-syslog-server")
@json_option
def get_syslog_server(as_json: bool) -> None:
    """Show the configured syslog server (Get-SyslogServer).

    \b
    Examples:
      azs-syslog get-syslog-server
      azs-syslog get-syslog-server --json | jq .ServerPort
      azs-syslog Get-SyslogServer
    """
    server = config.load_config().server
    if server is None:
        note(
            "no syslog server is configured (set one with: azs-syslog set-syslog-server "
            "--server-name NAME --server-port PORT)"
        )
        if as_json:
            emit_json(None)
        return
    view = server_view(server)
    if as_json:
        emit_json(view)
        return
    print_properties("Syslog server", _rows(server, view))


def _rows(server: config.ServerSettings, view: dict[str, Any]) -> list[tuple[str, str]]:
    """The properties as people read them: the transport first, words for the numbers."""
    shown = {
        "Facility": f"{config.facility_name(server.facility)} ({server.facility})",
        "FailoverAfter": f"{server.failover_after} s",  # in the view only with a failover
    }
    if server.use_relp:
        shown["Framing"] = "one RELP frame per message"
    if server.use_udp:
        shown["Framing"] = "one message per datagram (UDP)"
        shown["UdpRate"] = _udp_rate_text(server.udp_rate)
    return [("Transport", f"{_transport_label(server)} ({_verification(server)})")] + [
        (name, shown.get(name, _text(value)))
        for name, value in view.items()
        if name != "Transport" and (name != "UdpRate" or server.use_udp)
    ]
