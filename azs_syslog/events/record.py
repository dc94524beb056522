"""What an input hands on for one event: ``(line number, record)``.

The record is the JSON text of one object (``str``), an already parsed object (``dict``), or,
when a line of a binary input is not UTF-8, the raw ``bytes`` of that line (rejected with a
message by whoever renders it). The inputs (``azs_syslog.inputs``) yield records; the renderer
and the queue's producer take them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

Record = tuple[int, "str | bytes | dict[str, Any]"]
# Records read together (``inputs.reader.iter_record_chunks``), in two lists: their numbers
# and the records themselves.
Chunk = tuple[list[int], list["str | bytes | dict[str, Any]"]]

# The records of a file (read as fast as it is parsed: nothing waits for the next one) go on in
# chunks of this many, rendered and queued together.
FILE_CHUNK: Final = 256


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
