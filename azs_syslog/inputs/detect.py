"""Which format an input is in, and its events as ``(number, record)`` pairs.

``--input-format auto`` (the default) looks at the start of the input: the EVTX magic
``ElfFile\\0``; else, after a BOM and blanks, a tag (``<`` and a name, ``<?`` or ``<!``) for
Event XML; else JSON, which is a PowerShell ``Get-WinEvent`` export when its first object has
``Id`` and ``ProviderName`` and no ``type``, and our own JSON otherwise. Every format yields
what the JSON reader yields (a JSON text, bytes that are not text, or a parsed object), so
validation, rendering and the queue are the same for all of them.

Numbers are line numbers, except for EVTX, where they are the records' EventRecordID.
Damaged parts that are skipped (an EVTX chunk or record, XML that stops being well-formed) are
told to ``on_skip``, one line each; input that must be refused as a whole (an XML entity bomb,
a PowerShell export without its event data) raises ``EventError``.
"""

from __future__ import annotations

import codecs
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Final

from azs_syslog.events.record import Chunk, Record
from azs_syslog.inputs.reader import iter_record_chunks, iter_records
from azs_syslog.inputs.text import Peeked

INPUT_FORMATS: Final = ("auto", "json", "evtx", "xml", "powershell")
Skip = Callable[[str], None]
POWERSHELL_KEYS: Final = frozenset({"Id", "ProviderName"})  # as inputs.powershell.SIGNATURE_KEYS


@dataclass
class OpenedInput:
    """An input's records, as ``chunks`` (see ``inputs.reader.iter_record_chunks``: those read
    together; one record each for every format but JSON in UTF-8) or one by one
    (``records``). Either is read once."""

    format: str  # the format read: json, evtx, xml or powershell
    unit: str  # what the numbers of the records count: "line" or "record"
    chunks: Iterator[Chunk]

    @property
    def records(self) -> Iterator[Record]:
        return itertools.chain.from_iterable(zip(*chunk, strict=True) for chunk in self.chunks)


def one_each(records: Iterator[Record]) -> Iterator[Chunk]:
    """Records as chunks of one record each."""
    for number, record in records:
        yield [number], [record]


def open_input(stream: BinaryIO, input_format: str, on_skip: Skip) -> OpenedInput:
    """Read ``stream`` as ``input_format`` (``auto``: as what it starts with)."""
    peeked = Peeked(stream)
    fmt = input_format
    if fmt == "auto":
        if peeked.is_evtx:
            fmt = "evtx"
        elif _looks_like_xml(peeked.text_start()):
            fmt = "xml"
        else:
            fmt = "json"
    if fmt == "evtx":
        from azs_syslog.inputs.evtx import iter_evtx_chunks, path_of

        path = path_of(stream)
        source: Any = path if path is not None else peeked.raw()
        return OpenedInput("evtx", "record", iter_evtx_chunks(source, on_skip))
    if fmt == "xml":
        from azs_syslog.inputs.event_xml import decode_chunks, iter_xml_events

        chunks = decode_chunks(peeked.raw(), peeked.encoding)
        return OpenedInput("xml", "line", one_each(iter_xml_events(chunks, on_skip)))
    if peeked.encoding == "utf-8":
        found = iter_record_chunks(peeked.blocks())
    else:
        found = one_each(iter_records(peeked.lines()))
    if fmt == "powershell":
        return OpenedInput("powershell", "line", _powershell(found))
    first = next(found, None)
    if first is None:
        return OpenedInput("json", "line", iter(()))
    found = itertools.chain([first], found)
    if input_format == "auto" and _looks_like_powershell(first[1][0]):
        return OpenedInput("powershell", "line", _powershell(found))
    return OpenedInput("json", "line", found)


# What XML starts with: a declaration, a DOCTYPE or comment (refused or read by the XML reader,
# which says when it is not Windows event XML), or an element. A lone "<" or "<3" is no tag: such
# a JSON-lines file stays JSON, and that line is rejected while the others are read.
_XML_START = re.compile(r"\s*<[A-Za-z_?!]")


def _looks_like_xml(text: str) -> bool:
    return _XML_START.match(text) is not None


def _looks_like_powershell(record: object) -> bool:
    """``inputs.powershell.is_powershell_record``, without importing it (and the XML parser
    it brings) for our own JSON."""
    if isinstance(record, str):
        try:
            record = json.loads(record)
        except (ValueError, RecursionError):  # not JSON, or nested too deep: not an export
            return False
    return isinstance(record, dict) and "type" not in record and record.keys() >= POWERSHELL_KEYS


def _powershell(chunks: Iterator[Chunk]) -> Iterator[Chunk]:
    return one_each(_powershell_records(OpenedInput("json", "line", chunks).records))


def _powershell_records(records: Iterator[Record]) -> Iterator[Record]:
    from azs_syslog.errors import EventError
    from azs_syslog.inputs.powershell import event_from_powershell

    for line, record in records:
        obj: object = record
        if isinstance(record, str):
            try:
                obj = json.loads(record)
            except (ValueError, RecursionError):
                yield line, record  # the renderer rejects it, saying why
                continue
        if not isinstance(obj, dict):
            yield line, record
            continue
        try:
            yield line, event_from_powershell(obj)
        except EventError as exc:
            exc.line = line
            raise


def is_plain_json_lines(path: Path) -> bool:
    """Whether the file at ``path`` is our JSON (lines) in UTF-8 without a BOM: neither EVTX,
    XML, UTF-16, nor a PowerShell export. An unreadable file counts as plain (the caller
    reports it)."""
    try:
        with path.open("rb") as stream:
            peeked = Peeked(stream)
            if peeked.is_evtx or peeked.head[:3] == codecs.BOM_UTF8 or peeked.encoding != "utf-8":
                return False
            if peeked.text_start().lstrip()[:1] not in ("{", ""):
                return False
            chunk = next(iter_record_chunks(peeked.blocks()), None)
            first = (chunk[0][0], chunk[1][0]) if chunk else None
    except OSError:
        return True
    return first is None or not _looks_like_powershell(first[1])
