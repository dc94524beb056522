"""The worker's status, typed: :class:`StatusSnapshot` is what the worker takes of its state,
what the status file holds (as JSON, the fields in this order), what ``forwarder status`` and
the metrics read back.

:meth:`StatusSnapshot.as_json` gives the document written to the file and printed by
``forwarder status --json``; :meth:`StatusSnapshot.from_json` reads one back (a field that is
missing or of another type takes its default: a file written by another release still reads).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TypeVar

T = TypeVar("T")

# The owed queue writes in the status file (see owed.owed_summary): plain JSON.
OwedSegment = dict[str, bool | list[list[int]] | dict[str, int]]
Json = Mapping[str, object]

COUNT_NAMES = (
    "accepted",
    "sent",
    "dropped",
    "rejected",
    "truncated",
    "filtered",
    "resent",
    "rerendered",
)


def _obj(value: object) -> Json:
    return value if isinstance(value, dict) else {}


def _some(value: object) -> Json | None:
    return value if isinstance(value, dict) else None


def _int(value: object, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num(value: object) -> float | None:
    """A number as the file has it (an int stays an int: the document reads back the same)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _str(value: object, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _opt_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


@dataclass(frozen=True)
class ServerStatus:
    name: str
    port: int
    transport: str  # "tcp", "tls", "udp", "relp-tcp", "relp-tls"

    @classmethod
    def from_json(cls, data: Json) -> ServerStatus:
        return cls(_str(data.get("name")), _int(data.get("port")), _str(data.get("transport")))


@dataclass(frozen=True)
class Endpoint:
    name: str | None
    port: int | None

    @classmethod
    def from_json(cls, data: Json) -> Endpoint:
        return cls(_opt_str(data.get("name")), _opt_int(data.get("port")))


@dataclass(frozen=True)
class FailoverStatus:
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

    @classmethod
    def from_json(cls, data: Json) -> FailoverStatus:
        return cls(
            _str(data.get("active")),
            _str(data.get("reason")),
            _int(data.get("since_ms")),
            Endpoint.from_json(_obj(data.get("server"))),
            Endpoint.from_json(_obj(data.get("primary"))),
            Endpoint.from_json(_obj(data.get("failover"))),
            _int(data.get("failover_after_s")),
            _num(data.get("primary_failing_for_s")),
            _num(data.get("next_probe_in_s")),
            _opt_str(data.get("last_probe_error")),
        )


@dataclass(frozen=True)
class ConnectionStatus:
    transport: str | None
    peer_address: str
    tls_version: str | None
    cipher: str | None
    server_subject: str | None
    server_not_after: str | None
    client_certificate_sent: bool | None
    relp_offers: dict[str, str] | None

    @classmethod
    def from_json(cls, data: Json) -> ConnectionStatus:
        offers = _some(data.get("relp_offers"))
        return cls(
            _opt_str(data.get("transport")),
            _str(data.get("peer_address")),
            _opt_str(data.get("tls_version")),
            _opt_str(data.get("cipher")),
            _opt_str(data.get("server_subject")),
            _opt_str(data.get("server_not_after")),
            _opt_bool(data.get("client_certificate_sent")),
            None if offers is None else {str(k): str(v) for k, v in offers.items()},
        )


@dataclass(frozen=True)
class CertificateEnd:
    subject: str
    thumbprint: str | None
    not_after: str  # RFC 3339, UTC
    not_after_s: float
    days_left: int
    expired: bool
    checked_ms: int

    @classmethod
    def from_json(cls, data: Json | None) -> CertificateEnd | None:
        if data is None:
            return None
        return cls(
            _str(data.get("subject")),
            _opt_str(data.get("thumbprint")),
            _str(data.get("not_after")),
            _num(data.get("not_after_s")) or 0.0,
            _int(data.get("days_left")),
            data.get("expired") is True,
            _int(data.get("checked_ms")),
        )


@dataclass(frozen=True)
class Certificates:
    client: CertificateEnd | None
    server: CertificateEnd | None
    server_chain_first: CertificateEnd | None
    warning_days: int
    warnings: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Json) -> Certificates:
        warnings = data.get("warnings")
        return cls(
            CertificateEnd.from_json(_some(data.get("client"))),
            CertificateEnd.from_json(_some(data.get("server"))),
            CertificateEnd.from_json(_some(data.get("server_chain_first"))),
            _int(data.get("warning_days")),
            tuple(str(w) for w in warnings) if isinstance(warnings, list) else (),
        )


@dataclass(frozen=True)
class LiveQueue:
    """The queue's depth."""

    events: int
    bytes: int
    oldest_ms: int | None
    oldest_age_s: float | None

    @classmethod
    def from_json(cls, data: Json) -> LiveQueue:
        return cls(
            _int(data.get("events")),
            _int(data.get("bytes")),
            _opt_int(data.get("oldest_ms")),
            _num(data.get("oldest_age_s")),
        )


@dataclass(frozen=True)
class QueueStatus(LiveQueue):
    """The queue's depth, and the batches in flight."""

    in_flight_batches: int = 0

    @classmethod
    def from_json(cls, data: Json) -> QueueStatus:
        live = LiveQueue.from_json(data)
        return cls(
            live.events,
            live.bytes,
            live.oldest_ms,
            live.oldest_age_s,
            _int(data.get("in_flight_batches")),
        )


