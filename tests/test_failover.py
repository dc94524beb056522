"""Failover settings: the options round-trip through the file and get-syslog-server, half a
failover is a usage error, old files stay valid, ``--remove`` removes it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from azs_syslog import config
from azs_syslog.errors import ConfigError
from tests.conftest import run_cli

PRIMARY = ["set-syslog-server", "--server-name", "10.0.0.5", "--server-port", "6514"]


def test_the_failover_options_round_trip() -> None:
    result = run_cli(
        [
            *PRIMARY,
            "--failover-server-name",
            "siem2.example.com.",
            "--failover-server-port",
            "6515",
            "--failover-after",
            "5",
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert "failover to siem2.example.com port 6515 after 5 s" in result.stderr
    server = config.load_config().server
    assert server is not None
    assert (server.failover_server_name, server.failover_server_port) == (
        "siem2.example.com",
        6515,
    )
    assert server.failover_after == 5
    shown = json.loads(run_cli(["get-syslog-server", "--json"]).stdout)
    assert shown["FailoverServerName"] == "siem2.example.com"
    assert shown["FailoverServerPort"] == 6515
    assert shown["FailoverAfter"] == 5
    text = run_cli(["get-syslog-server"]).stdout
    assert "FailoverServerName" in text and "siem2.example.com" in text and "5 s" in text


def test_powershell_spellings_and_the_default_wait() -> None:
    result = run_cli(
        [
            "Set-SyslogServer",
            "-ServerName",
            "10.0.0.5",
            "-ServerPort",
            "6514",
            "-FailoverServerName:10.0.0.6",
            "-FailoverServerPort",
            "6514",
        ]
    )
    assert result.exit_code == 0, result.stderr
    server = config.load_config().server
    assert server is not None
    assert server.failover_server_name == "10.0.0.6"
    assert server.failover_after == config.DEFAULT_FAILOVER_AFTER
    # The failover server is reached with the primary's transport and trust, by its own name.
    secondary = server.failover_settings()
    assert (secondary.server_name, secondary.server_port) == ("10.0.0.6", 6514)
    assert secondary.transport == server.transport == "tls"
    assert not secondary.has_failover


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--failover-server-name", "10.0.0.6"], "--failover-server-name needs"),
        (["--failover-server-port", "6514"], "--failover-server-port needs"),
        (["--failover-after", "5"], "--failover-after applies only with a failover server"),
        (
            ["--failover-server-name", "10.0.0.5", "--failover-server-port", "6514"],
            "name the server itself",
        ),
        (
            ["--use-udp", "--failover-server-name", "10.0.0.6", "--failover-server-port", "514"],
            "--use-udp and --failover-server-name cannot be combined: UDP has no connection",
        ),
        (
            ["--failover-server-name", "bad_name", "--failover-server-port", "6514"],
            "--failover-server-name",
        ),
        (
            ["--failover-server-name", "10.0.0.6", "--failover-server-port", "0"],
            "--failover-server-port",
        ),
    ],
)
def test_half_a_failover_is_a_usage_error(extra: list[str], message: str) -> None:
    result = run_cli([*PRIMARY, *extra])
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # one line, and the fix
    assert config.load_config().server is None  # nothing written


def test_remove_removes_the_failover_too() -> None:
    args = [*PRIMARY, "--failover-server-name", "10.0.0.6", "--failover-server-port", "6514"]
    assert run_cli(args).exit_code == 0
    assert run_cli(["set-syslog-server", "--remove", "--failover-after", "5"]).exit_code == 2
    assert run_cli(["set-syslog-server", "--remove"]).exit_code == 0
    assert config.load_config().server is None
    # Set again without the failover options: none.
    assert run_cli(PRIMARY).exit_code == 0
    server = config.load_config().server
    assert server is not None and not server.has_failover
    # Without a failover server the file and get-syslog-server keep their earlier shape.
    shown = json.loads(run_cli(["get-syslog-server", "--json"]).stdout)
    assert not [key for key in shown if key.startswith("Failover")]
    assert "Failover" not in config.paths.config_file().read_text()


def test_a_file_without_failover_settings_stays_valid() -> None:
    text = json.dumps(
        {"version": 1, "server": {"ServerName": "10.0.0.5", "ServerPort": 6514}, "client": None}
    )
    server = config.parse_config(text).server
    assert server is not None
    assert server.failover_server_name is None and not server.has_failover


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"FailoverServerName": "10.0.0.6"}, "FailoverServerPort"),
        ({"FailoverServerPort": 6514}, "FailoverServerName"),
        (
            {
                "UseUDP": True,
                "NoEncryption": True,
                "FailoverServerName": "10.0.0.6",
                "FailoverServerPort": 514,
            },
            "FailoverServerName",
        ),
        ({"FailoverServerName": "no such", "FailoverServerPort": 6514}, "FailoverServerName"),
        (
            {"FailoverServerName": "10.0.0.6", "FailoverServerPort": 6514, "FailoverAfter": 0},
            "FailoverAfter",
        ),
    ],
)
def test_a_file_with_half_a_failover_is_refused(fields: dict[str, object], field: str) -> None:
    server = {"ServerName": "10.0.0.5", "ServerPort": 6514, **fields}
    with pytest.raises(ConfigError) as caught:
        config.parse_config(json.dumps({"version": 1, "server": server}))
    assert caught.value.field == f"server -> {field}"


# --- the worker, step by step, against two real socket sinks ----------------------------------


def failover_metric(worker: Any) -> float:
    from azs_syslog.forwarder.metrics import SnapshotCollector

    for family in SnapshotCollector(worker.status).collect():
        if family.name == "azs_syslog_failover_active":
            return float(family.samples[0].value)
    raise AssertionError("no azs_syslog_failover_active metric")


def test_failback_drains_then_resends_what_was_not_confirmed_counted() -> None:
    from azs_syslog.config import ClientSettings, Config, ServerSettings
    from azs_syslog.forwarder.snapshot import Endpoint
    from tests.test_worker import Sink, Source, enqueue, make_worker, run_until, wait_for_ids

    primary, secondary = Sink().start(), Sink().start()
    primary.stop()  # down at the start; its port is kept for when it comes back
    server = ServerSettings(
        "127.0.0.1",
        primary.port,
        no_encryption=True,
        failover_server_name="127.0.0.1",
        failover_server_port=secondary.port,
        failover_after=1,
    )
    enqueue(0, 1000)
    # A replay window longer than the test (on the worker's fake clock): nothing sent to the
    # failover server is confirmed, so the failback's drain runs out of time and every batch
    # goes out again.
    worker = make_worker(
        Source(Config(server=server, client=ClientSettings(output_severity="Verbose"))),
        confirm_delay=3600.0,
        drain_timeout=0.3,
        backoff_initial=0.05,
        backoff_max=0.2,
    )
    try:
        started = worker.clock()
        run_until(worker, lambda: worker.failover.active == "failover")
        assert worker.clock() - started >= 1.0  # not before FailoverAfter
        run_until(worker, lambda: sorted(secondary.ids()) == list(range(1000)))
        assert failover_metric(worker) == 1.0
        status = worker.status().failover
        assert status is not None and status.active == "failover"
        assert status.server == Endpoint("127.0.0.1", secondary.port)
        assert "no connection to the primary server" in status.reason
        assert status.next_probe_in_s is not None and status.next_probe_in_s <= 1.0

        primary.start()
        run_until(worker, lambda: worker.failover.active == "primary" and worker.sender is not None)
        back = worker.status().failover
        assert back is not None and "answered a probe" in back.reason
        assert failover_metric(worker) == 0.0
        worker.options.confirm_delay = 0.2
        run_until(worker, lambda: worker.queue.depth().events == 0)
        assert sorted(wait_for_ids(primary, 1000)) == list(range(1000))
        counts = worker.queue.counters()
        assert counts["resent"] == 1000  # every duplicate at the SIEM is counted
        assert counts["sent"] == 1000
    finally:
        worker.close()
        primary.stop()
        secondary.stop()
