"""Confirming delivered batches: by the peer's TCP acknowledgement after the replay window, or
(RELP) by the server's answers, including the settling of a RELP session's answered part when
it ends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from azs_syslog.errors import TransportError
from azs_syslog.forwarder.base import WorkerBase
from azs_syslog.forwarder.common import InFlight
from azs_syslog.forwarder.owed import QueueWrite
from azs_syslog.transport.relp import RelpSender

if TYPE_CHECKING:
    pass


class Confirming(WorkerBase):
    def _settle_answered(self, sender: RelpSender, sending: InFlight | None) -> None:
        """RELP, at the end of a session: confirm the batches answered in full, and remember
        how many leading messages of the first unanswered batch were answered, so that exactly
        the unanswered frames are sent again. ``sending`` is the batch a failed send was
        writing (not marked as sent)."""
        answered = sender.acknowledged_bytes()
        done: list[InFlight] = []
        for item in [*self.inflight, *([sending] if sending else [])]:
            if item.end_offset <= answered and item is not sending:
                done.append(item)
                continue
            count = _messages_within(item, answered)
            if count:
                self.answered_part[item.batch_id] = count
            if item is sending:
                # Its frames written and not answered go out again: count them as resent.
                written = sender.written_bytes()
                again = _messages_within(item, written) - count
                if again > 0:
                    self._queue_write(QueueWrite("counters", counts=(("resent", again),)))
                    self.log(f"{again} events written but not answered will be sent again")
            break
        if done:
            del self.inflight[: len(done)]
            ids = tuple(i.batch_id for i in done)
            self.delivered_ids.update(ids)  # until the queue has deleted them: never again
            self._queue_write(
                QueueWrite(
                    "confirm",
                    ids=ids,
                    sent=sum(i.messages for i in done),
                    filtered=sum(i.count - i.messages for i in done),
                )
            )

    def _confirm(self, now: float) -> None:
        if self.sender is None:
            return
        sender = self.sender
        udp = sender.info.transport == "udp"
        if not udp and sender.peer_closed():
            raise TransportError(
                "the server closed the connection",
                step="send",
                cause="closed-by-peer",
                fix="check the server's log; the forwarder reconnects and resends",
            )
        outstanding = sender.unacknowledged_bytes()
        exact = isinstance(sender, RelpSender)  # RELP: answered, not guessed
        delay = 0.0 if udp or exact else self.options.confirm_delay
        done: list[InFlight] = []
        for item in self.inflight:
            # TLS adds bytes, never removes them: when fewer bytes are unacknowledged than
            # plaintext written after this batch, every byte of this batch was acknowledged.
            acknowledged = outstanding <= self.written - item.end_offset
            if not (acknowledged and now - item.sent_at >= delay):
                break
            done.append(item)
        if not self.inflight or not done:
            return
        del self.inflight[: len(done)]
        ids = tuple(i.batch_id for i in done)
        confirm = QueueWrite(
            "confirm",
            ids=ids,
            sent=sum(i.messages for i in done),
            filtered=sum(i.count - i.messages for i in done),
        )
        self.delivered_ids.update(ids)  # until the queue has deleted them: never again
        self._queue_write(confirm)


def _messages_within(item: InFlight, upto: int) -> int:
    """How many leading messages of ``item`` end at or before byte offset ``upto``."""
    part, count = upto - (item.end_offset - item.wire_bytes), 0
    for length in item.lengths:
        if part < length:
            break
        part -= length
        count += 1
    return count
