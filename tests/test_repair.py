"""``forwarder repair``: a damaged queue database, really damaged, recovered into a fresh one.

The queues are built with the library as producers build them (rendered batches with their raw
lines), closed (so the WAL is checkpointed into the file), then damaged on disk: pages in the
middle overwritten, the file cut short, or replaced by something that is not a database.
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import stat
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from azs_syslog import paths
from azs_syslog.config import Config
from azs_syslog.encode.render import Renderer, RenderSettings
from azs_syslog.errors import REPAIR_FIX, QueueError, is_damaged_database
from azs_syslog.queue import Queue
from azs_syslog.queue.ingest import BatchBuilder
from tests.conftest import run_cli
from tests.receivers import RsyslogReceiver, rsyslog_factory  # noqa: F401
from tests.support import Forwarder, configure, record_ids
from tests.test_send_event import windows_event

EVENTS = 5000
PER_BATCH = 25
PAGE = 16384
RECORD_ID = re.compile(rb'"event_record_id": ?(\d+)')


def build_queue(events: int = EVENTS, per_batch: int = PER_BATCH, *, level: int = 0) -> Path:
    """A real queue of ``events`` events in batches of ``per_batch``, closed cleanly (accepted
    under security ``level``)."""
    settings = RenderSettings.from_config(Config())
    renderer = Renderer(settings)
    with Queue() as queue:
        for first in range(0, events, per_batch):
            builder = BatchBuilder(renderer, settings.key, level=level)
            for record in range(first, min(events, first + per_batch)):
                builder.add(windows_event(record), 1_700_000_000_000 + record)
            batch, _ = builder.take()
            queue.append_batch(batch)
        queue.mark_sent([1, 2])  # two batches in flight: they go out again, counted
        assert queue.depth().events == events
    path = paths.queue_file()
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return path


def queued_record_ids() -> Counter[int]:
    """The record ids of every event in the queue at the usual path (from its raw lines)."""
    ids: Counter[int] = Counter()
    with Queue() as queue:
        batch_ids = [b.id for b in queue.next_batches(100_000)]
        for batch_id in batch_ids:
            for _, line in queue.load_raw(batch_id) or []:
                match = RECORD_ID.search(line)
                assert match, line[:200]
                ids[int(match.group(1))] += 1
    return ids


def damage_middle_pages(path: Path, pages: int = 6) -> None:
    size = path.stat().st_size
    assert size > 40 * PAGE, size
    first = (size // PAGE) // 2
    noise = random.Random(9)
    with path.open("r+b") as handle:
        for page in range(first, first + pages):
            handle.seek(page * PAGE + 100)
            handle.write(bytes(noise.getrandbits(8) for _ in range(PAGE - 200)))


def repair_json() -> tuple[int, dict[str, object]]:
    result = run_cli(["forwarder", "repair", "--json"])
    return result.exit_code, json.loads(result.stdout)


def test_damaged_pages_in_the_middle_lose_only_their_rows() -> None:
    path = build_queue()
    damage_middle_pages(path)
    # The damage is real: the queue refuses to be read, and the error names the repair.
    with pytest.raises(QueueError) as refused, Queue() as queue:
        for batch in queue.next_batches(100_000):
            queue.load_raw(batch.id)
    assert "malformed" in str(refused.value)
    assert "azs-syslog forwarder repair" in (refused.value.fix or "")

    code, report = repair_json()
    assert code == 3, report
    recovered, lost = report["events_recovered"], report["events_lost"]
    assert isinstance(recovered, int) and isinstance(lost, int)
    assert recovered + lost == EVENTS
    assert 0 < lost < EVENTS // 4  # six pages of ~600: a few batches, not most of them
    assert report["batches_lost"] and report["batches_recovered"]
    assert report["batches_lost"] * PER_BATCH >= lost  # type: ignore[operator]
    assert report["counters_recovered"] is True
    # What the report says is what the fresh queue holds, each event once, all of them ours.
    ids = queued_record_ids()
    assert sum(ids.values()) == len(ids) == recovered
    assert set(ids) <= set(range(EVENTS))
    with Queue() as queue:
        assert queue.depth().events == recovered
        counters = queue.counters()
    assert counters["accepted"] == EVENTS
    assert counters["resent"] == 2 * PER_BATCH
    # The damaged file is kept beside it, private.
    moved = [Path(p) for p in report["moved_to"]]  # type: ignore[attr-defined]
    assert moved and moved[0].parent == path.parent
    assert moved[0].name.startswith("queue.sqlite3.damaged-")
    assert stat.S_IMODE(moved[0].stat().st_mode) == 0o600
    # Healthy now.
    assert run_cli(["forwarder", "repair"]).exit_code == 0


@pytest.mark.parametrize(
    ("seed", "where", "pages"),
    [(1, 0.2, 1), (2, 0.5, 3), (3, 0.8, 2), (4, 0.35, 12), (5, 0.95, 1)],
)
def test_damage_anywhere_is_accounted_for(seed: int, where: float, pages: int) -> None:
    """Wherever the damage falls (table leaves, overflow pages of the blobs, the last pages),
    every event is either in the fresh queue, once, or counted as lost."""
    path = build_queue(events=2000)
    total_pages = path.stat().st_size // PAGE
    noise = random.Random(seed)
    with path.open("r+b") as handle:
        for _ in range(pages):
            page = max(2, min(total_pages - 1, int(total_pages * where) + noise.randint(-3, 3)))
            # From the page's start: its type and cell pointers, or an overflow page's link
            # (damage in the middle of a blob's bytes is invisible to SQLite, which keeps no
            # checksums of the data: see test_damage_inside_a_blob).
            handle.seek(page * PAGE)
            handle.write(bytes(noise.getrandbits(8) for _ in range(noise.randint(16, PAGE // 2))))
    code, report = repair_json()
    recovered, lost = report["events_recovered"], report["events_lost"]
    assert isinstance(recovered, int) and isinstance(lost, int)
    assert recovered + lost == 2000, report
    assert code == (0 if lost == 0 and report["batches_lost"] == 0 else 3), report
    ids = queued_record_ids()
    assert sum(ids.values()) == len(ids) == recovered
    assert set(ids) <= set(range(2000))


def test_truncated_file_keeps_its_first_part() -> None:
    path = build_queue()
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    code, report = repair_json()
    assert code == 3, report
    recovered, lost = report["events_recovered"], report["events_lost"]
    assert isinstance(recovered, int) and isinstance(lost, int)
    assert recovered > 0 and lost > 0 and recovered + lost == EVENTS
    ids = queued_record_ids()
    assert sum(ids.values()) == recovered
    assert set(ids) <= set(range(EVENTS))


def test_not_a_database_gives_a_fresh_empty_queue() -> None:
    path = paths.queue_file()
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(64 * 1024))
    queue_error = run_cli(["forwarder", "status"])
    assert queue_error.exit_code == 1
    assert "azs-syslog forwarder repair" in queue_error.stderr
    result = run_cli(["forwarder", "repair"])
    assert result.exit_code == 1, result.stderr
    assert "not a database" in result.stderr
    assert "recovered 0 batches (0 events)" in result.stderr
    assert "the counters could not be read" in result.stderr
    with Queue() as queue:
        assert queue.depth().events == 0
    assert len(list(path.parent.glob("queue.sqlite3.damaged-*"))) == 1


def test_healthy_queue_is_left_untouched() -> None:
    path = build_queue(events=200)
    before = path.read_bytes()
    result = run_cli(["forwarder", "repair"])
    assert result.exit_code == 0, result.stderr
    assert "nothing to repair" in result.stderr
    assert path.read_bytes() == before
    assert list(path.parent.glob("*.damaged-*")) == []
    code, report = repair_json()
    assert code == 0 and report["repaired"] is False


def test_no_queue_at_all_is_nothing_to_repair() -> None:
    result = run_cli(["forwarder", "repair"])
    assert result.exit_code == 0, result.stderr
    assert "nothing to repair" in result.stderr
    assert not paths.queue_file().exists()


def test_refused_while_a_forwarder_runs(
    forwarder: Callable[[], Forwarder],
) -> None:
    path = build_queue(events=100)
    worker = forwarder()
    worker.wait_for(lambda s: True)
    before = sorted(p.name for p in path.parent.iterdir())
    result = run_cli(["forwarder", "repair"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: cannot repair the queue: a forwarder is running for this")
    assert f"(pid {worker.proc.pid}, " in lines[0]  # type: ignore[union-attr]
    assert "stop the forwarder first" in result.stderr
    assert len(lines) == 2  # the error and its fix, nothing else
    assert sorted(p.name for p in path.parent.iterdir()) == before


@pytest.mark.rsyslog
def test_recovered_events_reach_rsyslog(
    rsyslog_factory: Callable[..., RsyslogReceiver],  # noqa: F811
    forwarder: Callable[[], Forwarder],
    tmp_path: Path,
) -> None:
    receiver = rsyslog_factory("tcp")
    configure("tcp", receiver, None, tmp_path)
    path = build_queue()
    damage_middle_pages(path)
    code, report = repair_json()
    assert code == 3, report
    expected = queued_record_ids()
    assert sum(expected.values()) == report["events_recovered"]
    worker = forwarder()
    worker.wait_for(lambda s: s["queue"]["events"] == 0, timeout=60)
    received = record_ids(receiver.wait_for_lines(len(expected), timeout=30))
    assert set(received) == set(expected)
    code, _ = worker.terminate()
    assert code == 0


def test_only_damage_names_the_repair(tmp_path: Path) -> None:
    """Damage errors name the repair; other errors keep the fix their raiser gave."""
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"x" * 4096)
    with pytest.raises(sqlite3.DatabaseError) as not_a_db:
        sqlite3.connect(garbage).execute("SELECT * FROM sqlite_master").fetchall()
    assert is_damaged_database(not_a_db.value)
    try:
        raise QueueError("cannot open", fix="check permissions") from not_a_db.value
    except QueueError as exc:
        assert exc.fix == REPAIR_FIX
    with pytest.raises(sqlite3.OperationalError) as cannot_open:
        sqlite3.connect(tmp_path / "missing-dir" / "q.db")
    assert not is_damaged_database(cannot_open.value)
    try:
        raise QueueError("cannot open", fix="check permissions") from cannot_open.value
    except QueueError as exc:
        assert exc.fix == "check permissions"
    assert QueueError("busy", fix="wait").fix == "wait"


def test_damage_inside_a_blob_is_found_by_the_batch_check() -> None:
    """Bytes damaged inside a batch's input lines leave SQLite's structure intact (and
    integrity_check content); the repair's own check of every batch finds them."""
    path = build_queue(events=500)
    data = bytearray(path.read_bytes())
    # The raw lines of a batch are stored compressed (zlib, behind an "AZR2" header): flip a
    # byte inside one batch's compressed lines; their checksum no longer matches.
    headers = [found.start() for found in re.finditer(b"AZR2", data)]
    assert len(headers) == 500 // PER_BATCH
    header_at = headers[len(headers) // 2]
    data[header_at + 8 + 40] ^= 0x40
    path.write_bytes(bytes(data))
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    code, report = repair_json()
    assert report["repaired"] is True
    assert "stored lines of batch" in str(report["problem"])
    assert code == 3
    assert report["batches_lost"] == 1
    assert report["events_lost"] == PER_BATCH
    assert sum(queued_record_ids().values()) == 500 - PER_BATCH


def test_recovered_batches_keep_the_level_they_were_accepted_under() -> None:
    """A batch accepted under TLS is still held, after a repair, from a weaker transport."""
    path = build_queue(2000, level=2)
    damage_middle_pages(path, pages=2)
    code, report = repair_json()
    assert code == 3, report
    with Queue() as queue:
        batches = queue.next_batches(100_000)
    assert batches
    assert {batch.level for batch in batches} == {2}
