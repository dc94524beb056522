"""Strict checks of a CEF payload: the seven header fields, then the extensions.

Only ``\\\\`` and ``\\|`` are escapes in the header; extension keys are ``[A-Za-z0-9_]+`` and
only ``\\\\`` ``\\=`` ``\\n`` ``\\r`` are escapes in the values. Each problem is recorded on the
message; nothing here raises.
"""

from __future__ import annotations

import re

from azs_syslog.lab.receiver.message import (
    BAD_CEF_HEADER_COUNT,
    BAD_CEF_SEVERITY,
    BAD_CEF_VERSION,
    BAD_EXTENSION,
    BAD_EXTENSION_ESCAPE,
    BAD_EXTENSION_KEY,
    BAD_HEADER_ESCAPE,
    DUPLICATE_KEY,
    EMPTY_HEADER_FIELD,
    RAW_NEWLINE,
    UNESCAPED_EQUALS,
    Problem,
    ReceivedMessage,
    preview,
)

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


def check_cef(message: ReceivedMessage, body: str) -> None:
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
        found.flag(BAD_EXTENSION, f"no key=value pairs in the extension: {preview(text)}")
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
                    f"text before the first key: {preview(''.join(chars[start:space]))}",
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
                BAD_EXTENSION_KEY, f"invalid extension key {preview(key)} (keys are [A-Za-z0-9_]+)"
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
