"""The two file-system problems an operator must act on: a full disk and a refused permission.

Both used to reach people as ``internal error: OSError`` / ``PermissionError``. Library code
uses this module to turn them into one line that names the path and what to do; the worker
uses :func:`is_disk_full` to tell a full disk (keep running, wait for space) apart from every
other failure.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from pathlib import Path

from azs_syslog.errors import AccessError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
SQLITE_FULL = 13
SQLITE_IOERR = 10
# SQLite reports a failed extension of its shared-memory file (``-shm``) as a plain
# "disk I/O error" (SQLITE_IOERR_SHMSIZE), losing the ENOSPC. On a file system with less
# free space than this, such an I/O error is taken for what it almost surely is.
LOW_SPACE_BYTES = 1 << 20


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use on the file system of ``path`` (or of its
    nearest existing parent); None when that cannot be known."""
    for candidate in (path, *path.parents):
        try:
            info = os.statvfs(candidate)
        except FileNotFoundError:
            continue
        except OSError:
            return None
        return info.f_bavail * info.f_frsize
    return None


def is_disk_full(exc: BaseException, path: Path | None = None) -> bool:
    """Whether ``exc`` (or what caused it) is "no space left": ENOSPC / EDQUOT, SQLite's
    SQLITE_FULL, or an SQLite I/O error on a file system that has (almost) no space left."""
    seen: BaseException | None = exc
    for _ in range(8):  # bounded: a cause chain is short
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in DISK_FULL_ERRNOS:
            return True
        if isinstance(seen, sqlite3.Error):
            code = getattr(seen, "sqlite_errorcode", None)
            primary = code & 0xFF if isinstance(code, int) else None
            if primary == SQLITE_FULL or "database or disk is full" in str(seen):
                return True
            if (primary == SQLITE_IOERR or "disk I/O error" in str(seen)) and path is not None:
                free = free_bytes(path)
                return free is not None and free < LOW_SPACE_BYTES
        seen = seen.__cause__ or seen.__context__
    return False


def disk_full_fix(path: Path, *, forwarder: bool = False) -> str:
    directory = path if path.is_dir() else path.parent
    fix = f"free space on the file system that holds {directory} (df -h {directory})"
    if forwarder:
        fix += "; the forwarder keeps delivering what is queued and catches up by itself"
    return fix


# --- permissions -------------------------------------------------------------------------------


def _user(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def current_user() -> str:
    return _user(os.geteuid())


def _allowed(path: Path, mode: int) -> bool:
    return os.access(path, mode, effective_ids=os.access in os.supports_effective_ids)


def refusing_path(path: Path, *, write: bool) -> Path:
    """The path that refuses access to ``path``: the first directory on the way that the user
    may not enter, else ``path`` itself (or, when it does not exist yet, its parent)."""
    for parent in reversed(path.parents):
        if parent.is_dir() and not _allowed(parent, os.X_OK):
            return parent
    try:
        exists = path.exists()
    except OSError:
        exists = False
    if not exists:
        return path.parent
    wanted = os.R_OK | (os.W_OK if write else 0)
    if path.is_dir():
        wanted |= os.X_OK
    if not _allowed(path, wanted):
        return path
    if write and not _allowed(path.parent, os.W_OK | os.X_OK):
        return path.parent
    return path


def describe(path: Path) -> str:
    """``owned by azs-syslog:azs-syslog, mode 0700`` (or why that is unknown)."""
    try:
        info = path.stat()
    except OSError as exc:
        return f"which cannot be examined ({exc.strerror or exc})"
    return (
        f"owned by {_user(info.st_uid)}:{_group(info.st_gid)}, "
        f"mode {stat.S_IMODE(info.st_mode):04o}"
    )


def access_problem(path: Path, action: str, *, write: bool) -> tuple[str, str, Path]:
    """``(message, fix, refusing path)`` for a permission refused while ``action`` (``read``,
    ``write``, ``create``, ``use``) was done to ``path``."""
    where = refusing_path(path, write=write)
    user = current_user()
    try:
        info = where.stat()
        owner: str | None = _user(info.st_uid)
        group_name = _group(info.st_gid)
        group_can = bool(info.st_mode & (stat.S_IRGRP | stat.S_IXGRP))
    except OSError:
        owner, group_name, group_can = None, "", False
    message = f"cannot {action} {path}: permission denied for user {user}"
    message += f" ({where} is {describe(where)})" if where != path else f" (it is {describe(path)})"
    if owner is None or owner == user:
        fix = f"give {user} access to {where} (check its owner and mode)"
    else:
        fix = (
            f"run the command as {owner} (e.g. sudo -u {owner} with the same AZS_SYSLOG_HOME), "
            "the account that owns azs-syslog's files here"
        )
        if group_can:
            fix += (
                "; to stream events to the forwarder's socket instead, joining the group "
                f"{group_name} is enough"
            )
    return message, fix, where


def access_error(path: Path, action: str, *, write: bool) -> AccessError:
    message, fix, where = access_problem(path, action, write=write)
    return AccessError(message, path=str(where), fix=fix)


def is_permission_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM)
