"""Property tests (hypothesis): arbitrary Unicode in any field survives the encoding exactly,
as read back by the independent strict decoder in tests/cef_decoder.py."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azs_syslog.encode.render import Renderer, RenderSettings
from azs_syslog.events.windows import parse_windows, parse_windows_checked
from tests.cef_decoder import decode_syslog, header_decoded, unframe_octet_counted, value_decoded
from tests.test_cef_escaping import EVERY_STRING_FIELD
from tests.test_cef_golden import MAS_ROWS, cef_header

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Arbitrary Unicode, and text dense in control characters (docs/cef-mapping.md).
CONTROL_TEXT = st.text(
    st.sampled_from([*"\t\x0b\x0c\x1b\x1c\x7f\x80\x85\x9b\x9f\u2028\u2029", "a", "=", "\\", "|"]),
    max_size=20,
)
TEXT = st.text(max_size=60) | CONTROL_TEXT
NONEMPTY = st.text(min_size=1, max_size=60) | CONTROL_TEXT.filter(bool)
HOSTS = st.from_regex(r"[!-~]{1,60}", fullmatch=True)
KEYS = st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True)
FORMATS = st.sampled_from(["rfc3164", "rfc5424"])
FRAMINGS = st.sampled_from(["octet-counting", "lf", "none"])


def header_text(text: str) -> str:
    """What a header field decodes to: NUL becomes U+FFFD, every other control a space."""
    return header_decoded(text)


def value_text(text: str) -> str:
    """What an extension value decodes to (docs/cef-mapping.md)."""
    return value_decoded(text)


def unframe(framed: bytes, framing: str) -> bytes:
    if framing == "octet-counting":
        (message,) = unframe_octet_counted(framed)
        count = framed.split(b" ", 1)[0]
        assert int(count) == len(message)
        return message
    if framing == "lf":
        assert framed.endswith(b"\n")
        assert framed.count(b"\n") == 1
        return framed[:-1]
    return framed


def check_message(message: bytes, limit: int) -> None:
    assert len(message) <= limit
    for raw in (b"\r", b"\n", b"\x00"):
        assert raw not in message
    message.decode("utf-8")  # valid UTF-8
    payload = message.decode("utf-8").split(" CEF:", 1)[1]
    # Exactly seven unescaped pipes end the header fields: count them up to the extensions.
    pipes = 0
    pos = 0
    while pipes < 7:
        char = payload[pos]
        if char == "\\":
            pos += 2
            continue
        if char == "|":
            pipes += 1
        pos += 1
    assert payload[pos:].startswith("rt=")


custom_extensions = st.dictionaries(
    KEYS.filter(lambda k: k not in ("rt", "act", "MasEventDescription")), TEXT, max_size=4
)


@SETTINGS
@given(
    fault_type_id=TEXT,
    alert_id=TEXT,
    title=st.none() | TEXT,
    description=st.none() | TEXT,
    remediation=st.none() | TEXT,
    extensions=custom_extensions,
    host=HOSTS,
    message_format=FORMATS,
    framing=FRAMINGS,
    version=st.sampled_from(["0", "0.0"]),
)
def test_alert_fields_round_trip(
    fault_type_id: str,
    alert_id: str,
    title: str | None,
    description: str | None,
    remediation: str | None,
    extensions: dict[str, str],
    host: str,
    message_format: str,
    framing: str,
    version: str,
) -> None:
    event: dict[str, Any] = {
        "type": "alert",
        "state": "created",
        "severity": "Critical",
        "fault_type_id": fault_type_id,
        "alert_id": alert_id,
        "host": host,
        "time": "2026-11-26T10:00:00.123Z",
        "extensions": extensions,
    }
    for field, value in (("title", title), ("description", description)):
        if value is not None:
            event[field] = value
    if remediation is not None:
        event["remediation"] = remediation
    renderer = Renderer(
        RenderSettings(
            message_format=message_format,
            framing=framing,
            cef_version=version,
            max_message_size=65536,
        )
    )
    framed = renderer.render_line(json.dumps(event), 0)
    assert framed is not None
    message = unframe(framed, framing)
    check_message(message, 65536)
    decoded = decode_syslog(message)
    assert decoded.host == host
    assert decoded.cef.header == cef_header(
        version,
        "Microsoft Azure Stack Hub Alert Creation : " + header_text(fault_type_id),
        header_text(fault_type_id) + " : " + header_text(alert_id),
        "10",
    )
    parts = []
    if title:
        parts.append(f"TITLE: {title}")
    if description:
        parts.append(f"DESCRIPTION: {description}")
    if remediation:
        parts.append(f"REMEDIATION: {remediation}")
    expected = [("rt", "1795687200123")]
    if parts:
        expected.append(("MasEventDescription", value_text(" -- ".join(parts))))
    expected.append(("act", "Created"))
    expected += [(k, value_text(v)) for k, v in extensions.items() if v]
    assert decoded.cef.extensions == expected
    assert renderer.truncated == 0


windows_strings = st.fixed_dictionaries(
    {"provider_name": NONEMPTY},
    optional=dict.fromkeys(
        (
            "task_name",
            "channel",
            "computer",
            "correlation_activity_id",
            "event_description",
            "keyword_name",
            "opcode_name",
            "provider_guid",
            "security_user_id",
            "task_category",
        ),
        TEXT,
    ),
)


@SETTINGS
@given(
    strings=windows_strings,
    event_data=st.none() | st.lists(TEXT, max_size=4) | TEXT,
    event_id=st.integers(0, 65535),
    record=st.none() | st.integers(0, 2**63),
    level=st.integers(0, 5) | st.sampled_from(["Critical", "error", "WARNING", "Information"]),
    message_format=FORMATS,
)
def test_windows_fields_round_trip(
    strings: dict[str, str],
    event_data: list[str] | str | None,
    event_id: int,
    record: int | None,
    level: int | str,
    message_format: str,
) -> None:
    event: dict[str, Any] = {"type": "windows", "event_id": event_id, "level": level, **strings}
    if event_data is not None:
        event["event_data"] = event_data
    if record is not None:
        event["event_record_id"] = record
    line = json.dumps(event)
    renderer = Renderer(
        RenderSettings(message_format=message_format, output_severity="Verbose", framing="none"),
        default_host="h",
    )
    for _ in range(2):  # the second time through the compiled fast path
        message = renderer.render_line(line, 1795687200123)
        assert message is not None
        check_message(message, 8192)
        decoded = decode_syslog(message)
        name = strings.get("task_name") or strings.get("task_category") or "0"
        assert decoded.cef.signature_id == f"{header_text(strings['provider_name'])}:{event_id}"
        assert decoded.cef.name == header_text(name)
        values = decoded.cef.ext()
        assert values["MasProviderName"] == value_text(strings["provider_name"])
        assert values["MasEventID"] == str(event_id)
        for field, key in (("channel", "MasChannel"), ("event_description", "MasEventDescription")):
            if strings.get(field):
                assert values[key] == value_text(strings[field])
            else:
                assert key not in values
        if isinstance(event_data, list) and "!!".join(event_data):
            assert values["MasEventData"] == value_text("!!".join(event_data))
        if record is not None:
            assert values["MasEventRecordID"] == str(record)
    assert parse_windows(json.loads(line)) == parse_windows_checked(json.loads(line))


@SETTINGS
@given(
    values=st.lists(st.text(min_size=1, max_size=3000), min_size=1, max_size=6),
    operation=NONEMPTY,
    limit=st.integers(480, 6000),
    message_format=FORMATS,
    framing=FRAMINGS,
)
def test_truncated_messages_fit_and_stay_valid(
    values: list[str], operation: str, limit: int, message_format: str, framing: str
) -> None:
    fields = [
        "AzsDescription",
        "AzsClaims",
        "AzsStatus",
        "AzsSubStatus",
        "AzsIssuer",
        "AzsAudience",
    ]
    event: dict[str, Any] = {"type": "arm", "AzsOperationName": operation[:40]}
    event.update(zip(fields, values, strict=False))
    renderer = Renderer(
        RenderSettings(message_format=message_format, framing=framing, max_message_size=limit),
        default_host="h" * 40,
    )
    unlimited = Renderer(
        RenderSettings(message_format=message_format, framing="none", max_message_size=2**24),
        default_host="h" * 40,
    ).render_object(event, 0)
    assert unlimited is not None
    framed = renderer.render_object(event, 0)
    assert framed is not None
    message = unframe(framed, framing)
    check_message(message, limit)
    assert renderer.truncated == (1 if len(unlimited) > limit else 0)
    decoded = decode_syslog(message)
    full = decode_syslog(unlimited)
    assert decoded.cef.header == full.cef.header
    assert decoded.cef.extensions[0] == ("rt", "0")
    complete = dict(full.cef.extensions)
    for key, value in decoded.cef.extensions:
        assert complete[key].startswith(value)
        assert value


_KEY_OF = {"who": "Who", "which_ip": "WhichIP", "extensions.custom": "custom"}
_KEY_OF |= {field: key for field, _, key, _ in MAS_ROWS}
_HEADER_ONLY = {"fault_type_id", "alert_id", "task_name"}
_IN_DESCRIPTION = {
    "title": "TITLE: ",
    "description": "DESCRIPTION: ",
    "remediation": "REMEDIATION: ",
}


@SETTINGS
@given(case=st.sampled_from(EVERY_STRING_FIELD), text=NONEMPTY, message_format=FORMATS)
def test_any_string_field_of_any_type_round_trips(
    case: tuple[dict[str, Any], str], text: str, message_format: str
) -> None:
    base, field = case
    event = json.loads(json.dumps(base))
    if field == "extensions.custom":
        event["extensions"]["custom"] = text
    else:
        event[field] = text
    renderer = Renderer(
        RenderSettings(message_format=message_format, output_severity="Verbose", framing="none"),
        default_host="h",
    )
    message = renderer.render_object(event, 0)
    assert message is not None
    check_message(message, 8192)
    decoded = decode_syslog(message)
    values = decoded.cef.ext()
    if field in _IN_DESCRIPTION:
        assert values["MasEventDescription"] == _IN_DESCRIPTION[field] + value_text(text)
    elif field not in _HEADER_ONLY:
        assert values[_KEY_OF.get(field, field)] == value_text(text)
    if field in _HEADER_ONLY or field in ("provider_name", "AzsFaultTypeName", "AzsEventName"):
        assert header_text(text) in decoded.cef.name + decoded.cef.signature_id
