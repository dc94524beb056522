"""The worker's status file: overwritten in place about once a second, read by
``forwarder status``; and the health rule that turns it into an exit code.

The file survives a full disk: it is preallocated (``STATUS_FILE_BYTES``, padded with spaces,
which JSON ignores) and every update overwrites it in place with one ``pwrite``, which needs no
new blocks. A reader that catches a write half done sees a document whose first and last keys
(``write`` and ``write_check``) differ, or no JSON at all, and reads again.

Whether a worker runs does not depend on the status file (which may be stale when the disk is
full) nor on the pid number in the pid file (which may be missing for the same reason): the
worker holds an exclusive ``flock`` on its pid file for its whole life, and
:func:`worker_lock_held` probes it.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from azs_syslog import paths
from azs_syslog.forwarder.snapshot import StatusSnapshot

# Worker states.
NOT_CONFIGURED = "not configured"
CONNECTING = "connecting"
CONNECTED = "connected"
BACKING_OFF = "backing off"
DRAINING = "draining"
STOPPED = "stopped"

# A condition the worker reports alongside its state.
DISK_FULL = "disk full"

# A worker rewrites its status every second; older than this, the worker is presumed gone
# (unless its pid-file lock says otherwise).
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


def blocked_for(status: StatusSnapshot, now: float) -> tuple[str, float] | None:
    """What the worker's loop waits on without progress, and for how many seconds."""
    blocked = status.blocked
    if blocked is None:
        return None
    return blocked.on, max(0.0, now - blocked.since_ms / 1000)


def blocked_reason(on: str, seconds: float) -> str:
    template = _BLOCKED_REASONS.get(on, "the forwarder is blocked in " + on + " for {s:.0f} s")
    return template.format(s=seconds)


STATUS_FILE_BYTES = 64 << 10
READ_ATTEMPTS = 20  # a torn read is retried (5 ms apart): 0.1 s at most

_write_lock = threading.Lock()
_write_tokens = itertools.count(1)


def write_status(snapshot: StatusSnapshot, path: Path | None = None) -> None:
    """Overwrite the status file in place with ``snapshot`` (see the module doc). Not fsynced: the
    status describes the running worker and is rewritten every second. Safe to call from
    several threads. Raises ``OSError`` (ENOSPC only when the file cannot hold the document
    yet) or ``AccessError``."""
    target = path or paths.status_file()
    paths.ensure_private_dir(target.parent)
    with _write_lock:
        token = f"{os.getpid()}.{next(_write_tokens)}"
        document = {"write": token, **snapshot.as_json(), "write_check": token}
        text = json.dumps(document, indent=2).encode()
        text += b"\n"
        fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            size = os.fstat(fd).st_size
            length = max(size, STATUS_FILE_BYTES)
            while length < len(text):
                length *= 2
            try:
                _pwrite_all(fd, text.ljust(length), 0)
            except OSError as exc:
                # Full disk: the blocks the file already has still take a document that fits.
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or len(text) > size:
                    raise
                _pwrite_all(fd, text.ljust(size), 0)
        finally:
            os.close(fd)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    written = os.pwrite(fd, data, offset)
    if written != len(data):  # a short write: out of space after the blocks it had
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def read_snapshot(path: Path | None = None) -> StatusSnapshot | None:
    """The last status the worker wrote, or None when there is none (or it is unreadable).
    Raises ``AccessError`` when the user may not read it."""
    document = read_status(path)
    return None if document is None else StatusSnapshot.from_json(document)


def read_status(path: Path | None = None) -> dict[str, object] | None:
    """The status file's JSON document as the worker wrote it (see :func:`read_snapshot`),
    or None."""
    target = path or paths.status_file()
    for attempt in range(READ_ATTEMPTS):
        if attempt:
            time.sleep(0.005)
        try:
            raw = target.read_bytes()
        except PermissionError:
            from azs_syslog.fserrors import access_error

            raise access_error(target, "read the status file", write=False) from None
        except OSError:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            continue  # torn (or damaged: after READ_ATTEMPTS, None)
        if not isinstance(data, dict):
            return None
        if data.get("write") != data.get("write_check"):
            continue  # torn
        data.pop("write", None)
        data.pop("write_check", None)
        return data
    return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_lock_held(path: Path | None = None) -> bool | None:
    """Whether a worker holds the pid file's lock: True or False; None when that cannot be
    told (no pid file, or no permission to open it)."""
    target = path or paths.pid_file()
    try:
        fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return True
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def pid_in_file(path: Path | None = None) -> int | None:
    """The pid written in the pid file (it may be missing: writing it is best effort)."""
    target = path or paths.pid_file()
    try:
        text = target.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@dataclass(frozen=True)
