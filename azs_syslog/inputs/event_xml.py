"""Windows Event XML -> our Windows event (the JSON object of ``"type": "windows"``).

Reads a stream of ``<Event>`` elements, with or without an ``<Events>`` root, as
``wevtutil qe /f:xml`` (no root, no line breaks), ``/f:RenderedXml`` (with ``RenderingInfo``)
and ``Get-WinEvent | % ToXml()`` write them, and maps each onto the fields of the Windows family
(docs/cef-mapping.md, "Windows Event XML and EVTX"). ``.evtx`` records take the same mapping
(``inputs/evtx.py``).

The parser is defusedxml's: a document type declaration, an entity declaration or an external
entity is refused, never expanded (Windows event XML has none of them; they are how "billion
laughs" bombs and external-entity reads get in). The stream is parsed as it is read, one event
at a time, so a large export takes little memory.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from azs_syslog.errors import EventError

Skip = Callable[[str], None]

_TIME_RE: Final = re.compile(r"(\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d)(?:\.(\d+))?[Zz]\Z")
_DECLARATION_RE: Final = re.compile(r"<\?xml[^>]*\?>")
_WRAPPER: Final = "azs-events"
_FORBIDDEN: Final = ("<!DOCTYPE", "<!ENTITY")
REFUSED_DTD: Final = (
    "refused: the XML holds a document type or entity declaration (<!DOCTYPE>, <!ENTITY>); "
    "Windows event XML has none, and they are how entity bombs and external entities get in"
)


# Control characters XML 1.0 cannot hold, not even as &#3;, but Windows event data can (the
# evtx parser and Windows itself write them as they are). They are parked in a private-use
# range while the XML is parsed, and put back in the values afterwards.
_CONTROL_RE: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_PARK: Final = {c: 0xF700 + c for c in (*range(0, 9), 11, 12, *range(14, 32))}
_UNPARK: Final = {parked: c for c, parked in _PARK.items()}


def park_controls(text: str) -> str:
    return text.translate(_PARK)


def unpark_controls(event: dict[str, Any]) -> dict[str, Any]:
    for field, value in event.items():
        if type(value) is str:
            event[field] = value.translate(_UNPARK)
        elif type(value) is list:
            event[field] = [item.translate(_UNPARK) for item in value]
    return event


def _local(tag: str) -> str:
    return tag[tag.rfind("}") + 1 :]


def _text(element: Element | None) -> str:
    """The text of an element; whitespace with a line break only is empty (the layout of
    pretty-printed XML, not a value)."""
    if element is None:
        return ""
    text = element.text
    if not text:
        return ""
    if "\n" in text and text.isspace():
        return ""
    return text


def _number(text: str) -> int | str:
    """A decimal number as an integer; anything else as it is (the event check names it)."""
    stripped = text.strip()
    if stripped.isdigit() and stripped.isascii():
        return int(stripped)
    return text


def normalize_guid(value: str) -> str:
    """``{aea1b4fa-...}`` -> ``AEA1B4FA-...``: Windows writes GUIDs with or without braces and
    in either case; the CEF value is always the same (as the source writes it)."""
    return value.strip().strip("{}").upper()


def normalize_keywords(value: int | str) -> int | str:
    """The keyword mask as Event Viewer shows it: ``0x`` and 16 upper-case hex digits. A signed
    64-bit integer (PowerShell) is read as its bit mask."""
    if type(value) is int:
        return f"0x{value & 0xFFFFFFFFFFFFFFFF:016X}"
    text = str(value).strip()
    try:
        number = int(text, 16) if text[:2] in ("0x", "0X") else int(text)
    except ValueError:
        return value
    return f"0x{number & 0xFFFFFFFFFFFFFFFF:016X}"


def normalize_time(value: str) -> str:
    """``2016-07-08T18:12:51.681640Z`` -> ``2016-07-08T18:12:51.681Z`` (events carry
    milliseconds); any other form as it is (the event check reads offsets, or names the
    problem)."""
    match = _TIME_RE.match(value.strip())
    if match is None:
        return value
    return f"{match.group(1)}.{((match.group(2) or '') + '000')[:3]}Z"


def _leaves(element: Element, into: list[str]) -> None:
    """The text of every element without children, in document order."""
    children = list(element)
    if not children:
        into.append(_text(element))
        return
    for child in children:
        _leaves(child, into)


# System child -> (our field, how to read it).
_SYSTEM_TEXT: Final = {
    "EventID": ("event_id", True),
    "Version": ("version", True),
    "Level": ("level", True),
    "Task": ("task", True),
    "Opcode": ("opcode", True),
    "EventRecordID": ("event_record_id", True),
    "Channel": ("channel", False),
    "Computer": ("computer", False),
}


def event_from_element(event: Element) -> dict[str, Any]:
    """One ``<Event>`` element -> our Windows event object (fields in the order the CEF
    extensions are written, so events of one log share a shape)."""
    found: dict[str, Any] = {}
    event_data: list[str] | None = None
    event_data_names: list[str] = []
    user_data: list[str] | None = None
    for part in event:
        name = _local(part.tag)
        if name == "System":
            _system(part, found)
        elif name == "EventData":
            event_data = []
            event_data_names = []
            for child in part:
                event_data.append(_text(child))
                event_data_names.append(child.attrib.get("Name", ""))
            if not event_data and _text(part):
                event_data.append(_text(part))
        elif name == "UserData":
            user_data = []
            for child in part:
                _leaves(child, user_data)
        elif name == "RenderingInfo":
            _rendering_info(part, found)
    if event_data:
        found["event_data"] = event_data
        # <Data Name="..."> (MasEventDataNames when asked for); none when no value is named.
        if any(event_data_names) and len(event_data_names) == len(event_data):
            found["event_data_names"] = event_data_names
    if user_data and any(user_data):  # not an element with nothing in it
        found["user_data"] = user_data
    return _ordered(found)


def _system(system: Element, found: dict[str, Any]) -> None:
    for child in system:
        name = _local(child.tag)
        spec = _SYSTEM_TEXT.get(name)
        if spec is not None:
            field, numeric = spec
            text = _text(child)
            if text:
                found[field] = _number(text) if numeric else text
            continue
        if name == "Keywords":
            text = _text(child)
            if text:
                found["keywords"] = normalize_keywords(text)
        else:
            system_attributes(name, child.attrib, found)


def system_attributes(name: str, attrib: Mapping[str, str], found: dict[str, Any]) -> None:
    """What a child of ``System`` holds in its attributes (``Provider``, ``TimeCreated``,
    ``Correlation``, ``Execution``, ``Security``): the XML parser's path and the direct reading
    of ``.evtx`` records (inputs/evtx.py) both map them here. An empty attribute is none,
    except a provider's ``Name``."""
    if name == "Provider" and "Name" in attrib:
        found["provider_name"] = attrib["Name"]
    for attribute, field, normalize in _SYSTEM_ATTRIBUTES.get(name, ()):
        value = attrib.get(attribute)
        if value:
            found[field] = normalize(value)


