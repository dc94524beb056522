"""The forwarder's metrics for Prometheus (``forwarder run --metrics-address HOST:PORT``).

Every value comes from the status snapshot the worker writes its status file from (about once
a second): a collector turns the last snapshot into metric families at each scrape, so the
worker's loop keeps no bookkeeping of its own for metrics, and a scrape shows exactly what
``forwarder status --json`` shows. ``prometheus_client`` (imported only when the option is
given) writes the exposition format and serves it from a small HTTP server thread in the
worker's process, bound only to the address given.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from azs_syslog.errors import AzsSyslogError
from azs_syslog.forwarder import status as st
from azs_syslog.forwarder.snapshot import Certificates, StatusSnapshot

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.metrics_core import Metric

ENV = "AZS_SYSLOG_METRICS_ADDRESS"
PREFIX = "azs_syslog"

# The status counters, each a Prometheus counter ``azs_syslog_events_<name>_total``.
COUNTS = {
    "accepted": "Events accepted into the queue.",
    "sent": "Events delivered (confirmed by the receiver's TCP stack; written, for UDP).",
    "dropped": "Events dropped because the queue was full (the oldest first).",
    "rejected": "Input lines rejected (invalid events).",
    "truncated": "Events truncated to the maximum message size.",
    "filtered": "Events not sent because of the OutputSeverity setting.",
    "resent": "Events sent again after a connection ended before they were confirmed.",
    "rerendered": "Events rendered again for a changed configuration.",
}
STATES = (
    st.NOT_CONFIGURED,
    st.CONNECTING,
    st.CONNECTED,
    st.BACKING_OFF,
    st.DRAINING,
    st.STOPPED,
)

SnapshotSource = Callable[[], "StatusSnapshot | None"]


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(text: str) -> Address:
    """``HOST:PORT`` with an IPv4 address, ``[IPv6]:PORT``, or ``localhost:PORT``; raises
    ``ValueError`` with the one line to show."""
    value = text.strip()
    usage = "give HOST:PORT, for example 127.0.0.1:9464 or [::1]:9464"
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if not rest.startswith(":"):
            raise ValueError(f"{text!r} is not an address: {usage}")
        port_text = rest[1:]
    else:
        host, colon, port_text = value.rpartition(":")
        if not colon or not host:
            raise ValueError(f"{text!r} has no port: {usage}")
        if ":" in host:
            raise ValueError(f"{text!r}: put an IPv6 address in brackets, e.g. [::1]:9464")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                f"{host!r} is not an IP address: the metrics listen on an address of this"
                " machine; give one, for example 127.0.0.1:9464"
            ) from None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{port_text!r} is not a port (1-65535): {usage}")
    return Address(host, int(port_text))


def _gauge(name: str, help_text: str, value: float) -> Metric:
    from prometheus_client.core import GaugeMetricFamily

    family = GaugeMetricFamily(f"{PREFIX}_{name}", help_text)
    family.add_metric([], value)
    return family


def _flag(name: str, help_text: str, on: bool) -> Metric:
    return _gauge(name, help_text, 1.0 if on else 0.0)


class SnapshotCollector:
    """A Prometheus collector over the worker's last status snapshot."""

    def __init__(self, source: SnapshotSource | None = None) -> None:
        self.source = source

    def describe(self) -> list[Metric]:
        return []  # the families depend on the snapshot; registering must not collect

    def collect(self) -> Iterator[Metric]:
        source = self.source
        snapshot = source() if source is not None else None
        yield _flag(
            "status_available",
            "1 when the worker has a status snapshot to report (0 while it starts).",
            snapshot is not None,
        )
        if snapshot is None:
            return
        now = time.time()
        yield from _counters(snapshot)
        yield from _queue(snapshot, now)
        yield from _conditions(snapshot, now)
        yield from _last_send_and_error(snapshot)
        yield from _certificates(snapshot.certificates, now)
        yield _gauge(
            "status_updated_timestamp_seconds",
            "When the snapshot these values come from was taken.",
            float(snapshot.updated),
        )


def _counters(snapshot: StatusSnapshot) -> Iterator[Metric]:
    from prometheus_client.core import CounterMetricFamily

    for name, value in snapshot.counts.items():
        counter = CounterMetricFamily(f"{PREFIX}_events_{name}", COUNTS[name])
        counter.add_metric([], float(value))
        yield counter
    connections = CounterMetricFamily(
        f"{PREFIX}_connections", "Connections established to the server since the start."
    )
    connections.add_metric([], float(snapshot.connections))
    yield connections


def _queue(snapshot: StatusSnapshot, now: float) -> Iterator[Metric]:
    queue = snapshot.queue
    if queue is not None:
        yield _gauge("queue_events", "Events in the queue (not yet delivered).", queue.events)
        yield _gauge("queue_bytes", "Bytes of rendered messages in the queue.", queue.bytes)
    oldest = None if queue is None or queue.oldest_ms is None else queue.oldest_ms / 1000
    yield _gauge(
        "queue_oldest_age_seconds",
        "Age of the oldest queued event (0 when the queue is empty).",
        max(0.0, now - oldest) if oldest is not None else 0.0,
    )
    if queue is not None:
        yield _gauge(
            "in_flight_batches",
            "Batches written and waiting for the receiver's acknowledgement.",
            queue.in_flight_batches,
        )
    yield _gauge(
        "held_events",
        "Events held: accepted under a stronger transport.",
        snapshot.held.events if snapshot.held else 0,
    )


