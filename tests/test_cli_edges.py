"""The rough edges a new user meets in a first week: PowerShell ``-Param:value``, contradictory
flags, one-line usage errors, ``--json`` that holds on failure, what ``send-event`` says, the
width of ``forwarder status`` and of the demo, ``--version`` telling the truth, the PFX password,
and both spellings of the endpoint event names."""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from azs_syslog.cli import translate_cmdlet_args
from azs_syslog.events.endpoint import PEP_EVENTS, REP_EVENTS
from azs_syslog.lab import pki
from tests.conftest import REPO_ROOT, discard_audit_events, run_cli, run_cli_process
from tests.support import start_cli
from tests.test_certs_helpers import stored_server
from tests.test_send_event import windows_event

DOCS = REPO_ROOT / "docs"
NO_SERVER_WARNING = (
    "warning: no syslog server is configured: events are queued, not sent, until one is set "
    "(azs-syslog set-syslog-server --server-name NAME --server-port PORT)\n"
)
PEP_LINE = '{"type": "pep", "event": "PrivilegedEndpointAccessed", "who": "u", "which_ip": "i"}'


# --- PowerShell spellings ----------------------------------------------------------------------


def test_powershell_colon_syntax_sets_the_server() -> None:
    assert translate_cmdlet_args(
        ["Set-SyslogServer", "-ServerName:10.0.0.5", "-ServerPort:514", "-UseUDP:$true"]
    ) == ["set-syslog-server", "--server-name", "10.0.0.5", "--server-port", "514", "--use-udp"]
    assert translate_cmdlet_args(
        ["Set-SyslogServer", "-ServerName:10.0.0.5", "-ServerPort:6514", "-UseUDP:$false"]
    ) == ["set-syslog-server", "--server-name", "10.0.0.5", "--server-port", "6514"]
    result = run_cli(["Set-SyslogServer", "-ServerName:10.0.0.5", "-ServerPort:514"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (
        "syslog server set: 10.0.0.5 port 514, TLS over TCP (server certificate and name "
        "verified)\n"
    )
    server = stored_server()
    assert server is not None
    assert (server["ServerName"], server["ServerPort"], server["UseUDP"]) == (
        "10.0.0.5",
        514,
        False,
    )


def test_powershell_colon_syntax_in_a_child_process() -> None:
    proc = run_cli_process(
        ["Set-SyslogServer", "-ServerName:10.0.0.5", "-ServerPort:514", "-UseUDP", "-Json"]
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["Transport"] == "udp"


@pytest.mark.parametrize(
    ("args", "named", "command"),
    [
        (["Set-SyslogServer", "-Bogus"], "-Bogus", "set-syslog-server"),
        (["Set-SyslogServer", "-ServerName:x", "-Bogus:1"], "-Bogus", "set-syslog-server"),
        (["Get-SyslogClient", "-Verbose"], "-Verbose", "get-syslog-client"),
        (["set-syslog-server", "-Bogus"], "-Bogus", "set-syslog-server"),
    ],
)
def test_an_unknown_parameter_is_named_as_typed(
    args: list[str], named: str, command: str, azs_home: Path
) -> None:
    proc = run_cli_process(args)
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert proc.stderr.decode() == (
        f"error: no such option: {named}\n  fix: see the options: azs-syslog {command} --help\n"
    )
    assert not (azs_home / "config" / "config.json").exists()


# --- contradictory flags -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message", "fix"),
    [
        (
            ["--skip-certificate-check", "--trusted-ca", "CA"],
            "--skip-certificate-check and --trusted-ca cannot be combined: "
            "--skip-certificate-check verifies no certificate, so the CA given with "
            "--trusted-ca would never be used",
            "to verify the server against that CA, drop --skip-certificate-check; to verify "
            "nothing, drop --trusted-ca",
        ),
        (
            ["--skip-certificate-check", "--skip-cn-check"],
            "--skip-certificate-check and --skip-cn-check cannot be combined: "
            "--skip-certificate-check skips every check of the server's certificate, the name "
            "check of --skip-cn-check included",
            "to verify the chain but not the name, drop --skip-certificate-check; to verify "
            "nothing, drop --skip-cn-check",
        ),
    ],
)
def test_contradictory_flags_are_usage_errors_naming_both(
    flags: list[str], message: str, fix: str, tmp_path: Path, azs_home: Path
) -> None:
    ca = pki.make_ca("Lab CA")
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem())
    flags = [str(tmp_path / "ca.pem") if flag == "CA" else flag for flag in flags]
    args = ["set-syslog-server", "--server-name", "siem.example.com", "--server-port", "6514"]
    for order in (flags, [*flags[1:], flags[0]]):  # either order: the same message
        result = run_cli([*args, *order])
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr == f"error: {message}\n  fix: {fix}\n"
    as_json = run_cli([*args, *flags, "--json"])
    assert as_json.exit_code == 2
    assert json.loads(as_json.stdout) == {"error": {"message": message, "fix": fix}}
    assert not (azs_home / "config" / "config.json").exists()


def test_a_file_written_before_the_rule_still_loads(azs_home: Path) -> None:
    """The --skip-certificate-check rules are the command line's: a configuration file that
    an earlier version wrote with both settings keeps working (nothing verified)."""
    configured = run_cli(
        ["set-syslog-server", "--server-name", "10.0.0.5", "--server-port", "6514"]
    )
    assert configured.exit_code == 0, configured.stderr
    path = azs_home / "config" / "config.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["server"]["SkipCertificateCheck"] = True
    data["server"]["SkipCNCheck"] = True
    path.write_text(json.dumps(data), encoding="utf-8")
    server = stored_server()
    assert server is not None
    assert server["SkipCertificateCheck"] is True and server["SkipCNCheck"] is True
    # The transport rules hold in the file as before, named by property.
    data["server"]["UseUDP"] = data["server"]["NoEncryption"] = True
    path.write_text(json.dumps(data), encoding="utf-8")
    refused = run_cli(["get-syslog-server"])
    assert refused.exit_code == 1
    assert (
        "server -> SkipCertificateCheck: cannot be combined with UseUDP: SkipCertificateCheck "
        "applies only to TLS, and UseUDP turns encryption off" in refused.stderr
    )


# --- usage errors and --json on failure -------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["set-syslog-server", "--server-name", "x", "--server-port", "0"],
            "error: invalid value for '--server-port': 0 is not in the range 1<=x<=65535\n"
            "  fix: see the options: azs-syslog set-syslog-server --help\n",
        ),
        (
            ["set-syslog-server", "--server-port", "514"],
            "error: --server-name is required (or --remove to delete the server "
            "configuration)\n  fix: see the options: azs-syslog set-syslog-server --help\n",
        ),
        (
            ["--bogus"],
            "error: no such option: --bogus\n  fix: see the options: azs-syslog --help\n",
        ),
        (
            ["forwarder", "status", "--colour"],
            "error: no such option: --colour\n"
            "  fix: see the options: azs-syslog forwarder status --help\n",
        ),
        (
            ["set-syslog-server", "--server-nme", "x"],
            "error: no such option: --server-nme (did you mean --failover-server-name or "
            "--server-name or --server-port?)\n"
            "  fix: see the options: azs-syslog set-syslog-server --help\n",
        ),
        (
            ["set-syslog-server", "--server-name", "x", "--server-port", "514", "--udp-rate", "5"],
            "error: --udp-rate applies only to UDP\n  fix: add --use-udp, or drop --udp-rate\n",
        ),
    ],
)
def test_usage_errors_are_one_line_with_a_fix(args: list[str], expected: str) -> None:
    proc = run_cli_process(args)
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert proc.stderr.decode() == expected
    as_json = run_cli_process([*args, "--json"])
    assert as_json.returncode == 2
    message, fix = expected.removeprefix("error: ").removesuffix("\n").split("\n  fix: ")
    assert json.loads(as_json.stdout) == {"error": {"message": message, "fix": fix}}


