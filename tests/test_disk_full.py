"""A full disk, at start and while running: the forwarder keeps running, keeps delivering what
is queued, says "disk full" (status and log, once), recovers by itself, and counts every
duplicate it causes. Real tmpfs (tests/tmpfs.py), real rsyslog, real ``forwarder run``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from azs_syslog import paths
from azs_syslog.queue import Queue
from tests.receivers import RsyslogReceiver
from tests.support import (
    Forwarder,
    Status,
    configure,
    record_ids,
    run_cli,
    send_events,
    wait_for_all,
    wait_until,
)
from tests.tmpfs import fill, mounted_tmpfs

pytestmark = pytest.mark.rsyslog

Drills = Callable[[int], contextlib.AbstractContextManager["Drill"]]


def status_report() -> dict[str, object]:
    result = run_cli(["forwarder", "status", "--json"])
    assert result.exit_code in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert isinstance(report, dict)
    return report


def counters() -> dict[str, int]:
    with Queue() as queue:
        return queue.counters()


@dataclass(frozen=True)
class Drill:
    """AZS_SYSLOG_HOME on a small tmpfs, configured for a TCP rsyslog."""

    home: Path
    receiver: RsyslogReceiver
    forwarder: Callable[[], Forwarder]

    def fills_mid_stream(self, count: int) -> tuple[Forwarder, Path]:
        """Half of ``count`` events queued, a forwarder started; once they flow, the receiver
        stops while batches are in flight (they go out again, and the bookkeeping of that can
        only be written once space is back), the other half is queued (surely undelivered when
        the disk fills, however fast the first half went out on a quiet machine), the disk
        filled and the receiver started again. Returns the forwarder and the filler file."""
        send_events(0, count // 2)
        worker = self.forwarder()
        wait_until(self.receiver.lines, 30, "events to flow")
        self.receiver.stop()
        send_events(count // 2, count - count // 2)
        filler = fill(self.home)
        self.receiver.start()
        return worker, filler


@pytest.fixture
def drill(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rsyslog_factory: Callable[..., RsyslogReceiver],
    forwarder: Callable[[], Forwarder],
) -> Drills:
    """``with drill(size_kib) as lab``: a ``Drill`` on a tmpfs of that size."""

    @contextlib.contextmanager
    def mount(size_kib: int) -> Iterator[Drill]:
        home = tmp_path / "home"
        with mounted_tmpfs(home, size_kib):
            monkeypatch.setenv("AZS_SYSLOG_HOME", str(home))
            receiver = rsyslog_factory("tcp")
            configure("tcp", receiver, None, tmp_path)
            yield Drill(home, receiver, forwarder)

    return mount


def caught_up(status: Status) -> bool:
    """No disk-full condition, no queue write owed, nothing queued."""
    return bool(
        status.get("condition") is None
        and status.get("queue_writes_owed") == 0
        and status["queue"]["events"] == 0
    )


def duplicates_at(receiver: RsyslogReceiver) -> int:
    ids = record_ids(receiver.lines())
    return sum(ids.values()) - len(ids)


def test_started_on_a_full_disk_it_delivers_says_so_and_recovers(drill: Drills) -> None:
    with drill(16 << 10) as lab:
        receiver = lab.receiver
        send_events(0, 1000)
        # A status file left by an older forwarder, too small for the next status: it says
        # "stopped" and cannot be rewritten while the disk is full.
        paths.status_file().write_text(
            json.dumps({"pid": 1, "state": "stopped", "updated": time.time() - 3600})
        )
        filler = fill(lab.home)
        worker = lab.forwarder()
        assert wait_for_all(receiver, range(1000)) == 0
        assert worker.proc is not None and worker.proc.poll() is None

        report = status_report()
        assert report["running"] is True, report
        assert report["healthy"] is False
        assert "disk full" in str(report["reason"]), report
        table = run_cli(["forwarder", "status"])
        assert "stopped" not in table.stdout, table.stdout
        assert "disk full" in table.stdout
        log = worker.log.read_text()
        assert log.count("disk full: cannot write the queue") == 1, log
        assert "Traceback" not in log

        filler.unlink()
        worker.wait_for(lambda s: caught_up(s) and s.get("state") == "connected", timeout=30)
        send_events(1000, 100)
        assert wait_for_all(receiver, range(1100)) == 0
        worker.wait_for(lambda s: s["counts"]["sent"] == 1100)
        recovered = status_report()
        assert recovered["running"] is True, recovered
        # Healthy, but for the socket input: its thread could not open the queue on the
        # full disk, and restarting it is its supervisor's job.
        assert recovered["healthy"] is True or "socket input" in str(recovered["reason"])
        assert "disk full" not in str(recovered["reason"])
        counts = counters()
        assert (counts["sent"], counts["resent"]) == (1100, 0)
        worker.stop_cleanly(within=5)
        assert "the disk-full condition is over" in worker.log.read_text()


def test_disk_fills_while_forwarding_nothing_lost_every_duplicate_counted(drill: Drills) -> None:
    count = 6000
    with drill(48 << 10) as lab:
        worker, filler = lab.fills_mid_stream(count)
        receiver = lab.receiver
        worker.wait_for(lambda s: s.get("condition") == "disk full", timeout=30)
        wait_for_all(receiver, range(count))
        assert worker.proc is not None and worker.proc.poll() is None
        report = status_report()
        assert report["running"] is True and "disk full" in str(report["reason"]), report

        filler.unlink()
        worker.wait_for(caught_up, timeout=30)
        counts = counters()
        duplicates = duplicates_at(receiver)
        assert duplicates <= counts["resent"], (duplicates, counts)
        assert counts["sent"] >= count
        worker.stop_cleanly()
        log = worker.log.read_text()
        assert 1 <= log.count("disk full: cannot write the queue") <= 5, log


def test_stopped_while_the_disk_is_full_the_next_run_resends_nothing_uncounted(
    drill: Drills,
) -> None:
    count = 3000
    with drill(32 << 10) as lab:
        first, filler = lab.fills_mid_stream(count)
        receiver = lab.receiver
        wait_for_all(receiver, range(count))
        # Delivered and confirmed by the receiver; deleting them from the queue is owed.
        first.wait_for(
            lambda s: (
                s.get("condition") == "disk full"
                and s["queue"]["in_flight_batches"] == 0
                and bool(s.get("owed"))
            ),
            timeout=30,
        )
        first.stop_cleanly(within=5)
        assert "kept in the status file" in first.log.read_text()

        filler.unlink()
        second = lab.forwarder()
        second.wait_for(
            lambda s: s.get("queue_writes_owed") == 0 and s["queue"]["events"] == 0, timeout=30
        )
        second.stop_cleanly()
        duplicates = duplicates_at(receiver)
        counts = counters()
        assert counts["sent"] == count, counts
        assert duplicates <= counts["resent"], (duplicates, counts)
        log = second.log.read_text()
        assert "the previous run could not write (disk full) are written" in log, log


def test_owed_queue_updates_survive_the_round_trip_through_the_status_file() -> None:
    from azs_syslog.forwarder.owed import QueueWrite, owed_summary, owed_writes
    from azs_syslog.queue import Gap

    backlog = [
        QueueWrite("requeue", at_ms=-1),
        QueueWrite("mark", ids=(1, 2, 3), at_ms=5),
        QueueWrite("confirm", ids=(1, 2), sent=4000, filtered=3),
        QueueWrite("counters", counts=(("rerendered", 2), ("rejected", 0))),
        QueueWrite("clear_gap", gap=Gap(7, 1, 2)),
        QueueWrite("requeue"),
        QueueWrite("mark", ids=(9,), at_ms=6),
    ]
    summary = owed_summary(backlog)
    assert json.loads(json.dumps(summary)) == summary  # plain JSON
    assert summary[1]["marked"] == [[1, 3]] and summary[1]["delivered"] == [[1, 2]]
    writes = owed_writes(summary)
    assert [w.kind for w in writes] == [
        "requeue",
        "mark",
        "confirm",
        "counters",
        "clear_gap",
        "requeue",
        "mark",
    ]
    assert writes[1].ids == (1, 2, 3) and writes[2].ids == (1, 2)
    assert (writes[2].sent, writes[2].filtered) == (4000, 3)
    assert dict(writes[3].counts) == {"rerendered": 2, "rejected": 0}
    assert writes[4].gap is not None and writes[4].gap.events == 7
    assert writes[6].ids == (9,)
