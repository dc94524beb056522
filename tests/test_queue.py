from __future__ import annotations

import signal
import sqlite3
import stat
import struct
import subprocess
import sys
import time
from array import array
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from azs_syslog import paths
from azs_syslog.encode.render import Renderer, RenderSettings
from azs_syslog.errors import QueueError
from azs_syslog.queue import (
    SCHEMA_VERSION,
    NewBatch,
    Queue,
    QueueLimits,
    decode_raw,
    encode_raw,
    lengths_from_bytes,
    lengths_to_bytes,
)
from azs_syslog.queue.ingest import BatchBuilder
from tests.conftest import REPO_ROOT
from tests.support import start_python
from tests.test_send_event import windows_event


def make_batch(
    first: int, count: int, *, created_ms: int | None = None, key: str = "k1"
) -> NewBatch:
    """A batch of ``count`` events numbered from ``first``: message ``<n> ev<i>``."""
    messages = [f"ev{i}".encode() for i in range(first, first + count)]
    framed = [f"{len(m)} ".encode() + m for m in messages]
    times = [created_ms or 1000 + first] * count
    return NewBatch(
        count=count,
        created_ms=times[0],
        render_key=key,
        wire=b"".join(framed),
        lengths=lengths_to_bytes(len(f) for f in framed),
        raw=encode_raw(times, [b'{"id": %d}' % i for i in range(first, first + count)]),
    )


def test_append_read_confirm_and_reopen() -> None:
    with Queue() as queue:
        queue.append_batch(make_batch(0, 3), rejected=2, truncated=1)
        queue.append_batch(make_batch(3, 2))
        depth = queue.depth()
        assert depth.events == 5
        assert depth.oldest_ms == 1000
        batches = queue.next_batches(10)
        assert [b.count for b in batches] == [3, 2]
        assert batches[0].wire == b"3 ev03 ev13 ev2"
        assert list(batches[0].lengths) == [5, 5, 5]
        assert queue.load_raw(batches[1].id) == [(1003, b'{"id": 3}'), (1003, b'{"id": 4}')]
        queue.mark_sent([batches[0].id])
        assert [b.id for b in queue.next_batches(10)] == [batches[1].id]

    with Queue() as queue:  # everything survives a reopen
        assert queue.inflight_ids() == [batches[0].id]
        assert queue.confirm([batches[0].id], sent=3) == 3
        counters = queue.counters()
        assert counters["accepted"] == 5
        assert counters["sent"] == 3
        assert counters["rejected"] == 2
        assert counters["truncated"] == 1
        assert queue.depth().events == 2
        assert queue.depth().oldest_ms == 1003


def test_requeue_sent_puts_batches_back_first_and_counts_them() -> None:
    with Queue() as queue:
        for n in range(4):
            queue.append_batch(make_batch(n * 10, 10))
        first = queue.next_batches(2)
        queue.mark_sent([b.id for b in first])
        later = queue.next_batches(10, after_id=first[-1].id)
        assert len(later) == 2
        assert queue.requeue_sent() == 20
        assert [b.id for b in queue.next_batches(10)] == [b.id for b in first + later]
        assert queue.counters()["resent"] == 20
        assert queue.inflight_ids() == []


def test_full_queue_drops_oldest_and_records_one_gap() -> None:
    limits = QueueLimits(max_events=1000, max_bytes=1 << 30)
    with Queue(limits=limits) as queue:
        for n in range(15):
            queue.append_batch(make_batch(n * 100, 100, created_ms=10_000 + n))
        depth = queue.depth()
        assert depth.events == 1000
        counters = queue.counters()
        assert counters["dropped"] == 500
        assert counters["accepted"] == 1500
        gap = queue.pending_gap()
        assert gap is not None
        assert (gap.events, gap.first_ms, gap.last_ms) == (500, 10_000, 10_004)
        # the survivors are the newest, in order
        assert [b.created_ms for b in queue.next_batches(20)] == list(range(10_005, 10_015))
        # one more overflow after the gap was read stays pending when it is cleared
        queue.append_batch(make_batch(9000, 100, created_ms=20_000))
        queue.clear_gap(gap)
        rest = queue.pending_gap()
        assert rest is not None
        assert rest.events == 100
        queue.clear_gap(rest)
        assert queue.pending_gap() is None
        assert queue.counters()["dropped"] == 600


