"""The RELP frame codec: encoding frames, splitting received bytes into frames, the ``rsp``
answer and the offers, taking the syslog framing off a blob; with the protocol's constants and
the connection record shared by the session and the opening.

    TXNR SP COMMAND SP DATALEN [SP DATA] LF
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from azs_syslog import __version__
from azs_syslog.errors import TransportError
from azs_syslog.transport.base import ConnectionInfo

RELP_VERSION = "0"
SOFTWARE = f"azs-syslog,{__version__},-"  # name,version,url (librelp's form; no URL here)
MAX_TXNR = 999_999_999
# Frames sent and not yet answered. librelp's own client uses 128; on loopback to rsyslog a
# larger window keeps the receiver, not the round trips, the limit (benchmarks/relp.py).
WINDOW = 1024
MAX_HEADER = 9 + 1 + 32 + 1 + 9 + 1  # TXNR SP COMMAND SP DATALEN SP
MAX_FRAME_DATA = 16 * 1024 * 1024  # what we accept from a server (an rsp is a few hundred bytes)
RECV_SIZE = 65536
QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)

PLAIN_PORT_FIX = (
    "check that the port is the receiver's RELP input (rsyslog: imrelp), not a plain syslog "
    "port (imtcp); or drop --use-relp for a plain syslog port"
)


class ProtocolViolation(Exception):
    """The server sent something that is not a RELP frame."""


class Frame(NamedTuple):
    txnr: int
    command: str
    data: bytes


@dataclass(frozen=True)
class RelpConnectionInfo(ConnectionInfo):
    """A RELP connection: the TLS details (when TLS) and the server's answer to ``open``."""

    relp_offers: tuple[tuple[str, str], ...] = ()
    window: int = WINDOW


def encode(txnr: int, command: str, data: bytes = b"") -> bytes:
    if data:
        return b"%d %s %d %s\n" % (txnr, command.encode(), len(data), data)
    return b"%d %s 0\n" % (txnr, command.encode())


def next_txnr(txnr: int) -> int:
    """Transaction numbers run 1..999,999,999 and then start again at 1 (0 is the server's)."""
    return 1 if txnr >= MAX_TXNR else txnr + 1


HEADER = re.compile(rb"(\d{1,9}) ([A-Za-z]{1,32}) (\d{1,9})([ \n])")


class FrameReader:
    """Splits received bytes into frames; keeps an incomplete frame for the next feed."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buffer + data if self._buffer else data
        frames: list[Frame] = []
        pos = 0
        size = len(buf)
        match = HEADER.match
        while pos < size:
            header = match(buf, pos)
            if header is None:
                tail = buf[pos : pos + MAX_HEADER]
                if len(tail) >= MAX_HEADER or not _could_be_header(tail):
                    raise ProtocolViolation(f"not a RELP frame: {tail[:40]!r}")
                break
            length = int(header[3])
            if length > MAX_FRAME_DATA:
                raise ProtocolViolation(f"a frame announces {length} bytes of data")
            start = header.end()
            if length == 0:
                if header[4] != b"\n":
                    raise ProtocolViolation(
                        f"a frame without data does not end with LF: {buf[pos:start]!r}"
                    )
                frames.append(Frame(int(header[1]), header[2].decode("ascii"), b""))
                pos = start
                continue
            if header[4] != b" ":
                raise ProtocolViolation("no space before the data")
            if size < start + length + 1:
                break
            if buf[start + length] != 10:
                raise ProtocolViolation("a frame's data is not followed by LF")
            frames.append(
                Frame(int(header[1]), header[2].decode("ascii"), buf[start : start + length])
            )
            pos = start + length + 1
        self._buffer = buf[pos:]
        return frames


def _could_be_header(tail: bytes) -> bool:
    """Whether ``tail`` may still grow into a frame header (digits, SP, letters, SP, digits)."""
    return re.fullmatch(rb"\d{0,9}( [A-Za-z]{0,32}( \d{0,9})?)?", tail) is not None


def parse_response(data: bytes) -> tuple[int, str, tuple[tuple[str, str], ...]]:
    """``CODE [SP TEXT] [LF OFFERS]`` → (code, text, offers as (name, value) pairs)."""
    head, _, rest = data.partition(b"\n")
    code_text, _, text = head.partition(b" ")
    if not code_text.isdigit():
        raise ProtocolViolation(f"an rsp frame without a status code: {data[:40]!r}")
    offers: list[tuple[str, str]] = []
    for line in rest.split(b"\n"):
        if line.strip():
            name, _, value = line.partition(b"=")
            offers.append((name.decode("ascii", "replace"), value.decode("utf-8", "replace")))
    return int(code_text), text.decode("utf-8", "replace"), tuple(offers)


def unframe(wire: memoryview, lengths: Sequence[int], framing: str) -> list[memoryview]:
    """The messages of a syslog blob without their syslog framing."""
    messages: list[memoryview] = []
    start = 0
    if framing == "lf":
        for length in lengths:
            end = start + length
            messages.append(
                wire[start : end - 1] if length and wire[end - 1] == 10 else wire[start:end]
            )
            start = end
        return messages
    data = wire.obj if isinstance(wire.obj, bytes) and len(wire) == len(wire.obj) else bytes(wire)
    find = data.find
    for length in lengths:
        end = start + length
        space = find(b" ", start, min(start + 12, end))
        messages.append(wire[space + 1 : end] if space >= 0 else wire[start:end])
        start = end
    return messages


def violation_error(label: str, exc: ProtocolViolation) -> TransportError:
    return TransportError(
        f"{label} does not speak RELP: {exc}",
        step="relp",
        cause="relp-protocol",
        fix=PLAIN_PORT_FIX,
    )


def offers_text() -> bytes:
    return f"relp_version={RELP_VERSION}\nrelp_software={SOFTWARE}\ncommands=syslog".encode()


def describe_offers(offers: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{name}={value}" if value else name for name, value in offers) or "none"
