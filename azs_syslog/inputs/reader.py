"""Reading "JSON or JSON lines" input (SPEC section 3, ``send-event`` / ``format-event``).

Three shapes are accepted, told apart line by line so that JSON lines stream (``send-event -``
is fed by long-running pipes: each line is yielded as soon as it is read, never at EOF):

* JSON lines: one object per line, blank lines skipped. Each line is yielded as text, not
  parsed here, so the renderer parses it once.
* a JSON array of objects (the whole array is read, then each element is yielded with the line
  it starts on);
* one or more pretty-printed objects spanning several lines (each yielded parsed, with the line
  it starts on).

Malformed input never hides a valid line. A line that starts an object it does not finish (a
cut-off line, ``{"type": "pep", "event":``) is only a multi-line object if the lines after it
complete it; when they do not, that line is reported on its own and reading starts again on the
next line that could start an event, so a valid line after a cut-off one is still read. Inside
an array, a broken element is reported and reading goes on at the next line that could start
one. Nesting too deep for the parser is a rejection of its line, never an internal error.
"""

from __future__ import annotations

import io
import json
import re
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, Final, cast

from azs_syslog.events.record import MAX_LINE_BYTES, Chunk, Record, too_long_line

_Line = tuple[int, "str | bytes"]
_FIRST_CHAR = re.compile(r"[ \t\r]*(\S)")  # the first character of a line, if not blank


class _Source:
    """The input lines with their numbers, and the lines read ahead that must be read again
    (after a failed multi-line object, or the text after an array's ``]``)."""

    __slots__ = ("again", "lineno", "lines")

    def __init__(self, lines: Iterator[str | bytes], lineno: int = 0) -> None:
        self.lines = lines
        self.lineno = lineno  # the number of the last line taken from ``lines``
        self.again: deque[_Line] = deque()

    def next_line(self) -> _Line | None:
        if self.again:
            return self.again.popleft()
        raw = next(self.lines, None)
        if raw is None:
            return None
        self.lineno += 1
        return self.lineno, raw

    def read_again(self, lines: list[_Line]) -> None:
        """Put ``lines`` (in order) before everything not yet read."""
        self.again.extendleft(reversed(lines))

    def rest(self) -> list[_Line]:
        """Every line not yet read, with its number (the stream is then exhausted)."""
        taken = list(self.again)
        self.again.clear()
        for raw in self.lines:
            self.lineno += 1
            taken.append((self.lineno, raw))
        return taken


def iter_record_chunks(blocks: Iterable[bytes]) -> Iterator[Chunk]:
    """The records of a UTF-8 input, as :func:`iter_records` yields them, in chunks: the
    records of each block (``blocks``: the input's bytes as they are read, each block ending
    at the end of a line but the last), so that the caller handles them together without
    waiting for more input than one read gave.

    JSON lines are split a block at a time (one decode, one split). From the first line that
    opens an array or an object it does not close, the rest of the input is read line by line
    by :func:`iter_records`, one record per chunk: only a chunk of one record may hold a parsed
    object (``dict``); the records of a longer chunk are texts, or bytes not UTF-8.
    """
    blocks = iter(blocks)
    lineno = 0
    for block in blocks:
        try:
            lines: list[str] | list[bytes] = block.decode("utf-8").split("\n")
            if not lines[-1]:
                lines.pop()  # the block ends with a newline
        except UnicodeDecodeError:
            lines = io.BytesIO(block).readlines()  # each line decoded (or not) on its own
        numbers: list[int] = []
        records: list[str | bytes | dict[str, Any]] = []
        # The hot path, as iter_records's: a Python loop, so written with few operations.
        for number, raw in enumerate(lines, lineno + 1):
            if type(raw) is bytes:
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    numbers.append(number)
                    records.append(raw)  # with its newline, as iter_records yields it
                    continue
            else:
                line = cast(str, raw)
            text = line.strip()
            if not text:
                continue
            if (text[0] == "{" and text[-1] == "}") or (text[0] != "{" and text[0] != "["):
                numbers.append(number)
                records.append(text)
                continue
            # A multi-line object or an array: the rest is read line by line.
            if numbers:
                yield numbers, records
            rest = io.BytesIO(block).readlines()[number - lineno - 1 :]
            for found in iter_records(_chained(rest, blocks), number - 1):
                yield [found[0]], [found[1]]
            return
        lineno += len(lines)
        if numbers:
            yield numbers, records


def _chained(first: list[bytes], blocks: Iterator[bytes]) -> Iterator[bytes]:
    """``first``, then the lines of the blocks left (each with its newline)."""
    yield from first
    for block in blocks:
        yield from io.BytesIO(block)


