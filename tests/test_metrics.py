"""``forwarder run --metrics-address``: Prometheus metrics scraped over HTTP on 127.0.0.1 from
a real forwarder process delivering to a real rsyslog; address errors at start."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from azs_syslog.forwarder.snapshot import COUNT_NAMES
from tests.conftest import discard_audit_events, run_cli, run_cli_process
from tests.receivers import RsyslogReceiver, free_port, rsyslog_factory  # noqa: F401
from tests.support import Forwarder, Forwarders, send_events, wait_for_ids

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

COUNTERS = [f"azs_syslog_events_{name}_total" for name in COUNT_NAMES]
GAUGES = [
    "azs_syslog_status_available",
    "azs_syslog_connections_total",
    "azs_syslog_queue_events",
    "azs_syslog_queue_bytes",
    "azs_syslog_queue_oldest_age_seconds",
    "azs_syslog_in_flight_batches",
    "azs_syslog_held_events",
    "azs_syslog_healthy",
    "azs_syslog_blocked_seconds",
    "azs_syslog_disk_full",
    "azs_syslog_config_problem",
    "azs_syslog_certificate_warnings",
    "azs_syslog_status_updated_timestamp_seconds",
]
STATES = ["not configured", "connecting", "connected", "backing off", "draining", "stopped"]


class MetricsForwarder(Forwarder):
    """``forwarder run --metrics-address 127.0.0.1:PORT`` in a child process."""

    def __init__(self, log: Path, port: int) -> None:
        super().__init__(log, "--metrics-address", f"127.0.0.1:{port}")
        self.port = port

    def scrape(self) -> Samples:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as reply:
            assert reply.status == 200
            assert reply.headers["Content-Type"].startswith("text/plain")
            text = reply.read().decode()
        samples: Samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def wait_for_metrics(
        self, predicate: Callable[[Samples], bool], timeout: float = 30
    ) -> Samples:
        deadline = time.monotonic() + timeout
        last: Samples = {}
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            try:
                last = self.scrape()
            except (urllib.error.URLError, ConnectionError):
                last = {}  # not listening yet
            if last and predicate(last):
                return last
            time.sleep(0.1)
        raise AssertionError(f"timed out; last scrape {last}; log {self.log.read_text()}")


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def state(samples: Samples) -> str | None:
    current = [
        dict(labels)["state"]
        for (name, labels), number in samples.items()
        if name == "azs_syslog_state" and number == 1
    ]
    return current[0] if len(current) == 1 else None


def last_error(samples: Samples) -> dict[str, str] | None:
    for (name, labels), number in samples.items():
        if name == "azs_syslog_last_error_info" and number == 1:
            return dict(labels)
    return None


@pytest.fixture
def metrics_forwarder(forwarders_started: Forwarders) -> Callable[[], MetricsForwarder]:
    def make() -> MetricsForwarder:
        port = free_port("127.0.0.1", "tcp")
        return forwarders_started.start(MetricsForwarder(forwarders_started.next_log(), port))

    return make


@pytest.mark.rsyslog
def test_scrape_follows_delivery_and_shows_an_outage(
    rsyslog_factory: Callable[..., RsyslogReceiver],  # noqa: F811
    metrics_forwarder: Callable[[], MetricsForwarder],
) -> None:
    receiver = rsyslog_factory("tcp")
    result = run_cli(
        [
            "set-syslog-server",
            "--server-name",
            "127.0.0.1",
            "--server-port",
            str(receiver.port),
            "--no-encryption",
        ]
    )
    assert result.exit_code == 0, result.stderr
    discard_audit_events()  # the counts below are of this test's events
    worker = metrics_forwarder()
    first = worker.wait_for_metrics(lambda s: state(s) == "connected")
    for name in COUNTERS + GAUGES:
        assert value(first, name) is not None, name
    for name in STATES:
        assert value(first, "azs_syslog_state", state=name) in (0.0, 1.0)
    assert value(first, "azs_syslog_healthy") == 1
    assert value(first, "azs_syslog_events_sent_total") == 0
    assert value(first, "azs_syslog_connections_total") == 1
    assert last_error(first) is None

    send_events(0, 40)
    assert_all = wait_for_ids(receiver, range(40))
    assert set(range(40)) <= set(assert_all)
    flowing = worker.wait_for_metrics(
        lambda s: (
            value(s, "azs_syslog_events_sent_total") == 40
            and value(s, "azs_syslog_queue_events") == 0
        )
    )
    # The audit record of the set-syslog-server above was accepted too (and discarded).
    assert value(flowing, "azs_syslog_events_accepted_total") == 40 + 1
    assert value(flowing, "azs_syslog_events_dropped_total") == 0
    assert value(flowing, "azs_syslog_queue_bytes") == 0
    last_send = value(flowing, "azs_syslog_last_send_timestamp_seconds")
    assert last_send is not None and abs(last_send - time.time()) < 60

    # The outage: the receiver stops; what is sent meanwhile stays queued.
    receiver.stop()
    send_events(40, 5)
    down = worker.wait_for_metrics(
        lambda s: (
            state(s) in ("backing off", "connecting")
            and last_error(s) is not None
            and (value(s, "azs_syslog_queue_events") or 0) >= 5
        )
    )
    assert value(down, "azs_syslog_state", state="connected") == 0
    assert value(down, "azs_syslog_healthy") == 0
    error = last_error(down)
    assert error is not None
    assert error["server"] == f"127.0.0.1:{receiver.port} tcp"
    assert error["cause"] and error["step"]
    stamp = value(down, "azs_syslog_last_error_timestamp_seconds")
    assert stamp is not None and abs(stamp - time.time()) < 60
    assert (value(down, "azs_syslog_queue_oldest_age_seconds") or 0) > 0

    # Back: everything is delivered and the state says so.
    receiver.start()
    back = worker.wait_for_metrics(
        lambda s: state(s) == "connected" and value(s, "azs_syslog_events_sent_total") == 45,
        timeout=60,
    )
    assert value(back, "azs_syslog_queue_events") == 0
    assert (value(back, "azs_syslog_connections_total") or 0) >= 2
    assert set(range(45)) <= set(wait_for_ids(receiver, range(45)))
    code, _ = worker.terminate()
    assert code == 0
    log = worker.log.read_text()
    assert f"metrics for Prometheus at http://127.0.0.1:{worker.port}/metrics" in log
    assert "Traceback" not in log


@pytest.mark.parametrize(
    ("address", "said"),
    [
        ("127.0.0.1", "has no port"),
        ("127.0.0.1:0", "is not a port"),
        ("127.0.0.1:70000", "is not a port"),
        ("metrics.example.com:9464", "is not an IP address"),
        ("::1:9464", "put an IPv6 address in brackets"),
        ("[::1", "is not an address"),
    ],
)
def test_bad_address_is_a_usage_error(address: str, said: str) -> None:
    result = run_cli_process(["forwarder", "run", "--metrics-address", address], timeout=30)
    assert result.returncode == 2
    err = result.stderr.decode()
    assert said in err
    assert "Traceback" not in err


def test_bad_address_from_the_environment(azs_home: Path) -> None:
    result = run_cli_process(
        ["forwarder", "run"], env={"AZS_SYSLOG_METRICS_ADDRESS": "nowhere"}, timeout=30
    )
    assert result.returncode == 2
    assert "AZS_SYSLOG_METRICS_ADDRESS" in result.stderr.decode()


def test_address_in_use_is_a_clear_error_at_start(azs_home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli_process(
            ["forwarder", "run", "--metrics-address", f"127.0.0.1:{port}"], timeout=30
        )
    assert result.returncode == 1
    err = result.stderr.decode()
    assert f"error: cannot serve metrics on 127.0.0.1:{port}: Address already in use" in err
    assert "fix:" in err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 2
    # It failed before starting anything: no worker ran on this home.
    assert not (azs_home / "state" / "status.json").exists()


def test_ipv6_loopback_and_the_environment_variable(azs_home: Path, tmp_path: Path) -> None:
    port = free_port("::1", "tcp")
    env = {"AZS_SYSLOG_METRICS_ADDRESS": f"[::1]:{port}"}
    worker = Forwarder(tmp_path / "forwarder.log", env=env).start()
    assert worker.proc is not None
    try:
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline:
            assert worker.proc.poll() is None, worker.log.read_text()
            try:
                with urllib.request.urlopen(f"http://[::1]:{port}/metrics", timeout=5) as reply:
                    text = reply.read().decode()
            except (urllib.error.URLError, ConnectionError):
                text = ""
            if 'azs_syslog_state{state="not configured"} 1.0' in text:
                break
            time.sleep(0.1)
        assert 'azs_syslog_state{state="not configured"} 1.0' in text, worker.log.read_text()
        assert "azs_syslog_healthy 1.0" in text  # nothing configured, nothing queued
        # Only the address given: not the IPv4 loopback.
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
        code, _ = worker.terminate()
        assert code == 0
    finally:
        worker.stop_quietly()
