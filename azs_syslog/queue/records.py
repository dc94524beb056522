"""What the queue's modules share: its limits and counters, the raw-line codec, the records
a batch is written and read as (the queue itself is in ``azs_syslog.queue``)."""

from __future__ import annotations

import os
import struct
import time
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from azs_syslog.errors import QueueError

DEFAULT_MAX_EVENTS = 1_000_000
DEFAULT_MAX_BYTES = 1 << 30
OTHER_BUSY_TIMEOUT_MS = 5000
MAX_EVENTS_ENV = "AZS_SYSLOG_QUEUE_MAX_EVENTS"
MAX_BYTES_ENV = "AZS_SYSLOG_QUEUE_MAX_BYTES"

# Persistent counters (the ``counters`` table). ``queued_*`` are the live depth; the others
# only ever grow and are what ``forwarder status`` shows.
COUNTERS = (
    "accepted",  # events durably queued
    "sent",  # messages written to the transport and confirmed
    "filtered",  # events not sent because of OutputSeverity at send time
    "dropped",  # events deleted because the queue was full
    "rejected",  # input lines refused (invalid events)
    "truncated",  # events shortened to the maximum message size
    "resent",  # events sent again after a broken connection or a restart (possible duplicates)
    "rerendered",  # events rendered again because the settings changed before sending
    "released",  # held events the operator let go at a lower security level (release-held)
    "queued_events",
    "queued_bytes",
    "gap_events",  # dropped events not yet reported by a warning event
    "gap_first_ms",
    "gap_last_ms",
    "sequence",  # the highest sequence number delivered (--sequence-numbers)
    "audit_undelivered",  # audit events that could not reach the server they were meant for
)


_RAW_HEADER = struct.Struct("<4sI")
_RAW_MAGIC = b"AZR1"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- the raw lines of a batch ------------------------------------------------------------------


def encode_raw(accepted_ms: Sequence[int], lines: Sequence[bytes]) -> bytes:
    """Pack the accepted input lines and their acceptance times into one compact blob.

    Layout: magic, count, ``count`` int64 times, ``count`` uint32 lengths, the lines.
    """
    if len(accepted_ms) != len(lines):
        raise ValueError("one acceptance time per line")
    times = array("q", accepted_ms)
    sizes = array("I", map(len, lines))
    return b"".join(
        (_RAW_HEADER.pack(_RAW_MAGIC, len(lines)), times.tobytes(), sizes.tobytes(), *lines)
    )


def decode_raw(blob: bytes) -> list[tuple[int, bytes]]:
    """The ``(accepted_ms, line)`` pairs of a blob made by :func:`encode_raw`."""
    magic, count = _RAW_HEADER.unpack_from(blob)
    if magic != _RAW_MAGIC:
        raise QueueError("the queue holds a batch in an unknown format")
    offset = _RAW_HEADER.size
    times = array("q")
    times.frombytes(blob[offset : offset + 8 * count])
    offset += 8 * count
    sizes = array("I")
    sizes.frombytes(blob[offset : offset + 4 * count])
    offset += 4 * count
    view = memoryview(blob)
    out: list[tuple[int, bytes]] = []
    for accepted, size in zip(times, sizes, strict=True):
        out.append((accepted, bytes(view[offset : offset + size])))
        offset += size
    return out


def lengths_to_bytes(lengths: Iterable[int]) -> bytes:
    return array("I", lengths).tobytes()


def lengths_from_bytes(blob: bytes) -> array[int]:
    lengths = array("I")
    lengths.frombytes(blob)
    return lengths


# --- records -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewBatch:
    """A batch about to be appended. ``count`` counts every accepted event, including those
    the severity filter left out of ``wire`` under ``render_key``."""

    count: int
    created_ms: int
    render_key: str
    wire: bytes
    lengths: bytes  # array('I') of each framed message's length in ``wire``
    raw: bytes  # encode_raw(...)
    generation: int = 0  # the configuration generation it was rendered for
    level: int = 0  # the security level configured when it was accepted (config.LEVEL_*)

    @property
    def nbytes(self) -> int:
        return len(self.wire) + len(self.lengths) + len(self.raw)


@dataclass(frozen=True)
class QueuedBatch:
    """A stored batch as the worker reads it (without its raw lines)."""

    id: int
    created_ms: int
    count: int
    nbytes: int
    render_key: str
    lengths: array[int]
    wire: bytes
    generation: int = 0
    level: int = 0
    # The server (``name:port transport``) this batch is meant for, and no other: the
    # forwarder's audit events (audit.py). None for every other batch.
    pinned: str | None = None

    @property
    def messages(self) -> int:
        return len(self.lengths)


@dataclass(frozen=True)
class Depth:
    events: int
    bytes: int
    oldest_ms: int | None  # acceptance time of the oldest queued event


@dataclass(frozen=True)
class Gap:
    """Events dropped because the queue was full and not yet reported."""

    events: int
    first_ms: int
    last_ms: int


@dataclass(frozen=True)
class Held:
    """Batches held because the current security level is lower than the one they were
    accepted under."""

    events: int
    batches: int
    level: int  # the highest level they were accepted under


@dataclass(frozen=True)
class QueueLimits:
    max_events: int = DEFAULT_MAX_EVENTS
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_env(cls) -> QueueLimits:
        """The bound, from ``AZS_SYSLOG_QUEUE_MAX_EVENTS`` / ``AZS_SYSLOG_QUEUE_MAX_BYTES``
        when set [project]. Every process that appends enforces it, so give the worker and
        the producers the same values."""
        values = {}
        for field_name, variable in (
            ("max_events", MAX_EVENTS_ENV),
            ("max_bytes", MAX_BYTES_ENV),
        ):
            text = os.environ.get(variable)
            if text:
                try:
                    value = int(text)
                except ValueError:
                    value = 0
                if value <= 0:
                    raise QueueError(
                        f"{variable}={text!r} is not a positive whole number",
                        fix=f"unset {variable} or give it a positive number",
                    )
                values[field_name] = value
        return cls(**values)
