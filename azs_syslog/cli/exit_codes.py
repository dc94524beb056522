"""Named exit codes (SPEC section 3)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the operation failed (the error says why)
    USAGE = 2  # click's usage errors
    PARTIAL = 3  # partly done: some inputs were rejected
