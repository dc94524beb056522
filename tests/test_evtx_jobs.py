"""An ``.evtx`` file read in parts (whole chunks, each part a file of its own for the parser):
``send-event --jobs N`` on an ``.evtx`` file; and the commits made behind the producer.

Every fixture file, cut at several places, gives the same records, in the same order, with
the same numbers, and the same reports of its damaged parts, as the file read whole; the CLI
queues the same lines with ``--jobs 2`` or ``3`` as with one process.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from pathlib import Path

import pytest

from azs_syslog.encode.render import Renderer, RenderSettings
from azs_syslog.inputs.evtx import (
    chunk_count,
    iter_evtx_events,
    iter_evtx_part,
    split_chunks,
)
from azs_syslog.queue import NewBatch, Queue
from azs_syslog.queue.ingest import enqueue_records
from tests.conftest import run_cli
from tests.test_send_event import windows_event

FIXTURES = Path(__file__).parent / "fixtures" / "evtx"
EVTX_FILES = sorted(FIXTURES.glob("*.evtx"))
BAD_CHUNK = FIXTURES / "sample_with_a_bad_chunk_magic.evtx"
AFTER = re.compile(r" \((after record \d+|before the first record)\)")


def _cuts(count: int) -> list[list[int]]:
    """Ways to cut ``count`` chunks: whole, in two, and in four uneven parts."""
    cuts = [[0, count], [0, count // 2, count]]
    uneven = sorted({0, 1, count // 3, count // 2 + 1, count})
    if len(uneven) > 2:
        cuts.append(uneven)
    return cuts


@pytest.mark.parametrize("path", EVTX_FILES, ids=lambda path: path.name)
def test_parts_read_as_the_whole_file(path: Path) -> None:
    whole_skips: list[str] = []
    whole = list(iter_evtx_events(str(path), whole_skips.append))
    assert whole, "every fixture has readable records"
    for cuts in _cuts(chunk_count(path)):
        skips: list[str] = []
        records = [
            record
            for start, end in itertools.pairwise(cuts)
            for record in iter_evtx_part(path, start, end, skips.append)
        ]
        assert records == whole, f"cut at {cuts}"
        # Which part was skipped and why are the same; the record it came after is the
        # last of the nearest readable chunk before a part (its header's), which a part
        # starting just after a damaged chunk cannot take from the records read before.
        assert [AFTER.sub("", skip) for skip in skips] == [
            AFTER.sub("", skip) for skip in whole_skips
        ], f"cut at {cuts}"
        if path != BAD_CHUNK:
            assert skips == whole_skips


@pytest.mark.parametrize("path", EVTX_FILES, ids=lambda path: path.name)
def test_split_chunks_covers_the_file_with_the_numbers_of_its_records(path: Path) -> None:
    count = chunk_count(path)
    assert count == -(-(path.stat().st_size - 4096) // 65536)
    for jobs in (1, 2, 3, 64):
        parts = split_chunks(path, jobs)
        assert len(parts) == max(1, min(jobs, count))
        assert parts[0][0] == 0 and parts[-1][1] == count and parts[-1][3] is None
        for (_, end, _, last), (start, _, first, _) in itertools.pairwise(parts):
            assert end == start and last is not None and first == last + 1


def _queued_lines() -> list[bytes]:
    with Queue() as queue:
        lines: list[bytes] = []
        for batch in queue.next_batches(1000):
            raw = queue.load_raw(batch.id)
            assert raw is not None
            lines += [line for _, line in raw]
    return lines


@pytest.mark.parametrize("name", ["security.evtx", BAD_CHUNK.name])
def test_with_jobs_an_evtx_file_queues_the_same_events_as_one_process(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = FIXTURES / name
    queued: list[list[bytes]] = []
    outputs: list[tuple[object, ...]] = []
    for jobs in ("1", "2", "3"):
        monkeypatch.setenv("AZS_SYSLOG_HOME", str(tmp_path / jobs))
        result = run_cli(["send-event", "--jobs", jobs, "--json", str(path)])
        assert result.exit_code == (0 if path != BAD_CHUNK else 3), result.stderr
        report = json.loads(result.stdout)
        outputs.append((report["accepted"], report["rejected"], len(report["skipped"])))
        queued.append(_queued_lines())
    assert outputs[1] == outputs[0] and outputs[2] == outputs[0]
    assert outputs[0][0] == len(queued[0]) > 0
    # The parts' batches interleave: the same lines, in the file's order within a part.
    assert sorted(queued[1]) == sorted(queued[0]) and sorted(queued[2]) == sorted(queued[0])


def test_jobs_split_json_lines_and_evtx_files_only(tmp_path: Path) -> None:
    result = run_cli(["send-event", "--jobs", "2", "--input-format", "xml", str(BAD_CHUNK)])
    assert result.exit_code == 2
    assert "--jobs reads JSON lines and .evtx files only" in result.stderr
    xml = tmp_path / "events.xml"
    xml.write_text("<Events></Events>\n")
    result = run_cli(["send-event", "--jobs", "2", str(xml)])
    assert "--jobs splits JSON lines and .evtx files only; reading" in result.stderr


class _ThreadRecorder:
    """A queue that notes which thread each append runs in, failing from the third on."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def append_batch(self, batch: NewBatch | None, **counts: int) -> None:
        self.threads.append(threading.current_thread().name)
        if len(self.threads) >= 3:
            from azs_syslog.errors import QueueError

            raise QueueError("disk full")


