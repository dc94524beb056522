"""The refusal matrix as the forwarder lives it: against a real rsyslog, each refused server
leaves the worker backing off with the explained error (cause and fix) in its status, and
nothing reaches the receiver; each accepted one delivers. The transport tests check the same
matrix at the connection level (tests/test_transport.py)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from azs_syslog.config import ClientSettings, Config, ServerSettings
from azs_syslog.encode.render import Renderer, RenderSettings
from azs_syslog.forwarder import status as st
from azs_syslog.forwarder.worker import Worker, WorkerOptions
from azs_syslog.queue import Queue
from azs_syslog.queue.ingest import enqueue_records
from tests.receivers import TLS11_ONLY, RsyslogReceiver, TestPKI
from tests.support import run_cli, step_until
from tests.test_transport import client_settings, tls_server

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


def start_receiver(
    factory: Factory, pki: TestPKI, setup: dict[str, object], protocol: str = "tls"
) -> RsyslogReceiver:
    """A TLS (or RELP over TLS) rsyslog as ``setup`` says: ``cert`` (see
    ``TestPKI.server_files``) and the receiver's options."""
    options = dict(setup)
    kind = options.pop("cert", None)
    assert kind is None or isinstance(kind, str)
    cert_file, key_file = pki.server_files(kind)
    if protocol == "relp":
        options["relp_tls"] = True
    return factory(protocol, cert_file=cert_file, key_file=key_file, ca_file=pki.ca_file, **options)


def enqueue_one() -> None:
    line = json.dumps(
        {"type": "pep", "event": "PrivilegedEndpointAccessed", "who": "op", "which_ip": "10.0.0.1"}
    )
    settings = RenderSettings()
    with Queue() as queue:
        enqueue_records(iter([(1, line)]), queue, Renderer(settings), settings.key)


def check_refusal(
    case: Case, factory: Factory, pki: TestPKI, tmp_path: Path, protocol: str = "tls"
) -> dict[str, Any] | None:
    """A receiver set up as ``case`` says (``protocol``: TLS, or RELP over TLS) and an
    in-process worker told what ``case`` says, one event queued: refused as ``case`` says (its
    status, with the error explained, is returned; nothing reached the receiver), or accepted
    and the event delivered (None)."""
    other = TestPKI.create(tmp_path / "other", ca_name="some other CA")
    receiver = start_receiver(factory, pki, case.receiver, protocol)
    server = case.server(receiver.port, pki, other)
    if protocol == "relp":
        server = dataclasses.replace(server, use_relp=True)
    config = Config(server=server, client=case.client(pki, other))
    enqueue_one()
    worker = Worker(lambda: config, options=WorkerOptions())
    try:
        wanted = st.CONNECTED if case.cause is None else st.BACKING_OFF
        step_until(worker, lambda: worker.state == wanted, 20, f"the state {wanted!r}")
        worker.write_status()
        status: dict[str, Any] = worker.status().as_json()
        assert status["state"] == wanted, status
        if case.cause is None:
            step_until(worker, receiver.lines, 20, "the event at the receiver")
            assert len(receiver.lines()) == 1
            assert status["last_error"] is None
            return None
        error = status["last_error"]
        assert error["cause"] == case.cause, error
        assert error["message"] and error["fix"], "the operator is told what failed and the fix"
        assert receiver.lines() == [], "nothing is sent to a server that failed a check"
        return status
    finally:
        worker.close()


@pytest.mark.parametrize("name", list(CASES))
def test_refusals_are_explained_in_the_status(
    name: str, rsyslog_factory: Factory, pki: TestPKI, tmp_path: Path
) -> None:
    case = CASES[name]
    if check_refusal(case, rsyslog_factory, pki, tmp_path) is not None:
        shown = run_cli(["forwarder", "status", "--json"])
        assert shown.exit_code == 1
        assert json.loads(shown.stdout)["status"]["last_error"]["cause"] == case.cause
