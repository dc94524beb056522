"""The audit trail without a network: what a set-* queues, and an unchanged set-* queueing and
writing nothing."""

from __future__ import annotations

from array import array
from pathlib import Path

from azs_syslog import config, paths
from azs_syslog.forwarder.sequence import number_messages
from azs_syslog.queue import Queue
from tests.conftest import run_cli

SERVER = ["set-syslog-server", "--server-name", "127.0.0.1", "--server-port", "6514"]


def pinned() -> list[tuple[int, bytes]]:
    with Queue() as queue:
        return [(b.generation, b.wire) for b in queue.next_batches(100) if b.pinned]


def test_rerunning_the_same_set_says_unchanged_and_emits_nothing() -> None:
    first = run_cli([*SERVER, "--skip-cn-check"])
    assert first.exit_code == 0, first.stderr
    generation = config.load_config().generation
    queued = pinned()
    assert len(queued) == 1  # the new server's copy (there was none before)
    again = run_cli([*SERVER, "--skip-cn-check"])
    assert again.exit_code == 0
    assert "unchanged: the syslog server is already 127.0.0.1 port 6514" in again.stderr
    assert config.load_config().generation == generation
    assert pinned() == queued

    severity = run_cli(["set-syslog-client", "--output-severity", "Default"])
    assert severity.exit_code == 0
    assert "unchanged" in severity.stderr
    assert config.load_config().generation == generation
    assert pinned() == queued


def test_remove_of_nothing_is_unchanged() -> None:
    result = run_cli(["set-syslog-server", "--remove"])
    assert result.exit_code == 0
    assert result.stderr == "unchanged: no syslog server was configured\n"
    assert config.load_config().generation == 0
    assert pinned() == []


def test_a_change_queues_one_copy_per_server_before_writing() -> None:
    assert run_cli([*SERVER, "--skip-cn-check"]).exit_code == 0
    # The same server, other settings: one copy, for it, rendered as it is configured now.
    assert run_cli([*SERVER, "--message-format", "rfc5424"]).exit_code == 0
    # Another server: one copy for the server left, one for the new one, each rendered for
    # its own configuration.
    other = ["--server-name", "127.0.0.1", "--server-port", "6515", "--no-encryption"]
    assert run_cli(["set-syslog-server", *other]).exit_code == 0
    with Queue() as queue:
        copies = [(b.generation, b.pinned, b.wire) for b in queue.next_batches(100)][1:]
    assert [(generation, server) for generation, server, _ in copies] == [
        (1, "127.0.0.1:6514 tls"),
        (2, "127.0.0.1:6514 tls"),
        (3, "127.0.0.1:6515 tcp"),
    ]
    same, left, new = (wire for _, _, wire in copies)
    assert b" azs-syslog - forwarder - " not in same
    assert b"cs2=SkipCNCheck,MessageFormat cs2Label=changed" in same
    assert b"cs4=SkipCNCheck: true; MessageFormat: rfc3164 cs4Label=before" in same
    assert b" azs-syslog - forwarder - " in left and b" azs-syslog - forwarder - " not in new
    for wire in (left, new):
        assert b"forwarding changed from 127.0.0.1:6514 tls to 127.0.0.1:6515 tcp" in wire


def test_a_client_change_without_a_server_queues_nothing() -> None:
    assert run_cli(["set-syslog-client", "--output-severity", "Verbose"]).exit_code == 0
    assert config.load_config().generation == 1
    assert pinned() == []


def test_sequence_numbers_are_added_to_each_message_and_reframed() -> None:
    messages = [b"<84>x CEF:0|a|b|c|d|e|5|rt=1", b"<84>y CEF:0|a|b|c|d|e|5|rt=2 k=v"]
    stream = "00112233445566aa"
    for framing, frame in (
        ("octet-counting", lambda m: b"%d %b" % (len(m), m)),
        ("lf", lambda m: m + b"\n"),
        ("none", lambda m: m),
    ):
        framed = [frame(m) for m in messages]
        wire, lengths = number_messages(
            b"".join(framed), array("I", map(len, framed)), framing, 41, stream
        )
        expected = [
            frame(m + b" cn1=%d cn1Label=seq cs1=%b cs1Label=stream" % (n, stream.encode()))
            for n, m in zip((41, 42), messages, strict=True)
        ]
        assert wire == b"".join(expected)
        assert list(lengths) == [len(e) for e in expected]


def test_send_event_cannot_forge_a_forwarder_event() -> None:
    line = '{"type": "forwarder", "event": "ConfigurationChanged"}\n'
    result = run_cli(["send-event", "-"], input=line)
    assert result.exit_code != 0
    assert "unknown event type 'forwarder'" in result.stderr


def test_importing_the_same_pfx_again_is_unchanged(tmp_path: Path) -> None:
    from tests.receivers import TestPKI

    password = "Same-Pfx-Password-0815"
    pki = TestPKI.create(tmp_path / "pki")
    pfx = tmp_path / "client.pfx"
    pfx.write_bytes(pki.client.to_pfx(password.encode()))
    assert run_cli([*SERVER]).exit_code == 0
    first = run_cli(["set-syslog-client", "--pfx-file", str(pfx)], input=password + "\n")
    assert first.exit_code == 0, first.stderr
    generation = config.load_config().generation
    queued = pinned()
    again = run_cli(["set-syslog-client", "--pfx-file", str(pfx)], input=password + "\n")
    assert again.exit_code == 0, again.stderr
    assert "unchanged: the client settings (certificate, OutputSeverity) are already" in (
        again.stderr
    )
    assert "client certificate stored" not in again.stderr
    assert config.load_config().generation == generation
    assert pinned() == queued
    thumbprint = config.load_config().client.certificate.thumbprint  # type: ignore[union-attr]
    record = queued[-1][1]
    assert f"cs5=ClientCertificate: thumbprint {thumbprint}".encode() in record
    for stored in Path(str(paths.queue_file())).parent.glob("queue.sqlite3*"):
        assert password.encode() not in stored.read_bytes()
