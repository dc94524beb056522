"""The configuration-change race, end to end: ``set-syslog-server`` followed at once by
``send-event``, many times, with ``forwarder run`` as a real process and two real rsyslog
receivers (TLS with a test CA, and UDP).

Every configuration of a run has its own facility, so the PRI, the header format and the
receiver of an arrived message say exactly which configuration it was rendered and sent under.
Every wait is bounded.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from azs_syslog import config
from azs_syslog.queue import Queue
from tests.receivers import RsyslogReceiver, TestPKI
from tests.support import RECORD_ID, Forwarder, run_cli, set_server, wait_until
from tests.test_send_event import windows_event

pytestmark = pytest.mark.rsyslog

HEADER = re.compile(rb"<(\d+)>(1 )?")


@dataclass(frozen=True)
class Setting:
    transport: str  # "tls" or "udp"
    message_format: str
    facility: int


@dataclass(frozen=True)
class Arrival:
    transport: str  # the receiver it arrived at
    message_format: str
    facility: int


class Lab:
    def __init__(self, tls: RsyslogReceiver, udp: RsyslogReceiver, pki: TestPKI) -> None:
        self.receivers = {"tls": tls, "udp": udp}
        self.pki = pki
        self.accepted: dict[int, tuple[int, Setting]] = {}  # event -> (generation, setting)
        self.settings: dict[int, Setting] = {}  # generation -> setting

    def configure(self, setting: Setting) -> int:
        receiver = self.receivers[setting.transport]
        args = ["--message-format", setting.message_format, "--facility", str(setting.facility)]
        if setting.transport == "udp":
            args.append("--use-udp")
        else:
            args += ["--trusted-ca", str(self.pki.ca_file)]
        set_server(receiver.port, *args)
        generation = config.load_config().generation
        self.settings[generation] = setting
        return generation

    def send(self, event: int) -> None:
        generation = config.load_config().generation
        result = run_cli(["send-event", "-"], input=windows_event(event) + "\n")
        assert result.exit_code == 0, result.stderr
        self.accepted[event] = (generation, self.settings[generation])

    def arrivals(self) -> dict[int, list[Arrival]]:
        found: dict[int, list[Arrival]] = defaultdict(list)
        for transport, receiver in self.receivers.items():
            for line in receiver.lines():
                record = RECORD_ID.search(line)
                header = HEADER.match(line)
                assert record and header, line[:200]
                found[int(record.group(1))].append(
                    Arrival(
                        transport,
                        "rfc5424" if header.group(2) else "rfc3164",
                        int(header.group(1)) // 8,
                    )
                )
        return found

    def wait_for(self, events: set[int], timeout: float = 30) -> dict[int, list[Arrival]]:
        return wait_until(
            lambda: (found := self.arrivals()) and events <= set(found) and found,
            timeout,
            f"events {sorted(events)}",
        )

    def generation_of(self, arrival: Arrival) -> int:
        """The one configuration of this run an arrival matches."""
        matches = [
            generation
            for generation, setting in self.settings.items()
            if (setting.transport, setting.message_format, setting.facility)
            == (arrival.transport, arrival.message_format, arrival.facility)
        ]
        assert matches, f"{arrival} matches no configuration of this run"
        return max(matches)


def queue_counters() -> dict[str, int]:
    with Queue() as queue:
        counters = queue.counters()
        counters["depth"] = queue.depth().events
        return counters


@pytest.fixture
def lab(
    pki: TestPKI,
    rsyslog_factory: Callable[..., RsyslogReceiver],
) -> Lab:
    return Lab(rsyslog_factory("tls", pki=pki), rsyslog_factory("udp"), pki)


SETTINGS = [
    ("tls", "rfc3164"),
    ("udp", "rfc5424"),
    ("tls", "rfc5424"),
    ("udp", "rfc3164"),
]


def test_alternating_changes_each_followed_at_once_by_an_event(
    lab: Lab, forwarder: Callable[[], Forwarder]
) -> None:
    rounds = 24  # one facility (0-23) per configuration: an arrival names its configuration
    settings = [Setting(*SETTINGS[i % 4], facility=i) for i in range(rounds)]
    lab.configure(Setting("udp", "rfc3164", 0))
    worker = forwarder()
    worker.wait_for(lambda s: s["state"] == "connected")
    for event, setting in enumerate(settings):
        lab.configure(setting)
        lab.send(event)  # at once: the forwarder still runs the previous configuration
        # Delivered (or at least written, for UDP) before the next change: each event is
        # fresh when its configuration is applied, so it must leave exactly as accepted.
        wait_until(lambda: queue_counters()["depth"] == 0, 20, f"event {event} to leave")
    found = lab.wait_for(set(range(rounds)))
    for event in range(rounds):
        generation, setting = lab.accepted[event]
        arrived = found.get(event, [])
        expected = Arrival(setting.transport, setting.message_format, setting.facility)
        # Exactly where and how the configuration at its acceptance said: not at the older
        # server, not in the older format, never in clear text when accepted under TLS.
        assert arrived == [expected], f"event {event} (generation {generation}): {arrived}"
    counters = queue_counters()
    assert counters["rerendered"] == 0  # fresh events are sent as rendered
    assert counters["resent"] == 0


def test_an_event_accepted_under_tls_is_held_not_sent_in_clear(
    lab: Lab, forwarder: Callable[[], Forwarder]
) -> None:
    tls = lab.receivers["tls"]
    lab.configure(Setting("udp", "rfc3164", 1))
    worker = forwarder()
    worker.wait_for(lambda s: s["state"] == "connected")
    tls.stop()  # the TLS receiver is down: the event accepted under TLS stays queued
    lab.configure(Setting("tls", "rfc5424", 2))
    lab.send(1000)
    worker.wait_for(lambda s: s["state"] == "backing off")
    lab.configure(Setting("udp", "rfc3164", 3))  # the switch to UDP while it is queued
    lab.send(1001)
    found = lab.wait_for({1001})
    assert found[1001] == [Arrival("udp", "rfc3164", 3)]
    # 1000 was queued before 1001 and is not at the UDP receiver: it was held, not sent.
    assert 1000 not in found
    worker.wait_for(lambda s: bool((s.get("held") or {}).get("events")))
    status = run_cli(["forwarder", "status"])
    assert status.exit_code == 1
    assert "1 event accepted under TLS is held" in " ".join(status.stdout.split())
    assert queue_counters()["depth"] == 1

    # Back to TLS: the held event goes, over TLS, by itself.
    tls.start()
    lab.configure(Setting("tls", "rfc5424", 2))
    found = lab.wait_for({1000})
    assert found[1000] == [Arrival("tls", "rfc5424", 2)]
    worker.wait_for(lambda s: not s.get("held") and s["queue"]["events"] == 0)
    assert queue_counters()["rerendered"] == 0  # the same settings: sent as rendered


def test_rapid_changes_never_go_back_to_an_older_configuration(
    lab: Lab, forwarder: Callable[[], Forwarder]
) -> None:
    """No waiting at all between changes: events pile up across several changes. Each must
    leave under its own configuration or a later one, never an older one, and never over a
    weaker transport than it was accepted under."""
    rounds = 20
    settings = [Setting(*SETTINGS[i % 4], facility=i) for i in range(rounds)]
    lab.configure(Setting("udp", "rfc3164", 23))
    worker = forwarder()
    worker.wait_for(lambda s: s["state"] == "connected")
    for event, setting in enumerate(settings, start=2000):
        lab.configure(setting)
        lab.send(event)
    final = lab.configure(Setting("tls", "rfc5424", 22))  # delivers whatever is held
    events = set(range(2000, 2000 + rounds))
    found = lab.wait_for(events, timeout=60)
    assert events <= set(found), f"missing: {sorted(events - set(found))}"
    for event in sorted(events):
        accepted_generation, setting = lab.accepted[event]
        for arrival in found[event]:
            generation = lab.generation_of(arrival)
            assert generation >= accepted_generation, (
                f"event {event} accepted under generation {accepted_generation} left under"
                f" the older generation {generation}"
            )
            if setting.transport == "tls":
                assert arrival.transport == "tls", (
                    f"event {event} accepted under TLS, sent in clear"
                )
            if generation == accepted_generation:
                assert arrival == Arrival(
                    setting.transport, setting.message_format, setting.facility
                )
    wait_until(lambda: queue_counters()["depth"] == 0, 30, "the queue to drain")
    status = json.loads(run_cli(["forwarder", "status", "--json"]).stdout)["status"]
    assert status["held"] is None
    assert final in lab.settings
