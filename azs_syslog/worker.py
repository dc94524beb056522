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

Signal handlers only set flags (and, while the loop waits in a blocking connect or send, raise
``Interrupted`` so that a stop is never held up by a network timeout); the loop acts on them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import random
import signal
import socket
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from azs_syslog import paths
from azs_syslog import status as st
from azs_syslog.config import ClientSettings, Config, ServerSettings
from azs_syslog.errors import AzsSyslogError, ConfigError, EventError, QueueError, TransportError
from azs_syslog.ingest import BatchBuilder, error_reason
from azs_syslog.queue import Gap, Queue, QueueLimits, now_ms

BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 30.0
CONFIG_POLL = 0.5  # seconds between looks at the configuration (a change applies within 2 s)
# The replay window of TCP/TLS: how long after the server's TCP acknowledged a batch it may
# still be lost with the receiver (read, not yet written). Measured with rsyslog SIGKILLed
# mid-stream (benchmarks/relp.py drill): no loss even at 0; 0.25 s keeps a margin for a slower
# receiver while resending a quarter of what 1 s did (docs/operations.md).
CONFIRM_DELAY = 0.25
DRAIN_TIMEOUT = 1.5  # how long a reload or a stop waits for in-flight batches to be confirmed
STATUS_EVERY = 1.0
FETCH_BATCHES = 8
MAX_INFLIGHT_BATCHES = 4096

# The socket is 0660 for producers in the service's group; its directory lets that group in.
RUNTIME_DIR_MODE = 0o750

GAP_SIGNATURE = "Microsoft-AzureStack-Forwarder: QueueOverflow"


if TYPE_CHECKING:
    from azs_syslog.render import Renderer
    from azs_syslog.transport import Sender


@dataclass(frozen=True)
class Rendering:
    """The renderer for a configuration, and the key of its settings."""

    key: str
    settings: Any
    renderer: Renderer


Connect = Callable[[ServerSettings, ClientSettings], "Sender"]
MakeRendering = Callable[[Config], Rendering]
ConfigSource = Callable[[], Config]


def default_rendering(config: Config) -> Rendering:
    from azs_syslog.render import Renderer, RenderSettings

    settings = RenderSettings.from_config(config)
    return Rendering(settings.key, settings, Renderer(settings))


def default_connect(server: ServerSettings, client: ClientSettings) -> Sender:
    from azs_syslog import transport

    return transport.connect(server, client)


