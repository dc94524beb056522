"""Repairing a damaged queue database (``forwarder repair``).

A queue file can be damaged by a failing disk, a file system that lost writes, or a copy taken
while it was written. SQLite then refuses it ("database disk image is malformed", "file is not a
database"), and neither the forwarder nor a producer can use it. The repair:

1. takes the forwarder's pid-file lock, so no forwarder runs (or starts) while it works;
2. runs ``PRAGMA integrity_check``, then checks that every batch's input lines still describe
   themselves (SQLite checks structure, not data): a healthy queue is left untouched;
3. moves the damaged database and its ``-wal`` / ``-shm`` aside, in the same directory, as
   ``queue.sqlite3.damaged-<UTC time>`` (mode 0600): kept as evidence, never read again by
   azs-syslog;
4. reads from it every batch it still can, one row at a time (a damaged page loses only the
   rows stored on it: the rows are found by probing the table by rowid ranges, past the pages
   that cannot be read), and the persistent counters;
5. renders the accepted input lines of each readable batch again, under the current
   configuration (exactly as ``send-event`` renders), into a fresh queue at the usual path. A
   stored line that is no longer a valid event (its bytes were damaged) is lost and counted.
   The rendered bytes of the damaged file are never trusted: only lines that validate again
   are sent.

Producers may keep appending during the repair: once the damaged file is moved aside, they
create (or append to) the fresh queue, which the recovered batches join.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azs_syslog import paths
from azs_syslog.errors import AzsSyslogError, EventError, QueueError, is_damaged_database
from azs_syslog.queue import COUNTERS, Queue, QueueLimits, decode_raw, lengths_from_bytes

if TYPE_CHECKING:
    from azs_syslog.encode.render import Renderer

# Counters that describe the live depth of the queue: the fresh queue computes its own.
_DEPTH_COUNTERS = frozenset(("queued_events", "queued_bytes"))
_GAP_COUNTERS = frozenset(("gap_events", "gap_first_ms", "gap_last_ms"))
# Probing past damaged pages: ids are searched up to this far ahead (2**62: any rowid).
_MAX_ID = 1 << 62


@dataclass
class RepairReport:
    """What ``repair_queue`` did. ``events_lost`` is None when it cannot be known (the
    counters of the damaged file were unreadable too)."""

    path: Path
    needed: bool
    problem: str | None = None
    moved_to: list[Path] = field(default_factory=list)
    batches_recovered: int = 0
    events_recovered: int = 0
    batches_lost: int = 0
    events_lost: int | None = 0
    counters_recovered: bool = False
    read_anything: bool = False

    @property
    def complete(self) -> bool:
        """Everything the damaged file held is in the fresh queue."""
        if not self.needed:
            return True
        return self.counters_recovered and self.batches_lost == 0 and self.events_lost == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": str(self.path),
            "repaired": self.needed,
            "problem": self.problem,
            "moved_to": [str(p) for p in self.moved_to],
            "batches_recovered": self.batches_recovered,
            "events_recovered": self.events_recovered,
            "batches_lost": self.batches_lost,
            "events_lost": self.events_lost,
            "counters_recovered": self.counters_recovered,
        }


def repair_queue(
    path: Path | None = None,
    *,
    pid_path: Path | None = None,
    limits: QueueLimits | None = None,
) -> RepairReport:
    """Check the queue at ``path`` and, when it is damaged, rebuild it (see the module doc).

    Raises ``QueueError`` when a forwarder runs for this home, or when the queue cannot be
    examined for another reason than damage (permissions, for example).
    """
    from azs_syslog.forwarder.pidfile import acquire_pid_file, release_pid_file

    path = path or paths.queue_file()
    pid_path = pid_path or paths.pid_file()
    try:
        lock = acquire_pid_file(pid_path)
    except AzsSyslogError as exc:
        cause = exc.__cause__
        if isinstance(cause, OSError) and cause.errno in (errno.EWOULDBLOCK, errno.EACCES):
            try:
                pid = pid_path.read_text(encoding="ascii", errors="replace").strip() or "?"
            except OSError:
                pid = "?"
            raise QueueError(
                f"cannot repair the queue: a forwarder is running for this home"
                f" (pid {pid}, {pid_path})",
                fix="stop the forwarder first (systemctl stop azs-syslog-forwarder),"
                " then run azs-syslog forwarder repair again",
            ) from exc
        raise
    try:
        problem = check_queue(path)
        if problem is None:
            return RepairReport(path=path, needed=False)
        report = RepairReport(path=path, needed=True, problem=problem)
        damaged = _move_aside(path, report)
        _recover(damaged, path, report, limits)
        return report
    finally:
        release_pid_file(lock)


def check_queue(path: Path) -> str | None:
    """None when the queue at ``path`` is healthy (or absent); else SQLite's first complaint.

    Raises ``QueueError`` when it cannot be examined for another reason than damage.
    """
    if not path.exists():
        return None
    try:
        with _open_read_only(path) as db:
            rows = db.execute("PRAGMA integrity_check(20)").fetchall()
            # integrity_check checks the file's structure, not what the rows hold: read the
            # counters, and check that every batch's blobs still describe themselves.
            db.execute("SELECT name, value FROM counters").fetchall()
            damaged_batch = _first_damaged_batch(db) if rows == [("ok",)] else None
    except sqlite3.DatabaseError as exc:
        if is_damaged_database(exc):
            return str(exc)
        raise QueueError(
            f"{path}: cannot examine the queue: {exc}",
            fix="check the file's permissions and the free disk space",
        ) from exc
    if rows == [("ok",)]:
        if damaged_batch is not None:
            return f"the stored lines of batch {damaged_batch} are damaged"
        return None
    complaints = [line.strip() for row in rows for line in str(row[0]).splitlines()]
    return "; ".join(line for line in complaints if line and not line.startswith("***"))[:300]


@contextlib.contextmanager
def _open_read_only(path: Path) -> Iterator[sqlite3.Connection]:
    # Read-only: the damaged file stays as it was found (no WAL recovery is written back,
    # no checkpoint on close).
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        yield db
    finally:
        db.close()


def _move_aside(path: Path, report: RepairReport) -> Path:
    """Rename the database and its -wal / -shm to ``<name>.damaged-<time>``; returns the new
    database path (SQLite finds the renamed -wal next to it)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    serial = 1
    while target.exists():
        serial += 1
        target = path.with_name(f"{path.name}.damaged-{stamp}-{serial}")
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if not source.exists():
            continue
        moved = Path(f"{target}{suffix}")
        try:
            source.replace(moved)
            moved.chmod(0o600)
        except OSError as exc:
            raise QueueError(
                f"cannot move the damaged queue {source} aside: {exc.strerror or exc}",
                fix=f"check the permissions of {path.parent} and the free disk space",
            ) from exc
        report.moved_to.append(moved)
    return target


