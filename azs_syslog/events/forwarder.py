"""The forwarder's own events [project]: built by the forwarder, never read from input.

They are ``Event`` objects like every other family, so the one renderer writes them (under the
configuration's message format, facility, CEF version, size limit and framing). They are not
in ``EVENT_TYPES``: ``send-event`` refuses ``"type": "forwarder"``, so no producer can forge an
audit record or a heartbeat. Signature IDs ``Microsoft-AzureStack-Forwarder: <name>``, as the
queue-overflow warning's. docs/cef-mapping.md, "The forwarder's own events", lists the fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from azs_syslog.events.common import Event

TYPE: Final = "forwarder"
SIGNATURE_PREFIX: Final = "Microsoft-AzureStack-Forwarder: "
CONFIGURATION_CHANGED: Final = "ConfigurationChanged"
HEARTBEAT: Final = "Heartbeat"
QUEUE_OVERFLOW: Final = "QueueOverflow"
# A change of configuration is an administrative action worth a look; removing forwarding
# silences the SIEM's view of this host, so it is said louder.
CHANGE_SEVERITY: Final = 5
REMOVE_SEVERITY: Final = 7
HEARTBEAT_SEVERITY: Final = 1
QUEUE_OVERFLOW_SEVERITY: Final = 5

# The sequence extension added to every queued message when --sequence-numbers is on.
SEQUENCE_KEY: Final = "cn1"
SEQUENCE_LABEL: Final = "seq"
STREAM_KEY: Final = "cs1"
STREAM_LABEL: Final = "stream"


def _pairs(
    pairs: Sequence[tuple[str, str | int | None]],
) -> tuple[tuple[str, ...], list[str | int]]:
    """The pairs with a value (an Event's values are never empty)."""
    kept = [(key, value) for key, value in pairs if value is not None and value != ""]
    return tuple(key for key, _ in kept), [value for _, value in kept]


def configuration_changed(
    *,
    command: str,
    user: str,
    host: str,
    message: str,
    before: str,
    after: str,
    changed: str,
    generation: int,
    time_ms: int,
    removed: bool = False,
) -> Event:
    """``Microsoft-AzureStack-Forwarder: ConfigurationChanged``: who changed what, from what
    to what. The values never hold a password or a private key; certificates are named by
    their thumbprints."""
    keys, values = _pairs(
        (
            ("act", command),
            ("suser", user),
            ("dvchost", host),
            ("msg", message),
            ("cs2", changed),
            ("cs2Label", "changed"),
            ("cs4", before),
            ("cs4Label", "before"),
            ("cs5", after),
            ("cs5Label", "after"),
            ("cn2", generation),
            ("cn2Label", "generation"),
        )
    )
    return Event(
        TYPE,
        SIGNATURE_PREFIX + CONFIGURATION_CHANGED,
        CONFIGURATION_CHANGED,
        REMOVE_SEVERITY if removed else CHANGE_SEVERITY,
        keys,
        values,
        time_ms=time_ms,
        host=host,
    )


def heartbeat(
    *,
    host: str,
    time_ms: int,
    queued_events: int,
    oldest_age_s: int | None,
    last_sequence: int | None,
    stream: str | None,
) -> Event:
    """``Microsoft-AzureStack-Forwarder: Heartbeat``: the forwarder is alive and connected;
    the last sequence number sent, the queue depth and the age of the oldest queued event."""
    keys, values = _pairs(
        (
            ("cn2", last_sequence),
            ("cn2Label", "lastSeq" if last_sequence is not None else None),
            ("cs1", stream),
            ("cs1Label", "stream" if stream is not None else None),
            ("cn3", queued_events),
            ("cn3Label", "queueDepth"),
            ("flexNumber1", oldest_age_s),
            ("flexNumber1Label", "oldestQueuedAgeSeconds" if oldest_age_s is not None else None),
            ("msg", "The forwarder is running and connected"),
        )
    )
    return Event(
        TYPE,
        SIGNATURE_PREFIX + HEARTBEAT,
        HEARTBEAT,
        HEARTBEAT_SEVERITY,
        keys,
        values,
        time_ms=time_ms,
        host=host,
    )


def queue_overflow(*, events: int, first_ms: int, last_ms: int, time_ms: int) -> Event:
    """``Microsoft-AzureStack-Forwarder: QueueOverflow``: events were dropped because the queue
    was full: how many (``cnt``) and the acceptance times of the oldest and newest of them
    (``start`` / ``end``, ms since the epoch). Its type, the RFC 5424 MSGID, is its name (as
    the warning has always been sent)."""
    return Event(
        QUEUE_OVERFLOW,
        SIGNATURE_PREFIX + QUEUE_OVERFLOW,
        QUEUE_OVERFLOW,
        QUEUE_OVERFLOW_SEVERITY,
        ("cnt", "start", "end", "msg"),
        [
            events,
            first_ms,
            last_ms,
            f"The forwarder queue was full: {events} events were dropped, the oldest first",
        ],
        time_ms=time_ms,
    )
