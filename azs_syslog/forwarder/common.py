"""What the worker's modules share, below all of them: the timings, the options, the small
records the loop keeps, and the default configuration source, connector and renderer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from azs_syslog import paths
from azs_syslog.config import (
    LEVEL_NAMES,
    LEVEL_TLS_UNVERIFIED,
    ClientSettings,
    Config,
    ServerSettings,
)
from azs_syslog.encode.pipeline import Rendering
from azs_syslog.forwarder.snapshot import ErrorStatus
from azs_syslog.queue import QueueLimits

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


if TYPE_CHECKING:
    from azs_syslog.transport import Sender


Connect = Callable[[ServerSettings, ClientSettings], "Sender"]
MakeRendering = Callable[[Config], Rendering]
ConfigSource = Callable[[], Config]
Clock = Callable[[], float]


def default_rendering(config: Config) -> Rendering:
    from azs_syslog.encode.render import Renderer, RenderSettings

    settings = RenderSettings.from_config(config)
    return Rendering(
        settings.key, settings, Renderer(settings), config.generation, config.security_level
    )


def stamped(make_rendering: MakeRendering) -> MakeRendering:
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


@dataclass(kw_only=True)
class FailoverState:
    """Which of the configured servers events go to, why and since when (docs/operations.md,
    "Failover"). Both servers belong to the same configuration (generation): a switch changes
    where batches go, never how they are rendered or which batches may be sent."""

    active: str = PRIMARY
    reason: str = "the configured server"
    since_ms: int  # the worker's wall clock
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

    def status(self) -> ErrorStatus:
        return ErrorStatus(self.message, self.cause, self.fix, self.step, self.at_ms, self.server)


def server_label(server: ServerSettings | None) -> str | None:
    if server is None:
        return None
    return f"{server.server_name}:{server.server_port} {server.transport}"


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


def updates(count: int) -> str:
    return f"{count} queue update{'' if count == 1 else 's'}"
