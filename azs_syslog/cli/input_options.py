"""``--input-format``, shared by ``send-event`` and ``format-event``, and the reports of what an
input skipped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

# The same names as azs_syslog.inputs.detect.INPUT_FORMATS (not imported: start-up time).
INPUT_FORMATS = ("auto", "json", "evtx", "xml", "powershell")


def input_format_option(function: F) -> F:
    return click.option(
        "--input-format",
        type=click.Choice(INPUT_FORMATS),
        default="auto",
        show_default=True,
        help="What FILE holds: our JSON / JSON lines, an .evtx file, Windows Event XML "
        "(wevtutil /f:xml or /f:RenderedXml), or PowerShell 'Get-WinEvent | ConvertTo-Json "
        "-Depth 3'. auto tells them apart by their first bytes.",
    )(function)
