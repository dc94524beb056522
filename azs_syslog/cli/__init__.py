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
    "-userelp": "--use-relp",
    "-eventdatanames": "--event-data-names",
    "-failoverservername": "--failover-server-name",
    "-failoverserverport": "--failover-server-port",
    "-failoverafter": "--failover-after",
    "-rootca": "--root-ca",
    "-json": "--json",
}


# The cmdlet parameters that are switches: ``-UseUDP:$false`` leaves the switch off.
CMDLET_SWITCHES = frozenset(
    {
        "-noencryption",
        "-skipcertificatecheck",
        "-skipcncheck",
        "-useudp",
        "-remove",
        "-removecertificate",
        "-json",
    }
)


def _translate_parameter(arg: str) -> list[str]:
    """One cmdlet-spelling argument as click options: ``-ServerName:x`` is PowerShell's
    ``-ServerName x``; ``-UseUDP:$true`` / ``-UseUDP:$false`` set or leave out the switch."""
    name, colon, value = arg.partition(":")
    option = CMDLET_PARAMETERS.get(name.lower())
    if option is None:
        return [arg]  # unknown: click refuses it, and the error names it as typed
    if not colon:
        return [option]
    if name.lower() in CMDLET_SWITCHES:
        switch = value.lower().lstrip("$")
        if switch in ("true", "1"):
            return [option]
        if switch in ("false", "0"):
            return []
    return [option, value]


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
        rest: list[str] = []
        for a in args[index + 1 :]:
            rest.extend(_translate_parameter(a) if a.startswith("-") else [a])
        return [*args[:index], command, *rest]
    return args


def _command_path(ctx: click.Context | None) -> str:
    """``azs-syslog forwarder status``, whatever name the root was invoked under."""
    names: list[str] = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["azs-syslog", *reversed(names)])


def _as_typed(option_name: str, args: list[str]) -> str:
    """click reads an unknown ``-Bogus`` as the short option ``-B``: name it as typed."""
    if len(option_name) == 2 and not option_name.startswith("--"):
        for arg in args:
            if arg.startswith(option_name) and len(arg) > 2 and not arg.startswith("--"):
                return arg.partition(":")[0].partition("=")[0]
    return option_name


def report_click_exception(exc: click.ClickException, args: list[str]) -> int:
    """A click error (usage or file) as the project's one line ``error: …`` and its fix, on
    stderr (and as the JSON document with ``--json``); returns the exit code."""
    from azs_syslog.cli.output import emit_json_failure, error

    if isinstance(exc, click.NoSuchOption):
        name = _as_typed(exc.option_name, args)
        message = f"no such option: {name}"
        if exc.possibilities and name == exc.option_name:
            message += " (did you mean " + " or ".join(sorted(exc.possibilities)) + "?)"
    else:
        message = exc.format_message().rstrip(".")
        if message[:1].isupper() and message[1:2].islower():
            message = message[0].lower() + message[1:]  # click's "Missing option" etc.
    fix: str | None = getattr(exc, "fix", None)
    if fix is None and isinstance(exc, click.UsageError):
        fix = f"see the options: {_command_path(exc.ctx)} --help"
    error(message, fix=fix)
    emit_json_failure(exc.exit_code)
    return exc.exit_code


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

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        from azs_syslog.cli.output import begin_run

        begin_run(list(args))
        self._args = list(args)
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise  # no arguments at all: click shows the help
        except click.ClickException as exc:  # ``azs-syslog --bogus``
            raise click.exceptions.Exit(report_click_exception(exc, self._args)) from None

    def invoke(self, ctx: click.Context) -> Any:
        from azs_syslog.cli.output import emit_json_failure, error
        from azs_syslog.errors import AzsSyslogError

        try:
            return super().invoke(ctx)
        except AzsSyslogError as exc:
            if os.environ.get("AZS_SYSLOG_DEBUG") == "1":
                raise
            error(str(exc), fix=exc.fix)
            emit_json_failure(ExitCode.FAILED)
            ctx.exit(ExitCode.FAILED)
        except click.exceptions.NoArgsIsHelpError:
            raise  # a group given no subcommand: click shows its help
        except click.ClickException as exc:
            ctx.exit(report_click_exception(exc, getattr(self, "_args", [])))
        except click.exceptions.Exit as exc:
            emit_json_failure(exc.exit_code)
            raise
        except SystemExit as exc:
            emit_json_failure(exc.code if isinstance(exc.code, int) else ExitCode.FAILED)
            raise
        except click.exceptions.Abort:
            raise
        except Exception as exc:
            # A bug, not an operator's mistake: one line, never a traceback, unless asked for.
            if os.environ.get("AZS_SYSLOG_DEBUG") == "1":
                raise
            error(
                f"internal error: {type(exc).__name__}: {exc}",
                fix="run again with AZS_SYSLOG_DEBUG=1 for the traceback, and report it",
            )
            emit_json_failure(ExitCode.FAILED)
            ctx.exit(ExitCode.FAILED)


def _encoder() -> str:
    """Which event encoder renders events: what actually imports, not merely what is on disk
    (an extension built for another Python, or damaged, is present but does not load)."""
    spec = importlib.util.find_spec("azs_syslog.encode._speedups")
    if spec is None:
        return (
            "pure Python; install gcc and the Python headers, then reinstall, for the compiled one"
        )
    try:
        importlib.import_module("azs_syslog.encode._speedups")
    except Exception as exc:  # any failure to load means it is not used
        return (
            f"pure Python: the compiled extension {spec.origin} does not load "
            f"({type(exc).__name__}: {exc}); reinstall to rebuild it"
        )
    return "compiled"


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"azs-syslog, version {__version__} (event encoder: {_encoder()})")
    ctx.exit()


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version and which event encoder runs, and exit.",
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
