"""CEF: escaping and the payload of one event (docs/cef-mapping.md). Pure functions.

Header fields escape ``\\`` and ``|``; CR and LF there become a space. Extension values escape
``\\``, ``=``, CR (``\\r``) and LF (``\\n``); ``|`` stays as it is. NUL cannot be written in a
CEF message that strict receivers accept, and no escape exists for it: it becomes U+FFFD (the
Unicode replacement character) everywhere **[project]**. So no input can create a new header
field, a new extension pair or a new (syslog) message.

Control characters never reach the wire raw **[project]**: receivers and the terminals their
operators read logs on take some for line breaks (VT, FF, FS, GS, RS, NEL U+0085, LINE
SEPARATOR U+2028, PARAGRAPH SEPARATOR U+2029: Unicode line boundaries, split on by
``str.splitlines`` and many log viewers) and obey others (ESC sequences, C1 controls such as
CSI U+009B). In an extension value the line-break-like ones become CEF's ``\\n`` (the text
keeps its line structure), TAB a space, and every other control (the rest of C0, DEL, the rest
of C1) U+FFFD. In a header field every control but NUL becomes a space (CR and LF already did).
"""

from __future__ import annotations

import re
from typing import Final

from azs_syslog.config.vocabulary import CEF_VERSIONS as CEF_VERSIONS
from azs_syslog.events.common import Event

VENDOR: Final = "Microsoft"
PRODUCT: Final = "Microsoft Azure Stack Hub"
DEVICE_VERSION: Final = "1.0"

# Controls a receiver or a terminal may take for a line break: written as CEF's "\n".
LINE_BREAKS: Final = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
# Every other control character but the four CEF already has rules for (NUL, TAB, CR, LF).
_C0: Final = "".join(chr(c) for c in range(0x20) if chr(c) not in "\x00\t\r\n")
OTHER_CONTROLS: Final = "".join(
    c for c in _C0 + "\x7f" + "".join(map(chr, range(0x80, 0xA0))) if c not in LINE_BREAKS
)
# Extension values: the controls CR and LF escapes do not cover.
_CONTROL_TABLE: Final = str.maketrans(
    {"\t": " ", **dict.fromkeys(LINE_BREAKS, "\\n"), **dict.fromkeys(OTHER_CONTROLS, "\ufffd")}
)
_CONTROLS: Final = re.compile(f"[\t{LINE_BREAKS}{OTHER_CONTROLS}]")
_CONTROL_BYTES: Final = bytes(
    c for c in range(0x80) if chr(c) in "\t" + LINE_BREAKS + OTHER_CONTROLS
)
_HEADER_TABLE: Final = str.maketrans(
    {
        "\\": "\\\\",
        "|": "\\|",
        **dict.fromkeys("\t\r\n" + LINE_BREAKS + OTHER_CONTROLS, " "),
        "\x00": "\ufffd",
    }
)
_VALUE_TABLE: Final = str.maketrans(
    {
        "\\": "\\\\",
        "=": "\\=",
        "\r": "\\r",
        "\n": "\\n",
        "\x00": "\ufffd",
        "\t": " ",
        **dict.fromkeys(LINE_BREAKS, "\\n"),
        **dict.fromkeys(OTHER_CONTROLS, "\ufffd"),
    }
)

# CEF severity (0-10) -> syslog severity (docs/cef-mapping.md): 9-10 crit (2), 7-8 err (3),
# 4-6 warning (4), 1-3 info (6), 0 debug (7).
SYSLOG_SEVERITY: Final = (7, 6, 6, 6, 4, 4, 4, 3, 3, 2, 2)


def cef_prefix(version: str = "0") -> str:
    """``CEF:<version>|Microsoft|Microsoft Azure Stack Hub|1.0|``: the constant header part."""
    return f"CEF:{version}|{VENDOR}|{PRODUCT}|{DEVICE_VERSION}|"


def escape_header(text: str) -> str:
    """Escape one CEF header field."""
    # isprintable() is False for every control (and for a few other characters, which the
    # table leaves as they are): one fast C-level scan for the common case.
    if not text.isprintable() or "\\" in text or "|" in text:
        return text.translate(_HEADER_TABLE)
    return text


