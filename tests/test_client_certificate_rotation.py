"""Client certificates over time: replaced with ``set-syslog-client`` while a real forwarder
delivers to a real mutual-TLS rsyslog (nothing lost, the new certificate used after the
switch), the key and chain always changing together, expiry warnings from 30 days, and an
expired certificate as a clear error."""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography import x509

from azs_syslog import config, paths
from azs_syslog.config import certs
from azs_syslog.lab import pki
from tests.conftest import REPO_ROOT, run_cli, run_cli_process
from tests.receivers import RsyslogReceiver, free_port
from tests.test_forwarder_rsyslog import (
    Forwarder,
    assert_none_missing,
    events,
    wait_for_ids,
)
from tests.test_metrics import MetricsForwarder, value

PASSWORD = "rotation-password"


@dataclass(frozen=True)
class Lab:
    directory: Path
    ca: pki.Issued
    ca_file: Path
    server_cert: Path
    server_key: Path

    def client(self, name: str, *, days: int = 365) -> tuple[pki.Issued, Path]:
        """A client certificate from the lab's CA, valid for ``days`` days, and its PFX."""
        issued = pki.issue(self.ca, name, client=True, days=days)
        pfx = self.directory / f"{name.replace(' ', '-')}.pfx"
        pfx.write_bytes(issued.to_pfx(PASSWORD.encode()))
        return issued, pfx


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    directory = tmp_path / "lab"
    directory.mkdir()
    ca = pki.make_ca("rotation test CA", days=200)  # ends before the server certificate
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.cert_pem())
    server = pki.issue(
        ca,
        "localhost",
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1", "::1"),
        server=True,
        days=365,
    )
    server_cert, server_key = server.write(directory, "server")
    return Lab(directory, ca, ca_file, server_cert, server_key)


@pytest.fixture
def mtls_receiver(tmp_path: Path, lab: Lab) -> Iterator[RsyslogReceiver]:
    receiver = RsyslogReceiver(
        tmp_path / "rsyslog-mtls",
        "tls",
        cert_file=lab.server_cert,
        key_file=lab.server_key,
        ca_file=lab.ca_file,
        authmode="x509/certvalid",
    )
    receiver.start()
    yield receiver
    receiver.stop()


def thumbprint(issued: pki.Issued) -> str:
    return certs.thumbprint(issued.cert)


