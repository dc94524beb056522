"""The event types of SPEC section 5: JSON -> a validated ``Event``, one module per family.

``parse_event(obj)`` validates one JSON object and maps it onto the CEF fields; ``parse_line``
does the same for the JSON text of one object; ``Record`` is what an input yields for one
event (``azs_syslog.inputs.reader.iter_records`` reads "JSON or JSON lines").
Every rejection is an ``EventError`` naming the field (the caller sets ``.line``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from azs_syslog.errors import EventError
from azs_syslog.events.alert import parse_alert
from azs_syslog.events.arm import parse_arm
from azs_syslog.events.bcdr import parse_bcdr
from azs_syslog.events.common import Event, Parser, json_type_name
from azs_syslog.events.endpoint import parse_pep, parse_pep_wac, parse_rep
from azs_syslog.events.fault import parse_infrastructure_fault, parse_service_fault
from azs_syslog.events.record import MAX_LINE_BYTES, Record, too_long_size
from azs_syslog.events.windows import parse_windows

__all__ = [
    "EVENT_TYPES",
    "Event",
    "Record",
    "load_json",
    "parse_event",
    "parse_line",
]

# "type" -> the parser of that family. The order is SPEC section 5's.
EVENT_TYPES: Final[dict[str, Parser]] = {
    "pep": parse_pep,
    "rep": parse_rep,
    "pep_wac": parse_pep_wac,
    "windows": parse_windows,
    "alert": parse_alert,
    "arm": parse_arm,
    "bcdr": parse_bcdr,
    "infrastructure_fault": parse_infrastructure_fault,
    "service_fault": parse_service_fault,
}


def parse_event(obj: Mapping[str, Any]) -> Event:
    """Validate one event object and map it onto CEF (SPEC section 5)."""
    if type(obj) is not dict:
        raise EventError(f"an event must be a JSON object, not {json_type_name(obj)}")
    kind = obj.get("type")
    parser = EVENT_TYPES.get(kind) if type(kind) is str else None
    if parser is None:
        if "type" not in obj:
            raise EventError("is required but missing", field="type")
        if type(kind) is not str:
            raise EventError(f"must be a string, not {json_type_name(kind)}", field="type")
        raise EventError(
            f"unknown event type {kind!r} (expected one of {', '.join(EVENT_TYPES)})",
            field="type",
        )
    return parser(obj)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_json(line: str | bytes) -> Any:
    """``json.loads`` (strict: no NaN / Infinity) with its errors turned into an
    ``EventError``."""
    try:
        return json.loads(line, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise EventError("is not valid UTF-8") from None
    except ValueError as exc:
        size = too_long_size(line)
        if size is not None:
            raise EventError(
                f"a line of {size:,} bytes, longer than the {MAX_LINE_BYTES:,} allowed: not read"
            ) from None
        raise EventError(f"invalid JSON: {exc}") from None
    except RecursionError:
        raise EventError("invalid JSON: nested too deeply") from None


def parse_line(line: str | bytes) -> Event:
    """Parse and validate the JSON text of one event."""
    return parse_event(load_json(line))
