"""The state the worker's parts share: :class:`WorkerBase` declares it, and the methods one
part calls on another, so that each part (a mixin in its own module) type-checks alone.
:class:`azs_syslog.forwarder.worker.Worker` puts the parts together and sets the state."""

from __future__ import annotations

import socket
import threading
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from azs_syslog import transport
from azs_syslog.config import Config, ServerSettings
from azs_syslog.encode.pipeline import Rendering
from azs_syslog.errors import QueueError
from azs_syslog.forwarder import expiry as ex
from azs_syslog.forwarder.common import (
    Clock,
    ConfigSource,
    Connect,
    Counters,
    DiskFull,
    FailoverState,
    InFlight,
    LastError,
    MakeRendering,
    WorkerOptions,
)
from azs_syslog.forwarder.owed import QueueWrite
from azs_syslog.forwarder.pidfile import PidLock
from azs_syslog.forwarder.snapshot import Certificates, FailoverStatus, StatusSnapshot
from azs_syslog.inputs.socket_input import SocketInput
from azs_syslog.queue import Depth, Held, Queue

if TYPE_CHECKING:
    from azs_syslog.transport import Sender


class WorkerBase:
    """The worker's state (set by ``Worker.__init__``) and its parts' shared methods."""

    log: Callable[[str], None]
    options: WorkerOptions
    clock: Clock  # monotonic seconds: every deadline of the loop
    wall: Clock  # seconds since the epoch: every time stamp of the status
    # Queue writes owed because the queue could not be written (disk full), in order; the
    # batches they concern, as this worker knows them, live in memory meanwhile.
    backlog: list[QueueWrite]
    delivered_ids: set[int]  # delivered; their deletion is owed
    gap_clear_owed: bool
    next_queue_retry: float
    disk_full: dict[str, DiskFull]
    _lock: threading.RLock  # status snapshots and disk-full records (any thread)
    _queue_view: tuple[Depth, dict[str, int]] | None
    _logged_problem: str | None
    last_error: LastError | None
    pid_lock: PidLock
    config_source: ConfigSource
    connect: Connect
    make_rendering: MakeRendering
    queue: Queue
    config: Config | None
    rendering: Rendering | None
    config_problem: str | None
    state: str
    sender: Sender | None
    inflight: list[InFlight]
    last_sent_id: int
    written: int  # plaintext bytes written on the current connection
    backoff: float
    next_attempt: float
    next_config_check: float
    next_status: float
    draining_since: float | None
    pending: tuple[Config, Rendering] | None
    # A batch rendered for a newer configuration than ours: (its generation, since when).
    generation_wait: tuple[int, float] | None
    # Batches up to this id count as older than ours, whatever their generation: a wait for
    # the configuration they were rendered for timed out (the file went back).
    stale_upto_id: int
    held: Held | None
    next_held_check: float
    released_seen: int | None
    counters: Counters
    failover: FailoverState
    # Certificate ends, by role (expiry.CLIENT / SERVER / SERVER_CHAIN): the client's from the
    # configuration's pair at each connection attempt, the server's from each connection
    # (kept after it ends, for the server they came from).
    expiries: dict[str, ex.Expiry]
    _expiry_server: str | None
    _expiry_logged: dict[str, str]  # warning key -> the UTC day it was logged
    next_expiry_check: float
    # Sequence numbers: the highest delivered, the next to give, the stream; batch id ->
    # (first number, messages): a batch sent again keeps its numbers.
    sequence_confirmed: int
    sequence_next: int
    stream_id: str
    sequence_ranges: dict[int, tuple[int, int]]
    heartbeat_sender: object
    next_heartbeat: float
    stop_requested: bool
    forced: bool  # a second stop signal: no drain, no graceful close
    reload_requested: bool
    _signals: int
    _stop_at: float | None  # when the loop first saw the stop (time.monotonic: the transport's)
    _io: str | None  # the blocking network call under way: connect/send/close
    io_watch: transport.IoWatch
    _wake_r: socket.socket | None
    _wake_w: socket.socket | None
    _loop_thread: int
    _status_lock: threading.Lock
    _snapshot: StatusSnapshot | None
    _status_written: float
    _status_stop: threading.Event
    _status_thread: threading.Thread | None
    started_ms: int
    socket_input: SocketInput | None
    # RELP: batch id -> its leading messages the server already answered 200 (not resent).
    answered_part: dict[int, int]
    _sending: InFlight | None

    def now_ms(self) -> int:
        """The wall clock in ms since the epoch."""
        return int(self.wall() * 1000)

    # --- what one part calls on another (each is defined by one part; declared for the type
    # checker only, so that a part missing from Worker fails loudly)

    if TYPE_CHECKING:

        def step(self, now: float | None = None) -> float: ...
        def write_status(self) -> None: ...
        def _queue_write(self, write: QueueWrite) -> bool: ...
        def _queue_failed(self, exc: QueueError) -> None: ...
        def _disk_full_begins(self, what: str, path: Path) -> None: ...
        def _disk_full_ends(self, what: str) -> None: ...
        def _sequencing(self) -> bool: ...
        def _sequence_delivered(self, ids: Sequence[int]) -> None: ...
        def _number(
            self, batch_id: int, wire: bytes, lengths: Sequence[int]
        ) -> tuple[bytes, array[int]]: ...
        def _queue_numbers(self) -> tuple[Depth, dict[str, int]]: ...
        def _check_config(self) -> None: ...
        def _confirm(self, now: float) -> None: ...
        def _target(self, server: ServerSettings) -> ServerSettings: ...
        def _log_expiry_warnings(self) -> None: ...
        def _failover_status(self, server: ServerSettings | None) -> FailoverStatus | None: ...
        def _certificates_status(self) -> Certificates: ...
        def _failover_for(self, config: Config) -> None: ...
        def _check_client_certificate(self) -> None: ...
        def _discard_stale_pinned(self) -> None: ...
