"""The ``azs-syslog`` command tree.

Commands are imported lazily: ``azs-syslog get-syslog-server`` must start in well under 150 ms,
so only the module of the command actually run is imported (and rich only when it renders).
Library errors (``AzsSyslogError``) are turned into one line on stderr and exit code 1 here,
in one place; no traceback reaches an operator unless ``AZS_SYSLOG_DEBUG=1``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from typing import Any

import click

from azs_syslog import __version__
from azs_syslog.cli.exit_codes import ExitCode

# name -> (module, attribute, one-line help). The help is here so that ``--help`` need not
# import every command module.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "set-syslog-server": (
        "azs_syslog.cli.server",
        "set_syslog_server",
        "Set (or --remove) the syslog server events are forwarded to.",
    ),
    "get-syslog-server": (
        "azs_syslog.cli.server",
        "get_syslog_server",
        "Show the configured syslog server.",
    ),
    "set-syslog-client": (
        "azs_syslog.cli.client",
        "set_syslog_client",
        "Import the client certificate (PFX) for mutual TLS; set the output severity.",
    ),
    "get-syslog-client": (
        "azs_syslog.cli.client",
        "get_syslog_client",
        "Show the client certificate and the output severity.",
    ),
    "format-event": (
        "azs_syslog.cli.events",
        "format_event",
        "Print the exact syslog message each input event becomes, without sending.",
    ),
    "send-event": (
        "azs_syslog.cli.send",
        "send_event",
        "Validate events and queue them durably for the forwarder.",
    ),
    "forwarder": (
        "azs_syslog.cli.forwarder",
        "forwarder",
        "Run the forwarder worker, or show its status.",
    ),
    "test-syslog-server": (
        "azs_syslog.cli.diagnose",
        "test_syslog_server",
        "Diagnose the connection to the configured server, step by step.",
    ),
    "listen": (
        "azs_syslog.cli.listen",
        "listen",
        "Lab receiver: show and check the syslog/CEF messages it receives.",
    ),
    "demo": (
        "azs_syslog.cli.demo",
        "demo",
        "See it work end to end over mutual TLS, in a throwaway sandbox.",
    ),
}

# PowerShell cmdlet spellings accepted as aliases, so existing runbooks carry over.
CMDLET_ALIASES: dict[str, str] = {
    "set-syslogserver": "set-syslog-server",
    "get-syslogserver": "get-syslog-server",
    "set-syslogclient": "set-syslog-client",
    "get-syslogclient": "get-syslog-client",
}

# PowerShell parameter spellings (compared case-insensitively) -> click options.
CMDLET_PARAMETERS: dict[str, str] = {
    "-servername": "--server-name",
    "-serverport": "--server-port",
    "-noencryption": "--no-encryption",
    "-skipcertificatecheck": "--skip-certificate-check",
    "-skipcncheck": "--skip-cn-check",
    "-useudp": "--use-udp",
    "-remove": "--remove",
    "-pfxbinary": "--pfx-binary",
    "-pfxfile": "--pfx-file",
    "-certpassword": "--cert-password",
    "-removecertificate": "--remove-certificate",
    "-outputseverity": "--output-severity",
    # The project additions, in the same spelling, so a runbook can stay in one style.
    "-trustedca": "--trusted-ca",
    "-messageformat": "--message-format",
    "-framing": "--framing",
    "-facility": "--facility",
    "-maxmessagesize": "--max-message-size",
    "-cefversion": "--cef-version",
    "-udprate": "--udp-rate",
    "-eventdatanames": "--event-data-names",
    "-rootca": "--root-ca",
    "-json": "--json",
}


def translate_cmdlet_args(args: list[str]) -> list[str]:
    """Rewrite ``Set-SyslogServer -ServerName x`` into ``set-syslog-server --server-name x``.

    Only a command given in its cmdlet spelling has its parameters rewritten, so a value that
    happens to look like ``-Remove`` is never touched in the ordinary spelling.
    """
    for index, arg in enumerate(args):
        if arg.startswith("-"):
            continue
        command = CMDLET_ALIASES.get(arg.lower())
        if command is None:
            return args
        rest = [
            CMDLET_PARAMETERS.get(a.lower(), a) if a.startswith("-") else a
            for a in args[index + 1 :]
        ]
        return [*args[:index], command, *rest]
    return args


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when they run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        name = CMDLET_ALIASES.get(cmd_name.lower(), cmd_name)
        entry = COMMANDS.get(name)
        if entry is None:
            return None
        module_name, attribute, _ = entry
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None  # not built yet
            raise
        command: click.Command = getattr(module, attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, _, help_text) in sorted(COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        from azs_syslog.errors import AzsSyslogError

        try:
            return super().invoke(ctx)
        except AzsSyslogError as exc:
            if os.environ.get("AZS_SYSLOG_DEBUG") == "1":
                raise
            from azs_syslog.cli.output import error

            error(str(exc), fix=exc.fix)
            ctx.exit(ExitCode.FAILED)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # usage errors and exits: click reports them itself
        except Exception as exc:
            # A bug, not an operator's mistake: one line, never a traceback, unless asked for.
            if os.environ.get("AZS_SYSLOG_DEBUG") == "1":
                raise
            from azs_syslog.cli.output import error

            error(
                f"internal error: {type(exc).__name__}: {exc}",
                fix="run again with AZS_SYSLOG_DEBUG=1 for the traceback, and report it",
            )
            ctx.exit(ExitCode.FAILED)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(
    __version__,
    "--version",
    prog_name="azs-syslog",
    message="%(prog)s, version %(version)s (event encoder: "
    + (
        "compiled"
        if importlib.util.find_spec("azs_syslog._speedups")
        else "pure Python; install gcc and the Python headers, then reinstall, for the compiled one"
    )
    + ")",
)
def cli() -> None:
    """Forward security, audit and alert events to a SIEM as CEF over syslog.

    \b
    Configure where events go, then run the forwarder:
      azs-syslog set-syslog-server --server-name siem.example.com --server-port 6514
      azs-syslog forwarder run
      azs-syslog send-event events.jsonl

    PowerShell spellings work too: azs-syslog Set-SyslogServer -ServerName x -ServerPort 514 -UseUDP

    Settings live under $AZS_SYSLOG_HOME when it is set.
    """


def main(argv: list[str] | None = None) -> None:
    args = translate_cmdlet_args(list(sys.argv[1:] if argv is None else argv))
    cli.main(args=args, prog_name="azs-syslog")
