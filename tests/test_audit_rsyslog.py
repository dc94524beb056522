"""The audit trail, sequence numbers and the heartbeat, end to end: ``set-*`` commands, a real
``forwarder run`` process and real rsyslog receivers. Every wait is bounded."""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from azs_syslog import config
from azs_syslog.queue import Queue
from tests.receivers import RsyslogReceiver, TestPKI
from tests.support import RECORD_ID, Forwarder, run_cli, send_events, set_server, wait_until

pytestmark = pytest.mark.rsyslog

Factory = Callable[..., RsyslogReceiver]
Delivering = Callable[..., tuple[RsyslogReceiver, Forwarder]]
AUDIT = b"|Microsoft-AzureStack-Forwarder: ConfigurationChanged|ConfigurationChanged|"
HEARTBEAT = b"|Microsoft-AzureStack-Forwarder: Heartbeat|Heartbeat|"
SEQUENCE = re.compile(rb" cn1=(\d+) cn1Label=seq cs1=([0-9a-f]{16}) cs1Label=stream$")
RT = re.compile(rb"\|rt=(\d+) ")


def point_at(receiver: RsyslogReceiver, *extra: str) -> str:
    return set_server(receiver.port, "--no-encryption", *extra).stderr


def send(first: int, count: int) -> None:
    send_events(first, count, time_text=None)


def ids_of(lines: list[bytes]) -> list[int]:
    return [int(m.group(1)) for m in map(RECORD_ID.search, lines) if m]


def rt_of(line: bytes) -> int:
    match = RT.search(line)
    assert match, line[:200]
    return int(match.group(1))


@pytest.fixture
def delivering(rsyslog_factory: Factory, forwarder: Callable[[], Forwarder]) -> Delivering:
    """``delivering(count, *flags)``: a TCP rsyslog ``A`` configured with ``flags``, a
    forwarder, and events 0..count-1 delivered to A."""

    def start(count: int, *flags: str) -> tuple[RsyslogReceiver, Forwarder]:
        a = rsyslog_factory("tcp")
        point_at(a, *flags)
        worker = forwarder()
        send(0, count)
        wait_until(lambda: len(ids_of(a.lines())) == count, 30, f"the {count} events at A")
        return a, worker

    return start


def audits(receiver: RsyslogReceiver) -> list[bytes]:
    return [line for line in receiver.lines(audit=True) if AUDIT in line]


def test_repointing_shows_at_both_servers_before_the_change_takes_effect(
    rsyslog_factory: Factory, delivering: Delivering
) -> None:
    a, worker = delivering(20)
    b = rsyslog_factory("tcp")
    point_at(b)
    send(20, 20)  # accepted right after the change: rendered for B
    wait_until(lambda: len(ids_of(b.lines())) == 20, 30, "the events at B")

    # A: its own configuration's record, the first 20 events, then the change away from it.
    at_a = a.lines(audit=True)
    assert AUDIT in at_a[0]
    assert ids_of(at_a) == list(range(20))
    repointed = audits(a)[-1]
    assert at_a[-1] == repointed, "nothing may reach A after the change was announced"
    assert f"ServerPort: {a.port}".encode() in repointed.split(b"cs4=")[1].split(b" cs4Label")[0]
    assert f"ServerPort: {b.port}".encode() in repointed.split(b"cs5=")[1].split(b" cs5Label")[0]
    assert b"act=set-syslog-server " in repointed and b"suser=" in repointed
    assert f"forwarding changed from 127.0.0.1:{a.port} tcp to 127.0.0.1:{b.port} tcp".encode() in (
        repointed
    )
    # B: the same record first, before the first event accepted after the change.
    at_b = b.lines(audit=True)
    assert AUDIT in at_b[0] and b"forwarding changed from" in at_b[0]
    assert ids_of(at_b[1:]) == list(range(20, 40))
    assert rt_of(at_b[0]) == rt_of(repointed)
    worker.stop_cleanly()


