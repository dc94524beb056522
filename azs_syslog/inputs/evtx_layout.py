"""Reading a record's Event XML as the ``evtx`` parser writes it: our Windows event.

The parser writes every record's XML in one layout of its own (a declaration, two-space
indentation, one element per line, text escaped with the five XML entities), so a record in
that layout is read with a few regular-expression scans instead of an XML parser and a walk
over its elements: the same fields as ``event_from_element``, checked against it on every
fixture record (tests/test_evtx_fast.py). A record with anything else in it (another entity, a
self-closing or prefixed element, ``RenderingInfo``, an element with text and children, control
characters) takes the XML parser (:func:`slow_event`), that record only. Built, the C
``evtx_json`` (encode/_speedups_evtx.c) reads the usual layout first: same bytes, ~9x faster.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from azs_syslog.inputs.event_xml import (
    FIELD_ORDER,
    event_from_element,
    normalize_guid,
    normalize_keywords,
    normalize_time,
    park_controls,
    system_attributes,
    unpark_controls,
)


def slow_event(data: str) -> dict[str, Any]:
    """Our event from a record's XML, by the XML parser (any layout)."""
    from xml.etree.ElementTree import ParseError, fromstring

    try:
        return event_from_element(fromstring(data))  # noqa: S314
    except ParseError:  # a control character in the data (XML 1.0 cannot hold it)
        return unpark_controls(event_from_element(fromstring(park_controls(data))))  # noqa: S314


# --- the parser's own layout, read without an XML parser ---------------------------------------

_HEAD: Final = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">\n  <System>\n'
)
_SYSTEM_END: Final = "  </System>\n"
_EVENT_END: Final = "</Event>\n"
_EVENT_DATA: Final = ("  <EventData>\n", "  </EventData>\n" + _EVENT_END)
_USER_DATA: Final = ("  <UserData>\n", "  </UserData>\n" + _EVENT_END)
# The System element as the parser writes it for the usual template (each child optional, in
# the template's order), with values that need no more reading: numbers of ASCII digits (or
# blank), texts and attribute values without an entity, a line end or a tab. Any other System
# takes the general reading (``_system``).
_N: Final = "(?:([0-9]+)|\n    )"  # a number, or blank (the parser's empty element)
_T: Final = "([^<&\n]+)"  # a text
_V: Final = '([^"&\n\t]*)'  # an attribute value
_SYSTEM_RE: Final = re.compile(
    f'    <Provider Name="{_V}"(?: Guid="{_V}")?(?: EventSourceName="{_V}")?>\n    </Provider>\n'
    f'    <EventID(?: Qualifiers="[^"]*")?>{_N}</EventID>\n'
    f"(?:    <Version>{_N}</Version>\n)?"
    f"(?:    <Level>{_N}</Level>\n)?"
    f"(?:    <Task>{_N}</Task>\n)?"
    f"(?:    <Opcode>{_N}</Opcode>\n)?"
    f"(?:    <Keywords>{_T}</Keywords>\n)?"
    f'(?:    <TimeCreated SystemTime="{_V}">\n    </TimeCreated>\n)?'
    f"(?:    <EventRecordID>{_N}</EventRecordID>\n)?"
    f'(?:    <Correlation(?: ActivityID="{_V}")?(?: RelatedActivityID="{_V}")?>\n'
    "    </Correlation>\n)?"
    '(?:    <Execution(?: ProcessID="([0-9]*)")?(?: ThreadID="([0-9]*)")?>\n    </Execution>\n)?'
    f"(?:    <Channel>{_T}</Channel>\n)?"
    f"(?:    <Computer>{_T}</Computer>\n)?"
    f'(?:    <Security(?: UserID="{_V}")?>\n    </Security>\n)?'
)
# EventData as the parser writes it for most records: its Data elements, one a line, each with
# or without a Name, texts and names without an entity or a line end (read as they are).
_DATA_LINE: Final = '    <Data(?: Name="([^"&\n]*)")?>([^<&\n]*)</Data>\n'
_DATA_ITEM: Final = re.compile(_DATA_LINE)
_USUAL_DATA: Final = re.compile(
    re.escape(_EVENT_DATA[0]) + f"((?:{_DATA_LINE})*)" + re.escape(_EVENT_DATA[1])
)
_ATTRIBUTE: Final = re.compile(r'([^\s=]+)="([^"]*)"')
# A character or entity reference other than the five the parser writes: the XML parser reads it.
_OTHER_REFERENCE: Final = re.compile("&(?!amp;|lt;|gt;|quot;|apos;)")
# Controls XML 1.0 cannot hold: the XML parser reads them parked in a private-use range
# (``event_xml.park_controls``). Written as they are, they are read as they are here, except
# those that are white space (a value of nothing else would be blank, and ``strip`` would take
# them off) and a private-use character the parking would turn into one: such a record takes
# the XML parser.
_SPACE_CONTROLS: Final = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f")
_PRIVATE_USE: Final = re.compile("[\uf700-\uf71f]")
_NUMERIC: Final = frozenset(("EventID", "Version", "Level", "Task", "Opcode", "EventRecordID"))
_SYSTEM_FIELDS: Final = {
    "EventID": "event_id",
    "Version": "version",
    "Level": "level",
    "Task": "task",
    "Opcode": "opcode",
    "EventRecordID": "event_record_id",
    "Channel": "channel",
    "Computer": "computer",
}


