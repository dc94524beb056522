from __future__ import annotations

import json
import time

import pytest

from azs_syslog.encode.render import Renderer, RenderSettings
from azs_syslog.errors import EventError, QueueError
from azs_syslog.queue import NewBatch, Queue
from azs_syslog.queue.batching import as_text
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


@pytest.mark.parametrize(
    "line",
    [
        windows_event(7).encode(),
        windows_event(7, level=4).encode(),
        b'{"type": "windows", "host": "h\xc3\xa9", "event_id": 1}',
        b'{"type": "windows", "host": "\xff"}',  # not UTF-8
        b'{\x00"\x00t\x00y\x00p\x00e\x00"\x00:\x001\x00}\x00',  # UTF-16 LE without a BOM
        b"\xef\xbb\xbf" + windows_event(7).encode(),  # a UTF-8 BOM: json.loads skips it
        b'{"type": "pep", "event": "\xed\xa0\x80"}',  # an encoded surrogate
        b"[1]",
    ],
)
def test_bytes_lines_render_as_their_text(line: bytes) -> None:
    """``as_text`` (bytes read by the socket input, --jobs or the worker, as text so that the
    renderer takes its fused path) changes nothing: the same message or the same refusal."""

    def outcome(value: str | bytes) -> object:
        try:
            return Renderer(RenderSettings()).render_line(value, 1_795_687_200_000)
        except EventError as exc:
            return str(exc)

    assert outcome(as_text(line)) == outcome(line)
