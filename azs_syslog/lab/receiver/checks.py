"""Strict checks of one message: the syslog header, then the CEF payload.

``parse_message`` checks and decodes one message: the syslog header (PRI, then RFC 3164 or
RFC 5424) and the CEF payload (seven header fields, only ``\\\\`` and ``\\|`` escapes in the
header; ``key=value`` extensions with keys ``[A-Za-z0-9_]+`` and only the escapes ``\\\\``
``\\=`` ``\\n`` ``\\r`` in values). Every failure is a ``Problem`` with a stable code; the
parser never raises on any input.
"""

from __future__ import annotations

import re
import time

from azs_syslog.lab.receiver.message import (
    BAD_CEF_HEADER_COUNT,
    BAD_CEF_SEVERITY,
    BAD_CEF_VERSION,
    BAD_EXTENSION,
    BAD_EXTENSION_ESCAPE,
    BAD_EXTENSION_KEY,
    BAD_HEADER_ESCAPE,
    BAD_PRI,
    BAD_SYSLOG_HEADER,
    DUPLICATE_KEY,
    EMPTY_HEADER_FIELD,
    INVALID_UTF8,
    NOT_CEF,
    PARTIAL,
    RAW_NEWLINE,
    UNESCAPED_EQUALS,
    Problem,
    ReceivedMessage,
)

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_PRI_RE = re.compile(r"<(\d{1,3})>")
_RFC3164_RE = re.compile(
    r"(?P<mon>[A-Za-z]{3}) (?P<day>[ 0-9]\d) (?P<hh>\d\d):(?P<mm>\d\d):(?P<ss>\d\d) "
    r"(?P<host>\S+) (?P<msg>.*)",
    re.DOTALL,
)
_RFC5424_RE = re.compile(
    r"(?P<version>\d{1,2}) (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) "
    r"(?P<msgid>\S+) (?P<rest>.*)",
    re.DOTALL,
)
_RFC3339_RE = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)",
)
_PRINTUSASCII_RE = re.compile(r"[!-~]+")
# SD-NAME: printable US-ASCII except '=', SP, ']' and '"'.
_SD_NAME_RE = re.compile(r"[!#-<>-\\^-~]{1,32}")
_SD_PARAM_RE = re.compile(r' [!#-<>-\\^-~]{1,32}="')
# An RFC 3164 TAG ("app:" or "app[123]:") that some relays put before the CEF payload.
_TAG_RE = re.compile(r"[A-Za-z0-9_./-]{1,48}(?:\[[^\]\s]{0,32}\])?: ?(?=CEF:)")
_KEY_RE = re.compile(r"[A-Za-z0-9_]+")
_CEF_SEVERITY_NAMES = ("unknown", "low", "medium", "high", "very-high")
_HEADER_NAMES = (
    "Version",
    "Device Vendor",
    "Device Product",
    "Device Version",
    "Signature ID",
    "Name",
    "Severity",
)
_EXTENSION_ESCAPES = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}


def parse_message(
    payload: bytes,
    *,
    transport: str = "",
    peer: str = "",
    framing: str = "",
    problems: list[Problem] | None = None,
    received_at: float | None = None,
    peer_certificate: str | None = None,
) -> ReceivedMessage:
    """Check and decode one syslog message carrying CEF. Never raises."""
    if payload.endswith(b"\n") and framing in ("datagram", "octet-counting"):
        # Many senders end a datagram or an octet-counted message with LF; it is not content.
        payload = payload[:-2] if payload.endswith(b"\r\n") else payload[:-1]
    errors = list(problems or [])
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = payload.decode("utf-8", errors="replace")
        errors.append(Problem(INVALID_UTF8, f"invalid UTF-8 at byte {exc.start}"))
    message = ReceivedMessage(
        raw=payload,
        text=text,
        transport=transport,
        peer=peer,
        framing=framing,
        received_at=time.time() if received_at is None else received_at,
        peer_certificate=peer_certificate,
        errors=errors,
    )
    if any(p.code in PARTIAL for p in errors):
        return message
    try:
        _check(message, text)
    except Exception as exc:  # pragma: no cover - a bug here must not stop the receiver
        message.errors.append(Problem("internal-error", f"{type(exc).__name__}: {exc}"))
    return message


