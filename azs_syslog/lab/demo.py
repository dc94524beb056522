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
import queue
import secrets
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from azs_syslog.errors import AzsSyslogError
from azs_syslog.lab.children import (
    DemoError,
    ForwarderProcess,
    child_env,
    last_lines,
    run_child,
)

if TYPE_CHECKING:
    from azs_syslog.lab.receiver import Listener, ReceivedMessage

DEFAULT_TIMEOUT = 25.0
# The demo's events carry this CEF extension, so that each arrival is matched to what was sent.
MARKER_KEY = "externalId"
MARKER_PREFIX = "azs-syslog-demo-"
PASSWORD_ENV = "AZS_SYSLOG_CERT_PASSWORD"  # noqa: S105 - the variable's name, not a password


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
        data = asdict(self)
        data["problems"] = list(self.problems)
        data["after_s"] = round(self.after_s, 3)
        return data


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

_EVENTS_FILE = "demo-events.json"  # package data, in azs_syslog/lab/data/


def demo_events() -> list[dict[str, Any]]:
    """At least one event of each of the nine types of SPEC section 5, with their variants
    (PEP, REP and WAC; a Windows event that only ``Verbose`` forwards; an alert created and
    resolved; both kinds of fault, opened and closed). Each carries a marker extension."""
    text = (resources.files("azs_syslog.lab") / "data" / _EVENTS_FILE).read_text("utf-8")
    events: list[dict[str, Any]] = json.loads(text)
    for index, event in enumerate(events):
        event["extensions"] = {MARKER_KEY: f"{MARKER_PREFIX}{index}"}
    return events


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
    started = time.monotonic()
    result = DemoResult(events=list(events if events is not None else demo_events()))
    directory = tempfile.TemporaryDirectory(prefix="azs-syslog-demo-")
    root = Path(directory.name)
    result.sandbox = str(root)
    run = _Run(observer, result, root, deadline=started + timeout)
    try:
        run.steps()
    except AzsSyslogError as exc:
        result.error = str(exc)
    except (OSError, subprocess.SubprocessError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        run.stop()
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


class _Run:
    """The steps of one demo in the sandbox under ``root``; ``stop`` ends what they started."""

    def __init__(
        self, observer: DemoObserver, result: DemoResult, root: Path, *, deadline: float
    ) -> None:
        self.observer = observer
        self.result = result
        self.root = root
        self.deadline = deadline
        self.listener: Listener | None = None
        self.forwarder: ForwarderProcess | None = None

    def steps(self) -> None:
        observer, result = self.observer, self.result
        observer.step(f"sandbox {self.root} (its own home: the operator's settings are not used)")
        sandbox = _make_sandbox(self.root)
        observer.step("made a throwaway CA, a server certificate (localhost) and a client PFX")
        listener = self._start_receiver(sandbox)
        env = child_env(sandbox.home)
        self._configure(sandbox, env, listener.port)
        forwarder = self.forwarder = ForwarderProcess(env, self.root / "forwarder.log")
        result.forwarder_pid = forwarder.pid
        observer.step(f"forwarder run started (pid {forwarder.pid})")
        connection = _wait_connected(sandbox.home, forwarder, listener, self.deadline)
        result.tls_version = connection.get("tls_version")
        result.cipher = connection.get("cipher")
        result.server_subject = connection.get("server_subject")
        result.client_certificate_sent = connection.get("client_certificate_sent")
        mutual = "mutual TLS" if result.client_certificate_sent else "TLS"
        transport = f"{mutual} ({result.tls_version})" if result.tls_version else mutual
        observer.step(f"forwarder connected: {transport}, {result.cipher}")
        sent_at = self._send(env)
        self._collect(listener, forwarder, transport, sent_at)
        result.delivery_s = time.monotonic() - sent_at
        status = run_child(
            ["forwarder", "status", "--json"], env, deadline=self.deadline, ok_codes=(0, 1)
        )
        _merge_status(result, status.stdout)

    def _start_receiver(self, sandbox: _Sandbox) -> Listener:
        from azs_syslog.lab.receiver import Listener, server_ssl_context

        context = server_ssl_context(
            str(sandbox.server_cert), str(sandbox.server_key), client_ca=str(sandbox.ca_file)
        )
        listener = self.listener = Listener("tls", "127.0.0.1", 0, ssl_context=context).start()
        self.result.port = listener.port
        self.observer.step(
            f"receiver listening on 127.0.0.1:{listener.port}, TLS, client certificate required"
        )
        return listener

    def _configure(self, sandbox: _Sandbox, env: dict[str, str], port: int) -> None:
        server = ["--server-name", "localhost", "--server-port", str(port)]
        trusted = ["--trusted-ca", str(sandbox.ca_file)]
        run_child(["set-syslog-server", *server, *trusted], env, deadline=self.deadline)
        self.observer.step(f"set-syslog-server {' '.join(server)} --trusted-ca ca.pem")
        client = ["--pfx-file", str(sandbox.client_pfx), "--output-severity", "Verbose"]
        run_child(
            ["set-syslog-client", *client],
            child_env(sandbox.home, {PASSWORD_ENV: sandbox.password}),
            deadline=self.deadline,
        )
        self.observer.step(
            "set-syslog-client --pfx-file client.pfx --output-severity Verbose "
            f"(password from {PASSWORD_ENV})"
        )

    def _send(self, env: dict[str, str]) -> float:
        """``send-event`` every event; when they were queued (monotonic)."""
        events = self.result.events
        lines = "".join(json.dumps(event) + "\n" for event in events).encode()
        sent_at = time.monotonic()
        proc = run_child(
            ["send-event", "-", "--json"],
            env,
            deadline=self.deadline,
            stdin=lines,
            ok_codes=(0, 3),
        )
        accepted = _accepted(proc.stdout)
        self.observer.sent(accepted, len(events))
        if accepted != len(events):
            raise DemoError(
                f"send-event accepted {accepted} of {len(events)} events: "
                f"{last_lines(proc.stderr.decode('utf-8', 'replace'))}"
            )
        return sent_at

    def _collect(
        self, listener: Listener, forwarder: ForwarderProcess, transport: str, sent_at: float
    ) -> None:
        """Take messages from the receiver until every event has arrived once."""
        result = self.result
        seen: set[int] = set()
        while len(seen) < len(result.events):
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise _late(result, len(seen))
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
            self.observer.arrived(arrival, len(result.events))

    def stop(self) -> None:
        forwarder = self.forwarder
        if forwarder is not None:
            try:
                self.result.forwarder_exit = forwarder.stop()
                self.observer.step(f"forwarder (pid {forwarder.pid}) stopped")
            except (OSError, subprocess.SubprocessError) as exc:
                self.observer.step(f"could not stop the forwarder (pid {forwarder.pid}): {exc}")
        if self.listener is not None:
            self.listener.stop()


def _late(result: DemoResult, arrived: int) -> DemoError:
    missing = sorted(
        {str(event["type"]) for event in result.events} - {a.type for a in result.arrivals}
    )
    return DemoError(
        f"only {arrived} of {len(result.events)} events arrived in time"
        + (f" (no {', '.join(missing)} event)" if missing else "")
    )


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
