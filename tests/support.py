"""Helpers shared by the tests (fixtures live in conftest.py; rsyslog and certificates in
receivers.py).

* The CLI in this process (``run_cli``) or in a child process (``run_cli_process``,
  ``start_cli``, ``start_python``): children get this repository first on PYTHONPATH, so the
  code under test is what runs.
* ``Forwarder``: ``forwarder run`` as a real child process, with its status file and log.
* ``wait_until``: the one bounded wait for a condition (tests never sleep to synchronise).
* Syslog framing: ``octet_frame``, ``octet_counted``, ``lf_framed``.
* Numbered test events (a unique MasEventRecordID each): ``events``, ``send_events``,
  ``record_ids``, ``wait_for_ids``, ``assert_none_missing``.
* ``set_server``: point the configuration at 127.0.0.1:PORT.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

from click.testing import CliRunner, Result

from azs_syslog import paths
from azs_syslog.cli import cli, translate_cmdlet_args

if TYPE_CHECKING:
    from azs_syslog.forwarder.worker import Worker
    from tests.receivers import RsyslogReceiver, TestPKI

REPO_ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
EVENT_TIME = "2026-11-26T10:00:00.123Z"
RECORD_ID = re.compile(rb"MasEventRecordID=(\d+)")
POLL = 0.05  # seconds between two looks at a condition

T = TypeVar("T")
F = TypeVar("F", bound="Forwarder")


# --- the CLI -----------------------------------------------------------------------------------


def run_cli(args: Sequence[str], *, input: str | bytes | None = None) -> Result:
    """Run the CLI in-process (stdout and stderr kept apart), as ``main`` would."""
    runner = CliRunner()
    return runner.invoke(
        cli, translate_cmdlet_args(list(args)), input=input, catch_exceptions=False
    )


def child_env(extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """This test's environment for a child Python, with this repository first on PYTHONPATH;
    ``extra`` sets variables (None: removes one)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    for name, value in (extra or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def start_python(
    args: Sequence[str], *, env: Mapping[str, str | None] | None = None, **popen: Any
) -> subprocess.Popen[bytes]:
    """``python ARGS`` in a child process (``child_env``); ``popen``: more Popen arguments."""
    return subprocess.Popen([sys.executable, *args], env=child_env(env), **popen)


def start_cli(
    args: Sequence[str], *, env: Mapping[str, str | None] | None = None, **popen: Any
) -> subprocess.Popen[bytes]:
    """``python -m azs_syslog ARGS`` in a child process, not waited for."""
    return start_python(["-m", "azs_syslog", *args], env=env, **popen)


def run_process(
    command: Sequence[str], *, input: bytes | None = None, timeout: float = 60, **popen: Any
) -> subprocess.CompletedProcess[bytes]:
    """Run ``command`` to its end (at most ``timeout`` s), its output captured."""
    return subprocess.run(
        command, input=input, capture_output=True, timeout=timeout, check=False, **popen
    )


def run_cli_process(
    args: Sequence[str],
    *,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m azs_syslog`` in a child process, with this test's environment."""
    command = [sys.executable, "-m", "azs_syslog", *args]
    return run_process(command, input=input, timeout=timeout, env=child_env(env))


def set_server(port: int, *flags: str) -> Result:
    """``set-syslog-server`` to 127.0.0.1:``port`` with ``flags``; it must succeed."""
    args = ["set-syslog-server", "--server-name", "127.0.0.1", "--server-port", str(port)]
    result = run_cli([*args, *flags])
    assert result.exit_code == 0, result.stderr
    return result


def configure(mode: str, receiver: RsyslogReceiver, pki: TestPKI | None, tmp: Path) -> None:
    """Point the configuration at ``receiver`` in one of the four configurations: ``udp``,
    ``tcp``, ``tls`` (trusting ``pki``'s CA) or ``mtls`` (also ``pki``'s client certificate),
    and discard the audit events this queued (the tests count events exactly)."""
    if mode == "udp":
        set_server(receiver.port, "--use-udp")
    elif mode == "tcp":
        set_server(receiver.port, "--no-encryption")
    else:
        assert pki is not None
        set_server(receiver.port, "--trusted-ca", str(pki.ca_file))
    if mode == "mtls":
        assert pki is not None
        pfx = tmp / "client.pfx"
        pfx.write_bytes(pki.client.to_pfx(b"test-password"))
        result = run_cli(
            ["set-syslog-client", "--pfx-file", str(pfx), "--output-severity", "Verbose"],
            input="test-password\n",
        )
        assert result.exit_code == 0, result.stderr
    discard_audit_events()


def discard_audit_events() -> None:
    """Delete the ConfigurationChanged records the ``set-*`` commands queued so far, for the
    tests that count the events queued and sent exactly (docs/operations.md, "The audit
    trail"; counted as ``audit_undelivered``)."""
    from azs_syslog.queue import Queue

    with Queue() as queue:
        queue.discard([b.id for b in queue.next_batches(1000) if b.pinned])


# --- waiting -----------------------------------------------------------------------------------


def wait_until(condition: Callable[[], T | Literal[False] | None], timeout: float, what: str) -> T:
    """Poll ``condition`` until it returns something true (returned) or ``timeout`` seconds
    pass (an AssertionError naming ``what``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL)


def step_until(worker: Worker, done: Callable[[], object], timeout: float, what: str) -> None:
    """Run an in-process worker's loop (``step``) until ``done()``, sleeping only while the
    worker asks to wait (at most POLL at a time); an AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what}; {worker.status()}"
            )
        wait = worker.step()
        if wait:
            time.sleep(min(wait, POLL))