def test_remove_reaches_the_old_siem_before_forwarding_stops(delivering: Delivering) -> None:
    a, worker = delivering(5)

    started = time.monotonic()
    removed = run_cli(["set-syslog-server", "--remove"])
    assert removed.exit_code == 0, removed.stderr
    assert time.monotonic() - started < 12
    assert "syslog server removed; forwarding stops" in removed.stderr
    assert f"the SIEM at 127.0.0.1:{a.port} tcp was told of the removal" in removed.stderr
    record = audits(a)[-1]
    assert b"|ConfigurationChanged|7|" in record
    assert b"act=set-syslog-server --remove" in record
    assert f"forwarding to 127.0.0.1:{a.port} tcp removed by".encode() in record
    assert a.lines(audit=True)[-1] == record  # it arrived: the command said so after it did

    # Forwarding has stopped: a later event stays queued.
    send(5, 1)
    with Queue() as queue:
        assert queue.depth().events == 1
    assert ids_of(a.lines()) == list(range(5))
    worker.stop_cleanly()


def test_remove_with_the_forwarder_down_says_the_siem_was_not_told(
    rsyslog_factory: Factory,
) -> None:
    a = rsyslog_factory("tcp")
    point_at(a)
    removed = run_cli(["set-syslog-server", "--remove"])
    assert removed.exit_code == 0
    assert "warning: the removal could not be recorded at the SIEM: the forwarder is not" in (
        removed.stderr
    )
    assert config.load_config().server is None


def test_no_secret_in_any_audit_event(
    rsyslog_factory: Factory,
    forwarder: Callable[[], Forwarder],
    pki: TestPKI,
    tmp_path: Path,
) -> None:
    password = "Pfx-Secret-4711-never-on-the-wire"  # the test's own
    a = rsyslog_factory("tcp")
    point_at(a)
    worker = forwarder()
    pfx = tmp_path / "client.pfx"
    pfx.write_bytes(pki.client.to_pfx(password.encode()))
    imported = run_cli(["set-syslog-client", "--pfx-file", str(pfx)], input=password + "\n")
    assert imported.exit_code == 0, imported.stderr
    certificate = config.load_config().client.certificate
    assert certificate is not None
    thumbprint = certificate.thumbprint
    removed = run_cli(["set-syslog-client", "--remove-certificate"])
    assert removed.exit_code == 0, removed.stderr
    wait_until(lambda: len(audits(a)) == 3, 30, "three audit events at A")
    added, gone = audits(a)[1:]
    assert f"cs5=ClientCertificate: thumbprint {thumbprint}".encode() in added
    assert b"act=set-syslog-client " in added
    assert b"act=set-syslog-client --remove-certificate" in gone
    assert f"cs4=ClientCertificate: thumbprint {thumbprint}".encode() in gone
    received = a.output_file.read_bytes()
    key = pki.client_key.read_bytes()
    assert password.encode() not in received
    assert b"PRIVATE KEY" not in received
    assert key.splitlines()[1] not in received
    worker.stop_cleanly()


def sequence_numbers(lines: list[bytes]) -> tuple[Counter[int], set[bytes]]:
    numbers: Counter[int] = Counter()
    streams: set[bytes] = set()
    for line in lines:
        match = SEQUENCE.search(line)
        if match:
            numbers[int(match.group(1))] += 1
            streams.add(match.group(2))
    return numbers, streams


def test_sequence_numbers_are_contiguous_across_a_receiver_restart(
    rsyslog_factory: Factory,
    forwarder: Callable[[], Forwarder],
) -> None:
    a = rsyslog_factory("tcp")
    point_at(a, "--sequence-numbers")
    worker = forwarder()
    send(0, 3000)
    wait_until(lambda: len(ids_of(a.lines())) >= 1000, 60, "a first part at A")
    a.kill()  # what rsyslog buffered is lost; the forwarder's replay window resends it
    send(3000, 3000)
    worker.wait_for(lambda s: s["state"] != "connected", timeout=30)
    a.start()
    wait_until(lambda: set(range(6000)) <= set(ids_of(a.lines())), 90, "every event at A")
    worker.wait_for(lambda s: s["queue"]["events"] == 0, timeout=30)

    lines = a.lines(audit=True)
    numbers, streams = sequence_numbers(lines)
    assert len(streams) == 1
    # Every message is numbered (the audit event of the configuration too) ...
    assert sum(numbers.values()) == len(lines)
    # ... with no gap: 1..highest, each at least once; a resend repeats numbers.
    assert set(numbers) == set(range(1, max(numbers) + 1))
    assert max(numbers) == 6001  # 6000 events and the ConfigurationChanged record
    # The same event carries the same number each time it arrives.
    by_event: dict[int, set[int]] = {}
    for line in lines:
        record, match = RECORD_ID.search(line), SEQUENCE.search(line)
        if record and match:
            by_event.setdefault(int(record.group(1)), set()).add(int(match.group(1)))
    assert all(len(seen) == 1 for seen in by_event.values())
    # forwarder status names the stream the SIEM sees, and the last number delivered.
    stream = next(iter(streams)).decode()
    worker.wait_for(lambda s: (s.get("sequence") or {}).get("last_delivered") == 6001, timeout=30)
    assert (worker.status().get("sequence") or {}).get("stream") == stream
    shown = " ".join(run_cli(["forwarder", "status"]).stdout.split())
    assert f"Sequence stream {stream}, last delivered 6001" in shown
    worker.stop_cleanly()


