"""``forwarder run`` (the worker, in the foreground) and ``forwarder status``."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from azs_syslog.cli.exit_codes import ExitCode
from azs_syslog.cli.output import console, emit_json, json_option, note


@click.group("forwarder")
def forwarder() -> None:
    """Run the forwarder worker, or show its status.

    \b
    Examples:
      azs-syslog forwarder run
      azs-syslog forwarder status
      systemctl reload azs-syslog-forwarder   # SIGHUP: re-read the configuration now
    """


@forwarder.command("run")
def run() -> None:
    """Run the forwarder worker in the foreground (a systemd unit runs this).

    Sends queued events to the configured server, picks up configuration changes within
    2 s (also on SIGHUP), and listens for JSON lines on its Unix socket. SIGTERM or SIGINT
    stops it cleanly within 5 s (a second one forces the stop).

    \b
    Examples:
      azs-syslog forwarder run
      AZS_SYSLOG_HOME=/var/lib/azs-syslog azs-syslog forwarder run
    """
    from azs_syslog import paths
    from azs_syslog.worker import Worker

    def log(message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        click.echo(f"{stamp} {message}", err=True)

    worker = Worker(log=log)
    log(f"forwarder starting; queue {worker.queue.path}; socket {paths.socket_file()}")
    summary = worker.run()
    log(f"forwarder stopped; {summary}")


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


@forwarder.command("status")
@json_option
def status(as_json: bool) -> None:
    """Show the worker's live state.

    \b
    Exit codes: 0 healthy (connected, or nothing to send and no server configured);
    1 anything else: not running (no status file, a stopped worker, a dead pid or a stale
    status), not configured with events waiting, connecting, backing off, or a configuration
    problem.

    \b
    Examples:
      azs-syslog forwarder status
      azs-syslog forwarder status --json | jq .queue
      azs-syslog forwarder status >/dev/null || echo "forwarding is unhealthy"
    """
    from azs_syslog import paths
    from azs_syslog import status as st

    data = st.read_status()
    health = st.evaluate(data)
    live: dict[str, Any] | None = None
    if paths.queue_file().exists():
        from azs_syslog.queue import Queue

        with Queue(durable=False) as queue:
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

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, str]] = [
        ("Health", ("healthy" if health.healthy else "UNHEALTHY") + f" ({health.reason})")
    ]
    status = data or {}
    rows.append(("State", str(status.get("state", "not running"))))
    if status.get("pid"):
        rows.append(("Pid", str(status["pid"])))
    server = status.get("server")
    if server:
        rows.append(("Server", f"{server['name']}:{server['port']} ({server['transport']})"))
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
    queue = (status.get("queue") or live) or {}
    if queue:
        rows.append(("Queued", f"{queue.get('events', 0)} events, {queue.get('bytes', 0)} bytes"))
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
    for name, value in rows:
        table.add_row(name, value)
    console().print(table)
    if data is None:
        note("the forwarder has not run on this home yet (azs-syslog forwarder run)")