def iter_records(stream: Iterable[str] | Iterable[bytes], lineno: int = 0) -> Iterator[Record]:
    """Yield ``(line number, record)`` for each event of ``stream`` (its first line is numbered
    ``lineno + 1``).

    A record is the JSON text of one object (``str``), an already parsed object (``dict``), or
    — when a line of a binary stream is not UTF-8 — the raw ``bytes`` of that line. Text and
    bytes may not be valid JSON at all: ``Renderer.render_line`` / ``events.parse_line`` reject
    them with a message, and the caller reports the line number.
    """
    source = _Source(iter(cast(Iterable[str | bytes], stream)), lineno)
    again = source.again
    while True:
        # The lines to read again first, then the stream, until a line starts a multi-line
        # object or an array (which may leave lines to read again): the same loop for both.
        from_stream = not again
        numbered = enumerate(source.lines, source.lineno + 1) if from_stream else _drain(again)
        # The hot path: JSON lines, one complete object per line, read straight from the stream.
        for lineno, raw in numbered:
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
            elif text[0] == "{" or text[0] == "[":
                if from_stream:
                    source.lineno = lineno
                yield from _start(lineno, line, text, source)
                break  # read what it left to read again, then the stream again
            else:
                yield lineno, text
        else:
            if from_stream:
                return


def _drain(again: deque[_Line]) -> Iterator[_Line]:
    """The lines to read again, each taken when it is read (more may be put back meanwhile)."""
    while again:
        yield again.popleft()


def _start(number: int, line: str, text: str, source: _Source) -> Iterator[Record]:
    """A line that opens an array, or an object it does not close."""
    if text[0] == "[":
        taken = source.rest()
        rest = _join([raw for _, raw in taken])
        if isinstance(rest, bytes):
            # Not UTF-8 after the "[": no array can be read as text. Its line is reported on
            # its own and every later line is read again as a line (one that is not UTF-8 is
            # then reported as itself), so nothing after it goes unread or unreported.
            yield number, text
            source.read_again(taken)
        else:
            yield from _array(line + rest, number, source)
    else:
        yield from _multiline(number, line, text, source)


def _join(parts: list[str | bytes]) -> str | bytes:
    """Lines as one text, or as bytes when they are not UTF-8."""
    if any(isinstance(p, bytes) for p in parts):
        data = b"".join(p.encode() if isinstance(p, str) else p for p in parts)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data
    return "".join(cast(list[str], parts))


def _may_start_event(raw: str | bytes) -> bool:
    """Whether a line, read on its own, could hold an event (an object, or an array)."""
    head = raw.lstrip()[:1]
    return head in ("{", "[", b"{", b"[")


def _multiline(start: int, first: str, text: str, source: _Source) -> Iterator[Record]:
    """Gather the lines of one pretty-printed object starting on line ``start``; yield the
    parsed object, or report the first line and have the others read again."""
    try:
        json.loads(first)
    except json.JSONDecodeError as exc:
        if exc.pos < len(first.rstrip()):
            yield start, text  # broken on its own line: not a start
            return
    except RecursionError:
        yield start, text  # nested too deeply: the renderer says so
        return
    taken: list[_Line] = [(start, first)]
    buffer = [first]
    value, at = _gather(taken, buffer, source)
    if isinstance(value, dict):
        yield start, value
        source.read_again(taken[at + 1 :])
        return
    if value is not None:  # too long: not read
        yield start, too_long_line(value).decode()
        source.read_again(taken[_first_start(taken, len(taken)) :])
        return
    # Not an object. The first line is rejected with the continuation lines that could not
    # start an event anyway; from the first one that could (or the line that broke the
    # object), everything is read again, so a valid line after a cut-off one is not lost.
    again = _first_start(taken, at)
    yield start, "".join(buffer[:again]).strip()
    source.read_again(taken[again:])


def _gather(taken: list[_Line], buffer: list[str], source: _Source) -> tuple[Any, int]:
    """Read the lines of a multi-line object into ``taken`` and ``buffer`` (its texts) until
    it is whole: ``(the object, the index of its last line)``; ``(None, the line that broke
    it)`` (``len(taken)`` when the input ended inside it); ``(bytes read, -1)`` past
    ``MAX_LINE_BYTES``.

    While the object is small it is parsed again at each line, so a line that breaks it is
    known at once; past ``_EVERY_LINE`` bytes, only at a line that may close it and once it
    has grown by a quarter (``raw_decode`` then tells where it ended): a big object costs a
    few parses, not one per line."""
    size = parsed = len(buffer[0])
    indent = len(buffer[0]) - len(buffer[0].lstrip())
    while True:
        item = source.next_line()
        if item is None:
            if parsed < size:  # the lines since the last parse may have closed it
                value, at = _whole(buffer, every_line=False)
                if value is not None or at >= 0:
                    return value, at
            return None, len(taken)  # the input ends inside the object
        taken.append(item)
        raw = item[1]
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                return None, len(taken) - 1  # not a continuation: reported when read again
        buffer.append(raw)
        size += len(raw)
        if size > MAX_LINE_BYTES:
            return size, -1
        every_line = size <= _EVERY_LINE
        if not every_line and not _may_close(raw, indent, size >= parsed * 1.25):
            continue
        parsed = size
        value, at = _whole(buffer, every_line=every_line)
        if value is not None or at >= 0:
            return value, at


