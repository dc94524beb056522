"""Permission problems are one clear line, never ``internal error: PermissionError``.

Real accounts: a throwaway service user owns the home (mode as in the shipped unit), and
another throwaway user runs the commands. See tests/users.py.
"""

from __future__ import annotations

import configparser
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from azs_syslog.forwarder.status import read_status
from tests.test_send_event import windows_event
from tests.users import (
    Interpreter,
    User,
    as_user,
    interpreter_for_others,  # noqa: F401 - a fixture, used by name
    popen_as_user,
    shared_directory,
    throwaway_user,
)

UNIT = (
    Path(__file__).resolve().parent.parent / "azs_syslog" / "data" / "azs-syslog-forwarder.service"
)


def unit_state_directory_mode() -> int:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return int(parser["Service"]["StateDirectoryMode"], 8)


@pytest.fixture
def service_home() -> Iterator[tuple[User, Path]]:
    """A service user and its home, made as systemd's StateDirectory= would make it."""
    with shared_directory() as shared, throwaway_user() as service:
        home = shared / "azs-home"
        home.mkdir()
        os.chown(home, service.uid, service.gid)
        home.chmod(unit_state_directory_mode())
        yield service, home


def assert_one_clear_line(result: object, *, user: User, owner: User, path: Path) -> str:
    assert isinstance(result, __import__("subprocess").CompletedProcess)
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.splitlines()
    assert lines[0].startswith("error: cannot "), err
    assert "permission denied" in lines[0], err
    assert str(path) in lines[0], err
    assert f"for user {user.name}" in lines[0], err
    assert f"owned by {owner.name}:" in lines[0], err
    assert len(lines) == 2 and lines[1].startswith("  fix: "), err
    assert f"as {owner.name}" in lines[1], err
    return err


def test_commands_run_by_another_user_say_what_to_do(
    service_home: tuple[User, Path],
    interpreter_for_others: Interpreter,  # noqa: F811
) -> None:
    service, home = service_home
    python = interpreter_for_others
    setup = as_user(
        python,
        service,
        [
            "set-syslog-server",
            "--server-name",
            "127.0.0.1",
            "--server-port",
            "9",
            "--no-encryption",
        ],
        home=home,
    )
    assert setup.returncode == 0, setup.stderr.decode()
    queued = as_user(
        python, service, ["send-event", "-"], home=home, input=windows_event(1).encode()
    )
    assert queued.returncode == 0, queued.stderr.decode()

    with throwaway_user() as stranger:
        for args, stdin in (
            (["send-event", "-"], windows_event(2).encode()),
            (["forwarder", "status"], None),
            (["forwarder", "run"], None),
            (["set-syslog-server", "--server-name", "x.example", "--server-port", "514"], None),
            (["set-syslog-client", "--output-severity", "Verbose"], None),
            (["get-syslog-server"], None),
            (["get-syslog-client"], None),
        ):
            result = as_user(python, stranger, args, home=home, input=stdin, timeout=30)
            # The home (0750, the service's own) is the path that refuses.
            assert_one_clear_line(result, user=stranger, owner=service, path=home)

    # In the service's group: past the home, refused by the private directory inside it.
    with throwaway_user(member_of=[service]) as member:
        sent = as_user(
            python, member, ["send-event", "-"], home=home, input=windows_event(3).encode()
        )
        err = assert_one_clear_line(sent, user=member, owner=service, path=home / "state")
        assert "mode 0700" in err
        status = as_user(python, member, ["forwarder", "status"], home=home)
        assert_one_clear_line(status, user=member, owner=service, path=home / "state")
        get = as_user(python, member, ["get-syslog-server"], home=home)
        assert_one_clear_line(get, user=member, owner=service, path=home / "config")
        run = as_user(python, member, ["forwarder", "run"], home=home, timeout=30)
        assert_one_clear_line(run, user=member, owner=service, path=home)


def test_a_producer_in_the_service_group_reaches_the_socket(
    service_home: tuple[User, Path],
    interpreter_for_others: Interpreter,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The documented way (docs/security.md): the forwarder runs as the service user in a home
    with the unit's StateDirectoryMode; a producer in the service's group streams JSON lines to
    the 0660 socket in the 0750 runtime directory; anyone else is refused."""
    service, home = service_home
    python = interpreter_for_others
    log = tmp_path / "forwarder.log"
    proc = popen_as_user(python, service, ["forwarder", "run"], home=home, stderr=log)
    try:
        sock = home / "run" / "forwarder.sock"
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert (home / "run").stat().st_mode & 0o777 == 0o750
        assert sock.stat().st_mode & 0o777 == 0o660
        client = (
            "import socket, sys\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "s.settimeout(20)\n"
            "try:\n"
            "    s.connect(sys.argv[1])\n"
            "except PermissionError as exc:\n"
            "    print('refused', exc.errno); sys.exit(0)\n"
            "s.sendall(sys.stdin.buffer.read())\n"
            "s.shutdown(socket.SHUT_WR)\n"
            "print(s.makefile('rb').read().decode().strip())\n"
        )

        def stream_as(user: User, line: str) -> str:
            import subprocess

            result = subprocess.run(
                [python.executable, "-c", client, str(sock)],
                input=line.encode(),
                capture_output=True,
                env=python.env,
                user=user.uid,
                group=user.gid,
                extra_groups=list(user.groups),
                cwd="/",
                timeout=30,
                check=False,
            )
            assert result.returncode == 0, result.stderr.decode()
            return result.stdout.decode().strip()

        with throwaway_user(member_of=[service]) as producer:
            assert stream_as(producer, windows_event(7) + "\n") == "ok 1"
        with throwaway_user() as stranger:
            assert stream_as(stranger, windows_event(8) + "\n") == "refused 13"
        deadline = time.monotonic() + 10
        while True:
            status: dict[str, Any] = read_status(home / "state" / "status.json") or {}
            if (status.get("counts") or {}).get("accepted") == 1:
                break
            assert time.monotonic() < deadline, json.dumps(status)
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text()
