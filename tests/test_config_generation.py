"""Configuration generations: an event is never sent under an older configuration than the one
it was accepted under, nor over a weaker transport (held, until a strong enough transport is
configured again or the operator runs ``forwarder release-held``).

The worker is driven with ``step()`` against a real queue and real sockets on 127.0.0.1 (the
tiny ``id`` renderer and the socket sinks of test_worker.py); the end-to-end proof with real
rsyslog receivers and a real ``forwarder run`` process is in test_config_race_rsyslog.py.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from azs_syslog import config, paths
from azs_syslog.config import ClientSettings, Config, ServerSettings
from azs_syslog.errors import ConfigError
from azs_syslog.forwarder import status as st
from azs_syslog.forwarder.common import ConfigWatcher
from azs_syslog.forwarder.worker import Worker, WorkerOptions
from azs_syslog.inputs.socket_input import SocketInput
from azs_syslog.queue import SCHEMA_VERSION, Queue, encode_raw, lengths_to_bytes
from azs_syslog.queue.ingest import enqueue_records
from tests import test_worker as worker_tests
from tests.conftest import run_cli
from tests.test_worker import (
    Sink,
    Source,
    id_rendering,
    pause,
    plain_connect,
    run_until,
    tcp_config,
    wait_for_ids,
)

# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def sinks() -> Iterator[Callable[..., Sink]]:
    started: list[Sink] = []

    def make(udp: bool = False) -> Sink:
        sink = Sink(udp=udp).start()
        started.append(sink)
        return sink

    yield make
    for sink in started:
        sink.stop()


def enqueue_for(config_: Config, first: int, count: int) -> None:
    """Queue ``{"id": N}`` events as a producer that read ``config_`` would: rendered under
    its settings, stamped with its generation and security level."""
    rendering = id_rendering(config_)
    lines = [(n + 1, json.dumps({"id": i})) for n, i in enumerate(range(first, first + count))]
    with Queue() as queue:
        result = enqueue_records(
            lines,
            queue,
            rendering.renderer,
            rendering.key,
            generation=config_.generation,
            level=config_.security_level,
        )
    assert result.accepted == count


def make_worker(source: Callable[[], Config], **options: Any) -> Worker:
    return worker_tests.make_worker(source, **{"confirm_delay": 0.1, **options})


def steps(worker: Worker, seconds: float) -> None:
    """Let the worker run for a while (used only to show that something does *not* happen:
    what must happen is waited for with run_until)."""
    end = worker.clock() + seconds
    for _ in range(100_000):  # bounded: every step moves the fake clock on
        if worker.clock() >= end:
            return
        pause(worker, worker.step() or 0.01)


def tls_config(port: int, **server: Any) -> Config:
    return Config(
        server=ServerSettings("127.0.0.1", port, **server),
        client=ClientSettings(output_severity="Verbose"),
    )


# --- the configuration file --------------------------------------------------------------------


def test_every_write_increments_the_generation_and_old_files_are_read() -> None:
    path = paths.config_file()
    path.parent.mkdir(parents=True)
    old = {"version": 1, "server": {"ServerName": "siem.example.com", "ServerPort": 6514}}
    path.write_text(json.dumps(old))  # written before generations existed
    assert config.load_config().generation == 0
    config.set_output_severity("Verbose")
    assert config.load_config().generation == 1
    assert json.loads(path.read_text())["generation"] == 1
    for command in (
        ["set-syslog-server", "--server-name", "127.0.0.1", "--server-port", "514", "--use-udp"],
        ["set-syslog-client", "--output-severity", "Default"],
        ["set-syslog-server", "--remove"],
    ):
        assert run_cli(command).exit_code == 0
    assert config.load_config().generation == 4
    # The generation is metadata of the file, not a setting: equal settings are equal.
    assert replace(config.load_config(), generation=9) == config.load_config()


@pytest.mark.parametrize("value", ["-1", '"7"', "true", "1.5"])
def test_a_bad_generation_names_the_field(value: str) -> None:
    with pytest.raises(ConfigError, match="generation"):
        config.parse_config(f'{{"version": 1, "generation": {value}}}')


def test_security_levels() -> None:
    assert Config().security_level == config.LEVEL_CLEAR
    assert tcp_config(1).security_level == config.LEVEL_CLEAR
    assert tcp_config(1, udp=True).security_level == config.LEVEL_CLEAR
    skip = tls_config(1, skip_certificate_check=True)
    assert skip.security_level == config.LEVEL_TLS_UNVERIFIED
    assert tls_config(1).security_level == config.LEVEL_TLS_VERIFIED
    assert tls_config(1, skip_cn_check=True).security_level == config.LEVEL_TLS_VERIFIED


def test_config_watcher_loads_the_path_it_watches(tmp_path: Path) -> None:
    config.set_server(ServerSettings("127.0.0.1", 514, use_udp=True))  # the default file
    other = tmp_path / "other.json"
    other.write_bytes(config.serialize_config(replace(tcp_config(6000), generation=7)))
    loaded = ConfigWatcher(other)()
    assert loaded.server is not None and loaded.server.server_port == 6000
    assert loaded.generation == 7


# --- the queue ---------------------------------------------------------------------------------

_SCHEMA_V1 = """
CREATE TABLE batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ms INTEGER NOT NULL,
    count INTEGER NOT NULL,
    nbytes INTEGER NOT NULL,
    render_key TEXT NOT NULL,
    lengths BLOB NOT NULL,
    wire BLOB NOT NULL,
    raw BLOB NOT NULL
);
CREATE TABLE inflight (batch_id INTEGER PRIMARY KEY, sent_ms INTEGER NOT NULL);
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""