def _check(message: ReceivedMessage, text: str) -> None:
    if not text:
        message.errors.append(Problem(BAD_PRI, "empty message"))
        return
    payload = _check_syslog_header(message, text)
    if payload is None:
        return
    if message.header_format == "rfc3164" and not payload.startswith("CEF:"):
        tag = _TAG_RE.match(payload)
        if tag:
            message.notes.append(f"syslog TAG {tag.group(0).strip()!r} before the CEF payload")
            payload = payload[tag.end() :]
    if not payload.startswith("CEF:"):
        message.errors.append(
            Problem(NOT_CEF, f"the message does not start with 'CEF:': {_preview(payload)}")
        )
        return
    _check_cef(message, payload[4:])


def _check_syslog_header(message: ReceivedMessage, text: str) -> str | None:
    """Check PRI and the RFC 3164 / 5424 header; return the MSG part, or None to stop."""
    pri_match = _PRI_RE.match(text)
    if pri_match is None:
        message.errors.append(
            Problem(BAD_PRI, f"no <PRI> at the start of the message: {_preview(text)}")
        )
        return _fallback_cef(text)
    digits = pri_match.group(1)
    pri = int(digits)
    if len(digits) > 1 and digits.startswith("0"):
        message.errors.append(Problem(BAD_PRI, f"PRI <{digits}> has a leading zero"))
    elif pri > 191:
        message.errors.append(Problem(BAD_PRI, f"PRI <{digits}> is out of range 0-191"))
    else:
        message.pri = pri
        message.facility, message.severity = divmod(pri, 8)
    rest = text[pri_match.end() :]
    if rest[:1].isdigit() and re.match(r"\d{1,2} ", rest):
        return _check_rfc5424(message, rest, text)
    return _check_rfc3164(message, rest, text)


def _check_rfc3164(message: ReceivedMessage, rest: str, text: str) -> str | None:
    match = _RFC3164_RE.match(rest)
    problem: str | None = None
    if match is None:
        problem = f"expected 'Mmm dd hh:mm:ss HOST ' after the PRI: {_preview(rest)}"
    else:
        day = match.group("day").strip()
        if match.group("mon") not in _MONTHS:
            problem = f"{match.group('mon')!r} is not a month (Jan..Dec)"
        elif not day.isdigit() or not 1 <= int(day) <= 31:
            problem = f"day {match.group('day')!r} is out of range"
        elif (
            int(match.group("hh")) > 23
            or int(match.group("mm")) > 59
            or int(match.group("ss")) > 60
        ):
            problem = f"time {match.group('hh')}:{match.group('mm')}:{match.group('ss')} is invalid"
        elif match.group("host").startswith("CEF:"):
            problem = "no HOSTNAME between the timestamp and the CEF payload"
        elif not match.group("host").isprintable():
            problem = f"HOSTNAME {_preview(match.group('host'))} has control characters"
    if problem is not None or match is None:
        message.errors.append(Problem(BAD_SYSLOG_HEADER, f"RFC 3164 header: {problem}"))
        return _fallback_cef(text)
    message.header_format = "rfc3164"
    if match.group("day").startswith("0"):
        message.notes.append("day of month padded with 0; RFC 3164 pads it with a space")
    message.timestamp = rest[:15]
    message.host = match.group("host")
    return match.group("msg")


def _check_rfc5424(message: ReceivedMessage, rest: str, text: str) -> str | None:
    match = _RFC5424_RE.match(rest)
    problem: str | None = None
    msg = ""
    if match is None:
        problem = f"expected 'VERSION TIMESTAMP HOST APP PROCID MSGID SD': {_preview(rest)}"
    else:
        fields = match.groupdict()
        limits = (("host", 255), ("app", 48), ("procid", 128), ("msgid", 32))
        if fields["version"] != "1":
            problem = f"version {fields['version']!r} is not 1"
        elif fields["ts"] != "-" and not _valid_rfc3339(fields["ts"]):
            problem = f"timestamp {fields['ts']!r} is not RFC 3339"
        else:
            for name, limit in limits:
                value = fields[name]
                if len(value) > limit or not _PRINTUSASCII_RE.fullmatch(value):
                    problem = f"{name.upper()} {_preview(value)} is invalid"
                    break
        if problem is None:
            sd, msg_part, sd_problem = _split_structured_data(fields["rest"])
            if sd_problem is not None:
                problem = f"STRUCTURED-DATA: {sd_problem}"
            else:
                message.structured_data = sd
                msg = msg_part
    if problem is not None or match is None:
        message.errors.append(Problem(BAD_SYSLOG_HEADER, f"RFC 5424 header: {problem}"))
        return _fallback_cef(text)
    message.header_format = "rfc5424"
    message.timestamp = match.group("ts")
    message.host = match.group("host")
    message.app_name = match.group("app")
    message.procid = match.group("procid")
    message.msgid = match.group("msgid")
    if msg.startswith("\ufeff"):
        message.notes.append("MSG starts with a UTF-8 BOM")
        msg = msg[1:]
    return msg


