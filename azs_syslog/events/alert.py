"""Alerts (``"type": "alert"``), created and resolved, SPEC section 5.

Signature ID ``Microsoft Azure Stack Hub Alert Creation : <fault_type_id>`` (the source uses it
for resolved alerts too), Name ``<fault_type_id> : <alert_id>``, Severity Critical 10 /
Warning 5 / Undefined 0, resolved 2. Extensions ``MasEventDescription`` and ``act``
(``Created`` / ``Resolved``) **[project]**.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from azs_syslog.errors import EventError
from azs_syslog.events.common import (
    COMMON_FIELDS,
    Event,
    finish,
    optional_str,
    require_str,
    unknown_fields,
    wrong_type,
)

SIGNATURE_PREFIX: Final = "Microsoft Azure Stack Hub Alert Creation : "
ALERT_SEVERITY: Final = {"critical": 10, "warning": 5, "undefined": 0}
RESOLVED_SEVERITY: Final = 2  # Information
FIELDS: Final = COMMON_FIELDS | {
    "state",
    "fault_type_id",
    "alert_id",
    "severity",
    "title",
    "description",
    "remediation",
}
RESERVED: Final = frozenset({"MasEventDescription", "act", "rt"})


def description(title: str | None, text: str | None, remediation: str | None) -> str:
    """``TITLE: t -- DESCRIPTION: d -- REMEDIATION: r``, absent (or empty) parts left out."""
    parts = []
    if title:
        parts.append(f"TITLE: {title}")
    if text:
        parts.append(f"DESCRIPTION: {text}")
    if remediation:
        parts.append(f"REMEDIATION: {remediation}")
    return " -- ".join(parts)


def parse_alert(obj: Mapping[str, Any]) -> Event:
    unknown_fields(obj, FIELDS, "alert")
    state = require_str(obj, "state")
    fault_type_id = require_str(obj, "fault_type_id")
    alert_id = require_str(obj, "alert_id")
    if state == "created":
        value = obj.get("severity")
        if type(value) is not str:
            if "severity" not in obj:
                raise EventError("is required when state is 'created'", field="severity")
            raise wrong_type("severity", "a string", value)
        severity = ALERT_SEVERITY.get(value.lower())
        if severity is None:
            raise EventError(
                f"unknown alert severity {value!r} (expected Critical, Warning or Undefined)",
                field="severity",
            )
        act = "Created"
    elif state == "resolved":
        if "severity" in obj:
            raise EventError(
                "is only allowed when state is 'created' (a resolved alert is Information)",
                field="severity",
            )
        severity = RESOLVED_SEVERITY
        act = "Resolved"
    else:
        raise EventError(f"must be 'created' or 'resolved', not {state!r}", field="state")
    text = description(
        optional_str(obj, "title"),
        optional_str(obj, "description"),
        optional_str(obj, "remediation"),
    )
    keys: tuple[str, ...] = ("MasEventDescription", "act")
    values: list[str | int] = [text, act]
    if not text:
        keys, values = ("act",), [act]
    event = Event(
        "alert",
        SIGNATURE_PREFIX + fault_type_id,
        f"{fault_type_id} : {alert_id}",
        severity,
        keys,
        values,
    )
    return finish(obj, event, RESERVED)