def escape_value(text: str) -> str:
    """Escape one CEF extension value."""
    if not text.isprintable() or "\\" in text or "=" in text:
        return text.translate(_VALUE_TABLE)
    return text


def escape_values(values: list[str | int]) -> list[str]:
    """Escape every extension value (integers are written in decimal)."""
    return [escape_value(v) if type(v) is str else str(v) for v in values]


def header(version: str, signature_id: str, name: str, severity: int) -> str:
    """The seven CEF header fields, each followed by ``|``."""
    return f"{cef_prefix(version)}{escape_header(signature_id)}|{escape_header(name)}|{severity}|"


_templates: dict[tuple[str, ...], str] = {}


def extension_template(keys: tuple[str, ...]) -> str:
    """`` key1\x00%s key2\x00%s ...`` for ``keys``: see ``encode_extensions`` (cached: events of
    one shape share their keys)."""
    template = _templates.get(keys)
    if template is None:
        template = "".join(f" {key}\x00%s" for key in keys)
        if len(_templates) >= 4096:
            _templates.clear()
        _templates[keys] = template
    return template


def encode_extensions(
    keys: tuple[str, ...], template: str, values: list[str | int], *, controls: bool = True
) -> str:
    """`` key1=value1 key2=value2 ...``, values escaped, from ``extension_template(keys)``.

    The template puts NUL where each ``=`` goes, so the text is formatted in one step, checked
    for characters to escape in one scan, escaped in one pass per character when needed (keys
    hold none of them, so escaping the whole text escapes exactly the values), and the NULs
    then become ``=``. A value holding NUL itself takes the slow path, one value at a time.
    ``controls=False``: the caller knows no value holds a control character other than CR, LF
    and NUL (see ``plan.may_hold_controls``), so none is looked for.
    """
    text = template % tuple(values)
    if text.count("\x00") != len(values):
        escaped = escape_values(values)
        return "".join(f" {key}={value}" for key, value in zip(keys, escaped, strict=True))
    return _escape_text(text, "=", True, controls)


def escape_extension_text(text: str, *, controls: bool = True) -> str:
    """Escape `` key1=value1 key2=value2 ...`` as a whole, when no value holds ``=`` (keys hold
    nothing to escape): one scan per character, a pass only for those present. ``controls``:
    as for ``encode_extensions``."""
    return _escape_text(text, "\ufffd", False, controls)


def _escape_text(text: str, nul: str, equals: bool, controls: bool) -> str:
    """Escape ``\\``, ``=`` (``equals``: it is in values only), CR and LF in ``text``, then
    write NUL as ``nul`` and map the other controls (``controls``): one scan per character, a
    pass only for those present."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if equals and "=" in text:
        text = text.replace("=", "\\=")
    if "\r" in text:
        text = text.replace("\r", "\\r")
    if "\n" in text:
        text = text.replace("\n", "\\n")
    if "\x00" in text:
        text = text.replace("\x00", nul)
    return _map_controls(text) if controls else text


def _map_controls(text: str) -> str:
    """Map the controls the CR / LF / NUL rules do not cover (``text`` holds none of those
    three any more). Most texts are ASCII: for them, deleting the control bytes from the UTF-8
    and comparing lengths is one C-level pass, several times faster than a regex search."""
    if text.isascii():
        data = text.encode()
        if len(data.translate(None, _CONTROL_BYTES)) == len(data):
            return text
    elif _CONTROLS.search(text) is None:
        return text
    return text.translate(_CONTROL_TABLE)


def extensions(time_ms: int, keys: tuple[str, ...], values: list[str | int]) -> str:
    """``rt=<time_ms>`` and the escaped extension pairs, in order."""
    return f"rt={time_ms}" + encode_extensions(keys, extension_template(keys), values)


def payload(event: Event, time_ms: int, version: str = "0") -> str:
    """The whole CEF payload of ``event`` (``rt`` = ``time_ms``)."""
    return header(version, event.signature_id, event.name, event.severity) + extensions(
        time_ms, event.keys, event.values
    )
