"""Queue writes owed while the queue cannot be written (a full disk): the record of one, and
their compact form in the status file, which the next run writes first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from azs_syslog.forwarder.snapshot import OwedSegment
from azs_syslog.queue import Gap, now_ms


@dataclass(frozen=True)
class QueueWrite:
    """A write of the worker's bookkeeping to the queue, kept in memory (in order) while the
    queue cannot be written, and written when it can."""

    kind: str  # "requeue" (at_ms -1: at start), "mark", "confirm", "counters", "clear_gap"
    ids: tuple[int, ...] = ()
    sent: int = 0
    filtered: int = 0
    counts: tuple[tuple[str, int], ...] = ()
    gap: Gap | None = None
    at_ms: int = 0


MAX_OWED_RANGES = 1000  # per kind and segment, in the status file (ids are mostly contiguous)


def _ranges(ids: set[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for batch_id in sorted(ids):
        if out and out[-1][1] == batch_id - 1:
            out[-1][1] = batch_id
        else:
            out.append([batch_id, batch_id])
    return out


def _ids(ranges: object) -> tuple[int, ...]:
    out: list[int] = []
    if isinstance(ranges, list):
        for item in ranges:
            if isinstance(item, list) and len(item) == 2 and all(isinstance(i, int) for i in item):
                out.extend(range(item[0], item[1] + 1))
    return tuple(out)


def owed_summary(backlog: Sequence[QueueWrite]) -> list[OwedSegment]:
    """The owed queue writes, compacted for the status file: between two requeues, the order
    of marks, deletions and counter updates does not change the result, so each stretch is
    one segment of id ranges and sums."""
    segments: list[OwedSegment] = []
    marked: set[int] = set()
    delivered: set[int] = set()
    sums: dict[str, int] = {}

    def close() -> None:
        if not (marked or delivered or sums):
            return
        marks, deliveries = _ranges(marked), _ranges(delivered)
        if len(marks) <= MAX_OWED_RANGES and len(deliveries) <= MAX_OWED_RANGES:
            segments.append({"marked": marks, "delivered": deliveries, "sums": dict(sums)})
        else:
            segments.append({"incomplete": True})  # too scattered to keep: documented
        marked.clear()
        delivered.clear()
        sums.clear()

    for write in backlog:
        if write.kind == "requeue":
            close()
            segments.append({"requeue": True})
        elif write.kind == "mark":
            marked.update(write.ids)
        elif write.kind == "confirm":
            delivered.update(write.ids)
            sums["sent"] = sums.get("sent", 0) + write.sent
            sums["filtered"] = sums.get("filtered", 0) + write.filtered
        elif write.kind == "counters":
            for name, value in write.counts:
                sums[name] = sums.get(name, 0) + value
        elif write.kind == "clear_gap" and write.gap is not None:
            sums["gap_events"] = sums.get("gap_events", 0) + write.gap.events
    close()
    return segments


def owed_writes(segments: Sequence[Mapping[str, object]]) -> list[QueueWrite]:
    """The queue writes an :func:`owed_summary` stands for, in an order that gives the same
    queue."""
    writes: list[QueueWrite] = []
    for segment in segments:
        if not isinstance(segment, dict):
            continue
        if segment.get("requeue"):
            writes.append(QueueWrite("requeue"))
            continue
        sums = segment.get("sums") if isinstance(segment.get("sums"), dict) else {}
        assert isinstance(sums, dict)
        number = {k: int(v) for k, v in sums.items() if isinstance(v, int)}
        marked = _ids(segment.get("marked"))
        if marked:
            writes.append(QueueWrite("mark", ids=marked, at_ms=now_ms()))
        delivered = _ids(segment.get("delivered"))
        if delivered:
            writes.append(
                QueueWrite(
                    "confirm",
                    ids=delivered,
                    sent=number.pop("sent", 0),
                    filtered=number.pop("filtered", 0),
                )
            )
        gap_events = number.pop("gap_events", 0)
        number.pop("sent", None)
        number.pop("filtered", None)
        if number:
            writes.append(QueueWrite("counters", counts=tuple(sorted(number.items()))))
        if gap_events:
            writes.append(QueueWrite("clear_gap", gap=Gap(gap_events, 0, 0)))
    return writes
