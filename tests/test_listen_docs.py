"""The documentation owned with ``listen``: every option, reason code and SPEC §8 error."""

from __future__ import annotations

import re

import pytest

from azs_syslog.cli.listen import listen
from azs_syslog.lab import receiver
from azs_syslog.lab.receiver import message
from tests.conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"

# SPEC section 8, one "## " section each in docs/troubleshooting.md.
SPEC_8_ERRORS = [
    "Connection refused",
    "Connection timed out",
    "DNS failure",
    "Server certificate not trusted",
    "Name mismatch",
    "Expired server certificate",
    "Server requires a client certificate",
    "Client certificate rejected by the server",
    "Protocol version not acceptable",
    "Wrong PFX password",
    "PFX without a private key",
    "Configuration file unreadable",
]


def sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


@pytest.mark.parametrize("title", SPEC_8_ERRORS)
def test_troubleshooting_has_a_section_per_error(title: str) -> None:
    body = sections((DOCS / "troubleshooting.md").read_text(encoding="utf-8"))[title]
    for part in ("**What you see:**", "**Why:**", "**Fix:**"):
        assert part in body


def test_listen_doc_lists_every_option() -> None:
    text = (DOCS / "listen.md").read_text(encoding="utf-8")
    assert "lab tool" in text.lower() and "not a SIEM" in text
    for param in listen.params:
        for option in param.opts:
            assert f"`{option}`" in text, option


def test_listen_doc_explains_every_reason_code() -> None:
    text = (DOCS / "listen.md").read_text(encoding="utf-8")
    codes = receiver.PROBLEM_CODES
    defined = {v for k, v in vars(message).items() if k.isupper() and isinstance(v, str)}
    assert set(codes) <= defined
    for code in codes:
        assert f"| `{code}` |" in text, code


def test_security_doc_covers_the_essentials() -> None:
    text = (DOCS / "security.md").read_text(encoding="utf-8")
    for phrase in ("0600", "0700", "mutual", "never stored", "AZS_SYSLOG_CERT_PASSWORD"):
        assert phrase in text, phrase