def _valid_rfc3339(value: str) -> bool:
    import datetime as dt

    if not _RFC3339_RE.fullmatch(value):
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _split_structured_data(rest: str) -> tuple[str, str, str | None]:
    """Split ``SD [SP MSG]``; return (sd, msg, problem)."""
    if rest.startswith("-"):
        end = 1
    elif rest.startswith("["):
        end = 0
        while end < len(rest) and rest[end] == "[":
            end = _skip_sd_element(rest, end)
            if end < 0:
                return "", "", "unterminated or malformed [element]"
    else:
        return "", "", f"expected '-' or '[': {_preview(rest)}"
    if end == len(rest):
        return rest, "", None
    if rest[end] != " ":
        return "", "", f"expected a space after the STRUCTURED-DATA, found {rest[end]!r}"
    return rest[:end], rest[end + 1 :], None


def _skip_sd_element(text: str, start: int) -> int:
    """Index after the SD-ELEMENT at ``start`` (which is '['), or -1 if it is malformed."""
    sd_id = _SD_NAME_RE.match(text, start + 1)
    if sd_id is None:
        return -1
    index = sd_id.end()
    while index < len(text) and text[index] == " ":
        param = _SD_PARAM_RE.match(text, index)
        if param is None:
            return -1
        index = param.end()
        while index < len(text) and text[index] != '"':
            index += 2 if text[index] == "\\" else 1
        if index >= len(text):
            return -1
        index += 1  # the closing quote
    if index < len(text) and text[index] == "]":
        return index + 1
    return -1


def _fallback_cef(text: str) -> str | None:
    """After a bad syslog header, still decode a CEF payload if there is one."""
    index = text.find("CEF:")
    return text[index:] if index >= 0 else None


def _check_cef(message: ReceivedMessage, body: str) -> None:
    """Check ``body`` (the text after ``CEF:``): seven header fields, then the extensions."""
    fields: list[str] = []
    current: list[str] = []
    bad_escapes: list[str] = []
    index = 0
    while index < len(body) and len(fields) < 7:
        char = body[index]
        if char == "\\":
            following = body[index + 1 : index + 2]
            if following in ("\\", "|"):
                current.append(following)
                index += 2
                continue
            bad_escapes.append(f"\\{following}" if following else "\\ at the end")
            current.append(char)
        elif char == "|":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
        index += 1
    if bad_escapes:
        message.errors.append(
            Problem(
                BAD_HEADER_ESCAPE,
                f"invalid escape {bad_escapes[0]!r} in the CEF header (only \\\\ and \\| are "
                "allowed)",
            )
        )
    if len(fields) < 7:
        message.errors.append(
            Problem(
                BAD_CEF_HEADER_COUNT,
                f"the CEF header has {len(fields)} of 7 '|'-terminated fields (Version, "
                "Device Vendor, Device Product, Device Version, Signature ID, Name, Severity)",
            )
        )
    for name, value in zip(_HEADER_NAMES, fields, strict=False):
        _set_header_field(message, name, value)
    if any("\r" in value or "\n" in value for value in fields):
        message.errors.append(Problem(RAW_NEWLINE, "a CR or LF inside a CEF header field"))
    if len(fields) == 7:
        _check_extensions(message, body[index:])


def _set_header_field(message: ReceivedMessage, name: str, value: str) -> None:
    if name == "Version":
        message.cef_version = value
        if value == "0.0":
            message.notes.append("CEF version written as 0.0 (the source's form); strict is 0")
        elif value != "0":
            message.errors.append(
                Problem(BAD_CEF_VERSION, f"CEF version {value!r}, expected 0 (or 0.0)")
            )
        return
    if name == "Severity":
        message.cef_severity = value
        known = value.isdigit() and int(value) <= 10 and (value == "0" or value[0] != "0")
        if not known and value.lower() not in _CEF_SEVERITY_NAMES:
            message.errors.append(
                Problem(
                    BAD_CEF_SEVERITY,
                    f"severity {value!r} is not 0-10 or Unknown/Low/Medium/High/Very-High",
                )
            )
        return
    attribute = {
        "Device Vendor": "vendor",
        "Device Product": "product",
        "Device Version": "device_version",
        "Signature ID": "signature_id",
        "Name": "name",
    }[name]
    setattr(message, attribute, value)
    if not value and name != "Device Version":
        message.errors.append(Problem(EMPTY_HEADER_FIELD, f"the CEF {name} is empty"))


