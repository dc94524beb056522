"""The worker's side of the queue: claiming the next batches to send, and settling them
(marked sent, confirmed and deleted, or put back in line)."""

from __future__ import annotations

from collections.abc import Sequence

from azs_syslog.queue.records import Held, QueuedBatch, decode_raw, lengths_from_bytes, now_ms
from azs_syslog.queue.schema import HELD
from azs_syslog.queue.store import QueueStore, reads


class Settling(QueueStore):
    """What the worker does with the queued batches."""

    @reads
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
        held = f" AND NOT ({HELD})" if level is not None else ""  # constant SQL, bound values
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

    @reads
    def held(self, level: int, generation: int, *, stale: int = 0) -> Held:
        """The batches a worker running configuration ``generation`` at security ``level``
        must not send: accepted under a higher level and not released down to this one."""
        events, batches, highest = self._db.execute(
            "SELECT COALESCE(SUM(count), 0), COUNT(*), COALESCE(MAX(level), 0) FROM batches"  # noqa: S608
            f" WHERE {HELD}",
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
                f"SELECT COALESCE(SUM(count), 0) FROM batches WHERE {HELD}",  # noqa: S608
                params,
            ).fetchone()
            self._db.execute(
                f"UPDATE batches SET released_level = :level WHERE {HELD}",  # noqa: S608
                params,
            )
            self._add({"released": int(events)})
        return int(events)

    @reads
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
            events, nbytes = self._remove(ids)
            self._add(
                {
                    "sent": sent,
                    "filtered": filtered,
                    "queued_events": -events,
                    "queued_bytes": -nbytes,
                }
            )
        return events

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
