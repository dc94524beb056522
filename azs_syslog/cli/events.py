"""``azs-syslog format-event``: the exact syslog message each input event becomes."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

import click

from azs_syslog.cli.exit_codes import ExitCode
from azs_syslog.cli.input_options import input_format_option
from azs_syslog.cli.options import (
    cef_version_option,
    facility_option,
    framing_option,
    message_format_option,
    output_severity_option,
)
from azs_syslog.cli.output import json_lines, json_option, note
from azs_syslog.config.vocabulary import CONFIG_FRAMINGS
from azs_syslog.errors import EventError

if TYPE_CHECKING:
    from azs_syslog.encode.render import Renderer, RenderSettings


def _configured_settings() -> RenderSettings:
    """The RenderSettings of the stored configuration (defaults when nothing is configured)."""
    from azs_syslog.config import load_config
    from azs_syslog.encode.render import RenderSettings

    return RenderSettings.from_config(load_config())


@click.command("format-event")
@click.argument("source", default="-", type=click.File("rb"), metavar="[FILE|-]")
@message_format_option("Syslog header format (default: the configured one, else rfc3164).")
@facility_option(
    "Syslog facility, e.g. authpriv or 10 (default: the configured one, else authpriv)."
)
@cef_version_option("CEF version label: 0 (valid CEF) or 0.0 (as the source writes it).")
@output_severity_option("Default drops Windows events below Warning; Verbose keeps every level.")
@framing_option(
    ("none", *CONFIG_FRAMINGS),
    "Show the message framed as on TCP (octet-counting: the length prefix) or not at all.",
    default="none",
    show_default=True,
)
@click.option(
    "--event-data-names/--no-event-data-names",
    default=None,
    help="Add MasEventDataNames to Windows events, or not (default: as configured, else not).",
)
@input_format_option
@json_option
def format_event(source: IO[bytes], input_format: str, as_json: bool, **overrides: Any) -> None:
    """Print the syslog message each event of FILE (JSON or JSON lines; - for stdin) becomes.

    FILE may also be an .evtx file, Windows Event XML or a PowerShell Get-WinEvent export
    (--input-format). A damaged part of a file is skipped and reported on stderr (exit 3).

    One message per line, nothing for an event the OutputSeverity filter drops. Rejected
    events are reported on stderr with their line number (exit code 3).

    \b
    Examples:
      echo '{"type": "bcdr", "event": "AuditingManualBackup"}' | azs-syslog format-event -
      azs-syslog format-event events.jsonl --message-format rfc5424 --framing octet-counting
      azs-syslog format-event events.jsonl --output-severity Verbose --json
      azs-syslog format-event --json export.xml
    """
    from azs_syslog.cli.send import open_events, progress_for
    from azs_syslog.encode.render import Renderer

    # The options given override the configured settings (framing always: it has a default).
    settings = dataclasses.replace(
        _configured_settings(), **{k: v for k, v in overrides.items() if v is not None}
    )
    out = sys.stdout
    if as_json:
        json_lines()  # one object per event as it is rendered; a failure is the last line
    name = getattr(source, "name", "-")
    printer = _Printer(Renderer(settings), out, as_json, f"{name}")
    stream = cast(BinaryIO, source)
    opened = open_events(stream, input_format, printer.skip)
    printer.unit = opened.unit
    progress = progress_for(name if isinstance(name, str) else "-", stream, opened.format)
    records = opened.records if progress is None else progress.track(opened.records)
    for line, record in _guarded(records, out, as_json):
        if progress is not None:
            progress.rejected, progress.skipped = printer.rejected, len(printer.skipped)
        if record is None:
            printer.rejected += 1
        else:
            printer.render(line, record)
    out.flush()
    if printer.finish():
        click.get_current_context().exit(ExitCode.PARTIAL)


class _Printer:
    """Renders each event and prints its message (or why it was rejected), counting both."""

    def __init__(self, renderer: Renderer, out: IO[str], as_json: bool, name: str) -> None:
        self.renderer, self.out, self.as_json, self.name = renderer, out, as_json, name
        self.unit = "line"
        self.shown = self.rejected = self.shortened = 0
        self.skipped: list[str] = []

    def skip(self, problem: str) -> None:
        """A damaged part of the input, skipped."""
        self.skipped.append(problem)
        if self.as_json:
            self.out.write(json.dumps({"skipped": problem}, ensure_ascii=False) + "\n")
        else:
            note(f"skipped: {self.name}: {problem}")

    def render(self, line: int, record: Any) -> None:
        renderer = self.renderer
        accepted_ms = time.time_ns() // 1_000_000
        truncated_before = renderer.truncated
        try:
            if isinstance(record, dict):
                message = renderer.render_object(record, accepted_ms)
            else:
                message = renderer.render_line(record, accepted_ms)
        except (EventError, RecursionError) as caught:
            exc = (
                caught
                if isinstance(caught, EventError)
                else EventError("invalid JSON: nested too deeply")
            )
            exc.line = line
            self._reject(line, exc)
            return
        if message is not None:
            self._show(line, message.decode("utf-8"), renderer.truncated > truncated_before)

    def _reject(self, line: int, exc: EventError) -> None:
        self.rejected += 1
        if self.as_json:
            item = {self.unit: line, "error": exc.message, "field": exc.field}
            self.out.write(json.dumps(item, ensure_ascii=False) + "\n")
        else:
            where = f"{self.unit} {line}: " if self.unit != "line" else ""
            click.echo(f"error: {where}{exc}", err=True)

    def _show(self, line: int, text: str, truncated: bool) -> None:
        self.shown += 1
        if truncated:
            self.shortened += 1
            if not self.as_json:
                note(
                    f"{self.unit} {line}: shortened to the maximum message size "
                    f"({self.renderer.settings.max_message_size} bytes); the values cut are "
                    "the longest"
                )
        if self.as_json:
            item: dict[str, object] = {self.unit: line, "message": text}
            if truncated:
                item["truncated"] = True
            self.out.write(json.dumps(item, ensure_ascii=False) + "\n")
        else:
            self.out.write(text if text.endswith("\n") else text + "\n")
        self.out.flush()

    def finish(self) -> bool:
        """Say what was left out; True when anything was rejected or skipped."""
        renderer, shown = self.renderer, self.shown
        notes = (
            (
                renderer.filtered,
                f"{renderer.filtered} Windows event(s) below Warning not shown (OutputSeverity "
                f"{renderer.settings.output_severity}; --output-severity Verbose shows them)",
            ),
            (self.shortened, f"{self.shortened} event(s) shortened to the maximum message size"),
            (self.skipped, f"{len(self.skipped)} damaged part(s) skipped, {shown} event(s) shown"),
            (self.rejected, f"{self.rejected} event(s) rejected, {shown} shown"),
        )
        for count, text in notes if not self.as_json else ():
            if count:
                note(text)
        return bool(self.rejected or self.skipped)


def _guarded(records: Any, out: IO[str], as_json: bool) -> Any:
    """The records; an input refused as a whole (an XML entity bomb, a PowerShell export
    without its event data) is reported like a rejected event, and ends the input."""
    try:
        yield from records
    except EventError as exc:
        if as_json:
            message = {"line": exc.line, "error": exc.message, "field": exc.field}
            out.write(json.dumps(message, ensure_ascii=False) + "\n")
        else:
            click.echo(f"error: {exc}", err=True)
        yield exc.line or 0, None
