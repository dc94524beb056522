"""The demo's child processes: each ``azs-syslog`` command runs in the demo's own home.

``run_child`` runs one command to its end; ``ForwarderProcess`` is the one long-lived child
(``forwarder run``), stopped by its PID. ``child_env`` keeps the caller's configuration out.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from azs_syslog.errors import AzsSyslogError

# How long the forwarder gets to stop after SIGTERM before it is killed (SPEC: it exits in 5 s).
STOP_GRACE = 10.0


class DemoError(AzsSyslogError):
    """A step of the demo failed (everything it made is still removed)."""


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


def last_lines(text: str, count: int = 4) -> str:
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
        detail = last_lines(proc.stderr.decode("utf-8", "replace")) or "no message"
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
            return last_lines(self.log_path.read_text(encoding="utf-8", errors="replace"))
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
