"""Throwaway system users, for the tests of what another account may or may not do.

Tests run as root, where no permission is ever refused. These helpers create system users
with unique names (removed afterwards), and run ``python -m azs_syslog`` as one of them. The
interpreter must be reachable by them: when it lives under a private directory (pyenv under
``/root``), its installation is bind-mounted read-only at a temporary path for the session.
Where users cannot be created, the test is skipped, except in CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import IN_CI, REPO_ROOT, run_process


def _give_up(message: str) -> None:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int  # the user's own group, named like the user
    groups: tuple[int, ...] = ()


@contextlib.contextmanager
def throwaway_user(*, member_of: Sequence[User] = ()) -> Iterator[User]:
    """A new system user (and its own group), optionally also in the groups of ``member_of``;
    deleted, with its group, when the block ends."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        _give_up("creating users needs root and useradd")
    name = f"azst{uuid.uuid4().hex[:10]}"
    command = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    command += ["--user-group"]
    if member_of:
        command += ["--groups", ",".join(grp.getgrgid(u.gid).gr_name for u in member_of)]
    result = subprocess.run([*command, name], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        _give_up(f"cannot create a user: {result.stderr.strip()}")
    try:
        entry = pwd.getpwnam(name)
        yield User(name, entry.pw_uid, entry.pw_gid, tuple(u.gid for u in member_of))
    finally:
        subprocess.run(["userdel", name], capture_output=True, check=False)
        with contextlib.suppress(KeyError):
            grp.getgrnam(name)
            subprocess.run(["groupdel", name], capture_output=True, check=False)


def _reachable_by_others(path: Path) -> bool:
    for directory in (path, *path.parents):
        try:
            if not directory.stat().st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class Interpreter:
    executable: str
    env: dict[str, str]


@pytest.fixture(scope="session")
def interpreter_for_others() -> Iterator[Interpreter]:
    """A Python that other users can run, with this repository and its dependencies."""
    prefix = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = sysconfig.get_paths()["purelib"]
    platsite = sysconfig.get_paths()["platlib"]
    mounted: Path | None = None
    if _reachable_by_others(prefix):
        base = prefix
    else:
        if os.geteuid() != 0:
            _give_up(f"{prefix} is private and bind mounts need root")
        mounted = Path(tempfile.mkdtemp(prefix="azs-python-"))
        mounted.chmod(0o755)
        result = subprocess.run(
            ["mount", "--bind", "-o", "ro", str(prefix), str(mounted)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            mounted.rmdir()
            _give_up(f"cannot bind-mount the interpreter: {result.stderr.strip()}")
        base = mounted
    for needed in (REPO_ROOT, Path(site), Path(platsite)):
        if not _reachable_by_others(needed):
            _give_up(f"{needed} is not reachable by other users")
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.pathsep.join(dict.fromkeys([str(REPO_ROOT), site, platsite])),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        # An interpreter built with a RUNPATH under its private prefix finds libpython here.
        "LD_LIBRARY_PATH": str(base / "lib"),
        "HOME": "/",
        "NO_COLOR": "1",
        "COLUMNS": "120",
    }
    try:
        yield Interpreter(str(base / "bin" / version), env)
    finally:
        if mounted is not None:
            subprocess.run(["umount", "-l", str(mounted)], capture_output=True, check=False)
            with contextlib.suppress(OSError):
                mounted.rmdir()


def _as_user(interpreter: Interpreter, user: User, home: Path) -> dict[str, Any]:
    """The subprocess arguments that run ``interpreter`` as ``user`` with
    ``AZS_SYSLOG_HOME=home``."""
    return {
        "env": {**interpreter.env, "AZS_SYSLOG_HOME": str(home)},
        "user": user.uid,
        "group": user.gid,
        "extra_groups": list(user.groups) or [],
        "cwd": "/",
    }


def as_user(
    interpreter: Interpreter,
    user: User,
    args: Sequence[str],
    *,
    home: Path,
    input: bytes | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m azs_syslog ARGS`` as ``user`` with ``AZS_SYSLOG_HOME=home``."""
    command = [interpreter.executable, "-m", "azs_syslog", *args]
    return run_process(command, input=input, timeout=timeout, **_as_user(interpreter, user, home))


def popen_as_user(
    interpreter: Interpreter,
    user: User,
    args: Sequence[str],
    *,
    home: Path,
    stderr: Path,
) -> subprocess.Popen[bytes]:
    with stderr.open("ab") as log:
        return subprocess.Popen(
            [interpreter.executable, "-m", "azs_syslog", *args],
            stdout=subprocess.DEVNULL,
            stderr=log,
            **_as_user(interpreter, user, home),
        )


@contextlib.contextmanager
def shared_directory() -> Iterator[Path]:
    """A fresh directory every user can enter (pytest's tmp_path is private to root)."""
    directory = Path(tempfile.mkdtemp(prefix="azs-users-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
