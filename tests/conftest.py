"""Shared test fixtures.

Every test runs with ``AZS_SYSLOG_HOME`` pointing at its own temporary directory, so nothing
ever touches the real home directory; colour and terminal width are fixed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from azs_syslog.cli import cli, translate_cmdlet_args

REPO_ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True)
def azs_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "azs-home"
    monkeypatch.setenv("AZS_SYSLOG_HOME", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.delenv("AZS_SYSLOG_CERT_PASSWORD", raising=False)
    monkeypatch.delenv("AZS_SYSLOG_DEBUG", raising=False)
    yield home


def run_cli(args: Sequence[str], *, input: str | bytes | None = None) -> Result:
    """Run the CLI in-process (stdout and stderr kept apart), as ``main`` would."""
    runner = CliRunner()
    return runner.invoke(
        cli, translate_cmdlet_args(list(args)), input=input, catch_exceptions=False
    )


def run_cli_process(
    args: Sequence[str],
    *,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m azs_syslog`` in a child process, with this test's environment."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "azs_syslog", *args],
        input=input,
        capture_output=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def discard_audit_events() -> None:
    """Delete the ConfigurationChanged records the ``set-*`` commands queued so far, for the
    tests that count the events queued and sent exactly (docs/operations.md, "The audit
    trail"; counted as ``audit_undelivered``)."""
    from azs_syslog.queue import Queue

    with Queue() as queue:
        queue.discard([b.id for b in queue.next_batches(1000) if b.pinned])


@pytest.fixture
def cli_run() -> object:
    return run_cli
