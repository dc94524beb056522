"""The refusal matrix as the forwarder lives it: against a real rsyslog, each refused server
leaves the worker backing off with the explained error (cause and fix) in its status, and
nothing reaches the receiver; each accepted one delivers. The transport tests check the same
matrix at the connection level (tests/test_transport.py)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from azs_syslog.config import ClientSettings, Config, ServerSettings
from azs_syslog.encode.render import Renderer, RenderSettings
from azs_syslog.forwarder import status as st
from azs_syslog.forwarder.worker import Worker, WorkerOptions
from azs_syslog.queue import Queue
from azs_syslog.queue.ingest import enqueue_records
from tests.conftest import run_cli
from tests.receivers import TLS11_ONLY, RsyslogReceiver, TestPKI, rsyslog_factory
from tests.test_transport import client_settings, tls_server

__all__ = ["rsyslog_factory"]

Factory = Callable[..., RsyslogReceiver]


@dataclass(frozen=True)
class Case:
    """How the receiver is set up, and what the forwarder is told."""

    receiver: dict[str, object]
    server: Callable[[int, TestPKI, TestPKI], ServerSettings]
    client: Callable[[TestPKI, TestPKI], ClientSettings]
    cause: str | None  # None: the connection is accepted and the event delivered


def _plain_client(pki: TestPKI, other: TestPKI) -> ClientSettings:
    return ClientSettings()


CASES: dict[str, Case] = {
    "unknown CA": Case(
        {}, lambda port, pki, other: tls_server(port, other), _plain_client, "unknown-ca"
    ),
    "name mismatch": Case(
        {"cert": "elsewhere"},
        lambda port, pki, other: tls_server(port, pki),
        _plain_client,
        "name-mismatch",
    ),
    "IP address through an IP SAN": Case(
        {}, lambda port, pki, other: tls_server(port, pki, name="127.0.0.1"), _plain_client, None
    ),
    "--skip-cn-check passes a name mismatch": Case(
        {"cert": "elsewhere"},
        lambda port, pki, other: tls_server(port, pki, name="127.0.0.1", skip_cn_check=True),
        _plain_client,
        None,
    ),
    "--skip-cn-check does not pass an unknown CA": Case(
        {},
        lambda port, pki, other: tls_server(port, other, name="127.0.0.1", skip_cn_check=True),
        _plain_client,
        "unknown-ca",
    ),
    "--skip-certificate-check passes both": Case(
        {"cert": "elsewhere"},
        lambda port, pki, other: tls_server(port, other, skip_certificate_check=True),
        _plain_client,
        None,
    ),
    "expired server certificate": Case(
        {"cert": "expired"},
        lambda port, pki, other: tls_server(port, pki),
        _plain_client,
        "expired",
    ),
    "client certificate required, none configured": Case(
        {"authmode": "x509/certvalid"},
        lambda port, pki, other: tls_server(port, pki),
        _plain_client,
        "client-certificate-required",
    ),
    "client certificate from another CA": Case(
        {"authmode": "x509/certvalid"},
        lambda port, pki, other: tls_server(port, pki),
        lambda pki, other: client_settings(other),
        "client-certificate-rejected",
    ),
    "server offering only TLS 1.1": Case(
        {"priority_string": TLS11_ONLY},
        lambda port, pki, other: tls_server(port, pki),
        _plain_client,
        "protocol-version",
    ),
}


def start_receiver(factory: Factory, pki: TestPKI, setup: dict[str, object]) -> RsyslogReceiver:
    options = dict(setup)
    cert = options.pop("cert", None)
    if cert == "elsewhere":
        files = pki.issue(
            "elsewhere", "syslog.example.com", dns_names=("syslog.example.com",), server=True
        )
    elif cert == "expired":
        now = dt.datetime.now(dt.UTC)
        files = pki.issue(
            "expired",
            "localhost",
            dns_names=("localhost",),
            server=True,
            not_before=now - dt.timedelta(days=30),
            not_after=now - dt.timedelta(days=1),
        )
    else:
        return factory("tls", pki=pki, **options)
    cert_file, key_file = files
    return factory("tls", cert_file=cert_file, key_file=key_file, ca_file=pki.ca_file, **options)


def enqueue_one() -> None:
    line = json.dumps(
        {"type": "pep", "event": "PrivilegedEndpointAccessed", "who": "op", "which_ip": "10.0.0.1"}
    )
    settings = RenderSettings()
    with Queue() as queue:
        enqueue_records(iter([(1, line)]), queue, Renderer(settings), settings.key)


@pytest.mark.parametrize("name", list(CASES))
def test_refusals_are_explained_in_the_status(
    name: str, rsyslog_factory: Factory, tmp_path: Path
) -> None:
    case = CASES[name]
    pki = TestPKI.create(tmp_path / "pki")
    other = TestPKI.create(tmp_path / "other", ca_name="some other CA")
    receiver = start_receiver(rsyslog_factory, pki, case.receiver)
    config = Config(server=case.server(receiver.port, pki, other), client=case.client(pki, other))
    enqueue_one()
    worker = Worker(lambda: config, options=WorkerOptions())
    try:
        wanted = st.CONNECTED if case.cause is None else st.BACKING_OFF
        deadline = time.monotonic() + 20
        while worker.state != wanted and time.monotonic() < deadline:
            time.sleep(min(worker.step(), 0.05))
        worker.write_status()
        status = worker.status().as_json()
        assert status["state"] == wanted, status
        if case.cause is None:
            while not receiver.lines() and time.monotonic() < deadline:
                time.sleep(min(worker.step(), 0.05))
            assert len(receiver.lines()) == 1
            assert status["last_error"] is None
            return
        error = status["last_error"]
        assert error["cause"] == case.cause
        assert error["message"] and error["fix"], "the operator is told what failed and the fix"
        assert receiver.lines() == [], "nothing is sent to a server that failed a check"
        shown = run_cli(["forwarder", "status", "--json"])
        assert shown.exit_code == 1
        assert json.loads(shown.stdout)["status"]["last_error"]["cause"] == case.cause
    finally:
        worker.close()
