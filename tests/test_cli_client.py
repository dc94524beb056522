"""set-syslog-client / get-syslog-client on the command line, with PFX files made here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization

from azs_syslog import config, paths
from tests.conftest import run_cli, run_cli_process
from tests.test_certs_helpers import (
    PASSWORD,
    PASSWORD_BYTES,
    Lab,
    load_chain,
    mode,
    set_server,
    snapshot,
)

ENV = "AZS_SYSLOG_CERT_PASSWORD"


@pytest.fixture(scope="module")
def lab() -> Lab:
    return Lab()


@pytest.fixture
def pfx_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "pfx"
    directory.mkdir()
    return directory


@pytest.fixture
def good_pfx(lab: Lab, pfx_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A good client PFX, its password in the environment."""
    monkeypatch.setenv(ENV, PASSWORD)
    return write(pfx_dir, "client.pfx", lab.good_pfx())


@pytest.fixture
def outputs() -> Iterator[list[str]]:
    """Collects every stdout/stderr of a test, to search for the password afterwards."""
    collected: list[str] = []
    yield collected
    for text in collected:
        assert PASSWORD not in text


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def client(args: list[str], outputs: list[str], **kwargs: object) -> object:
    result = run_cli(args, **kwargs)  # type: ignore[arg-type]
    outputs.extend([result.stdout, result.stderr])
    return result


def assert_no_password_under(home: Path) -> None:
    for name, data in snapshot(home).items():
        assert PASSWORD_BYTES not in data, name
        assert PASSWORD.encode("utf-16-le") not in data, name


