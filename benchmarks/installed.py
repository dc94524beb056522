"""What the benchmarks that start ``azs-syslog`` processes share: the package's bytecode compiled
first, as an install has it (pip compiles a package's modules when it installs it). Without
it, a shell with ``PYTHONDONTWRITEBYTECODE=1`` (as some CI images and containers set) makes
every start compile all the package's sources again: 0.2-0.4 s more per process here, which the
forwarder's start-to-first-byte figure then wrongly includes."""

from __future__ import annotations

import compileall
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "azs_syslog"


def compile_bytecode() -> None:
    """Write the package's ``__pycache__`` (quietly; a file that does not compile is left to
    the import to report)."""
    compileall.compile_dir(PACKAGE, quiet=2)