# The children of System with attributes: (attribute, our field, how its value is read).
_SYSTEM_ATTRIBUTES: Final[dict[str, tuple[tuple[str, str, Callable[[str], Any]], ...]]] = {
    "Provider": (
        ("Guid", "provider_guid", normalize_guid),
        ("EventSourceName", "provider_event_source_name", str),
    ),
    "TimeCreated": (("SystemTime", "time", normalize_time),),
    "Correlation": (
        ("ActivityID", "correlation_activity_id", normalize_guid),
        ("RelatedActivityID", "correlation_related_activity_id", normalize_guid),
    ),
    "Execution": (
        ("ProcessID", "execution_process_id", _number),
        ("ThreadID", "execution_thread_id", _number),
    ),
    "Security": (("UserID", "security_user_id", str),),
}


def _rendering_info(info: Element, found: dict[str, Any]) -> None:
    for child in info:
        name = _local(child.tag)
        if name == "Message":
            text = _text(child)
            if text:
                found["event_description"] = text
        elif name == "Task":
            if _text(child):
                found["task_name"] = _text(child)
        elif name == "Opcode":
            if _text(child):
                found["opcode_name"] = _text(child)
        elif name == "Keywords":
            names = [_text(keyword) for keyword in child if _text(keyword)]
            if names:
                found["keyword_name"] = ", ".join(names)


