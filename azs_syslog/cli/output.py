"""Everything that talks to people: data on stdout, chatter on stderr.

rich is imported only when a table is drawn. User data is never passed through rich markup
(a host name ``[red]`` stays ``[red]``).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

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


def note(message: str) -> None:
    click.echo(message, err=True)


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def error(message: str, *, fix: str | None = None) -> None:
    click.echo(f"error: {message}", err=True)
    if fix:
        click.echo(f"  fix: {fix}", err=True)


def console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, markup=False, highlight=False, emoji=False)