class Health:
    healthy: bool
    running: bool
    reason: str
    # False when a worker runs but the status file does not describe it (not updated since
    # ``updated``: the disk is full, or the worker is stuck).
    current: bool = True


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))


def evaluate(
    status: StatusSnapshot | None,
    *,
    now: float | None = None,
    lock: bool | None = None,
    lock_pid: int | None = None,
) -> Health:
    """Healthy = a live worker that is connected, or idle with an empty queue.

    ``lock`` is :func:`worker_lock_held` (``lock_pid`` the pid in the pid file): when it is
    known, it alone says whether a worker runs. Otherwise a worker is not running when there
    is no status, a ``stopped`` status, a dead pid or a status older than ``STALE_AFTER``
    seconds. A running worker is unhealthy in every state but connected (or idle with nothing
    queued), with a configuration problem, a failed socket input, a full disk, a network call
    blocked for more than ``BLOCKED_UNHEALTHY_AFTER`` s, held events (accepted under a
    stronger transport than the current one), or a status that has not been updated.
    """
    current = time.time() if now is None else now
    if lock is False:
        return _not_running(status)
    if lock is True:
        verdict = _with_lock(status, current, lock_pid)
    else:
        verdict = _without_lock(status, current)
    if verdict is not None:
        return verdict
    assert status is not None
    return _running(status, current)


def _not_running(status: StatusSnapshot | None) -> Health:
    if status is None:
        return Health(False, False, "the forwarder has never run on this home (no status file)")
    if status.state == STOPPED:
        return Health(False, False, "the forwarder is not running (it stopped)")
    return Health(False, False, f"the forwarder is not running (pid {status.pid} is gone)")


def _with_lock(
    status: StatusSnapshot | None, current: float, lock_pid: int | None
) -> Health | None:
    """A worker holds the lock: whether the status describes it (None: go on)."""
    pid = status.pid if status else None
    updated = status.updated if status else 0.0
    state = status.state if status else None
    worker = lock_pid if lock_pid is not None else pid
    if state == STOPPED and pid == lock_pid and current - updated <= STALE_AFTER:
        # Its final status is written just before it lets go of the lock.
        return Health(False, False, "the forwarder is not running (it stopped)")
    its_own = lock_pid is None or pid == lock_pid
    if status is not None and state != STOPPED and its_own and current - updated <= STALE_AFTER:
        return None
    since = f"since {_stamp(updated)}" if status is not None and its_own else "since it started"
    return Health(
        False,
        True,
        f"the forwarder runs (pid {worker if worker is not None else '?'}) but its "
        f"status has not been updated {since} (disk full?)",
        current=False,
    )


def _without_lock(status: StatusSnapshot | None, current: float) -> Health | None:
    """The lock cannot be probed: the status says whether a worker runs (None: it does)."""
    if status is None or status.state == STOPPED:
        return _not_running(status)
    if status.pid is None or not pid_alive(status.pid):
        return _not_running(status)
    if current - status.updated > STALE_AFTER:
        return Health(
            False, False, f"the forwarder's status is stale ({current - status.updated:.0f} s old)"
        )
    return None


def _running(status: StatusSnapshot, current: float) -> Health:
    """A running worker's health, from what its status says."""
    if status.condition == DISK_FULL:
        path = status.disk_full.path if status.disk_full else "a file"
        return Health(
            False,
            True,
            f"disk full: {path} cannot be written; delivering what is queued meanwhile",
        )
    if status.config_problem:
        return Health(False, True, "the configuration is invalid; running on the last good one")
    if status.socket_error:
        return Health(False, True, f"the socket input has a problem: {status.socket_error}")
    if status.held and status.held.events:
        return Health(False, True, f"{status.held.events} events are held (see Held)")
    blocked = blocked_for(status, current)
    if blocked is not None and blocked[1] > BLOCKED_UNHEALTHY_AFTER:
        return Health(False, True, blocked_reason(*blocked))
    if status.state == CONNECTED:
        return Health(True, True, "connected")
    if status.state == NOT_CONFIGURED:
        if not (status.queue and status.queue.events):
            return Health(True, True, "no server configured and nothing queued")
        return Health(False, True, "no server configured; events are queueing")
    return Health(False, True, str(status.state))
