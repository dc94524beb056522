"""ARM events (``"type": "arm"``), SPEC section 5 **[project]** mapping.

Signature ID ``Microsoft-AzureStack-ARM: <AzsOperationName>``, Name = AzsEventName, else
AzsOperationName, Severity from AzsEventLevel (default Informational), and every property given
as an extension under its own name, in the source's order. Objects and arrays are written as
compact JSON; numbers and booleans as JSON writes them; ``null`` is treated as absent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from azs_syslog.errors import EventError
from azs_syslog.events.common import (
    COMMON_FIELDS,
    Event,
    add_text,
    finish,
    require_str,
    scalar_text,
    unknown_fields,
    wrong_type,
)

SIGNATURE_PREFIX: Final = "Microsoft-AzureStack-ARM: "
PROPERTIES: Final = (
    "AzsSubscriptionId",
    "AzsCorrelationId",
    "AzsPrincipalOid",
    "AzsPrincipalPuid",
    "AzsTenantId",
    "AzsOperationName",
    "AzsOperationId",
    "AzsEventSource",
    "AzsDescription",
    "AzsResourceProvider",
    "AzsResourceUri",
    "AzsEventName",
    "AzsEventInstanceId",
    "AzsChannels",
    "AzsEventLevel",
    "AzsStatus",
    "AzsSubStatus",
    "AzsClaims",
    "AzsAuthorization",
    "AzsHttpRequest",
    "AzsProperties",
    "AzsEventTimestamp",
    "AzsAudience",
    "AzsIssuer",
    "AzsIssuedAt",
    "AzsApplicationId",
    "AzsUniqueTokenId",
    "AzsArmServiceRequestId",
    "AzsEventCategory",
)
FIELDS: Final = COMMON_FIELDS | set(PROPERTIES)
RESERVED: Final = frozenset({*PROPERTIES, "rt"})
EVENT_LEVEL_SEVERITY: Final = {
    "critical": 10,
    "error": 8,
    "warning": 5,
    "informational": 2,
    "information": 2,
    "verbose": 0,
}
STRING_ONLY: Final = frozenset({"AzsOperationName", "AzsEventName", "AzsEventLevel"})


def property_text(field: str, value: Any) -> str:
    if type(value) is str:
        return value
    if field in STRING_ONLY:
        raise wrong_type(field, "a string", value)
    if type(value) is dict or type(value) is list:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if value is None:
        raise wrong_type(field, "a JSON value", value)
    return scalar_text(value, field)


def parse_arm(obj: Mapping[str, Any]) -> Event:
    unknown_fields(obj, FIELDS, "arm")
    operation = require_str(obj, "AzsOperationName")
    if not operation:
        raise EventError("must not be empty", field="AzsOperationName")
    keys: list[str] = []
    values: list[str | int] = []
    for field in PROPERTIES:
        value = obj.get(field)
        if value is not None:
            add_text(keys, values, field, property_text(field, value))
    level = obj.get("AzsEventLevel")
    severity = 2
    if level is not None:
        found = EVENT_LEVEL_SEVERITY.get(level.lower())
        if found is None:
            raise EventError(
                f"unknown event level {level!r} (expected Critical, Error, Warning, "
                "Informational or Verbose)",
                field="AzsEventLevel",
            )
        severity = found
    event = Event(
        "arm",
        SIGNATURE_PREFIX + operation,
        obj.get("AzsEventName") or operation,
        severity,
        tuple(keys),
        values,
    )
    return finish(obj, event, RESERVED)
