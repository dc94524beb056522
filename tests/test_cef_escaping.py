"""Escaping (SPEC section 6): header fields vs extension values, vectors in every field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from azs_syslog.encode import cef
from azs_syslog.encode.render import Renderer, RenderSettings
from tests.cef_decoder import RAW_CONTROL_RE, decode_syslog, header_decoded, value_decoded

NASTY = "a|b\\c=d\re\nf\x00g\th日本語🙂 |x=y \\"
# What the header and extension rules make of NASTY.
NASTY_HEADER = "a\\|b\\\\c=d e f\ufffdg h日本語🙂 \\|x=y \\\\"
NASTY_VALUE = "a|b\\\\c\\=d\\re\\nf\ufffdg h日本語🙂 |x\\=y \\\\"
# What a strict decoder gets back (CR/LF/TAB in a header become spaces; NUL becomes U+FFFD).
NASTY_HEADER_DECODED = "a|b\\c=d e f\ufffdg h日本語🙂 |x=y \\"
NASTY_VALUE_DECODED = "a|b\\c=d\re\nf\ufffdg h日本語🙂 |x=y \\"
# Control characters receivers take for line breaks or obey (ESC sequences, CSI), and the
# neighbours that are not controls (NBSP, U+2027, U+00A0-U+00BF: same UTF-8 lead byte as C1).
CONTROLS = "\x1b[31mred\x1b[0m\x85nel\u2028ls\u2029ps\x7fdel\x9bcsi\x0bvt\x0cff\x01\x1f\x80\x9f"
CONTROLS_HEADER = " [31mred [0m nel ls ps del csi vt ff    "
CONTROLS_VALUE = "\ufffd[31mred\ufffd[0m\\nnel\\nls\\nps\ufffddel\ufffdcsi\\nvt\\nff" + "\ufffd" * 4

VECTORS = [
    ("|", "\\|", "|"),
    ("\\", "\\\\", "\\\\"),
    ("=", "=", "\\="),
    ("\r", " ", "\\r"),
    ("\n", " ", "\\n"),
    ("\r\n", "  ", "\\r\\n"),
    ("\x00", "\ufffd", "\ufffd"),
    ("\t", " ", " "),
    ("\x0b", " ", "\\n"),
    ("\x0c", " ", "\\n"),
    ("\x1c\x1d\x1e", "   ", "\\n\\n\\n"),
    ("\x85", " ", "\\n"),
    ("\u2028", " ", "\\n"),
    ("\u2029", " ", "\\n"),
    ("\x1b", " ", "\ufffd"),
    ("\x7f", " ", "\ufffd"),
    ("\x80", " ", "\ufffd"),
    ("\x9b", " ", "\ufffd"),
    ("\x9f", " ", "\ufffd"),
    ("\xa0\xbf\u2027\u202a", "\xa0\xbf\u2027\u202a", "\xa0\xbf\u2027\u202a"),
    ("日本", "日本", "日本"),
    ("\\|", "\\\\\\|", "\\\\|"),
    ("\\=", "\\\\=", "\\\\\\="),
    ("\\n", "\\\\n", "\\\\n"),
    (NASTY, NASTY_HEADER, NASTY_VALUE),
    (CONTROLS, CONTROLS_HEADER, CONTROLS_VALUE),
    ("a=\x85b\\", "a= b\\\\", "a\\=\\nb\\\\"),
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
    decoded_header = header_decoded(text)
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
    expected_value = value_decoded(text)
    for event, signature, name in _all_fields_event(text):
        message = _render(event)
        for raw in (b"\r", b"\n", b"\x00"):
            assert raw not in message
        assert not RAW_CONTROL_RE.search(message.decode())
        decoded = decode_syslog(message)
        assert decoded.cef.signature_id == signature
        assert decoded.cef.name == name
        pairs = decoded.cef.extensions
        assert pairs[0][0] == "rt"
        texts = [v for k, v in pairs[1:] if k not in ("act", "MasEventID", "MasLevel")]
        expected_number = {"alert": 2, "windows": 4, "arm": 2, "pep": 2}[event["type"]]
        assert len(texts) == expected_number
        for value in texts:
            assert expected_value in value


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


# Every string field of every type: (base event, field, where it lands).
_WIN = {"type": "windows", "provider_name": "P", "event_id": 1, "level": 1}
_FAULT_I = {"type": "infrastructure_fault", "event": "InfrastructureFaultOpen"}
_FAULT_I |= {"AzsFaultId": "1", "AzsFaultTypeName": "T"}
_FAULT_S = {"type": "service_fault", "event": "ServiceFaultClose"}
_FAULT_S |= {"AzsFaultId": "1", "AzsFaultTypeName": "T"}
EVERY_STRING_FIELD: list[tuple[dict[str, Any], str]] = [
    *[
        ({"type": t, "event_id": i, "who": "u", "which_ip": "i"}, f)
        for t, i in (("pep", 1000), ("rep", 1011))
        for f in ("who", "which_ip")
    ],
    *[
        ({"type": "pep_wac", "event": "WACUserAddedEvent", "who": "u", "which_ip": "i"}, f)
        for f in ("who", "which_ip")
    ],
    *[
        (_WIN, f)
        for f in (
            "provider_name",
            "task_name",
            "channel",
            "computer",
            "correlation_activity_id",
            "correlation_related_activity_id",
            "event_data",
            "event_description",
            "keywords",
            "keyword_name",
            "opcode_name",
            "provider_event_source_name",
            "provider_guid",
            "security_user_id",
            "task_category",
            "user_data",
        )
    ],
    *[
        (
            {"type": "alert", "state": "resolved", "fault_type_id": "F", "alert_id": "A"},
            f,
        )
        for f in ("fault_type_id", "alert_id", "title", "description", "remediation")
    ],
    *[
        ({"type": "arm", "AzsOperationName": "op"}, f)
        for f in ("AzsOperationName", "AzsEventName", "AzsDescription", "AzsClaims", "AzsIssuer")
    ],
    *[
        ({"type": "bcdr", "event": "AuditingConfig"}, f)
        for f in ("Interval", "Retention", "BackupPath")
    ],
    *[
        (_FAULT_I, f)
        for f in (
            "AzsFaultId",
            "AzsFaultTypeName",
            "AzsComponentType",
            "AzsComponentName",
            "AzsFaultHash",
            "AzsCreatedTimeUtc",
            "AzsSource",
        )
    ],
    *[
        (_FAULT_S, f)
        for f in (
            "AzsSubscriptionId",
            "AzsResourceGroup",
            "AzsServiceName",
            "AzsResourceId",
            "AzsLastUpdatedTimeUtc",
        )
    ],
    ({"type": "arm", "AzsOperationName": "op", "extensions": {}}, "extensions.custom"),
]


@pytest.mark.parametrize(
    ("base", "field"), EVERY_STRING_FIELD, ids=[f"{b['type']}.{f}" for b, f in EVERY_STRING_FIELD]
)
@pytest.mark.parametrize("nasty", [NASTY, CONTROLS], ids=["nasty", "controls"])
def test_nasty_text_in_every_string_field(base: dict[str, Any], field: str, nasty: str) -> None:
    event = json.loads(json.dumps(base))
    if field == "extensions.custom":
        event["extensions"]["custom"] = nasty
    else:
        event[field] = nasty
    message = _render(event)
    for raw in (b"\r", b"\n", b"\x00"):
        assert raw not in message
    assert not RAW_CONTROL_RE.search(message.decode())
    decoded = decode_syslog(message)
    header = [decoded.cef.signature_id, decoded.cef.name]
    values = [value for _, value in decoded.cef.extensions]
    in_header = any(header_decoded(nasty) in text for text in header)
    in_values = any(value_decoded(nasty) in text for text in values)
    assert in_header or in_values
    if field in ("fault_type_id", "alert_id", "provider_name", "task_name", "AzsFaultTypeName"):
        assert in_header
    if field not in ("fault_type_id", "alert_id", "task_name"):
        assert in_values
