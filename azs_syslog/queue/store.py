"""The queue's connection: opening (or a read-only snapshot), transactions, counters.

The operations are in :mod:`append` (producers), :mod:`settle` (the worker's claim and
settlement of batches) and :mod:`counters` (observation); ``azs_syslog.queue.Queue`` is all
of them on one connection.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self, TypeVar

from azs_syslog import fserrors, paths
from azs_syslog.errors import QueueError
from azs_syslog.queue.records import COUNTERS, OTHER_BUSY_TIMEOUT_MS, QueueLimits
from azs_syslog.queue.schema import create_tables, set_up

_F = TypeVar("_F", bound=Callable[..., Any])


def reads(method: _F) -> _F:
    """Turn an SQLite error of a read into a QueueError naming the file."""

    @functools.wraps(method)
    def wrapper(self: QueueStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise QueueError(
                f"{self.path}: cannot read the queue: {exc}",
                fix="check the file (PRAGMA integrity_check) and the free disk space",
            ) from exc

    return wrapper  # type: ignore[return-value]


class QueueStore:
    """A connection to the durable queue. Not thread-safe: one per thread.

    ``durable=True`` (the default, for producers) makes every commit survive an OS crash;
    the worker opens its bookkeeping connection with ``durable=False`` (see the package doc).
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
    def snapshot(cls, path: Path | None = None, *, limits: QueueLimits | None = None) -> Self:
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
                create_tables(self._db)
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
            set_up(self._db, self.path)

    # --- plumbing

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
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

    def _widen_gap(self, first_ms: int, last_ms: int) -> None:
        """Extend the pending gap's time range to cover ``first_ms`` .. ``last_ms``."""
        old_first = self._counter("gap_first_ms")
        old_last = self._counter("gap_last_ms")
        self._db.executemany(
            "UPDATE counters SET value = ? WHERE name = ?",
            [
                (min(old_first, first_ms) if old_first else first_ms, "gap_first_ms"),
                (max(old_last, last_ms), "gap_last_ms"),
            ],
        )

    def _remove(self, ids: Sequence[int]) -> tuple[int, int]:
        """Delete batches (inside ``_write``) with their in-flight and pinned marks; returns
        the events and bytes they held (batches already gone count nothing)."""
        marks = ",".join("?" * len(ids))
        events, nbytes = self._db.execute(
            f"SELECT COALESCE(SUM(count), 0), COALESCE(SUM(nbytes), 0) FROM batches"  # noqa: S608
            f" WHERE id IN ({marks})",
            tuple(ids),
        ).fetchone()
        for table, column in (("batches", "id"), ("inflight", "batch_id"), ("pinned", "batch_id")):
            self._db.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", tuple(ids))  # noqa: S608
        return int(events), int(nbytes)
