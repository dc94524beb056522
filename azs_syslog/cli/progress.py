"""A progress display for long imports (``send-event`` / ``format-event`` on a file).

Drawn on stderr only when stderr is a terminal, and only for a file (its size tells how far the
import has come); nothing otherwise, so scripts and logs see exactly what they saw before.
rich is imported only when the display is drawn. The final summary line is not part of it.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_EVERY: int = 256  # records between two updates: the display costs nothing per record


class ImportProgress:
    """Counts what an import has done and shows it. ``rejected`` and ``skipped`` are set by
    the command; ``track`` counts the records as they are read."""

    def __init__(self, label: str, total: int, position: Callable[[], int] | None) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        from azs_syslog.cli.output import console

        self.rejected = 0
        self.skipped = 0
        self.records = 0
        self._position = position
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[records]:,} records, {task.fields[rate]:,.0f}/s"),
            TextColumn("rejected {task.fields[rejected]}, skipped {task.fields[skipped]}"),
            TimeRemainingColumn(),
            console=console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task(
            label, total=total, records=0, rate=0.0, rejected=0, skipped=0
        )

    def track(self, records: Iterator[T], size: Callable[[T], int] | None = None) -> Iterator[T]:
        """``records`` (or chunks of ``size`` records each), counted; the display is drawn
        while they are read, and taken away (``transient``) when they end, so the summary line
        stands alone."""
        self._progress.start()
        try:
            for record in records:
                before = self.records
                self.records += 1 if size is None else size(record)
                if self.records // _EVERY != before // _EVERY:
                    self.update()
                yield record
        finally:
            self._progress.stop()

    def start(self) -> None:
        """Draw the display (for a caller that counts itself: :meth:`show`)."""
        self._progress.start()

    def stop(self) -> None:
        self._progress.stop()

    def show(self, done: int, records: int, rejected: int, skipped: int) -> None:
        """Show counts made elsewhere (``send-event --jobs``: the producers' sums)."""
        self.records, self.rejected, self.skipped = records, rejected, skipped
        self._position = lambda: done
        self.update()

    def update(self) -> None:
        task = self._progress.tasks[0]
        elapsed = task.elapsed or 0.0
        done = self._position() if self._position is not None else self.records
        self._progress.update(
            self._task,
            completed=done,
            records=self.records,
            rate=self.records / elapsed if elapsed > 0 else 0.0,
            rejected=self.rejected,
            skipped=self.skipped,
        )


def progress_for(source: str, stream: Any, input_format: str) -> ImportProgress | None:
    """A progress display for reading ``source`` (a file) through ``stream`` (None: the
    caller says how far it is, in bytes of the file or records of an ``.evtx`` file:
    ``ImportProgress.show``), or ``None`` when stderr is not a terminal or the input is not a
    regular file."""
    if source == "-" or not sys.stderr.isatty() or os.environ.get("TERM") == "dumb":
        return None
    path = Path(source)
    try:
        size = path.stat().st_size
    except OSError:
        return None
    if not path.is_file() or size == 0:
        return None
    records = _evtx_records(path) if input_format in ("auto", "evtx") else None
    if records is not None:
        return ImportProgress(path.name, records, None)
    return ImportProgress(path.name, size, _tell(stream) if stream is not None else None)


def _tell(stream: Any) -> Callable[[], int] | None:
    def position() -> int:
        try:
            return int(stream.tell())
        except (OSError, ValueError):
            return 0

    return position


def _evtx_records(path: Path) -> int | None:
    """How many records an ``.evtx`` file numbers (from its headers), or None if it is none:
    the file is read by its path, not through the stream, so records, not bytes, tell how far it
    is."""
    try:
        with path.open("rb") as handle:
            header = handle.read(32)
            handle.seek(4096 + 8)
            first = handle.read(8)
    except OSError:
        return None
    if not header.startswith(b"ElfFile\x00") or len(header) < 32 or len(first) < 8:
        return None
    (next_record,) = struct.unpack_from("<Q", header, 24)
    (first_record,) = struct.unpack("<Q", first)
    total = int(next_record) - int(first_record)
    return total if 0 < total < 1 << 40 else None
