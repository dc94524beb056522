"""RenderSettings and Renderer: the contract other parts of azs-syslog code against."""

from __future__ import annotations

import json
import socket

import pytest

from azs_syslog.config import ClientSettings, Config, ServerSettings
from azs_syslog.encode.render import Renderer, RenderSettings
from azs_syslog.errors import ConfigError, EventError
from tests.cef_decoder import decode_syslog, unframe_octet_counted

WINDOWS = {"type": "windows", "provider_name": "P", "event_id": 1, "time": "2026-11-26T10:00:00Z"}


def test_defaults_and_key() -> None:
    settings = RenderSettings()
    assert (
        settings.message_format,
        settings.facility,
        settings.cef_version,
        settings.max_message_size,
        settings.output_severity,
        settings.framing,
    ) == ("rfc3164", 10, "0", 8192, "Default", "octet-counting")
    keys = {
        RenderSettings().key,
        RenderSettings(message_format="rfc5424").key,
        RenderSettings(facility=4).key,
        RenderSettings(cef_version="0.0").key,
        RenderSettings(max_message_size=1024).key,
        RenderSettings(output_severity="Verbose").key,
        RenderSettings(framing="lf").key,
        RenderSettings(framing="none").key,
    }
    assert len(keys) == 8
    assert RenderSettings().key == RenderSettings().key
    assert RenderSettings(output_severity="verbose").output_severity == "Verbose"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("message_format", "rfc9999"),
        ("facility", 24),
        ("facility", -1),
        ("cef_version", "1"),
        ("max_message_size", 100),
        ("output_severity", "Loud"),
        ("framing", "stx"),
    ],
)
def test_invalid_settings_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        RenderSettings(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field


def test_from_config() -> None:
    assert RenderSettings.from_config(Config()) == RenderSettings()
    verbose = Config(client=ClientSettings(output_severity="Verbose"))
    assert RenderSettings.from_config(verbose) == RenderSettings(output_severity="Verbose")
    server = ServerSettings(
        server_name="siem",
        server_port=514,
        use_udp=True,
        no_encryption=True,
        message_format="rfc5424",
        facility=4,
        max_message_size=2048,
        cef_version="0.0",
        framing="lf",
    )
    assert RenderSettings.from_config(Config(server=server, client=verbose.client)) == (
        RenderSettings(
            message_format="rfc5424",
            facility=4,
            cef_version="0.0",
            max_message_size=2048,
            output_severity="Verbose",
            framing="none",
        )
    )
    tcp = ServerSettings(server_name="siem", server_port=514, framing="lf")
    assert RenderSettings.from_config(Config(server=tcp)).framing == "lf"


def test_output_severity_filter_only_for_windows() -> None:
    default = Renderer(RenderSettings(), default_host="h")
    verbose = Renderer(RenderSettings(output_severity="Verbose"), default_host="h")
    for level in range(6):
        line = json.dumps({**WINDOWS, "level": level})
        kept = default.render_line(line, 0)
        assert (kept is not None) == (level in (1, 2, 3))
        assert verbose.render_line(line, 0) is not None
    assert default.filtered == 3
    assert verbose.filtered == 0
    # Every other type is forwarded whatever its severity.
    alert = {"type": "alert", "state": "created", "severity": "Undefined"}
    alert |= {"fault_type_id": "F", "alert_id": "A"}
    assert default.render_object(alert, 0) is not None
    assert default.filtered == 3


def test_framing_of_render_line() -> None:
    line = json.dumps({**WINDOWS, "level": 2})
    octet = Renderer(RenderSettings(), default_host="h").render_line(line, 0)
    lf = Renderer(RenderSettings(framing="lf"), default_host="h").render_line(line, 0)
    none = Renderer(RenderSettings(framing="none"), default_host="h").render_line(line, 0)
    assert octet is not None and lf is not None and none is not None
    assert unframe_octet_counted(octet) == [none]
    assert lf == none + b"\n"
    assert none.startswith(b"<83>Nov 26 10:00:00 h CEF:0|")


def test_accepted_time_and_default_host() -> None:
    renderer = Renderer(RenderSettings(framing="none"))
    message = renderer.render_object({"type": "arm", "AzsOperationName": "op"}, 1795687200999)
    assert message is not None
    decoded = decode_syslog(message)
    assert decoded.timestamp == "Nov 26 10:00:00"
    assert decoded.cef.extensions[0] == ("rt", "1795687200999")
    expected_host = "".join(c if "!" <= c <= "~" else "-" for c in socket.gethostname())
    assert decoded.host == (expected_host or "localhost")[:255]
    odd = Renderer(RenderSettings(framing="none"), default_host="my host\u00e9")
    message = odd.render_object({"type": "arm", "AzsOperationName": "op"}, 0)
    assert message is not None
    assert decode_syslog(message).host == "my-host-"


def test_truncation_is_counted_and_stays_valid() -> None:
    renderer = Renderer(RenderSettings(max_message_size=600, framing="none"), default_host="h")
    event = {"type": "arm", "AzsOperationName": "op", "AzsDescription": "日本\\=" * 400}
    message = renderer.render_object(event, 0)
    assert message is not None
    assert len(message) <= 600
    assert renderer.truncated == 1
    description = dict(decode_syslog(message).cef.extensions)["AzsDescription"]
    assert ("日本\\=" * 400).startswith(description)
    assert len(description) > 100
    small = renderer.render_object({"type": "arm", "AzsOperationName": "op"}, 0)
    assert small is not None
    assert renderer.truncated == 1


def test_octet_count_excludes_nothing_but_the_prefix() -> None:
    renderer = Renderer(RenderSettings(max_message_size=600), default_host="h")
    framed = renderer.render_object(
        {"type": "arm", "AzsOperationName": "op", "AzsDescription": "é" * 1000}, 0
    )
    assert framed is not None
    (message,) = unframe_octet_counted(framed)
    assert len(message) <= 600
    assert framed == str(len(message)).encode() + b" " + message


def test_render_line_errors() -> None:
    renderer = Renderer(RenderSettings(), default_host="h")
    cases: list[tuple[str | bytes, str]] = [
        ("{", "invalid JSON"),
        ('{"type": "pep"} trailing', "invalid JSON"),
        ("[]", "must be a JSON object"),
        (b"\xff{}", "UTF-8"),
        ('{"type": "x", "a": NaN}', "NaN"),
    ]
    for line, text in cases:
        with pytest.raises(EventError, match=text):
            renderer.render_line(line, 0)
    assert renderer.render_line(b'{"type": "arm", "AzsOperationName": "op"}', 0) is not None
    assert renderer.render_line(' {"type": "arm", "AzsOperationName": "op"} ', 0) is not None


def test_rfc5424_message() -> None:
    renderer = Renderer(
        RenderSettings(message_format="rfc5424", cef_version="0.0", framing="none"),
        default_host="h",
    )
    message = renderer.render_object(
        {"type": "bcdr", "event": "AuditingManualBackup", "time": "2026-11-26T11:00:00.5+01:00"},
        0,
    )
    assert message == (
        b"<84>1 2026-11-26T10:00:00.500Z h azs-syslog - bcdr - CEF:0.0|Microsoft|"
        b"Microsoft Azure Stack Hub|1.0|Microsoft-AzureStack-BCDR: AuditingManualBackup|"
        b"AuditingManualBackup|5|rt=1795687200500"
    )
