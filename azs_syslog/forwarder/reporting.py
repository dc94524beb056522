"""The worker's status: the snapshot of its state, the status file it writes (from the loop, or
from the status thread while the loop is blocked), and the last snapshot for the metrics."""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import replace

from azs_syslog import fserrors, paths
from azs_syslog.config import LEVEL_NAMES, Config
from azs_syslog.errors import AzsSyslogError, QueueError
from azs_syslog.forwarder import status as st
from azs_syslog.forwarder.base import WorkerBase
from azs_syslog.forwarder.common import GENERATION_WAIT, STATUS_EVERY, held_message
from azs_syslog.forwarder.owed import owed_summary
from azs_syslog.forwarder.snapshot import (
    AuditStatus,
    Blocked,
    ConnectionStatus,
    Counts,
    DiskFullStatus,
    FileRef,
    GenerationWaitStatus,
    HeldStatus,
    QueueStatus,
    SequenceStatus,
    ServerStatus,
    StatusSnapshot,
)
from azs_syslog.queue import Depth
from azs_syslog.transport.relp import RelpConnectionInfo


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

    def status(self) -> StatusSnapshot:
        with self._lock:
            return self._status()

    def _counters(self) -> tuple[Depth, dict[str, int]]:
        """The queue's depth and counters, with what is counted but not yet in the queue
        file (owed writes)."""
        depth, stored = self._queue_numbers()
        counters = dict(stored)
        for write in self.backlog:
            if write.kind == "confirm":
                counters["sent"] = counters.get("sent", 0) + write.sent
                counters["filtered"] = counters.get("filtered", 0) + write.filtered
            for name, value in write.counts:
                counters[name] = counters.get(name, 0) + value
        return depth, counters

    def _status(self) -> StatusSnapshot:
        depth, counters = self._counters()
        config = self.config or Config()
        server = config.server
        client_cert = config.client.certificate
        now = self.now_ms()
        return StatusSnapshot(
            pid=os.getpid(),
            updated=self.wall(),
            started_ms=self.started_ms,
            state=self.state,
            server=None
            if server is None
            else ServerStatus(
                server.server_name,
                server.server_port,
                f"relp-{server.transport}" if server.use_relp else server.transport,
            ),
            failover=self._failover_status(server),
            connection=self._connection_status(),
            client_certificate_not_after=client_cert.not_after if client_cert else None,
            client_certificate_thumbprint=client_cert.thumbprint if client_cert else None,
            certificates=self._certificates_status(),
            connections=self.counters.connections,
            queue=QueueStatus(
                depth.events,
                depth.bytes,
                depth.oldest_ms,
                None if depth.oldest_ms is None else max(0.0, (now - depth.oldest_ms) / 1000),
                len(self.inflight),
            ),
            counts=Counts.of(counters),
            sequence=SequenceStatus(self.stream_id, self.sequence_confirmed, self.sequence_next)
            if self._sequencing()
            else None,
            audit=AuditStatus(counters.get("audit_undelivered", 0)),
            last_error=self.last_error.status() if self.last_error else None,
            last_send_ms=self.counters.last_send_ms,
            next_attempt_in_s=max(0.0, self.next_attempt - self.clock())
            if self.state == st.BACKING_OFF
            else None,
            config_problem=self.config_problem,
            held=self._held_status(config),
            waiting_for_generation=self._generation_wait_status(config),
            condition=st.DISK_FULL if self.disk_full else None,
            disk_full=self._disk_full_status(),
            queue_writes_owed=len(self.backlog),
            owed=owed_summary(self.backlog) if self.backlog else None,
            socket=str(self.socket_input.path) if self.socket_input else None,
            socket_error=str(self.socket_input.error)
            if self.socket_input and self.socket_input.error
            else None,
            blocked=self._blocked(),
        )

    def _connection_status(self) -> ConnectionStatus | None:
        if self.sender is None:
            return None
        info = self.sender.info
        offers = info.relp_offers if isinstance(info, RelpConnectionInfo) else ()
        return ConnectionStatus(
            transport=info.transport,
            peer_address=str(info.peer_address),
            tls_version=info.tls_version,
            cipher=info.cipher,
            server_subject=info.server_subject,
            server_not_after=info.server_not_after,
            client_certificate_sent=info.client_certificate_sent,
            relp_offers=dict(offers) or None,
        )

    def _disk_full_status(self) -> DiskFullStatus | None:
        full = next(iter(self.disk_full.values()), None)
        if full is None:
            return None
        return DiskFullStatus(
            what=full.what,
            path=str(full.path),
            since_ms=full.since_ms,
            fix=fserrors.disk_full_fix(full.path, forwarder=True),
            files=tuple(FileRef(item.what, str(item.path)) for item in self.disk_full.values()),
        )

    def last_snapshot(self) -> StatusSnapshot | None:
        """The status as last written to the status file, with what the loop is blocked on
        brought up to date (any thread: the metrics endpoint reads it at each scrape)."""
        with self._status_lock:
            if self._snapshot is None:
                return None
            return replace(self._snapshot, blocked=self._blocked())

    def _held_status(self, config: Config) -> HeldStatus | None:
        held = self.held
        if held is None:
            return None
        return HeldStatus(
            events=held.events,
            batches=held.batches,
            accepted_under=LEVEL_NAMES.get(held.level, str(held.level)),
            current=config.describe_transport(),
            message=held_message(held.events, held.level, config),
        )

    def _generation_wait_status(self, config: Config) -> GenerationWaitStatus | None:
        if self.generation_wait is None:
            return None
        generation, since = self.generation_wait
        return GenerationWaitStatus(
            batch_generation=generation,
            config_generation=config.generation,
            waiting_s=max(0.0, self.clock() - since),
            message=f"events rendered for configuration generation {generation} wait: the"
            f" configuration file has generation {config.generation}; after"
            f" {GENERATION_WAIT:.0f} s they are rendered again under the file's configuration",
        )

    def _blocked(self) -> Blocked | None:
        """The blocking network call the loop waits in without progress, and since when."""
        blocked = self.io_watch.blocked
        if blocked is None:
            return None
        return Blocked(blocked[0], blocked[1])

    def write_status(self) -> None:
        """Write the status file; the only writer of it (any thread may call this). On the
        loop's thread: a fresh snapshot. On the status thread (while the loop is blocked): the
        loop's last snapshot, with the time and what the loop is blocked on brought up to
        date. A full disk is recorded and said in the log once; the status file is
        preallocated, so this rarely happens after the first write."""
        path = self.options.status_path or paths.status_file()
        snapshot: StatusSnapshot | None = None
        if threading.get_ident() == self._loop_thread:
            with contextlib.suppress(QueueError):
                snapshot = self.status()
        with self._status_lock:
            if snapshot is not None:
                self._snapshot = snapshot
            if self._snapshot is None:
                return
            data = replace(self._snapshot, updated=self.wall(), blocked=self._blocked())
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