def test_batches_are_committed_behind_the_producer_and_a_failure_is_counted_whole() -> None:
    """The commits run in the committing thread; when one fails, its batch and everything
    built after it are not queued, and every record is counted once: accepted, rejected or
    not queued."""
    from azs_syslog.queue.ingest import IngestFailure

    settings = RenderSettings()
    records: list[tuple[int, str | bytes | dict[str, object]]] = [
        (n, windows_event(n)) for n in range(1, 101)
    ]
    queue = _ThreadRecorder()
    with pytest.raises(IngestFailure) as failure:
        enqueue_records(records, queue, Renderer(settings), settings.key, batch_events=10)
    assert set(queue.threads) == {"azs-syslog-committer"}
    assert failure.value.result.accepted == 20  # the first two batches
    assert failure.value.first_lines == [21]  # the third batch's first record
    assert failure.value.result.accepted + failure.value.not_queued == 100


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_file_cut_inside_a_chunk_says_so(jobs: str, tmp_path: Path) -> None:
    """The parser reads the chunks before the end and says nothing of the one the file ends
    in: its records would be lost without a word (a copy cut short)."""
    cut = tmp_path / "cut.evtx"
    cut.write_bytes((FIXTURES / "security.evtx").read_bytes()[:1_500_000])
    result = run_cli(["send-event", "--jobs", jobs, str(cut)])
    assert result.exit_code == 3, result.stderr
    assert (
        f"skipped: {cut}: chunk 22 (after record 1942) skipped, its records unreadable: the "
        "file ends 54112 bytes into it, of 65536 (cut short?)\n"
    ) in result.stderr
    assert "accepted 1942 events" in result.stderr and "skipped 1 damaged part;" in result.stderr


def test_jobs_show_progress_on_a_terminal(tmp_path: Path) -> None:
    from tests.test_windows_inputs import _run_on_a_terminal

    code, drawn = _run_on_a_terminal(
        ["send-event", "--jobs", "2", str(FIXTURES / "security.evtx")], tmp_path
    )
    assert code == 0, drawn
    assert "security.evtx" in drawn and " records, " in drawn and "rejected 0" in drawn
    assert "accepted 2261 events from " in drawn and "the queue now holds 2261 events" in drawn


def test_the_split_and_the_producers_read_the_file_as_it_was_when_pinned(tmp_path: Path) -> None:
    """``send-event --jobs`` holds the file open: another file taking its name meanwhile (a
    log rotated) is not what the producers read."""
    from azs_syslog.queue.jobs import pinned, split_lines

    path = tmp_path / "events.jsonl"
    path.write_text("old line\n")
    with pinned(path) as held:
        replacement = tmp_path / "rotated"
        replacement.write_text("a new file, longer\n")
        replacement.replace(path)
        assert held.read_text() == "old line\n"
        assert split_lines(held, 1)[0].end == len("old line\n")
    assert path.read_text() == "a new file, longer\n"


def test_threads_switch_often_while_a_committer_runs() -> None:
    """The committing thread gets the GIL back within 0.1 ms (switching.SWITCH_INTERVAL), and
    the interval the process had comes back when the last committer stops."""
    import sys

    from azs_syslog.queue.committer import Committer
    from azs_syslog.switching import SWITCH_INTERVAL

    before = sys.getswitchinterval()
    first = Committer(lambda commit: None)
    second = Committer(lambda commit: None)
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)  # kept in microseconds
    first.stop()
    first.stop()  # twice: nothing more
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    second.stop()
    assert sys.getswitchinterval() == pytest.approx(before)
