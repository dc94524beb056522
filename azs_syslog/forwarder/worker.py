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
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import random
import select
import signal
import socket
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from azs_syslog import fserrors, paths, transport
from azs_syslog.config import (
    LEVEL_NAMES,
    LEVEL_TLS_UNVERIFIED,
    ClientSettings,
    Config,
    ServerSettings,
)
from azs_syslog.encode.pipeline import RUNTIME_DIR_MODE as RUNTIME_DIR_MODE
from azs_syslog.encode.pipeline import Rendering as Rendering
from azs_syslog.errors import AzsSyslogError, ConfigError, EventError, QueueError, TransportError
from azs_syslog.forwarder import expiry as ex
from azs_syslog.forwarder import status as st
from azs_syslog.inputs.socket_input import MAX_LINE as MAX_LINE
from azs_syslog.inputs.socket_input import SOCKET_COMMIT_EVENTS as SOCKET_COMMIT_EVENTS
from azs_syslog.inputs.socket_input import SocketInput as SocketInput
from azs_syslog.queue import Depth, Gap, Held, Queue, QueuedBatch, QueueLimits, now_ms
from azs_syslog.queue.ingest import BatchBuilder

BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 30.0
CONFIG_POLL = 0.5  # seconds between looks at the configuration (a change applies within 2 s)
# The replay window of TCP/TLS: how long after the server's TCP acknowledged a batch it may
# still be lost with the receiver (read, not yet written). Measured with rsyslog SIGKILLed
# mid-stream (benchmarks/relp.py drill): no loss even at 0; 0.25 s keeps a margin for a slower
# receiver while resending a quarter of what 1 s did (docs/operations.md).
CONFIRM_DELAY = 0.25
DRAIN_TIMEOUT = 1.5  # how long a reload or a stop waits for in-flight batches to be confirmed
# After a stop request, a write that is under way gets this long to finish before it is given
# up (a write given up half-way leaves a cut message at the receiver; the batch is sent again).
STOP_SEND_GRACE = 1.0
# Everything a stop waits for (that write, the drain, the graceful close) ends within this long
# after the stop was seen, so that the process exits well within 5 s of SIGTERM.
STOP_BUDGET = 3.5
STATUS_EVERY = 1.0
HELD_CHECK = 1.0  # seconds between looks at the held batches (and at release-held)
# How long a batch rendered for a newer configuration than the file now holds (a file restored
# from a backup, or deleted and written again) waits before it is treated as older.
GENERATION_WAIT = 10.0
FETCH_BATCHES = 8
MAX_INFLIGHT_BATCHES = 4096
QUEUE_RETRY = 1.0  # seconds between attempts to write owed queue updates (disk full)
EXPIRY_CHECK = 60.0  # seconds between looks at the certificates' expiry warnings (logged daily)
# While delivering to the failover server, the primary is probed (a connection and handshake,
# nothing sent) this often, or every FailoverAfter seconds when that is shorter.
FAILOVER_PROBE = 30.0
PRIMARY = "primary"
FAILOVER = "failover"

GAP_SIGNATURE = "Microsoft-AzureStack-Forwarder: QueueOverflow"


if TYPE_CHECKING:
    from azs_syslog.transport import Sender


Connect = Callable[[ServerSettings, ClientSettings], "Sender"]
MakeRendering = Callable[[Config], Rendering]
ConfigSource = Callable[[], Config]


def default_rendering(config: Config) -> Rendering:
    from azs_syslog.encode.render import Renderer, RenderSettings

    settings = RenderSettings.from_config(config)
    return Rendering(
        settings.key, settings, Renderer(settings), config.generation, config.security_level
    )


def _stamped(make_rendering: MakeRendering) -> MakeRendering:
    """``make_rendering`` whose renderings always carry their configuration's generation and
    security level (whatever renderer it builds)."""

    def make(config: Config) -> Rendering:
        return replace(
            make_rendering(config), generation=config.generation, level=config.security_level
        )

    return make


def held_message(events: int, accepted_level: int, current: Config) -> str:
    """The one line that explains held events and the two ways out."""
    them = "them" if events != 1 else "it"
    # From clear text any TLS delivers them; from TLS without a check, only a verified one.
    wanted = (
        "TLS with the certificate check"
        if current.security_level >= LEVEL_TLS_UNVERIFIED
        else "TLS"
    )
    return (
        f"{events} event{'s' if events != 1 else ''} accepted under"
        f" {LEVEL_NAMES.get(accepted_level, str(accepted_level))}"
        f" {'are' if events != 1 else 'is'} held: the current configuration"
        f" ({current.describe_transport()}) is weaker; configure {wanted} again to deliver"
        f" {them}, or run `azs-syslog forwarder release-held` to send {them} under the current"
        " configuration"
    )


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
            # Raises ConfigError; the worker keeps the last good one.
            config = load_config(self.path)
            self._config, self._seen = config, stamp
        return self._config


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
class FailoverState:
    """Which of the configured servers events go to, why and since when (docs/operations.md,
    "Failover"). Both servers belong to the same configuration (generation): a switch changes
    where batches go, never how they are rendered or which batches may be sent."""

    active: str = PRIMARY
    reason: str = "the configured server"
    since_ms: int = field(default_factory=now_ms)
    # First failed connection to the primary of the current run of failures (monotonic).
    failing_since: float | None = None
    next_probe: float = 0.0
    # The primary answered a probe: drain what is in flight on the failover server, then go.
    returning: bool = False
    last_probe_error: str | None = None


@dataclass
class Counters:
    """Things the worker counts itself (the persistent ones live in the queue)."""

    connections: int = 0
    gap_warnings: int = 0
    last_send_ms: int | None = None


@dataclass(frozen=True)
class LastError:
    message: str
    cause: str | None
    fix: str | None
    step: str | None
    at_ms: int
    # The server it concerned (``name:port transport``), or None when it concerns no server
    # (a full disk): an error of a server that is no longer configured is forgotten.
    server: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "cause": self.cause,
            "fix": self.fix,
            "step": self.step,
            "time_ms": self.at_ms,
            "server": self.server,
        }


def server_label(server: ServerSettings | None) -> str | None:
    if server is None:
        return None
    return f"{server.server_name}:{server.server_port} {server.transport}"


@dataclass(frozen=True)
class QueueWrite:
    """A write of the worker's bookkeeping to the queue, kept in memory (in order) while the
    queue cannot be written, and written when it can."""

    kind: str  # "requeue" (at_ms -1: at start), "mark", "confirm", "counters", "clear_gap"
    ids: tuple[int, ...] = ()
    sent: int = 0
    filtered: int = 0
    counts: tuple[tuple[str, int], ...] = ()
    gap: Gap | None = None
    at_ms: int = 0


