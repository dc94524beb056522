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
    from azs_syslog.encode.render import RenderSettings


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
def format_event(
    source: IO[bytes],
    message_format: str | None,
    facility: int | None,
    cef_version: str | None,
    output_severity: str | None,
    framing: str,
    event_data_names: bool | None,
    input_format: str,
    as_json: bool,
) -> None:
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

    settings = _configured_settings()
    overrides: dict[str, Any] = {
        "message_format": message_format,
        "facility": facility,
        "cef_version": cef_version,
        "output_severity": output_severity,
        "framing": framing,
        "event_data_names": event_data_names,
    }
    settings = dataclasses.replace(
        settings, **{k: v for k, v in overrides.items() if v is not None}
    )
    renderer = Renderer(settings)
    out = sys.stdout
    if as_json:
        json_lines()  # one object per event as it is rendered; a failure is the last line
    shown = rejected = shortened = 0
    skipped: list[str] = []

    def on_skip(problem: str) -> None:
        skipped.append(problem)
        if as_json:
            out.write(json.dumps({"skipped": problem}, ensure_ascii=False) + "\n")
        else:
            note(f"skipped: {getattr(source, 'name', '-')}: {problem}")

    stream = cast(BinaryIO, source)
    opened = open_events(stream, input_format, on_skip)
    name = getattr(source, "name", "-")
    progress = progress_for(name if isinstance(name, str) else "-", stream, opened.format)
    records = opened.records if progress is None else progress.track(opened.records)
    for line, record in _guarded(records, out, as_json):
        if progress is not None:
            progress.rejected, progress.skipped = rejected, len(skipped)
        if record is None:
            rejected += 1
            continue
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
            rejected += 1
            if as_json:
                out.write(
                    json.dumps(
                        {opened.unit: line, "error": exc.message, "field": exc.field},
                        ensure_ascii=False,
                    )
                    + "\n"
                )
            else:
                where = f"{opened.unit} {line}: " if opened.unit != "line" else ""
                click.echo(f"error: {where}{exc}", err=True)
            continue
        if message is None:
            continue
        shown += 1
        text = message.decode("utf-8")
        truncated = renderer.truncated > truncated_before
        if truncated:
            shortened += 1
            if not as_json:
                note(
                    f"{opened.unit} {line}: shortened to the maximum message size "
                    f"({settings.max_message_size} bytes); the values cut are the longest"
                )
        if as_json:
            item: dict[str, object] = {opened.unit: line, "message": text}
            if truncated:
                item["truncated"] = True
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
        else:
            out.write(text if text.endswith("\n") else text + "\n")
        out.flush()
    out.flush()
    if not as_json and renderer.filtered:
        note(
            f"{renderer.filtered} Windows event(s) below Warning not shown "
            f"(OutputSeverity {settings.output_severity}; --output-severity Verbose shows them)"
        )
    if shortened and not as_json:
        note(f"{shortened} event(s) shortened to the maximum message size")
    if skipped and not as_json:
        note(f"{len(skipped)} damaged part(s) skipped, {shown} event(s) shown")
    if rejected or skipped:
        if rejected and not as_json:
            note(f"{rejected} event(s) rejected, {shown} shown")
        click.get_current_context().exit(ExitCode.PARTIAL)


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
