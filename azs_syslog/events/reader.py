"""Reading "JSON or JSON lines" input (SPEC section 3, ``send-event`` / ``format-event``).

Three shapes are accepted, told apart line by line so that JSON lines stream (``send-event -``
is fed by long-running pipes: each line is yielded as soon as it is read, never at EOF):

* JSON lines: one object per line, blank lines skipped. Each line is yielded as text, not
  parsed here, so the renderer parses it once.
* a JSON array of objects (the whole array is read, then each element is yielded with the line
  it starts on);
* one or more pretty-printed objects spanning several lines (each yielded parsed, with the line
  it starts on).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, cast

Record = tuple[int, "str | bytes | dict[str, Any]"]


def iter_records(stream: Iterable[str] | Iterable[bytes]) -> Iterator[Record]:
    """Yield ``(line number, record)`` for each event of ``stream``.

    A record is the JSON text of one object (``str``), an already parsed object (``dict``), or
    — when a line of a binary stream is not UTF-8 — the raw ``bytes`` of that line. Text and
    bytes may not be valid JSON at all: ``Renderer.render_line`` / ``events.parse_line`` reject
    them with a message, and the caller reports the line number.
    """
    lines = iter(cast(Iterable[str | bytes], stream))
    lineno = 0
    for raw in lines:
        lineno += 1
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield lineno, raw
                continue
        else:
            line = raw
        text = line.strip()
        if not text:
            continue
        if text[0] == "{" and text[-1] == "}":
            yield lineno, text
        elif text[0] == "[":
            rest = _read_rest(lines)
            if isinstance(rest, bytes):
                yield lineno, line.encode() + rest  # not UTF-8: rejected as a whole
            else:
                yield from _array(line + rest, lineno)
            return
        elif text[0] == "{":
            consumed, records = _multiline(line, lines, lineno)
            yield from records
            lineno = consumed
        else:
            yield lineno, text


def _read_rest(lines: Iterator[str | bytes]) -> str | bytes:
    """The rest of the stream as text, or as bytes when it is not UTF-8."""
    parts = list(lines)
    if parts and isinstance(parts[0], bytes):
        data = b"".join(p.encode() if isinstance(p, str) else p for p in parts)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data
    return "".join(p.decode() if isinstance(p, bytes) else p for p in parts)


def _multiline(first: str, lines: Iterator[str | bytes], start: int) -> tuple[int, list[Record]]:
    """Gather the lines of one pretty-printed object; return the last line number read and
    the record (the parsed object, or the gathered text when it is not valid JSON)."""
    buffer = [first]
    lineno = start
    try:
        json.loads(first)
    except json.JSONDecodeError as exc:
        if exc.pos < len(first.rstrip()):
            return lineno, [(start, first.strip())]  # broken on its own line: not a start
    for raw in lines:
        lineno += 1
        if isinstance(raw, bytes):
            try:
                decoded = raw.decode("utf-8")
            except UnicodeDecodeError:
                return lineno, [(start, "".join(buffer).encode() + raw)]
        else:
            decoded = raw
        buffer.append(decoded)
        text = "".join(buffer)
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.pos >= len(text.rstrip()):
                continue  # incomplete: read on
            return lineno, [(start, text.strip())]
        if isinstance(value, dict):
            return lineno, [(start, value)]
        return lineno, [(start, text.strip())]
    return lineno, [(start, "".join(buffer).strip())]


def _array(text: str, start: int) -> Iterator[Record]:
    """Each element of a JSON array, with the line it starts on (``start`` is the line of
    the ``[``)."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    line = start
    counted = 0
    length = len(text)
    expect_value = True
    while True:
        while pos < length and text[pos] in " \t\r\n":
            pos += 1
        if pos >= length:
            yield line + text.count("\n", counted, pos), text[text.index("[") :].strip()
            return
        char = text[pos]
        if char == "]" and (expect_value is False or text[pos - 1] in "[ \t\r\n"):
            trailing = text[pos + 1 :].strip()
            if trailing:
                line += text.count("\n", counted, pos)
                yield line, trailing
            return
        if char == "," and not expect_value:
            pos += 1
            expect_value = True
            continue
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            # Not valid JSON from here on: report the rest once, as text.
            yield line, text[pos:].strip()
            return
        if isinstance(value, dict):
            yield line, value
        else:
            yield line, text[pos:end]
        pos = end
        expect_value = False
