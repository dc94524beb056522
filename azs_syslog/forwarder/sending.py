"""Sending batches: the order of the checks on each batch (a newer configuration, a stronger
level, an older configuration, pinned audit events), the gap warning, the held batches."""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from azs_syslog.errors import EventError, QueueError
from azs_syslog.events import forwarder
from azs_syslog.forwarder.base import WorkerBase
from azs_syslog.forwarder.common import (
    FETCH_BATCHES,
    GENERATION_WAIT,
    MAX_INFLIGHT_BATCHES,
    InFlight,
    held_message,
    server_label,
)
from azs_syslog.forwarder.owed import QueueWrite
from azs_syslog.queue import Gap, QueuedBatch
from azs_syslog.queue.ingest import BatchBuilder

SEND, SKIP, WAIT = "send", "skip", "wait"  # what to do with a fetched batch (_verdict)


class Sending(WorkerBase):
    def _send_some(self, now: float) -> bool:
        """Send the next few batches. For each, in this order (docs/architecture.md):
        rendered for a newer configuration than ours -> re-read the configuration and switch
        before sending it (never render it back into ours); accepted under a higher security
        level than ours -> held (the query leaves it out; later batches go on); rendered for
        an older configuration under other settings -> rendered again under ours; else sent
        as rendered."""
        assert self.sender is not None and self.rendering is not None
        assert self.config is not None
        if len(self.inflight) >= MAX_INFLIGHT_BATCHES:
            return False
        gap = None if self.gap_clear_owed else self.queue.pending_gap()
        if gap is not None:
            self._send_gap_warning(gap)
        batches = self.queue.next_batches(
            FETCH_BATCHES,
            after_id=self.last_sent_id,
            level=self.config.security_level,
            generation=self.config.generation,
            stale=self.stale_upto_id,
            # The worker's own bookkeeping says what is in flight (the inflight table may lag
            # behind it when the disk is full).
            include_inflight=True,
        )
        if not batches:
            return False
        sent_ids: list[int] = []  # sent, not yet marked as sent in the queue
        sent_any = False
        inflight_ids = {item.batch_id for item in self.inflight}
        try:
            for batch in batches:
                verdict = self._verdict(batch, inflight_ids, now)
                if verdict == WAIT:
                    break  # switch first (or wait for the file to catch up); keep the order
                if verdict == SKIP:
                    self.last_sent_id = max(self.last_sent_id, batch.id)
                    continue
                self._send_batch(batch, now)
                sent_ids.append(batch.id)
                if self.stop_requested or self.pending is not None:
                    break
                # What the server's TCP acknowledged leaves the replay set now, not after the
                # whole fetch: after a break only the rest is sent again. (Marked as sent
                # first: a batch confirmed here must not be marked in flight afterwards.)
                self._queue_write(QueueWrite("mark", ids=tuple(sent_ids), at_ms=self.now_ms()))
                sent_any = True
                sent_ids.clear()
                self._confirm(self.clock())
        finally:
            if sent_ids:
                self._queue_write(QueueWrite("mark", ids=tuple(sent_ids), at_ms=self.now_ms()))
                sent_any = True
        if sent_any:
            self.counters.last_send_ms = self.now_ms()
        return sent_any or self.pending is not None

    def _verdict(self, batch: QueuedBatch, inflight_ids: set[int], now: float) -> str:
        """SEND the batch, SKIP it (delivered or in flight already; or an audit event pinned
        to another server: discarded), or WAIT (rendered for a newer configuration)."""
        assert self.config is not None
        if batch.id in self.delivered_ids or batch.id in inflight_ids:
            return SKIP
        if (
            batch.generation > self.config.generation
            and batch.id > self.stale_upto_id
            and not self._newer_generation(batch, now)
        ):
            return WAIT
        if batch.pinned is not None and batch.pinned != server_label(self.config.server):
            self._discard_pinned(batch)
            return SKIP
        return SEND

    def _wire_now(self, batch: QueuedBatch) -> tuple[bytes, Sequence[int], bool]:
        """The batch's messages as they go out now, and whether they were rendered again.
        Of our generation or an older one: with the same render key, the same bytes (the key
        covers every setting that shapes them), so sent as they are; else rendered again.
        Numbered when sequence numbers are on."""
        assert self.rendering is not None
        wire: bytes = batch.wire
        lengths: Sequence[int] = batch.lengths
        rerendered = batch.render_key != self.rendering.key
        if rerendered:
            wire, lengths = self._rerender(batch.id, pinned=batch.pinned is not None)
        if self._sequencing():
            wire, lengths = self._number(batch.id, wire, lengths)
        return wire, lengths, rerendered

    def _send_batch(self, batch: QueuedBatch, now: float) -> None:
        """Write one batch (RELP: only what the server did not answer before) and put it in
        flight."""
        assert self.sender is not None
        wire, lengths, rerendered = self._wire_now(batch)
        if rerendered:
            self.answered_part.pop(batch.id, None)
        # Numbered before the answered part is cut off: a resend repeats the numbers.
        answered = self.answered_part.pop(batch.id, 0)
        if answered:  # RELP: only what the server did not answer goes out again
            wire = wire[sum(lengths[:answered]) :]
            lengths = lengths[answered:]
        item = InFlight(
            batch.id,
            batch.count,
            len(lengths) + answered,
            self.written + len(wire),
            now,
            len(wire),
            lengths,
        )
        self._sending = item  # until the send returns (see _settle_answered)
        if wire:
            self.sender.send(wire, lengths)
        self._sending = None
        self.written += len(wire)
        self.last_sent_id = batch.id
        self.inflight.append(item)

    def _newer_generation(self, batch: QueuedBatch, now: float) -> bool:
        """A batch was rendered for configuration ``generation``, newer than ours: re-read
        the configuration now rather than at the next poll. Returns whether the batch may be
        sent now (it is of our generation after all, or the file still holds an older one
        after GENERATION_WAIT: then it counts as older and is rendered again)."""
        assert self.config is not None
        generation = batch.generation
        self.next_config_check = now + self.options.config_poll
        self._check_config()  # sets pending (drain, then switch) or adopts a new generation
        if self.pending is not None:
            return False
        if self.config.generation >= generation:
            self.generation_wait = None
            return True
        if self.generation_wait is None or self.generation_wait[0] != generation:
            self.generation_wait = (generation, now)
            self.log(
                f"events rendered for configuration generation {generation} are queued, but the"
                f" configuration file has generation {self.config.generation}: waiting up to"
                f" {GENERATION_WAIT:.0f} s for it"
            )
        if now - self.generation_wait[1] < GENERATION_WAIT:
            return False
        # The file went back (restored from a backup, or deleted and written again): it is
        # the operator's current intent, so treat the batches queued so far as older than it.
        # By id, not by generation: batches rendered for the file's next writes must still
        # wait for the switch to them.
        self.log(
            f"events rendered for configuration generation {generation} are queued, but the"
            f" configuration file has generation {self.config.generation} (it was restored or"
            " recreated); they are rendered again under the current configuration"
        )
        self.stale_upto_id = max(self.stale_upto_id, batch.id)
        self.generation_wait = None
        return True

    def _check_held(self) -> None:
        """Count the held batches (for the status) and notice a ``release-held``."""
        config = self.config
        if config is None or config.server is None:
            self.held = None  # nothing is sent at all; the status says why
            return
        try:
            released = self.queue.counters().get("released", 0)
            held = self.queue.held(
                config.security_level, config.generation, stale=self.stale_upto_id
            )
        except QueueError:
            return  # an auxiliary look: the delivery path meets and reports the same problem
        if self.released_seen is not None and released != self.released_seen:
            # Released batches lie behind the send cursor: look at the queue from the start
            # (batches in flight are excluded by the query, so nothing is sent twice).
            self.last_sent_id = 0
        self.released_seen = released
        previous = self.held.events if self.held else 0
        self.held = held if held.events else None
        if held.events and held.events != previous:
            self.log(held_message(held.events, held.level, config))

    def _rerender(self, batch_id: int, *, pinned: bool = False) -> tuple[bytes, array[int]]:
        """Render a batch again from its raw lines under the current settings (a batch
        rendered for an older configuration: never one rendered for a newer one)."""
        assert self.rendering is not None
        raw = self.queue.load_raw(batch_id) or []
        if pinned:
            return self._rerender_audit(raw)
        builder = BatchBuilder(self.rendering.renderer, self.rendering.key)
        rejected = 0
        for accepted_ms, line in raw:
            try:
                builder.add(line, accepted_ms)
            except EventError:
                rejected += 1  # valid when accepted; cannot happen unless the rules changed
        batch, truncated = builder.take()
        counts = (("rerendered", len(raw)), ("rejected", rejected), ("truncated", truncated))
        self._queue_write(QueueWrite("counters", counts=counts))
        if batch is None:
            return b"", array("I")
        lengths = array("I")
        lengths.frombytes(batch.lengths)
        return batch.wire, lengths

    def _send_gap_warning(self, gap: Gap) -> None:
        """The QueueOverflow warning: events dropped because the queue was full, rendered
        under the current settings like every message (events.forwarder.queue_overflow)."""
        assert self.sender is not None and self.rendering is not None
        stamp = self.now_ms()
        event = forwarder.queue_overflow(
            events=gap.events, first_ms=gap.first_ms, last_ms=gap.last_ms, time_ms=stamp
        )
        message = self.rendering.renderer.render_event(event, stamp) or b""
        self.sender.send(message, [len(message)])
        self.written += len(message)
        if not self._queue_write(QueueWrite("clear_gap", gap=gap)):
            self.gap_clear_owed = True  # reported: not again before the queue knows it
        self.counters.gap_warnings += 1

    # --- the audit trail, sequence numbers and the heartbeat (docs/operations.md)

    def _discard_pinned(self, batch: QueuedBatch) -> None:
        """A pinned batch (an audit event meant for one server) while another server is
        configured: never sent elsewhere; deleted and counted."""
        try:
            self.queue.discard([batch.id])
        except QueueError as exc:
            self._queue_failed(exc)
            return
        self.log(
            f"an audit event (ConfigurationChanged) meant for {batch.pinned} could not be sent"
            " to it: that server is no longer configured (the forwarder was not connected, or"
            " not running, when it changed)"
        )

    def _rerender_audit(self, raw: list[tuple[int, bytes]]) -> tuple[bytes, array[int]]:
        """An audit event meant for this server, rendered for other settings of it: rendered
        again from the event's record (its raw line)."""
        import json

        from azs_syslog.events import forwarder

        assert self.rendering is not None
        wire = b""
        lengths = array("I")
        for accepted_ms, line in raw:
            try:
                event = forwarder.configuration_changed(**json.loads(line))
            except (ValueError, TypeError):
                continue  # not a record this release wrote: nothing to render
            message = self.rendering.renderer.render_event(event, accepted_ms)
            if message:
                wire += message
                lengths.append(len(message))
        return wire, lengths

    def _discard_stale_pinned(self) -> None:
        """Once a configuration is in force, the audit events pinned to other servers can no
        longer reach them: said now (the command that queued one may be waiting)."""
        if self.config is None or self.queue.read_only:
            return
        try:
            ids = self.queue.pinned_ids(
                self.config.generation, server_label(self.config.server), other=True
            )
            if ids:
                self.queue.discard(ids)
        except QueueError as exc:
            self._queue_failed(exc)
            return
        if ids:
            self.log(
                f"{len(ids)} audit event{'s' if len(ids) != 1 else ''} (ConfigurationChanged)"
                " could not be sent to the server they were meant for: it is no longer"
                " configured (the forwarder was not connected, or not running, when it changed)"
            )

    def _send_pinned(self, now: float) -> None:
        """Before switching to a new configuration: send the pinned batches of the current
        one (the audit events announcing the change) to the current server, ahead of
        anything still queued for it; the drain then waits for their confirmation."""
        assert self.config is not None and self.sender is not None
        inflight_ids = {item.batch_id for item in self.inflight}
        try:
            ids = self.queue.pinned_ids(self.config.generation, server_label(self.config.server))
        except QueueError:
            return
        sent_ids: list[int] = []
        try:
            for batch_id in ids:
                if batch_id in inflight_ids or batch_id in self.delivered_ids:
                    continue
                found = self.queue.next_batches(1, after_id=batch_id - 1, include_inflight=True)
                if not found or found[0].id != batch_id:
                    continue
                batch = found[0]
                wire, lengths, _ = self._wire_now(batch)
                self._io = "send"
                try:
                    self.sender.send(wire, lengths)
                finally:
                    self._io = None
                self.written += len(wire)
                sent_ids.append(batch.id)
                self.inflight.append(
                    InFlight(batch.id, batch.count, len(lengths), self.written, now)
                )
        finally:
            if sent_ids:
                self._queue_write(QueueWrite("mark", ids=tuple(sent_ids), at_ms=self.now_ms()))
                self.counters.last_send_ms = self.now_ms()
