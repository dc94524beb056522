"""``send-event`` that cannot queue all of its input: a full disk (a real tmpfs) and a killed
``--jobs`` run. The report must match the rows really in the queue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from azs_syslog.queue import Queue
from tests.conftest import run_cli_process
from tests.support import start_cli
from tests.test_help_and_docs_troubleshooting import assert_documented
from tests.test_send_event import windows_event
from tests.tmpfs import fill, mounted_tmpfs


def write_events(path: Path, count: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for record_id in range(1, count + 1):
            out.write(windows_event(record_id) + "\n")
    return path


def queued_ids() -> list[int]:
    """The ``event_record_id`` of every event in the queue, checking that each batch is
    whole: as many raw lines and rendered messages as its count says."""
    ids: list[int] = []
    with Queue() as queue:
        total = 0
        for batch in queue.next_batches(limit=100_000):
            raw = queue.load_raw(batch.id)
            assert raw is not None
            assert len(raw) == batch.count
            assert len(batch.lengths) == batch.count  # no Windows event is filtered here
            assert sum(batch.lengths) == len(batch.wire)
            ids += [json.loads(line)["event_record_id"] for _ms, line in raw]
            total += batch.count
        assert queue.depth().events == total
    return ids


def test_disk_full_part_way_reports_exact_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    total = 12_000  # ~10 MB of JSON, more than the tmpfs can hold
    source = write_events(tmp_path / "events.jsonl", total)
    with mounted_tmpfs(tmp_path / "small", 16 * 1024) as small:
        home = small / "home"
        monkeypatch.setenv("AZS_SYSLOG_HOME", str(home))
        # Leave room for a few batches only.
        assert run_cli_process(["send-event", "-"], input=b"").returncode == 0
        fill(small, leave=5 * 1024 * 1024)

        result = run_cli_process(["send-event", "--json", str(source)], timeout=120)
        assert result.returncode == 3, result.stderr
        report = json.loads(result.stdout)
        accepted = report["accepted"]
        assert 0 < accepted < total
        assert report["not_queued"] == total - accepted
        assert report["not_queued_lines"] == [[accepted + 1, None]]
        assert report["queued"] == accepted
        assert report["error"]["cause"] == "disk full"
        # The queue holds exactly the first `accepted` lines, each once.
        assert queued_ids() == list(range(1, accepted + 1))
        stderr = result.stderr.decode()
        assert "internal error" not in stderr and "Traceback" not in stderr
        assert f"error: disk full: {accepted} events queued, {total - accepted} not " in stderr
        assert f"fix: free space on the file system of {home / 'state'}" in stderr
        assert f"tail -n +{accepted + 1} {source} | azs-syslog send-event -" in stderr
        # docs/troubleshooting.md shows these lines as printed (paths of the service).
        shown = stderr.replace(str(home), "/var/lib/azs-syslog").replace(
            str(source), "events.jsonl"
        )
        for line in shown.splitlines():
            assert_documented(line)

        # Again, in text: the room the failed batch left in the queue's files may take a few
        # more; whatever the run says it queued is what the queue holds, still from line 1.
        expected = list(range(1, accepted + 1))
        again = run_cli_process(["send-event", str(source)], timeout=120)
        assert again.returncode in (1, 3), again.stderr
        text = again.stderr.decode()
        taken = int(text.split("accepted ", 1)[1].split(" ", 1)[0])
        assert (
            f"accepted {taken} event{'s' if taken != 1 else ''} from {source}, "
            f"{total - taken} not queued (lines {taken + 1}-end)" in text
        )
        assert f"error: disk full: {taken} events queued" in text
        expected += range(1, taken + 1)
        assert sorted(queued_ids()) == sorted(expected)

        # From a pipe: what was read is counted, the rest is said to be unread.
        piped = run_cli_process(["send-event", "--json", "-"], input=source.read_bytes())
        assert piped.returncode in (1, 3), piped.stderr
        report = json.loads(piped.stdout)
        assert report["rest_unread"] is True
        assert report["not_queued_lines"] == [[report["accepted"] + 1, None]]
        assert report["accepted"] + report["not_queued"] < total
        expected += range(1, report["accepted"] + 1)
        assert sorted(queued_ids()) == sorted(expected)

        # A queue that cannot even be created: one line naming the full disk, exit 1.
        monkeypatch.setenv("AZS_SYSLOG_HOME", str(small / "other"))
        fill(small)
        fresh = run_cli_process(["send-event", str(source)], timeout=120)
        assert fresh.returncode == 1
        assert fresh.stderr.decode().startswith("error: disk full: nothing queued: ")


def test_disk_full_with_jobs_sums_the_producers_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    total = 16_000
    source = write_events(tmp_path / "events.jsonl", total)
    with mounted_tmpfs(tmp_path / "small", 10 * 1024) as small:
        monkeypatch.setenv("AZS_SYSLOG_HOME", str(small / "home"))
        result = run_cli_process(["send-event", "--jobs", "4", "--json", str(source)], timeout=180)
        assert result.returncode == 3, result.stderr
        report = json.loads(result.stdout)
        accepted = report["accepted"]
        assert 0 < accepted < total
        assert report["not_queued"] == total - accepted
        assert report["error"]["cause"] == "disk full"
        ids = queued_ids()
        assert len(ids) == accepted == len(set(ids))
        # The ranges reported as not queued are exactly the lines missing from the queue.
        missing: set[int] = set()
        for first, last in report["not_queued_lines"]:
            missing.update(range(first, (total if last is None else last) + 1))
        assert missing == set(range(1, total + 1)) - set(ids)
        assert "error: disk full: " in result.stderr.decode()


# --- killing send-event --jobs 4 ------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (from /proc)."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper does not count)."""
    try:
        stat = Path("/proc", str(pid), "stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_killing_jobs_stops_the_producers(tmp_path: Path, signum: signal.Signals) -> None:
    total = 40_000
    source = write_events(tmp_path / "events.jsonl", total)
    proc = start_cli(
        ["send-event", "--jobs", "4", "--json", str(source)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    queue_file = Path(os.environ["AZS_SYSLOG_HOME"], "state", "queue.sqlite3")
    try:
        # Wait for the four producers and the first committed batch.
        children: list[int] = []
        deadline = time.monotonic() + 60
        depth = 0
        while time.monotonic() < deadline and proc.poll() is None:
            children = children_of(proc.pid)
            if len(children) == 4 and queue_file.exists():
                with Queue() as queue:
                    depth = queue.depth().events
                if depth:
                    break
            time.sleep(0.02)
        assert len(children) == 4 and depth, "the producers did not start committing"
        os.kill(proc.pid, signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    # No producer outlives its parent.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(alive(pid) for pid in children):
        time.sleep(0.05)
    assert not [pid for pid in children if alive(pid)]

    ids = queued_ids()  # every batch whole
    assert len(ids) == len(set(ids))
    assert len(ids) < total  # stopped part-way
    if signum == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
        return
    assert proc.returncode == 3, stderr
    report = json.loads(stdout)
    assert report["accepted"] == len(ids)
    assert report["not_queued"] == total - len(ids)
    assert report["error"]["cause"] == "interrupted"
    missing: set[int] = set()
    for first, last in report["not_queued_lines"]:
        missing.update(range(first, (total if last is None else last) + 1))
    assert missing == set(range(1, total + 1)) - set(ids)
    assert f"stopped by {signum.name}" in stderr.decode()


def _start_send_event(args: list[str], **popen: Any) -> subprocess.Popen[bytes]:
    return start_cli(
        ["send-event", "--json", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen
    )


def _wait_for_rows(minimum: int, timeout: float = 60.0) -> None:
    queue_file = Path(os.environ["AZS_SYSLOG_HOME"], "state", "queue.sqlite3")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if queue_file.exists():
            with Queue() as queue:
                if queue.depth().events >= minimum:
                    return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {minimum} events queued after {timeout} s")


def _signal_when_queued(
    proc: subprocess.Popen[bytes], sig: signal.Signals, rows: int
) -> tuple[bytes, bytes]:
    """Send ``sig`` to ``proc`` once ``rows`` events are queued; its output (killed, if it
    outlives the wait)."""
    try:
        _wait_for_rows(rows)
        proc.send_signal(sig)
        return proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopping_one_process_reports_exactly_where_it_stopped(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """send-event without --jobs, stopped part-way: what it rendered is committed, the report
    equals the rows in the queue, and the command it gives sends exactly the rest."""
    source = write_events(tmp_path / "events.jsonl", 200_000)
    proc = _start_send_event([str(source)])
    out, err = _signal_when_queued(proc, sig, 2000)
    assert proc.returncode == 3, err
    report = json.loads(out)
    assert report["error"]["cause"] == "interrupted"
    assert sig.name in report["error"]["message"]
    ids = queued_ids()
    assert sorted(ids) == list(range(1, report["accepted"] + 1))  # a prefix, each once
    assert report["accepted"] < 200_000
    assert report["not_queued_lines"] == [[report["accepted"] + 1, None]]
    assert f"tail -n +{report['accepted'] + 1} " in report["error"]["fix"]


def test_stopping_one_process_waiting_on_a_quiet_pipe(tmp_path: Path) -> None:
    """A producer that waits for the next line of a pipe that stays open stops on SIGTERM at
    once, with the lines it had read queued."""
    lines = "".join(windows_event(n) + "\n" for n in range(1, 4)).encode()
    proc = _start_send_event(["-"], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(lines)
    proc.stdin.flush()
    out, err = _signal_when_queued(proc, signal.SIGTERM, 3)
    assert proc.returncode == 3, err
    report = json.loads(out)
    assert report["accepted"] == 3
    assert report["rest_unread"] is True
    assert sorted(queued_ids()) == [1, 2, 3]


# --- an .evtx file with --jobs: a full disk, a stop ---------------------------------------------

EVTX_FIXTURES = Path(__file__).parent / "fixtures" / "evtx"


def large_evtx(path: Path, copies: int) -> int:
    """An .evtx file of every readable chunk of the fixtures, ``copies`` times (real records,
    as benchmarks/evtx_import.py builds it); returns how many records it holds."""
    chunks = []
    for fixture in sorted(EVTX_FIXTURES.glob("*.evtx")):
        data = fixture.read_bytes()
        for offset in range(4096, len(data) - 65535, 65536):
            if data[offset : offset + 8] == b"ElfChnk\0":
                chunks.append(data[offset : offset + 65536])
    header = (EVTX_FIXTURES / "security.evtx").read_bytes()[:4096]
    path.write_bytes(header + b"".join(chunks) * copies)
    from azs_syslog.inputs.evtx import iter_evtx_events

    return sum(1 for _ in iter_evtx_events(str(path), lambda problem: None))


def test_disk_full_importing_an_evtx_file_with_jobs_counts_every_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "large.evtx"
    total = large_evtx(source, 6)
    with mounted_tmpfs(tmp_path / "small", 12 * 1024) as small:
        monkeypatch.setenv("AZS_SYSLOG_HOME", str(small / "home"))
        verbose = run_cli_process(["set-syslog-client", "--output-severity", "Verbose"])
        assert verbose.returncode == 0, verbose.stderr
        result = run_cli_process(["send-event", "--jobs", "2", "--json", str(source)], timeout=180)
        assert result.returncode == 3, result.stderr
        report = json.loads(result.stdout)
        assert report["error"]["cause"] == "disk full"
        assert 0 < report["accepted"] < total
        # Every readable record is accepted (and in the queue), rejected or not queued.
        assert report["accepted"] + len(report["rejected"]) + report["not_queued"] == total
        with Queue() as queue:
            assert queue.depth().events == report["accepted"]
        assert "error: disk full: " in result.stderr.decode()


def test_stopping_an_evtx_import_with_jobs_counts_every_record(tmp_path: Path) -> None:
    source = tmp_path / "large.evtx"
    total = large_evtx(source, 16)  # about 75,000 records: still reading when stopped
    proc = _start_send_event(["--jobs", "2", str(source)])
    try:
        _wait_for_rows(1)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 3, stderr
    report = json.loads(stdout)
    assert report["error"]["cause"] == "interrupted"
    assert report["accepted"] + len(report["rejected"]) + report["not_queued"] == total
    assert report["not_queued"] > 0
    with Queue() as queue:
        assert queue.depth().events == report["accepted"]
    assert "stopped by SIGTERM" in stderr.decode()
