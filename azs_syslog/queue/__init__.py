"""The durable queue: an embedded SQLite database of *batches* of rendered events.

One row holds one batch (up to a few thousand events): the framed syslog messages ready to
write (``wire``), the length of each (``lengths``, so UDP can send one datagram per message),
the ``RenderSettings.key`` they were rendered under, and the accepted input lines with their
acceptance times (``raw``, compressed: a few percent of the messages' size), so that the
worker can render the batch again when the settings changed before it was sent. A batch also
records the configuration generation it was rendered for and the security level of the
transport configured when it was accepted (``generation``, ``level``; see ``config.Config``),
and, once the operator ran ``forwarder release-held``, the lower level they allowed it to be
sent at (``released_level``).

Schema versions: 1 had no ``generation`` / ``level`` / ``released_level``; a version-1 queue is
migrated in place when opened (the columns are added with their defaults: generation 0, level
0, i.e. what the batches were sent under before levels existed). 2 stored the raw lines
uncompressed; 3 compresses them (``encode_raw``), and still reads the batches of 2 as they are.

Durability. The database is in WAL mode. Connections that *accept* events (``send-event``,
the worker's socket input) use ``synchronous=FULL``: every commit fsyncs the WAL before it
returns, so "accepted" (exit 0, an ``ok`` on the socket) holds after ``kill -9`` *and* after a
power loss or an OS crash. The worker's own bookkeeping (``mark_sent``, ``confirm``) runs with
``synchronous=NORMAL``: losing its last commits in an OS crash only means a batch is sent again
(at-least-once allows duplicates), never that one is lost. SQLite's atomic commit guarantees
that a writer killed mid-append leaves its batch either wholly present or wholly absent.

Concurrency. Any number of writer processes and one reader (the worker) share the file. Each
write is one ``BEGIN IMMEDIATE`` transaction with a busy timeout, so writers queue up behind
each other instead of failing.

Bound. The queue holds at most ``max_events`` events and ``max_bytes`` bytes (wire + raw, as
stored). An append that would exceed it first deletes the oldest batches; their events are
added to the persistent ``dropped`` counter and to a pending *gap* (count and time range),
which the worker reports once, as one warning event, when delivery resumes. A single batch
larger than the whole bound is still stored (after everything older was dropped): the bound
is exceeded by at most one batch rather than an accepted batch being thrown away unseen.

The row layout puts the small columns first and ``raw`` last, so reading a batch to send it
never touches the pages of its raw lines; whether a batch is in flight lives in a separate
small table, so marking it never rewrites its blobs.
"""

from __future__ import annotations

from azs_syslog.queue.append import Appending
from azs_syslog.queue.counters import Counting
from azs_syslog.queue.records import (
    COUNTERS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_EVENTS,
    MAX_BYTES_ENV,
    MAX_EVENTS_ENV,
    OTHER_BUSY_TIMEOUT_MS,
    Depth,
    Gap,
    Held,
    NewBatch,
    QueuedBatch,
    QueueLimits,
    decode_raw,
    encode_raw,
    lengths_from_bytes,
    lengths_to_bytes,
    now_ms,
)
from azs_syslog.queue.schema import SCHEMA_VERSION
from azs_syslog.queue.settle import Settling

__all__ = [
    "COUNTERS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_EVENTS",
    "MAX_BYTES_ENV",
    "MAX_EVENTS_ENV",
    "OTHER_BUSY_TIMEOUT_MS",
    "SCHEMA_VERSION",
    "Depth",
    "Gap",
    "Held",
    "NewBatch",
    "Queue",
    "QueueLimits",
    "QueuedBatch",
    "decode_raw",
    "encode_raw",
    "lengths_from_bytes",
    "lengths_to_bytes",
    "now_ms",
]


class Queue(Appending, Settling, Counting):
    """A connection to the durable queue. Not thread-safe: one per thread.

    ``durable=True`` (the default, for producers) makes every commit survive an OS crash;
    the worker opens its bookkeeping connection with ``durable=False`` (see the module doc).
    """