class ConfigWatcher:
    """The default configuration source: the config file, re-read when its inode, size or
    modification time changes (the CLI replaces it atomically, so the inode changes)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or paths.config_file()
        self._seen: tuple[int, int, int] | None = None
        self._config: Config | None = None

    def __call__(self) -> Config:
        from azs_syslog.config import load_config

        try:
            info = self.path.stat()
            stamp: tuple[int, int, int] | None = (info.st_ino, info.st_size, info.st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        if self._config is None or stamp != self._seen:
            config = load_config()  # raises ConfigError; the worker keeps the last good one
            self._config, self._seen = config, stamp
        return self._config


class Interrupted(BaseException):
    """A stop was requested while the loop waited in a blocking network call."""


@dataclass
class InFlight:
    batch_id: int
    count: int  # events in the batch
    messages: int  # messages written (the others were filtered out)
    end_offset: int  # plaintext bytes written on this connection up to the batch's end
    sent_at: float
    # RELP: the bytes and message lengths written, to tell how much of a batch was answered.
    wire_bytes: int = 0
    lengths: Sequence[int] = ()


@dataclass
class Counters:
    """Things the worker counts itself (the persistent ones live in the queue)."""

    connections: int = 0
    gap_warnings: int = 0
    last_send_ms: int | None = None


@dataclass
class LastError:
    message: str
    cause: str | None
    fix: str | None
    step: str | None
    at_ms: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "cause": self.cause,
            "fix": self.fix,
            "step": self.step,
            "time_ms": self.at_ms,
        }


@dataclass
class WorkerOptions:
    queue_path: Path | None = None
    status_path: Path | None = None
    socket_path: Path | None = None
    pid_path: Path | None = None
    limits: QueueLimits = field(default_factory=QueueLimits.from_env)
    confirm_delay: float = CONFIRM_DELAY
    backoff_initial: float = BACKOFF_INITIAL
    backoff_max: float = BACKOFF_MAX
    config_poll: float = CONFIG_POLL
    drain_timeout: float = DRAIN_TIMEOUT
    socket_input: bool = True


class Worker:
    def __init__(
        self,
        config_source: ConfigSource | None = None,
        *,
        options: WorkerOptions | None = None,
        connect: Connect | None = None,
        make_rendering: MakeRendering | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.log = log or (lambda message: None)
        self.options = options or WorkerOptions()
        # First, before touching the queue: one worker per home.
        self.pid_lock = acquire_pid_file(self.options.pid_path or paths.pid_file())
        self.config_source = config_source or ConfigWatcher()
        self.connect = connect or default_connect
        self.make_rendering = make_rendering or default_rendering
        try:
            self.queue = Queue(self.options.queue_path, limits=self.options.limits, durable=False)
        except BaseException:
            release_pid_file(self.pid_lock)
            raise
        self.config: Config | None = None
        self.rendering: Rendering | None = None
        self.config_problem: str | None = None
        self.state = st.NOT_CONFIGURED
        self.sender: Sender | None = None
        self.inflight: list[InFlight] = []
        self.last_sent_id = 0
        self.written = 0  # plaintext bytes written on the current connection
        self.backoff = 0.0
        self.next_attempt = 0.0
        self.next_config_check = 0.0
        self.next_status = 0.0
        self.draining_since: float | None = None
        self.pending: tuple[Config, Rendering] | None = None
        self.last_error: LastError | None = None
        self.counters = Counters()
        self.stop_requested = False
        self.reload_requested = False
        self._interruptible = False
        self._signals = 0
        self.started_ms = now_ms()
        self.socket_input: SocketInput | None = None
        # RELP: batch id -> its leading messages the server already answered 200 (not resent).
        self.answered_part: dict[int, int] = {}
        self._sending: InFlight | None = None
        # Batches sent on an earlier run and never confirmed go out again first.
        resent = self.queue.requeue_sent()
        if resent:
            self.log(f"{resent} events sent before the last stop but not confirmed go out again")

    # --- signals: flags only

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self.stop_requested = True
        if self._signals > 1 or self._interruptible:
            raise Interrupted

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self.reload_requested = True

    def request_stop(self) -> None:
        self.stop_requested = True

    # --- one iteration

    def step(self, now: float | None = None) -> float:
        """Run one iteration; returns how many seconds the loop may sleep before the next."""
        now = time.monotonic() if now is None else now
        if self.reload_requested or now >= self.next_config_check or self.config is None:
            self.reload_requested = False
            self.next_config_check = now + self.options.config_poll
            self._check_config()
        wait = self._deliver(now)
        if now >= self.next_status:
            self.next_status = now + STATUS_EVERY
            self.write_status()
        return wait

    def _check_config(self) -> None:
        try:
            config = self.config_source()
            rendering = self.make_rendering(config) if config != self.config else None
        except ConfigError as exc:
            if self.config_problem != str(exc):
                self.log(f"configuration problem: {exc}; running on the last good configuration")
            self.config_problem = str(exc)
            if self.config is None:  # nothing good yet: run unconfigured, keep queueing
                self._apply(Config(), self.make_rendering(Config()))
            return
        if self.config_problem is not None:
            self.log("the configuration is valid again")
        self.config_problem = None
        if rendering is None:  # unchanged (or changed back while draining)
            self.pending = None
            return
        if self.config is None or self.sender is None:
            self._apply(config, rendering)
            return
        # Connected: drain what is in flight, then switch (see _deliver).
        self.pending = (config, rendering)

    def _apply(self, config: Config, rendering: Rendering) -> None:
        self.config = config
        self.rendering = rendering
        self.pending = None
        self.backoff = 0.0
        self.next_attempt = 0.0
        server = config.server
        if server is None:
            self.state = st.NOT_CONFIGURED
            self.log("no syslog server configured: events are queued, not sent")
        else:
            self.log(
                f"forwarding to {server.server_name}:{server.server_port} over "
                + ("RELP/" if server.use_relp else "")
                + server.transport
            )
        if self.socket_input is not None:
            # Its own renderer: a Renderer keeps caches and is used by one thread only.
            self.socket_input.rendering = self.make_rendering(config)

    def _deliver(self, now: float) -> float:
        assert self.config is not None
        if self.sender is not None and (self.pending is not None or self.stop_requested):
            return self._drain(now)
        if self.stop_requested:
            return 0.0
        server = self.config.server
        if server is None:
            self.state = st.NOT_CONFIGURED
            return 0.2
        if self.sender is None:
            if now < self.next_attempt:
                self.state = st.BACKING_OFF
                return min(self.next_attempt - now, 0.2)
            return self._connect(server, now)
        self.state = st.CONNECTED  # also after a drain the configuration change undid
        self.draining_since = None
        try:
            self._confirm(now)
            sent = self._send_some(now)
        except TransportError as exc:
            self._broken(exc, now)
            return 0.0
        except Interrupted:
            self._close(requeue=True)
            return 0.0
        if sent:
            return 0.0
        if self.inflight:
            return 0.05
        return 0.1

    def _connect(self, server: ServerSettings, now: float) -> float:
        assert self.config is not None
        self.state = st.CONNECTING
        self.write_status()
        try:
            self._interruptible = True
            try:
                if self.stop_requested:
                    return 0.0
                sender = self.connect(server, self.config.client)
            finally:
                self._interruptible = False
        except Interrupted:
            return 0.0
        except TransportError as exc:
            self._failed(exc, now)
            return 0.0
        self.sender = sender
        self.written = 0
        self.inflight = []
        self.last_sent_id = 0
        self.backoff = 0.0
        self.state = st.CONNECTED
        self.counters.connections += 1
        info = sender.info
        detail = " ".join(
            str(part)
            for part in (getattr(info, "tls_version", None), getattr(info, "cipher", None))
            if part
        )
        self.log(
            f"connected to {getattr(info, 'server', '?')} ({getattr(info, 'peer_address', '?')})"
            + (f", {detail}" if detail else "")
        )
        self.write_status()
        return 0.0

    def _failed(self, exc: TransportError, now: float) -> None:
        self.last_error = LastError(exc.message, exc.cause, exc.fix, exc.step, now_ms())
        self.backoff = (
            self.options.backoff_initial
            if self.backoff == 0
            else min(self.backoff * 2, self.options.backoff_max)
        )
        # Full jitter on the upper half: never hammer, never synchronise with other clients.
        delay = self.backoff * (0.5 + random.random() / 2)
        self.next_attempt = now + delay
        self.state = st.BACKING_OFF
        self.log(
            f"{exc.message} ({exc.step}: {exc.cause}); retrying in {delay:.1f} s"
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
            sender.close(timeout=2.0)
            if getattr(sender, "exact_acknowledgement", False):
                self._settle_answered(sender, sending)
        if requeue and self.inflight:
            resent = self.queue.requeue_sent()
            ids = {i.batch_id for i in self.inflight}
            answered = sum(n for batch_id, n in self.answered_part.items() if batch_id in ids)
            if answered:
                # Messages already answered 200 are skipped when their batch goes out again.
                resent -= answered
                self.queue.add_counters(resent=-answered)
            self.log(f"{resent} events sent but not confirmed will be sent again")
        self.inflight = []
        self.last_sent_id = 0
        self.written = 0

    def _drain(self, now: float) -> float:
        """Stop sending; wait (up to drain_timeout) for in-flight batches to be confirmed;
        then close cleanly (TLS close_notify) and apply the pending configuration."""
        if self.draining_since is None:
            self.draining_since = now
        self.state = st.DRAINING
        try:
            self._confirm(now)
        except TransportError as exc:
            self.draining_since = None
            self._broken(exc, now)
            self._after_drain()
            return 0.0
        if self.inflight and now - self.draining_since < self.options.drain_timeout:
            return 0.05
        self.draining_since = None
        self._close(requeue=True)
        self._after_drain()
        return 0.0

    def _after_drain(self) -> None:
        if self.pending is not None:
            self._apply(*self.pending)
            self.state = st.CONNECTING if self.config and self.config.server else st.NOT_CONFIGURED

    # --- sending and confirming

    def _settle_answered(self, sender: Sender, sending: InFlight | None) -> None:
        """RELP, at the end of a session: confirm the batches answered in full, and remember
        how many leading messages of the first unanswered batch were answered, so that exactly
        the unanswered frames are sent again. ``sending`` is the batch a failed send was
        writing (not marked as sent)."""
        answered = int(getattr(sender, "acknowledged_bytes")())  # noqa: B009
        done: list[InFlight] = []
        for item in [*self.inflight, *([sending] if sending else [])]:
            if item.end_offset <= answered and item is not sending:
                done.append(item)
                continue
            count = _messages_within(item, answered)
            if count:
                self.answered_part[item.batch_id] = count
            if item is sending:
                # Its frames written and not answered go out again: count them as resent.
                written = int(getattr(sender, "written_bytes")())  # noqa: B009
                again = _messages_within(item, written) - count
                if again > 0:
                    self.queue.add_counters(resent=again)
                    self.log(f"{again} events written but not answered will be sent again")
            break
        if done:
            del self.inflight[: len(done)]
            self.queue.confirm(
                [i.batch_id for i in done],
                sent=sum(i.messages for i in done),
                filtered=sum(i.count - i.messages for i in done),
            )

    def _confirm(self, now: float) -> None:
        if self.sender is None:
            return
        sender = self.sender
        udp = getattr(sender.info, "transport", "") == "udp"
        if not udp and sender.peer_closed():
            raise TransportError(
                "the server closed the connection",
                step="send",
                cause="closed-by-peer",
                fix="check the server's log; the forwarder reconnects and resends",
            )
        outstanding = sender.unacknowledged_bytes()
        exact = getattr(sender, "exact_acknowledgement", False)  # RELP: answered, not guessed
        delay = 0.0 if udp or exact else self.options.confirm_delay
        done: list[InFlight] = []
        for item in self.inflight:
            # TLS adds bytes, never removes them: when fewer bytes are unacknowledged than
            # plaintext written after this batch, every byte of this batch was acknowledged.
            acknowledged = outstanding <= self.written - item.end_offset
            if not (acknowledged and now - item.sent_at >= delay):
                break
            done.append(item)
        if not self.inflight or not done:
            return
        del self.inflight[: len(done)]
        self.queue.confirm(
            [i.batch_id for i in done],
            sent=sum(i.messages for i in done),
            filtered=sum(i.count - i.messages for i in done),
        )

    def _send_some(self, now: float) -> bool:
        assert self.sender is not None and self.rendering is not None
        if len(self.inflight) >= MAX_INFLIGHT_BATCHES:
            return False
        gap = self.queue.pending_gap()
        if gap is not None:
            self._send_gap_warning(gap)
        batches = self.queue.next_batches(FETCH_BATCHES, after_id=self.last_sent_id)
        if not batches:
            return False
        sent_ids: list[int] = []
        try:
            for batch in batches:
                wire: bytes = batch.wire
                lengths: Sequence[int] = batch.lengths
                if batch.render_key != self.rendering.key:
                    wire, lengths = self._rerender(batch.id)
                    self.answered_part.pop(batch.id, None)
                answered = self.answered_part.pop(batch.id, 0)
                if answered:  # RELP: only what the server did not answer goes out again
                    wire = wire[sum(lengths[:answered]) :]
                    lengths = lengths[answered:]
                item = InFlight(
                    batch.id,
                    batch.count,
                    len(lengths) + answered,
                    self.written + len(wire),
                    now,
                    len(wire),
                    lengths,
                )
                self._interruptible = True
                self._sending = item  # until the send returns (see _settle_answered)
                try:
                    if wire:
                        self.sender.send(wire, lengths)
                finally:
                    self._interruptible = False
                self._sending = None
                self.written += len(wire)
                self.last_sent_id = batch.id
                sent_ids.append(batch.id)
                self.inflight.append(item)
                if self.stop_requested or self.pending is not None:
                    break
                # What the server's TCP acknowledged leaves the replay set now, not after the
                # whole fetch: after a break only the rest is sent again. (Marked as sent
                # first: a batch confirmed here must not be marked in flight afterwards.)
                self.queue.mark_sent(sent_ids)
                sent_ids.clear()
                self._confirm(time.monotonic())
        finally:
            self.queue.mark_sent(sent_ids)
        self.counters.last_send_ms = now_ms()
        return True

    def _rerender(self, batch_id: int) -> tuple[bytes, array[int]]:
        """Render a batch again from its raw lines under the current settings."""
        assert self.rendering is not None
        raw = self.queue.load_raw(batch_id) or []
        builder = BatchBuilder(self.rendering.renderer, self.rendering.key)
        rejected = 0
        for accepted_ms, line in raw:
            try:
                builder.add(line, accepted_ms)
            except EventError:
                rejected += 1  # valid when accepted; cannot happen unless the rules changed
        batch, truncated = builder.take()
        self.queue.add_counters(rerendered=len(raw), rejected=rejected, truncated=truncated)
        if batch is None:
            return b"", array("I")
        lengths = array("I")
        lengths.frombytes(batch.lengths)
        return batch.wire, lengths

    def _send_gap_warning(self, gap: Gap) -> None:
        assert self.sender is not None and self.config is not None
        message = gap_warning(gap, self.rendering)
        self._interruptible = True
        try:
            self.sender.send(message, [len(message)])
        finally:
            self._interruptible = False
        self.written += len(message)
        self.queue.clear_gap(gap)
        self.counters.gap_warnings += 1

    # --- status

    def status(self) -> dict[str, Any]:
        depth = self.queue.depth()
        counters = self.queue.counters()
        config = self.config or Config()
        server = config.server
        info = getattr(self.sender, "info", None) if self.sender is not None else None
        client_cert = config.client.certificate
        now = now_ms()
        return {
            "pid": os.getpid(),
            "updated": time.time(),
            "started_ms": self.started_ms,
            "state": self.state,
            "server": None
            if server is None
            else {
                "name": server.server_name,
                "port": server.server_port,
                "transport": f"relp-{server.transport}" if server.use_relp else server.transport,
            },
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
            "last_error": self.last_error.as_dict() if self.last_error else None,
            "last_send_ms": self.counters.last_send_ms,
            "next_attempt_in_s": max(0.0, self.next_attempt - time.monotonic())
            if self.state == st.BACKING_OFF
            else None,
            "config_problem": self.config_problem,
            "socket": str(self.socket_input.path) if self.socket_input else None,
            "socket_error": str(self.socket_input.error)
            if self.socket_input and self.socket_input.error
            else None,
        }

    def write_status(self) -> None:
        with contextlib.suppress(OSError, QueueError):
            st.write_status(self.status(), self.options.status_path)

    # --- the real loop

    def run(self) -> str:
        """Run until SIGTERM / SIGINT; returns a one-line summary. Raises ``AzsSyslogError``
        when it cannot start."""
        previous = {
            sig: signal.signal(sig, handler)
            for sig, handler in (
                (signal.SIGTERM, self._on_stop_signal),
                (signal.SIGINT, self._on_stop_signal),
                (signal.SIGHUP, self._on_hup),
            )
        }
        try:
            if self.options.socket_input:
                self.socket_input = SocketInput(
                    self.options.socket_path or paths.socket_file(),
                    queue_path=self.queue.path,
                    limits=self.options.limits,
                )
                self.step(time.monotonic())  # load the configuration first
                self.socket_input.rendering = self.make_rendering(self.config or Config())
                self.socket_input.start()
            try:
                while not (self.stop_requested and self.sender is None):
                    wait = self.step()
                    if wait > 0 and not self.stop_requested:
                        time.sleep(wait)
            except Interrupted:
                self._close(requeue=True)
        finally:
            self.state = st.STOPPED
            try:
                if self.socket_input is not None:
                    self.socket_input.stop()
                if self.sender is not None:
                    self._close(requeue=True)
                self.write_status()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                depth = self.queue.depth()
                counts = self.queue.counters()
                self.queue.close()
                release_pid_file(self.pid_lock)
        return (
            f"{depth.events} events queued; {counts['sent']} sent, {counts['resent']} resent,"
            f" {counts['dropped']} dropped in total"
        )

    def close(self) -> None:
        """Close the connection (requeueing what is in flight), the queue and the pid file
        (for a worker driven with ``step``; ``run`` does this itself)."""
        if self.sender is not None:
            self._close(requeue=True)
        self.queue.close()
        release_pid_file(self.pid_lock)


def _messages_within(item: InFlight, upto: int) -> int:
    """How many leading messages of ``item`` end at or before byte offset ``upto``."""
    part, count = upto - (item.end_offset - item.wire_bytes), 0
    for length in item.lengths:
        if part < length:
            break
        part -= length
        count += 1
    return count


def _text(value: object) -> str | None:
    if value is None:
        return None
    isoformat = getattr(value, "isoformat", None)
    return str(isoformat()) if callable(isoformat) else str(value)


# --- the gap warning ---------------------------------------------------------------------------


def gap_warning(gap: Gap, rendering: Rendering | None, host: str | None = None) -> bytes:
    """One framed syslog message reporting events dropped because the queue was full [project].

    CEF signature ``Microsoft-AzureStack-Forwarder: QueueOverflow``, name ``QueueOverflow``,
    severity 5, with the number of events dropped (``cnt``) and the acceptance times of the
    oldest and newest of them (``start`` / ``end``, ms since the epoch), under the current
    message format, facility, CEF version and framing.
    """
    from azs_syslog import cef, syslog

    settings: Any = rendering.settings if rendering is not None else None
    message_format = getattr(settings, "message_format", "rfc3164")
    facility = getattr(settings, "facility", 10)
    version = getattr(settings, "cef_version", "0")
    framing = getattr(settings, "framing", "octet-counting")
    host = host or socket.gethostname()
    now = now_ms()
    severity = 5
    pri = syslog.pri(facility, severity)
    head = (
        syslog.rfc5424_header(pri, now, host, "QueueOverflow")
        if message_format == "rfc5424"
        else syslog.rfc3164_header(pri, now, host)
    )
    text = cef.escape_value(
        f"The forwarder queue was full: {gap.events} events were dropped, the oldest first"
    )
    body = (
        head
        + cef.header(version, GAP_SIGNATURE, "QueueOverflow", severity)
        + f"rt={now} cnt={gap.events} start={gap.first_ms} end={gap.last_ms} msg={text}"
    )
    return syslog.frame(body.encode(), framing)


# --- the pid file ------------------------------------------------------------------------------


@dataclass
class PidLock:
    path: Path
    fd: int


def acquire_pid_file(path: Path) -> PidLock:
    """Take the worker's pid file (an exclusive lock held for the process's life)."""
    paths.ensure_private_dir(path.parent, mode=RUNTIME_DIR_MODE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        other = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
            raise AzsSyslogError(
                f"a forwarder is already running for this home (pid {other}, {path})",
                fix="stop it first, or point AZS_SYSLOG_HOME at another directory",
            ) from exc
        raise AzsSyslogError(f"cannot lock the pid file {path}: {exc}") from exc
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return PidLock(path, fd)


def release_pid_file(lock: PidLock) -> None:
    if lock.fd < 0:
        return
    with contextlib.suppress(OSError):
        lock.path.unlink()
    os.close(lock.fd)
    lock.fd = -1


# --- the Unix-socket input ---------------------------------------------------------------------

MAX_LINE = 1 << 20
SOCKET_COMMIT_EVENTS = 2000


class _Client:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = bytearray()
        self.line_no = 0
        self.out = bytearray()
        self.skipping = False  # discarding the rest of an over-long line
        self.closed = False


class SocketInput:
    """JSON lines on a Unix-domain socket (mode 0660), acknowledged once durable.

    Protocol [project]: the producer writes JSON lines; lines are numbered from 1 on each
    connection. After each commit the worker answers ``error N reason`` for every rejected
    line, then ``ok N``: every line up to N not reported as an error is durably queued. A
    producer that writes one line and waits gets ``ok 1``; a streaming producer gets one
    ``ok`` per commit (up to a few thousand lines).
    """

    def __init__(self, path: Path, *, queue_path: Path, limits: QueueLimits) -> None:
        self.path = path
        self.queue_path = queue_path
        self.limits = limits
        self.rendering: Rendering | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        paths.ensure_private_dir(path.parent, mode=RUNTIME_DIR_MODE)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # stale: the pid-file lock proves no other worker owns it
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o117)
        try:
            self.server.bind(str(path))
        except OSError as exc:
            self.server.close()
            raise AzsSyslogError(
                f"cannot listen on the socket {path}: {exc.strerror or exc}",
                fix="a Unix socket path must be shorter than 108 bytes: use a shorter "
                "AZS_SYSLOG_HOME"
                if len(str(path)) >= 100
                else "check the directory's permissions",
            ) from exc
        finally:
            os.umask(old_umask)
        path.chmod(0o660)
        self.server.listen(64)
        self.server.setblocking(False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="azs-syslog-socket", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
        with contextlib.suppress(OSError):
            self.server.close()
        with contextlib.suppress(OSError):
            self.path.unlink()

    def _run(self) -> None:
        import selectors

        queue = Queue(self.queue_path, limits=self.limits, durable=True)
        selector = selectors.DefaultSelector()
        selector.register(self.server, selectors.EVENT_READ, None)
        clients: dict[int, _Client] = {}
        try:
            while not self._stop.is_set():
                ready = selector.select(timeout=0.2)
                touched: list[_Client] = []
                for key, _ in ready:
                    if key.data is None:
                        self._accept(selector, clients)
                        continue
                    client: _Client = key.data
                    self._read(client)
                    touched.append(client)
                if touched:
                    self._commit(queue, touched)
                for client in list(clients.values()):
                    self._flush_out(client)
                    if client.closed and not client.out:
                        with contextlib.suppress(KeyError, ValueError):
                            selector.unregister(client.conn)
                        client.conn.close()
                        del clients[id(client)]
        except BaseException as exc:
            self.error = exc
        finally:
            for client in clients.values():
                client.conn.close()
            selector.close()
            queue.close()

    def _accept(self, selector: Any, clients: dict[int, _Client]) -> None:
        import selectors

        try:
            conn, _ = self.server.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        client = _Client(conn)
        clients[id(client)] = client
        selector.register(conn, selectors.EVENT_READ, client)

    def _read(self, client: _Client) -> None:
        for _ in range(16):  # bounded: other clients get their turn
            try:
                data = client.conn.recv(1 << 18)
            except BlockingIOError:
                return
            except OSError:
                client.closed = True
                return
            if not data:
                client.closed = True
                return
            client.buffer += data
            if len(client.buffer) > 4 * MAX_LINE:
                return

    def _commit(self, queue: Queue, clients: list[_Client]) -> None:
        rendering = self.rendering
        if rendering is None:
            return
        builder = BatchBuilder(rendering.renderer, rendering.key)
        replies: list[tuple[_Client, list[bytes], int]] = []
        rejected = 0
        for client in clients:
            errors: list[bytes] = []
            last = client.line_no
            while True:
                end = client.buffer.find(b"\n")
                if end < 0:
                    if len(client.buffer) > MAX_LINE:
                        # An over-long line: reject it now and discard it up to its newline.
                        if not client.skipping:
                            client.line_no += 1
                            errors.append(
                                b"error %d line longer than %d bytes\n" % (client.line_no, MAX_LINE)
                            )
                            rejected += 1
                        client.skipping = True
                        client.buffer.clear()
                    break
                line = bytes(client.buffer[:end]).rstrip(b"\r")
                del client.buffer[: end + 1]
                if client.skipping:
                    client.skipping = False
                    continue
                client.line_no += 1
                if line.strip():
                    rejected += self._add_line(builder, client, line, errors)
            if client.closed and client.buffer and not client.skipping:
                # The producer closed without a final newline: the last line still counts.
                line = bytes(client.buffer)
                client.buffer.clear()
                client.line_no += 1
                if line.strip():
                    rejected += self._add_line(builder, client, line, errors)
            if client.line_no != last:
                replies.append((client, errors, client.line_no))
        batch, truncated = builder.take()
        if batch is not None or rejected or truncated:
            queue.append_batch(batch, rejected=rejected, truncated=truncated)
        for client, errors, upto in replies:  # only now is every accepted line durable
            client.out += b"".join(errors) + b"ok %d\n" % upto

    @staticmethod
    def _add_line(builder: BatchBuilder, client: _Client, line: bytes, errors: list[bytes]) -> int:
        try:
            builder.add(line, now_ms())
        except EventError as exc:
            reason = " ".join(error_reason(exc).split())
            errors.append(f"error {client.line_no} {reason}\n".encode())
            return 1
        return 0

    def _flush_out(self, client: _Client) -> None:
        while client.out:
            try:
                sent = client.conn.send(client.out)
            except BlockingIOError:
                return
            except OSError:
                client.out.clear()
                client.closed = True
                return
            del client.out[:sent]
