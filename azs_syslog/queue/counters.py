"""The queue's counters: what ``forwarder status`` shows, the pending gap, the depth."""

from __future__ import annotations

from azs_syslog.queue.records import Depth, Gap
from azs_syslog.queue.store import QueueStore, reads


class Counting(QueueStore):
    """Reading and adjusting the persistent counters."""

    def add_counters(self, **deltas: int) -> None:
        with self._write():
            self._add(deltas)

    # --- gap reporting

    @reads
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

    @reads
    def depth(self) -> Depth:
        counters = self.counters()
        row = self._db.execute("SELECT created_ms FROM batches ORDER BY id LIMIT 1").fetchone()
        return Depth(
            events=counters["queued_events"],
            bytes=counters["queued_bytes"],
            oldest_ms=int(row[0]) if row else None,
        )

    @reads
    def counters(self) -> dict[str, int]:
        return {
            str(name): int(value)
            for name, value in self._db.execute("SELECT name, value FROM counters")
        }

    @reads
    def inflight_ids(self) -> list[int]:
        return [int(r[0]) for r in self._db.execute("SELECT batch_id FROM inflight ORDER BY 1")]

    @reads
    def batch_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM batches").fetchone()[0])

    # --- repair

    def restore_gap(self, events: int, first_ms: int, last_ms: int) -> None:
        """Add a gap carried over from a damaged queue (``forwarder repair``) to the pending
        one, so the warning event still reports it."""
        with self._write():
            self._add({"gap_events": events})
            self._widen_gap(first_ms, last_ms)
