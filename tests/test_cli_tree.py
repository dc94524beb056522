from __future__ import annotations

import stat
from pathlib import Path

import pytest

from azs_syslog import paths
from azs_syslog.cli import COMMANDS, translate_cmdlet_args
from tests.conftest import run_cli, run_cli_process


def test_version_and_help_list_every_command() -> None:
    result = run_cli(["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output
    version = run_cli(["--version"])
    assert version.exit_code == 0
    assert "azs-syslog" in version.output
    # Which encoder renders events: the compiled one whenever it is built.
    from azs_syslog.encode.render import COMPILED

    expected = "(event encoder: compiled)" if COMPILED else "(event encoder: pure Python;"
    assert expected in version.output


def test_cmdlet_spelling_is_rewritten_only_for_cmdlet_names() -> None:
    assert translate_cmdlet_args(
        ["Set-SyslogServer", "-ServerName", "10.0.0.5", "-ServerPort", "514", "-UseUDP"]
    ) == ["set-syslog-server", "--server-name", "10.0.0.5", "--server-port", "514", "--use-udp"]
    assert translate_cmdlet_args(["get-syslog-server", "-Remove"]) == [
        "get-syslog-server",
        "-Remove",
    ]


def test_python_dash_m_runs() -> None:
    proc = run_cli_process(["--version"])
    assert proc.returncode == 0
    assert b"azs-syslog" in proc.stdout


def test_home_created_by_azs_syslog_is_private(azs_home: Path) -> None:
    assert not azs_home.exists()
    paths.ensure_private_dir(paths.state_dir())
    assert stat.S_IMODE(azs_home.stat().st_mode) == 0o700
    assert stat.S_IMODE(paths.state_dir().stat().st_mode) == 0o700


def test_shared_directories_are_never_changed() -> None:
    before = Path("/tmp").stat().st_mode
    paths.ensure_private_dir(Path("/tmp"))
    assert Path("/tmp").stat().st_mode == before


def test_an_unreadable_configuration_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "config" / "config.json").mkdir(parents=True)
    proc = run_cli_process(["get-syslog-server"], env={"AZS_SYSLOG_HOME": str(home)})
    assert proc.returncode == 1
    assert b"Traceback" not in proc.stderr
    assert proc.stderr.startswith(b"error: ")


def test_an_unexpected_error_is_one_line_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    # A bug, not an operator's mistake: still one line and a hint, never a traceback.
    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("azs_syslog.config.load_config", broken)
    result = run_cli(["get-syslog-server"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: internal error: RuntimeError: boom\n")
    assert "AZS_SYSLOG_DEBUG=1" in result.stderr
    assert "Traceback" not in result.stderr
