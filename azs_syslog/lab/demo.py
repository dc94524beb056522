"""``azs-syslog demo``: the whole chain, end to end over mutual TLS, in a throwaway sandbox.

Everything the demo needs is made in a temporary directory and removed at the end: a CA, a
server and a client certificate (``pki``), a lab receiver requiring a client certificate
(``receiver.Listener``) on a free loopback port, and a home directory of its own. The real
commands run as child processes with ``AZS_SYSLOG_HOME`` set to that home, so the operator's
configuration (and any ``AZS_SYSLOG_HOME`` the caller has set) is never read nor changed:
``set-syslog-server``, ``set-syslog-client``, ``forwarder run``, ``send-event`` and
``forwarder status``. The forwarder is the only long-lived child; it is stopped by its PID.

The caller watches progress through a ``DemoObserver``; nothing here prints.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from azs_syslog.errors import AzsSyslogError

if TYPE_CHECKING:
    from azs_syslog.lab.receiver import Listener, ReceivedMessage

DEFAULT_TIMEOUT = 25.0
# How long the forwarder gets to stop after SIGTERM before it is killed (SPEC: it exits in 5 s).
STOP_GRACE = 10.0
# The demo's events carry this CEF extension, so that each arrival is matched to what was sent.
MARKER_KEY = "externalId"
MARKER_PREFIX = "azs-syslog-demo-"
PASSWORD_ENV = "AZS_SYSLOG_CERT_PASSWORD"  # noqa: S105 - the variable's name, not a password


class DemoError(AzsSyslogError):
    """A step of the demo failed (everything it made is still removed)."""


class DemoObserver(Protocol):
    """What the demo reports while it runs (called from the demo's thread)."""

    def step(self, text: str) -> None:
        """A step has started or finished: one short line for people."""

    def sent(self, accepted: int, total: int) -> None:
        """``send-event`` has queued ``accepted`` of the ``total`` events."""

    def arrived(self, arrival: Arrival, total: int) -> None:
        """One event reached the receiver."""


@dataclass(frozen=True)
class Arrival:
    """One demo event as the receiver saw it."""

    index: int  # position in demo_events()
    type: str
    signature_id: str
    name: str
    severity: str
    transport: str  # e.g. "mutual TLS (TLSv1.3)"
    client_certificate: str | None
    valid: bool
    problems: tuple[str, ...]
    after_s: float  # seconds since the events were queued

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "type": self.type,
            "signature_id": self.signature_id,
            "name": self.name,
            "severity": self.severity,
            "transport": self.transport,
            "client_certificate": self.client_certificate,
            "valid": self.valid,
            "problems": list(self.problems),
            "after_s": round(self.after_s, 3),
        }


@dataclass
class DemoResult:
    """What happened, for the summary (``ok`` only when every event arrived, well-formed)."""

    sandbox: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    arrivals: list[Arrival] = field(default_factory=list)
    port: int | None = None
    tls_version: str | None = None
    cipher: str | None = None
    server_subject: str | None = None
    client_certificate_sent: bool | None = None
    forwarder_pid: int | None = None
    forwarder_exit: int | None = None
    delivery_s: float | None = None
    elapsed_s: float = 0.0
    removed: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and len(self.arrivals) == len(self.events) > 0
            and all(a.valid for a in self.arrivals)
        )

    @property
    def types(self) -> list[str]:
        return list(dict.fromkeys(str(event["type"]) for event in self.events))

    def to_dict(self) -> dict[str, Any]:
        arrived_types = {a.type for a in self.arrivals}
        return {
            "ok": self.ok,
            "events_sent": len(self.events),
            "events_arrived": len(self.arrivals),
            "types": {t: t in arrived_types for t in self.types},
            "transport": "mutual TLS",
            "tls_version": self.tls_version,
            "cipher": self.cipher,
            "server_certificate": self.server_subject,
            "client_certificate_sent": self.client_certificate_sent,
            "receiver": None if self.port is None else f"127.0.0.1:{self.port}",
            "delivery_s": None if self.delivery_s is None else round(self.delivery_s, 3),
            "elapsed_s": round(self.elapsed_s, 3),
            "sandbox": self.sandbox,
            "sandbox_removed": self.removed,
            "forwarder_pid": self.forwarder_pid,
            "forwarder_exit": self.forwarder_exit,
            "arrivals": [a.to_dict() for a in self.arrivals],
            "error": self.error,
        }


