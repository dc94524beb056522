"""The worker's status, typed: :class:`StatusSnapshot` is what the worker takes of its state,
what the status file holds (as JSON, the fields in this order), what ``forwarder status`` and
the metrics read back.

:meth:`StatusSnapshot.as_json` gives the document written to the file and printed by
``forwarder status --json``; :meth:`StatusSnapshot.from_json` reads one back (a field that is
missing or of another type takes its default: a file written by another release still reads).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from types import UnionType
from typing import TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")

# The owed queue writes in the status file (see owed.owed_summary): plain JSON.
OwedSegment = dict[str, bool | list[list[int]] | dict[str, int]]
Json = Mapping[str, object]


def _convert(hint: object, value: object, default: object = MISSING) -> object:
    """``value`` (from JSON) as the type ``hint`` says; else ``default``, or (MISSING) the
    empty value of the type: None when it may be None, 0, "", (), a dataclass of those."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        if value is None:
            return None
        (inner,) = (arg for arg in args if arg is not type(None))
        return _convert(inner, value, None if default is MISSING else default)
    if isinstance(value, bool) and hint is not bool:
        value = None  # JSON's true and false are no numbers here
    found = _as(hint, value, default)
    if found is not MISSING:
        return found
    if default is not MISSING:
        return default
    maker = origin if isinstance(origin, type) else hint
    assert callable(maker)
    return maker()


def _as(hint: object, value: object, default: object) -> object:
    """``value`` as the type ``hint`` (not a union), or MISSING when it is not one."""
    origin, args = get_origin(hint), get_args(hint)
    if isinstance(hint, type) and is_dataclass(hint):
        if isinstance(value, dict) or default is MISSING:
            return read(hint, value if isinstance(value, dict) else {})
    elif origin is tuple:  # of one type
        if isinstance(value, list):
            return tuple(_convert(args[0], item) for item in value)
    elif origin is dict:  # of strings (the RELP offers)
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
    elif origin is list:  # of JSON objects (the owed writes)
        if isinstance(value, list):
            return [item for item in value if isinstance(item, dict)]
    elif hint is float:  # an int stays an int: the document reads back the same
        if isinstance(value, (int, float)):
            return value
    elif isinstance(hint, type) and isinstance(value, hint):
        return value
    return MISSING


def read(kind: type[T], data: Json) -> T:
    """The dataclass ``kind`` from a JSON object: each field from the key of its name; a key
    that is missing or of another type gives the field's default (see :func:`_convert`)."""
    hints = get_type_hints(kind)
    values: dict[str, object] = {}
    for item in fields(kind):  # type: ignore[arg-type]
        default: object = item.default
        if item.default_factory is not MISSING:
            default = item.default_factory()
        values[item.name] = _convert(hints[item.name], data.get(item.name), default)
    make: Callable[..., T] = kind
    return make(**values)


@dataclass(frozen=True)
class ServerStatus:
    """The configured server (the primary when there is a failover server)."""

    name: str
    port: int
    transport: str  # "tcp", "tls", "udp", "relp-tcp", "relp-tls"


@dataclass(frozen=True)
class Endpoint:
    """One server of a failover pair."""

    name: str | None
    port: int | None


@dataclass(frozen=True)
class FailoverStatus:
    """Which of the two servers events go to, why and since when (docs/operations.md,
    "Failover")."""

    active: str  # "primary" or "failover"
    reason: str
    since_ms: int
    server: Endpoint  # the one events go to now
    primary: Endpoint
    failover: Endpoint
    failover_after_s: int
    primary_failing_for_s: float | None
    next_probe_in_s: float | None
    last_probe_error: str | None


@dataclass(frozen=True)
class ConnectionStatus:
    """The connection the worker holds now (none while it is not connected)."""

    transport: str | None
    peer_address: str
    tls_version: str | None
    cipher: str | None
    server_subject: str | None
    server_not_after: str | None
    client_certificate_sent: bool | None
    relp_offers: dict[str, str] | None


@dataclass(frozen=True)
class CertificateEnd:
    """One certificate's end of validity, as checked at the last connection."""

    subject: str
    thumbprint: str | None
    not_after: str  # RFC 3339, UTC
    not_after_s: float
    days_left: int
    expired: bool
    checked_ms: int


@dataclass(frozen=True)
class Certificates:
    """The client's certificate, the server's, and the first of the server's chain to expire;
    a warning for each that expires within ``warning_days``."""

    client: CertificateEnd | None
    server: CertificateEnd | None
    server_chain_first: CertificateEnd | None
    warning_days: int
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class LiveQueue:
    """The queue's depth."""

    events: int
    bytes: int
    oldest_ms: int | None
    oldest_age_s: float | None