@dataclass(frozen=True)
class Counts:
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
        return cls(*(_int(counters.get(name)) for name in COUNT_NAMES))

    def items(self) -> list[tuple[str, int]]:
        return list(zip(COUNT_NAMES, (asdict(self)[name] for name in COUNT_NAMES), strict=True))


@dataclass(frozen=True)
class SequenceStatus:
    stream: str
    last_delivered: int
    next: int

    @classmethod
    def from_json(cls, data: Json) -> SequenceStatus:
        return cls(
            _str(data.get("stream")), _int(data.get("last_delivered")), _int(data.get("next"))
        )


@dataclass(frozen=True)
class AuditStatus:
    undelivered: int = 0


@dataclass(frozen=True)
class ErrorStatus:
    message: str
    cause: str | None
    fix: str | None
    step: str | None
    time_ms: int
    server: str | None

    @classmethod
    def from_json(cls, data: Json) -> ErrorStatus:
        return cls(
            _str(data.get("message")),
            _opt_str(data.get("cause")),
            _opt_str(data.get("fix")),
            _opt_str(data.get("step")),
            _int(data.get("time_ms")),
            _opt_str(data.get("server")),
        )


@dataclass(frozen=True)
class HeldStatus:
    events: int
    batches: int
    accepted_under: str
    current: str
    message: str

    @classmethod
    def from_json(cls, data: Json) -> HeldStatus:
        return cls(
            _int(data.get("events")),
            _int(data.get("batches")),
            _str(data.get("accepted_under")),
            _str(data.get("current")),
            _str(data.get("message")),
        )


@dataclass(frozen=True)
class GenerationWaitStatus:
    batch_generation: int
    config_generation: int
    waiting_s: float
    message: str

    @classmethod
    def from_json(cls, data: Json) -> GenerationWaitStatus:
        return cls(
            _int(data.get("batch_generation")),
            _int(data.get("config_generation")),
            _num(data.get("waiting_s")) or 0.0,
            _str(data.get("message")),
        )


@dataclass(frozen=True)
class FileRef:
    what: str  # "queue", "status file", "pid file"
    path: str


@dataclass(frozen=True)
class DiskFullStatus:
    what: str
    path: str
    since_ms: int
    fix: str
    files: tuple[FileRef, ...]

    @classmethod
    def from_json(cls, data: Json) -> DiskFullStatus:
        files = data.get("files")
        return cls(
            _str(data.get("what")),
            _str(data.get("path"), "a file"),
            _int(data.get("since_ms")),
            _str(data.get("fix")),
            tuple(
                FileRef(_str(_obj(f).get("what")), _str(_obj(f).get("path")))
                for f in (files if isinstance(files, list) else [])
            ),
        )


@dataclass(frozen=True)
class Blocked:
    """The blocking network call the loop waits in without progress, and since when."""

    on: str
    since_ms: int

    @classmethod
    def from_json(cls, data: Json) -> Blocked | None:
        since = _num(data.get("since_ms"))
        if since is None:
            return None
        return cls(_str(data.get("on")) or "?", int(since))


def _owed(value: object) -> list[OwedSegment] | None:
    if not isinstance(value, list):
        return None
    return [segment for segment in value if isinstance(segment, dict)]


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
        def some(key: str) -> Json | None:
            return _some(data.get(key))

        def each(key: str, read: Callable[[Json], T]) -> T | None:
            value = some(key)
            return None if value is None else read(value)

        return cls(
            pid=_opt_int(data.get("pid")),
            updated=_num(data.get("updated")) or 0,
            started_ms=_opt_int(data.get("started_ms")),
            state=_opt_str(data.get("state")),
            server=each("server", ServerStatus.from_json),
            failover=each("failover", FailoverStatus.from_json),
            connection=each("connection", ConnectionStatus.from_json),
            client_certificate_not_after=_opt_str(data.get("client_certificate_not_after")),
            client_certificate_thumbprint=_opt_str(data.get("client_certificate_thumbprint")),
            certificates=each("certificates", Certificates.from_json),
            connections=_int(data.get("connections")),
            queue=each("queue", QueueStatus.from_json),
            counts=Counts.of(_obj(data.get("counts"))),
            sequence=each("sequence", SequenceStatus.from_json),
            audit=AuditStatus(_int(_obj(data.get("audit")).get("undelivered"))),
            last_error=each("last_error", ErrorStatus.from_json),
            last_send_ms=_opt_int(data.get("last_send_ms")),
            next_attempt_in_s=_num(data.get("next_attempt_in_s")),
            config_problem=_opt_str(data.get("config_problem")),
            held=each("held", HeldStatus.from_json),
            waiting_for_generation=each("waiting_for_generation", GenerationWaitStatus.from_json),
            condition=_opt_str(data.get("condition")),
            disk_full=each("disk_full", DiskFullStatus.from_json),
            queue_writes_owed=_int(data.get("queue_writes_owed")),
            owed=_owed(data.get("owed")),
            socket=_opt_str(data.get("socket")),
            socket_error=_opt_str(data.get("socket_error")),
            blocked=None if some("blocked") is None else Blocked.from_json(_obj(data["blocked"])),
            status_updated=_num(data.get("status_updated")),
        )
