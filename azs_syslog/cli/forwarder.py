"""``forwarder run`` (the worker, in the foreground), ``forwarder status`` and
``forwarder release-held``."""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from azs_syslog.cli.exit_codes import ExitCode
from azs_syslog.cli.output import emit_json, json_lines, json_option, note
from azs_syslog.cli.status_table import render
from azs_syslog.forwarder.snapshot import (
    Counts,
    LiveQueue,
    QueueStatus,
    StatusSnapshot,
)

if TYPE_CHECKING:
    from azs_syslog.forwarder.metrics import Address
    from azs_syslog.forwarder.status import Health


@click.group("forwarder")
def forwarder() -> None:
    """Run the forwarder worker, show its status, or release held events.

    \b
    Examples:
      azs-syslog forwarder run
      azs-syslog forwarder status
      azs-syslog forwarder release-held
      systemctl reload azs-syslog-forwarder   # SIGHUP: re-read the configuration now
    """


def _metrics_address(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> Address | None:
    if value is None or value == "":
        return None
    from azs_syslog.forwarder.metrics import parse_address

    try:
        return parse_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@forwarder.command("run")
@click.option(
    "--metrics-address",
    metavar="HOST:PORT",
    envvar="AZS_SYSLOG_METRICS_ADDRESS",
    show_envvar=True,
    callback=_metrics_address,
    help="Serve metrics for Prometheus at http://HOST:PORT/metrics (off by default), e.g."
    " 127.0.0.1:9464.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Log as JSON lines on stdout, {"time": ..., "message": ...}, one per event of note '
    "(a failure ends them with an error object), for a log collector.",
)
def run(metrics_address: Address | None, as_json: bool) -> None:
    """Run the forwarder worker in the foreground (a systemd unit runs this).

    Sends queued events to the configured server, picks up configuration changes within
    2 s (also on SIGHUP), and listens for JSON lines on its Unix socket. SIGTERM or SIGINT
    stops it cleanly within 5 s (a second one forces the stop).

    \b
    Examples:
      azs-syslog forwarder run
      azs-syslog forwarder run --metrics-address 127.0.0.1:9464
      AZS_SYSLOG_HOME=/var/lib/azs-syslog azs-syslog forwarder run
      azs-syslog forwarder run --json | my-log-shipper
    """
    from azs_syslog import paths
    from azs_syslog.forwarder.worker import Worker

    if as_json:
        # A log, not a document: it runs for months, so one object per line as it happens.
        json_lines()

    def log(message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if as_json:
            line = json.dumps({"time": stamp, "message": message}, ensure_ascii=False)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        else:
            click.echo(f"{stamp} {message}", err=True)

    metrics = None
    if metrics_address is not None:
        from azs_syslog.forwarder.metrics import MetricsServer

        metrics = MetricsServer(metrics_address)
        metrics.start()  # first: an address in use is an error before anything else starts
    # A stop signal that arrives while the worker starts (before its own handlers are in,
    # but after its pid-file lock shows it running) is kept, not fatal: it stops the worker
    # as soon as it runs, cleanly.
    early: list[int] = []
    started: list[Worker] = []

    def stop_early(signum: int, frame: object) -> None:
        early.append(signum)
        for worker in started:
            worker.request_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop_early)
    try:
        worker = Worker(log=log)
        started.append(worker)
        if metrics is not None:
            metrics.attach(worker.last_snapshot)
            log(f"metrics for Prometheus at http://{metrics_address}/metrics")
        log(f"forwarder starting; queue {worker.queue.path}; socket {paths.socket_file()}")
        if early:
            worker.request_stop()
        summary = worker.run()
    finally:
        if metrics is not None:
            metrics.stop()
    log(f"forwarder stopped; {summary}")


def _exists(path: Path) -> bool:
    """``path.exists()``, except that a directory the user may not enter is an error naming
    it, not a file that is not there."""
    from azs_syslog import fserrors

    try:
        path.stat()
    except FileNotFoundError:
        return False
    except PermissionError:
        raise fserrors.access_error(path, "read", write=False) from None
    return True


@forwarder.command("status")
@json_option
def status(as_json: bool) -> None:
    """Show the worker's live state.

    \b
    Exit codes: 0 healthy (connected, or nothing to send and no server configured);
    1 anything else: not running (no forwarder holds the lock on its pid file), a full disk,
    a status file that is not being updated, not configured with events waiting, connecting,
    backing off, a configuration problem, held events, or a network call blocked for more
    than 5 s (a server that does not read).

    \b
    Examples:
      azs-syslog forwarder status
      azs-syslog forwarder status --json | jq .queue
      azs-syslog forwarder status >/dev/null || echo "forwarding is unhealthy"
    """
    from azs_syslog import paths
    from azs_syslog.forwarder import status as st

    data = st.read_snapshot()
    health = st.evaluate(data, lock=st.worker_lock_held(), lock_pid=st.pid_in_file())
    live: LiveQueue | None = None
    if _exists(paths.queue_file()):
        live, counts = _live_queue()
        if data is not None:
            queue = data.queue or QueueStatus(0, 0, None, None)
            data = replace(
                data,
                queue=QueueStatus(
                    live.events,
                    live.bytes,
                    live.oldest_ms,
                    live.oldest_age_s,
                    queue.in_flight_batches,
                ),
                counts=Counts(*(counts.get(name, value) for name, value in data.counts.items())),
            )
    if data is not None:
        data = _as_seen(data, health)
    if as_json:
        emit_json(
            {
                "healthy": health.healthy,
                "running": health.running,
                "reason": health.reason,
                "status": None if data is None else data.as_json(),
                "queue": None if live is None else asdict(live),
            }
        )
    else:
        render(data, live, health)
    if not health.healthy:
        sys.exit(ExitCode.FAILED)


def _live_queue() -> tuple[LiveQueue, dict[str, int]]:
    """The queue's depth and counters, read now."""
    from azs_syslog import paths
    from azs_syslog.errors import QueueError
    from azs_syslog.queue import Queue

    try:
        with Queue(durable=False) as queue:
            depth = queue.depth()
            counts = queue.counters()
    except QueueError:
        # A full disk can keep the queue from being opened normally; reading it needs no
        # space. Anything else (a permission) is for the operator to hear.
        from azs_syslog import fserrors

        if (fserrors.free_bytes(paths.state_dir()) or 0) >= fserrors.LOW_SPACE_BYTES:
            raise
        with Queue.snapshot() as queue:
            depth = queue.depth()
            counts = queue.counters()
    age = None if depth.oldest_ms is None else max(0.0, time.time() - depth.oldest_ms / 1000)
    return LiveQueue(depth.events, depth.bytes, depth.oldest_ms, age), counts


def _as_seen(data: StatusSnapshot, health: Health) -> StatusSnapshot:
    """The status as ``forwarder status`` shows it: a worker that is not running is stopped;
    connection details describe a live connection, and only a current status has one."""
    from azs_syslog.forwarder import status as st

    if not health.running:
        data = replace(data, state=st.STOPPED)
    if not health.running or not health.current:
        data = replace(data, connection=None)
    if health.running and not health.current:
        data = replace(data, state="running (status not current)", status_updated=data.updated)
    return data


@forwarder.command("release-held")
@json_option
def release_held(as_json: bool) -> None:
    """Send the held events under the current, weaker, transport.

    Events accepted while a stronger transport was configured (TLS) are never sent over a
    weaker one (TCP or UDP in clear text, or TLS without a certificate check) on their own:
    the forwarder holds them, and `forwarder status` counts them. Configuring the stronger
    transport again delivers them; this command is the other way out: your consent, recorded
    in the queue, to send the events held now under the configuration in force now. Events
    accepted later, or a configuration weaker still, are held again.

    \b
    Exit codes: 0 done (the number released is printed, 0 when nothing was held);
    1 no server is configured, or the configuration or the queue cannot be read.

    \b
    Examples:
      azs-syslog forwarder status              # "N events accepted under TLS are held ..."
      azs-syslog forwarder release-held
      azs-syslog forwarder release-held --json
    """
    from azs_syslog import paths
    from azs_syslog.config import load_config
    from azs_syslog.errors import AzsSyslogError

    config = load_config()
    if config.server is None:
        raise AzsSyslogError(
            "no syslog server is configured, so there is nothing to release held events to",
            fix="configure the server with set-syslog-server, then run this command again",
        )
    released = 0
    if paths.queue_file().exists():
        from azs_syslog.queue import Queue

        with Queue() as queue:
            released = queue.release_held(config.security_level, config.generation)
    transport = config.describe_transport()
    if as_json:
        emit_json(
            {
                "released": released,
                "transport": transport,
                "level": config.security_level,
                "generation": config.generation,
            }
        )
    elif released:
        note(
            f"released {released} held event{'s' if released != 1 else ''}: the forwarder sends"
            f" {'them' if released != 1 else 'it'} under the current configuration ({transport})"
            " within a second"
        )
    else:
        note(f"no events are held under the current configuration ({transport})")


@forwarder.command("repair")
@json_option
def repair(as_json: bool) -> None:
    """Rebuild a damaged queue database from what can still be read of it.

    Checks the queue (PRAGMA integrity_check) and leaves a healthy one untouched. A damaged
    one is moved aside, in the same directory, as queue.sqlite3.damaged-<UTC time> (with its
    -wal and -shm), and every batch that can still be read is rendered again into a fresh
    queue, with the persistent counters. Refused while a forwarder runs for this home: stop it
    first.

    \b
    Exit codes: 0 nothing to repair, or everything recovered; 3 repaired, but some events
    were lost; 1 nothing could be read (a fresh, empty queue replaces it), or a failure.

    \b
    Examples:
      systemctl stop azs-syslog-forwarder
      azs-syslog forwarder repair
      systemctl start azs-syslog-forwarder
    """
    from azs_syslog.forwarder.repair import repair_queue

    report = repair_queue()
    if as_json:
        emit_json(report.as_dict())
    elif not report.needed:
        note(f"{report.path}: the queue is healthy; nothing to repair")
    else:
        lost = "an unknown number of" if report.events_lost is None else str(report.events_lost)
        note(f"{report.path}: damaged ({report.problem})")
        for moved in report.moved_to:
            note(f"moved aside: {moved}")
        note(
            f"recovered {report.batches_recovered} batches ({report.events_recovered} events);"
            f" lost {report.batches_lost} batches ({lost} events)"
            + ("" if report.counters_recovered else "; the counters could not be read")
        )
    if not report.complete:
        sys.exit(ExitCode.PARTIAL if report.read_anything else ExitCode.FAILED)
