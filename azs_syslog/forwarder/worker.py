"""The forwarder worker: queue → transport, with reload, backoff, replay, status and signals.

:meth:`Worker.step` runs one iteration and returns how long the loop may sleep, so the tests
drive the worker deterministically; :meth:`Worker.run` is the real loop (signals, pid file,
socket input, status file).

Delivery (docs/architecture.md): a batch is written to the transport and marked in flight; it
is deleted from the queue only when the peer's TCP stack has acknowledged every byte of it
(``SIOCOUTQ``) *and* ``confirm_delay`` has passed (the replay window: a receiver killed with
SIGKILL loses what it had buffered); acknowledgements are looked at between the batches of a
send too, so that a backlog does not leave acknowledged batches waiting to be resent. RELP
needs no window: a batch is confirmed when the server answered every message in it. After a
broken connection, a restart, or a drain that ran out of time, every batch still in flight is
sent again first (RELP: only its unanswered messages); those events are counted as ``resent``.
UDP has no acknowledgement: a datagram written is a batch done.

Configuration changes (docs/architecture.md): every batch records the configuration generation
it was rendered for and the security level configured when it was accepted. Before sending a
batch the worker compares: a newer generation than its own makes it re-read the configuration
and switch before sending it; an older one is rendered again under the current settings, unless
the current transport is weaker than the batch's level, in which case the batch is *held* until
a strong enough transport is configured again or the operator runs ``forwarder release-held``.

Signals (as gunicorn's arbiter and huey's consumer do it): the handlers only set flags; the
loop acts on them. The loop is woken by ``signal.set_wakeup_fd`` on a non-blocking socket pair:
the loop sleeps in ``poll`` on it, and every blocking network call waits on it next to its own
socket (``transport.IoWatch``), so a stop is never held up by a network timeout and no
exception is ever raised into whatever the loop was doing. A second SIGTERM or SIGINT forces
the stop: no drain, no graceful close; what is in flight stays queued.

The status file is written by the loop at each state change and about every second, and by a
small status thread whenever the loop has not written it for a second (the loop is blocked in a
network call): from the loop's last snapshot, with what the loop is blocked on and since when.

The worker is put together from its parts, one module each (their shared state is declared in
base.py, the constants and small records in common.py): reconfigure (following the
configuration), sending (the batches, the gap warning, held and pinned batches), confirm (TCP
and RELP confirmation), failover, certwatch (certificate ends), sequence (sequence numbers and
the heartbeat), queuebook (queue writes owed on a full disk), reporting (the status snapshot
and file), socketwire (the socket input), signals; pidfile and owed hold what they need on
their own. Every time comes from the injected ``clock`` (monotonic) and ``wall`` (epoch).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from azs_syslog import fserrors, paths, transport
from azs_syslog.config import ServerSettings
from azs_syslog.errors import QueueError, TransportError
from azs_syslog.forwarder import status as st
from azs_syslog.forwarder.certwatch import CertificateWatch
from azs_syslog.forwarder.common import (
    EXPIRY_CHECK,
    FAILOVER,
    HELD_CHECK,
    PRIMARY,
    QUEUE_RETRY,
    STATUS_EVERY,
    Clock,
    ConfigSource,
    ConfigWatcher,
    Connect,
    Counters,
    FailoverState,
    LastError,
    MakeRendering,
    WorkerOptions,
    default_rendering,
    server_label,
    stamped,
    updates,
)
from azs_syslog.forwarder.confirm import Confirming
from azs_syslog.forwarder.failover import Failover
from azs_syslog.forwarder.owed import QueueWrite
from azs_syslog.forwarder.pidfile import acquire_pid_file, release_pid_file
from azs_syslog.forwarder.queuebook import QueueBook
from azs_syslog.forwarder.reconfigure import Reconfiguring
from azs_syslog.forwarder.reporting import Reporting
from azs_syslog.forwarder.sending import Sending
from azs_syslog.forwarder.sequence import Sequencing
from azs_syslog.forwarder.signals import Signals
from azs_syslog.forwarder.socketwire import SocketWiring
from azs_syslog.queue import Depth, Queue
from azs_syslog.transport.relp import RelpSender

__all__ = ["Worker", "WorkerOptions"]


class Worker(
    Reconfiguring,
    Sending,
    Confirming,
    Failover,
    CertificateWatch,
    Sequencing,
    QueueBook,
    Reporting,
    SocketWiring,
    Signals,
):
    def __init__(
        self,
        config_source: ConfigSource | None = None,
        *,
        options: WorkerOptions | None = None,
        connect: Connect | None = None,
        make_rendering: MakeRendering | None = None,
        log: Callable[[str], None] | None = None,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
    ) -> None:
        """``clock`` (monotonic seconds) times the loop, ``wall`` (seconds since the epoch)
        stamps the status: the tests step the worker with fake ones."""
        self.log = log or (lambda message: None)
        self.options = options or WorkerOptions()
        self.clock, self.wall = clock, wall
        self.backlog, self.delivered_ids = [], set()
        self.gap_clear_owed = False
        self.next_queue_retry = 0.0
        self.disk_full = {}
        self._lock = threading.RLock()
        self._queue_view = None
        self._logged_problem = None
        self.last_error = None
        # First, before touching the queue: one worker per home.
        self.pid_lock = acquire_pid_file(self.options.pid_path or paths.pid_file())
        if not self.pid_lock.written:
            self._disk_full_begins("pid file", self.pid_lock.path)
        self.config_source = config_source or ConfigWatcher()
        self.connect = connect or self._connect_watched
        self.make_rendering = stamped(make_rendering or default_rendering)
        self.queue = self._open_queue()
        self._init_state()
        self._init_sequence()
        self._inherit()

    def _open_queue(self) -> Queue:
        queue_path = self.options.queue_path or paths.queue_file()
        try:
            try:
                return Queue(queue_path, limits=self.options.limits, durable=False)
            except QueueError as exc:
                if not fserrors.is_disk_full(exc, queue_path):
                    raise
                # Opening needs space (the -shm file); reading what is queued does not.
                queue = Queue.snapshot(queue_path, limits=self.options.limits)
                self._disk_full_begins("queue", queue_path)
                return queue
        except BaseException:
            release_pid_file(self.pid_lock)
            raise

    def _init_state(self) -> None:
        self.config = self.rendering = self.config_problem = None
        self.state = st.NOT_CONFIGURED
        self.sender = None
        self.inflight = []
        self.last_sent_id = self.written = 0
        self.backoff = self.next_attempt = self.next_config_check = self.next_status = 0.0
        self.draining_since = self.pending = self.generation_wait = None
        self.stale_upto_id = 0
        self.held = self.released_seen = None
        self.next_held_check = 0.0
        self.counters = Counters()
        self.failover = FailoverState(since_ms=self.now_ms())
        self.expiries, self._expiry_server, self._expiry_logged = {}, None, {}
        self.next_expiry_check = 0.0
        self.stop_requested = self.forced = self.reload_requested = False
        self._signals = 0
        self._stop_at = self._io = None
        self.io_watch = transport.IoWatch(give_up_at=self._give_up_at)
        self._wake_r = self._wake_w = None
        self._loop_thread = threading.get_ident()
        self._status_lock = threading.Lock()
        self._snapshot = None
        self._status_written = 0.0
        self._status_stop = threading.Event()
        self._status_thread = None
        self.started_ms = self.now_ms()
        self.socket_input = None
        self.answered_part = {}
        self._sending = None

    def _inherit(self) -> None:
        """What an earlier run could not write to the queue (the disk was full when it
        stopped) it left in its status file: written first, so that batches it delivered are
        not sent again and those it sent are counted as resent. Then the batches sent on an
        earlier run and never confirmed go out again first (counted as resent: now, or when
        the queue can be written again)."""
        inherited = self._inherited_writes()
        for write in inherited:
            self._queue_write(write)
            if write.kind == "confirm" and self.backlog:
                self.delivered_ids.update(write.ids)
        self._queue_write(QueueWrite("requeue", at_ms=-1))
        if inherited:
            self.log(
                f"{updates(len(inherited))} the previous run could not write (disk full) "
                + ("are written" if not self.backlog else "are kept until there is space")
            )
            self.write_status()  # they are in the queue now: not to be applied twice

    # --- one iteration

    def step(self, now: float | None = None) -> float:
        """Run one iteration; returns how many seconds the loop may sleep before the next."""
        now = self.clock() if now is None else now
        if self.stop_requested and self._stop_at is None:
            # The transport's clock: the deadlines of a blocking network call (_give_up_at).
            self._stop_at = time.monotonic()
        if self.reload_requested or now >= self.next_config_check or self.config is None:
            self.reload_requested = False
            self.next_config_check = now + self.options.config_poll
            self._check_config()
        wait = self._deliver(now)
        if now >= self.next_held_check:
            self.next_held_check = now + HELD_CHECK
            self._check_held()
        queue_owed = self.backlog or self.queue.read_only or "queue" in self.disk_full
        if queue_owed and now >= self.next_queue_retry:
            self.next_queue_retry = now + QUEUE_RETRY
            self._flush_backlog()
        if now >= self.next_expiry_check:
            self.next_expiry_check = now + EXPIRY_CHECK
            self._log_expiry_warnings()
        if now >= self.next_status:
            self.next_status = now + STATUS_EVERY
            if not self.pid_lock.written:
                self._write_pid()
            self.write_status()
        return wait

    def _deliver(self, now: float) -> float:
        assert self.config is not None
        returning = self.failover.returning
        if self.sender is not None and (
            self.pending is not None or self.stop_requested or returning
        ):
            return self._drain(now)
        if self.stop_requested:
            return 0.0
        server = self.config.server
        if server is None:
            self.state = st.NOT_CONFIGURED
            return 0.2
        if returning:  # not connected to the failover server: nothing to drain
            self._fail_back()
        elif (
            self.failover.active == FAILOVER
            and now >= self.failover.next_probe
            and self._probe_primary(server, now)
        ):
            return 0.0
        if self.sender is None:
            if now < self.next_attempt:
                self.state = st.BACKING_OFF
                return min(self.next_attempt - now, 0.2)
            return self._connect(self._target(server), now)
        return self._send_connected(now)

    def _send_connected(self, now: float) -> float:
        """Connected: confirm, send a heartbeat when due, send the next batches."""
        self.state = st.CONNECTED  # also after a drain the configuration change undid
        self.draining_since = None
        try:
            self._confirm(now)
            self._io = "send"
            try:
                self._maybe_heartbeat(now)
                sent = self._send_some(now)
            finally:
                self._io = None
        except TransportError as exc:
            self._broken(exc, now)
            return 0.0
        except transport.StopRequested:
            self._close(requeue=True)
            return 0.0
        except QueueError as exc:  # a read failed: keep the connection, try again shortly
            self._queue_failed(exc)
            return 0.2
        if sent:
            return 0.0
        if self.inflight:
            return 0.05
        return 0.1

    def _connect(self, server: ServerSettings, now: float) -> float:
        assert self.config is not None
        self.state = st.CONNECTING
        self.write_status()
        if self.stop_requested:
            return 0.0
        self._check_client_certificate()
        self._log_expiry_warnings()
        self._io = "connect"
        try:
            sender = self.connect(server, self.config.client)
        except transport.StopRequested:
            return 0.0
        except TransportError as exc:
            exc = self._with_expired_client(exc)
            self._primary_failing(now)
            self._failed(exc, now)
            self._connect_failed(exc, now)
            return 0.0
        finally:
            self._io = None
        if self.failover.active == PRIMARY:
            self.failover.failing_since = None
        self.sender = sender
        self.written = 0
        self.inflight = []
        self.last_sent_id = 0
        self.backoff = 0.0
        self.state = st.CONNECTED
        self.counters.connections += 1
        info = sender.info
        self._check_server_certificates(info, server)
        detail = " ".join(str(part) for part in (info.tls_version, info.cipher) if part)
        self.log(
            f"connected to {info.server} ({info.peer_address})" + (f", {detail}" if detail else "")
        )
        self.write_status()
        return 0.0

    def _failed(self, exc: TransportError, now: float) -> None:
        server = server_label(self.config.server) if self.config is not None else None
        self.last_error = LastError(
            exc.message, exc.cause, exc.fix, exc.step, self.now_ms(), server
        )
        self.backoff = (
            self.options.backoff_initial
            if self.backoff == 0
            else min(self.backoff * 2, self.options.backoff_max)
        )
        # Full jitter on the upper half: never hammer, never synchronise with other clients.
        delay = self.backoff * (0.5 + random.random() / 2)
        failover_in = self._failover_in(now)
        if failover_in is not None and failover_in <= delay:
            delay = failover_in  # the last attempt at the primary falls at FailoverAfter
        self.next_attempt = now + delay
        self.state = st.BACKING_OFF
        self.log(
            f"{exc.message} ({exc.step}: {exc.cause}); "
            + (
                "failing over"
                if failover_in == 0
                else f"retrying in {delay:.1f} s"
                + (" (the last try before failing over)" if delay == failover_in else "")
            )
            + (f"; fix: {exc.fix}" if exc.fix else "")
        )
        self.write_status()

    def _broken(self, exc: TransportError, now: float) -> None:
        self._close(requeue=True)
        self._failed(exc, now)

    def _close(self, *, requeue: bool) -> None:
        sender, self.sender = self.sender, None
        sending, self._sending = self._sending, None
        if sender is not None:
            self._io = "close"
            try:
                sender.close(timeout=2.0)  # never raises; a forced stop cuts it short
            finally:
                self._io = None
            if isinstance(sender, RelpSender):
                self._settle_answered(sender, sending)
        if requeue and self.inflight:
            self._queue_write(QueueWrite("requeue"))
            ids = {i.batch_id for i in self.inflight}
            answered = sum(n for batch_id, n in self.answered_part.items() if batch_id in ids)
            if answered:
                # Messages already answered 200 are skipped when their batch goes out again.
                self._queue_write(QueueWrite("counters", counts=(("resent", -answered),)))
            events = sum(item.count for item in self.inflight) - answered
            self.log(f"{events} events sent but not confirmed will be sent again")
        self.inflight = []
        self.last_sent_id = 0
        self.written = 0

    def _drain(self, now: float) -> float:
        """Stop sending; wait (up to drain_timeout) for in-flight batches to be confirmed;
        then close cleanly (TLS close_notify) and apply the pending configuration."""
        first = self.draining_since is None
        if self.draining_since is None:
            self.draining_since = now
        self.state = st.DRAINING
        try:
            if first and self.pending is not None and not self.forced:
                self._send_pinned(now)
            self._confirm(now)
        except TransportError as exc:
            self.draining_since = None
            self._broken(exc, now)
            self._after_drain()
            return 0.0
        except transport.StopRequested:
            self.draining_since = None
            self._close(requeue=True)
            self._after_drain()
            return 0.0
        waiting = now - self.draining_since < self.options.drain_timeout
        if self.inflight and waiting and not self.forced:
            return 0.05
        self.draining_since = None
        self._close(requeue=True)
        self._after_drain()
        return 0.0

    def _after_drain(self) -> None:
        if self.pending is not None:
            self._apply(*self.pending)
            self.state = st.CONNECTING if self.config and self.config.server else st.NOT_CONFIGURED
        elif self.failover.returning:
            self._fail_back()
            self.state = st.CONNECTING

    # --- the real loop

    def run(self) -> str:
        """Run until SIGTERM / SIGINT; returns a one-line summary. Raises ``AzsSyslogError``
        when it cannot start."""
        self._loop_thread = threading.get_ident()
        restore = self._install_signals()
        try:
            self._status_thread = threading.Thread(
                target=self._status_timer, name="azs-syslog-status", daemon=True
            )
            self._status_thread.start()
            if self.options.socket_input:
                self._start_socket_input()
            while not (self.stop_requested and self.sender is None):
                wait = self.step()
                if wait > 0 and not self.stop_requested:
                    self._sleep(wait)
        finally:
            if self.forced:
                self.log("stopping at once on a second signal: unconfirmed events stay queued")
            self.state = st.STOPPED
            try:
                self._wind_down()
            finally:
                restore()
                depth, counts = self._queue_numbers()
                owed = self.backlog
                self.queue.close()
                release_pid_file(self.pid_lock)
        return self._summary(depth, counts, owed)

    def _wind_down(self) -> None:
        """After the loop: stop the input, close the connection (what is in flight stays
        queued), write what is owed if the queue can be written, the final status."""
        if self.socket_input is not None:
            self.socket_input.stop()
        if self.sender is not None:
            self._close(requeue=True)
        if self.backlog or self.queue.read_only:
            self._flush_backlog()
        self._status_stop.set()
        if self._status_thread is not None:
            self._status_thread.join(timeout=2)
        self.write_status()

    def _summary(self, depth: Depth, counts: dict[str, int], owed: list[QueueWrite]) -> str:
        summary = (
            f"{depth.events} events queued; {counts.get('sent', 0)} sent,"
            f" {counts.get('resent', 0)} resent, {counts.get('dropped', 0)} dropped in total"
        )
        if owed and "status file" not in self.disk_full:
            summary += (
                f"; {updates(len(owed))} could not be written (disk full): kept in the "
                "status file, written at the next start"
            )
        elif owed:
            summary += (
                f"; {updates(len(owed))} could not be written (disk full), nor the status"
                f" file: {len(self.delivered_ids)} delivered batches stay queued and go out"
                " again at the next start (those whose sending was not recorded are not"
                " counted as resent)"
            )
        return summary

    def close(self) -> None:
        """Close the connection (requeueing what is in flight), the queue and the pid file
        (for a worker driven with ``step``; ``run`` does this itself)."""
        if self.sender is not None:
            self._close(requeue=True)
        self.queue.close()
        release_pid_file(self.pid_lock)
