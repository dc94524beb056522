"""``set-syslog-client`` and ``get-syslog-client``: Set-SyslogClient and Get-SyslogClient.

The PFX password comes from ``--cert-password`` (with a warning: others can see it), else the
environment variable ``AZS_SYSLOG_CERT_PASSWORD``, else a hidden prompt. It is used to open the
PFX and then forgotten: never stored, logged or printed.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any, BinaryIO

import click

from azs_syslog import config
from azs_syslog.cli.options import existing_file_option, output_severity_option
from azs_syslog.cli.output import emit_json, json_option, note, print_properties, warn

PASSWORD_ENV = "AZS_SYSLOG_CERT_PASSWORD"  # noqa: S105 - the variable's name, not a password


@click.command("set-syslog-client")
@existing_file_option(
    "--pfx-file",
    "PATH",
    "PKCS#12 (PFX) file with the client certificate, its private key and its chain.",
)
@click.option(
    "--pfx-binary",
    metavar="-",
    help="Read the PFX bytes from stdin: --pfx-binary - < client.pfx (as -pfxBinary).",
)
@click.option(
    "--cert-password",
    metavar="PASSWORD",
    help=f"The PFX password. Visible to other users (ps) and kept in shell history: use "
    f"the prompt, or ${PASSWORD_ENV} in a script.",
)
@click.option(
    "--remove-certificate",
    is_flag=True,
    help="Remove the client certificate (and its stored key).",
)
@output_severity_option(
    "Default: forward Windows events of level Critical, Error and Warning only. "
    "Verbose: forward all levels.",
    metavar="Default|Verbose",
)
@existing_file_option(
    "--root-ca", "FILE", "Refuse the certificate unless it chains to this root CA (PEM or DER)."
)
@json_option
def set_syslog_client(
    pfx_file: Path | None,
    pfx_binary: str | None,
    cert_password: str | None,
    remove_certificate: bool,
    output_severity: config.OutputSeverity | None,
    root_ca: Path | None,
    as_json: bool,
) -> None:
    """Set the client certificate and the output severity (Set-SyslogClient).

    The client certificate is presented to the server over TLS (mutual authentication). The PFX
    must hold the certificate and its matching private key. The certificate chain and
    the key are stored as PEM files, mode 0600; the password is never stored.

    The PFX password: type it at the prompt (hidden input), or, in a script, put it in the
    environment variable AZS_SYSLOG_CERT_PASSWORD (from a secret store). --cert-password works
    but warns: a command-line argument is visible to every user in `ps` and kept in shell
    history.

    \b
    Examples:
      azs-syslog set-syslog-client --pfx-file client.pfx            (prompts for the password)
      AZS_SYSLOG_CERT_PASSWORD=... azs-syslog set-syslog-client --pfx-binary - < client.pfx
      azs-syslog set-syslog-client --output-severity Verbose
      azs-syslog set-syslog-client --remove-certificate
    """
    _check_usage()
    from azs_syslog.forwarder import audit

    command = "set-syslog-client" + (" --remove-certificate" if remove_certificate else "")
    with audit.recording(command) as recorded:
        if remove_certificate:
            had = config.load_config().client.certificate is not None
            new = config.remove_client_certificate(output_severity=output_severity)
            if recorded.changed or had:
                note(
                    "client certificate removed"
                    if had
                    else "no client certificate was configured; nothing to remove"
                )
        elif pfx_file is not None or pfx_binary is not None:
            new = _import(pfx_file, cert_password, output_severity, root_ca)
        else:
            assert output_severity is not None
            new = config.set_output_severity(output_severity)
    if not recorded.changed:
        note(
            "unchanged: no client certificate was configured; nothing to remove"
            if remove_certificate
            else "unchanged: the client settings (certificate, OutputSeverity) are already these"
        )
    elif output_severity is not None:
        note(f"OutputSeverity set to {new.client.output_severity}")
    if as_json:
        emit_json(client_view(new.client))


def _check_usage() -> None:
    """Conflicting or incomplete flags (of the command running) are usage errors that name
    the flags."""
    given = click.get_current_context().params
    pfx_file, pfx_binary = given["pfx_file"], given["pfx_binary"]
    cert_password, root_ca = given["cert_password"], given["root_ca"]
    remove_certificate = given["remove_certificate"]
    if pfx_file is not None and pfx_binary is not None:
        raise click.UsageError(
            "--pfx-file and --pfx-binary cannot be combined: give the PFX one way"
        )
    pfx_flag = "--pfx-file" if pfx_file is not None else "--pfx-binary"
    has_pfx = pfx_file is not None or pfx_binary is not None
    if remove_certificate:
        for flag, value in (
            (pfx_flag, has_pfx),
            ("--cert-password", cert_password is not None),
            ("--root-ca", root_ca is not None),
        ):
            if value:
                raise click.UsageError(
                    f"--remove-certificate and {flag} cannot be combined: one removes the "
                    "certificate, the other imports one"
                )
    if not has_pfx:
        for flag, value in (
            ("--cert-password", cert_password is not None),
            ("--root-ca", root_ca is not None),
        ):
            if value:
                raise click.UsageError(f"{flag} needs a PFX: give --pfx-file or --pfx-binary -")
        if not remove_certificate and given["output_severity"] is None:
            raise click.UsageError(
                "nothing to do: give --pfx-file PATH, --pfx-binary -, --remove-certificate or "
                "--output-severity Default|Verbose"
            )
    if pfx_binary is not None and pfx_binary != "-":
        raise click.BadParameter(
            "takes '-' (the PFX bytes on stdin); for a file use --pfx-file PATH",
            param_hint="'--pfx-binary'",
        )


def _read_pfx(pfx_file: Path | None) -> bytes:
    from azs_syslog.config.certs import MAX_PFX_BYTES

    if pfx_file is not None:
        try:
            with pfx_file.open("rb") as handle:
                return handle.read(MAX_PFX_BYTES + 1)
        except OSError as exc:
            raise click.FileError(str(pfx_file), exc.strerror) from None
    stdin: BinaryIO = sys.stdin.buffer
    if stdin.isatty():
        raise click.UsageError(
            "--pfx-binary - reads the PFX from stdin, but stdin is a terminal: "
            "azs-syslog set-syslog-client --pfx-binary - < client.pfx"
        )
    data: bytes = stdin.read(MAX_PFX_BYTES + 1)
    return data


def _password(cert_password: str | None, from_stdin: bool) -> str:
    if cert_password is not None:
        warn(
            "a password given with --cert-password is visible to other users of this machine "
            f"and kept in shell history; prefer ${PASSWORD_ENV} or the prompt"
        )
        return cert_password
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env is not None:
        return from_env
    if from_stdin:
        raise click.UsageError(
            "the PFX is read from stdin, so the password cannot be prompted for: "
            f"set ${PASSWORD_ENV} (or give --cert-password)"
        )
    if not sys.stdin.isatty():
        # A password piped in (printf '%s\n' "$pw" | ...): read the line, no prompt, no
        # getpass warning about echo.
        line = sys.stdin.readline()
        if not line:
            raise click.UsageError(
                "no PFX password: stdin is not a terminal and holds nothing; "
                f"set ${PASSWORD_ENV} (or give --cert-password)"
            )
        return line.rstrip("\r\n")
    password: str = click.prompt(
        "PFX password", hide_input=True, default="", show_default=False, err=True
    )
    return password


def _import(
    pfx_file: Path | None,
    cert_password: str | None,
    output_severity: config.OutputSeverity | None,
    root_ca: Path | None,
) -> config.Config:
    from azs_syslog.config import certs

    data = _read_pfx(pfx_file)
    root_pem = None
    if root_ca is not None:
        try:
            root_pem = root_ca.read_bytes()
        except OSError as exc:
            raise click.FileError(str(root_ca), exc.strerror) from None
    password = _password(cert_password, from_stdin=pfx_file is None)
    bundle = certs.import_pfx(
        data, password, root_ca=root_pem, root_ca_source=str(root_ca) if root_ca else ""
    )
    del password
    generation = config.load_config().generation
    new = certs.install_client_certificate(bundle, output_severity=output_severity)
    for message in bundle.warnings:
        warn(message)
    if new.generation != generation:  # else the same certificate again: said by the caller
        note(
            f"client certificate stored: {bundle.subject}, thumbprint {bundle.thumbprint}, "
            f"valid until {certs.rfc3339(bundle.not_after)}"
        )
    if new.server is not None and new.server.transport != "tls":
        note(
            f"note: the certificate is presented only over TLS; the configured transport is "
            f"{new.server.transport}"
        )
    return new


def _days_left(not_after: str) -> int | None:
    try:
        end = dt.datetime.strptime(not_after, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return (end - dt.datetime.now(dt.UTC)).days


def client_view(client: config.ClientSettings) -> dict[str, Any] | None:
    """What get-syslog-client shows; ``None`` when nothing differs from the defaults."""
    if client == config.ClientSettings():
        return None
    cert = client.certificate
    return {
        "Subject": cert.subject if cert else None,
        "Issuer": cert.issuer if cert else None,
        "Thumbprint": cert.thumbprint if cert else None,
        "NotBefore": cert.not_before if cert else None,
        "NotAfter": cert.not_after if cert else None,
        "DaysLeft": _days_left(cert.not_after) if cert else None,
        "OutputSeverity": client.output_severity,
        "ChainFile": cert.chain_file if cert else None,
        "KeyFile": cert.key_file if cert else None,
    }


@click.command("get-syslog-client")
@json_option
def get_syslog_client(as_json: bool) -> None:
    """Show the client certificate and the output severity (Get-SyslogClient).

    \b
    Examples:
      azs-syslog get-syslog-client
      azs-syslog get-syslog-client --json | jq -r .Thumbprint
      azs-syslog Get-SyslogClient
    """
    client = config.load_config().client
    view = client_view(client)
    if view is None:
        note("no client certificate is configured (OutputSeverity: Default)")
        if as_json:
            emit_json(None)
        return
    cert = client.certificate
    if cert is not None:
        days = view["DaysLeft"]
        if days is not None and days < 0:
            warn(f"the client certificate expired on {cert.not_after}; import a renewed PFX")
        elif days is not None and days < config.EXPIRY_WARNING_DAYS:
            warn(f"the client certificate expires in {days} day(s), on {cert.not_after}")
        for stored in (cert.chain_file, cert.key_file):
            if not Path(stored).is_file():
                warn(f"{stored} is missing; import the PFX again with set-syslog-client")
    else:
        note("no client certificate is configured")
    if as_json:
        emit_json(view)
        return
    rows = [(name, "" if value is None else str(value)) for name, value in view.items()]
    print_properties("Syslog client", rows)
