"""Appending to the queue: the producers' batches, made room for within the bound."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from azs_syslog.errors import QueueError
from azs_syslog.queue.records import NewBatch
from azs_syslog.queue.store import QueueStore, reads


class Appending(QueueStore):
    """The producers' side of the queue (``send-event``, the socket input, audit copies)."""

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
        self._widen_gap(first_ms, last_ms)

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
            events, nbytes = self._remove(ids)
            self._add(
                {
                    "audit_undelivered": events,
                    "queued_events": -events,
                    "queued_bytes": -nbytes,
                }
            )

    @reads
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

    @reads
    def has_batch(self, batch_id: int) -> bool:
        row = self._db.execute("SELECT 1 FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return row is not None
