"""Text input in the encodings Windows writes: UTF-8 with or without a BOM, UTF-16 with a BOM.

Windows PowerShell 5.1 writes UTF-16 LE with a BOM (``>`` and ``Out-File``) or UTF-8 with a BOM
(``Set-Content -Encoding UTF8``); everything else writes UTF-8. The BOM tells them apart, so
no option is needed. UTF-8 stays bytes (the JSON reader decodes each line itself, so one bad
line is one rejection); UTF-16 is decoded here, line by line.

Nothing here waits for more input than the first read gives (a pipe such as ``tail -F`` must
stream): the first bytes are read with ``read1`` and replayed in front of the rest.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from typing import BinaryIO, Final

from azs_syslog.errors import EventError
from azs_syslog.events.record import MAX_LINE_BYTES, read_to_line_end, too_long_line

EVTX_MAGIC: Final = b"ElfFile\x00"
_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WANTED: Final = 8  # bytes needed to tell the formats apart (the EVTX magic is the longest)
_BLOCK: Final = 1 << 15  # bytes asked for by one read of ``Peeked.blocks``


class _Replay(io.RawIOBase):
    """``prefix`` (bytes already read from ``stream``), then the rest of ``stream``."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        super().__init__()
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._prefix:
            count = min(len(buffer), len(self._prefix))
            buffer[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        read1 = getattr(self._stream, "read1", None)
        data = read1(len(buffer)) if read1 is not None else self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class Peeked:
    """The start of an input (``head``) and the whole input again, from its first byte."""

    def __init__(self, stream: BinaryIO) -> None:
        head = b""
        read1 = getattr(stream, "read1", None)
        while len(head) < _WANTED:
            chunk = read1(1 << 16) if read1 is not None else stream.read(1 << 16)
            if not chunk:
                break
            head += chunk
            if not _undecided(head):
                break
        self.head = head
        self._stream = stream

    @property
    def is_evtx(self) -> bool:
        return self.head.startswith(EVTX_MAGIC)

    @property
    def encoding(self) -> str:
        """``utf-8`` or ``utf-16`` (from the BOM; UTF-8 without one)."""
        for bom, name in _BOMS:
            if self.head.startswith(bom):
                return name
        return "utf-8"

    def raw(self) -> io.BufferedReader:
        """The whole input as bytes, from its first byte (BOM included)."""
        return io.BufferedReader(_Replay(self.head, self._stream), 1 << 16)

    def read_all(self) -> bytes:
        return self.head + self._stream.read()

    def lines(self) -> Iterator[bytes] | Iterator[str]:
        """The input line by line: bytes for UTF-8 (BOM removed), text for UTF-16."""
        if self.head.startswith(codecs.BOM_UTF8):
            replay = io.BufferedReader(_Replay(self.head[3:], self._stream), 1 << 16)
            return iter(replay)
        if self.encoding == "utf-16":
            return _utf16_lines(self.raw())
        return iter(self.raw())

    def blocks(self) -> Iterator[bytes]:
        """A UTF-8 input (BOM removed) as blocks of whole lines: the complete lines of each
        read (the last block ends where the input ends, with or without a newline). One
        read at a time: a pipe's lines are handed on as soon as they arrive."""
        head = self.head[3:] if self.head.startswith(codecs.BOM_UTF8) else self.head
        return _blocks(head, self._stream)

    def text_start(self) -> str:
        """The first characters of the input as text (for telling XML from JSON)."""
        head = self.head
        for bom, name in _BOMS:
            if head.startswith(bom):
                codec = "utf-16-be" if bom == codecs.BOM_UTF16_BE else name
                codec = "utf-16-le" if bom == codecs.BOM_UTF16_LE else codec
                return head[len(bom) :].decode(codec, errors="ignore")
        return head.decode("utf-8", errors="ignore")


def _undecided(head: bytes) -> bool:
    """Whether more bytes could change what the input is taken for."""
    if EVTX_MAGIC.startswith(head):
        return True
    return any(bom.startswith(head) and bom != head for bom, _ in _BOMS)


def _blocks(head: bytes, stream: BinaryIO) -> Iterator[bytes]:
    """The blocks of ``Peeked.blocks``. A line longer than ``MAX_LINE_BYTES`` (but one that
    opens an array: read whole) is not kept: it is skipped up to its end and
    ``too_long_line`` goes on in its place, so memory holds at most that much of a line."""
    read1 = getattr(stream, "read1", None)
    read = read1 if read1 is not None else stream.read
    pieces: list[bytes] = []  # a line not yet complete, as it was read
    pending = 0  # its bytes
    skipped = -1  # while skipping a line too long: its bytes so far
    data = head
    while data:
        if skipped >= 0:  # to the end of the line too long
            end = data.find(b"\n")
            if end < 0:
                skipped += len(data)
                data = read(_BLOCK)
                continue
            yield too_long_line(skipped + end)
            skipped, data = -1, data[end + 1 :] or read(_BLOCK)
            continue
        cut = data.rfind(b"\n") + 1
        if cut:
            end = data.find(b"\n")
            if pending + end > MAX_LINE_BYTES and not _opens_array(pieces):
                # The line the pieces began ends here, too long (the lines after it in
                # ``data`` are short: one read).
                yield too_long_line(pending + end)
                pieces, pending, data = [], 0, data[end + 1 :] or read(_BLOCK)
                continue
            pieces.append(data[:cut] if cut < len(data) else data)
            yield pieces[0] if len(pieces) == 1 else b"".join(pieces)
            pieces = [data[cut:]] if cut < len(data) else []
            pending = len(data) - cut
        else:
            pieces.append(data)  # joined once its newline comes (a long line: no quadratic cost)
            pending += len(data)
            if pending > MAX_LINE_BYTES and not _opens_array(pieces):
                skipped, pieces, pending = pending, [], 0
        data = read(_BLOCK)
    if skipped >= 0:
        yield too_long_line(skipped)
    elif pieces:
        yield b"".join(pieces)


def _opens_array(pieces: list[bytes]) -> bool:
    return bool(pieces) and pieces[0].lstrip()[:1] == b"["


def _utf16_lines(raw: io.BufferedReader) -> Iterator[str]:
    """The lines of a UTF-16 input, as text; a line longer than ``MAX_LINE_BYTES`` characters
    (but one that opens an array) as ``too_long_line``, as ``_blocks`` does."""
    text = io.TextIOWrapper(raw, encoding="utf-16", newline=None)
    lineno = 0
    try:
        while line := text.readline(MAX_LINE_BYTES):
            lineno += 1
            if len(line) >= MAX_LINE_BYTES and line[-1] != "\n":
                opens_array = line.lstrip()[:1] == "["
                pieces = [line] if opens_array else None
                more, ended = read_to_line_end(text.readline, pieces)
                if pieces is not None:
                    line = "".join(pieces)
                else:
                    line = too_long_line(len(line) + more - ended).decode()
            yield line
    except UnicodeDecodeError:
        raise EventError(
            "is not valid UTF-16 (the input starts with a UTF-16 byte-order mark)",
            line=lineno + 1,
        ) from None
