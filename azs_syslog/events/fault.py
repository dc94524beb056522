"""Infrastructure and service faults (``infrastructure_fault`` / ``service_fault``), SPEC §5.

**[project]** mapping: Signature ID ``Microsoft-AzureStack-Fault: <event>``, Name =
AzsFaultTypeName, Severity 5 when a fault opens and 2 when it closes, the fields as extensions
under their own names in the source's order. AzsFaultId and AzsFaultTypeName are required, the
other fields optional; all are strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from azs_syslog.errors import EventError
from azs_syslog.events.common import (
    COMMON_FIELDS,
    Event,
    add_text,
    finish,
    named_event,
    require_str,
    unknown_fields,
    wrong_type,
)

SIGNATURE_PREFIX: Final = "Microsoft-AzureStack-Fault: "
OPEN_SEVERITY: Final = 5
CLOSE_SEVERITY: Final = 2

_INFRA: Final = ("AzsFaultId", "AzsFaultTypeName", "AzsComponentType", "AzsComponentName")
_SERVICE: Final = (
    "AzsFaultId",
    "AzsFaultTypeName",
    "AzsSubscriptionId",
    "AzsResourceGroup",
    "AzsServiceName",
    "AzsResourceId",
)
_OPEN: Final = ("AzsFaultHash", "AzsCreatedTimeUtc", "AzsSource")
_CLOSE: Final = ("AzsFaultHash", "AzsLastUpdatedTimeUtc", "AzsSource")

# type -> event -> (fields in order, severity)
FAULT_EVENTS: Final[dict[str, dict[str, tuple[tuple[str, ...], int]]]] = {
    "infrastructure_fault": {
        "InfrastructureFaultOpen": (_INFRA + _OPEN, OPEN_SEVERITY),
        "InfrastructureFaultClose": (_INFRA + _CLOSE, CLOSE_SEVERITY),
    },
    "service_fault": {
        "ServiceFaultOpen": (_SERVICE + _OPEN, OPEN_SEVERITY),
        "ServiceFaultClose": (_SERVICE + _CLOSE, CLOSE_SEVERITY),
    },
}
REQUIRED: Final = ("AzsFaultId", "AzsFaultTypeName")


def _parse_fault(obj: Mapping[str, Any], type_name: str) -> Event:
    events = FAULT_EVENTS[type_name]
    name, (fields, severity) = named_event(obj, events, type_name)
    unknown_fields(obj, COMMON_FIELDS | {"event", *fields}, type_name, name)
    for field in REQUIRED:
        require_str(obj, field)
    if not obj["AzsFaultTypeName"]:
        raise EventError("must not be empty", field="AzsFaultTypeName")
    keys: list[str] = []
    values: list[str | int] = []
    for field in fields:
        if field in obj:
            value = obj[field]
            if type(value) is not str:
                raise wrong_type(field, "a string", value)
            add_text(keys, values, field, value)
    event = Event(
        type_name, SIGNATURE_PREFIX + name, obj["AzsFaultTypeName"], severity, tuple(keys), values
    )
    return finish(obj, event, frozenset({*fields, "rt"}))


def parse_infrastructure_fault(obj: Mapping[str, Any]) -> Event:
    return _parse_fault(obj, "infrastructure_fault")


def parse_service_fault(obj: Mapping[str, Any]) -> Event:
    return _parse_fault(obj, "service_fault")
