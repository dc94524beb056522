"""An independent, strict decoder of the syslog + CEF messages azs-syslog writes.

Written from docs/cef-mapping.md and the CEF rules alone; it imports nothing from azs_syslog.
Strict: header escapes only ``\\\\`` and ``\\|``; extension escapes only ``\\\\ \\= \\n
\\r``; exactly seven header fields; keys ``[A-Za-z0-9_]+``; no raw control character; anything
else is an error (``DecodeError``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
RFC3164_RE = re.compile(
    r"<(\d{1,3})>((?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 1-3]\d \d\d:\d\d:\d\d) "
    r"([!-~]{1,255}) (CEF:.*)\Z",
    re.DOTALL,
)
RFC5424_RE = re.compile(
    r"<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) ([!-~]{1,255}) ([!-~]{1,48}) - "
    r"([!-~]{1,32}) - (CEF:.*)\Z",
    re.DOTALL,
)


# No control character may reach the wire raw (docs/cef-mapping.md): C0, DEL, C1, and the two
# Unicode line and paragraph separators.
RAW_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# The controls an extension value writes as "\n" (line-break-like).
LINE_BREAKS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def header_decoded(text: str) -> str:
    """What a header field holding ``text`` decodes to, by the documented mapping: NUL becomes
    U+FFFD, every other control a space."""
    return "".join("\ufffd" if c == "\x00" else " " if RAW_CONTROL_RE.match(c) else c for c in text)


def value_decoded(text: str) -> str:
    """What an extension value holding ``text`` decodes to, by the documented mapping: CR and LF
    round-trip (escaped), the line-break-like controls become LF, TAB a space, every other
    control (NUL included) U+FFFD."""
    out = []
    for c in text:
        if c in "\r\n":
            out.append(c)
        elif c in LINE_BREAKS:
            out.append("\n")
        elif c == "\t":
            out.append(" ")
        elif RAW_CONTROL_RE.match(c):
            out.append("\ufffd")
        else:
            out.append(c)
    return "".join(out)


class DecodeError(ValueError):
    pass


@dataclass
class CefMessage:
    version: str
    vendor: str
    product: str
    device_version: str
    signature_id: str
    name: str
    severity: str
    extensions: list[tuple[str, str]] = field(default_factory=list)

    @property
    def header(self) -> list[str]:
        return [
            self.version,
            self.vendor,
            self.product,
            self.device_version,
            self.signature_id,
            self.name,
            self.severity,
        ]

    def ext(self) -> dict[str, str]:
        return dict(self.extensions)


@dataclass
class SyslogMessage:
    pri: int
    timestamp: str
    host: str
    app_name: str | None
    msgid: str | None
    cef: CefMessage


def unframe_octet_counted(data: bytes) -> list[bytes]:
    """Split an octet-counted stream (``<len> SP <msg>``...) into messages."""
    messages = []
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        digits = data[pos:space]
        if not digits.isdigit() or digits.startswith(b"0"):
            raise DecodeError(f"bad octet count {digits!r}")
        length = int(digits)
        start = space + 1
        if start + length > len(data):
            raise DecodeError("octet count runs past the end")
        messages.append(data[start : start + length])
        pos = start + length
    return messages


def decode_syslog(message: bytes) -> SyslogMessage:
    """Decode one syslog message (RFC 3164 or RFC 5424 header) with a CEF payload."""
    for raw in (b"\r", b"\n", b"\x00"):
        if raw in message:
            raise DecodeError(f"raw {raw!r} in the message")
    if message.startswith(b"\xef\xbb\xbf"):
        raise DecodeError("BOM")
    text = message.decode("utf-8")  # strict: raises on invalid UTF-8
    raw_control = RAW_CONTROL_RE.search(text)
    if raw_control:
        raise DecodeError(f"raw control character {raw_control.group()!r} in the message")
    match = RFC5424_RE.match(text)
    if match:
        pri, stamp, host, app, msgid, payload = match.groups()
        result = SyslogMessage(int(pri), stamp, host, app, msgid, decode_cef(payload))
    else:
        match = RFC3164_RE.match(text)
        if not match:
            raise DecodeError(f"no syslog header: {text[:80]!r}")
        pri, stamp, host, payload = match.groups()
        result = SyslogMessage(int(pri), stamp, host, None, None, decode_cef(payload))
    if not 0 <= result.pri <= 191:
        raise DecodeError(f"PRI {result.pri} out of range")
    return result


def decode_cef(payload: str) -> CefMessage:
    if not payload.startswith("CEF:"):
        raise DecodeError("no CEF: prefix")
    fields: list[str] = []
    current: list[str] = []
    pos = 4
    while len(fields) < 7:
        if pos >= len(payload):
            raise DecodeError(f"only {len(fields)} header fields")
        char = payload[pos]
        if char == "\\":
            if pos + 1 >= len(payload) or payload[pos + 1] not in "\\|":
                raise DecodeError(f"bad header escape at {pos}")
            current.append(payload[pos + 1])
            pos += 2
        elif char == "|":
            fields.append("".join(current))
            current = []
            pos += 1
        else:
            current.append(char)
            pos += 1
    version, vendor, product, device_version, signature_id, name, severity = fields
    return CefMessage(
        version,
        vendor,
        product,
        device_version,
        signature_id,
        name,
        severity,
        decode_extensions(payload[pos:]),
    )


def decode_extensions(text: str) -> list[tuple[str, str]]:
    """``k1=v1 k2=v2`` -> pairs. A key is the run of key characters right before an unescaped
    ``=``, preceded by a space (or the start); the value runs up to the space before the next
    key."""
    if not text:
        return []
    keys = [_key_before(text, eq) for eq in _separators(text)]
    if keys[0][0] != 0:
        raise DecodeError("text before the first key")
    pairs = []
    for index, (start, eq) in enumerate(keys):
        end = keys[index + 1][0] - 1 if index + 1 < len(keys) else len(text)
        pairs.append((text[start:eq], _unescape_value(text[eq + 1 : end])))
    return pairs


def _separators(text: str) -> list[int]:
    """The positions of the unescaped ``=`` in ``text`` (at least one)."""
    separators = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            if pos + 1 >= len(text) or text[pos + 1] not in "\\=nr":
                raise DecodeError(f"bad extension escape at {pos}: {text[pos : pos + 2]!r}")
            pos += 2
            continue
        if char == "=":
            separators.append(pos)
        pos += 1
    if not separators:
        raise DecodeError("extension text without a key")
    return separators


def _key_before(text: str, eq: int) -> tuple[int, int]:
    """Where the key that ends at the ``=`` at ``eq`` starts, and ``eq``."""
    start = eq
    while start > 0 and text[start - 1] in KEY_CHARS:
        start -= 1
    if start == eq:
        raise DecodeError(f"empty key before = at {eq}")
    if start != 0 and text[start - 1] != " ":
        raise DecodeError(f"unescaped = inside a value at {eq}")
    return start, eq


def _unescape_value(raw: str) -> str:
    out = []
    pos = 0
    while pos < len(raw):
        char = raw[pos]
        if char == "\\":
            nxt = raw[pos + 1]
            out.append({"\\": "\\", "=": "=", "n": "\n", "r": "\r"}[nxt])
            pos += 2
        else:
            out.append(char)
            pos += 1
    return "".join(out)
