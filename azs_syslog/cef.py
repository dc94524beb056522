"""CEF: escaping and the payload of one event (SPEC sections 5 and 6). Pure functions.

Header fields escape ``\\`` and ``|``; CR and LF there become a space. Extension values escape
``\\``, ``=``, CR (``\\r``) and LF (``\\n``); ``|`` stays as it is. NUL cannot be written in a
CEF message that strict receivers accept, and no escape exists for it: it becomes U+FFFD (the
Unicode replacement character) everywhere **[project]**. So no input can create a new header
field, a new extension pair or a new (syslog) message.
"""

from __future__ import annotations

from typing import Final

from azs_syslog.events.common import Event

VENDOR: Final = "Microsoft"
PRODUCT: Final = "Microsoft Azure Stack Hub"
DEVICE_VERSION: Final = "1.0"
# "0" is valid CEF; the source writes "0.0", offered for byte-for-byte fidelity [project].
CEF_VERSIONS: Final = ("0", "0.0")

_HEADER_TABLE: Final = str.maketrans(
    {"\\": "\\\\", "|": "\\|", "\r": " ", "\n": " ", "\x00": "\ufffd"}
)
_VALUE_TABLE: Final = str.maketrans(
    {"\\": "\\\\", "=": "\\=", "\r": "\\r", "\n": "\\n", "\x00": "\ufffd"}
)

# CEF severity (0-10) -> syslog severity (SPEC section 6): 9-10 crit (2), 7-8 err (3),
# 4-6 warning (4), 1-3 info (6), 0 debug (7).
SYSLOG_SEVERITY: Final = (7, 6, 6, 6, 4, 4, 4, 3, 3, 2, 2)


def cef_prefix(version: str = "0") -> str:
    """``CEF:<version>|Microsoft|Microsoft Azure Stack Hub|1.0|``: the constant header part."""
    return f"CEF:{version}|{VENDOR}|{PRODUCT}|{DEVICE_VERSION}|"


def escape_header(text: str) -> str:
    """Escape one CEF header field."""
    if "\\" in text or "|" in text or "\r" in text or "\n" in text or "\x00" in text:
        return text.translate(_HEADER_TABLE)
    return text


def escape_value(text: str) -> str:
    """Escape one CEF extension value."""
    if "\\" in text or "=" in text or "\r" in text or "\n" in text or "\x00" in text:
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


def encode_extensions(keys: tuple[str, ...], template: str, values: list[str | int]) -> str:
    """`` key1=value1 key2=value2 ...``, values escaped, from ``extension_template(keys)``.

    The template puts NUL where each ``=`` goes, so the text is formatted in one step, checked
    for characters to escape in one scan, escaped in one pass per character when needed (keys
    hold none of them, so escaping the whole text escapes exactly the values), and the NULs
    then become ``=``. A value holding NUL itself takes the slow path, one value at a time.
    """
    text = template % tuple(values)
    if text.count("\x00") != len(values):
        escaped = escape_values(values)
        return "".join(f" {key}={value}" for key, value in zip(keys, escaped, strict=True))
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "=" in text:
        text = text.replace("=", "\\=")
    if "\r" in text:
        text = text.replace("\r", "\\r")
    if "\n" in text:
        text = text.replace("\n", "\\n")
    return text.replace("\x00", "=")


def escape_extension_text(text: str) -> str:
    """Escape `` key1=value1 key2=value2 ...`` as a whole, when no value holds ``=`` (keys hold
    nothing to escape): one scan per character, a pass only for those present."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\r" in text:
        text = text.replace("\r", "\\r")
    if "\n" in text:
        text = text.replace("\n", "\\n")
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text


def extensions(time_ms: int, keys: tuple[str, ...], values: list[str | int]) -> str:
    """``rt=<time_ms>`` and the escaped extension pairs, in order."""
    return f"rt={time_ms}" + encode_extensions(keys, extension_template(keys), values)


def payload(event: Event, time_ms: int, version: str = "0") -> str:
    """The whole CEF payload of ``event`` (``rt`` = ``time_ms``)."""
    return header(version, event.signature_id, event.name, event.severity) + extensions(
        time_ms, event.keys, event.values
    )
