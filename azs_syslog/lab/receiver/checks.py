"""Strict checks of one message: the syslog header here, then the CEF payload (``cef``).

``parse_message`` checks and decodes one message: the syslog header (PRI, then RFC 3164 or
RFC 5424) and the CEF payload (seven header fields, only ``\\\\`` and ``\\|`` escapes in the
header; ``key=value`` extensions with keys ``[A-Za-z0-9_]+`` and only the escapes ``\\\\``
``\\=`` ``\\n`` ``\\r`` in values). Every failure is a ``Problem`` with a stable code; the
parser never raises on any input.
"""

from __future__ import annotations

import re
import time

from azs_syslog.config.vocabulary import MONTHS as _MONTHS
from azs_syslog.lab.receiver.cef import check_cef
from azs_syslog.lab.receiver.message import (
    BAD_PRI,
    BAD_SYSLOG_HEADER,
    INVALID_UTF8,
    NOT_CEF,
    PARTIAL,
    Problem,
    ReceivedMessage,
    preview,
)

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
            Problem(NOT_CEF, f"the message does not start with 'CEF:': {preview(payload)}")
        )
        return
    check_cef(message, payload[4:])


def _check_syslog_header(message: ReceivedMessage, text: str) -> str | None:
    """Check PRI and the RFC 3164 / 5424 header; return the MSG part, or None to stop."""
    pri_match = _PRI_RE.match(text)
    if pri_match is None:
        message.errors.append(
            Problem(BAD_PRI, f"no <PRI> at the start of the message: {preview(text)}")
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
        problem = f"expected 'Mmm dd hh:mm:ss HOST ' after the PRI: {preview(rest)}"
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
            problem = f"HOSTNAME {preview(match.group('host'))} has control characters"
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
        problem = f"expected 'VERSION TIMESTAMP HOST APP PROCID MSGID SD': {preview(rest)}"
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
                    problem = f"{name.upper()} {preview(value)} is invalid"
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
        return "", "", f"expected '-' or '[': {preview(rest)}"
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