def _recover(damaged: Path, path: Path, report: RepairReport, limits: QueueLimits | None) -> None:
    """Read what can be read from ``damaged`` into a fresh queue at ``path``."""
    counters: dict[str, int] | None = None
    batch_ids: list[int] = []
    holes = 0
    inflight: set[int] = set()
    db: sqlite3.Connection | None = None
    try:
        db = sqlite3.connect(f"{damaged.as_uri()}?mode=ro", uri=True, isolation_level=None)
        # A file cut short declares more pages than it has: SQLite refuses to open it at all,
        # unless the schema is "writable" (harmless here: the connection is read-only).
        db.execute("PRAGMA writable_schema=ON")
        counters = _read_counters(db)
        batch_ids, holes = _missing_rows(db, _readable_ids(db))
        with contextlib.suppress(sqlite3.DatabaseError):
            inflight = {int(r[0]) for r in db.execute("SELECT batch_id FROM inflight")}
    except sqlite3.DatabaseError:
        pass  # not a database at all, or not even its first page: nothing can be read
    report.counters_recovered = counters is not None
    with Queue(path, limits=limits) as fresh:
        renderer, key, generation = _current_rendering()
        resent = 0
        for batch_id in batch_ids:
            assert db is not None
            lines = _read_batch(db, batch_id)
            if lines is None:
                report.batches_lost += 1
                continue
            report.read_anything = True
            origin = (generation, _batch_level(db, batch_id))
            recovered, invalid = _append(fresh, renderer, key, lines, origin)
            report.events_recovered += recovered
            if recovered:
                report.batches_recovered += 1
                if batch_id in inflight:
                    resent += recovered
            if invalid:
                report.batches_lost += 0 if recovered else 1
        report.batches_lost += holes
        if counters is not None:
            report.read_anything = True
            queued = counters.get("queued_events", 0)
            report.events_lost = max(0, queued - report.events_recovered)
            _restore_counters(fresh, counters, report.events_recovered, resent)
        else:
            report.events_lost = None
    if db is not None:
        db.close()