# The order of our event's fields: "type" and "time" first, then the extensions' order.
FIELD_ORDER: Final = (
    "type",
    "time",
    "channel",
    "computer",
    "correlation_activity_id",
    "correlation_related_activity_id",
    "event_data",
    "event_data_names",
    "event_description",
    "event_id",
    "event_record_id",
    "execution_process_id",
    "execution_thread_id",
    "keywords",
    "keyword_name",
    "level",
    "opcode",
    "opcode_name",
    "provider_event_source_name",
    "provider_guid",
    "provider_name",
    "security_user_id",
    "task",
    "task_name",
    "user_data",
    "version",
)


def _ordered(found: dict[str, Any]) -> dict[str, Any]:
    found["type"] = "windows"
    return {field: found[field] for field in FIELD_ORDER if field in found}


# --- the stream ------------------------------------------------------------------------------


class _Events:
    """The parser's target: builds each ``<Event>`` on its own (nothing else is kept)."""

    def __init__(self) -> None:
        self.builder: TreeBuilder | None = None
        self.depth = 0  # inside the current Event
        self.done: list[tuple[int, Element]] = []
        self.line = 0
        self.current_line: Callable[[], int] = lambda: 0

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if self.builder is None:
            name = _local(tag)
            if name == "Event":
                self.builder = TreeBuilder()
                self.line = self.current_line()
            elif name not in ("Events", _WRAPPER):
                raise EventError(
                    f"is not Windows event XML: <{name}> where <Event> or <Events> was expected",
                    line=self.current_line(),
                )
            else:
                return
        self.depth += 1
        self.builder.start(tag, attrib)

    def end(self, tag: str) -> None:
        if self.builder is None:
            return
        self.builder.end(tag)
        self.depth -= 1
        if self.depth == 0:
            self.done.append((self.line, self.builder.close()))
            self.builder = None

    def data(self, text: str) -> None:
        if self.builder is not None:
            self.builder.data(text)

    def close(self) -> None:
        return None

    # The expat parser's element and text handlers, set on it directly (``attach``): the same
    # work as the pure-Python XMLParser's handlers calling ``start``, ``end`` and ``data``
    # above, one Python call fewer for each, and none for the text of an event (the tree
    # builder's own method takes it). The handlers defusedxml sets for declarations and
    # entities stay as they are.

    def attach(self, expat: Any) -> None:
        self._expat = expat
        self._names: dict[str, str] = {}
        expat.StartElementHandler = self._expat_start
        expat.EndElementHandler = self._expat_end
        expat.CharacterDataHandler = self._no_data

    def _no_data(self, text: str) -> None:
        return None

    def _expat_start(self, tag: str, attributes: list[str]) -> None:
        names = self._names
        name = names.get(tag)
        if name is None:
            name = names[tag] = "{" + tag if "}" in tag else tag
        attrib = {}
        if attributes:
            for index in range(0, len(attributes), 2):
                key = attributes[index]
                fixed = names.get(key)
                if fixed is None:
                    fixed = names[key] = "{" + key if "}" in key else key
                attrib[fixed] = attributes[index + 1]
        builder = self.builder
        if builder is None:
            self.start(name, attrib)
            if self.builder is not None:
                self._expat.CharacterDataHandler = self.builder.data
            return
        self.depth += 1
        builder.start(name, attrib)

    def _expat_end(self, tag: str) -> None:
        builder = self.builder
        if builder is None:
            return
        builder.end(tag)
        self.depth -= 1
        if self.depth == 0:
            self.done.append((self.line, builder.close()))
            self.builder = None
            self._expat.CharacterDataHandler = self._no_data


