"""What an input hands on for one event: ``(line number, record)``.

The record is the JSON text of one object (``str``), an already parsed object (``dict``), or,
when a line of a binary input is not UTF-8, the raw ``bytes`` of that line (rejected with a
message by whoever renders it). The inputs (``azs_syslog.inputs``) yield records; the renderer
and the queue's producer take them.
"""

from __future__ import annotations

from typing import Any

Record = tuple[int, "str | bytes | dict[str, Any]"]
# Records read together (``inputs.reader.iter_record_chunks``), in two lists: their numbers
# and the records themselves.
Chunk = tuple[list[int], list["str | bytes | dict[str, Any]"]]
