"""set-syslog-server / get-syslog-server on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azs_syslog import config, paths
from tests.conftest import run_cli, run_cli_process
from tests.test_certs_helpers import Lab, mode, set_server, snapshot, stored_server

SIEM = ["--server-name", "siem.example.com", "--server-port", "6514"]


def test_default_is_tls_with_both_checks_on() -> None:
    result = run_cli(["set-syslog-server", *SIEM])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "warning" not in result.stderr
    assert "siem.example.com port 6514" in result.stderr
    assert "certificate and name verified" in result.stderr
    assert stored_server() == {
        "ServerName": "siem.example.com",
        "ServerPort": 6514,
        "NoEncryption": False,
        "SkipCertificateCheck": False,
        "SkipCNCheck": False,
        "UseUDP": False,
        "TrustedCA": None,
        "MessageFormat": "rfc3164",
        "Framing": "octet-counting",
        "Facility": 10,
        "MaxMessageSize": 8192,
        "CefVersion": "0",
        "UdpRate": config.DEFAULT_UDP_RATE,
        "UseRELP": False,
        "EventDataNames": False,
        "SequenceNumbers": False,
        "HeartbeatInterval": 0,
        "Transport": "tls",
    }


def test_cmdlet_spelling_udp() -> None:
    result = run_cli(
        ["Set-SyslogServer", "-ServerName", "10.0.0.5", "-ServerPort", "514", "-UseUDP"]
    )
    assert result.exit_code == 0, result.stderr
    assert "warning: UDP" in result.stderr
    server = stored_server()
    assert server is not None
    assert server["UseUDP"] is True
    assert server["NoEncryption"] is True  # UDP implies no encryption
    assert server["Transport"] == "udp"
    shown = run_cli(["Get-SyslogServer", "-Json"])
    assert json.loads(shown.stdout) == server


def test_cmdlet_spelling_of_project_flags(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(Lab().root_pem())
    args = ["SET-SYSLOGSERVER", "-servername", "siem.example.com", "-SERVERPORT", "6514"]
    args += ["-TrustedCA", str(ca), "-MessageFormat", "rfc5424", "-Framing", "lf"]
    args += ["-Facility", "local3", "-MaxMessageSize", "4096", "-CefVersion", "0.0"]
    result = run_cli(args)
    assert result.exit_code == 0, result.stderr
    server = stored_server()
    assert server is not None
    assert server["MessageFormat"] == "rfc5424"
    assert server["Facility"] == 19
    assert server["CefVersion"] == "0.0"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--no-encryption"], {"NoEncryption": True, "Transport": "tcp"}),
        (["--skip-certificate-check"], {"SkipCertificateCheck": True, "Transport": "tls"}),
        (["--skip-cn-check"], {"SkipCNCheck": True, "Transport": "tls"}),
        (["--use-udp"], {"UseUDP": True, "NoEncryption": True, "Transport": "udp"}),
        (["--use-udp", "--no-encryption"], {"UseUDP": True, "NoEncryption": True}),
        (["--message-format", "rfc5424"], {"MessageFormat": "rfc5424"}),
        (["--message-format", "RFC5424"], {"MessageFormat": "rfc5424"}),
        (["--message-format", "rfc3164"], {"MessageFormat": "rfc3164"}),
        (["--framing", "lf"], {"Framing": "lf"}),
        (["--framing", "octet-counting"], {"Framing": "octet-counting"}),
        (["--facility", "local0"], {"Facility": 16}),
        (["--facility", "Kern"], {"Facility": 0}),
        (["--facility", "23"], {"Facility": 23}),
        (["--max-message-size", "480"], {"MaxMessageSize": 480}),
        (["--max-message-size", "65535"], {"MaxMessageSize": 65535}),
        (["--use-udp", "--max-message-size", "65507"], {"MaxMessageSize": 65507}),
        (["--cef-version", "0.0"], {"CefVersion": "0.0"}),
        (["--cef-version", "0"], {"CefVersion": "0"}),
        (["--use-udp", "--udp-rate", "1234"], {"UdpRate": 1234}),
        (["--use-udp", "--udp-rate", "0"], {"UdpRate": 0}),
        (["--use-udp"], {"UdpRate": config.DEFAULT_UDP_RATE}),
        (["--event-data-names"], {"EventDataNames": True}),
        ([], {"EventDataNames": False}),
    ],
)
def test_every_flag_is_stored(flags: list[str], expected: dict[str, object]) -> None:
    result = run_cli(["set-syslog-server", *SIEM, *flags, "--json"])
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    stored = stored_server()
    assert printed == stored
    assert stored is not None
    for key, value in expected.items():
        assert stored[key] == value, key


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("::1", "::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("syslog.", "syslog"),
        ("127.0.0.1", "127.0.0.1"),
    ],
)
def test_server_name_forms(name: str, stored: str) -> None:
    result = run_cli(["set-syslog-server", "--server-name", name, "--server-port", "6514"])
    assert result.exit_code == 0, result.stderr
    server = stored_server()
    assert server is not None
    assert server["ServerName"] == stored


def test_rerun_replaces_the_whole_server_configuration(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(Lab().root_pem())
    assert (
        run_cli(
            ["set-syslog-server", *SIEM, "--facility", "local1", "--trusted-ca", str(ca)]
        ).exit_code
        == 0
    )
    assert paths.trusted_ca_file().exists()
    assert (
        run_cli(
            ["set-syslog-server", "--server-name", "other.example.com", "--server-port", "6515"]
        ).exit_code
        == 0
    )
    server = stored_server()
    assert server is not None
    assert server["ServerName"] == "other.example.com"
    assert server["Facility"] == 10
    assert server["TrustedCA"] is None
    assert not paths.trusted_ca_file().exists()


def test_trusted_ca_is_checked_and_copied(tmp_path: Path) -> None:
    lab = Lab()
    source = tmp_path / "bundle.pem"
    source.write_bytes(lab.root_pem() + lab.intermediate.cert_pem() + lab.root.key_pem())
    source.chmod(0o644)
    result = run_cli(["set-syslog-server", *SIEM, "--trusted-ca", str(source), "--json"])
    assert result.exit_code == 0, result.stderr
    stored = paths.trusted_ca_file()
    assert json.loads(result.stdout)["TrustedCA"] == str(stored)
    assert mode(stored) == 0o600
    assert stored.read_bytes() == lab.root_pem() + lab.intermediate.cert_pem()
    assert b"PRIVATE KEY" not in stored.read_bytes()
    # The copy is what counts: the original may go away.
    source.unlink()
    assert config.load_config().server is not None


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"not a certificate", "neither PEM nor DER"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "no readable PEM"),
        (None, "is not a CA certificate"),
    ],
)
def test_bad_trusted_ca_is_refused_and_nothing_changes(
    tmp_path: Path, azs_home: Path, content: bytes | None, words: str
) -> None:
    set_server("--server-name", "old.example.com", "--server-port", "1")
    before = snapshot(azs_home)
    bad = tmp_path / "ca.pem"
    bad.write_bytes(content if content is not None else Lab().client().cert_pem())
    result = run_cli(["set-syslog-server", *SIEM, "--trusted-ca", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert words in result.stderr
    assert snapshot(azs_home) == before


def test_trusted_ca_missing_file_is_usage_error(azs_home: Path) -> None:
    result = run_cli(["set-syslog-server", *SIEM, "--trusted-ca", str(azs_home / "nope.pem")])
    assert result.exit_code == 2
    assert "--trusted-ca" in result.stderr
    assert snapshot(azs_home) == {}


TLS_ONLY = [["--skip-certificate-check"], ["--skip-cn-check"], ["--trusted-ca", "CA"]]


@pytest.mark.parametrize("plain", ["--use-udp", "--no-encryption"])
@pytest.mark.parametrize("tls_only", TLS_ONLY, ids=lambda f: f[0])
def test_plain_transport_with_certificate_flag_is_a_named_conflict(
    tmp_path: Path, azs_home: Path, plain: str, tls_only: list[str]
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(Lab().root_pem())
    flags = [str(ca) if f == "CA" else f for f in tls_only]
    set_server("--server-name", "old.example.com", "--server-port", "1")
    before = snapshot(azs_home)
    result = run_cli(["set-syslog-server", *SIEM, plain, *flags])
    assert result.exit_code == 2
    assert f"{plain} and {tls_only[0]} cannot be combined" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(azs_home) == before


def test_udp_with_framing_is_a_conflict(azs_home: Path) -> None:
    result = run_cli(["set-syslog-server", *SIEM, "--use-udp", "--framing", "lf"])
    assert result.exit_code == 2
    assert "--use-udp and --framing cannot be combined" in result.stderr
    assert snapshot(azs_home) == {}


REMOVE_PARTNERS = [
    ["--server-name", "x.example"],
    ["--server-port", "514"],
    ["--no-encryption"],
    ["--skip-certificate-check"],
    ["--skip-cn-check"],
    ["--use-udp"],
    ["--trusted-ca", "CA"],
    ["--message-format", "rfc5424"],
    ["--framing", "lf"],
    ["--facility", "local0"],
    ["--max-message-size", "1000"],
    ["--cef-version", "0.0"],
]


@pytest.mark.parametrize("partner", REMOVE_PARTNERS, ids=lambda f: f[0])
def test_remove_with_anything_else_is_a_named_conflict(
    tmp_path: Path, azs_home: Path, partner: list[str]
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(Lab().root_pem())
    flags = [str(ca) if f == "CA" else f for f in partner]
    assert run_cli(["set-syslog-server", *SIEM]).exit_code == 0
    before = snapshot(azs_home)
    result = run_cli(["set-syslog-server", "--remove", *flags])
    assert result.exit_code == 2
    assert f"--remove and {partner[0]} cannot be combined" in result.stderr
    assert snapshot(azs_home) == before


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--server-name", "bad_name", "--server-port", "514"], "'--server-name'"),
        (["--server-name", "10.0.0.256", "--server-port", "514"], "not a valid IPv4 address"),
        (["--server-name", "", "--server-port", "514"], "'--server-name'"),
        (["--server-name", "x.example", "--server-port", "0"], "'--server-port'"),
        (["--server-name", "x.example", "--server-port", "65536"], "'--server-port'"),
        (["--server-name", "x.example", "--server-port", "high"], "'--server-port'"),
        ([*SIEM, "--facility", "24"], "'--facility'"),
        ([*SIEM, "--facility", "local9"], "'--facility'"),
        ([*SIEM, "--max-message-size", "479"], "'--max-message-size'"),
        ([*SIEM, "--max-message-size", "65536"], "'--max-message-size'"),
        ([*SIEM, "--use-udp", "--max-message-size", "65508"], "65507"),
        ([*SIEM, "--max-message-size", "big"], "'--max-message-size'"),
        ([*SIEM, "--message-format", "cef"], "'--message-format'"),
        ([*SIEM, "--framing", "nul"], "'--framing'"),
        ([*SIEM, "--cef-version", "1"], "'--cef-version'"),
        (["--server-name", "x.example"], "--server-port is required"),
        (["--server-port", "514"], "--server-name is required"),
        ([], "--server-name and --server-port are required"),
        ([*SIEM, "--bogus"], "no such option: --bogus"),
    ],
)
def test_bad_values_are_usage_errors_and_change_nothing(
    azs_home: Path, args: list[str], words: str
) -> None:
    set_server("--server-name", "old.example.com", "--server-port", "1")
    before = snapshot(azs_home)
    result = run_cli(["set-syslog-server", *args])
    assert result.exit_code == 2, result.stderr
    assert words in result.stderr
    assert snapshot(azs_home) == before


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--use-udp"], "warning: UDP sends events in clear text"),
        (["--no-encryption"], "warning: events are sent in clear text"),
        (["--skip-certificate-check"], "warning: the server's certificate will not be verified"),
        (["--skip-cn-check"], "note: --skip-cn-check is meant for a server given by IP address"),
    ],
)
def test_insecure_choices_warn(flags: list[str], words: str) -> None:
    result = run_cli(["set-syslog-server", *SIEM, *flags, "--json"])
    assert result.exit_code == 0
    assert words in result.stderr
    json.loads(result.stdout)  # warnings never reach stdout


def test_skip_cn_check_with_an_ip_is_quiet() -> None:
    result = run_cli(
        [
            "set-syslog-server",
            "--server-name",
            "10.0.0.5",
            "--server-port",
            "6514",
            "--skip-cn-check",
        ]
    )
    assert result.exit_code == 0
    assert "note:" not in result.stderr
    assert "warning" not in result.stderr


def test_remove_and_nothing_configured(azs_home: Path) -> None:
    empty = run_cli(["get-syslog-server"])
    assert empty.exit_code == 0
    assert empty.stdout == ""
    assert len(empty.stderr.splitlines()) == 1
    assert "no syslog server is configured" in empty.stderr
    assert stored_server() is None

    nothing = run_cli(["set-syslog-server", "--remove"])
    assert nothing.exit_code == 0
    assert "no syslog server was configured" in nothing.stderr

    assert run_cli(["set-syslog-server", *SIEM]).exit_code == 0
    removed = run_cli(["Set-SyslogServer", "-Remove", "--json"])
    assert removed.exit_code == 0
    assert json.loads(removed.stdout) is None
    assert "forwarding stops" in removed.stderr
    assert stored_server() is None
    assert config.load_config().server is None


def test_client_certificate_mentioned_in_summary(tmp_path: Path) -> None:
    from tests.test_certs_helpers import PASSWORD

    pfx = tmp_path / "c.pfx"
    pfx.write_bytes(Lab().good_pfx())
    assert (
        run_cli(["set-syslog-client", "--pfx-file", str(pfx)], input=PASSWORD + "\n").exit_code == 0
    )
    tls = run_cli(["set-syslog-server", *SIEM])
    assert "mutual authentication" in tls.stderr
    udp = run_cli(["set-syslog-server", *SIEM, "--use-udp"])
    assert "not used without TLS" in udp.stderr


def test_human_table() -> None:
    assert run_cli(["set-syslog-server", *SIEM, "--facility", "local4"]).exit_code == 0
    result = run_cli(["get-syslog-server"])
    assert result.exit_code == 0
    for text in (
        "ServerName",
        "siem.example.com",
        "6514",
        "SkipCNCheck",
        "False",
        "local4 (20)",
        "TLS",
    ):
        assert text in result.stdout
    assert result.stderr == ""


def test_get_in_a_real_process_starts_without_heavy_imports() -> None:
    assert run_cli(["set-syslog-server", *SIEM]).exit_code == 0
    code = (
        "import sys, runpy; sys.argv = ['azs-syslog', 'get-syslog-server', '--json'];\n"
        "try:\n    runpy.run_module('azs_syslog', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('rich', 'cryptography', 'ssl', 'sqlite3') if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, timeout=60, check=False
    )
    assert json.loads(proc.stdout)["ServerName"] == "siem.example.com"
    assert proc.stderr.decode().strip().endswith("HEAVY=")


def test_python_dash_m_done_when() -> None:
    set_proc = run_cli_process(["set-syslog-server", *SIEM])
    assert set_proc.returncode == 0
    shown = run_cli_process(["get-syslog-server", "--json"])
    assert shown.returncode == 0
    data = json.loads(shown.stdout)
    assert data["Transport"] == "tls"
    assert data["SkipCertificateCheck"] is False
    assert data["SkipCNCheck"] is False
    refused = run_cli_process(
        [
            "set-syslog-server",
            "--server-name",
            "10.0.0.5",
            "--server-port",
            "514",
            "--use-udp",
            "--skip-cn-check",
        ]
    )
    assert refused.returncode == 2
    assert b"--use-udp and --skip-cn-check cannot be combined" in refused.stderr


UDP_HOST = ["Set-SyslogServer", "-ServerName", "10.0.0.5", "-ServerPort", "514"]


def test_udp_rate_round_trips_and_shows() -> None:
    result = run_cli([*UDP_HOST, "-UseUDP", "-UdpRate", "2500"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(paths.config_file().read_text())["server"]["UdpRate"] == 2500
    assert config.load_config().server == config.ServerSettings(
        "10.0.0.5", 514, no_encryption=True, use_udp=True, udp_rate=2500
    )
    table = run_cli(["get-syslog-server"])
    assert "2500 events/s" in table.stdout
    assert run_cli([*UDP_HOST, "-UseUDP", "-UdpRate", "0"]).exit_code == 0
    assert "unpaced (0)" in run_cli(["get-syslog-server"]).stdout
    run_cli(["set-syslog-server", *SIEM])
    assert "UdpRate" not in run_cli(["get-syslog-server"]).stdout  # not for TLS


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--udp-rate", "100"], "--udp-rate applies only to UDP"),
        (["--no-encryption", "--udp-rate", "100"], "--udp-rate applies only to UDP"),
        (["--use-udp", "--udp-rate", "-1"], "'--udp-rate'"),
        (["--use-udp", "--udp-rate", "1000001"], "'--udp-rate'"),
    ],
)
def test_bad_udp_rate_is_refused_and_nothing_written(flags: list[str], message: str) -> None:
    before = run_cli(["set-syslog-server", *SIEM])
    assert before.exit_code == 0
    stored = paths.config_file().read_bytes()
    result = run_cli(["set-syslog-server", *SIEM, *flags])
    assert result.exit_code == 2
    assert message in result.stderr
    assert paths.config_file().read_bytes() == stored


def test_a_config_file_from_before_udp_rate_is_still_valid() -> None:
    old = {
        "version": 1,
        "server": {
            "ServerName": "10.0.0.5",
            "ServerPort": 514,
            "UseUDP": True,
            "NoEncryption": True,
        },
        "client": {"Certificate": None, "OutputSeverity": "Default"},
    }
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(json.dumps(old))
    server = config.load_config().server
    assert server is not None and server.udp_rate == config.DEFAULT_UDP_RATE
    assert server.event_data_names is False  # absent before the setting existed: off
    shown = stored_server()
    assert shown is not None and shown["UdpRate"] == config.DEFAULT_UDP_RATE
    paths.config_file().write_text(
        json.dumps({**old, "server": {**old["server"], "UdpRate": -5}})  # type: ignore[dict-item]
    )
    with pytest.raises(config.ConfigError, match="UdpRate"):
        config.load_config()


def test_event_data_names_round_trip_and_render_key() -> None:
    """--event-data-names is stored, shown, read back, and part of the render settings key
    (queued batches are rendered again when it changes); a wrong type in the file is named."""
    from azs_syslog.encode.render import RenderSettings

    assert run_cli(["set-syslog-server", *SIEM]).exit_code == 0
    off = RenderSettings.from_config(config.load_config())
    assert off.event_data_names is False
    assert off.key == RenderSettings().key  # the key of releases before the setting
    result = run_cli(["set-syslog-server", *SIEM, "--event-data-names"])
    assert result.exit_code == 0, result.stderr
    loaded = config.load_config()
    assert loaded.server is not None and loaded.server.event_data_names is True
    assert json.loads(paths.config_file().read_text())["server"]["EventDataNames"] is True
    on = RenderSettings.from_config(loaded)
    assert on.event_data_names is True and on.key != off.key
    table = run_cli(["get-syslog-server"])
    assert table.exit_code == 0 and "EventDataNames" in table.stdout
    assert "True" in table.stdout
    stored = json.loads(paths.config_file().read_text())
    stored["server"]["EventDataNames"] = "yes"
    paths.config_file().write_text(json.dumps(stored))
    with pytest.raises(config.ConfigError, match="EventDataNames"):
        config.load_config()
