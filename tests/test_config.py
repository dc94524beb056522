"""The configuration store (SPEC section 4): format, validation, atomic and locked writes."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from azs_syslog import config, paths
from azs_syslog.config import ClientCertificate, ClientSettings, Config, ServerSettings
from azs_syslog.errors import ConfigError
from tests.conftest import run_cli
from tests.support import start_python
from tests.test_certs_helpers import mode, snapshot


def test_no_file_means_empty_config(azs_home: Path) -> None:
    assert config.load_config() == Config()
    assert not azs_home.exists()  # reading creates nothing


def test_roundtrip_uses_cmdlet_names_and_private_modes(azs_home: Path) -> None:
    server = ServerSettings("siem.example.com", 6514, facility=16, cef_version="0.0")
    config.set_server(server)
    loaded = config.load_config()
    assert loaded.server == server
    data = json.loads(paths.config_file().read_text())
    assert data["version"] == 1
    assert data["server"]["ServerName"] == "siem.example.com"
    assert data["server"]["SkipCNCheck"] is False
    assert data["client"] == {"Certificate": None, "OutputSeverity": "Default"}
    assert mode(paths.config_file()) == 0o600
    assert mode(paths.config_dir()) == 0o700
    assert mode(paths.config_lock_file()) == 0o600
    # No temporary files are left behind.
    assert sorted(p.name for p in paths.config_dir().iterdir()) == ["config.json", "config.lock"]


def test_existing_loose_directory_is_tightened(azs_home: Path) -> None:
    paths.config_dir().mkdir(parents=True, mode=0o755)
    paths.config_dir().chmod(0o755)
    config.set_output_severity("Verbose")
    assert mode(paths.config_dir()) == 0o700


def test_full_roundtrip_with_certificate() -> None:
    cert = ClientCertificate(
        "CN=a", "CN=b", "AB" * 20, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "/c", "/k"
    )
    original = Config(
        server=ServerSettings("10.0.0.5", 514, no_encryption=True, use_udp=True),
        client=ClientSettings(certificate=cert, output_severity="Verbose"),
    )
    assert config.parse_config(config.serialize_config(original)) == original


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("siem.example.com", "siem.example.com"),
        ("siem.example.com.", "siem.example.com"),
        ("localhost", "localhost"),
        ("SIEM-01.Example.COM", "SIEM-01.Example.COM"),
        ("10.0.0.5", "10.0.0.5"),
        ("::1", "::1"),
        ("[2001:db8::5]", "2001:db8::5"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a" * 63 + ".example", "a" * 63 + ".example"),
    ],
)
def test_valid_server_names(name: str, stored: str) -> None:
    assert config.normalize_server_name(name) == stored


@pytest.mark.parametrize(
    "name",
    [
        "",
        "bad_name",
        "-lead.example.com",
        "trail-.example.com",
        "a..b",
        "a" * 64 + ".example",
        ".".join(["abcdefghij"] * 26),
        "10.0.0.256",
        "10.0.0",
        "[10.0.0.5]",
        "siem example",
        "bücher.example",
        "host:514",
        "[zzz]",
    ],
)
def test_invalid_server_names(name: str) -> None:
    with pytest.raises(ValueError):
        config.normalize_server_name(name)


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("kern", 0),
        ("AUTH", 4),
        ("authpriv", 10),
        ("local0", 16),
        ("local7", 23),
        ("0", 0),
        ("23", 23),
        (13, 13),
    ],
)
def test_facility(value: str | int, number: int) -> None:
    assert config.parse_facility(value) == number


@pytest.mark.parametrize("value", ["24", "-1", "local8", "security", "", 99])
def test_bad_facility(value: str | int) -> None:
    with pytest.raises(ValueError):
        config.parse_facility(value)


def test_facility_name() -> None:
    assert config.facility_name(10) == "authpriv"
    assert config.facility_name(13) == "13"


def _write_raw(text: str) -> None:
    paths.ensure_private_dir(paths.config_dir())
    paths.config_file().write_text(text)


GOOD_SERVER = {"ServerName": "siem.example.com", "ServerPort": 6514}


def bad_server(prop: str, value: object, words: str, **others: object) -> tuple[object, str, str]:
    """A case of test_broken_file_names_file_and_field: the good server (with ``others``),
    one property wrong."""
    server = {**GOOD_SERVER, **others, prop: value}
    return {"version": 1, "server": server}, f"server -> {prop}", words


@pytest.mark.parametrize(
    ("document", "field", "words"),
    [
        ({"version": 2, "server": None}, "version", "unsupported version 2"),
        ({"server": None}, "version", "is missing"),
        ({"version": "1"}, "version", "must be an integer"),
        bad_server("ServerPort", "6514", "must be an integer"),
        bad_server("ServerPort", True, "must be an integer"),
        bad_server("ServerPort", 70000, "1-65535"),
        ({"version": 1, "server": {"ServerPort": 1}}, "server -> ServerName", "is missing"),
        bad_server("ServerName", "a b", "neither"),
        bad_server("ServerName", "[::1]", "write '::1'"),
        bad_server("UseUDP", "yes", "true or false"),
        bad_server("Colour", 1, "unknown setting"),
        bad_server("Framing", "nul", "must be one of"),
        bad_server("MessageFormat", "x", "must be one of"),
        bad_server("Facility", 24, "out of range"),
        bad_server("MaxMessageSize", 100, "out of range"),
        bad_server("MaxMessageSize", 65535, "for UDP", UseUDP=True, NoEncryption=True),
        bad_server("CefVersion", "1", "must be one of"),
        bad_server("SkipCNCheck", True, "applies only to TLS", UseUDP=True),
        bad_server("TrustedCA", "/x", "applies only to TLS", NoEncryption=True),
        ({"version": 1, "server": [1]}, "server", "JSON object"),
        (
            {"version": 1, "client": {"OutputSeverity": "Loud"}},
            "client -> OutputSeverity",
            "must be one of",
        ),
        (
            {"version": 1, "client": {"Certificate": {"Subject": "CN=x"}}},
            "client -> Certificate -> Issuer",
            "is missing",
        ),
        ({"version": 1, "extra": 1}, "extra", "unknown setting"),
    ],
)
def test_broken_file_names_file_and_field(document: object, field: str, words: str) -> None:
    _write_raw(json.dumps(document))
    with pytest.raises(ConfigError) as info:
        config.load_config()
    error = info.value
    assert error.path == str(paths.config_file())
    assert error.field == field
    assert words in error.message
    assert str(paths.config_file()) in str(error)
    assert field in str(error)
    assert error.fix  # every broken-file error says what to do


def test_invalid_json_names_line_and_column() -> None:
    _write_raw('{\n  "version": 1,\n  "server": {,}\n}\n')
    with pytest.raises(ConfigError) as info:
        config.load_config()
    assert "line 3" in str(info.value)
    assert str(paths.config_file()) in str(info.value)


def test_not_utf8() -> None:
    paths.ensure_private_dir(paths.config_dir())
    paths.config_file().write_bytes(b'{"version": 1, "x": "\xff"}')
    with pytest.raises(ConfigError, match="UTF-8"):
        config.load_config()


def test_unreadable_file_is_a_config_error() -> None:
    if os.geteuid() == 0:
        # root reads any file; a directory in the file's place is unreadable for everyone.
        paths.config_file().mkdir(parents=True)
    else:
        _write_raw("{}")
        paths.config_file().chmod(0)
    with pytest.raises(ConfigError, match=r"cannot be read|cannot read .*permission denied"):
        config.load_config()


def test_cli_reports_broken_file_in_one_line_without_traceback() -> None:
    _write_raw('{"version": 1, "server": {"ServerName": "x.example", "ServerPort": "high"}}')
    for command in ("get-syslog-server", "get-syslog-client", "set-syslog-client"):
        args = (
            [command]
            if command != "set-syslog-client"
            else [command, "--output-severity", "Verbose"]
        )
        result = run_cli(args)
        assert result.exit_code == 1
        lines = result.stderr.splitlines()
        assert lines[0].startswith("error: ")
        assert str(paths.config_file()) in lines[0]
        assert "server -> ServerPort" in lines[0]
        assert "Traceback" not in result.stderr
        assert result.stdout == ""


def test_failed_change_leaves_files_untouched(azs_home: Path) -> None:
    config.set_server(ServerSettings("siem.example.com", 6514))
    before = snapshot(azs_home)

    def bad_change(old: Config) -> Config:
        assert old.server is not None
        return replace(old, server=replace(old.server, server_port=0))

    with pytest.raises(ConfigError, match="ServerPort"):
        config.update_config(bad_change, write_files={paths.trusted_ca_file(): b"x"})
    assert snapshot(azs_home) == before

    def exploding_change(old: Config) -> Config:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        config.update_config(exploding_change)
    assert snapshot(azs_home) == before


def test_lock_is_exclusive_and_bounded() -> None:
    with config.config_lock():
        started = time.monotonic()
        # A second open file description in the same process conflicts with the first flock.
        with pytest.raises(ConfigError, match="held the lock"), config.config_lock(timeout=0.2):
            pass
        assert time.monotonic() - started < 5
    with config.config_lock(timeout=0.2):
        pass  # released


WRITER = """
import dataclasses, pathlib, sys, time
from azs_syslog import config
ready, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
def bump(old):
    time.sleep(0.001)  # widen the read-modify-write window: without the lock, updates get lost
    return dataclasses.replace(
        old, server=dataclasses.replace(old.server, server_port=old.server.server_port + 1)
    )