def test_import_with_prompt_stores_chain_and_key(
    lab: Lab, pfx_dir: Path, azs_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaf = lab.client()
    pfx = write(pfx_dir, "client.pfx", leaf.to_pfx(PASSWORD_BYTES))
    result = run_cli(["set-syslog-client", "--pfx-file", str(pfx), "--json"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert "warning" not in result.stderr  # read from the pipe: no getpass echo warning
    view = json.loads(result.stdout)
    thumbprint = leaf.cert.fingerprint(hashes.SHA1()).hex().upper()
    assert view["Thumbprint"] == thumbprint
    assert view["Subject"] == "CN=syslog-client.example.com"
    assert view["Issuer"] == "CN=azs-syslog test issuing CA"
    assert view["OutputSeverity"] == "Default"
    assert 363 <= view["DaysLeft"] <= 365
    assert view["NotAfter"].endswith("Z")
    assert thumbprint in result.stderr

    stored = config.load_config().client.certificate
    assert stored is not None
    chain_file, key_file = Path(stored.chain_file), Path(stored.key_file)
    assert chain_file.parent == key_file.parent == paths.client_certificates_dir()
    assert chain_file.name.startswith(thumbprint) and key_file.name.startswith(thumbprint)
    assert mode(paths.client_certificates_dir()) == 0o700
    assert view["ChainFile"] == str(chain_file)
    assert view["KeyFile"] == str(key_file)
    assert mode(chain_file) == 0o600
    assert mode(key_file) == 0o600
    assert mode(paths.config_dir()) == 0o700
    chain = load_chain(chain_file)
    assert chain[0] == leaf.cert
    assert [c.subject for c in chain[1:]] == [lab.intermediate.cert.subject, lab.root.cert.subject]
    key = serialization.load_pem_private_key(key_file.read_bytes(), None)
    assert key.public_key() == leaf.cert.public_key()
    assert_no_password_under(azs_home)

    shown = run_cli(["get-syslog-client", "--json"])
    assert json.loads(shown.stdout) == view
    table = run_cli(["Get-SyslogClient"])
    assert table.exit_code == 0
    for text in ("Thumbprint", thumbprint, "CN=syslog-client.example.com", "OutputSeverity"):
        assert text in table.stdout


def test_password_from_environment(
    lab: Lab, pfx_dir: Path, monkeypatch: pytest.MonkeyPatch, outputs: list[str]
) -> None:
    pfx = write(pfx_dir, "client.pfx", lab.good_pfx())
    monkeypatch.setenv(ENV, PASSWORD)
    result = client(["set-syslog-client", "--pfx-file", str(pfx)], outputs)
    assert result.exit_code == 0  # type: ignore[attr-defined]
    assert "warning" not in result.stderr  # type: ignore[attr-defined]
    assert config.load_config().client.certificate is not None


def test_password_on_the_command_line_works_but_warns(
    lab: Lab, pfx_dir: Path, azs_home: Path
) -> None:
    pfx = write(pfx_dir, "client.pfx", lab.good_pfx())
    result = run_cli(["set-syslog-client", "--pfx-file", str(pfx), "--cert-password", PASSWORD])
    assert result.exit_code == 0
    assert "visible to other users" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert_no_password_under(azs_home)


def test_cmdlet_spelling_with_pfx_on_stdin(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, azs_home: Path
) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    result = run_cli(
        ["Set-SyslogClient", "-PfxBinary", "-", "-OutputSeverity", "verbose", "-Json"],
        input=lab.good_pfx(),
    )
    assert result.exit_code == 0, result.stderr
    view = json.loads(result.stdout)
    assert view["OutputSeverity"] == "Verbose"
    assert view["Thumbprint"]
    assert_no_password_under(azs_home)


def test_pfx_on_stdin_without_password_source_is_refused(lab: Lab, azs_home: Path) -> None:
    result = run_cli(["set-syslog-client", "--pfx-binary", "-"], input=lab.good_pfx())
    assert result.exit_code == 2
    assert "cannot be prompted for" in result.stderr
    assert ENV in result.stderr
    assert snapshot(azs_home) == {}


def test_no_password_anywhere_is_a_usage_error(lab: Lab, pfx_dir: Path, azs_home: Path) -> None:
    pfx = write(pfx_dir, "client.pfx", lab.good_pfx())
    result = run_cli(["set-syslog-client", "--pfx-file", str(pfx)], input="")
    assert result.exit_code == 2
    assert "no PFX password" in result.stderr
    assert ENV in result.stderr
    assert snapshot(azs_home) == {}


def test_password_piped_to_a_real_process(lab: Lab, pfx_dir: Path) -> None:
    pfx = write(pfx_dir, "client.pfx", lab.good_pfx())
    proc = run_cli_process(
        ["set-syslog-client", "--pfx-file", str(pfx), "--json"], input=PASSWORD_BYTES + b"\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["Thumbprint"]
    assert b"Warning" not in proc.stderr
    assert PASSWORD_BYTES not in proc.stdout + proc.stderr


def test_unencrypted_pfx_with_empty_prompt_answer(lab: Lab, pfx_dir: Path) -> None:
    pfx = write(pfx_dir, "plain.pfx", lab.client().to_pfx(None))
    result = run_cli(["set-syslog-client", "--pfx-file", str(pfx)], input="\n")
    assert result.exit_code == 0, result.stderr


REFUSED = [
    ("wrong password", "good_pfx", "the PFX password is wrong"),
    ("no private key", "no_key_pfx", "the PFX holds no private key"),
    ("key not matching", "mismatched_key_pfx", "does not match its certificate"),
    ("expired", "expired_pfx", "expired on"),
    ("not yet valid", "not_yet_valid_pfx", "is not valid yet"),
    ("EKU without clientAuth", "server_only_eku_pfx", "does not allow client authentication"),
    ("CA certificates only", "ca_only_pfx", "holds no client certificate"),
]


@pytest.mark.parametrize(("case", "make", "cause"), REFUSED, ids=[r[0] for r in REFUSED])
def test_bad_pfx_is_refused_and_stored_files_are_unchanged(
    lab: Lab,
    pfx_dir: Path,
    azs_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    outputs: list[str],
    case: str,
    make: str,
    cause: str,
) -> None:
    good = write(pfx_dir, "good.pfx", lab.good_pfx())
    monkeypatch.setenv(ENV, PASSWORD)
    assert client(["set-syslog-client", "--pfx-file", str(good)], outputs).exit_code == 0  # type: ignore[attr-defined]
    set_server()
    before = snapshot(azs_home)
    assert before  # a certificate is installed: the bad one must not replace it

    if case == "wrong password":
        monkeypatch.setenv(ENV, "not-the-password")
    bad = write(pfx_dir, "bad.pfx", getattr(lab, make)())
    result = client(
        ["set-syslog-client", "--pfx-file", str(bad), "--output-severity", "Verbose"], outputs
    )
    assert result.exit_code == 1  # type: ignore[attr-defined]
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert stderr.startswith("error: ")
    assert cause in stderr.splitlines()[0]
    assert "Traceback" not in stderr
    assert result.stdout == ""  # type: ignore[attr-defined]
    assert snapshot(azs_home) == before
    assert_no_password_under(azs_home)


def test_wrong_password_is_one_line_without_traceback_in_a_real_process(
    lab: Lab, pfx_dir: Path
) -> None:
    pfx = write(pfx_dir, "client.pfx", lab.good_pfx())
    proc = run_cli_process(["set-syslog-client", "--pfx-file", str(pfx)], env={ENV: "wrong"})
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert proc.stderr.decode().splitlines() == [
        "error: the PFX password is wrong (or the file is not a PKCS#12 bundle)"
    ]
    # With --cert-password the only extra line is the warning about its visibility.
    flagged = run_cli_process(["Set-SyslogClient", "-PfxFile", str(pfx), "-CertPassword", "wrong"])
    assert flagged.returncode == 1
    lines = flagged.stderr.decode().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("warning: ")
    assert lines[1] == "error: the PFX password is wrong (or the file is not a PKCS#12 bundle)"


def test_not_a_pfx(pfx_dir: Path, monkeypatch: pytest.MonkeyPatch, azs_home: Path) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    bad = write(pfx_dir, "x.pfx", b"hello, I am a text file")
    result = run_cli(["set-syslog-client", "--pfx-file", str(bad)])
    assert result.exit_code == 1
    assert "not a PFX" in result.stderr
    assert snapshot(azs_home) == {}


def test_expiring_soon_is_stored_with_a_warning(
    lab: Lab, pfx_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, PASSWORD)
    pfx = write(pfx_dir, "soon.pfx", lab.expiring_soon_pfx())
    result = run_cli(["set-syslog-client", "--pfx-file", str(pfx), "--json"])
    assert result.exit_code == 0
    assert "warning: the client certificate expires in" in result.stderr
    assert json.loads(result.stdout)["DaysLeft"] in (9, 10)
    shown = run_cli(["get-syslog-client"])
    assert "warning: the client certificate expires in" in shown.stderr


def test_root_ca_chaining(good_pfx: Path, lab: Lab, pfx_dir: Path, azs_home: Path) -> None:
    pfx = good_pfx
    other = write(pfx_dir, "other-root.pem", lab.other_root_pem())
    refused = run_cli(["set-syslog-client", "--pfx-file", str(pfx), "--root-ca", str(other)])
    assert refused.exit_code == 1
    assert f"does not chain to the root CA in {other}" in refused.stderr
    assert snapshot(azs_home) == {}

    root = write(pfx_dir, "root.pem", lab.root_pem())
    accepted = run_cli(["set-syslog-client", "--pfx-file", str(pfx), "--root-ca", str(root)])
    assert accepted.exit_code == 0, accepted.stderr
    assert config.load_config().client.certificate is not None


def test_output_severity_alone_changes_only_that(good_pfx: Path, azs_home: Path) -> None:
    pfx = good_pfx
    assert run_cli(["set-syslog-client", "--pfx-file", str(pfx)]).exit_code == 0
    set_server()
    before = config.load_config()
    stored = before.client.certificate
    assert stored is not None
    pems = {p: p.read_bytes() for p in (Path(stored.chain_file), Path(stored.key_file))}
    for given, severity in (("VERBOSE", "Verbose"), ("default", "Default"), ("Verbose", "Verbose")):
        result = run_cli(["set-syslog-client", "--output-severity", given, "--json"])
        assert result.exit_code == 0
        assert json.loads(result.stdout)["OutputSeverity"] == severity
        after = config.load_config()
        assert after.client.output_severity == severity
        assert after.client.certificate == before.client.certificate
        assert after.server == before.server
        assert {p: p.read_bytes() for p in pems} == pems
    bad = run_cli(["set-syslog-client", "--output-severity", "Loud"])
    assert bad.exit_code == 2
    assert "'--output-severity'" in bad.stderr


def test_remove_certificate(good_pfx: Path, azs_home: Path) -> None:
    pfx = good_pfx
    assert (
        run_cli(
            ["set-syslog-client", "--pfx-file", str(pfx), "--output-severity", "Verbose"]
        ).exit_code
        == 0
    )
    removed = run_cli(["Set-SyslogClient", "-RemoveCertificate", "--json"])
    assert removed.exit_code == 0
    assert "client certificate removed" in removed.stderr
    view = json.loads(removed.stdout)
    assert view["Thumbprint"] is None
    assert view["OutputSeverity"] == "Verbose"  # severity is kept
    assert not paths.client_chain_file().exists()
    assert not paths.client_key_file().exists()
    assert list(paths.client_certificates_dir().iterdir()) == []
    assert config.load_config().client.certificate is None
    again = run_cli(
        ["set-syslog-client", "--remove-certificate", "--output-severity", "Default", "--json"]
    )
    assert again.exit_code == 0
    assert "nothing to remove" in again.stderr
    assert json.loads(again.stdout) is None


def test_nothing_configured(azs_home: Path) -> None:
    result = run_cli(["get-syslog-client"])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    as_json = run_cli(["get-syslog-client", "--json"])
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) is None


def test_severity_without_certificate_is_shown(azs_home: Path) -> None:
    assert run_cli(["set-syslog-client", "--output-severity", "verbose"]).exit_code == 0
    shown = run_cli(["get-syslog-client", "--json"])
    view = json.loads(shown.stdout)
    assert view["OutputSeverity"] == "Verbose"
    assert view["Subject"] is None
    assert "no client certificate is configured" in shown.stderr
    table = run_cli(["get-syslog-client"])
    assert "Verbose" in table.stdout


def test_missing_stored_pem_is_warned_about(good_pfx: Path) -> None:
    pfx = good_pfx
    assert run_cli(["set-syslog-client", "--pfx-file", str(pfx)]).exit_code == 0
    stored = config.load_config().client.certificate
    assert stored is not None
    Path(stored.key_file).unlink()
    shown = run_cli(["get-syslog-client"])
    assert shown.exit_code == 0
    assert f"{stored.key_file} is missing" in shown.stderr


CONFLICTS = [
    (["--pfx-file", "PFX", "--pfx-binary", "-"], "--pfx-file and --pfx-binary cannot be combined"),
    (
        ["--remove-certificate", "--pfx-file", "PFX"],
        "--remove-certificate and --pfx-file cannot be combined",
    ),
    (
        ["--remove-certificate", "--pfx-binary", "-"],
        "--remove-certificate and --pfx-binary cannot be combined",
    ),
    (
        ["--remove-certificate", "--cert-password", "x"],
        "--remove-certificate and --cert-password cannot be combined",
    ),
    (
        ["--remove-certificate", "--root-ca", "ROOT"],
        "--remove-certificate and --root-ca cannot be combined",
    ),
    (["--cert-password", "x"], "--cert-password needs a PFX"),
    (["--root-ca", "ROOT"], "--root-ca needs a PFX"),
    (["--cert-password", "x", "--output-severity", "Verbose"], "--cert-password needs a PFX"),
    ([], "nothing to do"),
    (["--pfx-binary", "client.pfx"], "'--pfx-binary'"),
    (["--pfx-file", "MISSING"], "'--pfx-file'"),
    (["--pfx-file", "PFX", "--root-ca", "MISSING"], "'--root-ca'"),
]


@pytest.mark.parametrize(
    ("flags", "words"), CONFLICTS, ids=[" ".join(c[0]) or "none" for c in CONFLICTS]
)
def test_usage_errors_name_the_flags_and_change_nothing(
    lab: Lab,
    pfx_dir: Path,
    azs_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    flags: list[str],
    words: str,
) -> None:
    pfx = write(pfx_dir, "client.pfx", lab.good_pfx())
    root = write(pfx_dir, "root.pem", lab.root_pem())
    monkeypatch.setenv(ENV, PASSWORD)
    assert run_cli(["set-syslog-client", "--pfx-file", str(pfx)]).exit_code == 0
    before = snapshot(azs_home)
    names = {"PFX": str(pfx), "ROOT": str(root), "MISSING": str(pfx_dir / "missing")}
    args = [names.get(f, f) for f in flags]
    result = run_cli(["set-syslog-client", *args], input=lab.good_pfx())
    assert result.exit_code == 2, result.stderr
    assert words in result.stderr
    assert snapshot(azs_home) == before


def test_every_json_output_parses_and_no_password_leaks(
    lab: Lab, pfx_dir: Path, azs_home: Path, monkeypatch: pytest.MonkeyPatch, outputs: list[str]
) -> None:
    pfx = write(pfx_dir, "client.pfx", lab.good_pfx())
    root = write(pfx_dir, "root.pem", lab.root_pem())
    runs = [
        (["get-syslog-server", "--json"], None),
        (["get-syslog-client", "--json"], None),
        (["set-syslog-server", "--server-name", "s.example", "--server-port", "1", "--json"], None),
        (
            ["set-syslog-client", "--pfx-file", str(pfx), "--root-ca", str(root), "--json"],
            PASSWORD + "\n",
        ),
        (
            ["set-syslog-client", "--pfx-file", str(pfx), "--cert-password", PASSWORD, "--json"],
            None,
        ),
        (["set-syslog-client", "--output-severity", "Verbose", "--json"], None),
        (["get-syslog-server", "--json"], None),
        (["get-syslog-client", "--json"], None),
        (["set-syslog-client", "--remove-certificate", "--json"], None),
        (["set-syslog-server", "--remove", "--json"], None),
        (["get-syslog-server", "--json"], None),
    ]
    for args, given in runs:
        result = run_cli(args, input=given)
        assert result.exit_code == 0, (args, result.stderr)
        json.loads(result.stdout)
        outputs.extend([result.stdout, result.stderr])
    monkeypatch.setenv(ENV, PASSWORD)
    proc = run_cli_process(
        ["set-syslog-client", "--pfx-binary", "-", "--json"], input=lab.good_pfx()
    )
    assert proc.returncode == 0, proc.stderr
    json.loads(proc.stdout)
    outputs.extend([proc.stdout.decode(), proc.stderr.decode()])
    assert_no_password_under(azs_home)


def test_user_data_is_not_rich_markup(
    lab: Lab, pfx_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azs_syslog.lab import pki

    leaf = pki.issue(lab.intermediate, "[bold red]client[/]", client=True, days=365)
    pfx = write(pfx_dir, "markup.pfx", leaf.to_pfx(PASSWORD_BYTES))
    monkeypatch.setenv(ENV, PASSWORD)
    assert run_cli(["set-syslog-client", "--pfx-file", str(pfx)]).exit_code == 0
    table = run_cli(["get-syslog-client"])
    assert "CN=[bold red]client[/]" in table.stdout
