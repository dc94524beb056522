"""The table ``forwarder status`` prints: one row per fact of the worker's status snapshot."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from azs_syslog.cli.output import console, note
from azs_syslog.forwarder.snapshot import (
    Certificates,
    ConnectionStatus,
    FailoverStatus,
    LiveQueue,
    StatusSnapshot,
)

if TYPE_CHECKING:
    from azs_syslog.forwarder.status import Health


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


def render(data: StatusSnapshot | None, live: LiveQueue | None, health: Health) -> None:
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