# --- framing -----------------------------------------------------------------------------------


def octet_frame(message: bytes) -> bytes:
    """RFC 6587 octet counting: ``LEN SP MESSAGE``."""
    return b"%d %s" % (len(message), message)


def octet_counted(messages: Sequence[bytes]) -> tuple[bytes, list[int]]:
    """The octet-counted stream of ``messages`` and the length of each frame."""
    framed = [octet_frame(m) for m in messages]
    return b"".join(framed), [len(f) for f in framed]


def lf_framed(messages: Sequence[bytes]) -> tuple[bytes, list[int]]:
    """The LF-framed stream of ``messages`` and the length of each frame."""
    framed = [m + b"\n" for m in messages]
    return b"".join(framed), [len(f) for f in framed]


# --- numbered events ---------------------------------------------------------------------------


def events(first: int, count: int, *, time_text: str | None = EVENT_TIME) -> str:
    """JSON lines of Windows events numbered ``first`` .. ``first + count - 1``."""
    from tests.test_send_event import windows_event

    return "".join(
        windows_event(i, time_text=time_text) + "\n" for i in range(first, first + count)
    )


def send_events(first: int, count: int, *, time_text: str | None = EVENT_TIME) -> None:
    """Queue those events with ``send-event``."""
    result = run_cli(["send-event", "-"], input=events(first, count, time_text=time_text))
    assert result.exit_code == 0, result.stderr


def expected_messages(first: int, count: int) -> list[bytes]:
    """What ``format-event`` prints for those events under the current configuration."""
    result = run_cli(["format-event", "-"], input=events(first, count))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout_bytes.split(b"\n")
    assert lines[-1] == b""
    return lines[:-1]


def record_ids(lines: Sequence[bytes], *, strict: bool = False) -> Counter[int]:
    """How often each event arrived; ``strict``: every line must be one of ours."""
    ids: Counter[int] = Counter()
    for line in lines:
        match = RECORD_ID.search(line)
        assert match or not strict, line[:200]
        if match:
            ids[int(match.group(1))] += 1
    return ids


def wait_for_ids(receiver: RsyslogReceiver, expected: range, timeout: float = 60) -> Counter[int]:
    """What arrived at ``receiver`` once every event of ``expected`` did, or at the timeout
    (check it with ``assert_none_missing``)."""
    deadline = time.monotonic() + timeout
    while True:
        ids = record_ids(receiver.lines())
        if set(expected) <= set(ids) or time.monotonic() > deadline:
            return ids
        time.sleep(0.1)


def assert_none_missing(ids: Counter[int], expected: range) -> int:
    """Every event of ``expected`` arrived; returns the number of duplicates."""
    missing = sorted(set(expected) - set(ids))
    assert not missing, f"{len(missing)} missing, e.g. {missing[:10]}"
    return sum(ids.values()) - len(ids)


def wait_for_all(receiver: RsyslogReceiver, expected: range, timeout: float = 60) -> int:
    """Wait until every event of ``expected`` arrived at ``receiver`` (it must); returns the
    number of duplicates."""
    return assert_none_missing(wait_for_ids(receiver, expected, timeout), expected)


# --- the forwarder as a process ----------------------------------------------------------------

Status = dict[str, Any]


class Forwarder:
    """``azs-syslog forwarder run ARGS`` in a child process, its stderr in ``log``."""

    def __init__(
        self,
        log: Path,
        *args: str,
        env: Mapping[str, str | None] | None = None,
        preexec_fn: Callable[[], object] | None = None,
    ) -> None:
        self.log = log
        self.args = args
        self.env = env
        self.preexec_fn = preexec_fn
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        with self.log.open("ab") as log:
            self.proc = start_cli(
                ["forwarder", "run", *self.args],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                preexec_fn=self.preexec_fn,
            )
        return self

    def status(self) -> Status:
        try:
            data = json.loads(paths.status_file().read_text())
        except (OSError, ValueError):
            return {}
        assert isinstance(data, dict)
        return data

    def wait_for(self, predicate: Callable[[Status], object], timeout: float = 30) -> Status:
        """Wait until this process's status satisfies ``predicate``; the process must live."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            status = self.status()
            if status.get("pid") == self.proc.pid and predicate(status):
                return status
            time.sleep(POLL)
        raise AssertionError(f"timed out; last status {self.status()}; log {self.log.read_text()}")

    def terminate(self, timeout: float = 10) -> tuple[int, float]:
        """SIGTERM; the exit code and how long the stop took."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def stop_cleanly(self, within: float | None = None) -> None:
        """SIGTERM: exit code 0 (within ``within`` seconds, if given), no traceback."""
        code, elapsed = self.terminate()
        assert code == 0, self.log.read_text()
        if within is not None:
            assert elapsed < within
        assert "Traceback" not in self.log.read_text()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Forwarders:
    """The forwarder processes a test started, each with its log in ``directory``; those
    still running are killed (by PID) by ``stop_all`` (the ``forwarders_started`` fixture)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[Forwarder] = []

    def next_log(self) -> Path:
        return self.directory / f"forwarder-{len(self.started)}.log"

    def start(self, worker: F) -> F:
        self.started.append(worker)
        return worker.start()

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop_quietly()
