"""docs/troubleshooting.md shows the messages the code really produces.

Each error is provoked for real (a TLS receiver on 127.0.0.1 with certificates made here, a
bad PFX, a broken configuration file) and its message and fix must appear in the guide, with
digits (ports, dates, counts) normalised on both sides.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from azs_syslog.lab import pki
from azs_syslog.lab.receiver import Listener, server_ssl_context
from tests.conftest import REPO_ROOT, run_cli
from tests.receivers import expired_server

GUIDE = (REPO_ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")


def normal(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\d+", "N", text)).strip()


NORMAL_GUIDE = normal(GUIDE)


def assert_documented(text: str) -> None:
    assert normal(text) in NORMAL_GUIDE, f"docs/troubleshooting.md does not show: {text}"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    ca = pki.make_ca("Contoso Private CA")
    other = pki.make_ca("Other CA")
    (directory / "ca.pem").write_bytes(ca.cert_pem())
    pki.issue(ca, "localhost", dns_names=("localhost",), server=True).write(directory, "server")
    pki.issue(
        ca, "siem01.example.com", dns_names=("siem01.example.com", "localhost"), server=True
    ).write(directory, "names")
    expired_server(ca).write(directory, "expired")
    client = pki.issue(ca, "forwarder", client=True)
    (directory / "client.pfx").write_bytes(client.to_pfx(b"right"))
    (directory / "nokey.pfx").write_bytes(client.to_pfx(b"right", include_key=False))
    stranger = pki.issue(other, "forwarder", client=True)
    (directory / "stranger.pfx").write_bytes(stranger.to_pfx(b"right"))
    return directory


def receiver(certs: Path, stem: str, *, client_ca: bool = False) -> Listener:
    context = server_ssl_context(
        str(certs / f"{stem}.pem"),
        str(certs / f"{stem}-key.pem"),
        client_ca=str(certs / "ca.pem") if client_ca else None,
    )
    return Listener("tls", "127.0.0.1", 0, ssl_context=context).start()


@pytest.fixture
def listening(certs: Path, request: pytest.FixtureRequest) -> Iterator[Listener]:
    stem, client_ca = request.param
    listener = receiver(certs, stem, client_ca=client_ca)
    try:
        yield listener
    finally:
        listener.stop()


def failed_step(*set_server: str) -> dict[str, str]:
    assert run_cli(["set-syslog-server", *set_server]).exit_code == 0
    result = run_cli(["test-syslog-server", "--json"])
    assert result.exit_code == 1
    steps = json.loads(result.stdout)["steps"]
    failed: dict[str, str] = next(step for step in steps if step["status"] == "failed")
    return failed


def test_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    step = failed_step("--server-name", "localhost", "--server-port", str(port))
    assert step["cause"] == "refused"
    assert_documented(f"{step['summary']} fix: {step['fix']}")


@pytest.mark.parametrize(
    ("listening", "name", "trusted", "cause"),
    [
        (("server", False), "localhost", False, "unknown-ca"),
        (("names", False), "127.0.0.1", True, "name-mismatch"),
        (("expired", False), "localhost", True, "expired"),
        (("server", True), "localhost", True, "client-certificate-required"),
    ],
    indirect=["listening"],
)
def test_tls_failures(
    listening: Listener, certs: Path, name: str, trusted: bool, cause: str
) -> None:
    extra = ["--trusted-ca", str(certs / "ca.pem")] if trusted else []
    step = failed_step("--server-name", name, "--server-port", str(listening.port), *extra)
    assert step["cause"] == cause
    assert_documented(f"{step['summary']} fix: {step['fix']}")


def test_client_certificate_rejected(certs: Path) -> None:
    listener = receiver(certs, "server", client_ca=True)
    try:
        imported = run_cli(
            ["set-syslog-client", "--pfx-file", str(certs / "stranger.pfx")], input="right\n"
        )
        assert imported.exit_code == 0, imported.output
        step = failed_step(
            "--server-name",
            "localhost",
            "--server-port",
            str(listener.port),
            "--trusted-ca",
            str(certs / "ca.pem"),
        )
    finally:
        listener.stop()
    assert step["cause"] == "client-certificate-rejected"
    assert_documented(f"{step['summary']} fix: {step['fix']}")


@pytest.mark.parametrize(("pfx", "password"), [("client.pfx", "wrong"), ("nokey.pfx", "right")])
def test_pfx_refusals(certs: Path, pfx: str, password: str) -> None:
    result = run_cli(["set-syslog-client", "--pfx-file", str(certs / pfx)], input=password + "\n")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert_documented(result.stderr)


@pytest.mark.parametrize(
    ("port", "shown"), [(70000, "70000 is not a port number"), ("high", "must be an integer")]
)
def test_configuration_file_errors(azs_home: Path, port: object, shown: str) -> None:
    assert (
        run_cli(
            ["set-syslog-server", "--server-name", "siem.example.com", "--server-port", "6514"]
        ).exit_code
        == 0
    )
    config_file = azs_home / "config" / "config.json"
    data = json.loads(config_file.read_text())
    data["server"]["ServerPort"] = port
    config_file.write_text(json.dumps(data))
    result = run_cli(["get-syslog-server"])
    assert result.exit_code == 1
    assert shown in result.stderr
    # the path differs; what follows it, and the fix, must be in the guide
    message, fix = result.stderr.split("config.json: ", 1)[1].splitlines()
    assert_documented(message)
    assert_documented(fix.strip())