def make_v1_queue(path: Path, ids: range, render_key: str) -> None:
    """A queue file as version 1 of the schema made it, with one batch of ``ids``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(_SCHEMA_V1)
    wire = [b"%d <13>id=%d" % (len(b"<13>id=%d" % i), i) for i in ids]
    raw = [json.dumps({"id": i}).encode() for i in ids]
    blob = encode_raw([1_000] * len(ids), raw)
    lengths = lengths_to_bytes(map(len, wire))
    nbytes = len(b"".join(wire)) + len(lengths) + len(blob)
    db.execute(
        "INSERT INTO batches (created_ms, count, nbytes, render_key, lengths, wire, raw)"
        " VALUES (1000, ?, ?, ?, ?, ?, ?)",
        (len(ids), nbytes, render_key, lengths, b"".join(wire), blob),
    )
    counters = {"schema_version": 1, "accepted": len(ids), "queued_events": len(ids)}
    counters["queued_bytes"] = nbytes
    db.executemany("INSERT INTO counters VALUES (?, ?)", counters.items())
    db.commit()
    db.close()


def test_an_old_schema_queue_is_migrated_in_place(sinks: Callable[..., Sink]) -> None:
    sink = sinks()
    current = tcp_config(sink.port)
    make_v1_queue(paths.queue_file(), range(5), id_rendering(current).key)
    with Queue() as queue:
        counters = queue.counters()
        assert counters["schema_version"] == SCHEMA_VERSION == 3
        assert counters["released"] == 0  # counters added by the new version start at 0
        (old,) = queue.next_batches()
        assert (old.count, old.generation, old.level) == (5, 0, 0)
        # Old batches count as accepted in clear text: nothing changes for them.
        assert queue.held(level=0, generation=100).events == 0
    enqueue_for(replace(current, generation=3), 5, 5)
    with Queue() as queue:  # opening it again changes nothing
        batches = queue.next_batches()
        assert [(b.generation, b.level) for b in batches] == [(0, 0), (3, 0)]
    worker = make_worker(Source(replace(current, generation=3)))
    try:
        run_until(worker, lambda: worker.queue.depth().events == 0)
        assert wait_for_ids(sink, 10) == list(range(10))
        assert worker.queue.counters()["rerendered"] == 0  # same settings: same bytes
    finally:
        worker.close()


def test_an_empty_old_schema_queue_gets_the_new_layout() -> None:
    path = paths.queue_file()
    make_v1_queue(path, range(3), "k")
    db = sqlite3.connect(path)
    db.execute("DELETE FROM batches")  # delivered: empty, with batch ids used up to 1
    db.execute("UPDATE counters SET value = 0 WHERE name LIKE 'queued_%'")
    db.commit()
    db.close()
    with Queue() as queue:
        assert queue.counters()["schema_version"] == SCHEMA_VERSION
    db = sqlite3.connect(path)
    columns = [row[1] for row in db.execute("PRAGMA table_info(batches)")]
    db.close()
    # The small columns before the blobs, as in a new file.
    assert columns.index("level") < columns.index("lengths") < columns.index("raw")
    enqueue_for(replace(tcp_config(1), generation=1), 0, 1)
    with Queue() as queue:
        (batch,) = queue.next_batches()
    assert batch.id == 2  # ids never go back


# --- the worker's rules ------------------------------------------------------------------------


@pytest.mark.parametrize("udp", [False, True], ids=["same-render-key", "other-render-key"])
def test_a_batch_for_a_newer_configuration_waits_for_the_switch(
    sinks: Callable[..., Sink], udp: bool
) -> None:
    old_sink, new_sink = sinks(), sinks(udp=udp)
    source = Source(replace(tcp_config(old_sink.port), generation=1))
    # A poll so rare that only the batch itself can make the worker look at the file.
    worker = make_worker(source, config_poll=3600.0)
    try:
        enqueue_for(source.config, 0, 3)
        run_until(worker, lambda: worker.queue.depth().events == 0)
        assert wait_for_ids(old_sink, 3) == [0, 1, 2]
        # set-syslog-server, then send-event at once: the worker still runs generation 1.
        source.config = replace(tcp_config(new_sink.port, udp=udp), generation=2)
        enqueue_for(source.config, 3, 4)
        run_until(worker, lambda: worker.queue.depth().events == 0)
        assert wait_for_ids(new_sink, 4) == [3, 4, 5, 6]
        assert old_sink.ids() == [0, 1, 2]  # nothing of generation 2 went to the old server
        assert worker.config is not None and worker.config.generation == 2
        assert worker.queue.counters()["rerendered"] == 0
    finally:
        worker.close()


def test_a_new_generation_of_the_same_settings_is_adopted_without_reconnecting(
    sinks: Callable[..., Sink],
) -> None:
    sink = sinks()
    source = Source(replace(tcp_config(sink.port), generation=1))
    worker = make_worker(source, config_poll=3600.0)
    try:
        enqueue_for(source.config, 0, 1)
        run_until(worker, lambda: worker.queue.depth().events == 0)
        connections = worker.counters.connections
        source.config = replace(source.config, generation=2)  # e.g. the same set-* again
        enqueue_for(source.config, 1, 1)
        run_until(worker, lambda: worker.queue.depth().events == 0)
        assert wait_for_ids(sink, 2) == [0, 1]
        assert worker.config is not None and worker.config.generation == 2
        assert worker.counters.connections == connections
    finally:
        worker.close()


def test_a_batch_for_an_older_configuration_is_rendered_again(sinks: Callable[..., Sink]) -> None:
    udp_sink, tcp_sink = sinks(udp=True), sinks()
    udp = replace(tcp_config(udp_sink.port, udp=True), generation=1)
    enqueue_for(udp, 0, 5)  # rendered for UDP (no framing)
    worker = make_worker(Source(replace(tcp_config(tcp_sink.port), generation=2)))
    try:
        run_until(worker, lambda: worker.queue.depth().events == 0)
        assert wait_for_ids(tcp_sink, 5) == list(range(5))  # octet-counted: re-rendered
        assert udp_sink.ids() == []
        assert worker.queue.counters()["rerendered"] == 5
    finally:
        worker.close()


def test_a_weaker_transport_holds_until_release_held(sinks: Callable[..., Sink]) -> None:
    sink = sinks()
    config.set_output_severity("Verbose")
    config.set_server(ServerSettings("127.0.0.1", 9))  # TLS, chain verified: level 2
    enqueue_for(config.load_config(), 0, 10)
    config.set_server(ServerSettings("127.0.0.1", sink.port, no_encryption=True))
    enqueue_for(config.load_config(), 10, 10)
    worker = make_worker(ConfigWatcher())
    try:
        run_until(worker, lambda: len(sink.ids()) >= 10 and worker.held is not None)
        steps(worker, 0.5)
        assert sink.ids() == list(range(10, 20))  # later batches went on; none in clear
        assert worker.queue.depth().events == 10  # held: not sent, not dropped
        assert worker.queue.counters()["rerendered"] == 0  # not re-rendered either
        worker.write_status()
        status = worker.status()
        assert status.held is not None and status.held.events == 10
        message = (
            "10 events accepted under TLS are held: the current configuration (TCP) is weaker;"
            " configure TLS again to deliver them, or run `azs-syslog forwarder release-held`"
            " to send them under the current configuration"
        )
        assert status.held.message == message
        health = st.evaluate(status)
        assert not health.healthy and "10 events are held" in health.reason
        text = run_cli(["forwarder", "status"])
        assert text.exit_code == 1
        assert "Held" in text.stdout and "release-held" in text.stdout
        as_json = json.loads(run_cli(["forwarder", "status", "--json"]).stdout)
        assert as_json["status"]["held"]["events"] == 10

        result = run_cli(["forwarder", "release-held", "--json"])
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["released"] == 10
        run_until(worker, lambda: worker.queue.depth().events == 0)
        assert sorted(wait_for_ids(sink, 20)) == list(range(20))
        assert worker.queue.counters()["released"] == 10
        run_until(worker, lambda: worker.held is None)
        again = run_cli(["forwarder", "release-held"])
        assert again.exit_code == 0
        assert "no events are held" in again.stderr + again.stdout
    finally:
        worker.close()


def test_release_is_for_the_current_level_only(sinks: Callable[..., Sink]) -> None:
    """Released at TLS-without-check, a batch is held again under clear text."""
    with Queue() as queue:
        pass
    tls = replace(tls_config(9), generation=1)
    enqueue_for(tls, 0, 4)
    with Queue() as queue:
        assert queue.held(level=1, generation=2).events == 4
        assert queue.release_held(level=1, generation=2) == 4
        assert queue.held(level=1, generation=2).events == 0
        assert queue.held(level=0, generation=3).events == 4
        # Batches of a configuration newer than the one released under are not touched.
        assert queue.release_held(level=0, generation=0) == 0


def test_release_held_without_a_server_is_refused() -> None:
    result = run_cli(["forwarder", "release-held"])
    assert result.exit_code == 1
    assert "no syslog server is configured" in result.stderr


def test_a_file_gone_back_in_generations_is_waited_for_then_followed(
    sinks: Callable[..., Sink],
) -> None:
    # GENERATION_WAIT (10 s) passes on the worker's fake clock.
    sink = sinks()
    source = Source(replace(tcp_config(sink.port), generation=2))
    worker = make_worker(source, config_poll=3600.0)
    try:
        run_until(worker, lambda: worker.sender is not None)
        # Rendered for generation 9, but the file (restored from a backup) has generation 2.
        enqueue_for(replace(tcp_config(sink.port, udp=True), generation=9), 0, 3)
        run_until(worker, lambda: worker.generation_wait is not None)
        assert sink.ids() == []
        waiting = worker.status().waiting_for_generation
        assert waiting is not None
        assert (waiting.batch_generation, waiting.config_generation) == (9, 2)
        run_until(worker, lambda: worker.queue.depth().events == 0, timeout=10)
        assert wait_for_ids(sink, 3) == [0, 1, 2]  # re-rendered under the file's settings
        assert worker.queue.counters()["rerendered"] == 3
        assert worker.status().waiting_for_generation is None
        # The file's next write (generation 3, below the 9 given up on) is a change like any
        # other: its events wait for the switch, they are not rendered back into generation 2.
        udp_sink = sinks(udp=True)
        source.config = replace(tcp_config(udp_sink.port, udp=True), generation=3)
        enqueue_for(source.config, 3, 2)
        run_until(worker, lambda: worker.queue.depth().events == 0, timeout=10)
        assert wait_for_ids(udp_sink, 2) == [3, 4]
        assert sink.ids() == [0, 1, 2]
        assert worker.queue.counters()["rerendered"] == 3
    finally:
        worker.close()


# --- the producers -----------------------------------------------------------------------------


def test_send_event_records_the_generation_and_level(tmp_path: Path) -> None:
    from tests.test_send_event import windows_event

    args = ["set-syslog-server", "--server-name", "127.0.0.1", "--server-port", "6514"]
    assert run_cli([*args, "--skip-certificate-check"]).exit_code == 0
    assert run_cli(["send-event", "-"], input=windows_event(1) + "\n").exit_code == 0
    assert run_cli(args).exit_code == 0
    events = tmp_path / "events.jsonl"
    events.write_text("".join(windows_event(i) + "\n" for i in range(2, 200)))
    result = run_cli(["send-event", "--jobs", "2", str(events)])
    assert result.exit_code == 0, result.stderr
    with Queue() as queue:
        # The audit events of the two set-syslog-server (pinned) aside.
        batches = [b for b in queue.next_batches(100) if not b.pinned]
    assert {(b.generation, b.level) for b in batches[:1]} == {(1, config.LEVEL_TLS_UNVERIFIED)}
    assert {(b.generation, b.level) for b in batches[1:]} == {(2, config.LEVEL_TLS_VERIFIED)}
    assert sum(b.count for b in batches) == 199


def test_the_socket_input_stamps_what_its_rendering_was_made_for(
    sinks: Callable[..., Sink],
) -> None:
    import socket
    import tempfile

    sink = sinks()
    short = Path(tempfile.mkdtemp(prefix="azs-", dir="/tmp"))
    source = Source(replace(tcp_config(sink.port), generation=4))
    worker = make_worker(source, socket_path=short / "in.sock", socket_input=True)
    try:
        assert worker.options.socket_path is not None
        socket_input = SocketInput(
            worker.options.socket_path, queue_path=worker.queue.path, limits=worker.queue.limits
        )
        worker.socket_input = socket_input
        worker.step()  # applies the configuration: gives the input its rendering
        assert socket_input.rendering is not None
        assert (socket_input.rendering.generation, socket_input.rendering.level) == (4, 0)
        socket_input.start()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(10)
                conn.connect(str(worker.options.socket_path))
                conn.sendall(b'{"id": 1}\n')
                assert conn.recv(100) == b"ok 1\n"
            with Queue() as queue:
                (batch,) = queue.next_batches()
            assert (batch.generation, batch.level) == (4, 0)
        finally:
            socket_input.stop()
    finally:
        worker.close()
        short.rmdir()


def test_the_held_message_names_the_way_out() -> None:
    from azs_syslog.forwarder.common import held_message

    udp = tcp_config(514, udp=True)
    assert held_message(1, config.LEVEL_TLS_VERIFIED, udp) == (
        "1 event accepted under TLS is held: the current configuration (UDP) is weaker;"
        " configure TLS again to deliver it, or run `azs-syslog forwarder release-held` to send"
        " it under the current configuration"
    )
    unverified = tls_config(6514, skip_certificate_check=True)
    assert held_message(3, config.LEVEL_TLS_VERIFIED, unverified).startswith(
        "3 events accepted under TLS are held: the current configuration (TLS without a"
        " certificate check) is weaker; configure TLS with the certificate check again"
    )


def test_the_socket_input_renders_for_the_file_written_just_before_the_line(
    sinks: Callable[..., Sink],
) -> None:
    """A line written to the socket right after a ``set-*`` (before the worker's next look at
    the file) is stamped with the new generation: the input looks at the file itself before
    each commit, so the worker never re-renders it back into the previous configuration."""
    import socket
    import tempfile

    sink = sinks()
    short = Path(tempfile.mkdtemp(prefix="azs-", dir="/tmp"))
    assert run_cli(["set-syslog-server", "--server-name", "127.0.0.1", "--server-port",
                    str(sink.port), "--no-encryption"]).exit_code == 0  # fmt: skip
    opts = WorkerOptions(confirm_delay=0.1, socket_input=True, socket_path=short / "in.sock")
    worker = Worker(ConfigWatcher(), options=opts, connect=plain_connect)
    try:
        socket_input = SocketInput(
            short / "in.sock", queue_path=worker.queue.path, limits=worker.queue.limits
        )
        worker.socket_input = socket_input
        worker.step()
        assert socket_input.rendering is not None
        first = socket_input.rendering.generation
        socket_input.refresh = worker._socket_refresh()
        socket_input.start()
        try:
            # The worker takes no step between the change and the line.
            changed = run_cli(["set-syslog-server", "--server-name", "127.0.0.1",
                               "--server-port", str(sink.port), "--no-encryption",
                               "--message-format", "rfc5424"])  # fmt: skip
            assert changed.exit_code == 0
            line = json.dumps({"type": "pep", "event": "PrivilegedEndpointAccessed",
                               "who": "a", "which_ip": "10.0.0.1"})  # fmt: skip
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(10)
                conn.connect(str(short / "in.sock"))
                conn.sendall(line.encode() + b"\n")
                assert conn.recv(100) == b"ok 1\n"
            with Queue() as queue:
                # The set-syslog-server's audit events (pinned) aside.
                (batch,) = [b for b in queue.next_batches() if not b.pinned]
            assert batch.generation == first + 1
            assert b" azs-syslog " in batch.wire  # rendered as RFC 5424, the new format
        finally:
            socket_input.stop()
    finally:
        worker.close()
        short.rmdir()
