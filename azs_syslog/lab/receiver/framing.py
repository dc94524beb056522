"""Cut a TCP/TLS byte stream into messages, detecting the framing per connection.

The framing is detected from the first byte of each message: a digit means octet counting
(RFC 6587 ``LEN SP MSG``), ``<`` means LF (non-transparent) framing. Anything else, a bad
octet count or an oversize message is flagged; the framer then resynchronises on the next LF
and detects again. Memory is bounded by the maximum message size whatever arrives.
"""

from __future__ import annotations

from azs_syslog.lab.receiver.message import (
    BAD_FRAMING,
    BAD_OCTET_COUNT,
    DEFAULT_MAX_MESSAGE_SIZE,
    OVERSIZE,
    SAMPLE_SIZE,
    TRUNCATED,
    UNEXPECTED_TLS,
    Frame,
    Problem,
)

# RFC 6587: MSG-LEN = NONZERO-DIGIT *DIGIT. Nine digits is far beyond any sane message.
_MAX_COUNT_DIGITS = 9


class StreamFramer:
    """Cut a TCP/TLS byte stream into messages; detect the framing per connection.

    ``feed`` returns the complete frames so far, ``close`` whatever is left when the peer goes.
    Never raises, never holds more than about ``max_size`` bytes.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_size = max_size
        self.mode: str | None = None  # None until detected (again, after an error)
        self._buffer = bytearray()
        self._skip = 0  # bytes of an oversize octet-counted message still to discard
        self._discard_line = False  # discarding the rest of an oversize LF line
        self._pending: Problem | None = None  # framing problem carried by the next LF frame
        self.abandoned = False  # the peer is not speaking syslog at all: close the connection
        self._at_start = True  # nothing of the connection consumed yet
        self._scanned = 0  # bytes of the buffer already searched for LF

    def feed(self, data: bytes) -> list[Frame]:
        if self.abandoned:
            return []
        self._buffer += data
        frames: list[Frame] = []
        while self._step(frames):
            pass
        return frames

    def close(self) -> list[Frame]:
        """The peer has closed: report a message left incomplete."""
        frames: list[Frame] = []
        buffer = bytes(self._buffer)
        self._buffer.clear()
        if self._discard_line or self._skip:
            return frames
        if self.mode == "octet-counting" and buffer:
            frames.append(
                Frame(
                    buffer,
                    "octet-counting",
                    [Problem(TRUNCATED, "the connection closed in the middle of a message")],
                )
            )
        elif buffer.rstrip(b"\r\n") or self._pending:
            # LF framing: a last message without its LF is accepted, as rsyslog does.
            problems = [self._pending] if self._pending else []
            frames.append(Frame(buffer.rstrip(b"\r\n"), self.mode or "lf", problems))
        self._pending = None
        return frames

    def _step(self, frames: list[Frame]) -> bool:
        """Consume what can be consumed; False when more data is needed."""
        buffer = self._buffer
        if self._skip:
            count = min(self._skip, len(buffer))
            del buffer[:count]
            self._skip -= count
            return bool(buffer) and not self._skip
        if self._discard_line:
            end = buffer.find(b"\n")
            if end < 0:
                buffer.clear()
                return False
            del buffer[: end + 1]
            self._discard_line = False
            self.mode = None
            return True
        if not buffer:
            return False
        if self.mode is None:
            first = buffer[0]
            if first in b"\r\n":  # stray line ends between messages
                del buffer[:1]
                return True
            at_start, self._at_start = self._at_start, False
            if first == 0x16 and at_start:  # a TLS handshake record
                self._buffer.clear()
                self.abandoned = True
                frames.append(
                    Frame(
                        b"",
                        "unknown",
                        [
                            Problem(
                                UNEXPECTED_TLS,
                                "the peer started a TLS handshake on a plain TCP listener; "
                                "listen with --protocol tls (connection closed)",
                            )
                        ],
                    )
                )
                return False
            if 0x30 <= first <= 0x39:
                self.mode = "octet-counting"
            elif first == 0x3C:  # '<'
                self.mode = "lf"
            else:
                self.mode = "lf"
                self._pending = Problem(
                    BAD_FRAMING,
                    f"a message starts with {_show_byte(first)}, neither a digit (octet "
                    "counting) nor '<' (LF framing); resynchronised at the next LF",
                )
        if self.mode == "octet-counting":
            return self._step_octet_counting(frames)
        return self._step_lf(frames)

    def _step_octet_counting(self, frames: list[Frame]) -> bool:
        buffer = self._buffer
        head = bytes(buffer[: _MAX_COUNT_DIGITS + 1])
        digits = len(head) - len(head.lstrip(b"0123456789"))
        if digits == len(head) and digits <= _MAX_COUNT_DIGITS:
            return False  # the length is still arriving
        problem: str | None = None
        if digits == 0:
            problem = f"expected an octet count, found {_show_byte(head[0])}"
        elif digits > _MAX_COUNT_DIGITS:
            problem = f"octet count longer than {_MAX_COUNT_DIGITS} digits"
        elif head[digits] != 0x20:
            problem = f"octet count followed by {_show_byte(head[digits])}, not a space"
        elif head[0] == 0x30:
            problem = f"octet count {head[:digits].decode()!r} is zero or has a leading zero"
        if problem is not None:
            # The count is unusable, so the message boundary is lost: resynchronise on LF.
            self.mode = "lf"
            self._pending = Problem(BAD_OCTET_COUNT, problem + "; resynchronised at the next LF")
            return True
        count = int(head[:digits])
        start = digits + 1
        if count > self.max_size:
            sample = bytes(buffer[start : start + SAMPLE_SIZE])
            frames.append(
                Frame(
                    sample,
                    "octet-counting",
                    [
                        Problem(
                            OVERSIZE,
                            f"{count} bytes announced, over the limit of {self.max_size}; "
                            "discarded",
                        )
                    ],
                )
            )
            del buffer[:start]
            self._skip = count
            return True
        if len(buffer) < start + count:
            return False
        frames.append(Frame(bytes(buffer[start : start + count]), "octet-counting"))
        del buffer[: start + count]
        return True

    def _step_lf(self, frames: list[Frame]) -> bool:
        buffer = self._buffer
        # Resume the search where the last one stopped: a line arriving a byte at a time must
        # not be scanned again from its start on every byte.
        end = buffer.find(b"\n", self._scanned, self.max_size + 2)
        if end < 0:
            self._scanned = len(buffer)
            if len(buffer) > self.max_size + 1:
                self._scanned = 0
                frames.append(self._oversize_lf(bytes(buffer[:SAMPLE_SIZE])))
                buffer.clear()
                self._discard_line = True
            return False
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        self._scanned = 0
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.max_size:
            frames.append(self._oversize_lf(line[:SAMPLE_SIZE]))
            self.mode = None
            return True
        problems: list[Problem] = []
        if self._pending is not None:
            problems.append(self._pending)
            self._pending = None
            self.mode = None  # detect the framing again from the next message
        if line or problems:
            frames.append(Frame(line, "lf", problems))
        return True

    def _oversize_lf(self, sample: bytes) -> Frame:
        problems = [Problem(OVERSIZE, f"no LF within {self.max_size} bytes; line discarded")]
        if self._pending is not None:
            problems.insert(0, self._pending)
            self._pending = None
        return Frame(sample, "lf", problems)


def _show_byte(value: int) -> str:
    char = chr(value)
    return repr(char) if char.isprintable() and value < 0x80 else f"byte 0x{value:02x}"
