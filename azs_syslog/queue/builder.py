"""Building a batch: rendered events gathered with their raw lines (``BatchBuilder``), and
the events of a chunk rendered together (``Run``), which ``batching.Enqueuer`` hands over."""

from __future__ import annotations

from array import array
from itertools import repeat
from typing import Protocol, cast

from azs_syslog.queue import NewBatch
from azs_syslog.queue.committer import PendingBatch


class LineRenderer(Protocol):
    """What ingest needs of ``render.Renderer``."""

    truncated: int

    def render_line(self, line: str | bytes, accepted_ms: int) -> bytes | None: ...


class BatchBuilder:
    """Accumulates rendered events for one batch.

    ``generation`` and ``level`` are the configuration generation the renderer's settings
    come from and the security level configured at acceptance; every batch records them, so
    the worker never sends it under an older configuration or a weaker transport.
    """

    def __init__(
        self, renderer: LineRenderer, render_key: str, *, generation: int = 0, level: int = 0
    ) -> None:
        self.renderer = renderer
        self.render_key = render_key
        self.generation = generation
        self.level = level
        self._wire: list[bytes] = []
        self._lengths = array("I")
        # The accepted lines: bytes, or text encoded when the batch is taken (in one go).
        self._raw: list[str | bytes] = []
        self._times = array("q")
        self.nbytes = 0
        self.truncated = 0  # of the events added since the last take

    def __len__(self) -> int:
        return len(self._raw)

    @property
    def created_ms(self) -> int | None:
        return self._times[0] if self._times else None

    def add(self, line: str | bytes, accepted_ms: int) -> None:
        """Render and add one line; raises ``EventError`` (and adds nothing) when invalid."""
        renderer = self.renderer
        truncated = renderer.truncated
        try:
            framed = renderer.render_line(line, accepted_ms)
        finally:
            self.truncated += renderer.truncated - truncated
        if framed is not None:
            self._wire.append(framed)
            self._lengths.append(len(framed))
            self.nbytes += len(framed)
        raw = line.encode("utf-8") if isinstance(line, str) else line
        self._raw.append(raw)
        self._times.append(accepted_ms)
        self.nbytes += len(raw) + 12

    def extend(self, run: Run, accepted_ms: int) -> None:
        """Add events rendered together (``Run``), accepted at ``accepted_ms``."""
        wire = [framed for framed in run.framed if framed is not None]
        self._wire += wire
        self._lengths.extend(map(len, wire))
        self._raw += run.lines
        self._times.extend(repeat(accepted_ms, len(run.lines)))
        self.nbytes += run.nbytes
        self.truncated += run.truncated

    def take(self) -> tuple[NewBatch | None, int]:
        """The batch built so far and the number of events truncated while building it;
        the builder starts over."""
        pending, truncated = self.take_pending()
        return (pending.seal() if pending is not None else None), truncated

    def take_pending(self) -> tuple[PendingBatch | None, int]:
        """As :meth:`take`, the batch not yet joined and compressed (``PendingBatch.seal``:
        the committing thread does it)."""
        truncated = self.truncated
        batch = None
        if self._raw:
            batch = PendingBatch(
                self.render_key,
                self._wire,
                self._lengths,
                self._raw,
                self._times,
                generation=self.generation,
                level=self.level,
            )
        self._wire = []
        self._lengths = array("I")
        self._raw = []
        self._times = array("q")
        self.nbytes = 0
        self.truncated = 0
        return batch, truncated


class Run:
    """Lines rendered together, outside the lock (``Enqueuer.feed``): their numbers, the
    lines, their framed messages (None: filtered out), how many were truncated, and the
    bytes they add to a batch (as ``BatchBuilder.nbytes`` counts them)."""

    __slots__ = ("framed", "lines", "nbytes", "numbers", "truncated")

    def __init__(
        self,
        numbers: list[int],
        lines: list[str | bytes],
        framed: list[bytes | None],
        truncated: int = 0,
    ) -> None:
        self.numbers = numbers
        self.lines = lines
        self.framed = framed
        self.truncated = truncated
        wire = sum(map(len, filter(None, framed)))
        try:
            ascii_only = all(map(str.isascii, cast(list[str], lines)))
        except TypeError:  # bytes among them
            ascii_only = False
        raw = sum(map(len, lines if ascii_only else map(_encoded, lines)))
        self.nbytes = wire + raw + 12 * len(lines)

    def filling(self, room: int, bytes_room: int) -> int:
        """How many of the first events fill a batch that has room for ``room`` events and
        ``bytes_room`` bytes (as the batch is filled one event at a time: up to and with the
        one that reaches either bound)."""
        total = 0
        for count, (line, framed) in enumerate(zip(self.lines, self.framed, strict=True), 1):
            total += len(_encoded(line)) + 12 + (len(framed) if framed is not None else 0)
            if count >= room or total >= bytes_room:
                return count
        return len(self.lines)

    def split(self, count: int) -> tuple[Run, Run]:
        """The first ``count`` events and the others. Which of the run were truncated is not
        known: the count goes with the first part."""
        return (
            Run(self.numbers[:count], self.lines[:count], self.framed[:count], self.truncated),
            Run(self.numbers[count:], self.lines[count:], self.framed[count:]),
        )


def _encoded(line: str | bytes) -> bytes:
    return line.encode("utf-8") if isinstance(line, str) else line
