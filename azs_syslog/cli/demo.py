"""``demo``: see it work end to end over mutual TLS, in a throwaway sandbox."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from azs_syslog.cli.exit_codes import ExitCode
from azs_syslog.cli.output import emit_json, error, json_option

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.progress import Progress, TaskID
    from rich.table import Table

    from azs_syslog.lab.demo import Arrival, DemoResult


class _Show:
    """Renders the demo: steps as lines, then a live table of arriving events with progress
    bars (events queued by send-event, events arrived at the receiver)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None
        self.table: Table | None = None
        self.progress: Progress | None = None
        self.queued_task: TaskID | None = None
        self.arrived_task: TaskID | None = None

    def step(self, text: str) -> None:
        from rich.table import Table

        target = self.live.console if self.live is not None else self.console
        # A bullet with a hanging indent: a long step wraps at spaces under its own text.
        line = Table.grid(padding=(0, 1))
        line.add_column(no_wrap=True)
        line.add_column()
        line.add_row("•", text)
        target.print(line)

    def sent(self, accepted: int, total: int) -> None:
        from rich import box
        from rich.console import Group
        from rich.live import Live
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
        from rich.table import Table

        self.step(f"send-event -: {accepted} of {total} events queued durably")
        self.table = Table(
            title="Events arriving at the receiver",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        # Readable at 80 columns: rich wraps a cell at spaces and keeps each word whole as
        # long as every column's longest word fits, so the longest words (a signature id such
        # as "Microsoft-Windows-Security-Auditing:4625", a type such as
        # "infrastructure_fault") get columns of their own and the transport, which has
        # spaces, goes under the type instead of taking a column.
        self.table.add_column("#", justify="right", no_wrap=True)
        self.table.add_column("type / transport")
        self.table.add_column("signature id / name")
        self.table.add_column("sev", justify="right", no_wrap=True)
        self.progress = Progress(
            "{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.queued_task = self.progress.add_task(
            "queued (send-event)", total=total, completed=accepted
        )
        self.arrived_task = self.progress.add_task("arrived (receiver)", total=total)
        self.live = Live(
            Group(self.table, self.progress), console=self.console, refresh_per_second=10
        )
        self.live.start()

    def arrived(self, arrival: Arrival, total: int) -> None:
        if self.table is None or self.progress is None or self.arrived_task is None:
            return
        self.table.add_row(
            str(arrival.index + 1),
            f"{arrival.type}\n"
            + (arrival.transport if arrival.valid else f"MALFORMED: {', '.join(arrival.problems)}"),
            f"{arrival.signature_id}\n{arrival.name}",
            arrival.severity,
        )
        self.progress.advance(self.arrived_task)
        if self.progress.tasks[1].completed >= total:
            self.close()  # what follows (stopping, cleaning up) prints below the table

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
            if not self.console.is_terminal:
                self.console.line()


def _summary(console: Console, result: DemoResult) -> None:
    arrived_types = {a.type for a in result.arrivals}
    console.print(
        f"All {len(result.arrivals)} events ({len(arrived_types)} types: "
        f"{', '.join(result.types)}) arrived over mutual TLS in {result.delivery_s or 0:.2f} s; "
        f"the demo took {result.elapsed_s:.1f} s."
    )
    console.print(
        f"TLS: {result.tls_version or '?'}, cipher {result.cipher or '?'}; server certificate "
        f"{result.server_subject or '?'}; client certificate sent: "
        f"{'yes' if result.client_certificate_sent else 'no'}."
    )
    console.print(
        f"Sandbox {result.sandbox} (CA and certificates, the demo's own home with its "
        f"configuration and queue, the forwarder's log) "
        f"{'removed' if result.removed else 'NOT removed: delete it by hand'}; "
        "your own configuration was not touched."
    )
    console.print(
        "Next: docs/quickstart.md and docs/configurations.md (azs-syslog set-syslog-server --help)."
    )


@click.command("demo")
@click.option(
    "--timeout",
    type=click.FloatRange(1, 600),
    default=25.0,
    show_default=True,
    metavar="SECONDS",
    help="Give up (and clean up) when every event has not arrived after this long.",
)
@json_option
def demo(timeout: float, as_json: bool) -> None:
    """See it work end to end over mutual TLS, in a throwaway sandbox.

    Makes a throwaway CA, a server and a client certificate in a temporary directory; starts
    a lab receiver (as `listen` does) on a free loopback port that requires a client
    certificate; configures forwarding with set-syslog-server and set-syslog-client in a home
    of its own; runs `forwarder run`; sends one event of every type with `send-event`; shows
    them arriving; then stops the forwarder and removes everything. Nothing leaves 127.0.0.1,
    and your own configuration (even the one AZS_SYSLOG_HOME points to) is neither read nor
    changed.

    The show goes to stdout; with --json it goes to stderr and a JSON summary to stdout.

    \b
    Examples:
      azs-syslog demo
      azs-syslog demo --json | jq '.events_arrived, .tls_version'
      azs-syslog demo --timeout 60     # a slow or busy machine

    \b
    Exit codes: 0 every event arrived, well-formed; 1 anything else (the error says which
    step failed; everything is cleaned up all the same).
    """
    from rich.console import Console

    from azs_syslog.lab.demo import run_demo

    console = Console(stderr=as_json, markup=False, highlight=False, emoji=False, soft_wrap=False)
    show = _Show(console)
    try:
        result = run_demo(show, timeout=timeout)
    finally:
        show.close()
    if as_json:
        emit_json(result.to_dict())
    if result.ok:
        if not as_json:
            _summary(console, result)
        return
    _failure(result)
    sys.exit(ExitCode.FAILED)


def _failure(result: DemoResult) -> None:
    message = f"the demo failed: {result.error or 'not every event arrived'}"
    if "time" in message:
        fix = "try again with a longer --timeout (a busy machine)"
    else:
        fix = "see docs/troubleshooting.md for the error above; please report it as a bug"
    error(message, fix=fix)
    click.echo(
        f"cleaned up: {result.sandbox} "
        + ("removed" if result.removed else "NOT removed: delete it by hand"),
        err=True,
    )
