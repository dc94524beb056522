"""BCDR events (``"type": "bcdr"``): manual infrastructure-backup operations, SPEC section 5.

**[project]** mapping: Signature ID ``Microsoft-AzureStack-BCDR: <event>``, Name = the event,
Severity 5 (manual administrative changes to backups), the event's fields as extensions under
their own names, in the source's order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from azs_syslog.events.common import (
    COMMON_FIELDS,
    Event,
    add_text,
    finish,
    float_text,
    named_event,
    unknown_fields,
    wrong_type,
)

SIGNATURE_PREFIX: Final = "Microsoft-AzureStack-BCDR: "
SEVERITY: Final = 5

# Field kinds: what JSON types each field takes.
_INT_OR_STR: Final = "a number or a string"
_BOOL: Final = "a boolean"
_STR: Final = "a string"

# event -> its fields (in order) and their kinds, from the source's schemas.
BCDR_EVENTS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "AuditingManualBackup": (),
    "AuditingConfig": (
        ("Interval", _INT_OR_STR),
        ("Retention", _INT_OR_STR),
        ("IsSchedulerEnabled", _BOOL),
        ("BackupPath", _STR),
    ),
    "AuditingPruneBackupStore": (("IsInternalStore", _BOOL),),
}
ALL_FIELDS: Final = frozenset(f for fields in BCDR_EVENTS.values() for f, _ in fields)
RESERVED: Final = frozenset(ALL_FIELDS | {"rt"})


def _text(field: str, kind: str, value: Any) -> str:
    if kind == _BOOL:
        if type(value) is bool:
            return "true" if value else "false"
    elif kind == _STR:
        if type(value) is str:
            return value
    elif type(value) is str:
        return value
    elif type(value) is int:
        return str(value)
    elif type(value) is float:
        return float_text(field, value)
    raise wrong_type(field, kind, value)


def parse_bcdr(obj: Mapping[str, Any]) -> Event:
    name, fields = named_event(obj, BCDR_EVENTS, "bcdr")
    unknown_fields(obj, COMMON_FIELDS | {"event"} | {f for f, _ in fields}, "bcdr", name)
    keys: list[str] = []
    values: list[str | int] = []
    for field, kind in fields:
        if field in obj:
            add_text(keys, values, field, _text(field, kind, obj[field]))
    event = Event("bcdr", SIGNATURE_PREFIX + name, name, SEVERITY, tuple(keys), values)
    return finish(obj, event, RESERVED)