MAX_OWED_RANGES = 1000  # per kind and segment, in the status file (ids are mostly contiguous)


def _ranges(ids: set[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for batch_id in sorted(ids):
        if out and out[-1][1] == batch_id - 1:
            out[-1][1] = batch_id
        else:
            out.append([batch_id, batch_id])
    return out


def _ids(ranges: object) -> tuple[int, ...]:
    out: list[int] = []
    if isinstance(ranges, list):
        for item in ranges:
            if isinstance(item, list) and len(item) == 2 and all(isinstance(i, int) for i in item):
                out.extend(range(item[0], item[1] + 1))
    return tuple(out)


def owed_summary(backlog: Sequence[QueueWrite]) -> list[dict[str, Any]]:
    """The owed queue writes, compacted for the status file: between two requeues, the order
    of marks, deletions and counter updates does not change the result, so each stretch is
    one segment of id ranges and sums."""
    segments: list[dict[str, Any]] = []
    marked: set[int] = set()
    delivered: set[int] = set()
    sums: dict[str, int] = {}

    def close() -> None:
        if not (marked or delivered or sums):
            return
        marks, deliveries = _ranges(marked), _ranges(delivered)
        if len(marks) <= MAX_OWED_RANGES and len(deliveries) <= MAX_OWED_RANGES:
            segments.append({"marked": marks, "delivered": deliveries, "sums": dict(sums)})
        else:
            segments.append({"incomplete": True})  # too scattered to keep: documented
        marked.clear()
        delivered.clear()
        sums.clear()

    for write in backlog:
        if write.kind == "requeue":
            close()
            segments.append({"requeue": True})
        elif write.kind == "mark":
            marked.update(write.ids)
        elif write.kind == "confirm":
            delivered.update(write.ids)
            sums["sent"] = sums.get("sent", 0) + write.sent
            sums["filtered"] = sums.get("filtered", 0) + write.filtered
        elif write.kind == "counters":
            for name, value in write.counts:
                sums[name] = sums.get(name, 0) + value
        elif write.kind == "clear_gap" and write.gap is not None:
            sums["gap_events"] = sums.get("gap_events", 0) + write.gap.events
    close()
    return segments


def owed_writes(segments: list[Any]) -> list[QueueWrite]:
    """The queue writes an :func:`owed_summary` stands for, in an order that gives the same
    queue."""
    writes: list[QueueWrite] = []
    for segment in segments:
        if not isinstance(segment, dict):
            continue
        if segment.get("requeue"):
            writes.append(QueueWrite("requeue"))
            continue
        sums = segment.get("sums") if isinstance(segment.get("sums"), dict) else {}
        assert isinstance(sums, dict)
        number = {k: int(v) for k, v in sums.items() if isinstance(v, int)}
        marked = _ids(segment.get("marked"))
        if marked:
            writes.append(QueueWrite("mark", ids=marked, at_ms=now_ms()))
        delivered = _ids(segment.get("delivered"))
        if delivered:
            writes.append(
                QueueWrite(
                    "confirm",
                    ids=delivered,
                    sent=number.pop("sent", 0),
                    filtered=number.pop("filtered", 0),
                )
            )
        gap_events = number.pop("gap_events", 0)
        number.pop("sent", None)
        number.pop("filtered", None)
        if number:
            writes.append(QueueWrite("counters", counts=tuple(sorted(number.items()))))
        if gap_events:
            writes.append(QueueWrite("clear_gap", gap=Gap(gap_events, 0, 0)))
    return writes


@dataclass(frozen=True)
class DiskFull:
    """One file the worker could not write because its file system is full."""

    what: str  # "queue", "status file", "pid file"
    path: Path
    since_ms: int


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
        # Queue writes owed because the queue could not be written (disk full), in order;
        # the batches they concern, as this worker knows them, live in memory meanwhile.
        self.backlog: list[QueueWrite] = []
        self.delivered_ids: set[int] = set()  # delivered; their deletion is owed
        self.gap_clear_owed = False
        self.next_queue_retry = 0.0
        self.disk_full: dict[str, DiskFull] = {}
        self._lock = threading.RLock()  # status snapshots and disk-full records (any thread)
        self._queue_view: tuple[Depth, dict[str, int]] | None = None
        self._logged_problem: str | None = None
        self.last_error: LastError | None = None
        # First, before touching the queue: one worker per home.
        self.pid_lock = acquire_pid_file(self.options.pid_path or paths.pid_file())
        if not self.pid_lock.written:
            self._disk_full_begins("pid file", self.pid_lock.path)
        self.config_source = config_source or ConfigWatcher()
        self.connect = connect or self._connect_watched
        self.make_rendering = _stamped(make_rendering or default_rendering)
        queue_path = self.options.queue_path or paths.queue_file()
        try:
            try:
                self.queue = Queue(queue_path, limits=self.options.limits, durable=False)
            except QueueError as exc:
                if not fserrors.is_disk_full(exc, queue_path):
                    raise
                # Opening needs space (the -shm file); reading what is queued does not.
                self.queue = Queue.snapshot(queue_path, limits=self.options.limits)
                self._disk_full_begins("queue", queue_path)
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
        # A batch rendered for a newer configuration than ours: (its generation, since when).
        self.generation_wait: tuple[int, float] | None = None
        # Batches up to this id count as older than ours, whatever their generation: a wait
        # for the configuration they were rendered for timed out (the file went back).
        self.stale_upto_id = 0
        self.held: Held | None = None
        self.next_held_check = 0.0
        self.released_seen: int | None = None
        self.counters = Counters()
        self.failover = FailoverState()
        # Certificate ends, by role (expiry.CLIENT / SERVER / SERVER_CHAIN): the client's from
        # the configuration's pair at each connection attempt, the server's from each
        # connection (kept after it ends, for the server they came from).
        self.expiries: dict[str, ex.Expiry] = {}
        self._expiry_server: str | None = None
        self._expiry_logged: dict[str, str] = {}  # warning key -> the UTC day it was logged
        self.next_expiry_check = 0.0
        self._init_sequence()
        self.stop_requested = False
        self.forced = False  # a second stop signal: no drain, no graceful close
        self.reload_requested = False
        self._signals = 0
        self._stop_at: float | None = None  # when the loop first saw the stop (monotonic)
        self._io: str | None = None  # the blocking network call under way: connect/send/close
        self.io_watch = transport.IoWatch(give_up_at=self._give_up_at)
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._loop_thread = threading.get_ident()
        self._status_lock = threading.Lock()
        self._snapshot: dict[str, Any] | None = None
        self._status_written = 0.0
        self._status_stop = threading.Event()
        self._status_thread: threading.Thread | None = None
        self.started_ms = now_ms()
        self.socket_input: SocketInput | None = None
        # RELP: batch id -> its leading messages the server already answered 200 (not resent).
        self.answered_part: dict[int, int] = {}
        self._sending: InFlight | None = None
        # What an earlier run could not write to the queue (the disk was full when it
        # stopped) it left in its status file: written first, so that batches it delivered
        # are not sent again and those it sent are counted as resent.
        inherited = self._inherited_writes()
        for write in inherited:
            self._queue_write(write)
            if write.kind == "confirm" and self.backlog:
                self.delivered_ids.update(write.ids)
        # Batches sent on an earlier run and never confirmed go out again first (counted as
        # resent: now, or when the queue can be written again).
        self._queue_write(QueueWrite("requeue", at_ms=-1))
        if inherited:
            self.log(
                f"{_updates(len(inherited))} the previous run could not write (disk full) "
                + ("are written" if not self.backlog else "are kept until there is space")
            )
            self.write_status()  # they are in the queue now: not to be applied twice

    # --- signals: flags only (the wake-up descriptor wakes the loop)

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self.stop_requested = True
        if self._signals > 1:
            self.forced = True

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self.reload_requested = True

    def request_stop(self, *, force: bool = False) -> None:
        """Ask the loop to stop (from any thread)."""
        self.stop_requested = True
        if force:
            self.forced = True
        self._wake()

    def _wake(self) -> None:
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def _give_up_at(self) -> float | None:
        """By when (monotonic) the blocking network call under way must give up; None lets it
        run to its own timeout. Asked by the call itself (``transport.IoWatch``)."""
        if self.forced:
            return 0.0
        if not self.stop_requested:
            return None
        if self._stop_at is None:
            self._stop_at = time.monotonic()
        if self._io == "send":
            return self._stop_at + STOP_SEND_GRACE
        if self._io == "close":
            return self._stop_at + STOP_BUDGET  # within its own 2 s, and within the budget
        return 0.0  # connecting: nothing worth finishing

    def _connect_watched(self, server: ServerSettings, client: ClientSettings) -> Sender:
        return transport.connect(server, client, watch=self.io_watch)

    # --- one iteration

    def step(self, now: float | None = None) -> float:
        """Run one iteration; returns how many seconds the loop may sleep before the next."""
        now = time.monotonic() if now is None else now
        if self.stop_requested and self._stop_at is None:
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

    # --- queue writes that wait for space

    def _queue_write(self, write: QueueWrite) -> bool:
        """Write ``write`` to the queue now, or keep it (in order, behind the others owed) when
        the queue cannot be written. True when it was written."""
        if write.kind == "confirm" and self.sequence_ranges:
            self._sequence_delivered(write.ids)
        if self.backlog or self.queue.read_only:
            self.backlog.append(write)
            return False
        try:
            result = self._apply_write(write)
        except QueueError as exc:
            self.backlog.append(write)
            self._queue_failed(exc)
            return False
        self._written(write, result)
        return True

    def _apply_write(self, write: QueueWrite) -> int:
        queue = self.queue
        if write.kind == "requeue":
            return queue.requeue_sent()
        if write.kind == "mark":
            queue.mark_sent(write.ids, write.at_ms)
        elif write.kind == "confirm":
            return queue.confirm(write.ids, sent=write.sent, filtered=write.filtered)
        elif write.kind == "counters":
            queue.add_counters(**dict(write.counts))
        elif write.kind == "clear_gap":
            assert write.gap is not None
            queue.clear_gap(write.gap)
        return 0

    def _written(self, write: QueueWrite, result: int) -> None:
        if write.kind == "requeue" and write.at_ms == -1 and result:
            self.log(f"{result} events sent before but not confirmed go out again (resent)")
        elif write.kind == "confirm":
            self.delivered_ids.difference_update(write.ids)
        elif write.kind == "clear_gap":
            self.gap_clear_owed = False

    def _inherited_writes(self) -> list[QueueWrite]:
        try:
            previous = st.read_status(self.options.status_path)
        except AzsSyslogError:
            return []
        if not previous or previous.get("pid") == os.getpid():
            return []
        owed = previous.get("owed")
        return owed_writes(owed) if isinstance(owed, list) else []

    def _flush_backlog(self) -> None:
        """Reopen the queue if only a read-only view of it could be opened, then write what is
        owed, oldest first; stop at the first failure (tried again in QUEUE_RETRY)."""
        if self.queue.read_only:
            try:
                queue = Queue(self.queue.path, limits=self.options.limits, durable=False)
            except QueueError as exc:
                self._queue_failed(exc)
                return
            self.queue.close()
            self.queue = queue
        written = 0
        while self.backlog:
            write = self.backlog[0]
            try:
                result = self._apply_write(write)
            except QueueError as exc:
                self._queue_failed(exc)
                return
            del self.backlog[0]
            written += 1
            self._written(write, result)
        if written:
            self.log(f"the queue can be written again: {_updates(written)} owed, written")
        self._queue_ok()
        if written:
            self.write_status()  # its "owed" is obsolete now: never to be applied twice

    def _queue_failed(self, exc: QueueError) -> None:
        if fserrors.is_disk_full(exc, self.queue.path):
            self._disk_full_begins("queue", self.queue.path)
            return
        if self._logged_problem != exc.message:
            self._logged_problem = exc.message
            self.log(
                f"{exc.message}; delivering what can be read, writing the queue again in "
                f"{QUEUE_RETRY:.0f} s" + (f"; fix: {exc.fix}" if exc.fix else "")
            )
        self.last_error = LastError(exc.message, "queue-error", exc.fix, "queue", now_ms())

    def _queue_ok(self) -> None:
        self._logged_problem = None
        self._disk_full_ends("queue")

    def _disk_full_begins(self, what: str, path: Path) -> None:
        """Record (and log, once per episode and file) that ``path`` cannot be written."""
        with self._lock:
            if what in self.disk_full:
                return
            self.disk_full[what] = DiskFull(what, path, now_ms())
            fix = fserrors.disk_full_fix(path, forwarder=True)
            message = f"disk full: cannot write the {what} {path}"
            self.last_error = LastError(message, "disk-full", fix, what, now_ms())
        self.log(f"{message}; fix: {fix}")

    def _disk_full_ends(self, what: str) -> None:
        with self._lock:
            if self.disk_full.pop(what, None) is None:
                return
            everything = not self.disk_full
        self.log(
            f"the {what} can be written again"
            + ("; the disk-full condition is over" if everything else "")
        )

    def _write_pid(self) -> None:
        try:
            write_pid(self.pid_lock)
        except OSError as exc:
            if fserrors.is_disk_full(exc):
                self._disk_full_begins("pid file", self.pid_lock.path)
            return
        self._disk_full_ends("pid file")

    def _check_config(self) -> None:
        try:
            config = self.config_source()
            # Equality ignores the generation: a new generation of the same settings is
            # adopted at once (_adopt_generation), without a reconnection.
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
            self._adopt_generation(config)
            return
        if self.config is None or self.sender is None:
            self._apply(config, rendering)
            return
        # Connected: drain what is in flight, then switch (see _deliver).
        self.pending = (config, rendering)

    def _adopt_generation(self, config: Config) -> None:
        """The file holds the settings we run with under another generation: take it."""
        if self.config is None or self.rendering is None:
            return
        if config.generation == self.config.generation:
            return
        self.config = config
        self.rendering = replace(self.rendering, generation=config.generation)
        self.generation_wait = None
        socket_input = self.socket_input
        if socket_input is not None and socket_input.rendering is not None:
            socket_input.rendering = replace(socket_input.rendering, generation=config.generation)

    def _apply(self, config: Config, rendering: Rendering) -> None:
        error = self.last_error
        if error is not None and error.server not in (None, server_label(config.server)):
            self.last_error = None  # it concerned a server no longer configured
        self._failover_for(config)
        self.config = config
        self.rendering = rendering
        self.pending = None
        self.generation_wait = None
        self.next_held_check = 0.0  # what is held depends on the level: look again now
        self.backoff = 0.0
        self.next_attempt = 0.0
        self._check_client_certificate()
        if self._expiry_server != server_label(config.server):
            for role in (ex.SERVER, ex.SERVER_CHAIN):
                self.expiries.pop(role, None)  # they described a server no longer configured
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
        self._discard_stale_pinned()

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

    # --- certificate expiry

    def _check_client_certificate(self) -> None:
        """Read the end of the client certificate the configuration names (the pair a
        connection presents): at every connection attempt and configuration change."""
        certificate = self.config.client.certificate if self.config is not None else None
        found = ex.client_expiry(certificate, now_ms()) if certificate is not None else None
        if found is None:
            self.expiries.pop(ex.CLIENT, None)
        else:
            self.expiries[ex.CLIENT] = found

    def _check_server_certificates(self, info: object, server: ServerSettings) -> None:
        found = ex.server_expiries(info, now_ms())
        self._expiry_server = server_label(server)
        for role in (ex.SERVER, ex.SERVER_CHAIN):
            self.expiries.pop(role, None)
        for item in found:
            self.expiries[item.role] = item
        self._log_expiry_warnings()

    def expiry_warnings(self, now: float | None = None) -> list[str]:
        moment = time.time() if now is None else now
        warnings = []
        for item in self.expiries.values():
            text = item.warning(moment)
            if text is not None:
                warnings.append(text)
        return warnings

    def _log_expiry_warnings(self) -> None:
        """Say each certificate warning in the log once per UTC day (and again when it
        changes: a new certificate, or one that has just expired)."""
        moment = time.time()
        day = time.strftime("%Y-%m-%d", time.gmtime(moment))
        for item in self.expiries.values():
            text = item.warning(moment)
            if text is None:
                continue
            key = f"{item.role}|{item.subject}|{item.not_after}|{item.expired(moment)}"
            if self._expiry_logged.get(key) != day:
                self._expiry_logged[key] = day
                self.log(("error: " if item.expired(moment) else "warning: ") + text)

    def _with_expired_client(self, exc: TransportError) -> TransportError:
        """A failed connection while the client certificate has expired: most likely the
        reason (a server refuses an expired certificate); say so, with the fix."""
        client = self.expiries.get(ex.CLIENT)
        if client is None or not client.expired(time.time()):
            return exc
        if (
            self.config is None
            or self.config.server is None
            or self.config.server.transport != "tls"
        ):
            return exc
        if exc.cause in ("client-certificate-rejected", "client-certificate-required"):
            message = (
                f"the server refused the client certificate: it expired on {client.not_after}"
                f" ({client.subject}, thumbprint {client.thumbprint})"
            )
        elif exc.step == "tls":
            message = f"{exc.message} (the client certificate expired on {client.not_after})"
        else:
            return exc  # not a TLS problem: the certificate is not what failed
        return TransportError(
            message,
            step=exc.step,
            cause="client-certificate-expired",
            fix=ex.CLIENT_FIX,
        )

    def _certificates_status(self) -> dict[str, Any]:
        moment = time.time()
        return {
            "client": self.expiries[ex.CLIENT].as_dict(moment)
            if ex.CLIENT in self.expiries
            else None,
            "server": self.expiries[ex.SERVER].as_dict(moment)
            if ex.SERVER in self.expiries
            else None,
            "server_chain_first": self.expiries[ex.SERVER_CHAIN].as_dict(moment)
            if ex.SERVER_CHAIN in self.expiries
            else None,
            "warning_days": ex.EXPIRY_WARNING_DAYS,
            "warnings": self.expiry_warnings(moment),
        }

    def _failed(self, exc: TransportError, now: float) -> None:
        server = server_label(self.config.server) if self.config is not None else None
        self.last_error = LastError(exc.message, exc.cause, exc.fix, exc.step, now_ms(), server)
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
            if getattr(sender, "exact_acknowledgement", False):
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

    # --- failover (docs/operations.md, "Failover")

    def _failover_for(self, config: Config) -> None:
        """A configuration is applied: keep the failover state when it names the same two
        servers, else start over on the primary."""
        old = self.config.server if self.config is not None else None
        new = config.server

        def servers(s: ServerSettings | None) -> tuple[object, ...] | None:
            if s is None or not s.has_failover:
                return None
            return (s.server_name, s.server_port, s.failover_server_name, s.failover_server_port)

        if servers(old) is None or servers(old) != servers(new):
            self.failover = FailoverState()

    def _target(self, server: ServerSettings) -> ServerSettings:
        """The server events go to now: the primary, or the failover server."""
        if self.failover.active == FAILOVER and server.has_failover:
            return server.failover_settings()
        return server

    def _probe_interval(self, server: ServerSettings) -> float:
        return min(FAILOVER_PROBE, float(server.failover_after))

    def _primary_failing(self, now: float) -> None:
        """A connection to the primary failed: the clock of FailoverAfter runs from the first
        failure of a run of them."""
        server = self.config.server if self.config is not None else None
        state = self.failover
        if (
            server is not None
            and server.has_failover
            and state.active == PRIMARY
            and state.failing_since is None
        ):
            state.failing_since = now

    def _failover_in(self, now: float) -> float | None:
        """Seconds until connections to the primary have failed for FailoverAfter (0: now);
        None when no switch is coming."""
        server = self.config.server if self.config is not None else None
        state = self.failover
        if server is None or not server.has_failover or state.active != PRIMARY:
            return None
        if state.failing_since is None:
            return None
        return max(0.0, state.failing_since + server.failover_after - now)

    def _connect_failed(self, exc: TransportError, now: float) -> None:
        """After a failed connection: when connections to the primary have failed for
        FailoverAfter seconds, deliver to the failover server from now on."""
        server = self.config.server if self.config is not None else None
        state = self.failover
        if self._failover_in(now) != 0 or server is None or state.failing_since is None:
            return
        elapsed = now - state.failing_since
        self.failover = FailoverState(
            active=FAILOVER,
            reason=f"no connection to the primary server {server.server_name}:"
            f"{server.server_port} for {elapsed:.0f} s ({exc.message})",
            next_probe=now + self._probe_interval(server),
        )
        self.backoff = 0.0
        self.next_attempt = now
        self.log(
            f"failing over to {server.failover_server_name}:{server.failover_server_port}: "
            f"{self.failover.reason}; the primary is probed every "
            f"{self._probe_interval(server):.0f} s"
        )
        self.write_status()

    def _probe_primary(self, server: ServerSettings, now: float) -> bool:
        """While on the failover server: connect to the primary (handshake included, nothing
        sent) and close. True when it answered: then the loop drains and goes back."""
        self.failover.next_probe = now + self._probe_interval(server)
        if self.stop_requested or self.pending is not None:
            return False
        assert self.config is not None
        self._io = "connect"
        try:
            probe = self.connect(server, self.config.client)
        except transport.StopRequested:
            return False
        except TransportError as exc:
            self.failover.last_probe_error = exc.message
            return False
        finally:
            self._io = None
        self._io = "close"
        try:
            probe.close(timeout=2.0)
        finally:
            self._io = None
        self.failover.returning = True
        self.log(
            f"the primary server {server.server_name}:{server.server_port} answers again: "
            "returning to it once what is in flight is confirmed"
        )
        return True

    def _fail_back(self) -> None:
        self.failover = FailoverState(reason="the primary server answered a probe again")
        self.backoff = 0.0
        self.next_attempt = 0.0
        server = self.config.server if self.config is not None else None
        if server is not None:
            self.log(f"delivering to the primary server {server.server_name}:{server.server_port}")
        self.write_status()

    def _failover_status(self, server: ServerSettings | None) -> dict[str, Any] | None:
        if server is None or not server.has_failover:
            return None
        state = self.failover
        target = self._target(server)
        now = time.monotonic()
        return {
            "active": state.active,
            "reason": state.reason,
            "since_ms": state.since_ms,
            "server": {"name": target.server_name, "port": target.server_port},
            "primary": {"name": server.server_name, "port": server.server_port},
            "failover": {
                "name": server.failover_server_name,
                "port": server.failover_server_port,
            },
            "failover_after_s": server.failover_after,
            "primary_failing_for_s": None
            if state.failing_since is None
            else max(0.0, now - state.failing_since),
            "next_probe_in_s": max(0.0, state.next_probe - now)
            if state.active == FAILOVER
            else None,
            "last_probe_error": state.last_probe_error if state.active == FAILOVER else None,
        }

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
                    self._queue_write(QueueWrite("counters", counts=(("resent", again),)))
                    self.log(f"{again} events written but not answered will be sent again")
            break
        if done:
            del self.inflight[: len(done)]
            ids = tuple(i.batch_id for i in done)
            self.delivered_ids.update(ids)  # until the queue has deleted them: never again
            self._queue_write(
                QueueWrite(
                    "confirm",
                    ids=ids,
                    sent=sum(i.messages for i in done),
                    filtered=sum(i.count - i.messages for i in done),
                )
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
        ids = tuple(i.batch_id for i in done)
        confirm = QueueWrite(
            "confirm",
            ids=ids,
            sent=sum(i.messages for i in done),
            filtered=sum(i.count - i.messages for i in done),
        )
        self.delivered_ids.update(ids)  # until the queue has deleted them: never again
        self._queue_write(confirm)

    def _send_some(self, now: float) -> bool:
        """Send the next few batches. For each, in this order (docs/architecture.md):
        rendered for a newer configuration than ours -> re-read the configuration and switch
        before sending it (never render it back into ours); accepted under a higher security
        level than ours -> held (the query leaves it out; later batches go on); rendered for
        an older configuration under other settings -> rendered again under ours; else sent
        as rendered."""
        assert self.sender is not None and self.rendering is not None
        assert self.config is not None
        if len(self.inflight) >= MAX_INFLIGHT_BATCHES:
            return False
        gap = None if self.gap_clear_owed else self.queue.pending_gap()
        if gap is not None:
            self._send_gap_warning(gap)
        batches = self.queue.next_batches(
            FETCH_BATCHES,
            after_id=self.last_sent_id,
            level=self.config.security_level,
            generation=self.config.generation,
            stale=self.stale_upto_id,
            # The worker's own bookkeeping says what is in flight (the inflight table may lag
            # behind it when the disk is full).
            include_inflight=True,
        )
        if not batches:
            return False
        sent_ids: list[int] = []  # sent, not yet marked as sent in the queue
        sent_any = False
        inflight_ids = {item.batch_id for item in self.inflight}
        try:
            for batch in batches:
                if batch.id in self.delivered_ids or batch.id in inflight_ids:
                    self.last_sent_id = max(self.last_sent_id, batch.id)
                    continue
                if (
                    batch.generation > self.config.generation
                    and batch.id > self.stale_upto_id
                    and not self._newer_generation(batch, now)
                ):
                    break  # switch first (or wait for the file to catch up); keep the order
                if batch.pinned is not None and batch.pinned != server_label(self.config.server):
                    self._discard_pinned(batch)
                    self.last_sent_id = max(self.last_sent_id, batch.id)
                    continue
                wire: bytes = batch.wire
                lengths: Sequence[int] = batch.lengths
                # Our generation or an older one. Older with the same render key: the same
                # bytes (the key covers every setting that shapes them), so sent as they are.
                if batch.render_key != self.rendering.key:
                    wire, lengths = self._rerender(batch.id, pinned=batch.pinned is not None)
                    self.answered_part.pop(batch.id, None)
                if self._sequencing():
                    # Numbered before the answered part is cut off: a resend repeats the numbers.
                    wire, lengths = self._number(batch.id, wire, lengths)
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
                self._sending = item  # until the send returns (see _settle_answered)
                if wire:
                    self.sender.send(wire, lengths)
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
                self._queue_write(QueueWrite("mark", ids=tuple(sent_ids), at_ms=now_ms()))
                sent_any = True
                sent_ids.clear()
                self._confirm(time.monotonic())
        finally:
            if sent_ids:
                self._queue_write(QueueWrite("mark", ids=tuple(sent_ids), at_ms=now_ms()))
                sent_any = True
        if sent_any:
            self.counters.last_send_ms = now_ms()
        return sent_any or self.pending is not None

    def _newer_generation(self, batch: QueuedBatch, now: float) -> bool:
        """A batch was rendered for configuration ``generation``, newer than ours: re-read
        the configuration now rather than at the next poll. Returns whether the batch may be
        sent now (it is of our generation after all, or the file still holds an older one
        after GENERATION_WAIT: then it counts as older and is rendered again)."""
        assert self.config is not None
        generation = batch.generation
        self.next_config_check = now + self.options.config_poll
        self._check_config()  # sets pending (drain, then switch) or adopts a new generation
        if self.pending is not None:
            return False
        if self.config.generation >= generation:
            self.generation_wait = None
            return True
        if self.generation_wait is None or self.generation_wait[0] != generation:
            self.generation_wait = (generation, now)
            self.log(
                f"events rendered for configuration generation {generation} are queued, but the"
                f" configuration file has generation {self.config.generation}: waiting up to"
                f" {GENERATION_WAIT:.0f} s for it"
            )
        if now - self.generation_wait[1] < GENERATION_WAIT:
            return False
        # The file went back (restored from a backup, or deleted and written again): it is
        # the operator's current intent, so treat the batches queued so far as older than it.
        # By id, not by generation: batches rendered for the file's next writes must still
        # wait for the switch to them.
        self.log(
            f"events rendered for configuration generation {generation} are queued, but the"
            f" configuration file has generation {self.config.generation} (it was restored or"
            " recreated); they are rendered again under the current configuration"
        )
        self.stale_upto_id = max(self.stale_upto_id, batch.id)
        self.generation_wait = None
        return True

    def _check_held(self) -> None:
        """Count the held batches (for the status) and notice a ``release-held``."""
        config = self.config
        if config is None or config.server is None:
            self.held = None  # nothing is sent at all; the status says why
            return
        try:
            released = self.queue.counters().get("released", 0)
            held = self.queue.held(
                config.security_level, config.generation, stale=self.stale_upto_id
            )
        except QueueError:
            return  # an auxiliary look: the delivery path meets and reports the same problem
        if self.released_seen is not None and released != self.released_seen:
            # Released batches lie behind the send cursor: look at the queue from the start
            # (batches in flight are excluded by the query, so nothing is sent twice).
            self.last_sent_id = 0
        self.released_seen = released
        previous = self.held.events if self.held else 0
        self.held = held if held.events else None
        if held.events and held.events != previous:
            self.log(held_message(held.events, held.level, config))

    def _rerender(self, batch_id: int, *, pinned: bool = False) -> tuple[bytes, array[int]]:
        """Render a batch again from its raw lines under the current settings (a batch
        rendered for an older configuration: never one rendered for a newer one)."""
        assert self.rendering is not None
        raw = self.queue.load_raw(batch_id) or []
        if pinned:
            return self._rerender_audit(raw)
        builder = BatchBuilder(self.rendering.renderer, self.rendering.key)
        rejected = 0
        for accepted_ms, line in raw:
            try:
                builder.add(line, accepted_ms)
            except EventError:
                rejected += 1  # valid when accepted; cannot happen unless the rules changed
        batch, truncated = builder.take()
        counts = (("rerendered", len(raw)), ("rejected", rejected), ("truncated", truncated))
        self._queue_write(QueueWrite("counters", counts=counts))
        if batch is None:
            return b"", array("I")
        lengths = array("I")
        lengths.frombytes(batch.lengths)
        return batch.wire, lengths

    def _send_gap_warning(self, gap: Gap) -> None:
        assert self.sender is not None and self.config is not None
        message = gap_warning(gap, self.rendering)
        self.sender.send(message, [len(message)])
        self.written += len(message)
        if not self._queue_write(QueueWrite("clear_gap", gap=gap)):
            self.gap_clear_owed = True  # reported: not again before the queue knows it
        self.counters.gap_warnings += 1

    # --- the audit trail, sequence numbers and the heartbeat (docs/operations.md)

    def _discard_pinned(self, batch: QueuedBatch) -> None:
        """A pinned batch (an audit event meant for one server) while another server is
        configured: never sent elsewhere; deleted and counted."""
        try:
            self.queue.discard([batch.id])
        except QueueError as exc:
            self._queue_failed(exc)
            return
        self.log(
            f"an audit event (ConfigurationChanged) meant for {batch.pinned} could not be sent"
            " to it: that server is no longer configured (the forwarder was not connected, or"
            " not running, when it changed)"
        )

    def _rerender_audit(self, raw: list[tuple[int, bytes]]) -> tuple[bytes, array[int]]:
        """An audit event meant for this server, rendered for other settings of it: rendered
        again from the event's record (its raw line)."""
        import json

        from azs_syslog.events import forwarder

        assert self.rendering is not None
        wire = b""
        lengths = array("I")
        for accepted_ms, line in raw:
            try:
                event = forwarder.configuration_changed(**json.loads(line))
            except (ValueError, TypeError):
                continue  # not a record this release wrote: nothing to render
            message = self.rendering.renderer.render_event(event, accepted_ms)
            if message:
                wire += message
                lengths.append(len(message))
        return wire, lengths

    def _discard_stale_pinned(self) -> None:
        """Once a configuration is in force, the audit events pinned to other servers can no
        longer reach them: said now (the command that queued one may be waiting)."""
        if self.config is None or self.queue.read_only:
            return
        try:
            ids = self.queue.pinned_ids(
                self.config.generation, server_label(self.config.server), other=True
            )
            if ids:
                self.queue.discard(ids)
        except QueueError as exc:
            self._queue_failed(exc)
            return
        if ids:
            self.log(
                f"{len(ids)} audit event{'s' if len(ids) != 1 else ''} (ConfigurationChanged)"
                " could not be sent to the server they were meant for: it is no longer"
                " configured (the forwarder was not connected, or not running, when it changed)"
            )

    def _send_pinned(self, now: float) -> None:
        """Before switching to a new configuration: send the pinned batches of the current
        one (the audit events announcing the change) to the current server, ahead of
        anything still queued for it; the drain then waits for their confirmation."""
        assert self.config is not None and self.sender is not None
        inflight_ids = {item.batch_id for item in self.inflight}
        try:
            ids = self.queue.pinned_ids(self.config.generation, server_label(self.config.server))
        except QueueError:
            return
        sent_ids: list[int] = []
        try:
            for batch_id in ids:
                if batch_id in inflight_ids or batch_id in self.delivered_ids:
                    continue
                found = self.queue.next_batches(1, after_id=batch_id - 1, include_inflight=True)
                if not found or found[0].id != batch_id:
                    continue
                batch = found[0]
                wire: bytes = batch.wire
                lengths: Sequence[int] = batch.lengths
                if self.rendering is not None and batch.render_key != self.rendering.key:
                    wire, lengths = self._rerender(batch.id, pinned=True)
                if self._sequencing():
                    wire, lengths = self._number(batch.id, wire, lengths)
                self._io = "send"
                try:
                    self.sender.send(wire, lengths)
                finally:
                    self._io = None
                self.written += len(wire)
                sent_ids.append(batch.id)
                self.inflight.append(
                    InFlight(batch.id, batch.count, len(lengths), self.written, now)
                )
        finally:
            if sent_ids:
                self._queue_write(QueueWrite("mark", ids=tuple(sent_ids), at_ms=now_ms()))
                self.counters.last_send_ms = now_ms()

    def _init_sequence(self) -> None:
        """The sequence numbers resume after the highest one delivered (a restart numbers
        the batches it sends again as they were numbered, when sent in the same order)."""
        try:
            counts = self.queue.counters()
        except QueueError:
            counts = {}
        self.sequence_confirmed = counts.get("sequence", 0)
        self.sequence_next = self.sequence_confirmed + 1
        stream = counts.get("stream_id", 0) or int.from_bytes(os.urandom(8), "big") >> 1
        self.stream_id = f"{stream:016x}"
        # batch id -> (first number, messages): a batch sent again keeps its numbers.
        self.sequence_ranges: dict[int, tuple[int, int]] = {}
        self.heartbeat_sender: object = None
        self.next_heartbeat = 0.0

    def _sequencing(self) -> bool:
        server = self.config.server if self.config is not None else None
        return bool(server is not None and server.sequence_numbers)

    def _number(
        self, batch_id: int, wire: bytes, lengths: Sequence[int]
    ) -> tuple[bytes, array[int]]:
        """Add the sequence extension to each message of a batch, at send time: numbers
        follow the order on the wire; a batch sent again (after a broken connection) repeats
        its numbers."""
        count = len(lengths)
        known = self.sequence_ranges.get(batch_id)
        if known is not None and known[1] == count:
            first = known[0]
        else:
            first = self.sequence_next
            self.sequence_next += count
            self.sequence_ranges[batch_id] = (first, count)
        framing = getattr(getattr(self.rendering, "settings", None), "framing", "octet-counting")
        return number_messages(wire, lengths, framing, first, self.stream_id)

    def _sequence_delivered(self, ids: Sequence[int]) -> None:
        """Batches delivered: record the highest number delivered (where a restart resumes)."""
        highest = self.sequence_confirmed
        for batch_id in ids:
            numbered = self.sequence_ranges.pop(batch_id, None)
            if numbered is not None:
                highest = max(highest, numbered[0] + numbered[1] - 1)
        if highest > self.sequence_confirmed:
            delta = highest - self.sequence_confirmed
            self.sequence_confirmed = highest
            # An additive counter, so that it travels with the other owed writes on a full
            # disk; a restart resumes numbering after it.
            self._queue_write(QueueWrite("counters", counts=(("sequence", delta),)))

    def _maybe_heartbeat(self, now: float) -> None:
        """Every --heartbeat-interval seconds while connected (and at once on a new
        connection): a Heartbeat event, not queued (a heartbeat that did not go out is the
        hole the SIEM alerts on)."""
        server = self.config.server if self.config is not None else None
        if server is None or not server.heartbeat_interval or self.sender is None:
            return
        if self.heartbeat_sender is self.sender and now < self.next_heartbeat:
            return
        self.heartbeat_sender = self.sender
        self.next_heartbeat = now + server.heartbeat_interval
        message = self._heartbeat_message()
        if message is None:
            return
        self.sender.send(message, [len(message)])
        self.written += len(message)

    def _heartbeat_message(self) -> bytes | None:
        from azs_syslog.events import forwarder

        rendering = self.rendering
        renderer = getattr(rendering, "renderer", None)
        if renderer is None or not hasattr(renderer, "render_event"):
            return None
        depth, _ = self._queue_numbers()
        stamp = now_ms()
        sequencing = self._sequencing()
        event = forwarder.heartbeat(
            host=renderer.default_host,
            time_ms=stamp,
            queued_events=depth.events,
            oldest_age_s=None
            if depth.oldest_ms is None
            else max(0, stamp - depth.oldest_ms) // 1000,
            last_sequence=self.sequence_next - 1 if sequencing else None,
            stream=self.stream_id if sequencing else None,
        )
        message: bytes | None = renderer.render_event(event, stamp)
        return message

    # --- status

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
            "next_attempt_in_s": max(0.0, self.next_attempt - time.monotonic())
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
            "waiting_s": max(0.0, time.monotonic() - since),
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
            data = {**self._snapshot, "updated": time.time(), "blocked": self._blocked()}
            self._status_written = time.monotonic()
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

    def _socket_refresh(self) -> Callable[[Rendering | None], Rendering | None] | None:
        """For the socket input: before each commit, look at the configuration file (one
        stat) and render with the configuration it holds now, so that a line accepted right
        after a ``set-*`` is rendered for, and stamped with, the new generation. A source
        other than the file (tests) gives None: the input keeps what the worker gives it."""
        source = self.config_source
        if not isinstance(source, ConfigWatcher):
            return None
        watcher = ConfigWatcher(source.path)  # its own: the input runs in another thread
        make_rendering = self.make_rendering

        def refresh(current: Rendering | None) -> Rendering | None:
            try:
                config = watcher()
            except ConfigError:
                return current  # invalid: the worker reports it and keeps the last good one
            if current is not None and current.generation == config.generation:
                return current
            return make_rendering(config)

        return refresh

    def _status_timer(self) -> None:
        while not self._status_stop.wait(STATUS_EVERY / 4):
            if time.monotonic() - self._status_written >= STATUS_EVERY:
                self.write_status()

    def _sleep(self, seconds: float) -> None:
        """Sleep until the next iteration is due or a signal (or ``request_stop``) wakes us."""
        if self._wake_r is None:
            time.sleep(seconds)
            return
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        if poller.poll(seconds * 1000):
            self.io_watch.clear_wakeups()

    # --- the real loop

    def run(self) -> str:
        """Run until SIGTERM / SIGINT; returns a one-line summary. Raises ``AzsSyslogError``
        when it cannot start."""
        self._loop_thread = threading.get_ident()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.io_watch.wake_fd = self._wake_r.fileno()
        previous_wakeup = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        previous = {
            sig: signal.signal(sig, handler)
            for sig, handler in (
                (signal.SIGTERM, self._on_stop_signal),
                (signal.SIGINT, self._on_stop_signal),
                (signal.SIGHUP, self._on_hup),
            )
        }
        try:
            self._status_thread = threading.Thread(
                target=self._status_timer, name="azs-syslog-status", daemon=True
            )
            self._status_thread.start()
            if self.options.socket_input:
                self.socket_input = SocketInput(
                    self.options.socket_path or paths.socket_file(),
                    queue_path=self.queue.path,
                    limits=self.options.limits,
                    log=self.log,
                )
                self.step(time.monotonic())  # load the configuration first
                self.socket_input.rendering = self.make_rendering(self.config or Config())
                self.socket_input.refresh = self._socket_refresh()
                self.socket_input.start()
            while not (self.stop_requested and self.sender is None):
                wait = self.step()
                if wait > 0 and not self.stop_requested:
                    self._sleep(wait)
        finally:
            if self.forced:
                self.log("stopping at once on a second signal: unconfirmed events stay queued")
            self.state = st.STOPPED
            try:
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
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                signal.set_wakeup_fd(previous_wakeup)
                self.io_watch.wake_fd = None
                for end in (self._wake_r, self._wake_w):
                    end.close()
                self._wake_r = self._wake_w = None
                depth, counts = self._queue_numbers()
                owed = self.backlog
                self.queue.close()
                release_pid_file(self.pid_lock)
        summary = (
            f"{depth.events} events queued; {counts.get('sent', 0)} sent,"
            f" {counts.get('resent', 0)} resent, {counts.get('dropped', 0)} dropped in total"
        )
        if owed and "status file" not in self.disk_full:
            summary += (
                f"; {_updates(len(owed))} could not be written (disk full): kept in the "
                "status file, written at the next start"
            )
        elif owed:
            summary += (
                f"; {_updates(len(owed))} could not be written (disk full), nor the status"
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


def _updates(count: int) -> str:
    return f"{count} queue update{'' if count == 1 else 's'}"


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


# --- sequence numbers --------------------------------------------------------------------------


def number_messages(
    wire: bytes, lengths: Sequence[int], framing: str, first: int, stream: str
) -> tuple[bytes, array[int]]:
    """``wire`` (framed messages of ``lengths``) with ``cn1=<n> cn1Label=seq cs1=<stream>
    cs1Label=stream`` appended to each message (the CEF extensions are the end of a message),
    numbered from ``first``, framed again."""
    out: list[bytes] = []
    new_lengths = array("I")
    offset = 0
    number = first
    suffix = b" cn1Label=seq cs1=" + stream.encode() + b" cs1Label=stream"
    for length in lengths:
        frame = wire[offset : offset + length]
        offset += length
        if framing == "octet-counting":
            message = frame[frame.index(b" ") + 1 :]
        elif framing == "lf":
            message = frame[:-1] if frame.endswith(b"\n") else frame
        else:
            message = frame
        message = b"%b cn1=%d%b" % (message, number, suffix)
        number += 1
        if framing == "octet-counting":
            framed = b"%d %b" % (len(message), message)
        elif framing == "lf":
            framed = message + b"\n"
        else:
            framed = message
        out.append(framed)
        new_lengths.append(len(framed))
    return b"".join(out), new_lengths


# --- the gap warning ---------------------------------------------------------------------------


def gap_warning(gap: Gap, rendering: Rendering | None, host: str | None = None) -> bytes:
    """One framed syslog message reporting events dropped because the queue was full [project].

    CEF signature ``Microsoft-AzureStack-Forwarder: QueueOverflow``, name ``QueueOverflow``,
    severity 5, with the number of events dropped (``cnt``) and the acceptance times of the
    oldest and newest of them (``start`` / ``end``, ms since the epoch), under the current
    message format, facility, CEF version and framing.
    """
    from azs_syslog.encode import cef, syslog

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
    written: bool = False  # the pid number is in the file (best effort: the disk may be full)


# ``forwarder status`` probes the lock with a brief shared lock; a worker starting at that
# instant tries again for this long before it concludes another worker runs.
PID_LOCK_PATIENCE = 0.5


def acquire_pid_file(path: Path) -> PidLock:
    """Take the worker's pid file: an exclusive ``flock`` held for the process's life, which is
    what guarantees one worker per home (and tells ``forwarder status`` that one runs). The
    pid number is written as well when the disk has room for it (see :func:`write_pid`)."""
    try:
        paths.ensure_private_dir(path.parent, mode=RUNTIME_DIR_MODE)
    except OSError as exc:  # a refused permission is an AccessError already
        raise AzsSyslogError(
            f"cannot create the directory {path.parent}: {exc.strerror or exc}",
            fix=fserrors.disk_full_fix(path.parent) if fserrors.is_disk_full(exc) else None,
        ) from exc
    deadline = time.monotonic() + PID_LOCK_PATIENCE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except PermissionError:
            raise fserrors.access_error(path, "open the pid file", write=True) from None
        except OSError as exc:
            raise AzsSyslogError(
                f"cannot create the pid file {path}: {exc.strerror or exc}",
                fix=fserrors.disk_full_fix(path) if fserrors.is_disk_full(exc) else None,
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            other = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                if time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
                raise AzsSyslogError(
                    f"a forwarder is already running for this home (pid {other}, {path})",
                    fix="stop it first, or point AZS_SYSLOG_HOME at another directory",
                ) from exc
            raise AzsSyslogError(f"cannot lock the pid file {path}: {exc}") from exc
        # A worker that stopped may have unlinked the file between our open and our lock:
        # then we locked a file nobody else will ever look at. Start again on the new one.
        try:
            same = os.fstat(fd).st_ino == path.stat().st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    lock = PidLock(path, fd)
    with contextlib.suppress(OSError):  # best effort: the lock is what counts
        write_pid(lock)
    return lock


def write_pid(lock: PidLock) -> None:
    """Write the pid number into the locked pid file; raises ``OSError`` (ENOSPC on a full
    disk: the worker tries again every second)."""
    data = f"{os.getpid()}\n".encode()
    os.ftruncate(lock.fd, 0)
    if os.pwrite(lock.fd, data, 0) != len(data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    lock.written = True


def release_pid_file(lock: PidLock) -> None:
    if lock.fd < 0:
        return
    with contextlib.suppress(OSError):
        lock.path.unlink()
    os.close(lock.fd)
    lock.fd = -1
