"""The worker's status: the snapshot of its state, the status file it writes (from the loop, or
from the status thread while the loop is blocked), and the last snapshot for the metrics."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from azs_syslog import fserrors, paths
from azs_syslog.config import LEVEL_NAMES, Config
from azs_syslog.errors import AzsSyslogError, QueueError
from azs_syslog.forwarder import status as st
from azs_syslog.forwarder.base import WorkerBase
from azs_syslog.forwarder.common import GENERATION_WAIT, STATUS_EVERY, held_message
from azs_syslog.forwarder.owed import owed_summary
from azs_syslog.queue import Depth


class Reporting(WorkerBase):
    def _queue_numbers(self) -> tuple[Depth, dict[str, int]]:
        """The queue's depth and counters: read by the worker's own thread (the connection is
        not for sharing); another thread (a status timer) gets the last ones read."""
        if threading.get_ident() == self._loop_thread or self._queue_view is None:
            try:
                view = (self.queue.depth(), self.queue.counters())
            except QueueError:
                view = self._queue_view or (Depth(0, 0, None), {})
            self._queue_view = view
        return self._queue_view

    def status(self) -> dict[str, Any]:
        with self._lock:
            return self._status()

    def _status(self) -> dict[str, Any]:
        depth, stored = self._queue_numbers()
        counters = dict(stored)
        for write in self.backlog:  # counted, not yet in the queue file
            if write.kind == "confirm":
                counters["sent"] = counters.get("sent", 0) + write.sent
                counters["filtered"] = counters.get("filtered", 0) + write.filtered
            for name, value in write.counts:
                counters[name] = counters.get(name, 0) + value
        config = self.config or Config()
        server = config.server
        sender = self.sender
        info = getattr(sender, "info", None) if sender is not None else None
        full = next(iter(self.disk_full.values()), None)
        client_cert = config.client.certificate
        now = self.now_ms()
        return {
            "pid": os.getpid(),
            "updated": self.wall(),
            "started_ms": self.started_ms,
            "state": self.state,
            "server": None
            if server is None
            else {
                "name": server.server_name,
                "port": server.server_port,
                "transport": f"relp-{server.transport}" if server.use_relp else server.transport,
            },
            "failover": self._failover_status(server),
            "connection": None
            if info is None
            else {
                "transport": getattr(info, "transport", None),
                "peer_address": str(getattr(info, "peer_address", "")),
                "tls_version": getattr(info, "tls_version", None),
                "cipher": getattr(info, "cipher", None),
                "server_subject": getattr(info, "server_subject", None),
                "server_not_after": _text(getattr(info, "server_not_after", None)),
                "client_certificate_sent": getattr(info, "client_certificate_sent", None),
                "relp_offers": dict(getattr(info, "relp_offers", ())) or None,
            },
            "client_certificate_not_after": client_cert.not_after if client_cert else None,
            "client_certificate_thumbprint": client_cert.thumbprint if client_cert else None,
            "certificates": self._certificates_status(),
            "connections": self.counters.connections,
            "queue": {
                "events": depth.events,
                "bytes": depth.bytes,
                "oldest_ms": depth.oldest_ms,
                "oldest_age_s": None
                if depth.oldest_ms is None
                else max(0.0, (now - depth.oldest_ms) / 1000),
                "in_flight_batches": len(self.inflight),
            },
            "counts": {
                name: counters.get(name, 0)
                for name in (
                    "accepted",
                    "sent",
                    "dropped",
                    "rejected",
                    "truncated",
                    "filtered",
                    "resent",
                    "rerendered",
                )
            },
            # --sequence-numbers: the stream and the last number delivered (what a SIEM-side
            # gap query compares with); audit events that could not reach their server.
            "sequence": {
                "stream": self.stream_id,
                "last_delivered": self.sequence_confirmed,
                "next": self.sequence_next,
            }
            if self._sequencing()
            else None,
            "audit": {"undelivered": counters.get("audit_undelivered", 0)},
            "last_error": self.last_error.as_dict() if self.last_error else None,
            "last_send_ms": self.counters.last_send_ms,
            "next_attempt_in_s": max(0.0, self.next_attempt - self.clock())
            if self.state == st.BACKING_OFF
            else None,
            "config_problem": self.config_problem,
            "held": self._held_status(config),
            "waiting_for_generation": self._generation_wait_status(config),
            "condition": st.DISK_FULL if full is not None else None,
            "disk_full": None
            if full is None
            else {
                "what": full.what,
                "path": str(full.path),
                "since_ms": full.since_ms,
                "fix": fserrors.disk_full_fix(full.path, forwarder=True),
                "files": [
                    {"what": item.what, "path": str(item.path)} for item in self.disk_full.values()
                ],
            },
            "queue_writes_owed": len(self.backlog),
            # For the next run, should this one stop before it can write them.
            "owed": owed_summary(self.backlog) if self.backlog else None,
            "socket": str(self.socket_input.path) if self.socket_input else None,
            "socket_error": str(self.socket_input.error)
            if self.socket_input and self.socket_input.error
            else None,
            "blocked": self._blocked(),
        }

    def last_snapshot(self) -> dict[str, Any] | None:
        """The status as last written to the status file, with what the loop is blocked on
        brought up to date (any thread: the metrics endpoint reads it at each scrape)."""
        with self._status_lock:
            if self._snapshot is None:
                return None
            return {**self._snapshot, "blocked": self._blocked()}

    def _held_status(self, config: Config) -> dict[str, Any] | None:
        held = self.held
        if held is None:
            return None
        return {
            "events": held.events,
            "batches": held.batches,
            "accepted_under": LEVEL_NAMES.get(held.level, str(held.level)),
            "current": config.describe_transport(),
            "message": held_message(held.events, held.level, config),
        }

    def _generation_wait_status(self, config: Config) -> dict[str, Any] | None:
        if self.generation_wait is None:
            return None
        generation, since = self.generation_wait
        return {
            "batch_generation": generation,
            "config_generation": config.generation,
            "waiting_s": max(0.0, self.clock() - since),
            "message": f"events rendered for configuration generation {generation} wait: the"
            f" configuration file has generation {config.generation}; after"
            f" {GENERATION_WAIT:.0f} s they are rendered again under the file's configuration",
        }

    def _blocked(self) -> dict[str, Any] | None:
        """The blocking network call the loop waits in without progress, and since when."""
        blocked = self.io_watch.blocked
        if blocked is None:
            return None
        return {"on": blocked[0], "since_ms": blocked[1]}

    def write_status(self) -> None:
        """Write the status file; the only writer of it (any thread may call this). On the
        loop's thread: a fresh snapshot. On the status thread (while the loop is blocked): the
        loop's last snapshot, with the time and what the loop is blocked on brought up to
        date. A full disk is recorded and said in the log once; the status file is
        preallocated, so this rarely happens after the first write."""
        path = self.options.status_path or paths.status_file()
        snapshot: dict[str, Any] | None = None
        if threading.get_ident() == self._loop_thread:
            with contextlib.suppress(QueueError):
                snapshot = self.status()
        with self._status_lock:
            if snapshot is not None:
                self._snapshot = snapshot
            if self._snapshot is None:
                return
            data = {**self._snapshot, "updated": self.wall(), "blocked": self._blocked()}
            self._status_written = self.clock()
            problem: OSError | AzsSyslogError | None = None
            try:
                st.write_status(data, path)
            except (OSError, AzsSyslogError) as exc:
                problem = exc
        if problem is None:
            self._disk_full_ends("status file")
        elif fserrors.is_disk_full(problem):
            self._disk_full_begins("status file", path)
        elif self._logged_problem != str(problem):
            self._logged_problem = str(problem)
            self.log(f"cannot write the status file {path}: {problem}")

    def _status_timer(self) -> None:
        while not self._status_stop.wait(STATUS_EVERY / 4):
            if self.clock() - self._status_written >= STATUS_EVERY:
                self.write_status()


def _text(value: object) -> str | None:
    if value is None:
        return None
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat()) if callable(isoformat) else str(value)
