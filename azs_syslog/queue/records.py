"""What the queue's modules share: its limits and counters, the raw-line codec, the records
a batch is written and read as (the queue itself is in ``azs_syslog.queue``)."""

from __future__ import annotations

import os
import struct
import time
import zlib
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
_RAW_MAGIC = b"AZR1"  # the body as is (written before schema version 3; still read)
_RAW_MAGIC_ZLIB = b"AZR2"  # the body compressed with zlib
# zlib's fastest level: the lines of a batch are alike (the same keys, mostly the same values),
# so it already brings them to a few percent of their size, at a fraction of a render's cost.
_RAW_ZLIB_LEVEL = 1


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- the raw lines of a batch ------------------------------------------------------------------


def encode_raw(accepted_ms: Sequence[int], lines: Sequence[str | bytes]) -> bytes:
    """Pack the accepted input lines and their acceptance times into one compact blob.

    Layout: magic, count, then compressed with zlib: ``count`` int64 times, ``count`` uint32
    lengths, the lines (a line given as text, UTF-8 encoded). The raw lines are kept only so
    the worker can render a batch again under new settings: compressed, they add a few
    percent to the framed messages instead of doubling what the queue holds (and its bound
    counts what is on disk).
    """
    if len(accepted_ms) != len(lines):
        raise ValueError("one acceptance time per line")
    # Encoded one by one: joining the texts first would take two more large buffers, whose
    # fresh pages cost more than the calls (measured).
    encoded = [line.encode("utf-8") if isinstance(line, str) else line for line in lines]
    times = array("q", accepted_ms)
    sizes = array("I", map(len, encoded))
    body = b"".join((times.tobytes(), sizes.tobytes(), *encoded))
    return _RAW_HEADER.pack(_RAW_MAGIC_ZLIB, len(lines)) + zlib.compress(body, _RAW_ZLIB_LEVEL)


def decode_raw(blob: bytes, *, strict: bool = False) -> list[tuple[int, bytes]]:
    """The ``(accepted_ms, line)`` pairs of a blob made by :func:`encode_raw` (or by the
    uncompressed layout of earlier versions). ``strict``: raise ``QueueError`` unless the
    lengths account for every byte of the blob (``forwarder repair``'s check of a batch)."""
    magic, count = _RAW_HEADER.unpack_from(blob)
    body: bytes | memoryview
    if magic == _RAW_MAGIC_ZLIB:
        try:
            body = zlib.decompress(memoryview(blob)[_RAW_HEADER.size :])
        except zlib.error as exc:
            raise QueueError(f"the queue holds a damaged batch ({exc})") from exc
    elif magic == _RAW_MAGIC:
        body = memoryview(blob)[_RAW_HEADER.size :]
    else:
        raise QueueError("the queue holds a batch in an unknown format")
    times = array("q")
    times.frombytes(body[: 8 * count])
    offset = 8 * count
    sizes = array("I")
    sizes.frombytes(body[offset : offset + 4 * count])
    offset += 4 * count
    if strict and (len(times) != count or len(sizes) != count or offset + sum(sizes) != len(body)):
        raise QueueError("the queue holds a damaged batch (its lengths do not match its lines)")
    view = memoryview(body)
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