def _without_declarations(chunks: Iterable[str]) -> Iterator[str]:
    """The text with every ``<?xml ...?>`` declaration removed (a stream of events may hold
    one before each event; inside the wrapper they would be errors)."""
    held = ""
    for chunk in chunks:
        text = held + chunk
        cut = text.rfind("<")
        if cut >= 0 and "<?xml".startswith(text[cut : cut + 5]) and ">" not in text[cut:]:
            held, text = text[cut:], text[:cut]  # perhaps a declaration cut in two
        else:
            held = ""
        yield _DECLARATION_RE.sub("", text)
    if held:
        yield _DECLARATION_RE.sub("", held)


def decode_chunks(raw: Any, encoding: str) -> Iterator[str]:
    """Text chunks of a binary stream (a BOM, if any, is dropped)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig" if encoding == "utf-8" else "utf-16")()
    offset = 0
    while True:
        chunk = raw.read1(1 << 16)
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise EventError(
                f"is not valid {encoding.upper()} (at byte {offset + exc.start})"
            ) from None
        offset += len(chunk)
        if text:
            yield text
        if not chunk:
            return


def as_line(event: dict[str, Any]) -> str | dict[str, Any]:
    """Our event as the JSON text of our format: what the renderer's fused path reads
    (``Renderer.render_line``) and what the queue keeps as the raw line, written once here (the
    same text as ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))``). An event that
    JSON cannot hold (a lone surrogate) stays an object: the renderer says what is wrong."""
    from orjson import dumps

    try:
        return dumps(event).decode()
    except TypeError:
        return event


def iter_xml_events(
    chunks: Iterable[str], on_skip: Skip
) -> Iterator[tuple[int, str | dict[str, Any]]]:
    """``(line of the <Event>, our event)`` for each event of an Event XML text stream (the
    event as JSON text, ``as_line``).

    A document type or entity declaration is refused (``EventError``) before anything is
    parsed past it. XML that stops being well-formed ends the input: what came before is
    kept, and ``on_skip`` is told where and why.
    """
    from defusedxml.common import DefusedXmlException  # type: ignore[import-untyped]
    from defusedxml.ElementTree import DefusedXMLParser  # type: ignore[import-untyped]

    target = _Events()
    parked = False
    parser = DefusedXMLParser(target=target, forbid_dtd=True)
    expat = parser.parser  # the pure-Python XMLParser's expat parser: it knows the line
    target.current_line = lambda: int(expat.CurrentLineNumber)
    target.attach(expat)
    try:
        parser.feed(f"<{_WRAPPER}>")
        lines_fed = 0
        for chunk in _without_declarations(chunks):
            for mark in _FORBIDDEN:
                found = chunk.find(mark)
                if found >= 0:
                    raise EventError(REFUSED_DTD, line=lines_fed + chunk.count("\n", 0, found) + 1)
            lines_fed += chunk.count("\n")
            if _CONTROL_RE.search(chunk):
                chunk = park_controls(chunk)
                parked = True
            parser.feed(chunk)
            if target.done:
                for line, element in target.done:
                    event = event_from_element(element)
                    yield line, as_line(unpark_controls(event) if parked else event)
                target.done.clear()
        parser.feed(f"</{_WRAPPER}>")
        parser.close()
    except DefusedXmlException:
        raise EventError(REFUSED_DTD) from None
    except ParseError as exc:
        line = exc.position[0] if exc.position else 0
        on_skip(
            f"line {line}: the XML breaks off ({_parse_reason(exc)}); "
            "the rest of the input is skipped"
        )
    for line, element in target.done:
        event = event_from_element(element)
        yield line, as_line(unpark_controls(event) if parked else event)


def _parse_reason(exc: ParseError) -> str:
    text = str(exc)
    return text.split(":", 1)[0] if ":" in text else text
