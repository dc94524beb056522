from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from azs_syslog.encode.json_text import as_text
from azs_syslog.encode.render import Renderer, RenderSettings
from azs_syslog.errors import EventError, QueueError
from azs_syslog.events import load_json, parse_event
from azs_syslog.queue import NewBatch, Queue, decode_raw
from azs_syslog.queue.ingest import (
    Enqueuer,
    IngestFailure,
    Rejection,
    enqueue_chunks,
    enqueue_records,
)
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
        enqueue_records(records, BrokenQueue(), Renderer(settings), settings.key)


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
    renderer takes its fused path; ``render_line`` applies it) changes nothing: the same
    message or the same refusal as the reference path on the bytes."""

    def outcome(render: Callable[[Renderer], bytes | None]) -> object:
        try:
            return render(Renderer(RenderSettings()))
        except EventError as exc:
            return str(exc)

    accepted = 1_795_687_200_000
    on_bytes = outcome(lambda r: r.render_event(parse_event(load_json(line)), accepted))
    assert outcome(lambda r: r.render_line(as_text(line), accepted)) == on_bytes
    assert outcome(lambda r: r.render_line(line, accepted)) == on_bytes


class _Recorder:
    """A queue that keeps what is appended (batch sizes, raw lines, counters) and fails from
    its ``fail_at``-th append on, as a full disk would."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.appends = 0
        self.batches: list[tuple[int, int, list[bytes]]] = []
        self.rejected = 0
        self.truncated = 0

    def append_batch(
        self, batch: NewBatch | None, *, rejected: int = 0, truncated: int = 0
    ) -> None:
        self.appends += 1
        if self.fail_at is not None and self.appends >= self.fail_at:
            raise QueueError("disk full")
        if batch is not None:
            lines = [line for _, line in decode_raw(batch.raw)]
            self.batches.append((batch.count, len(batch.lengths) // 4, lines))
        self.rejected += rejected
        self.truncated += truncated


def _mixed_input(count: int) -> list[tuple[int, str | bytes | dict[str, object]]]:
    records: list[tuple[int, str | bytes | dict[str, object]]] = []
    for i in range(count):
        line_no = 2 * i + 1  # a blank line between records: numbers are not contiguous
        if i % 11 == 5:
            records.append((line_no, "not json"))
        elif i % 13 == 7:
            records.append((line_no, b'{"type": "windows", "host": "\xff"}'))
        else:
            records.append((line_no, windows_event(i, level=2 if i % 3 else 4)))
    return records


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64])
@pytest.mark.parametrize(
    ("batch_events", "batch_bytes", "fail_at"),
    [(10, 1 << 30, None), (1000, 9000, None), (10, 1 << 30, 3), (1000, 9000, 2), (5, 4000, 1)],
)
def test_chunks_are_batched_committed_and_reported_as_records_one_by_one(
    chunk_size: int, batch_events: int, batch_bytes: int, fail_at: int | None
) -> None:
    """``enqueue_chunks`` (a chunk rendered at once, handed to the batch at once) gives the
    same batches, rejections, counts and failure report as the records added one by one."""
    records = _mixed_input(60)
    settings = RenderSettings(output_severity="Default")
    outcomes = []
    for mode in ("one by one", "list", "chunks"):
        queue = _Recorder(fail_at)
        rejected: list[Rejection] = []
        options: dict[str, Any] = {
            "on_reject": rejected.append,
            "batch_events": batch_events,
            "batch_bytes": batch_bytes,
        }
        renderer = Renderer(settings)
        try:
            if mode == "chunks":
                chunks = [
                    (
                        [n for n, _ in records[i : i + chunk_size]],
                        [r for _, r in records[i : i + chunk_size]],
                    )
                    for i in range(0, len(records), chunk_size)
                ]
                result = enqueue_chunks(chunks, queue, renderer, settings.key, **options)  # type: ignore[arg-type]
            else:
                given = iter(records) if mode == "one by one" else records
                result = enqueue_records(given, queue, renderer, settings.key, **options)
            failure = None
        except IngestFailure as exc:
            result = exc.result
            failure = (exc.not_queued, exc.first_lines)
        outcomes.append((result, failure, queue.batches, queue.rejected, rejected))
    assert outcomes[1] == outcomes[0]
    assert outcomes[2] == outcomes[0]
    result, failure, batches, _, rejected = outcomes[0]
    if fail_at is None:
        assert [r.line for r in rejected][:3] == [11, 15, 33]
        assert failure is None and result.accepted == sum(b[0] for b in batches)
    else:
        assert failure is not None and failure[0] > 0


def test_an_unexpected_render_error_mid_chunk_keeps_what_was_rendered_before_it() -> None:
    """As one by one: the events before the failing one are committed, then the error is
    raised (an internal error, not a rejection)."""

    class Breaking:
        truncated = 0

        def render_line(self, line: str | bytes, accepted_ms: int) -> bytes:
            if line == "boom":
                raise RuntimeError("renderer bug")
            return b"5 hello"

    queue = _Recorder()
    chunk: tuple[list[int], list[str | bytes | dict[str, Any]]] = (
        [1, 2, 3, 4],
        ["a", "b", "boom", "c"],
    )
    with pytest.raises(RuntimeError):
        enqueue_chunks([chunk], queue, Breaking(), "key")  # type: ignore[arg-type]
    assert [(count, lines) for count, _, lines in queue.batches] == [(2, [b"a", b"b"])]
