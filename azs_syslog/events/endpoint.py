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
    parse_level,
    require_str,
    unknown_fields,
    wrong_type,
)

SIGNATURE_PREFIX: Final = "Microsoft-AzureStack-PrivilegedEndpoint: "

# event name -> (event id, task name, default CEF severity), from the source's tables.
PEP_EVENTS: Final[dict[str, tuple[int, str, int]]] = {
    "PrivilegedEndpointAccessed": (1000, "PrivilegedEndpointAccessedEvent", 5),
    "SupportSessionTokenRequested": (1001, "SupportSessionTokenRequestedEvent", 5),
    "SupportSessionDevelopmentTokenRequested": (
        1002,
        "SupportSessionDevelopmentTokenRequestedEvent",
        5,
    ),
    "SupportSessionUnlocked": (1003, "SupportSessionUnlockedEvent", 10),
    "SupportSessionFailedToUnlock": (1004, "SupportSessionFailedToUnlockEvent", 10),
    "PrivilegedEndpointClosed": (1005, "PrivilegedEndpointClosedEvent", 5),
    "NewCloudAdminUser": (1006, "NewCloudAdminUserEvent", 10),
    "RemoveCloudAdminUser": (1007, "RemoveCloudAdminUserEvent", 10),
    "SetCloudAdminUserPassword": (1008, "SetCloudAdminUserPasswordEvent", 5),
    "GetCloudAdminPasswordRecoveryToken": (1009, "GetCloudAdminPasswordRecoveryTokenEvent", 10),
    "ResetCloudAdminPassword": (1010, "ResetCloudAdminPasswordEvent", 10),
    "PrivilegedEndpointSessionTimedOut": (1017, "PrivilegedEndpointSessionTimedOutEvent", 5),
}
REP_EVENTS: Final[dict[str, tuple[int, str, int]]] = {
    "RecoveryEndpointAccessed": (1011, "RecoveryEndpointAccessedEvent", 5),
    "RecoverySessionTokenRequested": (1012, "RecoverySessionTokenRequestedEvent", 5),
    "RecoverySessionDevelopmentTokenRequested": (
        1013,
        "RecoverySessionDevelopmentTokenRequestedEvent",
        5,
    ),
    "RecoverySessionUnlocked": (1014, "RecoverySessionUnlockedEvent", 10),
    "RecoverySessionFailedToUnlock": (1015, "RecoverySessionFailedToUnlockEvent", 10),
    "RecoveryEndpointClosed": (1016, "RecoveryEndpointClosedEvent", 5),
}

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
    name = require_str(obj, "event")
    default_severity = WAC_EVENTS.get(name)
    if default_severity is None:
        raise EventError(
            f"unknown pep_wac event {name!r} (expected one of {', '.join(WAC_EVENTS)})",
            field="event",
        )
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
