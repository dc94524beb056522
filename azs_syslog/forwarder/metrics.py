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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azs_syslog.errors import AzsSyslogError
from azs_syslog.forwarder import status as st

if TYPE_CHECKING:
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
CERTIFICATES = (("client", "client"), ("server", "server"), ("server_chain_first", "server_chain"))

SnapshotSource = Callable[[], "dict[str, Any] | None"]


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


def _seconds(ms: object) -> float | None:
    return ms / 1000 if isinstance(ms, (int, float)) and not isinstance(ms, bool) else None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


class SnapshotCollector:
    """A Prometheus collector over the worker's last status snapshot."""

    def __init__(self, source: SnapshotSource | None = None) -> None:
        self.source = source

    def describe(self) -> list[Metric]:
        return []  # the families depend on the snapshot; registering must not collect

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        source = self.source
        snapshot = source() if source is not None else None
        up = GaugeMetricFamily(
            f"{PREFIX}_status_available",
            "1 when the worker has a status snapshot to report (0 while it starts).",
        )
        up.add_metric([], 1.0 if snapshot else 0.0)
        yield up
        if not snapshot:
            return
        now = time.time()

        def gauge(name: str, help_text: str, value: object) -> Metric | None:
            number = _number(value)
            if number is None:
                return None
            family = GaugeMetricFamily(f"{PREFIX}_{name}", help_text)
            family.add_metric([], number)
            return family

        counts = snapshot.get("counts") or {}
        for name, help_text in COUNTS.items():
            counter = CounterMetricFamily(f"{PREFIX}_events_{name}", help_text)
            counter.add_metric([], float(counts.get(name) or 0))
            yield counter
        connections = CounterMetricFamily(
            f"{PREFIX}_connections", "Connections established to the server since the start."
        )
        connections.add_metric([], float(snapshot.get("connections") or 0))
        yield connections

        queue = snapshot.get("queue") or {}
        held = snapshot.get("held") or {}
        oldest = _seconds(queue.get("oldest_ms"))
        for item in (
            gauge("queue_events", "Events in the queue (not yet delivered).", queue.get("events")),
            gauge("queue_bytes", "Bytes of rendered messages in the queue.", queue.get("bytes")),
            gauge(
                "queue_oldest_age_seconds",
                "Age of the oldest queued event (0 when the queue is empty).",
                max(0.0, now - oldest) if oldest is not None else 0.0,
            ),
            gauge(
                "in_flight_batches",
                "Batches written and waiting for the receiver's acknowledgement.",
                queue.get("in_flight_batches"),
            ),
            gauge(
                "held_events",
                "Events held: accepted under a stronger transport.",
                held.get("events") or 0,
            ),
        ):
            if item is not None:
                yield item

        state = str(snapshot.get("state") or "")
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

        health = st.evaluate(snapshot, now=now, lock=True, lock_pid=snapshot.get("pid"))
        healthy = GaugeMetricFamily(
            f"{PREFIX}_healthy",
            "1 when `forwarder status` would say healthy (exit code 0).",
        )
        healthy.add_metric([], 1.0 if health.healthy else 0.0)
        yield healthy

        blocked = st.blocked_for(snapshot, now)
        blocked_family = GaugeMetricFamily(
            f"{PREFIX}_blocked_seconds",
            "How long the loop has waited in a network call without progress (0: not blocked).",
        )
        blocked_family.add_metric([], blocked[1] if blocked is not None else 0.0)
        yield blocked_family

        full = snapshot.get("disk_full")
        disk = GaugeMetricFamily(
            f"{PREFIX}_disk_full", "1 while a file the worker writes cannot be written (disk full)."
        )
        disk.add_metric([], 1.0 if full else 0.0)
        yield disk
        failover = GaugeMetricFamily(
            f"{PREFIX}_failover_active",
            "1 while events go to the failover server (the primary cannot be reached).",
        )
        failover.add_metric(
            [], 1.0 if (snapshot.get("failover") or {}).get("active") == "failover" else 0.0
        )
        yield failover
        problem = GaugeMetricFamily(
            f"{PREFIX}_config_problem",
            "1 while the configuration file is invalid (the worker runs on the last good one).",
        )
        problem.add_metric([], 1.0 if snapshot.get("config_problem") else 0.0)
        yield problem

        last_send = _seconds(snapshot.get("last_send_ms"))
        if last_send is not None:
            item = gauge(
                "last_send_timestamp_seconds",
                "When events were last written to the server.",
                last_send,
            )
            if item is not None:
                yield item

        error = snapshot.get("last_error")
        info = GaugeMetricFamily(
            f"{PREFIX}_last_error_info",
            "The last error's cause, step and server (1; no sample when there is none).",
            labels=["cause", "step", "server"],
        )
        error_time = GaugeMetricFamily(
            f"{PREFIX}_last_error_timestamp_seconds", "When the last error happened."
        )
        if isinstance(error, dict):
            info.add_metric(
                [
                    str(error.get("cause") or ""),
                    str(error.get("step") or ""),
                    str(error.get("server") or ""),
                ],
                1.0,
            )
            at = _seconds(error.get("time_ms"))
            if at is not None:
                error_time.add_metric([], at)
        yield info
        yield error_time

        certificates = snapshot.get("certificates") or {}
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
        for key, label in CERTIFICATES:
            entry = certificates.get(key)
            if not isinstance(entry, dict):
                continue
            end = _number(entry.get("not_after_s"))
            if end is None:
                continue
            subject = str(entry.get("subject") or "")
            not_after.add_metric([label, subject], end)
            days.add_metric([label, subject], float(math.floor((end - now) / 86400)))
        yield not_after
        yield days
        warnings = GaugeMetricFamily(
            f"{PREFIX}_certificate_warnings",
            "Certificates that expire within the warning period (or have expired).",
        )
        warnings.add_metric([], float(len(certificates.get("warnings") or [])))
        yield warnings

        updated = gauge(
            "status_updated_timestamp_seconds",
            "When the snapshot these values come from was taken.",
            snapshot.get("updated"),
        )
        if updated is not None:
            yield updated


class MetricsServer:
    """The HTTP server thread serving ``/metrics``; :meth:`start` binds at once, so that an
    address in use is an error at start, not later."""

    def __init__(self, address: Address) -> None:
        self.address = address
        self.collector = SnapshotCollector()
        self._server: Any = None
        self._thread: Any = None

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
