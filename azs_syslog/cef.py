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


def escape_values(values: list[str]) -> list[str]:
    """Escape every extension value; one scan over all of them when none needs it (the rule)."""
    joined = "\x00".join(values)
    if (
        "\\" in joined
        or "=" in joined
        or "\r" in joined
        or "\n" in joined
        or joined.count("\x00") >= len(values)
    ):
        table = _VALUE_TABLE
        return [v.translate(table) for v in values]
    return values


def header(version: str, signature_id: str, name: str, severity: int) -> str:
    """The seven CEF header fields, each followed by ``|``."""
    return f"{cef_prefix(version)}{escape_header(signature_id)}|{escape_header(name)}|{severity}|"


_templates: dict[tuple[str, ...], str] = {}


def extension_template(keys: tuple[str, ...]) -> str:
    """`` key1=%s key2=%s ...`` for ``keys`` (cached: events of one type share their keys)."""
    template = _templates.get(keys)
    if template is None:
        template = "".join(f" {key}=%s" for key in keys)
        if len(_templates) >= 4096:
            _templates.clear()
        _templates[keys] = template
    return template


def extensions(time_ms: int, keys: tuple[str, ...], values: list[str]) -> str:
    """``rt=<time_ms>`` and the escaped extension pairs, in order."""
    return f"rt={time_ms}" + extension_template(keys) % tuple(escape_values(values))


def payload(event: Event, time_ms: int, version: str = "0") -> str:
    """The whole CEF payload of ``event`` (``rt`` = ``time_ms``)."""
    return header(version, event.signature_id, event.name, event.severity) + extensions(
        time_ms, event.keys, event.values
    )