def _current_rendering() -> tuple[Renderer, str, int]:
    """The renderer ``send-event`` would use now, and the configuration generation it is
    for (the defaults, generation 0, when the configuration cannot be read: the forwarder
    renders again under the one it runs with)."""
    from azs_syslog.config import Config, load_config
    from azs_syslog.encode.render import Renderer, RenderSettings
    from azs_syslog.errors import ConfigError

    try:
        config = load_config()
    except ConfigError:
        config = Config()
    settings = RenderSettings.from_config(config)
    return Renderer(settings), settings.key, config.generation


def _batch_level(db: sqlite3.Connection, batch_id: int) -> int:
    """The security level a batch was accepted under, kept by the recovered batch so that it
    is still never sent over a weaker transport (0 for a queue from before levels existed)."""
    try:
        row = db.execute("SELECT level FROM batches WHERE id = ?", (batch_id,)).fetchone()
    except sqlite3.DatabaseError:
        return 0
    return int(row[0]) if row is not None and isinstance(row[0], int) else 0


def _read_counters(db: sqlite3.Connection) -> dict[str, int] | None:
    """The persistent counters, each read on its own when the table cannot be read whole."""
    try:
        return {str(n): int(v) for n, v in db.execute("SELECT name, value FROM counters")}
    except sqlite3.DatabaseError:
        pass
    out: dict[str, int] = {}
    for name in COUNTERS:
        try:
            row = db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        except sqlite3.DatabaseError:
            return None  # a counter lost: the event figures cannot be trusted
        if row is not None:
            out[name] = int(row[0])
    return out


def _probe(db: sqlite3.Connection, start: int) -> bool:
    """Whether the table can be searched from rowid ``start`` (the page holding it is sound)."""
    try:
        db.execute("SELECT id FROM batches WHERE id >= ? ORDER BY id LIMIT 1", (start,)).fetchone()
    except sqlite3.DatabaseError:
        return False
    return True


def _readable_ids(db: sqlite3.Connection) -> list[int]:
    """The rowids of ``batches`` that can be found, in order.

    A scan that hits a damaged page stops; the next sound page is found by probing ever further
    ahead (1, 2, 4 ... rowids), then bisecting back to the first rowid that can be searched
    from.
    """
    ids: set[int] = set()
    after = 0
    for _ in range(1_000_000):  # bounded: each round starts past where the last one started
        start = after
        try:
            for (batch_id,) in db.execute(
                "SELECT id FROM batches WHERE id > ? ORDER BY id", (start,)
            ):
                # A damaged page can yield nonsense rowids, out of order: keep them (reading
                # the row tells), but never go back behind this round's start (no loop).
                if int(batch_id) > start:
                    ids.add(int(batch_id))
                    after = int(batch_id)
            break
        except sqlite3.DatabaseError:
            pass
        bad = after + 1
        step = 1
        good = bad + step
        while not _probe(db, good):
            bad = good
            step *= 2
            good = min(_MAX_ID, after + 1 + step)
            if bad >= _MAX_ID:
                return sorted(ids)
        while good - bad > 1:
            middle = (good + bad) // 2
            if _probe(db, middle):
                good = middle
            else:
                bad = middle
        after = good - 1  # rowids in [after + 1, good) cannot be read
    return sorted(ids)


