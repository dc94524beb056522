"""Rules written once as Python source, and the functions compiled from it.

A few rules of the Windows events (how an array or integer keywords are written, whether a
JSON text holds a character to escape) run once per event on the pure-Python encoder's hot
path. They are written here as source text: the reference path runs functions compiled from
that text (``define``), and ``encode/plan_code.py`` inlines the same text in the function it
generates for each shape of event, so that both paths run the same rule and the fused one makes
no Python call per field.

Generated source never holds event data: only names from fixed tables (fields, CEF keys) and
constants, written with ``repr`` or checked to be identifiers.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from types import CodeType
from typing import Any

from azs_syslog.events.common import remember

# Source text -> its code object: the renderers of one process share the code of a shape.
_CODE: dict[str, CodeType] = {}


def identifier(name: str) -> str:
    """``name``, which must be a Python identifier (a name from a fixed table)."""
    if not name.isidentifier():
        raise ValueError(f"not an identifier: {name!r}")
    return name


def define(name: str, params: str, body: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    """The function ``def name(params): body``, compiled once per source text; its globals
    are a copy of ``namespace`` (the names ``body`` uses)."""
    source = f"def {identifier(name)}({params}):\n{textwrap.indent(body, '    ')}"
    code = _CODE.get(source)
    if code is None:
        code = remember(_CODE, source, compile(source, f"<generated {name}>", "exec"), 1024)
    scope = dict(namespace)
    exec(code, scope)  # noqa: S102 - source built from fixed tables, never from event data
    function: Callable[..., Any] = scope[name]
    return function


def expression(template: str, **names: str) -> str:
    """``template`` (a rule: Python source with ``{placeholders}``) with each placeholder
    replaced by the source text given for it (an identifier, or a ``repr``)."""
    return template.format(**names)