def test_byte_bound_and_a_batch_larger_than_the_bound() -> None:
    one = make_batch(1000, 50)  # every batch here has 4-digit numbers: the same size
    limits = QueueLimits(max_events=10**6, max_bytes=one.nbytes * 3)
    with Queue(limits=limits) as queue:
        for n in range(5):
            queue.append_batch(make_batch(1000 + n * 50, 50))
        assert queue.batch_count() == 3
        assert queue.depth().bytes <= limits.max_bytes
        big = make_batch(10_000, 400)
        queue.append_batch(big)  # kept, alone, rather than thrown away unseen
        assert queue.batch_count() == 1
        assert queue.depth().events == 400
        assert queue.counters()["dropped"] == 250


def test_dropping_a_batch_in_flight_is_not_confirmed_twice() -> None:
    with Queue(limits=QueueLimits(max_events=100)) as queue:
        queue.append_batch(make_batch(0, 100))
        (batch,) = queue.next_batches(1)
        queue.mark_sent([batch.id])
        queue.append_batch(make_batch(100, 100))
        assert queue.inflight_ids() == []
        assert queue.confirm([batch.id], sent=0) == 0
        assert queue.depth().events == 100


def test_files_are_private(azs_home: Path) -> None:
    with Queue() as queue:
        queue.append_batch(make_batch(0, 1))
        path = paths.queue_file()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        wal = Path(str(path) + "-wal")
        assert wal.exists()
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600


@given(
    st.lists(
        st.tuples(st.integers(min_value=-(2**62), max_value=2**62), st.binary(max_size=50)),
        max_size=30,
    )
)
def test_raw_round_trip(pairs: list[tuple[int, bytes]]) -> None:
    blob = encode_raw([t for t, _ in pairs], [line for _, line in pairs])
    assert decode_raw(blob) == pairs


def uncompressed_raw(times: list[int], lines: list[bytes]) -> bytes:
    """The raw lines as schema version 2 stored them: magic, count, times, lengths, lines."""
    return b"".join(
        (
            b"AZR1",
            struct.pack("<I", len(lines)),
            array("q", times).tobytes(),
            array("I", map(len, lines)).tobytes(),
            *lines,
        )
    )


def test_raw_lines_are_stored_compressed() -> None:
    """One copy per event, in effect: the raw lines kept for a new rendering add at most a
    tenth to the framed messages of realistic events (and the bound counts what is stored)."""
    settings = RenderSettings()
    builder = BatchBuilder(Renderer(settings), settings.key)
    for record in range(2000):
        builder.add(windows_event(record), 1_700_000_000_000 + record)
    batch, _ = builder.take()
    assert batch is not None and batch.count == 2000
    assert batch.raw.startswith(b"AZR2")
    assert batch.nbytes <= 1.1 * len(batch.wire)
    pairs = decode_raw(batch.raw, strict=True)
    assert pairs[7] == (1_700_000_000_007, windows_event(7).encode())
    with Queue() as queue:
        queue.append_batch(batch)
        assert queue.depth().bytes == batch.nbytes


def test_damaged_raw_lines_are_a_queue_error() -> None:
    lines = [b'{"id": 1}', b'{"id": 22}']
    compressed = bytearray(encode_raw([1, 2], lines))
    compressed[12] ^= 0x40
    with pytest.raises(QueueError):
        decode_raw(bytes(compressed))
    old = uncompressed_raw([1, 2], lines)
    assert decode_raw(old, strict=True) == [(1, lines[0]), (2, lines[1])]
    with pytest.raises(QueueError):  # one line cut short: the lengths overrun the blob
        decode_raw(old[:-1], strict=True)


def test_a_version_2_queue_keeps_working() -> None:
    """A queue file of schema version 2 (raw lines uncompressed) is taken as it is: its
    batches are read (and rendered again) from the old layout, new ones are compressed."""
    with Queue() as queue:
        queue.append_batch(make_batch(0, 3))
    path = paths.queue_file()
    db = sqlite3.connect(path)
    old = uncompressed_raw([1000] * 3, [b'{"id": %d}' % i for i in range(3)])
    db.execute("UPDATE batches SET raw = ?", (old,))
    db.execute("UPDATE counters SET value = 2 WHERE name = 'schema_version'")
    db.commit()
    db.close()
    with Queue() as queue:
        assert queue.counters()["schema_version"] == SCHEMA_VERSION == 3
        (batch,) = queue.next_batches()
        assert batch.wire == b"3 ev03 ev13 ev2"
        assert queue.load_raw(batch.id) == [(1000, b'{"id": %d}' % i) for i in range(3)]
        queue.append_batch(make_batch(3, 2))
        second = queue.next_batches(after_id=batch.id)[0]
        assert queue.load_raw(second.id) == [(1003, b'{"id": 3}'), (1003, b'{"id": 4}')]


