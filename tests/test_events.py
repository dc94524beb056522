"""Strict validation of the nine input types: every rejection names the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from azs_syslog.errors import EventError
from azs_syslog.events import EVENT_TYPES, parse_event, parse_line
from azs_syslog.events.common import parse_time
from azs_syslog.events.windows import parse_windows, parse_windows_checked
from tests.test_cef_golden import SPEC_EVENTS

VALID: dict[str, dict[str, Any]] = {
    "pep": {"type": "pep", "event": "PrivilegedEndpointAccessed", "who": "u", "which_ip": "ip"},
    "rep": {"type": "rep", "event_id": 1011, "who": "u", "which_ip": "ip"},
    "pep_wac": {"type": "pep_wac", "event": "WACUserAddedEvent", "who": "u", "which_ip": "ip"},
    "windows": {"type": "windows", "provider_name": "P", "event_id": 1, "level": 2},
    "alert": {
        "type": "alert",
        "state": "created",
        "severity": "Warning",
        "fault_type_id": "F",
        "alert_id": "A",
    },
    "arm": {"type": "arm", "AzsOperationName": "op"},
    "bcdr": {"type": "bcdr", "event": "AuditingConfig", "Interval": 1},
    "infrastructure_fault": {
        "type": "infrastructure_fault",
        "event": "InfrastructureFaultOpen",
        "AzsFaultId": "1",
        "AzsFaultTypeName": "T",
    },
    "service_fault": {
        "type": "service_fault",
        "event": "ServiceFaultClose",
        "AzsFaultId": "1",
        "AzsFaultTypeName": "T",
    },
}


def rejects(obj: Any, field: str | None, text: str = "") -> EventError:
    with pytest.raises(EventError) as info:
        parse_event(obj)
    assert info.value.field == field, str(info.value)
    assert text in str(info.value)
    return info.value


def test_every_type_has_a_valid_example() -> None:
    assert set(VALID) == set(EVENT_TYPES)
    for obj in VALID.values():
        assert parse_event(obj).type == obj["type"]


def test_unknown_type_and_missing_type() -> None:
    rejects({"type": "nope"}, "type", "unknown event type 'nope'")
    rejects({}, "type", "required")
    rejects({"type": 3}, "type", "must be a string, not a number")
    with pytest.raises(EventError, match="must be a JSON object"):
        parse_event([1])  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", sorted(VALID))
def test_unknown_field_is_rejected_for_every_type(kind: str) -> None:
    rejects({**VALID[kind], "surprise": 1}, "surprise", "unknown field")


@pytest.mark.parametrize("kind", sorted(VALID))
def test_common_fields_for_every_type(kind: str) -> None:
    event = parse_event({**VALID[kind], "time": "2026-11-26T10:00:00Z", "host": "h1"})
    assert (event.time_ms, event.host) == (1795687200000, "h1")
    rejects({**VALID[kind], "time": "yesterday"}, "time", "RFC 3339")
    rejects({**VALID[kind], "time": 5}, "time", "string")
    rejects({**VALID[kind], "host": "a b"}, "host", "space")
    rejects({**VALID[kind], "host": ""}, "host")
    rejects({**VALID[kind], "host": "日本"}, "host")
    rejects({**VALID[kind], "host": None}, "host", "null")
    rejects({**VALID[kind], "extensions": {"bad key": "v"}}, "extensions.bad key", "CEF")
    rejects({**VALID[kind], "extensions": {"k=": "v"}}, "extensions.k=")
    rejects({**VALID[kind], "extensions": {"rt": "1"}}, "extensions.rt", "collides")
    rejects({**VALID[kind], "extensions": {"k": [1]}}, "extensions.k", "array")
    rejects({**VALID[kind], "extensions": []}, "extensions", "object")
    event = parse_event({**VALID[kind], "extensions": {"x_1": 5, "b": True, "n": None, "e": ""}})
    assert event.extensions[-2:] == [("x_1", "5"), ("b", "true")]


@pytest.mark.parametrize(
    ("kind", "field", "value", "text"),
    [
        ("pep", "who", None, "required"),
        ("pep", "who", 5, "string"),
        ("pep", "which_ip", None, "required"),
        ("pep", "event", "Nope", "unknown pep event"),
        ("pep", "event", "RecoveryEndpointAccessed", "unknown pep event"),
        ("pep", "level", 9, "out of range"),
        ("pep", "level", "Loud", "unknown level"),
        ("pep", "level", True, "level"),
        ("rep", "event_id", 1000, "unknown rep event id"),
        ("rep", "event_id", "1011", "integer"),
        ("pep_wac", "event", "WACNope", "unknown pep_wac event"),
        ("pep_wac", "event_id", -1, "negative"),
        ("windows", "provider_name", None, "required"),
        ("windows", "provider_name", "", "empty"),
        ("windows", "event_id", None, "required"),
        ("windows", "event_id", "1", "integer"),
        ("windows", "event_id", -5, "negative"),
        ("windows", "level", None, "required"),
        ("windows", "level", 6, "out of range"),
        ("windows", "channel", 5, "string"),
        ("windows", "channel", None, "null"),
        ("windows", "event_data", {"a": 1}, "array"),
        ("windows", "keywords", 1.5, "integer"),
        ("windows", "task_name", 5, "string"),
        ("windows", "version", True, "integer"),
        ("alert", "state", "open", "'created' or 'resolved'"),
        ("alert", "severity", None, "required"),
        ("alert", "severity", "Error", "unknown alert severity"),
        ("alert", "fault_type_id", None, "required"),
        ("alert", "alert_id", 7, "string"),
        ("alert", "title", 7, "string"),
        ("arm", "AzsOperationName", None, "required"),
        ("arm", "AzsOperationName", {}, "string"),
        ("arm", "AzsEventLevel", "Loud", "unknown event level"),
        ("arm", "AzsStatus", 1e400, "out of range"),
        ("bcdr", "event", "Nope", "unknown bcdr event"),
        ("bcdr", "Interval", [1], "number or a string"),
        ("bcdr", "BackupPath", 5, "string"),
        ("bcdr", "IsInternalStore", True, "unknown field"),
        ("infrastructure_fault", "event", "ServiceFaultOpen", "unknown infrastructure_fault"),
        ("infrastructure_fault", "AzsFaultId", None, "required"),
        ("infrastructure_fault", "AzsSource", 1, "string"),
        ("service_fault", "AzsComponentName", "x", "unknown field"),
        ("service_fault", "AzsFaultTypeName", "", "empty"),
    ],
)
def test_field_errors(kind: str, field: str, value: Any, text: str) -> None:
    obj = copy.deepcopy(VALID[kind])
    if value is None and field in obj:
        del obj[field]
    elif value is not None:
        obj[field] = value
    else:
        obj[field] = None
    rejects(obj, field, text)


def test_windows_list_item_errors_name_the_item() -> None:
    rejects({**VALID["windows"], "event_data": ["a", {"b": 1}]}, "event_data[1]", "string")


def test_alert_severity_only_when_created() -> None:
    resolved = {**VALID["alert"], "state": "resolved"}
    rejects(resolved, "severity", "only allowed when state is 'created'")
    del resolved["severity"]
    assert parse_event(resolved).severity == 2


def test_pep_event_and_event_id_must_agree() -> None:
    rejects({**VALID["pep"], "event_id": 1001}, "event_id", "is not the id")
    assert parse_event({**VALID["pep"], "event_id": 1000}).name == "PrivilegedEndpointAccessedEvent"
    missing = dict(VALID["pep"])
    del missing["event"]
    rejects(missing, "event", "required")


def test_collisions_with_generated_keys() -> None:
    rejects({**VALID["windows"], "extensions": {"MasChannel": "x"}}, "extensions.MasChannel")
    rejects({**VALID["alert"], "extensions": {"act": "x"}}, "extensions.act")
    rejects({**VALID["pep"], "extensions": {"Who": "x"}}, "extensions.Who")
    rejects({**VALID["arm"], "extensions": {"AzsStatus": "x"}}, "extensions.AzsStatus")
    rejects({**VALID["bcdr"], "extensions": {"BackupPath": "x"}}, "extensions.BackupPath")
    # Keys of other types are free.
    assert parse_event({**VALID["pep"], "extensions": {"MasChannel": "x"}}).keys[-1] == "MasChannel"


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2026-11-26T10:00:00Z", 1795687200000),
        ("2026-11-26T10:00:00.123Z", 1795687200123),
        ("2026-11-26t10:00:00.1z", 1795687200100),
        ("2026-11-26T10:00:00.123456789Z", 1795687200123),
        ("2026-11-26T11:30:00+01:30", 1795687200000),
        ("2026-11-26T08:00:00.5-02:00", 1795687200500),
        ("2016-12-31T23:59:60Z", 1483228799000),
        ("1970-01-01T00:00:00Z", 0),
    ],
)
def test_times(text: str, ms: int) -> None:
    assert parse_time(text) == ms
    assert parse_time(text) == ms  # cached


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-26",
        "2026-11-26T10:00:00",
        "2026-11-26 10:00:00Z",
        "2026-13-26T10:00:00Z",
        "2026-02-30T10:00:00Z",
        "2026-11-26T24:00:00Z",
        "2026-11-26T10:00:00+25:00",
        "2026-11-26T10:00:00.Z",
        "2026-11-26T10:00:00.12٣Z",
        "2026-11-26T10:00:00Zjunk",
    ],
)
def test_bad_times(text: str) -> None:
    with pytest.raises(EventError) as info:
        parse_time(text)
    assert info.value.field == "time"


def test_fast_path_agrees_with_the_checked_path() -> None:
    events = [e for e, _, _ in SPEC_EVENTS if e["type"] == "windows"]
    base = events[0]
    variants = [
        base,
        {**base, "level": "Warning"},
        {**base, "keywords": -9214364837600034816},
        {**base, "event_data": "plain"},
        {**base, "task_name": ""},
        {**base, "extensions": {"x": "y"}},
    ]
    for variant in variants:
        for _ in range(3):  # the first compiles the plan, the next ones use it
            assert parse_windows(variant) == parse_windows_checked(variant)
    assert parse_windows(variants[2]).extensions[10] == ("MasKeywords", "0x8020000000000000")
    # A shape seen before with other types falls back to the checked path and its errors.
    with pytest.raises(EventError) as info:
        parse_windows({**base, "event_data": ["a", 1.5]})
    assert info.value.field == "event_data[1]"
    with pytest.raises(EventError) as info:
        parse_windows({**base, "event_record_id": -1})
    assert info.value.field == "event_record_id"
    with pytest.raises(EventError) as info:
        parse_windows({**base, "host": ["x"]})
    assert info.value.field == "host"
    with pytest.raises(EventError) as info:
        parse_windows({**base, "level": 7})
    assert info.value.field == "level"
    assert parse_windows({**base, "channel": ""}).keys[0] == "MasComputer"


def test_parse_line_reports_json_errors() -> None:
    with pytest.raises(EventError, match="invalid JSON"):
        parse_line("{")
    assert parse_line(json.dumps(VALID["arm"])).name == "op"


def test_times_outside_four_digit_years_are_rejected() -> None:
    with pytest.raises(EventError, match="0001-9999"):
        parse_time("9999-12-31T23:59:59-01:00")
    with pytest.raises(EventError, match="0001-9999"):
        parse_time("0001-01-01T00:00:00+01:00")
    assert parse_time("9999-12-31T23:59:59.999Z") == 253402300799999
