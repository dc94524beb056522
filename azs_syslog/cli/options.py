"""The options more than one command takes, each declared once: the syslog words
(``--message-format``, ``--framing``, ``--facility``, ``--cef-version``, ``--output-severity``)
shared by ``set-syslog-server`` / ``set-syslog-client`` and ``format-event``, and the shapes
of option the commands repeat (an existing file, a flag). What the commands legitimately differ
in is a parameter: the help (the default is fixed, or the configured one) and, for
``format-event``, the framing ``none``.

Every choice is case-insensitive and stands for its word as the configuration spells it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from azs_syslog.config.facility import parse_facility
from azs_syslog.config.vocabulary import CEF_VERSIONS, MESSAGE_FORMATS, OUTPUT_SEVERITIES

T = TypeVar("T")
# What an option declaration is: it adds the option to a command function.
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def parsed_by(
    parse: Callable[[str], T],
) -> Callable[[click.Context, click.Parameter, str | None], T | None]:
    """A click callback that turns the option's text into ``parse(text)``; a ``ValueError``
    becomes the usage error that names the option."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> T | None:
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


def message_format_option(help: str) -> Decorator:
    return click.option(
        "--message-format", type=click.Choice(MESSAGE_FORMATS, case_sensitive=False), help=help
    )


def framing_option(choices: Sequence[str], help: str, **default: Any) -> Decorator:
    return click.option(
        "--framing", type=click.Choice(choices, case_sensitive=False), help=help, **default
    )


def facility_option(help: str) -> Decorator:
    """``--facility NAME|NUMBER``: the command receives the number (or None)."""
    return click.option(
        "--facility", callback=parsed_by(parse_facility), metavar="NAME|NUMBER", help=help
    )


def cef_version_option(help: str) -> Decorator:
    return click.option(
        "--cef-version", type=click.Choice(CEF_VERSIONS, case_sensitive=False), help=help
    )


def output_severity_option(help: str, **extra: Any) -> Decorator:
    return click.option(
        "--output-severity",
        type=click.Choice(OUTPUT_SEVERITIES, case_sensitive=False),
        help=help,
        **extra,
    )


def number_option(name: str, low: int, high: int, metavar: str, help: str) -> Decorator:
    """An option taking a whole number from ``low`` to ``high``."""
    return click.option(name, type=click.IntRange(low, high), metavar=metavar, help=help)


def existing_file_option(name: str, metavar: str, help: str) -> Decorator:
    """An option naming a file that must exist (the command receives a ``Path``)."""
    return click.option(
        name,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        metavar=metavar,
        help=help,
    )


def flag_options(*flags: tuple[str, str]) -> Decorator:
    """``is_flag`` options, (name, help) each, listed in ``--help`` in this order."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        for name, text in reversed(flags):
            function = click.option(name, is_flag=True, help=text)(function)
        return function

    return decorate
