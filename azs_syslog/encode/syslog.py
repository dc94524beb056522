"""Syslog: PRI, RFC 3164 / RFC 5424 headers, framing and the size limit (SPEC section 6).

Pure functions. Times are UTC. The RFC 3164 header is ``<PRI>Mmm dd hh:mm:ss HOST `` (day
space-padded); the RFC 5424 header ``<PRI>1 YYYY-MM-DDThh:mm:ss.mmmZ HOST azs-syslog - MSGID - ``
with the input type as MSGID **[project]** and no BOM.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from azs_syslog.config.facility import FACILITIES as FACILITIES
from azs_syslog.config.facility import parse_facility as parse_facility
from azs_syslog.config.vocabulary import FRAMINGS as FRAMINGS
from azs_syslog.config.vocabulary import MESSAGE_FORMATS as MESSAGE_FORMATS
from azs_syslog.config.vocabulary import MIN_MESSAGE_SIZE as MIN_MESSAGE_SIZE
from azs_syslog.config.vocabulary import MONTHS as MONTHS
from azs_syslog.encode.cef import SYSLOG_SEVERITY
from azs_syslog.paths import APP_NAME as APP_NAME


def pri(facility: int, cef_severity: int) -> int:
    """PRI = facility x 8 + the syslog severity of a CEF severity."""
    return facility * 8 + SYSLOG_SEVERITY[cef_severity]


def rfc3164_timestamp(seconds: int) -> str:
    """``Mmm dd hh:mm:ss`` in UTC, the day padded with a space (``Nov  6 09:05:01``)."""
    t = time.gmtime(seconds)
    return f"{MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def rfc5424_seconds(seconds: int) -> str:
    """``YYYY-MM-DDThh:mm:ss`` in UTC (the milliseconds and ``Z`` are appended per event)."""
    t = time.gmtime(seconds)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    )


def rfc5424_timestamp(time_ms: int) -> str:
    seconds, ms = divmod(time_ms, 1000)
    return f"{rfc5424_seconds(seconds)}.{ms:03d}Z"


def rfc3164_header(pri_value: int, time_ms: int, host: str) -> str:
    return f"<{pri_value}>{rfc3164_timestamp(time_ms // 1000)} {host} "


def rfc5424_header(pri_value: int, time_ms: int, host: str, msgid: str) -> str:
    return f"<{pri_value}>1 {rfc5424_timestamp(time_ms)} {host} {APP_NAME} - {msgid} - "


# --- framing: the only place a message is framed ---------------------------------------------


def octet_counted(message: bytes) -> bytes:
    """``<length> SP <message>`` (RFC 6587 octet counting, RFC 5425)."""
    return b"%d %b" % (len(message), message)


def lf_terminated(message: bytes) -> bytes:
    """``<message> LF`` (RFC 6587 non-transparent framing)."""
    return message + b"\n"


def unframed(message: bytes) -> bytes:
    """The message as it is (UDP: one message per datagram)."""
    return message


_FRAMERS: Final[dict[str, Callable[[bytes], bytes]]] = {
    "octet-counting": octet_counted,
    "lf": lf_terminated,
    "none": unframed,
}


def framer(framing: str) -> Callable[[bytes], bytes]:
    """The function that frames a message in ``framing`` (an unknown one: none), for a caller
    that frames many messages the same way (``Renderer``: one call per event)."""
    return _FRAMERS.get(framing, unframed)


def frame(message: bytes, framing: str) -> bytes:
    """Octet counting (``<length> SP <message>``, RFC 6587 / 5425), LF, or none (UDP)."""
    return framer(framing)(message)


# --- the size limit --------------------------------------------------------------------------


def cut(data: bytes, size: int) -> bytes:
    """The longest prefix of escaped CEF text ``data`` of at most ``size`` bytes that ends
    neither inside a UTF-8 character nor inside a backslash escape."""
    if size >= len(data):
        return data
    if size <= 0:
        return b""
    while size > 0 and data[size] & 0xC0 == 0x80:
        size -= 1
    run = size
    while run > 0 and data[run - 1] == 0x5C:  # backslash
        run -= 1
    if (size - run) % 2:
        size -= 1
    return data[:size]


# A value is not cut shorter than this while a later pair can be left out instead.
MIN_KEPT_VALUE: Final = 16


def _water_level(lengths: list[int], excess: int) -> int:
    """The largest L such that cutting every length above L down to L removes >= excess."""
    low, high = 0, max(lengths)
    while low < high:
        mid = (low + high + 1) // 2
        if sum(n - mid for n in lengths if n > mid) >= excess:
            low = mid
        else:
            high = mid - 1
    return low


def fit(
    head: bytes,
    signature_id: bytes,
    name: bytes,
    tail: bytes,
    pairs: list[tuple[bytes, bytes]],
    limit: int,
) -> bytes:
    """Shorten one message to ``limit`` bytes (SPEC section 6) and return it.

    The message is ``head + signature_id + b"|" + name + tail`` (``tail`` is ``|severity|``
    and ``rt=...``) followed by `` key=value`` for each pair (values escaped). The longest
    extension values are cut first, all to the same length, at UTF-8 character boundaries and
    never inside an escape; a value cut to nothing is left out with its key. The header, the
    keys and ``rt`` are never cut **[project]**. When that would cut values below
    ``MIN_KEPT_VALUE`` bytes (many keys, a small limit), pairs are left out instead, the last
    one first, until it would not. Last resort, when
    the header alone does not fit: every extension but ``rt`` is left out, then Name and then
    Signature ID are cut the same way.
    """
    fixed = len(head) + len(signature_id) + 1 + len(name) + len(tail)
    total = fixed + sum(len(key) + len(value) + 2 for key, value in pairs)
    excess = total - limit
    if excess <= 0:
        return head + signature_id + b"|" + name + tail + _join(pairs)
    pairs = list(pairs)
    lengths = [len(value) for _, value in pairs]
    while pairs:
        if sum(lengths) >= excess:
            level = _water_level(lengths, excess)
            if level >= MIN_KEPT_VALUE or len(pairs) == 1:
                kept = [(key, cut(value, level)) for key, value in pairs]
                kept = [(key, value) for key, value in kept if value]
                return head + signature_id + b"|" + name + tail + _join(kept)
        # Too many pairs to keep each a useful prefix: leave the last one out.
        key, value = pairs.pop()
        lengths.pop()
        excess -= len(key) + len(value) + 2
        if excess <= 0:
            return head + signature_id + b"|" + name + tail + _join(pairs)
    # Last resort: the header alone is (nearly) too big.
    over = fixed - limit
    if over > 0:
        name = cut(name, len(name) - over)
        over = len(head) + len(signature_id) + 1 + len(name) + len(tail) - limit
        if over > 0:
            signature_id = cut(signature_id, len(signature_id) - over)
    return head + signature_id + b"|" + name + tail


def _join(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(b" %s=%s" % (key, value) for key, value in pairs)