def _may_close(line: str, indent: int, grown: bool) -> bool:
    """Whether a line of a big multi-line object is worth a parse: it ends with a ``}``, and
    either is indented no deeper than the object's first line (pretty-printed, the closing
    brace of the object itself) or the object grew by a quarter since the last parse."""
    stripped = line.rstrip()
    return stripped[-1:] == "}" and (grown or len(line) - len(line.lstrip()) <= indent)


def _whole(buffer: list[str], *, every_line: bool) -> tuple[Any, int]:
    """Parse the lines so far (one a line taken): as ``_gather`` returns, or ``(None, -1)``:
    not whole yet."""
    joined = "".join(buffer)
    newest = len(buffer) - 1
    try:
        value, end = _DECODER.raw_decode(joined)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(joined.rstrip()):
            return None, -1  # incomplete: read on
        return None, newest if every_line else max(1, _line_at(buffer, exc.pos))
    except RecursionError:
        return None, newest
    last = _line_at(buffer, end - 1)
    after = joined[end:].split("\n", 1)[0]  # the rest of the object's last line
    if not isinstance(value, dict) or after.strip():  # more on its last line: not an object
        return None, newest if every_line else max(1, last)
    return value, last


_DECODER: Final = json.JSONDecoder()
_EVERY_LINE: Final = 1 << 14  # bytes of an object parsed again at every line


def _line_at(buffer: list[str], pos: int) -> int:
    """The index of the line of ``buffer`` that holds character ``pos`` of their join."""
    for index, line in enumerate(buffer):
        if pos < len(line):
            return index
        pos -= len(line)
    return len(buffer) - 1


def _first_start(taken: list[_Line], failed_at: int) -> int:
    """The first line after the first that could start an event, else ``failed_at``."""
    return next((i for i in range(1, failed_at) if _may_start_event(taken[i][1])), failed_at)


def _array(text: str, start: int, source: _Source) -> Iterator[Record]:
    """Each element of a JSON array, with the line it starts on (``start`` is the line of
    the ``[``). What follows the closing ``]`` is read again as lines."""
    decoder = json.JSONDecoder()
    opening = text.index("[")
    pos = opening + 1
    line = start
    counted = 0
    length = len(text)
    expect_value = True
    reported: set[int] = set()  # lines already rejected here: each is reported once
    while True:
        while pos < length and text[pos] in " \t\r\n":
            pos += 1
        if pos >= length:
            if start not in reported:  # the array is never closed
                yield start, text[opening:].strip()
            return
        char = text[pos]
        if char == "]" and (expect_value is False or text[pos - 1] in "[ \t\r\n"):
            line += text.count("\n", counted, pos)
            _read_after(text, pos + 1, line, source)
            return
        if char == "," and not expect_value:
            pos += 1
            expect_value = True
            continue
        line += text.count("\n", counted, pos)
        counted = pos
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            broken_at = exc.pos
        except RecursionError:
            broken_at = pos  # nested too deeply
        else:
            if isinstance(value, dict):
                yield line, value
            else:
                reported.add(line)
                yield line, text[pos:end]
            pos = end
            expect_value = False
            continue
        # A broken element: reported once on its line, then reading goes on further down.
        resume, number = _resume_after(text, pos, line, broken_at)
        if line not in reported:
            reported.add(line)
            yield line, text[pos:resume].strip()
        pos = counted = resume
        line = number
        expect_value = True


def _resume_after(text: str, pos: int, line: int, broken_at: int) -> tuple[int, int]:
    """Where reading goes on after the broken element at ``pos`` (on line ``line``; the
    parser failed at ``broken_at``), and that line's number: the next line that could start
    an element, or the line where it broke (which is then read on its own), or, when it broke
    on its own line, the next line."""
    last = line + text.count("\n", pos, broken_at)
    resume, number = pos, line
    while True:
        newline = text.find("\n", resume)
        if newline < 0:
            return len(text), number
        resume, number = newline + 1, number + 1
        if number >= last:
            return resume, number
        head = _FIRST_CHAR.match(text, resume)
        if head is not None and head.group(1) in "{[]":
            return resume, number


def _read_after(text: str, pos: int, line: int, source: _Source) -> None:
    """Have the text after an array's ``]`` (from ``pos``, on line ``line``) read again."""
    lines = text[pos:].splitlines(keepends=True)
    source.read_again([(line + index, part) for index, part in enumerate(lines)])
