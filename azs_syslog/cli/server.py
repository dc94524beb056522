"""``set-syslog-server`` and ``get-syslog-server``: Set-SyslogServer and Get-SyslogServer.

Everything is validated before anything is written: a rejected command leaves the stored
files as they were. Conflicting flags are usage errors (exit 2) that name both flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from azs_syslog import config
from azs_syslog.cli.output import UsageProblem, emit_json, json_option, note, warn

_TRANSPORT_LABELS = {
    "tls": "TLS over TCP",
    "tcp": "TCP, no encryption",
    "udp": "UDP, no encryption",
}
_RELP_LABELS = {
    "tls": "RELP over TLS (every message acknowledged)",
    "tcp": "RELP over TCP, no encryption (every message acknowledged)",
}


def _transport_label(server: config.ServerSettings) -> str:
    if server.use_relp:
        return _RELP_LABELS[server.transport]
    return _TRANSPORT_LABELS[server.transport]


def _given(options: dict[str, Any]) -> list[str]:
    """The flags (as typed) of the options that were given."""
    return ["--" + name.replace("_", "-") for name, value in options.items() if value]


def _conflict(first: str, second: str, why: str, *, fix: str | None = None) -> click.UsageError:
    return UsageProblem(f"{first} and {second} cannot be combined: {why}", fix=fix)


@click.command("set-syslog-server")
@click.option(
    "--server-name",
    metavar="NAME",
    help="FQDN or IP address of the syslog server (required unless --remove).",
)
@click.option(
    "--server-port",
    type=click.IntRange(1, 65535),
    metavar="PORT",
    help="Port the syslog server listens on, 1-65535 (required unless --remove).",
)
@click.option(
    "--no-encryption", is_flag=True, help="Send over TCP in clear text. Not for production."
)
@click.option(
    "--skip-certificate-check",
    is_flag=True,
    help="Do not verify the server's certificate at all (still encrypted). Never in production.",
)
@click.option(
    "--skip-cn-check",
    is_flag=True,
    help="Verify the server's certificate chain but not its name (for a server given by IP).",
)
@click.option(
    "--use-udp", is_flag=True, help="Send over UDP (implies no encryption). Not for production."
)
@click.option(
    "--use-relp",
    is_flag=True,
    help="Send over RELP (rsyslog's imrelp): the server answers every message, so nothing is "
    "lost or sent twice by guesswork. TLS unless --no-encryption.",
)
@click.option("--remove", is_flag=True, help="Remove the server configuration; forwarding stops.")
@click.option(
    "--trusted-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE",
    help="PEM file of CA certificates to trust besides the system store (copied). TLS only.",
)
@click.option(
    "--message-format",
    type=click.Choice(config.MESSAGE_FORMATS, case_sensitive=False),
    help="Syslog header format. Default: rfc3164.",
)
@click.option(
    "--framing",
    type=click.Choice(config.FRAMINGS, case_sensitive=False),
    help="Message framing on TCP and TLS. Default: octet-counting.",
)
@click.option(
    "--facility",
    metavar="NAME|NUMBER",
    help="Syslog facility: a name (authpriv, local0, ...) or 0-23. Default: authpriv (10).",
)
@click.option(
    "--max-message-size",
    type=int,
    metavar="BYTES",
    help=f"Longest message in bytes, {config.MIN_MESSAGE_SIZE}-{config.MAX_MESSAGE_SIZE} "
    f"({config.MAX_UDP_MESSAGE_SIZE} with UDP). Default: {config.DEFAULT_MAX_MESSAGE_SIZE}.",
)
@click.option(
    "--cef-version",
    type=click.Choice(config.CEF_VERSIONS),
    help="CEF version label in the header: 0 (valid CEF, default) or 0.0 (as the source shows).",
)
@click.option(
    "--udp-rate",
    type=click.IntRange(0, config.MAX_UDP_RATE),
    metavar="EVENTS_PER_SECOND",
    help="UDP only: send at most this many events a second, so that a receiver that reads "
    f"slower does not lose them; 0 = unpaced. Default: {config.DEFAULT_UDP_RATE}.",
)
@click.option(
    "--event-data-names",
    is_flag=True,
    help="Add MasEventDataNames to Windows events: the names of the MasEventData values, in "
    "the same order, joined the same way. Off by default (the Azure Stack Hub format).",
)
@click.option(
    "--sequence-numbers",
    is_flag=True,
    help="Add a sequence number and a stream id to every message (cn1=N cn1Label=seq "
    "cs1=ID cs1Label=stream), so the SIEM can prove none is missing. Off by default: the "
    "Azure Stack Hub format stays exact.",
)
@click.option(
    "--heartbeat-interval",
    type=click.IntRange(0, config.MAX_HEARTBEAT_INTERVAL),
    metavar="SECONDS",
    help="Send a Heartbeat event this often while connected (0 or absent: none).",
)
@click.option(
    "--failover-server-name",
    metavar="NAME",
    help="FQDN or IP address of a second server, used when the first cannot be reached "
    "(same transport, trust and client certificate). Needs --failover-server-port.",
)
@click.option(
    "--failover-server-port",
    type=click.IntRange(1, 65535),
    metavar="PORT",
    help="Port of the failover server, 1-65535. Needs --failover-server-name.",
)
@click.option(
    "--failover-after",
    type=click.IntRange(1, config.MAX_FAILOVER_AFTER),
    metavar="SECONDS",
    help="Seconds of failed connections to the first server before events go to the "
    f"failover server. Default: {config.DEFAULT_FAILOVER_AFTER}.",
)
@json_option
def set_syslog_server(
    server_name: str | None,
    server_port: int | None,
    no_encryption: bool,
    skip_certificate_check: bool,
    skip_cn_check: bool,
    use_udp: bool,
    use_relp: bool,
    remove: bool,
    trusted_ca: Path | None,
    message_format: str | None,
    framing: str | None,
    facility: str | None,
    max_message_size: int | None,
    cef_version: str | None,
    udp_rate: int | None,
    event_data_names: bool,
    sequence_numbers: bool,
    heartbeat_interval: int | None,
    failover_server_name: str | None,
    failover_server_port: int | None,
    failover_after: int | None,
    as_json: bool,
) -> None:
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
    settings: dict[str, Any] = {
        "server_name": server_name,
        "server_port": server_port,
        "no_encryption": no_encryption,
        "skip_certificate_check": skip_certificate_check,
        "skip_cn_check": skip_cn_check,
        "use_udp": use_udp,
        "use_relp": use_relp,
        "trusted_ca": trusted_ca,
        "message_format": message_format,
        "framing": framing,
        "facility": facility,
        "max_message_size": max_message_size,
        "cef_version": cef_version,
        "udp_rate": udp_rate,
        "event_data_names": event_data_names,
        "sequence_numbers": sequence_numbers,
        "heartbeat_interval": heartbeat_interval,
        "failover_server_name": failover_server_name,
        "failover_server_port": failover_server_port,
        "failover_after": failover_after,
    }
    if remove:
        others = _given({k: v is not None and v is not False for k, v in settings.items()})
        if others:
            raise _conflict(
                "--remove",
                others[0],
                "--remove deletes the server configuration and takes no other setting",
                fix="run --remove alone, or drop it to set the server",
            )
        _remove(as_json)
        return

    missing = [
        flag
        for flag, value in (("--server-name", server_name), ("--server-port", server_port))
        if value is None
    ]
    if missing:
        raise click.UsageError(
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required "
            "(or --remove to delete the server configuration)"
        )
    assert server_name is not None and server_port is not None
    _check_conflicts(settings)

    try:
        name = config.normalize_server_name(server_name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--server-name'") from None
    failover_name = _check_failover(failover_server_name, failover_server_port, failover_after)
    if failover_name is not None and (failover_name, failover_server_port) == (name, server_port):
        raise UsageProblem(
            "--failover-server-name and --failover-server-port name the server itself",
            fix="give a second server, or drop the --failover-* options",
        )
    try:
        facility_number = (
            config.parse_facility(facility) if facility is not None else config.DEFAULT_FACILITY
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--facility'") from None
    size = config.DEFAULT_MAX_MESSAGE_SIZE if max_message_size is None else max_message_size
    limit = config.MAX_UDP_MESSAGE_SIZE if use_udp else config.MAX_MESSAGE_SIZE
    if not config.MIN_MESSAGE_SIZE <= size <= limit:
        raise click.BadParameter(
            f"{size} is not in {config.MIN_MESSAGE_SIZE}-{limit}"
            + (" (a UDP datagram carries at most 65507 bytes)" if use_udp else ""),
            param_hint="'--max-message-size'",
        )

    trusted_ca_pem: bytes | None = None
    ca_warnings: Sequence[str] = ()
    if trusted_ca is not None:
        from azs_syslog.config import certs

        try:
            data = trusted_ca.read_bytes()
        except OSError as exc:
            raise click.FileError(str(trusted_ca), exc.strerror) from None
        trusted_ca_pem, ca_warnings = certs.check_ca_bundle(data, str(trusted_ca))

    server = config.ServerSettings(
        server_name=name,
        server_port=server_port,
        no_encryption=no_encryption or use_udp,
        skip_certificate_check=skip_certificate_check,
        skip_cn_check=skip_cn_check,
        use_udp=use_udp,
        use_relp=use_relp,
        message_format=(message_format or "rfc3164").lower(),
        framing=(framing or "octet-counting").lower(),
        facility=facility_number,
        max_message_size=size,
        cef_version=cef_version or "0",
        udp_rate=config.DEFAULT_UDP_RATE if udp_rate is None else udp_rate,
        event_data_names=event_data_names,
        sequence_numbers=sequence_numbers,
        heartbeat_interval=heartbeat_interval or 0,
        failover_server_name=failover_name,
        failover_server_port=failover_server_port,
        failover_after=config.DEFAULT_FAILOVER_AFTER if failover_after is None else failover_after,
    )
    from azs_syslog.forwarder import audit

    with audit.recording("set-syslog-server", trusted_ca_pem=trusted_ca_pem) as recorded:
        new = config.set_server(server, trusted_ca_pem=trusted_ca_pem)
    assert new.server is not None
    if not recorded.changed:
        note(f"unchanged: the syslog server is already {_summary(new)}")
        if as_json:
            emit_json(server_view(new.server))
        return

    for message in ca_warnings:
        warn(message)
    _warn_about_security(new.server)
    note(f"syslog server set: {_summary(new)}")
    if as_json:
        emit_json(server_view(new.server))


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


def _check_failover(name: str | None, port: int | None, after: int | None) -> str | None:
    """The failover server's name as stored, or None; usage errors for half a failover."""
    if name is None and port is None:
        if after is not None:
            raise UsageProblem(
                "--failover-after applies only with a failover server",
                fix="add --failover-server-name and --failover-server-port, or drop "
                "--failover-after",
            )
        return None
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
    try:
        return config.normalize_server_name(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--failover-server-name'") from None


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
    if server.transport != "tls":
        return "nothing verified"
    if server.skip_certificate_check:
        return "server certificate NOT verified"
    if server.skip_cn_check:
        return "server certificate chain verified, name not checked"
    return "server certificate and name verified"


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


def print_properties(title: str, rows: Sequence[tuple[str, str]]) -> None:
    """A two-column table on stdout, for people. rich is imported only here."""
    from rich.table import Table

    from azs_syslog.cli.output import console

    table = Table(title=title, title_justify="left", show_header=True)
    table.add_column("Property", no_wrap=True)
    table.add_column("Value", overflow="fold")
    for name, value in rows:
        table.add_row(name, value)
    console().print(table)


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
    rows = [(name, _text(value)) for name, value in view.items() if name != "Transport"]
    rows.insert(0, ("Transport", f"{_transport_label(server)} ({_verification(server)})"))
    rows = [
        (name, f"{config.facility_name(server.facility)} ({server.facility})")
        if name == "Facility"
        else (name, value)
        for name, value in rows
    ]
    if server.use_relp:
        rows = [
            (name, "one RELP frame per message") if name == "Framing" else (name, value)
            for name, value in rows
        ]
    if server.use_udp:
        rows = [
            (name, "one message per datagram (UDP)") if name == "Framing" else (name, value)
            for name, value in rows
        ]
        rows = [
            (name, _udp_rate_text(server.udp_rate)) if name == "UdpRate" else (name, value)
            for name, value in rows
        ]
    else:
        rows = [(name, value) for name, value in rows if name != "UdpRate"]
    if server.has_failover:
        rows = [
            (name, f"{value} s") if name == "FailoverAfter" else (name, value)
            for name, value in rows
        ]
    print_properties("Syslog server", rows)
