from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
from pathlib import Path

from azs_syslog.queue import Queue
from tests.conftest import run_cli
from tests.support import start_cli


def windows_event(record_id: int, *, level: int = 2, time_text: str | None = None) -> str:
    """A realistic Windows event (~20 extensions) with a unique MasEventRecordID."""
    event = {
        "type": "windows",
        "provider_name": "Microsoft-Windows-Security-Auditing",
        "event_id": 4688,
        "level": level,
        "event_record_id": record_id,
        "task_name": "Process Creation",
        "channel": "Security",
        "computer": "azs-xrp01.azurestack.contoso.com",
        "correlation_activity_id": "C8F40D7C-3764-423B-A4FA-C994442238AF",
        "event_data": [
            "S-1-5-18",
            "AZS-XRP01$",
            "AZURESTACK",
            "0x3e7",
            "0x1a2c",
            "C:\\Windows\\System32\\svchost.exe",
            "%%1936",
            "0x2b8",
        ],
        "event_description": "A new process has been created.",
        "execution_process_id": 4,
        "execution_thread_id": 5432,
        "keywords": "0x8020000000000000",
        "keyword_name": "Audit Success",
        "opcode": 0,
        "opcode_name": "Info",
        "provider_guid": "54849625-5478-4994-A5BA-3E3B0328C30D",
        "security_user_id": "S-1-5-18",
        "task": 13312,
        "task_category": "Process Creation",
        "version": 2,
    }
    if time_text:
        event["time"] = time_text
    return json.dumps(event)


def test_all_accepted_exit_0(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text("".join(windows_event(i) + "\n" for i in range(250)))
    result = run_cli(["send-event", str(source)])
    assert result.exit_code == 0, result.stderr
    assert "accepted 250 events" in result.stderr
    assert result.stdout == ""
    with Queue() as queue:
        assert queue.depth().events == 250
        assert queue.counters()["accepted"] == 250


def test_rejected_lines_are_reported_with_their_numbers_exit_3() -> None:
    lines = [windows_event(1), "not json", "", windows_event(2), '{"type": "pep"}']
    result = run_cli(["send-event", "--json", "-"], input="\n".join(lines) + "\n")
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    assert report["accepted"] == 2
    assert [r["line"] for r in report["rejected"]] == [2, 5]
    assert "event" in report["rejected"][1]["reason"]
    human = run_cli(["send-event"], input="\n".join(lines) + "\n")
    assert human.exit_code == 3
    assert "rejected: line 2: " in human.stderr
    assert "rejected: line 5: event" in human.stderr
    with Queue() as queue:
        assert queue.depth().events == 4
        assert queue.counters()["rejected"] == 4


def test_nothing_accepted_exit_1() -> None:
    result = run_cli(["send-event", "-"], input="nope\n{}\n")
    assert result.exit_code == 1
    assert "rejected: line 1" in result.stderr
    assert "rejected: line 2: type" in result.stderr


def test_empty_input_and_a_missing_file() -> None:
    assert run_cli(["send-event", "-"], input="").exit_code == 0
    missing = run_cli(["send-event", "/nonexistent/events.jsonl"])
    assert missing.exit_code == 2
    assert "cannot read" in missing.stderr


def test_filtered_events_are_still_queued_raw() -> None:
    # OutputSeverity Default drops level 4 at send time; it is queued all the same.
    result = run_cli(["send-event", "--json"], input=windows_event(1, level=4) + "\n")
    assert result.exit_code == 0
    with Queue() as queue:
        (batch,) = queue.next_batches(5)
        assert batch.count == 1
        assert batch.messages == 0
        raw = queue.load_raw(batch.id)
        assert raw is not None and b'"event_record_id": 1' in raw[0][1]


def wait_for_queued(events: int) -> None:
    """Wait (10 s at most) until the queue holds ``events`` events, and check that it does."""
    deadline = time.monotonic() + 10
    depth = 0
    while time.monotonic() < deadline:
        if Path(os.environ["AZS_SYSLOG_HOME"], "state", "queue.sqlite3").exists():
            with Queue() as queue:
                depth = queue.depth().events
            if depth == events:
                break
        time.sleep(0.05)
    assert depth == events


def test_a_long_running_pipe_commits_as_it_goes() -> None:
    proc = start_cli(["send-event", "-"], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        for i in range(3):
            proc.stdin.write((windows_event(i) + "\n").encode())
            proc.stdin.flush()
        wait_for_queued(3)  # durable while the producer is still running
        assert proc.poll() is None
    finally:
        proc.stdin.close()
        proc.wait(timeout=20)
    assert proc.returncode == 0


def test_lines_read_with_a_partial_line_are_committed_without_waiting_for_it() -> None:
    """The lines of one read are handed on together; the unfinished line after them does not
    hold them back (the time bound of a slow pipe), on the first read as on later ones."""
    proc = start_cli(["send-event", "-"], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    lines = [(windows_event(i) + "\n").encode() for i in range(6)]
    data = b"".join(lines)
    cuts = [0, len(b"".join(lines[:2])) + 40, len(b"".join(lines[:4])) + 40, len(data)]
    try:
        # Each write: the rest of a line, whole lines, and the start of the next line.
        for index, (start, end) in enumerate(itertools.pairwise(cuts)):
            proc.stdin.write(data[start:end])
            proc.stdin.flush()
            wait_for_queued(2 * index + 2)  # durable while the next line is being written
    finally:
        proc.stdin.close()
        proc.wait(timeout=20)
    assert proc.returncode == 0


def test_jobs_split_a_jsonl_file_and_keep_line_numbers(tmp_path: Path) -> None:
    from azs_syslog.queue.jobs import split_lines

    bad = {7, 1500, 2999}
    lines = ["not json" if n in bad else windows_event(n) for n in range(1, 3001)]
    lines[100] = ""  # a blank line (line 101) is skipped
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines) + "\n")
    parts = split_lines(source, 3)
    assert parts[0][:1] == (0,) and parts[-1][1] == source.stat().st_size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    result = run_cli(["send-event", "--jobs", "3", "--json", str(source)])
    assert result.exit_code == 3, result.stderr
    report = json.loads(result.stdout)
    assert [r["line"] for r in report["rejected"]] == sorted(bad)
    assert report["accepted"] == 3000 - 3 - 1
    ids = set()
    with Queue() as queue:
        for batch in queue.next_batches(1000):
            raw = queue.load_raw(batch.id)
            assert raw is not None
            ids |= {json.loads(line)["event_record_id"] for _, line in raw}
    assert ids == set(range(1, 3001)) - bad - {101}
    assert run_cli(["send-event", "--jobs", "2", "-"], input="").exit_code == 2
