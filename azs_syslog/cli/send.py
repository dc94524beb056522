"""``send-event``: validate events and queue them durably for the forwarder."""

from __future__ import annotations

import contextlib
import errno
import shlex
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import click

from azs_syslog.cli.exit_codes import ExitCode
from azs_syslog.cli.input_options import input_format_option
from azs_syslog.cli.output import emit_json, error, json_option, note, warn


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
    help="Read and render with N processes: a JSON-lines FILE (one event per line) is cut at "
    "line ends, an .evtx FILE at its 64 KiB chunks. Pays with N cores free for it: each "
    "process reads, renders and queues its part on its own core. With no core to spare "
    "(two cores shared with a running forwarder and receiver) it gains little, and on a "
    "machine busy with other work it can be slower than 1: the processes compete for the "
    "CPU and take turns at the queue's write lock. Events of different parts of the file "
    "may then be sent interleaved; an .evtx file's damaged parts are reported at the end.",
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
    Exit codes: 0 every event accepted; 3 partly: some rejected (each reported with its line
    number and the reason), or the queue stopped taking events part-way (a full disk;
    the report says how many were queued and from which line on they were not); 1 nothing
    could be queued (every event rejected, or a failure before the first commit).

    \b
    Examples:
      azs-syslog send-event events.jsonl
      tail -F /var/log/pep-events.jsonl | azs-syslog send-event -
      azs-syslog send-event --jobs 2 --json big-export.jsonl
      azs-syslog send-event Security.evtx
      azs-syslog send-event --jobs 2 Security.evtx
    """
    from azs_syslog.encode.render import Renderer, RenderSettings
    from azs_syslog.queue import Queue

    config, problem = current_config()
    if problem:
        # A user who may not read the configuration often may not write the queue either:
        # then that refusal is the one line to print, not a warning before it.
        Queue().close()
        warn(f"{problem}; rendering with the default settings (the forwarder renders again)")
    settings = RenderSettings.from_config(config)
    # Recorded with every batch: the worker never sends these events under an older
    # configuration than this one, nor over a weaker transport (docs/architecture.md).
    origin = {"generation": config.generation, "level": config.security_level}
    run = _Run(source, as_json)
    jobs, kind = _effective_jobs(source, jobs, input_format)
    if jobs > 1:

        def make_rendering() -> tuple[Renderer, str]:
            return Renderer(settings), settings.key

        result, failure = _queue_with_jobs(run, jobs, kind, make_rendering, origin)
    else:
        result, failure = _queue_stream(run, input_format, Renderer(settings), settings.key, origin)
    events_queued = queue_depth(Queue)
    if as_json:
        _report_json(run, result, failure, events_queued, jobs)
    else:
        _report_text(run, result, failure, events_queued, settings.output_severity)
    if result.accepted and not problem and config.server is None:
        warn(
            "no syslog server is configured: events are queued, not sent, until one is set "
            "(azs-syslog set-syslog-server --server-name NAME --server-port PORT)"
        )
    if failure is not None:
        message, fix = failure_text(failure, source, jobs, run.unit)
        error(message, fix=fix)
        sys.exit(ExitCode.PARTIAL if result.accepted else ExitCode.FAILED)
    if result.rejected or run.skipped:
        sys.exit(ExitCode.PARTIAL if result.accepted else ExitCode.FAILED)


class _Run:
    """One ``send-event``: where it reads, and the rejections and skipped parts it reports."""

    def __init__(self, source: str, as_json: bool) -> None:
        self.source = source
        self.as_json = as_json
        self.label = "<stdin>" if source == "-" else source
        self.rejections: list[dict[str, object]] = []
        self.skipped: list[str] = []
        self.unit = "line"  # what the numbers count: "record" for an .evtx file
        self.shown: Any = None  # the progress display, when one is drawn

    @property
    def where(self) -> str:
        return "standard input" if self.source == "-" else self.label

    def on_reject(self, rejection: Any) -> None:
        if self.shown is not None:
            self.shown.rejected += 1
        if self.as_json:
            self.rejections.append({self.unit: rejection.line, "reason": rejection.reason})
        else:
            note(f"rejected: {self.unit} {rejection.line}: {rejection.reason}")

    def on_skip(self, problem: str) -> None:
        self.skipped.append(problem)
        if self.shown is not None:
            self.shown.skipped += 1
        if not self.as_json:
            note(f"skipped: {self.label}: {problem}")


def _effective_jobs(source: str, jobs: int, input_format: str) -> tuple[int, str]:
    """``--jobs``, checked, and what the file holds (``json`` or ``evtx``): 1 where the input
    cannot be split."""
    if jobs == 1:
        return 1, "json"
    if input_format not in ("auto", "json", "evtx"):
        raise click.UsageError(
            "--jobs reads JSON lines and .evtx files only (not --input-format " + input_format + ")"
        )
    if source == "-":
        raise click.UsageError("--jobs needs a FILE (standard input cannot be split)")
    from azs_syslog.inputs.text import EVTX_MAGIC

    try:  # read here first (the checks and the split below): said as without --jobs
        with Path(source).open("rb") as handle:
            magic = handle.read(len(EVTX_MAGIC))
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {source}: {exc.strerror or exc}", param_hint="FILE"
        ) from exc
    if not Path(source).is_file():
        raise click.BadParameter(f"cannot read {source}: not a file", param_hint="FILE")
    if input_format != "json" and magic == EVTX_MAGIC:
        from azs_syslog.inputs.evtx import chunk_count

        return max(1, min(jobs, chunk_count(source))), "evtx"
    if input_format == "evtx" or not _plain_json_lines(source):
        note(f"--jobs splits JSON lines and .evtx files only; reading {source} in one process")
        return 1, "json"
    return jobs, "json"


def _bytes_of(chunk: Any) -> int:
    """About the bytes of the JSON lines of a chunk (stripped, each with its newline)."""
    return sum(map(len, chunk[1])) + len(chunk[1])


def _queue_with_jobs(
    run: _Run, jobs: int, kind: str, make_rendering: Callable[[], Any], origin: dict[str, int]
) -> tuple[Any, Any]:
    """Queue a JSON-lines or ``.evtx`` FILE with ``jobs`` producer processes: (result,
    failure or None)."""
    from azs_syslog.queue.ingest import IngestFailure
    from azs_syslog.queue.jobs import Part, enqueue_file, pinned, read_lines, split_lines

    failure: IngestFailure | None = None
    shown = progress_for(run.source, None, kind)
    if shown is not None:
        shown.start()
    try:
        with pinned(Path(run.source)) as path:  # the split and the producers: one file
            units = None  # records of an .evtx file; about the bytes of JSON lines
            if kind == "evtx":
                from azs_syslog.inputs.evtx import read_part, split_chunks

                run.unit = "record"
                parts, reader = [Part(*part) for part in split_chunks(path, jobs)], read_part
            else:
                parts, reader = split_lines(path, jobs), read_lines
                units = _bytes_of
            result, rejected, skipped = enqueue_file(
                path,
                parts,
                reader,
                make_rendering,
                on_progress=shown.show if shown is not None else None,
                units=units,
                **origin,
            )
    except IngestFailure as exc:
        failure, result, rejected, skipped = exc, exc.result, exc.rejections, exc.skipped
    finally:
        if shown is not None:
            shown.stop()
    for problem in skipped:
        run.on_skip(problem)
    for rejection in rejected:
        run.on_reject(rejection)
    return result, failure


def _queue_stream(
    run: _Run, input_format: str, renderer: Any, render_key: str, origin: dict[str, int]
) -> tuple[Any, Any]:
    """Queue FILE or standard input in this process: (result, failure or None)."""
    from azs_syslog.queue import Queue
    from azs_syslog.queue.ingest import IngestFailure, StopSignals, enqueue_chunks

    stream: BinaryIO
    if run.source == "-":
        stream = sys.stdin.buffer
    else:
        try:
            stream = Path(run.source).open("rb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {run.source}: {exc.strerror or exc}", param_hint="FILE"
            ) from exc
    failure = None
    with stream, open_queue(Queue) as queue, StopSignals() as stop:
        opened = open_events(stream, input_format, run.on_skip)
        run.unit = opened.unit
        run.shown = progress_for(run.source, stream, opened.format)
        chunks = opened.chunks
        if run.shown is not None:
            chunks = run.shown.track(chunks, lambda chunk: len(chunk[0]))
        try:
            result = enqueue_chunks(
                chunks,
                queue,
                renderer,
                render_key,
                on_reject=run.on_reject,
                read_to_end=run.source != "-",
                stop=stop,
                **origin,
            )
        except IngestFailure as exc:
            failure, result = exc, exc.result
    return result, failure


def _report_json(
    run: _Run, result: Any, failure: Any, events_queued: int | None, jobs: int
) -> None:
    report: dict[str, object] = {
        "source": run.label,
        "accepted": result.accepted,
        "filtered": result.filtered,
        "rejected": run.rejections,
        "truncated": result.truncated,
        "queued": events_queued,
        "skipped": run.skipped,
        "not_queued": failure.not_queued if failure is not None else 0,
    }
    if failure is not None:
        message, fix = failure_text(failure, run.source, jobs)
        report["not_queued_lines"] = [list(span) for span in failure.ranges]
        report["rest_unread"] = failure.rest_unread
        report["error"] = {
            "cause": "interrupted"
            if failure.interrupted
            else "disk full"
            if is_disk_full(failure)
            else "queue",
            "message": message,
            "fix": fix,
        }
    emit_json(report)


def _report_text(
    run: _Run, result: Any, failure: Any, events_queued: int | None, output_severity: str
) -> None:
    # A Windows event below the OutputSeverity threshold is accepted and queued like any other
    # (the worker renders it again under the severity it runs with) but is not sent under
    # this one: said, and counted apart as "filtered" (of the accepted).
    if not (result.accepted or result.rejected or run.skipped or failure is not None):
        note(f"no events in {run.where}")
        return
    text = f"accepted {_events(result.accepted)} from {run.where}"
    if result.filtered:
        text += (
            f" ({'all' if result.filtered == result.accepted else result.filtered} of "
            f"them filtered: Windows events below Warning are not sent with OutputSeverity "
            f"{output_severity}; set-syslog-client --output-severity Verbose "
            "sends them)"
        )
    if result.rejected:
        text += f", rejected {result.rejected}"
    if result.truncated:
        text += f" ({result.truncated} shortened to the maximum message size)"
    if run.skipped:
        text += f", skipped {len(run.skipped)} damaged part{'s' if len(run.skipped) != 1 else ''}"
    if failure is not None:
        text += _failure_clause(failure, run.unit)
    held = "cannot be read" if events_queued is None else f"holds {_events(events_queued)}"
    note(f"{text}; the queue now {held}")


def _failure_clause(failure: Any, unit: str) -> str:
    if failure.rest_unread and not failure.not_queued:
        return f", stopped before {_first_unread(failure, unit)}"
    clause = f", {failure.not_queued} not queued ({describe_ranges(failure, unit)})"
    if failure.rest_unread:
        clause += " and the rest of the input not read"
    return clause


def _events(count: int) -> str:
    return f"{count} event{'s' if count != 1 else ''}"


@contextlib.contextmanager
def open_queue(queue_class: Any) -> Iterator[Any]:
    """The queue, or — when it cannot be opened because the disk is full — that error in the
    words of a partial failure: nothing was queued."""
    from azs_syslog import paths
    from azs_syslog.errors import QueueError

    try:
        queue = queue_class()
    except QueueError as exc:
        if not is_disk_full(exc):
            raise
        where = paths.state_dir()
        raise QueueError(
            f"disk full: nothing queued: {exc.message}",
            fix=f"free space on the file system of {where} (df -h {where}), then send the "
            "input again",
        ) from exc
    with queue:
        yield queue


def queue_depth(queue_class: Any) -> int | None:
    """Events in the queue now, or None when the queue cannot even be read."""
    from azs_syslog.errors import QueueError

    try:
        with queue_class() as queue:
            return int(queue.depth().events)
    except (QueueError, sqlite3.Error, OSError):
        return None


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it, in this process or a producer process, whose
    message is all that reaches here) is a full file system."""
    seen: BaseException | None = exc
    for _ in range(10):  # bounded: a cause chain is short
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(seen, sqlite3.Error) and (
            getattr(seen, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(exc).lower()
    return "disk is full" in text or "no space left" in text or "quota exceeded" in text


def describe_ranges(failure: Any, unit: str = "line") -> str:
    """``lines 2001-end``, or ``lines 2001-12500, 14001-end`` for several producers (or
    ``records …`` for an input counted in records, such as an .evtx file)."""
    spans = [f"{first}-{'end' if last is None else last}" for first, last in failure.ranges]
    return f"{unit}s " + ", ".join(spans) if spans else f"no {unit}"


def _first_unread(failure: Any, unit: str) -> str:
    """``line 44001``: where a stopped input was left (one part: no --jobs)."""
    first = failure.ranges[0][0] if failure.ranges else "?"
    return f"{unit} {first}"


def failure_text(failure: Any, source: str, jobs: int, unit: str = "line") -> tuple[str, str]:
    """The error line and its fix for a partial ``send-event``."""
    from azs_syslog import paths

    queued = failure.result.accepted
    head = (
        f"{queued} event{'s' if queued != 1 else ''} queued, {failure.not_queued} not "
        f"({describe_ranges(failure, unit)})"
        if failure.not_queued or not failure.rest_unread
        else f"{queued} event{'s' if queued != 1 else ''} queued, none from "
        f"{_first_unread(failure, unit)} on"
    )
    if unit != "line":
        # Not JSON lines (an .evtx file, Event XML): no tail or sed cuts it at a record.
        first = failure.ranges[0][0] if failure.ranges else "?"
        again = (
            f"send the {unit}s from {unit} {first} on again (not the whole input: what is"
            " queued would be sent twice)"
        )
    elif len(failure.ranges) == 1 and source != "-":
        again = f"tail -n +{failure.ranges[0][0]} {shlex.quote(source)} | azs-syslog send-event -"
    elif source == "-":
        again = "send the input again from the first line not queued"
    else:
        script = ";".join(
            f"{first},{'$' if last is None else last}p" for first, last in failure.ranges
        )
        again = f"sed -n {shlex.quote(script)} {shlex.quote(source)} | azs-syslog send-event -"
    if failure.interrupted:
        return f"interrupted: {failure.message}; {head}", f"to queue the rest: {again}"
    if is_disk_full(failure):
        where = paths.state_dir()
        return (
            f"disk full: {head}: {failure.message}",
            f"free space on the file system of {where} (df -h {where}), then: {again}",
        )
    fix = failure.fix or "check the free disk space and the queue file's permissions"
    return f"cannot queue: {head}: {failure.message}", f"{fix}; then: {again}"


def open_events(stream: BinaryIO, input_format: str, on_skip: Callable[[str], None]) -> Any:
    """The input's records, in the format asked for or found (azs_syslog.inputs.detect)."""
    from azs_syslog.inputs.detect import open_input

    return open_input(stream, input_format, on_skip)


def _plain_json_lines(source: str) -> bool:
    """Whether FILE is our JSON in UTF-8 without a BOM (what --jobs can split at line ends)."""
    from azs_syslog.inputs.detect import is_plain_json_lines

    return is_plain_json_lines(Path(source))


def progress_for(source: str, stream: BinaryIO | None, input_format: str) -> Any:
    """A progress display on stderr when it is a terminal (azs_syslog.cli.progress)."""
    from azs_syslog.cli.progress import progress_for as make

    return make(source, stream, input_format)