ready.touch()
deadline = time.monotonic() + 60
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.005)
for _ in range(50):
    config.update_config(bump)
"""


def test_two_processes_writing_50_times_at_once_lose_nothing(tmp_path: Path) -> None:
    config.set_server(ServerSettings("siem.example.com", 1000))
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{n}" for n in range(2)]
    writers = [
        start_python(["-c", WRITER, str(flag), str(go)], stderr=subprocess.PIPE) for flag in ready
    ]
    reads = 0
    deadline = time.monotonic() + 120
    try:
        # Both start writing at the same moment.
        while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
            time.sleep(0.005)
        go.touch()
        # Meanwhile a reader must always see a whole, valid file.
        while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
            loaded = config.load_config()
            assert loaded.server is not None
            assert 1000 <= loaded.server.server_port <= 1100
            reads += 1
        for writer in writers:
            _, stderr = writer.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert writer.returncode == 0, stderr.decode()
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
    final = config.load_config()
    assert final.server is not None
    assert final.server.server_port == 1100  # 100 read-modify-writes, none lost
    json.loads(paths.config_file().read_text())
    assert reads > 0
    assert sorted(p.name for p in paths.config_dir().iterdir()) == ["config.json", "config.lock"]


def test_remove_helpers(azs_home: Path) -> None:
    config.set_server(ServerSettings("siem.example.com", 6514), trusted_ca_pem=b"pem")
    assert paths.trusted_ca_file().read_bytes() == b"pem"
    assert config.load_config().server == ServerSettings(
        "siem.example.com", 6514, trusted_ca=str(paths.trusted_ca_file())
    )
    config.remove_server()
    assert config.load_config().server is None
    assert not paths.trusted_ca_file().exists()