@dataclass(frozen=True)
class QueueStatus(LiveQueue):
    """The queue's depth, and the batches in flight."""

    in_flight_batches: int = 0


@dataclass(frozen=True)
class Counts:
    """The persistent counters (the queue's), and those counted but not yet written."""

    accepted: int = 0
    sent: int = 0
    dropped: int = 0
    rejected: int = 0
    truncated: int = 0
    filtered: int = 0
    resent: int = 0
    rerendered: int = 0

    @classmethod
    def of(cls, counters: Mapping[str, object]) -> Counts:
        return read(cls, counters)

    def items(self) -> list[tuple[str, int]]:
        return [(name, getattr(self, name)) for name in COUNT_NAMES]


# The counters' names, in the order the status file and ``forwarder status`` show them.
COUNT_NAMES = tuple(item.name for item in fields(Counts))


@dataclass(frozen=True)
class SequenceStatus:
    """``--sequence-numbers``: the stream and the last number delivered."""

    stream: str
    last_delivered: int
    next: int


@dataclass(frozen=True)
class AuditStatus:
    """Audit events (ConfigurationChanged) that could not reach the server they were for."""

    undelivered: int = 0


@dataclass(frozen=True)
class ErrorStatus:
    """The last error, and the server it concerned (None: a full disk, no server)."""

    message: str
    cause: str | None
    fix: str | None
    step: str | None
    time_ms: int
    server: str | None


@dataclass(frozen=True)
class HeldStatus:
    """Events accepted under a stronger transport than the current one, held."""

    events: int
    batches: int
    accepted_under: str
    current: str
    message: str


@dataclass(frozen=True)
class GenerationWaitStatus:
    """Batches rendered for a newer configuration than the file holds, waiting for it."""

    batch_generation: int
    config_generation: int
    waiting_s: float
    message: str


@dataclass(frozen=True)
class FileRef:
    """A file the worker cannot write."""

    what: str  # "queue", "status file", "pid file"
    path: str


@dataclass(frozen=True)
class DiskFullStatus:
    """The first file a full disk keeps the worker from writing, since when, the fix; and
    every such file."""

    what: str
    path: str
    since_ms: int
    fix: str
    files: tuple[FileRef, ...]


@dataclass(frozen=True)
class Blocked:
    """The blocking network call the loop waits in without progress, and since when."""

    on: str
    since_ms: int


# Written only when set: the key is not in the document otherwise.
_OMITTED_WHEN_NONE = frozenset({"status_updated"})


def _document(pairs: list[tuple[str, object]]) -> dict[str, object]:
    return {k: v for k, v in pairs if not (k in _OMITTED_WHEN_NONE and v is None)}


@dataclass(frozen=True)
class StatusSnapshot:
    """The worker's state at one moment (docs/operations.md, "forwarder status")."""

    pid: int | None
    updated: float
    started_ms: int | None = None
    state: str | None = None
    server: ServerStatus | None = None
    failover: FailoverStatus | None = None
    connection: ConnectionStatus | None = None
    client_certificate_not_after: str | None = None
    client_certificate_thumbprint: str | None = None
    certificates: Certificates | None = None
    connections: int = 0
    queue: QueueStatus | None = None
    counts: Counts = field(default_factory=Counts)
    # --sequence-numbers: the stream and the last number delivered (what a SIEM-side gap
    # query compares with).
    sequence: SequenceStatus | None = None
    # Audit events that could not reach their server.
    audit: AuditStatus = field(default_factory=AuditStatus)
    last_error: ErrorStatus | None = None
    last_send_ms: int | None = None
    next_attempt_in_s: float | None = None
    config_problem: str | None = None
    held: HeldStatus | None = None
    waiting_for_generation: GenerationWaitStatus | None = None
    condition: str | None = None
    disk_full: DiskFullStatus | None = None
    queue_writes_owed: int = 0
    # For the next run, should this one stop before it can write them.
    owed: list[OwedSegment] | None = None
    socket: str | None = None
    socket_error: str | None = None
    blocked: Blocked | None = None
    # Set by ``forwarder status`` only, for a status that is not current: when it was written.
    status_updated: float | None = None

    def as_json(self) -> dict[str, object]:
        """The document (the status file's, and ``forwarder status --json``'s "status")."""
        return asdict(self, dict_factory=_document)

    @classmethod
    def from_json(cls, data: Json) -> StatusSnapshot:
        return read(cls, data)
