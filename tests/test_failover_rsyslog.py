"""Failover and failback end to end: ``forwarder run`` as a real process, two real rsyslog TLS
receivers trusting the same test CA. The primary is down at the start: after FailoverAfter the
events go to the failover server; the primary comes back: the forwarder returns to it. Every
event arrives at least once across the two, and every duplicate is counted as resent.
Every wait is bounded."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable

import pytest

from azs_syslog.queue import Queue
from tests.receivers import RsyslogReceiver, TestPKI
from tests.support import (
    Forwarder,
    discard_audit_events,
    record_ids,
    run_cli,
    send_events,
    set_server,
    wait_until,
)

pytestmark = pytest.mark.rsyslog


def arrived(receiver: RsyslogReceiver) -> Counter[int]:
    return record_ids(receiver.lines(), strict=True)


def send(events: range) -> None:
    send_events(events.start, len(events), time_text=None)


def counters() -> dict[str, int]:
    with Queue() as queue:
        found = queue.counters()
        found["depth"] = queue.depth().events
        return found


def failover_of(status: dict[str, object]) -> dict[str, object]:
    value = status.get("failover")
    return value if isinstance(value, dict) else {}


@pytest.mark.parametrize("relp", [False, True], ids=["tls", "relp-tls"])
def test_failover_and_failback_with_two_rsyslogs(
    rsyslog_factory: Callable[..., RsyslogReceiver],
    forwarder: Callable[[], Forwarder],
    pki: TestPKI,
    relp: bool,
) -> None:
    kind = ("relp", {"pki": pki, "relp_tls": True}) if relp else ("tls", {"pki": pki})
    primary = rsyslog_factory(kind[0], **kind[1])
    secondary = rsyslog_factory(kind[0], **kind[1])
    primary.stop()  # down at the start (its port is kept for when it comes back)
    args = ["--trusted-ca", str(pki.ca_file), "--failover-server-name", "127.0.0.1"]
    args += ["--failover-server-port", str(secondary.port), "--failover-after", "1"]
    if relp:
        args.append("--use-relp")
    set_server(primary.port, *args)
    discard_audit_events()  # the counts below are of this test's events

    send(range(0, 20))
    started = time.monotonic()
    worker = forwarder()
    worker.wait_for(
        lambda s: failover_of(s).get("active") == "failover" and s["state"] == "connected"
    )
    # Not before FailoverAfter (1 s) of failed connections to the primary.
    assert time.monotonic() - started >= 1.0
    wait_until(lambda: set(range(20)) <= set(arrived(secondary)), 30, "events at the failover")
    assert not primary.lines()

    status = json.loads(run_cli(["forwarder", "status", "--json"]).stdout)["status"]
    assert status["failover"]["active"] == "failover"
    assert status["failover"]["server"] == {"name": "127.0.0.1", "port": secondary.port}
    assert "no connection to the primary server" in status["failover"]["reason"]
    text = " ".join(run_cli(["forwarder", "status"]).stdout.split())
    assert f"failover (127.0.0.1:{secondary.port})" in text
    assert "no connection to the primary server" in text

    # The primary comes back while events keep coming: the forwarder drains what is in flight
    # on the failover server and returns.
    primary.start()
    event = 20
    deadline = time.monotonic() + 30
    while failover_of(worker.status()).get("active") != "primary":
        assert time.monotonic() < deadline, f"no failback; log {worker.log.read_text()}"
        send(range(event, event + 5))
        event += 5
    worker.wait_for(
        lambda s: failover_of(s).get("active") == "primary" and s["state"] == "connected"
    )
    after = range(event, event + 20)
    send(after)
    wait_until(lambda: set(after) <= set(arrived(primary)), 30, "events at the primary")
    wait_until(lambda: counters()["depth"] == 0, 30, "the queue to drain")

    status = json.loads(run_cli(["forwarder", "status", "--json"]).stdout)["status"]
    assert status["failover"]["active"] == "primary"
    assert "answered a probe" in status["failover"]["reason"]
    assert not set(after) & set(arrived(secondary))  # after the switch: the primary only

    everything = arrived(primary) + arrived(secondary)
    assert set(everything) == set(range(event + 20)), "an event was lost"
    duplicates = sum(everything.values()) - len(everything)
    found = counters()
    assert duplicates <= found["resent"], (duplicates, found)
    assert found["sent"] == event + 20
