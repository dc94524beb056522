"""Privileged endpoint (``pep``), recovery endpoint (``rep``) and PEP WAC (``pep_wac``) events.

SPEC section 5: Signature ID ``Microsoft-AzureStack-PrivilegedEndpoint: <event id>`` (the
source uses this prefix for REP too), Name = the task name, extensions ``Who`` and ``WhichIP``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from azs_syslog.errors import EventError
from azs_syslog.events.common import (
    COMMON_FIELDS,
    LEVEL_SEVERITY,
    Event,
    check_uint,
    finish,
    named_event,
    parse_level,
    require_str,
    unknown_fields,
    wrong_type,
)

SIGNATURE_PREFIX: Final = "Microsoft-AzureStack-PrivilegedEndpoint: "


# From the source's tables: (type, event name, event id, default CEF severity); the task name
# is the event name and "Event".
_ENDPOINT_EVENTS: Final = (
    ("pep", "PrivilegedEndpointAccessed", 1000, 5),
    ("pep", "SupportSessionTokenRequested", 1001, 5),
    ("pep", "SupportSessionDevelopmentTokenRequested", 1002, 5),
    ("pep", "SupportSessionUnlocked", 1003, 10),
    ("pep", "SupportSessionFailedToUnlock", 1004, 10),
    ("pep", "PrivilegedEndpointClosed", 1005, 5),
    ("pep", "NewCloudAdminUser", 1006, 10),
    ("pep", "RemoveCloudAdminUser", 1007, 10),
    ("pep", "SetCloudAdminUserPassword", 1008, 5),
    ("pep", "GetCloudAdminPasswordRecoveryToken", 1009, 10),
    ("pep", "ResetCloudAdminPassword", 1010, 10),
    ("rep", "RecoveryEndpointAccessed", 1011, 5),
    ("rep", "RecoverySessionTokenRequested", 1012, 5),
    ("rep", "RecoverySessionDevelopmentTokenRequested", 1013, 5),
    ("rep", "RecoverySessionUnlocked", 1014, 10),
    ("rep", "RecoverySessionFailedToUnlock", 1015, 10),
    ("rep", "RecoveryEndpointClosed", 1016, 5),
    ("pep", "PrivilegedEndpointSessionTimedOut", 1017, 5),
)


def _events(type_name: str) -> dict[str, tuple[int, str, int]]:
    """event name -> (event id, task name, default CEF severity) of one type."""
    return {
        name: (event_id, f"{name}Event", severity)
        for kind, name, event_id, severity in _ENDPOINT_EVENTS
        if kind == type_name
    }


PEP_EVENTS: Final = _events("pep")
REP_EVENTS: Final = _events("rep")

# The source names the WAC events but gives no ids. Default severity [project]: Error (8) for
# the Failed / Exception / Timeout / InvalidOperation events, Information (2) for the others.
WAC_EVENTS: Final[dict[str, int]] = {
    name: (8 if any(word in name for word in ("Failed", "Exception", "Timeout", "Invalid")) else 2)
    for name in (
        "WACServiceStartFailedEvent",
        "WACConnectedUserNotRetrievedEvent",
        "WACEnableExceptionEvent",
        "WACUserAddedEvent",
        "WACAddUserToLocalGroupFailedEvent",
        "WACIsUserInLocalGroupFailedEvent",
        "WACServiceStartTimeoutEvent",
        "WACServiceStartInvalidOperationEvent",
        "WACGetSidFromUserFailedEvent",
        "WACDisableFirewallFailedEvent",
        "WACCreateLocalGroupIfNotExistFailedEvent",
        "WACEnableFlagIsTrueEvent",
        "WACEnableFlagIsFalseEvent",
        "WACServiceStartedEvent",
    )
}

ENDPOINT_FIELDS: Final = COMMON_FIELDS | {"event", "event_id", "who", "which_ip", "level"}
KEYS: Final = ("Who", "WhichIP")
RESERVED: Final = frozenset({*KEYS, "rt"})


def _who_and_which_ip(obj: Mapping[str, Any]) -> tuple[tuple[str, ...], list[str | int]]:
    """``Who`` and ``WhichIP``: both required; an empty one is left out like any empty value."""
    who = require_str(obj, "who")
    which_ip = require_str(obj, "which_ip")
    if who and which_ip:
        return KEYS, [who, which_ip]
    pairs = [(key, value) for key, value in zip(KEYS, (who, which_ip), strict=True) if value]
    return tuple(key for key, _ in pairs), [value for _, value in pairs]


def _severity(obj: Mapping[str, Any], default: int) -> int:
    if "level" in obj:
        return LEVEL_SEVERITY[parse_level(obj["level"])]
    return default


def _parse_endpoint(obj: Mapping[str, Any], type_name: str) -> Event:
    table = PEP_EVENTS if type_name == "pep" else REP_EVENTS
    unknown_fields(obj, ENDPOINT_FIELDS, type_name)
    entry = None
    if "event" in obj:
        name = obj["event"]
        if type(name) is not str:
            raise wrong_type("event", "a string", name)
        # Either spelling: the name of the table, or with the "Event" suffix that the CEF Name
        # (the task name) and the WAC event names carry.
        entry = table.get(name)
        if entry is None and name.endswith("Event"):
            entry = table.get(name[: -len("Event")])
        if entry is None:
            raise EventError(
                f"unknown {type_name} event {name!r} (expected one of {', '.join(table)})",
                field="event",
            )
    if "event_id" in obj:
        event_id = check_uint("event_id", obj["event_id"])
        by_id = next((e for e in table.values() if e[0] == event_id), None)
        if by_id is None:
            ids = ", ".join(str(e[0]) for e in table.values())
            raise EventError(
                f"unknown {type_name} event id {event_id} (expected one of {ids})",
                field="event_id",
            )
        if entry is not None and entry is not by_id:
            raise EventError(
                f"event id {event_id} is not the id of event {obj['event']!r} ({entry[0]})",
                field="event_id",
            )
        entry = by_id
    if entry is None:
        raise EventError("is required (or event_id)", field="event")
    event_id, task_name, default_severity = entry
    keys, values = _who_and_which_ip(obj)
    event = Event(
        type_name,
        f"{SIGNATURE_PREFIX}{event_id}",
        task_name,
        _severity(obj, default_severity),
        keys,
        values,
    )
    return finish(obj, event, RESERVED)


def parse_pep(obj: Mapping[str, Any]) -> Event:
    return _parse_endpoint(obj, "pep")


def parse_rep(obj: Mapping[str, Any]) -> Event:
    return _parse_endpoint(obj, "rep")


def parse_pep_wac(obj: Mapping[str, Any]) -> Event:
    """Signature ID from ``event_id`` when given, else the event name; Name = the event name;
    Severity from ``level``, else the WAC default above **[project]**."""
    unknown_fields(obj, ENDPOINT_FIELDS, "pep_wac")
    name, default_severity = named_event(obj, WAC_EVENTS, "pep_wac")
    signature = name
    if "event_id" in obj:
        signature = str(check_uint("event_id", obj["event_id"]))
    keys, values = _who_and_which_ip(obj)
    event = Event(
        "pep_wac",
        SIGNATURE_PREFIX + signature,
        name,
        _severity(obj, default_severity),
        keys,
        values,
    )
    return finish(obj, event, RESERVED)