class _Unsure(Exception):
    """The record is not in the layout read here: the XML parser reads it."""


def fast_event(data: str) -> dict[str, Any] | None:
    """Our event from a record's XML in the parser's own layout, or ``None`` for any other
    (the same fields, in the same order, as ``event_from_element`` on the parsed XML)."""
    layout = _in_layout(data)
    if layout is None:
        return None
    data, end = layout
    try:
        found = _data_part(data[end + len(_SYSTEM_END) :])
        match = _SYSTEM_RE.fullmatch(data, len(_HEAD), end)
        if match is not None:
            return _usual_system(match.groups(), found)
        _system(data[len(_HEAD) : end], found)
    except _Unsure:
        return None
    found["type"] = "windows"
    return {field: found[field] for field in FIELD_ORDER if field in found}


def _in_layout(data: str) -> tuple[str, int] | None:
    """The record (line ends as an XML parser reads them) and where its System element ends,
    when it may be in the parser's layout; None when it is not."""
    if not data.startswith(_HEAD):
        return None
    if "&" in data and _OTHER_REFERENCE.search(data) is not None:
        return None
    if "\r" in data:  # CR LF and CR are read as LF, as an XML parser does
        data = data.replace("\r\n", "\n").replace("\r", "\n")
    for control in _SPACE_CONTROLS:
        if control in data:
            return None
    if not data.isascii() and _PRIVATE_USE.search(data) is not None:
        return None
    end = data.find(_SYSTEM_END, len(_HEAD))
    if end < 0:
        return None
    return data, end


def _data_part(rest: str) -> dict[str, Any]:
    """The fields of the record's EventData or UserData (``rest``: the record after System)."""
    found: dict[str, Any] = {}
    if rest == _EVENT_END:
        return found
    if rest.startswith(_EVENT_DATA[0]):
        usual = _USUAL_DATA.fullmatch(rest)
        if usual is not None:  # one <Data> a line, texts without a line end or an entity
            items = _DATA_ITEM.findall(rest, usual.start(1), usual.end(1))
            values = [text for _, text in items]
            names = [name for name, _ in items]
        else:
            values = _part(rest, _EVENT_DATA)
            # <Data Name="..."> (MasEventDataNames when asked for), as event_xml reads it.
            names = _data_names(rest) if values else []
        if values:
            found["event_data"] = values
            if any(names) and len(names) == len(values):
                found["event_data_names"] = names
    elif rest.startswith(_USER_DATA[0]):
        values = _part(rest, _USER_DATA, nested=True)
        if values and any(values):
            found["user_data"] = values
    else:
        raise _Unsure
    return found