def test_no_arguments_still_shows_the_help() -> None:
    proc = run_cli_process([])
    assert proc.returncode in (0, 2)
    assert b"Usage: azs-syslog" in proc.stdout + proc.stderr
    assert b"error:" not in proc.stderr


def test_json_failure_of_a_command_is_one_document(azs_home: Path) -> None:
    """An operational failure (exit 1) with --json: the error as the JSON document."""
    config = azs_home / "config"
    config.mkdir(parents=True)
    (config / "config.json").write_text('{"version": 1, "server": {"ServerPort": "high"}}\n')
    for command in (
        ["get-syslog-server"],
        ["get-syslog-client"],
        ["set-syslog-client", "--output-severity", "Verbose"],
        ["forwarder", "release-held"],
    ):
        result = run_cli([*command, "--json"], input="")
        assert result.exit_code == 1, (command, result.stderr)
        document = json.loads(result.stdout)
        assert set(document) == {"error"}
        assert document["error"]["message"].startswith(str(config / "config.json"))
        assert document["error"]["fix"]
        assert result.stderr.startswith(f"error: {config / 'config.json'}: ")


def test_format_event_json_lines_end_with_the_failure(tmp_path: Path) -> None:
    """format-event --json streams one object per event (it reads pipes that never end); a
    failure is the last line, an object with "error"."""
    missing = run_cli(["format-event", "--json", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2
    (line,) = missing.stdout.splitlines()
    assert json.loads(line)["error"]["message"].startswith("invalid value for '[FILE|-]'")
    good = run_cli(["format-event", "--json", "-"], input=PEP_LINE + "\n" + PEP_LINE + "\n")
    assert good.exit_code == 0
    assert [json.loads(item)["line"] for item in good.stdout.splitlines()] == [1, 2]


def _read_json_lines(proc: subprocess.Popen[bytes], want: int, deadline: float) -> list[dict]:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    buffer = b""
    lines: list[dict] = []
    while len(lines) < want and time.monotonic() < deadline:
        if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        lines += [json.loads(item) for item in complete if item]
    selector.close()
    return lines


def test_forwarder_run_json_writes_json_log_lines(azs_home: Path) -> None:
    first = start_cli(
        ["forwarder", "run", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        (started,) = _read_json_lines(first, 1, time.monotonic() + 20)
        assert set(started) == {"time", "message"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", started["time"])
        assert started["message"].startswith("forwarder starting; queue ")
        # A second forwarder for this home is refused: its failure is its last JSON line.
        second = run_cli_process(["forwarder", "run", "--json"], timeout=30)
        assert second.returncode == 1
        *_, last = [json.loads(line) for line in second.stdout.splitlines()]
        assert "a forwarder is already running for this home" in last["error"]["message"]
    finally:
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=20)
    assert first.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[-1]["message"].startswith("forwarder stopped; ")
    assert b"forwarder" not in err  # the log went to stdout, as JSON


# --- send-event --------------------------------------------------------------------------------


def test_send_event_says_what_this_input_did(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(PEP_LINE + "\n", encoding="utf-8")
    first = run_cli(["send-event", str(path)])
    assert first.exit_code == 0
    assert first.stderr == (
        f"accepted 1 event from {path}; the queue now holds 1 event\n" + NO_SERVER_WARNING
    )
    configured = run_cli(
        ["set-syslog-server", "--server-name", "10.0.0.5", "--server-port", "6514"]
    )
    assert configured.exit_code == 0, configured.stderr
    discard_audit_events()  # the queue's count below is of this test's events
    second = run_cli(["send-event", "-"], input=PEP_LINE + "\n" + PEP_LINE + "\n")
    assert second.exit_code == 0
    assert second.stderr == "accepted 2 events from standard input; the queue now holds 3 events\n"


def test_send_event_empty_input_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "events.jsonl"
    empty.write_bytes(b"")
    from_file = run_cli(["send-event", str(empty)])
    assert (from_file.exit_code, from_file.stderr) == (0, f"no events in {empty}\n")
    from_stdin = run_cli(["send-event", "-"], input="")
    assert (from_stdin.exit_code, from_stdin.stderr) == (0, "no events in standard input\n")
    as_json = run_cli(["send-event", "--json", "-"], input="\n")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout)["accepted"] == 0


def test_send_event_reports_filtered_windows_events() -> None:
    configured = run_cli(
        ["set-syslog-server", "--server-name", "10.0.0.5", "--server-port", "6514"]
    )
    assert configured.exit_code == 0, configured.stderr
    discard_audit_events()  # the queue's counts below are of this test's events
    events = windows_event(1, level=4) + "\n" + windows_event(2, level=2) + "\n"
    result = run_cli(["send-event", "-"], input=events)
    assert result.exit_code == 0
    assert result.stderr == (
        "accepted 2 events from standard input (1 of them filtered: Windows events below "
        "Warning are not sent with OutputSeverity Default; set-syslog-client --output-severity "
        "Verbose sends them); the queue now holds 2 events\n"
    )
    as_json = run_cli(["send-event", "--json", "-"], input=windows_event(3, level=4) + "\n")
    report = json.loads(as_json.stdout)
    assert (report["accepted"], report["filtered"], report["queued"]) == (1, 1, 3)
    assert (
        "all of them filtered"
        in run_cli(["send-event", "-"], input=windows_event(4, level=5) + "\n").stderr
    )
    assert run_cli(["set-syslog-client", "--output-severity", "Verbose"]).exit_code == 0
    discard_audit_events()
    verbose = run_cli(["send-event", "-"], input=windows_event(5, level=4) + "\n")
    assert verbose.stderr == "accepted 1 event from standard input; the queue now holds 5 events\n"


# --- widths ------------------------------------------------------------------------------------


def test_forwarder_status_is_not_padded_and_counts_in_the_singular() -> None:
    assert run_cli(["send-event", "-"], input=PEP_LINE + "\n").exit_code == 0
    proc = run_cli_process(["forwarder", "status"], env={"COLUMNS": "80"})
    assert proc.returncode == 1  # never ran
    lines = proc.stdout.decode().splitlines()
    assert lines and all(line == line.rstrip() for line in lines), lines
    assert all(len(line) <= 80 for line in lines)
    assert any(re.fullmatch(r"Queued +1 event, \d+ bytes", line) for line in lines), lines
    assert "1 events" not in proc.stdout.decode()


def test_demo_reads_at_80_columns_without_a_terminal() -> None:
    proc = run_cli_process(["demo", "--timeout", "60"], env={"COLUMNS": "80"}, timeout=120)
    out = proc.stdout.decode()
    assert proc.returncode == 0, out + proc.stderr.decode()
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    # Every long word of the table is whole on its line (rich used to fold them mid-word).
    for word in (
        "Microsoft-AzureStack-PrivilegedEndpoint:",
        "Microsoft-Windows-Security-Auditing:4625",
        "Microsoft.Compute/virtualMachines/write",
        "PrivilegedEndpointAccessedEvent",
        "infrastructure_fault",
        "8e5b5c7a-1c55-4d7e-9f2a-2d1f7e0c8a10",
    ):
        assert re.search(rf"(^|\s){re.escape(word)}(\s|$)", out, re.MULTILINE), word
    assert out.count("mutual TLS (TLSv1.") >= 14


# --- the lab certificates of docs/configurations.md -----------------------------------------


def test_the_lab_certificates_of_the_guide_make_no_warning(tmp_path: Path) -> None:
    guide = (DOCS / "configurations.md").read_text(encoding="utf-8")
    script = re.search(r"```sh\n(# a lab CA\n.*?)```", guide, re.DOTALL)
    assert script is not None
    assert "-days 30 " not in script.group(1)
    env = dict(os.environ)
    made = subprocess.run(
        ["bash", "-e", "-c", script.group(1)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    result = run_cli_process(
        [
            "set-syslog-client",
            "--pfx-file",
            str(tmp_path / "client.pfx"),
            "--root-ca",
            str(tmp_path / "ca.pem"),
        ],
        env={"AZS_SYSLOG_CERT_PASSWORD": "choose-one"},
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.decode().splitlines()  # no warning: the certificate is not expiring
    pattern = (
        r"client certificate stored: CN=forwarder, thumbprint [0-9A-F]{40}, "
        r"valid until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    )
    assert re.fullmatch(pattern, line)
    shown = re.findall(r"^client certificate stored: .*$", guide, re.MULTILINE)
    assert shown and all(re.fullmatch(pattern, text) for text in shown)


# --- --version ---------------------------------------------------------------------------------


def test_version_says_pure_python_when_the_extension_does_not_load(tmp_path: Path) -> None:
    """A copy of the package whose compiled extension is damaged (present, but it does not
    import): --version must not say "compiled"."""
    copy = tmp_path / "site"
    shutil.copytree(
        REPO_ROOT / "azs_syslog",
        copy / "azs_syslog",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    built = list((copy / "azs_syslog" / "encode").glob("_speedups*.so"))
    if not built:
        pytest.skip("the compiled extension is not built here")
    for path in built:
        path.write_bytes(b"not an ELF file\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy)
    proc = subprocess.run(
        [sys.executable, "-m", "azs_syslog", "--version"],
        cwd=tmp_path,  # not the repository: its package would be imported instead
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode()
    assert "compiled)" not in text
    assert f"(event encoder: pure Python: the compiled extension {built[0]} does not load (" in text
    assert text.endswith("reinstall to rebuild it)\n")


# --- the PFX password --------------------------------------------------------------------------


def test_cert_password_warns_and_the_help_and_docs_name_the_safe_ways(tmp_path: Path) -> None:
    ca = pki.make_ca("Lab CA")
    (tmp_path / "client.pfx").write_bytes(pki.issue(ca, "forwarder", client=True).to_pfx(b"pw"))
    result = run_cli(
        ["set-syslog-client", "--pfx-file", str(tmp_path / "client.pfx"), "--cert-password", "pw"]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith(
        "warning: a password given with --cert-password is visible to other users of this "
        "machine and kept in shell history; prefer $AZS_SYSLOG_CERT_PASSWORD or the prompt\n"
    )
    assert "pw" not in result.stdout
    shown = " ".join(run_cli(["set-syslog-client", "--help"]).stdout.split())
    assert "type it at the prompt (hidden input), or, in a script, put it in the environment" in (
        shown
    )
    assert "variable AZS_SYSLOG_CERT_PASSWORD" in shown
    assert "use the prompt, or $AZS_SYSLOG_CERT_PASSWORD in a script" in shown
    for doc in ("cli.md", "security.md"):
        text = " ".join((DOCS / doc).read_text(encoding="utf-8").split())
        assert 'AZS_SYSLOG_CERT_PASSWORD="$(vault kv get' in text, doc
        assert "(`ps`)" in text, doc


# --- endpoint event names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name"),
    [("pep", name) for name in PEP_EVENTS] + [("rep", name) for name in REP_EVENTS],
)
def test_endpoint_events_take_both_spellings(kind: str, name: str) -> None:
    def message(event: str) -> str:
        line = json.dumps({"type": kind, "event": event, "who": "u", "which_ip": "i"})
        result = run_cli(["format-event", "-"], input=line + "\n")
        assert result.exit_code == 0, result.stderr
        return re.sub(r"rt=\d+", "rt=T", result.stdout.split(" CEF:", 1)[1])

    plain = message(name)
    assert message(name + "Event") == plain
    assert f"|{name}Event|" in plain
    mapping = (DOCS / "cef-mapping.md").read_text(encoding="utf-8")
    assert f"| {kind} | `{name}` |" in mapping and f"`{name}Event`" in mapping


def test_an_endpoint_event_with_a_wrong_suffix_is_still_refused() -> None:
    line = json.dumps(
        {"type": "pep", "event": "RecoveryEndpointAccessedEvent", "who": "u", "which_ip": "i"}
    )
    result = run_cli(["format-event", "-"], input=line + "\n")
    assert result.exit_code == 3
    assert "unknown pep event 'RecoveryEndpointAccessedEvent'" in result.stderr
