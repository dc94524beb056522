"""Everything that talks to people: data on stdout, chatter on stderr.

rich is imported only when a table is drawn. User data is never passed through rich markup
(a host name ``[red]`` stays ``[red]``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console


class UsageProblem(click.UsageError):
    """A usage error (exit 2) that knows its fix: two options that contradict each other,
    a value that needs another option. Shown as ``error: …`` and ``  fix: …``."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


class _Run:
    """What this run promised on stdout. With ``--json`` stdout holds one JSON document,
    failures included: ``{"error": {"message": …, "fix": …}}`` when the command wrote nothing
    else. Commands that stream JSON lines (``format-event``, ``listen``) end with that object
    as their last line instead."""

    json_requested = False
    json_lines = False
    document_written = False
    last_error: tuple[str, str | None] | None = None
    error_emitted = False


RUN = _Run()


def begin_run(args: list[str]) -> None:
    """Reset the per-run state (in-process tests run the CLI many times in one process)."""
    before_separator = args[: args.index("--")] if "--" in args else args
    RUN.json_requested = "--json" in before_separator
    RUN.json_lines = False
    RUN.document_written = False
    RUN.last_error = None
    RUN.error_emitted = False


def json_lines() -> None:
    """This command streams JSON lines: a failure is written as a final line."""
    RUN.json_lines = True


def emit_json_failure(exit_code: int) -> None:
    """On a failed run with ``--json``: the error as the JSON document (or final JSON line)."""
    if not RUN.json_requested or exit_code == 0 or RUN.error_emitted:
        return
    if RUN.json_lines:
        if RUN.last_error is None:
            return  # the lines already said what went wrong (rejected events)
    elif RUN.document_written:
        return  # the command's own document holds the failure
    message, fix = RUN.last_error or (f"failed with exit code {exit_code}", None)
    RUN.error_emitted = True
    sys.stdout.write(
        json.dumps({"error": {"message": message, "fix": fix}}, ensure_ascii=False) + "\n"
    )
    sys.stdout.flush()


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Machine-readable output on stdout (messages and warnings stay on stderr).",
)


def emit_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout, one document."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    RUN.document_written = True


def note(message: str) -> None:
    click.echo(message, err=True)


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def error(message: str, *, fix: str | None = None) -> None:
    RUN.last_error = (message, fix)
    click.echo(f"error: {message}", err=True)
    if fix:
        click.echo(f"  fix: {fix}", err=True)


def console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, markup=False, highlight=False, emoji=False)


def print_properties(title: str, rows: Sequence[tuple[str, str]]) -> None:
    """A two-column table on stdout, for people. rich is imported only here."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=True)
    table.add_column("Property", no_wrap=True)
    table.add_column("Value", overflow="fold")
    for name, value in rows:
        table.add_row(name, value)
    console().print(table)