def _unescape(text: str) -> str:
    if "&" not in text:
        return text
    return (
        text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&apos;", "'")
        .replace("&amp;", "&")
    )


def _text(text: str) -> str:
    """An element's text as ``event_xml._text`` reads it from the parsed element."""
    if not text or ("\n" in text and text.isspace()):
        return ""
    return _unescape(text)


def _number(text: str) -> int | str:
    stripped = text.strip()
    if stripped.isdigit() and stripped.isascii():
        return int(stripped)
    return text


# The per-record mapping of nearly every record: a branch per field, inline (split into calls,
# the map of a record measured ~7 % slower).
def _usual_system(  # noqa: C901, PLR0912, RUF100
    groups: tuple[str | None, ...], found: dict[str, Any]
) -> dict[str, Any]:
    """Our event from the groups of ``_SYSTEM_RE`` and the data part read before (written in
    ``FIELD_ORDER`` directly: no field is looked up twice)."""
    (
        provider,
        guid,
        source_name,
        event_id,
        version,
        level,
        task,
        opcode,
        keywords,
        time,
        record_id,
        activity,
        related,
        process,
        thread,
        channel,
        computer,
        user,
    ) = groups
    event: dict[str, Any] = {"type": "windows"}
    if time:
        event["time"] = normalize_time(time)
    if channel:
        event["channel"] = channel
    if computer:
        event["computer"] = computer
    if activity:
        event["correlation_activity_id"] = normalize_guid(activity)
    if related:
        event["correlation_related_activity_id"] = normalize_guid(related)
    if "event_data" in found:
        event["event_data"] = found["event_data"]
        if "event_data_names" in found:
            event["event_data_names"] = found["event_data_names"]
    if event_id:
        event["event_id"] = int(event_id)
    if record_id:
        event["event_record_id"] = int(record_id)
    if process:
        event["execution_process_id"] = int(process)
    if thread:
        event["execution_thread_id"] = int(thread)
    if keywords:
        mask = _KEYWORDS.get(keywords)
        event["keywords"] = (
            _remember(_KEYWORDS, keywords, normalize_keywords) if mask is None else mask
        )
    if level:
        event["level"] = int(level)
    if opcode:
        event["opcode"] = int(opcode)
    if source_name:
        event["provider_event_source_name"] = source_name
    if guid:
        normalized = _GUIDS.get(guid)
        event["provider_guid"] = (
            _remember(_GUIDS, guid, normalize_guid) if normalized is None else normalized
        )
    event["provider_name"] = provider
    if user:
        event["security_user_id"] = user
    if task:
        event["task"] = int(task)
    if "user_data" in found:
        event["user_data"] = found["user_data"]
    if version:
        event["version"] = int(version)
    return event


def _remember(cache: dict[str, Any], value: str, normalize: Callable[[str], Any]) -> Any:
    """``normalize(value)``, kept in ``cache`` (looked up there first by the caller)."""
    normalized = cache[value] = normalize(value)
    if len(cache) > 4096:
        cache.clear()
    return normalized


# Values that repeat from record to record, normalized once: keyword masks, providers' GUIDs.
_KEYWORDS: Final[dict[str, str | int]] = {}
_GUIDS: Final[dict[str, str]] = {}


