"""Shared test fixtures (the helpers are in tests/support.py).

Every test runs with ``AZS_SYSLOG_HOME`` pointing at its own temporary directory, so nothing
ever touches the real home directory; colour and terminal width are fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.receivers import TestPKI, rsyslog_factory
from tests.support import (
    REPO_ROOT,
    Forwarder,
    Forwarders,
    discard_audit_events,
    run_cli,
    run_cli_process,
)

# Test modules import these from here too.
__all__ = [
    "REPO_ROOT",
    "discard_audit_events",
    "forwarder",
    "rsyslog_factory",
    "run_cli",
    "run_cli_process",
]


@pytest.fixture(autouse=True)
def azs_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "azs-home"
    monkeypatch.setenv("AZS_SYSLOG_HOME", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.delenv("AZS_SYSLOG_CERT_PASSWORD", raising=False)
    monkeypatch.delenv("AZS_SYSLOG_DEBUG", raising=False)
    yield home


@pytest.fixture
def forwarders_started(tmp_path: Path) -> Iterator[Forwarders]:
    """Start ``Forwarder``s (or subclasses) through this: killed (by PID) at the test's end."""
    started = Forwarders(tmp_path)
    yield started
    started.stop_all()


@pytest.fixture
def forwarder(forwarders_started: Forwarders) -> Callable[..., Forwarder]:
    """``forwarder(*args, **Forwarder options)`` → a started ``forwarder run ARGS`` child, its
    log in tmp_path."""

    def make(*args: str, **options: Any) -> Forwarder:
        log = forwarders_started.next_log()
        return forwarders_started.start(Forwarder(log, *args, **options))

    return make


@pytest.fixture
def pki(tmp_path: Path) -> TestPKI:
    """A test CA with a server certificate (localhost, 127.0.0.1, ::1) and a client one."""
    return TestPKI.create(tmp_path / "pki")