def _missing_rows(db: sqlite3.Connection, ids: list[int]) -> tuple[list[int], int]:
    """``ids`` without the impossible ones, and how many rows of the table were not found.

    Batches are appended with increasing rowids (AUTOINCREMENT: ``sqlite_sequence`` holds the
    last one given) and removed oldest first, so a queue's rowids are consecutive from its
    oldest batch to the last one given: any of them not found was on a damaged page. A damaged
    page can also yield cells with nonsense rowids: those beyond the last one given are dropped.
    """
    try:
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'batches'").fetchone()
        last: int | None = int(row[0]) if row else None
    except sqlite3.DatabaseError:
        last = None
    if last is not None:
        ids = [i for i in ids if i <= last]
    if not ids:
        return ids, 0
    top = last if last is not None else ids[-1]
    return ids, top - ids[0] + 1 - len(ids)


def _first_damaged_batch(db: sqlite3.Connection) -> int | None:
    """The id of the first batch whose lengths do not add up to its rendered bytes, or whose
    input lines do not decode (damage inside the data of a page, which SQLite does not
    checksum); None when every batch is whole."""
    rows = db.execute("SELECT id, length(wire), lengths FROM batches ORDER BY id")
    for batch_id, wire_size, lengths in rows:
        if sum(lengths_from_bytes(bytes(lengths))) != wire_size:
            return int(batch_id)
        if _read_batch(db, int(batch_id)) is None:
            return int(batch_id)
    return None


def _read_batch(db: sqlite3.Connection, batch_id: int) -> list[tuple[int, bytes]] | None:
    """The accepted lines of one batch, or None when its row or its raw lines are damaged."""
    try:
        row = db.execute("SELECT count, raw FROM batches WHERE id = ?", (batch_id,)).fetchone()
    except sqlite3.DatabaseError:
        return None
    if row is None:
        return None
    blob = bytes(row[1])
    try:
        # strict: the lengths the blob declares must account for every byte of it (decoding
        # alone does not check: a slice past the end is merely short).
        lines = decode_raw(blob, strict=True)
    except (QueueError, ValueError, TypeError, struct.error, MemoryError):
        return None  # damaged bytes: the lengths no longer describe the blob
    if len(lines) != int(row[0]):
        return None
    return lines


def _append(
    fresh: Queue,
    renderer: Renderer,
    key: str,
    lines: list[tuple[int, bytes]],
    origin: tuple[int, int] = (0, 0),
) -> tuple[int, int]:
    """Render ``lines`` again into one batch of ``fresh`` (``origin``: the configuration
    generation rendered for, and the security level accepted under); returns (recovered,
    invalid)."""
    from azs_syslog.queue.ingest import BatchBuilder

    generation, level = origin
    builder = BatchBuilder(renderer, key, generation=generation, level=level)
    invalid = 0
    for accepted_ms, line in lines:
        try:
            builder.add(line, accepted_ms)
        except EventError:
            invalid += 1  # damaged bytes: the line no longer holds the event it held
    batch, truncated = builder.take()
    if batch is not None:
        # ``accepted`` already counted these events once: the restored counters make up for
        # the second count append_batch adds (see _restore_counters).
        fresh.append_batch(batch, truncated=0)
    del truncated
    return (batch.count if batch is not None else 0), invalid


def _restore_counters(fresh: Queue, old: dict[str, int], recovered: int, resent: int) -> None:
    """Carry the damaged file's counters over to ``fresh`` (added to what it counts already,
    since producers may have written to it during the repair)."""
    deltas: dict[str, int] = {}
    for name, value in old.items():
        if name not in COUNTERS or name in _DEPTH_COUNTERS or name in _GAP_COUNTERS:
            continue
        deltas[name] = value
    # append_batch counted the recovered events as accepted again.
    deltas["accepted"] = deltas.get("accepted", 0) - recovered
    deltas["resent"] = deltas.get("resent", 0) + resent
    fresh.add_counters(**deltas)
    gap = old.get("gap_events", 0)
    if gap > 0:
        fresh.restore_gap(gap, old.get("gap_first_ms", 0), old.get("gap_last_ms", 0))
