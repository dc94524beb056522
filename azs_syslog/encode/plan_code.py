"""The pure-Python fused path: one function generated for each shape of Windows event.

``plan.RenderPlan`` makes, for the shape it covers, the function ``fields(line, obj)`` that
returns what the compiled ``_speedups.render_text`` returns (``plan.Fields``: the pairs, then the
values of ``plan.NATIVE_RETURNED``), or ``None`` for another shape or any doubt. Its source is
written from the shape (which fields, of which JSON type) and the rules of ``events.windows``
and ``json_text`` as source text (``LIST_RULE``, ``NAMES_RULE``, ``KEYWORDS_RULE``,
``SUFFIXES``, ``PLAIN_JSON_RULE``), inlined; it is compiled once per shape
(``events.source.define``). So an event of a known shape costs no Python call per field: its
values are unpacked into local variables, checked and converted in line, and written with one
f-string that leaves out the empty ones, as the reference path does.

The generated source never holds event data: only the field names and CEF keys of
``events.windows.EXTENSIONS`` (checked to be identifiers) and constants written with ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, Final

from azs_syslog.encode import cef
from azs_syslog.encode.json_text import PLAIN_JSON_RULE, RAW_CONTROLS, may_hold_controls
from azs_syslog.errors import EventError
from azs_syslog.events.source import define, expression, identifier
from azs_syslog.events.windows import (
    FIELD_KEYS,
    FIELD_KINDS,
    KEYWORDS,
    KEYWORDS_RULE,
    LEVEL,
    LIST,
    LIST_RULE,
    NAMES,
    NAMES_RULE,
    SUFFIXES,
    UINT,
    join_list,
)

_NUMBERS: Final = (UINT, LEVEL)  # written with str(): never empty


def escaped_pairs(keys: tuple[str, ...], values: tuple[Any, ...], controls: bool) -> str:
    """The escaped extension pairs of ``keys`` and ``values`` but the empty ones, when a value
    may hold ``=`` (``cef.encode_extensions``)."""
    kept = [index for index, value in enumerate(values) if value != ""]
    kept_keys = tuple(keys[index] for index in kept)
    return cef.encode_extensions(
        kept_keys,
        cef.extension_template(kept_keys),
        [values[index] for index in kept],
        controls=controls,
    )


_NAMESPACE: Final[dict[str, Any]] = {
    "join_list": join_list,
    "EventError": EventError,
    "may_hold_controls": may_hold_controls,
    "raw_controls": RAW_CONTROLS.search,
    "escape_extension_text": cef.escape_extension_text,
    "escaped_pairs": escaped_pairs,
}


def fields_source(
    size: int,
    fields: Sequence[str],
    extra: Sequence[str],
    types: dict[str, type],
    returned: Sequence[str],
) -> str:
    """The body of ``fields(line, obj)`` for objects of ``size`` members holding the written
    extension ``fields`` then the ``extra`` ones (``getter`` returns them in that order; each
    of the exact type in ``types``, which the global ``types`` holds in that order). It
    returns the extension pairs (UTF-8), then the values of the fields ``returned`` (None
    when absent)."""
    # Only names from the fixed tables (identifiers) and repr'd constants go into the source:
    # never a value of an event.
    every = [*fields, *extra]
    var = {field: "v_" + identifier(field) for field in every}
    kinds = {field: FIELD_KINDS[field][1] for field in fields}
    checks = [f"{var['type']} != 'windows'", f"not 0 <= {var['level']} <= 5"]
    checks += [f"{var[field]} < 0" for field in fields if kinds[field] == UINT]
    checks.append(f"not {var['provider_name']}")
    source = [
        f"if len(obj) != {size!r}:\n    return None\n",
        "try:\n    raw = getter(obj)\nexcept KeyError:\n    return None\n",
        "if tuple(map(type, raw)) != types:\n    return None\n",
        f"{', '.join(var[field] for field in every)} = raw\n",
        "if " + " or ".join(checks) + ":\n    return None\n",
    ]
    if "event_data_names" in every:  # one name per value of event_data
        names, data = var["event_data_names"], var["event_data"]
        source.append(f"if len({names}) != len({data}):\n    return None\n")
    source.append(_conversions(fields, extra, types, var))
    source.append(_extensions(fields, kinds, var))
    returned = ", ".join(var.get(field, "None") for field in returned)
    source.append(
        "try:\n    encoded = extensions.encode()\n"
        "except UnicodeEncodeError:  # lone surrogates\n    return None\n"
        f"return (encoded, {returned})\n"
    )
    return "".join(source)


def _conversions(
    fields: Sequence[str], extra: Sequence[str], types: dict[str, type], var: dict[str, str]
) -> str:
    """The values converted as written (the rules of events.windows), in line; an array item
    of another type, or names that are not strings, return ``None``."""
    steps = []
    for field in fields:
        kind, name = FIELD_KINDS[field][1], var[field]
        if kind == LIST and types[field] is list:
            steps.append(expression(LIST_RULE, out=name, value=name, field=repr(field)))
            if field in SUFFIXES:
                steps.append(f"{name} = {name} + {SUFFIXES[field]!r}\n")
        elif kind == NAMES:
            steps.append(expression(NAMES_RULE, out=name, value=name))
        elif kind == KEYWORDS and types[field] is int:
            steps.append(expression(KEYWORDS_RULE, out=name, value=name))
    if "event_data_names" in extra:  # checked (strings only), not written
        steps.append(expression(NAMES_RULE, out="_", value=var["event_data_names"]))
    if not steps:
        return ""
    body = "".join("    " + line + "\n" for line in "".join(steps).splitlines())
    return f"try:\n{body}except (TypeError, EventError):\n    return None\n"


def _extensions(fields: Sequence[str], kinds: dict[str, int], var: dict[str, str]) -> str:
    """`` Key=value`` of each written field, an empty text left out; escaped when the line
    says a value may need it (PLAIN_JSON_RULE): as a whole, or pair by pair when a value may
    hold ``=``."""
    pieces = []
    for field in fields:
        key, name = identifier(FIELD_KEYS[field]), var[field]
        if kinds[field] in _NUMBERS:
            pieces.append(f" {key}={{{name}}}")
        else:
            pieces.append(f"{{{' ' + key + '='!r} if {name} else ''}}{{{name}}}")
    texts = "".join(f"{{{var[f]}}}" for f in fields if kinds[f] not in _NUMBERS)
    keys = tuple(FIELD_KEYS[field] for field in fields)
    values = ", ".join(var[field] for field in fields)
    pairs = "".join(pieces)
    return (
        f'extensions = f"{pairs}"\n'
        f"if not ({expression(PLAIN_JSON_RULE, line='line')}):\n"
        "    controls = may_hold_controls(line)\n"
        f'    if "=" in line or "=" in f"{texts}":\n'
        f"        extensions = escaped_pairs({keys!r}, ({values},), controls)\n"
        "    else:\n"
        "        extensions = escape_extension_text(extensions, controls=controls)\n"
    )


def make_fields(
    size: int,
    fields: Sequence[str],
    extra: Sequence[str],
    types: dict[str, type],
    returned: Sequence[str],
) -> Callable[[str, dict[str, Any]], Any]:
    """The generated ``fields(line, obj)`` of a shape (see ``fields_source``)."""
    every = [*fields, *extra]
    namespace = {
        **_NAMESPACE,
        "getter": itemgetter(*every),
        "types": tuple(types[field] for field in every),
    }
    return define(
        "fields", "line, obj", fields_source(size, fields, extra, types, returned), namespace
    )