class _Found:
    """The problems of one extension, each kind recorded once (the first occurrence)."""

    def __init__(self) -> None:
        self.problems: dict[str, Problem] = {}

    def flag(self, code: str, detail: str) -> None:
        self.problems.setdefault(code, Problem(code, detail))


def _check_extensions(message: ReceivedMessage, text: str) -> None:
    """Decode ``key=value`` pairs strictly; record each problem once per kind."""
    found = _Found()
    chars, literal = _unescape_extension(text, found)
    pairs = _split_pairs(chars, literal, found)
    if not pairs and "".join(chars).strip():
        found.flag(BAD_EXTENSION, f"no key=value pairs in the extension: {_preview(text)}")
    _store_values(message, pairs, chars, literal, found)
    message.errors.extend(found.problems.values())


def _unescape_extension(text: str, found: _Found) -> tuple[list[str], list[bool]]:
    """The decoded characters, and for each whether it came from an escape."""
    chars: list[str] = []  # decoded characters
    literal: list[bool] = []  # True for a character that came from an escape
    bad_escapes: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            following = text[index + 1 : index + 2]
            decoded = _EXTENSION_ESCAPES.get(following)
            if decoded is None:
                bad_escapes.append(f"\\{following}" if following else "\\ at the end")
                chars.append("\\")
                literal.append(True)
                index += 1
                continue
            chars.append(decoded)
            literal.append(True)
            index += 2
            continue
        chars.append(char)
        literal.append(False)
        index += 1
    if bad_escapes:
        found.flag(
            BAD_EXTENSION_ESCAPE,
            f"invalid escape {bad_escapes[0]!r} in an extension value (only \\\\ \\= \\n \\r "
            "are allowed)",
        )
    return chars, literal


def _split_pairs(
    chars: list[str], literal: list[bool], found: _Found
) -> list[tuple[str, int, int]]:
    """Find the keys: each unescaped '=' ends the key after the last unescaped space."""
    pairs: list[tuple[str, int, int]] = []  # key, value start, value end (exclusive)
    value_start: int | None = None
    start = 0
    while start < len(chars) and chars[start] == " " and not literal[start]:
        start += 1
    last_space = -1  # kept as we go: searching back from each '=' would be quadratic
    for position, char in enumerate(chars):
        if literal[position] or char not in " =":
            continue
        if char == " ":
            last_space = position
            continue
        lower = start if value_start is None else value_start
        space = last_space if last_space >= lower else lower - 1
        if value_start is None:
            if space >= lower:
                found.flag(
                    BAD_EXTENSION,
                    f"text before the first key: {_preview(''.join(chars[start:space]))}",
                )
        elif space < lower or space == position - 1:
            found.flag(
                UNESCAPED_EQUALS,
                f"an unescaped '=' inside the value of {pairs[-1][0]!r} (write \\=)",
            )
            continue
        else:
            key, previous_start, _ = pairs[-1]
            pairs[-1] = (key, previous_start, space)
        key_start = space + 1
        key = "".join(chars[key_start:position])
        if not _KEY_RE.fullmatch(key) or any(literal[key_start:position]):
            found.flag(
                BAD_EXTENSION_KEY, f"invalid extension key {_preview(key)} (keys are [A-Za-z0-9_]+)"
            )
        pairs.append((key, position + 1, len(chars)))
        value_start = position + 1
    return pairs


def _store_values(
    message: ReceivedMessage,
    pairs: list[tuple[str, int, int]],
    chars: list[str],
    literal: list[bool],
    found: _Found,
) -> None:
    for key, value_begin, value_end in pairs:
        raw_value = chars[value_begin:value_end]
        flags = literal[value_begin:value_end]
        while raw_value and raw_value[-1] == " " and not flags[-1]:
            raw_value.pop()
            flags.pop()
        if any(c in "\r\n" and not lit for c, lit in zip(raw_value, flags, strict=True)):
            found.flag(
                RAW_NEWLINE, f"an unescaped CR or LF in the value of {key!r} (write \\r \\n)"
            )
        if key in message.extensions:
            found.flag(DUPLICATE_KEY, f"extension key {key!r} appears more than once")
            continue
        message.extensions[key] = "".join(raw_value)


def _preview(text: str, limit: int = 60) -> str:
    shown = text if len(text) <= limit else text[:limit] + "…"
    return repr(shown)
