from __future__ import annotations

import json
import time

import pytest

from azs_syslog.encode.render import Renderer, RenderSettings
from azs_syslog.errors import QueueError
from azs_syslog.queue import NewBatch, Queue
from azs_syslog.queue.ingest import Enqueuer, Rejection, enqueue_records
from tests.test_send_event import windows_event


def test_batches_by_count_keep_raw_lines_and_times() -> None:
    settings = RenderSettings(output_severity="Default")
    rejected: list[Rejection] = []
    records: list[tuple[int, str | bytes | dict[str, object]]] = [
        (i + 1, windows_event(i, level=2 if i % 2 else 4)) for i in range(25)
    ]
    records.append((26, "nope"))
    records.append((27, json.loads(windows_event(99))))  # an already parsed object
    with Queue() as queue:
        result = enqueue_records(
            records,
            queue,
            Renderer(settings),
            settings.key,
            on_reject=rejected.append,
            batch_events=10,
        )
        assert (result.accepted, result.rejected) == (26, 1)
        assert [r.line for r in rejected] == [26]
        batches = queue.next_batches(10)
        assert [b.count for b in batches] == [10, 10, 6]
        # level 4 is filtered out of the wire under Default, but its raw line is kept
        assert [b.messages for b in batches] == [5, 5, 3]
        raw = queue.load_raw(batches[2].id)
        assert raw is not None and len(raw) == 6
        assert b'"event_record_id":99' in raw[-1][1]
        assert all(abs(ms - time.time() * 1000) < 60_000 for ms, _ in raw)
        assert queue.counters()["rejected"] == 1


def test_an_idle_producer_is_committed_within_max_delay() -> None:
    settings = RenderSettings()
    with Queue() as queue, Queue() as observer:
        enqueuer = Enqueuer(queue, Renderer(settings), settings.key, max_delay=0.1)
        enqueuer.start()
        try:
            assert enqueuer.add(1, windows_event(1))
            deadline = time.monotonic() + 5
            while observer.depth().events == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert observer.depth().events == 1  # durable though the batch is not full
        finally:
            enqueuer.close()
        assert enqueuer.accepted == 1


class BrokenQueue:
    def append_batch(self, batch: NewBatch | None, **counts: int) -> None:
        raise QueueError("disk full")


def test_a_write_failure_reaches_the_producer() -> None:
    settings = RenderSettings()
    records = [(i, windows_event(i)) for i in range(5000)]
    with pytest.raises(QueueError, match="disk full"):
        enqueue_records(records, BrokenQueue(), Renderer(settings), settings.key)  # type: ignore[arg-type]