def test_lengths_round_trip() -> None:
    assert list(lengths_from_bytes(lengths_to_bytes([1, 2, 70000]))) == [1, 2, 70000]


WRITER = r"""
import sys
from azs_syslog.queue import Queue
from tests.test_queue import make_batch
queue = Queue()
n = int(sys.argv[1])
size = int(sys.argv[2])
for i in range(n):
    queue.append_batch(make_batch(i * size, size))
    if i == 0:
        print("started", flush=True)
print("done", flush=True)
"""


def start_writer(n: int, size: int) -> subprocess.Popen[bytes]:
    return start_python(["-c", WRITER, str(n), str(size)], stdout=subprocess.PIPE, cwd=REPO_ROOT)


def wait_for_batches(minimum: int, timeout: float = 30.0) -> None:
    """Wait until the queue holds ``minimum`` batches (a writer is committing)."""
    deadline = time.monotonic() + timeout
    with Queue() as queue:
        while time.monotonic() < deadline:
            if queue.batch_count() >= minimum:
                return
            time.sleep(0.005)  # poll interval, not a synchronisation
    raise AssertionError(f"fewer than {minimum} batches after {timeout} s")


def check_consistent(queue: Queue) -> int:
    """Every stored batch is whole; the counters match the rows. Returns the events held."""
    total = 0
    for batch in queue.next_batches(100_000):
        raw = queue.load_raw(batch.id)
        assert raw is not None
        assert len(raw) == batch.count == len(batch.lengths)
        assert sum(batch.lengths) == len(batch.wire)
        first = int(raw[0][1].split()[1].rstrip(b"}"))
        assert batch.wire == make_batch(first, batch.count).wire
        total += batch.count
    assert queue.depth().events == total
    assert queue.counters()["accepted"] == total
    return total


def test_writer_killed_mid_append_leaves_whole_batches() -> None:
    Queue().close()
    for _attempt in range(3):
        with Queue() as queue:
            before = queue.batch_count()
        proc = start_writer(100_000, 500)
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"started\n"
        wait_for_batches(before + 3)  # killed while appending, a few batches in
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        with Queue() as queue:
            assert queue._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert check_consistent(queue) > 0


def test_concurrent_writers_all_land() -> None:
    Queue().close()
    procs = [start_writer(40, 25) for _ in range(3)]
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert out.endswith(b"done\n")
    with Queue() as queue:
        assert queue.depth().events == 3 * 40 * 25
        assert queue.batch_count() == 120


def test_unreadable_queue_is_a_queue_error(tmp_path: Path) -> None:
    bad = tmp_path / "q.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    try:
        Queue(bad)
    except Exception as exc:
        from azs_syslog.errors import QueueError

        assert isinstance(exc, QueueError)
        assert str(bad) in str(exc)
    else:
        raise AssertionError("opening a corrupt file must fail")
    assert sqlite3.sqlite_version


def test_many_processes_opening_a_new_queue_at_once_all_succeed(tmp_path: Path) -> None:
    # send-event --jobs N starts N producers on a queue that may not exist yet: switching a
    # new file to WAL can report "locked" without honouring the busy timeout.
    import subprocess

    from tests.conftest import REPO_ROOT

    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from azs_syslog.queue import Queue\n"
        "start = float(sys.argv[2])\n"
        "time.sleep(max(0.0, start - time.time()))\n"
        "Queue(Path(sys.argv[1])).close()\n"
    )
    for round_ in range(5):
        path = tmp_path / f"round{round_}" / "queue.sqlite3"
        start = time.time() + 0.5
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", code, str(path), str(start)],
                cwd=REPO_ROOT,
                stderr=subprocess.PIPE,
            )
            for _ in range(6)
        ]
        failures = []
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            if proc.returncode != 0:
                failures.append(err.decode(errors="replace")[-300:])
        assert failures == [], failures
