"""PowerShell ``Get-WinEvent | ConvertTo-Json -Depth 3`` -> our Windows events.

Windows PowerShell 5.1 and PowerShell 7 write the same ``EventLogRecord`` properties; they
differ in how a date is written (``/Date(ms)/`` or ISO 8601) and in the encoding of the file
(UTF-16 or UTF-8 with a BOM by default in 5.1: ``inputs/text.py``). Properties no event field
takes (``ContainerLog``, ``Bookmark``, ``Qualifiers``...) are ignored, as PowerShell writes
them all. docs/cef-mapping.md has the mapping field by field.

An export made with ConvertTo-Json's default depth (2) lost the event data: each of
``Properties`` is the text ``System.Diagnostics.Eventing.Reader.EventProperty``. It is refused
with the command that makes a complete one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

from azs_syslog.errors import EventError
from azs_syslog.inputs.event_xml import (
    FIELD_ORDER,
    normalize_guid,
    normalize_keywords,
    normalize_time,
)

LOST_PROPERTY: Final = "System.Diagnostics.Eventing.Reader.EventProperty"
SHALLOW_EXPORT: Final = (
    "holds the text 'System.Diagnostics.Eventing.Reader.EventProperty', not the values: the "
    "export was made with ConvertTo-Json's default depth, which drops the event data. Export "
    "again with: Get-WinEvent ... | ConvertTo-Json -Depth 3"
)
# Keys that tell a Get-WinEvent record from one of our events.
SIGNATURE_KEYS: Final = frozenset({"Id", "ProviderName"})

_DATE_RE: Final = re.compile(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/\Z")

# PowerShell property -> (our field, how to read it).
_PLAIN: Final = 0
_GUID: Final = 1
_SID: Final = 2
_NUMBER: Final = 3
_FIELDS: Final[dict[str, tuple[str, int]]] = {
    "Id": ("event_id", _NUMBER),
    "ProviderName": ("provider_name", _PLAIN),
    "ProviderId": ("provider_guid", _GUID),
    "LogName": ("channel", _PLAIN),
    "MachineName": ("computer", _PLAIN),
    "Level": ("level", _NUMBER),
    "Version": ("version", _NUMBER),
    "Task": ("task", _NUMBER),
    "TaskDisplayName": ("task_name", _PLAIN),
    "Opcode": ("opcode", _NUMBER),
    "OpcodeDisplayName": ("opcode_name", _PLAIN),
    "RecordId": ("event_record_id", _NUMBER),
    "ProcessId": ("execution_process_id", _NUMBER),
    "ThreadId": ("execution_thread_id", _NUMBER),
    "UserId": ("security_user_id", _SID),
    "ActivityId": ("correlation_activity_id", _GUID),
    "RelatedActivityId": ("correlation_related_activity_id", _GUID),
    "Message": ("event_description", _PLAIN),
}


def is_powershell_record(obj: object) -> bool:
    return isinstance(obj, dict) and "type" not in obj and obj.keys() >= SIGNATURE_KEYS


def event_from_powershell(record: dict[str, Any]) -> dict[str, Any]:
    """One ``Get-WinEvent`` record (as ConvertTo-Json wrote it) -> our Windows event."""
    found: dict[str, Any] = {}
    for key, value in record.items():
        if value is None or value == "":
            continue
        spec = _FIELDS.get(key)
        if spec is not None:
            field, kind = spec
            if kind == _GUID and type(value) is str:
                value = normalize_guid(value)
            elif kind == _SID:
                value = _sid(value)
            found[field] = value
        else:
            _other_property(key, value, found)
    if "level" not in found and type(record.get("LevelDisplayName")) is str:
        found["level"] = record["LevelDisplayName"]
    if found.get("event_data") == []:
        del found["event_data"]
    found["type"] = "windows"
    return {field: found[field] for field in FIELD_ORDER if field in found}


def _other_property(key: str, value: Any, found: dict[str, Any]) -> None:
    """A property that is not one value of one field (``_FIELDS``)."""
    if key == "TimeCreated":
        found["time"] = _time(value)
    elif key == "Keywords":
        found["keywords"] = normalize_keywords(value) if type(value) in (int, str) else value
    elif key == "KeywordsDisplayNames":
        names = value if type(value) is list else [value]
        text = ", ".join(str(name) for name in names if name)
        if text:
            found["keyword_name"] = text
    elif key == "Properties":
        found["event_data"] = _properties(value)


def _sid(value: Any) -> Any:
    """A ``SecurityIdentifier`` is written as an object (``{"Value": "S-1-5-18", ...}``)."""
    if type(value) is dict and "Value" in value:
        return value["Value"]
    return value


def _time(value: Any) -> Any:
    if type(value) is dict:  # a DateTime with its extra properties: {"value": ..., ...}
        value = value.get("value", value.get("DateTime"))
    if type(value) is not str:
        return value
    match = _DATE_RE.match(value)
    if match is not None:
        millis = int(match.group(1))
        moment = datetime.fromtimestamp(millis // 1000, UTC)
        return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"
    return normalize_time(value)


def _properties(value: Any) -> list[Any]:
    if type(value) is not list:
        value = [value]
    values: list[Any] = []
    for item in value:
        if item == LOST_PROPERTY:
            raise EventError(SHALLOW_EXPORT, field="Properties")
        if type(item) is dict and "Value" in item:
            item = item["Value"]
        values.append(_property_value(item))
    return values


def _property_value(value: Any) -> Any:
    """A property's value as the Windows family takes it (strings, integers, booleans,
    null): nested objects give their ``Value`` (a SID), byte arrays their hex digits (as
    Event XML writes ``<Binary>``), other numbers and lists their text."""
    if value is None or type(value) in (str, int, bool):
        return value
    if type(value) is dict:
        return _property_value(value.get("Value", value.get("value")))
    if type(value) is list:
        if all(type(item) is int and 0 <= item <= 255 for item in value):
            return bytes(value).hex().upper()
        return " ".join(str(_property_value(item)) for item in value)
    if type(value) is float:
        return repr(value)
    return str(value)
