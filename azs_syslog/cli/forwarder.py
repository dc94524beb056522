"""``forwarder run`` (the worker, in the foreground), ``forwarder status`` and
``forwarder release-held``."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from azs_syslog.cli.exit_codes import ExitCode
from azs_syslog.cli.output import console, emit_json, json_lines, json_option, note


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


def _metrics_address(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
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
def run(metrics_address: Any, as_json: bool) -> None:
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


def _exists(path: Any) -> bool:
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
    from azs_syslog.errors import QueueError
    from azs_syslog.forwarder import status as st

    data = st.read_status()
    health = st.evaluate(data, lock=st.worker_lock_held(), lock_pid=st.pid_in_file())
    live: dict[str, Any] | None = None
    if _exists(paths.queue_file()):
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
        live = {
            "events": depth.events,
            "bytes": depth.bytes,
            "oldest_ms": depth.oldest_ms,
            "oldest_age_s": None
            if depth.oldest_ms is None
            else max(0.0, time.time() - depth.oldest_ms / 1000),
        }
        if data is not None:
            data = dict(data)
            data["queue"] = {**(data.get("queue") or {}), **live}
            data["counts"] = {
                name: counts.get(name, value) for name, value in (data.get("counts") or {}).items()
            }
    if data is not None and not health.running:
        data["state"] = st.STOPPED
    if data is not None and (not health.running or not health.current):
        # Connection details describe a live connection, and only a current status has one.
        data["connection"] = None
    if data is not None and health.running and not health.current:
        data["state"] = "running (status not current)"
        data["status_updated"] = data.get("updated")
    if as_json:
        emit_json(
            {
                "healthy": health.healthy,
                "running": health.running,
                "reason": health.reason,
                "status": data,
                "queue": live,
            }
        )
    else:
        _render(data, live, health)
    if not health.healthy:
        sys.exit(ExitCode.FAILED)


def _render(data: dict[str, Any] | None, live: dict[str, Any] | None, health: Any) -> None:
    from rich.table import Table

    from azs_syslog.forwarder import status as st

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, str]] = [
        ("Health", ("healthy" if health.healthy else "UNHEALTHY") + f" ({health.reason})")
    ]
    status = data or {}
    default_state = "running" if health.running else "not running"
    rows.append(("State", str(status.get("state", default_state))))
    blocked = st.blocked_for(status, time.time()) if health.running else None
    if blocked is not None and blocked[1] >= 1:  # shorter waits are ordinary flow control
        rows.append(("Blocked", st.blocked_reason(*blocked)))
    if status.get("pid"):
        rows.append(("Pid", str(status["pid"])))
    server = status.get("server")
    if server:
        rows.append(("Server", f"{server['name']}:{server['port']} ({server['transport']})"))
    rows.extend(_failover_rows(status.get("failover")))
    conn = status.get("connection")
    if conn:
        rows.append(("Connected to", str(conn.get("peer_address") or "-")))
        if conn.get("tls_version"):
            rows.append(("TLS", f"{conn['tls_version']} {conn.get('cipher') or ''}".strip()))
        if conn.get("server_subject"):
            rows.append(("Server certificate", str(conn["server_subject"])))
            rows.append(("  expires", str(conn.get("server_not_after") or "-")))
        rows.append(
            ("Client certificate sent", "yes" if conn.get("client_certificate_sent") else "no")
        )
        if conn.get("relp_offers"):
            offers = ", ".join(f"{k}={v}" for k, v in conn["relp_offers"].items())
            rows.append(("RELP session", f"open; server offers {offers}"))
    if status.get("client_certificate_not_after"):
        rows.append(("Client certificate expires", str(status["client_certificate_not_after"])))
    rows.extend(_certificate_rows(status.get("certificates")))
    queue = (status.get("queue") or live) or {}
    if queue:
        rows.append(
            (
                "Queued",
                f"{_count(queue.get('events', 0), 'event')}, "
                f"{_count(queue.get('bytes', 0), 'byte')}",
            )
        )
        rows.append(("Oldest queued", _age(queue.get("oldest_age_s"))))
    counts = status.get("counts") or {}
    if counts:
        rows.append(("Counts", ", ".join(f"{k} {v}" for k, v in counts.items())))
    rows.append(("Last successful send", _fmt_ms(status.get("last_send_ms"))))
    error = status.get("last_error")
    if error:
        rows.append(
            (
                "Last error",
                f"{error.get('message')} ({error.get('step')}: "
                f"{error.get('cause')}) at {_fmt_ms(error.get('time_ms'))}",
            )
        )
        if error.get("fix"):
            rows.append(("  fix", str(error["fix"])))
    if status.get("config_problem"):
        rows.append(("Configuration problem", str(status["config_problem"])))
    sequence = status.get("sequence")
    if isinstance(sequence, dict):
        rows.append(
            (
                "Sequence",
                f"stream {sequence.get('stream')}, last delivered {sequence.get('last_delivered')}",
            )
        )
    undelivered = (status.get("audit") or {}).get("undelivered") or 0
    if undelivered:
        rows.append(
            (
                "Audit events",
                f"{undelivered} could not reach the server they were for (it was replaced or"
                " removed while the forwarder was not connected to it); see the log",
            )
        )
    held = status.get("held")
    if held:
        rows.append(("Held", str(held.get("message") or _count(held.get("events") or 0, "event"))))
    waiting = status.get("waiting_for_generation")
    if waiting:
        rows.append(("Waiting", str(waiting.get("message"))))
    full = status.get("disk_full")
    if full:
        rows.append(("Condition", f"disk full since {_fmt_ms(full.get('since_ms'))}"))
        for item in full.get("files") or []:
            rows.append(("  cannot write", f"{item.get('what')} {item.get('path')}"))
        rows.append(("  fix", str(full.get("fix"))))
    if not health.current:
        updated = status.get("updated")
        rows.append(
            (
                "Status file",
                "not updated since "
                + (
                    _fmt_ms(int(updated * 1000))
                    if isinstance(updated, (int, float))
                    else "the forwarder started"
                )
                + " (disk full?)",
            )
        )
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


def _failover_rows(failover: object) -> list[tuple[str, str]]:
    """Which of the two servers events go to, why and since when."""
    if not isinstance(failover, dict):
        return []
    other = failover.get("failover") or {}
    rows = [("Failover server", f"{other.get('name')}:{other.get('port')}")]
    active = failover.get("server") or {}
    rows.append(
        (
            "Active",
            f"{failover.get('active')} ({active.get('name')}:{active.get('port')}) since "
            f"{_fmt_ms(failover.get('since_ms'))}: {failover.get('reason')}",
        )
    )
    if failover.get("active") == "failover" and failover.get("next_probe_in_s") is not None:
        probe = f"next probe of the primary in {float(failover['next_probe_in_s']):.0f} s"
        if failover.get("last_probe_error"):
            probe += f" (last: {failover['last_probe_error']})"
        rows.append(("  probe", probe))
    return rows


def _certificate_rows(certificates: object) -> list[tuple[str, str]]:
    """Days left of the certificates the worker checked at its last connection, and a
    warning for each that expires within the warning period."""
    if not isinstance(certificates, dict):
        return []
    left = []
    for key, label in (
        ("client", "client"),
        ("server", "server"),
        ("server_chain_first", "server chain"),
    ):
        entry = certificates.get(key)
        if isinstance(entry, dict) and isinstance(entry.get("days_left"), int):
            left.append(f"{label} {entry['days_left']}")
    rows = [("Certificate days left", ", ".join(left))] if left else []
    for warning in certificates.get("warnings") or []:
        rows.append(("Certificate warning", str(warning)))
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
