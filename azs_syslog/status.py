"""The worker's status file: written atomically about once a second, read by
``forwarder status``; and the health rule that turns it into an exit code.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azs_syslog import paths

# Worker states.
NOT_CONFIGURED = "not configured"
CONNECTING = "connecting"
CONNECTED = "connected"
BACKING_OFF = "backing off"
DRAINING = "draining"
STOPPED = "stopped"

# A worker rewrites its status every second; older than this, the worker is presumed gone.
STALE_AFTER = 10.0
# A network call that has waited without progress for longer than this makes the forwarder
# unhealthy (a write to a server that does not read fails only after 30 s).
BLOCKED_UNHEALTHY_AFTER = 5.0

_BLOCKED_REASONS = {
    "write": "sending is blocked for {s:.0f} s: the server is not reading",
    "connect": "connecting is blocked for {s:.0f} s: the server does not answer",
    "tls handshake": "the TLS handshake is blocked for {s:.0f} s: the server does not answer",
    "close": "closing the connection is blocked for {s:.0f} s: the server does not answer",
}


def blocked_for(status: dict[str, Any], now: float) -> tuple[str, float] | None:
    """What the worker's loop waits on without progress, and for how many seconds."""
    blocked = status.get("blocked")
    if not isinstance(blocked, dict):
        return None
    since = blocked.get("since_ms")
    if not isinstance(since, (int, float)):
        return None
    return str(blocked.get("on") or "?"), max(0.0, now - since / 1000)


def blocked_reason(on: str, seconds: float) -> str:
    template = _BLOCKED_REASONS.get(on, "the forwarder is blocked in " + on + " for {s:.0f} s")
    return template.format(s=seconds)


def write_status(data: dict[str, Any], path: Path | None = None) -> None:
    """Replace the status file atomically (a reader never sees half of it). Not fsynced: the
    status describes the running worker and is rewritten every second."""
    target = path or paths.status_file()
    paths.ensure_private_dir(target.parent)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    tmp.replace(target)


def read_status(path: Path | None = None) -> dict[str, Any] | None:
    """The last status the worker wrote, or None when there is none (or it is unreadable)."""
    target = path or paths.status_file()
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Health:
    healthy: bool
    running: bool
    reason: str


def evaluate(status: dict[str, Any] | None, *, now: float | None = None) -> Health:
    """Healthy = a live worker that is connected, or idle with an empty queue.

    Not running (no status, a ``stopped`` status, a dead pid or a status older than
    ``STALE_AFTER`` seconds) is unhealthy, and so is every other state (not configured with
    events waiting, connecting, backing off, draining), a configuration problem, a failed
    socket input, and a network call blocked for more than ``BLOCKED_UNHEALTHY_AFTER`` s.
    """
    current = time.time() if now is None else now
    if status is None:
        return Health(False, False, "the forwarder has never run on this home (no status file)")
    pid = status.get("pid")
    updated = float(status.get("updated", 0))
    state = status.get("state")
    if state == STOPPED:
        return Health(False, False, "the forwarder is not running (it stopped)")
    if not isinstance(pid, int) or not pid_alive(pid):
        return Health(False, False, f"the forwarder is not running (pid {pid} is gone)")
    if current - updated > STALE_AFTER:
        return Health(
            False, False, f"the forwarder's status is stale ({current - updated:.0f} s old)"
        )
    if status.get("config_problem"):
        return Health(False, True, "the configuration is invalid; running on the last good one")
    if status.get("socket_error"):
        return Health(False, True, f"the socket input stopped: {status['socket_error']}")
    blocked = blocked_for(status, current)
    if blocked is not None and blocked[1] > BLOCKED_UNHEALTHY_AFTER:
        return Health(False, True, blocked_reason(*blocked))
    queue = status.get("queue") or {}
    if state == CONNECTED:
        return Health(True, True, "connected")
    if state == NOT_CONFIGURED:
        if not queue.get("events"):
            return Health(True, True, "no server configured and nothing queued")
        return Health(False, True, "no server configured; events are queueing")
    return Health(False, True, str(state))