# --- the events --------------------------------------------------------------------------------

_WHO = "AZURESTACK\\CloudAdmin"


def demo_events() -> list[dict[str, Any]]:
    """At least one event of each of the nine types of SPEC section 5, with their variants
    (PEP, REP and WAC; a Windows event that only ``Verbose`` forwards; an alert created and
    resolved; both kinds of fault, opened and closed). Each carries a marker extension."""
    fault_time = "2026-11-26T09:59:00Z"
    events: list[dict[str, Any]] = [
        {"type": "pep", "event": "PrivilegedEndpointAccessed", "who": _WHO, "which_ip": "10.0.0.5"},
        {"type": "pep", "event": "SupportSessionUnlocked", "who": _WHO, "which_ip": "10.0.0.5"},
        {"type": "rep", "event": "RecoveryEndpointAccessed", "who": _WHO, "which_ip": "10.0.0.9"},
        {
            "type": "pep_wac",
            "event": "WACServiceStartFailedEvent",
            "who": _WHO,
            "which_ip": "10.0.0.5",
        },
        {"type": "pep_wac", "event": "WACUserAddedEvent", "who": _WHO, "which_ip": "10.0.0.5"},
        {
            "type": "windows",
            "provider_name": "Microsoft-Windows-Security-Auditing",
            "event_id": 4625,
            "level": "Warning",
            "task_name": "Logon",
            "channel": "Security",
            "computer": "azs-ercs01.azurestack.local",
            "event_description": "An account failed to log on.",
        },
        {
            "type": "windows",
            "provider_name": "Microsoft-Windows-GroupPolicy",
            "event_id": 1501,
            "level": 4,
            "task_name": "Process Creation",
            "channel": "System",
            "computer": "azs-ercs01.azurestack.local",
            "event_description": "The Group Policy settings for the user were processed "
            "successfully (Information: forwarded only with OutputSeverity Verbose).",
        },
        {
            "type": "alert",
            "state": "created",
            "severity": "Critical",
            "fault_type_id": "UserAccounts:UserAccountCreated",
            "alert_id": "8e5b5c7a-1c55-4d7e-9f2a-2d1f7e0c8a10",
            "title": "User Account Created",
            "description": "A user account was created.",
            "remediation": "Please contact Support.",
        },
        {
            "type": "alert",
            "state": "resolved",
            "fault_type_id": "UserAccounts:UserAccountCreated",
            "alert_id": "8e5b5c7a-1c55-4d7e-9f2a-2d1f7e0c8a10",
            "title": "User Account Created",
        },
        {
            "type": "arm",
            "AzsOperationName": "Microsoft.Compute/virtualMachines/write",
            "AzsEventName": "EndRequest",
            "AzsEventLevel": "Informational",
            "AzsStatus": "Succeeded",
            "AzsSubscriptionId": "0b3e1a2c-1111-2222-3333-444455556666",
        },
        {"type": "bcdr", "event": "AuditingManualBackup"},
        {
            "type": "bcdr",
            "event": "AuditingConfig",
            "Interval": 12,
            "Retention": 7,
            "IsSchedulerEnabled": True,
            "BackupPath": "\\\\fileserver\\backup",
        },
        {
            "type": "infrastructure_fault",
            "event": "InfrastructureFaultOpen",
            "AzsFaultId": "f-1",
            "AzsFaultTypeName": "StorageVolumeDegraded",
            "AzsComponentType": "Storage",
            "AzsComponentName": "S-Cluster",
            "AzsFaultHash": "abc123",
            "AzsCreatedTimeUtc": fault_time,
            "AzsSource": "HealthService",
        },
        {
            "type": "service_fault",
            "event": "ServiceFaultClose",
            "AzsFaultId": "f-2",
            "AzsFaultTypeName": "ServiceUnhealthy",
            "AzsSubscriptionId": "sub-1",
            "AzsResourceGroup": "rg-1",
            "AzsServiceName": "KeyVault",
            "AzsResourceId": "/subscriptions/sub-1/resourceGroups/rg-1",
            "AzsFaultHash": "def456",
            "AzsLastUpdatedTimeUtc": fault_time,
            "AzsSource": "HealthService",
        },
    ]
    for index, event in enumerate(events):
        event["extensions"] = {MARKER_KEY: f"{MARKER_PREFIX}{index}"}
    return events


