"""The compiled half of the renderer's fused path (azs_syslog/encode/_speedups*.c); optional."""

from typing import Any

Entry = tuple[str, int, bytes | None, int, str | None]

def compile_plan(
    size: int, nret: int, entries: tuple[Entry, ...], shape: tuple[str, ...] = ..., /
) -> object: ...
def render(obj: dict[str, Any], plan: object, /) -> tuple[Any, ...] | None: ...
def render_text(line: str, plan: object, /) -> tuple[Any, ...] | None: ...
