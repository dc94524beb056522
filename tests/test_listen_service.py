"""Running as a service: the packaged systemd unit, --version and shell completion."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, run_cli_process

UNIT_NAME = "azs-syslog-forwarder.service"


def unit_text() -> str:
    return (resources.files("azs_syslog") / "data" / UNIT_NAME).read_text(encoding="utf-8")


def directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_unit_is_package_data_and_runs_the_forwarder() -> None:
    unit = directives()
    assert unit["ExecStart"] == ["/opt/azs-syslog/venv/bin/azs-syslog forwarder run"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["Environment"] == ["AZS_SYSLOG_HOME=/var/lib/azs-syslog"]
    assert unit["WantedBy"] == ["multi-user.target"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("User", "azs-syslog"),
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", "/var/lib/azs-syslog"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("CapabilityBoundingSet", ""),
        ("MemoryMax", "512M"),
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
        ("TimeoutStopSec", "10"),
        ("UMask", "0077"),
    ],
)
def test_unit_hardening(key: str, value: str) -> None:
    assert directives()[key] == [value]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not here")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify insists that ExecStart exists; the real path exists only after installation.
    text = unit_text().replace("/opt/azs-syslog/venv/bin/azs-syslog forwarder run", "/bin/true")
    unit = tmp_path / UNIT_NAME
    unit.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Unknown" not in proc.stderr, proc.stderr


def test_unit_is_documented() -> None:
    service_doc = (REPO_ROOT / "docs" / "service.md").read_text(encoding="utf-8")
    assert UNIT_NAME in service_doc
    for key in ("ProtectSystem", "RestrictAddressFamilies", "CapabilityBoundingSet", "MemoryMax"):
        assert key in service_doc


def test_version() -> None:
    proc = run_cli_process(["--version"])
    assert proc.returncode == 0
    assert proc.stdout.decode().startswith("azs-syslog, version ")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_as_documented(shell: str) -> None:
    proc = run_cli_process([], env={"_AZS_SYSLOG_COMPLETE": f"{shell}_source"})
    assert proc.returncode == 0
    assert b"_AZS_SYSLOG_COMPLETE" in proc.stdout


def test_completion_completes_commands_and_options() -> None:
    env = {"_AZS_SYSLOG_COMPLETE": "bash_complete", "COMP_WORDS": "azs-syslog li"}
    env["COMP_CWORD"] = "1"
    assert b"plain,listen" in run_cli_process([], env=env).stdout
    env.update(COMP_WORDS="azs-syslog listen --prot", COMP_CWORD="2")
    assert b"plain,--protocol" in run_cli_process([], env=env).stdout
