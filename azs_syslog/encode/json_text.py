"""What the JSON text of an event says about its values before they are looked at: whether
any can hold a character CEF escapes (``plain_json``) or a control character
(``may_hold_controls``). One C-level scan each on most lines."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from azs_syslog.events.source import define, expression

# Controls a JSON text may hold unescaped (JSON escapes only U+0000-U+001F): DEL, C1, U+2028,
# U+2029. A line holding one takes the escaping path (cef.py maps them).
RAW_CONTROLS: Final = re.compile("[\x7f-\x9f\u2028\u2029]")
# JSON escapes that write no control character but CR and LF (an escaped backslash aside).
_HARMLESS_ESCAPES: Final = frozenset(('"', "/", "n", "r"))

# ``plain_json`` as Python source over the text ``{line}`` (events/source.py): the code
# encode/plan_code.py generates per shape inlines it; ``raw_controls`` is RAW_CONTROLS.search.
PLAIN_JSON_RULE: Final = (
    '"\\\\" not in {line} and "=" not in {line} and "\\x7f" not in {line} '
    "and ({line}.isascii() or raw_controls({line}) is None)"
)

# ``plain_json(line)``: whether no value of JSON text ``line`` can hold a character CEF
# escapes in a value (``\`` ``=`` and the controls): JSON writes C0 controls as escapes, so it
# holds no backslash, no ``=`` and none of the controls JSON may hold raw (most lines).
plain_json: Final[Callable[[str], bool]] = define(
    "plain_json",
    "line",
    f"return {expression(PLAIN_JSON_RULE, line='line')}\n",
    {"raw_controls": RAW_CONTROLS.search},
)


def may_hold_controls(line: str) -> bool:
    """Whether the values of JSON text ``line`` may hold a control character other than CR,
    LF and NUL (docs/cef-mapping.md): JSON writes those as escapes other than ``\\\\``,
    ``\\"``, ``\\/``, ``\\n`` and ``\\r`` (``\\t``, ``\\u001b`` ...), or holds them raw (DEL, C1,
    U+2028, U+2029). Cheap where the exact check on the values is not: one split at the
    backslashes (Windows paths hold a few), then a look at the character after each escape.
    A false positive (``\\u00e9``) only costs the exact check."""
    if "\x7f" in line or (not line.isascii() and RAW_CONTROLS.search(line) is not None):
        return True
    pieces = line.split("\\")
    count = len(pieces)
    index = 1
    while index < count:
        piece = pieces[index]
        if not piece:  # an escaped backslash: the piece after its second half is plain text
            index += 2
            continue
        if piece[0] not in _HARMLESS_ESCAPES:
            return True
        index += 1
    return False


def as_text(line: bytes) -> str | bytes:
    """A JSON line read as bytes, as text when that changes nothing but the speed: the
    renderer's fused path takes text only (bytes go down the reference path, several times
    slower), and for a line that starts with ``{``, holds no NUL and is valid UTF-8,
    ``json.loads`` of the bytes and of the text are the same (no BOM, no UTF-16/32 to detect,
    no surrogates to let pass). Any other line stays bytes, to be read as before."""
    if line[:1] == b"{" and b"\x00" not in line:
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return line
