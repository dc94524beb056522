from __future__ import annotations

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
