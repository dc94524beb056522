"""A real, small tmpfs for disk-full drills.

Mounted for one test and unmounted afterwards. Mounting needs root (CAP_SYS_ADMIN): where it
is impossible the test is skipped, except in CI, where it fails (CI runs as root).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import IN_CI


@contextlib.contextmanager
def mounted_tmpfs(where: Path, size_kib: int) -> Iterator[Path]:
    """Mount a tmpfs of ``size_kib`` KiB on ``where`` (created), yield it, unmount it."""
    where.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        message = f"cannot mount a tmpfs here: {result.stderr.strip() or result.returncode}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def fill(directory: Path, *, leave: int = 0) -> Path:
    """Fill the file system of ``directory`` until at most ``leave`` bytes are free; returns
    the filler file (delete it to give the space back)."""
    filler = directory / "filler"
    with filler.open("wb") as out:
        chunk = b"\0" * 65536
        for _ in range(1 << 20):  # bounded: 64 GiB at most
            free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
            if free <= leave:
                break
            try:
                out.write(chunk[: max(1, min(len(chunk), free - leave))])
                out.flush()
            except OSError:
                break
    return filler
