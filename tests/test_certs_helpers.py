"""Helpers (no tests) for the certificate and command tests: PFX bundles made at run time with
azs_syslog.lab.pki, and a byte-for-byte snapshot of everything under AZS_SYSLOG_HOME."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from azs_syslog.lab import pki
from tests.conftest import run_cli

# Characters that never occur in base64 or in the JSON we write, so a leak cannot hide.
PASSWORD = "pw-Zq!9_x#pässwörd"
PASSWORD_BYTES = PASSWORD.encode()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def encrypt(password: str = PASSWORD) -> serialization.KeySerializationEncryption:
    return serialization.BestAvailableEncryption(password.encode())


class Lab:
    """A root CA, an intermediate under it, and client certificates in every state."""

    def __init__(self) -> None:
        self.root = pki.make_ca("azs-syslog test root", days=3650)
        self.intermediate = pki.make_ca("azs-syslog test issuing CA", days=3650, issuer=self.root)
        self.other_root = pki.make_ca("some other root", days=3650)

    def client(self, **kwargs: object) -> pki.Issued:
        options: dict[str, object] = {"client": True, "days": 365}
        options.update(kwargs)
        return pki.issue(self.intermediate, "syslog-client.example.com", **options)  # type: ignore[arg-type]

    def good_pfx(self, password: str = PASSWORD) -> bytes:
        return self.client().to_pfx(password.encode())

    def expired_pfx(self) -> bytes:
        return self.client(
            not_before=now() - dt.timedelta(days=60), not_after=now() - dt.timedelta(days=1)
        ).to_pfx(PASSWORD_BYTES)

    def not_yet_valid_pfx(self) -> bytes:
        return self.client(
            not_before=now() + dt.timedelta(days=1), not_after=now() + dt.timedelta(days=30)
        ).to_pfx(PASSWORD_BYTES)

    def expiring_soon_pfx(self) -> bytes:
        return self.client(days=10).to_pfx(PASSWORD_BYTES)

    def server_only_eku_pfx(self) -> bytes:
        return self.client(client=False, server=True).to_pfx(PASSWORD_BYTES)

    def no_eku_pfx(self) -> bytes:
        return self.client(client=False, eku=()).to_pfx(PASSWORD_BYTES)

    def any_eku_pfx(self) -> bytes:
        return self.client(eku=(ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,)).to_pfx(PASSWORD_BYTES)

    def no_key_pfx(self) -> bytes:
        return self.client().to_pfx(PASSWORD_BYTES, include_key=False)

    def mismatched_key_pfx(self) -> bytes:
        # cryptography refuses to pair a certificate with a key that does not match it, so the
        # certificate goes in as a plain certificate bag next to another key: what a PFX
        # assembled by hand (or by a broken tool) looks like.
        leaf = self.client()
        return pkcs12.serialize_key_and_certificates(
            b"mismatch", pki.new_key(), None, [leaf.cert, *leaf.chain], encrypt()
        )

    def ca_only_pfx(self) -> bytes:
        return pkcs12.serialize_key_and_certificates(
            b"cas", None, None, [self.intermediate.cert, self.root.cert], encrypt()
        )

    def root_pem(self) -> bytes:
        return self.root.cert_pem()

    def other_root_pem(self) -> bytes:
        return self.other_root.cert_pem()


def snapshot(home: Path) -> dict[str, bytes]:
    """Every file under ``home`` with its bytes (the lock file included)."""
    if not home.exists():
        return {}
    return {
        str(path.relative_to(home)): path.read_bytes()
        for path in sorted(home.rglob("*"))
        if path.is_file()
    }


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def load_chain(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def set_server(*args: str) -> None:
    """``set-syslog-server ARGS`` (siem.example.com port 6514 without any), which must work."""
    given = list(args) or ["--server-name", "siem.example.com", "--server-port", "6514"]
    result = run_cli(["set-syslog-server", *given])
    assert result.exit_code == 0, result.stderr


def stored_server() -> dict[str, object] | None:
    """What ``get-syslog-server --json`` shows."""
    shown = run_cli(["get-syslog-server", "--json"])
    assert shown.exit_code == 0, shown.stderr
    value: dict[str, object] | None = json.loads(shown.stdout)
    return value
