"""``forwarder run`` (the worker, in the foreground), ``forwarder status`` and
``forwarder release-held``."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from azs_syslog.cli.exit_codes import ExitCode
from azs_syslog.cli.output import console, emit_json, json_lines, json_option, note
from azs_syslog.forwarder.snapshot import (
    Certificates,
    ConnectionStatus,
    Counts,
    FailoverStatus,
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
    try:
        worker = Worker(log=log)
        if metrics is not None:
            metrics.attach(worker.last_snapshot)
            log(f"metrics for Prometheus at http://{metrics_address}/metrics")
        log(f"forwarder starting; queue {worker.queue.path}; socket {paths.socket_file()}")
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


def _fmt_ms(value: object) -> str:
    if not isinstance(value, int):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(value / 1000))


def _age(seconds: object) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _count(number: object, noun: str) -> str:
    """``1 event``, ``2 events``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


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
        _render(data, live, health)
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


def _render(data: StatusSnapshot | None, live: LiveQueue | None, health: Health) -> None:
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, str]] = [
        ("Health", ("healthy" if health.healthy else "UNHEALTHY") + f" ({health.reason})")
    ]
    default_state = "running" if health.running else "not running"
    rows.append(("State", str(data.state if data else default_state)))
    if data is not None:
        rows.extend(_worker_rows(data, health))
    queue = (data.queue if data else None) or live
    if queue is not None:
        rows.append(("Queued", f"{_count(queue.events, 'event')}, {_count(queue.bytes, 'byte')}"))
        rows.append(("Oldest queued", _age(queue.oldest_age_s)))
    if data is not None:
        rows.extend(_delivery_rows(data))
        rows.extend(_condition_rows(data))
    else:
        rows.append(("Last successful send", "-"))
    if not health.current:
        since = "the forwarder started" if data is None else _fmt_ms(int(data.updated * 1000))
        rows.append(("Status file", f"not updated since {since} (disk full?)"))
    for name, value in rows:
        table.add_row(name, value)
    out = console()
    with out.capture() as captured:
        out.print(table)
    # rich pads every row to the table's width (the console's, when a value wraps): no
    # trailing blanks in what a script or a log keeps.
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    sys.stdout.flush()
    if data is None:
        note("the forwarder has not run on this home yet (azs-syslog forwarder run)")


def _worker_rows(status: StatusSnapshot, health: Health) -> list[tuple[str, str]]:
    """Blocked, the pid, the server and the connection, the certificates."""
    from azs_syslog.forwarder import status as st

    rows: list[tuple[str, str]] = []
    blocked = st.blocked_for(status, time.time()) if health.running else None
    if blocked is not None and blocked[1] >= 1:  # shorter waits are ordinary flow control
        rows.append(("Blocked", st.blocked_reason(*blocked)))
    if status.pid:
        rows.append(("Pid", str(status.pid)))
    server = status.server
    if server:
        rows.append(("Server", f"{server.name}:{server.port} ({server.transport})"))
    rows.extend(_failover_rows(status.failover))
    rows.extend(_connection_rows(status.connection))
    if status.client_certificate_not_after:
        rows.append(("Client certificate expires", status.client_certificate_not_after))
    rows.extend(_certificate_rows(status.certificates))
    return rows


def _connection_rows(conn: ConnectionStatus | None) -> list[tuple[str, str]]:
    if conn is None:
        return []
    rows = [("Connected to", conn.peer_address or "-")]
    if conn.tls_version:
        rows.append(("TLS", f"{conn.tls_version} {conn.cipher or ''}".strip()))
    if conn.server_subject:
        rows.append(("Server certificate", conn.server_subject))
        rows.append(("  expires", conn.server_not_after or "-"))
    rows.append(("Client certificate sent", "yes" if conn.client_certificate_sent else "no"))
    if conn.relp_offers:
        offers = ", ".join(f"{k}={v}" for k, v in conn.relp_offers.items())
        rows.append(("RELP session", f"open; server offers {offers}"))
    return rows


def _delivery_rows(status: StatusSnapshot) -> list[tuple[str, str]]:
    """The counts, the last send, the last error, the sequence, undelivered audit events."""
    rows = [
        ("Counts", ", ".join(f"{k} {v}" for k, v in status.counts.items())),
        ("Last successful send", _fmt_ms(status.last_send_ms)),
    ]
    error = status.last_error
    if error:
        rows.append(
            (
                "Last error",
                f"{error.message} ({error.step}: {error.cause}) at {_fmt_ms(error.time_ms)}",
            )
        )
        if error.fix:
            rows.append(("  fix", error.fix))
    if status.config_problem:
        rows.append(("Configuration problem", status.config_problem))
    if status.sequence is not None:
        sequence = status.sequence
        rows.append(
            ("Sequence", f"stream {sequence.stream}, last delivered {sequence.last_delivered}")
        )
    if status.audit.undelivered:
        rows.append(
            (
                "Audit events",
                f"{status.audit.undelivered} could not reach the server they were for (it was"
                " replaced or removed while the forwarder was not connected to it); see the log",
            )
        )
    return rows


def _condition_rows(status: StatusSnapshot) -> list[tuple[str, str]]:
    """Held events, a wait for a configuration generation, a full disk."""
    rows: list[tuple[str, str]] = []
    if status.held:
        rows.append(("Held", status.held.message or _count(status.held.events, "event")))
    if status.waiting_for_generation:
        rows.append(("Waiting", status.waiting_for_generation.message))
    full = status.disk_full
    if full:
        rows.append(("Condition", f"disk full since {_fmt_ms(full.since_ms)}"))
        for item in full.files:
            rows.append(("  cannot write", f"{item.what} {item.path}"))
        rows.append(("  fix", full.fix))
    return rows


def _failover_rows(failover: FailoverStatus | None) -> list[tuple[str, str]]:
    """Which of the two servers events go to, why and since when."""
    if failover is None:
        return []
    other, active = failover.failover, failover.server
    rows = [
        ("Failover server", f"{other.name}:{other.port}"),
        (
            "Active",
            f"{failover.active} ({active.name}:{active.port}) since "
            f"{_fmt_ms(failover.since_ms)}: {failover.reason}",
        ),
    ]
    if failover.active == "failover" and failover.next_probe_in_s is not None:
        probe = f"next probe of the primary in {float(failover.next_probe_in_s):.0f} s"
        if failover.last_probe_error:
            probe += f" (last: {failover.last_probe_error})"
        rows.append(("  probe", probe))
    return rows


def _certificate_rows(certificates: Certificates | None) -> list[tuple[str, str]]:
    """Days left of the certificates the worker checked at its last connection, and a
    warning for each that expires within the warning period."""
    if certificates is None:
        return []
    left = [
        f"{label} {entry.days_left}"
        for label, entry in (
            ("client", certificates.client),
            ("server", certificates.server),
            ("server chain", certificates.server_chain_first),
        )
        if entry is not None
    ]
    rows = [("Certificate days left", ", ".join(left))] if left else []
    for warning in certificates.warnings:
        rows.append(("Certificate warning", warning))
    return rows


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