def _system(system: str, found: dict[str, Any]) -> None:
    """The System element in any other layout: every child an element without children."""
    for name, attributes, raw in _leaves(system):
        field = _SYSTEM_FIELDS.get(name)
        if field is not None:
            text = _text(raw)
            if text:
                found[field] = _number(text) if name in _NUMERIC else text
            continue
        if name == "Keywords":
            text = _text(raw)
            if text:
                found["keywords"] = normalize_keywords(text)
            continue
        if ":" in name:
            raise _Unsure  # a prefixed name: its local name is for the XML parser to say
        if not attributes:
            continue
        if "\n" in attributes or "\t" in attributes:  # an XML parser reads them as spaces
            raise _Unsure
        attrib = {key: _unescape(value) for key, value in _ATTRIBUTE.findall(attributes)}
        system_attributes(name, attrib, found)


def _leaves(text: str) -> list[tuple[str, str, str]]:
    """``(name, attributes, text)`` of each element of ``text``, which must hold elements
    without children only (and blanks between them). The parser escapes every "<" and ">" of
    texts and attribute values, so cutting at them is reading the tags."""
    pieces = text.split("<")
    starts = pieces[1::2]
    ends = pieces[2::2]
    if (
        len(starts) != len(ends)
        or pieces[0].strip()
        or text.count(">") != len(pieces) - 1
        or ("<" + "<".join(ends)).count("</") != len(ends)
        or text.count("</") != len(ends)
    ):
        raise _Unsure
    leaves = []
    for start in starts:
        head, _, raw = start.partition(">")
        name, _, attributes = head.partition(" ")
        if not name or name[-1] == "/" or name[0] in "!?":
            raise _Unsure
        leaves.append((name, attributes, raw))
    return leaves


_NAME_ATTRIBUTE = re.compile(r'\sName="([^"]*)"')


def _data_names(rest: str) -> list[str]:
    """The ``Name`` attribute of each child of ``EventData`` ("" where it has none), for a
    part that ``_part`` has read."""
    body = rest[len(_EVENT_DATA[0]) : len(rest) - len(_EVENT_DATA[1])]
    names: list[str] = []
    for start in body.split("<")[1::2]:
        found = _NAME_ATTRIBUTE.search(start.partition(">")[0])
        names.append(_unescape(found.group(1)) if found else "")
    return names


def _part(rest: str, tags: tuple[str, str], *, nested: bool = False) -> list[str]:
    """The texts of the elements without children of ``EventData`` (its children) or
    ``UserData`` (at any depth), in document order; ``rest`` is the record from that part on,
    which must be its last."""
    start, end = tags
    if not rest.endswith(end):
        raise _Unsure
    body = rest[len(start) : len(rest) - len(end)]
    if not body:
        return []
    pieces = body.split("<")
    if pieces[0].strip() or body.count(">") != len(pieces) - 1:
        raise _Unsure  # text of the part itself, or a ">" not of a tag
    if nested:
        return _nested_leaves(pieces)
    starts = pieces[1::2]
    ends = pieces[2::2]
    if (
        len(starts) != len(ends)
        or ("<" + "<".join(ends)).count("</") != len(ends)
        or body.count("</") != len(ends)
    ):
        raise _Unsure  # an element with children, self-closing, or a comment
    if "/>" in body or "<!" in body or "<?" in body:
        raise _Unsure
    texts = [start.partition(">")[2] for start in starts]
    if "\n" in "".join(texts) or "&" in body:  # blanks (the parser's empty element) or entities
        return [_text(text) for text in texts]
    return texts


def _nested_leaves(pieces: list[str]) -> list[str]:
    """The texts of the elements without children, at any depth, of the tags ``pieces``
    (the text cut at every "<")."""
    texts: list[str] = []
    last = ""
    depth = 0
    opened = False  # the last tag was a start tag
    for piece in pieces[1:]:
        if piece[:1] == "/":
            if depth == 0:
                raise _Unsure
            depth -= 1
            if opened:
                texts.append(_text(last.partition(">")[2]))
            opened = False
        else:
            if piece[:1] in ("!", "?") or "/>" in piece:
                raise _Unsure  # a comment, a declaration, a self-closing element
            depth += 1
            opened = True
            last = piece
    if depth:
        raise _Unsure
    return texts
