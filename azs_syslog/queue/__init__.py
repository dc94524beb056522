"""The durable queue: an embedded SQLite database of *batches* of rendered events.

One row holds one batch (up to a few thousand events): the framed syslog messages ready to
write (``wire``), the length of each (``lengths``, so UDP can send one datagram per message),
the ``RenderSettings.key`` they were rendered under, and the accepted input lines with their
acceptance times (``raw``), so that the worker can render the batch again when the settings
changed before it was sent. A batch also records the configuration generation it was rendered
for and the security level of the transport configured when it was accepted (``generation``,
``level``; see ``config.Config``), and, once the operator ran ``forwarder release-held``, the
lower level they allowed it to be sent at (``released_level``).

Schema versions: 1 had no ``generation`` / ``level`` / ``released_level``; a version-1 queue is
migrated in place when opened (the columns are added with their defaults: generation 0, level
0, i.e. what the batches were sent under before levels existed).

Durability. The database is in WAL mode. Connections that *accept* events (``send-event``,
the worker's socket input) use ``synchronous=FULL``: every commit fsyncs the WAL before it
returns, so "accepted" (exit 0, an ``ok`` on the socket) holds after ``kill -9`` *and* after a
power loss or an OS crash. The worker's own bookkeeping (``mark_sent``, ``confirm``) runs with
``synchronous=NORMAL``: losing its last commits in an OS crash only means a batch is sent again
(at-least-once allows duplicates), never that one is lost. SQLite's atomic commit guarantees
that a writer killed mid-append leaves its batch either wholly present or wholly absent.

Concurrency. Any number of writer processes and one reader (the worker) share the file. Each
write is one ``BEGIN IMMEDIATE`` transaction with a busy timeout, so writers queue up behind
each other instead of failing.

Bound. The queue holds at most ``max_events`` events and ``max_bytes`` bytes (wire + raw).
An append that would exceed it first deletes the oldest batches; their events are added to the
persistent ``dropped`` counter and to a pending *gap* (count and time range), which the worker
reports once, as one warning event, when delivery resumes. A single batch larger than the whole
bound is still stored (after everything older was dropped): the bound is exceeded by at most
one batch rather than an accepted batch being thrown away unseen.

The row layout puts the small columns first and ``raw`` last, so reading a batch to send it
never touches the pages of its raw lines; whether a batch is in flight lives in a separate
small table, so marking it never rewrites its blobs.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import struct
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from azs_syslog import fserrors, paths
from azs_syslog.errors import QueueError

SCHEMA_VERSION = 2
DEFAULT_MAX_EVENTS = 1_000_000
DEFAULT_MAX_BYTES = 1 << 30
OTHER_BUSY_TIMEOUT_MS = 5000
MAX_EVENTS_ENV = "AZS_SYSLOG_QUEUE_MAX_EVENTS"
MAX_BYTES_ENV = "AZS_SYSLOG_QUEUE_MAX_BYTES"

# Persistent counters (the ``counters`` table). ``queued_*`` are the live depth; the others
# only ever grow and are what ``forwarder status`` shows.
COUNTERS = (
    "accepted",  # events durably queued
    "sent",  # messages written to the transport and confirmed
    "filtered",  # events not sent because of OutputSeverity at send time
    "dropped",  # events deleted because the queue was full
    "rejected",  # input lines refused (invalid events)
    "truncated",  # events shortened to the maximum message size
    "resent",  # events sent again after a broken connection or a restart (possible duplicates)
    "rerendered",  # events rendered again because the settings changed before sending
    "released",  # held events the operator let go at a lower security level (release-held)
    "queued_events",
    "queued_bytes",
    "gap_events",  # dropped events not yet reported by a warning event
    "gap_first_ms",
    "gap_last_ms",
    "sequence",  # the highest sequence number delivered (--sequence-numbers)
    "audit_undelivered",  # audit events that could not reach the server they were meant for
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ms INTEGER NOT NULL,
    count INTEGER NOT NULL,
    nbytes INTEGER NOT NULL,
    render_key TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    level INTEGER NOT NULL DEFAULT 0,
    released_level INTEGER,
    lengths BLOB NOT NULL,
    wire BLOB NOT NULL,
    raw BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS inflight (
    batch_id INTEGER PRIMARY KEY,
    sent_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pinned (
    batch_id INTEGER PRIMARY KEY,
    server TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""

# Version 1 -> 2: the columns a batch's configuration generation and security level live in.
# ADD COLUMN puts them after ``raw``, so reading them walks the pages of a batch's raw lines,
# which the layout of a new file avoids. An empty queue (the usual state at an upgrade) is
# therefore given the new layout instead; a non-empty one keeps the added columns.
_MIGRATE_1_TO_2 = (
    "ALTER TABLE batches ADD COLUMN generation INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE batches ADD COLUMN level INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE batches ADD COLUMN released_level INTEGER",
)

# A batch is *held* when it was accepted under a higher security level than the current one
# (and the operator has not released it down to the current level). Batches rendered for a
# newer configuration than the worker's are not held: they wait for the worker to switch;
# except those up to ``:stale`` (a batch id), which the worker treats as older (a configuration
# file that went back in generations).
_HELD = (
    "(generation <= :generation OR id <= :stale) AND level > :level"
    " AND (released_level IS NULL OR released_level > :level)"
)

_RAW_HEADER = struct.Struct("<4sI")
_RAW_MAGIC = b"AZR1"


_F = TypeVar("_F", bound=Callable[..., Any])


def _reads(method: _F) -> _F:
    """Turn an SQLite error of a read into a QueueError naming the file."""

    @functools.wraps(method)
    def wrapper(self: Queue, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise QueueError(
                f"{self.path}: cannot read the queue: {exc}",
                fix="check the file (PRAGMA integrity_check) and the free disk space",
            ) from exc

    return wrapper  # type: ignore[return-value]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- the raw lines of a batch ------------------------------------------------------------------


def encode_raw(accepted_ms: Sequence[int], lines: Sequence[bytes]) -> bytes:
    """Pack the accepted input lines and their acceptance times into one compact blob.

    Layout: magic, count, ``count`` int64 times, ``count`` uint32 lengths, the lines.
    """
    if len(accepted_ms) != len(lines):
        raise ValueError("one acceptance time per line")
    times = array("q", accepted_ms)
    sizes = array("I", map(len, lines))
    return b"".join(
        (_RAW_HEADER.pack(_RAW_MAGIC, len(lines)), times.tobytes(), sizes.tobytes(), *lines)
    )


def decode_raw(blob: bytes) -> list[tuple[int, bytes]]:
    """The ``(accepted_ms, line)`` pairs of a blob made by :func:`encode_raw`."""
    magic, count = _RAW_HEADER.unpack_from(blob)
    if magic != _RAW_MAGIC:
        raise QueueError("the queue holds a batch in an unknown format")
    offset = _RAW_HEADER.size
    times = array("q")
    times.frombytes(blob[offset : offset + 8 * count])
    offset += 8 * count
    sizes = array("I")
    sizes.frombytes(blob[offset : offset + 4 * count])
    offset += 4 * count
    view = memoryview(blob)
    out: list[tuple[int, bytes]] = []
    for accepted, size in zip(times, sizes, strict=True):
        out.append((accepted, bytes(view[offset : offset + size])))
        offset += size
    return out


def lengths_to_bytes(lengths: Iterable[int]) -> bytes:
    return array("I", lengths).tobytes()


def lengths_from_bytes(blob: bytes) -> array[int]:
    lengths = array("I")
    lengths.frombytes(blob)
    return lengths


# --- records -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewBatch:
    """A batch about to be appended. ``count`` counts every accepted event, including those
    the severity filter left out of ``wire`` under ``render_key``."""

    count: int
    created_ms: int
    render_key: str
    wire: bytes
    lengths: bytes  # array('I') of each framed message's length in ``wire``
    raw: bytes  # encode_raw(...)
    generation: int = 0  # the configuration generation it was rendered for
    level: int = 0  # the security level configured when it was accepted (config.LEVEL_*)

    @property
    def nbytes(self) -> int:
        return len(self.wire) + len(self.lengths) + len(self.raw)


@dataclass(frozen=True)
class QueuedBatch:
    """A stored batch as the worker reads it (without its raw lines)."""

    id: int
    created_ms: int
    count: int
    nbytes: int
    render_key: str
    lengths: array[int]
    wire: bytes
    generation: int = 0
    level: int = 0
    # The server (``name:port transport``) this batch is meant for, and no other: the
    # forwarder's audit events (audit.py). None for every other batch.
    pinned: str | None = None

    @property
    def messages(self) -> int:
        return len(self.lengths)


@dataclass(frozen=True)
class Depth:
    events: int
    bytes: int
    oldest_ms: int | None  # acceptance time of the oldest queued event


@dataclass(frozen=True)
class Gap:
    """Events dropped because the queue was full and not yet reported."""

    events: int
    first_ms: int
    last_ms: int


@dataclass(frozen=True)
class Held:
    """Batches held because the current security level is lower than the one they were
    accepted under."""

    events: int
    batches: int
    level: int  # the highest level they were accepted under


@dataclass(frozen=True)
class QueueLimits:
    max_events: int = DEFAULT_MAX_EVENTS
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_env(cls) -> QueueLimits:
        """The bound, from ``AZS_SYSLOG_QUEUE_MAX_EVENTS`` / ``AZS_SYSLOG_QUEUE_MAX_BYTES``
        when set [project]. Every process that appends enforces it, so give the worker and
        the producers the same values."""
        values = {}
        for field_name, variable in (
            ("max_events", MAX_EVENTS_ENV),
            ("max_bytes", MAX_BYTES_ENV),
        ):
            text = os.environ.get(variable)
            if text:
                try:
                    value = int(text)
                except ValueError:
                    value = 0
                if value <= 0:
                    raise QueueError(
                        f"{variable}={text!r} is not a positive whole number",
                        fix=f"unset {variable} or give it a positive number",
                    )
                values[field_name] = value
        return cls(**values)


# --- the queue ---------------------------------------------------------------------------------


class Queue:
    """A connection to the durable queue. Not thread-safe: one per thread.

    ``durable=True`` (the default, for producers) makes every commit survive an OS crash;
    the worker opens its bookkeeping connection with ``durable=False`` (see the module doc).
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        limits: QueueLimits | None = None,
        durable: bool = True,
        busy_timeout: float = 30.0,
    ) -> None:
        self.path = path or paths.queue_file()
        self.limits = limits or QueueLimits.from_env()
        self.read_only = False
        try:
            paths.ensure_private_dir(self.path.parent)
            if not self.path.exists():
                # Create it 0600 ourselves: SQLite gives the -wal and -shm files the same mode.
                fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
                os.close(fd)
            # Readers too need to write (the -shm file): a refusal is named here, in the
            # operator's terms, rather than as SQLite's "unable to open database file".
            if not (
                os.access(self.path, os.R_OK | os.W_OK)
                and os.access(self.path.parent, os.W_OK | os.X_OK)
            ):
                raise fserrors.access_error(self.path, "open the queue", write=True)
            self.busy_timeout = busy_timeout
            deadline = time.monotonic() + busy_timeout
            while True:
                try:
                    self._open(durable)
                    break
                except sqlite3.OperationalError as exc:
                    # Several processes opening a new queue at once: switching it to WAL and
                    # creating the schema can report "locked" without waiting on the busy
                    # timeout. Every step is idempotent, so try again.
                    if getattr(self, "_db", None) is not None:
                        self._db.close()
                    if "locked" not in str(exc) or time.monotonic() >= deadline:
                        raise
                    time.sleep(0.01)
        except PermissionError:
            raise fserrors.access_error(self.path, "open the queue", write=True) from None
        except OSError as exc:
            raise QueueError(
                f"{self.path}: cannot create the queue: {exc.strerror or exc}",
                fix=fserrors.disk_full_fix(self.path) if fserrors.is_disk_full(exc) else None,
            ) from exc
        except sqlite3.Error as exc:
            raise QueueError(
                f"{self.path}: cannot open the queue: {exc}",
                fix=fserrors.disk_full_fix(self.path)
                if fserrors.is_disk_full(exc, self.path)
                else "check the file's permissions and the free disk space",
            ) from exc

    @classmethod
    def snapshot(cls, path: Path | None = None, *, limits: QueueLimits | None = None) -> Queue:
        """A read-only view of the queue that needs no disk space, for the worker when the
        queue cannot be opened because the disk is full (opening a queue that no process has
        open creates its 32 KiB ``-shm`` file). Raises ``QueueError`` when the view could be
        stale: the write-ahead log holds commits the main file does not have yet.

        Every write method fails on it (``read_only`` is True); the worker keeps its
        bookkeeping in memory meanwhile and opens the queue normally once space is back.
        """
        self = cls.__new__(cls)
        self.path = path or paths.queue_file()
        self.limits = limits or QueueLimits.from_env()
        self.read_only = True
        self.busy_timeout = 0.0
        wal = self.path.with_name(self.path.name + "-wal")
        try:
            wal_bytes = wal.stat().st_size
        except FileNotFoundError:
            wal_bytes = 0
        except OSError as exc:
            raise QueueError(f"{wal}: cannot be examined: {exc.strerror or exc}") from exc
        if wal_bytes:
            raise QueueError(
                f"{self.path}: cannot open the queue (its write-ahead log {wal} holds "
                "commits, and the disk is full)",
                fix=fserrors.disk_full_fix(self.path, forwarder=True),
            )
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        except OSError as exc:
            raise QueueError(f"{self.path}: cannot be examined: {exc.strerror or exc}") from exc
        try:
            if size == 0:
                # Nothing was ever committed: an empty queue, in memory.
                self._db = sqlite3.connect(":memory:", isolation_level=None)
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.executemany(
                    "INSERT INTO counters (name, value) VALUES (?, 0)",
                    [(name,) for name in COUNTERS],
                )
            else:
                from urllib.parse import quote

                self._db = sqlite3.connect(
                    f"file:{quote(str(self.path))}?immutable=1",
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                )
                self._db.execute("SELECT 1 FROM batches LIMIT 1").fetchall()
        except sqlite3.Error as exc:
            raise QueueError(f"{self.path}: cannot read the queue: {exc}") from exc
        return self

    def _open(self, durable: bool) -> None:
        """Connect and set the queue up (pragmas, schema): idempotent."""
        self._db = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        # BEGIN IMMEDIATE polls for the write lock itself (see _write); this covers the
        # rare waits of other statements.
        self._db.execute(f"PRAGMA busy_timeout={OTHER_BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA page_size=16384")  # only takes effect on a new file
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise QueueError(f"{self.path}: cannot switch the queue to WAL mode ({mode})")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        # Some builds (Debian's, pyenv's) compile SQLite with SECURE_DELETE, which zeroes
        # every deleted page: it doubles the bytes written by a delivered batch. The file
        # is private (0600) and holds the same events until they are sent anyway.
        self._db.execute("PRAGMA secure_delete=OFF")
        # Keep the WAL file from staying huge after a burst.
        self._db.execute(f"PRAGMA journal_size_limit={64 << 20}")
        if durable:
            # Producers leave checkpoints (copying the WAL into the database: a second
            # write of every byte, and an fsync) to the forwarder, which checkpoints at
            # the default 1,000 pages, on another core. A producer checkpoints only when
            # the WAL reaches 256 MiB, i.e. when no forwarder runs.
            self._db.execute(f"PRAGMA wal_autocheckpoint={(256 << 20) // 16384}")
        with self._write():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.executemany(
                "INSERT OR IGNORE INTO counters (name, value) VALUES (?, 0)",
                [(name,) for name in (*COUNTERS, "schema_version")],
            )
            # The sequence numbers' stream: a new queue file is a new stream (the numbers
            # start again at 1), and the SIEM tells it by this id changing.
            self._db.execute(
                "INSERT OR IGNORE INTO counters (name, value) VALUES ('stream_id', ?)",
                (int.from_bytes(os.urandom(8), "big") >> 1,),
            )
            version = self._counter("schema_version")
            if version == 1:
                empty = self._db.execute("SELECT 1 FROM batches LIMIT 1").fetchone() is None
                if empty:
                    # Keep the id sequence: ids never go back (a cursor may be past them).
                    row = self._db.execute(
                        "SELECT seq FROM sqlite_sequence WHERE name = 'batches'"
                    ).fetchone()
                    self._db.execute("DROP TABLE batches")
                    self._db.execute(_SCHEMA.split(";")[0])
                    if row is not None:
                        self._db.execute(
                            "INSERT INTO sqlite_sequence (name, seq) VALUES ('batches', ?)", row
                        )
                else:
                    for statement in _MIGRATE_1_TO_2:
                        self._db.execute(statement)
            if version in (0, 1):
                self._db.execute(
                    "UPDATE counters SET value = ? WHERE name = 'schema_version'",
                    (SCHEMA_VERSION,),
                )
            elif version != SCHEMA_VERSION:
                raise QueueError(
                    f"{self.path}: queue schema version {version} is not supported",
                    fix="use the azs-syslog version that created it to drain it first",
                )

    # --- plumbing

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front, so two
        writers never deadlock on a lock upgrade; the busy timeout makes others wait."""
        deadline = time.monotonic() + self.busy_timeout
        self._db.execute("PRAGMA busy_timeout=0")
        while True:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(f"PRAGMA busy_timeout={OTHER_BUSY_TIMEOUT_MS}")
                break
            except sqlite3.OperationalError as exc:
                # SQLite's own busy handler sleeps 1, 2, 5, 10 ... 100 ms between tries: a
                # producer would oversleep the other's commit by tens of ms. Poll finely.
                if "locked" in str(exc) and time.monotonic() < deadline:
                    time.sleep(0.001)
                    continue
                self._db.execute(f"PRAGMA busy_timeout={OTHER_BUSY_TIMEOUT_MS}")
                raise QueueError(
                    f"{self.path}: the queue is busy or unwritable: {exc}",
                    fix="check the free disk space and that no other program holds the file",
                ) from exc
            except sqlite3.Error as exc:
                self._db.execute(f"PRAGMA busy_timeout={OTHER_BUSY_TIMEOUT_MS}")
                raise QueueError(
                    f"{self.path}: the queue is unwritable: {exc}",
                    fix="check the free disk space and the file's permissions",
                ) from exc
        try:
            yield
        except BaseException as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise QueueError(
                    f"{self.path}: cannot write to the queue: {exc}",
                    fix="check the free disk space",
                ) from exc
            raise
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise QueueError(
                f"{self.path}: cannot commit to the queue: {exc}",
                fix="check the free disk space",
            ) from exc

    def _counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def _add(self, deltas: dict[str, int]) -> None:
        self._db.executemany(
            "UPDATE counters SET value = value + ? WHERE name = ?",
            [(delta, name) for name, delta in deltas.items() if delta],
        )

    # --- producers

    def _insert(self, batch: NewBatch) -> int:
        """Insert one batch row (inside ``_write``); returns its id."""
        cursor = self._db.execute(
            "INSERT INTO batches (created_ms, count, nbytes, render_key, generation,"
            " level, lengths, wire, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                batch.created_ms,
                batch.count,
                batch.nbytes,
                batch.render_key,
                batch.generation,
                batch.level,
                batch.lengths,
                batch.wire,
                batch.raw,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def append_batch(
        self,
        batch: NewBatch | None,
        *,
        rejected: int = 0,
        truncated: int = 0,
    ) -> None:
        """Store ``batch`` (and count ``rejected`` / ``truncated``) in one durable transaction.

        ``batch`` may be None to record only counters. Drops the oldest batches first when
        the queue would exceed its bound.
        """
        try:
            with self._write():
                if batch is not None and batch.count:
                    self._make_room(batch.count, batch.nbytes)
                    self._insert(batch)
                    self._add(
                        {
                            "accepted": batch.count,
                            "queued_events": batch.count,
                            "queued_bytes": batch.nbytes,
                        }
                    )
                self._add({"rejected": rejected, "truncated": truncated})
        except sqlite3.Error as exc:
            raise QueueError(
                f"{self.path}: cannot write to the queue: {exc}",
                fix="check the free disk space",
            ) from exc

    def _make_room(self, events: int, nbytes: int) -> None:
        queued_events = self._counter("queued_events")
        queued_bytes = self._counter("queued_bytes")
        limits = self.limits
        dropped = 0
        dropped_bytes = 0
        first_ms: int | None = None
        last_ms: int | None = None
        while (
            queued_events + events > limits.max_events or queued_bytes + nbytes > limits.max_bytes
        ):
            oldest = self._db.execute(
                "SELECT id, count, nbytes, created_ms FROM batches ORDER BY id LIMIT 64"
            ).fetchall()
            if not oldest:
                break
            victims: list[int] = []
            for batch_id, count, size, created in oldest:
                if not (
                    queued_events + events > limits.max_events
                    or queued_bytes + nbytes > limits.max_bytes
                ):
                    break
                victims.append(batch_id)
                queued_events -= count
                queued_bytes -= size
                dropped += count
                dropped_bytes += size
                first_ms = created if first_ms is None else min(first_ms, created)
                last_ms = created if last_ms is None else max(last_ms, created)
            self._db.executemany("DELETE FROM batches WHERE id = ?", [(v,) for v in victims])
            self._db.executemany("DELETE FROM inflight WHERE batch_id = ?", [(v,) for v in victims])
            self._db.executemany("DELETE FROM pinned WHERE batch_id = ?", [(v,) for v in victims])
        if not dropped:
            return
        assert first_ms is not None and last_ms is not None
        self._add(
            {
                "dropped": dropped,
                "gap_events": dropped,
                "queued_events": -dropped,
                "queued_bytes": -dropped_bytes,
            }
        )
        # A batch's created_ms is its oldest event's time; its newest is within the batching
        # window of it, which is precise enough for the warning.
        old_first = self._counter("gap_first_ms")
        old_last = self._counter("gap_last_ms")
        self._db.executemany(
            "UPDATE counters SET value = ? WHERE name = ?",
            [
                (min(old_first, first_ms) if old_first else first_ms, "gap_first_ms"),
                (max(old_last, last_ms), "gap_last_ms"),
            ],
        )

    def append_pinned(self, batches: Sequence[tuple[NewBatch, str]]) -> list[int]:
        """Store ``batches`` in one durable transaction, each *pinned* to a server (see
        ``QueuedBatch.pinned``); returns their ids, in order."""
        ids: list[int] = []
        with self._write():
            for batch, server in batches:
                self._make_room(batch.count, batch.nbytes)
                batch_id = self._insert(batch)
                ids.append(batch_id)
                self._db.execute(
                    "INSERT INTO pinned (batch_id, server) VALUES (?, ?)",
                    (batch_id, server),
                )
                self._add(
                    {
                        "accepted": batch.count,
                        "queued_events": batch.count,
                        "queued_bytes": batch.nbytes,
                    }
                )
        return ids

    def discard(self, ids: Sequence[int]) -> None:
        """Delete batches that are not to be sent (pinned to a configuration no longer in
        force), counting them as ``audit_undelivered``."""
        if not ids:
            return
        with self._write():
            marks = ",".join("?" * len(ids))
            events, nbytes = self._db.execute(
                f"SELECT COALESCE(SUM(count), 0), COALESCE(SUM(nbytes), 0) FROM batches"  # noqa: S608
                f" WHERE id IN ({marks})",
                tuple(ids),
            ).fetchone()
            for table, column in (
                ("batches", "id"),
                ("inflight", "batch_id"),
                ("pinned", "batch_id"),
            ):
                self._db.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", tuple(ids))  # noqa: S608
            self._add(
                {
                    "audit_undelivered": int(events),
                    "queued_events": -int(events),
                    "queued_bytes": -int(nbytes),
                }
            )

    @_reads
    def pinned_ids(self, generation: int, server: str | None, *, other: bool = False) -> list[int]:
        """The pinned batches rendered for ``generation`` or an older one and meant for
        ``server`` (``other``: for any other server), oldest first."""
        compare = "IS NOT" if other else "IS"
        return [
            int(row[0])
            for row in self._db.execute(
                "SELECT batches.id FROM batches JOIN pinned ON pinned.batch_id = batches.id"  # noqa: S608
                f" WHERE batches.generation <= ? AND pinned.server {compare} ?"
                " ORDER BY batches.id",
                (generation, server),
            )
        ]

    @_reads
    def has_batch(self, batch_id: int) -> bool:
        row = self._db.execute("SELECT 1 FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return row is not None

    # --- the worker

    @_reads
    def next_batches(
        self,
        limit: int = 8,
        *,
        after_id: int = 0,
        level: int | None = None,
        generation: int = 0,
        stale: int = 0,
        include_inflight: bool = False,
    ) -> list[QueuedBatch]:
        """The oldest batches not in flight, with ``id > after_id``, oldest first; with
        ``level``, without the batches held at that level (see :meth:`held`).

        ``include_inflight``: those in flight too (the worker, when its own bookkeeping is
        newer than the ``inflight`` table because the disk was full)."""
        held = f" AND NOT ({_HELD})" if level is not None else ""  # constant SQL, bound values
        not_inflight = (
            ""
            if include_inflight
            else " AND NOT EXISTS (SELECT 1 FROM inflight WHERE batch_id = batches.id)"
        )
        query = (
            "SELECT id, created_ms, count, nbytes, render_key, lengths, wire, generation, level,"  # noqa: S608
            " (SELECT server FROM pinned WHERE pinned.batch_id = batches.id)"
            " FROM batches WHERE id > :after" + not_inflight + held + " ORDER BY id LIMIT :limit"
        )
        params = {"after": after_id, "limit": limit, "level": level, "generation": generation}
        rows = self._db.execute(query, {**params, "stale": stale}).fetchall()
        return [
            QueuedBatch(
                id=row[0],
                created_ms=row[1],
                count=row[2],
                nbytes=row[3],
                render_key=row[4],
                lengths=lengths_from_bytes(row[5]),
                wire=row[6],
                generation=row[7],
                level=row[8],
                pinned=row[9],
            )
            for row in rows
        ]

    @_reads
    def held(self, level: int, generation: int, *, stale: int = 0) -> Held:
        """The batches a worker running configuration ``generation`` at security ``level``
        must not send: accepted under a higher level and not released down to this one."""
        events, batches, highest = self._db.execute(
            "SELECT COALESCE(SUM(count), 0), COUNT(*), COALESCE(MAX(level), 0) FROM batches"  # noqa: S608
            f" WHERE {_HELD}",
            {"level": level, "generation": generation, "stale": stale},
        ).fetchone()
        return Held(int(events), int(batches), int(highest))

    def release_held(self, level: int, generation: int) -> int:
        """The operator's consent: the batches held under configuration ``generation`` (at
        security ``level``) may be sent at that level. Recorded in each batch, so a later,
        even weaker configuration holds them again. Returns, and counts as ``released``, the
        number of events released."""
        params = {"level": level, "generation": generation, "stale": 0}
        with self._write():
            (events,) = self._db.execute(
                f"SELECT COALESCE(SUM(count), 0) FROM batches WHERE {_HELD}",  # noqa: S608
                params,
            ).fetchone()
            self._db.execute(
                f"UPDATE batches SET released_level = :level WHERE {_HELD}",  # noqa: S608
                params,
            )
            self._add({"released": int(events)})
        return int(events)

    @_reads
    def load_raw(self, batch_id: int) -> list[tuple[int, bytes]] | None:
        """The ``(accepted_ms, line)`` pairs of a batch, or None when it is gone."""
        row = self._db.execute("SELECT raw FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return decode_raw(row[0]) if row else None

    def mark_sent(self, ids: Sequence[int], sent_ms: int | None = None) -> None:
        """Record that these batches were written to the transport (not yet confirmed)."""
        if not ids:
            return
        stamp = now_ms() if sent_ms is None else sent_ms
        with self._write():
            self._db.executemany(
                "INSERT OR REPLACE INTO inflight (batch_id, sent_ms) VALUES (?, ?)",
                [(batch_id, stamp) for batch_id in ids],
            )

    def confirm(self, ids: Sequence[int], *, sent: int, filtered: int = 0) -> int:
        """Delete delivered batches; ``sent`` messages went out, ``filtered`` events were left
        out by the severity filter. Returns the number of events removed (batches the bound
        already dropped are skipped)."""
        if not ids:
            return 0
        with self._write():
            marks = ",".join("?" * len(ids))
            events, nbytes = self._db.execute(
                f"SELECT COALESCE(SUM(count), 0), COALESCE(SUM(nbytes), 0) FROM batches"  # noqa: S608
                f" WHERE id IN ({marks})",
                tuple(ids),
            ).fetchone()
            self._db.execute(f"DELETE FROM batches WHERE id IN ({marks})", tuple(ids))  # noqa: S608
            self._db.execute(f"DELETE FROM inflight WHERE batch_id IN ({marks})", tuple(ids))  # noqa: S608
            self._db.execute(f"DELETE FROM pinned WHERE batch_id IN ({marks})", tuple(ids))  # noqa: S608
            self._add(
                {
                    "sent": sent,
                    "filtered": filtered,
                    "queued_events": -int(events),
                    "queued_bytes": -int(nbytes),
                }
            )
        return int(events)

    def requeue_sent(self) -> int:
        """Put every batch in flight back in line (they go out again first). Returns, and
        counts as ``resent``, the number of events concerned."""
        with self._write():
            (events,) = self._db.execute(
                "SELECT COALESCE(SUM(count), 0) FROM batches"
                " WHERE id IN (SELECT batch_id FROM inflight)"
            ).fetchone()
            self._db.execute("DELETE FROM inflight")
            self._add({"resent": int(events)})
        return int(events)

    def add_counters(self, **deltas: int) -> None:
        with self._write():
            self._add(deltas)

    # --- gap reporting

    @_reads
    def pending_gap(self) -> Gap | None:
        counters = self.counters()
        if counters["gap_events"] <= 0:
            return None
        return Gap(counters["gap_events"], counters["gap_first_ms"], counters["gap_last_ms"])

    def clear_gap(self, gap: Gap) -> None:
        """Mark ``gap`` as reported. Drops that happened since it was read stay pending."""
        with self._write():
            self._add({"gap_events": -gap.events})
            if self._counter("gap_events") <= 0:
                self._db.execute(
                    "UPDATE counters SET value = 0"
                    " WHERE name IN ('gap_events', 'gap_first_ms', 'gap_last_ms')"
                )

    # --- observation

    @_reads
    def depth(self) -> Depth:
        counters = self.counters()
        row = self._db.execute("SELECT created_ms FROM batches ORDER BY id LIMIT 1").fetchone()
        return Depth(
            events=counters["queued_events"],
            bytes=counters["queued_bytes"],
            oldest_ms=int(row[0]) if row else None,
        )

    @_reads
    def counters(self) -> dict[str, int]:
        return {
            str(name): int(value)
            for name, value in self._db.execute("SELECT name, value FROM counters")
        }

    @_reads
    def inflight_ids(self) -> list[int]:
        return [int(r[0]) for r in self._db.execute("SELECT batch_id FROM inflight ORDER BY 1")]

    @_reads
    def batch_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM batches").fetchone()[0])

    # --- repair

    def restore_gap(self, events: int, first_ms: int, last_ms: int) -> None:
        """Add a gap carried over from a damaged queue (``forwarder repair``) to the pending
        one, so the warning event still reports it."""
        with self._write():
            self._add({"gap_events": events})
            old_first = self._counter("gap_first_ms")
            old_last = self._counter("gap_last_ms")
            self._db.executemany(
                "UPDATE counters SET value = ? WHERE name = ?",
                [
                    (min(old_first, first_ms) if old_first else first_ms, "gap_first_ms"),
                    (max(old_last, last_ms), "gap_last_ms"),
                ],
            )
