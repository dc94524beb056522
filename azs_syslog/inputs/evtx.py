"""``.evtx`` files -> our Windows events, with the ``evtx`` parser (Rust, on PyPI).

The parser renders each record as Event XML, which takes the same mapping as any Event XML
(``inputs/event_xml.py``). A damaged chunk or record does not end the file: the parser skips
it and goes on with the next, and ``on_skip`` is told which one and why.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

from azs_syslog.inputs.event_xml import event_from_element, park_controls, unpark_controls

Skip = Callable[[str], None]

_RECORD_RE: Final = re.compile(r"Failed to parse record number (\d+)")
_CHUNK_RE: Final = re.compile(r"Failed to parse chunk number (\d+)")
_NOISE: Final = (
    "An error occurred while trying to deserialize evtx stream.: ",
    "Failed to parse chunk header: ",
)


def iter_evtx_events(source: str | BinaryIO, on_skip: Skip) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(EventRecordID, our event)`` for each readable record of an ``.evtx`` file (a path,
    or a binary stream read whole)."""
    from xml.etree.ElementTree import ParseError, fromstring

    from evtx import PyEvtxParser

    from azs_syslog.errors import EventError

    target: Any = source if isinstance(source, str) else io.BytesIO(source.read())
    try:
        records = PyEvtxParser(target).records()
    except (RuntimeError, OSError) as exc:
        raise EventError(f"is not a readable EVTX file: {_describe(str(exc), 0)}") from None
    last = 0
    # The records' XML is written by the parser itself (text escaped, no declarations or
    # entities possible), so the fast standard parser reads it; untrusted Event XML files go
    # through defusedxml instead (inputs/event_xml.py).
    while True:
        try:
            record: Any = next(records)
        except StopIteration:
            return
        except RuntimeError as exc:  # the parser's error for a damaged chunk or record
            on_skip(_describe(str(exc), last))
            continue
        last = record["event_record_id"]
        try:
            yield last, event_from_element(fromstring(record["data"]))  # noqa: S314
        except ParseError:  # a control character in the data (XML 1.0 cannot hold it)
            yield (
                last,
                unpark_controls(event_from_element(fromstring(park_controls(record["data"])))),  # noqa: S314
            )


def _describe(message: str, last: int) -> str:
    """One line for a damaged part: which record or chunk, where, and the parser's reason."""
    reason = message.replace("\n", " ")
    for noise in _NOISE:
        reason = reason.replace(noise, "")
    after = f" (after record {last})" if last else " (before the first record)"
    match = _RECORD_RE.search(reason)
    if match is not None:
        detail = reason[match.end() :].lstrip(": ")
        return f"record {match.group(1)} skipped, damaged: {detail}"
    match = _CHUNK_RE.search(reason)
    if match is not None:
        detail = reason[match.end() :].lstrip(": ")
        return f"chunk {match.group(1)}{after} skipped, its records unreadable: {detail}"
    return f"the record after record {last} skipped, damaged: {reason}"


def path_of(stream: object) -> str | None:
    """The file behind ``stream``, when it is a regular file (the parser reads it itself)."""
    name = getattr(stream, "name", None)
    if isinstance(name, str) and Path(name).is_file():
        return name
    return None