# --- child processes ---------------------------------------------------------------------------


def child_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of every child: the demo's own home, never the caller's.

    Any ``AZS_SYSLOG_*`` setting of the caller (its home, a PFX password) is dropped except
    ``AZS_SYSLOG_DEBUG``; the package this demo runs from comes first on ``PYTHONPATH`` so
    that the children run the same code.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AZS_SYSLOG_") or key == "AZS_SYSLOG_DEBUG"
    }
    env["AZS_SYSLOG_HOME"] = str(home)
    package_parent = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (package_parent, env.get("PYTHONPATH", "")) if part
    )
    env["NO_COLOR"] = "1"
    if extra:
        env.update(extra)
    return env


def command_line(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "azs_syslog", *args]


def _last_lines(text: str, count: int = 4) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-count:])


def run_child(
    args: Sequence[str],
    env: dict[str, str],
    *,
    deadline: float,
    stdin: bytes | None = None,
    ok_codes: tuple[int, ...] = (0,),
) -> subprocess.CompletedProcess[bytes]:
    """Run one ``azs-syslog`` command as a child; a failure names the command and its error."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise DemoError(f"ran out of time before `azs-syslog {args[0]}`")
    try:
        proc = subprocess.run(
            command_line(args),
            input=stdin if stdin is not None else b"",
            capture_output=True,
            env=env,
            cwd=env["AZS_SYSLOG_HOME"],  # not the caller's directory, which `-m` would import from
            timeout=remaining,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DemoError(f"`azs-syslog {' '.join(args[:2])}` did not finish in time") from None
    if proc.returncode not in ok_codes:
        detail = _last_lines(proc.stderr.decode("utf-8", "replace")) or "no message"
        raise DemoError(
            f"`azs-syslog {' '.join(args[:2])}` failed (exit {proc.returncode}): {detail}"
        )
    return proc


class ForwarderProcess:
    """``azs-syslog forwarder run`` as a child, its output in a log file; stopped by its PID."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command_line(["forwarder", "run"]),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=env["AZS_SYSLOG_HOME"],
            )
        self.pid = self.process.pid

    def exited(self) -> int | None:
        return self.process.poll()

    def log_tail(self) -> str:
        try:
            return _last_lines(self.log_path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            return ""

    def stop(self, grace: float = STOP_GRACE) -> int | None:
        """SIGTERM; SIGKILL only if it has not exited after ``grace`` seconds. The exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


# --- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sandbox:
    root: Path
    home: Path
    ca_file: Path
    server_cert: Path
    server_key: Path
    client_pfx: Path
    password: str = field(repr=False)


def _make_sandbox(root: Path) -> _Sandbox:
    from azs_syslog.lab import pki

    pki_dir = root / "pki"
    pki_dir.mkdir(mode=0o700)
    ca = pki.make_ca("azs-syslog demo CA", days=1)
    server = pki.issue(
        ca, "localhost", dns_names=("localhost",), ip_addresses=("127.0.0.1",), server=True, days=1
    )
    client = pki.issue(ca, "azs-syslog demo forwarder", client=True, days=1)
    ca_file = pki_dir / "ca.pem"
    ca_file.write_bytes(ca.cert_pem())
    server_cert, server_key = server.write(pki_dir, "server")
    password = secrets.token_urlsafe(18)
    client_pfx = pki_dir / "client.pfx"
    client_pfx.touch(mode=0o600)
    client_pfx.write_bytes(client.to_pfx(password.encode()))
    home = root / "home"
    home.mkdir(mode=0o700)
    return _Sandbox(root, home, ca_file, server_cert, server_key, client_pfx, password)


def _read_status(home: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((home / "state" / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _wait_connected(
    home: Path,
    forwarder: ForwarderProcess,
    listener: Listener,
    deadline: float,
) -> dict[str, Any]:
    """Poll the forwarder's status file until it says connected; the connection's details."""
    while time.monotonic() < deadline:
        code = forwarder.exited()
        if code is not None:
            raise DemoError(
                f"the forwarder stopped (exit {code}): {forwarder.log_tail() or 'no output'}"
            )
        status = _read_status(home)
        if status and status.get("state") == "connected" and status.get("connection"):
            connection: dict[str, Any] = status["connection"]
            return connection
        time.sleep(0.05)
    status = _read_status(home) or {}
    last_error = status.get("last_error") or {}
    seen = "; ".join(listener.counts.connection_errors[-2:])
    detail = last_error.get("message") or seen or forwarder.log_tail() or "no error reported"
    raise DemoError(f"the forwarder did not connect to the demo receiver in time: {detail}")


def _arrival(
    message: ReceivedMessage,
    events: list[dict[str, Any]],
    transport: str,
    sent_at: float,
) -> Arrival | None:
    marker = message.extensions.get(MARKER_KEY, "")
    if not marker.startswith(MARKER_PREFIX):
        return None  # not one of ours (the forwarder's own notices, for instance)
    try:
        index = int(marker[len(MARKER_PREFIX) :])
    except ValueError:
        return None
    if not 0 <= index < len(events):
        return None
    return Arrival(
        index=index,
        type=str(events[index]["type"]),
        signature_id=message.signature_id or "",
        name=message.name or "",
        severity=message.cef_severity or "",
        transport=transport,
        client_certificate=message.peer_certificate,
        valid=message.valid,
        problems=tuple(str(p) for p in message.errors),
        after_s=time.monotonic() - sent_at,
    )


def run_demo(
    observer: DemoObserver,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    events: list[dict[str, Any]] | None = None,
) -> DemoResult:
    """Run the demo; ``DemoResult.ok`` says whether every event arrived. Everything it made
    (certificates, home, queue, the forwarder, the receiver) is gone when this returns, also
    after a failure; a failure is in ``DemoResult.error``."""
    from azs_syslog.lab.receiver import Listener, server_ssl_context

    started = time.monotonic()
    deadline = started + timeout
    result = DemoResult(events=list(events if events is not None else demo_events()))
    directory = tempfile.TemporaryDirectory(prefix="azs-syslog-demo-")
    root = Path(directory.name)
    result.sandbox = str(root)
    listener: Listener | None = None
    forwarder: ForwarderProcess | None = None
    try:
        observer.step(f"sandbox {root} (its own home: the operator's settings are not used)")
        sandbox = _make_sandbox(root)
        observer.step("made a throwaway CA, a server certificate (localhost) and a client PFX")

        context = server_ssl_context(
            str(sandbox.server_cert), str(sandbox.server_key), client_ca=str(sandbox.ca_file)
        )
        listener = Listener("tls", "127.0.0.1", 0, ssl_context=context).start()
        result.port = listener.port
        observer.step(
            f"receiver listening on 127.0.0.1:{listener.port}, TLS, client certificate required"
        )

        env = child_env(sandbox.home)
        run_child(
            [
                "set-syslog-server",
                "--server-name",
                "localhost",
                "--server-port",
                str(listener.port),
                "--trusted-ca",
                str(sandbox.ca_file),
            ],
            env,
            deadline=deadline,
        )
        observer.step(
            f"set-syslog-server --server-name localhost --server-port {listener.port} "
            "--trusted-ca ca.pem"
        )
        run_child(
            [
                "set-syslog-client",
                "--pfx-file",
                str(sandbox.client_pfx),
                "--output-severity",
                "Verbose",
            ],
            child_env(sandbox.home, {PASSWORD_ENV: sandbox.password}),
            deadline=deadline,
        )
        observer.step(
            "set-syslog-client --pfx-file client.pfx --output-severity Verbose "
            f"(password from {PASSWORD_ENV})"
        )

        forwarder = ForwarderProcess(env, root / "forwarder.log")
        result.forwarder_pid = forwarder.pid
        observer.step(f"forwarder run started (pid {forwarder.pid})")
        connection = _wait_connected(sandbox.home, forwarder, listener, deadline)
        result.tls_version = connection.get("tls_version")
        result.cipher = connection.get("cipher")
        result.server_subject = connection.get("server_subject")
        result.client_certificate_sent = connection.get("client_certificate_sent")
        mutual = "mutual TLS" if result.client_certificate_sent else "TLS"
        transport = f"{mutual} ({result.tls_version})" if result.tls_version else mutual
        observer.step(f"forwarder connected: {transport}, {result.cipher}")

        lines = "".join(json.dumps(event) + "\n" for event in result.events).encode()
        sent_at = time.monotonic()
        proc = run_child(
            ["send-event", "-", "--json"], env, deadline=deadline, stdin=lines, ok_codes=(0, 3)
        )
        accepted = _accepted(proc.stdout)
        observer.sent(accepted, len(result.events))
        if accepted != len(result.events):
            raise DemoError(
                f"send-event accepted {accepted} of {len(result.events)} events: "
                f"{_last_lines(proc.stderr.decode('utf-8', 'replace'))}"
            )

        seen: set[int] = set()
        while len(seen) < len(result.events):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = sorted(
                    {str(result.events[i]["type"]) for i in range(len(result.events))}
                    - {a.type for a in result.arrivals}
                )
                raise DemoError(
                    f"only {len(seen)} of {len(result.events)} events arrived in time"
                    + (f" (no {', '.join(missing)} event)" if missing else "")
                )
            try:
                message = listener.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if forwarder.exited() is not None:
                    raise DemoError(
                        f"the forwarder stopped: {forwarder.log_tail() or 'no output'}"
                    ) from None
                continue
            arrival = _arrival(message, result.events, transport, sent_at)
            if arrival is None or arrival.index in seen:
                continue
            seen.add(arrival.index)
            result.arrivals.append(arrival)
            observer.arrived(arrival, len(result.events))
        result.delivery_s = time.monotonic() - sent_at

        status = run_child(
            ["forwarder", "status", "--json"], env, deadline=deadline, ok_codes=(0, 1)
        )
        _merge_status(result, status.stdout)
    except AzsSyslogError as exc:
        result.error = str(exc)
    except (OSError, subprocess.SubprocessError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        if forwarder is not None:
            try:
                result.forwarder_exit = forwarder.stop()
                observer.step(f"forwarder (pid {forwarder.pid}) stopped")
            except (OSError, subprocess.SubprocessError) as exc:
                observer.step(f"could not stop the forwarder (pid {forwarder.pid}): {exc}")
        if listener is not None:
            listener.stop()
        with contextlib.suppress(OSError):  # reported below: the directory still exists
            directory.cleanup()
        result.removed = not root.exists()
        result.elapsed_s = time.monotonic() - started
        observer.step(
            f"removed {root}" if result.removed else f"could not remove {root}: remove it by hand"
        )
    if result.error is None and not result.ok:
        bad = [a for a in result.arrivals if not a.valid]
        result.error = f"{len(bad)} events arrived malformed: " + "; ".join(
            f"{a.type}: {', '.join(a.problems)}" for a in bad[:3]
        )
    return result


def _accepted(stdout: bytes) -> int:
    try:
        data = json.loads(stdout)
    except ValueError:
        return 0
    value = data.get("accepted") if isinstance(data, dict) else None
    return value if isinstance(value, int) else 0


def _merge_status(result: DemoResult, stdout: bytes) -> None:
    """Take the TLS details from ``forwarder status --json`` (they win over the status file's
    earlier view)."""
    try:
        data = json.loads(stdout)
    except ValueError:
        return
    status = data.get("status") if isinstance(data, dict) else None
    connection = status.get("connection") if isinstance(status, dict) else None
    if not isinstance(connection, dict):
        return
    result.tls_version = connection.get("tls_version") or result.tls_version
    result.cipher = connection.get("cipher") or result.cipher
    result.server_subject = connection.get("server_subject") or result.server_subject
    sent = connection.get("client_certificate_sent")
    if isinstance(sent, bool):
        result.client_certificate_sent = sent