def set_client(pfx: Path) -> None:
    result = run_cli(
        ["set-syslog-client", "--pfx-file", str(pfx), "--output-severity", "Verbose"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.stderr


def set_server(receiver: RsyslogReceiver, lab: Lab) -> None:
    result = run_cli(
        [
            "set-syslog-server",
            "--server-name",
            "127.0.0.1",
            "--server-port",
            str(receiver.port),
            "--trusted-ca",
            str(lab.ca_file),
        ]
    )
    assert result.exit_code == 0, result.stderr


def client_thumbprint(status: dict[str, object]) -> object:
    certificates = status.get("certificates")
    if not isinstance(certificates, dict) or not isinstance(certificates.get("client"), dict):
        return None
    return certificates["client"].get("thumbprint")


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.rsyslog
def test_replaced_while_events_flow_nothing_lost_new_one_used(
    lab: Lab, mtls_receiver: RsyslogReceiver, tmp_path: Path
) -> None:
    first, first_pfx = lab.client("client A")
    second, second_pfx = lab.client("client B", days=10)  # within the warning period
    set_server(mtls_receiver, lab)
    set_client(first_pfx)
    worker = MetricsForwarder(tmp_path / "forwarder.log", free_port("127.0.0.1", "tcp")).start()
    try:
        worker.wait_for(
            lambda s: s.get("state") == "connected" and client_thumbprint(s) == thumbprint(first)
        )
        batches, size = 8, 25
        problems: list[str] = []

        def produce() -> None:
            for batch in range(batches):
                sent = run_cli_process(
                    ["send-event", "-"], input=events(batch * size, size).encode()
                )
                if sent.returncode != 0:
                    problems.append(sent.stderr.decode())

        producer = threading.Thread(target=produce)
        producer.start()
        try:
            wait_for_ids(mtls_receiver, range(size))  # flowing under the first certificate
            set_client(second_pfx)  # while the producer goes on
        finally:
            producer.join(timeout=120)
        assert not producer.is_alive()
        assert not problems, problems
        expected = range(batches * size)
        assert_none_missing(wait_for_ids(mtls_receiver, expected, timeout=90), expected)

        # The worker reconnected with the new certificate, without a restart.
        worker.wait_for(
            lambda s: s.get("state") == "connected" and client_thumbprint(s) == thumbprint(second)
        )
        status = worker.status()
        assert isinstance(status["connections"], int) and status["connections"] >= 2
        connection = status["connection"]
        assert isinstance(connection, dict) and connection["client_certificate_sent"] is True
        certificates = status["certificates"]
        assert isinstance(certificates, dict)
        client = certificates["client"]
        assert client["subject"] == "CN=client B"
        assert client["days_left"] == 9  # ten days less the seconds since it was issued
        assert client["expired"] is False
        assert certificates["server"]["days_left"] == 364
        assert certificates["server"]["subject"] == "CN=localhost"
        # The server's chain ends with its CA, which expires before the server's certificate.
        assert certificates["server_chain_first"]["subject"] == "CN=rotation test CA"
        assert certificates["server_chain_first"]["days_left"] == 199
        warnings = certificates["warnings"]
        assert len(warnings) == 1
        assert warnings[0].startswith("the client certificate (CN=client B, thumbprint")
        assert "expires in 9 days" in warnings[0]
        assert "set-syslog-client" in warnings[0]

        shown = run_cli(["forwarder", "status"])
        assert "Certificate warning" in shown.stdout
        assert "client 9, server 364, server chain 199" in shown.stdout
        as_json = json.loads(run_cli(["forwarder", "status", "--json"]).stdout)
        assert as_json["status"]["certificates"]["client"]["days_left"] == 9

        scraped = worker.wait_for_metrics(
            lambda s: (
                value(
                    s,
                    "azs_syslog_certificate_days_left",
                    certificate="client",
                    subject="CN=client B",
                )
                == 9
            )
        )
        assert (
            value(
                scraped,
                "azs_syslog_certificate_days_left",
                certificate="server",
                subject="CN=localhost",
            )
            == 364
        )
        assert (
            value(
                scraped,
                "azs_syslog_certificate_days_left",
                certificate="server_chain",
                subject="CN=rotation test CA",
            )
            == 199
        )
        end = value(
            scraped,
            "azs_syslog_certificate_not_after_timestamp_seconds",
            certificate="client",
            subject="CN=client B",
        )
        assert end == second.cert.not_valid_after_utc.timestamp()
        assert value(scraped, "azs_syslog_certificate_warnings") == 1

        # The stored pairs: the one in use and the previous one, private.
        stored = config.load_config().client.certificate
        assert stored is not None and stored.thumbprint == thumbprint(second)
        files = sorted(p.name for p in paths.client_certificates_dir().iterdir())
        assert len(files) == 4
        assert sum(name.startswith(thumbprint(first)) for name in files) == 2
        assert mode(paths.client_certificates_dir()) == 0o700
        assert all(mode(p) == 0o600 for p in paths.client_certificates_dir().iterdir())
        code, _ = worker.terminate()
        assert code == 0
        log = worker.log.read_text()
        # Warned once (once a day), at the connection that presented it.
        assert log.count("warning: the client certificate (CN=client B") == 1
        assert "Traceback" not in log
    finally:
        worker.stop_quietly()

    # A third import removes the oldest pair and keeps the previous one.
    third, third_pfx = lab.client("client C")
    set_client(third_pfx)
    names = [p.name for p in paths.client_certificates_dir().iterdir()]
    assert not any(name.startswith(thumbprint(first)) for name in names)
    assert sum(name.startswith(thumbprint(second)) for name in names) == 2
    assert sum(name.startswith(thumbprint(third)) for name in names) == 2


ROTATE = """
import sys
from pathlib import Path
from azs_syslog.config import certs
pfxs = [Path(p).read_bytes() for p in sys.argv[3:]]
for i in range(int(sys.argv[1])):
    bundle = certs.import_pfx(pfxs[i % len(pfxs)], sys.argv[2])
    certs.install_client_certificate(bundle)
"""


def test_key_and_chain_never_mismatch_while_replaced_repeatedly(lab: Lab) -> None:
    first, first_pfx = lab.client("client A")
    second, second_pfx = lab.client("client B")
    set_client(first_pfx)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    switches = 40
    rotator = subprocess.Popen(
        [sys.executable, "-c", ROTATE, str(switches), PASSWORD, str(first_pfx), str(second_pfx)],
        env=env,
        stderr=subprocess.PIPE,
    )
    loads = gone = 0
    mismatches: list[str] = []
    seen: set[str] = set()
    deadline = time.monotonic() + 120
    try:
        for _ in range(1_000_000):  # bounded; ends when the rotator is done
            if rotator.poll() is not None or time.monotonic() > deadline:
                break
            stored = config.load_config().client.certificate
            assert stored is not None
            # What the worker does at each connection: load the pair the configuration names.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            try:
                context.load_cert_chain(stored.chain_file, stored.key_file)
                leaf = x509.load_pem_x509_certificate(Path(stored.chain_file).read_bytes())
            except FileNotFoundError:
                gone += 1  # removed two switches later: the next configuration names another
                continue
            except ssl.SSLError as exc:
                mismatches.append(f"{stored.thumbprint}: {exc}")
                continue
            loads += 1
            if certs.thumbprint(leaf) != stored.thumbprint:
                mismatches.append(f"{stored.thumbprint}: the chain holds {certs.thumbprint(leaf)}")
            seen.add(stored.thumbprint)
    finally:
        if rotator.poll() is None:
            rotator.kill()
        _, err = rotator.communicate(timeout=30)
    assert rotator.returncode == 0, err.decode()
    assert not mismatches, mismatches[:5]
    assert loads >= 20
    assert seen == {thumbprint(first), thumbprint(second)}
    # After the switches: the pair in use and the previous one, nothing else.
    assert len(list(paths.client_certificates_dir().iterdir())) == 4
    assert gone <= loads


@pytest.mark.rsyslog
def test_expired_client_certificate_is_a_clear_error(
    lab: Lab, mtls_receiver: RsyslogReceiver, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC)
    expired = pki.issue(
        lab.ca,
        "client expired",
        client=True,
        not_before=now - dt.timedelta(days=40),
        not_after=now - dt.timedelta(days=2),
    )
    set_server(mtls_receiver, lab)
    # Imported while it was valid (import refuses an expired one): time has passed since.
    certs.install_client_certificate(
        certs.ClientBundle(
            subject="CN=client expired",
            issuer=expired.cert.issuer.rfc4514_string(),
            thumbprint=certs.thumbprint(expired.cert),
            not_before=expired.cert.not_valid_before_utc,
            not_after=expired.cert.not_valid_after_utc,
            chain_pem=expired.chain_pem(),
            key_pem=expired.key_pem(),
        )
    )
    worker = Forwarder(tmp_path / "forwarder.log").start()
    try:
        worker.wait_for(
            lambda s: (
                isinstance(s.get("last_error"), dict)
                and s["last_error"].get("cause") == "client-certificate-expired"
            )
        )
        status = worker.status()
        error = status["last_error"]
        assert isinstance(error, dict)
        assert error["message"].startswith(
            "the server refused the client certificate: it expired on"
        )
        assert "CN=client expired" in error["message"]
        assert "set-syslog-client" in error["fix"]
        certificates = status["certificates"]
        assert isinstance(certificates, dict)
        assert certificates["client"]["expired"] is True
        assert certificates["client"]["days_left"] == -3  # rounded down: 2 days and seconds ago
        shown = run_cli(["forwarder", "status"])
        assert shown.exit_code == 1
        assert "Certificate warning" in shown.stdout
        assert "expired on" in shown.stdout
        log = worker.log.read_text()
        assert log.count("error: the client certificate (CN=client expired") == 1
        assert "Traceback" not in log
    finally:
        worker.stop_quietly()


def test_expiry_arithmetic() -> None:
    from azs_syslog.forwarder import expiry

    end = expiry.parse_rfc3339("2030-01-31T00:00:00Z")
    assert end is not None
    item = expiry.Expiry(expiry.CLIENT, "CN=x", "2030-01-31T00:00:00Z", end, 0, "AB")
    assert item.days_left(end - 10 * 86400 - 3600) == 10
    assert item.warning(end - 10 * 86400 - 3600) is not None
    assert item.days_left(end - 30 * 86400) == 30
    assert item.warning(end - 30 * 86400) is None  # warned under 30 days left, as at import
    assert item.days_left(end - 1) == 0
    assert "expires in 0 days" in (item.warning(end - 1) or "")
    assert item.days_left(end + 3600) == -1
    assert "expired on 2030-01-31T00:00:00Z" in (item.warning(end + 3600) or "")
    assert expiry.parse_rfc3339("not a date") is None


def test_pair_of_an_earlier_release_is_replaced_then_removed(lab: Lab) -> None:
    """A configuration written by a release that stored the pair under fixed names keeps
    working, and those files go the way of any previous pair."""
    old, old_pfx = lab.client("client old")
    legacy_chain, legacy_key = paths.client_chain_file(), paths.client_key_file()
    bundle = certs.import_pfx(old_pfx.read_bytes(), PASSWORD)
    stored = config.ClientCertificate(
        subject=bundle.subject,
        issuer=bundle.issuer,
        thumbprint=bundle.thumbprint,
        not_before=certs.rfc3339(bundle.not_before),
        not_after=certs.rfc3339(bundle.not_after),
        chain_file=str(legacy_chain),
        key_file=str(legacy_key),
    )
    config.update_config(
        lambda current: replace(current, client=config.ClientSettings(certificate=stored)),
        write_files={legacy_chain: bundle.chain_pem, legacy_key: bundle.key_pem},
    )
    _, new_pfx = lab.client("client new")
    set_client(new_pfx)
    assert legacy_chain.exists() and legacy_key.exists()  # the previous pair, kept once
    _, newer_pfx = lab.client("client newer")
    set_client(newer_pfx)
    assert not legacy_chain.exists() and not legacy_key.exists()
    assert len(list(paths.client_certificates_dir().iterdir())) == 4
    removed = run_cli(["set-syslog-client", "--remove-certificate"])
    assert removed.exit_code == 0
    assert list(paths.client_certificates_dir().iterdir()) == []
    assert old.cert.subject.rfc4514_string() == bundle.subject
