"""The compiled half of the renderer's fused path (azs_syslog/_speedups.c); optional."""

from typing import Any

Entry = tuple[str, int, bytes | None, int, str | None]

def compile_plan(size: int, nret: int, entries: tuple[Entry, ...], /) -> object: ...
def render(obj: dict[str, Any], plan: object, /) -> tuple[Any, ...] | None: ...
