"""``send-event``: validate events and queue them durably for the forwarder."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import click

from azs_syslog.cli.exit_codes import ExitCode
from azs_syslog.cli.input_options import input_format_option
from azs_syslog.cli.output import emit_json, json_option, note, warn


def current_config() -> tuple[Any, str | None]:
    """The configuration (for the message settings), or the defaults and the problem when it
    cannot be read: events are still accepted — the worker renders them again under the
    configuration it runs with."""
    from azs_syslog.config import Config, load_config
    from azs_syslog.errors import ConfigError

    try:
        return load_config(), None
    except ConfigError as exc:
        return Config(), str(exc)


@click.command("send-event")
@click.argument("source", default="-", metavar="[FILE|-]")
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Render with N processes (a JSON-lines FILE only, one event per line). Faster on "
    "several cores; events of different parts of the file may then be sent interleaved.",
)
@input_format_option
@json_option
def send_event(source: str, jobs: int, input_format: str, as_json: bool) -> None:
    """Validate events (JSON, a JSON array, or JSON lines) and queue them durably.

    Windows logs are read as they are: an .evtx file, Windows Event XML, or a PowerShell
    Get-WinEvent export (--input-format; UTF-8 with or without a BOM, or UTF-16). A damaged
    part of a file is skipped and reported; everything readable is queued (exit code 3).

    Reads FILE, or standard input for '-' (the default). Each event is on disk when this
    command reports it accepted; the forwarder need not be running. A long-running pipe is
    committed as it goes (at most 0.15 s after each line).

    \b
    Exit codes: 0 every event accepted; 3 some rejected (each reported with its line
    number and the reason); 1 nothing could be queued (every event rejected, or a failure).

    \b
    Examples:
      azs-syslog send-event events.jsonl
      tail -F /var/log/pep-events.jsonl | azs-syslog send-event -
      azs-syslog send-event --jobs 2 --json big-export.jsonl
      azs-syslog send-event Security.evtx
    """
    from azs_syslog.ingest import Rejection, enqueue_jsonl_file, enqueue_records
    from azs_syslog.queue import Queue
    from azs_syslog.render import Renderer, RenderSettings

    config, problem = current_config()
    if problem:
        warn(f"{problem}; rendering with the default settings (the forwarder renders again)")
    settings = RenderSettings.from_config(config)
    renderer = Renderer(settings)
    rejections: list[dict[str, object]] = []
    skipped: list[str] = []
    unit = ["line"]  # what the numbers count: "record" for an .evtx file
    shown: list[Any] = [None]  # the progress display, when one is drawn

    def on_reject(rejection: Rejection) -> None:
        if shown[0] is not None:
            shown[0].rejected += 1
        if as_json:
            rejections.append({unit[0]: rejection.line, "reason": rejection.reason})
        else:
            note(f"rejected: {unit[0]} {rejection.line}: {rejection.reason}")

    def on_skip(problem: str) -> None:
        skipped.append(problem)
        if shown[0] is not None:
            shown[0].skipped += 1
        if not as_json:
            note(f"skipped: {label}: {problem}")

    if jobs > 1 and input_format not in ("auto", "json"):
        raise click.UsageError(
            "--jobs reads JSON lines only (not --input-format " + input_format + ")"
        )
    if jobs > 1 and source != "-" and not _plain_json_lines(source):
        note(f"--jobs splits JSON lines only; reading {source} in one process")
        jobs = 1
    if jobs > 1:
        if source == "-":
            raise click.UsageError("--jobs needs a FILE (standard input cannot be split)")
        path = Path(source)
        if not path.is_file():
            raise click.BadParameter(f"cannot read {source}", param_hint="FILE")

        def make_rendering() -> tuple[Renderer, str]:
            return Renderer(settings), settings.key

        result, rejected_lines = enqueue_jsonl_file(path, jobs, make_rendering)
        for rejection in rejected_lines:
            on_reject(rejection)
        label = source
        with Queue() as queue:
            depth = queue.depth()
    else:
        stream: BinaryIO
        if source == "-":
            stream = sys.stdin.buffer
            label = "<stdin>"
        else:
            try:
                stream = Path(source).open("rb")  # noqa: SIM115 - closed by the with below
            except OSError as exc:
                raise click.BadParameter(
                    f"cannot read {source}: {exc.strerror or exc}", param_hint="FILE"
                ) from exc
            label = source
        with stream, Queue() as queue:
            opened = open_events(stream, input_format, on_skip)
            unit[0] = opened.unit
            shown[0] = progress_for(source, stream, opened.format)
            records = opened.records if shown[0] is None else shown[0].track(opened.records)
            result = enqueue_records(records, queue, renderer, settings.key, on_reject=on_reject)
            depth = queue.depth()

    if as_json:
        emit_json(
            {
                "source": label,
                "accepted": result.accepted,
                "rejected": rejections,
                "truncated": result.truncated,
                "skipped": skipped,
                "queued": depth.events,
            }
        )
    else:
        text = f"accepted {result.accepted} event{'s' if result.accepted != 1 else ''}"
        if result.rejected:
            text += f", rejected {result.rejected}"
        if result.truncated:
            text += f" ({result.truncated} shortened to the maximum message size)"
        if skipped:
            text += f", skipped {len(skipped)} damaged part{'s' if len(skipped) != 1 else ''}"
        note(f"{text}; {depth.events} queued")
    if result.rejected or skipped:
        sys.exit(ExitCode.PARTIAL if result.accepted else ExitCode.FAILED)


def open_events(stream: BinaryIO, input_format: str, on_skip: Callable[[str], None]) -> Any:
    """The input's records, in the format asked for or found (azs_syslog.inputs.detect)."""
    from azs_syslog.inputs.detect import open_input

    return open_input(stream, input_format, on_skip)


def _plain_json_lines(source: str) -> bool:
    """Whether FILE is our JSON in UTF-8 without a BOM (what --jobs can split at line ends)."""
    from azs_syslog.inputs.detect import is_plain_json_lines

    return is_plain_json_lines(Path(source))


def progress_for(source: str, stream: BinaryIO, input_format: str) -> Any:
    """A progress display on stderr when it is a terminal (azs_syslog.cli.progress)."""
    from azs_syslog.cli.progress import progress_for as make

    return make(source, stream, input_format)