def _conditions(snapshot: StatusSnapshot, now: float) -> Iterator[Metric]:
    from prometheus_client.core import GaugeMetricFamily

    state = snapshot.state or ""
    states = GaugeMetricFamily(
        f"{PREFIX}_state",
        "The worker's connection state: 1 for the current one.",
        labels=["state"],
    )
    for name in STATES:
        states.add_metric([name], 1.0 if state == name else 0.0)
    if state and state not in STATES:
        states.add_metric([state], 1.0)
    yield states
    health = st.evaluate(snapshot, now=now, lock=True, lock_pid=snapshot.pid)
    yield _flag(
        "healthy", "1 when `forwarder status` would say healthy (exit code 0).", health.healthy
    )
    blocked = st.blocked_for(snapshot, now)
    yield _gauge(
        "blocked_seconds",
        "How long the loop has waited in a network call without progress (0: not blocked).",
        blocked[1] if blocked is not None else 0.0,
    )
    yield _flag(
        "disk_full",
        "1 while a file the worker writes cannot be written (disk full).",
        snapshot.disk_full is not None,
    )
    yield _flag(
        "failover_active",
        "1 while events go to the failover server (the primary cannot be reached).",
        snapshot.failover is not None and snapshot.failover.active == "failover",
    )
    yield _flag(
        "config_problem",
        "1 while the configuration file is invalid (the worker runs on the last good one).",
        bool(snapshot.config_problem),
    )


def _last_send_and_error(snapshot: StatusSnapshot) -> Iterator[Metric]:
    from prometheus_client.core import GaugeMetricFamily

    if snapshot.last_send_ms is not None:
        yield _gauge(
            "last_send_timestamp_seconds",
            "When events were last written to the server.",
            snapshot.last_send_ms / 1000,
        )
    error = snapshot.last_error
    info = GaugeMetricFamily(
        f"{PREFIX}_last_error_info",
        "The last error's cause, step and server (1; no sample when there is none).",
        labels=["cause", "step", "server"],
    )
    error_time = GaugeMetricFamily(
        f"{PREFIX}_last_error_timestamp_seconds", "When the last error happened."
    )
    if error is not None:
        info.add_metric([error.cause or "", error.step or "", error.server or ""], 1.0)
        error_time.add_metric([], error.time_ms / 1000)
    yield info
    yield error_time


def _certificates(certificates: Certificates | None, now: float) -> Iterator[Metric]:
    from prometheus_client.core import GaugeMetricFamily

    not_after = GaugeMetricFamily(
        f"{PREFIX}_certificate_not_after_timestamp_seconds",
        "When the certificate expires (client: the one presented; server: the one the"
        " server presented; server_chain: the first of the server's chain to expire).",
        labels=["certificate", "subject"],
    )
    days = GaugeMetricFamily(
        f"{PREFIX}_certificate_days_left",
        "Whole days until the certificate expires (negative: expired).",
        labels=["certificate", "subject"],
    )
    ends = (
        ()
        if certificates is None
        else (
            ("client", certificates.client),
            ("server", certificates.server),
            ("server_chain", certificates.server_chain_first),
        )
    )
    for label, entry in ends:
        if entry is None:
            continue
        end = entry.not_after_s
        not_after.add_metric([label, entry.subject], end)
        days.add_metric([label, entry.subject], float(math.floor((end - now) / 86400)))
    yield not_after
    yield days
    yield _gauge(
        "certificate_warnings",
        "Certificates that expire within the warning period (or have expired).",
        float(len(certificates.warnings) if certificates else 0),
    )


class MetricsServer:
    """The HTTP server thread serving ``/metrics``; :meth:`start` binds at once, so that an
    address in use is an error at start, not later."""

    def __init__(self, address: Address) -> None:
        self.address = address
        self.collector = SnapshotCollector()
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            from prometheus_client import CollectorRegistry, start_http_server
        except ImportError:
            raise AzsSyslogError(
                "--metrics-address needs the Python package prometheus-client, which is not"
                " installed",
                fix="install it in the forwarder's environment: pip install prometheus-client",
            ) from None
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self.collector)
        try:
            self._server, self._thread = start_http_server(
                self.address.port, addr=self.address.host, registry=registry
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            fix = (
                "stop what listens there or give another port with --metrics-address"
                if "in use" in reason.lower()
                else "give an address of this machine with --metrics-address, e.g. 127.0.0.1:9464"
            )
            raise AzsSyslogError(
                f"cannot serve metrics on {self.address}: {reason}", fix=fix
            ) from None

    def attach(self, source: SnapshotSource) -> None:
        self.collector.source = source

    def stop(self) -> None:
        server = self._server
        if server is not None:
            server.shutdown()
            server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
