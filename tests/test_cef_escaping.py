"""Escaping (SPEC section 6): header fields vs extension values, vectors in every field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from azs_syslog import cef
from azs_syslog.render import Renderer, RenderSettings
from tests.cef_decoder import decode_syslog

NASTY = "a|b\\c=d\re\nf\x00g\th日本語🙂 |x=y \\"
# What the header and extension rules make of NASTY.
NASTY_HEADER = "a\\|b\\\\c=d e f\ufffdg\th日本語🙂 \\|x=y \\\\"
NASTY_VALUE = "a|b\\\\c\\=d\\re\\nf\ufffdg\th日本語🙂 |x\\=y \\\\"
# What a strict decoder gets back (CR/LF in a header become spaces; NUL becomes U+FFFD).
NASTY_HEADER_DECODED = "a|b\\c=d e f\ufffdg\th日本語🙂 |x=y \\"
NASTY_VALUE_DECODED = "a|b\\c=d\re\nf\ufffdg\th日本語🙂 |x=y \\"

VECTORS = [
    ("|", "\\|", "|"),
    ("\\", "\\\\", "\\\\"),
    ("=", "=", "\\="),
    ("\r", " ", "\\r"),
    ("\n", " ", "\\n"),
    ("\r\n", "  ", "\\r\\n"),
    ("\x00", "\ufffd", "\ufffd"),
    ("\t", "\t", "\t"),
    ("日本", "日本", "日本"),
    ("\\|", "\\\\\\|", "\\\\|"),
    ("\\=", "\\\\=", "\\\\\\="),
    ("\\n", "\\\\n", "\\\\n"),
    (NASTY, NASTY_HEADER, NASTY_VALUE),
]


@pytest.mark.parametrize(("text", "header", "value"), VECTORS)
def test_escape_functions(text: str, header: str, value: str) -> None:
    assert cef.escape_header(text) == header
    assert cef.escape_value(text) == value
    assert cef.escape_values([text, "plain", text]) == [value, "plain", value]


@pytest.mark.parametrize(("text", "header", "value"), VECTORS)
def test_encode_extensions_matches_per_value_escaping(text: str, header: str, value: str) -> None:
    keys = ("A", "B", "C")
    values: list[str | int] = [text, 7, "x" + text]
    encoded = cef.encode_extensions(keys, cef.extension_template(keys), values)
    assert encoded == f" A={value} B=7 C=x{value}"


def _render(event: dict[str, Any]) -> bytes:
    renderer = Renderer(RenderSettings(output_severity="Verbose", framing="none"), default_host="h")
    message = renderer.render_line(json.dumps(event), 0)
    assert message is not None
    return message


def _all_fields_event(text: str) -> list[tuple[dict[str, Any], str, str]]:
    """Events that carry ``text`` in every header field and extension value they have,
    with the (signature, name) the header must decode to."""
    decoded_header = text.replace("\r", " ").replace("\n", " ").replace("\x00", "\ufffd")
    return [
        (
            {
                "type": "alert",
                "state": "created",
                "severity": "Critical",
                "fault_type_id": text,
                "alert_id": text,
                "title": text,
                "extensions": {"custom": text},
            },
            f"Microsoft Azure Stack Hub Alert Creation : {decoded_header}",
            f"{decoded_header} : {decoded_header}",
        ),
        (
            {
                "type": "windows",
                "provider_name": text,
                "event_id": 1,
                "level": 1,
                "task_name": text,
                "channel": text,
                "event_description": text,
                "event_data": [text, text],
            },
            f"{decoded_header}:1",
            decoded_header,
        ),
        (
            {"type": "arm", "AzsOperationName": text, "AzsDescription": text},
            f"Microsoft-AzureStack-ARM: {decoded_header}",
            decoded_header,
        ),
        (
            {"type": "pep", "event_id": 1000, "who": text, "which_ip": text},
            "Microsoft-AzureStack-PrivilegedEndpoint: 1000",
            "PrivilegedEndpointAccessedEvent",
        ),
    ]


@pytest.mark.parametrize("text", [v[0] for v in VECTORS] + ["x rt=1 y", "|7|", " a=b c=d "])
def test_every_field_round_trips_through_a_strict_decoder(text: str) -> None:
    value_decoded = text.replace("\x00", "\ufffd")
    for event, signature, name in _all_fields_event(text):
        message = _render(event)
        for raw in (b"\r", b"\n", b"\x00"):
            assert raw not in message
        decoded = decode_syslog(message)
        assert decoded.cef.signature_id == signature
        assert decoded.cef.name == name
        pairs = decoded.cef.extensions
        assert pairs[0][0] == "rt"
        texts = [v for k, v in pairs[1:] if k not in ("act", "MasEventID", "MasLevel")]
        expected_number = {"alert": 2, "windows": 4, "arm": 2, "pep": 2}[event["type"]]
        assert len(texts) == expected_number
        for value in texts:
            assert value_decoded in value


def test_no_input_creates_a_new_message() -> None:
    forged = "x\n<13>Nov 26 10:00:00 evil CEF:0|Evil|Evil|1|1|forged|10|a=b"
    message = _render({"type": "arm", "AzsOperationName": forged})
    assert message.count(b"CEF:0|") == 2  # the real one, and the escaped text
    assert b"\n" not in message
    decoded = decode_syslog(message)
    assert decoded.cef.vendor == "Microsoft"
    assert dict(decoded.cef.extensions)["AzsOperationName"] == forged


def test_nasty_text_golden() -> None:
    message = _render(
        {"type": "alert", "state": "resolved", "fault_type_id": NASTY, "alert_id": "A"}
    ).decode()
    assert message == (
        "<86>Jan  1 00:00:00 h CEF:0|Microsoft|Microsoft Azure Stack Hub|1.0|"
        f"Microsoft Azure Stack Hub Alert Creation : {NASTY_HEADER}|{NASTY_HEADER} : A|2|"
        "rt=0 act=Resolved"
    )
    decoded = decode_syslog(message.encode())
    assert decoded.cef.signature_id.endswith(NASTY_HEADER_DECODED)
    arm = _render({"type": "arm", "AzsOperationName": "op", "AzsDescription": NASTY})
    assert arm.decode().endswith(f" AzsDescription={NASTY_VALUE}")
    assert dict(decode_syslog(arm).cef.extensions)["AzsDescription"] == NASTY_VALUE_DECODED


def test_lone_surrogates_become_replacement_characters() -> None:
    message = _render({"type": "arm", "AzsOperationName": "op", "AzsDescription": "a\ud800b"})
    message.decode("utf-8")  # valid UTF-8
    assert dict(decode_syslog(message).cef.extensions)["AzsDescription"] == "a\ufffdb"
