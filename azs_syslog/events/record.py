"""What an input hands on for one event: ``(line number, record)``.

The record is the JSON text of one object (``str``), an already parsed object (``dict``), or,
when a line of a binary input is not UTF-8, the raw ``bytes`` of that line (rejected with a
message by whoever renders it). The inputs (``azs_syslog.inputs``) yield records; the renderer
and the queue's producer take them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, AnyStr, Final

Record = tuple[int, "str | bytes | dict[str, Any]"]
# Records read together (``inputs.reader.iter_record_chunks``), in two lists: their numbers
# and the records themselves.
Chunk = tuple[list[int], list["str | bytes | dict[str, Any]"]]

# The records of a file (read as fast as it is parsed: nothing waits for the next one) go on in
# chunks of this many, rendered and queued together.
FILE_CHUNK: Final = 256

# The longest line a record of our JSON may be (send-event, format-event; the worker's socket
# input has its own, smaller limit). The longest syslog message is 64 KiB, so a longer event
# is shortened anyway; a longer line is not read into memory but skipped up to its end and
# rejected with its line number (the inputs hand on ``too_long_line`` in its place, which
# ``events.load_json`` explains). A line that opens a JSON array is read whole: the array is
# one document (``inputs/reader.py``).
MAX_LINE_BYTES: Final = 16 << 20
# Unguessable, so that no input line is taken for it.
_TOO_LONG: Final = "\x00azs-syslog: too long " + os.urandom(8).hex() + " "


def too_long_line(size: int) -> bytes:
    """What an input hands on instead of a line of ``size`` bytes over ``MAX_LINE_BYTES``."""
    return f"{_TOO_LONG}{size}\n".encode()


def read_to_line_end(
    readline: Callable[[int], AnyStr], keep: list[AnyStr] | None = None
) -> tuple[int, bool]:
    """Read on to the end of a line too long, a MiB at a time, with the ``readline(limit)``
    of a file (bytes or text), each piece added to ``keep`` if given: how much was read, and
    whether it ended with a line end (counted in it)."""
    read = 0
    while piece := readline(1 << 20):
        read += len(piece)
        if keep is not None:
            keep.append(piece)
        if piece[-1:] in ("\n", b"\n"):
            return read, True
    return read, False


def too_long_size(line: str | bytes) -> int | None:
    """The size of the line that ``line`` stands for, if it is a ``too_long_line``."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    text = text.strip()
    if text.startswith(_TOO_LONG.strip()) and text[len(_TOO_LONG) - 1 :].strip().isdigit():
        return int(text[len(_TOO_LONG) - 1 :])
    return None


def in_chunks(records: Iterable[Record], size: int = FILE_CHUNK) -> Iterator[Chunk]:
    """Records as chunks of ``size`` (the last one shorter): for a file, not a pipe (whose
    records go on as they arrive: ``inputs.reader.iter_record_chunks``)."""
    numbers: list[int] = []
    items: list[str | bytes | dict[str, Any]] = []
    for number, record in records:
        numbers.append(number)
        items.append(record)
        if len(numbers) >= size:
            yield numbers, items
            numbers, items = [], []
    if numbers:
        yield numbers, items
