"""``send-event`` on a FILE its user may not read: one clear line, with or without --jobs, for
our JSON lines and for an .evtx file (the --jobs checks and splits read the file first)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.test_send_event import windows_event
from tests.users import (
    Interpreter,
    as_user,
    interpreter_for_others,  # noqa: F401 - a fixture, used by name
    shared_directory,
    throwaway_user,
)

FIXTURES = Path(__file__).parent / "fixtures" / "evtx"


@pytest.mark.parametrize("kind", ["jsonl", "evtx"])
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_file_the_user_may_not_read_is_one_clear_line(
    kind: str,
    jobs: str,
    interpreter_for_others: Interpreter,  # noqa: F811
) -> None:
    with shared_directory() as shared, throwaway_user() as user:
        source = shared / f"events.{kind}"
        if kind == "evtx":
            shutil.copyfile(FIXTURES / "security.evtx", source)
        else:
            source.write_text("".join(windows_event(n) + "\n" for n in range(1, 50)))
        source.chmod(0o600)  # root's own: the user may not read it
        home = shared / "home"
        result = as_user(
            interpreter_for_others, user, ["send-event", "--jobs", jobs, str(source)], home=home
        )
        lines = result.stderr.decode().splitlines()
        assert result.returncode in (1, 2), result.stderr
        assert "Traceback" not in result.stderr.decode() and "internal error" not in lines[0]
        assert str(source) in lines[0] and "ermission denied" in lines[0], lines
