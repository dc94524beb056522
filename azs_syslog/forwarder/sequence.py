"""Sequence numbers (``--sequence-numbers``) and the heartbeat (docs/operations.md): each
message numbered at send time, a batch sent again keeps its numbers, a restart resumes after
the highest number delivered; a Heartbeat event every ``--heartbeat-interval`` seconds."""

from __future__ import annotations

import os
from array import array
from collections.abc import Sequence

from azs_syslog.errors import QueueError
from azs_syslog.forwarder.base import WorkerBase
from azs_syslog.forwarder.owed import QueueWrite


class Sequencing(WorkerBase):
    def _init_sequence(self) -> None:
        """The sequence numbers resume after the highest one delivered (a restart numbers
        the batches it sends again as they were numbered, when sent in the same order)."""
        try:
            counts = self.queue.counters()
        except QueueError:
            counts = {}
        self.sequence_confirmed = counts.get("sequence", 0)
        self.sequence_next = self.sequence_confirmed + 1
        stream = counts.get("stream_id", 0) or int.from_bytes(os.urandom(8), "big") >> 1
        self.stream_id = f"{stream:016x}"
        # batch id -> (first number, messages): a batch sent again keeps its numbers.
        self.sequence_ranges: dict[int, tuple[int, int]] = {}
        self.heartbeat_sender: object = None
        self.next_heartbeat = 0.0

    def _sequencing(self) -> bool:
        server = self.config.server if self.config is not None else None
        return bool(server is not None and server.sequence_numbers)

    def _number(
        self, batch_id: int, wire: bytes, lengths: Sequence[int]
    ) -> tuple[bytes, array[int]]:
        """Add the sequence extension to each message of a batch, at send time: numbers
        follow the order on the wire; a batch sent again (after a broken connection) repeats
        its numbers."""
        count = len(lengths)
        known = self.sequence_ranges.get(batch_id)
        if known is not None and known[1] == count:
            first = known[0]
        else:
            first = self.sequence_next
            self.sequence_next += count
            self.sequence_ranges[batch_id] = (first, count)
        framing = self.rendering.settings.framing if self.rendering else "octet-counting"
        return number_messages(wire, lengths, framing, first, self.stream_id)

    def _sequence_delivered(self, ids: Sequence[int]) -> None:
        """Batches delivered: record the highest number delivered (where a restart resumes)."""
        highest = self.sequence_confirmed
        for batch_id in ids:
            numbered = self.sequence_ranges.pop(batch_id, None)
            if numbered is not None:
                highest = max(highest, numbered[0] + numbered[1] - 1)
        if highest > self.sequence_confirmed:
            delta = highest - self.sequence_confirmed
            self.sequence_confirmed = highest
            # An additive counter, so that it travels with the other owed writes on a full
            # disk; a restart resumes numbering after it.
            self._queue_write(QueueWrite("counters", counts=(("sequence", delta),)))

    def _maybe_heartbeat(self, now: float) -> None:
        """Every --heartbeat-interval seconds while connected (and at once on a new
        connection): a Heartbeat event, not queued (a heartbeat that did not go out is the
        hole the SIEM alerts on)."""
        server = self.config.server if self.config is not None else None
        if server is None or not server.heartbeat_interval or self.sender is None:
            return
        if self.heartbeat_sender is self.sender and now < self.next_heartbeat:
            return
        self.heartbeat_sender = self.sender
        self.next_heartbeat = now + server.heartbeat_interval
        message = self._heartbeat_message()
        if message is None:
            return
        self.sender.send(message, [len(message)])
        self.written += len(message)

    def _heartbeat_message(self) -> bytes | None:
        from azs_syslog.events import forwarder

        if self.rendering is None:
            return None
        renderer = self.rendering.renderer
        depth, _ = self._queue_numbers()
        stamp = self.now_ms()
        sequencing = self._sequencing()
        event = forwarder.heartbeat(
            host=renderer.default_host,
            time_ms=stamp,
            queued_events=depth.events,
            oldest_age_s=None
            if depth.oldest_ms is None
            else max(0, stamp - depth.oldest_ms) // 1000,
            last_sequence=self.sequence_next - 1 if sequencing else None,
            stream=self.stream_id if sequencing else None,
        )
        return renderer.render_event(event, stamp)


def number_messages(
    wire: bytes, lengths: Sequence[int], framing: str, first: int, stream: str
) -> tuple[bytes, array[int]]:
    """``wire`` (framed messages of ``lengths``) with ``cn1=<n> cn1Label=seq cs1=<stream>
    cs1Label=stream`` appended to each message (the CEF extensions are the end of a message),
    numbered from ``first``, framed again."""
    out: list[bytes] = []
    new_lengths = array("I")
    offset = 0
    number = first
    suffix = b" cn1Label=seq cs1=" + stream.encode() + b" cs1Label=stream"
    for length in lengths:
        frame = wire[offset : offset + length]
        offset += length
        if framing == "octet-counting":
            message = frame[frame.index(b" ") + 1 :]
        elif framing == "lf":
            message = frame[:-1] if frame.endswith(b"\n") else frame
        else:
            message = frame
        message = b"%b cn1=%d%b" % (message, number, suffix)
        number += 1
        if framing == "octet-counting":
            framed = b"%d %b" % (len(message), message)
        elif framing == "lf":
            framed = message + b"\n"
        else:
            framed = message
        out.append(framed)
        new_lengths.append(len(framed))
    return b"".join(out), new_lengths
