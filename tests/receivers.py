"""A real rsyslog receiver for the tests, and the certificates it needs.

``RsyslogReceiver`` runs ``rsyslogd -n -f CONF -i PIDFILE`` in the foreground, with its own
configuration, work directory and pid file under a test's ``tmp_path``, on a free loopback
port, for one protocol: ``udp``, ``tcp``, ``tls`` (the ``ossl`` stream driver) or ``relp``
(``imrelp``; with ``relp_tls=True`` over TLS, ``authmode`` x509/certvalid or x509/name for mutual
TLS, the TLS library ``relp_tlslib`` "openssl" or "gnutls"). Every message
it receives is written to ``received.log`` exactly as received (``%rawmsg%``: the PRI and the
whole message, without the octet count or the trailing LF of the framing), one per line.

Use it through the ``rsyslog_factory`` fixture (conftest.py provides it, and ``pki``: a
``TestPKI`` in the test's tmp_path)::

    def test_x(rsyslog_factory, pki):
        receiver = rsyslog_factory("tls", pki=pki, authmode="x509/certvalid")
        ... send to 127.0.0.1:receiver.port ...
        assert receiver.wait_for_lines(300, timeout=10) == expected

``rsyslogd_with`` runs an rsyslogd with a test's own configuration instead (as a sender, or
to parse what it receives with its own templates).

``authmode="x509/certvalid"`` demands a client certificate from a CA in ``ca_file``. Note: with
rsyslog 8.2302's ossl driver, ``x509/name`` was seen to accept a client whose certificate name
is not in ``permitted_peers`` (it still demands a valid certificate); do not rely on it to
refuse a name.

Every receiver is stopped (by its PID) when the test ends. ``stop()`` / ``kill()`` and then
``start()`` again restarts it on the same port, for restart tests.

Without rsyslogd (or its ``ossl`` driver for TLS) the tests are skipped locally and fail in CI
(``CI=true``), where scripts/test.sh installs them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from azs_syslog.lab import pki
from tests.support import IN_CI, wait_until

PROTOCOLS = ("udp", "tcp", "tls", "relp")
AUTHMODES = ("anon", "x509/certvalid", "x509/name")
# The TLS 1.1-only server of the refusal tests: OpenSSL 3 configuration commands, which the
# ossl driver passes on through its (misnamed) gnutlsPriorityString.
TLS11_ONLY = "MinProtocol=TLSv1.1\nMaxProtocol=TLSv1.1\nCipherString=DEFAULT@SECLEVEL=0"

AUDIT_SIGNATURE = b"|Microsoft-AzureStack-Forwarder: ConfigurationChanged|"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 30.0  # above the receiver's queue.timeoutShutdown (config_text)


def rsyslogd_path() -> str | None:
    return shutil.which("rsyslogd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def ossl_driver_present() -> bool:
    return bool(
        glob.glob("/usr/lib/*/rsyslog/lmnsd_ossl.so") + glob.glob("/usr/lib/rsyslog/lmnsd_ossl.so")
    )


def imrelp_present() -> bool:
    return bool(glob.glob("/usr/lib/*/rsyslog/imrelp.so") + glob.glob("/usr/lib/rsyslog/imrelp.so"))


def require_rsyslog(protocol: str = "tcp") -> str:
    """The path of rsyslogd; skip the test (fail it in CI) when rsyslog is missing."""
    path = rsyslogd_path()
    problem = None
    if path is None:
        problem = "rsyslogd is not installed (Debian package rsyslog; scripts/test.sh installs it)"
    elif protocol == "tls" and not ossl_driver_present():
        problem = "rsyslog's TLS driver is missing (Debian package rsyslog-openssl)"
    elif protocol == "relp" and not imrelp_present():
        problem = "rsyslog's RELP input is missing (Debian package rsyslog-relp)"
    if problem:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)
    assert path is not None
    return path


@dataclass(frozen=True)
class TestPKI:
    """A CA, a server certificate for localhost / 127.0.0.1 / ::1 and a client certificate,
    written as PEM files into ``directory``."""

    __test__ = False  # not a test class, despite the name

    directory: Path
    ca: pki.Issued
    ca_file: Path
    server: pki.Issued
    server_cert: Path
    server_key: Path
    client: pki.Issued
    client_cert: Path
    client_key: Path

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        ca_name: str = "azs-syslog test CA",
        client_name: str = "azs-syslog test client",
        ca_days: int = 30,
        days: int = 30,
    ) -> TestPKI:
        """The CA is valid for ``ca_days``, the server and client certificates for ``days``."""
        directory.mkdir(parents=True, exist_ok=True)
        ca = pki.make_ca(ca_name, days=ca_days)
        ca_file = directory / "ca.pem"
        ca_file.write_bytes(ca.cert_pem())
        server = localhost_server(ca, days=days)
        server_cert, server_key = server.write(directory, "server")
        client = pki.issue(ca, client_name, client=True, days=days)
        client_cert, client_key = client.write(directory, "client")
        return cls(
            directory, ca, ca_file, server, server_cert, server_key, client, client_cert, client_key
        )

    def issue(self, stem: str, common_name: str, **kwargs: Any) -> tuple[Path, Path]:
        """Another certificate from this CA (``pki.issue`` arguments); its cert and key files."""
        return pki.issue(self.ca, common_name, **kwargs).write(self.directory, stem)

    def server_files(self, kind: str | None = None) -> tuple[Path, Path]:
        """A server certificate and key from this CA: the one for localhost (``None``), one for
        another name (``"elsewhere"``: syslog.example.com) or an ``"expired"`` one."""
        if kind is None:
            return self.server_cert, self.server_key
        if kind == "elsewhere":
            names = ("syslog.example.com",)
            return self.issue(kind, names[0], dns_names=names, server=True)
        assert kind == "expired", kind
        return expired_server(self.ca).write(self.directory, kind)

    def client_pfx(self, name: str, password: str, *, days: int = 365) -> tuple[pki.Issued, Path]:
        """A client certificate ``CN=name`` from this CA, valid for ``days``, and its PFX file
        (protected by ``password``)."""
        issued = pki.issue(self.ca, name, client=True, days=days)
        pfx = self.directory / f"{name.replace(' ', '-')}.pfx"
        pfx.write_bytes(issued.to_pfx(password.encode()))
        return issued, pfx


def expired_server(ca: pki.Issued) -> pki.Issued:
    """A server certificate from ``ca`` for localhost that expired yesterday."""
    now = dt.datetime.now(dt.UTC)
    return pki.issue(
        ca,
        "localhost",
        dns_names=("localhost",),
        server=True,
        not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=1),
    )


def localhost_server(ca: pki.Issued, **kwargs: Any) -> pki.Issued:
    """A server certificate from ``ca`` for localhost, 127.0.0.1 and ::1."""
    return pki.issue(
        ca,
        "localhost",
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1", "::1"),
        server=True,
        **kwargs,
    )


def free_port(host: str, protocol: str) -> int:
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _listening_inodes(port: int, protocol: str) -> set[str]:
    """Socket inodes bound to ``port`` (TCP: listening), from /proc/net."""
    tables = ("udp", "udp6") if protocol == "udp" else ("tcp", "tcp6")
    inodes: set[str] = set()
    for table in tables:
        try:
            rows = Path(f"/proc/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            listening = protocol == "udp" or fields[3] == "0A"
            if local_port == port and listening:
                inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


class RsyslogReceiver:
    """One rsyslogd in the foreground; see the module docstring."""

    def __init__(
        self,
        directory: Path,
        protocol: str,
        *,
        pki: TestPKI | None = None,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        ca_file: Path | None = None,
        authmode: str = "anon",
        permitted_peers: tuple[str, ...] = (),
        priority_string: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        udp_receive_buffer: str | None = "64m",
        relp_tls: bool = False,
        relp_tlslib: str = "openssl",
        direct_queue: bool | None = None,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}")
        if authmode not in AUTHMODES:
            raise ValueError(f"authmode must be one of {AUTHMODES}")
        self.directory = directory
        self.protocol = protocol
        self.host = host
        self.authmode = authmode
        self.permitted_peers = permitted_peers
        self.priority_string = priority_string
        # None: the kernel's default receive buffer (net.core.rmem_default), as a stock rsyslog.
        self.udp_receive_buffer = udp_receive_buffer
        self.relp_tls = relp_tls
        self.relp_tlslib = relp_tlslib
        # RELP: write before answering (see config_text); others: rsyslog's default queue.
        self.direct_queue = protocol == "relp" if direct_queue is None else direct_queue
        self.cert_file = cert_file or (pki.server_cert if pki else None)
        self.key_file = key_file or (pki.server_key if pki else None)
        self.ca_file = ca_file or (pki.ca_file if pki else None)
        tls = protocol == "tls" or (protocol == "relp" and relp_tls)
        if tls and not (self.cert_file and self.key_file and self.ca_file):
            raise ValueError("a TLS receiver needs cert_file, key_file and ca_file (or pki)")
        self.rsyslogd = require_rsyslog(protocol)
        directory.mkdir(parents=True, exist_ok=True)
        self.work_dir = directory / "work"
        self.work_dir.mkdir(exist_ok=True)
        self.conf_file = directory / "rsyslog.conf"
        self.pid_file = directory / "rsyslogd.pid"
        self.output_file = directory / "received.log"
        self.log_file = directory / "rsyslogd.stderr"
        self._port = port
        self._process: subprocess.Popen[bytes] | None = None

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the receiver has not been started")
        return self._port

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> RsyslogReceiver:
        """Start rsyslogd (on the same port as before, if it ran before) and wait until it
        listens. A fresh port is picked (a few tries) when none was fixed and the first collides."""
        if self.running:
            return self
        fixed = self._port is not None
        attempts = 1 if fixed else 5
        problem = ""
        for _ in range(attempts):
            if not fixed:
                self._port = free_port(self.host, self.protocol)
            problem = self._start_once()
            if not problem:
                return self
        raise RuntimeError(f"rsyslogd did not start on {self.host}:{self._port}: {problem}")

    def _start_once(self) -> str:
        self.conf_file.write_text(self.config_text())
        with contextlib.suppress(FileNotFoundError):
            self.pid_file.unlink()
        offset = len(self.stderr())  # earlier runs' messages stay in the log; look past them
        log = self.log_file.open("ab")
        try:
            self._process = subprocess.Popen(
                [self.rsyslogd, "-n", "-f", str(self.conf_file), "-i", str(self.pid_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                output = self.stderr()[offset:][-2000:]
                return f"rsyslogd exited with {self._process.returncode}: {output}"
            ours = _socket_inodes(self._process.pid)
            if ours & _listening_inodes(self.port, self.protocol):
                return ""
            if "could not create" in self.stderr()[offset:].lower():
                self._terminate(signal.SIGKILL)
                return "the port is taken"
            time.sleep(0.02)
        self._terminate(signal.SIGKILL)
        return f"not listening after {START_TIMEOUT} s: {self.stderr()[offset:][-2000:]}"

    def stop(self) -> None:
        """SIGTERM (rsyslog writes out what it queued) and wait; SIGKILL if it hangs."""
        self._terminate(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: whatever rsyslog had buffered is lost."""
        self._terminate(signal.SIGKILL)

    def _terminate(self, sig: signal.Signals) -> None:
        if self._process is not None:
            stop_process(self._process, sig)

    def __enter__(self) -> RsyslogReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what arrived -------------------------------------------------------------------------

    def lines(self, *, audit: bool = False) -> list[bytes]:
        """Every message received so far, as received, in order of arrival. The forwarder's
        audit events (``ConfigurationChanged``, queued by every ``set-*`` that changes
        something) are left out unless ``audit``: the tests of delivery count their own."""
        try:
            data = self.output_file.read_bytes()
        except FileNotFoundError:
            return []
        # A line still being written (no LF yet) is not a message yet.
        lines = data.split(b"\n")[:-1]
        if audit:
            return lines
        return [line for line in lines if AUDIT_SIGNATURE not in line]

    def wait_for_lines(
        self, count: int, timeout: float = 10.0, *, audit: bool = False
    ) -> list[bytes]:
        """Poll until at least ``count`` messages arrived or ``timeout`` passed; return them."""
        deadline = time.monotonic() + timeout
        lines = self.lines(audit=audit)
        while len(lines) < count and time.monotonic() < deadline:
            time.sleep(0.02)
            lines = self.lines(audit=audit)
        return lines

    def stderr(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- configuration ------------------------------------------------------------------------

    def config_text(self) -> str:
        glob_params = [
            f"workDirectory={_q(self.work_dir)}",
            'maxMessageSize="64k"',
            'parser.escapeControlCharactersOnReceive="off"',
        ]
        if self.protocol == "tls":
            glob_params += [
                'defaultNetstreamDriver="ossl"',
                f"defaultNetstreamDriverCAFile={_q(self.ca_file)}",
                f"defaultNetstreamDriverCertFile={_q(self.cert_file)}",
                f"defaultNetstreamDriverKeyFile={_q(self.key_file)}",
            ]
        input_params = [
            f"port={_q(self.port)}",
            f"address={_q(self.host)}",
            'ruleset="received"',
        ]
        if self.protocol == "udp":
            module, more = 'module(load="imudp")', self._udp_input()
        elif self.protocol == "relp":
            module = f'module(load="imrelp" tls.tlslib={_q(self.relp_tlslib)})'
            more = self._relp_input()
        else:
            module = "module(" + " ".join(self._tcp_module()) + ")"
            more = ['rateLimit.interval="0"', 'supportOctetCountedFraming="on"']
        kind = {"udp": "imudp", "relp": "imrelp"}.get(self.protocol, "imtcp")
        lines = [
            "global(" + " ".join(glob_params) + ")",
            # SIGTERM means "write out what you queued": rsyslog's main queue gives up after
            # 1.5 s by default and discards the rest, which on a loaded machine is a loss at
            # the receiver after the forwarder's data was acknowledged. A test receiver that
            # is stopped must keep what it accepted (stop_process waits for it).
            'main_queue(queue.timeoutShutdown="20000" queue.timeoutActionCompletion="20000")',
            module,
            "input(" + " ".join([f"type={_q(kind)}", *input_params, *more]) + ")",
            'template(name="rawline" type="string" string="%rawmsg%\\n")',
        ]
        # RELP answers 200 once a message is in the ruleset's queue; a direct queue writes it
        # (to the page cache) first, so a receiver SIGKILLed after answering has not lost it.
        direct = ' queue.type="direct"' if self.direct_queue else ""
        lines.append(
            f'ruleset(name="received"{direct}) {{\n'
            f'  action(type="omfile" file={_q(self.output_file)} template="rawline"'
            ' asyncWriting="off" flushOnTXEnd="on")\n'
            "}"
        )
        return "\n".join(lines) + "\n"

    def _udp_input(self) -> list[str]:
        # Room for bursts: a datagram costs ~2 KiB of kernel buffer (its skb), and the
        # forwarder can send 10,000 in a few ms while rsyslog shares two busy cores with
        # the test run; 8 MiB once lost the last 898 of 10,000 under load. UDP has no flow
        # control, so the receiver's buffer is what absorbs a burst (as at a real SIEM).
        params = ['rateLimit.interval="0"']
        if self.udp_receive_buffer is not None:
            params.append(f"rcvBufSize={_q(self.udp_receive_buffer)}")
        return params

    def _relp_input(self) -> list[str]:
        params = ['maxDataSize="128k"']
        if not self.relp_tls:
            return params
        params += [
            'tls="on"',
            f"tls.cacert={_q(self.ca_file)}",
            f"tls.mycert={_q(self.cert_file)}",
            f"tls.myprivkey={_q(self.key_file)}",
        ]
        if self.authmode != "anon":
            params.append(f"tls.authmode={_q(self.authmode.split('/')[1])}")
        if self.permitted_peers:
            peers = ", ".join(_q(p) for p in self.permitted_peers)
            params.append(f"tls.permittedpeer=[{peers}]")
        if self.priority_string:  # OpenSSL configuration commands, as for imtcp
            params.append(f"tls.tlscfgcmd={_q(self.priority_string)}")
        return params

    def _tcp_module(self) -> list[str]:
        module = ['load="imtcp"', 'maxSessions="1000"']
        if self.protocol != "tls":
            return module
        module += [
            'streamDriver.name="ossl"',
            'streamDriver.mode="1"',
            f"streamDriver.authMode={_q(self.authmode)}",
        ]
        if self.permitted_peers:
            peers = ", ".join(_q(p) for p in self.permitted_peers)
            module.append(f"permittedPeer=[{peers}]")
        if self.priority_string:
            module.append(f"gnutlsPriorityString={_q(self.priority_string)}")
        return module


def _q(value: object) -> str:
    """``value`` as a quoted rsyslog string."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def stop_process(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send ``sig`` to ``process`` (ours, by its PID) and reap it; SIGKILL if it hangs."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def rsyslogd_with(
    work: Path, config: str, port_file: Path, *, protocol: str = "tcp"
) -> Iterator[tuple[int, Path]]:
    """rsyslogd in the foreground with the test's own ``config`` (written to
    ``work/rsyslog.conf``), whose imtcp input writes the port it picked to ``port_file``
    (``listenPortFileName``). Yields that port and the file of rsyslogd's own output; stopped
    by its PID when the block ends."""
    rsyslogd = require_rsyslog(protocol)
    conf = work / "rsyslog.conf"
    conf.write_text(config, encoding="utf-8")
    output = work / "rsyslogd.stderr"
    with output.open("ab") as log:
        process = subprocess.Popen(
            [rsyslogd, "-n", "-f", str(conf), "-i", str(work / "rsyslogd.pid")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:

        def port() -> int:
            assert process.poll() is None, output.read_text(errors="replace")
            text = port_file.read_text().strip() if port_file.exists() else ""
            return int(text) if text else 0

        yield wait_until(port, START_TIMEOUT, "rsyslogd to listen"), output
    finally:
        stop_process(process, signal.SIGTERM)


@pytest.fixture
def rsyslog_factory(tmp_path: Path) -> Iterator[Callable[..., RsyslogReceiver]]:
    """``rsyslog_factory(protocol, **RsyslogReceiver kwargs)`` → a started receiver; all of
    them are stopped when the test ends."""
    started: list[RsyslogReceiver] = []

    def make(protocol: str, **kwargs: Any) -> RsyslogReceiver:
        directory = tmp_path / f"rsyslog-{len(started)}-{protocol}"
        receiver = RsyslogReceiver(directory, protocol, **kwargs)
        started.append(receiver)
        return receiver.start()

    yield make
    for receiver in started:
        receiver.stop()