def test_without_the_flag_the_format_stays_exact(delivering: Delivering) -> None:
    a, worker = delivering(10)
    assert not any(b"cn1=" in line or HEARTBEAT in line for line in a.lines(audit=True))
    worker.stop_cleanly()


def heartbeats(receiver: RsyslogReceiver) -> list[bytes]:
    return [line for line in receiver.lines() if HEARTBEAT in line]


def test_heartbeat_every_interval_with_a_hole_while_the_receiver_is_down(
    delivering: Delivering,
) -> None:
    a, worker = delivering(3, "--sequence-numbers", "--heartbeat-interval", "1")
    wait_until(lambda: len(heartbeats(a)) >= 3, 30, "three heartbeats")
    a.stop()
    down_at = time.time()
    worker.wait_for(lambda s: s["state"] != "connected", timeout=30)
    send(3, 2)  # queued while the receiver is down: the next heartbeat shows depth and age
    wait_until(lambda: time.time() - down_at >= 4, 10, "four seconds of outage")
    a.start()
    up_at = time.time()
    wait_until(
        lambda: sum(rt_of(h) > up_at * 1000 for h in heartbeats(a)) >= 2,
        60,
        "two heartbeats after the restart",
    )
    beats = heartbeats(a)
    times = [rt_of(h) for h in beats]
    steps = [b - a_ for a_, b in itertools.pairwise(times)]
    # Every N s while connected (the loop's own pace allows a little more) ...
    assert sum(step <= 1600 for step in steps) >= 3
    # ... and one hole spanning the outage.
    assert max(steps) >= 3500
    assert not any(down_at * 1000 + 500 < t < up_at * 1000 - 500 for t in times)
    first = beats[0]
    assert b"cn2Label=lastSeq" in first and b"cn3Label=queueDepth" in first
    assert b"cs1Label=stream" in first and b"cn1=" not in first  # not numbered itself
    worker.stop_cleanly()


def test_the_record_overtakes_a_backlog_for_the_server_being_left(
    rsyslog_factory: Factory,
    forwarder: Callable[[], Forwarder],
) -> None:
    a = rsyslog_factory("tcp")
    b = rsyslog_factory("tcp")
    point_at(a)
    backlog = 60_000
    send(0, backlog)
    worker = forwarder()
    wait_until(lambda: len(ids_of(a.lines())) >= 1000, 60, "the backlog flowing to A")
    point_at(b)
    send(backlog, 10)  # accepted after the change
    wanted = set(range(backlog + 10))
    wait_until(
        lambda: wanted <= set(ids_of(a.lines())) | set(ids_of(b.lines())), 120, "every event"
    )
    at_a, at_b = a.lines(audit=True), b.lines(audit=True)
    # A: the record of the change arrived, and nothing after it, though events accepted
    # before the change were still queued (they went to B, rendered for it).
    assert b"forwarding changed from" in at_a[-1]
    assert ids_of(at_b), "the test needs a backlog left at the switch"
    # B: its copy before the first event accepted after the change.
    copy = next(i for i, line in enumerate(at_b) if AUDIT in line)
    first_new = next(i for i, line in enumerate(at_b) if ids_of([line]) == [backlog])
    assert copy < first_new
    worker.stop_cleanly()
