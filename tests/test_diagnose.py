"""test-syslog-server against a real rsyslog: every step reported, every failure explained.

The library tests pass a ``Config`` directly; the CLI tests configure the server with
``set-syslog-server``, as an operator would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from azs_syslog.config import ClientCertificate, ClientSettings, Config, ServerSettings
from azs_syslog.forwarder.diagnose import build_test_message, diagnose
from tests.conftest import run_cli
from tests.receivers import RsyslogReceiver, TestPKI, free_port, rsyslog_factory

__all__ = ["rsyslog_factory"]

Factory = Callable[..., RsyslogReceiver]


@pytest.fixture
def pki_files(tmp_path: Path) -> TestPKI:
    return TestPKI.create(tmp_path / "pki")


def client_of(files: TestPKI) -> ClientSettings:
    return ClientSettings(
        ClientCertificate(
            "CN=azs-syslog test client",
            "CN=azs-syslog test CA",
            "00",
            "2026-01-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
            str(files.client_cert),
            str(files.client_key),
        )
    )


def statuses(result: object) -> dict[str, str]:
    return {step.name: step.status for step in result.steps}  # type: ignore[attr-defined]


def test_mutual_tls_every_step_and_a_test_event(
    rsyslog_factory: Factory, pki_files: TestPKI
) -> None:
    receiver = rsyslog_factory("tls", pki=pki_files, authmode="x509/certvalid")
    config = Config(
        server=ServerSettings("localhost", receiver.port, trusted_ca=str(pki_files.ca_file)),
        client=client_of(pki_files),
    )
    result = diagnose(config, send_test_event=True)
    assert result.ok
    assert statuses(result) == {
        "configuration": "ok",
        "dns": "ok",
        "connect": "ok",
        "tls": "ok",
        "name": "ok",
        "send": "ok",
    }
    steps = {step.name: step for step in result.steps}
    assert "127.0.0.1" in steps["dns"].details["addresses"]
    tls_details = steps["tls"].details
    assert tls_details["version"] in ("TLSv1.2", "TLSv1.3")
    assert tls_details["client_certificate_requested"] is True
    assert tls_details["client_certificate_sent"] is True
    chain = tls_details["server_chain"]
    assert [c["subject"] for c in chain] == ["CN=localhost", "CN=azs-syslog test CA"]
    assert "localhost" in steps["name"].summary
    lines = receiver.wait_for_lines(1)
    assert len(lines) == 1 and b"test-syslog-server" in lines[0]


def test_server_auth_without_test_event(rsyslog_factory: Factory, pki_files: TestPKI) -> None:
    receiver = rsyslog_factory("tls", pki=pki_files)
    config = Config(
        server=ServerSettings("localhost", receiver.port, trusted_ca=str(pki_files.ca_file))
    )
    result = diagnose(config)
    assert result.ok
    assert statuses(result)["send"] == "skipped"
    tls_step = next(s for s in result.steps if s.name == "tls")
    assert tls_step.details["client_certificate_requested"] is False
    assert "not requested" in tls_step.summary
    assert receiver.lines() == []


def test_name_mismatch_is_its_own_step(rsyslog_factory: Factory, pki_files: TestPKI) -> None:
    cert, key = pki_files.issue("other", "syslog.example.com", dns_names=("syslog.example.com",))
    receiver = rsyslog_factory("tls", cert_file=cert, key_file=key, ca_file=pki_files.ca_file)
    config = Config(
        server=ServerSettings("127.0.0.1", receiver.port, trusted_ca=str(pki_files.ca_file))
    )
    result = diagnose(config, send_test_event=True)
    assert not result.ok
    assert statuses(result) == {
        "configuration": "ok",
        "dns": "ok",
        "connect": "ok",
        "tls": "ok",
        "name": "failed",
        "send": "not run",
    }
    name = next(s for s in result.steps if s.name == "name")
    assert name.cause == "name-mismatch"
    assert name.details["names"] == ["syslog.example.com"]
    assert name.fix and "--skip-cn-check" in name.fix
    assert receiver.lines() == []


def test_unknown_ca_fails_the_tls_step(
    rsyslog_factory: Factory, pki_files: TestPKI, tmp_path: Path
) -> None:
    receiver = rsyslog_factory("tls", pki=pki_files)
    other = TestPKI.create(tmp_path / "other", ca_name="other CA")
    config = Config(
        server=ServerSettings("localhost", receiver.port, trusted_ca=str(other.ca_file))
    )
    result = diagnose(config)
    assert statuses(result)["tls"] == "failed"
    step = next(s for s in result.steps if s.name == "tls")
    assert step.cause == "unknown-ca" and step.fix and "--trusted-ca" in step.fix


def test_refused_and_not_configured() -> None:
    port = free_port("127.0.0.1", "tcp")
    result = diagnose(Config(server=ServerSettings("127.0.0.1", port)))
    assert statuses(result) == {
        "configuration": "ok",
        "dns": "ok",
        "connect": "failed",
        "tls": "not run",
        "name": "not run",
        "send": "not run",
    }
    assert next(s for s in result.steps if s.name == "connect").cause == "refused"

    empty = diagnose(Config())
    assert not empty.ok
    assert empty.steps[0].cause == "not-configured"
    assert empty.steps[0].fix and "set-syslog-server" in empty.steps[0].fix


@pytest.mark.parametrize(
    ("protocol", "settings"),
    [
        ("udp", {"use_udp": True}),
        ("tcp", {"no_encryption": True, "framing": "lf", "message_format": "rfc5424"}),
    ],
)
def test_plain_transports_send_a_test_event(
    rsyslog_factory: Factory, protocol: str, settings: dict[str, object]
) -> None:
    receiver = rsyslog_factory(protocol)
    config = Config(server=ServerSettings("127.0.0.1", receiver.port, **settings))  # type: ignore[arg-type]
    result = diagnose(config, send_test_event=True)
    assert result.ok
    assert statuses(result)["tls"] == "skipped" and statuses(result)["name"] == "skipped"
    lines = receiver.wait_for_lines(1)
    assert len(lines) == 1 and b"test-syslog-server" in lines[0]
    if settings.get("message_format") == "rfc5424":
        assert lines[0].split(b">", 1)[1].startswith(b"1 ")


def test_test_message_framing() -> None:
    octet = build_test_message(Config(server=ServerSettings("h", 1)))
    length, message = octet.split(b" ", 1)
    assert int(length) == len(message) and message.startswith(b"<")
    lf = build_test_message(Config(server=ServerSettings("h", 1, no_encryption=True, framing="lf")))
    assert lf.endswith(b"\n") and lf.count(b"\n") == 1
    udp = build_test_message(Config(server=ServerSettings("h", 1, use_udp=True)))
    assert udp.startswith(b"<") and not udp.endswith(b"\n")
    assert b"CEF:0|Microsoft|Microsoft Azure Stack Hub|1.0|" in udp


# -- the command --------------------------------------------------------------------------------


def set_server(*args: str) -> None:
    result = run_cli(["set-syslog-server", *args])
    assert result.exit_code == 0, result.stderr


def test_cli_json_and_exit_codes(rsyslog_factory: Factory, pki_files: TestPKI) -> None:
    receiver = rsyslog_factory("tls", pki=pki_files)
    port = str(receiver.port)
    set_server(
        "--server-name", "localhost", "--server-port", port, "--trusted-ca", str(pki_files.ca_file)
    )
    result = run_cli(["test-syslog-server", "--json", "--send-test-event"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["transport"] == "tls"
    assert [s["name"] for s in document["steps"]] == [
        "configuration",
        "dns",
        "connect",
        "tls",
        "name",
        "send",
    ]
    assert len(receiver.wait_for_lines(1)) == 1

    set_server("--server-name", "localhost", "--server-port", port)
    result = run_cli(["test-syslog-server"])
    assert result.exit_code == 1
    assert "FAILED" in result.stdout
    assert "fix: give the CA that issued the server's certificate" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_cli_reports_a_missing_configuration() -> None:
    result = run_cli(["test-syslog-server", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["steps"][0]["cause"] == "not-configured"


def test_skip_certificate_check_reports_the_name_step_skipped(
    rsyslog_factory: Factory, pki_files: TestPKI
) -> None:
    receiver = rsyslog_factory("tls", pki=pki_files)
    config = Config(server=ServerSettings("127.0.0.1", receiver.port, skip_certificate_check=True))
    result = diagnose(config, send_test_event=True)
    assert result.ok
    assert statuses(result)["name"] == "skipped"
    configuration = result.steps[0]
    assert "skip-certificate-check" in configuration.details["verification"]
    assert len(receiver.wait_for_lines(1)) == 1
