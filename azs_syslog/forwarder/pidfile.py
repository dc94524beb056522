"""The worker's pid file: an exclusive ``flock`` held for the process's life (one worker per
home), with the pid number written in it when the disk has room."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path

from azs_syslog import fserrors, paths
from azs_syslog.encode.pipeline import RUNTIME_DIR_MODE
from azs_syslog.errors import AzsSyslogError


@dataclass
class PidLock:
    path: Path
    fd: int
    written: bool = False  # the pid number is in the file (best effort: the disk may be full)


# ``forwarder status`` probes the lock with a brief shared lock; a worker starting at that
# instant tries again for this long before it concludes another worker runs.
PID_LOCK_PATIENCE = 0.5


def acquire_pid_file(path: Path) -> PidLock:
    """Take the worker's pid file: an exclusive ``flock`` held for the process's life, which is
    what guarantees one worker per home (and tells ``forwarder status`` that one runs). The
    pid number is written as well when the disk has room for it (see :func:`write_pid`)."""
    try:
        paths.ensure_private_dir(path.parent, mode=RUNTIME_DIR_MODE)
    except OSError as exc:  # a refused permission is an AccessError already
        raise AzsSyslogError(
            f"cannot create the directory {path.parent}: {exc.strerror or exc}",
            fix=fserrors.disk_full_fix(path.parent) if fserrors.is_disk_full(exc) else None,
        ) from exc
    deadline = time.monotonic() + PID_LOCK_PATIENCE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except PermissionError:
            raise fserrors.access_error(path, "open the pid file", write=True) from None
        except OSError as exc:
            raise AzsSyslogError(
                f"cannot create the pid file {path}: {exc.strerror or exc}",
                fix=fserrors.disk_full_fix(path) if fserrors.is_disk_full(exc) else None,
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            other = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                if time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
                raise AzsSyslogError(
                    f"a forwarder is already running for this home (pid {other}, {path})",
                    fix="stop it first, or point AZS_SYSLOG_HOME at another directory",
                ) from exc
            raise AzsSyslogError(f"cannot lock the pid file {path}: {exc}") from exc
        # A worker that stopped may have unlinked the file between our open and our lock:
        # then we locked a file nobody else will ever look at. Start again on the new one.
        try:
            same = os.fstat(fd).st_ino == path.stat().st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    lock = PidLock(path, fd)
    with contextlib.suppress(OSError):  # best effort: the lock is what counts
        write_pid(lock)
    return lock


def write_pid(lock: PidLock) -> None:
    """Write the pid number into the locked pid file; raises ``OSError`` (ENOSPC on a full
    disk: the worker tries again every second)."""
    data = f"{os.getpid()}\n".encode()
    os.ftruncate(lock.fd, 0)
    if os.pwrite(lock.fd, data, 0) != len(data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    lock.written = True


def release_pid_file(lock: PidLock) -> None:
    if lock.fd < 0:
        return
    with contextlib.suppress(OSError):
        lock.path.unlink()
    os.close(lock.fd)
    lock.fd = -1
